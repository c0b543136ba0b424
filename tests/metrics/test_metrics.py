"""GET /metrics: what it counts, that its labels never carry request data, who may read it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from app.core.config import Settings
from app.core.problems import StoreUnavailable
from app.metrics import RATE_LIMITED, MeasuredStore
from app.records.categories import Category
from app.records.demo import DEMO_PATRON, OTHER_PATRON
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]
CASE = "2026-CR-777001"
METRICS_KEY = "metrics-scraper-key-0123456789-abcdefghij"


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """Metrics do not depend on the state database: SQLite only keeps these tests quick."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(metrics="open")


body = disclosure_body


async def scrape(
    client: httpx.AsyncClient, **headers: str
) -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_decisions_latencies_and_refusals_are_counted(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    before = await scrape(client)
    token = order_token(patrons=[DEMO_PATRON], max_uses=1, case=CASE)
    requester = auth(keys["requester"])
    assert (await client.post("/v1/disclosures", json=body(token), headers=requester)).is_success
    spent = await client.post("/v1/disclosures", json=body(token), headers=requester)
    assert spent.json()["reasons"][0]["code"] == "order.exhausted"
    other = await client.post(
        "/v1/disclosures", json=body(order_token(), OTHER_PATRON), headers=requester
    )
    assert other.status_code == 403
    dry = await client.post("/v1/decisions", json=body(order_token()), headers=requester)
    assert dry.json()["decision"]["effect"] == "permit"
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    disclosures = "/v1/disclosures"
    assert delta("bulwark_decisions_total", route=disclosures, effect="permit") == 1
    assert delta("bulwark_decisions_total", route=disclosures, effect="deny") == 2
    assert delta("bulwark_decisions_total", route="/v1/decisions", effect="permit") == 1
    assert delta("bulwark_decision_reasons_total", route=disclosures, reason="scope.patron") == 1
    assert delta("bulwark_order_uses_refused_total", reason="order.exhausted") == 1
    assert delta("bulwark_http_requests_total", method="POST", route=disclosures, status="403") == 2
    latency = "bulwark_http_request_duration_seconds_count"
    assert delta(latency, method="POST", route=disclosures) == 3
    store = "bulwark_store_fetch_duration_seconds_count"
    assert delta(store, category="circulation", outcome="ok") == 1
    # Four decisions, each its own event (they ran one after the other: one commit each).
    assert delta("bulwark_audit_append_duration_seconds_count") == 4
    assert delta("bulwark_audit_batch_events_sum") == 4


async def test_rate_limit_refusals_are_exported(client: httpx.AsyncClient) -> None:
    before = value(await scrape(client), "bulwark_rate_limited_total")
    RATE_LIMITED.inc()
    assert value(await scrape(client), "bulwark_rate_limited_total") == before + 1


async def test_labels_never_carry_patron_ids_case_numbers_paths_or_methods(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order_token(patrons=[DEMO_PATRON], case=CASE)
    requester = auth(keys["requester"])
    await client.post("/v1/disclosures", json=body(token), headers=requester)
    await client.post("/v1/disclosures", json=body(token, OTHER_PATRON), headers=requester)
    await client.get(f"/v1/patrons/{DEMO_PATRON}/{CASE}", headers=requester)  # no such route
    assert (await client.request("BREWCOFFEE", "/healthz")).status_code == 405
    text = (await client.get("/metrics")).text
    for secret in (DEMO_PATRON, OTHER_PATRON, CASE, "/v1/patrons", "BREWCOFFEE", token[:40]):
        assert secret not in text
    assert 'route="<unmatched>"' in text
    assert 'method="other"' in text


async def test_store_failures_are_timed_as_errors() -> None:
    class Failing:
        def fields(self) -> dict[Category, tuple[str, ...]]:
            return {}

        async def fetch(self, *args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable()

        async def check(self) -> None:
            return None

        async def close(self) -> None:
            return None

    store = MeasuredStore(Failing())
    errors = store._error[Category.HOLDS]
    before = errors._sum.get()  # type: ignore[attr-defined]
    with pytest.raises(StoreUnavailable):
        await store.fetch(None, Category.HOLDS, limit=1)  # type: ignore[arg-type]
    assert errors._sum.get() > before  # type: ignore[attr-defined]


class TestAccess:
    @pytest.fixture
    def settings(
        self, make_settings: Callable[..., Settings], request: pytest.FixtureRequest
    ) -> Settings:
        return make_settings(**request.param)

    @pytest.mark.parametrize("settings", [{"metrics": "off"}], indirect=True)
    async def test_off_is_not_served(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/metrics")
        assert r.status_code == 404
        assert r.json()["reasons"][0]["code"] == "request.not_found"

    @pytest.mark.parametrize(
        "settings", [{"metrics": "key", "metrics_key": METRICS_KEY}], indirect=True
    )
    async def test_key_mode_needs_the_metrics_key(
        self, client: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        for headers in ({}, auth("wrong"), auth(keys["admin"]), {"Authorization": METRICS_KEY}):
            r = await client.get("/metrics", headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["reasons"][0]["code"] == "caller.unauthenticated"
        samples = await scrape(client, **auth(METRICS_KEY))
        assert ("bulwark_rate_limited_total", frozenset()) in samples

    @pytest.mark.parametrize("key", [None, "short", "changeme"])
    def test_key_mode_refuses_to_start_without_a_strong_key(
        self, make_settings: Callable[..., Settings], key: str | None
    ) -> None:
        with pytest.raises(ValidationError, match="BULWARK_METRICS_KEY"):
            make_settings(metrics="key", metrics_key=key)


async def test_refusals_of_banded_instruments_are_not_counted_by_reason(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    before = await scrape(client)
    requester = auth(keys["requester"])
    nsl = order_token(patrons=[DEMO_PATRON], instrument="national_security_letter")
    for route in ("/v1/disclosures", "/v1/decisions"):
        r = await client.post(route, json=body(nsl), headers=requester)
        assert r.status_code in (200, 403)
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for route in ("/v1/disclosures", "/v1/decisions"):
        reasons = "bulwark_decision_reasons_total"
        assert delta(reasons, route=route, reason="order.not_court_issued") == 0
        assert delta(reasons, route=route, reason="banded_instrument") == 1
