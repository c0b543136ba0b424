"""Patron notices: created with each permitted disclosure, given when the court allows.

A notice is written in the audit transaction of the permit it reports
(:attr:`app.audit.writer.Entry.notice`): a disclosure never stands without its notice. It may
be given from ``not_before`` on: the day of the disclosure, or the order's
``nondisclosure_until`` when the court forbade telling the patron until then. Before that date
no route returns it or confirms it exists, to the notification system and auditors alike.

The notice holds the patron id (the notification system must reach the patron), so it lives in
the state database and never in an audit body; delivery is audited by notice id only.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit.writer import AuditWriter, Entry
from app.core.calendar import UTC_CLOCK, LibraryClock
from app.core.models import table_of, utcnow
from app.core.problems import AuthError, BulwarkError
from app.core.reasons import Reason
from app.notices.models import Notice, NoticeRow
from app.orders.models import OrderClaims
from app.records.obligations import Period

NOTICES = table_of(Notice)


class NoticeNotFound(BulwarkError):
    """No notice with that id may be given today (none, or not yet due: the same answer)."""

    def __init__(self) -> None:
        super().__init__(Reason.REQUEST_NOT_FOUND, "No such notice.")


def not_before(claims: OrderClaims, disclosed_on: dt.date) -> dt.date:
    """The first day a notice may be given: the disclosure's, or the court's seal's end."""
    return claims.nondisclosure_until or disclosed_on


def notice_row(
    *,
    disclosure_id: str,
    patron_id: str,
    claims: OrderClaims,
    categories: list[str],
    period: Period,
    now: dt.datetime,
    clock: LibraryClock = UTC_CLOCK,
) -> NoticeRow:
    """The notice row of one permitted disclosure, written with the permit's audit event."""
    return NoticeRow(
        id=str(uuid.uuid4()),
        disclosure_id=disclosure_id,
        patron_id=patron_id,
        iss=claims.iss,
        jti=claims.jti,
        case=claims.case,
        court=claims.court,
        instrument=claims.instrument.value,
        categories=json.dumps(categories),
        period_from=period.start,
        period_to=period.end,
        not_before=not_before(claims, clock.date_of(now)),
        created_at=now,
    )


def _given(today: dt.date) -> Any:
    # The one guard every reading route shares: a notice does not exist before its date.
    return NOTICES.c.not_before <= today


async def due_notices(engine: AsyncEngine, *, today: dt.date, limit: int) -> list[dict[str, Any]]:
    """Notices that may be given today and have not been delivered, oldest first."""
    query = (
        select(NOTICES)
        .where(and_(_given(today), NOTICES.c.delivered_at.is_(None)))
        .order_by(NOTICES.c.not_before, NOTICES.c.created_at, NOTICES.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [notice_json(row) for row in rows]


async def list_notices(
    engine: AsyncEngine, *, today: dt.date, after: dt.datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Every notice that may be given today, delivered or not, by creation time (auditors)."""
    cond = [_given(today)]
    if after is not None:
        cond.append(NOTICES.c.created_at > after)
    query = select(NOTICES).where(and_(*cond)).order_by(NOTICES.c.created_at).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [notice_json(row) for row in rows]


def notice_json(row: Any) -> dict[str, Any]:
    """A notice as the API answers it: what was released, when, under which case."""
    return {
        "id": row.id,
        "patron_id": row.patron_id,
        "disclosure_id": row.disclosure_id,
        "disclosed_at": row.created_at.isoformat(),
        "case": row.case,
        "court": row.court,
        "instrument": row.instrument,
        "categories": json.loads(row.categories),
        "from": row.period_from.isoformat(),
        "to": row.period_to.isoformat(),
        "not_before": row.not_before.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of marking a notice delivered."""

    notice_id: str
    delivered_at: dt.datetime
    already_delivered: bool
    audit_seq: int | None


@dataclass(frozen=True, slots=True)
class NoticeDelivered:
    """An entry's change (app/audit/entries.py): notice ``notice_id`` was given."""

    notice_id: str
    delivered_at: dt.datetime
    delivered_by: str

    async def apply(self, conn: AsyncConnection) -> None:
        """Mark the notice delivered, unless it already is (idempotent)."""
        await conn.execute(
            update(NOTICES)
            .where(and_(NOTICES.c.id == self.notice_id, NOTICES.c.delivered_at.is_(None)))
            .values(delivered_at=self.delivered_at, delivered_by=self.delivered_by)
        )


async def mark_delivered(
    engine: AsyncEngine,
    audit: AuditWriter,
    notice_id: str,
    *,
    caller_name: str,
    caller_id: int,
    today: dt.date,
) -> Delivery:
    """Record that the notification system gave notice ``notice_id``; audited, idempotent.

    Raises:
        NoticeNotFound: no such notice, or it may not be given before a later date.
        AuthError: the caller's key was revoked before the event was written.
    """
    async with engine.connect() as conn:
        query = select(NOTICES.c.delivered_at, NOTICES.c.disclosure_id).where(
            and_(NOTICES.c.id == notice_id, _given(today))
        )
        row = (await conn.execute(query)).first()
    if row is None:
        raise NoticeNotFound()
    if row.delivered_at is not None:
        return Delivery(notice_id, row.delivered_at, True, None)
    delivered_at = utcnow()

    appended = await audit.append(
        Entry(
            kind="notice",
            effect="info",
            # The notice and disclosure ids only: the patron is in neither.
            body={
                "v": 1,
                "action": "notice.delivered",
                "caller": caller_name,
                "notice_id": notice_id,
                "disclosure_id": row.disclosure_id,
            },
            caller_id=caller_id,
            change=NoticeDelivered(notice_id, delivered_at, caller_name),
        )
    )
    if Reason.CALLER_UNAUTHENTICATED in appended.refused:
        raise AuthError()
    return Delivery(notice_id, delivered_at, False, appended.seq)
