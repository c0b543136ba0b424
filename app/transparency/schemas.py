"""The transparency routes' request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Figure = int | str


EXAMPLE_REPORT: dict[str, Any] = {
    "from": "2026-01-01",
    "to": "2026-06-30",
    "generated_at": "2026-07-01T00:00:00+00:00",
    "policy": "9f2c…",
    "band_width": 250,
    "bands_published": True,
    "instruments": [
        {
            "instrument": "court_order",
            "banded": False,
            "requests": 12,
            "permitted": 8,
            "refused": 3,
            "failed": 1,
            "refusals_by_reason": {"order.expired": 2, "scope.patron": 1},
            "records_released": {"circulation": 40, "holds": 3},
        },
        {
            "instrument": "national_security_letter",
            "banded": True,
            "requests": "0-249",
            "permitted": "0-249",
            "refused": "0-249",
            "failed": "0-249",
            "refusals_by_reason": {"order.not_court_issued": "0-249"},
            "records_released": {"circulation": "0-249"},
        },
    ],
}


class InstrumentRow(BaseModel):
    """One instrument's figures: numbers, or band strings such as ``0-249`` when banded."""

    instrument: str = Field(examples=["court_order"])
    banded: bool
    withheld: bool = Field(
        default=False,
        description="A banded row outside a closed calendar half-year: no figure is given.",
    )
    requests: Figure
    permitted: Figure
    refused: Figure
    failed: Figure = Field(description="The store failed; nothing was released.")
    refusals_by_reason: dict[str, Figure]
    records_released: dict[str, Figure]


class TransparencyReport(BaseModel):
    """The report for an inclusive range of the library's dates (see docs/transparency.md)."""

    model_config = ConfigDict(
        populate_by_name=True, json_schema_extra={"examples": [EXAMPLE_REPORT]}
    )

    from_: str = Field(alias="from")
    to: str
    generated_at: str
    policy: str = Field(description="sha256 of the policy in force.")
    band_width: int
    bands_published: bool = Field(
        description="True only for a closed calendar half-year: banded rows have figures."
    )
    instruments: list[InstrumentRow]
