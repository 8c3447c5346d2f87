"""The SQLite store against a plain in-memory model (py-evm checks its JournalDB this way).

The model is just the list of active blocks plus the mempool; every index the store
keeps is recomputed from it by brute force. Random runs mine blocks of fresh valid
records (lineage, attestations, revocations by the subject's signer), reorganise inside
one ``transaction()`` (sometimes aborting it), and restart the store; after every step
each query must answer exactly what the model says.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from consensus.block import Block, Header
from consensus.keys import public_key_hex
from consensus.ledger import MemoryLedger, RecordInfo
from consensus.params import REGTEST
from consensus.payloads import ROLES
from consensus.tx import Transaction
from node.store import Store
from tests.consensus.conftest import digest, key_from_seed, make_tx
from tests.helpers.chain import connect_block, mempool_add
from tests.node.test_store import GENESIS, WORK, make_block

KEYS: dict[str, Ed25519PrivateKey] = {
    public_key_hex(k): k for k in (key_from_seed(n) for n in (11, 12, 13))
}
SIGNERS = sorted(KEYS)
DIGESTS = [digest(f"artifact-{n}") for n in range(4)]
KINDS = ("dataset", "model", "inference", "attestation", "revocation")
DIGEST_FIELDS = ("digest", "code_digest", "input_digest", "output_digest")
Edge = tuple[str, str, str]


class AbortError(Exception):
    """Raised inside a reorg's transaction to check that nothing of it stays."""


def edges_of(tx: Transaction) -> set[Edge]:
    return {
        (tx.txid, parent, "revokes" if tx.kind == "revocation" else role)
        for parent, role in tx.refs()
    }


def _some(data: st.DataObject, items: list[str]) -> list[str]:
    """Up to two distinct items (none if there are none)."""
    return data.draw(st.lists(st.sampled_from(items), max_size=2, unique=True)) if items else []


def draw_payload(data: st.DataObject, kind: str, ledger: MemoryLedger) -> dict[str, Any] | None:
    """A payload of ``kind`` whose references are valid on ``ledger``; ``None`` when the
    ledger holds nothing such a record could reference. Digests come from a small pool,
    so that several records share one."""
    records = ledger.records

    def of(*kinds: str) -> list[str]:
        return [txid for txid, info in records.items() if info.kind in kinds]

    def pick() -> str:
        return data.draw(st.sampled_from(DIGESTS))

    if kind == "dataset":
        parents = _some(data, of("dataset"))
        return {"name": "d", "digest": pick(), **({"derived_from": parents} if parents else {})}
    if kind == "model":
        inputs = [
            {"ref": ref, "role": data.draw(st.sampled_from(ROLES))}
            for ref in _some(data, of("dataset", "model"))
        ]
        return {"name": "m", "digest": pick(), "code_digest": pick(), "inputs": inputs}
    if kind == "inference":
        models = of("model")
        if not models:
            return None
        return {
            "model": data.draw(st.sampled_from(models)),
            "input_digest": pick(),
            "output_digest": pick(),
        }
    if kind == "attestation":
        subjects = of(*KINDS)
        return (
            {"subject": data.draw(st.sampled_from(subjects)), "type": "audit", "result": {}}
            if subjects
            else None
        )
    revocable = [txid for txid in of(*KINDS[:4]) if txid not in ledger.revoked]
    return {"subject": data.draw(st.sampled_from(revocable))} if revocable else None


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "chain.sqlite"
        self.store = Store.open(self.path, REGTEST, durable=False)
        self.chain: list[Block] = [GENESIS]
        self.headers: list[tuple[Header, int, str, int | None]] = [
            (GENESIS.header, WORK, "valid", 0)
        ]
        self.mempool: list[tuple[Transaction, int]] = []
        self.made: list[Transaction] = []
        self.nonces = itertools.count()
        self.salts = itertools.count(1)
        self.sequences = itertools.count(1)
        self.dirty = False

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    # --- building valid records ----------------------------------------------------------

    def ledger(self, blocks: list[Block]) -> MemoryLedger:
        return MemoryLedger(tx for block in blocks for tx in block.transactions)

    def sign(self, signer: str, kind: str, payload: dict[str, Any]) -> Transaction:
        tx = make_tx(KEYS[signer], kind, payload, nonce=next(self.nonces))
        self.made.append(tx)
        return tx

    def fresh_tx(self, data: st.DataObject, ledger: MemoryLedger) -> Transaction:
        """One new transaction valid on ``ledger`` (applied to it)."""
        kind = data.draw(st.sampled_from(KINDS))
        payload = draw_payload(data, kind, ledger)
        if payload is None:  # nothing to reference yet
            kind, payload = "dataset", draw_payload(data, "dataset", ledger)
        assert payload is not None
        if kind == "revocation":
            signer = ledger.records[payload["subject"]].signer
        else:
            signer = data.draw(st.sampled_from(SIGNERS))
        tx = self.sign(signer, kind, payload)
        ledger.apply(tx)  # the consensus rules agree that it is valid here
        return tx

    def fresh_block(
        self, data: st.DataObject, parent: Header, ledger: MemoryLedger, start: list[Transaction]
    ) -> Block:
        count = data.draw(st.integers(0, 3))
        txs = start + [self.fresh_tx(data, ledger) for _ in range(count)]
        return make_block(parent, txs, salt=next(self.salts))

    def put(self, block: Block) -> tuple[Header, int, str, int | None]:
        entry = (block.header, (block.height + 1) * WORK, "valid", next(self.sequences))
        self.store.put_header(*entry)
        self.store.put_block(block)
        return entry

    def connect(self, block: Block) -> None:
        connect_block(self.store, block)
        mined = {tx.txid for tx in block.transactions}
        self.mempool = [(tx, ms) for tx, ms in self.mempool if tx.txid not in mined]

    # --- rules -----------------------------------------------------------------------------

    @rule(data=st.data(), from_mempool=st.booleans())
    def mine(self, data: st.DataObject, from_mempool: bool) -> None:
        ledger = self.ledger(self.chain)
        start = [tx for tx, _ in self.mempool] if from_mempool else []
        for tx in start:
            ledger.apply(tx)
        block = self.fresh_block(data, self.chain[-1].header, ledger, start)
        with self.store.transaction():  # as the node does: one commit per block
            self.headers.append(self.put(block))
            self.connect(block)
        self.chain.append(block)
        self.dirty = True

    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        """A new root dataset into the mempool (always valid: fresh nonce, no refs)."""
        tx = self.sign(
            data.draw(st.sampled_from(SIGNERS)), "dataset", {"name": "p", "digest": DIGESTS[0]}
        )
        received = data.draw(st.integers(0, 10**6))
        mempool_add(self.store, tx, received)
        self.mempool.append((tx, received))
        self.dirty = True

    @precondition(lambda self: len(self.chain) > 1)
    @rule(data=st.data(), replay=st.booleans(), abort=st.booleans())
    def reorg(self, data: st.DataObject, replay: bool, abort: bool) -> None:
        """Disconnect k blocks and connect a new branch, all in one transaction."""
        k = data.draw(st.integers(1, min(3, len(self.chain) - 1)))
        fork, old = self.chain[:-k], self.chain[-k:]
        ledger = self.ledger(fork)
        # Replaying the old branch's transactions, in order, at the fork stays valid.
        start = [tx for block in old for tx in block.transactions] if replay else []
        for tx in start:
            ledger.apply(tx)
        branch: list[Block] = []
        for _ in range(data.draw(st.integers(1, k + 1))):
            parent = branch[-1].header if branch else fork[-1].header
            branch.append(self.fresh_block(data, parent, ledger, start if not branch else []))
        saved_mempool = list(self.mempool)
        try:
            with self.store.transaction():
                for block in reversed(old):
                    self.store.disconnect_block(block)
                entries = []
                for block in branch:
                    entries.append(self.put(block))
                    self.connect(block)
                if abort:
                    raise AbortError
        except AbortError:
            self.mempool = saved_mempool
            return
        self.headers += entries
        self.chain = fork + branch
        self.dirty = True

    @precondition(lambda self: self.dirty)
    @rule()
    def reopen(self) -> None:
        """Restart; only after a change, as reopening an unchanged store tests nothing new."""
        self.store.close()
        self.store = Store.open(self.path, REGTEST, durable=False)
        self.dirty = False

    # --- invariants ------------------------------------------------------------------------

    def confirmed(self) -> dict[str, tuple[Transaction, str, int, int]]:
        return {
            tx.txid: (tx, block.hash, block.height, index)
            for block in self.chain
            for index, tx in enumerate(block.transactions)
        }

    @invariant()
    def chain_matches(self) -> None:
        store = self.store
        assert store.tip() == (self.chain[-1].hash, len(self.chain) - 1)
        assert store.active_hashes(0, 10**6) == [block.hash for block in self.chain]
        assert store.load_headers() == sorted(self.headers, key=lambda e: e[0].height)
        assert store.mempool_load() == self.mempool

    @invariant()
    def ledger_view_matches(self) -> None:
        confirmed = self.confirmed()
        revoked = {
            tx.payload["subject"]: txid
            for txid, (tx, *_) in confirmed.items()
            if tx.kind == "revocation"
        }
        for tx in self.made:
            where = confirmed.get(tx.txid)
            info = RecordInfo(tx.kind, tx.signer) if where else None
            assert self.store.record(tx.txid) == info
            assert self.store.nonce_used(tx.signer, tx.nonce) == (where is not None)
            assert self.store.tx_location(tx.txid) == (where[1:] if where else None)
            assert self.store.is_revoked(tx.txid) == (tx.txid in revoked)
            assert self.store.revoked_by(tx.txid) == revoked.get(tx.txid)

    @invariant()
    def queries_match(self) -> None:
        newest = sorted(self.confirmed().values(), key=lambda c: (-c[2], -c[3]))
        filters: list[dict[str, str]] = [{}]
        filters += [{"digest": d} for d in DIGESTS] + [{"kind": k} for k in KINDS]
        filters += [{"signer": s} for s in SIGNERS] + [{"kind": "model", "digest": DIGESTS[1]}]
        for query in filters:
            expected = [c[0].txid for c in newest if _matches(c[0], query)]
            rows, cursor = self.store.records(**query, limit=1000)
            assert ([row.txid for row in rows], cursor) == (expected, None), query
        everything = [c[0].txid for c in newest]
        assert self.paged_txids() == everything
        txids = [tx.txid for tx in self.made]
        edges = sorted(set().union(*(edges_of(c[0]) for c in newest)))
        assert self.store.parents(txids) == edges
        assert self.store.children(txids) == edges
        assert self.store.parents(txids[::2]) == [e for e in edges if e[0] in txids[::2]]
        assert self.store.children(txids[1::2]) == [e for e in edges if e[1] in txids[1::2]]

    def paged_txids(self) -> list[str]:
        found: list[str] = []
        cursor: str | None = None
        while True:
            rows, cursor = self.store.records(limit=3, cursor=cursor)
            found += [row.txid for row in rows]
            if cursor is None:
                return found


def _matches(tx: Transaction, query: dict[str, str]) -> bool:
    if "kind" in query and tx.kind != query["kind"]:
        return False
    if "signer" in query and tx.signer != query["signer"]:
        return False
    return "digest" not in query or query["digest"] in [tx.payload.get(f) for f in DIGEST_FIELDS]


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
