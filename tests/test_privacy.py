"""Privacy of the service itself: no seeded patron data in any log line or metric of the
whole session; security headers on every answer; CORS closed unless configured.

``test_no_patron_data_in_any_log_line_or_metric`` runs last (tests/conftest.py moves it): it
reads every line logged in-process during the session (at DEBUG, see tests/privacy.py), every
``bulwark serve`` log file the session's tests wrote, and the metrics registry.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.middleware import SECURITY_HEADERS
from app.main import create_app
from app.metrics import render
from app.records.demo import DEMO_BUSY_PATRON, DEMO_PATRON, OTHER_PATRON
from app.runtime import Runtime
from tests.conftest import auth
from tests.privacy import LOG_CAPTURE, docs_page

#: (pattern that finds candidates in text, SQL that lists the seeded values they may be).
SEEDED = [
    (r"P\d{6}", "SELECT patron_id FROM patrons"),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "SELECT email FROM patrons"),
    (r"\+1-555-\d{4}", "SELECT phone FROM patrons"),
    (r"\b\d{14}\b", "SELECT card_number FROM patrons"),
    (r"[A-Z][a-z]+ [A-Z][a-z]+", "SELECT full_name FROM patrons"),
    (r"\b[a-z]+ [a-z]+\b", "SELECT query_text FROM searches"),
]
#: The demo generator marks every title, address and transcript it writes with this.
FICTIONAL = "(fictional)"


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def seeded(store_url: str) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    path = make_url(store_url).database
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        found = []
        for pattern, sql in SEEDED:
            values = {str(row[0]) for row in conn.execute(sql) if row[0]}
            found.append((re.compile(pattern), frozenset(values)))
    ids = found[0][1] | {DEMO_PATRON, OTHER_PATRON, DEMO_BUSY_PATRON}
    found[0] = (found[0][0], ids)
    return found


def leaks(text: str, needles: list[tuple[re.Pattern[str], frozenset[str]]]) -> list[str]:
    hits = [m for pattern, values in needles for m in pattern.findall(text) if m in values]
    if FICTIONAL in text:
        hits.append(FICTIONAL)
    return hits


#: Files holding a command's intended terminal output beside its logs: ``bulwark demo``
#: prints ready-to-paste requests for the demo patrons on purpose. Only their JSON log lines
#: are the service's logs.
PRINTED_OUTPUT = {"demo.log"}


def server_lines(base: Path) -> Iterator[str]:
    """Every line the session's ``bulwark`` processes logged (their log files)."""
    for path in sorted(base.rglob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if path.name not in PRINTED_OUTPUT or line.startswith("{"):
                yield f"{path.name}: {line}"


def test_no_patron_data_in_any_log_line_or_metric(
    demo_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    needles = seeded(demo_store_url)
    found = [(hit, line[:300]) for line in LOG_CAPTURE.lines for hit in leaks(line, needles)]
    for line in server_lines(tmp_path_factory.getbasetemp()):
        found += [(hit, line[:300]) for hit in leaks(line, needles)]
    found += [(hit, "metrics") for hit in leaks(render().decode(), needles)]
    assert found == []


def test_the_leak_check_finds_what_it_looks_for(demo_store_url: str) -> None:
    """The search above would see each kind of seeded value (so an empty result means it)."""
    needles = seeded(demo_store_url)
    path = make_url(demo_store_url).database
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT p.patron_id, p.email, p.phone, p.card_number, p.full_name, s.query_text, l.title "
            "FROM patrons p JOIN searches s USING (patron_id) JOIN loans l USING (patron_id) LIMIT 1"
        ).fetchone()
    for value in row:
        assert leaks(f'{{"message": "x", "field": "{value}"}}', needles), value
    assert leaks("", needles) == []


# --------------------------------------------------------------------------- headers, CORS


async def test_security_headers_on_every_kind_of_answer(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """The shared client checks every response of the suite (tests/privacy.py); here each
    kind of answer is produced at least once, refusals and framework errors included."""
    answers = [
        await client.get("/healthz"),
        await client.get("/openapi.json"),
        await client.get("/docs"),
        await client.get("/v1/policy"),  # 401
        await client.get("/v1/policy", headers=auth(keys["requester"])),  # 403
        await client.get("/v1/policy", headers=auth(keys["auditor"])),  # 200
        await client.get("/nowhere"),  # 404
        await client.delete("/v1/policy", headers=auth(keys["auditor"])),  # 405
        await client.post("/v1/decisions", json={}, headers=auth(keys["requester"])),  # 422
        await client.post(
            "/v1/decisions", content=b"x" * 100_000, headers=auth(keys["requester"])
        ),  # 413
        await client.options("/v1/policy", headers={"Origin": "https://evil.example"}),
    ]
    assert sorted({a.status_code for a in answers}) == [200, 401, 403, 404, 405, 413, 422]
    for answer in answers:
        for name, value in SECURITY_HEADERS:
            if docs_page(answer, name):
                continue
            assert answer.headers[name.decode()] == value.decode()


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_cors_is_closed_by_default(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.options("/v1/disclosures", headers=preflight("https://evil.example"))
    assert "access-control-allow-origin" not in r.headers
    r = await client.get(
        "/v1/policy", headers={**auth(keys["auditor"]), "Origin": "https://evil.example"}
    )
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


async def test_cors_admits_only_configured_origins(
    make_settings: Callable[..., Settings], runtime: Runtime
) -> None:
    settings = make_settings(cors_origins="https://ils.example.org")
    app = create_app(settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bulwark.test") as c,
    ):
        ok = await c.options("/v1/disclosures", headers=preflight("https://ils.example.org"))
        evil = await c.options("/v1/disclosures", headers=preflight("https://evil.example"))
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://ils.example.org"
    assert "access-control-allow-credentials" not in ok.headers
    assert "access-control-allow-origin" not in evil.headers
    for name, value in SECURITY_HEADERS:  # preflight answers are hardened too
        assert ok.headers[name.decode()] == value.decode()


@pytest.mark.parametrize(
    "origins", ["*", "https://ils.example.org/", "ils.example.org", "https://*.example.org"]
)
def test_cors_wildcards_and_malformed_origins_refused_at_start(
    make_settings: Callable[..., Settings], origins: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        make_settings(cors_origins=origins)
