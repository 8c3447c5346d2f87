// "Who registered this file?": the file is hashed here in the browser (WebCrypto where
// the page is a secure context, else plain JavaScript) and never leaves it; only its
// digest goes to the node, as GET /v1/records?digest=.
import { get } from "./api.js";
import { hasWebCrypto, sha256, toHex } from "./sha256.js";
import { errorBox, frame, h, hexValue, kindBadge, link, recordName, short } from "./ui.js";

async function answer(file, out, data) {
  out.replaceChildren(h("p", {}, `hashing ${file.name} (${file.size} bytes)…`));
  try {
    const digest = `sha256:${toHex(await sha256(await file.arrayBuffer()))}`;
    const found = await get(`v1/records?digest=${digest}&limit=500`);
    Object.assign(data, { file: file.name, size: file.size, digest, records: found.records });
    const signers = [...new Set(found.records.map((r) => r.signer))];
    out.replaceChildren(
      h("p", {}, `${file.name}: `, hexValue(digest, `/records?digest=${digest}`)),
      found.records.length
        ? h("p", { class: "answer" }, `Registered in ${found.records.length} record(s) by ${signers.length} signer(s):`)
        : h("p", { class: "answer" }, "No confirmed record on this chain names this file's digest."),
      h("ul", {}, found.records.map((r) => h("li", {},
        kindBadge(r.kind), " ", link(`/tx/${r.txid}`, recordName(r)), " signed by ",
        link(`/records?signer=${r.signer}`, short(r.signer, 16), { class: "hash", title: r.signer }),
        ` in block ${r.height}`, r.revoked ? h("span", { class: "pill revoked" }, "revoked") : null))));
  } catch (err) {
    out.replaceChildren(errorBox(err));
  }
}

export function verifyView() {
  const out = h("div", { class: "verify-answer" });
  const data = {}; // what the raw-JSON toggle shows once a file is hashed
  const input = h("input", { type: "file", onchange: (ev) => ev.target.files[0] && answer(ev.target.files[0], out, data) });
  const drop = h("div", { class: "drop" },
    h("p", {}, "Drop a file here, or choose one: "), input,
    h("p", { class: "muted" }, `It is hashed in this browser (${hasWebCrypto ? "WebCrypto" : "JavaScript SHA-256"}) and never uploaded. `
      + "A directory's digest is a manifest: check directories with `ailedger verify DIR`."));
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files[0]) answer(ev.dataTransfer.files[0], out, data);
  });
  return frame({ title: "Verify a file", route: "/verify", paths: [], data, body: [drop, out] });
}
