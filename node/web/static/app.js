// The explorer's entry: the live status bar, the one search box, and the router.
// Every view lives in the URL fragment (#/tx/TXID, #/block/HASH, ...), so every view
// has a permalink.
import { get } from "./api.js";
import { recordView } from "./record.js";
import { errorBox, h, link, short } from "./ui.js";
import { verifyView } from "./verify.js";
import { blockView, blocksView, mempoolView, peersView, recordsView, searchView, tipsView } from "./views.js";

const POLL_MS = 2000; // design §10: a live status bar, polling at most every 2 s
const main = document.getElementById("view");
const statusBar = document.getElementById("status");
const state = { status: null, render: 0, ready: null };

function route() {
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search || "") };
}

const LIVE = new Set(["", "blocks", "tips", "mempool", "peers"]);

async function render({ quiet = false } = {}) {
  const token = ++state.render;
  const { parts, params } = route();
  const [name = "", arg] = parts;
  if (!quiet) main.replaceChildren(h("p", { class: "muted" }, "loading…"));
  if (name !== "tx") await state.ready; // only the block views need the tip's height
  const tip = state.status ? state.status.height : 0;
  const views = {
    "": () => blocksView(params, tip),
    blocks: () => blocksView(params, tip),
    block: () => blockView(arg, tip),
    tx: () => recordView(arg),
    records: () => recordsView(params),
    tips: tipsView,
    mempool: mempoolView,
    peers: peersView,
    verify: verifyView,
    search: () => searchView(arg || ""),
  };
  const view = views[name];
  let el;
  try {
    el = view ? await view() : h("p", {}, "No such page. ", link("/", "Latest blocks"));
  } catch (err) {
    el = errorBox(err);
  }
  if (el && token === state.render) {
    main.replaceChildren(el);
    if (!quiet) window.scrollTo(0, 0);
  }
}

function item(label, value) {
  return h("span", {}, `${label} `, h("b", {}, value));
}

function showStatus(s) {
  const items = [
    item("network", s.network),
    h("span", {}, "height ", link(`/block/${s.height}`, String(s.height), { class: "height" })),
    h("span", {}, "best ", link(`/block/${s.best_hash}`, short(s.best_hash, 16), { class: "hash", title: s.best_hash })),
    item("work", `0x${s.chain_work.replace(/^0+/, "") || "0"}`),
    h("span", {}, "mempool ", link("/mempool", `${s.mempool.count} (${s.mempool.bytes} B)`)),
    h("span", {}, "peers ", link("/peers", String(s.peers))),
    item("mining", s.mining ? "yes" : "no"),
    item("syncing", s.syncing ? "yes" : "no"),
    s.network_active ? null : item("p2p", "inactive"),
  ];
  statusBar.replaceChildren(...items.filter(Boolean));
}

async function poll() {
  if (!document.hidden) {
    try {
      const s = await get("v1/status");
      const moved = state.status && state.status.best_hash !== s.best_hash;
      state.status = s;
      showStatus(s);
      const { parts, params } = route();
      const live = (LIVE.has(parts[0] || "") && !params.get("from")) || main.querySelector("[data-live]");
      if (moved && live) render({ quiet: true });
    } catch (err) {
      statusBar.replaceChildren(h("span", { class: "down" }, `the node does not answer: ${err.message}`));
    }
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = ev.target.elements.q.value.trim();
  if (!q) return;
  const target = `#/search/${encodeURIComponent(q)}`;
  if (location.hash === target) render();
  else location.hash = target;
});
window.addEventListener("hashchange", () => render());
document.addEventListener("keydown", (ev) => { // "/" jumps to the search box, as on GitHub
  if (ev.key === "/" && !/^(INPUT|TEXTAREA)$/.test(document.activeElement.tagName)) {
    ev.preventDefault();
    document.querySelector('input[type="search"]').select(); // focused, old text selected
  }
});
document.addEventListener("visibilitychange", () => { if (!document.hidden && state.status) render({ quiet: true }); });

state.ready = get("v1/status").then(
  (s) => { state.status = s; showStatus(s); },
  () => {}, // the first poll says so
);
render().then(() => setTimeout(poll, POLL_MS));
