"""``POST /v1/orders/revocations`` (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.admin.revocations import revoke_order
from app.api.deps import Admin, RuntimeDep
from app.core.problems import AuthError, problem_responses
from app.core.reasons import Reason
from app.disclosures.schemas import AuditRef

router = APIRouter(prefix="/orders", tags=["orders"])

NO_CONTROLS = r"^[^\x00-\x1f\x7f]+$"
NO_CONTROLS_BUT_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"


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

    # No control characters: PostgreSQL refuses NUL in text, and a refused value would fail
    # the whole audit batch it was written in, other callers' events with it.
    iss: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_CONTROLS)]
    jti: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_CONTROLS)]
    reason: Annotated[
        str, StringConstraints(min_length=1, max_length=2000, pattern=NO_CONTROLS_BUT_LINES)
    ]
    pre_emptive: bool = Field(
        default=False,
        description="Revoke an order Bulwark has never been shown (refused with 404 "
        "`order.unseen` otherwise, so that a mistyped iss or jti is not taken for done).",
    )


class RevocationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "iss": "https://courts.example/il-cook",
                    "jti": "2026-CR-0042-order-1",
                    "revoked": True,
                    "already_revoked": False,
                    "audit": {
                        "seq": 12,
                        "hash": "5b0c9a1e6f1d4c2a8e7b3f9d0a6c4e2b1f8d7c6a5e4b3c2d1e0f9a8b7c6d5e4f",
                    },
                }
            ]
        }
    )

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
