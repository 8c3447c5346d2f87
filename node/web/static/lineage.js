// The lineage graph: ancestors and descendants of a record, laid out in layers (sources
// on the left, what derives from them to the right) and drawn by hand as inline SVG.
// Each record is a <g data-txid> with its kind and full name as text; each edge carries
// its role (training_data, model, subject, ...). Clicking a record opens it.
import { get } from "./api.js";
import { download, h, recordName, short } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const KINDS = ["dataset", "model", "inference", "attestation", "revocation"];
const ROW = 66;
const NODE_H = 50;
const GAP_X = 110;
const SWEEPS = 4;

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Both walks merged: {root, nodes: [views], edges: [{from, to, role}]}. */
export async function fetchLineage(txid) {
  const base = `v1/records/${txid}/lineage`;
  const [up, down] = await Promise.all([
    get(`${base}?direction=ancestors`),
    get(`${base}?direction=descendants`),
  ]);
  const side = new Map();
  const nodes = new Map();
  for (const n of up.nodes) { nodes.set(n.txid, n); side.set(n.txid, "ancestor"); }
  for (const n of down.nodes) {
    if (!nodes.has(n.txid)) { nodes.set(n.txid, n); side.set(n.txid, "descendant"); }
  }
  side.set(txid, "root");
  const edges = new Map();
  for (const e of [...up.edges, ...down.edges]) edges.set(`${e.from} ${e.to} ${e.role}`, e);
  return { root: txid, nodes: [...nodes.values()], edges: [...edges.values()], side };
}

/**
 * Layers: longest path from the sources, then each record pulled right next to its
 * nearest child; an edge that spans layers passes through a virtual point in each
 * layer between, so that it never runs under a record. Then barycentre sweeps order
 * each layer to uncross edges. Returns {layers: [[id]], rank, routes: [[id...]]}.
 */
export function layout(nodes, edges) {
  const ids = new Set(nodes.map((n) => n.txid));
  const inner = edges.filter((e) => ids.has(e.from) && ids.has(e.to));
  const parents = new Map(nodes.map((n) => [n.txid, []]));
  const children = new Map(nodes.map((n) => [n.txid, []]));
  for (const e of inner) {
    parents.get(e.from).push(e.to);
    children.get(e.to).push(e.from);
  }
  const rank = new Map();
  const waiting = new Map(nodes.map((n) => [n.txid, parents.get(n.txid).length]));
  const topo = nodes.filter((n) => waiting.get(n.txid) === 0).map((n) => n.txid);
  for (const id of topo) rank.set(id, 0);
  for (let i = 0; i < topo.length; i++) {
    const id = topo[i];
    for (const child of children.get(id)) {
      rank.set(child, Math.max(rank.get(child) ?? 0, rank.get(id) + 1));
      waiting.set(child, waiting.get(child) - 1);
      if (waiting.get(child) === 0) topo.push(child);
    }
  }
  for (const id of [...topo].reverse()) {
    const below = children.get(id).map((c) => rank.get(c));
    if (below.length) rank.set(id, Math.max(rank.get(id), Math.min(...below) - 1));
  }
  const up = new Map(nodes.map((n) => [n.txid, []]));
  const down = new Map(nodes.map((n) => [n.txid, []]));
  const link = (a, b) => { down.get(a).push(b); up.get(b).push(a); }; // a left of b
  const routes = inner.map((e, i) => {
    const route = [e.to];
    for (let r = rank.get(e.to) + 1; r < rank.get(e.from); r++) {
      const id = `v${i}:${r}`;
      rank.set(id, r);
      up.set(id, []);
      down.set(id, []);
      route.push(id);
    }
    route.push(e.from);
    for (let k = 1; k < route.length; k++) link(route[k - 1], route[k]);
    return route;
  });
  const layers = [];
  const key = (n) => [n.height ?? Infinity, n.index ?? 0];
  const sorted = [...nodes].sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1]);
  for (const id of [...sorted.map((n) => n.txid), ...[...rank.keys()].filter((id) => !ids.has(id))]) {
    (layers[rank.get(id) ?? 0] ||= []).push(id);
  }
  const pos = new Map();
  const place = (layer) => layer.forEach((id, i) => pos.set(id, (i + 0.5) / layer.length));
  const sweep = (layer, neighbours) => {
    const at = new Map(layer.map((id) => {
      const ns = neighbours.get(id);
      return [id, ns.length ? ns.reduce((sum, n) => sum + pos.get(n), 0) / ns.length : pos.get(id)];
    }));
    layer.sort((a, b) => at.get(a) - at.get(b));
    place(layer);
  };
  layers.forEach(place);
  for (let i = 0; i < SWEEPS; i++) {
    for (let r = 1; r < layers.length; r++) sweep(layers[r], up);
    for (let r = layers.length - 2; r >= 0; r--) sweep(layers[r], down);
  }
  return { layers, routes, edges: inner };
}

const textWidth = (text, px) => Math.ceil(text.length * px * 0.6);

function nodeWidth(view) {
  const name = recordName(view);
  return Math.max(170, textWidth(name, 13) + 24, textWidth(view.kind, 11) + 90);
}

const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** SVG markup of one element: one string for the whole graph, parsed once (fast at 500). */
function m(name, attrs, inner = "") {
  const list = Object.entries(attrs).map(([k, v]) => ` ${k}="${esc(v)}"`).join("");
  return `<${name}${list}>${inner}</${name}>`;
}

function nodeMarkup(view, b, opened) {
  const classes = ["node", `k-${view.kind}`, view.revoked ? "revoked" : "", view.txid === opened ? "root" : ""];
  const sub = `${short(view.txid, 16)}${view.height !== null ? `  #${view.height}` : ""}`;
  return m("g", {
    class: classes.filter(Boolean).join(" "), "data-txid": view.txid, "data-kind": view.kind,
    transform: `translate(${b.x},${b.y})`, tabindex: 0, role: "link",
  }, [
    m("title", {}, esc(`${view.kind} ${recordName(view)}\n${view.txid}`)),
    m("rect", { width: b.w, height: NODE_H, rx: 7 }),
    m("text", { class: "kind", x: 10, y: 15 }, esc(view.kind)),
    m("text", { class: "name", x: 10, y: 31 }, esc(recordName(view))),
    m("text", { class: "sub", x: 10, y: 44 }, esc(sub)),
    view.revoked ? m("text", { class: "revoked-mark", x: b.w - 8, y: 15, "text-anchor": "end" }, "revoked") : "",
  ].join(""));
}

function edgeMarkup(route, e, box) {
  const mid = (id) => box.get(id).y + NODE_H / 2;
  let d = "";
  let label = null;
  for (let k = 1; k < route.length; k++) {
    const a = box.get(route[k - 1]);
    const b = box.get(route[k]);
    const [x0, y0, x1, y1] = [a.x + a.w, mid(route[k - 1]), b.x, mid(route[k])];
    const mx = (x0 + x1) / 2;
    d += k === 1 ? `M${x0},${y0}` : ` L${x0},${y0}`; // then across a virtual point's column
    d += ` C${mx},${y0} ${mx},${y1} ${x1},${y1}`;
    if (k === route.length - 1) label = [mx, (y0 + y1) / 2 - 4];
  }
  return [
    m("path", { class: "edge", d, "marker-end": "url(#arrow)", "data-from": e.to, "data-to": e.from }),
    m("text", { class: "role", x: label[0], y: label[1], "text-anchor": "middle" }, esc(e.role)),
  ];
}

/** The <svg> of a lineage; ``opened`` is the record the page shows. */
export function draw(graph, opened) {
  const byId = new Map(graph.nodes.map((n) => [n.txid, n]));
  const { layers, routes, edges } = layout(graph.nodes, graph.edges);
  const box = new Map();
  let x = 20;
  const tallest = Math.max(...layers.map((l) => l.length));
  for (const layer of layers) {
    const width = Math.max(40, ...layer.filter((id) => byId.has(id)).map((id) => nodeWidth(byId.get(id))));
    const top = 20 + ((tallest - layer.length) * ROW) / 2;
    layer.forEach((id, i) => box.set(id, { x, y: top + i * ROW, w: byId.has(id) ? nodeWidth(byId.get(id)) : width }));
    x += width + GAP_X;
  }
  const width = x - GAP_X + 20;
  const height = 40 + tallest * ROW - (ROW - NODE_H);
  const drawn = routes.map((route, i) => edgeMarkup(route, edges[i], box));
  const nodes = [...box].filter(([id]) => byId.has(id)).map(([id, b]) => nodeMarkup(byId.get(id), b, opened));
  const marker = m("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    m("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
  const holder = document.createElement("div");
  holder.innerHTML = m("svg", {
    class: "lineage", xmlns: SVG, width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": `lineage of ${graph.root}`,
  }, [
    m("defs", {}, marker),
    m("g", { class: "edges" }, drawn.map((pair) => pair[0]).join("")),
    m("g", { class: "nodes" }, nodes.join("")),
    m("g", { class: "labels" }, drawn.map((pair) => pair[1]).join("")),
  ].join(""));
  const svg = holder.firstElementChild;
  const open = (ev) => {
    const target = ev.target.closest("[data-txid]");
    if (target && (ev.type === "click" || ev.key === "Enter")) location.hash = `#/tx/${target.dataset.txid}`;
  };
  svg.addEventListener("click", open);
  svg.addEventListener("keydown", open);
  return svg;
}

const EXPORT_STYLE = `
  svg { font-family: sans-serif; background: #fff; }
  .node rect { fill: #f5f7fb; stroke-width: 2; } .node.root rect { stroke-width: 4; }
  .node.revoked rect { stroke-dasharray: 6 3; }
  .kind { font-size: 11px; font-weight: 700; } .name { font-size: 13px; fill: #1d2330; }
  .sub { font-size: 10.5px; fill: #5b6475; font-family: monospace; }
  .revoked-mark { fill: #c62f2f; font-weight: 700; font-size: 10.5px; }
  .edge { fill: none; stroke: #5b6475; stroke-width: 1.5; } .arrow { fill: #5b6475; }
  .role { font-size: 11px; fill: #1d2330; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
  ${KINDS.map((k, i) => `.k-${k} rect { stroke: ${["#2f6fdf", "#8a3fd1", "#17875a", "#b7791f", "#c62f2f"][i]}; }
  .k-${k} .kind { fill: ${["#2f6fdf", "#8a3fd1", "#17875a", "#b7791f", "#c62f2f"][i]}; }`).join("\n")}`;

function exportSvg(svg, root) {
  const copy = svg.cloneNode(true);
  copy.insertBefore(s("style", {}, EXPORT_STYLE), copy.firstChild);
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(copy)}\n`;
  download(`lineage-${root.slice(0, 12)}.svg`, text, "image/svg+xml");
}

function legend() {
  return h("span", { class: "legend" }, KINDS.map((k) => h("span", {}, h("i", { class: k }), k)));
}

/** The lineage panel of a record view: controls, legend and the graph. */
export async function lineagePanel(txid, fetched = fetchLineage(txid)) {
  const graph = await fetched;
  performance.mark("lineage-fetched"); // scripts/bench explorer reads these marks
  const wrap = h("div", { class: "graph-wrap" });
  const shown = { ancestor: true, descendant: true };
  const render = () => {
    const keep = (id) => graph.side.get(id) === "root" || shown[graph.side.get(id)];
    const nodes = graph.nodes.filter((n) => keep(n.txid));
    const ids = new Set(nodes.map((n) => n.txid));
    const edges = graph.edges.filter((e) => ids.has(e.from) && ids.has(e.to));
    wrap.replaceChildren(draw({ root: txid, nodes, edges }, txid));
  };
  const toggle = (name) => h("label", {},
    h("input", { type: "checkbox", checked: true, name, onchange: (ev) => { shown[name.slice(0, -1)] = ev.target.checked; render(); } }),
    ` ${name}`);
  const exported = () => ({ root: txid, nodes: graph.nodes, edges: graph.edges });
  const controls = h("div", { class: "graph-controls" },
    toggle("ancestors"), toggle("descendants"),
    h("button", { type: "button", onclick: () => exportSvg(wrap.querySelector("svg"), txid) }, "export SVG"),
    h("button", { type: "button", onclick: () => download(`lineage-${txid.slice(0, 12)}.json`, `${JSON.stringify(exported(), null, 2)}\n`, "application/json") }, "export JSON"),
    legend(),
    h("span", { class: "muted" }, `${graph.nodes.length} records, ${graph.edges.length} edges`));
  render();
  performance.mark("lineage-drawn");
  return h("div", { class: "lineage-panel" }, controls, wrap);
}
