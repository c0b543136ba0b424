"""Chaos under load: the state database restarted under two replicas, and a records store
that hangs. (A replica SIGKILLed mid-burst: tests/test_replicas.py.)

Each fault is answered 503 with its reason code while it lasts, never a 500, never a record;
the service recovers by itself, without a restart; the audit chain stays whole."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.records.demo import DEMO_PATRON
from tests.chaos import HTTP_MAPPING, HangingRecordsApi, private_postgres
from tests.conftest import COURT_ISS, auth
from tests.databases import require
from tests.factories import disclosure_body
from tests.servers import Server, chain_and_events, provision, settings_env, start_server

pytestmark = pytest.mark.slow

Token = Any


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """SQLite, where a test does not bring its own state database (the restart test does)."""
    return f"sqlite:///{tmp_path / 'state.db'}"


def request(token: str | None) -> dict[str, Any]:
    return disclosure_body(token)


def code(r: httpx.Response) -> str | None:
    if r.headers.get("content-type") != "application/problem+json":
        return None
    return str(r.json()["reasons"][0]["code"])


# --------------------------------------------------------------------------- state database


class Load:
    """Decisions and disclosures sent to every replica until stopped; every answer kept."""

    def __init__(self, servers: list[Server], keys: dict[str, str], token: str) -> None:
        self.servers, self.keys, self.token = servers, keys, token
        self.answers: list[tuple[str, int, str | None]] = []
        self.permits: list[dict[str, Any]] = []
        self.running = True

    async def run(self, server: Server) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while self.running:
                for path in ("/v1/decisions", "/v1/disclosures"):
                    r = await client.post(
                        f"{server.url}{path}",
                        json=request(self.token),
                        headers=auth(self.keys["requester"]),
                    )
                    self.answers.append((path, r.status_code, code(r)))
                    if path == "/v1/disclosures" and r.status_code == 200:
                        self.permits.append(r.json()["audit"])
                await asyncio.sleep(0.02)


async def per_route(server: Server, keys: dict[str, str], token: str) -> dict[str, Any]:
    """One request per kind of route: what each answers right now."""
    async with httpx.AsyncClient(timeout=30) as client:
        requester, auditor, admin = (auth(keys[r]) for r in ("requester", "auditor", "admin"))
        fresh = f"{uuid.uuid4().hex}"
        answers = {
            "decision": await client.post(
                f"{server.url}/v1/decisions", json=request(token), headers=requester
            ),
            "disclosure": await client.post(
                f"{server.url}/v1/disclosures", json=request(token), headers=requester
            ),
            "refusal": await client.post(
                f"{server.url}/v1/disclosures", json=request(None), headers=requester
            ),
            "audit": await client.get(f"{server.url}/v1/audit/verify", headers=auditor),
            "revocation": await client.post(
                f"{server.url}/v1/orders/revocations",
                json={"iss": COURT_ISS, "jti": fresh, "reason": "chaos", "pre_emptive": True},
                headers=admin,
            ),
            "healthz": await client.get(f"{server.url}/healthz"),
            "readyz": await client.get(f"{server.url}/readyz"),
        }
    return {name: (r.status_code, code(r)) for name, r in answers.items()}


async def until_recovered(servers: list[Server], keys: dict[str, str], token: str) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() - started < 60:
            codes = [
                (
                    await client.post(
                        f"{s.url}/v1/decisions",
                        json=request(token),
                        headers=auth(keys["requester"]),
                    )
                ).status_code
                for s in servers
            ]
            if codes == [200] * len(servers):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    raise AssertionError("did not recover within 60 s")


async def until_ready(servers: list[Server]) -> None:
    """Readiness answers from a one-second cache (app/health/router.py): a failure cached while
    the database was down may still be served for up to that second after it is back."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() - started < 10:
            codes = [(await client.get(f"{s.url}/readyz")).status_code for s in servers]
            if codes == [200] * len(servers):
                return
            await asyncio.sleep(0.2)
    raise AssertionError("readyz did not say ready within 10 s of recovery")


async def test_state_database_restart_under_load(
    make_settings: Any, order_token: Token, tmp_path: Path
) -> None:
    """Two replicas on a private PostgreSQL (one counting rate limits there, one in Redis);
    the database is killed and restarted while both take traffic."""
    require("Redis", "127.0.0.1", 6379)
    with private_postgres() as pg:
        conn = await asyncpg.connect(pg.url())
        await conn.execute("CREATE DATABASE bulwark")
        await conn.close()
        settings = make_settings(database_url=pg.url("bulwark"))
        keys = await provision(settings, "chaos")
        token = order_token(patrons=[DEMO_PATRON], max_uses=1000)
        db_limited = start_server(settings_env(settings), tmp_path, name="db-limiter")
        redis_limited = start_server(
            settings_env(
                settings,
                BULWARK_RATE_LIMIT_BACKEND="redis",
                BULWARK_REDIS_URL="redis://127.0.0.1:6379/0",
                BULWARK_REDIS_PREFIX=f"chaos:{uuid.uuid4().hex}",
            ),
            tmp_path,
            name="redis-limiter",
        )
        servers = [db_limited, redis_limited]
        pids = [s.process.pid for s in servers]
        try:
            load = Load(servers, keys, token)
            workers = [asyncio.create_task(load.run(s)) for s in servers]
            await asyncio.sleep(1.0)
            pg.stop("immediate")
            await asyncio.sleep(1.0)
            during = {s.port: await per_route(s, keys, token) for s in servers}
            in_outage = len(load.answers)
            pg.start()
            recovered_after = await until_recovered(servers, keys, token)
            await until_ready(servers)
            await asyncio.sleep(0.5)
            load.running = False
            await asyncio.gather(*workers)
            after = {s.port: await per_route(s, keys, token) for s in servers}
        finally:
            for s in servers:
                s.stop()
        # While the database was down: every /v1 route 503 with the code of what failed.
        # The database-backed limiter is the first to need the database: state.unavailable.
        assert during[db_limited.port] == {
            "decision": (503, "state.unavailable"),
            "disclosure": (503, "state.unavailable"),
            "refusal": (503, "state.unavailable"),
            "audit": (503, "state.unavailable"),
            "revocation": (503, "state.unavailable"),
            "healthz": (200, None),
            "readyz": (503, "state.unavailable"),
        }
        # With the limiter in Redis each route meets the database itself: a dry run reads the
        # order's uses, an auditor's or admin's key is re-read: state.unavailable. A refusal,
        # and a disclosure (whose order is checked under the audit lock), need only their
        # audit event: audit.unavailable.
        assert during[redis_limited.port] == {
            "decision": (503, "state.unavailable"),
            "disclosure": (503, "audit.unavailable"),
            "refusal": (503, "audit.unavailable"),
            "audit": (503, "state.unavailable"),
            "revocation": (503, "state.unavailable"),
            "healthz": (200, None),
            "readyz": (503, "state.unavailable"),
        }
        # Back by themselves, same processes, every route as before the fault.
        assert [s.process.pid for s in servers] == pids
        for port in after:
            assert after[port]["decision"] == (200, None)
            assert after[port]["disclosure"] == (200, None)
            assert after[port]["refusal"] == (403, "order.missing")
            assert after[port]["audit"] == (200, None)
            assert after[port]["revocation"] == (200, None)
            assert after[port]["readyz"] == (200, None)
        assert recovered_after < 30

        # Under load: only 200s and 503s with a dependency's code; never a 500.
        outcomes = Counter((status, reason) for _, status, reason in load.answers)
        assert set(outcomes) <= {
            (200, None),
            (503, "state.unavailable"),
            (503, "audit.unavailable"),
        }, outcomes
        assert outcomes[(200, None)] > 0 and in_outage > 0
        assert outcomes[(503, "state.unavailable")] > 0

        # One whole chain, and every 200 has its event exactly as answered.
        verdict, events = await chain_and_events(settings.state_url)
        assert verdict.ok, verdict
        assert all(events[p["seq"]] == p["hash"] for p in load.permits)


# --------------------------------------------------------------------------- store hang


async def test_hanging_store_is_503_within_the_timeout_and_others_are_served(
    make_settings: Any, order_token: Token, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(HTTP_MAPPING)
    with HangingRecordsApi() as api:
        settings = make_settings(records_url=api.url, records_mapping=mapping)
        keys = await provision(settings, "chaos")
        env = settings_env(
            settings,
            BULWARK_RECORDS_MAPPING=str(mapping),
            BULWARK_RECORDS_TIMEOUT_SECONDS="1",
            BULWARK_RECORDS_CONNECT_TIMEOUT_SECONDS="1",
        )
        server = start_server(env, tmp_path, name="hang")
        token = order_token(patrons=[DEMO_PATRON], max_uses=1000)
        requester = auth(keys["requester"])
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                url = f"{server.url}/v1/disclosures"
                ok = await client.post(url, json=request(token), headers=requester)
                assert ok.status_code == 200, ok.text
                api.hang = True

                async def disclose() -> tuple[httpx.Response, float]:
                    started = time.monotonic()
                    r = await client.post(url, json=request(token), headers=requester)
                    return r, time.monotonic() - started

                async def meanwhile() -> list[float]:
                    await asyncio.sleep(0.3)  # while every disclosure is stuck
                    took = []
                    for path, body in (("/healthz", None), ("/v1/decisions", request(token))):
                        for _ in range(5):
                            started = time.monotonic()
                            r = await (
                                client.get(f"{server.url}{path}")
                                if body is None
                                else client.post(
                                    f"{server.url}{path}", json=body, headers=requester
                                )
                            )
                            assert r.status_code == 200, r.text
                            took.append(time.monotonic() - started)
                    return took

                stuck, others = await asyncio.gather(
                    asyncio.gather(*(disclose() for _ in range(40))), meanwhile()
                )
                api.hang = False
                again = await client.post(url, json=request(token), headers=requester)
        finally:
            server.stop()
    # The configured deadline: connect + read = 2 s; a little slack for 40 at once.
    for r, took in stuck:
        assert (r.status_code, code(r)) == (503, "store.unavailable"), r.text
        assert r.json()["audit_seq"] is not None  # the failure is on the record
        assert "records" not in r.json()
        assert took < 3.5, took
    assert max(others) < 1.0, others
    assert again.status_code == 200  # recovered by itself
    assert again.json()["order"]["uses_left"] == 1000 - 2  # the 40 failures used nothing
