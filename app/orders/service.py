"""Revoking orders: refused from then on, on every replica (the state database is shared)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.audit.writer import Appended, AuditWriter, Entry
from app.core.models import utcnow
from app.core.reasons import Reason
from app.orders.models import OrderClaims, Revocation
from app.policy.decision import OrderState

REVOCATIONS = Revocation.__table__  # type: ignore[attr-defined]

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


async def revoke_order(
    audit: AuditWriter, *, iss: str, jti: str, reason: str, by: str, caller_id: int | None
) -> RevocationResult:
    """Revoke (iss, jti), audited in the same transaction.

    Revoking twice is not an error (the first revocation stands); revoking an order never
    seen is allowed, since it may be presented later.
    """
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
            body={"v": 1, "caller": by, "order": {"iss": iss, "jti": jti}, "reason": reason},
            caller_id=caller_id,
            apply=apply,
        )
    )
    return RevocationResult(iss, jti, found.get("already", False), appended)
