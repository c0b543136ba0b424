"""The library's clock: BULWARK_TIMEZONE, and the calendar notices and reports go by."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from app.audit.figures import tally
from app.core.calendar import LibraryClock, UnknownTimeZone, zone
from app.core.config import Settings
from app.notices.service import notice_row
from app.orders.issuing import make_claims
from app.orders.models import OrderClaims
from app.records.obligations import Period


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
    assert row.not_before == dt.date(2026, 12, 31)


def test_a_report_s_days_are_the_library_s() -> None:
    # The report's figures are kept per day of the library's calendar: a decision at 21:00 on
    # 31 December in Chicago (03:00 UTC on 1 January) counts in December, and one at 00:30
    # local time on 1 January (06:30 UTC) in January.
    body = {"order": {"verified": True, "instrument": "court_order"}, "reasons": []}
    chicago = LibraryClock.named("America/Chicago").tz
    late = dt.datetime(2027, 1, 1, 3, 0, tzinfo=dt.UTC)
    early = dt.datetime(2027, 1, 1, 6, 30, tzinfo=dt.UTC)
    counted = tally(
        [(late, "disclosure", "deny", body), (early, "disclosure", "deny", body)], chicago
    )
    days = sorted({key[0] for key in counted})
    assert days == [dt.date(2026, 12, 31), dt.date(2027, 1, 1)]
    assert {key[0] for key in tally([(late, "disclosure", "deny", body)])} == {dt.date(2027, 1, 1)}
