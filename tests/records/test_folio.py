"""The FOLIO store kind against the FOLIO fake: narrowing, logins, paging, every fault.

The library is in America/Chicago (west of UTC; clocks change on 2026-03-08) and the period
is 2026-01-01 … 2026-03-31. The expected records are computed from the fake's raw data by an
independent rule (the patron's UUID, the instant's calendar date in Chicago), not by the store.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.core.config import Settings
from app.core.problems import StoreUnavailable
from app.records.categories import Category
from app.records.cursor import CursorInvalid, encode_cursor
from app.records.factory import build_store
from app.records.folio_store import (
    FolioCredentials,
    FolioRecordsStore,
    cql_escape,
    event_query,
)
from app.records.mapping import MappingError, RecordsMapping, load_mapping, parse_mapping
from app.records.obligations import Obligations, Period
from app.records.sql_schema import StoreLoginError
from tests.records.folio_fake import (
    PASSWORD,
    TENANT,
    USERNAME,
    Folio,
    TenantData,
    cql_filter,
    running_folio,
)

C = Category
HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "folio"
ZONE = ZoneInfo("America/Chicago")
PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 3, 31))

BARCODE = "X0042a"
UA = "5f1c4a52-8a0e-4c0b-9b41-7d2f0a6e1001"
UB = "5f1c4a52-8a0e-4c0b-9b41-7d2f0a6e1002"  # barcode differs only in case
UC = "5f1c4a52-8a0e-4c0b-9b41-7d2f0a6e1003"  # a barcode with CQL's masking characters
STAFF_ONLY = ("PIN-9921", "staff-only note", "ext-sys-77")


def _user(uid: str, barcode: str, surname: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": uid,
        "username": f"u{uid[-4:]}",
        "barcode": barcode,
        "active": True,
        "patronGroup": "3684a786-6671-4268-8ed0-9db82ebca60b",
        "externalSystemId": "ext-sys-77",
        "personal": {
            "lastName": surname,
            "firstName": "Kalo",
            "email": f"{surname.lower()}@example.invalid",
            "phone": "+1-555-0101",
            "addresses": [{"addressLine1": "12 Tash Lane (fictional)", "addressTypeId": uid}],
        },
        "enrollmentDate": "2025-09-01T05:00:00.000+00:00",
        "expirationDate": "2027-09-01T05:00:00.000+00:00",
        "customFields": {"pin": "PIN-9921"},
        "metadata": {"createdDate": "2025-09-01T05:00:00.000+00:00"},
        **extra,
    }


def _loan(n: int, user: str | None, when: str, title: str) -> dict[str, Any]:
    loan: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "itemId": f"10000000-0000-4000-8000-{n:012d}",
        "item": {"title": title, "barcode": f"B{n:04d}", "callNumber": "QA76 (fictional)"},
        "loanDate": when,
        "dueDate": "2026-06-30T04:59:59.000+00:00",
        "status": {"name": "Open"},
        "action": "checkedout",
        "renewalCount": 0,
        "borrower": {"barcode": "leaks-if-mapped"},
    }
    if user is not None:
        loan["userId"] = user
    return loan


LOANS = [
    _loan(1, UA, "2026-01-01T06:00:00.000+00:00", "First local instant"),  # 00:00 CST
    _loan(2, UA, "2026-01-01T05:59:59.000+00:00", "Last second of 2025 in Chicago"),
    _loan(3, UA, "2026-03-31T23:59:59.000-05:00", "Last local instant, stored with CDT"),
    _loan(4, UA, "2026-04-01T05:00:00.000+00:00", "First instant of April in Chicago"),
    _loan(5, UA, "2026-03-08T07:30:00.000+00:00", "01:30 CST, before the clocks change"),
    _loan(6, UA, "2026-03-08T08:30:00.000+00:00", "03:30 CDT, after the clocks change"),
    _loan(7, None, "2026-02-02T15:00:00.000+00:00", "Anonymized loan"),
    _loan(8, UB, "2026-02-03T15:00:00.000+00:00", "The case twin's loan"),
    _loan(9, UC, "2026-02-04T15:00:00.000+00:00", "The wildcard patron's loan"),
    _loan(10, UA, "2025-12-30T12:00:00.000+00:00", "Well before"),
    *(
        _loan(100 + i, UA, f"2026-02-{1 + i:02d}T16:00:00.000+00:00", f"February {i}")
        for i in range(14)
    ),
]

REQUESTS = [
    {
        "id": "20000000-0000-4000-8000-000000000001",
        "requestType": "Hold",
        "requestLevel": "Item",
        "requestDate": "2026-02-10T18:00:00.000+00:00",
        "requesterId": UA,
        "status": "Open - Not yet filled",
        "instance": {"title": "Salt Almanac (fictional)"},
        "item": {"barcode": "B0200"},
        "pickupServicePoint": {"name": "Circ Desk 1"},
        "patronComments": "staff-only note",
        "fulfilmentPreference": "Hold Shelf",
    },
    {
        "id": "20000000-0000-4000-8000-000000000002",
        "requestType": "Recall",
        "requestLevel": "Item",
        "requestDate": "2026-04-01T04:30:00.000+00:00",  # 23:30 CDT on 31 March
        "requesterId": UA,
        "status": "Closed - Filled",
        "instance": {"title": "Paper Atlas (fictional)"},
        "fulfilmentPreference": "Hold Shelf",
    },
    {
        "id": "20000000-0000-4000-8000-000000000003",
        "requestType": "Page",
        "requestLevel": "Item",
        "requestDate": "2026-02-11T18:00:00.000+00:00",
        "requesterId": UB,
        "status": "Open - Awaiting pickup",
        "instance": {"title": "Someone else's request"},
        "fulfilmentPreference": "Hold Shelf",
    },
]


def tenant_data(**changes: Any) -> TenantData:
    data = TenantData(
        users=[
            _user(UA, BARCODE, "Velquidor"),
            _user(UB, BARCODE.lower(), "Fensul"),
            _user(UC, 'X*"?\\1', "Orrin"),
        ],
        loans=copy.deepcopy(LOANS),
        requests=copy.deepcopy(REQUESTS),
    )
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def expected(
    records: list[dict[str, Any]], patron_field: str, uid: str, date_field: str
) -> list[str]:
    """The oracle: ids of ``uid``'s records whose Chicago calendar date is in PERIOD, in order."""
    chosen = []
    for record in records:
        when = dt.datetime.fromisoformat(record[date_field]).astimezone(ZONE).date()
        if record.get(patron_field) == uid and PERIOD.start <= when <= PERIOD.end:
            chosen.append((record[date_field], record["id"]))
    chosen.sort(key=lambda pair: dt.datetime.fromisoformat(pair[0]))
    return [record_id for _, record_id in chosen]


@pytest.fixture
def folio() -> Iterator[Folio]:
    with running_folio(**{TENANT: tenant_data()}) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def example() -> RecordsMapping:
    return load_mapping(EXAMPLE / "mapping.toml")


def make_store(
    folio: Folio,
    client: httpx.AsyncClient,
    *,
    mapping: RecordsMapping | None = None,
    tenant: str = TENANT,
    password: str = PASSWORD,
    timeout: float = 2.0,
    base_url: str | None = None,
) -> FolioRecordsStore:
    return FolioRecordsStore(
        base_url or folio.base_url,
        mapping or example(),
        client,
        credentials=FolioCredentials(tenant, USERNAME, password),
        zone=ZONE,
        max_response_bytes=1 << 20,
        timeout=timeout,
    )


def obligations(patron: str = BARCODE, mapping: RecordsMapping | None = None) -> Obligations:
    m = mapping or example()
    return Obligations(patron, tuple(m.categories), PERIOD, m.fields())


def with_ids(mapping_fields: dict[str, str]) -> RecordsMapping:
    """The example's circulation with the record id released too (to compare with the oracle)."""
    return parse_mapping(
        {
            "kind": "folio",
            "categories": {
                "circulation": {"source": "loans", "fields": {"id": "id", **mapping_fields}},
                "holds": {"source": "requests", "fields": {"id": "id", "title": "instance.title"}},
            },
        }
    )


async def fetch_all(
    store: FolioRecordsStore, category: Category, ob: Obligations, limit: int
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await store.fetch(ob, category, limit=limit, cursor=cursor)
        records.extend(page.records)
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


# ---------------------------------------------------------------- exactly the raw data's records


@pytest.mark.parametrize("limit", [1, 3, 10, 100])
async def test_loans_and_requests_are_exactly_the_oracles(
    folio: Folio, client: httpx.AsyncClient, limit: int
) -> None:
    mapping = with_ids({"checkout_date": "loanDate"})
    store = make_store(folio, client, mapping=mapping)
    ob = obligations(mapping=mapping)
    loans = await fetch_all(store, C.CIRCULATION, ob, limit)
    assert [r["id"] for r in loans] == expected(LOANS, "userId", UA, "loanDate")
    holds = await fetch_all(store, C.HOLDS, ob, limit)
    assert [r["id"] for r in holds] == expected(REQUESTS, "requesterId", UA, "requestDate")
    assert len(loans) == 18 and len(holds) == 2


async def test_the_edges_in_the_librarys_zone(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    titles = [r["title"] for r in await fetch_all(store, C.CIRCULATION, obligations(), 100)]
    assert titles[0] == "First local instant"
    assert titles[-1] == "Last local instant, stored with CDT"
    assert "01:30 CST, before the clocks change" in titles
    assert "03:30 CDT, after the clocks change" in titles
    for outside in ("Last second of 2025 in Chicago", "First instant of April in Chicago"):
        assert outside not in titles
    holds = await fetch_all(store, C.HOLDS, obligations(), 100)
    assert [h["title"] for h in holds] == ["Salt Almanac (fictional)", "Paper Atlas (fictional)"]


async def test_only_mapped_fields_leave(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    ob = obligations()
    out = {c: await fetch_all(store, c, ob, 100) for c in ob.categories}
    [patron] = out[C.REGISTRATION]
    assert patron["barcode"] == BARCODE and patron["surname"] == "Velquidor"
    assert set(patron) == set(example().categories[C.REGISTRATION].fields)
    assert out[C.CIRCULATION][0]["return_date"] is None  # absent in FOLIO: null
    text = json.dumps(out)
    for secret in (*STAFF_ONLY, "leaks-if-mapped", "Tash Lane", UA):
        assert secret not in text
    assert "Someone else" not in text and "case twin" not in text and "Anonymized" not in text


async def test_barcode_compared_exactly_though_cql_ignores_case(
    folio: Folio, client: httpx.AsyncClient
) -> None:
    store = make_store(folio, client)
    # FOLIO's `==` finds both X0042a and x0042a; only the exact one is the patron.
    [twin] = (await store.fetch(obligations(BARCODE.lower()), C.REGISTRATION, limit=5)).records
    assert twin["surname"] == "Fensul"
    loans = await fetch_all(store, C.CIRCULATION, obligations(BARCODE.lower()), 100)
    assert [r["title"] for r in loans] == ["The case twin's loan"]
    assert (await store.fetch(obligations("X0042A"), C.REGISTRATION, limit=5)).records == []


@pytest.mark.parametrize("barcode", ["*", "X*", "X0042?", "X00*a", '" or barcode=="X0042a', "\\"])
async def test_cql_masking_characters_match_only_themselves(
    folio: Folio, client: httpx.AsyncClient, barcode: str
) -> None:
    store = make_store(folio, client)
    for category in (C.REGISTRATION, C.CIRCULATION, C.HOLDS):
        assert (await store.fetch(obligations(barcode), category, limit=100)).records == []
    for seen in folio.data_calls():
        if seen.path == "/users":
            assert seen.query["query"] == (
                f'barcode=="{cql_escape(barcode)}" sortBy id/sort.ascending'
            )


async def test_a_barcode_with_every_special_character_is_found(
    folio: Folio, client: httpx.AsyncClient
) -> None:
    store = make_store(folio, client)
    records = (await store.fetch(obligations('X*"?\\1'), C.CIRCULATION, limit=10)).records
    assert [r["title"] for r in records] == ["The wildcard patron's loan"]


def test_cql_escape() -> None:
    assert cql_escape('a*b?c"d\\e^f') == 'a\\*b\\?c\\"d\\\\e\\^f'
    # The fake's CQL agrees: an escaped value matches only itself.
    rows = [{"b": "a*b"}, {"b": "aXb"}, {"b": "A*B"}]
    assert cql_filter(rows, f'b=="{cql_escape("a*b")}"') == [{"b": "a*b"}, {"b": "A*B"}]


def test_event_query_is_scoped_and_widened() -> None:
    query = event_query("userId", UA, "loanDate", PERIOD)
    assert query == (
        f'userId=="{UA}" and loanDate>="2025-12-30" and loanDate<"2026-04-03"'
        " sortBy loanDate/sort.ascending id/sort.ascending"
    )


# ---------------------------------------------------------------- what FOLIO is sent


async def test_request_log(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    ob = obligations()
    for category in ob.categories:
        await fetch_all(store, category, ob, 3)
    # The tenant on every call; the token on every call but the login; one login.
    assert all(s.headers.get("x-okapi-tenant") == TENANT for s in folio.seen)
    [login] = folio.logins()
    assert login.path == "/authn/login-with-expiry"
    assert "x-okapi-token" not in login.headers and "cookie" not in login.headers
    assert json.loads(login.body) == {"username": USERNAME, "password": PASSWORD}
    token = next(iter(folio.tokens))
    for seen in folio.data_calls():
        assert seen.method == "GET"
        assert seen.headers["x-okapi-token"] == token
        assert "cookie" not in seen.headers  # FOLIO's cookies are never sent back
        # Never unscoped, never FOLIO's default page size.
        assert "query" in seen.query and "limit" in seen.query
        if seen.path == "/users":
            assert seen.query["query"].startswith("barcode==")
        else:
            field = "userId" if seen.path.endswith("loans") else "requesterId"
            assert seen.query["query"].startswith(f'{field}=="{UA}" and ')
            assert " sortBy " in seen.query["query"]
    offsets = [int(s.query["offset"]) for s in folio.data_calls() if s.path.endswith("loans")]
    assert offsets == sorted(offsets) and offsets[0] == 0 and max(offsets) > 0
    assert not client.cookies  # the shared client keeps none of FOLIO's cookies


async def test_one_login_per_token_lifetime(folio: Folio, client: httpx.AsyncClient) -> None:
    folio.ttl = 1.0 + 10.0  # the store renews 10 s early: this token lives about a second
    store = make_store(folio, client)
    await store.fetch(obligations(), C.CIRCULATION, limit=5)
    await store.fetch(obligations(), C.HOLDS, limit=5)
    assert len(folio.logins()) == 1
    await asyncio.sleep(1.2)
    await store.fetch(obligations(), C.HOLDS, limit=5)
    assert len(folio.logins()) == 2


async def test_concurrent_fetches_share_one_login(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    await asyncio.gather(*(store.fetch(obligations(), C.HOLDS, limit=5) for _ in range(8)))
    assert len(folio.logins()) == 1


async def test_expired_token_mid_run_logs_in_once_more(
    folio: Folio, client: httpx.AsyncClient
) -> None:
    store = make_store(folio, client)
    first = await store.fetch(obligations(), C.CIRCULATION, limit=3)
    old = next(iter(folio.tokens))
    folio.expire_tokens()
    second = await store.fetch(obligations(), C.CIRCULATION, limit=3, cursor=first.next_cursor)
    assert second.records and second.records != first.records
    logins = folio.logins()
    assert len(logins) == 2
    assert "x-okapi-token" not in logins[1].headers and "cookie" not in logins[1].headers
    # The call refused with the expired token, then the same call with the new one.
    at = next(i for i, seen in enumerate(folio.seen) if seen is logins[1])
    after = folio.seen[at + 1 :]
    assert after[0].headers["x-okapi-token"] != old


async def test_legacy_login_where_expiring_login_is_absent(client: httpx.AsyncClient) -> None:
    with running_folio(**{TENANT: tenant_data(expiring_login=False)}) as folio:
        store = make_store(folio, client)
        records = await fetch_all(store, C.HOLDS, obligations(), 10)
        await fetch_all(store, C.CIRCULATION, obligations(), 10)
        assert len(records) == 2
        paths = [s.path for s in folio.logins()]
        assert paths == ["/authn/login-with-expiry", "/authn/login"]  # tried once, then legacy


async def test_token_refused_twice_fails_closed(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    folio.refuse_tokens = True
    with pytest.raises(StoreUnavailable):
        await store.fetch(obligations(), C.CIRCULATION, limit=5)
    assert len(folio.logins()) == 2  # the first login, one re-login, no more
    assert len(folio.data_calls()) == 2  # two attempts, no third


# ---------------------------------------------------------------- faults


async def _refused(store: FolioRecordsStore, category: Category = C.CIRCULATION) -> str:
    with pytest.raises(StoreUnavailable) as caught:
        await store.fetch(obligations(), category, limit=5)
    return str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors(folio: Folio, client: httpx.AsyncClient, status: int) -> None:
    folio.status["/circulation/loans"] = status
    message = await _refused(make_store(folio, client))
    assert f"status {status}" in message and BARCODE not in message


async def test_login_server_error(folio: Folio, client: httpx.AsyncClient) -> None:
    folio.status["/authn/login-with-expiry"] = 500
    assert "login answered with status 500" in await _refused(make_store(folio, client))


async def test_wrong_password(folio: Folio, client: httpx.AsyncClient) -> None:
    assert "status 422" in await _refused(make_store(folio, client, password="wrong"))


async def test_unknown_tenant(folio: Folio, client: httpx.AsyncClient) -> None:
    message = await _refused(make_store(folio, client, tenant="nosuch"))
    assert "status 400" in message
    assert {s.headers["x-okapi-tenant"] for s in folio.seen} == {"nosuch"}


async def test_slow_answer(folio: Folio, client: httpx.AsyncClient) -> None:
    folio.delay = 3.0
    assert "timed out" in await _refused(make_store(folio, client, timeout=0.5))


async def test_malformed_json(folio: Folio, client: httpx.AsyncClient) -> None:
    folio.malformed = True
    assert "other than JSON" in await _refused(make_store(folio, client))


async def test_connection_refused(client: httpx.AsyncClient, closed_port: int) -> None:
    with running_folio(**{TENANT: tenant_data()}) as folio:
        store = make_store(folio, client, base_url=f"http://127.0.0.1:{closed_port}")
        assert "could not be reached" in await _refused(store)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"totalRecords": None}, "totalRecords"),
        ({"nested": True}, "field 'item.title'"),
        ({"baddate": True}, "cannot be placed in time"),
    ],
)
async def test_wrong_shapes(
    folio: Folio, client: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    loans = folio.tenants[TENANT].loans
    if "nested" in change:
        loans[0]["item"]["title"] = {"hidden": "staff-only note"}
    if "baddate" in change:
        loans[0]["loanDate"] = "2026-01-01Tlast tuesday"
    if "totalRecords" in change:
        folio.malformed = False
        store = make_store(folio, client)
        original = store._get

        async def no_total(path: str, params: Any) -> dict[str, Any]:
            body = await original(path, params)
            body.pop("totalRecords", None)
            return body

        store._get = no_total  # type: ignore[method-assign]
        assert message in await _refused(store)
        return
    assert message in await _refused(make_store(folio, client))


async def test_garbled_or_foreign_cursor(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    for cursor in (
        "garbage",
        encode_cursor(C.HOLDS, {"o": 3}),
        encode_cursor(C.CIRCULATION, {"o": -1}),
    ):
        with pytest.raises(CursorInvalid):
            await store.fetch(obligations(), C.CIRCULATION, limit=5, cursor=cursor)


async def test_check(folio: Folio, client: httpx.AsyncClient) -> None:
    store = make_store(folio, client)
    await store.validate()
    [seen] = folio.data_calls()
    assert seen.query["query"] == 'id=="00000000-0000-0000-0000-000000000000"'
    folio.status["/users"] = 500
    with pytest.raises(StoreUnavailable):
        await store.check()


async def test_secrets_never_logged(
    folio: Folio, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = make_store(folio, client)
    await store.fetch(obligations(), C.CIRCULATION, limit=5)
    folio.expire_tokens()
    folio.status["/circulation/requests"] = 500
    with pytest.raises(StoreUnavailable):
        await store.fetch(obligations(), C.HOLDS, limit=5)
    text = caplog.text + repr(store.__dict__.get("_credentials"))
    for secret in (PASSWORD, *folio.tokens, BARCODE, UA):
        assert secret not in text


# ---------------------------------------------------------------- registry and settings


def _settings(tmp_path: Path, **values: Any) -> Settings:
    values.setdefault("records_url", "https://folio.example/okapi")
    values.setdefault("records_mapping", EXAMPLE / "mapping.toml")
    return Settings(data_dir=tmp_path, environment="test", **values)


@pytest.mark.parametrize(
    ("missing", "name"),
    [
        ("folio_tenant", "BULWARK_FOLIO_TENANT"),
        ("folio_username", "BULWARK_FOLIO_USERNAME"),
        ("folio_password", "BULWARK_FOLIO_PASSWORD"),
    ],
)
async def test_settings_are_required(
    tmp_path: Path, client: httpx.AsyncClient, missing: str, name: str
) -> None:
    values = {"folio_tenant": TENANT, "folio_username": USERNAME, "folio_password": PASSWORD}
    values.pop(missing)
    with pytest.raises(MappingError, match=name):
        build_store(_settings(tmp_path, **values), example(), client)


async def test_password_from_a_file(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "folio-password"
    secret_file.write_text(PASSWORD + "\n")
    monkeypatch.setenv("BULWARK_FOLIO_PASSWORD_FILE", str(secret_file))
    settings = _settings(tmp_path, folio_tenant=TENANT, folio_username=USERNAME)
    store = build_store(settings, example(), client)
    assert isinstance(store, FolioRecordsStore)
    assert store._credentials.password == PASSWORD
    assert PASSWORD not in repr(store._credentials) and PASSWORD not in repr(settings)


async def test_a_folio_mapping_needs_a_gateway_url(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = _settings(tmp_path, records_url="postgresql://db/x", folio_tenant=TENANT)
    with pytest.raises(MappingError, match="describes a FOLIO store"):
        build_store(settings, example(), client)


@pytest.mark.parametrize(
    ("category", "message"),
    [
        ({"source": "holdings", "fields": {"t": "title"}}, "categories.holds.source"),
        ({"source": "loans", "fields": {"t": "item..title"}}, "categories.holds.fields.t"),
        ({"source": "loans", "fields": {"t": "a.b.c.d.e"}}, "categories.holds.fields.t"),
        ({"source": "loans", "table": "x", "fields": {"t": "title"}}, "table: unknown key"),
        ({"source": "loans", "fields": {}}, "categories.holds.fields"),
    ],
)
def test_folio_sections_are_validated(category: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=message.replace(".", r"\.")):
        parse_mapping({"kind": "folio", "categories": {"holds": category}})


def test_unknown_kind_and_misplaced_keys() -> None:
    with pytest.raises(MappingError, match="not a store kind"):
        parse_mapping({"kind": "sirsi", "categories": {"holds": {"fields": {"a": "b"}}}})
    folio = {"kind": "folio", "categories": {"holds": {"source": "loans", "fields": {"a": "b"}}}}
    with pytest.raises(MappingError, match="health_path applies only to a http"):
        parse_mapping({**folio, "health_path": "/x"})


async def test_many_records_in_the_widened_days_are_read_past(
    folio: Folio, client: httpx.AsyncClient
) -> None:
    # 130 loans on the evening of 31 December in Chicago: inside the widened CQL range (and
    # dated 1 January in UTC), outside the period. They are read and dropped, page by page.
    extra = [
        _loan(1000 + i, UA, f"2026-01-01T0{i % 5}:{i % 60:02d}:00.000+00:00", f"NYE {i}")
        for i in range(130)
    ]
    folio.tenants[TENANT].loans[:0] = extra
    store = make_store(folio, client)
    first = await store.fetch(obligations(), C.CIRCULATION, limit=1)
    assert [r["title"] for r in first.records] == ["First local instant"]
    loans = [s for s in folio.data_calls() if s.path == "/circulation/loans"]
    assert len(loans) == 3  # pages of 50 over 131 candidates, never FOLIO's default of 10
    assert all(s.query["limit"] == "50" for s in loans)
    rest = await fetch_all(store, C.CIRCULATION, obligations(), 100)
    assert len(rest) == 18


async def test_the_exact_barcode_is_found_among_many_case_variants(
    folio: Folio, client: httpx.AsyncClient
) -> None:
    # FOLIO's `==` answers every case variant of "KaloTash" (there are 256); the exact one
    # sorts last by id and lies past the first pages of users.
    word = "KaloTash"
    variants = {
        "".join(c.upper() if (n >> k) & 1 else c.lower() for k, c in enumerate(word))
        for n in range(256)
    } - {word}
    users = [
        _user(f"{i:08x}-8a0e-4c0b-9b41-7d2f0a6e1001", v, f"Variant{i}")
        for i, v in enumerate(sorted(variants)[:60])
    ]
    users.append(_user("ffffffff-8a0e-4c0b-9b41-7d2f0a6e1001", word, "Exact"))
    folio.tenants[TENANT].users[:0] = users
    store = make_store(folio, client)
    [patron] = (await store.fetch(obligations(word), C.REGISTRATION, limit=5)).records
    assert patron["surname"] == "Exact"
    lookups = [s for s in folio.data_calls() if s.path == "/users"]
    assert [s.query["offset"] for s in lookups] == ["0", "20", "40", "60"]


async def test_start_up_names_a_refused_login(folio: Folio, client: httpx.AsyncClient) -> None:
    with pytest.raises(StoreLoginError, match=r"BULWARK_FOLIO_USERNAME.*BULWARK_FOLIO_PASSWORD"):
        await make_store(folio, client, password="wrong").validate()
    with pytest.raises(StoreLoginError, match=r"tenant 'nosuch' \(status 400\).*TENANT"):
        await make_store(folio, client, tenant="nosuch").validate()
    folio.status["/authn/login-with-expiry"] = 502
    with pytest.raises(StoreUnavailable):
        await make_store(folio, client).validate()
    text = "".join(s.body.decode() for s in folio.seen)
    assert text.count(PASSWORD) == 2  # sent to the login, twice; never anywhere else
