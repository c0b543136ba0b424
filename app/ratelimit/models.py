"""The database backend's one table: a fixed-window counter per bucket (one row per caller)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel


class RateLimitCounter(SQLModel, table=True):
    """Requests counted in the current minute for one bucket (``caller:<id>``).

    One row per bucket, overwritten when a new window starts, so the table never grows with
    time: no clean-up job is needed.
    """

    __tablename__ = "rate_limits"

    bucket: str = SQLField(sa_column=Column(String(64), primary_key=True))
    window_start: int = SQLField(sa_column=Column(BigInteger, nullable=False))
    hits: int = SQLField(sa_column=Column(Integer, nullable=False))
