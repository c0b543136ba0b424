"""Revoking orders: refused from then on, on every replica (the state database is shared)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit.models import AuditEvent
from app.audit.writer import Appended, AuditWriter, Entry
from app.core.models import utcnow
from app.core.problems import BulwarkError
from app.core.reasons import Reason
from app.orders.models import OrderClaims, OrderUse, Revocation
from app.policy.decision import OrderState

REVOCATIONS = Revocation.__table__  # type: ignore[attr-defined]
USES = OrderUse.__table__  # type: ignore[attr-defined]
EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]

#: How many spent or revoked orders one process remembers (oldest forgotten first).
SPENT_ORDERS_REMEMBERED = 10_000


class SpentOrders:
    """Orders this process has seen used up or revoked.

    Both facts only ever become true (a use is never given back, a revocation never lifted),
    so remembering them is always safe; an order missing here may still be spent elsewhere,
    which the audit transaction's re-check under the chain's lock catches. The disclosure
    path uses this to refuse a replayed order without reading the store at all.
    """

    def __init__(self, capacity: int = SPENT_ORDERS_REMEMBERED) -> None:
        self._capacity = capacity
        self._known: dict[tuple[str, str], OrderState] = {}

    def state(self, claims: OrderClaims | None) -> OrderState:
        """What is known of ``claims``'s order; a fresh order if nothing is."""
        if claims is None:
            return OrderState()
        return self._known.get((claims.iss, claims.jti), OrderState())

    def learn(self, claims: OrderClaims, appended: Appended) -> None:
        """Remember what an append found under the lock: revoked, or every use spent."""
        revoked = Reason.ORDER_REVOKED in appended.refused
        uses = appended.uses or 0
        if not revoked and uses < claims.max_uses:
            return
        key = (claims.iss, claims.jti)
        self._known.pop(key, None)
        if len(self._known) >= self._capacity:
            self._known.pop(next(iter(self._known)))
        self._known[key] = OrderState(revoked=revoked, uses=max(uses, claims.max_uses))


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
    found: dict[str, bool] = {}

    async def apply(conn: AsyncConnection) -> None:
        key = and_(REVOCATIONS.c.iss == iss, REVOCATIONS.c.jti == jti)
        exists = (await conn.execute(select(REVOCATIONS.c.jti).where(key))).first() is not None
        found["already"] = exists
        if not exists:
            await conn.execute(
                insert(REVOCATIONS).values(
                    iss=iss, jti=jti, reason=reason, revoked_by=by, revoked_at=utcnow()
                )
            )

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
            apply=apply,
        )
    )
    return RevocationResult(iss, jti, found.get("already", False), appended)
