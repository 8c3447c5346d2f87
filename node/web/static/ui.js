// Small DOM helpers and the frame every view shares: permalink, raw JSON, copy, curl, CSV.
import { curl } from "./api.js";

/** h("a", {href: "#/", class: "x", onclick: f}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function link(route, text, attrs = {}) {
  return h("a", { href: `#${route}`, ...attrs }, text);
}

export function short(hex, n = 12) {
  return hex && hex.length > n + 2 ? `${hex.slice(0, n)}…` : hex || "";
}

export function time(ms) {
  return ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace(".000Z", "Z");
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h("textarea", { readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

export function copyButton(text, label = "copy") {
  const button = h("button", { type: "button", class: "small copy", title: `copy ${text}` }, label);
  button.addEventListener("click", async () => {
    try {
      await writeClipboard(text);
      button.textContent = "copied";
    } catch {
      button.textContent = "copy failed";
    }
    setTimeout(() => { button.textContent = label; }, 1200);
  });
  return button;
}

/** A full hex value as text, with a copy button; a link when a route is given. */
export function hexValue(hex, route) {
  const text = route ? link(route, hex, { class: "hash" }) : h("span", { class: "hash" }, hex);
  return h("span", {}, text, copyButton(hex));
}

export function kindBadge(kind) {
  return h("span", { class: `badge ${kind}` }, kind);
}

export function recordName(view) {
  const p = view.payload || {};
  if (p.name) return p.name;
  if (view.kind === "attestation") return p.type;
  if (view.kind === "revocation") return p.reason || `revokes ${short(p.subject)}`;
  if (view.kind === "inference") return `output ${short(p.output_digest?.slice(7), 10)}`;
  return short(view.txid);
}

export function fieldsTable(rows) {
  return h("table", { class: "fields" },
    rows.filter(Boolean).map(([name, value]) => h("tr", {}, h("th", {}, name), h("td", {}, value))));
}

export function table(columns, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row)))))));
}

export function toCsv(columns, rows) {
  const quote = (v) => {
    const text = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [columns.map((c) => quote(c.title)), ...rows.map((r) => columns.map((c) => quote(c.value(r))))]
    .map((line) => line.join(","))
    .join("\r\n") + "\r\n";
}

export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * The frame of a view: title, then a toolbar (permalink, copy link, raw JSON, curl, and
 * CSV when the view lists something), then the body.
 *   csv: {name, columns: [{title, value(row)}], rows}
 */
export function frame({ title, route, paths = [], data, csv, body }) {
  const permalink = new URL(`#${route}`, location.href).href;
  const raw = h("pre", { class: "raw", hidden: true });
  const curlBox = h("pre", { class: "curl", hidden: true }, paths.map(curl).join("\n"));
  const toggle = (box, fill) => () => {
    if (box.hidden && fill) fill();
    box.hidden = !box.hidden;
  };
  const json = () => JSON.stringify(data, null, 2);
  const tools = h("div", { class: "toolbar" },
    h("a", { class: "button permalink", href: `#${route}`, title: permalink }, "permalink"),
    copyButton(permalink, "copy link"),
    h("button", { type: "button", class: "raw-toggle", onclick: toggle(raw, () => { raw.textContent = json(); }) }, "raw JSON"),
    h("button", { type: "button", onclick: () => writeClipboard(json()) }, "copy JSON"),
    paths.length ? h("button", { type: "button", onclick: toggle(curlBox) }, "curl") : null,
    paths.length ? copyButton(paths.map(curl).join("\n"), "copy curl") : null,
    csv ? h("button", { type: "button", class: "csv", onclick: () => download(csv.name, toCsv(csv.columns, csv.rows), "text/csv") }, "CSV") : null);
  return h("section", { class: "view" }, h("h1", {}, title), tools, raw, curlBox, body);
}

export function errorBox(err) {
  const code = err.code ? ` (${err.code})` : "";
  return h("div", { class: "panel error" }, `${err.message}${code}`);
}
