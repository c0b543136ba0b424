"""The `bulwark` command line, run through click's runner against real state databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from app.callers.service import hash_key
from app.cli import main
from app.core.config import Settings
from tests.servers import cli_env


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return cli_env(settings)


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_serve_refuses_an_unmigrated_database(env: dict[str, str]) -> None:
    result = run(env, "serve", "--port", "1")
    assert result.exit_code != 0
    assert "bulwark db upgrade" in result.output


def test_serve_refuses_invalid_settings(env: dict[str, str]) -> None:
    result = run({**env, "BULWARK_ALLOWED_ALGORITHMS": "HS256"}, "serve")
    assert result.exit_code != 0
    assert "BULWARK_ALLOWED_ALGORITHMS" in result.output


def test_db_upgrade_creates_schema_and_private_secrets(
    env: dict[str, str], settings: Settings
) -> None:
    result = run(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    for secret in (settings.pseudonym_key_file, settings.checkpoint_key_file):
        assert secret.stat().st_mode & 0o777 == 0o600
    assert run(env, "db", "upgrade").exit_code == 0  # idempotent


def test_clients_add_list_revoke(env: dict[str, str], settings: Settings) -> None:
    assert run(env, "db", "upgrade").exit_code == 0
    added = run(env, "clients", "add", "circ-desk", "--role", "requester")
    assert added.exit_code == 0, added.output
    key = added.stdout.strip().splitlines()[0]
    assert key.startswith("bwk_")
    assert run(env, "clients", "add", "circ-desk", "--role", "auditor").exit_code != 0
    listed = run(env, "clients", "list")
    assert "circ-desk\trequester" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout
    if settings.state_url.startswith("sqlite"):
        with sqlite3.connect(make_url(settings.state_url).database or "") as conn:
            stored = conn.execute("SELECT key_hash FROM clients").fetchall()
        assert stored == [(hash_key(key),)]
        assert all(key not in str(row) for row in stored)
    assert run(env, "clients", "revoke", "circ-desk").exit_code == 0
    assert "revoked" in run(env, "clients", "list").stdout
    assert run(env, "clients", "revoke", "nobody").exit_code != 0


def test_audit_verify_checkpoint_and_export(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "db", "upgrade").exit_code == 0
    assert run(env, "clients", "add", "a", "--role", "auditor").exit_code == 0
    verified = run(env, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True
    checkpoint = tmp_path / "cp.json"
    checkpoint.write_text(run(env, "audit", "checkpoint").stdout)
    assert (
        run(
            env, "orders", "revoke", "https://x", "j1", "--reason", "test", "--pre-emptive"
        ).exit_code
        == 0
    )
    assert run(env, "audit", "verify", "--since", str(checkpoint)).exit_code == 0
    out = tmp_path / "export.jsonl"
    assert run(env, "audit", "export", "-o", str(out)).exit_code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2]
    assert lines[1]["kind"] == "revocation"


# Tampering goes through sqlite3 here; tests/audit/test_chain.py tampers on both databases.
@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_audit_verify_exits_1_on_tampering(env: dict[str, str], settings: Settings) -> None:
    assert run(env, "db", "upgrade").exit_code == 0
    for name in ("a", "b", "c"):
        assert run(env, "clients", "add", name, "--role", "auditor").exit_code == 0
    with sqlite3.connect(make_url(settings.state_url).database or "") as conn:
        conn.execute("UPDATE audit_events SET body = replace(body, '\"b\"', '\"z\"') WHERE seq = 2")
    result = run(env, "audit", "verify")
    assert result.exit_code == 1
    assert "seq 2" in result.stderr


def test_demo_prepares_without_serving(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "--dir", str(directory), "--no-serve"], env={}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("curl ") == 3
    assert (directory / "demo-court-key.pem").stat().st_mode & 0o777 == 0o600
    trust: dict[str, Any] = json.loads((directory / "trust-store.json").read_text())
    assert trust["issuers"][0]["keys"][0]["kid"] == "demo-court-2026"
    # Running it again reuses the same demo and issues fresh keys.
    again = CliRunner().invoke(main, ["demo", "--dir", str(directory), "--no-serve"], env={})
    assert again.exit_code == 0, again.output


def test_demo_refuses_foreign_targets(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["demo", "--dir", str(tmp_path / "d"), "--no-serve"],
        env={"BULWARK_RECORDS_URL": "postgresql://prod/ils"},
    )
    assert result.exit_code != 0
    assert "only on its own files" in result.output
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "important.txt").write_text("x")
    result = CliRunner().invoke(
        main, ["demo", "--dir", str(tmp_path / "taken"), "--no-serve"], env={}
    )
    assert result.exit_code != 0


def test_orders_revoke_refuses_an_order_never_seen(env: dict[str, str]) -> None:
    assert run(env, "db", "upgrade").exit_code == 0
    refused = CliRunner().invoke(
        main, ["orders", "revoke", "https://x", "typo", "--reason", "r"], env=env
    )
    assert refused.exit_code != 0
    assert "order.unseen" in refused.output
    done = run(env, "orders", "revoke", "https://x", "typo", "--reason", "r", "--pre-emptive")
    assert done.exit_code == 0, done.output
