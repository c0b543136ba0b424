"""Every curl command in docs/ works against `bulwark demo`, and answers what the doc shows.

A guide's ```sh blocks are run in order: `curl …` commands (with their continuation lines),
and assignments (`VAR=$(…)`, `export VAR=…`) that set variables for later commands; in the
guides of RUN_BULWARK, `bulwark …` commands too (their JSON output is checked like curl's). When a
curl command ends its block and a ```json block follows, that is its documented output: the
real answer must have the same keys, and the same status, effect and reason codes. A problem
answer with no documented output fails: a guide's command must not fail unannounced.

Guides run in one shell environment, counsel.md last (it revokes the order it issues). It
starts with REQUESTER_KEY, AUDITOR_KEY and ORDER as `bulwark demo` prints them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DEMO_URL = "http://127.0.0.1:8080"
RUN_LAST = ("counsel.md",)
#: Guides whose `bulwark …` commands run too (the others show commands for a real deployment).
RUN_BULWARK = ("counsel.md",)
_ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Z_][A-Z0-9_]*)=")
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Command:
    doc: str
    line: int
    text: str
    documented: Any = None  # the JSON shown after it, if any

    @property
    def assigns(self) -> str | None:
        match = _ASSIGNMENT.match(self.text)
        return match.group(1) if match else None


def commands_of(path: Path) -> list[Command]:
    """The runnable commands of one guide, each with the output the guide shows for it."""
    found: list[Command] = []
    lines = path.read_text().splitlines()
    i = 0
    last_block: list[Command] = []
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, i = i, i + 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if fence.group(1) in ("sh", "bash", "console"):
            last_block = _runnable(path.name, start + 2, body)
            found.extend(last_block)
        elif fence.group(1) == "json" and last_block and _shows_output(last_block[-1]):
            last_block[-1].documented = json.loads("\n".join(body))
            last_block = []
    return found


def _shows_output(command: Command) -> bool:
    return command.text.startswith("curl") or (
        command.doc in RUN_BULWARK and command.text.startswith("bulwark ")
    )


def _runnable(doc: str, first_line: int, body: list[str]) -> list[Command]:
    out: list[Command] = []
    pending = ""
    for number, raw in enumerate(body, first_line):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        text, pending = pending.strip(), ""
        runs_bulwark = doc in RUN_BULWARK and text.startswith("bulwark ")
        if text.startswith("curl ") or _ASSIGNMENT.match(text) or runs_bulwark:
            out.append(Command(doc, number, text))
    return out


def guides() -> list[Path]:
    paths = sorted(DOCS.glob("*.md"))
    return [p for p in paths if p.name not in RUN_LAST] + [DOCS / n for n in RUN_LAST]


def run(command: Command, env: dict[str, str], cwd: Path) -> str:
    script = command.text
    if command.assigns:
        script += f'\nprintf %s "${command.assigns}"'
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    where = f"{command.doc}:{command.line}: {command.text[:120]}"
    assert done.returncode == 0, f"{where}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    return done.stdout


def check_output(command: Command, output: str) -> None:
    where = f"{command.doc}:{command.line}"
    try:
        answer = json.loads(output) if output.strip() else None
    except json.JSONDecodeError:
        answer = None  # CSV, HTML or a saved file: the exit status was the check
    expected = command.documented
    if expected is None:
        is_problem = isinstance(answer, dict) and {"status", "reasons"} <= answer.keys()
        assert not is_problem, f"{where}: answered a problem the guide does not show: {output}"
        return
    assert isinstance(answer, dict), f"{where}: expected JSON like the guide's, got {output!r}"
    assert answer.keys() == expected.keys(), f"{where}: {sorted(answer)} != {sorted(expected)}"
    for key in ("status", "ok", "effect"):
        assert answer.get(key) == expected.get(key), f"{where}: {key}"
    assert _codes(answer) == _codes(expected), f"{where}: reason codes differ"
    if "decision" in expected:
        assert answer["decision"]["effect"] == expected["decision"]["effect"], where
        assert _codes(answer["decision"]) == _codes(expected["decision"]), where


def _codes(body: dict[str, Any]) -> list[str]:
    return [r["code"] if isinstance(r, dict) else r for r in body.get("reasons") or []]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`bulwark demo` in tmp_path/bulwark-demo, serving; its URL and printed variables."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # `bulwark` itself
    log_path = tmp_path / "demo.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--dir", "bulwark-demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "demo did not become ready"
            time.sleep(0.2)
        printed = log_path.read_text()
        first_curl = next(line for line in printed.splitlines() if line.startswith("curl "))
        order = json.loads(shlex.split(first_curl)[shlex.split(first_curl).index("-d") + 1])
        env.update(
            REQUESTER_KEY=re.search(r"requester key:\s*(\S+)", printed).group(1),  # type: ignore[union-attr]
            AUDITOR_KEY=re.search(r"auditor key:\s*(\S+)", printed).group(1),  # type: ignore[union-attr]
            ORDER=order["court_order"],
        )
        yield url, env
    finally:
        process.terminate()
        process.wait(20)


def test_the_guides_exist_and_hold_commands() -> None:
    for name in ("auditors.md", "counsel.md", "integrating.md"):
        assert len([c for c in commands_of(DOCS / name) if c.text.startswith("curl")]) >= 3, name
    assert sum(c.documented is not None for c in commands_of(DOCS / "auditors.md")) >= 4


def test_every_curl_command_in_the_docs_works_against_the_demo(
    demo: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = demo
    ran = 0
    for guide in guides():
        for command in commands_of(guide):
            command.text = command.text.replace(DEMO_URL, url)
            output = run(command, env, tmp_path)
            if command.assigns:
                env[command.assigns] = output
                continue
            check_output(command, output)
            ran += 1
    assert ran >= 12
