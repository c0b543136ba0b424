"""The library's clock: its time zone, its calendar days, and the instants that bound them.

An order's ``from``/``to``, a request's period, a notice's date, a legal hold's end and a
transparency report's window are all dates of the library's own calendar
(``BULWARK_TIMEZONE``, an IANA name). A calendar day is the half-open span of instants from
its local midnight to the next one: 23 or 25 hours long on the days the clocks change, and
where a zone skips midnight itself (a change at 00:00) the day starts at the first local time
that exists. Everything here is computed in Python from the IANA data (``zoneinfo``); no
database's time-zone tables are consulted.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = dt.UTC
DEFAULT_TIMEZONE = "UTC"


class UnknownTimeZone(ValueError):
    """A name that is not an IANA time zone."""


#: Files some systems keep among the zones that name no place's rules.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``America/Chicago``, ``UTC``); UnknownTimeZone otherwise.

    Only names of the IANA database are accepted: not file paths, not ``localtime``, not
    abbreviations such as ``CST`` that name no single set of rules.
    """
    if not isinstance(name, str) or name not in _known_zones():
        raise UnknownTimeZone(
            f"{name!r} is not an IANA time zone name (for example America/Chicago, "
            "Europe/Berlin or UTC)"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # listed but unreadable: still refuse
        raise UnknownTimeZone(f"{name!r}: the time zone data cannot be read") from exc


def local_midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The first instant of ``day`` in ``tz``, as an aware UTC datetime.

    Normally 00:00 local. Where the clocks jump forward at midnight, 00:00 does not exist and
    the day begins at the jump (the first local time that does); where they fall back across
    midnight, the day begins at the first of the two 00:00s.
    """
    naive = dt.datetime.combine(day, dt.time())
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # 00:00 falls in a gap: the day starts at the transition, the first instant whose local
    # date is ``day``. Transitions fall on whole seconds; search the surrounding day for it.
    low = first - dt.timedelta(hours=26)
    high = first + dt.timedelta(hours=26)
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).date() < day:
            low = mid
        else:
            high = mid
    return high


@dataclass(frozen=True, slots=True)
class DayBounds:
    """The half-open span ``[start, end)`` of an inclusive run of local days, as UTC instants."""

    start: dt.datetime
    end: dt.datetime

    def contains(self, instant: dt.datetime) -> bool:
        """Whether an aware ``instant`` lies in the span."""
        return self.start <= instant < self.end


@dataclass(frozen=True, slots=True)
class LibraryClock:
    """The library's time zone and calendar (see the module docstring)."""

    tz: ZoneInfo

    @classmethod
    def named(cls, name: str) -> LibraryClock:
        """The clock of the IANA zone ``name``; UnknownTimeZone when there is none."""
        return cls(zone(name))

    @property
    def name(self) -> str:
        return self.tz.key

    def now(self) -> dt.datetime:
        """The current instant, aware, in the library's zone."""
        return dt.datetime.now(self.tz)

    def today(self, now: dt.datetime | None = None) -> dt.date:
        """The library's calendar date at ``now`` (default: the current instant)."""
        return self.date_of(now) if now is not None else dt.datetime.now(self.tz).date()

    def date_of(self, instant: dt.datetime) -> dt.date:
        """The library's calendar date of an aware instant (a naive one is taken as UTC)."""
        aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
        return aware.astimezone(self.tz).date()

    def midnight(self, day: dt.date) -> dt.datetime:
        """The first instant of the library's ``day`` (UTC, aware)."""
        return local_midnight(day, self.tz)

    def bounds(self, first: dt.date, last: dt.date) -> DayBounds:
        """The instants ``[first's local midnight, the midnight after last)``."""
        end = last + dt.timedelta(days=1) if last < dt.date.max else last
        return DayBounds(self.midnight(first), self.midnight(end))

    def local_iso(self, instant: dt.datetime) -> str:
        """An aware instant as ISO 8601 in the library's zone, with its offset."""
        return instant.astimezone(self.tz).isoformat()


UTC_CLOCK = LibraryClock(ZoneInfo("UTC"))
