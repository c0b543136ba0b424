"""A real upstream records API for the HTTP store's tests: Starlette under uvicorn, on
127.0.0.1 and an ephemeral port, in a background thread. Every request it receives is kept
(raw path, query and headers) so that tests can see exactly what Bulwark sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.records.serving import local_socket, serving

PATRON = "P-ALPHA"


@dataclass
class Seen:
    """One request as the upstream received it."""

    raw_path: str  # as sent, percent-encoding and all
    path: str  # as the server decoded it
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Upstream:
    """The running server: its base URL and what it has received."""

    base_url: str
    requests: list[Seen] = field(default_factory=list)


def _loan(day: Any, title: Any, **extra: Any) -> dict[str, Any]:
    return {"title": title, "checked_out": day, "due": "2026-12-31", **extra}


def loans_of(patron: str) -> list[dict[str, Any]]:
    """The upstream's loans for ``patron``: some outside any 2026-H1 period, extra fields."""
    return [
        _loan("2025-12-31T23:59:59", "before", patron=patron),
        _loan("2026-01-01", "first day", patron=patron, secret_note="UPSTREAM-SECRET"),
        _loan("2026-03-15T10:00:00+02:00", "march", patron=patron, card_pin="1234"),
        _loan("2026-06-30T23:59:59Z", "last day", patron=patron),
        _loan("2026-07-01T00:00:00", "after", patron=patron),
        _loan(None, "undated", patron=patron),
        _loan("2026-02-02", "someone else's", patron="P-BRAVO"),
    ]


PAGED_TOTAL = 25


def _paged(start: int, count: int) -> list[dict[str, Any]]:
    return [
        _loan(f"2026-02-{1 + i % 28:02d}", f"paged {i:02d}", patron=PATRON)
        for i in range(start, min(start + count, PAGED_TOTAL))
    ]


def build_app(upstream: Upstream) -> Any:
    async def loans(request: Request) -> Response:
        return JSONResponse(loans_of(request.path_params["patron"]))

    async def paged(request: Request) -> Response:
        # Pages of `limit`, continued by an opaque cursor (here, an offset in disguise).
        limit = int(request.query_params["limit"])
        start = int(request.query_params.get("cursor", "o0")[1:])
        nxt = f"o{start + limit}" if start + limit < PAGED_TOTAL else None
        return JSONResponse({"loans": _paged(start, limit), "next_cursor": nxt})

    async def greedy(request: Request) -> Response:
        # Ignores `limit`: 7 items per page, two pages.
        start = int(request.query_params.get("cursor", "o0")[1:])
        nxt = "o7" if start == 0 else None
        return JSONResponse({"loans": _paged(start, 7), "next_cursor": nxt})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(3)
        return JSONResponse([])

    async def drip(request: Request) -> Response:

        async def body() -> AsyncIterator[bytes]:
            yield b"["
            for _ in range(30):
                await asyncio.sleep(0.1)
                yield b" "
            yield b"]"

        return StreamingResponse(body(), media_type="application/json")

    async def status(request: Request) -> Response:
        return JSONResponse({"error": "upstream broke"}, status_code=request.path_params["code"])

    async def malformed(request: Request) -> Response:
        return Response(b'[{"title": "unterminated', media_type="application/json")

    async def shape(request: Request) -> Response:
        kind = request.path_params["kind"]
        bodies: dict[str, Any] = {
            "object": {"loans": []},
            "scalars": [1, 2, 3],
            "missing": [{"checked_out": "2026-02-01"}],
            "nested": [_loan("2026-02-01", {"hidden": "UPSTREAM-SECRET"})],
            "baddate": [_loan("last tuesday", "x")],
            "numberdate": [_loan(20260201, "x")],
            "nodate": [{"title": "x"}],
            "itemsnotlist": {"loans": "nope"},
            "badcursor": {"loans": [], "next_cursor": 7},
        }
        return JSONResponse(bodies[kind])

    async def unsound(request: Request) -> Response:
        # JSON that Python's parser accepts but that is not data: NaN, an escaped lone surrogate.
        value = {"nan": "NaN", "infinity": "-Infinity", "surrogate": '"\\ud800 x"'}
        title = value[request.path_params["kind"]]
        text = f'[{{"title": {title}, "checked_out": "2026-02-01", "due": "2026-12-31"}}]'
        return Response(text.encode(), media_type="application/json")

    async def big(request: Request) -> Response:
        items = [_loan("2026-02-01", "x" * 100) for _ in range(500)]
        return JSONResponse(items)

    async def big_stream(request: Request) -> Response:

        async def body() -> AsyncIterator[bytes]:
            yield b"["
            for i in range(500):
                yield (b"," if i else b"") + json.dumps(_loan("2026-02-01", "x" * 100)).encode()
            yield b"]"

        return StreamingResponse(body(), media_type="application/json")

    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"/patrons/{request.path_params['patron']}/loans", 302)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [
        Route("/patrons/{patron}/loans", loans),
        Route("/paged/{patron}/loans", paged),
        Route("/greedy/{patron}/loans", greedy),
        Route("/slow/{patron}", slow),
        Route("/drip/{patron}", drip),
        Route("/status/{code:int}/{patron}", status),
        Route("/malformed/{patron}", malformed),
        Route("/shape/{kind}/{patron}", shape),
        Route("/unsound/{kind}/{patron}", unsound),
        Route("/big/{patron}", big),
        Route("/big-stream/{patron}", big_stream),
        Route("/redirect/{patron}", redirect),
        Route("/healthz", healthz),
    ]
    app = Starlette(routes=routes)

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        # Every request, routed or not, as it arrived.
        if scope["type"] == "http":
            request = Request(scope)
            upstream.requests.append(
                Seen(
                    raw_path=scope["raw_path"].decode("latin-1"),
                    path=scope["path"],
                    query=dict(request.query_params),
                    headers=dict(request.headers),
                )
            )
        await app(scope, receive, send)

    return recorded


@contextmanager
def running_upstream() -> Iterator[Upstream]:
    """Serve the upstream on 127.0.0.1 until the block ends."""
    sock, url = local_socket()
    upstream = Upstream(url)
    with serving(build_app(upstream), sock, "the upstream test server"):
        yield upstream
