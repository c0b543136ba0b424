"""Orders this process has seen used up or revoked: the disclosure path's fast refusal."""

from __future__ import annotations

from app.audit.writer import Appended
from app.core.reasons import Reason
from app.orders.models import OrderClaims
from app.policy.decision import OrderState

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
