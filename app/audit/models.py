"""The audit log's tables: the hash-chained events and the chain head."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, Date, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    """One event. ``hash`` = sha256(prev_hash || body), where body is canonical JSON.

    ``body`` is the exact text that was hashed; the other columns repeat parts of it so that
    auditors' queries can filter without parsing, and verification checks they agree.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_ts", "ts"), Index("ix_audit_events_kind", "kind"))

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    ts: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    effect: str = Field(sa_column=Column(String(16), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))


class AuditHead(SQLModel, table=True):
    """The chain's head: one row, locked by every append so that appends stay linear."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


class ReportFigure(SQLModel, table=True):
    """One published figure of one UTC day, kept as events are appended (app/audit/figures.py).

    ``line`` is the report's row (a verified order's instrument, ``unverified`` or ``none``),
    ``measure`` what is counted and ``item`` a reason code or category where the measure has
    one (else ``""``). Written in the transaction of the events it counts, and checked
    against them by ``bulwark audit verify``.
    """

    __tablename__ = "report_figures"

    day: dt.date = Field(sa_column=Column(Date, primary_key=True))
    line: str = Field(sa_column=Column(String(32), primary_key=True))
    measure: str = Field(sa_column=Column(String(32), primary_key=True))
    item: str = Field(sa_column=Column(String(64), primary_key=True))
    count: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditVerified(SQLModel, table=True):
    """How far ``GET /v1/audit/verify`` has verified the chain, and who is verifying now.

    One row. ``(seq, hash)`` is the last event already verified from genesis, so the next
    verification starts there instead of recomputing the whole log (issue 16); the full
    recomputation is ``bulwark audit verify``. ``lease_owner``/``lease_until`` make the run
    single-flight across replicas: only the holder of an unexpired lease verifies.
    """

    __tablename__ = "audit_verified"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    verified_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    lease_until: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
