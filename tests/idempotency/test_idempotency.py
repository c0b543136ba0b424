"""Idempotency-Key: a retried POST answers the first answer, without a second use or event."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import httpx
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.core.models import table_of
from app.idempotency.models import IdempotentRequest
from app.idempotency.store import IdempotencyKey, StoredAnswer
from app.orders.models import OrderUse
from app.runtime import Runtime
from tests.conftest import auth
from tests.disclosures.test_disclosures import order, request

Token = Callable[..., str]
EVENTS = table_of(AuditEvent)
USES = table_of(OrderUse)
ROWS = table_of(IdempotentRequest)


def headers(api_key: str, idempotency_key: str) -> dict[str, str]:
    return {**auth(api_key), "Idempotency-Key": idempotency_key}


async def kinds(runtime: Runtime) -> list[str]:
    async with runtime.state.connect() as conn:
        rows = await conn.execute(select(EVENTS.c.kind).order_by(EVENTS.c.seq))
        return [row.kind for row in rows]


async def uses(runtime: Runtime) -> int:
    async with runtime.state.connect() as conn:
        return int((await conn.execute(select(func.coalesce(func.sum(USES.c.uses), 0)))).scalar())


async def test_same_key_same_body_replays_the_first_answer_records_included(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    body = request(order(order_token, max_uses=2))
    key = str(uuid.uuid4())
    first = await client.post("/v1/disclosures", json=body, headers=headers(keys["requester"], key))
    assert first.status_code == 200, first.text
    assert first.json()["records"]["circulation"]
    assert "idempotent-replayed" not in first.headers
    before = await kinds(runtime)
    second = await client.post(
        "/v1/disclosures", json=body, headers=headers(keys["requester"], key)
    )
    assert second.status_code == 200
    assert second.json() == first.json()  # records included, the same audit seq and uses_left
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]
    assert await uses(runtime) == 1  # no second use
    after = await kinds(runtime)
    assert after[len(before) :] == ["replay"]  # no second disclosure event, one replay note
    async with runtime.state.connect() as conn:
        note = (await conn.execute(select(EVENTS.c.body).order_by(EVENTS.c.seq.desc()))).first()
    assert note is not None
    assert json.loads(note.body)["replays_seq"] == first.json()["audit"]["seq"]


async def test_same_key_other_body_is_422(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order(order_token, max_uses=3)
    key = str(uuid.uuid4())
    first = await client.post(
        "/v1/disclosures", json=request(token), headers=headers(keys["requester"], key)
    )
    assert first.status_code == 200
    other = request(token, **{"from": "2026-02-01"})
    r = await client.post("/v1/disclosures", json=other, headers=headers(keys["requester"], key))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [x["code"] for x in r.json()["reasons"]] == ["idempotency.key_reused"]
    assert await uses(runtime) == 1
    # The same body on another path is another request too.
    r = await client.post("/v1/decisions", json=request(token), headers=headers(keys["admin"], key))
    assert r.status_code == 200  # another caller: another key, not a reuse


async def test_without_the_header_every_post_runs(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    body = request(order(order_token, max_uses=2))
    for _ in range(2):
        r = await client.post("/v1/disclosures", json=body, headers=auth(keys["requester"]))
        assert r.status_code == 200
    assert await uses(runtime) == 2


async def test_a_refusal_is_kept_and_replayed(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    body = request(order(order_token, max_uses=1), patron_id="P999999")
    key = str(uuid.uuid4())
    first = await client.post("/v1/disclosures", json=body, headers=headers(keys["requester"], key))
    assert first.status_code == 403
    second = await client.post(
        "/v1/disclosures", json=body, headers=headers(keys["requester"], key)
    )
    assert second.status_code == 403
    assert second.json() == first.json()
    assert second.headers["content-type"].startswith("application/problem+json")


async def test_unauthenticated_requests_keep_nothing(
    client: httpx.AsyncClient, order_token: Token, runtime: Runtime
) -> None:
    r = await client.post(
        "/v1/disclosures",
        json=request(order(order_token)),
        headers=headers("bwk_not-a-key", "k-1"),
    )
    assert r.status_code == 401
    async with runtime.state.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(ROWS))).scalar() == 0


async def test_a_malformed_key_is_refused(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    for bad in (b"has space", b"x" * 256, "é".encode()):
        r = await client.post(
            "/v1/decisions",
            json={},
            headers=[*auth(keys["admin"]).items(), ("Idempotency-Key", bad)],
        )
        assert r.status_code == 422
        assert r.json()["reasons"][0]["code"] == "request.invalid"


async def test_concurrent_duplicates_run_once(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    body = request(order(order_token, max_uses=5))
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(
            client.post("/v1/disclosures", json=body, headers=headers(keys["requester"], key))
            for _ in range(5)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["reasons"][0]["code"] == "idempotency.in_progress"
            assert answer.headers["retry-after"] == "1"
    assert await uses(runtime) == 1


async def test_a_failure_frees_the_key(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    key = str(uuid.uuid4())
    body = request(order(order_token))
    await runtime.audit.close()  # the audit log is down: 503, nothing released
    r = await client.post("/v1/disclosures", json=body, headers=headers(keys["requester"], key))
    assert r.status_code == 503
    async with runtime.state.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(ROWS))).scalar() == 0


async def test_the_stored_answer_is_sealed(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    key = str(uuid.uuid4())
    r = await client.post(
        "/v1/disclosures",
        json=request(order(order_token)),
        headers=headers(keys["requester"], key),
    )
    assert r.status_code == 200
    title = r.json()["records"]["circulation"][0]["title"].encode()
    async with runtime.state.connect() as conn:
        row = (await conn.execute(select(ROWS))).one()
        raw = (await conn.execute(text("SELECT * FROM idempotent_requests"))).one()
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in raw)
    assert title not in stored
    assert key.encode() not in stored
    assert b"P000" not in stored  # no patron id, in any column
    # Another key (or another instance secret) cannot open it; the right one can.
    wrong = IdempotencyKey(b"x" * 32, 1, key)
    try:
        wrong.open(row.answer)
        raise AssertionError("opened with the wrong key")
    except ValueError:
        pass
    assert isinstance(row.answer, bytes)


def test_answers_round_trip() -> None:
    answer = StoredAnswer(201, [("content-type", "application/json")], b'{"a": 1}')
    sealed = IdempotencyKey(b"s" * 32, 7, "key").seal(answer)
    assert IdempotencyKey(b"s" * 32, 7, "key").open(sealed) == answer
    for other in (IdempotencyKey(b"s" * 32, 8, "key"), IdempotencyKey(b"s" * 32, 7, "kez")):
        try:
            other.open(sealed)
            raise AssertionError("opened by another caller or key")
        except ValueError:
            pass


async def test_an_altered_kept_answer_is_never_replayed(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    key = str(uuid.uuid4())
    body = request(order(order_token, max_uses=2))
    first = await client.post("/v1/disclosures", json=body, headers=headers(keys["requester"], key))
    assert first.status_code == 200
    async with runtime.state.begin() as conn:
        row = (await conn.execute(select(ROWS))).one()
        flipped = row.answer[:-1] + bytes([row.answer[-1] ^ 1])
        await conn.execute(ROWS.update().values(answer=flipped))
    r = await client.post("/v1/disclosures", json=body, headers=headers(keys["requester"], key))
    assert r.status_code == 503
    assert r.json()["reasons"][0]["code"] == "state.unavailable"
    assert "new key" in r.json()["detail"]
    assert await uses(runtime) == 1  # and the request did not run again
