"""The transparency report, computed from the audit log alone.

One pass over the ``disclosure`` events whose time falls in the period, a page at a time (the
log is never loaded whole), counting per instrument: requests received (every
``POST /v1/disclosures`` is one event), permitted, refused and failed, refusals by reason
code, and records released by category. Because nothing else is read, the figures are exactly
what ``GET /v1/audit/events`` shows.

Banding: the instruments the policy lists in ``[transparency] banded_instruments`` are given
only as bands of ``band_width`` (``0-249``), never as exact numbers; they are always listed,
with every reason code and category, so that neither a row nor a key appearing reveals that
one such request came. The report has no totals across instruments, which would let a reader
subtract the exact rows from them.

The instrument of a request is the one its order names, verified or not (a request is
received whatever its order is worth); a request without an order is counted under ``none``,
one whose order names no known instrument under ``unrecognised``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.core.clock import UTC_CLOCK, LibraryClock
from app.core.reasons import REASONS, Reason
from app.orders.models import Category, Instrument
from app.policy.models import LoadedPolicy

EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
PAGE: Final = 5000
NO_ORDER: Final = "none"
UNRECOGNISED: Final = "unrecognised"
#: Every row of the report, in this order: the instruments, then requests without one.
ROWS: Final = (*(i.value for i in Instrument), NO_ORDER, UNRECOGNISED)
INSTRUMENTS: Final = frozenset(i.value for i in Instrument)
MEASURES: Final = ("requests", "permitted", "refused", "failed")
#: The codes a refusal of a disclosure can carry; a banded row lists each of them.
REFUSAL_CODES: Final = tuple(
    r.value
    for r in Reason
    if (REASONS[r].status == 403 and r is not Reason.CALLER_FORBIDDEN)
    or r is Reason.CALLER_UNAUTHENTICATED
)
CATEGORIES: Final = tuple(c.value for c in Category)

Figure = int | str


@dataclass(slots=True)
class _Tally:
    """Exact counts for one row, while the log is read."""

    measures: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    released: Counter[str] = field(default_factory=Counter)


def band(count: int, width: int) -> str:
    """The band ``count`` falls in: ``0-249``, ``250-499``... for a width of 250."""
    low = count // width * width
    return f"{low}-{low + width - 1}"


def instrument_of(body: dict[str, Any]) -> str:
    """The report row of an event: its order's instrument, ``none`` or ``unrecognised``."""
    order = body.get("order")
    if not isinstance(order, dict):
        return NO_ORDER
    instrument = order.get("instrument")
    return instrument if instrument in INSTRUMENTS else UNRECOGNISED


def count_event(tallies: dict[str, _Tally], effect: str, body: dict[str, Any]) -> None:
    """Add one disclosure event to its row."""
    tally = tallies[instrument_of(body)]
    tally.measures["requests"] += 1
    if effect == "permit":
        tally.measures["permitted"] += 1
        released = body.get("released") or {}
        for category, n in (released.get("counts") or {}).items():
            tally.released[str(category)] += int(n)
    elif effect == "deny":
        tally.measures["refused"] += 1
        tally.reasons.update(str(code) for code in body.get("reasons") or ())
    else:
        tally.measures["failed"] += 1


async def disclosure_events(
    engine: AsyncEngine, start: dt.datetime, end: dt.datetime
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(effect, body)`` of each disclosure event with ``start <= ts < end``, in seq order.

    The time index gives the first and last sequence numbers of the period; the events
    between are then read in windows of :data:`PAGE` sequence numbers on the primary key, and
    filtered here. Planners left to choose (SQLite without statistics picks the ``kind``
    index and sorts) made each page rescan the period: quadratic in the log's size.
    """
    in_period = and_(EVENTS.c.ts >= start, EVENTS.c.ts < end)
    async with engine.connect() as conn:
        low, high = (
            await conn.execute(
                select(func.min(EVENTS.c.seq), func.max(EVENTS.c.seq)).where(in_period)
            )
        ).one()
    if low is None:
        return
    cols = (EVENTS.c.seq, EVENTS.c.kind, EVENTS.c.effect, EVENTS.c.ts, EVENTS.c.body)
    for first in range(int(low), int(high) + 1, PAGE):
        window = and_(EVENTS.c.seq >= first, EVENTS.c.seq < first + PAGE)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(*cols).where(window).order_by(EVENTS.c.seq))).all()
        for row in rows:
            if row.kind == "disclosure" and start <= row.ts < end:
                yield str(row.effect), json.loads(row.body)


def period_bounds(
    start: dt.date, end: dt.date, clock: LibraryClock = UTC_CLOCK
) -> tuple[dt.datetime, dt.datetime]:
    """The instants ``[start's local midnight, the midnight after end)`` in the library's zone."""
    bounds = clock.bounds(start, end)
    return bounds.start, bounds.end


async def build_report(
    engine: AsyncEngine,
    policy: LoadedPolicy,
    *,
    start: dt.date,
    end: dt.date,
    clock: LibraryClock = UTC_CLOCK,
) -> dict[str, Any]:
    """The report for the library's inclusive dates ``start``..``end``; see the module doc."""
    tallies = {row: _Tally() for row in ROWS}
    lo, hi = period_bounds(start, end, clock)
    async for effect, body in disclosure_events(engine, lo, hi):
        count_event(tallies, effect, body)
    rules = policy.policy.transparency
    banded = {i.value for i in rules.banded_instruments}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "policy": policy.sha256,
        "band_width": rules.band_width,
        "instruments": [
            _row(name, tallies[name], name in banded, rules.band_width) for name in ROWS
        ],
    }


def _row(name: str, tally: _Tally, banded: bool, width: int) -> dict[str, Any]:
    if not banded:
        return {
            "instrument": name,
            "banded": False,
            **{m: tally.measures[m] for m in MEASURES},
            "refusals_by_reason": dict(sorted(tally.reasons.items())),
            "records_released": {c: tally.released[c] for c in CATEGORIES},
        }
    # Every code and category, each a band: a key's presence must say nothing either.
    codes = sorted({*REFUSAL_CODES, *tally.reasons})
    return {
        "instrument": name,
        "banded": True,
        **{m: band(tally.measures[m], width) for m in MEASURES},
        "refusals_by_reason": {code: band(tally.reasons[code], width) for code in codes},
        "records_released": {c: band(tally.released[c], width) for c in CATEGORIES},
    }


CSV_HEADER: Final = ("from", "to", "instrument", "banded", "measure", "item", "value")


def csv_rows(report: dict[str, Any]) -> Iterable[tuple[Figure, ...]]:
    """The report as long-format rows under :data:`CSV_HEADER` (header included)."""
    yield CSV_HEADER
    span = (report["from"], report["to"])
    for row in report["instruments"]:
        head = (*span, row["instrument"], "true" if row["banded"] else "false")
        for measure in MEASURES:
            yield (*head, measure, "", row[measure])
        for code, value in row["refusals_by_reason"].items():
            yield (*head, "refused_by_reason", code, value)
        for category, value in row["records_released"].items():
            yield (*head, "records_released", category, value)


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV text (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(report))
    return out.getvalue()


class ReportCache:
    """Reports computed lately, so that anonymous readers cannot make each hit re-read the log.

    The public page and report need no key; without this a loop of requests would keep a
    process reading the whole period's log. Anonymous readers are served from here: a period
    that ended before today can no longer change (events are stamped when written) and is
    kept an hour, any other for ``ttl_seconds``. At most one report is computed at a time per
    process, and at most ``max_entries`` are kept. Auditors and admins always get fresh ones.
    """

    FINAL_TTL_SECONDS: Final = 3600.0

    def __init__(self, *, ttl_seconds: float = 30.0, max_entries: int = 64) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def get(
        self,
        key: tuple[str, str, str],
        compute: Callable[[], Awaitable[dict[str, Any]]],
        *,
        final: bool,
    ) -> dict[str, Any]:
        """The cached report for ``key``, or ``compute()``'s, stored for later readers."""
        hit = self._fresh(key)
        if hit is not None:
            return hit
        async with self._lock:
            hit = self._fresh(key)  # computed by the reader we waited for
            if hit is not None:
                return hit
            report = await compute()
            ttl = self.FINAL_TTL_SECONDS if final else self._ttl
            self._entries.pop(key, None)
            while len(self._entries) >= self._max:
                self._entries.pop(next(iter(self._entries)))  # the oldest
            self._entries[key] = (time.monotonic() + ttl, report)
            return report

    def _fresh(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        found = self._entries.get(key)
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]
