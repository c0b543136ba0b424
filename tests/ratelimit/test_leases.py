"""Leased counting: each process counts a share of the limit at a time, the shared counter
never lets the replicas together exceed the limit, and small limits count every request."""

from __future__ import annotations

import asyncio

import pytest

from app.callers.models import Role
from app.callers.service import Caller
from app.core.problems import RateLimited
from app.ratelimit import RateLimiter
from app.ratelimit.limiter import lease_size

CALLER = Caller(id=7, name="c", role=Role.REQUESTER)


class SharedCounter:
    """An in-memory stand-in for Redis or the state database, counting its round trips."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, int], int] = {}
        self.calls = 0

    async def hit(self, bucket: str, window: int, amount: int = 1) -> int:
        self.calls += 1
        await asyncio.sleep(0)  # a round trip lets other requests run
        key = (bucket, window)
        self.totals[key] = self.totals.get(key, 0) + amount
        return self.totals[key]

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def admitted(limiter: RateLimiter, n: int) -> int:
    async def one() -> bool:
        try:
            await limiter.hit(CALLER)
        except RateLimited:
            return False
        return True

    return sum(await asyncio.gather(*(one() for _ in range(n))))


def test_lease_is_two_percent_and_at_least_one() -> None:
    assert [lease_size(n) for n in (1, 49, 50, 600, 1_000_000)] == [1, 1, 1, 12, 20_000]


async def test_replicas_together_never_exceed_the_limit() -> None:
    counter = SharedCounter()
    clock = lambda: 120.0  # noqa: E731  (one fixed minute)
    replicas = [RateLimiter(counter, 500, clock=clock) for _ in range(3)]
    results = await asyncio.gather(*(admitted(r, 400) for r in replicas))
    assert sum(results) <= 500
    # Unused shares of the other replicas are the most it can refuse early.
    assert sum(results) >= 500 - 2 * lease_size(500)
    # One round trip per share, not per request.
    assert counter.calls <= 3 * 400 // lease_size(500) + 3 * 5


async def test_small_limits_count_every_request_exactly() -> None:
    counter = SharedCounter()
    limiter = RateLimiter(counter, 5, clock=lambda: 60.0)
    assert await admitted(limiter, 9) == 5
    # Five shares of one request, then one refused count; the spent minute is remembered.
    assert counter.calls == 6
    assert counter.totals[("caller:7", 1)] == 6


async def test_a_new_minute_starts_a_new_share() -> None:
    now = [60.0]
    counter = SharedCounter()
    limiter = RateLimiter(counter, 100, clock=lambda: now[0])
    assert await admitted(limiter, 150) == 100
    now[0] = 120.0
    assert await admitted(limiter, 10) == 10


@pytest.mark.parametrize("limit", [50, 600])
async def test_concurrent_requests_in_one_process_take_one_share_at_a_time(limit: int) -> None:
    counter = SharedCounter()
    limiter = RateLimiter(counter, limit, clock=lambda: 60.0)
    assert await admitted(limiter, limit) == limit
    assert counter.calls == -(-limit // lease_size(limit))
