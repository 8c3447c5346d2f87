"""``Database.execute_rows``: many rows per statement, exactly as one statement per row.

The chunking must cover every row once, in order, whatever the count (the chunk
boundaries are where a lost or repeated row would hide), and a statement of many rows
must change what the same statement run row by row changes: duplicates included, for
``INSERT OR IGNORE``, upserts, ``UPDATE ... FROM`` and ``DELETE ... IN``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.store.db import MAX_ROWS, Database, StoreError, _chunk_sizes

CREATE = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0)"


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """Two fresh writer databases: one for ``execute_rows``, one for row by row."""
    pair = (
        Database(tmp_path / "bulk.db", writer=True, durable=False),
        Database(tmp_path / "single.db", writer=True, durable=False),
    )
    for db in pair:
        db.execute(CREATE)
    yield pair
    for db in pair:
        db.close()


def rows_of(db: Database) -> list[tuple[int, str, int]]:
    return [tuple(r) for r in db.all("SELECT k, v, n FROM kv ORDER BY k")]  # type: ignore[misc]


# --- chunk sizes ---------------------------------------------------------------------------


@given(st.integers(0, 20 * MAX_ROWS), st.sampled_from([1, 2, 3, 100, MAX_ROWS]))
def test_chunk_sizes_cover_the_count_in_caps_then_falling_powers_of_two(
    count: int, cap: int
) -> None:
    sizes = list(_chunk_sizes(count, cap))
    assert sum(sizes) == count
    whole = count // cap
    assert sizes[:whole] == [cap] * whole
    rest = sizes[whole:]
    assert all(size & (size - 1) == 0 and 0 < size < cap for size in rest)
    assert rest == sorted(set(rest), reverse=True)  # each power at most once


def test_a_few_statement_texts_serve_every_count() -> None:
    texts = {size for count in range(5 * MAX_ROWS) for size in _chunk_sizes(count, MAX_ROWS)}
    assert len(texts) == MAX_ROWS.bit_length()


# --- the same changes as row by row --------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, MAX_ROWS - 1, MAX_ROWS, MAX_ROWS + 1, 3 * MAX_ROWS + 37])
def test_insert_writes_every_row_in_order(dbs: tuple[Database, Database], count: int) -> None:
    bulk, _ = dbs
    rows = [(k, f"v{k}") for k in range(count)]
    assert bulk.execute_rows("INSERT INTO kv (k, v) VALUES {rows}", rows) == count
    assert rows_of(bulk) == [(k, v, 0) for k, v in rows]


UPSERT = " ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = n + 1"
keys = st.integers(0, 40)
row_lists = st.lists(st.tuples(keys, st.text(max_size=3)), max_size=3 * MAX_ROWS // 2)


@settings(max_examples=40, deadline=None)
@given(first=row_lists, second=row_lists)
def test_statements_change_what_row_by_row_changes(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[tuple[int, str]],
    second: list[tuple[int, str]],
) -> None:
    """Each statement form, on rows with repeated keys spanning chunk boundaries."""
    path = tmp_path_factory.mktemp("rows")
    bulk = Database(path / "bulk.db", writer=True, durable=False)
    single = Database(path / "single.db", writer=True, durable=False)
    statements = [
        (
            "INSERT OR IGNORE INTO kv (k, v) VALUES {rows}",
            "INSERT OR IGNORE INTO kv (k, v) VALUES (?, ?)",
            first,
        ),
        (
            "INSERT INTO kv (k, v) VALUES {rows}" + UPSERT,
            "INSERT INTO kv (k, v) VALUES (?, ?)" + UPSERT,
            second,
        ),
        (
            "UPDATE kv SET n = n + 10 FROM (VALUES {rows}) AS r WHERE k = r.column1",
            "UPDATE kv SET n = n + 10 WHERE k = ?",
            sorted({(k,) for k, _ in first}),  # UPDATE FROM uses one row per target
        ),
        (
            "DELETE FROM kv WHERE k IN (VALUES {rows})",
            "DELETE FROM kv WHERE k = ?",
            [(k,) for k, _ in second[::2]],
        ),
    ]
    try:
        for db in (bulk, single):
            db.execute(CREATE)
        for many, one, rows in statements:
            changed = bulk.execute_rows(many, rows)
            assert changed == single.executemany(one, rows)
            assert rows_of(bulk) == rows_of(single)
    finally:
        bulk.close()
        single.close()


def test_a_failing_chunk_raises_store_error_and_its_transaction_keeps_nothing(
    dbs: tuple[Database, Database],
) -> None:
    bulk, _ = dbs
    rows = [(k, "v") for k in range(2 * MAX_ROWS)] + [(0, "again")]  # the last chunk fails
    bulk.execute("BEGIN")
    with pytest.raises(StoreError, match="UNIQUE"):
        bulk.execute_rows("INSERT INTO kv (k, v) VALUES {rows}", rows)
    bulk.execute("ROLLBACK")
    assert rows_of(bulk) == []


def test_the_writer_keeps_statement_journals_in_memory(tmp_path: Path) -> None:
    writer = Database(tmp_path / "w.db", writer=True)
    try:
        assert writer.one("PRAGMA temp_store") == (2,)  # 2 is MEMORY
    finally:
        writer.close()
