"""The single-statement append on PostgreSQL: a decided batch, written in one round trip.

The locked append (:meth:`app.audit.writer.AuditWriter._append`) costs one round trip per
statement: begin, lock the head, read the facts, write uses, events, disclosures, holds and
notices, move the head, commit. Under load the writer's batches are large and that cost is
shared; at one request at a time it is the whole of Bulwark's added latency.

So when the writer already knows the head and the use counts (it wrote them itself), it decides
the batch in memory and sends it to ``bulwark_append(jsonb)`` (migration 0004): one statement,
in its own implicit transaction, so the call returns only once the batch is committed and
durable. The function takes the head's lock first and writes nothing unless everything the
writer assumed still holds under it (head, callers active, orders not revoked, use counts);
otherwise it names what was stale and the writer appends the batch under the lock instead,
reading every fact afresh. A stale guess can cost a round trip, never a wrong record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from app.audit.entries import FASTPATH_SINKS

#: What ``bulwark_append`` answers when it wrote the batch.
WRITTEN = "ok"

# ``bulwark_append_tree`` (migration 0007) calls ``bulwark_append`` and, when that wrote the
# batch, adds the Merkle tree's new nodes (``tree``) in the same statement.
CALL = "SELECT bulwark_append_tree($1::text::jsonb)"

OrderKey = tuple[str, str]

#: The rows ``bulwark_append`` writes, by their list in its argument.
ROWS = FASTPATH_SINKS


def payload(
    *,
    head: tuple[int, str],
    next_head: tuple[int, str],
    now: dt.datetime,
    callers: Iterable[int],
    orders: Iterable[OrderKey],
    uses_before: Mapping[OrderKey, int | None],
    writes: Iterable[tuple[OrderKey, int, int]],
    events: list[dict[str, Any]],
    rows: Mapping[str, list[dict[str, Any]]],
    figures: list[dict[str, Any]] | None = None,
    tree: list[dict[str, Any]] | None = None,
) -> str:
    """The function's argument: what was assumed, and every row to write.

    ``rows`` maps each of :data:`ROWS` to its rows (app/audit/entries.py: the domains' typed
    rows, as column values).
    """
    document = {
        "head": list(head),
        "next": list(next_head),
        "now": now,
        "callers": sorted(callers),
        "orders": [{"iss": iss, "jti": jti} for iss, jti in sorted(orders)],
        "uses": [{"iss": k[0], "jti": k[1], "uses": n} for k, n in uses_before.items()],
        "writes": [{"iss": k[0], "jti": k[1], "uses": n, "max_uses": m} for k, n, m in writes],
        "events": events,
        **{name: list(rows.get(name, ())) for name in ROWS},
        "figures": figures or [],  # the report's figures of these events (migration 0005)
        "tree": tree or [],  # the Merkle tree's new nodes (migration 0007)
    }
    return json.dumps(document, default=_json_value, separators=(",", ":"))


def _json_value(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


async def append(driver_connection: Any, document: str) -> str:
    """Run ``bulwark_append`` on an asyncpg connection outside any transaction."""
    return str(await driver_connection.fetchval(CALL, document))
