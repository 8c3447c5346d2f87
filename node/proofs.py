"""The light verifier's checks, without I/O: is this header chain valid, is this proof.

A light client trusts no node. It fetches every node's headers and checks them itself:

- the first header is this network's genesis (``consensus.genesis``);
- each header links to the one before (``prev_hash``, ``height + 1``);
- each meets its proof of work, with ``bits`` within ``pow_limit`` and equal to what the
  retarget rule gives for its parent (``next_bits``: regtest's constant, ASERT elsewhere;
  ASERT needs only the parent's height and time, so it is cheap to re-run), a timestamp
  past the median of the previous 11 and not beyond the local clock's allowance;
  these are exactly ``consensus.validation``'s header rules.

Among the valid chains the one with the most work wins (ties: the first node named).
A record then counts only with an inclusion proof whose leaf parses to a transaction with
that txid, a valid signature on this network, a header on the winning chain at the
proof's height, and an RFC 9162 audit path from the leaf to that header's Merkle root.

A node that serves one invalid header is not trusted for any of its chain: its records
are still used as hints, since every record must come with a proof checked against the
winning chain, whoever served it. The fetching lives in ``node.verifier``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from consensus.block import Header
from consensus.errors import BlockTooNew, InvalidBlock, InvalidTx
from consensus.genesis import genesis_header
from consensus.merkle import verify_inclusion
from consensus.params import ConsensusParams
from consensus.pow import bits_to_target, block_work
from consensus.tx import Transaction, check_tx
from consensus.validation import check_header, contextual_check_header

__all__ = [
    "DIGEST_FIELDS",
    "HeaderChain",
    "ProvenTx",
    "VerificationError",
    "best_chain",
    "check_header_chain",
    "check_proof",
    "check_revocation",
    "matched_fields",
]

DIGEST_FIELDS = ("digest", "code_digest", "input_digest", "output_digest")
"""Payload fields that can name an artifact's digest (design §2)."""


class VerificationError(Exception):
    """Data served by a node does not verify; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class HeaderChain:
    """A header chain that passed every check, from genesis to ``tip``."""

    params: ConsensusParams
    headers: tuple[Header, ...]
    cumulative_work: tuple[int, ...]
    """``cumulative_work[h]``: the work of blocks ``0..h`` inclusive."""

    @property
    def height(self) -> int:
        return len(self.headers) - 1

    @property
    def tip(self) -> Header:
        return self.headers[-1]

    @property
    def work(self) -> int:
        return self.cumulative_work[-1]

    def at(self, height: int) -> Header | None:
        return self.headers[height] if 0 <= height < len(self.headers) else None

    def depth(self, height: int) -> int:
        """Confirmations of a block at ``height``: itself and every block above it."""
        return self.height - height + 1

    def work_from(self, height: int) -> int:
        """The work of the block at ``height`` and every block above it."""
        below = self.cumulative_work[height - 1] if height > 0 else 0
        return self.work - below


def check_header_chain(
    headers_hex: Sequence[str], params: ConsensusParams, now_ms: int
) -> HeaderChain:
    """Parse and check a chain of hex headers served by one node (module docstring)."""
    if not headers_hex:
        raise VerificationError("served no headers")
    headers: list[Header] = []
    cumulative: list[int] = []
    for height, text in enumerate(headers_hex):
        try:
            header = Header.from_hex(text) if isinstance(text, str) else None
        except InvalidBlock as exc:
            raise VerificationError(f"header {height}: {exc.message}") from exc
        if header is None:
            raise VerificationError(f"header {height}: not a hex string")
        _check_link(header, height, headers, params, now_ms)
        headers.append(header)
        work = block_work(bits_to_target(header.bits))
        cumulative.append(work + (cumulative[-1] if cumulative else 0))
    return HeaderChain(params, tuple(headers), tuple(cumulative))


def _check_link(
    header: Header, height: int, before: list[Header], params: ConsensusParams, now_ms: int
) -> None:
    if height == 0:
        expected = genesis_header(params).hash
        if header.hash != expected:
            raise VerificationError(
                f"genesis is {header.hash}, not {params.network}'s genesis {expected}"
            )
        return
    parent = before[-1]
    if header.height != height or header.prev_hash != parent.hash:
        raise VerificationError(f"header {height} does not link to the header before it")
    mtp_window = [h.timestamp for h in before[-params.median_time_span :]]
    median = sorted(mtp_window)[len(mtp_window) // 2]
    try:
        check_header(header, params)
        contextual_check_header(header, parent, median, now_ms, params)
    except InvalidBlock as exc:
        raise VerificationError(f"header {height} is invalid: {exc.code}: {exc.message}") from exc
    except BlockTooNew as exc:
        raise VerificationError(f"header {height} is too far in the future: {exc.message}") from exc


def best_chain(chains: Sequence[HeaderChain | None]) -> int | None:
    """Index of the chain with the most work (the first on a tie), or None if none valid."""
    best: int | None = None
    for index, chain in enumerate(chains):
        if chain is None:
            continue
        if best is None or chain.work > _work(chains[best]):
            best = index
    return best


def _work(chain: HeaderChain | None) -> int:
    return chain.work if chain is not None else -1


@dataclass(frozen=True, slots=True)
class ProvenTx:
    """A transaction proven to be in a block of the checked chain."""

    tx: Transaction
    header: Header
    index: int

    @property
    def height(self) -> int:
        return self.header.height


def check_proof(proof: Any, txid: str, chain: HeaderChain) -> ProvenTx:
    """Check an inclusion proof (design §4) against ``chain``; ``VerificationError`` if not.

    Confirmations are left to the caller: a revocation needs only to be on the chain.
    """
    if not isinstance(proof, Mapping):
        raise VerificationError("proof is not a JSON object")
    leaf, index, size, path, header = _proof_fields(proof)
    try:
        tx = Transaction.from_json(json.loads(leaf))
    except (ValueError, InvalidTx) as exc:
        raise VerificationError(f"proof leaf is not a valid transaction: {exc}") from exc
    if tx.txid != txid:
        raise VerificationError(f"proof leaf is transaction {tx.txid}, not {txid}")
    if tx.leaf_bytes != leaf:
        raise VerificationError("proof leaf is not the transaction's canonical bytes")
    try:
        check_tx(tx, chain.params)
    except InvalidTx as exc:
        raise VerificationError(f"{exc.code}: {exc.message}") from exc
    on_chain = chain.at(header.height)
    if on_chain is None or on_chain.hash != header.hash:
        raise VerificationError(
            f"block {header.hash} at height {header.height} is not on the most-work chain"
        )
    root = bytes.fromhex(header.merkle_root)
    if not verify_inclusion(leaf, index, size, path, root):
        raise VerificationError("audit path does not lead to the block's merkle root")
    return ProvenTx(tx, header, index)


def _proof_fields(proof: Mapping[str, Any]) -> tuple[bytes, int, int, list[bytes], Header]:
    try:
        leaf = bytes.fromhex(proof["leaf"])
        index, size = proof["index"], proof["tree_size"]
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        header = Header.from_hex(proof["header"])
    except (KeyError, TypeError, ValueError, InvalidBlock) as exc:
        raise VerificationError(f"malformed proof: {exc}") from exc
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        raise VerificationError("malformed proof: index and tree_size")
    return leaf, index, size, path, header


def check_revocation(revocation: ProvenTx, subject: Transaction) -> str | None:
    """Why ``revocation`` does not revoke ``subject``, or None if it does."""
    tx = revocation.tx
    if tx.kind != "revocation":
        return f"{tx.txid} is a {tx.kind}, not a revocation"
    if tx.payload.get("subject") != subject.txid:
        return f"{tx.txid} revokes another record"
    if tx.signer != subject.signer:
        return f"{tx.txid} is signed by another key than the record"
    return None


def matched_fields(tx: Transaction, digest: str) -> list[str]:
    """The payload fields of ``tx`` that carry ``digest``."""
    return [name for name in DIGEST_FIELDS if tx.payload.get(name) == digest]
