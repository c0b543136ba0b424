"""Reading a PostgreSQL records store through asyncpg's own pool.

A fetch is one prepared SELECT. Through SQLAlchemy's async engine it also pays for a pool
checkout and return, a result wrapper and greenlet switches: measured, about as much CPU as
all of Bulwark's other work on a permit. asyncpg's pool runs the same statement (compiled by
SQLAlchemy once per category and field set, ``$n`` placeholders) with its prepared-statement
cache, the way a hand-written pass-through would.

The connections are made with the arguments SQLAlchemy would use for the same URL, and the
server enforces the store's deadline itself (``statement_timeout``), as on the engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

#: asyncpg's failures that mean "the store cannot answer now".
PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)


class _ReadOnlyConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """A pooled connection that runs single SELECTs outside transactions and sets nothing.

    asyncpg resets every connection it takes back (advisory locks, cursors, listeners,
    settings): a round trip per fetch, for state these connections never have.
    """

    def get_reset_query(self) -> str:
        return ""


class PgReader:
    """A lazily created asyncpg pool for one store; see the module docstring."""

    def __init__(self, engine: AsyncEngine, *, timeout: float, pool_size: int) -> None:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._args: list[Any] = list(args)
        self._kwargs: dict[str, Any] = {
            **kwargs,
            "timeout": min(timeout, 5.0),  # connecting
            "command_timeout": timeout,
            "server_settings": {"statement_timeout": str(int(timeout * 1000))},
        }
        self._size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        *self._args,
                        min_size=1,
                        max_size=self._size,
                        connection_class=_ReadOnlyConnection,
                        **self._kwargs,
                    )
        return self._pool

    async def fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        """The rows of ``sql``; raises asyncpg's errors, OSError or TimeoutError on failure."""
        pool = await self._get_pool()
        return list(await pool.fetch(sql, *parameters))

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
