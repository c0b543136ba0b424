"""Properties of the engine for any request and order.

The oracle below restates the seed's conditions directly on the inputs (not through the
engine's lookups); the engine must permit exactly when they all hold, and a permit's
obligations must stay inside them. Patron attributes beyond the identifier (nationality,
citizenship, residency, age, name...) are added as extra claims and must change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from app.core.reasons import Reason
from app.orders.checks import OrderCheck, TrustedIssuer
from app.orders.models import Instrument, OrderClaims
from app.policy.decision import AccessRequest, Decision, Effect, OrderState
from app.policy.engine import decision_json, evaluate
from app.policy.models import LoadedPolicy
from app.records.categories import Category
from app.records.obligations import Period

from .factories import DEFAULT_POLICY, ISS, MAPPING, NOW, claims_dict, policy_from

SETTINGS = settings(max_examples=200, deadline=None)

PATRONS = ["patron-7f3a", "patron-91c2", "patron-0b5e"]
JURISDICTIONS = ["US-IL", "US-FED", "US-NY"]
TOKEN_FAILURES = [Reason.ORDER_EXPIRED, Reason.ORDER_SIGNATURE_INVALID, Reason.ORDER_AUDIENCE]
PATRON_ATTRIBUTES = [
    "nationality", "citizenship", "residency", "immigration_status", "age", "date_of_birth",
    "patron_name", "religion", "ethnicity", "national_origin",
]  # fmt: skip

FISA_AND_FORBIDDEN = policy_from(
    'version = "prop"\n'
    'accepted_instruments = ["court_order", "fisa_order"]\n'
    "[categories.circulation]\n"
    'forbidden_fields = ["due_date", "return_date"]\n'
    "[categories.registration]\n"
    'forbidden_fields = ["date_of_birth", "address"]\n'
)
POLICIES = [DEFAULT_POLICY, FISA_AND_FORBIDDEN]


def mostly(good: Any, *bad: Any, weight: int = 6) -> st.SearchStrategy[Any]:
    """``good`` about ``weight`` times in ``weight + len(bad)``: permits must be common."""
    return st.sampled_from([good] * weight + list(bad))


dates = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31))
# Mapped categories are drawn three times as often as the ones the mapping leaves out.
any_category = st.sampled_from([*[c for c in Category if c in MAPPING] * 3, *Category])
extras = st.dictionaries(
    st.sampled_from(PATRON_ATTRIBUTES),
    st.one_of(st.text(max_size=12), st.integers(0, 120), st.booleans(), st.none()),
)


@st.composite
def order_claims(draw: st.DrawFn) -> dict[str, Any]:
    start, end = sorted((draw(dates), draw(dates)))
    cats = draw(st.lists(any_category, min_size=1, max_size=4, unique=True))
    scope: dict[str, Any] = {
        "patrons": draw(st.lists(st.sampled_from(PATRONS), min_size=1, max_size=3, unique=True)),
        "categories": [c.value for c in cats],
        "from": start.isoformat(),
        "to": end.isoformat(),
    }
    if draw(mostly(False, True, weight=2)):
        named = [c for c in cats if draw(st.booleans())]
        scope["fields"] = {
            c.value: draw(st.lists(st.sampled_from([*MAPPING.get(c, ()), "unmapped"]), unique=True))
            for c in named
        }
    instrument = draw(mostly(Instrument.COURT_ORDER, *Instrument, weight=4))
    return claims_dict(
        scope,
        instrument=instrument.value,
        good_cause=draw(mostly(True, False)),
        jurisdiction=draw(st.sampled_from(JURISDICTIONS)),
        max_uses=draw(st.integers(1, 3)),
    )


@st.composite
def access_request(draw: st.DrawFn, claims: dict[str, Any]) -> AccessRequest:
    scope = claims["scope"]
    if draw(mostly(True, False, weight=4)):
        # Aligned with the order, so that permits are common enough to test.
        patron = draw(st.sampled_from(scope["patrons"]))
        cats = draw(st.lists(st.sampled_from(scope["categories"]), min_size=1, unique=True))
        lo, hi = dt.date.fromisoformat(scope["from"]), dt.date.fromisoformat(scope["to"])
        inside = st.dates(min_value=lo, max_value=hi)
        start, end = sorted((draw(inside), draw(inside)))
    else:
        patron = draw(st.sampled_from([*PATRONS, PATRONS[0].upper()]))
        cats = [c.value for c in draw(st.lists(any_category, max_size=3))]
        start, end = draw(dates), draw(dates)  # possibly inverted
    return AccessRequest(
        purpose=draw(
            mostly("legal_process", "national_security", "emergency", "law_enforcement", "x")
        ),
        patron_id=patron,
        categories=tuple(Category(c) for c in cats),
        period=Period(start, end),
        has_order=draw(mostly(True, False)),
    )


@st.composite
def competent(draw: st.DrawFn, jurisdiction: str) -> frozenset[str]:
    """A set of jurisdictions that holds ``jurisdiction`` most of the time."""
    others = draw(st.lists(st.sampled_from(JURISDICTIONS), unique=True))
    return frozenset(others) | ({jurisdiction} if draw(mostly(True, False)) else set())


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    claims = draw(order_claims())
    return {
        "claims": claims,
        "kind": draw(mostly("verified", "failed", "none")),
        "failures": tuple(draw(st.lists(st.sampled_from(TOKEN_FAILURES), min_size=1, unique=True))),
        "courts": draw(competent(claims["jurisdiction"])),
        "request": draw(access_request(claims)),
        "state": OrderState(revoked=draw(mostly(False, True)), uses=draw(mostly(0, 1, 2, 3))),
        "library": draw(competent(claims["jurisdiction"])),
        "policy": draw(st.sampled_from(POLICIES)),
    }


def _check(scenario: dict[str, Any], extra: dict[str, Any] | None = None) -> OrderCheck | None:
    if scenario["kind"] == "none":
        return None
    if scenario["kind"] == "failed":
        return OrderCheck(claims=None, issuer=None, failures=scenario["failures"])
    claims = OrderClaims.model_validate({**scenario["claims"], **(extra or {})})
    issuer = TrustedIssuer(ISS, "court", scenario["courts"])
    return OrderCheck(claims=claims, issuer=issuer, failures=())


def _evaluate(scenario: dict[str, Any], extra: dict[str, Any] | None = None) -> Decision:
    return evaluate(
        scenario["request"],
        _check(scenario, extra),
        scenario["state"],
        scenario["policy"],
        jurisdictions=scenario["library"],
        mapping_fields=MAPPING,
        now=NOW,
    )


def _expected_fields(
    req: AccessRequest, claims: OrderClaims, policy: LoadedPolicy
) -> dict[Category, tuple[str, ...]]:
    out = {}
    for cat in dict.fromkeys(req.categories):
        rules = policy.policy.categories.get(cat)
        forbidden = set(rules.forbidden_fields) if rules else set()
        named = (claims.scope.fields or {}).get(cat)
        out[cat] = tuple(
            f for f in MAPPING.get(cat, ()) if f not in forbidden and (named is None or f in named)
        )
    return out


def _oracle(scenario: dict[str, Any], order: OrderCheck | None) -> bool:
    """Every condition of the seed, the contract and the policy, stated on the inputs."""
    req: AccessRequest = scenario["request"]
    policy: LoadedPolicy = scenario["policy"]
    if order is None or order.claims is None or order.failures or not req.has_order:
        return False
    claims, scope = order.claims, order.claims.scope
    fields = _expected_fields(req, claims, policy)
    return (
        req.purpose in policy.policy.purposes
        and claims.instrument in policy.policy.accepted_instruments
        and claims.good_cause
        and claims.jurisdiction in scenario["courts"]
        and claims.jurisdiction in scenario["library"]
        and not scenario["state"].revoked
        and scenario["state"].uses < claims.max_uses
        and req.patron_id in scope.patrons
        and bool(req.categories)
        and set(req.categories) <= set(scope.categories)
        and scope.from_ <= req.period.start <= req.period.end <= scope.to
        and all(fields.values())
    )


@SETTINGS
@given(scenarios())
def test_permit_exactly_when_every_condition_holds(scenario: dict[str, Any]) -> None:
    order = _check(scenario)
    decision = _evaluate(scenario)
    note(repr(decision.reasons))
    assert (decision.effect is Effect.PERMIT) is _oracle(scenario, order)


@SETTINGS
@given(scenarios())
def test_a_permit_stays_inside_the_order_and_the_policy(scenario: dict[str, Any]) -> None:
    decision = _evaluate(scenario)
    if decision.effect is not Effect.PERMIT:
        assert decision.reasons, "a deny must give at least one reason"
        assert decision.obligations is None
        return
    order = _check(scenario)
    assert order is not None
    assert order.claims is not None
    req, claims, ob = scenario["request"], order.claims, decision.obligations
    assert decision.reasons == ()
    assert ob is not None
    assert ob.patron_id == req.patron_id
    assert ob.patron_id in claims.scope.patrons
    assert ob.categories == tuple(dict.fromkeys(req.categories))
    assert set(ob.categories) <= set(claims.scope.categories)
    assert ob.period == req.period
    assert claims.scope.from_ <= ob.period.start <= ob.period.end <= claims.scope.to
    assert claims.instrument in scenario["policy"].accepted_instruments
    assert claims.instrument not in {Instrument.SUBPOENA, Instrument.NATIONAL_SECURITY_LETTER}
    assert claims.good_cause is True
    assert claims.jurisdiction in scenario["courts"] & scenario["library"]
    assert not scenario["state"].revoked
    assert scenario["state"].uses < claims.max_uses
    assert dict(ob.fields) == _expected_fields(req, claims, scenario["policy"])
    for cat, names in ob.fields.items():
        forbidden = scenario["policy"].forbidden_fields.get(cat, frozenset())
        assert names
        assert set(names) <= set(MAPPING[cat]) - forbidden


@SETTINGS
@given(scenarios(), extras, extras)
def test_patron_attributes_never_change_the_decision(
    scenario: dict[str, Any], first: dict[str, Any], second: dict[str, Any]
) -> None:
    bare = _evaluate(scenario)
    assert _evaluate(scenario, first) == bare
    assert _evaluate(scenario, second) == bare


@SETTINGS
@given(scenarios())
def test_reasons_are_the_failed_rules_in_rule_order(scenario: dict[str, Any]) -> None:
    decision = _evaluate(scenario)
    failed = [r for rule in decision.trace if rule.outcome == "fail" for r in rule.reasons]
    assert decision.reasons == tuple(dict.fromkeys(failed))
    for rule in decision.trace:
        assert (rule.outcome == "fail") is bool(rule.reasons)


@SETTINGS
@given(scenarios())
def test_rendered_decision_holds_no_patron_id(scenario: dict[str, Any]) -> None:
    rendered = json.dumps(decision_json(_evaluate(scenario), include_trace=True))
    for patron in (*PATRONS, PATRONS[0].upper()):
        assert patron not in rendered
