"""Every decision on the record, whatever fails after it (issue 15).

A permitted read whose store answers values that are not data (NaN, infinity, an escaped lone
surrogate from an HTTP store), or any failure while releasing, is written as an ``error``
event with its reason before the 5xx answer goes out; the order's use is not consumed and the
legal hold the evaluated order calls for stands.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.audit import service as audit_service
from app.core.config import Settings
from app.main import create_app
from app.records.demo import DEMO_PATRON
from app.records.http_store import HttpRecordsStore
from app.runtime import Runtime
from tests.conftest import auth
from tests.factories import disclosure_body
from tests.records.test_http_store import http_mapping
from tests.records.upstream import Upstream, running_upstream

Token = Callable[..., str]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as server:
        yield server


@pytest.fixture
async def app_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=runtime)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


def use_http_store(runtime: Runtime, upstream: Upstream, path: str) -> None:
    runtime.store = HttpRecordsStore(
        upstream.base_url,
        http_mapping(path),
        runtime.http,
        token=None,
        max_response_bytes=1 << 20,
        timeout=2.0,
    )


body = disclosure_body


async def last_event(rt: Runtime) -> tuple[str, str, dict[str, Any]]:
    async with rt.state.connect() as conn:
        kind, effect, raw = (
            await conn.execute(
                text("SELECT kind, effect, body FROM audit_events ORDER BY seq DESC LIMIT 1")
            )
        ).one()
    return kind, effect, json.loads(raw)


async def count(rt: Runtime, table: str) -> int:
    async with rt.state.connect() as conn:
        sql = f"SELECT COUNT(*) FROM {table}"
        return int((await conn.execute(text(sql))).scalar_one())


async def uses(rt: Runtime) -> int:
    async with rt.state.connect() as conn:
        return int(
            (await conn.execute(text("SELECT COALESCE(SUM(uses), 0) FROM order_uses"))).scalar_one()
        )


@pytest.mark.parametrize("kind", ["nan", "infinity", "surrogate"])
async def test_an_http_store_answering_values_that_are_not_data(
    runtime: Runtime,
    app_client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    upstream: Upstream,
    kind: str,
) -> None:
    use_http_store(runtime, upstream, f"/unsound/{kind}/{{patron}}")
    token = order_token(patrons=[DEMO_PATRON], categories=["circulation"])
    r = await app_client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [x["code"] for x in r.json()["reasons"]] == ["store.unavailable"]
    assert "records" not in r.json()
    event_kind, effect, event = await last_event(runtime)
    assert (event_kind, effect, event["reasons"]) == ("disclosure", "error", ["store.unavailable"])
    assert r.json()["audit_seq"] == event["seq"]
    assert event["released"] is None
    assert await uses(runtime) == 0  # the use was not consumed
    assert await count(runtime, "legal_holds") == 1  # the evaluated order's hold stands
    assert await count(runtime, "notices") == 0
    assert (await audit_service.verify_chain(runtime.state)).ok


async def test_any_failure_while_releasing_is_an_error_event(
    runtime: Runtime,
    app_client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug after the decision")

    monkeypatch.setattr("app.disclosures.service.notice_row", broken)
    token = order_token(patrons=[DEMO_PATRON], categories=["circulation"])
    r = await app_client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 500, r.text
    assert [x["code"] for x in r.json()["reasons"]] == ["internal.error"]
    event_kind, effect, event = await last_event(runtime)
    assert (event_kind, effect, event["reasons"]) == ("disclosure", "error", ["internal.error"])
    assert r.json()["audit_seq"] == event["seq"]
    assert await uses(runtime) == 0
    # Mended, the same order's one use is still there to spend.
    monkeypatch.undo()
    r = await app_client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 200, r.text


async def test_a_failing_store_is_still_recorded_once(
    make_settings: Callable[..., Settings],
    runtime: Runtime,
    app_client: httpx.AsyncClient,
    keys: dict[str, str],
    order_token: Token,
    upstream: Upstream,
) -> None:
    use_http_store(runtime, upstream, "/status/500/{patron}")
    token = order_token(patrons=[DEMO_PATRON], categories=["circulation"])
    before = await count(runtime, "audit_events")
    r = await app_client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 503
    assert await count(runtime, "audit_events") == before + 1
    assert (await last_event(runtime))[1] == "error"


async def test_to_at_the_end_of_the_calendar_is_422(
    app_client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order_token(patrons=[DEMO_PATRON], period=("2026-01-01", "9999-12-31"))
    for path in ("/v1/disclosures", "/v1/decisions"):
        r = await app_client.post(
            path, json={**body(token), "to": "9999-12-31"}, headers=auth(keys["requester"])
        )
        assert r.status_code == 422, r.text
        assert [x["code"] for x in r.json()["reasons"]] == ["request.invalid"]
