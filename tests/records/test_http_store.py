"""The HTTP store against a real local upstream: re-narrowing, credentials, paging, faults."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.core.problems import StoreUnavailable
from app.records.categories import Category
from app.records.cursor import CursorInvalid, encode_cursor
from app.records.http_store import HttpRecordsStore
from app.records.mapping import RecordsMapping, parse_mapping
from app.records.obligations import Obligations
from tests.records.fixtures import PERIOD
from tests.records.upstream import PAGED_TOTAL, PATRON, Upstream, running_upstream

C = Category
TOKEN = "records-api-token-from-settings"
FIELDS = {"title": "title", "checkout_date": "checked_out", "due_date": "due"}
#: What an HTTP client may send on its own; anything else would be a leaked credential.
ORDINARY_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def http_mapping(path: str, **options: Any) -> RecordsMapping:
    health = options.pop("health_path", None)
    category = {"path": path, "date_field": "checked_out", "fields": dict(FIELDS), **options}
    document: dict[str, Any] = {"categories": {"circulation": category}}
    if health:
        document["health_path"] = health
    return parse_mapping(document)


def make_store(
    base_url: str,
    client: httpx.AsyncClient,
    path: str = "/patrons/{patron}/loans",
    *,
    token: str | None = TOKEN,
    max_bytes: int = 1 << 20,
    timeout: httpx.Timeout | float = 2.0,
    **options: Any,
) -> HttpRecordsStore:
    return HttpRecordsStore(
        base_url,
        http_mapping(path, **options),
        client,
        token=token,
        max_response_bytes=max_bytes,
        timeout=timeout,
    )


def obligations(patron: str = PATRON, fields: tuple[str, ...] = tuple(FIELDS)) -> Obligations:
    return Obligations(patron, (C.CIRCULATION,), PERIOD, {C.CIRCULATION: fields})


async def fetch(store: HttpRecordsStore, patron: str = PATRON, **kwargs: Any) -> Any:
    kwargs.setdefault("limit", 100)
    return await store.fetch(obligations(patron), C.CIRCULATION, **kwargs)


# ---------------------------------------------------------------- the happy path


async def test_upstream_rows_are_narrowed_again(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    store = make_store(upstream.base_url, client, patron_field="patron")
    page = await fetch(store)
    assert [r["title"] for r in page.records] == ["first day", "march", "last day"]
    assert page.next_cursor is None
    for record in page.records:
        assert set(record) == set(FIELDS)  # no secret_note, card_pin or patron
    assert "UPSTREAM-SECRET" not in json.dumps(page.records)


async def test_without_patron_field_the_path_alone_selects_the_patron(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    page = await fetch(make_store(upstream.base_url, client))
    assert "someone else's" in [r["title"] for r in page.records]


async def test_only_the_settings_token_is_sent(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.requests.clear()
    await fetch(make_store(upstream.base_url, client))
    [seen] = upstream.requests
    assert seen.raw_path == f"/patrons/{PATRON}/loans"
    # A day more on each side of the period; Bulwark narrows by the library's calendar itself.
    assert seen.query == {"from": "2025-12-31", "to": "2026-07-01", "limit": "100"}
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert set(seen.headers) - ORDINARY_HEADERS == {"authorization"}


async def test_no_token_no_authorization(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.requests.clear()
    await fetch(make_store(upstream.base_url, client, token=None))
    assert set(upstream.requests[0].headers) <= ORDINARY_HEADERS


async def test_fields_are_narrowed_by_obligations(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    store = make_store(upstream.base_url, client)
    page = await store.fetch(obligations(fields=("title",)), C.CIRCULATION, limit=100)
    assert page.records
    assert all(list(record) == ["title"] for record in page.records)


@pytest.mark.parametrize(
    ("patron", "raw"),
    [
        ("../../healthz", "%2E%2E%2F%2E%2E%2Fhealthz"),
        ("..", "%2E%2E"),
        ("a/b?c=d#e", "a%2Fb%3Fc%3Dd%23e"),
        ("P 1%", "P%201%25"),
    ],
)
async def test_the_patron_id_is_one_path_segment(
    upstream: Upstream, client: httpx.AsyncClient, patron: str, raw: str
) -> None:
    upstream.requests.clear()
    with contextlib.suppress(StoreUnavailable):  # this upstream routes on decoded paths
        await fetch(make_store(upstream.base_url, client), patron)
    [seen] = upstream.requests
    assert seen.raw_path == f"/patrons/{raw}/loans"  # no dot-segment was resolved away
    assert seen.path == f"/patrons/{patron}/loans"


async def test_unmapped_category_makes_no_request(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.requests.clear()
    store = make_store(upstream.base_url, client)
    ob = Obligations(PATRON, (C.HOLDS,), PERIOD, {C.HOLDS: ("title",)})
    assert (await store.fetch(ob, C.HOLDS, limit=10)).records == []
    assert upstream.requests == []


# ---------------------------------------------------------------- paging


async def _titles_by_page(store: HttpRecordsStore, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await fetch(store, limit=limit, cursor=cursor)
        pages.append([r["title"] for r in page.records])
        cursor = page.next_cursor
        if cursor is None:
            return pages


async def test_upstream_cursor_is_followed(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.requests.clear()
    store = make_store(upstream.base_url, client, "/paged/{patron}/loans", items="loans")
    pages = await _titles_by_page(store, limit=10)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [t for p in pages for t in p] == [f"paged {i:02d}" for i in range(PAGED_TOTAL)]
    assert [s.query.get("cursor") for s in upstream.requests] == [None, "o10", "o20"]


async def test_upstream_ignoring_limit_loses_nothing(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    store = make_store(upstream.base_url, client, "/greedy/{patron}/loans", items="loans")
    pages = await _titles_by_page(store, limit=5)
    assert [len(p) for p in pages] == [5, 2, 5, 2]
    assert [t for p in pages for t in p] == [f"paged {i:02d}" for i in range(14)]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        encode_cursor(C.CIRCULATION, {"k": ["s", "2026-01-01"], "i": ["i", 1]}),  # a SQL one
        encode_cursor(C.CIRCULATION, {"u": 5, "s": 0}),
        encode_cursor(C.CIRCULATION, {"u": None, "s": -1}),
        encode_cursor(C.HOLDS, {"u": None, "s": 0}),
    ],
)
async def test_garbled_cursor_is_refused(
    upstream: Upstream, client: httpx.AsyncClient, cursor: str
) -> None:
    with pytest.raises(CursorInvalid):
        await fetch(make_store(upstream.base_url, client), cursor=cursor)


# ---------------------------------------------------------------- faults


async def _unavailable(store: HttpRecordsStore, patron: str = PATRON) -> str:
    with pytest.raises(StoreUnavailable) as caught:
        await fetch(store, patron)
    detail = caught.value.detail
    assert patron not in detail
    assert "circulation" in detail
    return detail


async def test_timeout(upstream: Upstream, client: httpx.AsyncClient) -> None:
    store = make_store(upstream.base_url, client, "/slow/{patron}", timeout=0.5)
    started = time.monotonic()
    assert "timed out" in await _unavailable(store)
    assert time.monotonic() - started < 2


async def test_a_dripping_body_is_cut_off(upstream: Upstream, client: httpx.AsyncClient) -> None:
    timeout = httpx.Timeout(0.5, connect=0.2)  # every byte arrives within the read timeout
    store = make_store(upstream.base_url, client, "/drip/{patron}", timeout=timeout)
    started = time.monotonic()
    assert "timed out" in await _unavailable(store)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (500, "status 500"),
        (404, "status 404"),
        (401, "status 401"),
        (204, "other than JSON"),  # success, but no body to read records from
    ],
)
async def test_error_status(
    upstream: Upstream, client: httpx.AsyncClient, code: int, expected: str
) -> None:
    store = make_store(upstream.base_url, client, f"/status/{code}/{{patron}}")
    assert expected in await _unavailable(store)


async def test_malformed_json(upstream: Upstream, client: httpx.AsyncClient) -> None:
    store = make_store(upstream.base_url, client, "/malformed/{patron}")
    assert "other than JSON" in await _unavailable(store)


@pytest.mark.parametrize(
    ("kind", "items"),
    [
        ("object", None),
        ("scalars", None),
        ("missing", None),
        ("nested", None),
        ("nodate", None),
        ("scalars", "loans"),
        ("itemsnotlist", "loans"),
        ("badcursor", "loans"),
    ],
)
async def test_wrong_shape(
    upstream: Upstream, client: httpx.AsyncClient, kind: str, items: str | None
) -> None:
    options = {"items": items} if items else {}
    store = make_store(upstream.base_url, client, f"/shape/{kind}/{{patron}}", **options)
    detail = await _unavailable(store)
    assert "malformed data" in detail
    assert "UPSTREAM-SECRET" not in detail


@pytest.mark.parametrize("kind", ["baddate", "numberdate"])
async def test_an_unplaceable_date_fails_closed(
    upstream: Upstream, client: httpx.AsyncClient, kind: str
) -> None:
    store = make_store(upstream.base_url, client, f"/shape/{kind}/{{patron}}")
    detail = await _unavailable(store)
    assert "cannot be placed in time" in detail
    assert "UPSTREAM-SECRET" not in detail


@pytest.mark.parametrize("path", ["/big/{patron}", "/big-stream/{patron}"])
async def test_oversized_body(upstream: Upstream, client: httpx.AsyncClient, path: str) -> None:
    store = make_store(upstream.base_url, client, path, max_bytes=4096)
    assert "more than 4096 bytes" in await _unavailable(store)


async def test_redirect_is_not_followed(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.requests.clear()
    store = make_store(upstream.base_url, client, "/redirect/{patron}")
    assert "status 302" in await _unavailable(store)
    assert [s.raw_path for s in upstream.requests] == [f"/redirect/{PATRON}"]


async def test_connection_refused(client: httpx.AsyncClient, closed_port: int) -> None:
    store = make_store(f"http://127.0.0.1:{closed_port}", client)
    assert "could not be reached" in await _unavailable(store)


# ---------------------------------------------------------------- health


async def test_check_and_validate(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.requests.clear()
    store = make_store(upstream.base_url, client)
    await store.check()
    await store.validate()
    assert [s.raw_path for s in upstream.requests] == ["/healthz", "/healthz"]
    assert upstream.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_check_fails_on_error_status(upstream: Upstream, client: httpx.AsyncClient) -> None:
    store = make_store(upstream.base_url, client, health_path="/status/503/x")
    with pytest.raises(StoreUnavailable):
        await store.check()


async def test_check_fails_when_unreachable(client: httpx.AsyncClient, closed_port: int) -> None:
    with pytest.raises(StoreUnavailable):
        await make_store(f"http://127.0.0.1:{closed_port}", client).check()
