"""Fixtures shared by the audit tests: a started writer on the test's ``engine``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.writer import AuditWriter


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[AuditWriter]:
    """The process's audit writer, started, and closed after the test."""
    w = AuditWriter(engine)
    w.start()
    yield w
    await w.close()
