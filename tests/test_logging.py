"""Structured logs: one JSON line per request, the request id round trip, nothing personal."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.logging import JsonFormatter
from app.records.demo import DEMO_PATRON, OTHER_PATRON
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]
Lines = Callable[[], list[dict[str, Any]]]
CASE = "2026-CR-555123"
ACCESS_FIELDS = {"request_id", "method", "route", "status", "duration_ms", "caller", "effect"}


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """Logging does not depend on the state database: SQLite only keeps these tests quick."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Every ``bulwark.*`` record, formatted exactly as ``bulwark serve`` writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bulwark")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "bulwark.access"]


body = disclosure_body


async def test_one_line_per_request_with_its_decision(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, log_lines: Lines
) -> None:
    requester = auth(keys["requester"])
    token = order_token(patrons=[DEMO_PATRON], case=CASE)
    ok = await client.post("/v1/disclosures", json=body(token), headers=requester)
    denied = await client.post(
        "/v1/disclosures", json=body(order_token(), OTHER_PATRON), headers=requester
    )
    health = await client.get("/healthz")
    lines = access(log_lines())
    assert len(lines) == 3
    permit, deny, public = lines
    assert permit.keys() >= ACCESS_FIELDS
    assert permit["route"] == deny["route"] == "/v1/disclosures"
    assert (permit["status"], permit["effect"], permit["reasons"]) == (200, "permit", [])
    assert (deny["status"], deny["effect"], deny["reasons"]) == (403, "deny", ["scope.patron"])
    assert permit["caller"] == deny["caller"] == "test-requester"
    assert permit["method"] == "POST" and permit["level"] == "info"
    assert isinstance(permit["duration_ms"], float) and permit["duration_ms"] > 0
    assert [line["request_id"] for line in lines] == [
        r.headers["x-request-id"] for r in (ok, denied, health)
    ]
    assert (public["route"], public["caller"], public["effect"]) == ("/healthz", None, None)


async def test_a_supplied_request_id_is_kept_returned_and_logged(
    client: httpx.AsyncClient, keys: dict[str, str], log_lines: Lines
) -> None:
    r = await client.get(
        "/v1/audit/verify", headers={**auth(keys["requester"]), "X-Request-ID": "ils-42.a_b-c"}
    )
    assert r.status_code == 403
    assert r.headers["x-request-id"] == "ils-42.a_b-c"
    assert r.json()["request_id"] == "ils-42.a_b-c"
    (line,) = access(log_lines())
    assert line["request_id"] == "ils-42.a_b-c"
    assert line["route"] == "/v1/audit/verify"  # the full template, prefix included


@pytest.mark.parametrize(
    "supplied",
    ["has space", "x" * 65, "new\nline", '{"json":1}', "semi;colon", "ünïcode"],
    ids=["space", "too-long", "newline", "json", "semicolon", "non-ascii"],
)
async def test_an_unsafe_request_id_is_replaced(
    client: httpx.AsyncClient, log_lines: Lines, supplied: str
) -> None:
    raw = [(b"x-request-id", supplied.encode("utf-8"))]
    r = await client.get("/healthz", headers=raw)
    assert r.status_code == 200
    returned = r.headers["x-request-id"]
    assert returned != supplied and len(returned) == 32 and returned.isalnum()
    (line,) = access(log_lines())
    assert line["request_id"] == returned


async def test_paths_with_identifiers_are_logged_as_unmatched(
    client: httpx.AsyncClient, keys: dict[str, str], log_lines: Lines
) -> None:
    await client.get(f"/v1/patrons/{DEMO_PATRON}/loans", headers=auth(keys["auditor"]))
    (line,) = access(log_lines())
    assert line["route"] == "<unmatched>"
    assert line["status"] == 404


async def test_no_patron_id_case_token_or_record_in_any_line(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, log_lines: Lines
) -> None:
    requester = auth(keys["requester"])
    token = order_token(patrons=[DEMO_PATRON], case=CASE)
    ok = await client.post("/v1/disclosures", json=body(token), headers=requester)
    titles = [record["title"] for record in ok.json()["records"]["circulation"]]
    assert titles
    await client.post("/v1/disclosures", json=body(token, OTHER_PATRON), headers=requester)
    bad = {**body(token), "patron_id": "P000123\u0000<script>", "from": "not-a-date"}
    assert (await client.post("/v1/disclosures", json=bad, headers=requester)).status_code == 422
    text = "\n".join(json.dumps(line) for line in log_lines())
    assert text
    for secret in (DEMO_PATRON, OTHER_PATRON, CASE, token, keys["requester"], *titles):
        assert secret not in text


def test_a_logged_exception_gives_its_type_never_its_message_or_traceback() -> None:
    try:
        raise ValueError(f"patron {DEMO_PATRON} broke it")
    except ValueError:
        record = logging.LogRecord(
            "bulwark.errors", logging.ERROR, __file__, 1, "unexpected error", (), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["error_type"] == "ValueError"
    assert line["message"] == "unexpected error"
    assert DEMO_PATRON not in json.dumps(line)
    assert "Traceback" not in json.dumps(line)


def test_timestamps_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt
    import time

    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        record = logging.LogRecord("bulwark.test", logging.INFO, "", 0, "line", (), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    expected = dt.datetime.fromtimestamp(record.created, dt.UTC)
    assert (
        line["ts"]
        == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected.microsecond // 1000:03d}Z"
    )
