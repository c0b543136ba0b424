"""Limits on callers: the per-caller rate limit on ``/v1``, shared by every replica (Redis or
the state database), and the slow-client guard of ``bulwark serve`` (:mod:`.slow_clients`)."""

from app.ratelimit.backends import Counter, DatabaseCounter, RedisCounter
from app.ratelimit.limiter import RateLimiter, build_limiter, limiter_of, start_limiter

__all__ = [
    "Counter",
    "DatabaseCounter",
    "RateLimiter",
    "RedisCounter",
    "build_limiter",
    "limiter_of",
    "start_limiter",
]
