"""``POST /v1/orders/revocations`` (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from app.admin.revocations import revoke_order
from app.admin.schemas import (
    RevocationRequest,
    RevocationResponse,
)
from app.api.deps import Admin, RuntimeDep
from app.audit.schemas import AuditRef
from app.core.problems import AuthError, problem_responses
from app.core.reasons import Reason

router = APIRouter(prefix="/orders", tags=["orders"])


@router.post(
    "/revocations",
    operation_id="revokeOrder",
    summary="Revoke a court order on every replica",
    response_model=RevocationResponse,
    responses=problem_responses(404, 413, 429),
)
async def revoke(body: RevocationRequest, runtime: RuntimeDep, caller: Admin) -> RevocationResponse:
    """From the moment this returns, the order is refused with `order.revoked` everywhere."""
    result = await revoke_order(
        runtime.audit,
        runtime.state,
        iss=body.iss,
        jti=body.jti,
        reason=body.reason,
        by=caller.name,
        caller_id=caller.id,
        pre_emptive=body.pre_emptive,
    )
    if Reason.CALLER_UNAUTHENTICATED in result.audit.refused:
        raise AuthError()
    return RevocationResponse(
        iss=result.iss,
        jti=result.jti,
        already_revoked=result.already_revoked,
        audit=AuditRef(seq=result.audit.seq, hash=result.audit.hash),
    )
