"""The engine rule by rule: one case per rule and reason code, each with its exact reasons."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
from typing import Any

import pytest

from app.core.reasons import Reason, message_of
from app.policy.decision import AccessRequest, Effect, OrderState
from app.policy.engine import CLAIM_RULES, decision_json, evaluate
from app.policy.models import LoadedPolicy, PurposeRules
from app.records.categories import Category
from app.records.obligations import Obligations, Period

from .factories import (
    DEFAULT_POLICY,
    LIBRARY,
    MAPPING,
    PATRON,
    check,
    claims,
    decide,
    policy_from,
    request,
)

R = Reason
D = dt.date
NO_ORDER = {"order": None, "req": request(has_order=False)}

ALL_RULES = (
    "purpose",
    "order.present",
    "order.token",
    *CLAIM_RULES,
    "scope.fields",
)

FORBID_ALL_CIRCULATION = policy_from(
    'version = "t"\n'
    "[categories.circulation]\n"
    'forbidden_fields = ["title", "checkout_date", "due_date", "return_date"]\n'
)


def _case(case_id: str, expected: tuple[Reason, ...], **inputs: Any) -> Any:
    inputs.setdefault("order", check())
    return pytest.param(inputs, expected, id=case_id)


CASES = [
    _case("permit", ()),
    # purpose
    _case("purpose-undeclared", (R.PURPOSE_UNSUPPORTED,), req=request(purpose="marketing")),
    _case(
        "purpose-national-security",
        (R.PURPOSE_UNSUPPORTED,),
        req=request(purpose="national_security"),
    ),
    _case(
        "purpose-emergency-no-order",
        (R.PURPOSE_UNSUPPORTED,),
        req=request(purpose="emergency", has_order=False),
        order=None,
    ),
    _case(
        "purpose-law-enforcement", (R.PURPOSE_UNSUPPORTED,), req=request(purpose="law_enforcement")
    ),
    _case("purpose-case-sensitive", (R.PURPOSE_UNSUPPORTED,), req=request(purpose="Legal_Process")),
    # order.present
    _case("order-missing", (R.ORDER_MISSING,), **NO_ORDER),
    _case("order-claimed-but-absent", (R.ORDER_MISSING,), req=request(has_order=True), order=None),
    # order.token: the verifier's reasons, verbatim and in its order
    _case(
        "token-failures-verbatim",
        (R.ORDER_EXPIRED, R.ORDER_AUDIENCE),
        order=check(failures=(R.ORDER_EXPIRED, R.ORDER_AUDIENCE)),
    ),
    _case(
        "token-signature",
        (R.ORDER_SIGNATURE_INVALID,),
        order=check(failures=(R.ORDER_SIGNATURE_INVALID,)),
    ),
    _case(
        "token-neither-claims-nor-failure",
        (R.ORDER_CLAIMS_INVALID,),
        order=dataclasses.replace(check(), claims=None),
    ),
    # order.instrument
    _case(
        "instrument-subpoena",
        (R.ORDER_NOT_COURT_ISSUED,),
        order=check(claims(instrument="subpoena")),
    ),
    _case(
        "instrument-nsl",
        (R.ORDER_NOT_COURT_ISSUED,),
        order=check(claims(instrument="national_security_letter")),
    ),
    _case(
        "instrument-informal",
        (R.ORDER_NOT_COURT_ISSUED,),
        order=check(claims(instrument="informal_request")),
    ),
    _case(
        "instrument-fisa-off-by-default",
        (R.ORDER_NOT_COURT_ISSUED,),
        order=check(claims(instrument="fisa_order")),
    ),
    _case("instrument-search-warrant", (), order=check(claims(instrument="search_warrant"))),
    # order.good_cause
    _case("no-good-cause", (R.ORDER_NO_GOOD_CAUSE,), order=check(claims(good_cause=False))),
    # order.jurisdiction
    _case(
        "jurisdiction-not-issuers",
        (R.ORDER_JURISDICTION,),
        order=check(claims(jurisdiction="US-FED")),
    ),
    _case(
        "jurisdiction-not-librarys",
        (R.ORDER_JURISDICTION,),
        order=check(claims(jurisdiction="US-NY"), courts=frozenset({"US-NY"})),
    ),
    _case("jurisdiction-library-empty", (R.ORDER_JURISDICTION,), jurisdictions=frozenset()),
    _case(
        "jurisdiction-no-issuer",
        (R.ORDER_JURISDICTION,),
        order=dataclasses.replace(check(), issuer=None),
    ),
    # order.revoked, order.uses
    _case("revoked", (R.ORDER_REVOKED,), state=OrderState(revoked=True)),
    _case("exhausted", (R.ORDER_EXHAUSTED,), state=OrderState(uses=1)),
    _case("uses-left", (), state=OrderState(uses=2), order=check(claims(max_uses=3))),
    _case(
        "exhausted-of-many",
        (R.ORDER_EXHAUSTED,),
        state=OrderState(uses=3),
        order=check(claims(max_uses=3)),
    ),
    # scope.patron: exact string match
    _case("patron-not-named", (R.SCOPE_PATRON,), req=request(patron_id="P000124")),
    _case("patron-case-differs", (R.SCOPE_PATRON,), req=request(patron_id=PATRON.lower())),
    _case("patron-whitespace", (R.SCOPE_PATRON,), req=request(patron_id=PATRON + " ")),
    # scope.category
    _case(
        "category-not-in-order",
        (R.SCOPE_CATEGORY,),
        req=request(categories=(Category.CIRCULATION, Category.HOLDS)),
    ),
    _case("category-none-requested", (R.SCOPE_CATEGORY,), req=request(categories=())),
    # scope.period
    _case(
        "period-starts-early",
        (R.SCOPE_PERIOD,),
        req=request(period=Period(D(2025, 11, 30), D(2026, 1, 1))),
    ),
    _case(
        "period-ends-late",
        (R.SCOPE_PERIOD,),
        req=request(period=Period(D(2026, 12, 1), D(2027, 1, 1))),
    ),
    _case(
        "period-inverted",
        (R.SCOPE_PERIOD,),
        req=request(period=Period(D(2026, 6, 1), D(2026, 2, 1))),
    ),
    _case("period-equal-bounds", (), req=request(period=Period(D(2025, 12, 1), D(2026, 12, 31)))),
    # scope.fields: a category that would release nothing is refused (fail closed)
    _case(
        "fields-order-names-none-mapped",
        (R.SCOPE_CATEGORY,),
        order=check(claims({"fields": {"circulation": ["shoe_size"]}})),
    ),
    _case(
        "fields-order-empty-list",
        (R.SCOPE_CATEGORY,),
        order=check(claims({"fields": {"circulation": []}})),
    ),
    _case("fields-all-forbidden", (R.SCOPE_CATEGORY,), policy=FORBID_ALL_CIRCULATION),
    _case(
        "fields-category-unmapped",
        (R.SCOPE_CATEGORY,),
        req=request(categories=(Category.REFERENCE,)),
        order=check(claims({"categories": ["reference"]})),
    ),
    _case(
        "fields-checked-without-order",
        (R.ORDER_MISSING, R.SCOPE_CATEGORY),
        policy=FORBID_ALL_CIRCULATION,
        **NO_ORDER,
    ),
    # several at once: every reason, in rule order, each once
    _case(
        "everything-wrong",
        (
            R.ORDER_NOT_COURT_ISSUED,
            R.ORDER_NO_GOOD_CAUSE,
            R.ORDER_JURISDICTION,
            R.ORDER_REVOKED,
            R.ORDER_EXHAUSTED,
            R.SCOPE_PATRON,
            R.SCOPE_CATEGORY,
            R.SCOPE_PERIOD,
        ),
        req=request(
            patron_id="P1",
            categories=(Category.HOLDS,),
            period=Period(D(2020, 1, 1), D(2020, 2, 1)),
        ),
        order=check(claims(instrument="subpoena", good_cause=False, jurisdiction="US-NY")),
        state=OrderState(revoked=True, uses=5),
    ),
    _case(
        "side-door-without-order-and-failed-token",
        (R.PURPOSE_UNSUPPORTED, R.ORDER_MALFORMED),
        req=request(purpose="national_security", has_order=True),
        order=check(failures=(R.ORDER_MALFORMED,)),
    ),
    _case(
        "missing-and-token-failed",
        (R.ORDER_MISSING, R.ORDER_EXPIRED),
        req=request(has_order=False),
        order=check(failures=(R.ORDER_EXPIRED,)),
    ),
]


@pytest.mark.parametrize(("inputs", "expected"), CASES)
def test_rule_table(inputs: dict[str, Any], expected: tuple[Reason, ...]) -> None:
    decision = decide(**inputs)
    assert decision.reasons == expected
    assert decision.effect is (Effect.PERMIT if not expected else Effect.DENY)
    assert decision.permitted is (not expected)
    assert (decision.obligations is None) is bool(expected)
    assert decision.policy == DEFAULT_POLICY.sha256 or "policy" in inputs
    assert tuple(rule.rule for rule in decision.trace) == ALL_RULES
    failed = [r for rule in decision.trace if rule.outcome == "fail" for r in rule.reasons]
    assert set(failed) == set(expected)


def test_every_engine_reason_has_a_case() -> None:
    covered = {reason for case in CASES for reason in case.values[1]}
    engine_reasons = {
        R.PURPOSE_UNSUPPORTED,
        R.ORDER_MISSING,
        R.ORDER_CLAIMS_INVALID,
        R.ORDER_NOT_COURT_ISSUED,
        R.ORDER_NO_GOOD_CAUSE,
        R.ORDER_JURISDICTION,
        R.ORDER_REVOKED,
        R.ORDER_EXHAUSTED,
        R.SCOPE_PATRON,
        R.SCOPE_CATEGORY,
        R.SCOPE_PERIOD,
    }
    assert engine_reasons <= covered


def test_permit_obligations_are_exact() -> None:
    policy = policy_from(
        'version = "t"\n'
        "[categories.circulation]\n"
        'forbidden_fields = ["checkout_date"]\n'
        "[categories.registration]\n"
        'forbidden_fields = ["date_of_birth"]\n'
    )
    order = check(
        claims(
            {
                "from": "2026-03-01",
                "to": "2026-12-31",
                "fields": {"circulation": ["due_date", "checkout_date", "title", "unmapped"]},
            }
        )
    )
    req = request(
        categories=(Category.REGISTRATION, Category.CIRCULATION),
        period=Period(D(2026, 3, 1), D(2026, 4, 30)),
    )
    decision = decide(req, order, policy=policy)
    assert decision.effect is Effect.PERMIT
    assert decision.reasons == ()
    assert decision.policy == policy.sha256
    assert decision.obligations == Obligations(
        patron_id=PATRON,
        categories=(Category.REGISTRATION, Category.CIRCULATION),
        period=Period(D(2026, 3, 1), D(2026, 4, 30)),
        fields={
            # not listed in the order's scope.fields: no order restriction, policy still applies
            Category.REGISTRATION: ("name", "address", "email", "card_number"),
            # the mapping's order, narrowed by the order, minus the forbidden field
            Category.CIRCULATION: ("title", "due_date"),
        },
    )


def test_permit_period_is_the_intersection() -> None:
    req = request(period=Period(D(2025, 12, 1), D(2026, 12, 31)))
    decision = decide(req, check())
    assert decision.obligations is not None
    assert decision.obligations.period == Period(D(2025, 12, 1), D(2026, 12, 31))


def test_duplicate_categories_are_obliged_once_in_request_order() -> None:
    req = request(categories=(Category.CIRCULATION, Category.REGISTRATION, Category.CIRCULATION))
    decision = decide(req, check())
    assert decision.obligations is not None
    assert decision.obligations.categories == (Category.CIRCULATION, Category.REGISTRATION)
    assert list(decision.obligations.fields) == [Category.CIRCULATION, Category.REGISTRATION]


def test_fisa_order_is_refused_by_default_and_permitted_when_switched_on() -> None:
    fisa = check(
        claims(instrument="fisa_order", jurisdiction="US-FED"), courts=frozenset({"US-FED"})
    )
    assert decide(order=fisa).reasons == (R.ORDER_NOT_COURT_ISSUED,)
    fisa_on = policy_from(
        'version = "fisa-on"\n'
        'accepted_instruments = ["court_order", "search_warrant", "fisa_order"]\n'
    )
    decision = decide(order=fisa, policy=fisa_on)
    assert decision.effect is Effect.PERMIT
    assert decision.policy == fisa_on.sha256


def test_without_claims_claim_rules_are_skipped_and_others_run() -> None:
    decision = decide(request(has_order=False), None)
    outcomes = {rule.rule: rule.outcome for rule in decision.trace}
    assert outcomes == {
        "purpose": "pass",
        "order.present": "fail",
        "order.token": "skipped",
        **dict.fromkeys(CLAIM_RULES, "skipped"),
        "scope.fields": "pass",
    }


def test_undeclared_purpose_skips_the_order_rule() -> None:
    decision = decide(request(purpose="emergency", has_order=False), None)
    present = next(rule for rule in decision.trace if rule.rule == "order.present")
    assert present.outcome == "skipped"


def test_patron_rule_records_no_patron_id() -> None:
    decision = decide(request(patron_id="P000999"), check())
    patron = next(rule for rule in decision.trace if rule.rule == "scope.patron")
    assert dict(patron.compared) == {"patron_in_order": True, "patrons_named": 2}
    missing = decide(request(patron_id="P777"), check())
    patron = next(rule for rule in missing.trace if rule.rule == "scope.patron")
    assert patron.outcome == "fail"
    assert dict(patron.compared) == {"patron_in_order": False, "patrons_named": 2}


@pytest.mark.parametrize("order", [check(), None], ids=["permit", "deny"])
def test_decision_json_holds_no_patron_id(order: Any) -> None:
    decision = decide(request(patron_id="P000999", has_order=order is not None), order)
    rendered = json.dumps(decision_json(decision, include_trace=True))
    assert "P000999" not in rendered
    assert PATRON not in rendered  # the other patron the order names


def test_decision_json_shape() -> None:
    decision = decide(request(has_order=False), None)
    body = decision_json(decision, include_trace=False)
    assert body == {
        "effect": "deny",
        "reasons": [{"code": "order.missing", "message": message_of(R.ORDER_MISSING)}],
        "policy": DEFAULT_POLICY.sha256,
    }
    traced = decision_json(decision, include_trace=True)
    assert [rule["rule"] for rule in traced["trace"]] == list(ALL_RULES)
    assert traced["trace"][1] == {
        "rule": "order.present",
        "outcome": "fail",
        "reasons": ["order.missing"],
        "compared": {"requires_order": True, "has_order": False},
    }
    json.dumps(traced)  # every compared value is JSON


def test_decision_json_permit() -> None:
    body = decision_json(decide(order=check()), include_trace=False)
    assert body == {"effect": "permit", "reasons": [], "policy": DEFAULT_POLICY.sha256}


def test_evaluate_is_deterministic_and_leaves_inputs_alone() -> None:
    mapping = {cat: tuple(fields) for cat, fields in MAPPING.items()}
    order, req, state = check(), request(), OrderState(uses=0)

    def run(now: dt.datetime) -> Any:
        return evaluate(
            req,
            order,
            state,
            DEFAULT_POLICY,
            jurisdictions=LIBRARY,
            mapping_fields=mapping,
            now=now,
        )

    assert run(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == run(
        dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    )
    assert mapping == MAPPING
    assert order == check()
    assert req == request()
    assert state == OrderState(uses=0)


def test_no_patron_attribute_is_an_input() -> None:
    # Nationality, residency, age...: not a field of the request, not a parameter of evaluate.
    assert {f.name for f in dataclasses.fields(AccessRequest)} == {
        "purpose",
        "patron_id",
        "categories",
        "period",
        "has_order",
    }
    assert list(inspect.signature(evaluate).parameters) == [
        "request",
        "order",
        "state",
        "policy",
        "jurisdictions",
        "mapping_fields",
        "now",
        "approval",  # counsel's sign-off of the order: about the order, not the patron
    ]


def test_no_order_never_permits_even_under_an_unvalidated_policy() -> None:
    # The loader refuses an order-free purpose; the engine must not rely on that alone.
    policy = DEFAULT_POLICY.policy.model_copy(
        update={"purposes": {"legal_process": PurposeRules.model_construct(requires_order=False)}}
    )
    unchecked = LoadedPolicy(policy=policy, sha256="unchecked", text="")
    decision = decide(request(has_order=False), None, policy=unchecked)
    assert decision.effect is Effect.DENY
    assert decision.reasons == (R.ORDER_MISSING,)
    assert decision.obligations is None
