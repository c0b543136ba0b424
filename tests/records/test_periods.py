"""The library's calendar at a period's edges, for every kind of stored time, on every store.

Each zone's period starts and ends on a day the clocks change (America/Chicago, west of UTC:
8 March and 1 November 2026; Europe/Berlin, east of UTC: 29 March and 25 October 2026). Every
table holds, for that zone's patron, a row one second before and one at the local midnight
that opens the period, and one a second before and one at the midnight that closes it; only
the middle two may ever be released. The same rows are read as a DATE, as a wall-clock
datetime (in the library's zone, and written in UTC with the mapping's ``time_zone``), and as
an instant, on SQLite, PostgreSQL and MariaDB and through the HTTP store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from app.core.calendar import UTC, LibraryClock, local_midnight
from app.core.database import create_engine
from app.records.base import StoreValueMalformed
from app.records.categories import Category
from app.records.http_store import HttpRecordsStore
from app.records.mapping import MappingError, parse_mapping
from app.records.obligations import Obligations, Period
from app.records.periods import MalformedTime, TimeFrame, TimeKind, parse_iso
from app.records.sql_store import SqlRecordsStore
from tests.databases import mariadb_database, postgres_database

C = Category
ZONES = {
    "chicago": ("America/Chicago", Period(dt.date(2026, 3, 8), dt.date(2026, 11, 1))),
    "berlin": ("Europe/Berlin", Period(dt.date(2026, 3, 29), dt.date(2026, 10, 25))),
}
SECOND = dt.timedelta(seconds=1)
#: What each row is, by its id within the patron's rows; rows 2 and 3 are in the period.
LABELS = {1: "before start", 2: "at start", 3: "before end", 4: "at end"}
IN_PERIOD = [2, 3]


def instants(zone: str, period: Period) -> list[dt.datetime]:
    """The four edge instants (UTC) of ``period`` in ``zone``."""
    tz = ZoneInfo(zone)
    start = local_midnight(period.start, tz)
    end = local_midnight(period.end + dt.timedelta(days=1), tz)
    return [start - SECOND, start, end - SECOND, end]


def days(period: Period) -> list[dt.date]:
    one = dt.timedelta(days=1)
    return [period.start - one, period.start, period.end, period.end + one]


def test_the_edges_are_where_the_clocks_say() -> None:
    chicago = instants(*ZONES["chicago"])
    assert [i.isoformat() for i in chicago] == [
        "2026-03-08T05:59:59+00:00",
        "2026-03-08T06:00:00+00:00",  # CST, -06:00, on the morning the clocks go forward
        "2026-11-02T05:59:59+00:00",
        "2026-11-02T06:00:00+00:00",  # CST again after the clocks went back on 1 November
    ]
    berlin = instants(*ZONES["berlin"])
    assert [i.isoformat() for i in berlin] == [
        "2026-03-28T22:59:59+00:00",
        "2026-03-28T23:00:00+00:00",  # CET, +01:00
        "2026-10-25T22:59:59+00:00",
        "2026-10-25T23:00:00+00:00",  # CET again after the 25-hour day
    ]
    clock = LibraryClock.named("America/Chicago")
    assert clock.bounds(dt.date(2026, 3, 8), dt.date(2026, 3, 8)).end - clock.midnight(
        dt.date(2026, 3, 8)
    ) == dt.timedelta(hours=23)
    assert clock.bounds(dt.date(2026, 11, 1), dt.date(2026, 11, 1)).end - clock.midnight(
        dt.date(2026, 11, 1)
    ) == dt.timedelta(hours=25)


def test_a_day_that_skips_midnight_starts_at_the_jump() -> None:
    # Chile moves its clocks forward at 00:00: 6 September 2026 begins at 01:00 local.
    start = LibraryClock.named("America/Santiago").midnight(dt.date(2026, 9, 6))
    assert start.astimezone(ZoneInfo("America/Santiago")).isoformat() == (
        "2026-09-06T01:00:00-03:00"
    )
    assert (start - SECOND).astimezone(ZoneInfo("America/Santiago")).date() == dt.date(2026, 9, 5)


@pytest.mark.parametrize("zone", ["chicago", "berlin"])
def test_the_frame_judges_iso_text_of_each_kind(zone: str) -> None:
    name, period = ZONES[zone]
    tz = ZoneInfo(name)
    frame = TimeFrame.of(LibraryClock.named(name))
    in_utc = TimeFrame.of(LibraryClock.named(name), ZoneInfo("UTC"))
    for i, instant in enumerate(instants(name, period), start=1):
        expected = i in IN_PERIOD
        assert frame.event_in(instant.isoformat(), period) is expected, LABELS[i]
        assert frame.event_in(instant.astimezone(tz).isoformat(), period) is expected
        assert frame.event_in(instant.isoformat().replace("+00:00", "Z"), period) is expected
        wall = instant.astimezone(tz).replace(tzinfo=None).isoformat()
        assert frame.event_in(wall, period) is expected, LABELS[i]
        utc_wall = instant.replace(tzinfo=None).isoformat()
        assert in_utc.event_in(utc_wall, period) is expected, LABELS[i]
    for i, day in enumerate(days(period), start=1):
        assert frame.event_in(day.isoformat(), period) is (i in IN_PERIOD)


def test_unplaceable_values_are_refused() -> None:
    frame = TimeFrame.of(LibraryClock.named("America/Chicago"))
    for bad in ["", "yesterday", "2026-13-01", "1 March 2026", "20260301", "2026-03-01T25:00"]:
        with pytest.raises(MalformedTime):
            frame.event_in(bad, ZONES["chicago"][1])
    with pytest.raises(MalformedTime):
        frame.event_in(1772000000, ZONES["chicago"][1])
    assert isinstance(parse_iso("2026-03-01"), dt.date)


def test_states_span_the_period() -> None:
    frame = TimeFrame.of(LibraryClock.named("America/Chicago"))
    period = Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert frame.state_in("2019-05-01", "2027-05-01", period)  # enrolled long before
    assert frame.state_in("2019-05-01", None, period)  # never expires
    assert frame.state_in("2024-12-31", None, period)  # enrolled on the last day
    assert frame.state_in("2019-05-01", "2024-01-01", period)  # expired on the first day
    assert not frame.state_in("2019-05-01", "2023-12-31", period)  # expired the day before
    assert not frame.state_in("2025-01-01", None, period)  # enrolled after
    assert not frame.state_in(None, None, period)  # never enrolled: not placed


# --------------------------------------------------------------------------- SQL stores

metadata = sa.MetaData()
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


def _tables(backend: str) -> dict[str, sa.Table]:
    md = sa.MetaData()
    if backend == "postgres":
        instant_type: Any = sa.DateTime(timezone=True)
    elif backend == "mariadb":
        from sqlalchemy.dialects import mysql

        instant_type = mysql.TIMESTAMP()
    else:
        instant_type = sa.Text()

    def table(name: str, kind: Any) -> sa.Table:
        return sa.Table(
            name,
            md,
            sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("patron", sa.String(32), nullable=False),
            sa.Column("n", sa.Integer, nullable=False),
            sa.Column("at", kind, nullable=True),
        )

    tables = {
        "date": table("ev_date", sa.Date),
        "local": table("ev_local", sa.DateTime),
        "local_utc": table("ev_local_utc", sa.DateTime),
        "instant": table("ev_instant", instant_type),
    }
    tables["state"] = sa.Table(
        "enrolments",
        md,
        sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("patron", sa.String(32), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("enrolled", sa.Date, nullable=True),
        sa.Column("expires", sa.Date, nullable=True),
    )
    return tables


def _instant_value(backend: str, instant: dt.datetime, n: int) -> Any:
    if backend == "postgres":
        return instant
    if backend == "mariadb":
        return instant.replace(tzinfo=None)  # written in the session zone, set to UTC
    # SQLite: ISO text, some in UTC ('Z'), some with the local offset.
    return instant.isoformat().replace("+00:00", "Z") if n % 2 else instant.isoformat()


STATES = [
    # (n, enrolled, expires, in a 2024 period)
    (1, "2019-05-01", "2027-05-01", True),
    (2, "2019-05-01", None, True),
    (3, "2024-12-31", "2026-12-31", True),
    (4, "2019-05-01", "2024-01-01", True),
    (5, "2019-05-01", "2023-12-31", False),
    (6, "2025-01-01", "2028-01-01", False),
    (7, None, None, False),
]


async def _seed(url: str, backend: str) -> None:
    tables = _tables(backend)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if backend == "mariadb":
                await conn.exec_driver_sql("SET time_zone = '+00:00'")
            await conn.run_sync(tables["date"].metadata.create_all)
            row_id = 0
            for patron, (zone, period) in ZONES.items():
                tz = ZoneInfo(zone)
                edges = instants(zone, period)
                for n, (instant, day) in enumerate(zip(edges, days(period), strict=True), 1):
                    row_id += 1
                    common = {"row_id": row_id, "patron": patron, "n": n}
                    await conn.execute(tables["date"].insert(), {**common, "at": day})
                    local = instant.astimezone(tz).replace(tzinfo=None)
                    await conn.execute(tables["local"].insert(), {**common, "at": local})
                    utc_wall = instant.replace(tzinfo=None)
                    await conn.execute(tables["local_utc"].insert(), {**common, "at": utc_wall})
                    value = _instant_value(backend, instant, n)
                    await conn.execute(tables["instant"].insert(), {**common, "at": value})
            for n, enrolled, expires, _ in STATES:
                await conn.execute(
                    tables["state"].insert(),
                    {
                        "row_id": n,
                        "patron": "chicago",
                        "n": n,
                        "enrolled": dt.date.fromisoformat(enrolled) if enrolled else None,
                        "expires": dt.date.fromisoformat(expires) if expires else None,
                    },
                )
    finally:
        await engine.dispose()


def _mapping(backend: str) -> Any:
    def event(table: str, **extra: Any) -> dict[str, Any]:
        return {
            "table": table,
            "patron_column": "patron",
            "date_column": "at",
            "id_column": "row_id",
            "fields": {"n": "n", "at": "at"},
            **extra,
        }

    instant: dict[str, Any] = {"date_kind": "instant"} if backend == "sqlite" else {}
    return parse_mapping(
        {
            "categories": {
                "circulation": event("ev_date"),
                "holds": event("ev_local"),
                "interlibrary_loan": event("ev_local_utc", time_zone="UTC"),
                "search_history": event("ev_instant", **instant),
                "registration": {
                    "table": "enrolments",
                    "patron_column": "patron",
                    "period": "state",
                    "date_column": "enrolled",
                    "end_column": "expires",
                    "id_column": "row_id",
                    "fields": {"n": "n", "enrolled": "enrolled", "expires": "expires"},
                },
            }
        }
    )


KIND_OF = {
    C.CIRCULATION: TimeKind.DATE,
    C.HOLDS: TimeKind.LOCAL,
    C.INTERLIBRARY_LOAN: TimeKind.LOCAL,
    C.SEARCH_HISTORY: TimeKind.INSTANT,
}


@pytest.fixture(scope="module", params=BACKENDS)
def edge_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: Any
) -> Iterator[tuple[str, str]]:
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('edges') / 'edges.db'}"
        asyncio.run(_seed(url, backend))
        yield backend, url
        return
    manager = postgres_database() if backend == "postgres" else mariadb_database()
    with manager as url:
        asyncio.run(_seed(url, backend))
        yield backend, url


def _obligations(patron: str, period: Period, categories: tuple[Category, ...]) -> Obligations:
    mapping = _mapping("sqlite")
    return Obligations(patron, categories, period, mapping.fields())


@pytest.mark.parametrize("zone", ["chicago", "berlin"])
@pytest.mark.parametrize("category", list(KIND_OF))
async def test_sql_period_edges(
    edge_store_url: tuple[str, str], zone: str, category: Category
) -> None:
    backend, url = edge_store_url
    name, period = ZONES[zone]
    store = SqlRecordsStore(url, _mapping(backend), clock=LibraryClock.named(name))
    try:
        await store.validate()
        page = await store.fetch(_obligations(zone, period, (category,)), category, limit=10)
    finally:
        await store.close()
    assert [r["n"] for r in page.records] == IN_PERIOD, [LABELS[r["n"]] for r in page.records]
    released = [r["at"] for r in page.records]
    tz = ZoneInfo(name)
    edges = instants(name, period)
    if KIND_OF[category] is TimeKind.DATE:
        assert released == [period.start.isoformat(), period.end.isoformat()]
    elif category is C.INTERLIBRARY_LOAN:  # wall clock in UTC: released with +00:00
        assert released == [e.isoformat() for e in edges[1:3]]
    else:  # local wall clock, or an instant shown in the library's zone: the local offset
        assert released == [e.astimezone(tz).isoformat() for e in edges[1:3]]
    for value in released:
        if "T" in value:
            assert dt.datetime.fromisoformat(value).tzinfo is not None  # never a naive time


async def test_sql_registration_is_a_state(edge_store_url: tuple[str, str]) -> None:
    backend, url = edge_store_url
    period = Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    store = SqlRecordsStore(url, _mapping(backend), clock=LibraryClock.named("America/Chicago"))
    try:
        page = await store.fetch(
            _obligations("chicago", period, (C.REGISTRATION,)), C.REGISTRATION, limit=10
        )
    finally:
        await store.close()
    assert sorted(r["n"] for r in page.records) == [n for n, *_, inside in STATES if inside]


async def test_a_period_of_one_day_on_which_the_clocks_change(
    edge_store_url: tuple[str, str],
) -> None:
    # 1 November 2026 in Chicago lasts 25 hours: 05:00 UTC to 06:00 UTC the next day.
    backend, url = edge_store_url
    day = dt.date(2026, 11, 1)
    store = SqlRecordsStore(url, _mapping(backend), clock=LibraryClock.named("America/Chicago"))
    try:
        page = await store.fetch(
            _obligations("chicago", Period(day, day), (C.SEARCH_HISTORY,)),
            C.SEARCH_HISTORY,
            limit=10,
        )
    finally:
        await store.close()
    assert [r["n"] for r in page.records] == [3]  # 23:59:59 CST on 1 November


async def test_sqlite_text_that_is_no_date_fails_closed(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    await _seed(url, "sqlite")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO ev_instant (row_id, patron, n, at) VALUES (99, 'chicago', 9, '2026-05-01')"
        )
        await conn.exec_driver_sql(
            "INSERT INTO ev_local (row_id, patron, n, at) VALUES (99, 'chicago', 9, 'tomorrow')"
        )
    await engine.dispose()
    name, period = ZONES["chicago"]
    store = SqlRecordsStore(url, _mapping("sqlite"), clock=LibraryClock.named(name))
    try:
        for category in (C.SEARCH_HISTORY, C.HOLDS):
            with pytest.raises(StoreValueMalformed) as caught:
                await store.fetch(_obligations("chicago", period, (category,)), category, limit=10)
            assert "cannot be placed in time" in str(caught.value.detail)
            assert "tomorrow" not in str(caught.value.detail)
        # Another patron's rows are untouched by it.
        page = await store.fetch(
            _obligations("berlin", ZONES["berlin"][1], (C.HOLDS,)), C.HOLDS, limit=10
        )
        assert [r["n"] for r in page.records] == IN_PERIOD
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("declared", "kind", "message"),
    [
        ("TEXT", None, "declare date_kind"),
        ("INTEGER", None, "(numbers)"),
        ("REAL", "date", "(numbers)"),
    ],
)
async def test_sqlite_date_columns_bulwark_cannot_compare_are_refused(
    tmp_path: Any, declared: str, kind: str | None, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'types.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            f"CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, patron TEXT, at {declared})"
        )
    await engine.dispose()
    category: dict[str, Any] = {
        "table": "loans",
        "patron_column": "patron",
        "date_column": "at",
        "fields": {"at": "at"},
    }
    if kind:
        category["date_kind"] = kind
    store = SqlRecordsStore(url, parse_mapping({"categories": {"circulation": category}}))
    try:
        with pytest.raises(MappingError) as caught:
            await store.validate()
    finally:
        await store.close()
    assert str(caught.value).startswith(
        "categories.circulation.date_column: column 'at' of 'loans'"
    )
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
@pytest.mark.parametrize("column_type", ["VARCHAR(30)", "INTEGER"])
def test_server_date_columns_of_text_or_numbers_are_refused(backend: str, column_type: str) -> None:
    mapping = parse_mapping(
        {
            "categories": {
                "circulation": {
                    "table": "loans",
                    "patron_column": "patron",
                    "date_column": "at",
                    "date_kind": "date",
                    "fields": {"at": "at"},
                }
            }
        }
    )

    async def check(url: str) -> str:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                f"CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, patron VARCHAR(20), "
                f"at {column_type})"
            )
        await engine.dispose()
        store = SqlRecordsStore(url, mapping)
        try:
            with pytest.raises(MappingError) as caught:
                await store.validate()
        finally:
            await store.close()
        return str(caught.value)

    manager = postgres_database() if backend == "postgres" else mariadb_database()
    with manager as url:
        text = asyncio.run(check(url))
    assert text.startswith("categories.circulation.date_column: column 'at' of 'loans' is ")
    assert "Bulwark compares only DATE, DATETIME/timestamp and TIMESTAMP/timestamptz" in text


# --------------------------------------------------------------------------- HTTP store


def _http_items(zone: str) -> dict[str, list[dict[str, Any]]]:
    name, period = ZONES[zone]
    tz = ZoneInfo(name)
    edges = instants(name, period)
    items: dict[str, list[dict[str, Any]]] = {
        "date": [],
        "local": [],
        "local_utc": [],
        "instant": [],
    }
    for n, (instant, day) in enumerate(zip(edges, days(period), strict=True), start=1):
        items["date"].append({"n": n, "at": day.isoformat()})
        items["local"].append(
            {"n": n, "at": instant.astimezone(tz).replace(tzinfo=None).isoformat()}
        )
        items["local_utc"].append({"n": n, "at": instant.replace(tzinfo=None).isoformat()})
        items["instant"].append({"n": n, "at": _instant_value("sqlite", instant, n)})
    items["state"] = [
        {"n": n, "enrolled": enrolled, "expires": expires} for n, enrolled, expires, _ in STATES
    ]
    return items


def _http_mapping() -> Any:
    def event(kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "path": f"/{kind}/{{patron}}",
            "date_field": "at",
            "fields": {"n": "n", "at": "at"},
            **extra,
        }

    return parse_mapping(
        {
            "categories": {
                "circulation": event("date"),
                "holds": event("local"),
                "interlibrary_loan": event("local_utc", time_zone="UTC"),
                "search_history": event("instant"),
                "registration": {
                    "path": "/state/{patron}",
                    "period": "state",
                    "date_field": "enrolled",
                    "end_field": "expires",
                    "fields": {"n": "n", "enrolled": "enrolled", "expires": "expires"},
                },
            }
        }
    )


def _http_store(
    zone: str, items: dict[str, list[dict[str, Any]]] | None = None
) -> HttpRecordsStore:
    served = items or _http_items(zone)

    def answer(request: httpx.Request) -> httpx.Response:
        kind = request.url.path.split("/")[1]
        return httpx.Response(200, content=json.dumps(served[kind]).encode())

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return HttpRecordsStore(
        "http://records.invalid",
        _http_mapping(),
        client,
        token=None,
        max_response_bytes=1 << 20,
        timeout=2.0,
        clock=LibraryClock.named(ZONES[zone][0]),
    )


@pytest.mark.parametrize("zone", ["chicago", "berlin"])
@pytest.mark.parametrize("category", list(KIND_OF))
async def test_http_period_edges(zone: str, category: Category) -> None:
    name, period = ZONES[zone]
    store = _http_store(zone)
    page = await store.fetch(_obligations(zone, period, (category,)), category, limit=10)
    assert [r["n"] for r in page.records] == IN_PERIOD
    tz = ZoneInfo(name)
    edges = instants(name, period)
    released = [r["at"] for r in page.records]
    if KIND_OF[category] is TimeKind.DATE:
        assert released == [period.start.isoformat(), period.end.isoformat()]
    elif category is C.INTERLIBRARY_LOAN:
        assert released == [e.isoformat() for e in edges[1:3]]
    else:
        assert released == [e.astimezone(tz).isoformat() for e in edges[1:3]]


async def test_http_registration_is_a_state() -> None:
    store = _http_store("chicago")
    period = Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    page = await store.fetch(
        _obligations("chicago", period, (C.REGISTRATION,)), C.REGISTRATION, limit=10
    )
    assert sorted(r["n"] for r in page.records) == [n for n, *_, inside in STATES if inside]


async def test_http_unplaceable_date_fails_closed() -> None:
    items = _http_items("chicago")
    items["instant"].append({"n": 9, "at": "31/12/2026 23:30"})
    store = _http_store("chicago", items)
    period = ZONES["chicago"][1]
    with pytest.raises(StoreValueMalformed):
        await store.fetch(
            _obligations("chicago", period, (C.SEARCH_HISTORY,)), C.SEARCH_HISTORY, limit=10
        )


def test_the_issue_s_searches_fall_on_the_library_s_dates() -> None:
    # A search at 20:00 on 31 December 2023 in Chicago is 02:00 UTC on 1 January 2024; one at
    # 23:30 on 31 December 2024 is 05:30 UTC on 1 January 2025.
    frame = TimeFrame.of(LibraryClock.named("America/Chicago"))
    year = Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert not frame.event_in("2024-01-01T02:00:00Z", year)
    assert frame.event_in("2025-01-01T05:30:00Z", year)
    assert frame.release(dt.datetime(2025, 1, 1, 5, 30), TimeKind.INSTANT) == (
        "2024-12-31T23:30:00-06:00"
    )
    assert frame.release(dt.datetime(2024, 12, 31, 23, 30, tzinfo=UTC)) == (
        "2024-12-31T17:30:00-06:00"
    )


async def test_a_malformed_date_is_counted(tmp_path: Any) -> None:
    from app.metrics import STORE_MALFORMED, MeasuredStore

    url = f"sqlite:///{tmp_path / 'bad.db'}"
    await _seed(url, "sqlite")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO ev_date (row_id, patron, n, at) VALUES (99, 'chicago', 9, '2026-5-1')"
        )
    await engine.dispose()
    counter = STORE_MALFORMED.labels(C.CIRCULATION.value)
    before = counter._value.get()
    name, period = ZONES["chicago"]
    store = MeasuredStore(SqlRecordsStore(url, _mapping("sqlite"), clock=LibraryClock.named(name)))
    try:
        with pytest.raises(StoreValueMalformed):
            await store.fetch(
                _obligations("chicago", period, (C.CIRCULATION,)), C.CIRCULATION, limit=10
            )
    finally:
        await store.close()
    assert counter._value.get() == before + 1
