"""``GET /docs``: Swagger UI 5 from the ``fastapi-offline`` package, served by Bulwark itself.

No CDN: the page's script and stylesheet are this package's own files, served from
``/docs/assets/``, and the page starts Swagger UI from a script file (``/docs/init.js``), not an
inline script. So the page works offline and under a Content-Security-Policy that admits only
this origin's scripts (``script-src 'self'``), no inline script and no ``eval``; every other
route keeps the service's default policy, which admits no script at all.

``GET /problems/{code}``: what a problem's ``type`` URI resolves to, one page per reason code
(its status, meaning and whether to retry), with no script.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from app.apidocs.reference import retry_advice
from app.core.problems import BulwarkError
from app.core.reasons import REASONS, Reason

router = APIRouter(include_in_schema=False)

#: The one relaxation of the service's CSP, for /docs only: scripts from this origin.
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
_ASSETS: Final = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
#: The package's static files (Swagger UI 5 reads OpenAPI 3.1, which FastAPI writes); only
#: these files are used, not the package's own FastAPI wrapper.
_ROOT: Final = files("fastapi_offline") / "static"

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bulwark API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
</head><body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""

_INIT: Final = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def _headers() -> dict[str, str]:
    # Static files of a pinned package version: caching them is safe, unlike an API answer.
    return {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "public, max-age=86400"}


@router.get("/docs")
async def docs() -> HTMLResponse:
    """The Swagger UI page."""
    return HTMLResponse(_PAGE, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs/init.js")
async def docs_init() -> Response:
    """The script that starts Swagger UI on ``/openapi.json``."""
    return Response(_INIT, media_type="text/javascript; charset=utf-8", headers=_headers())


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> Response:
    """One of the bundle's files, by name from a fixed list (never a path from the request)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise BulwarkError(Reason.REQUEST_NOT_FOUND)
    return Response((_ROOT / name).read_bytes(), media_type=media_type, headers=_headers())


@router.get("/problems/{code}")
async def problem_type(code: str) -> HTMLResponse:
    """The page a problem's ``type`` resolves to: the code's status, meaning and retry advice."""
    try:
        reason = Reason(code)
    except ValueError:
        raise BulwarkError(Reason.REQUEST_NOT_FOUND) from None
    info = REASONS[reason]
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(reason.value)}</title></head><body><main>"
        f"<h1><code>{escape(reason.value)}</code></h1>"
        f"<dl><dt>Status</dt><dd data-field='status'>{info.status}</dd>"
        f"<dt>Meaning</dt><dd data-field='message'>{escape(info.message)}</dd>"
        f"<dt>Retry</dt><dd data-field='retry'>{escape(retry_advice(reason))}</dd></dl>"
        "<p>Every reason code, and what to log: <code>docs/api.md</code> in Bulwark's "
        "repository; the API itself: <a href='/docs'>/docs</a>.</p>"
        "</main></body></html>"
    )
    return HTMLResponse(page)
