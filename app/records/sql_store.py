"""The SQL records store: SQLite, PostgreSQL and MariaDB/MySQL through one query shape.

Each fetch is a single SELECT built from the validated mapping only::

    SELECT <permitted columns>, <patron>, <date>, <id>
    FROM <table>
    WHERE <patron> = :patron AND <date> >= :start AND <date> < :end
      [AND (<date> > :key OR (<date> = :key AND <id> > :last_id))]   -- continuing a page
    ORDER BY <date>, <id>
    LIMIT :limit_plus_one

Identifiers come only from the mapping (plain identifiers, always quoted by the dialect);
every value is a bound parameter. ``:start`` and ``:end`` are the period's half-open bounds in
the date column's own kind (app/records/periods.py): dates for a DATE, the local midnights as
wall-clock times for a DATETIME, their exact instants for a TIMESTAMP/timestamptz (MariaDB
connections read TIMESTAMPs in UTC). A ``state`` category asks ``<date> < :end AND (<end> IS
NULL OR <end> >= :start)`` instead. On SQLite the date is compared as normalised ISO text, and
a patron's rows whose text is no date of the column's kind come back flagged and fail the read
closed. ``case_insensitive`` patron matching compares ``lower(<patron>)``. Fetching
``limit + 1`` rows tells whether another page exists without ever reading more than that,
however many rows a patron has.

Paging is keyset paging on ``(date, id_column)``. A category without ``id_column`` is paged by
date with an offset inside the last date's ties, ordered by every mapped column: correct for a
table that does not change between pages, and cheap while few rows share one date.

Values leave as JSON-ready scalars: dates and times as ISO 8601 strings, datetimes with their
UTC offset, ``Decimal`` as a string so that no digit is lost, binary values as base64 text.
The schema is checked with SELECT alone (app/records/sql_schema.py).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import logging
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import quoted_name

from app.core.calendar import UTC, UTC_CLOCK, LibraryClock
from app.core.database import DEFAULT_POOL_SIZE, create_engine, dialect_of
from app.core.problems import StoreUnavailable
from app.records.base import Page, Record, StoreValueMalformed
from app.records.categories import Category
from app.records.cursor import (
    CursorInvalid,
    decode_cursor,
    encode_cursor,
    require_int,
    tag_value,
    untag_value,
)
from app.records.mapping import MappingError, PatronMatch, RecordsMapping, SqlCategory
from app.records.obligations import Obligations, Period
from app.records.periods import TimeFrame, TimeKind
from app.records.pg_reader import PG_ERRORS, PgReader
from app.records.sql_schema import (
    CategorySchema,
    PatronKind,
    SchemaProbe,
    StoreSchemaError,
    classify,
    login_fault,
)
from app.records.sqlite_reader import SqliteReader

logger = logging.getLogger("bulwark.records")

#: Failures of the database or the network that mean "the store cannot answer now".
STORE_ERRORS = (SQLAlchemyError, sqlite3.Error, *PG_ERRORS, OSError, TimeoutError)

_MAX_CACHED_STATEMENTS = 512
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
    #: Per output field, how a time value leaves (with its offset); None when none does.
    converters: tuple[Callable[[Any], Any] | None, ...] | None

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
        clock: LibraryClock = UTC_CLOCK,
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
        self._frames = {
            category: TimeFrame.of(clock, mapping.store_zone(category, clock.tz))
            for category in mapping.categories
        }
        self._schemas: dict[Category, CategorySchema] = {}

    @property
    def engine(self) -> AsyncEngine:
        """The engine behind the store (for tests and diagnostics)."""
        return self._engine

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """Per mapped category, the output field names the mapping allows to leave."""
        return self._mapping.fields()

    async def validate(self) -> None:
        """Check the live store with SELECT alone: every relation, column and column type.

        Raises StoreSchemaError (a MappingError) naming the category, the table or view, the
        column and what to do; StoreUnavailable only when the database cannot be reached.
        """
        if self._missing_sqlite_file():
            # Connecting would create an empty file, and a later `bulwark demo` would then
            # take that empty file for a generated store.
            raise StoreUnavailable("The records store's SQLite file does not exist.")
        url = self._engine.url
        try:
            async with asyncio.timeout(self._timeout), self._reader.connect() as conn:
                schemas = await conn.run_sync(
                    lambda sync: SchemaProbe(
                        sync, self._dialect, self._mapping, url.username or ""
                    ).run()
                )
        except (MappingError, StoreUnavailable):
            raise
        except STORE_ERRORS as exc:
            _log_failure("validate", None, exc)
            refused = login_fault(exc, self._dialect, url)
            if refused is not None:
                raise refused from None
            fault, message = classify(exc, self._dialect)
            if fault != "unreachable" and not isinstance(exc, TimeoutError):
                raise StoreSchemaError(
                    f"the records store could not be checked: {message}"
                ) from None
            raise StoreUnavailable(
                "The records store could not be reached to check the mapping."
            ) from None
        self._schemas = schemas
        self._statements.clear()

    def _missing_sqlite_file(self) -> bool:
        database = self._engine.url.database
        if self._dialect != "sqlite" or not database or database == ":memory:":
            return False
        return not Path(database).exists()

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
        if not names:
            return Page([], None)
        if category not in self._schemas:
            await self._validate_for_fetch(category)
        patron = self._patron_value(category, obligations.patron_id)
        if patron is None:
            return Page([], None)
        position = self._position(mapping, category, cursor)
        statement = self._statement(category, names, continuing=position is not None)
        values = self._values(category, obligations.period, patron, limit, position)
        rows = await self._run(category, statement, values)
        self._check_times(category, rows, len(names))
        records = self._records(category, statement, rows[:limit], patron)
        next_cursor = self._next_cursor(mapping, category, rows, limit, position, len(names))
        return Page(records, next_cursor)

    async def _validate_for_fetch(self, category: Category) -> None:
        # A store used before validate() (tests, tools) checks itself first; a fault is then
        # the store's, not the request's.
        try:
            await self.validate()
        except MappingError as exc:
            logger.error("records store does not match the mapping", extra={"error": str(exc)})
            raise StoreUnavailable(
                f"The records store does not match the mapping for category {category.value!r};"
                " nothing was released."
            ) from None

    def _patron_value(self, category: Category, patron_id: str) -> str | int | None:
        if not patron_id or "\x00" in patron_id:  # no stored id holds a NUL byte
            return None
        if self._schemas[category].patron != "integer":
            if self._mapping.matching(category) == "case_insensitive":
                return patron_id.lower()
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
        category: Category,
        period: Period,
        patron: str | int,
        limit: int,
        position: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        schema = self._schemas[category]
        frame = self._frames[category]
        # ``start`` is compared with the column that must reach into the period (an event's
        # date, a state's end); ``end`` with the date that must begin before it ends.
        low_kind = schema.end_kind or schema.date_kind
        values: dict[str, Any] = {
            "patron": patron,
            "lim": limit + 1,
            "start": self._bound(frame, low_kind, period, upper=False),
            "end": self._bound(frame, schema.date_kind, period, upper=True),
        }
        if position:
            values.update(position)
        return values

    def _bound(self, frame: TimeFrame, kind: TimeKind, period: Period, *, upper: bool) -> Any:
        """One end of the half-open period, as a value of the column's own kind."""
        if kind is TimeKind.DATE:
            value: Any = frame.date_bounds(period)[upper]
            # SQLite keeps dates as ISO text; binding text avoids the sqlite3 date adapters
            # that Python 3.12 deprecates.
            return value.isoformat() if self._dialect == "sqlite" else value
        if kind is TimeKind.LOCAL:
            value = frame.local_bounds(period)[upper]
            return _sqlite_time_text(value) if self._dialect == "sqlite" else value
        bounds = frame.instant_bounds(period)
        instant = bounds.end if upper else bounds.start
        if self._dialect == "postgresql":
            return instant  # timestamptz: an exact instant
        # MariaDB's TIMESTAMP is read and compared in the session zone, set to UTC on every
        # connection; SQLite's instants are compared as normalised UTC text.
        naive = instant.astimezone(UTC).replace(tzinfo=None)
        return _sqlite_time_text(naive) if self._dialect == "sqlite" else naive

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

    def _check_times(self, category: Category, rows: list[sa.Row[Any]], width: int) -> None:
        """Fail closed on a row whose date cannot be placed in time (counted in the metrics)."""
        if self._dialect == "sqlite":
            # The malformed flag is the last column (the query also returns such rows).
            if any(row[-1] for row in rows):
                raise StoreValueMalformed(category)
            return
        expected = dt.date if self._schemas[category].date_kind is TimeKind.DATE else dt.datetime
        if any(not isinstance(row[width + 1], expected) for row in rows):
            raise StoreValueMalformed(category)

    def _records(
        self, category: Category, statement: _Statement, rows: list[sa.Row[Any]], patron: Any
    ) -> list[Record]:
        """The rows as records, keeping only rows whose patron is exactly ``patron``.

        The database matched by its own collation, which may ignore case, trailing spaces or
        even NUL bytes (MariaDB's defaults do); the order names one id, matched exactly or,
        where the mapping says the store does so, ignoring letter case only.
        """
        names, converters = statement.names, statement.converters
        width = len(names)
        schema = self._schemas[category]
        same = _patron_test(schema.patron, self._mapping.matching(category), patron)
        return [_record(names, row, width, converters) for row in rows if same(row[width])]

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
            statement = self._compile(category, self._mapping.sql(category), names, continuing)
            self._statements[cache_key] = statement
        return statement

    def _compile(
        self, category: Category, mapping: SqlCategory, names: tuple[str, ...], continuing: bool
    ) -> _Statement:
        schema = self._schemas[category]
        select = _build_select(
            mapping,
            names,
            continuing,
            dialect=self._dialect,
            schema=schema,
            match=self._mapping.matching(category),
        )
        compiled = select.compile(dialect=self._engine.dialect)
        order = tuple(compiled.positiontup or ())
        converters = _converters(mapping, names, schema, self._frames[category])
        return _Statement(str(compiled), names, order, dict(compiled.params), converters)

    async def check(self) -> None:
        """Raise StoreUnavailable when the database cannot answer ``SELECT 1``."""
        if self._missing_sqlite_file():
            # An open connection still answers after its file is deleted (and a new one would
            # create an empty file): ready means the records are really there.
            raise StoreUnavailable("The records store's SQLite file does not exist.")
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


def _build_select(
    mapping: SqlCategory,
    names: tuple[str, ...],
    continuing: bool,
    *,
    dialect: str,
    schema: CategorySchema,
    match: PatronMatch,
) -> sa.Select[Any]:
    table = sa.table(_quoted(mapping.table), *(sa.column(_quoted(c)) for c in mapping.columns()))
    cols = table.c
    raw_date = cols[mapping.date_column]
    date = _time_expr(raw_date, schema.date_kind, dialect)
    selected = [cols[mapping.fields[name]].label(f"f{i}") for i, name in enumerate(names)]
    # The patron column is read back only to check it exactly; it never leaves.
    patron_column = cols[mapping.patron_column]
    selected.append(patron_column.label("p"))
    # Ignoring case: MariaDB/MySQL compare with the column's case-insensitive collation (the
    # validation checked it), which keeps the column's index in use; elsewhere lower() both
    # sides. Either way the rows read back are kept only if equal ignoring case alone.
    patron = (
        sa.func.lower(patron_column)
        if match == "case_insensitive" and schema.patron != "integer" and dialect != "mysql"
        else patron_column
    )
    placed: list[Any] = [date < sa.bindparam("end")]
    unplaced: list[Any] = [sa.and_(raw_date.is_not(None), date.is_(None))]
    if mapping.end_column and schema.end_kind:
        # A state: begun before the period ends, and not ended before it starts.
        raw_end = cols[mapping.end_column]
        end = _time_expr(raw_end, schema.end_kind, dialect)
        placed.append(sa.or_(raw_end.is_(None), end >= sa.bindparam("start")))
        unplaced.append(sa.and_(raw_end.is_not(None), end.is_(None)))
    else:
        placed.insert(0, date >= sa.bindparam("start"))
    in_period: Any = sa.and_(*placed)
    extra: list[Any] = []
    if dialect == "sqlite":
        # Text that is not a date is not silently skipped: such rows of the patron come back
        # flagged, and the request fails closed (see _check_times).
        malformed = sa.or_(*unplaced)
        in_period = sa.or_(in_period, malformed)
        extra.append(sa.case((malformed, 1), else_=0).label("m"))
    where = [patron == sa.bindparam("patron"), in_period]
    if mapping.id_column:
        ident = cols[mapping.id_column]
        if continuing:
            key: sa.BindParameter[Any] = sa.bindparam("key")
            where.append(sa.or_(date > key, sa.and_(date == key, ident > sa.bindparam("last_id"))))
        return (
            sa.select(*selected, date.label("k"), ident.label("i"), *extra)
            .where(*where)
            .order_by(date, ident)
            .limit(sa.bindparam("lim"))
        )
    ties = [cols[c] for c in dict.fromkeys(mapping.fields.values()) if c != mapping.date_column]
    select = sa.select(*selected, date.label("k"), *extra).order_by(date, *ties)
    if continuing:
        where.append(date >= sa.bindparam("key"))
        select = select.offset(sa.bindparam("skip"))
    return select.where(*where).limit(sa.bindparam("lim"))


#: SQLite text that starts like an ISO 8601 date (so that 'now' and numbers never parse).
_ISO_PREFIX = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"
#: SQLite's normalised form of a time: what bounds are written in and what is compared.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%f"


def _time_expr(column: Any, kind: TimeKind, dialect: str) -> Any:
    """The column as compared: itself on typed columns; normalised, checked text on SQLite.

    On SQLite a value that is not text of the column's kind becomes NULL: a date that is not
    ``YYYY-MM-DD``, a wall-clock time with an offset, an instant without one.
    """
    if dialect != "sqlite":
        return column
    text = sa.and_(sa.func.typeof(column) == "text", column.op("GLOB")(_ISO_PREFIX))
    zoned = sa.func.substr(column, 11).op("GLOB")("*[-+Zz]*")
    if kind is TimeKind.DATE:
        return sa.case((sa.and_(text, sa.func.length(column) == 10), column))
    if kind is TimeKind.LOCAL:
        return sa.case((sa.and_(text, sa.not_(zoned)), sa.func.strftime(_SQLITE_TIME, column)))
    return sa.case((sa.and_(text, zoned), sa.func.strftime(_SQLITE_TIME, column)))


def _sqlite_time_text(value: dt.datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond // 1000:03d}"


def _converters(
    mapping: SqlCategory, names: tuple[str, ...], schema: CategorySchema, frame: TimeFrame
) -> tuple[Callable[[Any], Any] | None, ...] | None:
    """Per output field, how its time values leave; None when no field holds times."""
    converters: list[Callable[[Any], Any] | None] = []
    for name in names:
        kind = schema.time_kinds.get(mapping.fields[name])
        if kind is None or kind is TimeKind.DATE:
            converters.append(None)
        else:
            converters.append(functools.partial(frame.release, kind=kind))
    return tuple(converters) if any(converters) else None


def _patron_test(kind: PatronKind, match: PatronMatch, patron: Any) -> Callable[[Any], bool]:
    if kind == "integer":
        return lambda value: bool(value == patron)
    fold = match == "case_insensitive"

    def same(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if kind == "char":
            # CHAR(n) values may come back padded with spaces (PostgreSQL's bpchar).
            value = value.rstrip(" ")
        return bool((value.lower() if fold else value) == patron)

    return same


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


#: Driver value types that are JSON values as they are (most columns of most rows).
_PLAIN = frozenset({str, int, bool, type(None)})


def _record(
    names: tuple[str, ...],
    row: sa.Row[Any],
    width: int,
    converters: tuple[Callable[[Any], Any] | None, ...] | None = None,
) -> Record:
    values = row[:width]
    if converters is not None:
        return {
            name: _json_value(value) if convert is None or value is None else convert(value)
            for name, value, convert in zip(names, values, converters, strict=True)
        }
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
            # TIMESTAMP values are read and compared in UTC, without the server's zone tables.
            statement = f"SET SESSION max_statement_time = {seconds:.3f}, time_zone = '+00:00'"
        else:
            statement = (
                f"SET SESSION max_execution_time = {int(seconds * 1000)}, time_zone = '+00:00'"
            )
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
