"""The policy routes' request and response bodies (docs/architecture.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
