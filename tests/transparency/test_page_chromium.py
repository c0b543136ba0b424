"""The public page in headless Chromium (Debian's package), served by a real `bulwark serve`
over the demo records: the figures a reader sees are the JSON report's, and a screenshot is
kept in the test's temporary directory."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.callers.models import Role
from app.core.config import Settings
from app.records.demo import DEMO_PATRON, OTHER_PATRON
from tests.conftest import auth
from tests.databases import IN_CI
from tests.factories import disclosure_body
from tests.servers import provision, settings_env, start_server

pytestmark = pytest.mark.slow

Token = Callable[..., str]
PERIOD = {"from": "2000-01-01", "to": "2100-12-31"}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Debian's chromium is not installed (.ci/run installs it)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return found


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless, offline, a fresh profile each run; the page needs no network but the server."""
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


class Figures(HTMLParser):
    """Collects the text of every cell marked with data-instrument / data-measure."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self._open: tuple[str, str, str] | None = None
        self.headings: list[str] = []
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td" and "data-instrument" in found:
            self._open = (
                found["data-instrument"] or "",
                found["data-measure"] or "",
                found.get("data-item") or "",
            )
            self.cells[self._open] = ""
        self._heading = tag in ("h1", "h2")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._open = None
        self._heading = False

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.cells[self._open] += data.strip()
        if self._heading and data.strip():
            self.headings.append(data.strip())


def expected_cells(report: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    cells = {}
    for row in report["instruments"]:
        name = row["instrument"]
        for measure in ("requests", "permitted", "refused", "failed"):
            cells[(name, measure, "")] = str(row[measure])
        for code, value in row["refusals_by_reason"].items():
            cells[(name, "refused_by_reason", code)] = str(value)
        for category, value in row["records_released"].items():
            cells[(name, "records_released", category)] = str(value)
    return cells


@pytest.fixture
async def demo(settings: Settings, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The settings of a demo deployment that publishes its report, and its callers' keys."""
    policy = tmp_path / "public-policy.toml"
    policy.write_text('version = "demo-public"\n[transparency]\npublic = true\n')
    keys = await provision(settings, "page", (Role.REQUESTER, Role.AUDITOR))
    env = settings_env(settings, BULWARK_POLICY=str(policy))
    return env, keys


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
async def test_page_in_chromium_shows_the_json_figures(
    demo: tuple[dict[str, str], dict[str, str]], order_token: Token, tmp_path: Path
) -> None:
    binary = chromium()
    env, keys = demo
    server = start_server(env, tmp_path, name="transparency")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for token in (
                order_token(patrons=[DEMO_PATRON]),
                order_token(patrons=[OTHER_PATRON]),
                order_token(patrons=[DEMO_PATRON], instrument="search_warrant"),
                order_token(instrument="national_security_letter", allow_invalid=True),
                None,
            ):
                body = disclosure_body(token)
                r = await client.post("/v1/disclosures", json=body, headers=auth(keys["requester"]))
                assert r.status_code in (200, 403)
            report = (await client.get("/v1/transparency", params=PERIOD)).json()
        url = f"{server.url}/transparency?from={PERIOD['from']}&to={PERIOD['to']}"
        dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        screenshot = tmp_path / "transparency.png"
        shot = run_chromium(
            binary,
            tmp_path / "profile-shot",
            f"--screenshot={screenshot}",
            "--window-size=1100,2600",
            url,
        )
        assert shot.returncode == 0, shot.stderr[-2000:]
    finally:
        server.stop()
    page = Figures()
    page.feed(dom.stdout)
    assert page.headings[:2] == ["Transparency report", "Requests by instrument"]
    assert page.cells == expected_cells(report)
    assert page.cells[("court_order", "permitted", "")] == "1"
    # Not a closed calendar half-year: the banded rows are withheld, on the page as in JSON.
    assert page.cells[("national_security_letter", "requests", "")] == "withheld"
    assert "<svg" in dom.stdout
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000
