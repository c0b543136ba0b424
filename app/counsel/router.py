"""``GET /counsel``: the counsel office's page, for the admin role.

A browser cannot send a bearer token when it follows a link, so the page also accepts HTTP
Basic authentication with the API key as the password (any user name): the browser asks once
and remembers it for the tab. A bearer key works as everywhere else. The key is looked up
live (a revoked key is refused at once) and must be an admin's.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.callers.models import Role
from app.core.database import state_errors
from app.core.problems import BulwarkError, ForbiddenError, StateUnavailable
from app.core.reasons import Reason
from app.counsel.page import render
from app.counsel.service import counsel_view
from app.runtime import Runtime

router = APIRouter(include_in_schema=False)

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="bulwark counsel", charset="UTF-8"'}


def _key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


@router.get("/counsel", response_class=HTMLResponse)
async def counsel_page(request: Request) -> HTMLResponse:
    """Orders presented, approved, used and revoked (admin only)."""
    runtime: Runtime = request.app.state.runtime
    key = _key(request)
    if key is None:
        raise BulwarkError(Reason.CALLER_UNAUTHENTICATED, headers=_CHALLENGE)
    try:
        caller = await runtime.callers.authenticate(key, live=True)
    except BulwarkError as error:
        raise BulwarkError(error.reasons, headers=_CHALLENGE) from None
    except Exception:
        raise StateUnavailable() from None
    request.state.caller = caller
    if caller.role is not Role.ADMIN:
        raise ForbiddenError()
    with state_errors(keep=()):
        view = await counsel_view(runtime.state)
    return HTMLResponse(render(view))
