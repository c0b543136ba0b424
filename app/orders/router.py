"""``POST /v1/orders/revocations`` (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.deps import Admin, RuntimeDep
from app.core.problems import AuthError, problem_responses
from app.core.reasons import Reason
from app.disclosures.schemas import AuditRef
from app.orders.service import revoke_order

router = APIRouter(prefix="/orders", tags=["orders"])


class RevocationRequest(BaseModel):
    """Revoke an order by its issuer and id."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "iss": "https://courts.example/il-cook",
                    "jti": "2026-CR-0042-order-1",
                    "reason": "Vacated on appeal",
                }
            ]
        },
    )

    iss: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    jti: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class RevocationResponse(BaseModel):
    iss: str
    jti: str
    revoked: bool = Field(default=True, description="Always true: the order is revoked.")
    already_revoked: bool
    audit: AuditRef


@router.post(
    "/revocations",
    operation_id="revokeOrder",
    summary="Revoke a court order on every replica",
    response_model=RevocationResponse,
    responses=problem_responses(413, 429),
)
async def revoke(body: RevocationRequest, runtime: RuntimeDep, caller: Admin) -> RevocationResponse:
    """From the moment this returns, the order is refused with `order.revoked` everywhere."""
    result = await revoke_order(
        runtime.audit,
        iss=body.iss,
        jti=body.jti,
        reason=body.reason,
        by=caller.name,
        caller_id=caller.id,
    )
    if Reason.CALLER_UNAUTHENTICATED in result.audit.refused:
        raise AuthError()
    return RevocationResponse(
        iss=result.iss,
        jti=result.jti,
        already_revoked=result.already_revoked,
        audit=AuditRef(seq=result.audit.seq, hash=result.audit.hash),
    )
