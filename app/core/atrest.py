"""Patron ids at rest: sealed, so that the state database alone does not re-identify.

Notices (the notifier must reach the patron) and legal holds (purge jobs match on the id)
need the real patron id, and kept it in clear beside the disclosures' pseudonyms (issue 16).
They now hold it sealed with AES-SIV (RFC 5297), an AEAD whose key is derived (HKDF-SHA256)
from the instance's pseudonym key, which lives outside the database (a secret file or
setting). AES-SIV is deterministic on purpose: the same patron seals to the same text, so the
holds' uniqueness per (order, patron), their upsert and the purge jobs' lookup by patron keep
working on the sealed column; that equality is no more than the pseudonyms already show.

A sealed value reads ``s1:<base64url>``. ``bulwark db upgrade`` seals the clear ids an older
release left (:func:`seal_existing`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

PREFIX = "s1:"
_INFO = b"bulwark patron ids at rest v1"
_AD = [b"bulwark:patron_id"]


class SealBroken(ValueError):
    """A sealed value does not open under this instance's key (wrong key or altered)."""


class PatronSealer:
    """Seal and open patron ids with the instance's key; see the module docstring."""

    def __init__(self, pseudonym_key: bytes) -> None:
        if len(pseudonym_key) < 32:
            raise ValueError("the pseudonym key must be at least 32 bytes")
        key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_INFO).derive(
            pseudonym_key
        )
        self._aead = AESSIV(key)

    def seal(self, patron_id: str) -> str:
        """The sealed form of ``patron_id`` (the same every time)."""
        sealed = self._aead.encrypt(patron_id.encode("utf-8"), _AD)
        return PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def open(self, stored: str) -> str:
        """The patron id a stored value names; a clear value (not yet upgraded) as it is."""
        if not is_sealed(stored):
            return stored
        text = stored[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self._aead.decrypt(raw, _AD).decode("utf-8")
        except (InvalidTag, ValueError):
            raise SealBroken("a sealed patron id does not open with this instance's key") from None

    def open_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """API answers with their ``patron_id`` opened again."""
        return [{**row, "patron_id": self.open(str(row["patron_id"]))} for row in rows]


def is_sealed(stored: str) -> bool:
    """Whether a stored patron id is sealed."""
    return stored.startswith(PREFIX)


def sealer_of(runtime: Any) -> PatronSealer:
    """The process's sealer (built once from the pseudonym key, kept in ``runtime.sealer``)."""
    found = runtime.sealer
    if not isinstance(found, PatronSealer):
        from app.core import secrets

        found = runtime.sealer = PatronSealer(secrets.pseudonym_key(runtime.settings))
    return found


async def seal_existing(engine: AsyncEngine, sealer: PatronSealer, tables: Sequence[Table]) -> int:
    """Seal every clear patron id of ``tables`` (``app.schema.SEALED``) in place; how many.

    The tables are passed in because ``core`` knows no domain (docs/architecture.md).
    """
    done = 0
    async with engine.begin() as conn:
        for table in tables:
            key = table.c.id
            clear = ~table.c.patron_id.startswith(PREFIX, autoescape=True)
            rows = (await conn.execute(select(key, table.c.patron_id).where(clear))).all()
            for row_id, patron in rows:
                await conn.execute(
                    update(table).where(key == row_id).values(patron_id=sealer.seal(str(patron)))
                )
                done += 1
    return done


async def clear_ids_left(engine: AsyncEngine, tables: Sequence[Table]) -> int:
    """How many rows of ``tables`` (``app.schema.SEALED``) still name a patron in clear."""
    count = 0
    async with engine.connect() as conn:
        for table in tables:
            clear = ~table.c.patron_id.startswith(PREFIX, autoescape=True)
            count += int(
                (
                    await conn.execute(select(func.count()).select_from(table).where(clear))
                ).scalar_one()
            )
    return count
