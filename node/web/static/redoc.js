// ReDoc from the node's own copy (vendor/), reading the node's OpenAPI description.
const root = document.getElementById("redoc");
window.Redoc.init(root.dataset.spec, { hideDownloadButton: false }, root);
