"""The light verifier: "was this exact artifact registered, by whom, how deeply buried?"

It trusts no single node. From every node it fetches the status and the whole header
chain, and checks each chain itself (``node.proofs``: genesis, links, proof of work, the
retarget rule, median time). The valid chain with the most work is the reference. Then it
asks every node for the records of the digest (the union, by txid, are only hints) and
accepts a record only with an inclusion proof, from any node, that checks against the
reference chain: leaf -> transaction with that txid -> valid signature -> audit path to
the Merkle root of a header on the reference chain, buried under enough blocks.

A node's claim that a record is revoked counts only with a proven revocation by the
record's own signer. A revoked record fails the verification: a revoked registration is
no proof of provenance, and the report says "revoked" and by which transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from consensus.params import ConsensusParams, params_for
from consensus.tx import Transaction
from node.client import ApiError, Client, NodeUnavailable, now_ms
from node.proofs import (
    HeaderChain,
    ProvenTx,
    VerificationError,
    best_chain,
    check_header_chain,
    check_proof,
    check_revocation,
    matched_fields,
)

__all__ = [
    "NodeReport",
    "RecordReport",
    "Verification",
    "VerifyReport",
    "open_verification",
    "verify_artifact",
]


@dataclass(slots=True)
class NodeReport:
    """What one node served: its chain if it verified, or why it was not used."""

    url: str
    network: str | None = None
    height: int | None = None
    tip_hash: str | None = None
    chain_work: int | None = None
    reachable: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and self.error is None


@dataclass(slots=True)
class RecordReport:
    """One record of the digest, as verified against the most-work chain."""

    txid: str
    kind: str | None = None
    name: str | None = None
    signer: str | None = None
    fields: list[str] = field(default_factory=list)
    """Which payload fields carry the digest (``digest``, ``output_digest``, ...)."""
    height: int | None = None
    block_hash: str | None = None
    timestamp: int | None = None
    """The block's time (ms since the epoch), from the verified header."""
    confirmations: int | None = None
    work_on_top: int | None = None
    """Work of the record's block and every block above it on the verified chain."""
    verified: bool = False
    revoked: bool = False
    revoked_by: str | None = None
    revocation_reason: str | None = None
    proof_from: str | None = None
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None
    """The proven record's payload (the leaf's, not a node's view of it)."""

    @property
    def ok(self) -> bool:
        """Verified, deep enough, and not revoked."""
        return self.verified and not self.revoked and not self.reasons


@dataclass(slots=True)
class VerifyReport:
    """The answer to "was this exact artifact registered, and how deeply is it buried?"."""

    digest: str
    confirmations_required: int
    network: str | None = None
    best_node: str | None = None
    best_height: int | None = None
    best_hash: str | None = None
    best_chain_work: int | None = None
    nodes: list[NodeReport] = field(default_factory=list)
    records: list[RecordReport] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one record, and every record verified, deep enough and not revoked."""
        return bool(self.records) and not self.reasons and all(r.ok for r in self.records)

    def failures(self) -> list[str]:
        """Every reason the verification failed, one line each."""
        lines = list(self.reasons)
        for record in self.records:
            lines += [f"{record.txid}: {reason}" for reason in record.reasons]
        return lines

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (chain work as hex, as the API shows it)."""
        return {
            "digest": self.digest,
            "ok": self.ok,
            "network": self.network,
            "confirmations_required": self.confirmations_required,
            "best": {
                "node": self.best_node,
                "height": self.best_height,
                "hash": self.best_hash,
                "chain_work": _hex(self.best_chain_work),
            },
            "reasons": self.reasons,
            "nodes": [
                {
                    "url": n.url,
                    "ok": n.ok,
                    "network": n.network,
                    "height": n.height,
                    "tip_hash": n.tip_hash,
                    "chain_work": _hex(n.chain_work),
                    "error": n.error,
                    "notes": n.notes,
                }
                for n in self.nodes
            ],
            "records": [_record_json(r) for r in self.records],
        }


def _record_json(record: RecordReport) -> dict[str, Any]:
    names = (
        "txid kind name signer fields height block_hash timestamp confirmations verified "
        "revoked revoked_by revocation_reason proof_from reasons notes"
    )
    out = {name: getattr(record, name) for name in names.split()}
    out["work_on_top"] = _hex(record.work_on_top)
    out["ok"] = record.ok
    return out


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:x}"


def verify_artifact(
    digest: str,
    nodes: Sequence[str],
    confirmations: int = 1,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    network: str | None = None,
    clock_ms: Callable[[], int] = now_ms,
) -> VerifyReport:
    """Find and verify every record of ``digest``, trusting none of ``nodes`` alone.

    The network is ``network`` or the one most nodes with a valid chain are on; nodes on
    another one are not used. A record *verifies* when its inclusion proof (from any
    node) checks against the most-work valid header chain with at least
    ``confirmations`` blocks on top (its own counted). A record revoked by a verified
    revocation is reported with ``revoked=True`` and fails the report: a revoked
    registration is no proof of provenance. Raises ``NodeUnavailable`` only when no node
    answered at all; ``clock_ms`` is the local clock for the too-far-future header rule.
    """
    with open_verification(
        digest,
        nodes,
        confirmations,
        timeout=timeout,
        transport=transport,
        network=network,
        clock_ms=clock_ms,
    ) as verification:
        return verification.report


@contextmanager
def open_verification(
    digest: str,
    nodes: Sequence[str],
    confirmations: int = 1,
    *,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    network: str | None = None,
    clock_ms: Callable[[], int] = now_ms,
) -> Iterator[Verification]:
    """``verify_artifact``, kept open: the finished ``Verification`` (its ``report``),
    whose nodes and most-work chain can then prove more records (``related``,
    ``verify_record``), e.g. an attestation made on one of the digest's records."""
    if not nodes:
        raise ValueError("name at least one node")
    if confirmations < 1:
        raise ValueError("confirmations must be at least 1")
    urls = list(dict.fromkeys(url.rstrip("/") for url in nodes))
    clients = [Client(url, timeout=timeout, transport=transport) for url in urls]
    try:
        verification = Verification(digest, clients, confirmations, network, clock_ms())
        verification.run()
        yield verification
    finally:
        for client in clients:
            client.close()


class Verification:
    """One run of ``verify_artifact``: the fetching; the checks are ``node.proofs``'."""

    def __init__(
        self,
        digest: str,
        clients: list[Client],
        confirmations: int,
        network: str | None,
        clock: int,
    ) -> None:
        self.digest = digest
        self.clients = clients
        self.clock = clock
        self.report = VerifyReport(digest=digest, confirmations_required=confirmations)
        self.report.network = network
        self.chain: HeaderChain | None = None

    def run(self) -> VerifyReport:
        chains = [self._survey(client) for client in self.clients]
        if not any(node.reachable for node in self.report.nodes):
            errors = "; ".join(node.error or node.url for node in self.report.nodes)
            raise NodeUnavailable(None, "node-unavailable", f"no node answered: {errors}")
        self.report.network = network = self.report.network or self._majority_network(chains)
        for index, node in enumerate(self.report.nodes):
            if node.reachable and node.network != network:
                node.error = node.error or f"on network {node.network}, not {network}"
                chains[index] = None
        best = best_chain(chains)
        if best is None:
            self.report.reasons.append("no node served a valid header chain")
            return self.report
        self.chain = chain = chains[best]
        assert chain is not None
        self.report.best_node = self.clients[best].base_url
        self.report.best_height, self.report.best_hash = chain.height, chain.tip.hash
        self.report.best_chain_work = chain.work
        # Ask the best chain's node first: it is the one most likely to have the proofs.
        self.clients.insert(0, self.clients.pop(best))
        views = self._find_records()
        if not views:
            self.report.reasons.append(f"no record of {self.digest} on any node")
        for txid, (view, revokers) in views.items():
            self.report.records.append(self.verify_record(txid, view, revokers))
        return self.report

    def related(self, txid: str) -> dict[str, tuple[dict[str, Any], set[str]]]:
        """The records that reference ``txid`` directly (attestations on it, inferences
        with it, ...), as the nodes list them: hints, by txid, with claimed revokers."""
        found: dict[str, tuple[dict[str, Any], set[str]]] = {}
        for client, node in self._reachable():
            try:
                graph = client.lineage(txid, "descendants", 1)
            except ApiError as exc:
                node.notes.append(f"lineage of {txid}: {exc}")
                continue
            for view in graph.get("nodes", []):
                other = view.get("txid") if isinstance(view, dict) else None
                if not isinstance(other, str) or other == txid:
                    continue
                _, revokers = found.setdefault(other, (view, set()))
                if isinstance(view.get("revoked_by"), str):
                    revokers.add(view["revoked_by"])
        return found

    def _majority_network(self, chains: list[HeaderChain | None]) -> str | None:
        """The network most nodes with a valid chain are on (ties: the first named), so
        one node claiming another network cannot steer the choice."""
        votes = [c.params.network for c in chains if c is not None]
        votes = votes or [n.network for n in self.report.nodes if n.network is not None]
        return max(dict.fromkeys(votes), key=votes.count) if votes else None

    def _survey(self, client: Client) -> HeaderChain | None:
        """Status and every header of one node; its checked chain, or None."""
        node = NodeReport(url=client.base_url)
        self.report.nodes.append(node)
        try:
            status = client.status()
            node.reachable = True
            node.network = client.network()
            if self.report.network not in (None, node.network):
                return None  # not fetched: another network than the one asked for
            headers = client.all_headers()
            chain = check_header_chain(headers, _params(node.network), self.clock)
        except NodeUnavailable as exc:
            node.reachable = False
            node.error = "unreachable: " + exc.message.removeprefix(f"{client.base_url}: ")
            return None
        except (ApiError, VerificationError) as exc:
            node.error = str(exc)
            return None
        if status.get("genesis_hash") != chain.headers[0].hash:
            node.notes.append("status names another genesis than its headers")
        node.height, node.tip_hash, node.chain_work = chain.height, chain.tip.hash, chain.work
        return chain

    def _find_records(self) -> dict[str, tuple[dict[str, Any], set[str]]]:
        """Every record any node lists for the digest, by txid, with claimed revokers."""
        found: dict[str, tuple[dict[str, Any], set[str]]] = {}
        for client, node in self._reachable():
            try:
                for view in client.records_all(digest=self.digest):
                    txid = view.get("txid")
                    if not isinstance(txid, str):
                        continue
                    _, revokers = found.setdefault(txid, (view, set()))
                    if isinstance(view.get("revoked_by"), str):
                        revokers.add(view["revoked_by"])
            except ApiError as exc:
                node.notes.append(f"records: {exc}")
        return found

    def _reachable(self) -> Iterator[tuple[Client, NodeReport]]:
        by_url = {node.url: node for node in self.report.nodes}
        for client in self.clients:
            node = by_url[client.base_url]
            if node.reachable and node.network == self.report.network:
                yield client, node

    def _prove(self, txid: str) -> tuple[ProvenTx | None, str | None, list[str]]:
        """The first proof of ``txid`` that verifies, who served it, and every failure."""
        assert self.chain is not None
        failures: list[str] = []
        for client, _ in self._reachable():
            try:
                return check_proof(client.proof(txid), txid, self.chain), client.base_url, []
            except (ApiError, VerificationError) as exc:
                failures.append(f"{client.base_url}: {exc}")
        return None, None, failures

    def verify_record(
        self, txid: str, view: dict[str, Any], revokers: set[str], *, mentions_digest: bool = True
    ) -> RecordReport:
        """Prove one record against the most-work chain: its inclusion, depth and any
        revocation; with ``mentions_digest``, it must also carry the digest verified."""
        assert self.chain is not None
        record = RecordReport(
            txid=txid, kind=_str(view.get("kind")), signer=_str(view.get("signer"))
        )
        proven, source, failures = self._prove(txid)
        if proven is None:
            record.reasons.append("no node served a proof that verifies")
            record.notes += failures
            return record
        tx, header = proven.tx, proven.header
        record.kind, record.signer, record.proof_from = tx.kind, tx.signer, source
        record.payload = dict(tx.payload)
        record.name = _str(tx.payload.get("name"))
        record.fields = matched_fields(tx, self.digest)
        record.height, record.block_hash, record.timestamp = (
            header.height,
            header.hash,
            header.timestamp,
        )
        record.confirmations = self.chain.depth(header.height)
        record.work_on_top = self.chain.work_from(header.height)
        record.verified = True
        if mentions_digest and not record.fields:
            record.reasons.append(f"the record does not mention {self.digest}")
        need = self.report.confirmations_required
        if record.confirmations < need:
            record.reasons.append(f"{record.confirmations} confirmation(s), {need} required")
        self._check_revoked(record, tx, revokers)
        return record

    def _check_revoked(self, record: RecordReport, tx: Transaction, revokers: set[str]) -> None:
        """Believe a node's "revoked" only with a proven revocation by the same signer."""
        for revoker in sorted(revokers):
            proven, _, failures = self._prove(revoker)
            problem = (
                "its proof does not verify" if proven is None else check_revocation(proven, tx)
            )
            if problem is None and proven is not None:
                record.revoked, record.revoked_by = True, revoker
                record.revocation_reason = _str(proven.tx.payload.get("reason"))
                reason = f": {record.revocation_reason}" if record.revocation_reason else ""
                record.reasons.append(f"revoked by {revoker}{reason}")
                return
            record.notes.append(f"a node claims revocation {revoker}, but {problem}")
            record.notes += failures


def _params(network: str) -> ConsensusParams:
    try:
        return params_for(network)
    except KeyError as exc:
        raise VerificationError(f"unknown network {network!r}") from exc


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
