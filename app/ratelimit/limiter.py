"""The per-caller rate limit on ``/v1``.

Every authenticated ``/v1`` request counts one hit against its caller in the current minute
(a fixed window, shared by all replicas through the backend). Past
``BULWARK_RATE_LIMIT_PER_MINUTE`` the request is answered 429 ``request.rate_limited`` with a
``Retry-After`` of the seconds left in the minute; nothing else runs for it.

Counting is leased: a process takes a small share of a caller's minute from the shared counter
in one round trip (:func:`lease_size`, 2% of the limit) and spends it locally, so the backend
is reached once per share, not once per request. The shared counter holds every share taken,
used or not, so the limit across all replicas is never exceeded; a caller may be refused up to
one unused share per other replica early. With small limits the share is one request, which is
exact per-request counting.

Fail closed: when the backend cannot count (down, slow past :data:`HIT_TIMEOUT_SECONDS`), the
request is answered 503 ``state.unavailable`` and nothing else runs. A limiter that let
requests through whenever its store failed would be switched off by whoever can break it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from app.callers.service import Caller
from app.core.config import Settings
from app.core.problems import RateLimited, StateUnavailable
from app.core.startup import StartupError
from app.metrics import RATE_LIMITED
from app.ratelimit.backends import Counter, DatabaseCounter, RedisCounter

logger = logging.getLogger("bulwark.ratelimit")

WINDOW_SECONDS = 60
#: The share of a caller's per-minute limit that one process takes at a time.
LEASE_FRACTION = 50
#: Longest a request waits for its count before it is refused with 503.
HIT_TIMEOUT_SECONDS = 3.0


class RateLimiter:
    """Counts each caller's requests per minute and refuses those over the limit."""

    def __init__(
        self,
        counter: Counter,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = HIT_TIMEOUT_SECONDS,
    ) -> None:
        self.counter = counter
        self.per_minute = per_minute
        self.lease = lease_size(per_minute)
        self._clock = clock
        self._timeout = timeout
        # caller id -> (minute, requests left in this process's share of it)
        self._leases: dict[int, tuple[int, int]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # caller id -> the minute whose shared count is spent (nothing more can be granted)
        self._spent: dict[int, int] = {}

    async def hit(self, caller: Caller) -> None:
        """Count one request of ``caller``; raise RateLimited or StateUnavailable to refuse."""
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        if self._spend(caller.id, window):
            return
        lock = self._locks.setdefault(caller.id, asyncio.Lock())
        async with lock:
            # Another request may have taken a share while this one waited for the lock.
            if self._spend(caller.id, window):
                return
            granted = (
                0
                if self._spent.get(caller.id) == window
                else await self._take_share(caller.id, window)
            )
            if granted <= 0:
                # Shares are never given back, so the minute stays spent: refuse the rest of
                # it here, without a round trip each.
                self._spent[caller.id] = window
            else:
                self._leases[caller.id] = (window, granted - 1)
        if granted <= 0:
            RATE_LIMITED.inc()
            raise RateLimited(max(1, math.ceil((window + 1) * WINDOW_SECONDS - now)))

    def _spend(self, caller_id: int, window: int) -> bool:
        held = self._leases.get(caller_id)
        if held is None or held[0] != window or held[1] <= 0:
            return False
        self._leases[caller_id] = (window, held[1] - 1)
        return True

    async def _take_share(self, caller_id: int, window: int) -> int:
        """Add a share to the shared count; return how much of it lies within the limit."""
        try:
            async with asyncio.timeout(self._timeout):
                total = await self.counter.hit(f"caller:{caller_id}", window, self.lease)
        except Exception as exc:
            logger.error("rate limiter unavailable", extra={"error_type": type(exc).__name__})
            raise StateUnavailable(
                "The rate limiter could not count this request; nothing was done."
            ) from None
        return min(self.lease, self.per_minute - (total - self.lease))

    async def check(self) -> None:
        """Reach the backend once (at start); raise when it cannot be reached."""
        async with asyncio.timeout(self._timeout):
            await self.counter.check()

    async def close(self) -> None:
        """Release the backend's connections."""
        await self.counter.close()


def lease_size(per_minute: int) -> int:
    """How many requests one process counts at a time: 2% of the limit, at least one."""
    return max(1, per_minute // LEASE_FRACTION)


def build_limiter(settings: Settings, state: AsyncEngine) -> RateLimiter:
    """The configured limiter; no I/O (``check`` reaches the backend)."""
    counter: Counter
    if settings.rate_limit_backend == "redis":
        assert settings.redis_url is not None  # the settings validator guarantees it
        counter = RedisCounter(
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_prefix,
            timeout=HIT_TIMEOUT_SECONDS,
            tls_ca_file=settings.tls_ca_file,
        )
    else:
        counter = DatabaseCounter(state)
    return RateLimiter(counter, settings.rate_limit_per_minute)


class LimiterHost(Protocol):
    """What keeps a process's limiter (``app.runtime.Runtime``)."""

    settings: Settings
    state: AsyncEngine
    limiter: RateLimiter | None


def limiter_of(runtime: LimiterHost) -> RateLimiter:
    """The runtime's limiter, built on first use (the lifespan builds and checks it at start)."""
    if runtime.limiter is None:
        runtime.limiter = build_limiter(runtime.settings, runtime.state)
    return runtime.limiter


async def start_limiter(runtime: LimiterHost) -> RateLimiter:
    """The runtime's limiter with its backend reached once, or StartupError saying why."""
    try:
        limiter = limiter_of(runtime)
        await limiter.check()
    except ValueError as exc:
        raise StartupError(f"rate limiter: {exc}") from None
    except Exception as exc:
        # The type only: a Redis URL may carry a password.
        raise StartupError(
            f"rate limiter backend ({runtime.settings.rate_limit_backend}) unreachable "
            f"({type(exc).__name__}); check BULWARK_RATE_LIMIT_BACKEND and BULWARK_REDIS_URL"
        ) from None
    return limiter
