"""ASGI middleware: request ids, security headers, body limits and the access log.

Written as plain ASGI (not ``BaseHTTPMiddleware``) because it runs on every request and must
cost microseconds, and because the body limit must act before the body is read.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.problems import PROBLEM_CONTENT_TYPE, RequestTooLarge

access_log = logging.getLogger("bulwark.access")

#: Called once per answered request with (scope, status, seconds): the metrics hook.
RequestObserver = Callable[[Scope, int, float], None]

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        b"frame-ancestors 'none'",
    ),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

#: A request id the caller may choose: short, and nothing that could carry data or break logs.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def route_template(scope: Scope) -> str:
    """The matched route's template with its router prefixes (``/v1/disclosures``).

    Never the concrete path, which may carry an identifier. FastAPI keeps the included
    router's own route (without the ``/v1`` prefix) in ``scope["route"]`` and the full
    template in its effective route context, so that is read first.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "<unmatched>"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class _TooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Request id, security headers, body limit and one access-log line per request."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, observe: RequestObserver | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        supplied = _header(scope, b"x-request-id")
        request_id = (
            supplied.decode("ascii")
            if supplied and _REQUEST_ID.match(supplied.decode("latin-1"))
            else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder: dict[str, Any] = {"status": 500}
        flags = {"too_large": False}

        async def send_wrapper(message: Message) -> None:
            if flags["too_large"]:
                return  # the app's own answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                # A route may set its own CSP or caching (the /docs page and its assets);
                # two CSP headers would both be enforced, so the route's replaces the default.
                own = {bytes(name).lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in own)
                message["headers"] = headers
            await send(message)

        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            flags["too_large"] = True
        else:
            try:
                await self.app(scope, self._limited(receive, flags), send_wrapper)
            except _TooLarge:
                flags["too_large"] = True
        if flags["too_large"]:
            # Frameworks catch errors raised while reading the body and answer 400; the
            # flag, not the exception, is what decides.
            flags["too_large"] = False
            await self._reject(send_wrapper, request_id)
        self._log(scope, status_holder["status"], started, request_id)
        if self.observe is not None:
            self.observe(scope, status_holder["status"], time.perf_counter() - started)

    def _limited(self, receive: Receive, flags: dict[str, bool]) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    flags["too_large"] = True
                    raise _TooLarge
            return message

        return wrapped

    async def _reject(self, send: Send, request_id: str) -> None:
        body = RequestTooLarge(self.max_body_bytes).to_problem()
        body["request_id"] = request_id
        payload = json.dumps(body).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _log(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        state = scope.get("state", {})
        caller = state.get("caller")
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope.get("method"),
                "route": route_template(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "caller": getattr(caller, "name", None),
                "effect": state.get("decision_effect"),
                "reasons": state.get("decision_reasons"),
            },
        )
