"""Opaque page cursors for the records stores.

A cursor is URL-safe base64 of a small JSON object: a format version, the category it belongs
to, and where the next page starts (the last row's ordering key for SQL stores, the upstream's
own cursor for HTTP stores). It carries no patron id and no period: those always come from the
permit's obligations, so a forged cursor can move the start of a page but never widen what a
page may hold. The disclosure endpoint wraps and signs cursors; this module only round-trips
its own and refuses anything it did not make with :class:`CursorInvalid`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from app.records.categories import Category

CURSOR_VERSION = 1

#: Longest cursor accepted; also bounds what an upstream's own cursor may add to ours.
MAX_CURSOR_CHARS = 4096


class CursorInvalid(ValueError):
    """A cursor that is garbled, tampered with, or belongs to another category."""


def encode_cursor(category: Category, state: Mapping[str, Any]) -> str:
    """An opaque cursor for ``category`` holding ``state`` (JSON-serialisable values)."""
    payload = {"v": CURSOR_VERSION, "c": category.value, **state}
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if len(text) > MAX_CURSOR_CHARS:
        # Only an upstream's oversized cursor can get here; refuse to pass it on.
        raise ValueError("cursor too long")
    return text


def decode_cursor(cursor: str, category: Category) -> dict[str, Any]:
    """The state of a cursor made by :func:`encode_cursor` for ``category``."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise CursorInvalid("cursor has the wrong length")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorInvalid("cursor is not readable") from exc
    if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
        raise CursorInvalid("cursor has an unknown format")
    if payload.get("c") != category.value:
        raise CursorInvalid("cursor belongs to another category")
    return {k: v for k, v in payload.items() if k not in ("v", "c")}


# Ordering keys come back from database drivers as these types; each is tagged so that it is
# bound again as the same type, because comparing a timestamp column with a string (or a
# SQLite text date with a differently formatted string) would silently skip or repeat rows.
_TAGS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    str: ("s", str),
    int: ("i", int),
    dt.date: ("d", dt.date.isoformat),
    dt.datetime: ("t", dt.datetime.isoformat),
    Decimal: ("n", str),
    uuid.UUID: ("u", str),
}

_UNTAG: dict[str, Callable[[Any], Any]] = {
    "s": lambda v: _require(v, str),
    "i": lambda v: _require(v, int),
    "d": lambda v: dt.date.fromisoformat(_require(v, str)),
    "t": lambda v: dt.datetime.fromisoformat(_require(v, str)),
    "n": lambda v: Decimal(_require(v, str)),
    "u": lambda v: uuid.UUID(_require(v, str)),
}


def _require(value: Any, kind: type) -> Any:
    # bool is an int in Python; a cursor never holds one.
    if type(value) is not kind:
        raise CursorInvalid("cursor value has the wrong type")
    return value


def tag_value(value: Any) -> list[Any]:
    """A driver value as a ``[tag, json value]`` pair that :func:`untag_value` restores."""
    entry = _TAGS.get(type(value))
    if entry is None:
        raise TypeError(f"cannot page on a value of type {type(value).__name__}")
    tag, dump = entry
    return [tag, dump(value)]


def untag_value(pair: Any) -> Any:
    """The driver value of a ``[tag, json value]`` pair; CursorInvalid when malformed."""
    if not isinstance(pair, list) or len(pair) != 2 or pair[0] not in _UNTAG:
        raise CursorInvalid("cursor value is malformed")
    try:
        return _UNTAG[pair[0]](pair[1])
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise CursorInvalid("cursor value is malformed") from exc


def require_int(state: Mapping[str, Any], key: str, *, minimum: int = 0) -> int:
    """An integer field of a cursor's state, at least ``minimum``."""
    value = state.get(key)
    if type(value) is not int or value < minimum:
        raise CursorInvalid("cursor position is malformed")
    return value
