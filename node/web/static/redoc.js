// ReDoc from the node's own copy (vendor/), reading the node's OpenAPI description.
// ReDoc 2.5 cannot follow JSON Schema's local "#/$defs/..." references, which pydantic
// writes into request bodies documented from a model's own schema; they are moved to
// components.schemas first (a no-op for a description without them).
const root = document.getElementById("redoc");

function hoistDefs(node, schemas) {
  if (Array.isArray(node)) {
    node.forEach((item) => hoistDefs(item, schemas));
  } else if (node !== null && typeof node === "object") {
    if (node.$defs && typeof node.$defs === "object") {
      for (const [name, schema] of Object.entries(node.$defs)) if (!(name in schemas)) schemas[name] = schema;
      delete node.$defs;
    }
    if (typeof node.$ref === "string" && node.$ref.startsWith("#/$defs/")) {
      node.$ref = `#/components/schemas/${node.$ref.slice("#/$defs/".length)}`;
    }
    Object.values(node).forEach((value) => hoistDefs(value, schemas));
  }
}

(async () => {
  const spec = await (await fetch(root.dataset.spec)).json();
  spec.components = spec.components || {};
  spec.components.schemas = spec.components.schemas || {};
  const found = {};
  hoistDefs(spec, found);
  for (const [name, schema] of Object.entries(found)) {
    if (!(name in spec.components.schemas)) spec.components.schemas[name] = schema;
  }
  hoistDefs(spec.components.schemas, spec.components.schemas);
  window.Redoc.init(spec, { hideDownloadButton: false }, root);
})();
