"""readyz follows the records store's file, and shows which trust store the process loaded."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.admin.clients import add_client
from app.callers.models import Role
from app.core.config import Settings
from app.main import create_app
from app.runtime import build_runtime
from tests.conftest import auth, migrate


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    # One state database kind is enough here: the records store is what is under test.
    return f"sqlite:///{tmp_path / 'state.db'}"


async def until(client: httpx.AsyncClient, admin: str, status: int) -> httpx.Response:
    """readyz, asked again for up to 3 s (an answer may be reused for a moment)."""
    for _ in range(30):
        r = await client.get("/readyz", headers=auth(admin))
        if r.status_code == status:
            break
        await asyncio.sleep(0.1)
    return r


async def test_readyz_not_ready_when_the_records_file_is_gone(
    make_settings: Callable[..., Settings], demo_store_url: str, tmp_path: Path
) -> None:
    records = tmp_path / "records.db"
    shutil.copy(make_url(demo_store_url).database or "", records)
    settings = make_settings(records_url=f"sqlite:///{records}")
    await migrate(settings)
    runtime = await build_runtime(settings)
    _, admin = await add_client(runtime.state, "ready-admin", Role.ADMIN, audit=runtime.audit)
    app = create_app(runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/readyz")).status_code == 200
                records.rename(tmp_path / "moved-away.db")
                r = await until(client, admin, 503)
                assert r.status_code == 503
                body = r.json()
                assert body["reasons"][0]["code"] == "store.unavailable"
                assert body["checks"]["store"]["ok"] is False
                # Anyone else learns "not ready" and not which dependency failed.
                anonymous = (await client.get("/readyz")).json()
                assert [x["code"] for x in anonymous["reasons"]] == ["state.unavailable"]
                assert anonymous["detail"] == "Not ready." and "checks" not in anonymous
                assert not records.exists()  # the check did not create an empty file
                (tmp_path / "moved-away.db").rename(records)
                assert (await until(client, admin, 200)).status_code == 200
    finally:
        await runtime.close()


async def test_readyz_shows_the_loaded_trust_store_fingerprint(
    client: httpx.AsyncClient, keys: dict[str, str], trust_store_file: Path
) -> None:
    # Asked as an admin: the checks' details may be for admins only.
    r = await client.get("/readyz", headers=auth(keys["admin"]))
    digest = hashlib.sha256(trust_store_file.read_bytes()).hexdigest()
    assert r.json()["checks"]["trust_store"]["sha256"] == digest
