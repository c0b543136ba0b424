"""Evaluating a request against the policy: default deny, every reason, a trace of each rule.

:func:`evaluate` is pure: it reads no clock, file or database and mutates nothing; whatever it
needs (order state, the library's jurisdictions, the mapping's fields, the time) is passed in.
It runs the rules below in this fixed order and lists the reason of every rule that failed;
rules that need the order's claims are recorded as ``skipped`` when there are none. The
request is permitted only when no rule gave a reason and the order's claims are present.

==================  ===========================================================================
rule                reason when it fails
==================  ===========================================================================
purpose             purpose.unsupported: the purpose is not declared by the policy
order.present       order.missing: a purpose that needs an order, without one
order.token         the verifier's own reasons, verbatim (order.expired, order.audience, ...)
order.instrument    order.not_court_issued: the instrument is not accepted by the policy
order.good_cause    order.no_good_cause: ``good_cause`` is not true
order.jurisdiction  order.jurisdiction: not one of the issuer's and the library's jurisdictions
order.revoked       order.revoked: an admin revoked the order
order.uses          order.exhausted: ``max_uses`` reached
scope.patron        scope.patron: the patron is not named in the order
scope.category      scope.category: a requested category is not in the order
scope.period        scope.period: the requested period is not inside the order's
counsel.approval    approval.missing / approval.invalid: the policy requires counsel's approval
                    and none came, or it is not a good one for this very order
scope.fields        scope.category: a requested category would release no field at all
==================  ===========================================================================

``counsel.approval`` is skipped when the policy does not require approval. The approval token
is verified before evaluation (:class:`app.orders.approvals.ApprovalVerifier`) and passed in
as data; matching it to the order's ``iss`` and ``jti`` is done here.

Nothing about the patron but the identifier is an input, and the identifier is only compared
for equality: nationality, residency, age and the like cannot influence a decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from app.core.reasons import Reason, message_of
from app.orders.approvals import ApprovalCheck
from app.orders.checks import OrderCheck, TrustedIssuer
from app.orders.models import OrderClaims
from app.policy.decision import AccessRequest, Decision, Effect, OrderState, RuleTrace
from app.policy.models import LoadedPolicy
from app.records.categories import Category
from app.records.obligations import Obligations, Period

FieldMap = Mapping[Category, tuple[str, ...]]

#: The rules that need the order's claims, in evaluation order; recorded as skipped without.
CLAIM_RULES = (
    "order.instrument",
    "order.good_cause",
    "order.jurisdiction",
    "order.revoked",
    "order.uses",
    "scope.patron",
    "scope.category",
    "scope.period",
    "counsel.approval",
)
_SKIPPED_CLAIM_RULES = tuple(
    RuleTrace(rule, "skipped", (), MappingProxyType({"skipped_because": "no order claims"}))
    for rule in CLAIM_RULES
)


def evaluate(
    request: AccessRequest,
    order: OrderCheck | None,
    state: OrderState,
    policy: LoadedPolicy,
    *,
    jurisdictions: frozenset[str],
    mapping_fields: FieldMap,
    now: dt.datetime,
    approval: ApprovalCheck | None = None,
) -> Decision:
    """Decide ``request`` under ``policy``; deny unless every rule passes.

    ``order`` is the token verifier's result (None when no token came); ``state`` is what the
    state database knows of that order; ``jurisdictions`` are the library's own;
    ``mapping_fields`` are, per mapped category, the fields the records mapping may release.
    ``now`` is taken so that callers pass the decision's instant explicitly; the time-bound
    checks (expiry, not-before, lifetime) are the verifier's, which received the same instant.
    ``approval`` is the counsel approval's verification (None when none came).
    """
    del now  # no rule of this engine depends on the time; see the docstring
    categories = tuple(dict.fromkeys(request.categories))
    claims = order.claims if order is not None else None
    fields = _permitted_fields(categories, mapping_fields, policy, claims)
    if claims is None:
        claim_rules: Sequence[RuleTrace] = _SKIPPED_CLAIM_RULES
    else:
        issuer = order.issuer if order is not None else None
        courts = issuer.jurisdictions if issuer is not None else frozenset[str]()
        claim_rules = (
            *_order_rules(claims, policy, courts, jurisdictions, state),
            *_scope_rules(request, categories, claims),
            _counsel(policy, approval, claims, issuer),
        )
    trace = (
        _purpose(request, policy),
        _order_present(request, order, policy),
        _order_token(order),
        *claim_rules,
        _fields(fields, order_applied=claims is not None),
    )
    return _decide(request, categories, claims, fields, policy, trace)


def _decide(
    request: AccessRequest,
    categories: tuple[Category, ...],
    claims: OrderClaims | None,
    fields: dict[Category, tuple[str, ...]],
    policy: LoadedPolicy,
    trace: tuple[RuleTrace, ...],
) -> Decision:
    reasons = tuple(dict.fromkeys(r for rule in trace for r in rule.reasons))
    if claims is None or reasons:
        # Without claims there is no scope to release under. ORDER_MISSING keeps such a deny
        # explained even where no rule failed (no declared purpose can skip the order today).
        return Decision(Effect.DENY, reasons or (Reason.ORDER_MISSING,), policy.sha256, None, trace)
    period = request.period.intersect(Period(claims.scope.from_, claims.scope.to))
    assert period is not None  # scope.period passed: the request lies inside the order
    obligations = Obligations(request.patron_id, categories, period, MappingProxyType(fields))
    return Decision(Effect.PERMIT, (), policy.sha256, obligations, trace)


def _rule(rule: str, failed: Reason | None, **compared: Any) -> RuleTrace:
    if failed is None:
        return RuleTrace(rule, "pass", (), compared)
    return RuleTrace(rule, "fail", (failed,), compared)


def _skipped(rule: str, why: str) -> RuleTrace:
    return RuleTrace(rule, "skipped", (), {"skipped_because": why})


def _purpose(request: AccessRequest, policy: LoadedPolicy) -> RuleTrace:
    declared = request.purpose in policy.purposes
    failed = None if declared else Reason.PURPOSE_UNSUPPORTED
    return _rule("purpose", failed, purpose=request.purpose, declared=declared)


def _order_present(
    request: AccessRequest, order: OrderCheck | None, policy: LoadedPolicy
) -> RuleTrace:
    requires_order = policy.purposes.get(request.purpose)
    if requires_order is None:
        # An undeclared purpose has no order rule to check; `purpose` has already failed.
        return _skipped("order.present", "purpose not declared")
    present = request.has_order and order is not None
    failed = Reason.ORDER_MISSING if requires_order and not present else None
    return _rule("order.present", failed, requires_order=requires_order, has_order=present)


def _order_token(order: OrderCheck | None) -> RuleTrace:
    if order is None:
        return _skipped("order.token", "no order")
    failures = order.failures
    if order.claims is None and not failures:
        # A verifier result with neither claims nor a reason is not a verified order.
        failures = (Reason.ORDER_CLAIMS_INVALID,)
    compared = {"failures": [r.value for r in failures]}
    if failures:
        return RuleTrace("order.token", "fail", failures, compared)
    return RuleTrace("order.token", "pass", (), compared)


def _order_rules(
    claims: OrderClaims,
    policy: LoadedPolicy,
    courts: frozenset[str],
    library: frozenset[str],
    state: OrderState,
) -> tuple[RuleTrace, ...]:
    accepted = claims.instrument in policy.accepted_instruments
    court_ok = claims.jurisdiction in courts
    library_ok = claims.jurisdiction in library
    return (
        _rule(
            "order.instrument",
            None if accepted else Reason.ORDER_NOT_COURT_ISSUED,
            instrument=claims.instrument.value,
            accepted=policy.accepted_names,
        ),
        _rule(
            "order.good_cause",
            None if claims.good_cause is True else Reason.ORDER_NO_GOOD_CAUSE,
            good_cause=claims.good_cause,
        ),
        # Competent jurisdiction: the issuer must be trusted for it AND the library must be in
        # it; an empty library setting therefore refuses every order.
        _rule(
            "order.jurisdiction",
            None if court_ok and library_ok else Reason.ORDER_JURISDICTION,
            jurisdiction=claims.jurisdiction,
            issuer_competent=court_ok,
            library_competent=library_ok,
        ),
        _rule(
            "order.revoked", Reason.ORDER_REVOKED if state.revoked else None, revoked=state.revoked
        ),
        _rule(
            "order.uses",
            Reason.ORDER_EXHAUSTED if state.uses >= claims.max_uses else None,
            uses=state.uses,
            max_uses=claims.max_uses,
        ),
    )


def _scope_rules(
    request: AccessRequest, categories: tuple[Category, ...], claims: OrderClaims
) -> tuple[RuleTrace, ...]:
    scope = claims.scope
    # The patron id is compared, never recorded: the trace reaches the audit log and dry runs.
    patron_ok = request.patron_id in scope.patrons
    in_order = set(scope.categories)
    missing = [c.value for c in categories if c not in in_order]
    allowed = Period(scope.from_, scope.to)
    # An inverted period is "inside" any order by the bounds alone; it is refused instead.
    requested = request.period
    inside = requested.start <= requested.end and allowed.contains(requested)
    return (
        _rule(
            "scope.patron",
            None if patron_ok else Reason.SCOPE_PATRON,
            patron_in_order=patron_ok,
            patrons_named=len(scope.patrons),
        ),
        _rule(
            "scope.category",
            # Asking for nothing is not a request an order can answer: fail closed.
            Reason.SCOPE_CATEGORY if missing or not categories else None,
            requested=[c.value for c in categories],
            in_order=[c.value for c in scope.categories],
            missing=missing,
        ),
        _rule(
            "scope.period",
            None if inside else Reason.SCOPE_PERIOD,
            requested=requested.as_json(),
            order=allowed.as_json(),
        ),
    )


def _counsel(
    policy: LoadedPolicy,
    approval: ApprovalCheck | None,
    claims: OrderClaims,
    issuer: TrustedIssuer | None = None,
) -> RuleTrace:
    transcribed = issuer is not None and issuer.transcribes
    if transcribed:
        return _transcription(approval, claims)
    if not policy.policy.counsel.require_approval:
        return _skipped("counsel.approval", "not required by the policy")
    if approval is None:
        return _rule("counsel.approval", Reason.APPROVAL_MISSING, present=False)
    # An approval is for one order only: the same counsel's approval of another order (or of
    # another court's order with the same jti) does not carry over.
    matches = approval.order == (claims.iss, claims.jti)
    ok = approval.verified and matches
    return _rule(
        "counsel.approval",
        None if ok else Reason.APPROVAL_INVALID,
        present=True,
        failures=list(approval.failures),
        names_this_order=matches,
    )


def _transcription(approval: ApprovalCheck | None, claims: OrderClaims) -> RuleTrace:
    """Two-person control for a custodian's transcription of a paper order, whatever the
    policy says: the paper's digest in the order, and counsel's approval by someone else."""
    failed: list[Reason] = []
    if claims.paper_sha256 is None:
        failed.append(Reason.ORDER_PAPER_MISSING)
    matches = approval is not None and approval.order == (claims.iss, claims.jti)
    same_person = (
        approval is not None
        and approval.person is not None
        and approval.person == claims.transcribed_by
    )
    if approval is None:
        failed.append(Reason.APPROVAL_MISSING)
    elif not (approval.verified and matches):
        failed.append(Reason.APPROVAL_INVALID)
    elif approval.person is None or claims.transcribed_by is None or same_person:
        # Two signatures by one person are one person's decision: refused.
        failed.append(Reason.APPROVAL_SAME_PERSON)
    compared = {
        "transcription": True,
        "paper_sha256": claims.paper_sha256,
        "present": approval is not None,
        "failures": list(approval.failures) if approval is not None else [],
        "names_this_order": matches,
        "two_people": approval is not None
        and approval.person is not None
        and claims.transcribed_by is not None
        and not same_person,
    }
    if failed:
        return RuleTrace("counsel.approval", "fail", tuple(failed), compared)
    return RuleTrace("counsel.approval", "pass", (), compared)


def _permitted_fields(
    categories: tuple[Category, ...],
    mapping_fields: FieldMap,
    policy: LoadedPolicy,
    claims: OrderClaims | None,
) -> dict[Category, tuple[str, ...]]:
    """Per requested category: the mapping's fields, narrowed by the order, minus forbidden.

    The mapping's order is kept. An order whose ``scope.fields`` does not mention a category
    does not restrict it (the contract: "per category id, the only fields that may be
    released"); a category the mapping leaves out has no fields at all.
    """
    order_fields = claims.scope.fields if claims is not None else None
    permitted: dict[Category, tuple[str, ...]] = {}
    for category in categories:
        allowed = mapping_fields.get(category, ())
        forbidden = policy.forbidden_fields.get(category, frozenset())
        narrowed = order_fields.get(category) if order_fields is not None else None
        keep = set(narrowed) if narrowed is not None else None
        permitted[category] = tuple(
            f for f in allowed if f not in forbidden and (keep is None or f in keep)
        )
    return permitted


def _fields(fields: Mapping[Category, tuple[str, ...]], order_applied: bool) -> RuleTrace:
    # Fail closed: a category that would release no field is refused rather than answered with
    # empty records, which would still disclose how many records the patron has.
    empty = [c.value for c, names in fields.items() if not names]
    return _rule(
        "scope.fields",
        Reason.SCOPE_CATEGORY if empty else None,
        fields={c.value: list(names) for c, names in fields.items()},
        empty=empty,
        order_applied=order_applied,
    )


def decision_json(decision: Decision, include_trace: bool) -> dict[str, Any]:
    """A decision as the API answers it: effect, reasons with messages, the policy hash.

    Obligations are never rendered (they hold the patron id); the trace is added on request
    and holds no patron id by construction.
    """
    body: dict[str, Any] = {
        "effect": decision.effect.value,
        "reasons": [{"code": r.value, "message": message_of(r)} for r in decision.reasons],
        "policy": decision.policy,
    }
    if include_trace:
        body["trace"] = [rule.as_json() for rule in decision.trace]
    return body
