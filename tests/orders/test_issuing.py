"""Keys, trust-store entries and signed orders made for issuers and tests."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from app.orders.issuing import (
    OMIT,
    InvalidClaimsError,
    check_claims_for_issue,
    generate_key_pair,
    issue_order,
    make_claims,
    merge_issuer_into_trust_store,
    sign_compact,
    write_private_key,
)
from app.orders.jose import b64url_decode
from app.orders.tokens import OrderVerifier
from app.orders.trust import TrustStore, TrustStoreError

from .conftest import SigningKeys
from .helpers import COOK, DUPAGE, NOW, NOW_TS, claims

DAY = 86400


def test_write_private_key_creates_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "court.pem"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        # The mode is set when the file is created, never patched afterwards.
        with mock.patch("os.chmod", side_effect=AssertionError("chmod after creation")):
            write_private_key(path, b"-----BEGIN PRIVATE KEY-----\n")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"-----BEGIN PRIVATE KEY-----\n"


def test_write_private_key_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "court.pem"
    path.write_bytes(b"the key in use")
    with pytest.raises(FileExistsError):
        write_private_key(path, b"new")
    assert path.read_bytes() == b"the key in use"


def test_write_private_key_refuses_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "court.pem"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_private_key(link, b"secret")
    assert not target.exists()


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_generated_keys_are_accepted_by_the_trust_store(alg: Any) -> None:
    pem, jwk = generate_key_pair(alg, "k1", rsa_bits=2048)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert jwk["kid"] == "k1"
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    store = TrustStore.from_document(
        {"issuers": [{"iss": COOK, "name": "Cook", "jurisdictions": ["US-IL"], "keys": [jwk]}]}
    )
    assert store.key(COOK, "k1") is not None


def test_generate_refuses_other_algorithms() -> None:
    with pytest.raises(ValueError, match="ES256 or RS256"):
        generate_key_pair("HS256", "k1")  # type: ignore[arg-type]


def test_merge_creates_the_store(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], signing_keys.cook_es.jwk)
    store = TrustStore.load(path)
    assert store.key(COOK, signing_keys.cook_es.kid) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_merge_adds_a_key_to_an_existing_issuer(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], signing_keys.cook_es.jwk)
    merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], signing_keys.cook_rs.jwk)
    merge_issuer_into_trust_store(path, DUPAGE, "DuPage", ["US-IL"], signing_keys.dupage_es.jwk)
    store = TrustStore.load(path)
    assert store.summary() == {"issuers": 2, "keys": 3, "counsel_issuers": 0, "counsel_keys": 0}


def test_merge_into_counsel(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    counsel = "https://library.example/counsel"
    merge_issuer_into_trust_store(
        path, counsel, "Counsel", ["US-IL"], signing_keys.attacker_es.jwk, section="counsel"
    )
    store = TrustStore.load(path)
    assert store.issuer(counsel) is None
    assert store.counsel_issuers.issuer(counsel) is not None


def test_merge_refuses_a_duplicate_kid(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], signing_keys.cook_es.jwk)
    before = path.read_bytes()
    same_kid = dict(signing_keys.dupage_es.jwk, kid=signing_keys.cook_es.kid)
    with pytest.raises(TrustStoreError, match="duplicate kid"):
        merge_issuer_into_trust_store(path, DUPAGE, "DuPage", ["US-IL"], same_kid)
    assert path.read_bytes() == before


def test_merge_refuses_other_jurisdictions(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], signing_keys.cook_es.jwk)
    with pytest.raises(TrustStoreError, match="jurisdictions"):
        merge_issuer_into_trust_store(
            path, COOK, "Cook", ["US-IL", "US-FED"], signing_keys.cook_rs.jwk
        )


def test_merge_refuses_a_private_key(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    private_jwk = dict(signing_keys.cook_es.jwk, d="AAAA")
    with pytest.raises(TrustStoreError, match="private key material"):
        merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], private_jwk)
    assert not path.exists()


def test_merge_refuses_a_broken_store(tmp_path: Path, signing_keys: SigningKeys) -> None:
    path = tmp_path / "trust.json"
    path.write_text("{not json")
    with pytest.raises(TrustStoreError, match="cannot read"):
        merge_issuer_into_trust_store(path, COOK, "Cook", ["US-IL"], signing_keys.cook_es.jwk)
    assert path.read_text() == "{not json"


def test_make_claims_defaults_are_valid() -> None:
    made = make_claims(now=NOW)
    check_claims_for_issue(made, now=NOW)
    assert made["iat"] == NOW_TS
    assert made["exp"] == NOW_TS + 30 * DAY
    assert made["scope"]["from"] == "2026-01-01"
    assert made["jti"] != make_claims(now=NOW)["jti"]


def test_make_claims_omits_and_overrides() -> None:
    made = make_claims(now=NOW, case=OMIT, aud=["a", "b"], fields={"circulation": ["title"]})
    assert "case" not in made
    assert made["aud"] == ["a", "b"]
    assert made["scope"]["fields"] == {"circulation": ["title"]}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"case": OMIT}, "case: Field required"),
        ({"exp": NOW_TS - 1, "iat": NOW_TS}, "exp: must be after iat"),
        ({"lifetime_days": 91}, "lifetime is longer than 90 days"),
        ({"iat": NOW_TS + 3600, "exp": NOW_TS + DAY}, "iat: is in the future"),
        ({"iat": NOW_TS - 2 * DAY, "exp": NOW_TS - DAY}, "already expired"),
        ({"instrument": "memo"}, "instrument:"),
    ],
    ids=["missing-case", "exp-before-iat", "lifetime", "iat-future", "expired", "instrument"],
)
def test_check_claims_for_issue_refuses(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidClaimsError) as caught:
        check_claims_for_issue(claims(**overrides), now=NOW)
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_check_claims_for_issue_allows_a_future_nbf() -> None:
    check_claims_for_issue(claims(nbf=NOW_TS + 7 * DAY), now=NOW)


def test_issue_order_refuses_invalid_claims(signing_keys: SigningKeys) -> None:
    key = signing_keys.cook_es
    with pytest.raises(InvalidClaimsError):
        issue_order(claims(jti=OMIT), key.pem, key.kid, key.alg, now=NOW)


def test_issue_order_signs_invalid_claims_when_allowed(
    verifier: OrderVerifier, signing_keys: SigningKeys
) -> None:
    key = signing_keys.cook_es
    token = issue_order(claims(lifetime_days=400), key.pem, key.kid, key.alg, allow_invalid=True)
    assert verifier.verify(token, NOW).failures == ("order.lifetime_exceeded",)


@pytest.mark.parametrize("name", ["cook_rs", "cook_es"])
def test_issued_orders_verify(
    verifier: OrderVerifier, signing_keys: SigningKeys, name: str
) -> None:
    key = getattr(signing_keys, name)
    token = issue_order(claims(), key.pem, key.kid, key.alg, now=NOW)
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "court-order+jwt"}
    assert verifier.verify(token, NOW).verified


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_sign_compact_refuses_symmetric_and_none(signing_keys: SigningKeys, alg: str) -> None:
    with pytest.raises(ValueError, match="not an asymmetric algorithm"):
        sign_compact({"alg": alg}, {}, signing_keys.cook_rs.pem, alg)


def test_sign_compact_refuses_a_key_of_another_kind(signing_keys: SigningKeys) -> None:
    with pytest.raises(ValueError, match="cannot sign ES256"):
        sign_compact({"alg": "ES256"}, {}, signing_keys.cook_rs.pem, "ES256")
    with pytest.raises(ValueError, match="cannot sign ES384"):
        sign_compact({"alg": "ES384"}, {}, signing_keys.cook_es.pem, "ES384")
    with pytest.raises(ValueError, match="cannot sign RS256"):
        sign_compact({"alg": "RS256"}, {}, signing_keys.cook_es.pem, "RS256")
