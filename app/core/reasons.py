"""The stable reason codes (docs/api.md, "Reason codes").

A reason code's meaning never changes once published. Each code has the HTTP status it is
answered with when it is the deciding reason, and a short message that names no patron, no
record and no secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Every reason code Bulwark may give."""

    CALLER_UNAUTHENTICATED = "caller.unauthenticated"
    CALLER_FORBIDDEN = "caller.forbidden"
    REQUEST_INVALID = "request.invalid"
    REQUEST_TOO_LARGE = "request.too_large"
    REQUEST_NOT_FOUND = "request.not_found"
    REQUEST_METHOD = "request.method_not_allowed"
    REQUEST_RATE_LIMITED = "request.rate_limited"
    IDEMPOTENCY_KEY_REUSED = "idempotency.key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency.in_progress"
    PURPOSE_UNSUPPORTED = "purpose.unsupported"
    ORDER_MISSING = "order.missing"
    ORDER_MALFORMED = "order.malformed"
    ORDER_WRONG_TYPE = "order.wrong_type"
    ORDER_ALGORITHM_REJECTED = "order.algorithm_rejected"
    ORDER_UNTRUSTED_ISSUER = "order.untrusted_issuer"
    ORDER_UNKNOWN_KEY = "order.unknown_key"
    ORDER_SIGNATURE_INVALID = "order.signature_invalid"
    ORDER_AUDIENCE = "order.audience"
    ORDER_EXPIRED = "order.expired"
    ORDER_NOT_YET_VALID = "order.not_yet_valid"
    ORDER_LIFETIME_EXCEEDED = "order.lifetime_exceeded"
    ORDER_CLAIMS_INVALID = "order.claims_invalid"
    ORDER_NOT_COURT_ISSUED = "order.not_court_issued"
    ORDER_NO_GOOD_CAUSE = "order.no_good_cause"
    ORDER_JURISDICTION = "order.jurisdiction"
    ORDER_REVOKED = "order.revoked"
    ORDER_EXHAUSTED = "order.exhausted"
    ORDER_UNSEEN = "order.unseen"
    SCOPE_PATRON = "scope.patron"
    SCOPE_CATEGORY = "scope.category"
    SCOPE_PERIOD = "scope.period"
    APPROVAL_MISSING = "approval.missing"
    APPROVAL_INVALID = "approval.invalid"
    CURSOR_INVALID = "cursor.invalid"
    APPROVAL_SAME_PERSON = "approval.same_person"
    ORDER_PAPER_MISSING = "order.paper_missing"
    STORE_UNAVAILABLE = "store.unavailable"
    AUDIT_UNAVAILABLE = "audit.unavailable"
    STATE_UNAVAILABLE = "state.unavailable"
    LOG_INDEX_BEYOND_TREE = "log.index_beyond_tree"
    LOG_SIZE_NOT_CHECKPOINTED = "log.size_not_checkpointed"
    LOG_NO_CHECKPOINT = "log.no_checkpoint"
    LOG_CHECKPOINT_MALFORMED = "log.checkpoint_malformed"
    LOG_CHECKPOINT_FORGED = "log.checkpoint_forged"
    LOG_COSIGNATURE_INVALID = "log.cosignature_invalid"
    LOG_WITNESS_UNKNOWN = "log.witness_unknown"
    LOG_INCONSISTENT = "log.inconsistent"
    INTERNAL = "internal.error"


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    status: int
    message: str


REASONS: dict[Reason, ReasonInfo] = {
    Reason.CALLER_UNAUTHENTICATED: ReasonInfo(401, "Missing or unknown API key."),
    Reason.CALLER_FORBIDDEN: ReasonInfo(403, "This caller's role may not do this."),
    Reason.REQUEST_INVALID: ReasonInfo(422, "The request body or query failed validation."),
    Reason.REQUEST_TOO_LARGE: ReasonInfo(413, "The request body is larger than allowed."),
    Reason.REQUEST_NOT_FOUND: ReasonInfo(404, "No such resource."),
    Reason.REQUEST_METHOD: ReasonInfo(405, "Method not allowed on this resource."),
    Reason.REQUEST_RATE_LIMITED: ReasonInfo(429, "Too many requests from this caller."),
    Reason.IDEMPOTENCY_KEY_REUSED: ReasonInfo(
        422, "This Idempotency-Key was used with another request; use a new key."
    ),
    Reason.IDEMPOTENCY_IN_PROGRESS: ReasonInfo(
        409, "A request with this Idempotency-Key is still running; retry shortly."
    ),
    Reason.PURPOSE_UNSUPPORTED: ReasonInfo(403, "The policy does not allow this purpose."),
    Reason.ORDER_MISSING: ReasonInfo(403, "This purpose needs a court order; none was given."),
    Reason.ORDER_MALFORMED: ReasonInfo(403, "The court order is not a parseable compact JWS."),
    Reason.ORDER_WRONG_TYPE: ReasonInfo(403, "The court order's typ is not court-order+jwt."),
    Reason.ORDER_ALGORITHM_REJECTED: ReasonInfo(
        403, "The court order's algorithm is not allowed or not its key's own."
    ),
    Reason.ORDER_UNTRUSTED_ISSUER: ReasonInfo(403, "The court order's issuer is not trusted."),
    Reason.ORDER_UNKNOWN_KEY: ReasonInfo(403, "No trusted key with that kid for that issuer."),
    Reason.ORDER_SIGNATURE_INVALID: ReasonInfo(403, "The court order's signature is invalid."),
    Reason.ORDER_AUDIENCE: ReasonInfo(403, "The court order is not addressed to this deployment."),
    Reason.ORDER_EXPIRED: ReasonInfo(403, "The court order has expired."),
    Reason.ORDER_NOT_YET_VALID: ReasonInfo(403, "The court order is not yet valid."),
    Reason.ORDER_LIFETIME_EXCEEDED: ReasonInfo(
        403, "The court order's lifetime is longer than the policy allows."
    ),
    Reason.ORDER_CLAIMS_INVALID: ReasonInfo(
        403, "A required claim of the court order is missing or malformed."
    ),
    Reason.ORDER_NOT_COURT_ISSUED: ReasonInfo(
        403, "The instrument is not a court order accepted by the policy."
    ),
    Reason.ORDER_NO_GOOD_CAUSE: ReasonInfo(
        403, "The court did not find good cause based on specific facts."
    ),
    Reason.ORDER_JURISDICTION: ReasonInfo(403, "The court is not competent for this library."),
    Reason.ORDER_REVOKED: ReasonInfo(403, "The court order has been revoked."),
    Reason.ORDER_EXHAUSTED: ReasonInfo(403, "The court order's allowed uses are spent."),
    Reason.ORDER_UNSEEN: ReasonInfo(
        404,
        "Bulwark has never been shown this order: check iss and jti, or revoke it pre-emptively.",
    ),
    Reason.SCOPE_PATRON: ReasonInfo(403, "The patron is not named in the court order."),
    Reason.SCOPE_CATEGORY: ReasonInfo(403, "A requested category is not in the court order."),
    Reason.SCOPE_PERIOD: ReasonInfo(403, "The requested period is not inside the order's."),
    Reason.APPROVAL_MISSING: ReasonInfo(
        403, "The policy requires counsel's approval of this disclosure; none was given."
    ),
    Reason.APPROVAL_INVALID: ReasonInfo(
        403, "Counsel's approval is invalid, untrusted, expired or for another order."
    ),
    Reason.CURSOR_INVALID: ReasonInfo(
        403,
        "The cursor is unknown, already used, expired, or not this caller's or this request's.",
    ),
    Reason.APPROVAL_SAME_PERSON: ReasonInfo(
        403,
        "A transcribed order needs counsel's approval by a different, named person "
        "than its transcriber.",
    ),
    Reason.ORDER_PAPER_MISSING: ReasonInfo(
        403, "A transcribed order must carry the SHA-256 of the paper order it transcribes."
    ),
    Reason.STORE_UNAVAILABLE: ReasonInfo(503, "The records store failed; nothing was released."),
    Reason.AUDIT_UNAVAILABLE: ReasonInfo(
        503, "The audit log could not be written; nothing was released."
    ),
    Reason.STATE_UNAVAILABLE: ReasonInfo(503, "Bulwark's state database is unavailable."),
    Reason.LOG_INDEX_BEYOND_TREE: ReasonInfo(
        422, "The leaf index or tree size is beyond the tree (or the sizes are out of order)."
    ),
    Reason.LOG_SIZE_NOT_CHECKPOINTED: ReasonInfo(
        404, "No checkpoint was signed (or published) at that tree size."
    ),
    Reason.LOG_NO_CHECKPOINT: ReasonInfo(404, "No checkpoint has been published yet."),
    Reason.LOG_CHECKPOINT_MALFORMED: ReasonInfo(
        422, "The checkpoint or cosignature is not a well-formed C2SP signed note."
    ),
    Reason.LOG_CHECKPOINT_FORGED: ReasonInfo(
        422, "The checkpoint is not one this log signed (signature or text differs)."
    ),
    Reason.LOG_COSIGNATURE_INVALID: ReasonInfo(
        403, "A witness cosignature does not verify against the witness's key."
    ),
    Reason.LOG_WITNESS_UNKNOWN: ReasonInfo(403, "No cosignature from a witness the policy names."),
    Reason.LOG_INCONSISTENT: ReasonInfo(
        503, "The stored tree is not consistent with a checkpoint already signed; refused."
    ),
    Reason.INTERNAL: ReasonInfo(500, "An unexpected error occurred; nothing was released."),
}


def status_of(reason: Reason) -> int:
    """The HTTP status a reason is answered with."""
    return REASONS[reason].status


def message_of(reason: Reason) -> str:
    """The fixed, PII-free message of a reason."""
    return REASONS[reason].message
