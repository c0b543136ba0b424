"""`bulwark audit log-checkpoint | log-key | prove | verify-proof` and `bulwark witness`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from app.audit import notes
from app.cli import main
from app.core.config import Settings
from app.core.secrets import load_ed25519
from tests.audit.test_log_api import policy_file
from tests.servers import provision, servers, settings_env
from tests.test_cli import env as env

DOCS = Path(__file__).resolve().parents[2] / "docs" / "auditors.md"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_checkpoint_prove_and_verify_offline(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    env = {**env, "BULWARK_LOG_ORIGIN": "library.example/bulwark"}
    assert run(env, "db", "upgrade").exit_code == 0
    assert settings.log_key_path.stat().st_mode & 0o777 == 0o600
    for name in ("a", "b", "c"):
        assert run(env, "clients", "add", name, "--role", "auditor").exit_code == 0
    vkey = run(env, "audit", "log-key").stdout.strip()
    assert vkey.startswith("library.example/bulwark+")
    note = run(env, "audit", "log-checkpoint")
    assert note.exit_code == 0, note.output
    assert note.stdout.splitlines()[:2] == ["library.example/bulwark", "3"]
    assert note.stdout.splitlines()[4].startswith("\u2014 library.example/bulwark ")

    proof = run(env, "audit", "prove", "--seq", "2")
    assert proof.exit_code == 0, proof.output
    path = tmp_path / "proof.json"
    path.write_text(proof.stdout)
    leaf = json.loads(proof.stdout)["leaf_hash"]
    key_file = tmp_path / "log.vkey"
    key_file.write_text(vkey + "\n")
    # Offline: no settings at all, only the proof and the key.
    ok = CliRunner().invoke(
        main,
        ["audit", "verify-proof", str(path), "--log-key", str(key_file), "--leaf-hash", leaf],
        env={"BULWARK_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert ok.exit_code == 0, ok.output
    document = json.loads(proof.stdout)
    document["hashes"][0] = "00" * 32
    path.write_text(json.dumps(document))
    bad = run(env, "audit", "verify-proof", str(path), "--log-key", vkey)
    assert bad.exit_code == 1
    assert "REJECTED" in bad.stderr

    # The procedure docs/auditors.md gives a court's expert (hashlib only) agrees.
    script = re.search(r"```python\n(.*?)```", DOCS.read_text("utf-8"), re.S)
    assert script is not None
    (tmp_path / "check.py").write_text(script.group(1))
    path.write_text(proof.stdout)
    by_hand = subprocess.run(
        [sys.executable, "check.py", leaf], cwd=tmp_path, capture_output=True, text=True
    )
    assert by_hand.stdout.strip() == "included", by_hand.stderr
    path.write_text(json.dumps(document))  # the tampered proof
    by_hand = subprocess.run(
        [sys.executable, "check.py", leaf], cwd=tmp_path, capture_output=True, text=True
    )
    assert by_hand.stdout.strip() == "NOT included"

    consistency = run(env, "audit", "prove", "--old", "0", "--new", "3")
    assert consistency.exit_code == 0
    path.write_text(consistency.stdout)
    assert run(env, "audit", "verify-proof", str(path), "--log-key", vkey).exit_code == 0
    beyond = run(env, "audit", "prove", "--seq", "99")
    assert beyond.exit_code != 0
    assert "log.index_beyond_tree" in beyond.output


def test_witness_keygen_prints_a_cosignature_vkey(tmp_path: Path) -> None:
    out = tmp_path / "w.key"
    result = CliRunner().invoke(main, ["witness", "keygen", "peer.example/w1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    name, key_id, _data = result.stdout.strip().split("+", 2)
    assert (name, len(key_id)) == ("peer.example/w1", 8)
    assert out.stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(main, ["witness", "keygen", "peer.example/w1", "--out", str(out)])
    assert again.exit_code != 0


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_witness_run_cosigns_a_served_log_and_the_quorum_publishes_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    keys = []
    for name in ("peer.example/w1", "peer.example/w2"):
        out = tmp_path / f"{name[-2:]}.key"
        made = CliRunner().invoke(main, ["witness", "keygen", name, "--out", str(out)])
        keys.append((name, out, made.stdout.strip()))
    policy = policy_file(tmp_path, public=False, vkeys=[k[2] for k in keys], required=2)
    settings = make_settings(policy=policy, log_origin="library.example/bulwark")
    api = asyncio.run(provision(settings, "w"))
    env = settings_env(
        settings, BULWARK_POLICY=str(policy), BULWARK_LOG_ORIGIN="library.example/bulwark"
    )
    with servers(env, tmp_path, 1) as (server,):
        auditor = {"Authorization": f"Bearer {api['auditor']}"}
        log_key = httpx.get(f"{server.url}/v1/log/key", headers=auditor).json()["vkey"]
        assert run(env, "audit", "log-checkpoint").exit_code == 0
        for name, key, _ in keys:
            args = ["witness", "run", "--log", server.url, "--log-key", log_key, "--name", name]
            args += ["--key", str(key), "--state", str(tmp_path / f"{name[-2:]}.json"), "--once"]
            done = CliRunner().invoke(main, args, env={"BULWARK_WITNESS_API_KEY": api["auditor"]})
            assert done.exit_code == 0, done.output
            assert "cosigned library.example/bulwark" in done.stdout
        published = httpx.get(f"{server.url}/v1/log/checkpoint", headers=auditor)
        assert published.status_code == 200, published.text
        assert published.text.count("\u2014 peer.example/") == 2
        # A witness given another log's key refuses the checkpoint and says so.
        other = notes.log_signer("library.example/bulwark", load_ed25519(keys[1][1], "k"))
        bad = CliRunner().invoke(
            main,
            [
                "witness",
                "run",
                "--log",
                server.url,
                "--log-key",
                other.verifier.vkey,
                "--name",
                keys[0][0],
                "--key",
                str(keys[0][1]),
                "--state",
                str(tmp_path / "x.json"),
                "--once",
            ],
            env={"BULWARK_WITNESS_API_KEY": api["auditor"]},
        )
        assert bad.exit_code == 1
        assert "refused" in bad.stderr
