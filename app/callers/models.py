"""Callers: the library systems that hold an API key, and their roles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, utcnow


class Role(StrEnum):
    """What a caller may do (docs/api.md, roles)."""

    REQUESTER = "requester"
    AUDITOR = "auditor"
    ADMIN = "admin"
    #: The library's notification system: fetches patron notices when they may be given.
    NOTIFIER = "notifier"
    #: The records store's purge jobs: read legal holds so that held records are kept.
    RECORDS_ADMIN = "records_admin"


class Client(SQLModel, table=True):
    """A caller's API key: only its SHA-256 is stored, never the key."""

    __tablename__ = "clients"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    role: str = Field(sa_column=Column(String(20), nullable=False))
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    key_prefix: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ClientPublic(SQLModel):
    """What `bulwark clients list` shows: never the key or its hash."""

    name: str
    role: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None
