"""``GET /v1/policy``: the policy in force and its hash (auditor, admin)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Auditor, RuntimeDep

router = APIRouter(tags=["policy"])


class PolicyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sha256": "801899d11b1d7cf97ef97a8d7f7463631ab3c389112fc9d195627e4838301723",
                    "text": "# Bulwark's bundled policy. It follows the seed: …\n",
                }
            ]
        }
    )

    sha256: str = Field(description="The hash that every decision and audit event carries.")
    text: str = Field(description="The policy file, byte for byte (TOML).")


@router.get(
    "/policy", operation_id="getPolicy", summary="The policy in force", response_model=PolicyOut
)
async def get_policy(runtime: RuntimeDep, caller: Auditor) -> PolicyOut:
    """The exact policy text whose sha256 decisions cite."""
    return PolicyOut(sha256=runtime.policy.sha256, text=runtime.policy.text)
