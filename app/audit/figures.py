"""The transparency report's figures, kept per UTC day as the events they count are appended.

A report used to read every event of its period: its cost grew with the log, and each new
window was a new pass over it. Instead the audit writer adds each batch's figures to
``report_figures`` in the transaction of the batch's events (the locked append and
``bulwark_append`` alike), so there is never an event without its figures, nor a figure
without its event; a report then sums at most a row per (day, row, measure, item) of its
period. ``bulwark audit verify`` recomputes the figures from the chain and compares.

Counting, per event of kind ``disclosure`` (one per ``POST /v1/disclosures`` without a
cursor):

- the row is the instrument of the order **only when the order was verified**; an order that
  failed verification is counted as ``unverified`` (it names nothing a reader can trust: a
  forged token must neither move a published figure nor probe one), and a request without an
  order as ``none``;
- ``requests`` +1, then ``permitted``, ``refused`` (with ``refused_by_reason`` per code) or
  ``failed``; ``released`` per category for a permit.

A later page of a disclosure (``disclosure_page``) is not a request: it adds only the records
it released, to the row of the request that spent the use.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from sqlalchemy import and_, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.audit.models import ReportFigure
from app.core.models import table_of
from app.orders.models import Instrument

FIGURES = table_of(ReportFigure)

NO_ORDER: Final = "none"
UNVERIFIED: Final = "unverified"
INSTRUMENTS: Final = frozenset(i.value for i in Instrument)
#: Every row of the report, in this order.
ROWS: Final = (*(i.value for i in Instrument), UNVERIFIED, NO_ORDER)
KINDS: Final = frozenset({"disclosure", "disclosure_page"})
#: (day, row, measure, item)
Key = tuple[dt.date, str, str, str]


def row_of(body: Mapping[str, Any]) -> str:
    """The report row of an event: its verified order's instrument, ``unverified`` or ``none``."""
    order = body.get("order")
    if not isinstance(order, dict):
        return NO_ORDER
    instrument = order.get("instrument")
    if order.get("verified") is True and instrument in INSTRUMENTS:
        return str(instrument)
    return UNVERIFIED


def figures_of(
    kind: str, effect: str, body: Mapping[str, Any]
) -> Iterator[tuple[str, str, str, int]]:
    """``(row, measure, item, n)`` for one event; nothing for events the report does not count."""
    if kind not in KINDS:
        return
    row = row_of(body)
    released = body.get("released") or {}
    counts = released.get("counts") or {} if isinstance(released, dict) else {}
    if kind == "disclosure_page":
        if effect == "permit":
            for category, n in counts.items():
                yield row, "released", str(category), int(n)
        return
    yield row, "requests", "", 1
    if effect == "permit":
        yield row, "permitted", "", 1
        for category, n in counts.items():
            yield row, "released", str(category), int(n)
    elif effect == "deny":
        yield row, "refused", "", 1
        for code in body.get("reasons") or ():
            yield row, "refused_by_reason", str(code), 1
    else:
        yield row, "failed", "", 1


def tally(
    events: Iterable[tuple[dt.datetime, str, str, Mapping[str, Any]]], tz: dt.tzinfo = dt.UTC
) -> Counter[Key]:
    """The figures of ``(ts, kind, effect, body)`` events, per day of the library's calendar
    (``tz``, BULWARK_TIMEZONE), so that a report's window is the library's days."""
    out: Counter[Key] = Counter()
    for ts, kind, effect, body in events:
        if kind not in KINDS:
            continue
        day = ts.astimezone(tz).date()
        for row, measure, item, n in figures_of(kind, effect, body):
            out[(day, row, measure, item)] += n
    return out


def batch_rows(events: Iterable[Mapping[str, Any]], tz: dt.tzinfo = dt.UTC) -> list[dict[str, Any]]:
    """The figure increments of a decided batch's event rows (``ts``, ``kind``, ``body`` text)."""
    counted = tally(
        (
            (e["ts"], e["kind"], e["effect"], json.loads(e["body"]))
            for e in events
            if e["kind"] in KINDS
        ),
        tz,
    )
    return [
        {"day": day, "line": row, "measure": measure, "item": item, "count": n}
        for (day, row, measure, item), n in counted.items()
    ]


async def add_figures(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to the stored figures: one upsert, in the caller's transaction."""
    if rows:
        await conn.execute(_upsert(conn.dialect.name), rows)


@functools.cache
def _upsert(dialect: str) -> Any:
    if dialect == "mysql":
        mine = mysql.insert(FIGURES)
        return mine.on_duplicate_key_update(count=FIGURES.c.count + mine.inserted["count"])
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(FIGURES)
    return stmt.on_conflict_do_update(
        index_elements=["day", "line", "measure", "item"],
        set_={"count": FIGURES.c.count + stmt.excluded["count"]},
    )


async def read_figures(
    conn: AsyncConnection, start: dt.date, end: dt.date
) -> Counter[tuple[str, str, str]]:
    """``(row, measure, item) -> n`` summed over the days ``start``..``end`` (inclusive)."""
    total = func.sum(FIGURES.c["count"])
    query = (
        select(FIGURES.c.line, FIGURES.c.measure, FIGURES.c.item, total)
        .where(and_(FIGURES.c.day >= start, FIGURES.c.day <= end))
        .group_by(FIGURES.c.line, FIGURES.c.measure, FIGURES.c.item)
    )
    out: Counter[tuple[str, str, str]] = Counter()
    for row, measure, item, n in await conn.execute(query):
        out[(str(row), str(measure), str(item))] = int(n)
    return out


async def stored(conn: AsyncConnection) -> Counter[Key]:
    """Every stored figure (for verification)."""
    out: Counter[Key] = Counter()
    query = select(
        FIGURES.c.day, FIGURES.c.line, FIGURES.c.measure, FIGURES.c.item, FIGURES.c["count"]
    )
    for day, row, measure, item, n in await conn.execute(query):
        if int(n):
            out[(day, str(row), str(measure), str(item))] = int(n)
    return out


def disagreeing_days(expected: Counter[Key], found: Counter[Key]) -> list[dt.date]:
    """The days whose stored figures are not the ones the chain's events give, oldest first."""
    keys = {k for k, n in expected.items() if n} | {k for k, n in found.items() if n}
    return sorted({k[0] for k in keys if expected[k] != found[k]})
