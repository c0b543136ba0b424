"""The health routes' request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


#: One readiness check as the document declares it: ``ok`` always, ``detail`` when it failed,
#: and the check's own figures (revision, fingerprints, offsets) beside them.
CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok"],
    "properties": {
        "ok": {"type": "boolean"},
        "detail": {"type": "string", "description": "Why the check failed."},
    },
    "additionalProperties": True,
}
Checks = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "additionalProperties": CHECK_SCHEMA}),
]


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ready"},
                {
                    "status": "ready",
                    "checks": {
                        "state": {"ok": True, "revision": "0003"},
                        "trust_store": {"ok": True, "issuers": 1, "keys": 1},
                        "policy": {"ok": True, "sha256": "801899d11b1d7cf9…"},
                        "store": {"ok": True, "categories": ["circulation", "holds"]},
                        "audit": {"ok": True},
                        "clock": {"ok": True, "offset_seconds": 0.002, "allowed_seconds": 60},
                    },
                },
            ]
        }
    )

    status: str
    checks: Checks | None = Field(
        default=None, description="Each check, for a caller with an admin key only."
    )
