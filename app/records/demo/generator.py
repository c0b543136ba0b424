"""A deterministic generator for the demo records store.

``create_demo_store`` fills SQLite (through :mod:`sqlite3`), PostgreSQL (through asyncpg's
COPY) or MariaDB/MySQL (through asyncmy's multi-row inserts) with plainly fictional patrons
and their activity: names built from invented syllables, titles marked "(fictional)", e-mail
addresses under the reserved ``.invalid`` domain and telephone numbers in the 555-01xx range
kept for fiction. The same seed gives the same rows on every backend.

Rows are streamed in batches and the ``(patron, date, id)`` indexes are built after the load,
so millions of rows load in well under a minute and memory stays flat.

The function is synchronous (it runs its own event loop for the server databases): call it
from plain code, or through ``asyncio.to_thread`` from a coroutine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.schema import CreateIndex, CreateTable, DropTable

from app.records.demo import schema

#: A patron with rows in every category between DEMO_FROM and DEMO_TO (for `bulwark demo`).
DEMO_PATRON = "P000123"
#: Another patron with rows in every category of that period (for a refused request).
OTHER_PATRON = "P000124"
#: A patron with more loans in that period than one response holds (to show paging).
DEMO_BUSY_PATRON = "P000042"
DEMO_FROM = dt.date(2026, 1, 1)
DEMO_TO = dt.date(2026, 6, 30)

#: Every generated record is dated inside this span.
DATA_START = dt.date(2025, 1, 1)
DATA_END = dt.date(2026, 12, 31)

_BATCH = 10_000
#: Patrons present at every size, with their registration dates.
_FORCED_PATRONS = {
    DEMO_BUSY_PATRON: dt.date(2026, 1, 8),
    DEMO_PATRON: dt.date(2026, 2, 3),
    OTHER_PATRON: dt.date(2026, 3, 9),
}

# Share of the activity rows per table; registration rows are the patrons themselves.
_WEIGHTS: dict[str, float] = {
    "loans": 0.35,
    "searches": 0.30,
    "facility_sessions": 0.12,
    "holds": 0.10,
    "reference_transcripts": 0.08,
    "ill_requests": 0.05,
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SYLLABLES = _words("ka lo mi ren tash vel qui dor fen sul bri zan ota pel wyn ix mur sae tol vu")
_PLACES = ("Quillmarsh", "Vennatoll", "Orrowind", "Saltbrisk", "Tumblewyn", "Kessaro")
_ADJECTIVES = _words(
    "Quiet Hollow Amber Distant Silver Borrowed Patient Crooked Gentle Midnight Paper "
    "Northern Salt Sleeping Tidal Wandering Woolen Lantern-lit Restless Winter"
)
_NOUNS = _words(
    "Lantern Orchard Cartographer Harbor Ledger Atlas Meridian Loom Garden Archive Compass "
    "Kettle Observatory Ferry Quarry Chorus Inkwell Almanac Bridge Signal"
)
_BRANCHES = ("Central (fictional)", "Riverside (fictional)", "Hilltop (fictional)")
_SOURCES = ("catalog", "catalog", "catalog", "database:periodicals", "database:genealogy")
_CHANNELS = ("chat", "email", "desk", "phone")
_RESOURCES = (
    ("room", "Study Room 2"),
    ("room", "Maker Lab"),
    ("computer", "PC-14"),
    ("computer", "PC-03"),
    ("network", "Guest Wi-Fi"),
)
_STATUSES = ("waiting", "filled", "cancelled", "expired")
_ILL_STATUSES = ("requested", "shipped", "received", "returned")


class DemoStoreExists(FileExistsError):
    """The target already holds demo tables and ``replace`` was not asked for."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a generator run wrote."""

    target: str
    rows: dict[str, int]
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True, slots=True)
class _Plan:
    table: Table
    count: int
    rows: Iterable[tuple[Any, ...]]

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.table.columns]


def create_demo_store(
    url_or_path: str | Path,
    *,
    patrons: int = 2000,
    rows: int = 100_000,
    seed: int = 2026,
    replace: bool = False,
) -> DemoSummary:
    """Create the demo tables at ``url_or_path`` and fill them deterministically.

    ``url_or_path`` is a file path (SQLite) or a SQLAlchemy URL (``sqlite:///…``,
    ``postgresql://…``, ``mysql://…``). ``patrons`` patrons (P000001 on) are registered, plus
    DEMO_PATRON, OTHER_PATRON and DEMO_BUSY_PATRON when ``patrons`` stops short of them;
    ``rows`` counts the activity rows across the six activity tables. An existing demo store is
    refused with :class:`DemoStoreExists` unless ``replace`` is true, which drops the seven
    demo tables (and nothing else) first.
    """
    if patrons < 1:
        raise ValueError("patrons must be at least 1")
    started = time.perf_counter()
    backend, target = _target(url_or_path)
    plans = _plans(_Source(patrons, seed, text_dates=backend == "sqlite"), patrons, rows)
    if backend == "sqlite":
        _load_sqlite(Path(target), plans, replace=replace)
    elif backend == "postgresql":
        asyncio.run(_load_postgres(target, plans, replace=replace))
    else:
        asyncio.run(_load_mysql(target, plans, replace=replace))
    counts = {plan.table.name: plan.count for plan in plans}
    return DemoSummary(str(url_or_path), counts, time.perf_counter() - started)


def _target(url_or_path: str | Path) -> tuple[str, str]:
    if isinstance(url_or_path, Path) or "://" not in url_or_path:
        return "sqlite", str(url_or_path)
    url = make_url(url_or_path)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return "sqlite", url.database or ""
    if backend in ("postgresql", "postgres"):
        return "postgresql", url_or_path
    if backend in ("mysql", "mariadb"):
        return "mysql", url_or_path
    raise ValueError(f"unsupported database {backend!r}: use sqlite, postgresql or mysql")


# ---------------------------------------------------------------- what the rows are


class _Source:
    """Fictional values from one seeded random stream."""

    def __init__(self, patrons: int, seed: int, *, text_dates: bool) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - fictional data, not secrets
        # random() and arithmetic: several times faster than randrange() and choice(),
        # which matters at millions of rows.
        self.random = self.rng.random
        self.patrons = patrons
        self.text_dates = text_dates
        self.days = (DATA_END - DATA_START).days + 1

    def patron(self) -> str:
        # Squared uniform: a few heavy users and a long tail, as in real circulation.
        return patron_id(1 + int(self.patrons * self.random() ** 2))

    def day(self) -> dt.date:
        return DATA_START + dt.timedelta(days=self.below(self.days))

    def moment(self, day: dt.date | None = None) -> dt.datetime:
        seconds = 9 * 3600 + self.below(12 * 3600)
        return dt.datetime.combine(day or self.day(), dt.time()) + dt.timedelta(seconds=seconds)

    def date(self, value: dt.date | None) -> Any:
        # SQLite stores ISO text; the server databases take date objects.
        if value is None or not self.text_dates:
            return value
        return value.isoformat()

    def word(self, count: int) -> str:
        return "".join(self.choice(_SYLLABLES) for _ in range(count)).capitalize()

    def title(self) -> str:
        return f"The {self.choice(_ADJECTIVES)} {self.choice(_NOUNS)} (fictional)"

    def choice(self, options: Sequence[Any]) -> Any:
        return options[int(self.random() * len(options))]

    def below(self, stop: int) -> int:
        """An integer in ``[0, stop)``."""
        return int(self.random() * stop)


def patron_id(number: int) -> str:
    """The demo's patron id for a patron number: ``P000001`` …"""
    return f"P{number:06d}"


RowMaker = Callable[[_Source, int, str, dt.datetime], tuple[Any, ...]]


def _patron_row(src: _Source, number: int, registered: dt.date) -> tuple[Any, ...]:
    given, family = src.word(2), src.word(3)
    born = dt.date(1940, 1, 1) + dt.timedelta(days=src.below(26_000))
    return (
        patron_id(number),
        f"29999{number:09d}",
        f"{given} {family}",
        f"{1 + src.below(999)} {src.word(2)} Lane (fictional)",
        src.choice(_PLACES),
        f"{given.lower()}.{family.lower()}@example.invalid",
        f"+1-555-01{src.below(100):02d}",
        src.date(born),
        src.date(registered),
        hashlib.sha256(f"demo-pin-{number}".encode()).hexdigest(),
        "Staff only: prefers large print (fictional)",
    )


def _loan(src: _Source, ident: int, patron: str, when: dt.datetime) -> tuple[Any, ...]:
    returned = None
    if src.random() > 0.08:
        returned = when + dt.timedelta(days=1 + src.below(30), hours=src.below(9))
    due = when.date() + dt.timedelta(days=21)
    return (
        ident,
        patron,
        src.title(),
        src.date(when),
        src.date(due),
        src.date(returned),
        src.choice(_BRANCHES),
        "Staff only: spine damaged on return (fictional)",
    )


def _hold(src: _Source, ident: int, patron: str, when: dt.datetime) -> tuple[Any, ...]:
    placed = when.date()
    expires = placed + dt.timedelta(days=src.choice((30, 60, 90)))
    return (
        ident,
        patron,
        src.title(),
        src.date(placed),
        src.choice(_BRANCHES),
        src.choice(_STATUSES),
        src.date(expires),
        "Staff only: patron called twice (fictional)",
    )


def _ill(src: _Source, ident: int, patron: str, when: dt.datetime) -> tuple[Any, ...]:
    return (
        ident,
        patron,
        src.date(when.date()),
        src.title(),
        f"{src.word(2)} {src.word(3)}",
        f"{src.choice(_PLACES)} Library (fictional)",
        src.choice(_ILL_STATUSES),
        src.below(2500),
        "Internal: lender invoice pending (fictional)",
    )


def _search(src: _Source, ident: int, patron: str, when: dt.datetime) -> tuple[Any, ...]:
    query = f"{src.choice(_ADJECTIVES).lower()} {src.choice(_NOUNS).lower()}"
    return (
        ident,
        patron,
        src.date(when),
        query,
        src.choice(_SOURCES),
        f"198.51.100.{1 + src.below(254)}",
        f"{src.rng.getrandbits(128):032x}",
    )


def _reference(src: _Source, ident: int, patron: str, when: dt.datetime) -> tuple[Any, ...]:
    topic = f"{src.choice(_NOUNS).lower()}s of {src.choice(_PLACES)}"
    return (
        ident,
        patron,
        src.date(when),
        src.choice(_CHANNELS),
        f"Where can I find material on the {topic}? (fictional)",
        f"Suggested the {src.choice(_NOUNS)} collection and two databases (fictional).",
        src.word(1)[:2].upper(),
    )


def _facility(src: _Source, ident: int, patron: str, when: dt.datetime) -> tuple[Any, ...]:
    kind, resource = src.choice(_RESOURCES)
    ended = when + dt.timedelta(minutes=15 + src.below(166))
    mac = ":".join(f"{src.below(256):02x}" for _ in range(6))
    return (ident, patron, src.date(when), src.date(ended), resource, kind, mac)


_MAKERS: dict[str, tuple[Table, RowMaker]] = {
    "loans": (schema.loans, _loan),
    "holds": (schema.holds, _hold),
    "ill_requests": (schema.ill_requests, _ill),
    "searches": (schema.searches, _search),
    "reference_transcripts": (schema.reference_transcripts, _reference),
    "facility_sessions": (schema.facility_sessions, _facility),
}

#: The rows DEMO_PATRON and OTHER_PATRON always have: inside the demo period in every
#: category, plus a few outside it so that narrowing by period shows.
_DEMO_ROW_PATRONS = (DEMO_PATRON, OTHER_PATRON)
_DEMO_DAYS: dict[str, tuple[dt.date, ...]] = {
    "loans": (dt.date(2025, 11, 20), dt.date(2026, 1, 14), dt.date(2026, 3, 2)),
    "holds": (dt.date(2026, 2, 9), dt.date(2026, 8, 14)),
    "ill_requests": (dt.date(2026, 4, 21),),
    "searches": (dt.date(2026, 1, 5), dt.date(2026, 1, 5), dt.date(2026, 5, 30)),
    "reference_transcripts": (dt.date(2026, 3, 17),),
    "facility_sessions": (dt.date(2026, 6, 30), dt.date(2026, 7, 1)),
}


def _plans(src: _Source, patrons: int, rows: int) -> list[_Plan]:
    busy = rows // 80
    fixed = busy + len(_DEMO_ROW_PATRONS) * sum(len(days) for days in _DEMO_DAYS.values())
    if rows < fixed + len(_WEIGHTS):
        raise ValueError(f"rows must be at least {fixed + len(_WEIGHTS)}")
    budget = rows - fixed
    counts = {name: int(budget * share) for name, share in _WEIGHTS.items()}
    counts["loans"] += budget - sum(counts.values())
    numbers = _patron_numbers(patrons)
    plans = [_Plan(schema.patrons, len(numbers), _patron_rows(src, numbers))]
    for name, (table, maker) in _MAKERS.items():
        extra = [(p, src.moment(day)) for p in _DEMO_ROW_PATRONS for day in _DEMO_DAYS[name]]
        if name == "loans":
            extra += _busy_loans(src, busy)
        total = counts[name] + len(extra)
        plans.append(_Plan(table, total, _activity_rows(src, maker, counts[name], extra)))
    return plans


def _patron_numbers(patrons: int) -> list[int]:
    forced = {int(pid[1:]) for pid in _FORCED_PATRONS}
    return sorted(set(range(1, patrons + 1)) | forced)


def _patron_rows(src: _Source, numbers: list[int]) -> Iterator[tuple[Any, ...]]:
    for number in numbers:
        registered = _FORCED_PATRONS.get(patron_id(number)) or src.day()
        yield _patron_row(src, number, registered)


def _busy_loans(src: _Source, count: int) -> list[tuple[str, dt.datetime]]:
    span = (DEMO_TO - DEMO_FROM).days + 1
    return [
        (DEMO_BUSY_PATRON, src.moment(DEMO_FROM + dt.timedelta(i % span))) for i in range(count)
    ]


def _activity_rows(
    src: _Source, maker: RowMaker, count: int, extra: list[tuple[str, dt.datetime]]
) -> Iterator[tuple[Any, ...]]:
    for ident in range(1, count + 1):
        yield maker(src, ident, src.patron(), src.moment())
    for offset, (patron, when) in enumerate(extra, start=count + 1):
        yield maker(src, offset, patron, when)


def _batches(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------- where the rows go


def _dialect(name: str) -> Dialect:
    # The default driver's dialect of each backend: only used to render SQL text.
    return make_url(f"{name}://").get_dialect()()


def _ddl(dialect: Dialect) -> tuple[list[str], list[str]]:
    creates = [str(CreateTable(t).compile(dialect=dialect)) for t, _, _ in schema.DEMO_TABLES]
    indexes = [str(CreateIndex(i).compile(dialect=dialect)) for i in schema.INDEXES]
    return creates, indexes


def _drops(dialect: Dialect, existing: Iterable[str], *, replace: bool) -> list[str]:
    """DROP statements for the demo tables already present; refused unless ``replace``."""
    present = set(existing)
    tables = [t for t, _, _ in reversed(schema.DEMO_TABLES) if t.name in present]
    if tables and not replace:
        names = ", ".join(sorted(t.name for t in tables))
        raise DemoStoreExists(f"demo tables already exist ({names}); pass replace=True")
    return [str(DropTable(t).compile(dialect=dialect)) for t in tables]


def _load_sqlite(path: Path, plans: list[_Plan], *, replace: bool) -> None:
    dialect = _dialect("sqlite")
    creates, indexes = _ddl(dialect)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        drops = _drops(dialect, (row[0] for row in tables), replace=replace)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # a demo: a crash mid-load just reruns
        conn.execute("BEGIN")
        for statement in drops + creates:
            conn.execute(statement)
        for plan in plans:
            insert = str(plan.table.insert().compile(dialect=dialect))
            for batch in _batches(plan.rows):
                conn.executemany(insert, batch)
        for statement in indexes:
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def _load_postgres(url: str, plans: list[_Plan], *, replace: bool) -> None:
    import asyncpg

    dialect = _dialect("postgresql")
    creates, indexes = _ddl(dialect)
    parts = make_url(url)
    conn = await asyncpg.connect(
        host=parts.host or "localhost",
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        database=parts.database,
    )
    try:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        existing = (r["tablename"] for r in await conn.fetch(query))
        drops = _drops(dialect, existing, replace=replace)
        async with conn.transaction():
            for statement in drops + creates:
                await conn.execute(statement)
            for plan in plans:
                for batch in _batches(plan.rows):
                    await conn.copy_records_to_table(
                        plan.table.name, records=batch, columns=plan.columns
                    )
            for statement in indexes:
                await conn.execute(statement)
        await conn.execute("ANALYZE " + ", ".join(plan.table.name for plan in plans))
    finally:
        await conn.close()


async def _load_mysql(url: str, plans: list[_Plan], *, replace: bool) -> None:
    import asyncmy

    dialect = _dialect("mysql")
    creates, indexes = _ddl(dialect)
    parts = make_url(url)
    conn = await asyncmy.connect(
        host=parts.host or "localhost",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        db=parts.database,
        autocommit=False,
    )
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SHOW TABLES")
            existing = (row[0] for row in await cursor.fetchall())
            drops = _drops(dialect, existing, replace=replace)
            for statement in drops + creates:
                await cursor.execute(statement)
            for plan in plans:
                insert = str(plan.table.insert().compile(dialect=dialect))
                for batch in _batches(plan.rows):
                    await cursor.executemany(insert, batch)
            await conn.commit()
            for statement in indexes:
                await cursor.execute(statement)
    finally:
        conn.close()
