"""Attacks on the court-order token, through the API: each 403 with its code, nothing released,
and the refusal in the audit log (verifier-level detail is in tests/orders/)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from app.audit import service as audit_service
from app.orders.issuing import OMIT, generate_key_pair, make_claims, sign_compact
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime
from tests.conftest import COURT_ISS, COURT_KID, JURISDICTION, auth
from tests.factories import disclosure_body

CourtKey = tuple[bytes, dict[str, str]]

# Token checks do not depend on the state database; the disclosure tests cover both.
pytestmark = pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    overrides.setdefault("iss", COURT_ISS)
    overrides.setdefault("jurisdiction", JURISDICTION)
    overrides.setdefault("patrons", [DEMO_PATRON])
    return make_claims(**overrides)


def header(**overrides: Any) -> dict[str, Any]:
    return {"alg": "ES256", "kid": COURT_KID, "typ": "court-order+jwt", **overrides}


def signed(key: CourtKey, payload: dict[str, Any] | None = None, **hdr: Any) -> str:
    return sign_compact(header(**hdr), payload or claims(), key[0], "ES256")


def public_pem(key: CourtKey) -> bytes:
    private = serialization.load_pem_private_key(key[0], password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hs256_confusion(key: CourtKey) -> str:
    signing_input = f"{seg(header(alg='HS256'))}.{seg(claims())}"
    mac = hmac.new(public_pem(key), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def attacker_jku(key: CourtKey) -> str:
    attacker_pem, attacker_jwk = generate_key_pair("ES256", COURT_KID)
    return sign_compact(
        header(jku="https://attacker.example/jwks.json", jwk=attacker_jwk),
        claims(),
        attacker_pem,
        "ES256",
    )


def altered_payload(key: CourtKey) -> str:
    h, _, s = signed(key).split(".")
    return f"{h}.{seg(claims(patrons=[DEMO_PATRON, 'P999999']))}.{s}"


NOW = int(time.time())


def expired_beyond_skew(key: CourtKey) -> str:
    """Issued a day ago, expired 61 s ago: one second past the policy's 60 s skew."""
    issued = dt.datetime.fromtimestamp(NOW - 86400, dt.UTC)
    return signed(key, claims(now=issued, lifetime_days=(86400 - 61) / 86400))


ATTACKS: dict[str, tuple[Callable[[CourtKey], str], set[str]]] = {
    "alg none, no signature": (
        lambda k: f"{seg(header(alg='none'))}.{seg(claims())}.",
        {"order.algorithm_rejected"},
    ),
    "alg NoNe, with a signature": (
        lambda k: ".".join([seg(header(alg="NoNe")), *signed(k).split(".")[1:]]),
        {"order.algorithm_rejected"},
    ),
    "HS256 with the public key as secret": (hs256_confusion, {"order.algorithm_rejected"}),
    "RS256 header on an ES256 key": (
        lambda k: ".".join([seg(header(alg="RS256")), *signed(k).split(".")[1:]]),
        {"order.algorithm_rejected"},
    ),
    "unknown kid": (lambda k: signed(k, kid="no-such-key"), {"order.unknown_key"}),
    "kid with path text": (lambda k: signed(k, kid="../../../etc/passwd"), {"order.unknown_key"}),
    "kid with SQL text": (lambda k: signed(k, kid="' OR 1=1 --"), {"order.unknown_key"}),
    "jku and embedded jwk of an attacker": (attacker_jku, {"order.signature_invalid"}),
    "payload altered after signing": (altered_payload, {"order.signature_invalid"}),
    "signature stripped": (lambda k: signed(k).rsplit(".", 1)[0], {"order.malformed"}),
    "signature empty": (lambda k: signed(k).rsplit(".", 1)[0] + ".", {"order.signature_invalid"}),
    "four segments": (lambda k: signed(k) + ".e30", {"order.malformed"}),
    "five segments (JWE)": (lambda k: signed(k) + ".e30.e30", {"order.malformed"}),
    "non-base64 segment": (lambda k: "!!!." + signed(k).split(".", 1)[1], {"order.malformed"}),
    "non-JSON segment": (
        lambda k: b64(b"not json") + "." + signed(k).split(".", 1)[1],
        {"order.malformed"},
    ),
    "20 KiB token": (lambda k: signed(k, pad="x" * 20_000), {"order.malformed"}),
    "exp as a string": (lambda k: signed(k, claims(exp=str(NOW + 3600))), {"order.claims_invalid"}),
    "aud a list without us": (
        lambda k: signed(k, claims(aud=["other", "another"])),
        {"order.audience"},
    ),
    "expired 1 s beyond the skew": (expired_beyond_skew, {"order.expired"}),
    "nbf in the future": (lambda k: signed(k, claims(nbf=NOW + 3600)), {"order.not_yet_valid"}),
    "ten-year lifetime": (
        lambda k: signed(k, claims(lifetime_days=3650)),
        {"order.lifetime_exceeded"},
    ),
    "missing jti": (lambda k: signed(k, claims(jti=OMIT)), {"order.claims_invalid"}),
    "jti with a NUL": (lambda k: signed(k, claims(jti="order\x00one")), {"order.claims_invalid"}),
    "case with a newline": (lambda k: signed(k, claims(case="2026\nCR")), {"order.claims_invalid"}),
    "missing case": (lambda k: signed(k, claims(case=OMIT)), {"order.claims_invalid"}),
    "missing scope": (lambda k: signed(k, claims(scope=OMIT)), {"order.claims_invalid"}),
    "missing instrument": (lambda k: signed(k, claims(instrument=OMIT)), {"order.claims_invalid"}),
}


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_attack_is_refused_and_audited(
    name: str,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    court_key: CourtKey,
    runtime: Runtime,
) -> None:
    make, expected = ATTACKS[name]
    token = make(court_key)
    r = await client.post(
        "/v1/disclosures",
        json=disclosure_body(token),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 403, r.text
    body = r.json()
    assert {x["code"] for x in body["reasons"]} == expected
    assert "records" not in body
    event = (await audit_service.list_events(runtime.state, after=body["audit_seq"] - 1, limit=1))[
        0
    ]
    assert event["effect"] == "deny"
    assert event["body"]["released"] is None
    assert event["body"]["order"]["verified"] is False


async def test_a_mebibyte_token_never_reaches_the_verifier(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/disclosures",
        json=disclosure_body("a" * (1 << 20)),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 413
    assert r.json()["reasons"][0]["code"] == "request.too_large"
