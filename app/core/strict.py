"""Strictly parsed request values: what the OpenAPI document declares, and nothing more.

Pydantic's lax mode reads ``0`` as 1970-01-01, ``"0.5"`` as an instant and ``"1_0"`` as ten;
a client generated from the document would never send those, so the API refuses them (422)
instead of answering a question nobody asked. The document's schemas are unchanged: a date is
still ``{"type": "string", "format": "date"}`` and a query integer ``{"type": "integer"}``.

JSON bodies use :data:`IsoDate`. Query and path parameters are checked by the dependency
:func:`strict_parameters` on their raw text, because a validator on the parameter's type would
make FastAPI publish ``ge``/``le`` instead of ``minimum``/``maximum``.
"""

from __future__ import annotations

import datetime as dt
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 date-time (the document's ``format: date-time``): a date, "T", a time, an offset.
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_INTEGER = re.compile(r"-?[0-9]+")


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise ValueError("expected an ISO 8601 date (YYYY-MM-DD)")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATETIME.fullmatch(value):
        return value
    raise ValueError("expected an RFC 3339 date-time")


def _integer(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return value
    raise ValueError("expected an integer written in decimal digits")


#: A date written YYYY-MM-DD: never a number, never a date-time.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
#: An RFC 3339 date-time (a missing offset is read as before): never a number.
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime)]
#: An integer from a query string or path: decimal digits only (no "1.0", "+1", "1_0", " 1").
StrictInt = Annotated[int, BeforeValidator(_integer)]


#: The raw text each parameter type must match, and the error type a refusal names.
_RAW: dict[type, tuple[re.Pattern[str], str]] = {
    dt.datetime: (_DATETIME, "datetime_parsing"),
    dt.date: (_DATE, "date_parsing"),
    int: (_INTEGER, "int_parsing"),
}


def _base(annotation: Any) -> Any:
    """``int`` for ``int``, ``int | None`` and ``Annotated[int, ...]``; anything else as is."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _base(args[0])
    return annotation


def _query_params(dependant: Any) -> list[Any]:
    """The query parameters of a route and of every dependency it has."""
    out = list(dependant.query_params)
    for sub in dependant.dependencies:
        out += _query_params(sub)
    return out


async def strict_parameters(request: Request) -> None:
    """Refuse (422) an undeclared query parameter, and a value not written as its type."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    errors: list[dict[str, Any]] = []
    # A parameter the operation does not declare is refused, not ignored: a typo in a
    # filter would otherwise widen the answer silently.
    declared = {field.alias for field in _query_params(dependant)}
    if any(name not in declared for name in request.query_params):
        # Not named in the answer: a name is what the caller typed, which may be anything.
        errors.append({"loc": ("query",), "type": "extra_forbidden", "msg": "Unknown"})
    for where, fields in (("query", dependant.query_params), ("path", dependant.path_params)):
        for field in fields:
            rule = _RAW.get(_base(field.field_info.annotation))
            if rule is None:
                continue
            if where == "query":
                raws = request.query_params.getlist(field.alias)
            else:
                raws = [str(request.path_params.get(field.alias, ""))]
            if any(not rule[0].fullmatch(raw) for raw in raws):
                msg = f"Input should be {rule[1].split('_')[0]} text as the document declares"
                errors.append({"loc": (where, field.alias), "type": rule[1], "msg": msg})
    if errors:
        raise RequestValidationError(errors)
