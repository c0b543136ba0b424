"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from app import __version__
from app.api.deps import authenticate
from app.apidocs.router import router as apidocs_router
from app.apidocs.typed import allow_anonymous, records_by_category
from app.audit.log_router import api_router as log_api
from app.audit.log_router import public_router as log_public
from app.audit.log_router import start_checkpointer
from app.audit.router import router as audit_router
from app.core.config import Settings
from app.core.middleware import RequestContextMiddleware
from app.core.problems import (
    AuthError,
    BulwarkError,
    DeniedError,
    ForbiddenError,
    RateLimited,
    RequestInvalid,
    RequestTooLarge,
    StoreUnavailable,
    install_problem_handlers,
    problem_responses,
)
from app.core.reasons import Reason
from app.core.strict import strict_parameters
from app.counsel.router import router as counsel_router
from app.disclosures.router import router as disclosures_router
from app.health.router import router as health_router
from app.holds.router import router as holds_router
from app.idempotency.middleware import IdempotencyMiddleware, document_header
from app.metrics import observe_request
from app.metrics.router import metrics_router
from app.notices.router import router as notices_router
from app.orders.router import router as orders_router
from app.policy.router import router as policy_router
from app.ratelimit import start_limiter
from app.runtime import Runtime, build_runtime
from app.transparency.router import api_router as transparency_api
from app.transparency.router import page_router as transparency_page

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
    {
        "name": "transparency",
        "description": "The transparency report; public when the policy publishes it.",
    },
    {"name": "notices", "description": "Patron notices after a disclosure (notifier)."},
    {
        "name": "log",
        "description": "The audit log's Merkle tree: signed checkpoints, proofs, receipts, "
        "tiles and witnesses' cosignatures (hashes only, never an event).",
    },
    {"name": "legal holds", "description": "Records that purge jobs must keep."},
]


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the ASGI app. The lifespan builds (or adopts) the runtime and closes it."""
    settings = settings or (runtime.settings if runtime else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await build_runtime(settings)
        try:
            limiter = await start_limiter(app.state.runtime)
        except BaseException:
            if owned:
                await app.state.runtime.close()
            raise
        checkpoints = start_checkpointer(app.state.runtime)  # the Merkle tree's (tlog.py)
        try:
            yield
        finally:
            await checkpoints.close()
            app.state.runtime.limiter = None
            await limiter.close()
            if owned:
                await app.state.runtime.close()

    app = FastAPI(
        title="Bulwark",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # /docs is served from the fastapi-offline package's files (app/apidocs), never a CDN.
        docs_url=None,
        redoc_url=None,
        # The body-size limit answers 413 on any route, before routing.
        responses=problem_responses(413, 500),
    )
    install_problem_handlers(app)
    if settings.cors_origins:
        # Inside the request-context middleware, so preflight answers carry the security
        # headers too. Without configured origins there is no CORS at all: browsers refuse.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=sorted(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id", "Idempotency-Key"],
            expose_headers=["X-Request-Id", "Retry-After", "Idempotent-Replayed"],
            allow_credentials=False,
            max_age=600,
        )
    # Inside the request-context middleware: the body is capped, the request id set and the
    # security headers added before an answer is kept or replayed.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, observe=observe_request
    )

    # Everything under /v1 needs a key; the public routes (health) are outside it.
    v1 = APIRouter(
        prefix="/v1",
        # The key first (a caller without one learns nothing else), then the raw parameters.
        dependencies=[Depends(authenticate), Depends(strict_parameters)],
        responses=problem_responses(401, 403, 422, 429, 503),
    )
    for router in (disclosures_router, orders_router, audit_router, policy_router):
        v1.include_router(router)
    for router in (notices_router, holds_router, log_api):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(health_router)
    app.include_router(apidocs_router)
    app.include_router(counsel_router)  # checks its admin caller itself (Basic or Bearer)
    # The transparency report checks its readers itself: the policy may make it public.
    strict = [Depends(strict_parameters)]
    app.include_router(transparency_api, dependencies=strict)
    app.include_router(transparency_page)
    app.include_router(log_public, dependencies=strict)
    metrics = metrics_router(settings)
    if metrics is not None:
        app.include_router(metrics)
    app.openapi = _with_problem_examples(app)  # type: ignore[method-assign]
    return app


def _example_receipt(index: int) -> dict[str, Any]:
    """The receipt fields an audited refusal carries (docs/auditors.md)."""
    return {
        "leaf_index": index,
        "leaf_hash": "0ae9d1191130a6cda6f1488279f5890068696b7588203062ab80c2ec35225a78",
    }


def _problem_examples() -> dict[str, dict[str, Any]]:
    """A real problem body per status, rendered by the errors that produce it."""
    errors: dict[str, BulwarkError] = {
        "401": AuthError(),
        "403": ForbiddenError(),
        "404": BulwarkError(Reason.REQUEST_NOT_FOUND),
        "413": RequestTooLarge(65536),
        "422": RequestInvalid(
            "The request failed validation: body.from (date_from_datetime_parsing)",
            [{"loc": ["body", "from"], "type": "date_from_datetime_parsing"}],
        ),
        "429": RateLimited(30),
        "500": BulwarkError(Reason.INTERNAL),
        "503": StoreUnavailable(audit_seq=43, receipt=_example_receipt(42)),
    }
    request_id = {"request_id": "3f2b9c0e8d7a4f6b9e1c2d3a4b5c6d7e"}
    return {status: {**e.to_problem(), **request_id} for status, e in errors.items()}


def _with_problem_examples(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that also puts an example on every problem response.

    Generated clients and readers then see what a refusal looks like; a disclosure's 403
    shows both kinds (a policy denial with every reason, and a role that may not ask).
    """
    build = app.openapi
    examples = _problem_examples()
    # Routes that answer without a key (the policy may publish the report and the log).
    routers = (health_router, transparency_api, log_public)
    public = {r.path_format for g in routers for r in g.routes if isinstance(r, APIRoute)}
    denied = {
        **DeniedError(
            [Reason.ORDER_EXPIRED, Reason.SCOPE_PATRON], audit_seq=42, receipt=_example_receipt(41)
        ).to_problem(),
        "request_id": "9a8b7c6d5e4f30211f2e3d4c5b6a7980",
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        document_header(schema)
        allow_anonymous(schema, public)
        runtime = getattr(app.state, "runtime", None)
        if runtime is None:
            app.openapi_schema = None  # the mapping is known once the lifespan has run
        else:
            fields = runtime.store.fields()
            records_by_category(schema, {c.value: names for c, names in fields.items()})
        for path in schema["paths"].values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    for content in response.get("content", {}).values():
                        if not content.get("schema", {}).get("$ref", "").endswith("/Problem"):
                            continue
                        if status == "403" and operation.get("operationId") == "createDisclosure":
                            content["examples"] = {
                                "denied": {"summary": "Refused by the policy", "value": denied},
                                "forbidden": {"summary": "Wrong role", "value": examples["403"]},
                            }
                        elif status in examples:
                            content["example"] = examples[status]
        return schema

    return openapi
