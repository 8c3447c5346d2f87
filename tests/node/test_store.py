"""The SQLite store: restart safety, exact undo of a block, and the record queries.

The store validates nothing, so blocks here are built directly (no proof of work) from
real signed transactions. The helpers at the top are shared with ``test_store_model``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.block import ZERO_HASH, Block, Header
from consensus.genesis import genesis_block
from consensus.ledger import RecordInfo
from consensus.merkle import merkle_root
from consensus.params import DEVNET, REGTEST
from consensus.pow import bits_to_target, block_work
from consensus.tx import Transaction
from node.store import SCHEMA_VERSION, Store, StoreError, chainindex, checkpoint
from node.store import store as store_module
from node.store.schema import MIGRATIONS
from tests.consensus.conftest import (
    ALICE,
    BOB,
    dataset_payload,
    digest,
    make_tx,
)
from tests.helpers.chain import connect_block, mempool_add

WORK = block_work(bits_to_target(REGTEST.pow_limit_bits))
"""The work of every regtest block: block ``h`` has chain work ``(h + 1) * WORK``."""

GENESIS = genesis_block(REGTEST)

# --- helpers (shared with test_store_model) ------------------------------------------------


def make_block(parent: Header, txs: Sequence[Transaction], salt: int = 0) -> Block:
    """A block on ``parent``; ``salt`` tells apart siblings with the same transactions."""
    header = Header(
        version=1,
        height=parent.height + 1,
        prev_hash=parent.hash,
        merkle_root=merkle_root([tx.leaf_bytes for tx in txs]).hex(),
        timestamp=parent.timestamp + 1_000 + salt,
        bits=REGTEST.pow_limit_bits,
        miner=ZERO_HASH,
        nonce=salt,
    )
    return Block(header=header, transactions=tuple(txs))


def put(store: Store, block: Block, status: str = "valid", sequence: int | None = 1) -> None:
    """Store a regtest block's header (with its chain work) and body."""
    store.put_header(block.header, (block.height + 1) * WORK, status, sequence)
    store.put_block(block)


def extend(store: Store, block: Block, sequence: int | None = 1) -> None:
    """Store ``block`` and connect it on the tip."""
    put(store, block, sequence=sequence)
    connect_block(store, block)


INDEX_TABLES = {
    "active": "height",
    "confirmed": "txid",
    "digests": "digest, txid, field",
    "edges": "child, parent, role",
    "revocations": "subject",
}


def dump(path: Path, tables: Iterable[str] = INDEX_TABLES) -> dict[str, list[Any]]:
    """Every row of the given tables, read on a separate connection."""
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {INDEX_TABLES.get(t, 1)}").fetchall()
            for t in tables
        }
    finally:
        conn.close()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "chain.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    with Store.open(path, REGTEST) as opened:
        yield opened


def tx(key: Ed25519PrivateKey, kind: str, payload: dict[str, Any]) -> Transaction:
    return make_tx(key, kind, payload)


def connect_lineage(store: Store, lineage: dict[str, Transaction]) -> list[Block]:
    """Two blocks: the datasets, then everything else."""
    txs = list(lineage.values())
    first = make_block(GENESIS.header, txs[:3])
    second = make_block(first.header, txs[3:])
    extend(store, first)
    extend(store, second, sequence=2)
    return [first, second]


# --- opening and restarting --------------------------------------------------------------


def test_new_store_starts_at_genesis(store: Store, path: Path) -> None:
    assert store.tip() == (GENESIS.hash, 0)
    assert store.active_hashes(0, 10) == [GENESIS.hash]
    assert store.load_headers() == [(GENESIS.header, WORK, "valid", 0)]
    assert store.get_block(GENESIS.hash) == GENESIS
    assert store.get_meta("network") == "regtest"
    assert store.get_meta("genesis_hash") == GENESIS.hash
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_reopen_keeps_everything(path: Path, lineage: dict[str, Transaction]) -> None:
    with Store.open(path, REGTEST) as store:
        blocks = connect_lineage(store, lineage)
        side = make_block(GENESIS.header, [], salt=7)
        store.put_header(side.header, 2 * WORK, "header", None)
        pending = tx(BOB, "dataset", dataset_payload("pending"))
        mempool_add(store, pending, 1234)
        store.peer_upsert("http://peer:8000", node_id="abc", last_seen=99, source="seed")
        before = dump(path)
    with Store.open(path, REGTEST) as store:
        assert store.tip() == (blocks[1].hash, 2)
        assert store.active_hashes(0, 10) == [GENESIS.hash, blocks[0].hash, blocks[1].hash]
        assert store.load_headers() == [
            (GENESIS.header, WORK, "valid", 0),
            (blocks[0].header, 2 * WORK, "valid", 1),
            (side.header, 2 * WORK, "header", None),
            (blocks[1].header, 3 * WORK, "valid", 2),
        ]
        assert [store.get_block(b.hash) for b in blocks] == blocks
        assert not store.has_block(side.hash)
        assert store.mempool_load() == [(pending, 1234)]
        assert store.peers_load() == [
            {
                "url": "http://peer:8000",
                "node_id": "abc",
                "last_seen": 99,
                "failures": 0,
                "discouraged_until": None,
                "reason": None,
                "source": "seed",
            }
        ]
        assert dump(path) == before


def test_a_version_1_store_is_upgraded_in_place(
    path: Path, lineage: dict[str, Transaction], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as old_code:
        old_code.setattr(store_module, "MIGRATIONS", MIGRATIONS[:1])
        old_code.setattr(store_module, "SCHEMA_VERSION", 1)
        old_code.setattr(chainindex, "extend", lambda *_: 0)  # (a version 3 table)
        with Store.open(path, REGTEST) as old:
            first, second = connect_lineage(old, lineage)
            assert old.get_meta("schema_version") == "1"
        before = dump(path)
    with Store.open(path, REGTEST) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert dump(path) == before
        model = lineage["model"]
        rows, _ = store.records(digest=model.payload["digest"])
        assert [r.txid for r in rows] == [model.txid]
        store.disconnect_block(second)
        store.disconnect_block(first)
        assert dump(path)["digests"] == []
    conn = sqlite3.connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "digests" in names
    assert not names & {"digests_by_txid", "digests_v2"}


def test_other_network_is_refused(path: Path) -> None:
    Store.open(path, REGTEST).close()
    with pytest.raises(StoreError, match="devnet"):
        Store.open(path, DEVNET)


def test_newer_schema_is_refused(path: Path) -> None:
    with Store.open(path, REGTEST) as store:
        store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer"):
        Store.open(path, REGTEST)


def test_a_file_that_is_not_a_database_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store.open(path, REGTEST)


def test_closed_store_raises_store_error(path: Path) -> None:
    store = Store.open(path, REGTEST)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.tip()


# --- the active chain ----------------------------------------------------------------------


def test_connect_then_disconnect_restores_every_index(
    store: Store, path: Path, lineage: dict[str, Transaction]
) -> None:
    empty = dump(path)
    first, second = connect_lineage(store, lineage)
    after_first = dump(path)
    assert after_first != empty
    store.disconnect_block(second)
    store.disconnect_block(first)
    assert dump(path) == empty
    assert store.tip() == (GENESIS.hash, 0)
    assert all(store.record(t.txid) is None for t in lineage.values())
    # The bodies stay: a block can be connected again after a reorg back.
    assert store.get_block(first.hash) == first
    connect_block(store, first)
    connect_block(store, second)
    assert dump(path)["confirmed"] == after_first["confirmed"]


def test_connect_records_every_index(store: Store, lineage: dict[str, Transaction]) -> None:
    first, second = connect_lineage(store, lineage)
    model = lineage["model"]
    assert store.record(model.txid) == RecordInfo("model", model.signer)
    assert store.nonce_used(model.signer, model.nonce)
    assert not store.nonce_used(model.signer, model.nonce + 10**9)
    assert store.tx_location(model.txid) == (second.hash, 2, 0)
    assert store.tx_location(lineage["held_out"].txid) == (first.hash, 1, 2)
    assert store.get_confirmed_tx(model.txid) == model
    assert store.get_confirmed_tx(model.txid).leaf_bytes == model.leaf_bytes  # type: ignore[union-attr]
    assert store.block_txids(second.hash) == [t.txid for t in second.transactions]
    assert store.block_txids("ab" * 32) is None
    hashes = [second.hash, "ab" * 32, GENESIS.hash, first.hash]
    assert store.header_raws(hashes) == [second.header.raw, GENESIS.header.raw, first.header.raw]
    assert store.get_header(first.hash) == first.header
    assert store.is_revoked(lineage["raw"].txid)
    assert not store.is_revoked(lineage["clean"].txid)


def test_connect_must_extend_the_tip(store: Store, lineage: dict[str, Transaction]) -> None:
    first, second = connect_lineage(store, lineage)
    sibling = make_block(GENESIS.header, [], salt=3)
    put(store, sibling)
    with pytest.raises(StoreError, match="does not extend"):
        connect_block(store, sibling)
    with pytest.raises(StoreError, match="only disconnect the tip"):
        store.disconnect_block(first)
    assert store.tip() == (second.hash, 2)


def test_genesis_cannot_be_disconnected(store: Store) -> None:
    with pytest.raises(StoreError, match="not genesis"):
        store.disconnect_block(GENESIS)


def test_connect_needs_the_header(store: Store) -> None:
    block = make_block(GENESIS.header, [])
    with pytest.raises(StoreError, match="put_header"):
        connect_block(store, block)
    assert store.tip() == (GENESIS.hash, 0)


def test_connect_removes_mined_txs_from_the_mempool(
    store: Store, lineage: dict[str, Transaction]
) -> None:
    pending = tx(BOB, "dataset", dataset_payload("pending"))
    for n, t in enumerate([lineage["raw"], pending, lineage["clean"]]):
        mempool_add(store, t, n)
    extend(store, make_block(GENESIS.header, [lineage["raw"], lineage["clean"]]))
    assert store.mempool_load() == [(pending, 1)]


def test_header_status_changes(store: Store) -> None:
    block = make_block(GENESIS.header, [])
    store.put_header(block.header, 2 * WORK, "header", None)
    store.set_header_status(block.hash, "data", 5)
    store.set_header_status(block.hash, "invalid")
    assert store.load_headers()[1] == (block.header, 2 * WORK, "invalid", 5)
    with pytest.raises(StoreError, match="unknown header"):
        store.set_header_status("cd" * 32, "valid")
    with pytest.raises(StoreError, match="status"):
        store.set_header_status(block.hash, "bogus")
    # Storing a known header again updates it but keeps the sequence it had.
    store.put_header(block.header, 2 * WORK, "data", None)
    assert store.load_headers()[1] == (block.header, 2 * WORK, "data", 5)


# --- transactions --------------------------------------------------------------------------


def test_failed_transaction_leaves_nothing(
    store: Store, path: Path, lineage: dict[str, Transaction]
) -> None:
    before = dump(path, [*INDEX_TABLES, "headers", "blocks", "mempool", "meta"])
    block = make_block(GENESIS.header, list(lineage.values()))
    with pytest.raises(RuntimeError), store.transaction():
        extend(store, block)
        mempool_add(store, tx(BOB, "dataset", dataset_payload("p")), 1)
        store.set_meta("note", "x")
        raise RuntimeError("power cut")
    assert dump(path, before) == before
    assert store.tip() == (GENESIS.hash, 0)
    assert not store.has_block(block.hash)


def test_reorg_in_one_transaction_is_atomic(
    store: Store, path: Path, lineage: dict[str, Transaction]
) -> None:
    first, second = connect_lineage(store, lineage)
    branch = make_block(GENESIS.header, [lineage["raw"]], salt=1)
    put(store, branch)
    with store.transaction():
        store.disconnect_block(second)
        store.disconnect_block(first)
        connect_block(store, branch)
        # A reader on its own connection still sees the old chain until the commit.
        with store.reader() as reader:
            assert reader.tip() == (second.hash, 2)
    assert store.tip() == (branch.hash, 1)
    assert store.tx_location(lineage["raw"].txid) == (branch.hash, 1, 0)
    assert store.record(lineage["clean"].txid) is None


def test_failed_inner_transaction_rolls_back_only_itself(store: Store) -> None:
    with store.transaction():
        store.set_meta("outer", "kept")
        with pytest.raises(RuntimeError), store.transaction():
            store.set_meta("inner", "dropped")
            raise RuntimeError
    assert store.get_meta("outer") == "kept"
    assert store.get_meta("inner") is None


# --- record queries ------------------------------------------------------------------------


def test_records_newest_first_with_filters(store: Store, lineage: dict[str, Transaction]) -> None:
    connect_lineage(store, lineage)
    order = list(lineage)[::-1]  # newest first
    rows, cursor = store.records()
    assert [r.txid for r in rows] == [lineage[n].txid for n in order]
    assert cursor is None
    by_kind, _ = store.records(kind="dataset")
    assert [r.txid for r in by_kind] == [lineage[n].txid for n in ("held_out", "clean", "raw")]
    by_signer, _ = store.records(signer=lineage["held_out"].signer)
    assert [r.txid for r in by_signer] == [
        lineage[n].txid for n in ("audit", "inference", "held_out")
    ]
    both, _ = store.records(kind="dataset", signer=lineage["held_out"].signer)
    assert [r.txid for r in both] == [lineage["held_out"].txid]


def test_records_by_every_digest_field(store: Store, lineage: dict[str, Transaction]) -> None:
    connect_lineage(store, lineage)
    model, inference = lineage["model"], lineage["inference"]
    for value, expected in [
        (model.payload["digest"], model),
        (model.payload["code_digest"], model),
        (inference.payload["input_digest"], inference),
        (inference.payload["output_digest"], inference),
        (lineage["raw"].payload["digest"], lineage["raw"]),
    ]:
        rows, _ = store.records(digest=value)
        assert [r.tx for r in rows] == [expected]
    assert store.records(digest=digest("nothing")) == ([], None)
    assert store.records(digest=model.payload["digest"], kind="dataset") == ([], None)


def test_records_pagination(store: Store, lineage: dict[str, Transaction]) -> None:
    connect_lineage(store, lineage)
    everything, _ = store.records(limit=100)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        rows, cursor = store.records(limit=3, cursor=cursor)
        seen += [r.txid for r in rows]
        pages += 1
        if cursor is None:
            break
    assert seen == [r.txid for r in everything]
    assert pages == 3
    with pytest.raises(ValueError, match="cursor"):
        store.records(cursor="not-a-cursor")
    with pytest.raises(ValueError, match="limit"):
        store.records(limit=0)


def test_record_row_and_revoked_by(store: Store, lineage: dict[str, Transaction]) -> None:
    first, second = connect_lineage(store, lineage)
    raw, revoke = lineage["raw"], lineage["revoke"]
    row = store.record_row(raw.txid)
    assert row is not None
    assert (row.tx, row.block_hash, row.height, row.index) == (raw, first.hash, 1, 0)
    assert row.revoked_by == revoke.txid
    assert store.revoked_by(raw.txid) == revoke.txid
    assert store.revoked_by(revoke.txid) is None
    assert store.record_row("ef" * 32) is None
    store.disconnect_block(second)
    assert store.revoked_by(raw.txid) is None
    assert store.record_row(raw.txid).revoked_by is None  # type: ignore[union-attr]


def test_lineage_parents_and_children(store: Store, lineage: dict[str, Transaction]) -> None:
    connect_lineage(store, lineage)
    ids = {name: t.txid for name, t in lineage.items()}
    assert store.parents([ids["model"]]) == sorted(
        [
            (ids["model"], ids["clean"], "training_data"),
            (ids["model"], ids["held_out"], "validation_data"),
        ]
    )
    assert store.parents([ids["clean"], ids["revoke"], ids["raw"]]) == sorted(
        [(ids["clean"], ids["raw"], "derived_from"), (ids["revoke"], ids["raw"], "revokes")]
    )
    assert store.children([ids["model"]]) == sorted(
        [(ids["inference"], ids["model"], "model"), (ids["audit"], ids["model"], "subject")]
    )
    assert store.children([ids["raw"]]) == sorted(
        [(ids["clean"], ids["raw"], "derived_from"), (ids["revoke"], ids["raw"], "revokes")]
    )
    assert store.parents([]) == []
    assert store.parents(["00" * 32] * 1200) == []  # more than one batch of variables


# --- mempool and peers -----------------------------------------------------------------------


def test_mempool_keeps_arrival_order(store: Store) -> None:
    txs = [tx(ALICE, "dataset", dataset_payload(f"m{n}")) for n in range(4)]
    for n, t in enumerate(txs):
        mempool_add(store, t, 100 - n)  # received times need not be monotonic
    mempool_add(store, txs[0], 999)  # a duplicate keeps its first arrival
    store.mempool_remove([txs[1].txid, "00" * 32])
    assert store.mempool_load() == [(txs[0], 100), (txs[2], 98), (txs[3], 97)]
    mempool_add(store, txs[1], 5)
    assert [t for t, _ in store.mempool_load()] == [txs[0], txs[2], txs[3], txs[1]]


def test_mempool_add_is_committed_at_once(store: Store, path: Path) -> None:
    pending = tx(ALICE, "dataset", dataset_payload("durable"))
    mempool_add(store, pending, 7)
    assert [row[1] for row in dump(path, ["mempool"])["mempool"]] == [pending.txid]


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from consensus.keys import private_key_from_seed
from consensus.params import REGTEST
from consensus.tx import sign_tx
from node.store import Store

payload = {"name": "survivor", "digest": "sha256:" + "ab" * 32}
key = private_key_from_seed(bytes(32))
tx = sign_tx(key, network="regtest", kind="dataset", payload=payload, nonce=1, timestamp=0)
store = Store.open(Path(sys.argv[1]), REGTEST)
store.mempool_add_many([tx], 42)
os.kill(os.getpid(), signal.SIGKILL)  # no close(), no checkpoint: as kill -9 would
"""


def test_an_acknowledged_tx_survives_kill_9(path: Path) -> None:
    Store.open(path, REGTEST).close()
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    with Store.open(path, REGTEST) as store:
        [(pending, received)] = store.mempool_load()
    assert (pending.payload["name"], received) == ("survivor", 42)


def test_peers(store: Store) -> None:
    store.peer_upsert("http://a", source="seed")
    store.peer_upsert("http://a", failures=2, discouraged_until=50, reason="bad-merkle-root")
    store.peer_upsert("http://b")
    peer = store.peer_get("http://a")
    assert peer is not None
    assert (peer["source"], peer["failures"], peer["reason"]) == ("seed", 2, "bad-merkle-root")
    assert [p["url"] for p in store.peers_load()] == ["http://a", "http://b"]
    store.peer_delete("http://a")
    assert store.peer_get("http://a") is None
    with pytest.raises(StoreError, match="unknown peer fields"):
        store.peer_upsert("http://b", colour="red")


# --- readers -------------------------------------------------------------------------------


def test_reader_in_another_thread(store: Store, lineage: dict[str, Transaction]) -> None:
    connect_lineage(store, lineage)
    results: list[object] = []
    with store.reader() as reader:

        def read() -> None:
            with reader.snapshot():
                results.append(reader.tip())
                results.append(reader.records(kind="model")[0][0].tx)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        with pytest.raises(StoreError, match="readonly"):
            reader._db.execute("INSERT INTO meta VALUES ('x', 'y')")  # query_only
    assert results == [store.tip(), lineage["model"]]


def test_block_json_bytes_is_the_block_json_form(
    store: Store, lineage: dict[str, Transaction]
) -> None:
    """Served blocks are spliced from stored texts: they must equal the parsed JSON form."""
    block = make_block(genesis_block(REGTEST).header, list(lineage.values())[:3])
    put(store, block)
    raw = store.block_json_bytes(block.hash, with_header_hex=True)
    assert raw is not None
    assert json.loads(raw) == block.to_json(with_header_hex=True)
    assert Block.from_json(json.loads(raw)) == block
    assert store.block_json_bytes("00" * 32) is None


# --- checkpoints ---------------------------------------------------------------------------


def test_the_log_is_copied_into_the_database_off_the_writer_thread(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "CHECKPOINT_PAGES", 8)
    monkeypatch.setattr(checkpoint, "POKE_INTERVAL_S", 0.0)
    with Store.open(path, REGTEST) as store:
        empty = path.stat().st_size
        for n in range(20):
            store.mempool_add_many(
                [tx(ALICE, "dataset", dataset_payload(f"log-{n}-{i}")) for i in range(10)], n
            )
        deadline = time.monotonic() + 10
        while path.stat().st_size <= empty and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.stat().st_size > empty, "no checkpoint copied the log into the database"
        assert len(store.mempool_load()) == 200
    assert not [t for t in threading.enumerate() if t.name == "checkpoint"]
