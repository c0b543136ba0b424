"""The README's first quick-start command: `bulwark demo` serves, and its printed curl
commands return what they say."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_demo_serves_and_its_curl_commands_work(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")}
    log = (tmp_path / "demo.log").open("w+b")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "demo did not become ready"
            time.sleep(0.2)
        output = (tmp_path / "demo.log").read_text()
        commands = [line for line in output.splitlines() if line.startswith("curl ")]
        assert len(commands) == 3
        answers = [
            json.loads(
                subprocess.run(shlex.split(c), capture_output=True, check=True, timeout=30).stdout
            )
            for c in commands
        ]
        permitted, denied, verified = answers
        assert permitted["decision"]["effect"] == "permit"
        assert permitted["records"]["circulation"]
        assert denied["status"] == 403
        assert [r["code"] for r in denied["reasons"]] == ["scope.patron"]
        assert verified["ok"] is True
        page = httpx.get(f"http://127.0.0.1:{port}/transparency", timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<svg" in page.text
    finally:
        process.terminate()
        process.wait(20)
