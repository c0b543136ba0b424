"""Court orders: verified claims, order uses and revocations."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import Column, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.core.models import UTCDateTime, utcnow
from app.records.categories import Category


class Instrument(StrEnum):
    """The kinds of legal instrument an order token may name."""

    COURT_ORDER = "court_order"
    SEARCH_WARRANT = "search_warrant"
    FISA_ORDER = "fisa_order"
    SUBPOENA = "subpoena"
    NATIONAL_SECURITY_LETTER = "national_security_letter"
    INFORMAL_REQUEST = "informal_request"


#: No control characters (NUL above all, which PostgreSQL text cannot hold): a claim that is
#: stored in the state database must not be able to fail the audit transaction it rides in.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


#: What a patron id may be, in an order and in a request alike: what the library's card or
#: record number is, letters, digits and ``. _ : @ -``. One rule for both, so that the issuing
#: tool never signs an order for an id the API would refuse to look up.
_PATRON_ID = re.compile(r"[A-Za-z0-9._:@\-]{1,128}")
PATRON_ID_WHITESPACE = (
    "a patron id may not begin or end with whitespace; remove it (ids are matched as written)"
)
PATRON_ID_CHARACTERS = "a patron id is 1 to 128 letters, digits or . _ : @ - characters"


def patron_id_problem(value: object) -> tuple[str, str] | None:
    """``(error type, message)`` when ``value`` is no valid patron id; None when it is.

    The message never quotes the value (it names a person).
    """
    if not isinstance(value, str):
        return "patron_id_characters", PATRON_ID_CHARACTERS
    if value != value.strip():
        return "patron_id_whitespace", PATRON_ID_WHITESPACE
    if not _PATRON_ID.fullmatch(value):
        return "patron_id_characters", PATRON_ID_CHARACTERS
    return None


def check_patron_id(value: str) -> str:
    """The pydantic validator of :data:`PatronId` (API requests and order claims alike)."""
    problem = patron_id_problem(value)
    if problem is not None:
        raise PydanticCustomError(*problem)
    return value


PatronId = Annotated[
    str,
    AfterValidator(check_patron_id),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "pattern": "^[A-Za-z0-9._:@\\-]+$",
            "description": PATRON_ID_CHARACTERS + "; " + PATRON_ID_WHITESPACE,
        }
    ),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=_PRINTABLE)]
PaperDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def numeric_date(value: object) -> object:
    """A JWT NumericDate: an integer. ``bool`` is an int in Python and a string is not a
    NumericDate: both are refused."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError("a NumericDate must be an integer")
    return value


class OrderScope(BaseModel):
    """``scope``: what an order reaches."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    patrons: list[PatronId] = Field(min_length=1, max_length=1000)
    categories: list[Category] = Field(min_length=1, max_length=len(Category))
    from_: dt.date = Field(alias="from")
    to: dt.date
    fields: dict[Category, list[Annotated[str, StringConstraints(max_length=64)]]] | None = None

    @field_validator("to")
    @classmethod
    def _ordered(cls, to: dt.date, info: object) -> dt.date:
        data = getattr(info, "data", {})
        start = data.get("from_")
        if start is not None and to < start:
            raise ValueError("scope.to is before scope.from")
        return to


class OrderClaims(BaseModel):
    """The typed claims of a court-order token (docs/court-orders.md).

    Registered time claims are integers (NumericDate); anything else is a malformed claim.
    Unknown extra claims are kept out of the model and never influence a decision.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)

    iss: ShortText
    aud: str | list[str]
    iat: int
    exp: int
    nbf: int | None = None
    jti: ShortText
    case: ShortText
    court: ShortText
    jurisdiction: Annotated[str, StringConstraints(min_length=2, max_length=32, pattern=_PRINTABLE)]
    instrument: Instrument
    good_cause: bool
    scope: OrderScope
    max_uses: int = Field(default=1, ge=1, le=1000)
    nondisclosure_until: dt.date | None = None
    #: SHA-256 (lowercase hex) of the scanned paper order this token transcribes: kept in the
    #: audit event, so that an auditor can hold the paper against the log.
    paper_sha256: PaperDigest | None = None
    #: Who transcribed the paper order (a staff identifier, never a patron's): counsel's
    #: approval must come from someone else.
    transcribed_by: ShortText | None = None

    _numeric_dates = field_validator("iat", "exp", "nbf", mode="before")(numeric_date)

    @field_validator("good_cause", mode="before")
    @classmethod
    def _strict_bool(cls, value: object) -> object:
        if not isinstance(value, bool):
            raise ValueError("good_cause must be a JSON boolean")
        return value


class OrderUse(SQLModel, table=True):
    """How many disclosures an order has been used for, shared by every replica."""

    __tablename__ = "order_uses"

    iss: str = SQLField(sa_column=Column(String(256), primary_key=True))
    jti: str = SQLField(sa_column=Column(String(256), primary_key=True))
    uses: int = SQLField(sa_column=Column(Integer, nullable=False))
    max_uses: int = SQLField(sa_column=Column(Integer, nullable=False))
    first_used_at: dt.datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    last_used_at: dt.datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class Revocation(SQLModel, table=True):
    """An order an admin has revoked; refused from then on, on every replica."""

    __tablename__ = "order_revocations"

    iss: str = SQLField(sa_column=Column(String(256), primary_key=True))
    jti: str = SQLField(sa_column=Column(String(256), primary_key=True))
    reason: str = SQLField(sa_column=Column(Text, nullable=False))
    revoked_by: str = SQLField(sa_column=Column(String(100), nullable=False))
    revoked_at: dt.datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
