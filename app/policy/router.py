"""``GET /v1/policy``: the policy in force and its hash (auditor, admin)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import Auditor, RuntimeDep
from app.policy.schemas import PolicyOut

router = APIRouter(tags=["policy"])


@router.get(
    "/policy", operation_id="getPolicy", summary="The policy in force", response_model=PolicyOut
)
async def get_policy(runtime: RuntimeDep, caller: Auditor) -> PolicyOut:
    """The exact policy text whose sha256 decisions cite."""
    return PolicyOut(sha256=runtime.policy.sha256, text=runtime.policy.text)
