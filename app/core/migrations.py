"""Schema migrations of the state database, through Alembic only."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.problems import BulwarkError
from app.core.reasons import Reason

MIGRATIONS_DIR = Path(str(files("migrations")))


class SchemaMismatch(BulwarkError):
    """The state database's schema is not the one this code was built for."""

    def __init__(self, current: str | None, head: str) -> None:
        if current is None:
            detail = "the state database has no schema; run `bulwark db upgrade`"
        else:
            detail = (
                f"the state database is at schema {current}, this code needs {head}; run "
                "`bulwark db upgrade` (or upgrade Bulwark if the database is newer)"
            )
        super().__init__(Reason.STATE_UNAVAILABLE, detail)
        self.current = current
        self.head = head


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the state database at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The schema revision this code expects."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None, "no migrations found"
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the state database at ``url`` (blocking; for the CLI and tests)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the state database at ``url`` (tests and operators' rollbacks)."""
    command.downgrade(alembic_config(url), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at, or None when it has none."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def check_schema(engine: AsyncEngine) -> None:
    """Raise :class:`SchemaMismatch` unless the database is at this code's revision."""
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaMismatch(current, head)


async def foreign_tables(url: str, tables: Iterable[str]) -> list[str]:
    """Tables in the database at ``url`` that are not ``tables`` (Bulwark's, sorted).

    ``tables`` come from ``app.schema.target_metadata``: ``core`` knows no domain
    (docs/architecture.md).
    """
    from sqlalchemy import inspect

    from app.core.database import create_engine

    ours = set(tables) | {"alembic_version"}
    engine = create_engine(url, read_only=True)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return sorted(n for n in names if n not in ours)
