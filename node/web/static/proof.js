// The proof panel's checks, done in the browser: a record's inclusion proof against the
// Merkle root of its block's header (RFC 6962 / RFC 9162 §2.1.3.2), that header's
// proof of work against its own bits, and the leaf against the txid (design §2-§3).
import { fromHex, sha256, toHex } from "./sha256.js";

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** RFC 8785 canonical JSON of I-JSON data: sorted keys, ECMAScript serialization. */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The root an RFC 9162 inclusion proof leads to, or null when the path cannot fit. */
export async function rootFromPath(leaf, index, treeSize, path) {
  if (!(index >= 0 && index < treeSize)) return null;
  let fn = index;
  let sn = treeSize - 1;
  let r = await sha256(concat(Uint8Array.of(0), leaf));
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/** The fields of a 128-byte header (design §3), integers big-endian. */
export function parseHeader(raw) {
  if (raw.length !== 128) throw new Error(`a header is 128 bytes, not ${raw.length}`);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return {
    version: v.getUint32(0),
    height: Number(v.getBigUint64(4)),
    prevHash: toHex(raw.slice(12, 44)),
    merkleRoot: raw.slice(44, 76),
    timestamp: Number(v.getBigUint64(76)),
    bits: v.getUint32(84),
    nonce: Number(v.getBigUint64(120)),
  };
}

/** The target of compact ``bits`` (Bitcoin's nBits), or null when negative, zero or overflowing. */
export function target(bits) {
  const exponent = bits >>> 24;
  const mantissa = bits & 0x007fffff;
  if (mantissa !== 0 && (bits & 0x00800000)) return null;
  if (mantissa !== 0 && exponent > 34) return null;
  const value = exponent <= 3
    ? BigInt(mantissa >>> (8 * (3 - exponent)))
    : BigInt(mantissa) << BigInt(8 * (exponent - 3));
  return value > 0n && value < (1n << 256n) ? value : null;
}

/**
 * Check a proof as the node served it, with the header fetched on its own from
 * /v1/headers. Returns {ok, checks: [{ok, text}]}; ok only when every check holds.
 */
export async function checkProof(txid, proof, headerHex) {
  const checks = [];
  const check = (ok, text) => { checks.push({ ok: Boolean(ok), text }); return Boolean(ok); };
  try {
    const leaf = fromHex(proof.leaf);
    const header = fromHex(proof.header);
    const fields = parseHeader(header);
    const body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leaf));
    delete body.signature;
    const leafTxid = toHex(await sha256(new TextEncoder().encode(canonicalJson(body))));
    check(leafTxid === txid && proof.txid === txid, "the leaf is this record: its body hashes to the txid");
    const root = await rootFromPath(leaf, proof.index, proof.tree_size, proof.audit_path.map(fromHex));
    check(root && equal(root, fields.merkleRoot),
      `the audit path (${proof.audit_path.length} hashes, leaf ${proof.index} of ${proof.tree_size}) leads to the header's Merkle root`);
    const hash = await sha256(header);
    const limit = target(fields.bits);
    check(limit !== null && BigInt(`0x${toHex(hash)}`) <= limit,
      `the header's hash meets the target of its bits 0x${fields.bits.toString(16).padStart(8, "0")} (proof of work)`);
    check(toHex(hash) === proof.block_hash && fields.height === proof.height,
      `the header is block ${proof.height}, ${proof.block_hash.slice(0, 16)}…`);
    check(headerHex === proof.header, `the header matches the node's header chain at height ${fields.height}`);
  } catch (err) {
    check(false, `the proof could not be read: ${err.message}`);
  }
  return { ok: checks.length === 5 && checks.every((c) => c.ok), checks };
}
