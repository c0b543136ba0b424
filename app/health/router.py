"""``GET /healthz`` and ``GET /readyz``: public, no key (readyz's details need an admin key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.api.deps import RuntimeDep, guarded_lookup
from app.audit import privileges
from app.audit.service import EVENTS
from app.callers.models import Role
from app.core import config_proof, migrations
from app.core.clock import clock_of
from app.core.problems import PROBLEM_CONTENT_TYPE, StateUnavailable, problem_responses
from app.core.reasons import Reason
from app.health.schemas import Health, Readiness
from app.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", operation_id="getHealth", summary="The process is up", response_model=Health
)
async def healthz() -> Health:
    return Health(status="ok")


async def _state(runtime: Any) -> dict[str, Any]:
    try:
        await migrations.check_schema(runtime.state)
    except migrations.SchemaMismatch as exc:
        return {"ok": False, "detail": exc.detail}
    except Exception as exc:
        return {"ok": False, "detail": f"unreachable ({type(exc).__name__})"}
    return {"ok": True, "revision": migrations.head_revision()}


async def _store(runtime: Any) -> dict[str, Any]:
    try:
        await runtime.store.check()
    except Exception as exc:
        return {"ok": False, "detail": f"unavailable ({type(exc).__name__})"}
    return {"ok": True, "categories": sorted(c.value for c in runtime.store.fields())}


def _trust_store(runtime: Any) -> dict[str, Any]:
    # The loaded file's SHA-256: compare with `sha256sum` of the file on disk to know whether
    # this process has picked up an edit (trust-store changes need a restart; docs/trust.md).
    return {"ok": True, **runtime.trust.summary(), "sha256": runtime.trust.sha256}


async def _clock(runtime: Any) -> dict[str, Any]:
    clock = clock_of(runtime)
    try:
        await clock.refresh()
    except Exception as exc:
        return {"ok": False, "detail": f"unreachable ({type(exc).__name__})"}
    return clock.report()


#: Seconds one readiness answer is reused: the checks cost a schema and a store query each,
#: and /readyz is public, so a flood of calls must not become a flood of queries (issue 16).
READY_CACHE_SECONDS = 1.0


async def _checks(runtime: Any) -> dict[str, Any]:
    """Every check, at most once a second per process (the answer is shared meanwhile)."""
    cached = runtime.readyz
    now = time.monotonic()
    if cached is not None and now - cached[0] < READY_CACHE_SECONDS:
        return dict(cached[1])
    if runtime.readyz_lock is None:
        runtime.readyz_lock = asyncio.Lock()
    lock = runtime.readyz_lock
    async with lock:  # concurrent callers wait for the one run instead of starting their own
        cached = runtime.readyz
        if cached is not None and time.monotonic() - cached[0] < READY_CACHE_SECONDS:
            return dict(cached[1])
        checks = {
            "state": await _state(runtime),
            "trust_store": _trust_store(runtime),
            "policy": {"ok": True, "sha256": runtime.policy.sha256},
            "store": await _store(runtime),
            "audit": {"ok": runtime.audit.running},
            "clock": await _clock(runtime),
        }
        checks.update(await extra_checks(runtime))
        runtime.readyz = (time.monotonic(), checks)
        return dict(checks)


async def extra_checks(runtime: Any) -> dict[str, Any]:
    """Checks added by other modules (the log role's grants, configuration agreement)."""
    out: dict[str, Any] = {}
    for name, check in READY_CHECKS.items():
        try:
            out[name] = await check(runtime)
        except Exception as exc:
            out[name] = {"ok": False, "detail": f"unavailable ({type(exc).__name__})"}
    return out


async def _config_readiness(runtime: Runtime) -> dict[str, Any]:
    """readyz (admin): this replica's fingerprint, and others seen in the last events."""
    own = runtime.config_fingerprint
    if own is None:
        return {"ok": True, "detail": "no fingerprint"}
    async with runtime.state.connect() as conn:
        bodies = (
            (await conn.execute(select(EVENTS.c.body).order_by(EVENTS.c.seq.desc()).limit(200)))
            .scalars()
            .all()
        )
    others = config_proof.disagreements(own, bodies)
    # Reported, not failed: both replicas would see each other and the service would stop.
    return {"ok": True, "fingerprint": own.as_json(), "agrees": not others, "others": others}


#: name -> async check(runtime) -> {"ok": bool, ...}; registered by the modules they belong to.
READY_CHECKS: dict[str, Callable[[Any], Awaitable[dict[str, Any]]]] = {
    "config": _config_readiness,
    "audit_log": privileges.readiness,
}


async def _is_admin(request: Request, runtime: Any) -> bool:
    """Whether the caller presented an active admin key (details are for admins only)."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        return False
    try:
        # Counted and limited like every unknown key (app/ratelimit/unknown_keys.py).
        caller = await guarded_lookup(request, runtime, key.strip())
    except Exception:
        return False
    return bool(caller.role == Role.ADMIN)


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Ready or not; the checks for an admin key",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses=problem_responses(503),
    # An admin key is optional (it adds the checks); app/main.py adds the anonymous `{}`.
    openapi_extra={"security": [{"ApiKey": []}]},
)
async def readyz(request: Request, runtime: RuntimeDep) -> Any:
    """Anyone: `{"status": "ready"}`, or 503 problem+json. With an admin key, every check too.

    The checks (state schema, store, clock, trust store and policy fingerprints) are run at
    most once a second per process and shown only to an admin: an anonymous caller learns
    whether the replica is ready, nothing else.
    """
    checks = await _checks(runtime)
    admin = await _is_admin(request, runtime) if "authorization" in request.headers else False
    if all(c["ok"] for c in checks.values()):
        return Readiness(status="ready", checks=checks if admin else None)
    failed = [name for name, c in checks.items() if not c["ok"]]
    error = StateUnavailable(f"Not ready: {', '.join(failed)}." if admin else "Not ready.")
    # An anonymous caller learns "not ready", not which dependency failed: the one code
    # state.unavailable whatever failed. An admin is told which (store.unavailable alone).
    if admin and failed == ["store"]:
        error.reasons = [Reason.STORE_UNAVAILABLE]
    body = error.to_problem()
    if admin:
        body["checks"] = checks
    return JSONResponse(body, status_code=503, media_type=PROBLEM_CONTENT_TYPE)
