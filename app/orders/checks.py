"""The result of verifying a court-order token, as the policy engine consumes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.reasons import Reason
from app.orders.models import OrderClaims


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer from the trust store (its keys are held by the trust store)."""

    iss: str
    name: str
    jurisdictions: frozenset[str]


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """What verification found.

    ``claims`` is set only when the signature verified with a trusted key and every claim
    parsed; ``failures`` lists every token-level reason found (empty means verified).
    ``unverified`` holds best-effort, never-trusted header and claim values (iss, jti, case,
    instrument, kid, alg) for the audit log, which marks them as unverified.
    """

    claims: OrderClaims | None
    issuer: TrustedIssuer | None
    failures: tuple[Reason, ...]
    unverified: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.claims is not None and not self.failures
