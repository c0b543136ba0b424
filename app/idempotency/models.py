"""The state table that makes a POST with an ``Idempotency-Key`` answer once, on every replica."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Integer, LargeBinary, String
from sqlalchemy.dialects import mysql
from sqlmodel import Field, SQLModel

from app.core.models import UTCDateTime

#: A disclosure's answer can pass MySQL's 64 KiB BLOB; LONGBLOB there, the plain type elsewhere.
ANSWER_TYPE = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class IdempotentRequest(SQLModel, table=True):
    """One caller's use of one idempotency key.

    Neither the key nor the request is stored: ``lookup`` is a keyed hash of the caller and
    the key, ``request_mac`` a MAC of the request under a key derived from the idempotency
    key, and ``answer`` the first answer encrypted under another such key (see
    :mod:`app.idempotency.store`). ``answer`` is NULL while the first request is in flight.
    """

    __tablename__ = "idempotent_requests"
    __table_args__ = (Index("ix_idempotent_requests_expires_at", "expires_at"),)

    lookup: str = Field(sa_column=Column(String(64), primary_key=True))
    caller_id: int = Field(sa_column=Column(Integer, nullable=False))
    request_mac: str = Field(sa_column=Column(String(64), nullable=False))
    started_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    answer: bytes | None = Field(default=None, sa_column=Column(ANSWER_TYPE, nullable=True))
