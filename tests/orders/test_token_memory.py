"""The verifier remembers what a token is, and still judges its time on every call.

A token shown again is not checked again (its signature cannot have changed, nor the trust
store under one verifier), but expiry, not-before and lifetime depend on the moment and are
checked each time; a forged copy of a good token is a different token; memory is bounded.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from app.core.reasons import Reason
from app.orders import jose
from app.orders.tokens import CHECKED_TOKENS, OrderVerifier
from app.orders.trust import TrustStore

from .conftest import SigningKeys
from .helpers import NOW, NOW_TS, assert_denied, claims, signed


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = jose.signature_ok

    def counting(token: str, key: object) -> bool:
        seen.append(token)
        return real(token, key)  # type: ignore[arg-type]

    monkeypatch.setattr(jose, "signature_ok", counting)
    return seen


def test_a_token_shown_again_is_not_checked_again(
    verifier: OrderVerifier, signing_keys: SigningKeys, signature_checks: list[str]
) -> None:
    token = signed(signing_keys.cook_es, claims())
    first = verifier.verify(token, NOW)
    second = verifier.verify(token, NOW + timedelta(seconds=5))
    assert first.verified and second.verified
    assert first.claims == second.claims
    assert len(signature_checks) == 1


def test_time_is_judged_on_every_call(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es, claims(exp=NOW_TS + 3600))
    assert verifier.verify(token, NOW).verified
    later = verifier.verify(token, NOW + timedelta(hours=2))
    assert_denied(later, Reason.ORDER_EXPIRED)
    assert verifier.verify(token, NOW).verified  # and the earlier moment still holds


def test_a_forged_copy_of_a_remembered_token_is_refused(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    token = signed(signing_keys.cook_es, claims())
    assert verifier.verify(token, NOW).verified
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    bad = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    forged = f"{head}.{payload}.{bad}"
    for _ in range(2):  # refused when first seen and when remembered
        assert_denied(verifier.verify(forged, NOW), Reason.ORDER_SIGNATURE_INVALID)
    assert verifier.verify(token, NOW).verified


def test_a_remembered_forgery_costs_no_second_signature_check(
    verifier: OrderVerifier, signing_keys: SigningKeys, signature_checks: list[str]
) -> None:
    token = signed(signing_keys.attacker_es, claims(), kid=signing_keys.cook_es.kid)
    for _ in range(3):
        assert_denied(verifier.verify(token, NOW), Reason.ORDER_SIGNATURE_INVALID)
    assert len(signature_checks) == 1


def test_memory_is_bounded(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    for n in range(CHECKED_TOKENS + 25):
        verifier.verify(f"not.a.token{n}", NOW)
    assert len(verifier._checked) == CHECKED_TOKENS


def test_a_token_over_the_size_cap_is_not_remembered(trust: TrustStore) -> None:
    verifier = OrderVerifier(
        trust,
        audience="bulwark",
        allowed_algorithms={"ES256"},
        clock_skew_seconds=60,
        max_lifetime_days=90,
        max_token_bytes=1000,
    )
    assert_denied(verifier.verify("a" * 1001, NOW), Reason.ORDER_MALFORMED)
    assert len(verifier._checked) == 0
    assert_denied(verifier.verify("a" * 1000, NOW), Reason.ORDER_MALFORMED)
    assert len(verifier._checked) == 1
