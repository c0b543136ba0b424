"""``Idempotency-Key`` on every ``POST /v1/…``: the first answer, again, for a retry.

The Stripe convention: a caller that may retry a POST sends a unique key with it (a UUID).
The same key with the same request within 24 hours gets the first answer again (status,
body, records included) without running the request again: no second disclosure, no second
use of the order, no second decision event; the replay itself is recorded as one small
``replay`` audit event naming the event it replays. The same key with another method, path
or body is refused with 422 ``idempotency.key_reused``; while the first request is still
running, a duplicate gets 409 ``idempotency.in_progress`` and ``Retry-After``. Keys belong
to one caller: another caller's identical key is another key.

This layer is generic on purpose: it keeps and replays whole answers, whatever route made
them, so that routes never need to know about it. It sits inside the request-context
middleware (body limit, request id, security headers) and before routing; the caller is
authenticated here with the same registry the routes use, live (a revoked key replays
nothing), and a request it cannot authenticate goes on to the routes, which refuse it.

What is and is not kept: answers below 500 are kept (a policy refusal is an answer, and its
audit event was written); a 5xx (nothing was released), a 401, a 409 and a 429 are not, and
the key is freed so that the retry runs for real. See :mod:`app.idempotency.store` for how
the kept answer is protected.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.writer import Entry
from app.callers.service import Caller
from app.core import secrets
from app.core.problems import (
    PROBLEM_CONTENT_TYPE,
    AuthError,
    BulwarkError,
    RequestInvalid,
    StateUnavailable,
)
from app.core.reasons import Reason
from app.idempotency.store import (
    Claimed,
    IdempotencyKey,
    IdempotencyStore,
    InFlight,
    OtherRequest,
    Replay,
    StoredAnswer,
    answer_audit_seq,
)
from app.ratelimit import limiter_of
from app.runtime import Runtime

logger = logging.getLogger("bulwark.idempotency")

HEADER: Final = b"idempotency-key"
#: Printable ASCII, as Stripe allows, up to 255 characters: a UUID fits many times over.
_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Answers with these statuses are not kept: the retry must run (see the module docstring).
_NOT_KEPT: Final = frozenset({401, 409, 429})
#: Headers of the first answer that a replay repeats (the rest are per-answer).
_KEPT_HEADERS: Final = frozenset({"content-type", "content-disposition", "location"})


def store_of(runtime: Runtime) -> IdempotencyStore:
    """The runtime's idempotency store, built on first use."""
    if runtime.idempotency is None:
        secret = secrets.pseudonym_key(runtime.settings)
        runtime.idempotency = IdempotencyStore(runtime.state, secret)
    return runtime.idempotency


class IdempotencyMiddleware:
    """Replays the first answer of a POST that carries a known ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = _header(scope, HEADER) if _applies(scope) else None
        if raw is None:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        key = raw.decode("latin-1")
        if not _KEY.match(key):
            detail = "The Idempotency-Key header must be 1 to 255 printable ASCII characters."
            await _send_problem(send, RequestInvalid(detail), request_id)
            return
        body = await _read_body(receive)
        replay_receive = _replaying(body)
        runtime: Runtime = scope["app"].state.runtime
        caller = await _caller(runtime, scope)
        if caller is None:  # the routes refuse it, with their own answer; nothing is kept
            await self.app(scope, replay_receive, send)
            return
        store = store_of(runtime)
        ikey = store.key(caller.id, key)
        mac = ikey.request_mac("POST", _target(scope), body)
        try:
            outcome = await store.claim(ikey, caller.id, mac)
        except ValueError:
            # The row does not decrypt under this key: altered, or from another instance
            # secret. Never replay it and never run the request under a key in that state.
            await _send_problem(send, StateUnavailable(_UNREADABLE), request_id)
            return
        except Exception as exc:
            logger.error("idempotency store failed", extra={"error_type": type(exc).__name__})
            await _send_problem(send, StateUnavailable(), request_id)
            return
        if isinstance(outcome, OtherRequest):
            await _send_problem(send, BulwarkError(Reason.IDEMPOTENCY_KEY_REUSED), request_id)
        elif isinstance(outcome, InFlight):
            error = BulwarkError(Reason.IDEMPOTENCY_IN_PROGRESS, headers={"Retry-After": "1"})
            await _send_problem(send, error, request_id)
        elif isinstance(outcome, Replay):
            await self._replay(runtime, caller, outcome.answer, send, request_id)
        else:
            assert isinstance(outcome, Claimed)
            await self._first(scope, replay_receive, send, store, ikey)

    async def _first(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: IdempotencyStore,
        ikey: IdempotencyKey,
    ) -> None:
        """Run the request, keep its answer (sealed) before sending it, or free the key."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await _release_quietly(store, ikey)
            raise
        if start is None:  # the app sent nothing (a cut-off body): nothing to keep
            await _release_quietly(store, ikey)
            return
        status = int(start["status"])
        body = b"".join(chunks)
        if status >= 500 or status in _NOT_KEPT:
            await _release_quietly(store, ikey)
        else:
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in start.get("headers", [])
                if name.decode("latin-1").lower() in _KEPT_HEADERS
            ]
            try:
                # Kept before it is sent: a retry that arrives once the caller has the answer
                # always finds it.
                await store.finish(ikey, StoredAnswer(status, headers, body))
            except Exception as exc:
                # The request has run (a use may be spent): the answer goes out all the
                # same; the key stays "in flight" until its lease runs out.
                logger.error("idempotent answer not kept", extra={"error_type": type(exc).__name__})
        await send({**start, "headers": _without_length(start.get("headers", []), body)})
        await send({"type": "http.response.body", "body": body})

    async def _replay(
        self,
        runtime: Runtime,
        caller: Caller,
        answer: StoredAnswer,
        send: Send,
        request_id: str | None,
    ) -> None:
        """Answer the first answer again, after recording the replay."""
        try:
            await limiter_of(runtime).hit(caller)
            appended = await runtime.audit.append(
                Entry(
                    kind="replay",
                    effect="info",
                    body={
                        "v": 1,
                        "caller": caller.name,
                        "replays_seq": answer_audit_seq(answer),
                        "status": answer.status,
                    },
                    caller_id=caller.id,
                )
            )
            if Reason.CALLER_UNAUTHENTICATED in appended.refused:
                raise AuthError()
        except BulwarkError as error:
            await _send_problem(send, error, request_id)
            return
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in answer.headers]
        headers.append((b"idempotent-replayed", b"true"))
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": _without_length(headers, answer.body),
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


_UNREADABLE: Final = (
    "The answer kept for this Idempotency-Key cannot be read; use a new key to retry."
)


def _applies(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope.get("method") == "POST"
        and str(scope.get("path", "")).startswith("/v1/")
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    path = str(scope.get("path", ""))
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _caller(runtime: Runtime, scope: Scope) -> Caller | None:
    """The authenticated caller, or None (the routes then give their own refusal)."""
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return await runtime.callers.authenticate(token.strip(), live=True)
    except Exception:
        return None


async def _read_body(receive: Receive) -> bytes:
    # The request-context middleware around this one has already capped the body's size.
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _without_length(headers: Any, body: bytes) -> list[tuple[bytes, bytes]]:
    kept = [(bytes(n), bytes(v)) for n, v in headers if bytes(n).lower() != b"content-length"]
    kept.append((b"content-length", str(len(body)).encode()))
    return kept


async def _release_quietly(store: IdempotencyStore, ikey: IdempotencyKey) -> None:
    try:
        await store.release(ikey)
    except Exception as exc:
        # The key then stays "in flight" until its lease runs out; the retry waits, no more.
        logger.error("idempotency key not freed", extra={"error_type": type(exc).__name__})


async def _send_problem(send: Send, error: BulwarkError, request_id: str | None) -> None:
    body = error.to_problem()
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE.encode())]
    headers.extend((n.lower().encode(), v.encode()) for n, v in error.headers.items())
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def document_header(schema: dict[str, Any]) -> None:
    """Declare ``Idempotency-Key`` on every ``POST /v1/…`` of an OpenAPI document."""
    parameter = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes a retry safe: the same key with the same body within 24 hours answers the "
            "first answer again (header Idempotent-Replayed: true), without running the "
            "request again; another body is 422 idempotency.key_reused. A UUID per request."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    }
    for path, operations in schema.get("paths", {}).items():
        post = operations.get("post") if path.startswith("/v1/") else None
        if post is not None:
            post.setdefault("parameters", []).append(dict(parameter))
