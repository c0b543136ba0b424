"""Counsel sign-off: off by default; when the policy turns it on, every fault is refused."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.admin.clients import add_client
from app.callers.models import Role
from app.core.config import Settings
from app.main import create_app
from app.orders.approvals import APPROVAL_TYP, ApprovalVerifier, issue_approval
from app.orders.issuing import generate_key_pair, issuer_entry, sign_compact
from app.orders.jose import b64url_decode, b64url_encode
from app.orders.tokens import ORDER_TYP
from app.orders.trust import TrustStore
from app.records.demo import DEMO_PATRON
from app.runtime import build_runtime
from tests.conftest import COURT_ISS, COURT_KID, JURISDICTION, auth, migrate
from tests.factories import disclosure_body

Token = Callable[..., str]
COUNSEL_ISS = "https://counsel.example/library"
COUNSEL_KID = "counsel-2026"
OTHER_COUNSEL_KID = "counsel-unlisted"
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)

Keys = tuple[bytes, dict[str, str]]


@pytest.fixture(scope="module")
def counsel_key() -> Keys:
    return generate_key_pair("ES256", COUNSEL_KID)


@pytest.fixture(scope="module")
def stranger_key() -> Keys:
    """Listed nowhere, though it claims the counsel's kid."""
    return generate_key_pair("ES256", COUNSEL_KID)


@pytest.fixture
def counsel_trust_store(tmp_path: Path, court_key: Keys, counsel_key: Keys) -> Path:
    path = tmp_path / "trust-with-counsel.json"
    document = {
        "issuers": [issuer_entry(COURT_ISS, "Cook", [JURISDICTION], court_key[1])],
        "counsel": [issuer_entry(COUNSEL_ISS, "Library counsel", [JURISDICTION], counsel_key[1])],
    }
    path.write_text(json.dumps(document))
    return path


async def deployment(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    await migrate(settings)
    runtime = await build_runtime(settings)
    try:
        _, key = await add_client(runtime.state, "req", Role.REQUESTER, audit=runtime.audit)
        app = create_app(runtime=runtime)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as c:
                yield c, key
    finally:
        await runtime.close()


@pytest.fixture
async def signoff_on(
    make_settings: Callable[..., Settings], tmp_path: Path, counsel_trust_store: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "t"\n[counsel]\nrequire_approval = true\n')
    async for pair in deployment(make_settings(policy=policy, trust_store=counsel_trust_store)):
        yield pair


@pytest.fixture
async def signoff_off(
    make_settings: Callable[..., Settings], counsel_trust_store: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async for pair in deployment(make_settings(trust_store=counsel_trust_store)):
        yield pair


def request(order: str, approval: str | None) -> dict[str, Any]:
    body: dict[str, Any] = disclosure_body(order)
    if approval is not None:
        body["counsel_approval"] = approval
    return body


def order_ids(token: str) -> tuple[str, str]:
    claims = json.loads(b64url_decode(token.split(".")[1]))
    return claims["iss"], claims["jti"]


def approve(token: str, key: Keys, **overrides: Any) -> str:
    iss, jti = order_ids(token)
    return issue_approval(iss, jti, key[0], COUNSEL_KID, "ES256", iss=COUNSEL_ISS, **overrides)


def codes(response: httpx.Response) -> list[str]:
    return [r["code"] for r in response.json()["reasons"]]


# --------------------------------------------------------------------------- switched off


async def test_off_by_default_no_approval_needed(
    signoff_off: tuple[httpx.AsyncClient, str], order_token: Token
) -> None:
    client, key = signoff_off
    r = await client.post(
        "/v1/disclosures", json=request(order_token(patrons=[DEMO_PATRON]), None), headers=auth(key)
    )
    assert r.status_code == 200, r.text


async def test_off_an_approval_given_is_not_consulted(
    signoff_off: tuple[httpx.AsyncClient, str], order_token: Token
) -> None:
    client, key = signoff_off
    order = order_token(patrons=[DEMO_PATRON])
    r = await client.post("/v1/disclosures", json=request(order, "garbage"), headers=auth(key))
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- switched on


async def test_on_a_good_approval_permits(
    signoff_on: tuple[httpx.AsyncClient, str], order_token: Token, counsel_key: Keys
) -> None:
    client, key = signoff_on
    order = order_token(patrons=[DEMO_PATRON])
    r = await client.post(
        "/v1/disclosures", json=request(order, approve(order, counsel_key)), headers=auth(key)
    )
    assert r.status_code == 200, r.text


async def test_on_a_missing_approval_is_refused(
    signoff_on: tuple[httpx.AsyncClient, str], order_token: Token
) -> None:
    client, key = signoff_on
    order = order_token(patrons=[DEMO_PATRON])
    r = await client.post("/v1/disclosures", json=request(order, None), headers=auth(key))
    assert r.status_code == 403
    assert codes(r) == ["approval.missing"]
    assert "records" not in r.json()


def _bad_approvals(
    order: str, other_order: str, counsel: Keys, stranger: Keys, court: Keys
) -> dict[str, str]:
    iss, jti = order_ids(order)
    good = approve(order, counsel)
    header, payload, signature = good.split(".")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    return {
        "malformed": "not.a.token",
        "for-another-order": approve(other_order, counsel),
        "for-another-issuer": approve(
            order, counsel, order={"iss": "https://courts.example/x", "jti": jti}
        ),
        "expired": approve(order, counsel, now=past, lifetime_days=2),
        "not-yet-valid": approve(
            order, counsel, nbf=int(dt.datetime.now(dt.UTC).timestamp()) + 3600
        ),
        "wrong-audience": approve(order, counsel, audience="another-deployment"),
        "no-order-claim": approve(order, counsel, order=None),
        "untrusted-key": approve(order, stranger),
        "signed-by-the-court": issue_approval(
            iss, jti, court[0], COURT_KID, "ES256", iss=COURT_ISS
        ),
        "counsel-iss-court-key": sign_compact(
            {"alg": "ES256", "kid": COURT_KID, "typ": APPROVAL_TYP},
            {
                "iss": COUNSEL_ISS,
                "aud": "bulwark",
                "iat": 1,
                "exp": 2,
                "jti": "x",
                "order": {"iss": iss, "jti": jti},
            },
            court[0],
            "ES256",
        ),
        "wrong-typ": sign_compact(
            {"alg": "ES256", "kid": COUNSEL_KID, "typ": ORDER_TYP},
            json.loads(b64url_decode(payload)),
            counsel[0],
            "ES256",
        ),
        "tampered-payload": f"{header}.{approve(other_order, counsel).split('.')[1]}.{signature}",
        "alg-none": b64url_encode(
            json.dumps({"alg": "none", "kid": COUNSEL_KID, "typ": APPROVAL_TYP}).encode()
        )
        + f".{payload}.",
        "the-order-itself": order,
    }


BAD = [
    "malformed",
    "for-another-order",
    "for-another-issuer",
    "expired",
    "not-yet-valid",
    "wrong-audience",
    "no-order-claim",
    "untrusted-key",
    "signed-by-the-court",
    "counsel-iss-court-key",
    "wrong-typ",
    "tampered-payload",
    "alg-none",
    "the-order-itself",
]


@pytest.mark.parametrize("fault", BAD)
async def test_on_a_bad_approval_is_refused(
    signoff_on: tuple[httpx.AsyncClient, str],
    order_token: Token,
    counsel_key: Keys,
    stranger_key: Keys,
    court_key: Keys,
    fault: str,
) -> None:
    client, key = signoff_on
    order = order_token(patrons=[DEMO_PATRON])
    other = order_token(patrons=[DEMO_PATRON])
    approval = _bad_approvals(order, other, counsel_key, stranger_key, court_key)[fault]
    r = await client.post("/v1/disclosures", json=request(order, approval), headers=auth(key))
    assert r.status_code == 403, r.text
    assert codes(r) == ["approval.invalid"]
    assert "records" not in r.json()
    # The order was not used up by the refusal: the right approval still gets it.
    good = await client.post(
        "/v1/disclosures", json=request(order, approve(order, counsel_key)), headers=auth(key)
    )
    assert good.status_code == 200


async def test_on_the_dry_run_traces_the_approval(
    signoff_on: tuple[httpx.AsyncClient, str], order_token: Token, counsel_key: Keys
) -> None:
    client, key = signoff_on
    order = order_token(patrons=[DEMO_PATRON])
    other = order_token(patrons=[DEMO_PATRON])
    r = await client.post(
        "/v1/decisions", json=request(order, approve(other, counsel_key)), headers=auth(key)
    )
    rule = next(t for t in r.json()["decision"]["trace"] if t["rule"] == "counsel.approval")
    assert rule["outcome"] == "fail"
    assert rule["compared"]["names_this_order"] is False


async def test_a_counsel_key_cannot_sign_a_court_order(
    signoff_on: tuple[httpx.AsyncClient, str], counsel_key: Keys
) -> None:
    from app.orders.issuing import issue_order, make_claims

    client, key = signoff_on
    claims = make_claims(iss=COUNSEL_ISS, patrons=[DEMO_PATRON], jurisdiction=JURISDICTION)
    order = issue_order(claims, counsel_key[0], COUNSEL_KID, "ES256")
    r = await client.post(
        "/v1/disclosures", json=request(order, approve(order, counsel_key)), headers=auth(key)
    )
    assert r.status_code == 403
    assert "order.untrusted_issuer" in codes(r)


# --------------------------------------------------------------------------- the verifier


@pytest.fixture
def verifier(counsel_trust_store: Path) -> ApprovalVerifier:
    trust = TrustStore.load(counsel_trust_store)
    return ApprovalVerifier(
        trust.counsel_issuers,
        audience="bulwark",
        allowed_algorithms={"ES256", "RS256"},
        clock_skew_seconds=60,
        max_lifetime_days=90,
    )


def test_verifier_reads_a_good_approval(verifier: ApprovalVerifier, counsel_key: Keys) -> None:
    token = issue_approval(
        COURT_ISS, "order-1", counsel_key[0], COUNSEL_KID, "ES256", iss=COUNSEL_ISS, now=NOW
    )
    check = verifier.verify(token, NOW)
    assert check.verified
    assert check.order == (COURT_ISS, "order-1")
    assert check.approver == COUNSEL_ISS


@pytest.mark.parametrize(
    ("overrides", "failure"),
    [
        ({"now": NOW - dt.timedelta(days=10), "lifetime_days": 2}, "expired"),
        ({"audience": "elsewhere"}, "audience"),
        ({"lifetime_days": 200}, "lifetime_exceeded"),
        ({"order": {"iss": COURT_ISS}}, "claims_invalid"),
        ({"iat": "yesterday"}, "claims_invalid"),
    ],
    ids=["expired", "audience", "lifetime", "order-without-jti", "iat-not-a-number"],
)
def test_verifier_names_each_fault(
    verifier: ApprovalVerifier, counsel_key: Keys, overrides: dict[str, Any], failure: str
) -> None:
    overrides.setdefault("now", NOW)
    token = issue_approval(
        COURT_ISS, "order-1", counsel_key[0], COUNSEL_KID, "ES256", iss=COUNSEL_ISS, **overrides
    )
    check = verifier.verify(token, NOW)
    assert not check.verified
    assert check.order is None
    assert failure in check.failures


def test_verifier_refuses_an_oversized_token(verifier: ApprovalVerifier) -> None:
    check = verifier.verify("a" * 20000 + ".b.c", NOW)
    assert check.failures == ("malformed",)
