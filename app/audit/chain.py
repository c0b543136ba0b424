"""The hash chain's primitives: canonical serialisation and event hashes.

``hash(n) = sha256(hash(n-1) || "\\n" || body(n))`` where ``body`` is the event's canonical
JSON (sorted keys, no insignificant white space, UTF-8). The first event chains from
:data:`GENESIS_HASH`. Anyone can recompute a chain from an export with these two functions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.audit.models import GENESIS_HASH

__all__ = ["GENESIS_HASH", "canonical", "chain_hash", "digest"]


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, no NaN; floats are refused."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_refuse,
    )


def _refuse(value: Any) -> Any:
    raise TypeError(f"not canonically serialisable: {type(value).__name__}")


def chain_hash(prev_hash: str, body: str) -> str:
    """The hash of an event whose canonical body is ``body``, chained to ``prev_hash``."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(body.encode("utf-8"))
    return h.hexdigest()


def digest(value: Any) -> str:
    """sha256 of a value's canonical JSON: how released payloads are fingerprinted."""
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()
