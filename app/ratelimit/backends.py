"""Where the rate limiter's counters live: Redis, or the state database.

Both are fixed-window counters keyed by bucket and minute, and both cost one round trip per
count (a share of requests, see :mod:`app.ratelimit.limiter`): a Redis pipeline (``INCRBY`` +
``EXPIRE``), or one upsert statement. Every replica pointed at the same Redis or state
database shares the same counts.

The database backend shares the state database's engine (nothing of its own to open or
close). Its one row per caller is overwritten each minute, so the table stays as small as the
callers table. The counts need not survive a crash (losing one minute's counts lets a caller
through a few more requests once, and releases nothing the policy would refuse), so on
PostgreSQL the upsert commits without waiting for the disk; see :func:`_pg_upsert`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.models import table_of
from app.core.transport import redis_tls_options
from app.ratelimit.models import RateLimitCounter

LIMITS = table_of(RateLimitCounter)

#: Seconds a Redis key outlives its minute, so a slow clock on one replica still finds it.
REDIS_KEY_TTL = 120


class Counter(Protocol):
    """A shared fixed-window counter."""

    async def hit(self, bucket: str, window: int, amount: int = 1) -> int:
        """Count ``amount`` requests for ``bucket`` in minute ``window``; return the total."""
        ...

    async def check(self) -> None:
        """Raise when the backend cannot be reached."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class RedisCounter:
    """Counters in Redis: ``<prefix>:<bucket>:<window>``, expiring after two minutes."""

    def __init__(
        self, url: str, *, prefix: str, timeout: float, tls_ca_file: Path | None = None
    ) -> None:
        self._prefix = prefix
        # One immediate retry: a pooled connection may have gone stale across a Redis restart.
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            max_connections=64,
            # rediss://: the server's certificate and name verified (app/core/transport.py).
            **redis_tls_options(url, tls_ca_file),
        )

    async def hit(self, bucket: str, window: int, amount: int = 1) -> int:
        """One pipeline: increment the minute's key and keep it alive past the minute."""
        key = f"{self._prefix}:{bucket}:{window}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, REDIS_KEY_TTL)
            count, _ = await pipe.execute()
        return int(count)

    async def check(self) -> None:
        """PING."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the client and its pool."""
        await self._redis.aclose()


class DatabaseCounter:
    """Counters in the state database's ``rate_limits`` table: one upsert per count."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(
                "the database rate-limit backend supports SQLite and PostgreSQL state "
                "databases; set BULWARK_RATE_LIMIT_BACKEND=redis"
            )
        self._engine = engine
        # PostgreSQL: the upsert is its own transaction, so no BEGIN and COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def hit(self, bucket: str, window: int, amount: int = 1) -> int:
        """``INSERT … ON CONFLICT DO UPDATE … RETURNING hits``: one statement, one row lock."""
        if self._dialect == "postgresql":
            async with self._autocommit.connect() as conn:
                return int((await conn.execute(_pg_upsert(bucket, window, amount))).scalar_one())
        async with self._engine.begin() as conn:
            return int((await conn.execute(_sqlite_upsert(bucket, window, amount))).scalar_one())

    async def check(self) -> None:
        """A connection can be opened."""
        async with self._engine.connect():
            pass

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the runtime."""


def _counted(stmt: Any) -> Any:
    """``stmt`` (an insert of one row) made to add its hits to the row when it exists."""
    newer = LIMITS.c.window_start < stmt.excluded.window_start
    # A replica whose clock lags counts against the newer window instead of resetting it.
    return stmt.on_conflict_do_update(
        index_elements=[LIMITS.c.bucket],
        set_={
            "hits": case((newer, stmt.excluded.hits), else_=LIMITS.c.hits + stmt.excluded.hits),
            "window_start": case((newer, stmt.excluded.window_start), else_=LIMITS.c.window_start),
        },
    ).returning(LIMITS.c.hits)


def _sqlite_upsert(bucket: str, window: int, amount: int) -> Any:
    return _counted(sqlite.insert(LIMITS).values(bucket=bucket, window_start=window, hits=amount))


def _pg_upsert(bucket: str, window: int, amount: int) -> Any:
    # The row's values come through a one-row subquery that turns synchronous_commit off for
    # this statement's own transaction (set_config(..., is_local => true)): the row lock is
    # then held for the statement only, not for a WAL flush, and a hot caller's requests do
    # not queue behind each other's disk waits. Still one statement, one round trip.
    relaxed = select(func.set_config("synchronous_commit", "off", True).label("relaxed"))
    row = select(literal(bucket), literal(window), literal(amount)).select_from(relaxed.subquery())
    return _counted(postgresql.insert(LIMITS).from_select(["bucket", "window_start", "hits"], row))
