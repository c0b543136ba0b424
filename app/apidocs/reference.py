"""What each reason code means for a caller: whether to retry, and what to do.

The status and message of a code are :mod:`app.core.reasons`'s; this adds the advice that
docs/api.md tabulates and ``/problems/{code}`` shows (a test keeps the three in step).
"""

from __future__ import annotations

from typing import Final

from app.core.reasons import Reason

_NO: Final = "no: the same request gets the same answer"
_FIX: Final = "no: fix the request first"
_LATER: Final = "yes, with backoff: nothing was released; the same Idempotency-Key is safe"

#: Retry advice per reason code (keyed by the code's text, so that codes added by other parts
#: of Bulwark can be listed here as they are published).
RETRY: Final[dict[str, str]] = {
    Reason.CALLER_UNAUTHENTICATED: "no: check the API key (it may have been revoked)",
    Reason.CALLER_FORBIDDEN: "no: this key's role may not do this",
    Reason.REQUEST_INVALID: _FIX,
    Reason.REQUEST_TOO_LARGE: _FIX,
    Reason.REQUEST_NOT_FOUND: _FIX,
    Reason.REQUEST_METHOD: _FIX,
    Reason.REQUEST_RATE_LIMITED: "yes, after Retry-After seconds",
    Reason.IDEMPOTENCY_KEY_REUSED: "no: a new request needs a new Idempotency-Key",
    Reason.IDEMPOTENCY_IN_PROGRESS: "yes, after Retry-After seconds, with the same key and body",
    Reason.PURPOSE_UNSUPPORTED: _NO,
    Reason.ORDER_MISSING: "no: send the court order",
    Reason.ORDER_MALFORMED: "no: the token was damaged; ask the issuer for it again",
    Reason.ORDER_WRONG_TYPE: _NO,
    Reason.ORDER_ALGORITHM_REJECTED: _NO,
    Reason.ORDER_UNTRUSTED_ISSUER: "no: the library must add the issuer to its trust store",
    Reason.ORDER_UNKNOWN_KEY: "no: the library must add the issuer's key to its trust store",
    Reason.ORDER_SIGNATURE_INVALID: _NO,
    Reason.ORDER_AUDIENCE: _NO,
    Reason.ORDER_EXPIRED: "no: a new order is needed",
    Reason.ORDER_NOT_YET_VALID: "yes, once the order's nbf has passed",
    Reason.ORDER_LIFETIME_EXCEEDED: _NO,
    Reason.ORDER_CLAIMS_INVALID: _NO,
    Reason.ORDER_NOT_COURT_ISSUED: _NO,
    Reason.ORDER_NO_GOOD_CAUSE: _NO,
    Reason.ORDER_JURISDICTION: _NO,
    Reason.ORDER_REVOKED: "no: the order was revoked; it is never un-revoked",
    Reason.ORDER_EXHAUSTED: "no: every use of the order is spent",
    Reason.ORDER_UNSEEN: "no: check iss and jti, or revoke pre-emptively (pre_emptive: true)",
    Reason.ORDER_PAPER_MISSING: "no: the custodian must transcribe the order with --paper",
    Reason.SCOPE_PATRON: "no: ask only for a patron the order names",
    Reason.SCOPE_CATEGORY: "no: ask only for categories the order names",
    Reason.SCOPE_PERIOD: "no: ask only for a period inside the order's",
    Reason.APPROVAL_MISSING: "no: send counsel's approval (counsel_approval)",
    Reason.APPROVAL_INVALID: "no: counsel must sign a new approval of this order",
    Reason.APPROVAL_SAME_PERSON: "no: a different person must approve",
    Reason.CURSOR_INVALID: "no: the page was served, has expired, or is not this caller's; "
    "ask again under a new use of the order",
    Reason.LOG_INDEX_BEYOND_TREE: _FIX,
    Reason.LOG_SIZE_NOT_CHECKPOINTED: "no: ask for a size that was checkpointed",
    Reason.LOG_NO_CHECKPOINT: "yes, once the library has published a checkpoint",
    Reason.LOG_CHECKPOINT_MALFORMED: _FIX,
    Reason.LOG_CHECKPOINT_FORGED: "no: the checkpoint is not this log's; report it",
    Reason.LOG_COSIGNATURE_INVALID: "no: the witness must cosign again",
    Reason.LOG_WITNESS_UNKNOWN: "no: the policy must name the witness",
    Reason.LOG_INCONSISTENT: "no: the log forked or was rewritten; report it to the library",
    Reason.STORE_UNAVAILABLE: _LATER,
    Reason.AUDIT_UNAVAILABLE: _LATER,
    Reason.STATE_UNAVAILABLE: _LATER,
    Reason.INTERNAL: _LATER,
}


def retry_advice(reason: Reason | str) -> str:
    """Whether (and how) a caller should retry after ``reason``."""
    return RETRY.get(str(reason), _NO)
