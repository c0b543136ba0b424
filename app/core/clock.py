"""One clock for the whole deployment: the state database's.

A replica two days slow permitted an order its peer refused as expired, and dated its event
before its predecessor; one 45 days fast listed a notice a month early (issue 16). So every
time that decides something — an order's validity, an event's ``ts``, a notice's due date, a
hold's end — is the state database's time, which all replicas share:

- :meth:`StateClock.measure` reads the database's clock (one query, the round trip halved),
  and :meth:`StateClock.now` carries it forward with this process's monotonic clock, which no
  wall-clock step moves; it is measured again every few seconds;
- :meth:`StateClock.check` compares this replica's own wall clock with it on every ``/v1``
  request: beyond the policy's ``clock_skew_seconds`` the replica refuses with 503 (the
  operator must fix its clock; readyz says so), because libraries and tools around it (the
  records store, logs, the notifier) go by that wall clock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.calendar import LibraryClock
from app.core.models import utcnow
from app.core.problems import StateUnavailable

#: How often the database's clock is read again (a cheap query, off the hot path).
REFRESH_SECONDS = 5.0
#: How long a measurement may be used when the database cannot be asked again.
STALE_SECONDS = 300.0

_NOW_SQL = {
    # clock_timestamp(), not now(): now() is the start of the transaction.
    "postgresql": "SELECT clock_timestamp()",
    "mysql": "SELECT UTC_TIMESTAMP(6)",
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


class ClockSkewed(StateUnavailable):
    """This replica's wall clock disagrees with the state database's beyond the skew."""

    def __init__(self) -> None:
        super().__init__(
            "This replica's clock is off from the state database's by more than the "
            "policy's clock_skew_seconds; nothing was decided. Fix the host's time sync."
        )


def _parse(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"the database's clock answered a {type(value).__name__}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class StateClock:
    """The state database's clock, as this process sees it; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        skew_seconds: float,
        local: Callable[[], dt.datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._engine = engine
        self.skew_seconds = skew_seconds
        #: This replica's wall clock (tests replace it to fake a skewed host).
        self.local = local
        self._monotonic = monotonic
        self._refresh = refresh_seconds
        self._base: tuple[dt.datetime, float] | None = None

    async def measure(self) -> None:
        """Read the database's clock now."""
        sql = text(_NOW_SQL.get(self._engine.dialect.name, "SELECT CURRENT_TIMESTAMP"))
        before = self._monotonic()
        async with self._engine.connect() as conn:
            value = (await conn.execute(sql)).scalar_one()
        after = self._monotonic()
        self._base = (_parse(value), (before + after) / 2)

    def now(self) -> dt.datetime:
        """The database's time now (the last measurement carried forward)."""
        if self._base is None:
            raise RuntimeError("the state clock was never measured")
        at, mono = self._base
        return at + dt.timedelta(seconds=self._monotonic() - mono)

    def offset_seconds(self) -> float:
        """How far this replica's wall clock is ahead (+) or behind (-) the database's."""
        return (self.local() - self.now()).total_seconds()

    async def refresh(self) -> None:
        """Measure again when the last measurement is older than the refresh interval."""
        if self._base is None or self._monotonic() - self._base[1] > self._refresh:
            await self.measure()

    async def check(self) -> None:
        """Raise :class:`ClockSkewed` (503) when this replica's clock is off."""
        try:
            await self.refresh()
        except Exception:
            # The last measurement, carried forward by the monotonic clock, stays good for a
            # while: a database that is briefly away is the state's own failure to report
            # (where the request needs it), not a clock fault.
            if self._base is None or self._monotonic() - self._base[1] > STALE_SECONDS:
                raise StateUnavailable() from None
        if abs(self.offset_seconds()) > self.skew_seconds:
            raise ClockSkewed()

    def report(self) -> dict[str, Any]:
        """For readyz: whether this replica's clock agrees, and by how much it is off."""
        offset = self.offset_seconds()
        return {
            "ok": abs(offset) <= self.skew_seconds,
            "offset_seconds": round(offset, 3),
            "allowed_seconds": self.skew_seconds,
        }


def clock_of(runtime: Any) -> StateClock:
    """The process's state clock (built at start by ``build_runtime``, or here on first use)."""
    found = runtime.clock
    if not isinstance(found, StateClock):
        found = runtime.clock = StateClock(
            runtime.state, skew_seconds=runtime.policy.policy.clock_skew_seconds
        )
    return found


async def decision_now(runtime: Any) -> dt.datetime:
    """The time a decision is taken at: the state database's, after checking this replica."""
    clock = clock_of(runtime)
    await clock.check()
    return clock.now()


def library_today(runtime: Any) -> dt.date:
    """The library's calendar date (``BULWARK_TIMEZONE``) at the state database's time.

    Notices fall due and seals lift by this date: the shared clock, so that no replica's own
    clock opens a sealed notice early, read on the library's calendar, so that a day is the
    library's day and not UTC's.
    """
    calendar: LibraryClock = runtime.settings.clock
    return calendar.date_of(clock_of(runtime).now())
