"""What the rate limiter costs a request: one count, per backend.

Run from the repository root: ``python bench/ratelimit.py [hits]`` (default 2,000), with
PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (a backend that cannot be reached
is reported and skipped). For each backend it prints:

- the latency of one ``RateLimiter.hit`` (median and p99, one at a time): what every ``/v1``
  request waits for before anything else runs;
- the throughput of one caller's hits from 32 concurrent tasks: the worst case, since all of
  them count on the same row or key.

The SQLite state database and PostgreSQL are fresh databases migrated with the real
migrations; Redis keys live under a random prefix and expire within two minutes.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.callers.models import Role
from app.callers.service import Caller
from app.core import migrations
from app.core.database import create_engine
from app.ratelimit import Counter, DatabaseCounter, RateLimiter, RedisCounter

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
CALLER = Caller(id=1, name="bench", role=Role.REQUESTER)
TASKS = 32


@asynccontextmanager
async def sqlite_counter() -> AsyncIterator[Counter]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/state.db"
        await asyncio.to_thread(migrations.upgrade, url)
        engine = create_engine(url)
        try:
            yield DatabaseCounter(engine)
        finally:
            await engine.dispose()


@asynccontextmanager
async def postgres_counter() -> AsyncIterator[Counter]:
    import asyncpg

    name = f"bulwark_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        engine = create_engine(url)
        try:
            yield DatabaseCounter(engine)
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def redis_counter() -> AsyncIterator[Counter]:
    counter = RedisCounter(REDIS, prefix=f"bulwark-bench:{uuid.uuid4().hex}", timeout=3)
    try:
        yield counter
    finally:
        await counter.close()


async def measure(name: str, counter: Counter, hits: int) -> None:
    limiter = RateLimiter(counter, per_minute=10**9)
    await counter.check()
    for _ in range(50):  # warm the pool and the statement cache
        await limiter.hit(CALLER)
    samples = []
    for _ in range(hits):
        started = time.perf_counter_ns()
        await limiter.hit(CALLER)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]

    async def task() -> None:
        for _ in range(hits // TASKS):
            await limiter.hit(CALLER)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    rate = (hits // TASKS) * TASKS / (time.perf_counter() - started)
    print(f"{name:<22} {p50:>8.3f} {p99:>8.3f} {rate:>12,.0f}")


async def main(hits: int) -> None:
    print(f"{'backend':<22} {'p50 ms':>8} {'p99 ms':>8} {'hits/s (32)':>12}")
    for name, factory in (
        ("database: SQLite", sqlite_counter),
        ("database: PostgreSQL", postgres_counter),
        ("redis", redis_counter),
    ):
        try:
            async with factory() as counter:
                await measure(name, counter, hits)
        except OSError as exc:
            print(f"{name:<22} unavailable ({type(exc).__name__})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
