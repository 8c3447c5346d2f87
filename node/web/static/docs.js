// Swagger UI from the node's own copy (vendor/), reading the node's OpenAPI description.
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  validatorUrl: null, // the default asks validator.swagger.io: nothing leaves the machine
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
