"""The counsel page: admin only, no script, every list real, and it renders in Chromium."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.runtime import Runtime
from tests.conftest import auth
from tests.orders.test_transcription import PAPER_SHA256, Keys, approval, body, transcription
from tests.servers import settings_env, start_server
from tests.transparency.test_page_chromium import chromium, run_chromium


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"counsel:{key}".encode()).decode()}


async def activity(client: httpx.AsyncClient, keys: dict[str, str], library_keys: Keys) -> None:
    """A transcription used with counsel's approval, then revoked; a dry run of another."""
    token = transcription(library_keys, max_uses=2)
    r = await client.post(
        "/v1/disclosures",
        json=body(token, approval(library_keys, "counsel.bob")),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 200, r.text
    other = transcription(library_keys, jti="<script>alert(1)</script>")
    await client.post("/v1/decisions", json=body(other, None), headers=auth(keys["admin"]))
    r = await client.post(
        "/v1/orders/revocations",
        json={"iss": "https://library.example/custodian", "jti": "transcribed-1", "reason": "x"},
        headers=auth(keys["admin"]),
    )
    assert r.status_code == 200, r.text


async def test_the_page_lists_presented_approved_used_and_revoked_orders(
    client: httpx.AsyncClient, keys: dict[str, str], library_keys: Keys, runtime: Runtime
) -> None:
    await activity(client, keys, library_keys)
    for headers in (basic(keys["admin"]), auth(keys["admin"])):
        page = await client.get("/counsel", headers=headers)
        assert page.status_code == 200
    text = page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in text  # none of ours, and the hostile jti is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for anchor in ("presented", "approved", "used", "revoked"):
        assert f"data-list='{anchor}'" in text
    assert PAPER_SHA256 in text
    assert "counsel.bob" in text
    assert "P000" not in text  # no patron, ever


async def test_the_page_is_for_admins_only(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.get("/counsel")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/counsel", headers=basic("bwk_wrong"))).status_code == 401
    assert (await client.get("/counsel", headers=basic(keys["auditor"]))).status_code == 403
    assert (await client.get("/counsel", headers=auth(keys["requester"]))).status_code == 403


@pytest.mark.slow
@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
async def test_the_page_in_chromium(
    settings: Settings, tmp_path: Path, library_keys: Keys, keys: dict[str, str]
) -> None:
    binary = chromium()
    env = settings_env(settings)
    server = start_server(env, tmp_path, name="counsel")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await activity(client, keys, library_keys)
        host = server.url.removeprefix("http://")
        url = f"http://counsel:{keys['admin']}@{host}/counsel"
        dom = run_chromium(binary, tmp_path / "profile", "--dump-dom", url)
        shot_path = tmp_path / "counsel.png"
        shot = run_chromium(
            binary,
            tmp_path / "profile-shot",
            f"--screenshot={shot_path}",
            "--window-size=1200,1400",
            url,
        )
    finally:
        server.stop()
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>Court orders</h1>" in dom.stdout, dom.stdout[-1500:]
    assert "transcribed-1" in dom.stdout
    assert PAPER_SHA256 in dom.stdout
    assert shot.returncode == 0
    assert shot_path.stat().st_size > 10_000
