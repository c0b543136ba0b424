"""The holds routes' request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HeldOrder(BaseModel):
    """The order that placed a hold."""

    iss: str
    jti: str


class HoldOut(BaseModel):
    """Records a purge job must keep: this patron's, in these categories, over this period.

    A hold of a sealed order (``sealed``: the court forbids disclosure until a date) names
    only the patron and the hold's end: keep every record of the patron until then.
    """

    id: int
    patron_id: str
    sealed: bool = Field(
        default=False,
        description="The order is under nondisclosure: categories, period, order and "
        "created_at are withheld; keep all of the patron's records until held_until.",
    )
    categories: list[str] | None
    from_: str | None = Field(alias="from", description="First day of the held period.")
    to: str | None = Field(description="Last day of the held period.")
    held_until: str = Field(description="The hold ends then: the order's expiry plus a margin.")
    order: HeldOrder | None
    created_at: str | None


EXAMPLE_HOLD: dict[str, Any] = {
    "id": 1,
    "patron_id": "P000123",
    "sealed": False,
    "categories": ["circulation", "holds"],
    "from": "2026-01-01",
    "to": "2026-06-30",
    "held_until": "2027-09-30T12:00:00+00:00",
    "order": {"iss": "https://courts.example/il-cook", "jti": "2026-CR-0042-order-1"},
    "created_at": "2026-07-02T12:00:00+00:00",
}


class HoldPage(BaseModel):
    """A page of holds in force."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"holds": [EXAMPLE_HOLD], "next_after": None}]}
    )

    holds: list[HoldOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )
