"""What the rate limiter costs a request, per backend.

Run from the repository root: ``python bench/ratelimit.py [hits]`` (default 2,000), with
PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (a backend that cannot be reached
is reported and skipped). For each backend it prints:

- ``trip``: the latency of one count on the backend (median and p99, one at a time), which a
  request waits for whenever its process needs a new share of its caller's minute;
- ``request``: the latency of ``RateLimiter.hit`` as requests see it at the default limit
  (600 a minute, shares of 12), callers taking 590 requests each;
- ``32 at once``: the throughput of one caller's counts from 32 concurrent tasks, the worst
  case for the backend since all of them count on the same row or key.

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
from collections.abc import AsyncIterator, Awaitable, Callable
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


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def timed(step: Callable[[int], Awaitable[object]], n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        started = time.perf_counter_ns()
        await step(i)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return percentiles(samples)


async def measure(name: str, counter: Counter, hits: int) -> None:
    await counter.check()
    for i in range(50):  # warm the pool and the statement cache
        await counter.hit("warm", i)
    window = int(time.time() // 60)
    trip = await timed(lambda i: counter.hit("trip", window), hits)
    limiter = RateLimiter(counter, per_minute=600)

    def caller(i: int) -> Caller:  # a fresh caller every 590 requests: none is ever limited
        return Caller(id=1000 + i // 590, name="bench", role=Role.REQUESTER)

    request = await timed(lambda i: limiter.hit(caller(i)), hits)

    async def task() -> None:
        for _ in range(hits // TASKS):
            await counter.hit("hot", window)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    rate = (hits // TASKS) * TASKS / (time.perf_counter() - started)
    print(
        f"{name:<22} {trip[0]:>8.3f} {trip[1]:>8.3f} {request[0]:>9.3f} {request[1]:>9.3f}"
        f" {rate:>12,.0f}"
    )


async def main(hits: int) -> None:
    print(f"{'':<22} {'trip, ms':>17} {'request, ms':>19} {'32 at once':>12}")
    print(f"{'backend':<22} {'p50':>8} {'p99':>8} {'p50':>9} {'p99':>9} {'counts/s':>12}")
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
