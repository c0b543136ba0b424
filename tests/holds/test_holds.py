"""Legal holds: placed by every verified order evaluated or honoured, listed, and expiring."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.models import table_of
from app.holds import service
from app.holds.models import LegalHold
from app.notices.models import Notice
from app.orders.issuing import generate_key_pair, issue_order, make_claims
from app.records.demo import DEMO_PATRON, OTHER_PATRON
from app.runtime import Runtime, build_runtime
from tests.conftest import COURT_ISS, COURT_KID, auth, migrate
from tests.factories import disclosure_body

Token = Callable[..., str]
HOLDS = table_of(LegalHold)
NOTICES = table_of(Notice)
PATRONS = [DEMO_PATRON, OTHER_PATRON]


body = disclosure_body


def held_order(order_token: Token, **overrides: Any) -> str:
    overrides.setdefault("patrons", PATRONS)
    overrides.setdefault("categories", ["circulation", "holds"])
    overrides.setdefault("period", ("2025-07-01", "2026-06-30"))
    return order_token(**overrides)


async def holds(client: httpx.AsyncClient, key: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/legal-holds", params=params, headers=auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["holds"])


async def hold_rows(runtime: Runtime) -> int:
    async with runtime.state.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(HOLDS))).scalar_one())


async def test_a_permit_holds_every_patron_of_the_order(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    now = dt.datetime.now(dt.UTC)
    token = held_order(order_token, now=now, lifetime_days=10)
    r = await client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 200
    listed = await holds(client, keys["records_admin"])
    assert sorted(h["patron_id"] for h in listed) == sorted(PATRONS)
    hold = listed[0]
    assert hold["categories"] == ["circulation", "holds"]
    assert (hold["from"], hold["to"]) == ("2025-07-01", "2026-06-30")
    assert hold["order"]["jti"] == r.json()["order"]["jti"]
    expiry = dt.datetime.fromtimestamp(int(now.timestamp()) + 10 * 86400, dt.UTC)
    margin = runtime.policy.policy.legal_holds.margin_days
    # Through the whole library day (UTC in these settings) of expiry plus the margin.
    assert dt.datetime.fromisoformat(hold["held_until"]) == _day_end(
        expiry + dt.timedelta(days=margin)
    )


async def test_a_dry_run_and_a_refusal_hold_too(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    evaluated = held_order(order_token)
    r = await client.post("/v1/decisions", json=body(evaluated), headers=auth(keys["auditor"]))
    assert r.status_code == 200
    assert await hold_rows(runtime) == 2
    # Verified but refused (this patron is not in the order): the order was still evaluated.
    refused = held_order(order_token, patrons=[OTHER_PATRON])
    r = await client.post("/v1/disclosures", json=body(refused), headers=auth(keys["requester"]))
    assert r.status_code == 403
    assert await hold_rows(runtime) == 3
    # The same order again adds nothing.
    await client.post("/v1/decisions", json=body(evaluated), headers=auth(keys["auditor"]))
    assert await hold_rows(runtime) == 3


async def test_a_permit_refused_under_the_audit_lock_still_holds(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    # Revoked before this process ever saw the order: the permit path does not read the
    # order's state, so the refusal comes from the re-check under the audit lock.
    token = held_order(order_token, jti="revoked-unseen")
    r = await client.post(
        "/v1/orders/revocations",
        json={"iss": COURT_ISS, "jti": "revoked-unseen", "reason": "vacated", "pre_emptive": True},
        headers=auth(keys["admin"]),
    )
    assert r.status_code == 200
    r = await client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert (r.status_code, r.json()["reasons"][0]["code"]) == (403, "order.revoked")
    assert await hold_rows(runtime) == len(PATRONS)
    # The notice, unlike the hold, fell with the permit.
    async with runtime.state.connect() as conn:
        notices = (await conn.execute(select(func.count()).select_from(NOTICES))).scalar_one()
    assert notices == 0


@pytest.mark.parametrize(
    "kind", ["forged-signature", "expired", "untrusted-issuer", "malformed", "no-order"]
)
async def test_an_order_that_does_not_verify_holds_nothing(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    kind: str,
) -> None:
    tokens: dict[str, str | None] = {
        # Signed by a key that claims the court's kid but is not the court's.
        "forged-signature": issue_order(
            make_claims(patrons=PATRONS, iss=COURT_ISS, jurisdiction="US-IL"),
            generate_key_pair("ES256", COURT_KID)[0],
            COURT_KID,
            "ES256",
        ),
        "expired": held_order(
            order_token,
            now=dt.datetime.now(dt.UTC) - dt.timedelta(days=20),
            lifetime_days=10,
            allow_invalid=True,
        ),
        "untrusted-issuer": held_order(order_token, iss="https://courts.example/nowhere"),
        "malformed": "a.b",
        "no-order": None,
    }
    r = await client.post(
        "/v1/disclosures", json=body(tokens[kind]), headers=auth(keys["requester"])
    )
    assert r.status_code == 403
    assert await hold_rows(runtime) == 0


async def test_holds_expire_after_the_margin(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = held_order(order_token, lifetime_days=5)
    await client.post("/v1/decisions", json=body(token), headers=auth(keys["auditor"]))
    [first, *_] = await service.list_holds(runtime.state, now=dt.datetime.now(dt.UTC))
    until = dt.datetime.fromisoformat(first["held_until"])
    before = await service.list_holds(runtime.state, now=until - dt.timedelta(seconds=1))
    at_end = await service.list_holds(runtime.state, now=until)
    assert len(before) == 2
    assert at_end == []


async def test_margin_comes_from_the_policy(
    make_settings: Callable[..., Settings], tmp_path: Path, order_token: Token
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "t"\n[legal_holds]\nmargin_days = 0\n')
    settings = make_settings(policy=policy)
    await migrate(settings)
    runtime = await build_runtime(settings)
    try:
        from app.disclosures.schemas import DisclosureRequest
        from app.disclosures.service import dry_run

        caller = await _caller(runtime)
        now = dt.datetime.now(dt.UTC)
        token = held_order(order_token, now=now, lifetime_days=3)
        await dry_run(runtime, caller, DisclosureRequest.model_validate(body(token)), None)
        [hold, *_] = await service.list_holds(runtime.state, now=now)
        expiry = dt.datetime.fromtimestamp(int(now.timestamp()) + 3 * 86400, dt.UTC)
        assert dt.datetime.fromisoformat(hold["held_until"]) == _day_end(expiry)
    finally:
        await runtime.close()


def _day_end(instant: dt.datetime) -> dt.datetime:
    day = instant.date()
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)


def test_a_hold_lasts_through_the_library_s_local_day() -> None:
    # An order expiring at 03:00 UTC on 10 March 2026 expires on 9 March in Chicago (21:00
    # CST): with a 30-day margin the hold lasts through 8 April, to local midnight (CDT).
    from app.core.calendar import LibraryClock
    from app.orders.models import OrderClaims

    exp = int(dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC).timestamp())
    claims = OrderClaims.model_validate(
        make_claims(now=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), exp=exp, patrons=["P1"])
    )
    spec = service.hold_for(claims, 30, LibraryClock.named("America/Chicago"))
    assert spec.held_until.isoformat() == "2026-04-09T05:00:00+00:00"


async def _caller(runtime: Runtime) -> Any:
    from app.admin.clients import add_client
    from app.callers.models import Role

    _, key = await add_client(runtime.state, "auditor", Role.AUDITOR, audit=runtime.audit)
    return await runtime.callers.authenticate(key)


async def test_listing_filters_and_pages(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    for _ in range(2):
        token = held_order(order_token)
        await client.post("/v1/decisions", json=body(token), headers=auth(keys["auditor"]))
    mine = await holds(client, keys["auditor"], patron_id=OTHER_PATRON)
    assert [h["patron_id"] for h in mine] == [OTHER_PATRON, OTHER_PATRON]
    r = await client.get("/v1/legal-holds", params={"limit": 3}, headers=auth(keys["admin"]))
    page = r.json()
    assert len(page["holds"]) == 3
    rest = await holds(client, keys["admin"], after=page["next_after"])
    assert len(rest) == 1


@pytest.mark.parametrize("role", ["requester", "notifier"])
async def test_other_roles_may_not_list_holds(
    client: httpx.AsyncClient, keys: dict[str, str], role: str
) -> None:
    r = await client.get("/v1/legal-holds", headers=auth(keys[role]))
    assert r.status_code == 403
    assert r.json()["reasons"][0]["code"] == "caller.forbidden"


async def test_no_key_may_not_list_holds(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/legal-holds")).status_code == 401


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 5001}, {"after": -1}, {"patron_id": "x" * 129}]
)
async def test_bad_listing_query_is_422(
    client: httpx.AsyncClient, keys: dict[str, str], params: dict[str, Any]
) -> None:
    r = await client.get("/v1/legal-holds", params=params, headers=auth(keys["auditor"]))
    assert r.status_code == 422


def _spec(held_until: dt.datetime, patrons: tuple[str, ...] = ("P1", "P2")) -> service.HoldSpec:
    return service.HoldSpec(
        iss=COURT_ISS,
        jti="order-1",
        patrons=patrons,
        categories=("circulation",),
        period_from=dt.date(2026, 1, 1),
        period_to=dt.date(2026, 6, 30),
        held_until=held_until,
    )


async def _upserts_keep_the_later_end(url: str) -> None:
    import asyncio

    from app.core import migrations
    from app.core.database import create_engine

    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    base = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    try:
        for until, patrons in (
            (base, ("P1", "P2")),
            (base + dt.timedelta(days=30), ("P1", "P2", "P3")),  # a longer margin: extended
            (base - dt.timedelta(days=30), ("P1",)),  # a shorter one never cuts a hold short
        ):
            async with engine.begin() as conn:
                await service.place_holds(conn, service.spec_rows(_spec(until, patrons)))
        listed = await service.list_holds(engine, now=base - dt.timedelta(days=365))
    finally:
        await engine.dispose()
    assert sorted(h["patron_id"] for h in listed) == ["P1", "P2", "P3"]
    assert {dt.datetime.fromisoformat(h["held_until"]) for h in listed} == {
        base + dt.timedelta(days=30)
    }


async def test_placing_a_hold_twice_keeps_one_row_and_the_later_end(state_url: str) -> None:
    await _upserts_keep_the_later_end(state_url)


@pytest.mark.mariadb
async def test_placing_a_hold_on_mariadb(tmp_path: Path) -> None:
    from tests.databases import mariadb_database

    with mariadb_database() as url:
        await _upserts_keep_the_later_end(url)
