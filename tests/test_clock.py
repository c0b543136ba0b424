"""One clock (issue 16): a replica whose clock is off decides nothing, events never go back in
time, and notices and holds go by the state database's date, not a replica's."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import text

from app.audit import service as audit_service
from app.audit.writer import AuditWriter, Entry
from app.core.clock import ClockSkewed, StateClock, clock_of
from app.core.problems import StateUnavailable
from app.main import create_app
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime, build_runtime
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]


body = disclosure_body


def skew(runtime: Runtime, by: dt.timedelta) -> None:
    """Fake this replica's wall clock: ``by`` ahead of (or behind) the real time."""
    clock_of(runtime).local = lambda: dt.datetime.now(dt.UTC) + by


@pytest.fixture
async def peer(runtime: Runtime) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A second replica on the same state database (and its own client)."""
    other = await build_runtime(runtime.settings)
    app = create_app(runtime=other)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://peer.test") as c:
                yield other, c
    finally:
        await other.close()


async def test_a_slow_replica_refuses_what_its_peer_refuses_as_expired(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    peer: tuple[Runtime, httpx.AsyncClient],
) -> None:
    slow_runtime, slow = peer
    skew(slow_runtime, -dt.timedelta(days=2))  # two days slow
    # Expired a day ago: by the slow replica's own clock it would still be valid.
    expired = order_token(
        patrons=[DEMO_PATRON],
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
        lifetime_days=9,
        allow_invalid=True,
    )
    right = await client.post(
        "/v1/disclosures", json=body(expired), headers=auth(keys["requester"])
    )
    assert right.status_code == 403
    assert "order.expired" in [r["code"] for r in right.json()["reasons"]]
    wrong = await slow.post("/v1/disclosures", json=body(expired), headers=auth(keys["requester"]))
    assert wrong.status_code == 503, wrong.text
    assert wrong.headers["content-type"] == "application/problem+json"
    assert [r["code"] for r in wrong.json()["reasons"]] == ["state.unavailable"]
    assert "clock" in wrong.json()["detail"]
    # ... and no event was written by it (only the right replica's refusal).
    verdict = await audit_service.verify_chain(slow_runtime.state)
    assert verdict.ok


async def test_readyz_reports_the_replica_whose_clock_is_off(
    client: httpx.AsyncClient, keys: dict[str, str], peer: tuple[Runtime, httpx.AsyncClient]
) -> None:
    fast_runtime, fast = peer
    skew(fast_runtime, dt.timedelta(days=45))
    assert (await client.get("/readyz")).status_code == 200
    r = await fast.get("/readyz", headers=auth(keys["admin"]))
    assert r.status_code == 503
    clock = r.json()["checks"]["clock"]
    assert clock["ok"] is False and clock["offset_seconds"] > 44 * 86400


async def test_a_fast_replica_does_not_list_a_gagged_notice(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    peer: tuple[Runtime, httpx.AsyncClient],
) -> None:
    fast_runtime, fast = peer
    until = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    token = order_token(patrons=[DEMO_PATRON], nondisclosure_until=until.isoformat())
    r = await client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 200, r.text
    skew(fast_runtime, dt.timedelta(days=45))  # by its own clock the seal is over
    listed = await fast.get("/v1/notices/due", headers=auth(keys["notifier"]))
    assert listed.status_code == 503
    right = await client.get("/v1/notices/due", headers=auth(keys["notifier"]))
    assert right.status_code == 200 and right.json()["notices"] == []


async def test_within_the_skew_the_database_clock_dates_decisions(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    allowed = clock_of(runtime).skew_seconds
    skew(runtime, dt.timedelta(seconds=allowed / 2))
    token = order_token(patrons=[DEMO_PATRON])
    r = await client.post("/v1/decisions", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 200, r.text
    async with runtime.state.connect() as conn:
        ts = (await conn.execute(text("SELECT max(seq) FROM audit_events"))).scalar_one()
        event = await audit_service.list_events(runtime.state, after=int(ts) - 1, limit=1)
    stamped = dt.datetime.fromisoformat(event[0]["ts"])
    assert abs((stamped - dt.datetime.now(dt.UTC)).total_seconds()) < allowed / 4


async def test_event_times_never_go_backwards(runtime: Runtime) -> None:
    ahead = AuditWriter(runtime.state, now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    behind = AuditWriter(runtime.state, now=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    first = second = None
    for writer in (ahead, behind):
        writer.start()
    try:
        entry = Entry(kind="evaluation", effect="deny", body={"v": 1, "reasons": []})
        first = await ahead.append(entry)
        second = await behind.append(entry)
        third = await behind.append(entry)  # its own head now: the fast path, same rule
    finally:
        await ahead.close()
        await behind.close()
    assert second.seq == first.seq + 1 and third.seq == second.seq + 1
    assert first.ts <= second.ts <= third.ts
    assert (await audit_service.verify_chain(runtime.state)).ok


async def test_the_clock_is_the_state_databases(runtime: Runtime) -> None:
    clock = StateClock(runtime.state, skew_seconds=60)
    await clock.measure()
    assert abs(clock.offset_seconds()) < 5  # the test databases run on this machine
    clock.local = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert clock.report()["ok"] is False
    assert abs((clock.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 5


async def test_a_database_briefly_away_is_not_a_clock_fault(runtime: Runtime) -> None:
    ticks = [1000.0]
    clock = StateClock(runtime.state, skew_seconds=60, monotonic=lambda: ticks[0])
    await clock.measure()

    async def unreachable() -> None:
        raise OSError("connection refused")

    clock.measure = unreachable  # type: ignore[method-assign]
    ticks[0] += 10  # past the refresh interval: it tries, fails, and keeps its measurement
    await clock.check()
    ticks[0] += 400  # too old to trust: refused, as the state database's failure
    with pytest.raises(StateUnavailable) as refused:
        await clock.check()
    assert not isinstance(refused.value, ClockSkewed)
