"""The suite watches itself: every log line of the session is captured (in-process, at DEBUG,
formatted as ``bulwark serve`` writes it), every response of the shared client is checked
for the security headers, and ``tests/test_privacy.py`` runs last to search the captured
lines, the server processes' log files and the metrics for seeded patron data."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.apidocs.router import DOCS_CSP
from app.core.logging import JsonFormatter, quiet_libraries
from app.core.middleware import SECURITY_HEADERS

#: The test that reads what the whole session logged; moved to the end of the run.
LAST_TEST = "tests/test_privacy.py::test_no_patron_data_in_any_log_line_or_metric"


class LogCapture(logging.Handler):
    """Keeps every record as the JSON line the production formatter makes of it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is itself worth seeing
            self.lines.append(f"<unformattable record from {record.name}>")


LOG_CAPTURE = LogCapture()


def install_log_capture() -> None:
    """Root at DEBUG with the capture attached, libraries quietened exactly as in production."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(LOG_CAPTURE)
    quiet_libraries()


def run_privacy_check_last(items: list[pytest.Item]) -> None:
    """Move the session-wide privacy test to the very end (a stable sort keeps the rest)."""
    items.sort(key=lambda item: item.nodeid == LAST_TEST)


def docs_page(response: httpx.Response, name: bytes) -> bool:
    """The /docs page and its assets set their own CSP (scripts from this origin only) and
    caching; everything else about them is checked like any answer."""
    path = response.request.url.path
    if response.status_code != 200 or not (path == "/docs" or path.startswith("/docs/")):
        return False
    if name == b"content-security-policy":
        assert response.headers.get("content-security-policy") == DOCS_CSP, path
        return True
    return name == b"cache-control"


async def check_security_headers(response: httpx.Response) -> None:
    """Every answer carries every security header, whatever its status or route."""
    for name, value in SECURITY_HEADERS:
        got = response.headers.get(name.decode())
        if docs_page(response, name):
            continue
        assert got == value.decode(), (response.request.url.path, response.status_code, name)
