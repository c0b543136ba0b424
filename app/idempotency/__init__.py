"""Idempotent POSTs: the ``Idempotency-Key`` header (see :mod:`app.idempotency.middleware`)."""

from app.idempotency.middleware import IdempotencyMiddleware

__all__ = ["IdempotencyMiddleware"]
