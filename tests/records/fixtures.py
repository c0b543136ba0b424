"""A small records store with known rows, identical on SQLite, PostgreSQL and MariaDB.

Patron ALPHA has rows on both sides of each boundary of PERIOD (DATE and DATETIME columns);
BRAVO and a few look-alike ids have rows inside it that must never reach ALPHA's pages.
BUSY has BUSY_ROWS loans sharing a handful of timestamps, for paging.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa

from app.core.database import create_engine
from app.records.categories import Category
from app.records.mapping import RecordsMapping, parse_mapping
from app.records.obligations import Obligations, Period

ALPHA = "P-ALPHA"
BRAVO = "P-BRAVO"
BUSY = "P-BUSY"
LOOKALIKES = ("P-ALPH", "P-ALPHA-2", "%", "_-ALPHA")
PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30))
BUSY_ROWS = 2500
SECRET = "SECRET-NOT-MAPPED"

metadata = sa.MetaData()

loans = sa.Table(
    "loans",
    metadata,
    sa.Column("loan_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patron_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("checked_out_at", sa.DateTime, nullable=False),
    sa.Column("due_on", sa.Date),
    sa.Column("fine", sa.Numeric(8, 2)),
    sa.Column("staff_note", sa.String(200)),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("hold_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patron_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("placed_on", sa.Date, nullable=False),
    sa.Column("internal_flag", sa.String(200)),
)

searches = sa.Table(
    "searches",
    metadata,
    sa.Column("search_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patron_id", sa.String(64), nullable=False),
    sa.Column("query_text", sa.String(200), nullable=False),
    sa.Column("searched_at", sa.DateTime, nullable=False),
    sa.Column("ip_address", sa.String(45)),
)

busy_loans = sa.Table(
    "busy_loans",
    metadata,
    sa.Column("loan_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patron_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("checked_out_at", sa.DateTime, nullable=False),
)

# An integer patron key, as in Koha's borrowernumber.
numbered = sa.Table(
    "numbered",
    metadata,
    sa.Column("row_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("borrowernumber", sa.Integer, nullable=False),
    sa.Column("note", sa.String(50), nullable=False),
    sa.Column("made_on", sa.Date, nullable=False),
)

MAPPING: dict[str, Any] = {
    "categories": {
        "circulation": {
            "table": "loans",
            "patron_column": "patron_id",
            "date_column": "checked_out_at",
            "id_column": "loan_id",
            "fields": {
                "title": "title",
                "checkout_date": "checked_out_at",
                "due_date": "due_on",
                "fine": "fine",
            },
        },
        "holds": {
            "table": "holds",
            "patron_column": "patron_id",
            "date_column": "placed_on",
            "id_column": "hold_id",
            "fields": {"title": "title", "placed_on": "placed_on"},
        },
        "search_history": {
            "table": "searches",
            "patron_column": "patron_id",
            "date_column": "searched_at",
            "id_column": "search_id",
            "fields": {"query_text": "query_text", "searched_at": "searched_at"},
        },
    }
}


def mapping(**overrides: dict[str, Any]) -> RecordsMapping:
    """The fixture mapping, with whole categories replaced or added."""
    categories = {**MAPPING["categories"], **overrides}
    return parse_mapping({"categories": categories})


def busy_mapping(*, with_id: bool) -> RecordsMapping:
    """circulation over busy_loans, paged by id or by date and tie offset."""
    category: dict[str, Any] = {
        "table": "busy_loans",
        "patron_column": "patron_id",
        "date_column": "checked_out_at",
        "fields": {"title": "title", "checkout_date": "checked_out_at"},
    }
    if with_id:
        category["id_column"] = "loan_id"
    return parse_mapping({"categories": {"circulation": category}})


def obligations(
    patron: str = ALPHA,
    categories: tuple[Category, ...] = (
        Category.CIRCULATION,
        Category.HOLDS,
        Category.SEARCH_HISTORY,
    ),
    period: Period = PERIOD,
    fields: dict[Category, tuple[str, ...]] | None = None,
    of: RecordsMapping | None = None,
) -> Obligations:
    """Obligations for ``patron``; by default every field the mapping allows."""
    allowed = fields if fields is not None else (of or mapping()).fields()
    return Obligations(patron, categories, period, allowed)


def _at(day: str, time: str = "12:00:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}")


def loan_rows() -> list[dict[str, Any]]:
    def row(i: int, patron: str, when: dt.datetime) -> dict[str, Any]:
        return {
            "loan_id": i,
            "patron_id": patron,
            "title": f"Loan {i} of {patron}",
            "checked_out_at": when,
            "due_on": when.date() + dt.timedelta(days=21),
            "fine": "1.50",
            "staff_note": SECRET,
        }

    alpha = [
        _at("2025-12-31", "23:59:59"),  # 1: a second before the period: out
        _at("2026-01-01", "00:00:00"),  # 2: the first instant: in
        _at("2026-03-15"),  # 3: in
        _at("2026-06-30", "23:59:59"),  # 4: the last second: in
        _at("2026-07-01", "00:00:00"),  # 5: the first instant after: out
    ]
    rows = [row(i, ALPHA, when) for i, when in enumerate(alpha, start=1)]
    rows.append(row(6, BRAVO, _at("2026-03-15")))
    rows += [row(7 + i, p, _at("2026-03-16")) for i, p in enumerate(LOOKALIKES)]
    return rows


ALPHA_LOANS_IN_PERIOD = (2, 3, 4)


def hold_rows() -> list[dict[str, Any]]:
    days = ["2025-12-31", "2026-01-01", "2026-06-30", "2026-07-01"]
    rows = [
        {"hold_id": i, "patron_id": ALPHA, "title": f"Hold {i}", "placed_on": day}
        for i, day in enumerate(days, start=1)
    ]
    rows.append({"hold_id": 5, "patron_id": BRAVO, "title": "Hold 5", "placed_on": "2026-02-02"})
    for row in rows:
        row["placed_on"] = dt.date.fromisoformat(row["placed_on"])
        row["internal_flag"] = SECRET
    return rows


ALPHA_HOLDS_IN_PERIOD = ("Hold 2", "Hold 3")


def search_rows() -> list[dict[str, Any]]:
    return [
        {"search_id": 1, "patron_id": ALPHA, "query_text": "q1", "searched_at": _at("2026-02-01")},
        {"search_id": 2, "patron_id": ALPHA, "query_text": "q2", "searched_at": _at("2026-02-02")},
        {"search_id": 3, "patron_id": BRAVO, "query_text": "q3", "searched_at": _at("2026-02-03")},
    ]


def busy_rows() -> list[dict[str, Any]]:
    """BUSY_ROWS loans of BUSY over 25 timestamps (100 ties each), ids in shuffled order."""
    ids = list(range(1, BUSY_ROWS + 1))
    random.Random(5).shuffle(ids)
    stamps = [_at("2026-01-05") + dt.timedelta(days=7 * k, hours=k % 3) for k in range(25)]
    rows = [
        {
            "loan_id": ident,
            "patron_id": BUSY,
            "title": f"Busy {ident:05d}",
            "checked_out_at": stamps[n % 25],
        }
        for n, ident in enumerate(ids)
    ]
    rows += [
        {"loan_id": BUSY_ROWS + k, "patron_id": BRAVO, "title": "x", "checked_out_at": stamps[k]}
        for k in range(1, 25)
    ]
    return rows


def numbered_rows() -> list[dict[str, Any]]:
    return [
        {"row_id": 1, "borrowernumber": 42, "note": "mine", "made_on": dt.date(2026, 2, 1)},
        {"row_id": 2, "borrowernumber": 43, "note": "other", "made_on": dt.date(2026, 2, 1)},
    ]


async def seed(url: str) -> None:
    """Create the fixture tables at ``url`` and fill them."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(loans.insert(), loan_rows())
            await conn.execute(holds.insert(), hold_rows())
            await conn.execute(searches.insert(), search_rows())
            await conn.execute(busy_loans.insert(), busy_rows())
            await conn.execute(numbered.insert(), numbered_rows())
    finally:
        await engine.dispose()


async def drop_table(url: str, name: str) -> None:
    """Drop one fixture table (to make a store fail for one category)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.tables[name].drop)
    finally:
        await engine.dispose()
