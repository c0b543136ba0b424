"""Reading a local SQLite records file: on the event loop within a budget, else on a thread.

An indexed read of one patron's rows from a local file takes tens of microseconds. Through
aiosqlite every step of it (execute, fetch, the pool's reset) is a hop to that connection's
own thread and back, each a wake-up of the loop, and twenty such threads contend for the GIL
with the loop: under load that costs far more than the read itself. So the read runs on the
loop's own thread, with SQLite's progress handler as its clock: past ``inline_budget`` the
query is interrupted (the loop is never held longer than that), and the read is done again on
a worker thread with its own connection, where the store's full deadline applies and SQLite
itself stops the query when it passes.

The connection is opened ``mode=rw`` (a missing file is an error, never created) and with
``PRAGMA query_only``: this code cannot write the library's records.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

#: How long a read may hold the event loop before it moves to a thread.
INLINE_BUDGET_SECONDS = 0.02
#: SQLite virtual-machine steps between two looks at the clock.
_STEPS_PER_CHECK = 1000


class SqliteReader:
    """Runs one SELECT at a time against a SQLite file; see the module docstring."""

    def __init__(
        self, path: str, *, timeout: float, inline_budget: float = INLINE_BUDGET_SECONDS
    ) -> None:
        self._uri = Path(path).resolve().as_uri() + "?mode=rw"
        self._timeout = timeout
        self._budget = inline_budget
        self._conn: sqlite3.Connection | None = None
        self._deadline = 0.0
        self.moved_to_thread = 0  # reads that overran the budget (tests and diagnostics)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._uri, uri=True, timeout=self._timeout, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _over_budget(self) -> bool:
        return time.monotonic() > self._deadline

    async def fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        """The rows of ``sql``; raises ``sqlite3.Error`` (or TimeoutError) when it fails."""
        if self._conn is None:
            self._conn = self._connect()
            self._conn.set_progress_handler(self._over_budget, _STEPS_PER_CHECK)
        self._deadline = time.monotonic() + self._budget
        try:
            return self._conn.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError:
            if not self._over_budget():
                raise  # a real failure, not our interruption
        self.moved_to_thread += 1
        return await asyncio.to_thread(self._fetch_on_thread, sql, parameters)

    def _fetch_on_thread(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        deadline = time.monotonic() + self._timeout
        conn = self._connect()
        try:
            conn.set_progress_handler(lambda: time.monotonic() > deadline, _STEPS_PER_CHECK)
            try:
                return conn.execute(sql, parameters).fetchall()
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError from None
                raise
        finally:
            conn.close()

    async def close(self) -> None:
        """Close the loop's connection (a thread's connection closes with its read)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
