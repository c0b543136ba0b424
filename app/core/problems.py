"""Errors and their RFC 9457 problem+json rendering.

Every error Bulwark raises is a :class:`BulwarkError`; one handler renders them all, and the
framework's own errors (validation, 404, 405, unexpected exceptions) are mapped onto the same
shape. Services never raise ``HTTPException``.

Exception tree::

    BulwarkError                      status + reason codes, rendered as problem+json
    ├── AuthError                     401 caller.unauthenticated
    ├── ForbiddenError                403 caller.forbidden
    ├── RequestInvalid                422 request.invalid
    ├── RequestTooLarge               413 request.too_large
    ├── RateLimited                   429 request.rate_limited (with Retry-After)
    ├── DeniedError                   403, one or more policy / order / scope reasons
    ├── StoreUnavailable              503 store.unavailable
    ├── AuditUnavailable              503 audit.unavailable
    └── StateUnavailable              503 state.unavailable
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.reasons import Reason, message_of, status_of

logger = logging.getLogger("bulwark.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
#: Relative (RFC 9457 section 3.1.1): it resolves against the deployment that answered, which
#: serves ``/problems/{code}`` (app/apidocs), one page per reason code.
PROBLEM_TYPE_BASE = "/problems/"


class ProblemReason(BaseModel):
    """One reason in a problem body: a stable code and a fixed message."""

    code: str = Field(examples=["order.expired"])
    message: str = Field(examples=["The court order has expired."])


class Problem(BaseModel):
    """An RFC 9457 problem details body, extended with Bulwark's reason codes."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://bulwark.example/problems/order.expired"])
    title: str = Field(examples=["The court order has expired."])
    status: int = Field(examples=[403])
    detail: str = Field(examples=["The disclosure was denied; see reasons."])
    reasons: list[ProblemReason]
    audit_seq: int | None = Field(
        default=None, description="The audit event that recorded this refusal, if any."
    )
    audit_leaf_index: int | None = Field(
        default=None, description="That event's leaf index in the audit log's Merkle tree."
    )
    audit_leaf_hash: str | None = Field(
        default=None, description="That event's leaf hash (hex): the receipt (docs/auditors.md)."
    )
    request_id: str | None = None


class BulwarkError(Exception):
    """Base error: an HTTP status, one or more reason codes and a PII-free detail."""

    def __init__(
        self,
        reasons: Reason | Sequence[Reason],
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.reasons: list[Reason] = [reasons] if isinstance(reasons, Reason) else _unique(reasons)
        if not self.reasons:
            raise ValueError("a BulwarkError needs at least one reason")
        self.status = status or status_of(self.reasons[0])
        self.detail = detail or message_of(self.reasons[0])
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)

    def to_problem(self) -> dict[str, Any]:
        """The problem+json body of this error."""
        first = self.reasons[0]
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + first.value,
            "title": message_of(first),
            "status": self.status,
            "detail": self.detail,
            "reasons": [{"code": r.value, "message": message_of(r)} for r in self.reasons],
        }
        body.update(self.extra)
        return body


class AuthError(BulwarkError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            Reason.CALLER_UNAUTHENTICATED,
            detail,
            headers={"WWW-Authenticate": 'Bearer realm="bulwark"'},
        )


class ForbiddenError(BulwarkError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(Reason.CALLER_FORBIDDEN, detail)


class RequestInvalid(BulwarkError):
    def __init__(self, detail: str | None = None, errors: list[dict[str, Any]] | None = None):
        super().__init__(
            Reason.REQUEST_INVALID, detail, extra={"errors": errors} if errors else None
        )


class RequestTooLarge(BulwarkError):
    def __init__(self, limit: int) -> None:
        super().__init__(Reason.REQUEST_TOO_LARGE, f"The request body exceeds {limit} bytes.")


class RateLimited(BulwarkError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            Reason.REQUEST_RATE_LIMITED,
            f"Rate limit reached; retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class DeniedError(BulwarkError):
    """A refusal by the order verifier or the policy; carries every applicable reason."""

    def __init__(
        self,
        reasons: Sequence[Reason],
        *,
        audit_seq: int | None = None,
        receipt: dict[str, Any] | None = None,
        banded: bool = False,
    ) -> None:
        super().__init__(
            reasons,
            "The request was refused; see reasons. No record was released.",
            status=403,
            extra={"audit_seq": audit_seq, **receipt_fields(receipt)},
        )
        #: The order is of an instrument the policy publishes only in bands: its reasons are
        #: not counted one by one in metrics (they would give the exact count away).
        self.banded = banded


class StoreUnavailable(BulwarkError):
    def __init__(
        self,
        detail: str | None = None,
        *,
        audit_seq: int | None = None,
        receipt: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            Reason.STORE_UNAVAILABLE,
            detail,
            extra={"audit_seq": audit_seq, **receipt_fields(receipt)},
        )


class AuditUnavailable(BulwarkError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(Reason.AUDIT_UNAVAILABLE, detail)


class StateUnavailable(BulwarkError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(Reason.STATE_UNAVAILABLE, detail)


def receipt_fields(receipt: dict[str, Any] | None) -> dict[str, Any]:
    """The recorded event's place in the audit log's Merkle tree (docs/auditors.md)."""
    if receipt is None:
        return {}
    return {"audit_leaf_index": receipt["leaf_index"], "audit_leaf_hash": receipt["leaf_hash"]}


def _unique(reasons: Iterable[Reason]) -> list[Reason]:
    return list(dict.fromkeys(reasons))


def problem_response(error: BulwarkError, request: Request | None = None) -> JSONResponse:
    """Render an error as ``application/problem+json``."""
    body = error.to_problem()
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(
        body, status_code=error.status, headers=error.headers, media_type=PROBLEM_CONTENT_TYPE
    )


def _http_error(exc: StarletteHTTPException) -> BulwarkError:
    mapping = {
        401: Reason.CALLER_UNAUTHENTICATED,
        403: Reason.CALLER_FORBIDDEN,
        404: Reason.REQUEST_NOT_FOUND,
        405: Reason.REQUEST_METHOD,
        413: Reason.REQUEST_TOO_LARGE,
        429: Reason.REQUEST_RATE_LIMITED,
    }
    if exc.status_code == 400:
        # The framework's "could not parse the body" (e.g. JSON nested past the parser's
        # depth): a validation failure like any other, with the contract's one status.
        return RequestInvalid("The request body could not be parsed as JSON.")
    reason = mapping.get(exc.status_code, Reason.REQUEST_INVALID)
    headers = dict(exc.headers or {})
    error = BulwarkError(reason, status=exc.status_code, headers=headers)
    return error


#: Validation errors of Bulwark's own whose messages are fixed text (never a value), shown
#: with the error: the same words the issuing tool prints for the same fault.
_OWN_MESSAGES = frozenset({"patron_id_whitespace", "patron_id_characters"})


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only the location and the kind of fault: never the submitted value, which may be a
    # patron identifier or a token.
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        kind = str(err.get("type", ""))
        entry: dict[str, Any] = {"loc": [str(p) for p in err.get("loc", ())], "type": kind}
        if kind in _OWN_MESSAGES:
            entry["message"] = str(err.get("msg", ""))
        errors.append(entry)
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error, the framework's own included, as problem+json."""

    async def on_bulwark_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BulwarkError)
        return problem_response(exc, request)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        detail = "The request failed validation: " + "; ".join(
            f"{'.'.join(e['loc'])} ({e['type']})" + (f": {e['message']}" if "message" in e else "")
            for e in errors[:10]
        )
        return problem_response(RequestInvalid(detail[:1000], errors[:50]), request)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(_http_error(exc), request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The exception type only: its message may quote data. No traceback to the client.
        logger.error("unexpected error", extra={"error_type": type(exc).__name__})
        return problem_response(BulwarkError(Reason.INTERNAL), request)

    app.add_exception_handler(BulwarkError, on_bulwark_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


#: OpenAPI ``responses`` entries for problem bodies, reused by every router.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declare problem+json responses for the given statuses in the OpenAPI document."""
    descriptions = {
        401: "Missing or unknown API key (caller.unauthenticated).",
        403: "Forbidden or denied; the reasons list every applicable code.",
        404: "No such resource.",
        413: "Request body too large.",
        422: "Request failed validation (request.invalid).",
        429: "Rate limited (request.rate_limited).",
        500: "Unexpected error; nothing was released.",
        503: "A dependency failed (store, audit or state); nothing was released.",
    }
    return {
        s: {
            "model": Problem,
            "description": descriptions.get(s, "Problem"),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            **({"headers": _PROBLEM_HEADERS[s]} if s in _PROBLEM_HEADERS else {}),
        }
        for s in statuses
    }


#: Headers that come with some problems, declared so that clients (and the fuzzer) know them.
_PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the caller's window resets.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
