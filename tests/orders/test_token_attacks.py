"""Hostile and broken court-order tokens: each refused with exactly the right reason codes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from typing import Any
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.core.reasons import Reason
from app.orders.issuing import load_private_key, sign_compact
from app.orders.jose import b64url_decode, b64url_encode
from app.orders.tokens import OrderVerifier
from app.orders.trust import TrustStore

from .conftest import SigningKeys
from .helpers import (
    AUDIENCE,
    COOK,
    MAX_LIFETIME_DAYS,
    NOW,
    NOW_TS,
    SKEW,
    assemble,
    assert_denied,
    claims,
    header,
    segment,
    signed,
)

R = Reason
ATTACKER_URL = "https://attacker.invalid/keys.json"


# --- the happy paths, as a baseline for every attack below -----------------------------------


@pytest.mark.parametrize("name", ["cook_rs", "cook_es"])
def test_valid_order_verifies(
    verifier: OrderVerifier, signing_keys: SigningKeys, name: str
) -> None:
    key = getattr(signing_keys, name)
    check = verifier.verify(signed(key), NOW)
    assert check.failures == ()
    assert check.verified
    assert check.claims is not None
    assert check.claims.iss == COOK
    assert check.issuer is not None
    assert check.issuer.iss == COOK
    assert check.unverified["kid"] == key.kid
    assert check.unverified["alg"] == key.alg


# --- alg: none, HMAC, and a key used with another algorithm ----------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_without_signature(
    verifier: OrderVerifier, signing_keys: SigningKeys, alg: str
) -> None:
    token = assemble(header(signing_keys.cook_rs, alg=alg), claims())
    assert token.endswith(".")
    assert_denied(verifier.verify(token, NOW), R.ORDER_ALGORITHM_REJECTED)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_a_real_signature(
    verifier: OrderVerifier, signing_keys: SigningKeys, alg: str
) -> None:
    real_signature = b64url_decode(signed(signing_keys.cook_rs).rsplit(".", 1)[1])
    token = assemble(header(signing_keys.cook_rs, alg=alg), claims(), real_signature)
    assert_denied(verifier.verify(token, NOW), R.ORDER_ALGORITHM_REJECTED)


def _public_pem(jwk_pem: bytes) -> bytes:
    return (
        load_private_key(jwk_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_hs256_signed_with_the_public_key_as_secret(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    # The classic key-confusion forgery: HMAC keyed with the issuer's (public) RSA key PEM.
    key = signing_keys.cook_rs
    signing_input = f"{segment(header(key, alg='HS256'))}.{segment(claims())}"
    mac = hmac.new(_public_pem(key.pem), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    assert_denied(verifier.verify(token, NOW), R.ORDER_ALGORITHM_REJECTED)


def test_rs256_header_naming_an_es256_key(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    # Signed by the court's own RSA key, but naming its EC key: a key only serves its own alg.
    token = signed(signing_keys.cook_rs, kid=signing_keys.cook_es.kid)
    assert_denied(verifier.verify(token, NOW), R.ORDER_ALGORITHM_REJECTED)


def test_es256_header_naming_an_rs256_key(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    token = signed(signing_keys.cook_es, kid=signing_keys.cook_rs.kid)
    assert_denied(verifier.verify(token, NOW), R.ORDER_ALGORITHM_REJECTED)


def test_alg_allowed_by_no_deployment_setting(trust: TrustStore, signing_keys: SigningKeys) -> None:
    rs_only = OrderVerifier(
        trust,
        audience=AUDIENCE,
        allowed_algorithms={"RS256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
    )
    assert_denied(rs_only.verify(signed(signing_keys.cook_es), NOW), R.ORDER_ALGORITHM_REJECTED)


@pytest.mark.parametrize("alg", ["HS256", "none", "RS1"])
def test_verifier_refuses_a_non_asymmetric_allowlist(trust: TrustStore, alg: str) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        OrderVerifier(
            trust,
            audience=AUDIENCE,
            allowed_algorithms={"RS256", alg},
            clock_skew_seconds=SKEW,
            max_lifetime_days=MAX_LIFETIME_DAYS,
        )


def test_alg_not_a_string(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = assemble(header(signing_keys.cook_rs, alg=["RS256"]), claims(), b"x")
    assert_denied(verifier.verify(token, NOW), R.ORDER_ALGORITHM_REJECTED)


# --- kid --------------------------------------------------------------------------------------


def test_unknown_kid(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es, kid="cook-2019-retired")
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


def test_missing_kid(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    key = signing_keys.cook_es
    hdr = header(key)
    del hdr["kid"]
    token = assemble(hdr, claims(), b"x" * 64)
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


def test_missing_kid_is_reported_with_an_untrusted_issuer(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    hdr = header(signing_keys.attacker_es)
    del hdr["kid"]
    token = assemble(hdr, claims(iss="https://courts.example/nowhere"), b"x" * 64)
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNTRUSTED_ISSUER, R.ORDER_UNKNOWN_KEY)


def test_kid_not_a_string(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es, kid=1)
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


@pytest.mark.parametrize(
    "kid", ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd"], ids=["rel", "abs", "url"]
)
def test_kid_holding_a_path_is_just_an_unknown_kid(
    verifier: OrderVerifier, signing_keys: SigningKeys, kid: str
) -> None:
    token = signed(signing_keys.cook_es, kid=kid)
    # Nothing on disk is ever opened on behalf of a token.
    with (
        mock.patch("builtins.open", side_effect=AssertionError("opened a file")),
        mock.patch("os.open", side_effect=AssertionError("opened a file")),
    ):
        check = verifier.verify(token, NOW)
    assert_denied(check, R.ORDER_UNKNOWN_KEY)


def test_kid_holding_sql_is_just_an_unknown_kid(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    token = signed(signing_keys.cook_es, kid="' OR 1=1 --")
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


def test_key_trusted_for_another_issuer(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    # DuPage's key is trusted, but only for DuPage: it cannot sign for Cook County.
    token = signed(signing_keys.dupage_es, claims(iss=COOK))
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


# --- headers that try to bring their own key --------------------------------------------------


@pytest.mark.parametrize("param", ["jku", "x5u"])
def test_key_url_header_with_attacker_key_under_the_courts_kid(
    verifier: OrderVerifier, signing_keys: SigningKeys, no_network: list[Any], param: str
) -> None:
    attacker = signing_keys.attacker_es
    token = signed(attacker, kid=signing_keys.cook_es.kid, **{param: ATTACKER_URL})
    assert_denied(verifier.verify(token, NOW), R.ORDER_SIGNATURE_INVALID)


@pytest.mark.parametrize("param", ["jku", "x5u"])
def test_key_url_header_with_attacker_key_under_its_own_kid(
    verifier: OrderVerifier, signing_keys: SigningKeys, no_network: list[Any], param: str
) -> None:
    token = signed(signing_keys.attacker_es, **{param: ATTACKER_URL})
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


def test_embedded_jwk_header_with_attacker_key(
    verifier: OrderVerifier, signing_keys: SigningKeys, no_network: list[Any]
) -> None:
    attacker = signing_keys.attacker_es
    token = signed(attacker, kid=signing_keys.cook_es.kid, jwk=attacker.jwk)
    assert_denied(verifier.verify(token, NOW), R.ORDER_SIGNATURE_INVALID)


def test_embedded_jwk_header_with_attacker_rsa_key_and_its_kid(
    verifier: OrderVerifier, signing_keys: SigningKeys, no_network: list[Any]
) -> None:
    attacker = signing_keys.attacker_rs
    token = signed(attacker, jwk=attacker.jwk)
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNKNOWN_KEY)


def test_embedded_x5c_certificate_of_attacker_key(
    verifier: OrderVerifier, signing_keys: SigningKeys, no_network: list[Any]
) -> None:
    attacker = signing_keys.attacker_es
    private = load_private_key(attacker.pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Circuit Court of Cook County")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .sign(private, hashes.SHA256())
    )
    x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    token = signed(attacker, kid=signing_keys.cook_es.kid, x5c=x5c)
    assert_denied(verifier.verify(token, NOW), R.ORDER_SIGNATURE_INVALID)


def test_key_headers_are_ignored_on_a_genuine_order(
    verifier: OrderVerifier, signing_keys: SigningKeys, no_network: list[Any]
) -> None:
    # Documented choice: these headers are never read, so they neither help nor hurt.
    attacker_jwk = signing_keys.attacker_es.jwk
    token = signed(signing_keys.cook_es, jku=ATTACKER_URL, x5u=ATTACKER_URL, jwk=attacker_jwk)
    assert verifier.verify(token, NOW).verified


# --- typ and crit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", ["JWT", "COURT-ORDER+JWT", "application/court-order+jwt", "court-order+jwt ", 7]
)
def test_wrong_typ(verifier: OrderVerifier, signing_keys: SigningKeys, typ: object) -> None:
    token = signed(signing_keys.cook_es, typ=typ)
    assert_denied(verifier.verify(token, NOW), R.ORDER_WRONG_TYPE)


def test_missing_typ(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    key = signing_keys.cook_es
    hdr = {"alg": key.alg, "kid": key.kid}
    token = sign_compact(hdr, claims(), key.pem, key.alg)
    assert_denied(verifier.verify(token, NOW), R.ORDER_WRONG_TYPE)


def test_crit_header_is_refused(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es, crit=["exp-policy"], **{"exp-policy": "lenient"})
    assert_denied(verifier.verify(token, NOW), R.ORDER_MALFORMED)


def test_crit_b64_false_is_refused(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es, crit=["b64"], b64=False)
    assert_denied(verifier.verify(token, NOW), R.ORDER_MALFORMED)


# --- signatures ------------------------------------------------------------------------------


def test_payload_altered_after_signing(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es)
    head, _, signature = token.split(".")
    # Wider scope, and claims that would also fail on their own: none of it may be reported.
    altered = claims(patrons=["P000123", "P999999"], aud="elsewhere", exp=NOW_TS - 86400)
    forged = f"{head}.{segment(altered)}.{signature}"
    assert_denied(verifier.verify(forged, NOW), R.ORDER_SIGNATURE_INVALID)


def test_header_altered_after_signing(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es)
    _, payload, signature = token.split(".")
    forged = f"{segment(header(signing_keys.cook_es, note='x'))}.{payload}.{signature}"
    assert_denied(verifier.verify(forged, NOW), R.ORDER_SIGNATURE_INVALID)


def test_signature_stripped(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_rs).rsplit(".", 1)[0]
    assert_denied(verifier.verify(token, NOW), R.ORDER_MALFORMED)


@pytest.mark.parametrize("name", ["cook_rs", "cook_es"])
def test_signature_empty(verifier: OrderVerifier, signing_keys: SigningKeys, name: str) -> None:
    token = signed(getattr(signing_keys, name)).rsplit(".", 1)[0] + "."
    assert_denied(verifier.verify(token, NOW), R.ORDER_SIGNATURE_INVALID)


@pytest.mark.parametrize("name", ["cook_rs", "cook_es"])
def test_signature_truncated(verifier: OrderVerifier, signing_keys: SigningKeys, name: str) -> None:
    token = signed(getattr(signing_keys, name))
    head, payload, signature = token.split(".")
    short = b64url_encode(b64url_decode(signature)[:-1])
    assert_denied(verifier.verify(f"{head}.{payload}.{short}", NOW), R.ORDER_SIGNATURE_INVALID)


def test_signature_of_another_order(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    key = signing_keys.cook_es
    first, second = signed(key, claims(jti="a")), signed(key, claims(jti="b"))
    spliced = first.rsplit(".", 1)[0] + "." + second.rsplit(".", 1)[1]
    assert_denied(verifier.verify(spliced, NOW), R.ORDER_SIGNATURE_INVALID)


def test_signed_by_an_untrusted_key_of_the_right_kind(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    token = signed(signing_keys.attacker_rs, kid=signing_keys.cook_rs.kid)
    assert_denied(verifier.verify(token, NOW), R.ORDER_SIGNATURE_INVALID)


def test_signature_failure_keeps_header_failures_found_before(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    attacker = signing_keys.attacker_es
    token = signed(attacker, kid=signing_keys.cook_es.kid, typ="JWT")
    assert_denied(verifier.verify(token, NOW), R.ORDER_WRONG_TYPE, R.ORDER_SIGNATURE_INVALID)


# --- issuer ----------------------------------------------------------------------------------


def test_untrusted_issuer(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.attacker_es, claims(iss="https://courts.example/nowhere"))
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNTRUSTED_ISSUER)


@pytest.mark.parametrize("iss", [None, 42, ["https://courts.example/il-cook"]])
def test_issuer_missing_or_not_a_string(
    verifier: OrderVerifier, signing_keys: SigningKeys, iss: object
) -> None:
    payload = claims()
    if iss is None:
        del payload["iss"]
    else:
        payload["iss"] = iss
    token = signed(signing_keys.cook_es, payload)
    assert_denied(verifier.verify(token, NOW), R.ORDER_UNTRUSTED_ISSUER)


def test_empty_trust_store_trusts_nobody(signing_keys: SigningKeys) -> None:
    nobody = OrderVerifier(
        TrustStore.empty(),
        audience=AUDIENCE,
        allowed_algorithms={"ES256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
    )
    assert_denied(nobody.verify(signed(signing_keys.cook_es), NOW), R.ORDER_UNTRUSTED_ISSUER)


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_wrong_number_of_segments(
    verifier: OrderVerifier, signing_keys: SigningKeys, count: int
) -> None:
    parts = signed(signing_keys.cook_es).split(".")
    parts = [*parts, parts[2], parts[2]][:count]  # 5 segments: the shape of a JWE
    assert_denied(verifier.verify(".".join(parts), NOW), R.ORDER_MALFORMED)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
@pytest.mark.parametrize("bad", ["!", "+", "/", "=", " ", "%41"])
def test_non_base64url_segment(
    verifier: OrderVerifier, signing_keys: SigningKeys, index: int, bad: str
) -> None:
    parts = signed(signing_keys.cook_es).split(".")
    parts[index] = parts[index][:8] + bad + parts[index][8:]
    assert_denied(verifier.verify(".".join(parts), NOW), R.ORDER_MALFORMED)


def test_impossible_base64_length(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    parts = signed(signing_keys.cook_es).split(".")
    parts[2] += "A" * (5 - len(parts[2]) % 4)  # a length of 4n+1 encodes no whole byte
    assert len(parts[2]) % 4 == 1
    assert_denied(verifier.verify(".".join(parts), NOW), R.ORDER_MALFORMED)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"", b"\xff\xfe", b'{"alg": NaN}', b"[1, 2]", b'"a string"', b"{"],
    ids=["text", "empty", "not-utf8", "nan", "array", "string", "truncated"],
)
@pytest.mark.parametrize("index", [0, 1], ids=["header", "payload"])
def test_non_json_or_non_object_segment(
    verifier: OrderVerifier, signing_keys: SigningKeys, raw: bytes, index: int
) -> None:
    parts = signed(signing_keys.cook_es).split(".")
    parts[index] = b64url_encode(raw)
    assert_denied(verifier.verify(".".join(parts), NOW), R.ORDER_MALFORMED)


@pytest.mark.parametrize("index", [0, 1], ids=["header", "payload"])
def test_duplicate_member_names(
    verifier: OrderVerifier, signing_keys: SigningKeys, index: int
) -> None:
    # Two parsers may pick different duplicates; such a document is refused, not guessed at.
    parts = signed(signing_keys.cook_es).split(".")
    text = b64url_decode(parts[index])
    parts[index] = b64url_encode(text[:-1] + b',"kid":"x","iss":"y","kid":"z"}')
    assert_denied(verifier.verify(".".join(parts), NOW), R.ORDER_MALFORMED)


def test_deeply_nested_payload(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    parts = signed(signing_keys.cook_es).split(".")
    parts[1] = b64url_encode(b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert_denied(verifier.verify(".".join(parts), NOW), R.ORDER_MALFORMED)


def test_one_mebibyte_token_is_refused_before_decoding(verifier: OrderVerifier) -> None:
    token = "a" * (1024 * 1024 - 2) + ".b.c"
    with mock.patch("app.orders.jose.b64url_decode", side_effect=AssertionError("decoded")):
        check = verifier.verify(token, NOW)
    assert_denied(check, R.ORDER_MALFORMED)


def test_token_just_over_the_limit(trust: TrustStore, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es)
    small = OrderVerifier(
        trust,
        audience=AUDIENCE,
        allowed_algorithms={"ES256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
        max_token_bytes=len(token) - 1,
    )
    assert_denied(small.verify(token, NOW), R.ORDER_MALFORMED)
    exact = OrderVerifier(
        trust,
        audience=AUDIENCE,
        allowed_algorithms={"ES256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
        max_token_bytes=len(token),
    )
    assert exact.verify(token, NOW).verified


def test_non_ascii_token(verifier: OrderVerifier, signing_keys: SigningKeys) -> None:
    token = signed(signing_keys.cook_es) + "\u00e9"
    assert_denied(verifier.verify(token, NOW), R.ORDER_MALFORMED)


@pytest.mark.parametrize("value", [None, 42, b"a.b.c", ["a", "b", "c"]])
def test_not_a_string(verifier: OrderVerifier, value: Any) -> None:
    assert_denied(verifier.verify(value, NOW), R.ORDER_MALFORMED)


@pytest.mark.parametrize("token", ["", ".", "..", "...", "a.b.c"])
def test_degenerate_strings(verifier: OrderVerifier, token: str) -> None:
    assert_denied(verifier.verify(token, NOW), R.ORDER_MALFORMED)


# --- whatever arrives, verification answers and never raises ---------------------------------


@settings(max_examples=300, deadline=None)
@given(token=st.text(alphabet=st.characters(codec="ascii"), max_size=300))
def test_arbitrary_text_is_refused_without_raising(verifier: OrderVerifier, token: str) -> None:
    check = verifier.verify(token, NOW)
    assert check.failures
    assert check.claims is None


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_changed_character_is_refused(
    verifier: OrderVerifier, signing_keys: SigningKeys, data: st.DataObject
) -> None:
    token = signed(signing_keys.cook_es)
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    replacement = data.draw(st.sampled_from("AQgw_-.0zB=+/ "), label="replacement")
    assume(replacement != token[index])
    check = verifier.verify(token[:index] + replacement + token[index + 1 :], NOW)
    assert check.failures
    assert check.claims is None


def test_non_canonical_base64url_is_malformed(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    # An ES256 signature (64 bytes) ends in a character with 4 unused bits; setting one of
    # them decodes to the same bytes, but is another spelling of the order: refused.
    token = signed(signing_keys.cook_es)
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) | 1]
    assert twin != last
    assert_denied(verifier.verify(token[:-1] + twin, NOW), R.ORDER_MALFORMED)
