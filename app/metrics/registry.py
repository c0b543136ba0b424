"""The metric definitions and the hooks that record them (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import Scope

from app.core.middleware import route_template
from app.core.reasons import Reason

#: One registry per process, not prometheus-client's global one: only Bulwark's own series
#: (and the process's) are exported, whatever else a library registers.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_LATENCY = Histogram(
    "bulwark_http_request_duration_seconds",
    "Time from the request's arrival to its last response byte, per route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUESTS = Counter(
    "bulwark_http_requests",
    "Requests answered, per route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "bulwark_decisions",
    "Decisions answered (disclosures and dry runs), by effect: permit, deny or error.",
    ["route", "effect"],
    registry=REGISTRY,
)
DECISION_REASONS = Counter(
    "bulwark_decision_reasons",
    "Reason codes given with decisions; a deny with three reasons counts once under each.",
    ["route", "reason"],
    registry=REGISTRY,
)
ORDER_USES_REFUSED = Counter(
    "bulwark_order_uses_refused",
    "Disclosures refused because the order's uses were spent or the order was revoked.",
    ["reason"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "bulwark_rate_limited",
    "Requests refused with 429 request.rate_limited (incremented by the rate limiter).",
    registry=REGISTRY,
)
STORE_LATENCY = Histogram(
    "bulwark_store_fetch_duration_seconds",
    "Time of one records-store read (one category of one disclosure), by outcome.",
    ["category", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STORE_MALFORMED = Counter(
    "bulwark_store_malformed_dates",
    "Store reads failed closed because a row's date could not be placed in time, by category.",
    ["category"],
    registry=REGISTRY,
)
AUDIT_APPEND_LATENCY = Histogram(
    "bulwark_audit_append_duration_seconds",
    "Time of one audit group commit (lock, re-checks, insert, commit).",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
AUDIT_BATCH_EVENTS = Histogram(
    "bulwark_audit_batch_events",
    "Events written by one audit group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_EFFECTS = frozenset({"permit", "deny", "error"})
#: Reason codes, and the one label under which decisions about a banded instrument are
#: counted (exact counts by reason would give away what the report publishes only in bands).
_REASONS = frozenset(r.value for r in Reason) | {"banded_instrument"}
_USE_REFUSALS = frozenset({Reason.ORDER_EXHAUSTED.value, Reason.ORDER_REVOKED.value})

#: Label children per (method, route, status): resolving labels costs more than observing,
#: and the key space is bounded by the app's routes, seven methods and the statuses it gives.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
#: The same for the decision counters, keyed by (metric, label values): closed sets as well.
_counters: dict[tuple[Counter, str, str], Any] = {}


def _counter(metric: Counter, first: str, second: str = "") -> Any:
    key = (metric, first, second)
    child = _counters.get(key)
    if child is None:
        child = metric.labels(first, second) if second else metric.labels(first)
        _counters[key] = child
    return child


def _one_of(value: object, allowed: frozenset[str]) -> str:
    # Anything outside the closed set is folded into "other": a label never echoes input.
    return value if isinstance(value, str) and value in allowed else "other"


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Record one answered HTTP request (called by the request middleware)."""
    method = _one_of(scope.get("method"), _METHODS)
    route = route_template(scope)  # the template, never the concrete path
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        children = (
            REQUEST_LATENCY.labels(method, route),
            REQUESTS.labels(method, route, str(status)),
        )
        _children[key] = children
    children[0].observe(seconds)
    children[1].inc()
    state = scope.get("state")
    if state and "decision_effect" in state:
        _observe_decision(route, status, state["decision_effect"], state.get("decision_reasons"))


def _observe_decision(route: str, status: int, effect: object, reasons: object) -> None:
    _counter(DECISIONS, route, "error" if status >= 500 else _one_of(effect, _EFFECTS)).inc()
    codes: Iterable[object] = reasons if isinstance(reasons, list | tuple) else ()
    for code in codes:
        label = _one_of(code, _REASONS)
        _counter(DECISION_REASONS, route, label).inc()
        if label in _USE_REFUSALS and status == 403:
            _counter(ORDER_USES_REFUSED, label).inc()


def observe_audit_append(seconds: float, batch_size: int) -> None:
    """Record one audit group commit (the audit writer's ``observe`` callback)."""
    AUDIT_APPEND_LATENCY.observe(seconds)
    AUDIT_BATCH_EVENTS.observe(batch_size)


def render() -> bytes:
    """The registry in Prometheus's text exposition format."""
    return generate_latest(REGISTRY)
