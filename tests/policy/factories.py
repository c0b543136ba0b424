"""Builders for policy-engine tests: claims, verifier results, requests and policies.

Orders are built as OrderClaims directly (no tokens): the engine consumes the verifier's
output, not the token.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core.config import BUNDLED_POLICY
from app.core.reasons import Reason
from app.orders.checks import OrderCheck, TrustedIssuer
from app.orders.models import OrderClaims
from app.policy.decision import AccessRequest, Decision, OrderState
from app.policy.engine import evaluate
from app.policy.models import LoadedPolicy, load_policy, parse_policy
from app.records.categories import Category
from app.records.obligations import Period

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
PATRON = "P000123"
ISS = "https://courts.example/il-cook"
LIBRARY = frozenset({"US-IL", "US-FED"})

#: What a records mapping lets leave, per category (output names, in the mapping's order).
MAPPING: dict[Category, tuple[str, ...]] = {
    Category.REGISTRATION: ("name", "address", "email", "date_of_birth", "card_number"),
    Category.CIRCULATION: ("title", "checkout_date", "due_date", "return_date"),
    Category.HOLDS: ("title", "placed_at"),
    Category.SEARCH_HISTORY: ("query_text", "searched_at", "source"),
}

DEFAULT_POLICY = load_policy(BUNDLED_POLICY)


def policy_from(text: str) -> LoadedPolicy:
    """A policy parsed from text, as if it were a file."""
    return parse_policy(text.encode(), source="custom.toml")


def claims_dict(scope: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Valid order claims as a JSON-like dict; ``scope`` entries override the scope's."""
    iat = int(NOW.timestamp()) - 3600
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": "bulwark",
        "iat": iat,
        "exp": iat + 30 * 86400,
        "jti": "order-1",
        "case": "2026-CR-0042",
        "court": "Circuit Court of Cook County",
        "jurisdiction": "US-IL",
        "instrument": "court_order",
        "good_cause": True,
        "scope": {
            "patrons": [PATRON, "P000999"],
            "categories": ["circulation", "registration"],
            "from": "2025-12-01",
            "to": "2026-12-31",
        },
    }
    claims["scope"].update(scope or {})
    claims.update(overrides)
    return claims


def claims(scope: dict[str, Any] | None = None, **overrides: Any) -> OrderClaims:
    """Valid OrderClaims, with overrides."""
    return OrderClaims.model_validate(claims_dict(scope, **overrides))


def check(
    order: OrderClaims | None = None,
    *,
    courts: frozenset[str] = frozenset({"US-IL"}),
    failures: tuple[Reason, ...] = (),
) -> OrderCheck:
    """A verifier result: verified claims by default."""
    if order is None and not failures:
        order = claims()
    issuer = TrustedIssuer(ISS, "Circuit Court of Cook County", courts) if order else None
    return OrderCheck(claims=order, issuer=issuer, failures=failures)


def request(**overrides: Any) -> AccessRequest:
    """A legal-process request for PATRON's circulation records, Jan to Jun 2026."""
    values: dict[str, Any] = {
        "purpose": "legal_process",
        "patron_id": PATRON,
        "categories": (Category.CIRCULATION,),
        "period": Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
        "has_order": True,
    }
    values.update(overrides)
    return AccessRequest(**values)


def decide(
    req: AccessRequest | None = None,
    order: OrderCheck | None = None,
    state: OrderState | None = None,
    policy: LoadedPolicy = DEFAULT_POLICY,
    *,
    jurisdictions: frozenset[str] = LIBRARY,
    mapping: dict[Category, tuple[str, ...]] | None = None,
) -> Decision:
    """evaluate() with the defaults above."""
    return evaluate(
        req or request(),
        order,
        state or OrderState(),
        policy,
        jurisdictions=jurisdictions,
        mapping_fields=MAPPING if mapping is None else mapping,
        now=NOW,
    )
