"""Slow and oversized clients, refused by the HTTP protocol that ``bulwark serve`` runs.

uvicorn closes idle keep-alive connections, but has no deadline for *reading* a request: a
client that opens a connection and says nothing, or dribbles its headers a byte at a time
(slowloris), or its body, holds the connection for as long as it likes, and enough of them
exhaust the process's file descriptors. Nor does its httptools parser bound the header block.

:class:`GuardedHttpToolsProtocol` is uvicorn's own httptools protocol (the fast one, as the
benchmarks run) with two limits added:

- a whole request (request line, headers and body) must arrive within
  ``BULWARK_CLIENT_TIMEOUT_SECONDS`` of its first byte, or of the connection's opening;
  past it, 408 if the headers were still coming, and the connection is closed;
- the request line and headers may hold at most ``BULWARK_MAX_HEADER_BYTES``; beyond, 431.

The deadline stops when the request has been read, so a slow store or audit log never cuts
an answer short. Refusals made here, before the application sees the request, are problem
bodies with the security headers, like every other answer.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.core.config import Settings
from app.core.middleware import SECURITY_HEADERS
from app.core.problems import PROBLEM_CONTENT_TYPE, BulwarkError
from app.core.reasons import Reason


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """How long a client may take to send a request, and how large its headers may be."""

    timeout_seconds: float
    max_header_bytes: int


@functools.cache
def configured_limits() -> ClientLimits:
    """The limits of this process's settings (read once: every worker reads its environment)."""
    settings = Settings()
    return ClientLimits(settings.client_timeout_seconds, settings.max_header_bytes)


class _HeadersTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-read deadline and a header-size limit."""

    limits: ClientLimits | None = None  # None: configured_limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.limits or configured_limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._in_headers = False
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._in_headers = True
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the request is in: the answer may take as long as it takes
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparseable request, as a problem body (431 for size)."""
        if self._too_large:
            self._refuse(431, BulwarkError(Reason.REQUEST_TOO_LARGE, _TOO_LARGE, status=431))
        else:
            self._refuse(400, BulwarkError(Reason.REQUEST_INVALID, _MALFORMED, status=400))

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._limits.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge  # the parser stops; uvicorn calls send_400_response

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self._limits.timeout_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_headers:
            self._refuse(408, BulwarkError(Reason.REQUEST_INVALID, _TOO_SLOW, status=408))
        else:  # nothing sent, or a body still dribbling in: the application sees a disconnect
            self.transport.close()

    def _refuse(self, status: int, error: BulwarkError) -> None:
        body = json.dumps(error.to_problem()).encode("utf-8")
        head = [STATUS_LINE[status]]
        headers = [
            *self.server_state.default_headers,
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
        ]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


_MALFORMED = "The HTTP request is malformed."
_TOO_LARGE = "The request line and headers are larger than allowed."
_TOO_SLOW = "The request was not sent in time; the connection is closed."
