// The list views and block pages: blocks, one block, chain tips and forks, the mempool,
// peers, records by signer, digest or kind, and search results.
import { get, query } from "./api.js";
import { canonicalJson } from "./proof.js";
import { sha256, toHex } from "./sha256.js";
import { frame, h, hexValue, kindBadge, link, recordName, short, table, time } from "./ui.js";

const PAGE = 20;
const hashCell = (route) => (hash) => link(route(hash), short(hash, 16), { class: "hash", title: hash, "data-hash": hash });

export async function blocksView(params, tipHeight) {
  const from = params.get("from");
  const path = `v1/blocks${query({ from_height: from, limit: PAGE })}`;
  const data = await get(path);
  const blocks = [...data.blocks].reverse();
  const top = blocks.length ? blocks[0].height : 0;
  const bottom = blocks.length ? blocks[blocks.length - 1].height : 0;
  const columns = [
    { title: "height", cell: (b) => link(`/block/${b.height}`, String(b.height)), value: (b) => b.height },
    { title: "hash", class: "hash", cell: (b) => link(`/block/${b.hash}`, b.hash, { class: "hash" }), value: (b) => b.hash },
    { title: "time", cell: (b) => time(b.timestamp), value: (b) => time(b.timestamp) },
    { title: "records", cell: (b) => String(b.tx_count), value: (b) => b.tx_count },
    { title: "miner", class: "hash", cell: (b) => short(b.miner, 12), value: (b) => b.miner },
  ];
  const pager = h("div", { class: "pager" },
    top < tipHeight ? link(`/blocks?from=${Math.min(top + 1, tipHeight - PAGE + 1)}`, "← newer") : null,
    link("/", "latest"),
    bottom > 0 ? link(`/blocks?from=${Math.max(bottom - PAGE, 0)}`, "older →") : null);
  return frame({
    title: from === null ? "Latest blocks" : `Blocks ${bottom}–${top}`,
    route: from === null ? "/" : `/blocks?from=${from}`,
    paths: [path],
    data,
    csv: { name: `blocks-${bottom}-${top}.csv`, columns, rows: blocks },
    body: [pager, table(columns, blocks), pager.cloneNode(true)],
  });
}

export async function blockView(id, tipHeight) {
  const block = await get(`v1/blocks/${id}`);
  const hd = block.header;
  const around = await get(`v1/blocks?from_height=${hd.height}&limit=2`);
  const active = around.blocks[0] && around.blocks[0].hash === block.hash;
  const next = active && around.blocks[1] ? around.blocks[1] : null;
  const columns = [
    { title: "#", cell: (t) => String(t.i), value: (t) => t.i },
    { title: "txid", class: "hash", cell: (t) => link(`/tx/${t.txid}`, t.txid, { class: "hash" }), value: (t) => t.txid },
    { title: "kind", cell: (t) => kindBadge(t.kind), value: (t) => t.kind },
    { title: "name", cell: (t) => recordName(t), value: (t) => recordName(t) },
  ];
  const txs = await txidsOf(block);
  const rows = block.transactions.map((tx, i) => ({ ...tx, i, txid: txs[i] }));
  const fields = [
    ["hash", hexValue(block.hash)],
    ["height", String(hd.height)],
    ["previous", hd.height > 0 ? hexValue(hd.prev_hash, `/block/${hd.prev_hash}`) : "none (genesis)"],
    ["next", next ? hexValue(next.hash, `/block/${next.hash}`) : h("span", { class: "muted" }, active ? "none yet (the tip)" : "—")],
    ["confirmations", active ? String(tipHeight - hd.height + 1) : h("span", { class: "pill invalid" }, "0: not on the active chain (a side branch)")],
    ["merkle root", hexValue(hd.merkle_root)],
    ["time", `${time(hd.timestamp)} (${hd.timestamp})`],
    ["bits", `0x${hd.bits.toString(16).padStart(8, "0")}`],
    ["nonce", String(hd.nonce)],
    ["miner", hexValue(hd.miner)],
    ["version", String(hd.version)],
  ];
  const table_ = h("table", { class: "fields" }, fields.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))));
  return frame({
    title: `Block ${hd.height}`,
    route: `/block/${block.hash}`,
    paths: [`v1/blocks/${block.hash}`],
    data: block,
    csv: { name: `block-${hd.height}-records.csv`, columns, rows },
    body: [
      h("div", { class: "pager" },
        hd.height > 0 ? link(`/block/${hd.prev_hash}`, "← previous") : null,
        next ? link(`/block/${next.hash}`, "next →") : null),
      table_, h("h2", {}, `${rows.length} records`), table(columns, rows)],
  });
}

/** The txids of a block's transactions: SHA-256 of each body's canonical JSON (design §2). */
async function txidsOf(block) {
  return Promise.all(block.transactions.map(async (tx) => {
    const { signature, ...body } = tx;
    return toHex(await sha256(new TextEncoder().encode(canonicalJson(body))));
  }));
}

export async function recordsView(params) {
  const filters = { digest: params.get("digest"), signer: params.get("signer"), kind: params.get("kind") };
  const path = `v1/records${query({ ...filters, cursor: params.get("cursor"), limit: 50 })}`;
  const data = await get(path);
  const columns = [
    { title: "txid", class: "hash", cell: (r) => link(`/tx/${r.txid}`, r.txid, { class: "hash" }), value: (r) => r.txid },
    { title: "kind", cell: (r) => kindBadge(r.kind), value: (r) => r.kind },
    { title: "name", cell: (r) => recordName(r), value: (r) => recordName(r) },
    { title: "height", cell: (r) => link(`/block/${r.height}`, String(r.height)), value: (r) => r.height },
    { title: "signer", class: "hash", cell: (r) => link(`/records?signer=${r.signer}`, short(r.signer, 16), { title: r.signer }), value: (r) => r.signer },
    { title: "revoked", cell: (r) => (r.revoked ? h("span", { class: "pill revoked" }, "revoked") : ""), value: (r) => r.revoked },
  ];
  const what = filters.digest ? ["digest ", h("span", { class: "hash" }, filters.digest)]
    : filters.signer ? ["signer ", h("span", { class: "hash" }, filters.signer)]
      : filters.kind ? [`kind ${filters.kind}`] : ["all"];
  const route = `/records${query({ ...filters, cursor: params.get("cursor") })}`;
  const nextLink = data.next_cursor ? link(`/records${query({ ...filters, cursor: data.next_cursor })}`, "next page →") : null;
  return frame({
    title: ["Records: ", ...what],
    route,
    paths: [path],
    data,
    csv: { name: "records.csv", columns, rows: data.records },
    body: [
      data.records.length ? table(columns, data.records) : h("p", {}, "No confirmed record matches."),
      h("div", { class: "pager" }, nextLink),
    ],
  });
}

async function branchOf(tip) {
  const blocks = [];
  let hash = tip.hash;
  for (let i = 0; i < Math.min(tip.branch_len, 12); i++) {
    try {
      const block = await get(`v1/blocks/${hash}`);
      blocks.push({ hash, height: block.header.height });
      hash = block.header.prev_hash;
    } catch {
      blocks.push({ hash, height: null });
      break;
    }
  }
  return blocks;
}

export async function tipsView() {
  const data = await get("v1/chain/tips");
  const columns = [
    { title: "status", cell: (t) => h("span", { class: `pill ${t.status}` }, t.status), value: (t) => t.status },
    { title: "height", cell: (t) => String(t.height), value: (t) => t.height },
    { title: "tip", class: "hash", cell: (t) => hashCell((x) => `/block/${x}`)(t.hash), value: (t) => t.hash },
    { title: "branch length", cell: (t) => String(t.branch_len), value: (t) => t.branch_len },
    { title: "chain work", class: "hash", cell: (t) => t.chain_work.replace(/^0+/, "") || "0", value: (t) => t.chain_work },
  ];
  const sides = data.tips.filter((t) => t.status !== "active" && t.branch_len > 0);
  const branches = await Promise.all(sides.map(async (t) => {
    const blocks = await branchOf(t);
    return h("div", { class: "panel" },
      h("div", {}, h("span", { class: `pill ${t.status}` }, t.status), ` side branch of ${t.branch_len} block(s), forking below height ${t.height - t.branch_len + 1}:`),
      h("div", { class: "strip" }, blocks.reverse().map((b) => (b.height === null
        ? h("span", { class: "muted" }, `${short(b.hash)} (headers only)`)
        : link(`/block/${b.hash}`, `${b.height} · ${short(b.hash, 8)}`)))));
  }));
  return frame({
    title: "Chain tips and forks",
    route: "/tips",
    paths: ["v1/chain/tips"],
    data,
    csv: { name: "tips.csv", columns, rows: data.tips },
    body: [table(columns, data.tips), h("h2", {}, "Side branches"),
      branches.length ? branches : h("p", { class: "muted" }, "No side branch: every known block is on the active chain.")],
  });
}

export async function mempoolView() {
  const data = await get("v1/mempool");
  const shown = data.txids.slice(0, 25);
  const views = await Promise.all(shown.map((t) => get(`v1/transactions/${t}`).catch(() => ({ txid: t, kind: "?", payload: {} }))));
  const rows = data.txids.map((txid, i) => views[i] || { txid });
  const columns = [
    { title: "txid", class: "hash", cell: (r) => link(`/tx/${r.txid}`, r.txid, { class: "hash" }), value: (r) => r.txid },
    { title: "kind", cell: (r) => (r.kind ? kindBadge(r.kind) : ""), value: (r) => r.kind || "" },
    { title: "name", cell: (r) => (r.kind ? recordName(r) : ""), value: (r) => (r.kind ? recordName(r) : "") },
  ];
  return frame({
    title: `Mempool: ${data.count} records, ${data.bytes} bytes`,
    route: "/mempool",
    paths: ["v1/mempool"],
    data,
    csv: { name: "mempool.csv", columns, rows },
    body: rows.length ? table(columns, rows) : h("p", { class: "muted" }, "The mempool is empty."),
  });
}

export async function peersView() {
  const data = await get("v1/peers");
  const columns = [
    { title: "url", cell: (p) => p.url, value: (p) => p.url },
    { title: "node id", class: "hash", cell: (p) => short(p.node_id, 16), value: (p) => p.node_id },
    { title: "direction", cell: (p) => p.direction, value: (p) => p.direction },
    { title: "height", cell: (p) => (p.height === null ? "" : String(p.height)), value: (p) => p.height },
    { title: "best hash", class: "hash", cell: (p) => (p.best_hash ? hashCell((x) => `/block/${x}`)(p.best_hash) : ""), value: (p) => p.best_hash },
    { title: "last seen", cell: (p) => (p.last_seen ? time(p.last_seen) : ""), value: (p) => p.last_seen },
    { title: "discouraged", cell: (p) => (p.discouraged ? h("span", { class: "pill invalid" }, p.reason || "yes") : ""), value: (p) => (p.discouraged ? p.reason || "yes" : "") },
  ];
  return frame({
    title: `Peers (${data.peers.length})`,
    route: "/peers",
    paths: ["v1/peers"],
    data,
    csv: { name: "peers.csv", columns, rows: data.peers },
    body: data.peers.length ? table(columns, data.peers) : h("p", { class: "muted" }, "No peer known yet."),
  });
}

const TARGET = {
  record: (m) => `/tx/${m.id}`,
  block: (m) => `/block/${m.id}`,
  signer: (m) => `/records?signer=${m.id}`,
  digest: (m) => `/records?digest=${m.id}`,
};

/** Search results; one match opens at once (the URL then names it). */
export async function searchView(q) {
  const path = `v1/search${query({ q })}`;
  const data = await get(path);
  if (data.matches.length === 1) {
    location.replace(`#${TARGET[data.matches[0].type](data.matches[0])}`);
    return null;
  }
  const items = data.matches.map((m) => h("li", {}, `${m.type} `, link(TARGET[m.type](m), m.id, { class: "hash" })));
  return frame({
    title: ["Search: ", h("span", { class: "hash" }, q)],
    route: `/search/${encodeURIComponent(q)}`,
    paths: [path],
    data,
    body: items.length ? h("ul", {}, items)
      : h("p", {}, "Nothing on this node matches: try a txid, a block hash or height, a sha256: digest or a signer key."),
  });
}
