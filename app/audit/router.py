"""``GET /v1/audit/events``, ``/verify`` and ``/checkpoint`` (auditor, admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.api.deps import Auditor, RuntimeDep
from app.audit import service
from app.audit.incremental import verifier_of
from app.audit.schemas import (
    AuditEventOut,
    AuditPage,
    CheckpointOut,
    VerifyOut,
)
from app.core.clock import library_today
from app.core.database import state_errors
from app.holds.service import sealed_orders

router = APIRouter(prefix="/audit", tags=["audit"])


def _order_of(event: dict[str, Any]) -> tuple[str, str] | None:
    order = event["body"].get("order")
    if not isinstance(order, dict):
        return None
    iss, jti = order.get("iss"), order.get("jti")
    return (iss, jti) if isinstance(iss, str) and isinstance(jti, str) else None


def _orders(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {key for key in map(_order_of, events) if key is not None}


@router.get(
    "/events",
    operation_id="listAuditEvents",
    summary="Page through the audit log",
    response_model=AuditPage,
    responses={
        200: {
            "links": {
                "inclusionProof": {
                    "operationId": "getInclusionProof",
                    "parameters": {"seq": "$response.body#/events/0/seq"},
                    "description": "The inclusion proof of the page's first event.",
                }
            }
        }
    },
)
async def list_events(
    runtime: RuntimeDep,
    caller: Auditor,
    after: int = Query(0, ge=0, le=2**62, description="Return events after this sequence number."),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditPage:
    """Events in order, and the cursor for the next page."""
    with state_errors(keep=()):
        events = await service.list_events(runtime.state, after=after, limit=limit)
        sealed = await sealed_orders(runtime.state, _orders(events), library_today(runtime))
    for event in events:
        if _order_of(event) in sealed:
            # Sealed means sealed: nothing that names the order, for any role, until the date.
            event["body"], event["sealed"] = {"sealed": True}, True
    next_after = events[-1]["seq"] if len(events) == limit else None
    return AuditPage(events=[AuditEventOut(**e) for e in events], next_after=next_after)


@router.get(
    "/verify",
    operation_id="verifyAuditLog",
    summary="Verify the hash chain up to its head",
    response_model=VerifyOut,
)
async def verify(runtime: RuntimeDep, caller: Auditor) -> VerifyOut:
    """Verify the events appended since the last verification, chained to it, up to the head.

    `first_bad_seq` names the first broken event. Concurrent calls share one run, and a run
    nobody waits for stops; the full recomputation from genesis is `bulwark audit verify`.
    """
    verifier = verifier_of(runtime)
    with state_errors(keep=()):
        result = await verifier.verify()
    return VerifyOut.model_validate(
        {**result.as_json(), "config_disagreements": verifier.disagreements}
    )


@router.get(
    "/checkpoint",
    operation_id="getAuditCheckpoint",
    summary="The chain's head, signed with the deployment's own key",
    response_model=CheckpointOut,
)
async def checkpoint(runtime: RuntimeDep, caller: Auditor) -> CheckpointOut:
    """Save it; `bulwark audit verify --since FILE` later proves the log still extends it."""
    with state_errors(keep=()):
        document = await service.make_checkpoint(runtime.state, runtime.checkpoint_key)
    return CheckpointOut.model_validate(document)
