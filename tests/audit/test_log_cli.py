"""`bulwark audit log-checkpoint | log-key | prove | verify-proof` and `bulwark witness`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from app.cli import main
from app.core.config import Settings
from tests.test_cli import env as env


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
