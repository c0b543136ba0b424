"""What the counsel page shows, read from the state database: no patron, ever.

Bulwark learns of an order when it is presented (for a disclosure or a dry run), so
"issued" here means issued *and shown to Bulwark*: every decision event names its order
(iss, jti, case, instrument, whether it verified, the paper's digest) and, where one came,
counsel's approval. Uses and revocations are the state tables' own rows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.core.models import table_of
from app.orders.models import OrderUse, Revocation

EVENTS = table_of(AuditEvent)
USES = table_of(OrderUse)
REVOCATIONS = table_of(Revocation)

#: How many recent decision events the page reads (it is a view of recent work, not a search).
RECENT_EVENTS: Final = 5000
#: The longest list shown in each table.
MAX_ROWS: Final = 500


@dataclass(slots=True)
class Presented:
    """One order as its decision events show it."""

    iss: str
    jti: str
    case: str | None
    instrument: str | None
    verified: bool
    paper_sha256: str | None
    first_seen: str
    last_seen: str
    decisions: int = 0
    permits: int = 0
    approvals: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CounselView:
    """The four lists of the page."""

    presented: list[Presented]
    approvals: list[dict[str, Any]]
    uses: list[dict[str, Any]]
    revocations: list[dict[str, Any]]
    generated_at: str


async def counsel_view(engine: AsyncEngine) -> CounselView:
    """Read the page's lists (recent decision events, every use and revocation, capped)."""
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                select(EVENTS.c.seq, EVENTS.c.ts, EVENTS.c.kind, EVENTS.c.effect, EVENTS.c.body)
                .where(EVENTS.c.kind.in_(("disclosure", "evaluation")))
                .order_by(EVENTS.c.seq.desc())
                .limit(RECENT_EVENTS)
            )
        ).all()
        uses = (
            await conn.execute(select(USES).order_by(USES.c.last_used_at.desc()).limit(MAX_ROWS))
        ).all()
        revocations = (
            await conn.execute(
                select(REVOCATIONS).order_by(REVOCATIONS.c.revoked_at.desc()).limit(MAX_ROWS)
            )
        ).all()
    presented: dict[tuple[str, str], Presented] = {}
    approvals: list[dict[str, Any]] = []
    for row in reversed(events):  # oldest first, so first_seen is the first
        body = json.loads(row.body)
        order = body.get("order")
        if not isinstance(order, dict) or not order.get("iss") or not order.get("jti"):
            continue
        key = (str(order["iss"]), str(order["jti"]))
        ts = _when(row.ts)
        item = presented.get(key)
        if item is None:
            item = presented[key] = Presented(
                iss=key[0],
                jti=key[1],
                case=_text(order.get("case")),
                instrument=_text(order.get("instrument")),
                verified=order.get("verified") is True,
                paper_sha256=_text(order.get("paper_sha256")),
                first_seen=ts,
                last_seen=ts,
            )
        item.last_seen = ts
        item.decisions += 1
        item.verified = item.verified or order.get("verified") is True
        if row.kind == "disclosure" and row.effect == "permit":
            item.permits += 1
        approval = body.get("approval")
        if isinstance(approval, dict):
            seen = {
                "iss": key[0],
                "jti": key[1],
                "by": _text(approval.get("by")),
                "person": _text(approval.get("person")),
                "verified": approval.get("verified") is True,
                "seq": int(row.seq),
                "ts": ts,
            }
            approvals.append(seen)
    newest = sorted(presented.values(), key=lambda p: p.last_seen, reverse=True)[:MAX_ROWS]
    return CounselView(
        presented=newest,
        approvals=list(reversed(approvals))[:MAX_ROWS],
        uses=[
            {
                "iss": u.iss,
                "jti": u.jti,
                "uses": u.uses,
                "max_uses": u.max_uses,
                "first_used_at": _when(u.first_used_at),
                "last_used_at": _when(u.last_used_at),
            }
            for u in uses
        ],
        revocations=[
            {
                "iss": r.iss,
                "jti": r.jti,
                "reason": r.reason,
                "revoked_by": r.revoked_by,
                "revoked_at": _when(r.revoked_at),
            }
            for r in revocations
        ],
        generated_at=_when(dt.datetime.now(dt.UTC)),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _when(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        return value
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
