"""The request and response bodies of ``/v1/disclosures`` and ``/v1/decisions``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from app.audit.schemas import AuditRef
from app.core.problems import ProblemReason
from app.core.strict import IsoDate
from app.orders.models import PatronId
from app.records.categories import Category

PurposeStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
TokenStr = Annotated[str, StringConstraints(min_length=1, max_length=1_048_576)]
#: The cursor: exactly a handle Bulwark makes (43 base64url characters,
#: app/disclosures/cursor.py), refused (422) otherwise on both routes, as the document says;
#: the service still checks the handle itself.
CursorStr = Annotated[
    str, StringConstraints(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{43}$")
]
#: A value a record's field may hold in an answer (dates travel as ISO strings).
RECORD_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]
}
#: ``records`` when the document does not know the mapping: category -> rows of fields.
#: app/main.py replaces it with one property per mapped category once the mapping is loaded.
RECORDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Per category asked for, the records released: only the fields the "
    "mapping and the order allow.",
    "additionalProperties": {
        "type": "array",
        "items": {"type": "object", "additionalProperties": RECORD_VALUE_SCHEMA},
    },
}
_SCALAR: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
]
_SCALARS: dict[str, Any] = {"type": "array", "items": {"anyOf": _SCALAR}}
#: What a trace row compared (never a patron id): a value, a list of values, or a map of them
#: (a period's from/to, the fields per category). Not recursive: TypeScript clients cannot
#: name a recursive union.
TRACE_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        *_SCALAR,
        _SCALARS,
        {"type": "object", "additionalProperties": {"anyOf": [*_SCALAR, _SCALARS]}},
    ]
}

EXAMPLE_REQUEST: dict[str, Any] = {
    "purpose": "legal_process",
    "patron_id": "P000123",
    "categories": ["circulation"],
    "from": "2026-01-01",
    "to": "2026-06-30",
    "court_order": "eyJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tMjAyNiIsInR5cCI6ImNvdXJ0LW9yZGVyK2p3dCJ9"
    ".e30.sig",
}


class DisclosureRequest(BaseModel):
    """A request for one patron's records, under a court order."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [EXAMPLE_REQUEST]}
    )

    purpose: PurposeStr = Field(description="Why the records are sought; `legal_process`.")
    patron_id: PatronId = Field(
        description="The patron as the order names them: 1 to 128 letters, digits or "
        ". _ : @ -, no surrounding whitespace (the same rule as the order's scope.patrons).",
        examples=["P000123"],
    )
    # A repeat is refused by the validator below; the document says so (uniqueItems).
    categories: list[Category] = Field(
        min_length=1, max_length=len(Category), json_schema_extra={"uniqueItems": True}
    )
    from_: IsoDate = Field(alias="from", description="First date of the period, inclusive.")
    to: IsoDate = Field(description="Last date of the period, inclusive.")
    court_order: TokenStr | None = Field(
        default=None, description="The court order as a compact JWS (typ court-order+jwt)."
    )
    counsel_approval: TokenStr | None = Field(
        default=None,
        description="Counsel's approval of this court order as a compact JWS "
        "(typ counsel-approval+jwt); required when the policy's [counsel] require_approval is on.",
    )
    cursor: CursorStr | None = Field(
        default=None,
        description="Continue a truncated disclosure under the same order use "
        "(the `cursor` of the previous answer).",
    )

    @model_validator(mode="after")
    def _period(self) -> DisclosureRequest:
        if self.to < self.from_:
            raise ValueError("`to` is before `from`")
        if self.to >= dt.date.max:  # a period ends the day after `to`, which must exist
            raise ValueError("`to` is too far in the future")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("a category is listed twice")
        return self


class TraceRow(BaseModel):
    """One rule checked by a dry run: its outcome and the values it compared."""

    rule: str = Field(examples=["scope.patron"])
    outcome: Literal["pass", "fail", "skipped"]
    reasons: list[str] = Field(description="The reason codes this rule failed with.")
    compared: Annotated[
        dict[str, Any],
        WithJsonSchema({"type": "object", "additionalProperties": TRACE_VALUE_SCHEMA}),
    ] = Field(description="The values the rule compared (never a patron id).")


class DecisionOut(BaseModel):
    """A decision as callers see it."""

    effect: str = Field(examples=["permit"])
    reasons: list[ProblemReason]
    policy: str = Field(description="sha256 of the policy in force.")
    trace: list[TraceRow] | None = Field(
        default=None, description="Every rule checked (dry runs only); never a patron id."
    )


class OrderOut(BaseModel):
    iss: str
    jti: str
    case: str
    uses_left: int


EXAMPLE_POLICY = "801899d11b1d7cf97ef97a8d7f7463631ab3c389112fc9d195627e4838301723"
EXAMPLE_AUDIT = {
    "seq": 7,
    "hash": "e7a6dd8fdc8aa1af133340d7da4023bb16909314fb8ac9f8130fe4b4054e6b0d",
    "leaf_index": 6,
    "leaf_hash": "01b91a54fba700d86fad18ba1ea431c650990fa7d1db9e98d465647a1ae5e451",
}
EXAMPLE_DISCLOSURE: dict[str, Any] = {
    "disclosure_id": "267ffc55-d6ca-4d91-ae38-8e41d8c47a6a",
    "decision": {"effect": "permit", "reasons": [], "policy": EXAMPLE_POLICY},
    "order": {
        "iss": "https://courts.example/demo-county",
        "jti": "demo-20261128T214235-permit",
        "case": "DEMO-2026-CR-0001",
        "uses_left": 2,
    },
    "records": {
        "circulation": [
            {
                "title": "The Quiet Orchard (fictional)",
                "checkout_date": "2026-02-06T12:29:04",
                "due_date": "2026-02-27",
                "return_date": None,
                "branch": "Hilltop (fictional)",
            }
        ]
    },
    "truncated": False,
    "cursor": None,
    "audit": EXAMPLE_AUDIT,
}
EXAMPLE_EVALUATION: dict[str, Any] = {
    "decision": {
        "effect": "deny",
        "reasons": [
            {"code": "scope.patron", "message": "The patron is not named in the court order."}
        ],
        "policy": EXAMPLE_POLICY,
        "trace": [
            {
                "rule": "scope.patron",
                "outcome": "fail",
                "reasons": ["scope.patron"],
                "compared": {"patron_in_order": False, "patrons_named": 1},
            }
        ],
    },
    "audit": EXAMPLE_AUDIT,
}


class DisclosureResponse(BaseModel):
    """A permitted disclosure: only disclosable fields, only dates inside both periods."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DISCLOSURE]})

    disclosure_id: str
    decision: DecisionOut
    order: OrderOut
    records: Annotated[dict[str, list[dict[str, Any]]], WithJsonSchema(RECORDS_SCHEMA)]
    truncated: bool = Field(description="True when a category was cut at the per-response cap.")
    cursor: str | None = Field(description="Pass as `cursor` to continue a truncated answer.")
    audit: AuditRef


class EvaluationResponse(BaseModel):
    """A dry run's answer: the decision with its trace; no record, no use consumed."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_EVALUATION]})

    decision: DecisionOut
    audit: AuditRef
