"""The SQLite reader: inline within its budget, on a thread past it, stopped at the deadline.

A runaway query must not hold the event loop (other requests, health checks) for longer than
the inline budget, and must not run past the store's deadline anywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from pathlib import Path

import pytest

from app.records.sqlite_reader import SqliteReader

#: Counts to ``?`` one VM step at a time: as slow as the argument asks.
COUNT_TO = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "records.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE loans (patron TEXT, title TEXT)")
    conn.executemany("INSERT INTO loans VALUES (?, ?)", [("P1", "A"), ("P1", "B"), ("P2", "C")])
    conn.commit()
    conn.close()
    return str(path)


async def test_a_quick_read_runs_inline(database: str) -> None:
    reader = SqliteReader(database, timeout=5)
    try:
        rows = await reader.fetch("SELECT title FROM loans WHERE patron = ? ORDER BY 1", ("P1",))
    finally:
        await reader.close()
    assert rows == [("A",), ("B",)]
    assert reader.moved_to_thread == 0


async def test_a_read_over_budget_moves_to_a_thread_and_the_loop_keeps_running(
    database: str,
) -> None:
    reader = SqliteReader(database, timeout=30, inline_budget=0.005)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.01)
        rows = await reader.fetch(COUNT_TO, (3_000_000,))
    finally:
        task.cancel()
        await reader.close()
    assert rows == [(3_000_000,)]
    assert reader.moved_to_thread == 1
    # The loop was never held for long: the longest gap between ticks is far below the read.
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 10
    assert max(gaps) < 0.25


async def test_a_read_past_the_deadline_is_stopped_by_sqlite(database: str) -> None:
    reader = SqliteReader(database, timeout=0.3, inline_budget=0.005)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            await reader.fetch(COUNT_TO, (10**12,))
    finally:
        await reader.close()
    # The thread itself returned (SQLite interrupted the query), not only our wait.
    assert time.monotonic() - started < 2


async def test_a_failing_query_raises_without_moving(database: str) -> None:
    reader = SqliteReader(database, timeout=5)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await reader.fetch("SELECT nope FROM loans", ())
    finally:
        await reader.close()
    assert reader.moved_to_thread == 0


async def test_it_cannot_write(database: str) -> None:
    reader = SqliteReader(database, timeout=5)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await reader.fetch("DELETE FROM loans", ())
    finally:
        await reader.close()
    conn = sqlite3.connect(database)
    assert conn.execute("SELECT count(*) FROM loans").fetchone() == (3,)
    conn.close()


async def test_a_missing_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    reader = SqliteReader(str(path), timeout=5)
    with pytest.raises(sqlite3.OperationalError):
        await reader.fetch("SELECT 1", ())
    assert not path.exists()
