"""Shared fixtures: real state databases built with the migrations, a real demo store, a
trusted test court, callers of every role, and the app called through ASGI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.admin.clients import add_client
from app.callers.models import Role
from app.core import migrations
from app.core.config import Settings
from app.core.secrets import ensure_instance_secrets
from app.main import create_app
from app.orders.issuing import generate_key_pair, issue_order, make_claims
from app.records.demo import create_demo_store
from app.runtime import Runtime, build_runtime
from tests.databases import postgres_database
from tests.privacy import check_security_headers, install_log_capture, run_privacy_check_last

COURT_ISS = "https://courts.example/il-cook"
COURT_KID = "cook-2026"
JURISDICTION = "US-IL"
TEST_PATRONS = 60
TEST_ROWS = 6000


@pytest.fixture(scope="session")
def court_key() -> tuple[bytes, dict[str, str]]:
    """The test court's ES256 key pair (private PEM, public JWK)."""
    return generate_key_pair("ES256", COURT_KID)


@pytest.fixture(scope="session")
def trust_store_file(
    tmp_path_factory: pytest.TempPathFactory, court_key: tuple[bytes, dict[str, str]]
) -> Path:
    path = tmp_path_factory.mktemp("trust") / "trust-store.json"
    path.write_text(
        json.dumps(
            {
                "issuers": [
                    {
                        "iss": COURT_ISS,
                        "name": "Circuit Court of Cook County",
                        "jurisdictions": [JURISDICTION],
                        "keys": [court_key[1]],
                    }
                ]
            }
        )
    )
    return path


@pytest.fixture(scope="session")
def demo_store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small demo records store, shared read-only by the whole session."""
    path = tmp_path_factory.mktemp("records") / "records.db"
    url = f"sqlite:///{path}"
    create_demo_store(url, patrons=TEST_PATRONS, rows=TEST_ROWS, seed=7)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty state database: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def make_settings(
    tmp_path: Path, state_url: str, demo_store_url: str, trust_store_file: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": state_url,
            "records_url": demo_store_url,
            "trust_store": trust_store_file,
            "jurisdictions": frozenset({JURISDICTION}),
            "environment": "test",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def migrate(settings: Settings) -> None:
    """Upgrade the state database with the real migrations, and create instance secrets."""
    await asyncio.to_thread(migrations.upgrade, settings.state_url)
    ensure_instance_secrets(settings)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    await migrate(settings)
    rt = await build_runtime(settings)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bulwark.test",
            event_hooks={"response": [check_security_headers]},
        ) as c:
            yield c


@pytest.fixture
async def keys(runtime: Runtime) -> dict[str, str]:
    """An API key for each role."""
    out = {}
    for role in Role:
        _, key = await add_client(runtime.state, f"test-{role.value}", role, audit=runtime.audit)
        out[role.value] = key
    return out


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def order_token(court_key: tuple[bytes, dict[str, str]]) -> Callable[..., str]:
    """Sign a court order for the test court; keywords override make_claims."""

    def make(*, allow_invalid: bool = False, **overrides: Any) -> str:
        overrides.setdefault("iss", COURT_ISS)
        overrides.setdefault("jurisdiction", JURISDICTION)
        claims = make_claims(**overrides)
        return issue_order(claims, court_key[0], COURT_KID, "ES256", allow_invalid=allow_invalid)

    return make


def pytest_configure(config: pytest.Config) -> None:
    """Capture every log line of the session at DEBUG (tests/privacy.py)."""
    install_log_capture()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The session-wide privacy check runs after everything it checks."""
    run_privacy_check_last(items)
