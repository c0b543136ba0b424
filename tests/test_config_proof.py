"""Configuration that proves itself (issue 16): unsafe files refuse the start, every event
names the configuration in force, and replicas that disagree are reported."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import BUNDLED_DEMO_MAPPING, BUNDLED_POLICY, Settings
from app.core.config_proof import interleaved
from app.core.startup import StartupError
from app.main import create_app
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime, build_runtime
from tests.conftest import JURISDICTION, auth, migrate
from tests.factories import disclosure_body

Token = Callable[..., str]


def copy_private(source: Path, folder: Path) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / source.name
    shutil.copyfile(source, target)
    target.chmod(0o600)
    return target


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("setting", "file_mode", "dir_mode"),
    [
        ("trust_store", 0o666, 0o700),  # the issue's own: a world-writable trust store
        ("trust_store", 0o644, 0o777),  # ... or its directory
        ("trust_store", 0o664, 0o700),  # group-writable is refused too
        ("policy", 0o646, 0o700),
        ("policy", 0o600, 0o770),
        ("records_mapping", 0o666, 0o700),
        ("signing_key_file", 0o600, 0o777),
    ],
)
async def test_start_refuses_a_config_file_others_may_write(
    make_settings: Callable[..., Settings],
    trust_store_file: Path,
    tmp_path: Path,
    setting: str,
    file_mode: int,
    dir_mode: int,
) -> None:
    settings = make_settings()
    await migrate(settings)
    sources = {
        "trust_store": trust_store_file,
        "policy": BUNDLED_POLICY,
        "records_mapping": BUNDLED_DEMO_MAPPING,
        "signing_key_file": settings.checkpoint_key_file,
    }
    folder = tmp_path / "config"
    target = copy_private(sources[setting], folder)
    # Safe as copied: the start goes through.
    safe = make_settings(**{setting: target})
    runtime = await build_runtime(safe)
    await runtime.close()
    target.chmod(file_mode)
    folder.chmod(dir_mode)
    try:
        with pytest.raises(StartupError) as refused:
            await build_runtime(make_settings(**{setting: target}))
    finally:
        folder.chmod(0o700)
    assert "writable by group or others" in str(refused.value)
    assert str(target if dir_mode == 0o700 else folder) in str(refused.value)


body = disclosure_body


async def last_body(runtime: Runtime) -> dict[str, Any]:
    from app.audit import service

    events = await service.list_events(runtime.state, after=0, limit=1000)
    return dict(events[-1]["body"])


async def test_every_event_records_the_configuration_in_force(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    r = await client.post(
        "/v1/decisions",
        json=body(order_token(patrons=[DEMO_PATRON])),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 200, r.text
    config = (await last_body(runtime))["config"]
    assert set(config) == {"policy", "trust_store", "jurisdictions", "keys"}
    assert config["policy"] == runtime.policy.sha256[:16]
    assert config == runtime.config_fingerprint.as_json()


async def test_replicas_that_disagree_are_reported(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    runtime: Runtime,
    tmp_path: Path,
) -> None:
    # A second replica on the same state database, started with another trust store (one
    # more jurisdiction for the same court).
    document = json.loads(Path(str(runtime.settings.trust_store)).read_text())
    document["issuers"][0]["jurisdictions"].append("US-WI")
    other_store = tmp_path / "other" / "trust-store.json"
    other_store.parent.mkdir(mode=0o700)
    other_store.write_text(json.dumps(document))
    other = await build_runtime(runtime.settings.model_copy(update={"trust_store": other_store}))
    app = create_app(runtime=other)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as peer:
                token = order_token(patrons=[DEMO_PATRON])
                for replica in (client, peer, client):  # side by side: A, B, A
                    r = await replica.post(
                        "/v1/decisions", json=body(token), headers=auth(keys["requester"])
                    )
                    assert r.status_code == 200, r.text
                verified = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
                runtime.readyz = None
                ready = await client.get("/readyz", headers=auth(keys["admin"]))
                anonymous = await client.get("/readyz")
    finally:
        await other.close()
    assert verified.status_code == 200 and verified.json()["ok"] is True
    disagreeing = verified.json()["config_disagreements"]
    assert len(disagreeing) == 2
    assert len({d["trust_store"] for d in disagreeing}) == 2
    config = ready.json()["checks"]["config"]
    assert config["agrees"] is False
    assert config["others"][0]["trust_store"] != config["fingerprint"]["trust_store"]
    assert anonymous.json() == {"status": "ready"}  # the anonymous caller learns nothing


def test_a_rolled_out_change_is_not_a_disagreement() -> None:
    a = json.dumps({"config": {"policy": "a"}})
    b = json.dumps({"config": {"policy": "b"}})
    assert interleaved([a, a, b, b]) == []
    assert interleaved([a, b, a]) == [{"policy": "a"}, {"policy": "b"}]


async def test_the_jurisdictions_in_force_are_fingerprinted(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    await migrate(settings)
    one = await build_runtime(settings)
    two = await build_runtime(make_settings(jurisdictions=frozenset({JURISDICTION, "US-WI"})))
    try:
        a, b = one.config_fingerprint, two.config_fingerprint
        assert a.jurisdictions != b.jurisdictions
        assert (a.policy, a.trust_store, a.keys) == (b.policy, b.trust_store, b.keys)
    finally:
        await asyncio.gather(one.close(), two.close())
