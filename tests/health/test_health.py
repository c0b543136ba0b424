"""healthz and readyz: public, and readyz follows the state database down and back up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.runtime import Runtime
from tests.conftest import auth
from tests.databases import PG_HOST, PG_PORT, PG_USER


async def test_healthz_needs_no_key(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_reports_every_dependency_to_an_admin(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.get("/readyz", headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert {"state", "trust_store", "policy", "store", "audit", "clock"} <= set(checks)
    assert checks["trust_store"]["issuers"] == 1
    assert all(c["ok"] for c in checks.values())


@pytest.mark.parametrize("who", [None, "requester", "auditor", "unknown"])
async def test_readyz_tells_anyone_else_ready_or_not_and_nothing_more(
    client: httpx.AsyncClient, keys: dict[str, str], runtime: Runtime, who: str | None
) -> None:
    """Issue 16: readyz revealed trust-store counts, the policy hash and the categories."""
    headers = {}
    if who == "unknown":
        headers = auth("bwk_" + "x" * 40)
    elif who is not None:
        headers = auth(keys[who])
    r = await client.get("/readyz", headers=headers)
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    await _take_down(runtime)
    runtime.readyz = None  # the answer is reused for a second
    try:
        r = await client.get("/readyz", headers=headers)
    finally:
        await _bring_back(runtime)
    assert r.status_code == 503
    assert "checks" not in r.json() and r.json()["detail"] == "Not ready."


async def test_readyz_runs_its_checks_at_most_once_a_second(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.health import router as health

    calls = 0
    original = health._store

    async def counted(rt: Runtime) -> dict[str, object]:
        nonlocal calls
        calls += 1
        return await original(rt)

    monkeypatch.setattr(health, "_store", counted)
    runtime.readyz = None
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    assert all(r.status_code == 200 for r in answers)
    assert calls == 1


async def _admin_pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _take_down(runtime: Runtime) -> None:
    url = make_url(runtime.settings.state_url)
    if url.get_backend_name() == "sqlite":
        db = Path(url.database or "")
        db.rename(db.with_suffix(".away"))
        db.mkdir()  # a directory where the file was: every connection fails
    else:
        name = url.database
        await _admin_pg(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await _admin_pg(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
    await runtime.state.dispose()


async def _bring_back(runtime: Runtime) -> None:
    url = make_url(runtime.settings.state_url)
    if url.get_backend_name() == "sqlite":
        db = Path(url.database or "")
        db.rmdir()
        db.with_suffix(".away").rename(db)
    else:
        await _admin_pg(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS true')


async def test_readyz_fails_with_problem_and_recovers(
    client: httpx.AsyncClient, runtime: Runtime, keys: dict[str, str]
) -> None:
    # An admin's key is known before the state database goes (the key cache holds it).
    assert (await client.get("/readyz", headers=auth(keys["admin"]))).status_code == 200
    await _take_down(runtime)
    runtime.readyz = None  # the answer is reused for a second
    try:
        r = await client.get("/readyz", headers=auth(keys["admin"]))
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["reasons"][0]["code"] == "state.unavailable"
        assert body["checks"]["state"]["ok"] is False
        assert (await client.get("/healthz")).status_code == 200  # the process is still up
    finally:
        await _bring_back(runtime)
    runtime.readyz = None
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text


async def test_unknown_keys_are_counted_and_limited_per_client_address(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16: each unknown `bwk_` key cost a database lookup, without limit."""
    from app.ratelimit import unknown_keys

    lookups = 0
    original = runtime.callers._lookup

    async def counted(digest: str) -> object:
        nonlocal lookups
        lookups += 1
        return await original(digest)

    # A caller that authenticated lately is never limited by its address's failures.
    assert (await client.get("/v1/audit/events", headers=auth(keys["auditor"]))).status_code == 200
    monkeypatch.setattr(runtime.callers, "_lookup", counted)
    before = unknown_keys.UNKNOWN_KEYS._value.get()
    codes = []
    for i in range(unknown_keys.UNKNOWN_KEYS_PER_MINUTE + 10):
        r = await client.get("/v1/audit/events", headers=auth(f"bwk_made-up-{i:04d}" + "x" * 30))
        codes.append(r.status_code)
    limit = unknown_keys.UNKNOWN_KEYS_PER_MINUTE
    assert codes[:limit] == [401] * limit
    assert set(codes[limit:]) == {429}
    assert lookups == limit  # past the limit, no lookup at all
    assert unknown_keys.UNKNOWN_KEYS._value.get() - before == limit
    # The same made-up key again and again costs one lookup (from another address).
    guard = unknown_keys.guard_of(runtime)
    guard._windows.clear()
    lookups = 0
    for _ in range(5):
        r = await client.get("/v1/audit/events", headers=auth("bwk_repeated" + "y" * 30))
        assert r.status_code == 401
    assert lookups == 1
    for _ in range(limit + 1):
        guard.failed("127.0.0.1", "z")
    r = await client.get("/v1/audit/events", headers=auth(keys["auditor"]))
    assert r.status_code == 200
