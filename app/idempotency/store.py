"""Where idempotent answers are kept: the shared state database, never in clear.

What the state database holds for one ``(caller, Idempotency-Key)``:

``lookup``
    HMAC-SHA256 under the instance's pseudonym secret of the caller's id and the key. The key
    itself is never stored, and the row cannot be found without it.
``request_mac``
    HMAC-SHA256 of the method, path and body under a key derived from the idempotency key: it
    tells "the same request" from "another body" without keeping anything a reader of the
    database could test guesses against (a plain hash of a small body, such as a patron id
    and a date range, could be brute-forced; this cannot without the idempotency key).
``answer``
    The first answer (status, headers, body: records included), encrypted with AES-256-GCM
    under a key derived with HKDF-SHA256 from the idempotency key and the instance secret,
    with ``lookup`` as associated data. Only a caller presenting the same key can have it
    decrypted; a copy of the database alone, or with the instance secret, reads nothing.
    The row is deleted once it expires (24 hours): expired rows are purged whenever a new
    key is stored.

A row whose ``answer`` is NULL is a request in flight: a duplicate arriving meanwhile (on
any replica) is told 409 ``idempotency.in_progress`` and to retry, rather than running the
request a second time. A first request that ended without an answer worth keeping (a 5xx:
nothing was released) deletes its row, so that the retry runs for real; a replica that died
mid-request leaves a row that is taken over after ``IN_FLIGHT_LEASE``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.models import table_of, utcnow
from app.idempotency.models import IdempotentRequest

REQUESTS = table_of(IdempotentRequest)

#: How long an answer is kept and replayed (the Stripe convention).
RETENTION: Final = dt.timedelta(hours=24)
#: A request in flight for longer than this is taken to have died with its replica.
IN_FLIGHT_LEASE: Final = dt.timedelta(minutes=2)
_VERSION: Final = b"\x01"


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer as it will be replayed."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def to_bytes(self) -> bytes:
        head = json.dumps({"status": self.status, "headers": self.headers}).encode()
        return len(head).to_bytes(4, "big") + head + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredAnswer:
        size = int.from_bytes(data[:4], "big")
        head = json.loads(data[4 : 4 + size])
        headers = [(str(name), str(value)) for name, value in head["headers"]]
        return cls(int(head["status"]), headers, data[4 + size :])


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request holds the key: run it, then :meth:`IdempotencyStore.finish` or release."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """The same request is running elsewhere right now."""


@dataclass(frozen=True, slots=True)
class OtherRequest:
    """The key was used with another method, path or body."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The first answer, decrypted."""

    answer: StoredAnswer


Outcome = Claimed | InFlight | OtherRequest | Replay


class IdempotencyKey:
    """The secrets one ``(caller, Idempotency-Key)`` derives; nothing here is stored."""

    __slots__ = ("_aead", "_mac_key", "lookup")

    def __init__(self, instance_secret: bytes, caller_id: int, key: str) -> None:
        who = f"{caller_id}\x00{key}".encode()
        self.lookup = hmac.new(instance_secret, b"lookup\x00" + who, hashlib.sha256).hexdigest()
        material = HKDF(
            algorithm=hashes.SHA256(),
            length=64,
            salt=instance_secret,
            info=b"bulwark idempotency v1\x00" + str(caller_id).encode(),
        ).derive(key.encode())
        self._mac_key = material[:32]
        self._aead = AESGCM(material[32:])

    def request_mac(self, method: str, path: str, body: bytes) -> str:
        """The MAC that identifies a request (method, path and exact body bytes)."""
        message = method.encode() + b"\x00" + path.encode() + b"\x00" + body
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    def seal(self, answer: StoredAnswer) -> bytes:
        """Encrypt ``answer``, bound to this key's row."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, answer.to_bytes(), self._ad())

    def open(self, sealed: bytes) -> StoredAnswer:
        """Decrypt an answer sealed by :meth:`seal`; raises ``ValueError`` if it was altered."""
        if sealed[:1] != _VERSION or len(sealed) < 29:
            raise ValueError("not a sealed answer")
        try:
            plain = self._aead.decrypt(sealed[1:13], sealed[13:], self._ad())
        except InvalidTag:
            raise ValueError("the stored answer does not decrypt under this key") from None
        return StoredAnswer.from_bytes(plain)

    def _ad(self) -> bytes:
        return self.lookup.encode()


class IdempotencyStore:
    """Claims, finishes and replays idempotency keys in the shared state database."""

    def __init__(self, engine: AsyncEngine, instance_secret: bytes) -> None:
        self._engine = engine
        self._secret = instance_secret

    def key(self, caller_id: int, key: str) -> IdempotencyKey:
        """The derived secrets of ``key`` for ``caller_id``."""
        return IdempotencyKey(self._secret, caller_id, key)

    async def claim(self, key: IdempotencyKey, caller_id: int, mac: str) -> Outcome:
        """Take ``key`` for this request, or say why not (replay, in flight, other request).

        The primary key makes exactly one of several concurrent first requests (on any
        replica) win the insert; the others read what it wrote.
        """
        for _ in range(3):
            now = utcnow()
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        insert(REQUESTS).values(
                            lookup=key.lookup,
                            caller_id=caller_id,
                            request_mac=mac,
                            started_at=now,
                            expires_at=now + RETENTION,
                            answer=None,
                        )
                    )
                return Claimed()
            except IntegrityError:
                pass
            async with self._engine.begin() as conn:
                row = (
                    await conn.execute(select(REQUESTS).where(REQUESTS.c.lookup == key.lookup))
                ).first()
                if row is None:
                    continue  # finished and released between our insert and this read
                if row.expires_at <= now or (
                    row.answer is None and row.started_at + IN_FLIGHT_LEASE <= now
                ):
                    # Expired, or abandoned by a replica that died mid-request: remove exactly
                    # the row we read (another taker may have replaced it) and try again.
                    stale = or_(
                        REQUESTS.c.expires_at <= now,
                        and_(
                            REQUESTS.c.answer.is_(None),
                            REQUESTS.c.started_at <= now - IN_FLIGHT_LEASE,
                        ),
                    )
                    await conn.execute(
                        delete(REQUESTS).where(and_(REQUESTS.c.lookup == key.lookup, stale))
                    )
                    continue
            if not hmac.compare_digest(row.request_mac, mac):
                return OtherRequest()
            if row.answer is None:
                return InFlight()
            return Replay(key.open(row.answer))
        return InFlight()

    async def finish(self, key: IdempotencyKey, answer: StoredAnswer) -> None:
        """Keep the answer (sealed) for replays, and purge expired rows."""
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(REQUESTS)
                .where(REQUESTS.c.lookup == key.lookup)
                .values(answer=key.seal(answer), expires_at=now + RETENTION)
            )
            await conn.execute(delete(REQUESTS).where(REQUESTS.c.expires_at <= now))

    async def release(self, key: IdempotencyKey) -> None:
        """Forget a claim whose request produced no answer to keep (a retry runs anew)."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(REQUESTS).where(REQUESTS.c.lookup == key.lookup))

    async def purge(self) -> int:
        """Delete every expired row; how many went."""
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(REQUESTS).where(REQUESTS.c.expires_at <= utcnow()))
        return int(result.rowcount or 0)


def answer_audit_seq(answer: StoredAnswer) -> int | None:
    """The audit event the first answer names (``audit.seq`` or ``audit_seq``), if any."""
    try:
        body: Any = json.loads(answer.body)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    audit = body.get("audit")
    seq = audit.get("seq") if isinstance(audit, dict) else body.get("audit_seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
