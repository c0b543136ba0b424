"""``GET /v1/legal-holds`` (auditor, admin, records_admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from app.api.deps import HoldReader, RuntimeDep
from app.core.atrest import sealer_of
from app.core.clock import clock_of
from app.core.database import state_errors
from app.holds import service
from app.holds.schemas import HoldPage

router = APIRouter(prefix="/legal-holds", tags=["legal holds"])


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
