"""Continuations: one use of an order, one result set, released a page at a time.

A permitted disclosure reads every record the use covers when it is spent (the snapshot), and
answers the first page. What is left is kept server-side, in the state database that every
replica shares (table ``disclosure_continuations``), encrypted and authenticated (AES-256-GCM,
a key derived from the instance's pseudonym key; the associated data binds the ciphertext to
its row). The caller gets a random handle: 32 random bytes, base64url. The handle says
nothing about the patron, the order or the store, and the database keeps only its SHA-256, so
someone who reads the state database cannot continue a disclosure either.

A continuation row is bound to:

- the caller whose request spent the use (another key cannot continue it);
- the request (the patron's pseudonym, categories and period: a digest of them);
- the order (iss, jti), which is evaluated again on every page, so a revoked or expired order
  stops its pages;
- a short window (``BULWARK_CURSOR_WINDOW_MINUTES``, never past the order's ``exp``);
- one page: claiming a handle deletes its row (the one delete that succeeds wins), and the next
  page's row, under a new handle, is written in the transaction of the page's audit event. A
  claimed page whose event cannot be written is lost, not put back (the event may have landed
  after a timeout): the caller asks again under a new use.

Records the library adds after the first page are not in the snapshot, so they are never
released under that use: a later use (a new request, within ``max_uses``) reads them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.models import table_of
from app.core.problems import RequestInvalid
from app.disclosures.models import Continuation

CONTINUATIONS = table_of(Continuation)

#: The handle's length in random bytes, and as base64url text without padding.
HANDLE_BYTES = 32
HANDLE_CHARS = 43

Remaining = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Binding:
    """What a continuation is bound to: checked again when it is claimed."""

    disclosure_id: str
    caller_id: int
    iss: str
    jti: str
    request: str  # request_digest(...)
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed continuation: the disclosure it continues, its page number and its records."""

    disclosure_id: str
    page: int
    remaining: Remaining


def request_digest(patron: str, categories: list[str], period: tuple[str, str]) -> str:
    """A digest of what a request asks for (the patron as its pseudonym)."""
    text = json.dumps([patron, categories, list(period)], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_handle(text: str) -> bytes:
    """The handle's bytes; RequestInvalid when it is not a handle Bulwark could have made."""
    if len(text) != HANDLE_CHARS:
        raise RequestInvalid("The cursor is malformed.")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise RequestInvalid("The cursor is malformed.") from None
    if len(raw) != HANDLE_BYTES:
        raise RequestInvalid("The cursor is malformed.")
    return raw


class Continuations:
    """Makes, stores and claims continuation handles (see the module docstring)."""

    def __init__(self, instance_key: bytes) -> None:
        key = hmac.new(instance_key, b"bulwark continuation v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, binding: Binding, page: int, remaining: Remaining) -> tuple[str, dict[str, Any]]:
        """A new handle for ``page`` and the row to write for it (with the page's audit event)."""
        raw = secrets.token_bytes(HANDLE_BYTES)
        handle = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        key = _row_key(raw)
        nonce = secrets.token_bytes(12)
        plain = json.dumps(remaining, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        sealed = self._aead.encrypt(nonce, plain, _aad(key, binding.disclosure_id, page))
        row = {
            "handle": key,
            "disclosure_id": binding.disclosure_id,
            "page": page,
            "caller_id": binding.caller_id,
            "iss": binding.iss,
            "jti": binding.jti,
            "request": binding.request,
            "expires_at": binding.expires_at,
            "payload": base64.b64encode(nonce + sealed).decode("ascii"),
        }
        return handle, row

    async def claim(
        self,
        engine: AsyncEngine,
        handle: str,
        *,
        caller_id: int,
        iss: str,
        jti: str,
        request: str,
        now: dt.datetime,
    ) -> Claimed | None:
        """Take the continuation ``handle`` names, if it is this caller's, this request's,
        this order's and not expired: its row is deleted, so no one can take it again.

        None when there is no such continuation (unknown, spent, expired, someone else's).
        A row that does not match is left alone: a stolen handle cannot spend the owner's page.
        """
        key = _row_key(check_handle(handle))
        match = and_(
            CONTINUATIONS.c.handle == key,
            CONTINUATIONS.c.caller_id == caller_id,
            CONTINUATIONS.c.iss == iss,
            CONTINUATIONS.c.jti == jti,
            CONTINUATIONS.c.request == request,
            CONTINUATIONS.c.expires_at > now,
        )
        async with engine.begin() as conn:
            # Expired pages are patron records at rest for no purpose: dropped on every claim.
            await conn.execute(delete(CONTINUATIONS).where(CONTINUATIONS.c.expires_at <= now))
            row = (await conn.execute(select(CONTINUATIONS).where(match))).one_or_none()
            if row is None:
                return None
            gone = await conn.execute(delete(CONTINUATIONS).where(match))
            if gone.rowcount != 1:  # another request claimed it between the two statements
                return None
        data = dict(row._mapping)
        blob = base64.b64decode(data["payload"])
        try:
            plain = self._aead.decrypt(
                blob[:12], blob[12:], _aad(key, data["disclosure_id"], int(data["page"]))
            )
        except InvalidTag:
            return None  # a row altered in the database releases nothing
        remaining: Remaining = json.loads(plain)
        return Claimed(str(data["disclosure_id"]), int(data["page"]), remaining)


@dataclass(frozen=True, slots=True)
class ContinuationWrite:
    """An entry's change (app/audit/entries.py): the continuation ``row``, written in the
    transaction of the page's event."""

    row: dict[str, Any]

    async def apply(self, conn: AsyncConnection) -> None:
        """Insert the row."""
        await conn.execute(insert(CONTINUATIONS), [self.row])


def _row_key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _aad(key: str, disclosure_id: str, page: int) -> bytes:
    return f"{key}|{disclosure_id}|{page}".encode("ascii")
