"""Continuation cursors: signed, so a caller can neither forge nor widen one.

A cursor binds the disclosure it continues to the order (iss, jti), the patron's pseudonym,
the categories and period asked, and each store's own position. It is HMAC-signed with a key
derived from the instance's pseudonym key, and holds no patron id in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from app.core.problems import RequestInvalid


@dataclass(frozen=True, slots=True)
class CursorState:
    disclosure_id: str
    iss: str
    jti: str
    patron: str
    categories: tuple[str, ...]
    period: tuple[str, str]
    positions: dict[str, str]


class CursorSigner:
    def __init__(self, instance_key: bytes) -> None:
        self._key = hmac.new(instance_key, b"bulwark cursor v1", hashlib.sha256).digest()

    def dump(self, state: CursorState) -> str:
        payload = json.dumps(
            {
                "d": state.disclosure_id,
                "i": state.iss,
                "j": state.jti,
                "p": state.patron,
                "c": list(state.categories),
                "r": list(state.period),
                "s": state.positions,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode("utf-8")
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()
        return _b64(payload) + "." + _b64(mac)

    def load(self, text: str) -> CursorState:
        try:
            payload_text, mac_text = text.split(".")
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, TypeError):
            raise RequestInvalid("The cursor is malformed.") from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise RequestInvalid("The cursor is not one Bulwark issued.")
        data: dict[str, Any] = json.loads(payload)
        return CursorState(
            disclosure_id=str(data["d"]),
            iss=str(data["i"]),
            jti=str(data["j"]),
            patron=str(data["p"]),
            categories=tuple(data["c"]),
            period=(str(data["r"][0]), str(data["r"][1])),
            positions={str(k): str(v) for k, v in data["s"].items()},
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
