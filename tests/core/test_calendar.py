"""The library's clock: BULWARK_TIMEZONE, and the calendar notices and reports go by."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from app.core.calendar import LibraryClock, UnknownTimeZone, zone
from app.core.config import Settings
from app.notices.service import notice_row
from app.orders.issuing import make_claims
from app.orders.models import OrderClaims
from app.policy.decision import Period
from app.transparency.service import period_bounds


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "CST", "localtime", "../etc/passwd", ""])
def test_an_unknown_time_zone_refuses_start(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(timezone=name)
    assert "BULWARK_TIMEZONE" in str(caught.value)
    assert "is not an IANA time zone name" in str(caught.value)
    with pytest.raises(UnknownTimeZone):
        zone(name)


def test_the_default_is_utc_and_a_zone_is_taken_by_name() -> None:
    assert Settings().clock.name == "UTC"
    assert Settings(timezone="America/Chicago").clock.name == "America/Chicago"


def test_today_is_the_library_s_date() -> None:
    clock = LibraryClock.named("America/Chicago")
    late = dt.datetime(2027, 1, 1, 3, 0, tzinfo=dt.UTC)  # 21:00 on 31 December in Chicago
    assert clock.today(late) == dt.date(2026, 12, 31)
    assert LibraryClock.named("Asia/Tokyo").today(late) == dt.date(2027, 1, 1)


def test_a_notice_is_dated_by_the_library_s_calendar() -> None:
    claims = OrderClaims.model_validate(make_claims(now=dt.datetime(2026, 12, 20, tzinfo=dt.UTC)))
    row = notice_row(
        disclosure_id="d",
        patron_id="P1",
        claims=claims,
        categories=["circulation"],
        period=Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
        now=dt.datetime(2027, 1, 1, 3, 0, tzinfo=dt.UTC),
        clock=LibraryClock.named("America/Chicago"),
    )
    assert row["not_before"] == dt.date(2026, 12, 31)


def test_a_report_s_days_are_the_library_s() -> None:
    lo, hi = period_bounds(
        dt.date(2026, 1, 1), dt.date(2026, 12, 31), LibraryClock.named("America/Chicago")
    )
    assert lo.isoformat() == "2026-01-01T06:00:00+00:00"
    assert hi.isoformat() == "2027-01-01T06:00:00+00:00"
