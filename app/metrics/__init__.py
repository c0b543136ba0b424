"""Prometheus metrics: what Bulwark decided, how fast, and where time went.

Every label value comes from a closed set that Bulwark itself defines (route templates, reason
codes, effects, category ids, HTTP methods and statuses), never from a request: no patron id,
case number or path can become a label, and no caller can grow the number of series.

Metrics are per process (one registry each); each replica, and each worker when
``BULWARK_WORKERS`` is above 1, is its own scrape target. See ``docs/deploy.md``.

Other modules record through this package's names: ``RATE_LIMITED.inc()`` when a request is
refused with ``request.rate_limited``; the rest are recorded by the request middleware
(:func:`observe_request`), the audit writer (:func:`observe_audit_append`) and the records-store
wrapper (:class:`MeasuredStore`, which also counts reads failed closed on a malformed date).
"""

from app.metrics.registry import (
    AUDIT_APPEND_LATENCY,
    AUDIT_BATCH_EVENTS,
    DECISION_REASONS,
    DECISIONS,
    ORDER_USES_REFUSED,
    RATE_LIMITED,
    REGISTRY,
    REQUEST_LATENCY,
    REQUESTS,
    STORE_LATENCY,
    STORE_MALFORMED,
    observe_audit_append,
    observe_request,
    render,
)
from app.metrics.store import MeasuredStore

__all__ = [
    "AUDIT_APPEND_LATENCY",
    "AUDIT_BATCH_EVENTS",
    "DECISIONS",
    "DECISION_REASONS",
    "ORDER_USES_REFUSED",
    "RATE_LIMITED",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_LATENCY",
    "STORE_LATENCY",
    "STORE_MALFORMED",
    "MeasuredStore",
    "observe_audit_append",
    "observe_request",
    "render",
]
