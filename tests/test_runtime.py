"""Start-up refuses every missing or invalid piece, and says which."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core import migrations
from app.core.config import Settings
from app.core.secrets import ensure_instance_secrets
from app.core.startup import StartupError
from app.runtime import build_runtime

sqlite_only = pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)


async def ready(settings: Settings) -> Settings:
    await asyncio.to_thread(migrations.upgrade, settings.state_url)
    ensure_instance_secrets(settings)
    return settings


async def refused(settings: Settings, match: str) -> None:
    with pytest.raises(StartupError, match=match):
        await build_runtime(await ready(settings))


@sqlite_only
async def test_invalid_policy_names_the_line(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "1"\naccepted_instruments = ["court_order", "subpoena"]\n')
    await refused(make_settings(policy=policy), r"policy invalid: .*:2")


@sqlite_only
async def test_missing_trust_store(make_settings: Callable[..., Settings]) -> None:
    await refused(make_settings(trust_store=None), "BULWARK_TRUST_STORE")


@sqlite_only
async def test_unreadable_trust_store(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    await refused(make_settings(trust_store=tmp_path / "absent.json"), "trust store invalid")


@sqlite_only
async def test_hmac_key_in_trust_store(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    path = tmp_path / "trust.json"
    path.write_text(
        json.dumps(
            {
                "issuers": [
                    {
                        "iss": "x",
                        "name": "x",
                        "jurisdictions": ["US-IL"],
                        "keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0"}],
                    }
                ]
            }
        )
    )
    await refused(make_settings(trust_store=path), r"issuers\[0\]\.keys\[0\]")


@sqlite_only
async def test_mapping_names_a_missing_column(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from app.records.demo import DEMO_MAPPING

    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        DEMO_MAPPING.read_text().replace('title = "title"', 'title = "no_such_column"', 1)
    )
    await refused(make_settings(records_mapping=mapping), "no_such_column")


@sqlite_only
async def test_mapping_with_a_field_the_policy_forbids(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "1"\n[categories.circulation]\nforbidden_fields = ["branch"]\n')
    await refused(make_settings(policy=policy), "branch")


@sqlite_only
async def test_unreachable_store(make_settings: Callable[..., Settings]) -> None:
    await refused(make_settings(records_url="postgresql://nobody@127.0.0.1:1/none"), "unreachable")


@sqlite_only
async def test_missing_instance_secrets(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    await asyncio.to_thread(migrations.upgrade, settings.state_url)
    with pytest.raises(StartupError, match="bulwark db upgrade"):
        await build_runtime(settings)


def test_settings_refuse_insecure_values() -> None:
    from pydantic import ValidationError

    for bad in (
        {"allowed_algorithms": "HS256"},
        {"allowed_algorithms": "none"},
        {"pseudonym_key": "changeme"},
        {"records_url": "http://records.example/api"},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)  # type: ignore[arg-type]
