"""Patron notices: made with each permit, given at once or on the court's date, never before."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.audit import service as audit_service
from app.core.models import table_of
from app.notices import service
from app.notices.models import Notice
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]
NOTICES = table_of(Notice)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def body(token: str) -> dict[str, Any]:
    return disclosure_body(
        token, categories=["circulation", "holds"], start="2026-02-01", end="2026-05-31"
    )


async def disclose(
    client: httpx.AsyncClient, keys: dict[str, str], token: str, status: int = 200
) -> dict[str, Any]:
    r = await client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == status, r.text
    return dict(r.json())


async def due(client: httpx.AsyncClient, keys: dict[str, str]) -> list[dict[str, Any]]:
    r = await client.get("/v1/notices/due", headers=auth(keys["notifier"]))
    assert r.status_code == 200, r.text
    return list(r.json()["notices"])


async def notice_count(runtime: Runtime) -> int:
    async with runtime.state.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(NOTICES))).scalar_one())


def sealed_until(order_token: Token, until: dt.date) -> str:
    return order_token(
        patrons=[DEMO_PATRON],
        categories=["circulation", "holds"],
        nondisclosure_until=until.isoformat(),
        case="2026-CR-777",
    )


async def test_a_permit_without_seal_is_due_at_once(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order_token(patrons=[DEMO_PATRON], categories=["circulation", "holds"])
    released = await disclose(client, keys, token)
    [notice] = await due(client, keys)
    assert notice["patron_id"] == DEMO_PATRON
    assert notice["disclosure_id"] == released["disclosure_id"]
    assert notice["case"] == "2026-CR-000123"
    assert notice["court"] == "Circuit Court of Cook County"
    assert notice["instrument"] == "court_order"
    assert notice["categories"] == ["circulation", "holds"]
    assert (notice["from"], notice["to"]) == ("2026-02-01", "2026-05-31")
    assert notice["not_before"] == today().isoformat()
    assert notice["delivered_at"] is None
    # The notice lives in the state database; the audit log never sees the patron id.
    events = await audit_service.list_events(runtime.state, after=0, limit=1000)
    assert DEMO_PATRON not in json.dumps(events)


@pytest.mark.parametrize(
    ("offset", "listed"),
    [(1, False), (0, True), (-1, True)],
    ids=["seal-ends-tomorrow", "seal-ends-today", "seal-ended-yesterday"],
)
async def test_a_sealed_notice_is_due_on_its_date(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    offset: int,
    listed: bool,
) -> None:
    until = today() + dt.timedelta(days=offset)
    await disclose(client, keys, sealed_until(order_token, until))
    notices = await due(client, keys)
    assert len(notices) == int(listed)
    audited = await client.get("/v1/notices", headers=auth(keys["auditor"]))
    assert len(audited.json()["notices"]) == int(listed)
    if listed:
        assert notices[0]["not_before"] == until.isoformat()
        assert notices[0]["case"] == "2026-CR-777"


async def test_a_sealed_notice_is_given_before_on_and_after_its_date(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    until = today() + dt.timedelta(days=30)
    await disclose(client, keys, sealed_until(order_token, until))
    assert await notice_count(runtime) == 1
    for day, listed in (
        (until - dt.timedelta(days=1), 0),
        (until, 1),
        (until + dt.timedelta(days=9), 1),
    ):
        notices = await service.due_notices(runtime.state, today=day, limit=10)
        assert len(notices) == listed, day
        audited = await service.list_notices(runtime.state, today=day, after=None, limit=10)
        assert len(audited) == listed, day


async def test_a_sealed_notice_is_hidden_from_every_route(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await disclose(client, keys, sealed_until(order_token, today() + dt.timedelta(days=30)))
    async with runtime.state.connect() as conn:
        notice_id = (await conn.execute(select(NOTICES.c.id))).scalar_one()
    assert await due(client, keys) == []
    for role in ("auditor", "admin"):
        r = await client.get("/v1/notices", headers=auth(keys[role]))
        assert r.json()["notices"] == [], role
    # Marking it delivered answers exactly as for a notice that does not exist.
    sealed = await client.post(f"/v1/notices/{notice_id}/delivered", headers=auth(keys["notifier"]))
    unknown = await client.post(
        "/v1/notices/00000000-0000-0000-0000-000000000000/delivered",
        headers=auth(keys["notifier"]),
    )
    assert sealed.status_code == unknown.status_code == 404
    assert sealed.json()["detail"] == unknown.json()["detail"]
    assert [r["code"] for r in sealed.json()["reasons"]] == ["request.not_found"]


async def test_delivery_is_audited_and_idempotent(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    await disclose(
        client, keys, order_token(patrons=[DEMO_PATRON], categories=["circulation", "holds"])
    )
    [notice] = await due(client, keys)
    first = await client.post(
        f"/v1/notices/{notice['id']}/delivered", headers=auth(keys["notifier"])
    )
    assert first.status_code == 200, first.text
    assert first.json()["already_delivered"] is False
    [event] = await audit_service.list_events(
        runtime.state, after=first.json()["audit_seq"] - 1, limit=1
    )
    assert event["kind"] == "notice"
    assert event["body"]["notice_id"] == notice["id"]
    assert DEMO_PATRON not in json.dumps(event)
    assert await due(client, keys) == []
    again = await client.post(
        f"/v1/notices/{notice['id']}/delivered", headers=auth(keys["notifier"])
    )
    assert again.status_code == 200
    assert again.json()["already_delivered"] is True
    assert again.json()["delivered_at"] == first.json()["delivered_at"]
    listed = (await client.get("/v1/notices", headers=auth(keys["auditor"]))).json()["notices"]
    assert listed[0]["delivered_at"] is not None


async def test_refusals_and_dry_runs_make_no_notice(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    denied = order_token(patrons=["SOMEONE-ELSE"], categories=["circulation", "holds"])
    await disclose(client, keys, denied, status=403)
    permitted = order_token(patrons=[DEMO_PATRON], categories=["circulation", "holds"])
    r = await client.post("/v1/decisions", json=body(permitted), headers=auth(keys["requester"]))
    assert r.json()["decision"]["effect"] == "permit"
    assert await notice_count(runtime) == 0


async def test_a_permit_refused_under_the_lock_leaves_no_notice(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    # Five requests race for one use: one permit stands, the others become refusals in the
    # audit transaction, and their notices go with them.
    token = order_token(patrons=[DEMO_PATRON], categories=["circulation", "holds"], max_uses=1)
    answers = await asyncio.gather(
        *(
            client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
            for _ in range(5)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 403, 403, 403, 403]
    assert await notice_count(runtime) == 1


@pytest.mark.parametrize("role", ["requester", "auditor", "admin", "records_admin"])
async def test_only_the_notifier_fetches_and_marks(
    client: httpx.AsyncClient, keys: dict[str, str], role: str
) -> None:
    r = await client.get("/v1/notices/due", headers=auth(keys[role]))
    assert r.status_code == 403
    r = await client.post(
        "/v1/notices/00000000-0000-0000-0000-000000000000/delivered", headers=auth(keys[role])
    )
    assert r.status_code == 403


@pytest.mark.parametrize("role", ["requester", "notifier", "records_admin"])
async def test_only_auditors_list_every_notice(
    client: httpx.AsyncClient, keys: dict[str, str], role: str
) -> None:
    assert (await client.get("/v1/notices", headers=auth(keys[role]))).status_code == 403


async def test_no_key_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/notices/due")).status_code == 401


@pytest.mark.parametrize("notice_id", ["not-a-uuid", "x" * 36, "0" * 200])
async def test_malformed_notice_id_is_422(
    client: httpx.AsyncClient, keys: dict[str, str], notice_id: str
) -> None:
    r = await client.post(f"/v1/notices/{notice_id}/delivered", headers=auth(keys["notifier"]))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
