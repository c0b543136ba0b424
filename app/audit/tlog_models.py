"""The Merkle tree's signed checkpoints and the witnesses' cosignatures on them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, String, Text
from sqlmodel import Field, SQLModel

from app.audit.tree import AuditTreeNode
from app.core.models import UTCDateTime

__all__ = ["AuditCheckpoint", "AuditCosignature", "AuditTreeNode"]


class AuditCheckpoint(SQLModel, table=True):
    """A checkpoint the log signed: the C2SP signed note, keyed by its tree size.

    ``note`` is exactly what was signed plus the log's signature line; cosignatures are kept
    apart and appended when the checkpoint is served.
    """

    __tablename__ = "audit_checkpoints"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: str = Field(sa_column=Column(String(64), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AuditCosignature(SQLModel, table=True):
    """One witness's cosignature line on the checkpoint of ``size``."""

    __tablename__ = "audit_cosignatures"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness: str = Field(sa_column=Column(String(200), primary_key=True))
    line: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
