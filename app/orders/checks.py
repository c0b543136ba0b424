"""The result of verifying a court-order token, as the policy engine consumes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.reasons import Reason
from app.orders.models import OrderClaims

#: A court that signs its own orders.
ROLE_COURT = "court"
#: The library's records custodian, who transcribes a court's verified paper order: such an
#: order needs the SHA-256 of the paper and counsel's approval, signed by another person.
ROLE_CUSTODIAN = "custodian"
ISSUER_ROLES = (ROLE_COURT, ROLE_CUSTODIAN)


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer from the trust store (its keys are held by the trust store).

    ``role`` is ``court`` (the default, and what every entry of an older trust store is) or
    ``custodian`` (see :data:`ROLE_CUSTODIAN`). Counsel are never issuers: they are listed
    under the trust store's ``counsel`` section and can only approve.
    """

    iss: str
    name: str
    jurisdictions: frozenset[str]
    role: str = ROLE_COURT

    @property
    def transcribes(self) -> bool:
        """True for a custodian, whose orders are transcriptions of paper orders."""
        return self.role == ROLE_CUSTODIAN


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
