"""What a permit lets the records store return: the period asked for and the obligations.

These values are the records layer's vocabulary; the policy engine fills them and every
store honours them (docs/architecture.md). Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from app.records.categories import Category


@dataclass(frozen=True, slots=True)
class Period:
    """An inclusive date range."""

    start: dt.date
    end: dt.date

    def contains(self, other: Period) -> bool:
        return self.start <= other.start and other.end <= self.end

    def intersect(self, other: Period) -> Period | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Period(start, end) if start <= end else None

    def as_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True, slots=True)
class Obligations:
    """What a permit allows, and so all the store may return."""

    patron_id: str
    categories: tuple[Category, ...]
    period: Period
    fields: Mapping[Category, tuple[str, ...]]
