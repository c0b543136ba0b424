"""healthz and readyz: public, and readyz follows the state database down and back up."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from app.runtime import Runtime
from tests.databases import PG_HOST, PG_PORT, PG_USER


async def test_healthz_needs_no_key(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_reports_every_dependency(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert set(checks) == {"state", "trust_store", "policy", "store", "audit"}
    assert checks["trust_store"]["issuers"] == 1
    assert all(c["ok"] for c in checks.values())


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
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    await _take_down(runtime)
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["reasons"][0]["code"] == "state.unavailable"
        assert body["checks"]["state"]["ok"] is False
        assert (await client.get("/healthz")).status_code == 200  # the process is still up
    finally:
        await _bring_back(runtime)
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
