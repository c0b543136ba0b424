"""``GET /v1/notices/due``, ``POST /v1/notices/{id}/delivered`` (notifier), ``GET /v1/notices``
(auditor, admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.api.deps import Auditor, Notifier, RuntimeDep
from app.core.atrest import sealer_of
from app.core.clock import library_today
from app.core.database import state_errors
from app.core.problems import problem_responses
from app.notices import service
from app.notices.schemas import DeliveredOut, NoticePage

router = APIRouter(prefix="/notices", tags=["notices"])

NoticeId = Annotated[str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f-]{36}$")]


def _today(runtime: Any) -> dt.date:
    # The library's calendar date (BULWARK_TIMEZONE) of the state database's time, as every
    # replica sees it: a replica whose clock is fast must not list a notice before the
    # court's nondisclosure date (issue 16), and a notice is due from its local date on.
    return library_today(runtime)


@router.get(
    "/due",
    operation_id="listDueNotices",
    summary="Notices that may be given now and were not yet delivered",
    response_model=NoticePage,
    response_model_by_alias=True,
)
async def due(
    runtime: RuntimeDep, caller: Notifier, limit: int = Query(100, ge=1, le=1000)
) -> NoticePage:
    """Oldest first. A notice under a court's nondisclosure date is not listed before it."""
    with state_errors(keep=()):
        notices = await service.due_notices(runtime.state, today=_today(runtime), limit=limit)
        notices = sealer_of(runtime).open_rows(notices)
    return NoticePage.model_validate({"notices": notices})


@router.post(
    "/{notice_id}/delivered",
    operation_id="markNoticeDelivered",
    summary="Record that a notice was given to the patron",
    response_model=DeliveredOut,
    responses=problem_responses(404),
)
async def delivered(notice_id: NoticeId, runtime: RuntimeDep, caller: Notifier) -> DeliveredOut:
    """Audited; repeating it changes nothing. 404 for an unknown notice or one not yet due."""
    result = await service.mark_delivered(
        runtime.state,
        runtime.audit,
        notice_id,
        caller_name=caller.name,
        caller_id=caller.id,
        today=_today(runtime),
    )
    return DeliveredOut(
        id=result.notice_id,
        delivered_at=result.delivered_at.isoformat(),
        already_delivered=result.already_delivered,
        audit_seq=result.audit_seq,
    )


@router.get(
    "",
    operation_id="listNotices",
    summary="Notices whose date has come, delivered or not (auditors)",
    response_model=NoticePage,
    response_model_by_alias=True,
)
async def list_all(
    runtime: RuntimeDep,
    caller: Auditor,
    after: dt.datetime | None = Query(None, description="Notices created after this instant."),
    limit: int = Query(100, ge=1, le=1000),
) -> NoticePage:
    """Sealed notices (before their date) are not listed, to auditors either."""
    if after is not None and after.tzinfo is None:
        after = after.replace(tzinfo=dt.UTC)
    with state_errors(keep=()):
        notices = await service.list_notices(
            runtime.state, today=_today(runtime), after=after, limit=limit
        )
        notices = sealer_of(runtime).open_rows(notices)
    return NoticePage.model_validate({"notices": notices})
