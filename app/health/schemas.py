"""The health routes' request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


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
    checks: dict[str, Any] | None = Field(
        default=None, description="Each check, for a caller with an admin key only."
    )
