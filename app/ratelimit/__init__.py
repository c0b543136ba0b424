"""A per-caller rate limit on ``/v1``, shared by every replica (Redis or the state database)."""

from app.ratelimit.backends import Counter, DatabaseCounter, RedisCounter
from app.ratelimit.limiter import RateLimiter, build_limiter, limiter_of

__all__ = [
    "Counter",
    "DatabaseCounter",
    "RateLimiter",
    "RedisCounter",
    "build_limiter",
    "limiter_of",
]
