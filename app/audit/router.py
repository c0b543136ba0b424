"""``GET /v1/audit/events``, ``/verify`` and ``/checkpoint`` (auditor, admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.audit import service
from app.core.deps import Auditor, RuntimeDep
from app.core.problems import StateUnavailable

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    seq: int
    ts: str
    kind: str = Field(examples=["disclosure"])
    effect: str = Field(examples=["permit"])
    prev_hash: str
    hash: str
    body: dict[str, Any] = Field(description="The hashed event; patrons only as pseudonyms.")


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


class ChainHead(BaseModel):
    seq: int
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    events: int
    head: ChainHead
    first_bad_seq: int | None
    problem: str | None = None


class CheckpointBody(BaseModel):
    seq: int
    hash: str
    ts: str
    key_id: str


class CheckpointOut(BaseModel):
    checkpoint: CheckpointBody
    signature: str = Field(
        description="Base64 ECDSA P-256 signature over the canonical checkpoint."
    )
    algorithm: str
    public_key: str = Field(description="The deployment's checkpoint public key (PEM).")


@router.get(
    "/events",
    operation_id="listAuditEvents",
    summary="Page through the audit log",
    response_model=AuditPage,
)
async def list_events(
    runtime: RuntimeDep,
    caller: Auditor,
    after: int = Query(0, ge=0, le=2**62, description="Return events after this sequence number."),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditPage:
    """Events in order, and the cursor for the next page."""
    try:
        events = await service.list_events(runtime.state, after=after, limit=limit)
    except Exception:
        raise StateUnavailable() from None
    next_after = events[-1]["seq"] if len(events) == limit else None
    return AuditPage(events=[AuditEventOut(**e) for e in events], next_after=next_after)


@router.get(
    "/verify",
    operation_id="verifyAuditLog",
    summary="Verify the whole hash chain",
    response_model=VerifyOut,
)
async def verify(runtime: RuntimeDep, caller: Auditor) -> VerifyOut:
    """Recompute every hash from genesis; `first_bad_seq` names the first broken event."""
    try:
        result = await service.verify_chain(runtime.state)
    except Exception:
        raise StateUnavailable() from None
    return VerifyOut.model_validate(result.as_json())


@router.get(
    "/checkpoint",
    operation_id="getAuditCheckpoint",
    summary="The chain's head, signed with the deployment's own key",
    response_model=CheckpointOut,
)
async def checkpoint(runtime: RuntimeDep, caller: Auditor) -> CheckpointOut:
    """Save it; `bulwark audit verify --since FILE` later proves the log still extends it."""
    try:
        document = await service.make_checkpoint(runtime.state, runtime.checkpoint_key)
    except Exception:
        raise StateUnavailable() from None
    return CheckpointOut.model_validate(document)
