"""Whether a stored date lies in an order's period, judged the way the value's type means.

An order's period is a run of the library's calendar days (``BULWARK_TIMEZONE``). A stored
value is one of three kinds of time (:class:`TimeKind`), and each is compared its own way:

``date``
    A calendar date (SQL ``DATE``, ``YYYY-MM-DD`` text): in the period when
    ``from <= value <= to``.
``local``
    A wall-clock date and time with no zone (``DATETIME`` on MariaDB, ``timestamp without
    time zone`` on PostgreSQL, naive ISO text): read as local time in the store's zone (the
    library's, unless the mapping names another for the store or the category), and in the
    period when it lies between the period's bounds expressed as that zone's wall-clock
    times: ``[first day's local midnight, the midnight after the last day)``. In the
    library's own zone those are plain midnights.
``instant``
    An exact instant (``TIMESTAMP`` on MariaDB, ``timestamptz`` on PostgreSQL, ISO text with
    ``Z`` or an offset): in the period when it lies between the exact instants of those two
    local midnights. Across a daylight-saving change a day is 23 or 25 hours long; the
    bounds are computed here from the IANA rules, never from a database's time-zone tables.

A category's period meaning (:class:`PeriodMeaning`) is ``event`` (dated by one column: in
the period when that date is) or ``state`` (a span from a start column to an optional end
column, like a registration: in the period when it started on or before the period's last
day and did not end before its first day; a missing end means it has not ended).

Stores call :class:`TimeFrame`. Its public methods are all an HTTP-like store needs to judge
ISO 8601 values: :meth:`TimeFrame.event_in` and :meth:`TimeFrame.state_in` (take ``date``,
``datetime`` or ISO text; raise :class:`MalformedTime` for a value that cannot be placed in
time), :meth:`TimeFrame.release` (a value as it leaves: datetimes with their offset), and for
SQL stores :meth:`TimeFrame.local_bounds` and :meth:`TimeFrame.instant_bounds`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from app.core.calendar import UTC, DayBounds, LibraryClock
from app.records.obligations import Period


class TimeKind(StrEnum):
    """What a stored time value means (see the module docstring)."""

    DATE = "date"
    LOCAL = "local"
    INSTANT = "instant"


class PeriodMeaning(StrEnum):
    """How a category's records relate to a period: one dated event, or a span of time."""

    EVENT = "event"
    STATE = "state"


class MalformedTime(ValueError):
    """A stored value that cannot be placed in time. The text names no value (it may be data)."""


#: The ISO 8601 forms accepted as text: a date, or a date and time with an optional zone.
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?P<zone>Z|z|[+-]\d{2}:?\d{2})?)?"
)


def parse_iso(text: str) -> dt.date | dt.datetime:
    """``text`` as a ``date`` or a (naive or aware) ``datetime``; MalformedTime otherwise."""
    if not isinstance(text, str) or not _ISO.fullmatch(text):
        raise MalformedTime("not an ISO 8601 date or date and time")
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        raise MalformedTime("not a valid date or time") from None


def iso_kind(text: str) -> TimeKind:
    """The kind of time an ISO 8601 text holds (MalformedTime when it holds none)."""
    value = parse_iso(text)
    if not isinstance(value, dt.datetime):
        return TimeKind.DATE
    return TimeKind.LOCAL if value.tzinfo is None else TimeKind.INSTANT


@dataclass(frozen=True, slots=True)
class TimeFrame:
    """The library's calendar and the zone a store's wall-clock values are written in."""

    clock: LibraryClock
    store_zone: ZoneInfo

    @classmethod
    def of(cls, clock: LibraryClock, store_zone: ZoneInfo | None = None) -> TimeFrame:
        """The frame of ``clock``, wall-clock values in ``store_zone`` (default: the library's)."""
        return cls(clock, store_zone or clock.tz)

    # --- bounds ----------------------------------------------------------------------------

    def instant_bounds(self, period: Period) -> DayBounds:
        """``[from's local midnight, the midnight after to)`` as aware UTC instants."""
        return self.clock.bounds(period.start, period.end)

    def local_bounds(self, period: Period) -> tuple[dt.datetime, dt.datetime]:
        """The same bounds as naive wall-clock times in the store's zone (``[lo, hi)``)."""
        bounds = self.instant_bounds(period)
        return self.wall(bounds.start), self.wall(bounds.end)

    def wall(self, instant: dt.datetime) -> dt.datetime:
        """An aware instant as the store zone's naive wall-clock time."""
        return instant.astimezone(self.store_zone).replace(tzinfo=None)

    @staticmethod
    def date_bounds(period: Period) -> tuple[dt.date, dt.date]:
        """``[from, to + 1 day)``; at the end of the calendar ``to`` itself."""
        end = period.end + dt.timedelta(days=1) if period.end < dt.date.max else period.end
        return period.start, end

    # --- judging values --------------------------------------------------------------------

    def place(self, value: Any) -> tuple[TimeKind, dt.date | dt.datetime]:
        """``value`` (date, datetime or ISO text) as its kind and a comparable value.

        Dates stay dates; wall-clock datetimes stay naive (store zone); instants become aware.
        """
        if isinstance(value, str):
            value = parse_iso(value)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                return TimeKind.LOCAL, value
            return TimeKind.INSTANT, value.astimezone(UTC)
        if isinstance(value, dt.date):
            return TimeKind.DATE, value
        raise MalformedTime("not a date, a date and time, or ISO 8601 text")

    def event_in(self, value: Any, period: Period) -> bool:
        """Whether an event dated ``value`` lies in ``period`` (MalformedTime if unplaceable)."""
        kind, placed = self.place(value)
        return self._on_or_after_start(kind, placed, period) and self._before_end(
            kind, placed, period
        )

    def state_in(self, start: Any, end: Any, period: Period) -> bool:
        """Whether a span from ``start`` to ``end`` (None: not ended) overlaps ``period``.

        It started on or before the period's last day and did not end before its first: a
        span ending on the period's first day counts (it held on that day). A span with no
        start cannot be placed in any period and is left out.
        """
        if start is None:
            return False
        kind, began = self.place(start)
        if not self._before_end(kind, began, period):
            return False
        if end is None:
            return True
        kind, ended = self.place(end)
        return self._on_or_after_start(kind, ended, period)

    def _on_or_after_start(self, kind: TimeKind, value: Any, period: Period) -> bool:
        if kind is TimeKind.DATE:
            return bool(value >= period.start)
        if kind is TimeKind.LOCAL:
            return bool(value >= self.local_bounds(period)[0])
        return bool(value >= self.instant_bounds(period).start)

    def _before_end(self, kind: TimeKind, value: Any, period: Period) -> bool:
        if kind is TimeKind.DATE:
            return bool(value <= period.end)
        if kind is TimeKind.LOCAL:
            return bool(value < self.local_bounds(period)[1])
        return bool(value < self.instant_bounds(period).end)

    # --- releasing values ------------------------------------------------------------------

    def release(self, value: Any, kind: TimeKind | None = None) -> Any:
        """A time value as it leaves Bulwark: ISO 8601, every datetime with its offset.

        ``kind`` is the column's kind when known: a naive datetime from an ``instant`` column
        (MariaDB's TIMESTAMP, read in UTC) is UTC; from any other column it is the store
        zone's wall-clock time. Instants are shown in the library's zone. Text that is not
        ISO 8601 is returned unchanged (it decides nothing; period columns are checked).
        """
        if isinstance(value, str):
            try:
                parsed = parse_iso(value)
            except MalformedTime:
                return value
            if not isinstance(parsed, dt.datetime):
                return value
            value = parsed
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                zone = UTC if kind is TimeKind.INSTANT else self.store_zone
                value = value.replace(tzinfo=zone)
                if kind is not TimeKind.INSTANT:
                    return value.isoformat()
            return value.astimezone(self.clock.tz).isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return value
