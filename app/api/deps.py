"""Dependency aliases shared by every router.

Authentication is attached once, to the ``/v1`` router (see :func:`authenticate`); routes
state the roles they admit with :func:`require_roles`. A route outside ``/v1`` is public.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.callers.models import Role
from app.callers.service import KEY_PREFIX, Caller, hash_key
from app.core.clock import clock_of
from app.core.database import state_errors
from app.core.problems import AuthError, ForbiddenError
from app.ratelimit import limiter_of
from app.ratelimit.unknown_keys import client_address, guard_of
from app.runtime import Runtime

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key created with `bulwark clients add NAME --role ROLE`.",
)


async def get_runtime(request: Request) -> Runtime:
    """The process's runtime (engines, keys, policy, store), built by the lifespan.

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
    hop on every request.
    """
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


# Each dependency FastAPI resolves costs tens of microseconds per request (it recomputes the
# tree's cache keys and scopes every time), so the ones on every /v1 request take the
# runtime from the app's state and the caller from the request's, instead of sub-dependencies.


async def authenticate(request: Request, credentials: Credentials) -> Caller:
    """Every ``/v1`` request: a known, active API key, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError()
    runtime: Runtime = request.app.state.runtime
    caller = await guarded_lookup(request, runtime, credentials.credentials)
    request.state.caller = caller
    request.state.caller_key = credentials.credentials
    # Counted after authentication (per caller, shared by replicas): 429 or 503 raise here.
    await limiter_of(runtime).hit(caller)
    # Nothing is decided on a replica whose clock disagrees with the state database's.
    await clock_of(runtime).check()
    return caller


async def guarded_lookup(request: Request, runtime: Runtime, key: str) -> Caller:
    """The caller of ``key``; unknown keys are counted and limited per client address."""
    if runtime.callers.recently_known(key) or not key.startswith(KEY_PREFIX):
        return await _lookup(runtime, key, live=False)
    guard = guard_of(runtime)
    address = client_address(request)
    digest = hash_key(key)
    if guard.before_lookup(address, digest):
        raise AuthError()  # found unknown a moment ago: no second lookup
    try:
        return await _lookup(runtime, key, live=False)
    except AuthError:
        guard.failed(address, digest)
        raise


async def _lookup(runtime: Runtime, key: str, *, live: bool) -> Caller:
    """The caller of ``key``; 503 state.unavailable (not a 500) when the state database fails."""
    with state_errors():
        return await runtime.callers.authenticate(key, live=live)


def require_roles(*roles: Role, live: bool = True) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only ``roles``.

    ``live=True`` re-reads the key from the state database, so a key revoked a moment ago is
    refused. Routes whose every answer is recorded by an audit append may pass ``live=False``:
    the append re-checks the key under its lock before anything is released.
    """
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Caller:
        # Set by authenticate, which the /v1 router runs before any route's own dependency;
        # a route outside /v1 that asked for a role would find none and refuse.
        caller: Caller | None = getattr(request.state, "caller", None)
        if caller is None:
            raise AuthError()
        if live:
            caller = await _lookup(request.app.state.runtime, request.state.caller_key, live=True)
        if caller.role not in allowed:
            raise ForbiddenError()
        return caller

    return dependency


Requester = Annotated[Caller, Depends(require_roles(Role.REQUESTER, live=False))]
Evaluator = Annotated[
    Caller, Depends(require_roles(Role.REQUESTER, Role.AUDITOR, Role.ADMIN, live=False))
]
Auditor = Annotated[Caller, Depends(require_roles(Role.AUDITOR, Role.ADMIN))]
Admin = Annotated[Caller, Depends(require_roles(Role.ADMIN))]
Notifier = Annotated[Caller, Depends(require_roles(Role.NOTIFIER))]
HoldReader = Annotated[Caller, Depends(require_roles(Role.AUDITOR, Role.ADMIN, Role.RECORDS_ADMIN))]
