"""The audit routes' request and response bodies, and the reference every answer carries."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.audit import tlog


class AuditRef(BaseModel):
    seq: int
    hash: str
    leaf_index: int | None = Field(
        default=None, description="The event's leaf index in the audit log's Merkle tree."
    )
    leaf_hash: str | None = Field(
        default=None,
        description="SHA-256(0x00 || the event's canonical body), hex: the receipt; "
        "GET /v1/receipts/{seq} proves it is in a published checkpoint.",
    )


#: The fields every event body carries (a sealed event's body is only ``{"sealed": true}``, so
#: none is required); each kind adds its own, left open.
EVENT_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "ts": {"type": "string"},
        "kind": {"type": "string"},
        "effect": {"type": "string"},
        "sealed": {"type": "boolean"},
    },
    "additionalProperties": True,
}


class AuditEventOut(BaseModel):
    seq: int
    ts: str
    kind: str = Field(examples=["disclosure"])
    effect: str = Field(examples=["permit"])
    prev_hash: str
    hash: str
    body: Annotated[dict[str, Any], WithJsonSchema(EVENT_BODY_SCHEMA)] = Field(
        description="The hashed event; patrons only as pseudonyms."
    )
    sealed: bool = Field(
        default=False,
        description="The event's order is under nondisclosure: its body is withheld until the "
        "seal ends (`bulwark audit verify` still checks it).",
    )


_HASH = "e7a6dd8fdc8aa1af133340d7da4023bb16909314fb8ac9f8130fe4b4054e6b0d"


_PREV = "e36bf663611179c49174b13f25ec7df83a1f48bee61ec67ed9695896d23c427c"


_TS = "2026-11-28T21:43:10.043093+00:00"


_EVENT_BODY: dict[str, Any] = {
    "v": 1,
    "seq": 4,
    "ts": _TS,
    "kind": "evaluation",
    "effect": "deny",
    "caller": "demo-requester",
    "request_id": "df41118829a741849d5e06e08cfe53f9",
    "purpose": "legal_process",
    "reasons": ["scope.patron"],
    "policy": "801899d11b1d7cf97ef97a8d7f7463631ab3c389112fc9d195627e4838301723",
    "order": {
        "iss": "https://courts.example/demo-county",
        "jti": "demo-20261128T214235-permit",
        "case": "DEMO-2026-CR-0001",
        "instrument": "court_order",
        "verified": True,
    },
    "patron": "k1:916e02c8ced20d7fd8363acba0686ff7421e37c9430fd0df8120df9dd24d7f82",
    "asked": {"categories": ["circulation"], "from": "2026-01-01", "to": "2026-06-30"},
    "released": None,
}


class AuditPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "seq": 4,
                            "ts": _TS,
                            "kind": "evaluation",
                            "effect": "deny",
                            "prev_hash": _PREV,
                            "hash": _HASH,
                            "body": _EVENT_BODY,
                        }
                    ],
                    "next_after": 4,
                }
            ]
        }
    )

    events: list[AuditEventOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


class ChainHead(BaseModel):
    seq: int
    hash: str


class VerifyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "events": 4,
                    "head": {"seq": 4, "hash": _HASH},
                    "first_bad_seq": None,
                    "problem": None,
                }
            ]
        }
    )

    ok: bool
    events: int
    head: ChainHead
    first_bad_seq: int | None
    problem: str | None = None
    config_disagreements: list[dict[str, str]] = Field(
        default_factory=list,
        description="Configurations (fingerprints of policy, trust store, jurisdictions, "
        "keys) that alternated in the events just verified: replicas that disagree.",
    )


class CheckpointBody(BaseModel):
    seq: int
    hash: str
    ts: str
    key_id: str


class CheckpointOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "checkpoint": {
                        "seq": 4,
                        "hash": _HASH,
                        "ts": "2026-11-28T21:43:10+00:00",
                        "key_id": "80e216387d74fc2c",
                    },
                    "signature": "MEQCIAlC0ud2yqt0y0e7iKwZOgBsG2qsrRGLfhg9n5AA4/XmAiAKGhm+9AvWI3LRf"
                    "v9VXQPXhGnrco1oWIyGbK60AzrUZA==",
                    "algorithm": "ECDSA-P256-SHA256",
                    "public_key": "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n",
                }
            ]
        }
    )

    checkpoint: CheckpointBody
    signature: str = Field(
        description="Base64 ECDSA P-256 signature over the canonical checkpoint."
    )
    algorithm: str
    public_key: str = Field(description="The deployment's checkpoint public key (PEM).")


class InclusionProof(BaseModel):
    """An inclusion proof, with the checkpoint (and cosignatures) it proves against."""

    type: str = Field(examples=[tlog.INCLUSION])
    leaf_index: int = Field(description="The event's index in the tree: its seq - 1.")
    seq: int
    leaf_hash: str = Field(description="SHA-256(0x00 || the event's canonical body), hex.")
    tree_size: int
    hashes: list[str] = Field(description="The RFC 9162 audit path, leaf upwards, hex.")
    checkpoint: str = Field(description="The C2SP signed checkpoint note, cosignatures included.")


class ConsistencyProof(BaseModel):
    """A consistency proof between two signed checkpoints."""

    type: str = Field(examples=[tlog.CONSISTENCY])
    old_size: int
    new_size: int
    hashes: list[str] = Field(description="The RFC 9162 consistency proof, hex.")
    old_checkpoint: str | None
    new_checkpoint: str


class LogKey(BaseModel):
    """The keys that verify the log's checkpoints and their cosignatures."""

    origin: str = Field(description="The log's origin line (C2SP tlog-checkpoint).")
    vkey: str = Field(description="The log's C2SP signed-note verifier key.")
    witnesses: list[str] = Field(description="The configured witnesses' verifier keys.")
    required_witnesses: int = Field(description="How many witnesses must cosign.")


class CosignedOut(BaseModel):
    """Which configured witnesses' cosignatures were accepted, and whether it is published."""

    size: int
    witnesses: list[str]
    published: bool
