"""Keys, a trust store and a verifier for the court-order tests (keys made once per session)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from app.orders.issuing import generate_key_pair, issuer_entry
from app.orders.tokens import OrderVerifier
from app.orders.trust import TrustStore

from .helpers import AUDIENCE, COOK, DUPAGE, MAX_LIFETIME_DAYS, SKEW, KeyPair


@dataclass(frozen=True)
class SigningKeys:
    cook_rs: KeyPair
    cook_es: KeyPair
    dupage_es: KeyPair
    attacker_es: KeyPair
    attacker_rs: KeyPair


def _pair(alg: Literal["ES256", "RS256"], kid: str) -> KeyPair:
    pem, jwk = generate_key_pair(alg, kid, rsa_bits=2048)
    return KeyPair(pem, jwk)


@pytest.fixture(scope="session")
def signing_keys() -> SigningKeys:
    """RSA 2048 keeps generation quick; each key is made once for the whole session."""
    return SigningKeys(
        cook_rs=_pair("RS256", "cook-rs-2026"),
        cook_es=_pair("ES256", "cook-es-2026"),
        dupage_es=_pair("ES256", "dupage-es-2026"),
        attacker_es=_pair("ES256", "attacker-es"),
        attacker_rs=_pair("RS256", "attacker-rs"),
    )


@pytest.fixture(scope="session")
def trust_document(signing_keys: SigningKeys) -> dict[str, Any]:
    cook = issuer_entry(COOK, "Circuit Court of Cook County", ["US-IL"], signing_keys.cook_rs.jwk)
    cook["keys"].append(signing_keys.cook_es.jwk)
    dupage = issuer_entry(
        DUPAGE, "Circuit Court of DuPage County", ["US-IL"], signing_keys.dupage_es.jwk
    )
    return {"issuers": [cook, dupage]}


@pytest.fixture(scope="session")
def trust(trust_document: dict[str, Any]) -> TrustStore:
    return TrustStore.from_document(trust_document)


@pytest.fixture(scope="session")
def verifier(trust: TrustStore) -> OrderVerifier:
    return OrderVerifier(
        trust,
        audience=AUDIENCE,
        allowed_algorithms={"RS256", "ES256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
    )


@pytest.fixture
def write_store(tmp_path: Path) -> Any:
    """Write a trust-store document (or raw text) to a file and return its path."""

    def write(document: Any) -> Path:
        path = tmp_path / "trust-store.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return path

    return write


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record (and refuse) any attempt to resolve a name or open a connection."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access attempted during token verification")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert attempts == [], f"verification tried to reach the network: {attempts}"
