"""Revoking orders: refused from then on, on every replica (the state database is shared)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.entries import Revoke
from app.audit.models import AuditEvent
from app.audit.writer import Appended, AuditWriter, Entry
from app.core.models import table_of
from app.core.problems import BulwarkError
from app.core.reasons import Reason
from app.orders.models import OrderUse, Revocation

REVOCATIONS = table_of(Revocation)
USES = table_of(OrderUse)
EVENTS = table_of(AuditEvent)


@dataclass(frozen=True, slots=True)
class RevocationResult:
    iss: str
    jti: str
    already_revoked: bool
    audit: Appended


class OrderNeverSeen(BulwarkError):
    """404 ``order.unseen``: a revocation names an order Bulwark has never been shown."""

    def __init__(self) -> None:
        super().__init__(Reason.ORDER_UNSEEN)


async def order_seen(engine: AsyncEngine, iss: str, jti: str) -> bool:
    """Whether Bulwark has been shown the order ``(iss, jti)``: used, revoked, or evaluated.

    An order that was presented (for a disclosure or a dry run) is named in its decision's
    audit event, whose canonical body holds ``"iss":…,"jti":…,`` followed by more members (a
    revocation's own event ends ``"jti":…}`` and does not count).
    The audit search is a scan of the log: revocations are rare, admin-only operations.
    """
    key = and_(USES.c.iss == iss, USES.c.jti == jti)
    revoked = and_(REVOCATIONS.c.iss == iss, REVOCATIONS.c.jti == jti)
    named = (
        f'"iss":{json.dumps(iss, ensure_ascii=False)},"jti":{json.dumps(jti, ensure_ascii=False)},'
    )
    async with engine.connect() as conn:
        for query in (
            select(USES.c.jti).where(key).limit(1),
            select(REVOCATIONS.c.jti).where(revoked).limit(1),
            select(EVENTS.c.seq).where(EVENTS.c.body.contains(named, autoescape=True)).limit(1),
        ):
            if (await conn.execute(query)).first() is not None:
                return True
    return False


async def revoke_order(
    audit: AuditWriter,
    state: AsyncEngine,
    *,
    iss: str,
    jti: str,
    reason: str,
    by: str,
    caller_id: int | None,
    pre_emptive: bool = False,
) -> RevocationResult:
    """Revoke (iss, jti), audited in the same transaction.

    Revoking twice is not an error (the first revocation stands). An order Bulwark has never
    been shown is refused (:class:`OrderNeverSeen`) unless ``pre_emptive``: a mistyped
    ``iss`` or ``jti`` would otherwise answer "revoked" while the real order stays valid.
    ``state`` is the state database the audit writer writes to.
    """
    if not pre_emptive and not await order_seen(state, iss, jti):
        raise OrderNeverSeen()
    change = Revoke(iss, jti, reason, by)

    appended = await audit.append(
        Entry(
            kind="revocation",
            effect="info",
            body={
                "v": 1,
                "caller": by,
                "order": {"iss": iss, "jti": jti},
                "reason": reason,
                **({"pre_emptive": True} if pre_emptive else {}),
            },
            caller_id=caller_id,
            change=change,
        )
    )
    return RevocationResult(iss, jti, change.already, appended)
