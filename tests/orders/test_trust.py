"""Loading the trust store: every fault stops the load with a message naming the entry."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.orders.issuing import issuer_entry, load_private_key, public_jwk
from app.orders.jose import b64url_encode
from app.orders.trust import TrustStore, TrustStoreError

from .conftest import SigningKeys
from .helpers import COOK, DUPAGE

WriteStore = Callable[[Any], Path]


def _load_error(write_store: WriteStore, document: Any) -> str:
    path = write_store(document)
    with pytest.raises(TrustStoreError) as caught:
        TrustStore.load(path)
    message = str(caught.value)
    assert message.startswith(f"trust store {path}: "), message
    return message


def _with_key(document: dict[str, Any], issuer: int, key: int, **changes: Any) -> dict[str, Any]:
    """A copy of ``document`` whose given key has members changed (None deletes a member)."""
    changed = copy.deepcopy(document)
    jwk = changed["issuers"][issuer]["keys"][key]
    for member, value in changes.items():
        if value is None:
            jwk.pop(member, None)
        else:
            jwk[member] = value
    return changed


def _int_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


# --- a good store ----------------------------------------------------------------------------


def test_loads_issuers_and_keys(
    write_store: WriteStore, trust_document: dict[str, Any], signing_keys: SigningKeys
) -> None:
    store = TrustStore.load(write_store(trust_document))
    cook = store.issuer(COOK)
    assert cook is not None
    assert cook.name == "Circuit Court of Cook County"
    assert cook.jurisdictions == frozenset({"US-IL"})
    key = store.key(COOK, signing_keys.cook_rs.kid)
    assert key is not None
    assert key.alg == "RS256"
    assert isinstance(key.public_key, rsa.RSAPublicKey)
    assert store.summary() == {"issuers": 2, "keys": 3, "counsel_issuers": 0, "counsel_keys": 0}


def test_a_key_belongs_to_its_own_issuer_only(trust: TrustStore, signing_keys: SigningKeys) -> None:
    assert trust.key(DUPAGE, signing_keys.dupage_es.kid) is not None
    assert trust.key(COOK, signing_keys.dupage_es.kid) is None
    assert trust.issuer("https://courts.example/nowhere") is None


def test_counsel_section_is_its_own_namespace(
    write_store: WriteStore, trust_document: dict[str, Any], signing_keys: SigningKeys
) -> None:
    document = copy.deepcopy(trust_document)
    counsel_iss = "https://library.example/counsel"
    document["counsel"] = [
        issuer_entry(counsel_iss, "Office of Counsel", ["US-IL"], signing_keys.attacker_es.jwk)
    ]
    store = TrustStore.load(write_store(document))
    assert store.issuer(counsel_iss) is None  # not a court
    assert store.counsel_issuers.issuer(counsel_iss) is not None
    assert store.counsel_issuers.key(counsel_iss, signing_keys.attacker_es.kid) is not None
    assert store.summary()["counsel_issuers"] == 1
    assert store.summary()["counsel_keys"] == 1


def test_summary_holds_no_key_material(trust: TrustStore) -> None:
    assert all(isinstance(count, int) for count in trust.summary().values())


def test_empty_store() -> None:
    store = TrustStore.empty()
    assert store.issuer(COOK) is None
    assert store.summary() == {"issuers": 0, "keys": 0, "counsel_issuers": 0, "counsel_keys": 0}


def test_ec_keys_of_every_curve(write_store: WriteStore) -> None:
    keys = []
    for alg, curve in (("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1())):
        private = ec.generate_private_key(curve)
        keys.append(public_jwk(private.public_key(), kid=f"k-{alg}", alg=alg))
    private = ec.generate_private_key(ec.SECP521R1())
    keys.append(public_jwk(private.public_key(), kid="k-ES512", alg="ES512"))
    document = {"issuers": [{"iss": COOK, "name": "Cook", "jurisdictions": [], "keys": keys}]}
    store = TrustStore.load(write_store(document))
    assert store.summary()["keys"] == 3


# --- the file --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(TrustStoreError, match=r"absent\.json: cannot read"):
        TrustStore.load(path)


def test_unreadable_file(tmp_path: Path) -> None:
    # A directory cannot be read as a file, whoever runs the tests (root reads mode 000 files).
    with pytest.raises(TrustStoreError, match="cannot read"):
        TrustStore.load(tmp_path)


def test_malformed_json(write_store: WriteStore) -> None:
    assert "malformed JSON" in _load_error(write_store, '{"issuers": [')


def test_duplicate_member_name(write_store: WriteStore) -> None:
    message = _load_error(write_store, '{"issuers": [], "issuers": []}')
    assert "duplicate member name 'issuers'" in message


def test_not_utf8(write_store: WriteStore, tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"issuers": [{"name": "M\xfcnchen"}]}')
    with pytest.raises(TrustStoreError, match="malformed JSON"):
        TrustStore.load(path)


# --- shape -----------------------------------------------------------------------------------


@pytest.mark.parametrize("document", [[], '"issuers"', 1, None])
def test_document_not_an_object(write_store: WriteStore, document: Any) -> None:
    assert "must be a JSON object" in _load_error(write_store, document)


def test_issuers_missing(write_store: WriteStore) -> None:
    assert "missing 'issuers'" in _load_error(write_store, {"courts": []})


def test_issuers_not_a_list(write_store: WriteStore) -> None:
    assert "issuers: must be a list" in _load_error(write_store, {"issuers": {}})


def test_counsel_not_a_list(write_store: WriteStore) -> None:
    assert "counsel: must be a list" in _load_error(write_store, {"issuers": [], "counsel": 1})


def test_issuer_not_an_object(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    document = copy.deepcopy(trust_document)
    document["issuers"].append("https://courts.example/x")
    assert "issuers[2]: an issuer entry must be a JSON object" in _load_error(write_store, document)


@pytest.mark.parametrize("member", ["iss", "name"])
def test_issuer_without_iss_or_name(
    write_store: WriteStore, trust_document: dict[str, Any], member: str
) -> None:
    document = copy.deepcopy(trust_document)
    del document["issuers"][1][member]
    message = _load_error(write_store, document)
    assert "issuers[1]" in message
    assert f"'{member}' must be a non-empty string" in message


@pytest.mark.parametrize("value", [None, "US-IL", [""], [7]])
def test_issuer_jurisdictions_wrong(
    write_store: WriteStore, trust_document: dict[str, Any], value: Any
) -> None:
    document = copy.deepcopy(trust_document)
    document["issuers"][1]["jurisdictions"] = value
    message = _load_error(write_store, document)
    assert f"issuers[1] (iss '{DUPAGE}'): 'jurisdictions' must be a list" in message


@pytest.mark.parametrize("value", [None, [], {}])
def test_issuer_without_keys(
    write_store: WriteStore, trust_document: dict[str, Any], value: Any
) -> None:
    document = copy.deepcopy(trust_document)
    document["issuers"][0]["keys"] = value
    message = _load_error(write_store, document)
    assert f"issuers[0] (iss '{COOK}'): 'keys' must be a non-empty list" in message


def test_key_not_an_object(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    document = copy.deepcopy(trust_document)
    document["issuers"][0]["keys"].append("-----BEGIN PUBLIC KEY-----")
    assert "issuers[0].keys[2]: a key must be a JWK object" in _load_error(write_store, document)


def test_duplicate_issuer(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    document = copy.deepcopy(trust_document)
    document["issuers"][1]["iss"] = COOK
    for key in document["issuers"][1]["keys"]:
        key["kid"] += "-other"
    message = _load_error(write_store, document)
    assert f"issuers[1] (iss '{COOK}'): duplicate issuer" in message


def test_issuer_both_court_and_counsel(
    write_store: WriteStore, trust_document: dict[str, Any], signing_keys: SigningKeys
) -> None:
    document = copy.deepcopy(trust_document)
    document["counsel"] = [issuer_entry(COOK, "Cook", ["US-IL"], signing_keys.attacker_es.jwk)]
    message = _load_error(write_store, document)
    assert f"counsel (iss '{COOK}'): issuer is listed under both" in message


# --- keys ------------------------------------------------------------------------------------


def test_key_without_kid(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, kid=None))
    assert "issuers[1].keys[0]: 'kid' must be a string" in message


def test_key_without_alg(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, alg=None))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): 'alg' is required" in message


def test_duplicate_kid_within_an_issuer(
    write_store: WriteStore, trust_document: dict[str, Any]
) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 1, kid="cook-rs-2026"))
    assert "issuers[0].keys[1] (kid 'cook-rs-2026'): duplicate kid" in message
    assert "already used by issuers[0].keys[0]" in message


def test_duplicate_kid_across_issuers(
    write_store: WriteStore, trust_document: dict[str, Any]
) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, kid="cook-es-2026"))
    assert "issuers[1].keys[0] (kid 'cook-es-2026'): duplicate kid" in message


def test_duplicate_kid_across_courts_and_counsel(
    write_store: WriteStore, trust_document: dict[str, Any], signing_keys: SigningKeys
) -> None:
    document = copy.deepcopy(trust_document)
    jwk = dict(signing_keys.attacker_es.jwk, kid="cook-rs-2026")
    document["counsel"] = [issuer_entry("https://library.example/counsel", "C", [], jwk)]
    message = _load_error(write_store, document)
    assert "counsel[0].keys[0] (kid 'cook-rs-2026'): duplicate kid" in message


def test_private_rsa_key(
    write_store: WriteStore, trust_document: dict[str, Any], signing_keys: SigningKeys
) -> None:
    private = load_private_key(signing_keys.cook_rs.pem)
    assert isinstance(private, rsa.RSAPrivateKey)
    numbers = private.private_numbers()
    document = _with_key(
        trust_document, 0, 0, d=_int_b64(numbers.d), p=_int_b64(numbers.p), q=_int_b64(numbers.q)
    )
    message = _load_error(write_store, document)
    assert "issuers[0].keys[0] (kid 'cook-rs-2026'): holds private key material (d, p, q)" in (
        message
    )


def test_private_ec_key(
    write_store: WriteStore, trust_document: dict[str, Any], signing_keys: SigningKeys
) -> None:
    private = load_private_key(signing_keys.dupage_es.pem)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    d = private.private_numbers().private_value.to_bytes(32, "big")
    message = _load_error(write_store, _with_key(trust_document, 1, 0, d=b64url_encode(d)))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): holds private key material (d)" in message


def test_hmac_oct_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    document = copy.deepcopy(trust_document)
    document["issuers"][1]["keys"] = [
        {"kty": "oct", "kid": "shared", "alg": "HS256", "k": b64url_encode(b"s" * 32)}
    ]
    message = _load_error(write_store, document)
    assert "issuers[1].keys[0] (kid 'shared'): symmetric (HMAC/oct) keys are never trusted" in (
        message
    )


def test_hmac_alg_on_an_rsa_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, alg="HS256"))
    assert "issuers[0].keys[0] (kid 'cook-rs-2026'): symmetric (HMAC/oct)" in message


@pytest.mark.parametrize("alg", ["none", "EdDSA", "RS1", "rs256", "RSA-OAEP"])
def test_alg_not_asymmetric_signature(
    write_store: WriteStore, trust_document: dict[str, Any], alg: str
) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, alg=alg))
    assert f"issuers[0].keys[0] (kid 'cook-rs-2026'): alg {alg!r} is not an accepted" in message


def test_rs256_alg_on_an_ec_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, alg="RS256"))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): alg RS256 needs an RSA key" in message


def test_ps256_alg_on_an_ec_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, alg="PS256"))
    assert "alg PS256 needs an RSA key" in message


def test_es256_alg_on_an_rsa_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, alg="ES256"))
    assert "issuers[0].keys[0] (kid 'cook-rs-2026'): alg ES256 needs an EC P-256 key" in message


def test_es384_alg_on_a_p256_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, alg="ES384"))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): alg ES384 needs curve P-384" in message


def test_es256_alg_on_a_p384_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    jwk = public_jwk(p384, kid="p384", alg="ES256")
    document = copy.deepcopy(trust_document)
    document["issuers"][1]["keys"] = [jwk]
    message = _load_error(write_store, document)
    assert "issuers[1].keys[0] (kid 'p384'): alg ES256 needs curve P-256, not P-384" in message


def test_es512_alg_on_an_unknown_curve(
    write_store: WriteStore, trust_document: dict[str, Any]
) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, crv="secp256k1"))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): alg ES256 needs an EC P-256 key" in message


def test_short_rsa_modulus(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    document = copy.deepcopy(trust_document)
    document["issuers"][0]["keys"] = [public_jwk(weak, kid="weak", alg="RS256")]
    message = _load_error(write_store, document)
    assert "issuers[0].keys[0] (kid 'weak'): RSA modulus is 1024 bits; at least 2048" in message


def test_rsa_member_not_base64url(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, n="AQAB+/=="))
    assert "issuers[0].keys[0] (kid 'cook-rs-2026'): 'n' is not base64url" in message


def test_rsa_member_missing(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, e=None))
    assert "issuers[0].keys[0] (kid 'cook-rs-2026'): 'e' must be a non-empty" in message


def test_ec_point_not_on_the_curve(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, y=b64url_encode(b"\1" * 32)))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): not a valid EC public key" in message


def test_ec_coordinate_of_the_wrong_size(
    write_store: WriteStore, trust_document: dict[str, Any]
) -> None:
    message = _load_error(write_store, _with_key(trust_document, 1, 0, x=b64url_encode(b"\1" * 31)))
    assert "issuers[1].keys[0] (kid 'dupage-es-2026'): 'x' must be 32 bytes, not 31" in message


def test_encryption_key(write_store: WriteStore, trust_document: dict[str, Any]) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, use="enc"))
    assert "issuers[0].keys[0] (kid 'cook-rs-2026'): 'use' is 'enc'" in message


def test_long_kid_is_shortened_in_messages(
    write_store: WriteStore, trust_document: dict[str, Any]
) -> None:
    message = _load_error(write_store, _with_key(trust_document, 0, 0, kid="k" * 200, alg=None))
    assert "(kid '" + "k" * 77 + "...')" in message
