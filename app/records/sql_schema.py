"""Checking a SQL store against its mapping with nothing but SELECT on the mapped relations.

Bulwark's database account may hold SELECT on the mapped tables or views and nothing else
(no SHOW VIEW, no catalogue rights). So the check reads what a SELECT itself tells: each
category's columns are selected ``WHERE 1 = 0`` (no row is read), and the answer's column
descriptions give their types (PostgreSQL type OIDs, MariaDB/MySQL field types; SQLite, which
has no accounts, through ``PRAGMA table_info``).

When that SELECT fails, the check asks narrower ones to say exactly what is wrong, and
:class:`StoreSchemaError` names the category, the table or view, the column, and what to do:
a relation that does not exist, a column that does not, a missing grant, a view that no
longer works (an ILS upgrade changed a table under it), a login refused, a database that does
not exist. :class:`~app.core.problems.StoreUnavailable` ("unreachable") is raised only when
the server cannot be reached at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.records.categories import Category
from app.records.mapping import MappingError, RecordsMapping, SqlCategory
from app.records.periods import TimeKind

PatronKind = Literal["text", "char", "integer"]
Family = Literal["integer", "char", "text", "number", "time", "other"]


class StoreSchemaError(MappingError):
    """The store answers, but not as the mapping needs; the message says what to change."""


class StoreLoginError(StoreSchemaError):
    """The store refused Bulwark's login or database (reachable, but not usable)."""


@dataclass(frozen=True, slots=True)
class ColumnType:
    """What a column's type means to Bulwark."""

    name: str  # as the database calls it, for messages
    family: Family
    kind: TimeKind | None = None  # for time columns


@dataclass(frozen=True, slots=True)
class CategorySchema:
    """One category's columns as the live store has them."""

    patron: PatronKind
    date_kind: TimeKind
    end_kind: TimeKind | None
    #: The time kind of each mapped column that holds times (for releasing values).
    time_kinds: Mapping[str, TimeKind] = field(default_factory=dict)


# --- types ---------------------------------------------------------------------------------

_PG_TYPES: dict[int, ColumnType] = {
    16: ColumnType("boolean", "other"),
    20: ColumnType("bigint", "integer"),
    21: ColumnType("smallint", "integer"),
    23: ColumnType("integer", "integer"),
    25: ColumnType("text", "text"),
    19: ColumnType("name", "text"),
    1043: ColumnType("character varying", "text"),
    1042: ColumnType("character", "char"),
    700: ColumnType("real", "number"),
    701: ColumnType("double precision", "number"),
    1700: ColumnType("numeric", "number"),
    1082: ColumnType("date", "time", TimeKind.DATE),
    1114: ColumnType("timestamp without time zone", "time", TimeKind.LOCAL),
    1184: ColumnType("timestamp with time zone", "time", TimeKind.INSTANT),
    1083: ColumnType("time", "other"),
}

_MY_TYPES: dict[int, ColumnType] = {
    1: ColumnType("TINYINT", "integer"),
    2: ColumnType("SMALLINT", "integer"),
    3: ColumnType("INT", "integer"),
    8: ColumnType("BIGINT", "integer"),
    9: ColumnType("MEDIUMINT", "integer"),
    0: ColumnType("DECIMAL", "number"),
    246: ColumnType("DECIMAL", "number"),
    4: ColumnType("FLOAT", "number"),
    5: ColumnType("DOUBLE", "number"),
    13: ColumnType("YEAR", "number"),
    10: ColumnType("DATE", "time", TimeKind.DATE),
    14: ColumnType("DATE", "time", TimeKind.DATE),
    12: ColumnType("DATETIME", "time", TimeKind.LOCAL),
    7: ColumnType("TIMESTAMP", "time", TimeKind.INSTANT),
    11: ColumnType("TIME", "other"),
    15: ColumnType("VARCHAR", "text"),
    253: ColumnType("VARCHAR", "text"),
    254: ColumnType("CHAR", "text"),  # MariaDB strips CHAR padding itself
    252: ColumnType("TEXT", "text"),
}


def _sqlite_type(declared: str) -> ColumnType:
    upper = declared.upper()
    if "DATETIME" in upper or "TIMESTAMP" in upper:
        return ColumnType(declared, "time", TimeKind.LOCAL)
    if upper == "DATE":
        return ColumnType(declared, "time", TimeKind.DATE)
    # SQLite's affinity rules (https://sqlite.org/datatype3.html, 3.1).
    if "INT" in upper:
        return ColumnType(declared, "integer")
    if any(t in upper for t in ("CHAR", "CLOB", "TEXT")):
        return ColumnType(declared, "text")
    if not upper or "BLOB" in upper:
        return ColumnType(declared or "(no type)", "other")
    return ColumnType(declared, "number")


# --- errors --------------------------------------------------------------------------------

Fault = Literal[
    "unreachable", "login", "no_database", "no_table", "no_column", "denied", "broken_view", "other"
]

_PG_FAULTS: dict[str, Fault] = {
    "28P01": "login",
    "28000": "login",
    "3D000": "no_database",
    "42P01": "no_table",
    "42703": "no_column",
    "42501": "denied",
    "08001": "unreachable",
    "08006": "unreachable",
    "57P01": "unreachable",
    "57P03": "unreachable",
}

_MY_FAULTS: dict[int, Fault] = {
    1045: "login",
    1044: "no_database",
    1049: "no_database",
    1146: "no_table",
    1054: "no_column",
    1142: "denied",
    1143: "denied",
    1356: "broken_view",
    2002: "unreachable",
    2003: "unreachable",
    2005: "unreachable",
    2006: "unreachable",
    2013: "unreachable",
}


def classify(exc: BaseException, dialect: str) -> tuple[Fault, str]:
    """What a database failure means, and the server's own message (no parameters in it)."""
    orig = getattr(exc, "orig", None) or exc
    message = _message(orig)
    if isinstance(orig, OSError | TimeoutError) or isinstance(exc, OSError | TimeoutError):
        return "unreachable", message
    if dialect == "postgresql":
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state is None and type(orig).__name__ in ("ConnectionDoesNotExistError",):
            return "unreachable", message
        fault = _PG_FAULTS.get(str(state))
        if fault is None and str(state).startswith("08"):
            fault = "unreachable"
        return fault or "other", message
    if dialect == "mysql":
        args = getattr(orig, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        return _MY_FAULTS.get(code, "other") if code is not None else "other", message
    if isinstance(orig, sqlite3.Error) or dialect == "sqlite":
        lower = message.lower()
        if "no such table" in lower:
            return "no_table", message
        if "no such column" in lower:
            return "no_column", message
        if "unable to open" in lower:
            return "unreachable", message
    return "other", message


def _message(orig: BaseException) -> str:
    args = getattr(orig, "args", ())
    text = next((a for a in args if isinstance(a, str)), None) or str(orig)
    return " ".join(text.split())[:300]


# --- the check -----------------------------------------------------------------------------


def _q(name: str) -> str:
    # Plain identifiers only (the mapping allows nothing else), quoted for reserved words.
    return f'"{name}"'


class SchemaProbe:
    """Checks every category of ``mapping`` on one connection; see the module docstring."""

    def __init__(self, conn: Connection, dialect: str, mapping: RecordsMapping, user: str) -> None:
        self._conn = conn
        self._dialect = dialect
        self._mapping = mapping
        self._user = user or "the account"
        self._match = "exact"
        # Backquotes on SQLite too: there a double-quoted name that is no column silently
        # becomes a string literal.
        self._quote = _q if dialect == "postgresql" else (lambda n: f"`{n}`")

    def run(self) -> dict[Category, CategorySchema]:
        result = {}
        for category, mapping in self._mapping.categories.items():
            assert isinstance(mapping, SqlCategory)
            self._match = self._mapping.matching(category)
            result[category] = self._category(category, mapping)
        return result

    def _select(self, table: str, columns: list[str] | None) -> list[Any]:
        what = ", ".join(self._quote(c) for c in columns) if columns else "*"
        sql = f"SELECT {what} FROM {self._quote(table)} WHERE 1 = 0"  # noqa: S608 - identifiers
        result = self._conn.exec_driver_sql(sql)
        description = list(result.cursor.description or [])
        result.close()
        return description

    def _category(self, category: Category, mapping: SqlCategory) -> CategorySchema:
        where = f"categories.{category.value}"
        columns = list(mapping.columns())
        try:
            description = self._select(mapping.table, columns)
        except Exception as exc:
            raise self._diagnose(where, mapping, exc) from None
        types = self._types(mapping.table, description)
        return self._judge(where, mapping, types)

    def _types(self, table: str, description: list[Any]) -> dict[str, ColumnType]:
        if self._dialect == "sqlite":
            rows = self._conn.exec_driver_sql(f"PRAGMA table_info({_q(table)})").fetchall()
            declared = {str(r[1]).lower(): str(r[2] or "") for r in rows}
            return {d[0]: _sqlite_type(declared.get(str(d[0]).lower(), "")) for d in description}
        known = _PG_TYPES if self._dialect == "postgresql" else _MY_TYPES
        return {d[0]: known.get(d[1], ColumnType(f"type {d[1]}", "other")) for d in description}

    def _judge(
        self, where: str, mapping: SqlCategory, types: Mapping[str, ColumnType]
    ) -> CategorySchema:
        def kind_of(key: str, column: str) -> TimeKind:
            return self._time_kind(where, key, mapping, column, types[column])

        date_kind = kind_of("date_column", mapping.date_column)
        end_kind = kind_of("end_column", mapping.end_column) if mapping.end_column else None
        time_kinds = {
            column: ctype.kind for column, ctype in types.items() if ctype.kind is not None
        }
        time_kinds[mapping.date_column] = date_kind
        if mapping.end_column and end_kind:
            time_kinds[mapping.end_column] = end_kind
        patron = types[mapping.patron_column].family
        patron_kind: PatronKind = (
            "integer" if patron == "integer" else "char" if patron == "char" else "text"
        )
        if patron not in ("integer", "char", "text"):
            raise StoreSchemaError(
                f"{where}.patron_column: column {mapping.patron_column!r} of "
                f"{mapping.table!r} is {types[mapping.patron_column].name}; a patron id is "
                "matched as text or as an integer: map a text or integer column"
            )
        if self._match == "case_insensitive" and patron_kind != "integer":
            self._check_case_insensitive(where, mapping)
        return CategorySchema(patron_kind, date_kind, end_kind, time_kinds)

    def _check_case_insensitive(self, where: str, mapping: SqlCategory) -> None:
        # MariaDB/MySQL match through the column's collation (so that its index serves): it
        # must ignore case, or ids in another case would silently match nothing.
        if self._dialect != "mysql":
            return
        column, table = self._quote(mapping.patron_column), self._quote(mapping.table)
        row = self._conn.exec_driver_sql(
            f"SELECT COLLATION({column}) FROM {table} LIMIT 1"  # noqa: S608 - identifiers
        ).first()
        collation = str(row[0]) if row is not None and row[0] is not None else ""
        if collation and not collation.lower().endswith("_ci"):
            raise StoreSchemaError(
                f"{where}.patron_match: column {mapping.patron_column!r} of {mapping.table!r} "
                f"has the collation {collation}, which does not ignore case; say "
                'patron_match = "exact", or map a view whose patron column is _ci'
            )

    def _time_kind(
        self, where: str, key: str, mapping: SqlCategory, column: str, ctype: ColumnType
    ) -> TimeKind:
        declared = TimeKind(mapping.date_kind) if mapping.date_kind else None
        described = f"column {column!r} of {mapping.table!r} is {ctype.name}"
        if self._dialect == "sqlite":
            if ctype.family in ("integer", "number"):
                raise StoreSchemaError(
                    f"{where}.{key}: {described} (numbers): Bulwark compares dates only as "
                    "ISO 8601 text on SQLite; store them as text, or map a view that does"
                )
            kind = declared or ctype.kind
            if kind is None:
                raise StoreSchemaError(
                    f"{where}.{key}: {described}, which does not say it holds ISO 8601 "
                    'dates: declare date_kind = "date", "local" or "instant" for this '
                    "category if it does, or map a DATE/DATETIME column"
                )
            return kind
        if ctype.kind is None:
            raise StoreSchemaError(
                f"{where}.{key}: {described}: Bulwark compares only DATE, DATETIME/"
                "timestamp and TIMESTAMP/timestamptz columns; map one (a view can cast "
                "ISO 8601 text to one)"
            )
        if declared is not None and declared is not ctype.kind:
            raise StoreSchemaError(
                f"{where}.date_kind: says {declared.value!r} but {described} "
                f"({ctype.kind.value}); remove date_kind (a DATETIME written in another zone "
                "is said with time_zone)"
            )
        return ctype.kind

    # --- diagnosis -----------------------------------------------------------------------

    def _diagnose(self, where: str, mapping: SqlCategory, exc: BaseException) -> Exception:
        from app.core.problems import StoreUnavailable

        fault, message = classify(exc, self._dialect)
        if fault == "unreachable":
            return StoreUnavailable("The records store stopped answering while it was checked.")
        table = mapping.table
        try:
            description = self._select(table, None)
        except Exception as whole:
            return self._relation_fault(where, table, whole)
        fold = self._dialect != "postgresql"  # only PostgreSQL's quoted names keep their case
        present = {str(d[0]).lower() if fold else d[0] for d in description}
        for key, column in named_columns(mapping):
            name = column.lower() if fold else column
            if name not in present:
                return StoreSchemaError(
                    f"{where}.{key}: column {column!r} does not exist in {table!r}; fix the "
                    "mapping, or recreate the view if an upgrade of the library system renamed it"
                )
        for key, column in named_columns(mapping):
            try:
                self._select(table, [column])
            except Exception as one:
                fault, message = classify(one, self._dialect)
                if fault == "denied":
                    return StoreSchemaError(
                        f"{where}.{key}: {self._user} may not read column {column!r} of "
                        f"{table!r} ({message}); GRANT SELECT on {table} to it"
                    )
                return StoreSchemaError(f"{where}.{key}: column {column!r} of {table!r}: {message}")
        return StoreSchemaError(f"{where}.table: {table!r} cannot be read: {message}")

    def _relation_fault(self, where: str, table: str, exc: BaseException) -> Exception:
        from app.core.problems import StoreUnavailable

        fault, message = classify(exc, self._dialect)
        if fault == "unreachable":
            return StoreUnavailable("The records store stopped answering while it was checked.")
        if fault == "no_table" and self._is_view(table):
            fault = "broken_view"
        if fault == "no_table":
            return StoreSchemaError(
                f"{where}.table: table or view {table!r} does not exist in the records store "
                "(or the account cannot see it); create it (for Koha: examples/koha/views.sql) "
                "or fix the mapping"
            )
        if fault == "denied" and self._dialect == "postgresql" and self._granted(table):
            fault = "broken_view"
        if fault == "denied":
            return StoreSchemaError(
                f"{where}.table: {self._user} has no SELECT grant on {table!r} ({message}); "
                f"GRANT SELECT ON {table} TO it"
            )
        if fault == "broken_view":
            return StoreSchemaError(
                f"{where}.table: view {table!r} exists but cannot be read ({message}): a table "
                "or column under it changed or went away (an upgrade of the library system?), "
                "or its owner lost a grant; recreate the view (for Koha: examples/koha/views.sql)"
            )
        return StoreSchemaError(f"{where}.table: {table!r} cannot be read: {message}")

    def _is_view(self, table: str) -> bool:
        if self._dialect != "sqlite":
            return False
        row = self._conn.exec_driver_sql(
            f"SELECT type FROM sqlite_master WHERE name = '{table}'"  # noqa: S608 - identifier
        ).first()
        return row is not None and row[0] == "view"

    def _granted(self, table: str) -> bool:
        # The account's own grant; reading the view failed anyway, so its owner lacks one.
        try:
            row = self._conn.exec_driver_sql(
                f"SELECT has_table_privilege('{table}', 'SELECT')"
            ).first()
        except Exception:
            return False
        return bool(row and row[0])


def named_columns(mapping: SqlCategory) -> list[tuple[str, str]]:
    """``(mapping key, column)`` of every column a category names, for messages."""
    named = [("patron_column", mapping.patron_column), ("date_column", mapping.date_column)]
    if mapping.end_column:
        named.append(("end_column", mapping.end_column))
    if mapping.id_column:
        named.append(("id_column", mapping.id_column))
    named.extend((f"fields.{out}", column) for out, column in mapping.fields.items())
    return named


def login_fault(exc: BaseException, dialect: str, url: sa.engine.URL) -> Exception | None:
    """A login or database refusal as a StoreLoginError; None for anything else."""
    fault, message = classify(exc, dialect)
    if fault == "login":
        return StoreLoginError(
            f"the records store refused the login of {url.username!r} ({message}); check the "
            "user and password in BULWARK_RECORDS_URL"
        )
    if fault == "no_database":
        return StoreLoginError(
            f"the records store has no database {url.database!r} that {url.username!r} may "
            f"use ({message}); check BULWARK_RECORDS_URL and the account's grants"
        )
    return None
