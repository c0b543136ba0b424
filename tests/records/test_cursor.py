"""Cursors round-trip their own state and refuse anything else."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.records.categories import Category
from app.records.cursor import (
    CursorInvalid,
    decode_cursor,
    encode_cursor,
    tag_value,
    untag_value,
)

C = Category


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01 10:00:00.000000",
        42,
        dt.date(2026, 6, 30),
        dt.datetime(2026, 6, 30, 23, 59, 59, 999999),
        dt.datetime(2026, 6, 30, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        Decimal("12.500"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ],
)
def test_ordering_keys_round_trip_with_their_type(value: Any) -> None:
    cursor = encode_cursor(C.HOLDS, {"k": tag_value(value)})
    restored = untag_value(decode_cursor(cursor, C.HOLDS)["k"])
    assert restored == value
    assert type(restored) is type(value)


def test_cursor_is_url_safe_and_holds_no_period_or_patron() -> None:
    cursor = encode_cursor(C.CIRCULATION, {"k": tag_value("2026-01-01"), "i": tag_value(7)})
    assert cursor.replace("-", "").replace("_", "").isalnum()
    assert set(decode_cursor(cursor, C.CIRCULATION)) == {"k", "i"}


def test_unpageable_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        tag_value(1.5)


@pytest.mark.parametrize("cursor", ["", "@@@", "bm90IGpzb24", "eyJ2IjoyLCJjIjoiaG9sZHMifQ"])
def test_garbage_is_refused(cursor: str) -> None:
    with pytest.raises(CursorInvalid):
        decode_cursor(cursor, C.HOLDS)


def test_other_category_is_refused() -> None:
    with pytest.raises(CursorInvalid):
        decode_cursor(encode_cursor(C.HOLDS, {}), C.CIRCULATION)


@pytest.mark.parametrize("pair", [None, [], ["i"], ["i", "7"], ["d", 20260101], ["q", 1]])
def test_malformed_values_are_refused(pair: Any) -> None:
    with pytest.raises(CursorInvalid):
        untag_value(pair)
