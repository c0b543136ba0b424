"""``GET /healthz`` and ``GET /readyz``: public, no key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app.core import migrations
from app.core.deps import RuntimeDep
from app.core.problems import PROBLEM_CONTENT_TYPE, StateUnavailable, problem_responses
from app.core.reasons import Reason

router = APIRouter(tags=["health"])


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {
                        "state": {"ok": True, "revision": "0003"},
                        "trust_store": {"ok": True, "issuers": 1, "keys": 1},
                        "policy": {"ok": True, "sha256": "801899d11b1d7cf9…"},
                        "store": {"ok": True, "categories": ["circulation", "holds"]},
                        "audit": {"ok": True},
                    },
                }
            ]
        }
    )

    status: str
    checks: dict[str, Any]


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


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Ready: state database migrated, trust store loaded, store reachable",
    response_model=Readiness,
    responses=problem_responses(503),
)
async def readyz(runtime: RuntimeDep) -> Any:
    """503 problem+json when any dependency is not ready; the process keeps running."""
    checks = {
        "state": await _state(runtime),
        "trust_store": _trust_store(runtime),
        "policy": {"ok": True, "sha256": runtime.policy.sha256},
        "store": await _store(runtime),
        "audit": {"ok": runtime.audit.running},
    }
    if all(c["ok"] for c in checks.values()):
        return Readiness(status="ready", checks=checks)
    failed = [name for name, c in checks.items() if not c["ok"]]
    reasons = [Reason.STORE_UNAVAILABLE] if failed == ["store"] else [Reason.STATE_UNAVAILABLE]
    error = StateUnavailable(f"Not ready: {', '.join(failed)}.")
    error.reasons = reasons
    body = error.to_problem()
    body["checks"] = checks
    return JSONResponse(body, status_code=503, media_type=PROBLEM_CONTENT_TYPE)
