// A record's page: kind, payload, signer, status, the revoked banner, the proof panel
// (checked in the browser, no click needed) and the lineage graph.
import { get } from "./api.js";
import { fetchLineage, lineagePanel } from "./lineage.js";
import { checkProof } from "./proof.js";
import { errorBox, fieldsTable, frame, h, hexValue, kindBadge, link, recordName, time } from "./ui.js";

const HEX64 = /^[0-9a-f]{64}$/;
const REF_FIELDS = new Set(["ref", "model", "subject", "derived_from"]);

function payloadValue(key, value) {
  if (typeof value === "string" && HEX64.test(value) && REF_FIELDS.has(key)) return hexValue(value, `/tx/${value}`);
  if (typeof value === "string" && value.startsWith("sha256:")) return hexValue(value, `/records?digest=${value}`);
  if (Array.isArray(value)) return h("div", {}, value.map((item) => h("div", {}, payloadValue(key, item))));
  if (value !== null && typeof value === "object") {
    return fieldsTable(Object.entries(value).map(([k, v]) => [k, payloadValue(k, v)]));
  }
  return h("span", {}, typeof value === "string" ? value : JSON.stringify(value));
}

function banner(view) {
  if (!view.revoked) return null;
  return h("div", { class: "banner revoked", role: "alert" },
    "This record was revoked by ", link(`/tx/${view.revoked_by}`, view.revoked_by, { class: "hash" }),
    ". Its signer no longer stands behind it.");
}

/** The proof panel: fetches the proof and the header by itself and shows the verdict. */
export function proofPanel(view) {
  const panel = h("div", { class: "panel proof", "data-state": "checking" },
    h("h2", {}, "Inclusion proof"), h("p", { class: "proof-state" }, "checking the proof…"));
  (async () => {
    let result;
    try {
      const proof = await get(`v1/transactions/${view.txid}/proof`);
      const headers = await get(`v1/headers?from_height=${proof.height}&count=1`);
      result = await checkProof(view.txid, proof, headers.headers[0]);
    } catch (err) {
      result = { ok: false, checks: [{ ok: false, text: `the proof could not be fetched: ${err.message}` }] };
    }
    panel.dataset.state = result.ok ? "verified" : "failed";
    panel.replaceChildren(
      h("h2", {}, "Inclusion proof"),
      h("p", {},
        h("strong", { class: `proof-state ${result.ok ? "ok" : "bad"}` }, result.ok ? "verified" : "not verified"),
        " — checked in this browser, trusting nothing but the header's proof of work:"),
      h("ul", { class: "checks" }, result.checks.map((c) => h("li", { class: c.ok ? "ok" : "bad" }, c.text))));
  })();
  return panel;
}

export async function recordView(txid) {
  // The lineage is asked for at once, not after the record: one round trip less. A
  // pending record has none (404), and then the answer is not used.
  const graph = fetchLineage(txid);
  graph.catch(() => {});
  const view = await get(`v1/records/${txid}`);
  const p = view.payload || {};
  const rows = [
    ["txid", hexValue(view.txid)],
    ["kind", kindBadge(view.kind)],
    ["status", h("span", {}, h("span", { class: `pill ${view.status}` }, view.status),
      view.revoked ? h("span", { class: "pill revoked" }, "revoked") : null)],
    view.block_hash && ["block", hexValue(view.block_hash, `/block/${view.block_hash}`)],
    view.height !== null && ["height", link(`/block/${view.height}`, String(view.height))],
    ["confirmations", String(view.confirmations)],
    ["signer", hexValue(view.signer, `/records?signer=${view.signer}`)],
    ["nonce", String(view.nonce)],
    ["timestamp", time(view.timestamp)],
    view.kind === "revocation" && ["revokes", hexValue(p.subject, `/tx/${p.subject}`)],
  ];
  const lineage = h("div", {}, h("p", { class: "muted" }, "drawing the lineage…"));
  if (view.status === "confirmed") {
    lineagePanel(txid, graph).then((panel) => lineage.replaceChildren(panel), (err) => lineage.replaceChildren(errorBox(err)));
  } else {
    lineage.replaceChildren(h("p", { class: "muted" }, "The lineage and the inclusion proof show once the record is in a block."));
  }
  const paths = [`v1/records/${txid}`];
  if (view.status === "confirmed") {
    paths.push(`v1/transactions/${txid}/proof`, `v1/records/${txid}/lineage?direction=ancestors`,
      `v1/records/${txid}/lineage?direction=descendants`);
  }
  const el = frame({
    title: [kindBadge(view.kind), recordName(view)],
    route: `/tx/${txid}`,
    paths,
    data: view,
    body: [
      banner(view),
      fieldsTable(rows),
      h("h2", {}, "Payload"),
      payloadValue("payload", p),
      view.status === "confirmed" ? proofPanel(view) : null,
      h("h2", {}, "Lineage"),
      lineage,
    ],
  });
  if (view.status === "pending") el.dataset.live = "pending"; // redrawn when a block comes
  return el;
}
