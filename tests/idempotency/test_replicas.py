"""Idempotency-Key across two `bulwark serve` processes sharing one state database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.records.demo import DEMO_PATRON
from tests.conftest import auth
from tests.servers import chain_verdict, provision, servers, settings_env
from tests.test_replicas import body

pytestmark = pytest.mark.slow

Token = Callable[..., str]


async def test_a_retry_on_the_other_replica_replays_the_first_answer(
    settings: Settings, order_token: Token, tmp_path: Path
) -> None:
    keys = await provision(settings, "idem")
    token = order_token(patrons=[DEMO_PATRON], max_uses=3)
    key = str(uuid.uuid4())
    headers = {**auth(keys["requester"]), "Idempotency-Key": key}
    with servers(settings_env(settings), tmp_path, 2) as (one, two):
        async with httpx.AsyncClient(timeout=30) as client:
            first = await client.post(
                f"{one.url}/v1/disclosures", json=body(token), headers=headers
            )
            again = await client.post(
                f"{two.url}/v1/disclosures", json=body(token), headers=headers
            )
            other = body(token) | {"from": "2026-03-01"}
            reused = await client.post(f"{two.url}/v1/disclosures", json=other, headers=headers)
            # A burst of the same retry on both replicas at once: still one answer.
            burst_key = str(uuid.uuid4())
            burst_headers = {**auth(keys["requester"]), "Idempotency-Key": burst_key}
            burst = await asyncio.gather(
                *(
                    client.post(f"{r.url}/v1/disclosures", json=body(token), headers=burst_headers)
                    for r in (one, two) * 4
                )
            )
            fresh = await client.post(
                f"{one.url}/v1/disclosures", json=body(token), headers=auth(keys["requester"])
            )
    assert first.status_code == 200, first.text
    assert first.json()["order"]["uses_left"] == 2
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert reused.status_code == 422
    assert reused.json()["reasons"][0]["code"] == "idempotency.key_reused"
    codes = [r.status_code for r in burst]
    assert set(codes) <= {200, 409}, codes
    done = [r.json() for r in burst if r.status_code == 200]
    assert done and all(d == done[0] for d in done)  # one answer, however many replays
    assert done[0]["order"]["uses_left"] == 1
    # Two disclosures ran (first, burst): the third use is still there.
    assert fresh.status_code == 200
    assert fresh.json()["order"]["uses_left"] == 0
    verdict = await chain_verdict(settings.state_url)
    assert verdict.ok, verdict
