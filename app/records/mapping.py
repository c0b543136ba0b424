"""The records mapping: how each category lies in the backing store (docs/records.md).

A mapping is a TOML file with one ``[categories.<id>]`` table per category the deployment
keeps. For a SQL store each names a table or view and its columns::

    [categories.circulation]
    table = "loans"
    patron_column = "patron_id"
    date_column = "checked_out_at"
    id_column = "loan_id"          # optional: a unique, orderable column for keyset paging
    fields = { title = "title", checkout_date = "checked_out_at" }

For an HTTP records API each names a path and JSON fields instead::

    kind = "http"                  # optional: the store kind (see below)
    health_path = "/healthz"       # optional, HTTP only

    [categories.circulation]
    path = "/patrons/{patron}/loans"
    date_field = "checked_out"
    fields = { title = "title", checkout_date = "checked_out" }
    items = "loans"                # optional: the key holding the list; default a bare list
    patron_field = "patron"        # optional: drop any item naming another patron

The top-level ``kind`` names the store kind (``sql``, ``http``, ``folio``, …); each kind, in
the registry of :mod:`app.records.factory`, brings its own category model and validates its
own section. A mapping without ``kind`` keeps the original rule: categories naming a ``path``
are ``http``, the others ``sql``.

Only the ``fields`` ever leave the store, renamed to their output names. Identifiers are plain
SQL identifiers, so no mapping can smuggle SQL into a query. Every fault raises
:class:`MappingError` naming the category and key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.core.calendar import UnknownTimeZone, zone
from app.records.categories import Category

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: JSON member names an HTTP mapping may read: identifiers, plus hyphens.
JSON_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"
PATRON_PLACEHOLDER = "{patron}"

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
JsonName = Annotated[str, Field(pattern=JSON_NAME_PATTERN)]


class MappingError(ValueError):
    """The mapping file, or the store it describes, is not usable. Names category and key."""


class MappedCategory(BaseModel):
    """What every kind's category has: the fields that may leave, ``output = source``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, str]


PatronMatch = Literal["exact", "case_insensitive"]
PeriodKey = Literal["event", "state"]
DateKind = Literal["date", "local", "instant"]


def _zone_name(value: str | None) -> str | None:
    if value is not None:
        try:
            zone(value)
        except UnknownTimeZone as exc:
            raise ValueError(str(exc)) from None
    return value


class _Timing(MappedCategory):
    """What SQL and HTTP categories say about their dates and their patron column."""

    #: ``event``: dated by one column; ``state``: a span from the date column to end_column.
    period: PeriodKey = "event"
    #: The zone wall-clock values of this category are written in (default: the store's).
    time_zone: str | None = None
    #: How the store matches patron ids (default: the mapping's ``patron_match``).
    patron_match: PatronMatch | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return _zone_name(value)


class SqlCategory(_Timing):
    """One category held in a SQL table or view."""

    table: Identifier
    patron_column: Identifier
    date_column: Identifier
    #: For ``period = "state"``: the column where the span ends (NULL: it has not ended).
    end_column: Identifier | None = None
    #: What the date columns hold, where the column's type cannot say (text on SQLite).
    date_kind: DateKind | None = None
    id_column: Identifier | None = None
    fields: dict[Identifier, Identifier] = Field(min_length=1)

    @model_validator(mode="after")
    def _state_has_end(self) -> SqlCategory:
        _check_state(self.period, self.end_column, "end_column")
        return self

    def columns(self) -> tuple[str, ...]:
        """Every column the category names, each once, in a stable order."""
        names = [self.patron_column, self.date_column, *self.fields.values()]
        if self.end_column:
            names.append(self.end_column)
        if self.id_column:
            names.append(self.id_column)
        return tuple(dict.fromkeys(names))

    def period_columns(self) -> tuple[str, ...]:
        """The columns that place a record in time: the date, and a state's end."""
        return (self.date_column, self.end_column) if self.end_column else (self.date_column,)


def _check_state(period: str, end: str | None, key: str) -> None:
    if period == "state" and end is None:
        raise ValueError(f'period = "state" needs {key} (where the span ends)')
    if period == "event" and end is not None:
        raise ValueError(f'{key} applies only to period = "state"')


class HttpCategory(_Timing):
    """One category served by an upstream records API."""

    path: str = Field(min_length=2, max_length=512)
    date_field: JsonName
    #: For ``period = "state"``: the member where the span ends (null or absent: not ended).
    end_field: JsonName | None = None
    fields: dict[Identifier, JsonName] = Field(min_length=1)
    items: JsonName | None = None
    patron_field: JsonName | None = None

    @model_validator(mode="after")
    def _state_has_end(self) -> HttpCategory:
        _check_state(self.period, self.end_field, "end_field")
        return self

    @field_validator("path")
    @classmethod
    def _path_template(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("must start with '/'")
        if path.count(PATRON_PLACEHOLDER) != 1:
            raise ValueError("must contain {patron} exactly once")
        rest = path.replace(PATRON_PLACEHOLDER, "")
        if any(ch in rest for ch in "{}?#%\\") or any(ch.isspace() for ch in rest):
            raise ValueError("may hold only plain path characters besides {patron}")
        if any(seg in (".", "..") for seg in rest.split("/")):
            raise ValueError("may not contain '.' or '..' segments")
        return path


CategoryMapping = MappedCategory


class RecordsMapping(BaseModel):
    """A validated mapping: every category of one kind of store, in file order."""

    model_config = ConfigDict(frozen=True)

    kind: str
    categories: dict[Category, CategoryMapping]
    health_path: str = "/healthz"
    #: The zone the store writes wall-clock datetimes in (default: BULWARK_TIMEZONE).
    time_zone: str | None = None
    #: How the store matches patron ids unless a category says otherwise.
    patron_match: PatronMatch = "exact"

    _fields: Mapping[Category, tuple[str, ...]] = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        # Asked on every request (the policy narrows by it): built once, read-only.
        self._fields = MappingProxyType(
            {cat: tuple(m.fields) for cat, m in self.categories.items()}
        )

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """Per mapped category, the output field names, in file order."""
        return self._fields

    def store_zone(self, category: Category, library: ZoneInfo) -> ZoneInfo:
        """The zone ``category``'s wall-clock values are in: its own, the store's, the library's."""
        mapped = self.categories[category]
        name = (mapped.time_zone if isinstance(mapped, _Timing) else None) or self.time_zone
        return zone(name) if name else library

    def matching(self, category: Category) -> PatronMatch:
        """How the store matches ``category``'s patron ids."""
        mapped = self.categories[category]
        own = mapped.patron_match if isinstance(mapped, _Timing) else None
        return own or self.patron_match

    def sql(self, category: Category) -> SqlCategory:
        """The SQL mapping of ``category`` (KeyError when not mapped)."""
        mapping = self.categories[category]
        assert isinstance(mapping, SqlCategory)
        return mapping

    def http(self, category: Category) -> HttpCategory:
        """The HTTP mapping of ``category`` (KeyError when not mapped)."""
        mapping = self.categories[category]
        assert isinstance(mapping, HttpCategory)
        return mapping


_COMMON_KEYS = frozenset({"kind", "categories"})


def load_mapping(path: str | Path) -> RecordsMapping:
    """Read and validate a mapping file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{source}: cannot read the mapping ({type(exc).__name__})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{source}: not valid TOML: {exc}") from exc
    return parse_mapping(data, source=source)


def parse_mapping(data: Mapping[str, Any], *, source: str = "mapping") -> RecordsMapping:
    """Validate an already parsed mapping document."""
    from app.records.factory import KINDS  # the registry imports the stores, which import us

    raw_categories = data.get("categories")
    if not isinstance(raw_categories, dict) or not raw_categories:
        raise MappingError(f"{source}: [categories] must map at least one category")
    kind_name = data.get("kind")
    if kind_name is None:
        kind_name = _legacy_kind(raw_categories, source)
    elif not isinstance(kind_name, str) or kind_name not in KINDS:
        raise MappingError(
            f"{source}: kind: {kind_name!r} is not a store kind (one of {', '.join(KINDS)})"
        )
    kind = KINDS[kind_name]
    unknown = sorted(set(data) - _COMMON_KEYS - kind.top_level_keys)
    if unknown:
        applies = [name for name, other in KINDS.items() if unknown[0] in other.top_level_keys]
        if applies:
            raise MappingError(
                f"{source}: {unknown[0]} applies only to a {' or '.join(applies)} records store"
            )
        raise MappingError(f"{source}: unknown key {unknown[0]!r}")
    categories = {
        _category_id(name, source): _parse_category(name, body, source, kind.category)
        for name, body in raw_categories.items()
    }
    health_path = data.get("health_path", "/healthz")
    if not isinstance(health_path, str) or not re.fullmatch(r"/[A-Za-z0-9_\-./]*", health_path):
        raise MappingError(f"{source}: health_path must be a plain absolute path")
    time_zone = data.get("time_zone")
    if time_zone is not None:
        try:
            zone(time_zone)
        except UnknownTimeZone as exc:
            raise MappingError(f"{source}: time_zone: {exc}") from None
    patron_match = data.get("patron_match", "exact")
    if patron_match not in ("exact", "case_insensitive"):
        raise MappingError(f'{source}: patron_match must be "exact" or "case_insensitive"')
    return RecordsMapping(
        kind=kind.name,
        categories=categories,
        health_path=health_path,
        time_zone=time_zone,
        patron_match=patron_match,
    )


def _legacy_kind(raw_categories: Mapping[str, Any], source: str) -> str:
    """A mapping without ``kind``: HTTP when its categories name paths, SQL otherwise."""
    kinds = {
        "http" if isinstance(body, dict) and "path" in body else "sql"
        for body in raw_categories.values()
    }
    if len(kinds) != 1:
        raise MappingError(f"{source}: categories mix SQL tables and HTTP paths; use one store")
    return kinds.pop()


def _category_id(name: str, source: str) -> Category:
    try:
        return Category(name)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise MappingError(
            f"{source}: categories.{name}: not a contract category (one of {known})"
        ) from None


def _parse_category(
    name: str, body: Any, source: str, model: type[CategoryMapping]
) -> CategoryMapping:
    where = f"{source}: categories.{name}"
    if not isinstance(body, dict):
        raise MappingError(f"{where}: must be a table")
    if model in (SqlCategory, HttpCategory) and "table" in body and "path" in body:
        raise MappingError(f"{where}: give either table (SQL) or path (HTTP), not both")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise MappingError(f"{where}.{_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    # The first fault only, as ``key: message``; identifiers name their own rule.
    error = exc.errors(include_url=False)[0]
    key = ".".join(str(part) for part in error["loc"]) or "period"
    kind = error["type"]
    if kind == "value_error":
        return f"{key}: {str(error['msg']).removeprefix('Value error, ')}"
    if kind == "extra_forbidden":
        return f"{key}: unknown key"
    if kind == "missing":
        return f"{key}: required"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", IDENTIFIER_PATTERN)
        return f"{key}: {error.get('input')!r} is not a plain identifier ({pattern})"
    return f"{key}: {error['msg']}"


def validate_against_policy(
    mapping: RecordsMapping, forbidden: Mapping[Category, Collection[str]]
) -> None:
    """Refuse a mapping that maps a field the policy forbids ever disclosing."""
    for category, category_mapping in mapping.categories.items():
        banned = set(forbidden.get(category, ()))
        for field in category_mapping.fields:
            if field in banned:
                raise MappingError(
                    f"categories.{category.value}.fields.{field}: the policy forbids "
                    f"disclosing {field!r}; remove it from the mapping"
                )
