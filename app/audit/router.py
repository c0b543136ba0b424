"""``GET /v1/audit/events``, ``/verify`` and ``/checkpoint`` (auditor, admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Auditor, RuntimeDep
from app.audit import service
from app.audit.incremental import verifier_of
from app.core.clock import library_today
from app.core.database import state_errors
from app.holds.service import sealed_orders

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    seq: int
    ts: str
    kind: str = Field(examples=["disclosure"])
    effect: str = Field(examples=["permit"])
    prev_hash: str
    hash: str
    body: dict[str, Any] = Field(description="The hashed event; patrons only as pseudonyms.")
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


def _order_of(event: dict[str, Any]) -> tuple[str, str] | None:
    order = event["body"].get("order")
    if not isinstance(order, dict):
        return None
    iss, jti = order.get("iss"), order.get("jti")
    return (iss, jti) if isinstance(iss, str) and isinstance(jti, str) else None


def _orders(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {key for key in map(_order_of, events) if key is not None}


@router.get(
    "/events",
    operation_id="listAuditEvents",
    summary="Page through the audit log",
    response_model=AuditPage,
)
async def list_events(
    runtime: RuntimeDep,
    caller: Auditor,
    after: int = Query(0, ge=0, le=2**62, description="Return events after this sequence number."),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditPage:
    """Events in order, and the cursor for the next page."""
    with state_errors(keep=()):
        events = await service.list_events(runtime.state, after=after, limit=limit)
        sealed = await sealed_orders(runtime.state, _orders(events), library_today(runtime))
    for event in events:
        if _order_of(event) in sealed:
            # Sealed means sealed: nothing that names the order, for any role, until the date.
            event["body"], event["sealed"] = {"sealed": True}, True
    next_after = events[-1]["seq"] if len(events) == limit else None
    return AuditPage(events=[AuditEventOut(**e) for e in events], next_after=next_after)


@router.get(
    "/verify",
    operation_id="verifyAuditLog",
    summary="Verify the hash chain up to its head",
    response_model=VerifyOut,
)
async def verify(runtime: RuntimeDep, caller: Auditor) -> VerifyOut:
    """Verify the events appended since the last verification, chained to it, up to the head.

    `first_bad_seq` names the first broken event. Concurrent calls share one run, and a run
    nobody waits for stops; the full recomputation from genesis is `bulwark audit verify`.
    """
    verifier = verifier_of(runtime)
    with state_errors(keep=()):
        result = await verifier.verify()
    return VerifyOut.model_validate(
        {**result.as_json(), "config_disagreements": verifier.disagreements}
    )


@router.get(
    "/checkpoint",
    operation_id="getAuditCheckpoint",
    summary="The chain's head, signed with the deployment's own key",
    response_model=CheckpointOut,
)
async def checkpoint(runtime: RuntimeDep, caller: Auditor) -> CheckpointOut:
    """Save it; `bulwark audit verify --since FILE` later proves the log still extends it."""
    with state_errors(keep=()):
        document = await service.make_checkpoint(runtime.state, runtime.checkpoint_key)
    return CheckpointOut.model_validate(document)
