"""docs/auditors.md's verification script, run word for word against `bulwark demo`: it
checks the chain, the checkpoint's signature against the pinned key, and the transparency
figures with curl, jq, sha256sum and openssl only — and fails when any of them is wrong."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.databases import IN_CI
from tests.test_docs_commands import DOCS, demo  # noqa: F401 - the demo fixture

pytestmark = pytest.mark.slow
MARKER = "<!-- auditor-script:"


def script() -> str:
    text = (DOCS / "auditors.md").read_text()
    after = text[text.index(MARKER) :]
    start = after.index("```shell\n") + len("```shell\n")
    return after[start : after.index("\n```", start)] + "\n"


def tools() -> None:
    missing = [t for t in ("curl", "jq", "sha256sum", "openssl") if shutil.which(t) is None]
    if missing:
        if IN_CI:
            pytest.fail(f"missing {missing}; CI=true requires them", pytrace=False)
        pytest.skip(f"missing {missing}")


def pinned_fingerprint(env: dict[str, str], cwd: Path) -> str:
    """What the operator reads on the host and hands the auditor out of band."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "public-key", "--fingerprint"],
        env={**env, "BULWARK_DATA_DIR": str(cwd / "bulwark-demo")},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def run_script(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(path)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_auditor_script_verifies_the_demo_and_catches_tampering(
    demo: tuple[str, dict[str, str]],  # noqa: F811
    tmp_path: Path,
) -> None:
    tools()
    url, env = demo
    # Some decisions to count: a release, a refusal, a request without an order.
    body = {
        "purpose": "legal_process",
        "patron_id": "P000123",
        "categories": ["circulation"],
        "from": "2026-01-01",
        "to": "2026-06-30",
    }
    headers = {"Authorization": f"Bearer {env['REQUESTER_KEY']}"}
    for extra in ({"court_order": env["ORDER"]}, {"court_order": env["ORDER"] + "x"}, {}):
        r = httpx.post(f"{url}/v1/disclosures", json={**body, **extra}, headers=headers)
        assert r.status_code in (200, 403), r.text
    path = tmp_path / "verify-bulwark.sh"
    path.write_text(script())
    run_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")},
        "BULWARK_URL": url,
        "AUDITOR_KEY": env["AUDITOR_KEY"],
        "PINNED_KEY_SHA256": pinned_fingerprint(env, tmp_path),
    }
    ok = run_script(path, run_env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "chain:" in ok.stdout and "through the checkpoint" in ok.stdout
    assert "transparency: every figure matches the log" in ok.stdout
    assert ok.stdout.strip().endswith("OK")

    # Another key than the pinned one: refused, whatever the server says.
    wrong = run_script(path, {**run_env, "PINNED_KEY_SHA256": "0" * 64})
    assert wrong.returncode != 0
    assert "is not the pinned key" in wrong.stderr

    # A rewritten event (the database administrator's edit): the chain check names it.
    db = tmp_path / "bulwark-demo" / "bulwark.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE audit_events SET body = replace(body, '\"requester\"', '\"auditor\"') "
            "WHERE seq = 1"
        )
    tampered = run_script(path, run_env)
    assert tampered.returncode != 0
    assert "event 1: hash does not match its body" in tampered.stderr
