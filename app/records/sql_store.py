"""The SQL records store: SQLite, PostgreSQL and MariaDB/MySQL through one query shape.

Each fetch is a single SELECT built from the validated mapping only::

    SELECT <permitted columns>, <date>, <id>
    FROM <table>
    WHERE <patron> = :patron AND <date> >= :start AND <date> < :end_plus_one_day
      [AND (<date> > :key OR (<date> = :key AND <id> > :last_id))]   -- continuing a page
    ORDER BY <date>, <id>
    LIMIT :limit_plus_one

Identifiers come only from the mapping (plain identifiers, always quoted by the dialect);
every value is a bound parameter. The half-open upper bound makes a period inclusive for DATE
and for DATETIME/TIMESTAMP columns alike. Fetching ``limit + 1`` rows tells whether another
page exists without ever reading more than that, however many rows a patron has.

Paging is keyset paging on ``(date, id_column)``. A category without ``id_column`` is paged by
date with an offset inside the last date's ties, ordered by every mapped column: correct for a
table that does not change between pages, and cheap while few rows share one date.

Values leave as JSON-ready scalars: dates, times and datetimes as ISO 8601 strings (SQLite's
text dates exactly as stored), ``Decimal`` as a string so that no digit is lost, binary values
as base64 text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import quoted_name

from app.core.database import DEFAULT_POOL_SIZE, create_engine, dialect_of
from app.core.problems import StoreUnavailable
from app.orders.models import Category
from app.policy.decision import Obligations
from app.records.base import Page, Record
from app.records.cursor import (
    CursorInvalid,
    decode_cursor,
    encode_cursor,
    require_int,
    tag_value,
    untag_value,
)
from app.records.mapping import MappingError, RecordsMapping, SqlCategory
from app.records.pg_reader import PG_ERRORS, PgReader
from app.records.sqlite_reader import SqliteReader

logger = logging.getLogger("bulwark.records")

#: Failures of the database or the network that mean "the store cannot answer now".
STORE_ERRORS = (SQLAlchemyError, sqlite3.Error, *PG_ERRORS, OSError, TimeoutError)

_MAX_CACHED_STATEMENTS = 512
PatronKind = Literal["text", "char", "integer"]
_MAX_DIGITS = 18  # the longest id an integer patron column can hold


def _b64(value: bytes | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


#: How a driver value becomes a JSON value; types not listed pass through unchanged.
_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    dt.date: dt.date.isoformat,
    dt.datetime: dt.datetime.isoformat,
    dt.time: dt.time.isoformat,
    Decimal: str,
    uuid.UUID: str,
    bytes: _b64,
    memoryview: _b64,
    dt.timedelta: str,
}


@dataclass(frozen=True, slots=True)
class _Statement:
    """One compiled SELECT and how to bind its parameters positionally."""

    sql: str
    names: tuple[str, ...]  # output field names, in select-list order
    order: tuple[str, ...]  # parameter names in placeholder order
    defaults: Mapping[str, Any]  # values the dialect added itself (SQLite's OFFSET 0)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[n] if n in values else self.defaults[n] for n in self.order)


class SqlRecordsStore:
    """A :class:`~app.records.base.RecordsStore` over a SQL database."""

    def __init__(
        self,
        url: str,
        mapping: RecordsMapping,
        *,
        timeout: float = 5.0,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        if mapping.kind != "sql":
            raise MappingError("the mapping describes an HTTP store, but the URL is a database")
        self._mapping = mapping
        self._timeout = timeout
        self._dialect = dialect_of(url)
        self._engine: AsyncEngine = create_engine(url, pool_size=pool_size, state=False)
        _install_statement_timeout(self._engine, self._dialect, timeout)
        # PostgreSQL through asyncpg otherwise wraps every SELECT in BEGIN … ROLLBACK: two
        # extra round trips per fetch for a read that needs no transaction.
        self._reader = (
            self._engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._dialect == "postgresql"
            else self._engine
        )
        # SQLite files and PostgreSQL are read around SQLAlchemy, for speed (each reader's
        # module says why); MariaDB/MySQL through the engine.
        self._direct = _direct_reader(self._engine, self._dialect, timeout, pool_size)
        self._statements: dict[tuple[Category, tuple[str, ...], bool], _Statement] = {}
        self._patron_kinds: dict[Category, PatronKind] = {}

    @property
    def engine(self) -> AsyncEngine:
        """The engine behind the store (for tests and diagnostics)."""
        return self._engine

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """Per mapped category, the output field names the mapping allows to leave."""
        return self._mapping.fields()

    async def validate(self) -> None:
        """Check the live schema: every table or view and every mapped column exists.

        Raises MappingError naming category, table and column; StoreUnavailable when the
        database cannot be reached.
        """
        if self._missing_sqlite_file():
            # Connecting would create an empty file, and a later `bulwark demo` would then
            # take that empty file for a generated store.
            raise StoreUnavailable("The records store's SQLite file does not exist.")
        try:
            async with asyncio.timeout(self._timeout), self._engine.connect() as conn:
                patron_kinds = await conn.run_sync(self._inspect)
        except STORE_ERRORS as exc:
            _log_failure("validate", None, exc)
            raise StoreUnavailable(
                "The records store could not be reached to check the mapping."
            ) from None
        self._patron_kinds = patron_kinds

    def _missing_sqlite_file(self) -> bool:
        database = self._engine.url.database
        if self._dialect != "sqlite" or not database or database == ":memory:":
            return False
        return not Path(database).exists()

    def _inspect(self, conn: Connection) -> dict[Category, PatronKind]:
        inspector = sa.inspect(conn)
        relations = set(inspector.get_table_names()) | set(inspector.get_view_names())
        with contextlib.suppress(NotImplementedError):  # only PostgreSQL has them
            relations |= set(inspector.get_materialized_view_names())
        patron_kinds = {}
        for category, mapping in self._mapping.categories.items():
            assert isinstance(mapping, SqlCategory)
            where = f"categories.{category.value}"
            if mapping.table not in relations:
                raise MappingError(
                    f"{where}.table: table or view {mapping.table!r} does not exist "
                    "in the records store"
                )
            columns = {c["name"]: c["type"] for c in inspector.get_columns(mapping.table)}
            for key, column in _named_columns(mapping):
                if column not in columns:
                    raise MappingError(
                        f"{where}.{key}: column {column!r} does not exist in {mapping.table!r}"
                    )
            patron_kinds[category] = _patron_kind(columns[mapping.patron_column])
        return patron_kinds

    async def fetch(
        self,
        obligations: Obligations,
        category: Category,
        *,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """At most ``limit`` records of ``category`` narrowed by ``obligations``, oldest first.

        A category the permit or the mapping does not name, or one without permitted
        fields, yields an empty page: nothing is ever selected that was not allowed.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        mapping = self._mapping.categories.get(category)
        allowed = set(obligations.fields.get(category, ()))
        if not isinstance(mapping, SqlCategory) or category not in obligations.categories:
            return Page([], None)
        names = tuple(name for name in mapping.fields if name in allowed)
        patron = self._patron_value(category, obligations.patron_id)
        if not names or patron is None:
            return Page([], None)
        position = self._position(mapping, category, cursor)
        statement = self._statement(category, names, continuing=position is not None)
        values = self._values(obligations, patron, limit, position)
        rows = await self._run(category, statement, values)
        records = self._records(category, names, rows[:limit], patron)
        next_cursor = self._next_cursor(mapping, category, rows, limit, position, len(names))
        return Page(records, next_cursor)

    def _patron_value(self, category: Category, patron_id: str) -> str | int | None:
        if not patron_id or "\x00" in patron_id:  # no stored id holds a NUL byte
            return None
        if self._patron_kinds.get(category) != "integer":
            return patron_id
        # An integer key can only equal an id written as that integer ("42", not "042" or
        # "42 "); anything else matches nothing and is not even sent.
        if not (patron_id.isascii() and patron_id.isdigit()) or len(patron_id) > _MAX_DIGITS:
            return None
        number = int(patron_id)
        return number if str(number) == patron_id else None

    def _position(
        self, mapping: SqlCategory, category: Category, cursor: str | None
    ) -> dict[str, Any] | None:
        if cursor is None:
            return None
        state = decode_cursor(cursor, category)
        if mapping.id_column:
            if set(state) != {"k", "i"}:
                raise CursorInvalid("cursor does not fit this category")
            return {"key": untag_value(state["k"]), "last_id": untag_value(state["i"])}
        if set(state) != {"k", "s"}:
            raise CursorInvalid("cursor does not fit this category")
        return {"key": untag_value(state["k"]), "skip": require_int(state, "s", minimum=1)}

    def _values(
        self,
        obligations: Obligations,
        patron: str | int,
        limit: int,
        position: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        start, last = obligations.period.start, obligations.period.end
        # The half-open bound; at the end of the calendar the last day itself must do.
        end = last + dt.timedelta(days=1) if last < dt.date.max else last
        values: dict[str, Any] = {"patron": patron, "lim": limit + 1}
        if self._dialect == "sqlite":
            # SQLite keeps dates as ISO text; ISO strings compare in date order, and binding
            # them as text avoids the sqlite3 date adapters that Python 3.12 deprecates.
            values.update(start=start.isoformat(), end=end.isoformat())
        else:
            values.update(start=start, end=end)
        if position:
            values.update(position)
        return values

    async def _run(
        self, category: Category, statement: _Statement, values: Mapping[str, Any]
    ) -> list[sa.Row[Any]]:
        parameters = statement.parameters(values)
        try:
            async with asyncio.timeout(self._timeout):
                if self._direct is not None:
                    return await self._direct.fetch(statement.sql, parameters)
                async with self._reader.connect() as conn:
                    result = await conn.exec_driver_sql(statement.sql, parameters)
                    return list(result.fetchall())
        except STORE_ERRORS as exc:
            _log_failure("fetch", category, exc)
            reason = "timed out" if isinstance(exc, TimeoutError) else "failed"
            raise StoreUnavailable(
                f"The records store {reason} for category {category.value!r}; nothing was released."
            ) from None

    def _records(
        self, category: Category, names: tuple[str, ...], rows: list[sa.Row[Any]], patron: Any
    ) -> list[Record]:
        """The rows as records, keeping only rows whose patron is exactly ``patron``.

        The database matched by its own collation, which may ignore case, trailing spaces or
        even NUL bytes (MariaDB's defaults do); the order names one exact id.
        """
        width = len(names)
        if self._patron_kinds.get(category) == "char":
            # CHAR(n) values may come back padded with spaces (PostgreSQL's bpchar).
            return [
                _record(names, row, width)
                for row in rows
                if isinstance(row[width], str) and row[width].rstrip(" ") == patron
            ]
        return [_record(names, row, width) for row in rows if row[width] == patron]

    def _next_cursor(
        self,
        mapping: SqlCategory,
        category: Category,
        rows: list[sa.Row[Any]],
        limit: int,
        position: Mapping[str, Any] | None,
        width: int,
    ) -> str | None:
        if len(rows) <= limit:
            return None
        try:
            return encode_cursor(category, _next_state(mapping, rows[:limit], width, position))
        except (TypeError, ValueError):
            # An ordering key of a type a cursor cannot carry: a mapping fault, not data.
            logger.error("unpageable ordering key", extra={"category": category.value})
            raise StoreUnavailable(
                f"The records store cannot page category {category.value!r}; nothing was released."
            ) from None

    def _statement(
        self, category: Category, names: tuple[str, ...], *, continuing: bool
    ) -> _Statement:
        cache_key = (category, names, continuing)
        statement = self._statements.get(cache_key)
        if statement is None:
            if len(self._statements) >= _MAX_CACHED_STATEMENTS:
                self._statements.clear()
            statement = self._compile(self._mapping.sql(category), names, continuing)
            self._statements[cache_key] = statement
        return statement

    def _compile(
        self, mapping: SqlCategory, names: tuple[str, ...], continuing: bool
    ) -> _Statement:
        select = _build_select(mapping, names, continuing)
        compiled = select.compile(dialect=self._engine.dialect)
        order = tuple(compiled.positiontup or ())
        return _Statement(str(compiled), names, order, dict(compiled.params))

    async def check(self) -> None:
        """Raise StoreUnavailable when the database cannot answer ``SELECT 1``."""
        try:
            async with asyncio.timeout(self._timeout), self._reader.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except STORE_ERRORS as exc:
            _log_failure("check", None, exc)
            raise StoreUnavailable("The records store is not answering.") from None

    async def close(self) -> None:
        """Dispose of the engine and its connections."""
        if self._direct is not None:
            await self._direct.close()
        await self._engine.dispose()


class DirectReader(Protocol):
    """Runs one compiled SELECT on the store's own driver, outside SQLAlchemy."""

    async def fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]: ...

    async def close(self) -> None: ...


def _direct_reader(
    engine: AsyncEngine, dialect: str, timeout: float, pool_size: int
) -> DirectReader | None:
    if dialect == "postgresql":
        return PgReader(engine, timeout=timeout, pool_size=pool_size)
    database = engine.url.database
    if dialect == "sqlite" and database and database != ":memory:":
        return SqliteReader(database, timeout=timeout)
    return None


def _quoted(name: str) -> quoted_name:
    # Always quoted: a mapped column may be a reserved word (Koha's `time`, `return`).
    return quoted_name(name, quote=True)


def _build_select(mapping: SqlCategory, names: tuple[str, ...], continuing: bool) -> sa.Select[Any]:
    table = sa.table(_quoted(mapping.table), *(sa.column(_quoted(c)) for c in mapping.columns()))
    cols = table.c
    date = cols[mapping.date_column]
    selected = [cols[mapping.fields[name]].label(f"f{i}") for i, name in enumerate(names)]
    # The patron column is read back only to check it exactly; it never leaves.
    selected.append(cols[mapping.patron_column].label("p"))
    where = [
        cols[mapping.patron_column] == sa.bindparam("patron"),
        date >= sa.bindparam("start"),
        date < sa.bindparam("end"),
    ]
    if mapping.id_column:
        ident = cols[mapping.id_column]
        if continuing:
            key: sa.BindParameter[Any] = sa.bindparam("key")
            where.append(sa.or_(date > key, sa.and_(date == key, ident > sa.bindparam("last_id"))))
        return (
            sa.select(*selected, date.label("k"), ident.label("i"))
            .where(*where)
            .order_by(date, ident)
            .limit(sa.bindparam("lim"))
        )
    ties = [cols[c] for c in dict.fromkeys(mapping.fields.values()) if c != mapping.date_column]
    select = sa.select(*selected, date.label("k")).order_by(date, *ties)
    if continuing:
        where.append(date >= sa.bindparam("key"))
        select = select.offset(sa.bindparam("skip"))
    return select.where(*where).limit(sa.bindparam("lim"))


def _next_state(
    mapping: SqlCategory,
    rows: list[sa.Row[Any]],
    width: int,
    position: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The cursor state after ``rows`` (columns: fields, then patron, date and id)."""
    last = rows[-1]
    key = last[width + 1]
    if mapping.id_column:
        return {"k": tag_value(key), "i": tag_value(last[width + 2])}
    # Offset inside the last date's ties: rows on this page sharing its date, plus those
    # skipped on earlier pages when this page started on the same date.
    ties = sum(1 for row in rows if row[width + 1] == key)
    if position and position["key"] == key and ties == len(rows):
        ties += position["skip"]
    return {"k": tag_value(key), "s": ties}


def _patron_kind(column_type: Any) -> PatronKind:
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.CHAR):
        return "char"
    return "text"


def _named_columns(mapping: SqlCategory) -> list[tuple[str, str]]:
    named = [("patron_column", mapping.patron_column), ("date_column", mapping.date_column)]
    if mapping.id_column:
        named.append(("id_column", mapping.id_column))
    named.extend((f"fields.{out}", column) for out, column in mapping.fields.items())
    return named


#: Driver value types that are JSON values as they are (most columns of most rows).
_PLAIN = frozenset({str, int, bool, type(None)})


def _record(names: tuple[str, ...], row: sa.Row[Any], width: int) -> Record:
    values = row[:width]
    for value in values:
        if type(value) not in _PLAIN:
            return dict(zip(names, map(_json_value, values), strict=True))
    return dict(zip(names, values, strict=True))


def _json_value(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    convert = _CONVERTERS.get(type(value))
    return value if convert is None else convert(value)


def _install_statement_timeout(engine: AsyncEngine, dialect: str, seconds: float) -> None:
    """Make the server itself stop a runaway query, not only the client's wait."""
    if dialect == "sqlite":
        return  # in-process: the asyncio deadline is all there is

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if dialect == "postgresql":
            statement = f"SET statement_timeout = {int(seconds * 1000)}"
        elif getattr(engine.dialect, "is_mariadb", False):
            statement = f"SET SESSION max_statement_time = {seconds:.3f}"
        else:
            statement = f"SET SESSION max_execution_time = {int(seconds * 1000)}"
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    sa.event.listen(engine.sync_engine, "connect", on_connect)


def _log_failure(action: str, category: Category | None, exc: BaseException) -> None:
    # The exception's type only: its text may quote SQL parameters (a patron id).
    logger.warning(
        "records store %s failed",
        action,
        extra={
            "category": category.value if category else None,
            "error_type": type(exc).__name__,
        },
    )
