"""One use, one result set: a cursor continues the use that spent it, for its caller, once.

Each test is an attack of issue 15 through the API: a cursor replayed by the same caller and
by another, rows the library adds after the first page, a cursor kept past its window or its
order's revocation, and what the cursor itself reveals.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from app.admin.clients import add_client
from app.audit import service as audit_service
from app.callers.models import Role
from app.core.config import Settings
from app.disclosures.cursor import CONTINUATIONS
from app.main import create_app
from app.records.demo import DEMO_BUSY_PATRON
from app.runtime import Runtime, build_runtime
from tests.conftest import COURT_ISS, auth, migrate

Token = Callable[..., str]
PAGE = 15


@dataclass
class World:
    rt: Runtime
    client: httpx.AsyncClient
    keys: dict[str, str]
    records: Path  # this test's own copy of the demo store


@pytest.fixture
async def world(
    make_settings: Callable[..., Settings], demo_store_url: str, tmp_path: Path
) -> AsyncIterator[World]:
    copy = tmp_path / "records-copy.db"
    shutil.copy(make_url(demo_store_url).database or "", copy)
    settings = make_settings(max_records_per_response=PAGE, records_url=f"sqlite:///{copy}")
    await migrate(settings)
    rt = await build_runtime(settings)
    try:
        keys = {}
        for name, role in (("a", Role.REQUESTER), ("b", Role.REQUESTER), ("admin", Role.ADMIN)):
            _, keys[name] = await add_client(rt.state, f"caller-{name}", role, audit=rt.audit)
        app = create_app(runtime=rt)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            yield World(rt, c, keys, copy)
    finally:
        await rt.close()


def body_for(order_token: Token, **claims: Any) -> dict[str, Any]:
    claims.setdefault("patrons", [DEMO_BUSY_PATRON])
    claims.setdefault("categories", ["circulation"])
    claims.setdefault("max_uses", 1)
    return {
        "purpose": "legal_process",
        "patron_id": DEMO_BUSY_PATRON,
        "categories": ["circulation"],
        "from": "2026-01-01",
        "to": "2026-06-30",
        "court_order": order_token(**claims),
    }


async def post(w: World, body: dict[str, Any], key: str = "a") -> httpx.Response:
    return await w.client.post("/v1/disclosures", json=body, headers=auth(w.keys[key]))


def codes(r: httpx.Response) -> list[str]:
    return [x["code"] for x in r.json()["reasons"]]


async def scalar(rt: Runtime, sql: str) -> Any:
    async with rt.state.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def events(rt: Runtime) -> list[tuple[str, str, dict[str, Any]]]:
    async with rt.state.connect() as conn:
        rows = (await conn.execute(text("SELECT kind, effect, body FROM audit_events"))).all()
    return [(k, e, json.loads(b)) for k, e, b in rows]


async def test_a_replayed_cursor_is_refused_and_recorded(world: World, order_token: Token) -> None:
    body = body_for(order_token)
    first = await post(world, body)
    assert first.status_code == 200, first.text
    cursor = first.json()["cursor"]
    second = await post(world, {**body, "cursor": cursor})
    assert second.status_code == 200, second.text
    replay = await post(world, {**body, "cursor": cursor})
    assert (replay.status_code, codes(replay)) == (403, ["cursor.invalid"])
    assert "records" not in replay.json()
    # The replay is on the record, as a refused page; the one use was spent once.
    kinds = [(k, e) for k, e, _ in await events(world.rt) if k.startswith("disclosure")]
    assert kinds == [
        ("disclosure", "permit"),
        ("disclosure_page", "permit"),
        ("disclosure_page", "deny"),
    ]
    assert await scalar(world.rt, "SELECT SUM(uses) FROM order_uses") == 1
    assert (await audit_service.verify_chain(world.rt.state)).ok


async def test_another_callers_key_cannot_continue_and_does_not_spend_it(
    world: World, order_token: Token
) -> None:
    body = body_for(order_token)
    first = await post(world, body)
    cursor = first.json()["cursor"]
    stolen = await post(world, {**body, "cursor": cursor}, key="b")
    assert (stolen.status_code, codes(stolen)) == (403, ["cursor.invalid"])
    own = await post(world, {**body, "cursor": cursor})
    assert own.status_code == 200, own.text


async def test_a_cursor_for_another_request_is_refused(world: World, order_token: Token) -> None:
    body = body_for(order_token, period=("2026-01-01", "2026-12-31"))
    first = await post(world, body)
    cursor = first.json()["cursor"]
    wider = await post(world, {**body, "to": "2026-12-31", "cursor": cursor})
    assert (wider.status_code, codes(wider)) == (403, ["cursor.invalid"])


async def test_rows_added_after_the_first_page_are_not_released(
    world: World, order_token: Token
) -> None:
    body = body_for(order_token)
    r = await post(world, body)
    assert r.status_code == 200, r.text
    totals = r.json()["records"]["circulation"]
    # The library adds loans inside the period after the first page: some before the first
    # page's last row, some after it.
    with sqlite3.connect(world.records) as db:
        for day in ("2026-01-01 00:00:01", "2026-06-30 23:00:00"):
            db.execute(
                "INSERT INTO loans (patron_id, title, checked_out_at, due_on) "
                "VALUES (?, 'ADDED-LATER', ?, '2026-07-31')",
                (DEMO_BUSY_PATRON, day),
            )
    while r.json()["cursor"]:
        r = await post(world, {**body, "cursor": r.json()["cursor"]})
        assert r.status_code == 200, r.text
        totals += r.json()["records"]["circulation"]
    assert all(x["title"] != "ADDED-LATER" for x in totals)
    first = [b for k, _, b in await events(world.rt) if k == "disclosure"][0]
    assert len(totals) == first["released"]["totals"]["circulation"]
    # A new use reads them.
    again = await post(world, body_for(order_token))
    rows = list(again.json()["records"]["circulation"])
    assert any(x["title"] == "ADDED-LATER" for x in rows)


async def test_every_page_once_then_the_disclosure_is_one(world: World, order_token: Token) -> None:
    body = body_for(order_token)
    r = await post(world, body)
    pages, seen = 1, len(r.json()["records"]["circulation"])
    while r.json()["cursor"]:
        r = await post(world, {**body, "cursor": r.json()["cursor"]})
        assert r.status_code == 200, r.text
        assert r.json()["order"]["uses_left"] == 0
        pages += 1
        seen += len(r.json()["records"]["circulation"])
    assert pages > 2
    page_events = [b for k, e, b in await events(world.rt) if k == "disclosure_page"]
    first = [b for k, _, b in await events(world.rt) if k == "disclosure"][0]
    assert [b["released"]["page"] for b in page_events] == list(range(2, pages + 1))
    assert {b["released"]["continuation_of"] for b in page_events} == {first["disclosure_id"]}
    # One disclosure: one row (counting the whole use), one notice, one hold.
    assert await scalar(world.rt, "SELECT COUNT(*) FROM disclosures") == 1
    assert await scalar(world.rt, "SELECT record_count FROM disclosures") == seen
    assert await scalar(world.rt, "SELECT COUNT(*) FROM notices") == 1
    assert await scalar(world.rt, "SELECT COUNT(*) FROM legal_holds") == 1
    # Nothing of the use is left at rest once its last page is out.
    assert await scalar(world.rt, "SELECT COUNT(*) FROM disclosure_continuations") == 0


async def test_a_cursor_past_its_window_is_refused(world: World, order_token: Token) -> None:
    body = body_for(order_token)
    first = await post(world, body)
    async with world.rt.state.begin() as conn:
        await conn.execute(
            update(CONTINUATIONS).values(expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        )
    late = await post(world, {**body, "cursor": first.json()["cursor"]})
    assert (late.status_code, codes(late)) == (403, ["cursor.invalid"])
    # The expired page is not kept at rest either.
    assert await scalar(world.rt, "SELECT COUNT(*) FROM disclosure_continuations") == 0


async def test_the_window_never_outlasts_the_order(world: World, order_token: Token) -> None:
    exp = int(time.time()) + 90
    body = body_for(order_token, exp=exp, iat=int(time.time()) - 60)
    first = await post(world, body)
    assert first.status_code == 200, first.text
    async with world.rt.state.connect() as conn:
        expires = (await conn.execute(select(CONTINUATIONS.c.expires_at))).scalar_one()
    assert int(expires.timestamp()) <= exp


async def test_a_revoked_order_stops_its_pages(world: World, order_token: Token) -> None:
    body = body_for(order_token, jti="revoked-between-pages")
    first = await post(world, body)
    revoke = await world.client.post(
        "/v1/orders/revocations",
        json={"iss": COURT_ISS, "jti": "revoked-between-pages", "reason": "vacated"},
        headers=auth(world.keys["admin"]),
    )
    assert revoke.status_code == 200
    r = await post(world, {**body, "cursor": first.json()["cursor"]})
    assert (r.status_code, codes(r)) == (403, ["order.revoked"])


async def test_the_cursor_reveals_nothing(world: World, order_token: Token) -> None:
    body = body_for(order_token, jti="order-with-a-name")
    cursor = (await post(world, body)).json()["cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=")
    assert len(raw) == 32  # random bytes, nothing else
    pseudonym = world.rt.pseudonymize(DEMO_BUSY_PATRON)
    for secret in (DEMO_BUSY_PATRON, pseudonym, "order-with-a-name", "loans", "2026"):
        assert secret not in cursor and secret.encode() not in raw
    # The state database keeps only the handle's hash and the records encrypted.
    async with world.rt.state.connect() as conn:
        handle, payload = (
            await conn.execute(text("SELECT handle, payload FROM disclosure_continuations"))
        ).one()
    assert handle != cursor and cursor not in payload
    assert "loan" not in base64.b64decode(payload).decode("latin-1").lower()


async def test_a_forged_cursor_is_a_bad_request(world: World, order_token: Token) -> None:
    body = body_for(order_token)
    await post(world, body)
    for forged in ("eyJ9.AAAA", "A" * 43 + "=", "!" * 43):
        r = await post(world, {**body, "cursor": forged})
        assert (r.status_code, codes(r)) == (422, ["request.invalid"]), forged
    unknown = base64.urlsafe_b64encode(b"\0" * 32).rstrip(b"=").decode()
    r = await post(world, {**body, "cursor": unknown})
    assert (r.status_code, codes(r)) == (403, ["cursor.invalid"])


async def test_one_cursor_sent_twice_at_once_gives_its_page_once(
    world: World, order_token: Token
) -> None:
    import asyncio

    body = body_for(order_token)
    cursor = (await post(world, body)).json()["cursor"]
    answers = await asyncio.gather(*(post(world, {**body, "cursor": cursor}) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [200, 403, 403, 403]
