"""The SQL store narrows by patron, period and field, pages safely, and fails closed."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.core.database import create_engine
from app.core.problems import StoreUnavailable
from app.records.categories import Category
from app.records.cursor import CursorInvalid, encode_cursor
from app.records.mapping import MappingError, parse_mapping
from tests.records import fixtures
from tests.records.conftest import StoreFactory
from tests.records.fixtures import ALPHA, BRAVO, BUSY, LOOKALIKES, PERIOD, SECRET

pytestmark = pytest.mark.asyncio(loop_scope="function")

C = Category


def _day(value: str) -> dt.date:
    return dt.datetime.fromisoformat(value).date()


async def _all_pages(store: Any, obligations: Any, category: Category, limit: int) -> list[Any]:
    pages, cursor = [], None
    while True:
        page = await store.fetch(obligations, category, limit=limit, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages


# ---------------------------------------------------------------- narrowing


async def test_datetime_period_is_inclusive_at_both_ends(
    seeded_url: str, open_store: StoreFactory
) -> None:
    store = open_store(seeded_url)
    await store.validate()
    page = await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=100)
    titles = [r["title"] for r in page.records]
    assert titles == [f"Loan {i} of {ALPHA}" for i in fixtures.ALPHA_LOANS_IN_PERIOD]
    assert page.next_cursor is None
    days = [_day(r["checkout_date"]) for r in page.records]
    assert days == [PERIOD.start, dt.date(2026, 3, 15), PERIOD.end]


async def test_date_period_is_inclusive_at_both_ends(
    seeded_url: str, open_store: StoreFactory
) -> None:
    store = open_store(seeded_url)
    page = await store.fetch(fixtures.obligations(), C.HOLDS, limit=100)
    assert [r["title"] for r in page.records] == list(fixtures.ALPHA_HOLDS_IN_PERIOD)
    assert [r["placed_on"] for r in page.records] == ["2026-01-01", "2026-06-30"]


async def test_another_patrons_rows_never_appear(seeded_url: str, open_store: StoreFactory) -> None:
    store = open_store(seeded_url)
    for category in (C.CIRCULATION, C.HOLDS, C.SEARCH_HISTORY):
        page = await store.fetch(fixtures.obligations(), category, limit=100)
        text = json.dumps(page.records)
        assert BRAVO not in text
        for foreign in ("Loan 6", "Hold 5", "q3"):
            assert foreign not in text
    bravo = await store.fetch(fixtures.obligations(BRAVO), C.CIRCULATION, limit=100)
    assert [r["title"] for r in bravo.records] == [f"Loan 6 of {BRAVO}"]


@pytest.mark.parametrize("patron", LOOKALIKES)
async def test_lookalike_ids_match_only_themselves(
    seeded_url: str, open_store: StoreFactory, patron: str
) -> None:
    store = open_store(seeded_url)
    page = await store.fetch(fixtures.obligations(patron), C.CIRCULATION, limit=100)
    assert [r["title"] for r in page.records] == [
        t for t in (r["title"] for r in fixtures.loan_rows()) if t.endswith(f" of {patron}")
    ]


async def test_unmapped_columns_never_leave(seeded_url: str, open_store: StoreFactory) -> None:
    store = open_store(seeded_url)
    # Obligations naming unmapped columns (a policy bug) still cannot reach them.
    asked = {
        C.CIRCULATION: ("title", "staff_note", "patron_id", "loan_id"),
        C.HOLDS: ("title", "internal_flag"),
        C.SEARCH_HISTORY: ("query_text", "ip_address"),
    }
    for category, fields in asked.items():
        obligations = fixtures.obligations(fields=asked)
        page = await store.fetch(obligations, category, limit=100)
        assert page.records
        for record in page.records:
            assert set(record) == {fields[0]}
        assert SECRET not in json.dumps(page.records)


async def test_fields_are_narrowed_by_obligations(
    seeded_url: str, open_store: StoreFactory
) -> None:
    store = open_store(seeded_url)
    obligations = fixtures.obligations(fields={C.CIRCULATION: ("due_date", "title")})
    page = await store.fetch(obligations, C.CIRCULATION, limit=100)
    assert [list(r) for r in page.records] == [["title", "due_date"]] * 3  # mapping order


async def test_nothing_without_category_or_fields(
    seeded_url: str, open_store: StoreFactory
) -> None:
    store = open_store(seeded_url)
    not_permitted = fixtures.obligations(categories=(C.HOLDS,))
    assert (await store.fetch(not_permitted, C.CIRCULATION, limit=10)).records == []
    no_fields = fixtures.obligations(fields={C.CIRCULATION: ()})
    assert (await store.fetch(no_fields, C.CIRCULATION, limit=10)).records == []
    unmapped = fixtures.obligations(categories=(C.REFERENCE,), fields={C.REFERENCE: ("x",)})
    assert (await store.fetch(unmapped, C.REFERENCE, limit=10)).records == []


async def test_values_are_json_ready(seeded_url: str, open_store: StoreFactory) -> None:
    store = open_store(seeded_url)
    page = await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=100)
    json.dumps(page.records)  # no date, datetime or Decimal objects left
    first = page.records[0]
    # A wall-clock datetime leaves with its zone's offset (the library's: UTC by default).
    assert first["checkout_date"] == "2026-01-01T00:00:00+00:00"
    assert first["due_date"] == "2026-01-22"
    assert str(first["fine"]) in ("1.5", "1.50")  # SQLite keeps NUMERIC as a float


INJECTIONS = [
    "' OR '1'='1",
    "P-ALPHA' --",
    "P-ALPHA'; DROP TABLE loans; --",
    '" OR ""="',
    "') OR 1=1 UNION SELECT title, title, title, title, title, 1 FROM loans --",
    "\\' OR 1=1 #",
    "P-ALPHA\x00",
    "\N{MATHEMATICAL FRAKTUR CAPITAL P}-ALPHA",
    "p-alpha",  # MariaDB's default collation ignores case; Bulwark does not
    "P-ALPHA ",  # and trailing spaces
    "x" * 500,
]


@pytest.mark.parametrize("patron", INJECTIONS)
async def test_injection_strings_are_only_values(
    seeded_url: str, open_store: StoreFactory, patron: str
) -> None:
    store = open_store(seeded_url)
    page = await store.fetch(fixtures.obligations(patron), C.CIRCULATION, limit=100)
    assert page.records == []
    again = await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=100)
    assert len(again.records) == 3  # the table is still there


async def test_integer_patron_column_matches_only_exact_numbers(
    seeded_url: str, open_store: StoreFactory
) -> None:
    numbered = {
        "table": "numbered",
        "patron_column": "borrowernumber",
        "date_column": "made_on",
        "id_column": "row_id",
        "fields": {"note": "note"},
    }
    mapping = parse_mapping({"categories": {"reference": numbered}})
    store = open_store(seeded_url, mapping)
    await store.validate()

    async def notes(patron: str) -> list[str]:
        ob = fixtures.obligations(patron, categories=(C.REFERENCE,), of=mapping)
        return [r["note"] for r in (await store.fetch(ob, C.REFERENCE, limit=10)).records]

    assert await notes("42") == ["mine"]
    for other in ("042", "42 ", "P42", "42 OR 1=1", "4" * 30, "-42", "\N{FULLWIDTH DIGIT FOUR}2"):
        assert await notes(other) == []


# ---------------------------------------------------------------- paging


@pytest.mark.parametrize("with_id", [True, False], ids=["keyset", "date-offset"])
async def test_pages_continue_without_overlap_or_gap(
    seeded_url: str, open_store: StoreFactory, with_id: bool
) -> None:
    mapping = fixtures.busy_mapping(with_id=with_id)
    store = open_store(seeded_url, mapping)
    obligations = fixtures.obligations(BUSY, (C.CIRCULATION,), of=mapping)
    pages = await _all_pages(store, obligations, C.CIRCULATION, limit=1000)
    assert [len(p.records) for p in pages] == [1000, 1000, 500]
    titles = [r["title"] for p in pages for r in p.records]
    assert len(set(titles)) == len(titles) == fixtures.BUSY_ROWS
    assert set(titles) == {r["title"] for r in fixtures.busy_rows() if r["patron_id"] == BUSY}
    stamps = [dt.datetime.fromisoformat(r["checkout_date"]) for p in pages for r in p.records]
    assert stamps == sorted(stamps)


async def test_a_page_reads_at_most_limit_plus_one_rows(
    seeded_url: str, open_store: StoreFactory
) -> None:
    mapping = fixtures.busy_mapping(with_id=True)
    store = open_store(seeded_url, mapping)
    await store.validate()
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", before)
    reader = store._direct  # SQLite and PostgreSQL are read around SQLAlchemy: watch that too
    if reader is not None:
        fetch = reader.fetch

        async def watched(statement: str, params: tuple[Any, ...]) -> list[Any]:
            seen.append((statement, params))
            return await fetch(statement, params)

        reader.fetch = watched  # type: ignore[method-assign]
    obligations = fixtures.obligations(BUSY, (C.CIRCULATION,), of=mapping)
    pages = await _all_pages(store, obligations, C.CIRCULATION, limit=1000)
    queries = [(s, p) for s, p in seen if "busy_loans" in s and "LIMIT" in s.upper()]
    assert len(queries) == len(pages) == 3
    for statement, params in queries:
        assert "LIMIT" in statement.upper()
        assert "SELECT *" not in statement.upper()
        assert 1001 in tuple(params)  # limit + 1, as a bound value
        assert BUSY in tuple(params)  # the patron is a value, never part of the text
        assert BUSY not in statement


async def test_limit_of_one_pages_through_ties(seeded_url: str, open_store: StoreFactory) -> None:
    store = open_store(seeded_url)
    pages = await _all_pages(store, fixtures.obligations(), C.CIRCULATION, limit=1)
    assert [p.records[0]["title"] for p in pages] == [
        f"Loan {i} of {ALPHA}" for i in fixtures.ALPHA_LOANS_IN_PERIOD
    ]


GARBLED = [
    "",
    "not a cursor",
    "eyJ2IjoxfQ",  # {"v":1}: no category
    "!!!!",
    "e30",  # {}
    "W10",  # []
    "x" * 5000,
]


@pytest.mark.parametrize("cursor", GARBLED)
async def test_garbled_cursor_is_refused(
    seeded_sqlite: str, open_store: StoreFactory, cursor: str
) -> None:
    store = open_store(seeded_sqlite)
    with pytest.raises(CursorInvalid):
        await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=1, cursor=cursor)


@pytest.mark.parametrize(
    "state",
    [
        {"k": ["s", "2026-01-01"]},  # no id
        {"k": ["s", "2026-01-01"], "i": ["i", "7"]},  # id with the wrong type
        {"k": ["x", "2026-01-01"], "i": ["i", 7]},  # unknown tag
        {"k": ["d", "not a date"], "i": ["i", 7]},
        {"k": ["s", "2026-01-01"], "i": ["i", True]},
        {"k": ["s", "2026-01-01"], "s": 3},  # a date-offset cursor
        {"u": None, "s": 0},  # an HTTP cursor
    ],
)
async def test_tampered_cursor_is_refused(
    seeded_sqlite: str, open_store: StoreFactory, state: dict[str, Any]
) -> None:
    store = open_store(seeded_sqlite)
    cursor = encode_cursor(C.CIRCULATION, state)
    with pytest.raises(CursorInvalid):
        await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=1, cursor=cursor)


async def test_cursor_of_another_category_is_refused(
    seeded_sqlite: str, open_store: StoreFactory
) -> None:
    store = open_store(seeded_sqlite)
    page = await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=1)
    assert page.next_cursor
    with pytest.raises(CursorInvalid):
        await store.fetch(fixtures.obligations(), C.HOLDS, limit=1, cursor=page.next_cursor)


async def test_cursor_cannot_widen_the_patron_or_period(
    seeded_sqlite: str, open_store: StoreFactory
) -> None:
    store = open_store(seeded_sqlite)
    # A forged position before every row still yields only ALPHA's rows inside the period.
    forged = encode_cursor(C.CIRCULATION, {"k": ["s", "1900-01-01"], "i": ["i", 0]})
    page = await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=100, cursor=forged)
    assert [r["title"] for r in page.records] == [
        f"Loan {i} of {ALPHA}" for i in fixtures.ALPHA_LOANS_IN_PERIOD
    ]


# ---------------------------------------------------------------- failures


async def test_one_failing_category_fails_alone(fresh_url: str, open_store: StoreFactory) -> None:
    store = open_store(fresh_url)
    await store.validate()
    await fixtures.drop_table(fresh_url, "searches")
    assert len((await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=10)).records) == 3
    assert len((await store.fetch(fixtures.obligations(), C.HOLDS, limit=10)).records) == 2
    with pytest.raises(StoreUnavailable) as caught:
        await store.fetch(fixtures.obligations(), C.SEARCH_HISTORY, limit=10)
    problem = json.dumps(caught.value.to_problem())
    assert "search_history" in problem
    assert ALPHA not in problem
    assert "SELECT" not in problem.upper()
    assert caught.value.__suppress_context__  # the driver's text (with SQL) is not chained


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_unreachable_database_is_unavailable(
    open_store: StoreFactory, closed_port: int, scheme: str
) -> None:
    store = open_store(f"{scheme}://nobody@127.0.0.1:{closed_port}/records")
    with pytest.raises(StoreUnavailable) as caught:
        await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=10)
    assert ALPHA not in caught.value.detail
    with pytest.raises(StoreUnavailable):
        await store.check()
    with pytest.raises(StoreUnavailable):
        await store.validate()


async def test_missing_sqlite_file_is_not_created(tmp_path: Path, open_store: StoreFactory) -> None:
    path = tmp_path / "records.db"
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await open_store(f"sqlite:///{path}").validate()
    assert not path.exists()


SLOW_VIEWS = {
    "postgres": "CREATE VIEW slow_loans AS SELECT l.* FROM loans l, (SELECT pg_sleep(3)) s",
    "mariadb": "CREATE VIEW slow_loans AS SELECT l.* FROM loans l WHERE SLEEP(1) = 0",
}


async def test_slow_query_times_out(
    seeded_server: tuple[str, str], open_store: StoreFactory
) -> None:
    backend, url = seeded_server
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP VIEW IF EXISTS slow_loans")
        await conn.exec_driver_sql(SLOW_VIEWS[backend])
    try:
        slow = dict(fixtures.MAPPING["categories"]["circulation"], table="slow_loans")
        store = open_store(url, fixtures.mapping(circulation=slow), timeout=0.5)
        await store.validate()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="timed out"):
            await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=10)
        assert time.monotonic() - started < 2.5
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP VIEW IF EXISTS slow_loans")
        await engine.dispose()


SERVER_TIMEOUTS = {
    "postgres": ("SHOW statement_timeout", "1500ms"),
    "mariadb": ("SELECT @@max_statement_time", 1.5),
}


async def test_the_server_enforces_the_timeout_too(
    seeded_server: tuple[str, str], open_store: StoreFactory
) -> None:
    backend, url = seeded_server
    query, expected = SERVER_TIMEOUTS[backend]
    store = open_store(url, timeout=1.5)
    async with store.engine.connect() as conn:
        value = (await conn.exec_driver_sql(query)).scalar()
    assert value == expected


async def test_check_answers(seeded_url: str, open_store: StoreFactory) -> None:
    await open_store(seeded_url).check()


# ---------------------------------------------------------------- schema validation


async def test_validate_accepts_the_fixture_mapping(
    seeded_url: str, open_store: StoreFactory
) -> None:
    await open_store(seeded_url).validate()


async def test_validate_refuses_a_missing_table(seeded_url: str, open_store: StoreFactory) -> None:
    wrong = dict(fixtures.MAPPING["categories"]["holds"], table="reservations")
    store = open_store(seeded_url, fixtures.mapping(holds=wrong))
    with pytest.raises(MappingError, match=r"categories\.holds\.table: .*'reservations'"):
        await store.validate()


@pytest.mark.parametrize(
    ("key", "column", "change"),
    [
        ("patron_column", "borrower", {"patron_column": "borrower"}),
        ("date_column", "placed_at", {"date_column": "placed_at"}),
        ("id_column", "reserve_id", {"id_column": "reserve_id"}),
        ("fields.title", "heading", {"fields": {"title": "heading", "placed_on": "placed_on"}}),
    ],
)
async def test_validate_refuses_a_missing_column(
    seeded_url: str, open_store: StoreFactory, key: str, column: str, change: dict[str, Any]
) -> None:
    wrong = {**fixtures.MAPPING["categories"]["holds"], **change}
    store = open_store(seeded_url, fixtures.mapping(holds=wrong))
    with pytest.raises(MappingError) as caught:
        await store.validate()
    assert str(caught.value) == (
        f"categories.holds.{key}: column {column!r} does not exist in 'holds'; fix the "
        "mapping, or recreate the view if an upgrade of the library system renamed it"
    )


async def test_validate_accepts_a_view(fresh_url: str, open_store: StoreFactory) -> None:
    engine = create_engine(fresh_url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE VIEW alpha_free_loans AS SELECT * FROM loans")
    await engine.dispose()
    view = dict(fixtures.MAPPING["categories"]["circulation"], table="alpha_free_loans")
    store = open_store(fresh_url, fixtures.mapping(circulation=view))
    await store.validate()
    page = await store.fetch(fixtures.obligations(), C.CIRCULATION, limit=10)
    assert len(page.records) == 3


@pytest.mark.parametrize("patron", ["p-alpha", "P-Alpha", "P-ALPHA"])
async def test_case_insensitive_matching_where_the_mapping_says_so(
    seeded_url: str, open_store: StoreFactory, patron: str
) -> None:
    mapping = parse_mapping({**fixtures.MAPPING, "patron_match": "case_insensitive"})
    store = open_store(seeded_url, mapping)
    page = await store.fetch(fixtures.obligations(patron, of=mapping), C.CIRCULATION, limit=100)
    assert [r["title"] for r in page.records] == [
        f"Loan {i} of {fixtures.ALPHA}" for i in fixtures.ALPHA_LOANS_IN_PERIOD
    ]
    # Letter case only: trailing spaces, look-alikes and wildcards still match nothing.
    for other in ("p-alpha ", "p-alph", "p-alpha-2", "%", "_-alpha"):
        page = await store.fetch(fixtures.obligations(other, of=mapping), C.CIRCULATION, limit=100)
        assert all(r["title"].lower().endswith(f"of {other}") for r in page.records)
        assert not any(r["title"].endswith(f"of {fixtures.ALPHA}") for r in page.records)


async def test_exact_matching_is_the_default(seeded_url: str, open_store: StoreFactory) -> None:
    store = open_store(seeded_url)
    page = await store.fetch(fixtures.obligations("p-alpha"), C.CIRCULATION, limit=100)
    assert page.records == []
