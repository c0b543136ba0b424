"""Sealed means sealed (issue 15): while an order is under nondisclosure, no route names it.

Every route that lists holds, notices, events or reports is read by every role that may read
it; none shows the sealed order's id, case, categories or period. The purge job still learns
whose records to keep and until when. Holds come only from verified orders.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.records.demo import DEMO_PATRON
from app.runtime import Runtime
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]
JTI = "sealed-order-7731"
CASE = "SEALED-CASE-7731"
CATEGORIES = ["circulation", "reference"]


def body(token: str) -> dict[str, Any]:
    return disclosure_body(token, start="2026-02-03", end="2026-05-17")


def sealed_order(order_token: Token, **claims: Any) -> str:
    until = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=90)
    claims.setdefault("nondisclosure_until", until.isoformat())
    return order_token(
        jti=JTI,
        case=CASE,
        patrons=[DEMO_PATRON],
        categories=CATEGORIES,
        period=("2026-02-03", "2026-05-17"),
        **claims,
    )


def names_the_order(text_: str) -> list[str]:
    return [s for s in (JTI, CASE, "2026-02-03", "2026-05-17") if s in text_]


async def test_a_sealed_order_shows_through_no_route(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = sealed_order(order_token, max_uses=2)
    for path in ("/v1/disclosures", "/v1/decisions"):
        r = await client.post(path, json=body(token), headers=auth(keys["requester"]))
        assert r.status_code == 200, r.text
    reads = {
        "/v1/legal-holds": ("auditor", "admin", "records_admin"),
        "/v1/notices": ("auditor", "admin"),
        "/v1/notices/due": ("notifier",),
        "/v1/audit/events": ("auditor", "admin"),
        "/v1/transparency": ("auditor", "admin"),
    }
    for path, roles in reads.items():
        for role in roles:
            r = await client.get(path, headers=auth(keys[role]))
            assert r.status_code == 200, (path, role, r.text)
            assert names_the_order(r.text) == [], (path, role)
    # The purge job still learns whose records to keep, and until when: nothing more.
    holds = (await client.get("/v1/legal-holds", headers=auth(keys["records_admin"]))).json()
    (hold,) = holds["holds"]
    assert hold["patron_id"] == DEMO_PATRON
    assert hold["sealed"] is True
    assert hold["held_until"]
    assert {k for k, v in hold.items() if v is not None} == {
        "id",
        "patron_id",
        "sealed",
        "held_until",
    }
    # The events are there (the chain is whole), their bodies withheld.
    events = (await client.get("/v1/audit/events", headers=auth(keys["auditor"]))).json()
    sealed = [e for e in events["events"] if e["sealed"]]
    assert [e["kind"] for e in sealed] == ["disclosure", "evaluation"]
    assert all(e["body"] == {"sealed": True} for e in sealed)
    verify = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert verify.json()["ok"] is True


async def test_an_order_without_a_seal_is_shown(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = sealed_order(order_token, nondisclosure_until=None)
    r = await client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 200, r.text
    (hold,) = (await client.get("/v1/legal-holds", headers=auth(keys["auditor"]))).json()["holds"]
    assert hold["sealed"] is False
    assert (hold["order"]["jti"], hold["categories"]) == (JTI, CATEGORIES)
    events = (await client.get("/v1/audit/events", headers=auth(keys["auditor"]))).json()
    assert any(
        (e["body"].get("order") or {}).get("case") == CASE and not e["sealed"]
        for e in events["events"]
    )


async def test_holds_come_only_from_verified_orders(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    expired = order_token(
        jti="expired-order",
        patrons=[DEMO_PATRON],
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=60),
        lifetime_days=30,
        allow_invalid=True,
    )
    for path in ("/v1/disclosures", "/v1/decisions"):
        r = await client.post(path, json=body(expired), headers=auth(keys["requester"]))
        reasons = r.json()["reasons"] if r.status_code == 403 else r.json()["decision"]["reasons"]
        assert "order.expired" in [x["code"] for x in reasons]
    async with runtime.state.connect() as conn:
        held = (await conn.execute(text("SELECT COUNT(*) FROM legal_holds"))).scalar_one()
    assert held == 0
    listed = (await client.get("/v1/legal-holds", headers=auth(keys["auditor"]))).json()
    assert json.dumps(listed).count(DEMO_PATRON) == 0
