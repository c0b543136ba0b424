"""Unknown API keys cost nothing (issue 16).

Every request with a well-formed but unknown ``bwk_`` key cost a state-database lookup,
without limit: a flood of made-up keys was a flood of queries. Now each process counts the
unknown keys per client address in a one-minute window; past
:data:`UNKNOWN_KEYS_PER_MINUTE` an address is answered 429 without any lookup until the window
ends, and a key just found unknown is remembered for a few seconds so that repeating it costs
nothing either. Counted in ``bulwark_unknown_keys_total``.

The address is the connection's peer: behind the shipped proxy that is the proxy, so nginx's
own ``limit_req`` (docs/deploy.md) limits per caller there; this guard keeps a single replica's
database safe whatever is in front of it. A key this process authenticated lately (its
cache entry is fresh) is never limited here.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from typing import Protocol

from fastapi import Request
from prometheus_client import Counter

from app.core.problems import RateLimited
from app.metrics.registry import REGISTRY

UNKNOWN_KEYS_PER_MINUTE = 30
WINDOW_SECONDS = 60
#: How long a key found unknown is answered 401 from memory.
NEGATIVE_SECONDS = 5.0
#: Addresses and keys remembered at most (oldest forgotten first): memory stays bounded.
MAX_TRACKED = 10_000

UNKNOWN_KEYS = Counter(
    "bulwark_unknown_keys",
    "Requests with a well-formed API key that no caller has (or had revoked).",
    registry=REGISTRY,
)


class UnknownKeyGuard:
    """Per-address counting of unknown keys, and a short memory of keys found unknown."""

    def __init__(self, *, per_minute: int = UNKNOWN_KEYS_PER_MINUTE) -> None:
        self._per_minute = per_minute
        self._windows: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def before_lookup(self, address: str, digest: str) -> bool:
        """Raise 429 for an address over its limit; True when ``digest`` is known unknown."""
        window = int(time.monotonic() // WINDOW_SECONDS)
        start, count = self._windows.get(address, (window, 0))
        if start == window and count >= self._per_minute:
            retry = WINDOW_SECONDS - int(time.monotonic() % WINDOW_SECONDS)
            raise RateLimited(max(1, retry))
        until = self._unknown.get(digest)
        return until is not None and until > time.monotonic()

    def failed(self, address: str, digest: str) -> None:
        """Count one unknown key from ``address``."""
        UNKNOWN_KEYS.inc()
        window = int(time.monotonic() // WINDOW_SECONDS)
        start, count = self._windows.pop(address, (window, 0))
        self._windows[address] = (window, count + 1 if start == window else 1)
        self._unknown.pop(digest, None)
        self._unknown[digest] = time.monotonic() + NEGATIVE_SECONDS
        for table in (self._windows, self._unknown):
            while len(table) > MAX_TRACKED:
                table.popitem(last=False)

    def forget(self, digest: str) -> None:
        """A key that was just created is no longer unknown."""
        self._unknown.pop(digest, None)


def client_address(request: Request) -> str:
    """The caller's address: the peer, or the proxy's last X-Forwarded-For hop.

    Behind the shipped nginx the peer is the proxy (a private or loopback address), which
    appends the address it saw to X-Forwarded-For: that last hop is the caller's. Hops
    before it are the caller's own word and are ignored. A public peer is the caller.
    """
    peer = request.client.host if request.client else ""
    try:
        private = ipaddress.ip_address(peer).is_private
    except ValueError:
        private = False
    forwarded = request.headers.get("x-forwarded-for", "")
    if private and forwarded:
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return peer


class GuardHost(Protocol):
    """What keeps a process's guard (``app.runtime.Runtime``)."""

    unknown_keys: UnknownKeyGuard | None


def guard_of(runtime: GuardHost) -> UnknownKeyGuard:
    """The process's guard, created on first use (kept in ``runtime.unknown_keys``)."""
    if runtime.unknown_keys is None:
        runtime.unknown_keys = UnknownKeyGuard()
    return runtime.unknown_keys
