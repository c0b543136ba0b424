"""The schema comes only from Alembic, matches the models, and gates start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from app.core import migrations
from app.core.config import Settings
from app.core.database import create_engine
from app.core.secrets import ensure_instance_secrets
from app.core.startup import StartupError
from app.runtime import build_runtime
from app.schema import target_metadata


async def test_models_and_migrations_agree(state_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, state_url)
    engine = create_engine(state_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), target_metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_migrations_are_reversible(state_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, state_url)
    await asyncio.to_thread(migrations.downgrade, state_url, "base")
    engine = create_engine(state_url)
    try:
        assert await migrations.current_revision(engine) is None
    finally:
        await engine.dispose()
    await asyncio.to_thread(migrations.upgrade, state_url)


async def test_unmigrated_database_refuses_to_start(settings: Settings) -> None:
    ensure_instance_secrets(settings)
    with pytest.raises(StartupError, match="bulwark db upgrade"):
        await build_runtime(settings)


async def test_newer_schema_refuses_to_start(settings: Settings) -> None:
    await asyncio.to_thread(migrations.upgrade, settings.state_url)
    ensure_instance_secrets(settings)
    engine = create_engine(settings.state_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await engine.dispose()
    with pytest.raises(StartupError, match="9999"):
        await build_runtime(settings)


async def test_auto_migrate_upgrades_on_start(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(auto_migrate=True)
    ensure_instance_secrets(settings)
    runtime = await build_runtime(settings)
    try:
        assert await migrations.current_revision(runtime.state) == migrations.head_revision()
    finally:
        await runtime.close()


async def test_unreachable_state_database_refuses_to_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    ensure_instance_secrets(settings)
    with pytest.raises(StartupError, match="unreachable"):
        await build_runtime(settings)
