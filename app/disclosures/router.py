"""``POST /v1/disclosures`` and ``POST /v1/decisions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import Evaluator, Requester, RuntimeDep
from app.audit.schemas import AuditRef
from app.core.problems import problem_responses
from app.disclosures import service
from app.disclosures.schemas import (
    DecisionOut,
    DisclosureRequest,
    DisclosureResponse,
    EvaluationResponse,
)
from app.policy.engine import decision_json

router = APIRouter()


#: OpenAPI link: the answer's audit event to its receipt (clients and stateful testers follow it).
RECEIPT_LINK: dict[str, Any] = {
    "links": {
        "receipt": {
            "operationId": "getReceiptProof",
            "parameters": {"seq": "$response.body#/audit/seq"},
            "description": "The inclusion proof of the decision's audit event.",
        }
    }
}


def _remember(request: Request, effect: str, reasons: list[str]) -> None:
    # For the access log line: the effect and reason codes, nothing about the patron.
    request.state.decision_effect = effect
    request.state.decision_reasons = reasons


@router.post(
    "/disclosures",
    tags=["disclosures"],
    operation_id="createDisclosure",
    summary="Request a patron's records under a court order",
    response_model=DisclosureResponse,
    responses={**problem_responses(413, 429), 200: RECEIPT_LINK},
)
async def create_disclosure(
    request: Request, body: DisclosureRequest, runtime: RuntimeDep, caller: Requester
) -> Any:
    """Verify the order, apply the policy, read the narrowed records, audit, answer.

    Denied requests get 403 problem+json listing every reason; store or audit failures get
    503. No record is released unless its audit event is durable.
    """
    try:
        released = await service.disclose(runtime, caller, body, request.state.request_id)
    except Exception as exc:
        reasons = getattr(exc, "reasons", [])
        codes = [str(r) for r in reasons]
        _remember(
            request, "deny", [service.BANDED_LABEL] if getattr(exc, "banded", False) else codes
        )
        raise
    _remember(request, "permit", [])
    return Response(released.body(), media_type="application/json")


@router.post(
    "/decisions",
    tags=["decisions"],
    operation_id="evaluateDecision",
    summary="Dry-run a request: the decision and its trace, nothing released",
    response_model=EvaluationResponse,
    responses={**problem_responses(413, 429), 200: RECEIPT_LINK},
)
async def evaluate_decision(
    request: Request, body: DisclosureRequest, runtime: RuntimeDep, caller: Evaluator
) -> EvaluationResponse:
    """Evaluate without consuming a use or touching records; recorded as an evaluation."""
    ev, appended = await service.dry_run(runtime, caller, body, request.state.request_id)
    _remember(request, ev.decision.effect.value, service.metrics_reasons(runtime, ev))
    return EvaluationResponse(
        decision=DecisionOut.model_validate(decision_json(ev.decision, include_trace=True)),
        audit=AuditRef(seq=appended.seq, hash=appended.hash, **appended.receipt),
    )
