"""GET /v1/policy: the exact policy text and the hash that decisions cite."""

from __future__ import annotations

import hashlib

import httpx

from app.runtime import Runtime
from tests.conftest import auth


async def test_policy_text_and_hash(
    client: httpx.AsyncClient, keys: dict[str, str], runtime: Runtime
) -> None:
    r = await client.get("/v1/policy", headers=auth(keys["auditor"]))
    assert r.status_code == 200
    body = r.json()
    assert body["text"].encode() == runtime.settings.policy.read_bytes()
    assert body["sha256"] == hashlib.sha256(runtime.settings.policy.read_bytes()).hexdigest()
    assert (await client.get("/v1/policy", headers=auth(keys["requester"]))).status_code == 403
