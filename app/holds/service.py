"""Placing and listing legal holds.

Every order Bulwark evaluates or honours (one whose signature and claims verified) puts each
patron it names on hold, for the order's categories and period, until the order's expiry plus
the policy's ``[legal_holds] margin_days``. The hold is written by the audit writer in the
transaction of the event that records the evaluation (:attr:`app.audit.writer.Entry.holds`), so
there is never an evaluated order without its hold, nor a hold without its event.

Orders that failed verification place no hold: their claims are the presenter's word, and a
forged token must not be able to freeze a patron's records or fill this table. An order whose
signature is good but whose claims failed (expired, not yet valid, too long-lived...) is not
verified either, and places none.

While the order is sealed (its ``nondisclosure_until`` is still to come) a hold shows only the
patron and the hold's end (:func:`_sealed_json`): what a purge job needs, nothing that names
the order.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.calendar import UTC_CLOCK, LibraryClock
from app.core.models import table_of
from app.holds.models import LegalHold
from app.orders.models import OrderClaims

HOLDS = table_of(LegalHold)


class HoldSink:
    """How the audit writer writes a batch's holds (app/audit/entries.py)."""

    name = "holds"

    def merged(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per (order, patron), keeping the later end."""
        return merge_holds(rows)

    async def write(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """One upsert for all of them."""
        await _upsert_rows(conn, rows)


@dataclass(frozen=True, slots=True)
class HoldRow:
    """One (order, patron) hold, written with the audit event of the order's evaluation."""

    iss: str
    jti: str
    patron_id: str
    categories: str
    period_from: dt.date
    period_to: dt.date
    held_until: dt.datetime
    sealed_until: dt.date | None = None

    sink: ClassVar[HoldSink] = HoldSink()

    def values(self, seq: int = 0, now: dt.datetime | None = None) -> dict[str, Any]:
        """The row's columns (a hold names no event: ``seq`` and ``now`` are not kept)."""
        return {
            "iss": self.iss,
            "jti": self.jti,
            "patron_id": self.patron_id,
            "categories": self.categories,
            "period_from": self.period_from,
            "period_to": self.period_to,
            "held_until": self.held_until,
            "sealed_until": self.sealed_until,
        }


@dataclass(frozen=True, slots=True)
class HoldSpec:
    """What one order puts on hold."""

    iss: str
    jti: str
    patrons: tuple[str, ...]
    categories: tuple[str, ...]
    period_from: dt.date
    period_to: dt.date
    held_until: dt.datetime
    sealed_until: dt.date | None = None


def hold_for(claims: OrderClaims, margin_days: int, clock: LibraryClock = UTC_CLOCK) -> HoldSpec:
    """The hold an order's claims call for: its scope, through the library's day of ``exp``
    plus the margin (until the local midnight that ends it)."""
    expires = dt.datetime.fromtimestamp(claims.exp, dt.UTC)
    last_day = clock.date_of(expires) + dt.timedelta(days=margin_days)
    return HoldSpec(
        iss=claims.iss,
        jti=claims.jti,
        patrons=tuple(dict.fromkeys(claims.scope.patrons)),
        categories=tuple(c.value for c in claims.scope.categories),
        period_from=claims.scope.from_,
        period_to=claims.scope.to,
        held_until=clock.bounds(last_day, last_day).end,
        sealed_until=claims.nondisclosure_until,
    )


def hold_rows(
    claims: OrderClaims | None, margin_days: int, clock: LibraryClock = UTC_CLOCK
) -> tuple[HoldRow, ...]:
    """The hold rows an order's verified claims call for; none without verified claims.

    Data, not a write: the audit writer puts the rows of a whole batch of events into one
    upsert (:func:`place_holds`), in the transaction of the events that record them.
    """
    if claims is None:
        return ()
    return spec_rows(hold_for(claims, margin_days, clock))


def spec_rows(spec: HoldSpec) -> tuple[HoldRow, ...]:
    """One row per patron of ``spec``."""
    categories = json.dumps(list(spec.categories))
    return tuple(
        HoldRow(
            iss=spec.iss,
            jti=spec.jti,
            patron_id=patron,
            categories=categories,
            period_from=spec.period_from,
            period_to=spec.period_to,
            held_until=spec.held_until,
            sealed_until=spec.sealed_until,
        )
        for patron in spec.patrons
    )


def merge_holds(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (order, patron), keeping the later end.

    A batch often holds the same patron under the same order many times (every request
    under one order); one upsert may not touch a row twice, and the later end is what stands.
    """
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["iss"], row["jti"], row["patron_id"])
        seen = merged.get(key)
        if seen is None or row["held_until"] > seen["held_until"]:
            merged[key] = row
    return list(merged.values())


async def place_holds(conn: AsyncConnection, rows: Iterable[HoldRow]) -> None:
    """Hold each (order, patron) of ``rows``: one upsert for all of them.

    A patron already held under this order keeps the later of the two ends (a policy whose
    margin grew since the first evaluation extends it; one that shrank never cuts it short).
    """
    await _upsert_rows(conn, [r.values() for r in rows])


async def _upsert_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    merged = merge_holds(rows)
    if not merged:
        return
    now = dt.datetime.now(dt.UTC)
    await conn.execute(_upsert(conn.dialect.name), [{**r, "created_at": now} for r in merged])


@functools.cache
def _upsert(dialect: str) -> Any:
    """The hold upsert of one dialect, built once and run as an executemany (compiled once)."""
    # create_engine accepts SQLite, PostgreSQL and MySQL/MariaDB only (app.core.database).
    if dialect == "mysql":
        mine = mysql.insert(HOLDS)
        later = func.greatest(HOLDS.c.held_until, mine.inserted.held_until)
        return mine.on_duplicate_key_update(held_until=later)
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(HOLDS)
    # Only a later end rewrites the row: the same order evaluated again leaves it as it is.
    return stmt.on_conflict_do_update(
        index_elements=["iss", "jti", "patron_id"],
        set_={"held_until": stmt.excluded.held_until},
        where=HOLDS.c.held_until < stmt.excluded.held_until,
    )


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


async def list_holds(
    engine: AsyncEngine,
    *,
    now: dt.datetime,
    after: int = 0,
    limit: int = 500,
    patron_id: str | None = None,
) -> list[dict[str, Any]]:
    """Holds in force at ``now`` (``held_until`` after it), in id order, after id ``after``."""
    cond = [HOLDS.c.id > after, HOLDS.c.held_until > now]
    if patron_id is not None:
        cond.append(HOLDS.c.patron_id == patron_id)
    query = select(HOLDS).where(and_(*cond)).order_by(HOLDS.c.id).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    today = now.astimezone(dt.UTC).date()
    return [
        _sealed_json(row) if sealed(row.sealed_until, today) else _hold_json(row) for row in rows
    ]


def sealed(sealed_until: dt.date | None, today: dt.date) -> bool:
    """Whether a court still forbids telling anyone about the order (``nondisclosure_until``)."""
    return sealed_until is not None and today < sealed_until


def _sealed_json(row: Any) -> dict[str, Any]:
    """A hold of a sealed order: whose records to keep, and until when; nothing else.

    Nothing that names the order (its id, categories, period, when it was presented) is
    shown to any role while the seal lasts; a purge job keeps every record of the patron
    until ``held_until``.
    """
    return {
        "id": int(row.id),
        "patron_id": row.patron_id,
        "sealed": True,
        "categories": None,
        "from": None,
        "to": None,
        "held_until": _as_utc(row.held_until).isoformat(),
        "order": None,
        "created_at": None,
    }


def _hold_json(row: Any) -> dict[str, Any]:
    return {
        "sealed": False,
        "id": int(row.id),
        "patron_id": row.patron_id,
        "categories": json.loads(row.categories),
        "from": row.period_from.isoformat(),
        "to": row.period_to.isoformat(),
        "held_until": _as_utc(row.held_until).isoformat(),
        "order": {"iss": row.iss, "jti": row.jti},
        "created_at": _as_utc(row.created_at).isoformat(),
    }


async def sealed_orders(
    engine: AsyncEngine, orders: Iterable[tuple[str, str]], today: dt.date
) -> set[tuple[str, str]]:
    """Which of ``orders`` (iss, jti) a court has sealed until after ``today``.

    Known from the holds of verified orders (each carries its order's ``nondisclosure_until``).
    """
    wanted = sorted(set(orders))
    if not wanted:
        return set()
    query = (
        select(HOLDS.c.iss, HOLDS.c.jti)
        .where(and_(tuple_(HOLDS.c.iss, HOLDS.c.jti).in_(wanted), HOLDS.c.sealed_until > today))
        .distinct()
    )
    async with engine.connect() as conn:
        return {(str(iss), str(jti)) for iss, jti in await conn.execute(query)}
