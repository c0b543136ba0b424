"""``GET /v1/transparency`` (JSON or CSV) and the public page ``GET /transparency``.

Both live outside the authenticated ``/v1`` router, because the policy may publish them:
with ``[transparency] public = true`` anyone may read them; otherwise the JSON report needs an
auditor's or admin's key and the page does not exist (404), since a browser has no key to send.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from app.api.deps import Credentials, RuntimeDep, authenticate
from app.callers.models import Role
from app.callers.service import Caller
from app.core.calendar import UTC_CLOCK, LibraryClock
from app.core.clock import library_today
from app.core.database import state_errors
from app.core.problems import (
    BulwarkError,
    ForbiddenError,
    RequestInvalid,
    problem_responses,
)
from app.core.reasons import Reason
from app.runtime import Runtime
from app.transparency import page, service
from app.transparency.schemas import TransparencyReport

api_router = APIRouter(prefix="/v1", tags=["transparency"])
page_router = APIRouter(tags=["transparency"])

READERS = frozenset({Role.AUDITOR, Role.ADMIN})
CSV_TYPE = "text/csv"

FromDate = Annotated[
    dt.date | None,
    Query(
        alias="from",
        description="First day (the library's calendar, BULWARK_TIMEZONE), inclusive; "
        "default 1 January of `to`.",
    ),
]
ToDate = Annotated[
    dt.date | None,
    Query(description="Last day (the library's calendar), inclusive; default today."),
]


def period(
    start: dt.date | None, end: dt.date | None, clock: LibraryClock = UTC_CLOCK
) -> tuple[dt.date, dt.date]:
    """The report's inclusive range of the library's dates, with its defaults."""
    end = end or clock.today()
    start = start or end.replace(month=1, day=1)
    if end >= dt.date.max:  # the day after it, where the period ends, does not exist
        raise RequestInvalid(
            "`to` is too far in the future.", [{"loc": ["query", "to"], "type": "date_range"}]
        )
    if end < start:
        raise RequestInvalid(
            "`to` is before `from`.", [{"loc": ["query", "to"], "type": "date_order"}]
        )
    return start, end


async def _report(runtime: Runtime, start: dt.date, end: dt.date, *, fresh: bool) -> dict[str, Any]:
    async def compute() -> dict[str, Any]:
        with state_errors(keep=()):
            return await service.build_report(
                runtime.state, runtime.policy, start=start, end=end, today=library_today(runtime)
            )

    if fresh:
        return await compute()
    cache = runtime.report_cache
    key = (start.isoformat(), end.isoformat(), runtime.policy.sha256)
    final = end < library_today(runtime)
    report: dict[str, Any] = await cache.get(key, compute, final=final)
    return report


async def _reader(
    request: Request, runtime: Runtime, credentials: HTTPAuthorizationCredentials | None
) -> Caller | None:
    """The auditor or admin asking, None for a public reader; 401/403 when the report is private.

    A key sent to a public report is still checked (a bad one is 401); any other role reads
    as the public does.
    """
    if credentials is None and runtime.policy.policy.transparency.public:
        return None
    caller = await authenticate(request, credentials)
    if caller.role in READERS:
        return caller
    if runtime.policy.policy.transparency.public:
        return None
    raise ForbiddenError()


def wants_csv(request: Request) -> bool:
    """True when the Accept header names ``text/csv`` (parameters such as q are ignored)."""
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == CSV_TYPE for part in accept.split(","))


@api_router.get(
    "/transparency",
    operation_id="getTransparencyReport",
    summary="The transparency report, from the audit log",
    response_model=TransparencyReport,
    responses={
        200: {
            "description": "The report; CSV when `Accept: text/csv`.",
            "content": {CSV_TYPE: {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 429, 422, 503),
    },
)
async def transparency_report(
    request: Request,
    runtime: RuntimeDep,
    credentials: Credentials,
    start: FromDate = None,
    to: ToDate = None,
) -> Response:
    """Per instrument: requests received, permitted, refused and failed; refusals by reason
    code; records released by category. Banded instruments only in bands of the policy's
    width. Auditors and admins (figures as of now); anyone when the policy makes the report
    public (figures up to 30 s old, or an hour for a period that has ended)."""
    caller = await _reader(request, runtime, credentials)
    # Auditors get figures as of now; the public, the cached ones (see service.ReportCache).
    report = await _report(
        runtime, *period(start, to, runtime.settings.clock), fresh=caller is not None
    )
    if wants_csv(request):
        name = f"transparency-{report['from']}-{report['to']}.csv"
        return Response(
            service.to_csv(report),
            media_type=CSV_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return JSONResponse(report)


@page_router.get(
    "/transparency",
    operation_id="getTransparencyPage",
    summary="The public transparency page (HTML)",
    response_class=HTMLResponse,
    # A page for people, not an API operation: kept out of the OpenAPI document.
    include_in_schema=False,
)
async def transparency_page(
    runtime: RuntimeDep, start: FromDate = None, to: ToDate = None
) -> HTMLResponse:
    """The report as a page readable without JavaScript; 404 unless the policy publishes it."""
    if not runtime.policy.policy.transparency.public:
        raise BulwarkError(
            Reason.REQUEST_NOT_FOUND, "This library does not publish its transparency report."
        )
    report = await _report(runtime, *period(start, to, runtime.settings.clock), fresh=False)
    log = runtime.log  # app/audit/tlog.py: the checkpoint signer
    return HTMLResponse(page.render(report, log_key=log.verifier.vkey if log else None))
