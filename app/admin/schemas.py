"""The revocation route's request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from app.audit.schemas import AuditRef

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
    # StrictBool: 0, 1, "yes" and "true" are not JSON booleans (the document says boolean).
    pre_emptive: StrictBool = Field(
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
