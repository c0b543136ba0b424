"""What Bulwark would decide about an order, computed with Bulwark's own code, offline.

``bulwark orders issue`` refuses to hand out an order the service would refuse, and
``bulwark orders inspect`` shows what a token says and what the policy would decide. Both run
the service's verifier (:class:`app.orders.tokens.OrderVerifier`) and policy engine
(:func:`app.policy.engine.evaluate`) on the deployment's own trust store, policy, records
mapping and jurisdictions (the same settings, read the same way as at start): the same
checks, the same reason codes and messages, no copy of either.

The request evaluated is the widest the order allows: its first patron (never shown), every
category it names, its whole period, under the policy's legal-process purpose.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from app.core.config import Settings
from app.core.reasons import Reason
from app.orders.approvals import ApprovalCheck, ApprovalVerifier
from app.orders.checks import OrderCheck
from app.orders.jose import parse_compact
from app.orders.tokens import OrderVerifier
from app.policy.decision import AccessRequest, Decision, OrderState
from app.policy.engine import evaluate
from app.records.obligations import Period
from app.runtime import load_static, verifier_limits

#: Reasons ``orders issue`` does not hold against a new order: counsel's approval is signed
#: after the order (``orders approve``), and an order may take effect later (``nbf``).
NOT_YET: Final = frozenset({Reason.APPROVAL_MISSING, Reason.ORDER_NOT_YET_VALID})
_PURPOSE: Final = "legal_process"


@dataclass(frozen=True, slots=True)
class Preflight:
    """A token's header and claims as written (unverified), and what Bulwark would decide."""

    header: dict[str, Any]
    claims: dict[str, Any]
    check: OrderCheck
    decision: Decision
    transcribed: bool

    def refusals(self, ignore: frozenset[Reason] = frozenset()) -> list[Reason]:
        """The decision's reasons, less ``ignore``."""
        return [reason for reason in self.decision.reasons if reason not in ignore]


def preflight(
    token: str,
    settings: Settings,
    *,
    approval: str | None = None,
    now: dt.datetime | None = None,
) -> Preflight:
    """Verify ``token`` and evaluate the widest request it allows, as the service would.

    Raises:
        app.runtime.StartupError: the settings' policy, trust store or mapping is unusable.
    """
    moment = now or dt.datetime.now(dt.UTC)
    policy, trust, mapping = load_static(settings)
    limits = verifier_limits(settings, policy)
    check = OrderVerifier(trust, **limits).verify(token, moment)
    approved: ApprovalCheck | None = None
    if approval is not None:
        approved = ApprovalVerifier(trust.counsel_issuers, **limits).verify(approval, moment)
    parsed = parse_compact(token, settings.max_token_bytes)
    header, claims = (parsed.header, parsed.payload) if parsed is not None else ({}, {})
    decision = evaluate(
        _widest_request(check, policy.purposes),
        check,
        OrderState(),
        policy,
        jurisdictions=settings.jurisdictions,
        mapping_fields=mapping.fields(),
        now=moment,
        approval=approved,
    )
    transcribed = check.issuer is not None and check.issuer.transcribes
    return Preflight(header, claims, check, decision, transcribed)


def _widest_request(check: OrderCheck, purposes: Any) -> AccessRequest:
    purpose = _PURPOSE if _PURPOSE in purposes else next(iter(purposes), _PURPOSE)
    claims = check.claims
    if claims is None:
        # Nothing verified: the claim rules are skipped, so the request's scope is moot.
        today = dt.date.today()
        return AccessRequest(purpose, "", (), Period(today, today), has_order=True)
    scope = claims.scope
    return AccessRequest(
        purpose,
        scope.patrons[0],
        tuple(scope.categories),
        Period(scope.from_, scope.to),
        has_order=True,
    )
