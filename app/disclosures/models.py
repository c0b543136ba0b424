"""Disclosures that were made: one row per permitted release, committed with its event."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, table_of


class Disclosure(SQLModel, table=True):
    """A release of records. Holds the patron's pseudonym, never the patron id."""

    __tablename__ = "disclosures"
    __table_args__ = (Index("ix_disclosures_order", "iss", "jti"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    audit_seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    iss: str = Field(sa_column=Column(String(256), nullable=False))
    jti: str = Field(sa_column=Column(String(256), nullable=False))
    caller: str = Field(sa_column=Column(String(100), nullable=False))
    patron_pseudonym: str = Field(sa_column=Column(String(80), nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    period_from: str = Field(sa_column=Column(String(10), nullable=False))
    period_to: str = Field(sa_column=Column(String(10), nullable=False))
    record_count: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Continuation(SQLModel, table=True):
    """The unreleased pages of one use, under one handle (app/disclosures/cursor.py).

    ``handle`` is the SHA-256 of the handle the caller holds; ``payload`` the records left,
    encrypted and authenticated. Deleted when claimed, and once expired.
    """

    __tablename__ = "disclosure_continuations"
    __table_args__ = (Index("ix_disclosure_continuations_expires_at", "expires_at"),)

    handle: str = Field(sa_column=Column(String(64), primary_key=True))
    disclosure_id: str = Field(sa_column=Column(String(36), nullable=False))
    page: int = Field(sa_column=Column(Integer, nullable=False))
    caller_id: int = Field(sa_column=Column(Integer, nullable=False))
    iss: str = Field(sa_column=Column(String(256), nullable=False))
    jti: str = Field(sa_column=Column(String(256), nullable=False))
    request: str = Field(sa_column=Column(String(64), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))


class DisclosureSink:
    """How the audit writer writes a batch's disclosure rows (app/audit/entries.py)."""

    name = "disclosures"

    def merged(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every row: one per permitted release."""
        return rows

    async def write(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """One insert for all of them."""
        await conn.execute(insert(table_of(Disclosure)), rows)


@dataclass(frozen=True, slots=True)
class DisclosureRow:
    """A permitted release, recorded with its event (which gives ``audit_seq``, ``created_at``)."""

    id: str
    iss: str
    jti: str
    caller: str
    patron_pseudonym: str
    categories: str
    period_from: str
    period_to: str
    record_count: int

    sink: ClassVar[DisclosureSink] = DisclosureSink()

    def values(self, seq: int, now: dt.datetime) -> dict[str, Any]:
        """The row's columns, dated and numbered by its event."""
        return {**asdict(self), "audit_seq": seq, "created_at": now}
