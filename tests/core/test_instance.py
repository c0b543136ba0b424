"""The state database remembers the secrets it was made with: a `db upgrade` from another
data directory refuses to make new ones, and a start with other secrets is refused."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core import migrations
from app.core.config import Settings
from app.core.database import create_engine
from app.core.startup import StartupError
from app.runtime import build_runtime
from tests.test_cli import run


def env_for(settings: Settings, data_dir: Path) -> dict[str, str]:
    return {
        "BULWARK_DATA_DIR": str(data_dir),
        "BULWARK_DATABASE_URL": settings.state_url,
        "BULWARK_RECORDS_URL": settings.store_url,
        "BULWARK_TRUST_STORE": str(settings.trust_store),
        "BULWARK_JURISDICTIONS": "US-IL",
    }


def test_db_upgrade_from_another_data_dir_refuses_to_make_new_secrets(
    settings: Settings, tmp_path: Path
) -> None:
    first = run(env_for(settings, settings.data_dir), "db", "upgrade")
    assert first.exit_code == 0, first.output
    elsewhere = tmp_path / "elsewhere"
    again = run(env_for(settings, elsewhere), "db", "upgrade")
    assert again.exit_code != 0
    assert str(settings.data_dir.resolve()) in again.output
    assert "BULWARK_DATA_DIR" in again.output
    assert not (elsewhere / "secrets").exists()  # nothing was created
    # The same directory again is fine, and idempotent.
    assert run(env_for(settings, settings.data_dir), "db", "upgrade").exit_code == 0


async def test_start_with_other_secrets_is_refused(
    make_settings: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> None:
    upgraded = await asyncio.to_thread(run, env_for(settings, settings.data_dir), "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    other = make_settings(data_dir=tmp_path / "other")
    from app.core.secrets import ensure_instance_secrets

    ensure_instance_secrets(other)  # made by hand, behind the check's back
    with pytest.raises(StartupError, match="not the ones the state database was made with"):
        await build_runtime(other)


async def test_the_same_secrets_at_another_path_are_accepted(
    make_settings: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> None:
    upgraded = await asyncio.to_thread(run, env_for(settings, settings.data_dir), "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    moved = tmp_path / "mounted"
    shutil.copytree(settings.data_dir / "secrets", moved / "secrets")
    runtime = await build_runtime(make_settings(data_dir=moved))
    await runtime.close()


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
async def test_a_previous_release_state_with_events_and_no_secrets_here_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    # State made by the previous release (0004, events written, no binding row).
    await asyncio.to_thread(migrations.upgrade, settings.state_url, "0004")
    engine = create_engine(settings.state_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit_events (seq, ts, kind, effect, body, prev_hash, hash) "
                    "VALUES (1, '2026-11-30 00:00:00', 'client', 'info', '{}', :z, :h)"
                ),
                {"z": "0" * 64, "h": "1" * 64},
            )
    finally:
        await engine.dispose()
    result = await asyncio.to_thread(run, env_for(settings, tmp_path / "fresh"), "db", "upgrade")
    assert result.exit_code != 0
    assert "already holds 1 audit events" in result.output
    assert not (tmp_path / "fresh" / "secrets").exists()
