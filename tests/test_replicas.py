"""Several `bulwark serve` processes on one state database: uses exact, revocations everywhere,
one audit chain — also when a replica is SIGKILLed in the middle of a burst."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.admin.clients import revoke_client
from app.audit.writer import AuditWriter
from app.callers.models import Role
from app.core.config import Settings
from app.core.database import create_engine
from app.records.demo import DEMO_PATRON
from tests.conftest import auth
from tests.factories import disclosure_body
from tests.servers import Server, chain_and_events, chain_verdict, provision, servers, settings_env

pytestmark = pytest.mark.slow

Token = Callable[..., str]


@pytest.fixture
async def deployment(settings: Settings) -> tuple[Settings, dict[str, str]]:
    return settings, await provision(settings, "rep")


body = disclosure_body


async def burst(
    replicas: list[Server], key: str, payload: dict[str, Any], n: int
) -> list[httpx.Response]:
    targets = itertools.cycle(replicas)
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post(f"{next(targets).url}/v1/disclosures", json=payload, headers=auth(key))
                for _ in range(n)
            )
        )


@pytest.mark.parametrize("k", [1, 3])
async def test_uses_are_exact_across_two_processes(
    deployment: tuple[Settings, dict[str, str]], order_token: Token, tmp_path: Path, k: int
) -> None:
    settings, keys = deployment
    token = order_token(patrons=[DEMO_PATRON], max_uses=k)
    with servers(settings_env(settings), tmp_path, 2) as replicas:
        responses = await burst(replicas, keys["requester"], body(token), 24)
    codes = [r.status_code for r in responses]
    assert codes.count(200) == k, codes
    assert all(
        r.json()["reasons"][0]["code"] == "order.exhausted"
        for r in responses
        if r.status_code != 200
    )
    verdict = await chain_verdict(settings.state_url)
    assert verdict.ok, verdict
    assert verdict.events == len(Role) + 24  # a client key per role, then one per request


async def test_revocations_and_key_revocations_reach_every_replica(
    deployment: tuple[Settings, dict[str, str]], order_token: Token, tmp_path: Path
) -> None:
    settings, keys = deployment
    token = order_token(patrons=[DEMO_PATRON], max_uses=10, jti="rep-revoke")
    with servers(settings_env(settings), tmp_path, 2) as (a, b):
        async with httpx.AsyncClient(timeout=30) as client:
            for s in (a, b):  # warm both processes' caches
                r = await client.post(
                    f"{s.url}/v1/disclosures", json=body(token), headers=auth(keys["requester"])
                )
                assert r.status_code == 200
            r = await client.post(
                f"{a.url}/v1/orders/revocations",
                json={"iss": "https://courts.example/il-cook", "jti": "rep-revoke", "reason": "x"},
                headers=auth(keys["admin"]),
            )
            assert r.status_code == 200
            r = await client.post(
                f"{b.url}/v1/disclosures", json=body(token), headers=auth(keys["requester"])
            )
            assert r.json()["reasons"][0]["code"] == "order.revoked"

            engine = create_engine(settings.state_url)
            writer = AuditWriter(engine)
            writer.start()
            try:
                await revoke_client(engine, "rep-requester", audit=writer)
            finally:
                await writer.close()
                await engine.dispose()
            fresh = order_token(patrons=[DEMO_PATRON])
            for s in (a, b):
                r = await client.post(
                    f"{s.url}/v1/decisions", json=body(fresh), headers=auth(keys["requester"])
                )
                assert r.status_code == 401, r.text
                r = await client.post(
                    f"{s.url}/v1/disclosures", json=body(fresh), headers=auth(keys["requester"])
                )
                assert r.status_code == 401, r.text


async def test_sigkill_during_a_burst_leaves_a_whole_chain(
    deployment: tuple[Settings, dict[str, str]], order_token: Token, tmp_path: Path
) -> None:
    settings, keys = deployment
    token = order_token(patrons=[DEMO_PATRON], max_uses=1000)
    ok: list[dict[str, Any]] = []
    with servers(settings_env(settings), tmp_path, 2) as (victim, survivor):

        async def hammer(server: Server, n: int) -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                for _ in range(n):
                    try:
                        r = await client.post(
                            f"{server.url}/v1/disclosures",
                            json=body(token),
                            headers=auth(keys["requester"]),
                        )
                    except httpx.TransportError:
                        continue  # the victim died under us
                    if r.status_code == 200:
                        ok.append(r.json()["audit"])

        async def killer() -> None:
            await asyncio.sleep(0.6)
            victim.kill()

        await asyncio.gather(
            *(hammer(victim, 60) for _ in range(4)),
            *(hammer(survivor, 30) for _ in range(4)),
            killer(),
        )
        assert victim.process.poll() is not None
        after = len(ok)
        async with httpx.AsyncClient(timeout=30) as client:  # the survivor keeps answering
            r = await client.post(
                f"{survivor.url}/v1/disclosures", json=body(token), headers=auth(keys["requester"])
            )
            assert r.status_code == 200
            ok.append(r.json()["audit"])
        assert len(ok) == after + 1
    verdict, events = await chain_and_events(settings.state_url)
    assert verdict.ok, verdict
    assert len(ok) > 10
    for audit in ok:  # every 200 has its event, exactly as answered
        assert events[audit["seq"]] == audit["hash"]
