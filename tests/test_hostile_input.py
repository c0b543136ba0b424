"""Hostile input in every field: injection strings, Unicode edge cases, impossible or reversed
dates, huge arrays, deep nesting. Each is answered 4xx with a problem body, nothing is
released, and no other caller's request is disturbed (an audit batch is shared)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.orders.issuing import InvalidClaimsError
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]

SQL_INJECTIONS = [
    "' OR '1'='1",
    "P000123' OR 1=1 --",
    "P000123'; DROP TABLE audit_events; --",
    '" OR ""="',
    "1 UNION SELECT title FROM loans",
    "P000123%' OR patron_id LIKE '%",
]
JSON_INJECTIONS = ['", "patron_id": "P000002', '{"$ne": null}', '"}]}', "\\u0000"]
#: Every field of a disclosure request; a hostile value in each is refused before any use.
FIELDS = ["purpose", "patron_id", "from", "to", "court_order", "cursor", "categories"]


def valid(token: str, patron: str = DEMO_PATRON) -> dict[str, Any]:
    return disclosure_body(token, patron)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def send(
    client: httpx.AsyncClient, key: str, body: Any, path: str = "/v1/disclosures"
) -> httpx.Response:
    """Post ``body`` as JSON text exactly as given (lone surrogates escaped, as a client would)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**auth(key), "Content-Type": "application/json"}
    return await client.post(path, content=raw, headers=headers)


async def released(runtime: Runtime) -> tuple[int, int]:
    """Order uses consumed and disclosures recorded: both stay 0 when nothing was released."""
    async with runtime.state.connect() as conn:
        uses = (await conn.execute(text("SELECT COALESCE(SUM(uses), 0) FROM order_uses"))).scalar()
        rows = (await conn.execute(text("SELECT COUNT(*) FROM disclosures"))).scalar()
    return int(uses or 0), int(rows or 0)


def refused(r: httpx.Response, status: int) -> list[str]:
    """Assert a problem answer with ``status``; return its reason codes."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail", "reasons"} <= set(body)
    assert "records" not in body
    return [x["code"] for x in body["reasons"]]


async def every_field_refused(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    values: list[str],
) -> None:
    """Each value in each field: 422, or 403 order.malformed where it stands for the token.

    The order names the hostile patron id itself, so the input guard (not the order's scope)
    is what must refuse it.
    """
    for value in values:
        try:
            token = order_token(patrons=[DEMO_PATRON, value[:128]])
        except InvalidClaimsError:  # not even a court can name it (a lone surrogate)
            token = order_token(patrons=[DEMO_PATRON])
        for field in FIELDS:
            body = {**valid(token), field: [value] if field == "categories" else value}
            r = await send(client, keys["requester"], body)
            if field == "court_order" and r.status_code == 403:
                assert refused(r, 403) == ["order.malformed"], (field, value)
            else:  # a lone surrogate is no string at all, even as a token: 422
                assert refused(r, 422) == ["request.invalid"], (field, value)
    assert await released(runtime) == (0, 0)


async def test_sql_injection_in_every_field(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await every_field_refused(client, keys, order_token, runtime, SQL_INJECTIONS)
    async with runtime.state.connect() as conn:  # the tables are all still there
        assert (await conn.execute(text("SELECT COUNT(*) FROM audit_events"))).scalar()


async def test_json_injection_in_every_field(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await every_field_refused(client, keys, order_token, runtime, JSON_INJECTIONS)


async def test_json_injection_by_structure(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    """Extra members, wrong types and a body that is not an object: all 422."""
    base = valid(order_token(patrons=[DEMO_PATRON]))
    bodies: list[Any] = [
        {**base, "effect": "permit"},
        {**base, "records": {"circulation": []}},
        {**base, "patron_id": {"$ne": None}},
        {**base, "patron_id": [DEMO_PATRON]},
        {**base, "patron_id": 123},
        {**base, "categories": "circulation"},
        [base],
        "legal_process",
        None,
    ]
    for body in bodies:
        refused(await send(client, keys["requester"], body), 422)
    refused(await send(client, keys["requester"], b'{"purpose": "legal_process",'), 422)
    refused(await send(client, keys["requester"], b"\xff\xfe{}"), 422)
    assert await released(runtime) == (0, 0)


async def test_nul_in_every_field(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await every_field_refused(client, keys, order_token, runtime, ["P000\x00123", "\x00"])


async def test_lone_surrogates_in_every_field(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await every_field_refused(client, keys, order_token, runtime, ["P000\ud800123", "\udfff"])


async def test_right_to_left_and_invisible_marks_in_every_field(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    marks = ["P000\u202e321", "\u200fP000123", "P000\u200b123", "P\uff10\uff10\uff10123"]
    await every_field_refused(client, keys, order_token, runtime, marks)


async def test_ten_thousand_character_ids_in_every_field(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await every_field_refused(client, keys, order_token, runtime, ["P" * 10_000])


async def test_hostile_strings_inside_the_token_are_refused_without_failing_others(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    """A lone surrogate or NUL inside the order's own claims (a JSON escape in its payload)
    is a 403 recorded like any refusal; other callers' requests in the same audit batch are
    answered as if it were not there."""
    good = order_token(patrons=[DEMO_PATRON], max_uses=100)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for hostile in ("\ud800", "\x00", "\u202e", "P" * 10_000):
        forged = ".".join(
            [
                header,
                b64(json.dumps({**claims, "case": hostile, "jti": hostile}).encode()),
                signature,
            ]
        )
        answers = await asyncio.gather(
            send(client, keys["requester"], valid(forged), "/v1/decisions"),
            send(client, keys["requester"], valid(forged)),
            *(send(client, keys["requester"], valid(good), "/v1/decisions") for _ in range(4)),
        )
        decision = answers[0].json()["decision"]
        assert (answers[0].status_code, decision["effect"]) == (200, "deny"), answers[0].text
        # Tampered, so the signature fails; the longest is refused by size before that.
        assert refused(answers[1], 403) in (["order.signature_invalid"], ["order.malformed"])
        assert [a.status_code for a in answers[2:]] == [200] * 4, [a.text for a in answers[2:]]
    assert await released(runtime) == (0, 0)


async def test_hostile_revocations_are_refused_without_failing_others(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """An admin's NUL (which PostgreSQL refuses in text) or lone surrogate is a 422, not a
    failed audit batch that takes other callers' events down with it."""
    for field in ("iss", "jti", "reason"):
        for hostile in ("a\x00b", "a\ud800b", "a\x1bb", "a" * 10_000):
            body = {"iss": "https://courts.example/x", "jti": "j", "reason": "r", field: hostile}
            body["pre_emptive"] = True
            answers = await asyncio.gather(
                send(client, keys["admin"], body, "/v1/orders/revocations"),
                *(
                    send(
                        client,
                        keys["admin"],
                        {
                            "iss": "https://courts.example/x",
                            "jti": f"ok-{i}",
                            "reason": "r",
                            "pre_emptive": True,
                        },
                        "/v1/orders/revocations",
                    )
                    for i in range(3)
                ),
            )
            refused(answers[0], 422)
            assert [a.status_code for a in answers[1:]] == [200] * 3


OUT_OF_RANGE: list[Any] = [
    "0000-01-01",
    "10000-01-01",
    "2026-13-01",
    "2026-02-30",
    "-2026-01-01",
    "2026-01-01T12:30:00",
    " 2026-01-01",
    20260101,
    1e300,
    -(10**30),
    "",
    None,
]


async def test_dates_out_of_range(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    base = valid(order_token(patrons=[DEMO_PATRON]))
    for field in ("from", "to"):
        for value in OUT_OF_RANGE:
            refused(await send(client, keys["requester"], {**base, field: value}), 422)
    assert await released(runtime) == (0, 0)


async def test_dates_reversed_in_the_request_and_in_the_order(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    body = {**valid(order_token(patrons=[DEMO_PATRON])), "from": "2026-06-30", "to": "2026-01-01"}
    refused(await send(client, keys["requester"], body), 422)
    reversed_ = order_token(
        patrons=[DEMO_PATRON], period=("2026-06-30", "2026-01-01"), allow_invalid=True
    )
    codes = refused(await send(client, keys["requester"], valid(reversed_)), 403)
    assert "order.claims_invalid" in codes
    assert await released(runtime) == (0, 0)


async def test_huge_arrays(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    base = valid(order_token(patrons=[DEMO_PATRON]))
    refused(await send(client, keys["requester"], {**base, "categories": ["holds"] * 5000}), 422)
    refused(await send(client, keys["requester"], {**base, "extra": list(range(10_000))}), 422)
    # Past the body limit: refused before a byte of it is parsed.
    refused(await send(client, keys["requester"], {**base, "extra": ["x" * 100] * 1000}), 413)
    huge_scope = order_token(patrons=[f"P{i:06d}" for i in range(5000)], allow_invalid=True)
    r = await send(client, keys["requester"], valid(huge_scope))
    assert r.status_code in (403, 413)
    assert await released(runtime) == (0, 0)


async def test_deeply_nested_json(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    """Nesting past the parser's depth, in the body and inside the token's payload."""
    for depth in (100, 30_000):
        nested = b'{"purpose": ' + b"[" * depth + b"]" * depth + b"}"
        refused(await send(client, keys["requester"], nested), 422)
    good = order_token(patrons=[DEMO_PATRON])
    header, payload, signature = good.split(".")
    raw = base64.urlsafe_b64decode(payload + "==").rstrip(b"}")
    deep = raw + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    forged = f"{header}.{b64(deep)}.{signature}"
    assert refused(await send(client, keys["requester"], valid(forged)), 403) == ["order.malformed"]
    assert await released(runtime) == (0, 0)
