"""Audited changes to API clients: a key added or revoked, each with its audit event.

The change rides in the event's transaction (app/audit/entries.py), so a key exists or is
revoked exactly when its event does. Authentication is :mod:`app.callers.service`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit.writer import AuditWriter, Entry
from app.callers.models import ClientPublic, Role
from app.callers.service import CLIENTS, hash_key, new_key
from app.core.models import utcnow
from app.core.problems import AuditUnavailable


class ClientExists(ValueError):
    """A caller of that name exists already."""


class ClientNotFound(LookupError):
    """No caller of that name."""


@dataclass(frozen=True, slots=True)
class ClientAdded:
    """An entry's change: a new client, stored by its key's hash."""

    name: str
    role: str
    key_hash: str
    key_prefix: str
    created_at: dt.datetime

    async def apply(self, conn: AsyncConnection) -> None:
        """Insert the client."""
        await conn.execute(
            CLIENTS.insert().values(
                name=self.name,
                role=self.role,
                key_hash=self.key_hash,
                key_prefix=self.key_prefix,
                created_at=self.created_at,
            )
        )


@dataclass(frozen=True, slots=True)
class ClientRevoked:
    """An entry's change: the key of client ``name`` revoked (again: no change)."""

    name: str

    async def apply(self, conn: AsyncConnection) -> None:
        """Stamp the key revoked."""
        await conn.execute(
            update(CLIENTS)
            .where(and_(CLIENTS.c.name == self.name, CLIENTS.c.revoked_at.is_(None)))
            .values(revoked_at=utcnow())
        )


async def add_client(
    engine: AsyncEngine, name: str, role: Role, *, audit: AuditWriter
) -> tuple[ClientPublic, str]:
    """Create a caller, audited; returns it with its key, shown once and never stored."""
    key = new_key()
    created = utcnow()
    async with engine.connect() as conn:
        if (await conn.execute(select(CLIENTS.c.id).where(CLIENTS.c.name == name))).first():
            raise ClientExists(f"a caller named {name!r} exists already")

    change = ClientAdded(name, role.value, hash_key(key), key[:10], created)
    try:
        await audit.append(_client_event("client.added", name, role.value, change))
    except AuditUnavailable as exc:
        # The name was free a moment ago; a concurrent add may have taken it.
        raise ClientExists(f"could not add {name!r} (taken concurrently?)") from exc
    public = ClientPublic(
        name=name, role=role.value, key_prefix=key[:10], created_at=created, revoked_at=None
    )
    return public, key


async def revoke_client(engine: AsyncEngine, name: str, *, audit: AuditWriter) -> None:
    """Revoke a caller's key, audited; refused at once on every process (see CallerRegistry)."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(CLIENTS.c.role).where(CLIENTS.c.name == name))).first()
    if row is None:
        raise ClientNotFound(f"no caller named {name!r}")

    change = ClientRevoked(name)
    await audit.append(_client_event("client.revoked", name, str(row.role), change))


def _client_event(action: str, name: str, role: str, change: ClientAdded | ClientRevoked) -> Entry:
    return Entry(
        kind="client",
        effect="info",
        body={"v": 1, "action": action, "client": name, "role": role, "caller": "cli"},
        change=change,
    )
