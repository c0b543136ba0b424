"""The per-caller rate limit: exact counts, shared by replicas, 429 with Retry-After, and
fail closed (503) when its backend is down or hangs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from app.admin.clients import add_client
from app.callers.models import Role
from app.callers.service import Caller
from app.core.config import Settings
from app.core.problems import RateLimited, StateUnavailable
from app.core.startup import StartupError
from app.main import create_app
from app.metrics import REGISTRY
from app.ratelimit import DatabaseCounter, RateLimiter, RedisCounter, limiter_of
from app.ratelimit.limiter import WINDOW_SECONDS
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime, build_runtime
from tests.conftest import auth, migrate
from tests.databases import require
from tests.factories import disclosure_body

REDIS_URL = "redis://127.0.0.1:6379/0"
CALLER = Caller(id=1, name="c", role=Role.REQUESTER)


def decision_body(token: str) -> dict[str, Any]:
    return disclosure_body(token)


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """One replica: an app over ``runtime``, with its lifespan."""
    app = create_app(runtime=runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bulwark.test") as c:
            yield c


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    runtime = await build_runtime(settings)
    try:
        async with serving(runtime) as c:
            yield runtime, c
    finally:
        await runtime.close()


async def new_key(runtime: Runtime, name: str, role: Role = Role.REQUESTER) -> str:
    _, key = await add_client(runtime.state, name, role, audit=runtime.audit)
    return key


def redis_settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    require("Redis", "127.0.0.1", 6379)
    return make_settings(
        rate_limit_backend="redis",
        redis_url=REDIS_URL,
        redis_prefix=f"bulwark-test:{uuid.uuid4().hex}",
        **overrides,
    )


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    body = r.json()
    assert [x["code"] for x in body["reasons"]] == ["request.rate_limited"]
    assert body["status"] == 429


@pytest.fixture(autouse=True)
async def within_one_minute() -> None:
    """Start each test with at least 5 s left in the limiter's minute.

    The window is fixed (app/ratelimit/limiter.py): a test that counts exactly through the
    API and straddles a minute boundary would see a fresh window half way through.
    """
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 5:
        await asyncio.sleep(left + 0.05)


@pytest.fixture(params=["database", "redis"])
def limited_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    if request.param == "redis":
        return redis_settings(make_settings, rate_limit_per_minute=3)
    return make_settings(rate_limit_per_minute=3)


async def test_past_the_limit_429_with_retry_after_and_nothing_done(
    limited_settings: Settings, order_token: Callable[..., str]
) -> None:
    await migrate(limited_settings)
    async with replica(limited_settings) as (rt, c):
        key, other = await new_key(rt, "busy"), await new_key(rt, "quiet")
        token = order_token(patrons=[DEMO_PATRON], max_uses=10)
        for _ in range(3):
            r = await c.post("/v1/decisions", json=decision_body(token), headers=auth(key))
            assert r.status_code == 200, r.text
        async with rt.state.connect() as conn:
            events = (await conn.execute(text("SELECT COUNT(*) FROM audit_events"))).scalar_one()
        exported = REGISTRY.get_sample_value("bulwark_rate_limited_total") or 0.0
        r = await c.post("/v1/disclosures", json=decision_body(token), headers=auth(key))
        assert_limited(r)
        assert REGISTRY.get_sample_value("bulwark_rate_limited_total") == exported + 1
        async with rt.state.connect() as conn:  # refused before anything ran: no event, no use
            assert (
                await conn.execute(text("SELECT COUNT(*) FROM audit_events"))
            ).scalar_one() == events
            assert (await conn.execute(text("SELECT COUNT(*) FROM order_uses"))).scalar_one() == 0
        # Per caller: another key is not held back, and public routes are not counted.
        r = await c.post("/v1/decisions", json=decision_body(token), headers=auth(other))
        assert r.status_code == 200
        assert (await c.get("/healthz")).status_code == 200


async def test_limit_is_exact_under_concurrency_on_every_route(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(rate_limit_per_minute=10)
    await migrate(settings)
    async with replica(settings) as (rt, c):
        key = await new_key(rt, "auditor", Role.AUDITOR)
        responses = await asyncio.gather(
            *(c.get("/v1/policy", headers=auth(key)) for _ in range(25))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [429] * 15


async def test_replicas_share_one_count(limited_settings: Settings) -> None:
    """Two processes' worth of state (runtimes, engines, clients) on one backend."""
    await migrate(limited_settings)
    async with replica(limited_settings) as (rt_a, a), replica(limited_settings) as (_, b):
        key = await new_key(rt_a, "shared", Role.AUDITOR)
        codes = [
            (await (a if i % 2 else b).get("/v1/policy", headers=auth(key))).status_code
            for i in range(5)
        ]
    assert codes == [200, 200, 200, 429, 429]


async def test_new_window_admits_again_and_retry_after_counts_down(runtime: Runtime) -> None:
    now = [6000.0 + 50]  # ten seconds before the minute ends
    limiter = RateLimiter(DatabaseCounter(runtime.state), 2, clock=lambda: now[0])
    await limiter.hit(CALLER)
    await limiter.hit(CALLER)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit(CALLER)
    assert refused.value.headers == {"Retry-After": "10"}
    now[0] = 6060.0  # the next minute
    await limiter.hit(CALLER)
    await limiter.hit(CALLER)


async def test_a_lagging_replica_clock_does_not_reset_the_count(runtime: Runtime) -> None:
    counter = DatabaseCounter(runtime.state)
    assert await counter.hit("caller:9", 101) == 1
    assert await counter.hit("caller:9", 101) == 2
    assert await counter.hit("caller:9", 100) == 3  # late clock: counts against minute 101
    assert await counter.hit("caller:9", 102) == 1


async def test_database_backend_down_is_503_and_nothing_runs(
    make_settings: Callable[..., Settings], order_token: Callable[..., str]
) -> None:
    settings = make_settings()
    await migrate(settings)
    async with replica(settings) as (rt, c):
        key = await new_key(rt, "r")
        async with rt.state.begin() as conn:
            await conn.execute(text("DROP TABLE rate_limits"))
        r = await c.post(
            "/v1/disclosures",
            json=decision_body(order_token(patrons=[DEMO_PATRON])),
            headers=auth(key),
        )
        assert r.status_code == 503, r.text
        assert [x["code"] for x in r.json()["reasons"]] == ["state.unavailable"]
        async with rt.state.connect() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM order_uses"))).scalar_one() == 0


async def test_redis_down_or_hanging_is_refused_within_the_timeout() -> None:
    # A server that accepts and never answers, then a port where nothing listens.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for url in (f"redis://127.0.0.1:{port}/0", "redis://127.0.0.1:1/0"):
            limiter = RateLimiter(RedisCounter(url, prefix="x", timeout=0.3), 5, timeout=0.5)
            started = asyncio.get_running_loop().time()
            with pytest.raises(StateUnavailable):
                await limiter.hit(CALLER)
            assert asyncio.get_running_loop().time() - started < 1.5
            await limiter.close()
    finally:
        server.close()


async def test_unreachable_redis_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit_backend="redis", redis_url="redis://127.0.0.1:1/0")
    await migrate(settings)
    runtime = await build_runtime(settings)
    try:
        app = create_app(runtime=runtime)
        with pytest.raises(StartupError, match="rate limiter backend"):
            async with app.router.lifespan_context(app):
                pass
    finally:
        await runtime.close()


def test_limiter_built_on_first_use_when_no_lifespan_ran(runtime: Runtime) -> None:
    assert limiter_of(runtime) is limiter_of(runtime)
    assert limiter_of(runtime).per_minute == runtime.settings.rate_limit_per_minute


@pytest.mark.parametrize(
    "overrides",
    [
        {"rate_limit_per_minute": 0},
        {"rate_limit_backend": "redis"},
        {"rate_limit_backend": "memory"},
    ],
)
def test_no_way_to_switch_the_limit_off(
    make_settings: Callable[..., Settings], overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        make_settings(**overrides)


async def test_429_and_503_answers_match_the_published_document(
    make_settings: Callable[..., Settings],
) -> None:
    import schemathesis
    from schemathesis.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    settings = make_settings(rate_limit_per_minute=1)
    await migrate(settings)
    async with replica(settings) as (rt, c):
        key = await new_key(rt, "a", Role.AUDITOR)
        fresh = await new_key(rt, "b", Role.AUDITOR)
        document = (await c.get("/openapi.json")).json()
        case = schemathesis.openapi.from_dict(document)["/v1/policy"]["GET"].Case()
        assert (await c.get("/v1/policy", headers=auth(key))).status_code == 200
        limited = await c.get("/v1/policy", headers=auth(key))
        assert_limited(limited)
        case.validate_response(limited, checks=checks)
        async with rt.state.begin() as conn:
            await conn.execute(text("DROP TABLE rate_limits"))
        # A caller whose minute is not yet spent needs the backend to be counted.
        down = await c.get("/v1/policy", headers=auth(fresh))
        assert down.status_code == 503
        case.validate_response(down, checks=checks)


@pytest.mark.postgres
def test_relaxed_commit_of_a_count_never_reaches_other_writes(
    make_settings: Callable[..., Settings],
) -> None:
    """The counter's upsert turns synchronous_commit off for its own transaction only: the
    pooled connection the audit log writes on next is back to durable commits."""
    from tests.databases import postgres_database

    async def check(settings: Settings) -> None:
        await migrate(settings)
        runtime = await build_runtime(settings)
        try:
            counter = DatabaseCounter(runtime.state)
            for n in range(1, 4):
                assert await counter.hit("caller:1", 7) == n
            async with runtime.state.connect() as conn:
                assert (await conn.execute(text("SHOW synchronous_commit"))).scalar() == "on"
        finally:
            await runtime.close()

    with postgres_database() as url:
        asyncio.run(check(make_settings(database_url=url)))


def test_serve_refuses_to_start_without_its_limiter_backend(settings: Settings) -> None:
    from click.testing import CliRunner

    from app.cli import main

    asyncio.run(migrate(settings))
    env = {
        "BULWARK_DATA_DIR": str(settings.data_dir),
        "BULWARK_DATABASE_URL": settings.state_url,
        "BULWARK_RECORDS_URL": settings.store_url,
        "BULWARK_TRUST_STORE": str(settings.trust_store),
        "BULWARK_RATE_LIMIT_BACKEND": "redis",
        "BULWARK_REDIS_URL": "redis://:hunter2-secret@127.0.0.1:1/0",
    }
    result = CliRunner().invoke(main, ["serve", "--port", "1"], env=env, catch_exceptions=False)
    assert result.exit_code != 0
    assert "refusing to start: rate limiter backend (redis) unreachable" in result.output
    assert "hunter2" not in result.output


async def test_leased_shares_never_exceed_the_limit_across_replicas(runtime: Runtime) -> None:
    """With a limit large enough for shares (2% each), replicas count a share at a time: the
    limit across them all still holds, and at most one unused share per other replica is
    refused early."""
    counter = DatabaseCounter(runtime.state)
    now = [6000.0]
    replicas = [RateLimiter(counter, 500, clock=lambda: now[0]) for _ in range(3)]
    assert replicas[0].lease == 10
    admitted = 0
    for i in range(800):
        try:
            await replicas[i % 3].hit(CALLER)
        except RateLimited:
            continue
        admitted += 1
    assert 500 - 2 * replicas[0].lease <= admitted <= 500
    now[0] += 60  # a new minute: shares start again
    await replicas[0].hit(CALLER)
