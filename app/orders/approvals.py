"""Counsel approvals: the library's counsel signs off one court order before records leave.

When the policy's ``[counsel] require_approval`` is on, a disclosure must carry a
``counsel_approval`` token beside its court order: a compact JWS with header ``typ`` =
``counsel-approval+jwt``, signed by a key listed under the trust store's ``counsel`` section,
whose claims name the order it approves::

    {"iss": "https://counsel.example/library", "aud": "bulwark", "iat": ..., "exp": ...,
     "jti": "approval-1", "order": {"iss": "<the order's iss>", "jti": "<the order's jti>"}}

It is checked with the court-order verifier's own machinery (:mod:`app.orders.tokens`): the
same parsing limits, header checks, key lookup by ``(iss, kid)`` with the key's own algorithm,
python-jose signature check, and registered-claim checks. A counsel key never verifies a court
order and a court key never verifies an approval: they live in separate registries.

The result is data (:class:`ApprovalCheck`); matching it to the order, and the decision, are
the policy engine's (rule ``counsel.approval``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from app.core.reasons import Reason
from app.orders import jose
from app.orders.issuing import sign_compact
from app.orders.models import ShortText, numeric_date

#: The only ``typ`` a counsel approval may carry (compared exactly).
APPROVAL_TYP: Final = "counsel-approval+jwt"


class ApprovedOrder(BaseModel):
    """``order``: the court order an approval is for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: ShortText
    jti: ShortText


class ApprovalClaims(BaseModel):
    """The typed claims of a counsel approval; unknown extra claims are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: ShortText
    aud: str | list[str]
    iat: int
    exp: int
    nbf: int | None = None
    jti: ShortText
    order: ApprovedOrder
    #: The person who approved (counsel's staff identifier); compared with the order's
    #: ``transcribed_by`` so that one person cannot both transcribe and approve.
    sub: ShortText | None = None

    _numeric_dates = field_validator("iat", "exp", "nbf", mode="before")(numeric_date)


@dataclass(frozen=True, slots=True)
class ApprovalCheck:
    """What verifying a counsel approval found.

    ``order`` (the approved order's ``(iss, jti)``) and ``approver`` (the counsel issuer) are
    set only when nothing failed. ``failures`` names each fault found, in the short form the
    decision trace shows (``signature_invalid``, ``expired``...); any fault is answered as
    ``approval.invalid``.
    """

    order: tuple[str, str] | None
    approver: str | None
    failures: tuple[str, ...]
    person: str | None = None

    @property
    def verified(self) -> bool:
        """True when the approval's signature and claims all checked out."""
        return self.order is not None and not self.failures


class ApprovalVerifier(jose.TokenVerifier):
    """Checks counsel approvals against the trust store's ``counsel`` registry.

    Args:
        registry: the counsel issuers and their keys (``TrustStore.counsel_issuers``).
        **limits: the :class:`app.orders.jose.VerifierLimits`.
    """

    __slots__ = ()

    def verify(self, token: str, now: dt.datetime) -> ApprovalCheck:
        """Check ``token`` at ``now`` (timezone-aware); never raises for a bad token."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        parsed = jose.parse_compact(token, self._max_bytes)
        if parsed is None:
            return _refused([Reason.ORDER_MALFORMED])
        failures = jose.header_failures(parsed.header, self._allowed, APPROVAL_TYP)
        _, key = jose.resolve_key(parsed, self._registry, self._keys, self._allowed, failures)
        if key is None:
            return _refused(failures)
        if not jose.signature_ok(token, key):
            return _refused([*failures, Reason.ORDER_SIGNATURE_INVALID])
        claims = self._claims(parsed.payload, now.timestamp(), failures)
        if failures or claims is None:
            return _refused(failures)
        return ApprovalCheck((claims.order.iss, claims.order.jti), claims.iss, (), claims.sub)

    def _claims(
        self, payload: dict[str, Any], now: float, failures: list[Reason]
    ) -> ApprovalClaims | None:
        try:
            claims: ApprovalClaims | None = ApprovalClaims.model_validate(payload)
        except ValidationError:
            claims = None
            failures.append(Reason.ORDER_CLAIMS_INVALID)
        failures.extend(
            jose.registered_claim_failures(
                payload,
                now,
                audience=self._audience,
                skew=self._skew,
                max_lifetime=self._max_lifetime,
            )
        )
        return claims


def _refused(failures: list[Reason]) -> ApprovalCheck:
    # The verifier's reasons are court-order codes; an approval reports them by their short
    # name only, so that no order.* code is ever mistaken for a fault of the court order.
    names = tuple(dict.fromkeys(r.value.split(".", 1)[1] for r in failures))
    return ApprovalCheck(None, None, names or ("claims_invalid",))


def issue_approval(
    order_iss: str,
    order_jti: str,
    private_pem: bytes,
    kid: str,
    alg: str,
    *,
    iss: str,
    audience: str = "bulwark",
    lifetime_days: float = 7,
    now: dt.datetime | None = None,
    approver: str | None = None,
    **overrides: Any,
) -> str:
    """Sign counsel's approval of the order ``(order_iss, order_jti)`` (for counsel and tests).

    ``approver`` (the approving person) becomes ``sub``. Any claim may be replaced by keyword
    (``aud="other"``); the header is ``alg``, ``kid`` and ``typ`` = ``counsel-approval+jwt``.
    """
    issued = int((now or dt.datetime.now(dt.UTC)).timestamp())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime_days * 86400),
        "jti": f"approval-{order_jti}"[:256],
        "order": {"iss": order_iss, "jti": order_jti},
    }
    if approver is not None:
        claims["sub"] = approver
    claims.update(overrides)
    header = {"alg": alg, "kid": kid, "typ": APPROVAL_TYP}
    return sign_compact(header, claims, private_pem, alg)
