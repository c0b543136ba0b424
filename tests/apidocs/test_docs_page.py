"""/docs renders, from Bulwark's own files, under a strict CSP; problem types resolve."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.apidocs.reference import RETRY
from app.apidocs.router import DOCS_CSP
from app.core.config import Settings
from app.core.reasons import REASONS, Reason
from tests.conftest import auth, migrate
from tests.servers import settings_env, start_server
from tests.transparency.test_page_chromium import chromium, run_chromium

ROOT = Path(__file__).resolve().parents[2]


async def test_docs_page_uses_only_its_own_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == DOCS_CSP
    assert "unsafe-eval" not in DOCS_CSP and "script-src 'self'" in DOCS_CSP
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources)  # no CDN, no other host
    assert "<script>" not in page.text  # no inline script
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100
    assert (await client.get("/docs/assets/..%2Fpyproject.toml")).status_code == 404
    assert (await client.get("/docs/assets/index.html")).status_code == 404
    # Every other route keeps the default policy: no script at all.
    health = await client.get("/healthz")
    assert "script-src" not in health.headers["content-security-policy"]


async def test_problem_types_resolve_to_the_reference(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post("/v1/decisions", json={}, headers=auth(keys["requester"]))
    assert r.json()["type"] == "/problems/request.invalid"
    page = await client.get(str(httpx.URL(str(r.url)).join(r.json()["type"]).path))
    assert page.status_code == 200
    assert "422" in page.text and "failed validation" in page.text
    assert (await client.get("/problems/no.such_code")).status_code == 404


def test_every_reason_code_has_advice_and_a_row_in_docs_api() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    for reason in Reason:
        assert reason in RETRY, reason
        row = next((line for line in api.splitlines() if f"| `{reason.value}` |" in line), None)
        assert row is not None, f"docs/api.md has no row for {reason.value}"
        assert f"| {REASONS[reason].status} |" in row, reason.value


@pytest.mark.slow
@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
async def test_docs_render_in_chromium(settings: Settings, tmp_path: Path) -> None:
    binary = chromium()
    await migrate(settings)
    env = settings_env(settings)
    server = start_server(env, tmp_path, name="docs")
    try:
        dom = run_chromium(
            binary,
            tmp_path / "profile",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{server.url}/docs",
        )
        shot_path = tmp_path / "docs.png"
        shot = run_chromium(
            binary,
            tmp_path / "profile-shot",
            "--virtual-time-budget=10000",
            f"--screenshot={shot_path}",
            "--window-size=1200,1600",
            f"{server.url}/docs",
        )
    finally:
        server.stop()
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Swagger UI ran (under the CSP) and rendered the operations of Bulwark's own schema.
    assert 'class="swagger-ui' in dom.stdout, dom.stdout[-2000:]
    assert "createDisclosure" in dom.stdout or "/v1/disclosures" in dom.stdout
    assert "Refused to" not in dom.stderr  # no CSP violation reported
    assert shot.returncode == 0
    assert shot_path.stat().st_size > 10_000
