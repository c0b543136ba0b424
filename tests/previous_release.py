"""State as the previous release (schema 0004) wrote it, for the upgrade-in-place tests.

The current writer cannot make it: it also writes tables that 0004 does not have (the
report's figures, the Merkle tree). So events go in as 0004's writer put them, by raw SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.audit.chain import GENESIS_HASH, canonical, chain_hash


async def write_events(
    conn: AsyncConnection, events: Iterable[tuple[dt.datetime, str, str, dict[str, Any]]]
) -> list[str]:
    """Chain ``(ts, kind, effect, extra body)`` from genesis and move the head; the bodies."""
    prev, rows, bodies = GENESIS_HASH, [], []
    for seq, (ts, kind, effect, extra) in enumerate(events, start=1):
        body = canonical(
            {
                "v": 1,
                "seq": seq,
                "ts": ts.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                "kind": kind,
                "effect": effect,
                **extra,
            }
        )
        digest = chain_hash(prev, body)
        rows.append(
            {"seq": seq, "ts": ts, "kind": kind, "effect": effect, "body": body}
            | {"prev": prev, "hash": digest}
        )
        bodies.append(body)
        prev = digest
    await conn.execute(
        text(
            "INSERT INTO audit_events (seq, ts, kind, effect, body, prev_hash, hash) "
            "VALUES (:seq, :ts, :kind, :effect, :body, :prev, :hash)"
        ),
        rows,
    )
    await conn.execute(
        text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": len(rows), "h": prev}
    )
    return bodies
