"""Structured JSON log lines. Messages are fixed strings; variable data goes in fields that
Bulwark chooses, never in free text, so no patron id or record can slip into a log."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

#: Attributes every LogRecord has; anything else on a record was passed in ``extra``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colour codes
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: a traceback's frames can hold request data in their locals' reprs.
            entry["error_type"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _utc_timestamp(created: float) -> str:
    """``created`` as ISO 8601 UTC with milliseconds; the seconds part is formatted once."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


#: Libraries whose own lines can carry request data: httpx logs every request's URL at INFO
#: (an HTTP records store's URL holds the patron id), SQLAlchemy logs statements with their
#: parameters at INFO and DEBUG. They speak at WARNING and above only, whatever the level.
QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "asyncmy",
    "redis",
    "hpack",
    "urllib3",
)


def quiet_libraries() -> None:
    """Hold the libraries in :data:`QUIET_LIBRARIES` at WARNING."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO") -> None:
    """Send Bulwark's and uvicorn's logs to stderr as JSON lines."""
    # A line is written per request: skip what the logging module would gather for every
    # record and no line of Bulwark's prints (caller's file and line, thread, process; the
    # logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
    # uvicorn's own access log would print raw paths; Bulwark writes its own.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
