"""docs/operations.md, one machine with SQLite: the systemd unit and its settings are real,
and a backup taken while serving restores into a deployment that verifies and serves."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.records.demo import DEMO_PATRON
from tests.conftest import auth
from tests.factories import disclosure_body
from tests.servers import provision, settings_env, start_server
from tests.test_deploy_files import _command_exists

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "deploy" / "systemd"
Token = Callable[..., str]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / "bulwark.service").read_text())
    return parser


def env_file() -> dict[str, str]:
    values = {}
    for line in (SYSTEMD / "bulwark.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_systemd_unit_runs_real_commands_as_the_service_user() -> None:
    service = unit()["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        argv = service[key].split()
        assert argv[0] == "/opt/bulwark/bin/bulwark"
        assert _command_exists(["bulwark", *argv[1:]]), service[key]
    assert service["User"] == "bulwark"
    assert service["UMask"] == "0077"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == env_file()["BULWARK_DATA_DIR"]
    assert service["EnvironmentFile"] == "/etc/bulwark/bulwark.env"


def test_the_env_file_holds_real_settings_with_absolute_paths() -> None:
    values = env_file()
    fields = {f"BULWARK_{name.upper()}" for name in Settings.model_fields}
    assert set(values) <= fields, set(values) - fields
    assert Path(values["BULWARK_DATA_DIR"]).is_absolute()
    # The SQLite URL form for an absolute path: four slashes.
    assert values["BULWARK_DATABASE_URL"] == "sqlite:////var/lib/bulwark/bulwark.db"
    settings = Settings(**{k.removeprefix("BULWARK_").lower(): v for k, v in values.items()})
    assert settings.state_url == "sqlite:////var/lib/bulwark/bulwark.db"


def bulwark(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")}, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def disclose(url: str, key: str, token: str) -> httpx.Response:
    body = disclosure_body(token)
    return httpx.post(f"{url}/v1/disclosures", json=body, headers=auth(key), timeout=30)


def checkpoint(url: str, key: str, path: Path) -> Path:
    r = httpx.get(f"{url}/v1/audit/checkpoint", headers=auth(key), timeout=30)
    assert r.status_code == 200
    path.write_text(r.text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
async def test_an_online_backup_restores_verifies_and_serves(
    settings: Settings, order_token: Token, tmp_path: Path
) -> None:
    sqlite3_cli = shutil.which("sqlite3")
    if sqlite3_cli is None:
        pytest.skip("the sqlite3 command is not installed")
    keys = await provision(settings, "ops")
    token = order_token(patrons=[DEMO_PATRON], max_uses=3)
    await asyncio.to_thread(backup_and_restore, settings, keys, token, tmp_path, sqlite3_cli)


def backup_and_restore(
    settings: Settings, keys: dict[str, str], token: str, tmp_path: Path, sqlite3_cli: str
) -> None:
    env = settings_env(settings)
    db = Path(settings.state_url.removeprefix("sqlite:///"))
    secrets = settings.data_dir / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for secret in secrets.iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    backup = tmp_path / "backup"
    backup.mkdir()
    server = start_server(env, tmp_path, name="before")
    try:
        for _ in range(2):
            assert disclose(server.url, keys["requester"], token).status_code == 200
        saved = checkpoint(server.url, keys["auditor"], tmp_path / "checkpoint.json")
        # The backup, as docs/operations.md gives it: SQLite's online backup, while serving.
        done = subprocess.run(
            [sqlite3_cli, str(db), f".backup '{backup / 'bulwark.db'}'"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        shutil.copytree(secrets, backup / "secrets")
        # Work after the backup: the last use, and a checkpoint of it.
        assert disclose(server.url, keys["requester"], token).status_code == 200
        later = checkpoint(server.url, keys["auditor"], tmp_path / "later.json")
    finally:
        server.stop()

    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copy2(backup / "bulwark.db", restored / "bulwark.db")
    shutil.copytree(backup / "secrets", restored / "secrets")
    for secret in (restored / "secrets").iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # copy2 keeps the modes
    restored_env = {
        **env,
        "BULWARK_DATA_DIR": str(restored),
        "BULWARK_DATABASE_URL": f"sqlite:///{restored / 'bulwark.db'}",
    }
    verified = bulwark(restored_env, "audit", "verify", "--since", str(saved))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    # A restore from before a checkpoint saved elsewhere is a rolled-back history: caught.
    rolled_back = bulwark(restored_env, "audit", "verify", "--since", str(later))
    assert rolled_back.returncode != 0
    # db upgrade on the restored copy keeps its secrets (same binding), and it serves.
    upgraded = bulwark(restored_env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "created" not in upgraded.stdout
    server = start_server(restored_env, tmp_path, name="restored")
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        # The documented caveat: the restored use counts are the backup's (2 of 3 spent).
        again = disclose(server.url, keys["requester"], token)
        assert again.status_code == 200
        assert again.json()["order"]["uses_left"] == 0
    finally:
        server.stop()
