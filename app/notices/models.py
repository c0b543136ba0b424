"""The notices table: one row per permitted disclosure, written with its audit event."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, String, Text
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime


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
