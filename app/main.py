"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from app import __version__
from app.audit.router import router as audit_router
from app.core.config import Settings
from app.core.deps import authenticate
from app.core.middleware import RequestContextMiddleware
from app.core.problems import install_problem_handlers, problem_responses
from app.disclosures.router import router as disclosures_router
from app.health.router import router as health_router
from app.orders.router import router as orders_router
from app.policy.router import router as policy_router
from app.runtime import Runtime, build_runtime

DESCRIPTION = """
Bulwark releases library patron records only under a court order issued on good cause based on
specific facts by a court of competent jurisdiction (ALA policy on confidentiality of personally
identifiable information about library users). Every decision is recorded in a tamper-evident
audit log before the answer is sent.
"""

TAGS = [
    {"name": "disclosures", "description": "Requests for patron records under a court order."},
    {"name": "decisions", "description": "Dry runs: evaluate a request without releasing."},
    {"name": "orders", "description": "Court-order administration (revocation)."},
    {"name": "audit", "description": "The tamper-evident audit log."},
    {"name": "policy", "description": "The policy in force."},
    {"name": "health", "description": "Liveness and readiness (no key needed)."},
]


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the ASGI app. The lifespan builds (or adopts) the runtime and closes it."""
    settings = settings or (runtime.settings if runtime else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await build_runtime(settings)
        try:
            yield
        finally:
            if owned:
                await app.state.runtime.close()

    app = FastAPI(
        title="Bulwark",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        responses=problem_responses(500),
    )
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)

    # Everything under /v1 needs a key; the public routes (health) are outside it.
    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(authenticate)],
        responses=problem_responses(401, 403, 422, 503),
    )
    for router in (disclosures_router, orders_router, audit_router, policy_router):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(health_router)
    return app
