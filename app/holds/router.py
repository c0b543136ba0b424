"""``GET /v1/legal-holds`` (auditor, admin, records_admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.deps import HoldReader, RuntimeDep
from app.core.atrest import sealer_of
from app.core.clock import clock_of
from app.core.database import state_errors
from app.holds import service

router = APIRouter(prefix="/legal-holds", tags=["legal holds"])


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


@router.get(
    "",
    operation_id="listLegalHolds",
    summary="Holds in force, for the records store's purge jobs",
    response_model=HoldPage,
    response_model_by_alias=True,
)
async def list_holds(
    runtime: RuntimeDep,
    caller: HoldReader,
    after: int = Query(0, ge=0, le=2**62, description="Return holds after this id."),
    limit: int = Query(500, ge=1, le=5000),
    patron_id: Annotated[str, StringConstraints(max_length=128)] | None = Query(None),
) -> HoldPage:
    """Holds whose end is still to come, by id; expired holds are not listed."""
    sealer = sealer_of(runtime)
    with state_errors(keep=()):
        # Holds name patrons sealed (app/core/atrest.py): the lookup seals the id asked for.
        holds = await service.list_holds(
            runtime.state,
            now=clock_of(runtime).now(),
            after=after,
            limit=limit,
            patron_id=None if patron_id is None else sealer.seal(patron_id),
        )
        holds = sealer.open_rows(holds)
    next_after = holds[-1]["id"] if len(holds) == limit else None
    return HoldPage.model_validate({"holds": holds, "next_after": next_after})
