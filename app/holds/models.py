"""The legal holds table: one row per (order, patron), written with the order's audit event."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime


class LegalHold(SQLModel, table=True):
    """A patron's records, in some categories over a period, that must not be purged.

    Created the first time Bulwark evaluates or honours an order; it holds until the order's
    expiry plus the policy's margin. Holds name the real patron id because purge jobs match
    on it; they are served only to auditors and the records admin, never logged.
    """

    __tablename__ = "legal_holds"
    __table_args__ = (
        UniqueConstraint("iss", "jti", "patron_id", name="uq_legal_holds_order_patron"),
        Index("ix_legal_holds_held_until", "held_until"),
        Index("ix_legal_holds_patron_id", "patron_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    iss: str = Field(sa_column=Column(String(256), nullable=False))
    jti: str = Field(sa_column=Column(String(256), nullable=False))
    # Sealed (app/core/atrest.py): the state database alone does not name the patron.
    patron_id: str = Field(sa_column=Column(String(512), nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    period_from: dt.date = Field(sa_column=Column(Date, nullable=False))
    period_to: dt.date = Field(sa_column=Column(Date, nullable=False))
    held_until: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: The order's ``nondisclosure_until``: before it, nothing naming the order is shown.
    sealed_until: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
