"""Building blocks for court-order token tests: hand-made segments and tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.core.reasons import Reason
from app.orders.checks import OrderCheck
from app.orders.issuing import make_claims, sign_compact
from app.orders.jose import b64url_encode
from app.orders.tokens import ORDER_TYP

COOK = "https://courts.example/il-cook"
DUPAGE = "https://courts.example/il-dupage"
AUDIENCE = "bulwark"
SKEW = 60
MAX_LIFETIME_DAYS = 90
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())


@dataclass(frozen=True)
class KeyPair:
    """A test signing key: private PEM, public JWK, and the kid and alg it is listed under."""

    pem: bytes
    jwk: dict[str, str]

    @property
    def kid(self) -> str:
        return self.jwk["kid"]

    @property
    def alg(self) -> str:
        return self.jwk["alg"]


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims from Cook County at NOW; keywords as for make_claims."""
    overrides.setdefault("iss", COOK)
    overrides.setdefault("now", NOW)
    return make_claims(**overrides)


def header(key: KeyPair, **overrides: Any) -> dict[str, Any]:
    """The header a correct issuer would send for ``key``; keywords replace or add params."""
    values: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": ORDER_TYP}
    values.update(overrides)
    return values


def signed(key: KeyPair, payload: dict[str, Any] | None = None, **header_params: Any) -> str:
    """A token signed by ``key`` under ``header(key, **header_params)``."""
    return sign_compact(
        header(key, **header_params),
        payload or claims(),
        key.pem,
        header_params.get("alg", key.alg),
    )


def segment(value: Any) -> str:
    """One base64url segment holding ``value`` as compact JSON (bytes are taken as they are)."""
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return b64url_encode(raw)


def assemble(header_value: Any, payload: Any, signature: bytes = b"") -> str:
    """A compact token made by hand, signed or not."""
    return f"{segment(header_value)}.{segment(payload)}.{b64url_encode(signature)}"


def assert_denied(check: OrderCheck, *reasons: Reason) -> None:
    """Exactly ``reasons`` (in any order), and nothing trusted handed out."""
    assert set(check.failures) == set(reasons), check.failures
    assert len(check.failures) == len(reasons), check.failures
    assert check.claims is None
    assert check.issuer is None
    assert not check.verified
