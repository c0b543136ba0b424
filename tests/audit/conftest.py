"""Fixtures shared by the audit tests: a migrated state ``engine`` and a started writer on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.writer import AuditWriter
from app.core import migrations
from app.core.database import create_engine


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
