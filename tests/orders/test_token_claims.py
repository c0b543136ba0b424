"""Claims of correctly signed orders: shape, audience, time, lifetime, all reported together."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.core.reasons import Reason
from app.orders.checks import OrderCheck
from app.orders.issuing import OMIT, load_private_key, public_jwk, sign_compact
from app.orders.tokens import MAX_UNVERIFIED_CHARS, OrderVerifier
from app.orders.trust import TrustStore

from .conftest import SigningKeys
from .helpers import (
    AUDIENCE,
    COOK,
    MAX_LIFETIME_DAYS,
    NOW,
    NOW_TS,
    SKEW,
    assert_denied,
    claims,
    header,
    signed,
)

R = Reason
DAY = 86400


def _check(verifier: OrderVerifier, signing_keys: SigningKeys, **overrides: object) -> OrderCheck:
    return verifier.verify(signed(signing_keys.cook_es, claims(**overrides)), NOW)


# --- shape -----------------------------------------------------------------------------------


def test_exp_as_a_string(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(exp=str(NOW_TS + DAY))), NOW)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


def test_missing_jti(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(jti=OMIT)), NOW)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


def test_missing_case(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(case=OMIT)), NOW)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


def test_missing_scope(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(scope=OMIT)), NOW)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


def test_missing_instrument(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(instrument=OMIT)), NOW)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


@pytest.mark.parametrize(
    "overrides",
    [
        {"good_cause": "true"},
        {"iat": True},
        {"exp": float(NOW_TS + DAY)},
        {"instrument": "letter_from_the_sheriff"},
        {"patrons": []},
        {"categories": ["diaries"]},
        {"period": ("2026-06-30", "2026-01-01")},
        {"max_uses": 0},
    ],
    ids=[
        "good-cause-str",
        "iat-bool",
        "exp-float",
        "instrument",
        "no-patrons",
        "category",
        "period-reversed",
        "max-uses-0",
    ],
)
def test_wrong_shape(
    verifier: OrderVerifier, signing_keys: SigningKeys, overrides: dict[str, object]
) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(**overrides)), NOW)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


def test_exp_before_iat(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    # Both within the skew of now, so only the inverted order of the two is wrong.
    check = _check(verifier, signing_keys, iat=NOW_TS + 30, exp=NOW_TS - 30)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


# --- audience --------------------------------------------------------------------------------


def test_audience_list_without_us(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = _check(verifier, signing_keys, aud=["records-api", "catalog"])
    assert_denied(check, R.ORDER_AUDIENCE)


def test_audience_string_of_another_deployment(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    assert_denied(_check(verifier, signing_keys, aud="bulwark-staging"), R.ORDER_AUDIENCE)


def test_audience_empty_list(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    assert_denied(_check(verifier, signing_keys, aud=[]), R.ORDER_AUDIENCE)


def test_audience_list_containing_us(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = verifier.verify(signed(signing_keys.cook_es, claims(aud=["x", AUDIENCE])), NOW)
    assert check.verified


def test_audience_missing(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    assert_denied(_check(verifier, signing_keys, aud=OMIT), R.ORDER_CLAIMS_INVALID)


# --- time ------------------------------------------------------------------------------------


def test_expired_one_second_beyond_the_skew(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(verifier, signing_keys, iat=NOW_TS - DAY, exp=NOW_TS - SKEW - 1)
    assert_denied(check, R.ORDER_EXPIRED)


def test_expired_exactly_at_the_skew_still_passes(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(verifier, signing_keys, iat=NOW_TS - DAY, exp=NOW_TS - SKEW)
    assert check.verified, check.failures


def test_nbf_in_the_future(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = _check(verifier, signing_keys, nbf=NOW_TS + SKEW + 1)
    assert_denied(check, R.ORDER_NOT_YET_VALID)


def test_nbf_within_the_skew_passes(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    assert _check(verifier, signing_keys, nbf=NOW_TS + SKEW).verified


def test_iat_in_the_future(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = _check(verifier, signing_keys, iat=NOW_TS + SKEW + 1, exp=NOW_TS + 10 * DAY)
    assert_denied(check, R.ORDER_NOT_YET_VALID)


def test_ten_year_lifetime(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = _check(verifier, signing_keys, lifetime_days=3653)
    assert_denied(check, R.ORDER_LIFETIME_EXCEEDED)


def test_lifetime_exactly_at_the_maximum_passes(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    assert _check(verifier, signing_keys, lifetime_days=MAX_LIFETIME_DAYS).verified


def test_lifetime_one_second_over_the_maximum(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(verifier, signing_keys, exp=NOW_TS + MAX_LIFETIME_DAYS * DAY + 1)
    assert_denied(check, R.ORDER_LIFETIME_EXCEEDED)


def test_naive_now_is_a_programming_error(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verifier.verify(signed(signing_keys.cook_es), datetime(2026, 3, 1, 12))


# --- every independent failure together ------------------------------------------------------


def test_expired_and_wrong_audience_together(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(verifier, signing_keys, aud="elsewhere", iat=NOW_TS - DAY, exp=NOW_TS - DAY // 2)
    assert_denied(check, R.ORDER_EXPIRED, R.ORDER_AUDIENCE)


def test_bad_shape_expired_and_wrong_audience_together(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(
        verifier, signing_keys, case=OMIT, aud=["elsewhere"], iat=NOW_TS - DAY, exp=NOW_TS - 600
    )
    assert_denied(check, R.ORDER_CLAIMS_INVALID, R.ORDER_EXPIRED, R.ORDER_AUDIENCE)


def test_every_time_failure_together(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    # iat in the future, and a ten-year lifetime, from a token that is not yet valid.
    check = _check(
        verifier, signing_keys, iat=NOW_TS + DAY, nbf=NOW_TS + DAY, exp=NOW_TS + 3653 * DAY
    )
    assert_denied(check, R.ORDER_NOT_YET_VALID, R.ORDER_LIFETIME_EXCEEDED)


def test_wrong_type_and_claim_failures_together(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    # A good signature from a trusted key: its claims can be checked, so they are reported.
    payload = claims(aud="elsewhere")
    check = verifier.verify(signed(signing_keys.cook_es, payload, typ="JWT"), NOW)
    assert_denied(check, R.ORDER_WRONG_TYPE, R.ORDER_AUDIENCE)


def test_unreadable_time_claims_are_only_a_shape_failure(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(verifier, signing_keys, exp="tomorrow", iat=None, aud=7)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)


# --- what a check carries ---------------------------------------------------------------------


def test_unverified_fields_are_truncated(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    check = _check(verifier, signing_keys, jti="j" * 1000, case="c" * 300)
    assert_denied(check, R.ORDER_CLAIMS_INVALID)
    assert check.unverified["jti"] == "j" * MAX_UNVERIFIED_CHARS
    assert check.unverified["case"] == "c" * MAX_UNVERIFIED_CHARS
    assert check.unverified["iss"] == COOK


def test_unverified_fields_of_a_forgery_are_kept_for_the_audit(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    token = signed(signing_keys.attacker_es, claims(jti="forged-1"), kid="cook-es-2026")
    check = verifier.verify(token, NOW)
    assert_denied(check, R.ORDER_SIGNATURE_INVALID)
    assert check.unverified == {
        "kid": "cook-es-2026",
        "alg": "ES256",
        "iss": COOK,
        "jti": "forged-1",
        "case": "2026-CR-000123",
        "instrument": "court_order",
    }


def test_verified_claims_are_typed(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    check = _check(verifier, signing_keys, patrons=["P1", "P2"], max_uses=3)
    assert check.claims is not None
    assert check.claims.scope.patrons == ["P1", "P2"]
    assert check.claims.max_uses == 3
    assert check.issuer is not None
    assert check.issuer.jurisdictions == frozenset({"US-IL"})


def test_ps256_orders_verify(signing_keys: SigningKeys) -> None:
    # python-jose 3.x has no RSASSA-PSS; Bulwark supplies it, so PS* keys work end to end.
    rsa_key = load_private_key(signing_keys.cook_rs.pem)
    jwk = public_jwk(rsa_key.public_key(), kid="cook-ps-2026", alg="PS256")
    store = TrustStore.from_document(
        {"issuers": [{"iss": COOK, "name": "Cook", "jurisdictions": ["US-IL"], "keys": [jwk]}]}
    )
    verifier = OrderVerifier(
        store,
        audience=AUDIENCE,
        allowed_algorithms={"PS256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
    )
    hdr = header(signing_keys.cook_rs, alg="PS256", kid="cook-ps-2026")
    token = sign_compact(hdr, claims(), signing_keys.cook_rs.pem, "PS256")
    assert verifier.verify(token, NOW).verified
    rs_signed = sign_compact(hdr, claims(), signing_keys.cook_rs.pem, "RS256")
    assert_denied(verifier.verify(rs_signed, NOW), R.ORDER_SIGNATURE_INVALID)
