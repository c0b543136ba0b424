"""The notices table: one row per permitted disclosure, written with its audit event."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from sqlalchemy import Column, Date, Index, String, Text, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime, table_of


class Notice(SQLModel, table=True):
    """What the library's notification system needs to tell one patron of one disclosure.

    It holds the real patron id (the notification system must reach the patron), so it lives
    in the state database and never in an audit body; ``not_before`` keeps it from every
    reader, auditors included, until the order's nondisclosure period is over.
    """

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_due", "delivered_at", "not_before"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    disclosure_id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    # Sealed (app/core/atrest.py): the state database alone does not name the patron.
    patron_id: str = Field(sa_column=Column(String(512), nullable=False))
    iss: str = Field(sa_column=Column(String(256), nullable=False))
    jti: str = Field(sa_column=Column(String(256), nullable=False))
    case: str = Field(sa_column=Column(String(256), nullable=False))
    court: str = Field(sa_column=Column(String(256), nullable=False))
    instrument: str = Field(sa_column=Column(String(32), nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    period_from: dt.date = Field(sa_column=Column(Date, nullable=False))
    period_to: dt.date = Field(sa_column=Column(Date, nullable=False))
    not_before: dt.date = Field(sa_column=Column(Date, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    delivered_by: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))


class NoticeSink:
    """How the audit writer writes a batch's notices (app/audit/entries.py)."""

    name = "notices"

    def merged(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every notice: one per disclosure."""
        return rows

    async def write(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """One insert for all of them."""
        await conn.execute(insert(table_of(Notice)), rows)


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """The notice of one permitted disclosure, written with the permit's audit event."""

    id: str
    disclosure_id: str
    patron_id: str
    iss: str
    jti: str
    case: str
    court: str
    instrument: str
    categories: str
    period_from: dt.date
    period_to: dt.date
    not_before: dt.date
    created_at: dt.datetime

    sink: ClassVar[NoticeSink] = NoticeSink()

    def values(self, seq: int = 0, now: dt.datetime | None = None) -> dict[str, Any]:
        """The row's columns (dated when the disclosure was decided, not by the event)."""
        return asdict(self)
