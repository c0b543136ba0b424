"""Caller keys: listing and authentication (audited changes: app/admin/clients.py).

A key is ``bwk_`` followed by 32 random bytes (base64url). Only its SHA-256 is stored: a key
of that entropy needs no slow hash, and a lookup by hash does not reveal the key by timing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.callers.models import Client, ClientPublic, Role
from app.core.models import table_of
from app.core.problems import AuthError

CLIENTS = table_of(Client)
KEY_PREFIX = "bwk_"
#: Longest a key may be before it is refused unread (a real key is 47 characters).
MAX_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller."""

    id: int
    name: str
    role: Role


def new_key() -> str:
    """A fresh API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def list_clients(engine: AsyncEngine) -> list[ClientPublic]:
    """Every caller, active and revoked, without keys or hashes."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(CLIENTS).order_by(CLIENTS.c.name))
        return [ClientPublic.model_validate(dict(row._mapping)) for row in rows]


class CallerRegistry:
    """Authenticates API keys.

    ``authenticate(key, live=True)`` reads the clients table, so a key revoked by any process
    is refused at once. The hot decision routes use ``live=False``, served from a short cache,
    because their audit append re-checks the key inside its own transaction (see
    :mod:`app.audit.writer`) before anything is released: no extra round trip, and still no
    answer for a revoked key.
    """

    def __init__(self, engine: AsyncEngine, *, cache_seconds: float = 30.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Caller]] = {}

    async def authenticate(self, key: str | None, *, live: bool = True) -> Caller:
        if not key or len(key) > MAX_KEY_LENGTH or not key.startswith(KEY_PREFIX):
            raise AuthError()
        digest = hash_key(key)
        if not live:
            cached = self._cache.get(digest)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        caller = await self._lookup(digest)
        self._cache[digest] = (time.monotonic() + self._cache_seconds, caller)
        return caller

    def recently_known(self, key: str) -> bool:
        """Whether ``key`` authenticated in this process lately (its cache entry is fresh)."""
        cached = self._cache.get(hash_key(key)) if key.startswith(KEY_PREFIX) else None
        return cached is not None and cached[0] > time.monotonic()

    async def _lookup(self, digest: str) -> Caller:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        CLIENTS.c.id,
                        CLIENTS.c.name,
                        CLIENTS.c.role,
                        CLIENTS.c.key_hash,
                        CLIENTS.c.revoked_at,
                    ).where(CLIENTS.c.key_hash == digest)
                )
            ).first()
        # The index finds the row; the comparison that decides is constant-time.
        if row is None or not hmac.compare_digest(str(row.key_hash), digest):
            self._cache.pop(digest, None)
            raise AuthError()
        if row.revoked_at is not None:
            self._cache.pop(digest, None)
            raise AuthError()
        return Caller(id=int(row.id), name=str(row.name), role=Role(row.role))

    def forget(self, caller_id: int) -> None:
        """Drop a caller from this process's cache (after a refusal under the audit lock)."""
        for digest, (_, caller) in list(self._cache.items()):
            if caller.id == caller_id:
                self._cache.pop(digest, None)
