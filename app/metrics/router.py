"""``GET /metrics``: Prometheus's text format, open or behind its own key (``BULWARK_METRICS``).

The route sits outside ``/v1``: a scraper is not a library system and gets no API key, so a
stolen scrape credential opens nothing but counters. ``off`` does not mount the route at all.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.core.config import Settings
from app.core.problems import AuthError
from app.metrics.registry import render


def metrics_router(settings: Settings) -> APIRouter | None:
    """The ``/metrics`` route for ``settings.metrics``, or None when metrics are off."""
    if settings.metrics == "off":
        return None
    expected = (
        f"Bearer {settings.metrics_key.get_secret_value()}".encode()
        if settings.metrics == "key" and settings.metrics_key is not None
        else None
    )
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """The process's metrics; with ``BULWARK_METRICS=key``, only for the metrics key."""
        if settings.metrics != "open":
            given = request.headers.get("authorization", "").encode("latin-1")
            # Constant time: the comparison must not tell a guesser how much it got right.
            if expected is None or not hmac.compare_digest(given, expected):
                raise AuthError()
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    return router
