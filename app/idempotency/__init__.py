"""Idempotent POSTs: the ``Idempotency-Key`` header (see :mod:`app.idempotency.middleware`)."""
