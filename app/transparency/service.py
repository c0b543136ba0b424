"""The transparency report, from the figures the audit writer keeps with the log.

The figures are counted per UTC day as events are appended, in the same transaction
(:mod:`app.audit.figures`), so a report sums a few rows per day of its period: its cost does
not grow with the log. ``bulwark audit verify`` checks them against the chain.

Per row: requests received (every ``POST /v1/disclosures`` without a cursor is one event),
permitted, refused and failed, refusals by reason code, and records released by category
(later pages of a disclosure included). A row is the instrument of a **verified** order;
orders that failed verification are one row, ``unverified``, whatever they claim to be, and
requests without an order are ``none``.

Banding: the instruments the policy lists in ``[transparency] banded_instruments`` are given
only as bands of ``band_width`` (``0-249``), never as exact numbers, and only for a fixed
reporting period, a calendar half-year (1 January to 30 June, 1 July to 31 December), once it
has closed. For any other window their rows are withheld: sliding a window a day at a time
would otherwise show where a count crosses a band's edge. A banded row lists every reason
code and category, so that neither a row nor a key appearing reveals that one such request
came. The report has no totals across rows, which would let a reader subtract the exact rows
from them.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.figures import NO_ORDER, ROWS, UNVERIFIED, read_figures
from app.core.reasons import REASONS, Reason
from app.policy.models import LoadedPolicy
from app.records.categories import Category

__all__ = ["NO_ORDER", "ROWS", "UNVERIFIED"]

MEASURES: Final = ("requests", "permitted", "refused", "failed")
#: The codes a refusal of a disclosure can carry; a banded row lists each of them.
REFUSAL_CODES: Final = tuple(
    r.value
    for r in Reason
    if (REASONS[r].status == 403 and r is not Reason.CALLER_FORBIDDEN)
    or r is Reason.CALLER_UNAUTHENTICATED
)
CATEGORIES: Final = tuple(c.value for c in Category)
WITHHELD: Final = "withheld"

Figure = int | str


def band(count: int, width: int) -> str:
    """The band ``count`` falls in: ``0-249``, ``250-499``... for a width of 250."""
    low = count // width * width
    return f"{low}-{low + width - 1}"


def half_year(start: dt.date, end: dt.date) -> bool:
    """True when ``start``..``end`` is exactly one calendar half-year."""
    first = dt.date(start.year, 1, 1), dt.date(start.year, 6, 30)
    second = dt.date(start.year, 7, 1), dt.date(start.year, 12, 31)
    return (start, end) in (first, second)


def utc_today() -> dt.date:
    """Today in UTC: when a half-year has closed (one place, so tests can move it)."""
    return dt.datetime.now(dt.UTC).date()


def publishes_bands(start: dt.date, end: dt.date, today: dt.date) -> bool:
    """Banded rows are published for a calendar half-year that has closed, and only then."""
    return half_year(start, end) and end < today


async def build_report(
    engine: AsyncEngine,
    policy: LoadedPolicy,
    *,
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The report for the library's inclusive date range ``start``..``end``; see the module doc."""
    async with engine.connect() as conn:
        figures = await read_figures(conn, start, end)
    tallies: dict[str, dict[str, Counter[str]]] = {
        row: {"measures": Counter(), "refused_by_reason": Counter(), "released": Counter()}
        for row in ROWS
    }
    for (row, measure, item), n in figures.items():
        tally = tallies.get(row)
        if tally is None:
            continue
        if measure in MEASURES:
            tally["measures"][measure] += n
        elif measure in ("refused_by_reason", "released"):
            tally[measure][item] += n
    rules = policy.policy.transparency
    banded = {i.value for i in rules.banded_instruments}
    published = publishes_bands(start, end, today or utc_today())
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "policy": policy.sha256,
        "band_width": rules.band_width,
        "bands_published": published,
        "instruments": [
            _row(name, tallies[name], name in banded, published, rules.band_width) for name in ROWS
        ],
    }


def _row(
    name: str, tally: dict[str, Counter[str]], banded: bool, published: bool, width: int
) -> dict[str, Any]:
    measures, reasons, released = tally["measures"], tally["refused_by_reason"], tally["released"]
    if not banded:
        return {
            "instrument": name,
            "banded": False,
            **{m: measures[m] for m in MEASURES},
            "refusals_by_reason": dict(sorted((k, v) for k, v in reasons.items() if v)),
            "records_released": {c: released[c] for c in CATEGORIES},
        }
    if not published:
        # Not a closed calendar half-year: nothing of this row, not even a band.
        return {
            "instrument": name,
            "banded": True,
            "withheld": True,
            **dict.fromkeys(MEASURES, WITHHELD),
            "refusals_by_reason": {},
            "records_released": dict.fromkeys(CATEGORIES, WITHHELD),
        }
    # Every code and category, each a band: a key's presence must say nothing either.
    codes = sorted({*REFUSAL_CODES, *reasons})
    return {
        "instrument": name,
        "banded": True,
        **{m: band(measures[m], width) for m in MEASURES},
        "refusals_by_reason": {code: band(reasons[code], width) for code in codes},
        "records_released": {c: band(released[c], width) for c in CATEGORIES},
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
