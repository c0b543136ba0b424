"""Fixtures shared by the audit tests: a migrated state ``engine`` and a started writer on it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.writer import AuditWriter
from app.callers.models import Client
from app.core import migrations
from app.core.database import create_engine
from app.core.models import table_of


async def engine_with_a_client(url: str) -> AsyncEngine:
    """A migrated state database at ``url`` holding one caller (id 1, a requester), as the
    writer's statements that name ``client_id`` need; the caller disposes of the engine."""
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(table_of(Client)).values(
                id=1,
                name="ils",
                role="requester",
                key_hash="0" * 64,
                key_prefix="bwk_0000",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return engine


@pytest.fixture
async def engine(state_url: str) -> AsyncIterator[AsyncEngine]:
    """The test's state database, migrated; a module may define its own (on PostgreSQL)."""
    await asyncio.to_thread(migrations.upgrade, state_url)
    eng = create_engine(state_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[AuditWriter]:
    """The process's audit writer, started, and closed after the test."""
    w = AuditWriter(engine)
    w.start()
    yield w
    await w.close()
