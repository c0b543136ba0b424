"""The baseline: a bare pass-through answering Bulwark's request with the same store query.

No API key, no court order, no policy, no audit log: only what any service that hands out a
patron's loans must do. It is written to be fast, because a slow baseline flatters the ratio:

- one async endpoint reading the raw body and parsing it with the standard library's ``json``;
- one query, the very statement Bulwark's SQL store sends for the circulation category
  (same columns, same ``patron = ? AND date >= ? AND date < ?`` narrowing, same
  ``ORDER BY date, id LIMIT 1001``), through asyncpg's pool with its prepared-statement
  cache for PostgreSQL, and through one ``sqlite3`` connection for SQLite (an indexed lookup
  in a local file takes tens of microseconds: a thread hop would cost more than it saves);
- the answer encoded with ``json.dumps`` into a plain ``Response``: no response model.

Run by ``bench/run.py`` as ``uvicorn bench.baseline:app`` (one worker, uvloop and httptools,
as ``bulwark serve`` runs), with ``BENCH_RECORDS_URL`` naming the same store Bulwark reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

#: Output names of the circulation fields, in the demo mapping's order.
NAMES = ("title", "checkout_date", "due_date", "return_date", "branch")
LIMIT = 1001  # Bulwark reads one row past its 1,000-record page to know whether more exist

PG_SQL = (
    "SELECT title, checked_out_at, due_on, returned_at, branch FROM loans "
    "WHERE patron_id = $1 AND checked_out_at >= $2 AND checked_out_at < $3 "
    f"ORDER BY checked_out_at, loan_id LIMIT {LIMIT}"
)
SQLITE_SQL = PG_SQL.replace("$1", "?").replace("$2", "?").replace("$3", "?")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _bounds(payload: dict[str, Any]) -> tuple[str, dt.date, dt.date]:
    start = dt.date.fromisoformat(payload["from"])
    end = dt.date.fromisoformat(payload["to"]) + dt.timedelta(days=1)
    return payload["patron_id"], start, end


def _sqlite_reader(url: str) -> Callable[..., Any]:
    path = url.split("///", 1)[1]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    async def read(patron: str, start: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
        return conn.execute(SQLITE_SQL, (patron, start.isoformat(), end.isoformat())).fetchall()

    read.close = conn.close  # type: ignore[attr-defined]
    return read


async def _postgres_reader(url: str) -> Callable[..., Any]:
    import asyncpg

    pool = await asyncpg.create_pool(url.replace("postgresql+asyncpg", "postgresql"), max_size=10)

    async def read(patron: str, start: dt.date, end: dt.date) -> list[Any]:
        start_at = dt.datetime.combine(start, dt.time())
        end_at = dt.datetime.combine(end, dt.time())
        return list(await pool.fetch(PG_SQL, patron, start_at, end_at))

    read.close = pool.close  # type: ignore[attr-defined]
    return read


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["BENCH_RECORDS_URL"]
    reader = _sqlite_reader(url) if url.startswith("sqlite") else await _postgres_reader(url)
    app.state.read = reader
    try:
        yield
    finally:
        closing = reader.close()  # type: ignore[attr-defined]
        if closing is not None:
            await closing


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/disclosures")
async def disclose(request: Request) -> Response:
    """The narrowed loans of the body's patron and period, as Bulwark would release them."""
    patron, start, end = _bounds(json.loads(await request.body()))
    rows = await request.app.state.read(patron, start, end)
    records = [dict(zip(NAMES, map(_iso, row), strict=True)) for row in rows[: LIMIT - 1]]
    body = json.dumps({"records": {"circulation": records}}).encode()
    return Response(body, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    """Up."""
    return Response(b'{"status":"ok"}', media_type="application/json")
