"""The notices routes' request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_NOTICE: dict[str, Any] = {
    "id": "3f1b7c9e-4a5d-4f0e-9a43-2b7d8c1e5f60",
    "patron_id": "P000123",
    "disclosure_id": "9c0e2a4b-7d1f-4e3a-8b6c-5d2f1a0e9b87",
    "disclosed_at": "2026-03-02T10:15:00+00:00",
    "case": "2026-CR-000123",
    "court": "Circuit Court of Cook County",
    "instrument": "court_order",
    "categories": ["circulation"],
    "from": "2026-01-01",
    "to": "2026-06-30",
    "not_before": "2026-09-01",
    "delivered_at": None,
}


class NoticeOut(BaseModel):
    """What the library may now tell a patron: what was released, when, under which case."""

    id: str
    patron_id: str
    disclosure_id: str
    disclosed_at: str
    case: str
    court: str
    instrument: str = Field(examples=["court_order"])
    categories: list[str] = Field(description="The record categories released.")
    from_: str = Field(alias="from", description="First day of the released period.")
    to: str = Field(description="Last day of the released period.")
    not_before: str = Field(description="The first day the notice may be given.")
    delivered_at: str | None


class NoticePage(BaseModel):
    """A page of notices."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"notices": [EXAMPLE_NOTICE]}]})

    notices: list[NoticeOut]


class DeliveredOut(BaseModel):
    """A notice marked delivered."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_NOTICE["id"],
                    "delivered_at": "2026-09-01T08:00:00+00:00",
                    "already_delivered": False,
                    "audit_seq": 42,
                }
            ]
        }
    )

    id: str
    delivered_at: str
    already_delivered: bool
    audit_seq: int | None = Field(
        description="The event recording the delivery (none if repeated)."
    )
