"""What an audit entry writes besides its event: typed rows and changes its domain owns.

The audit package knows entries, not the tables of the packages that write them
(docs/architecture.md, "Layers"). A domain hands the writer:

- rows (:class:`Row`): a disclosure, a patron's notice, the legal holds an order places.
  Each row's class names its :class:`RowSink`, which the owning domain defines: the list it
  travels in through the single-statement append (``app/audit/fastpath.py`` serialises
  :meth:`Row.values` to JSON) and how the locked append writes a batch of them;
- a change (:class:`Change`): a write made in the append's transaction only when the entry
  stands (a client key, a notice delivered, a continuation). A revocation is a change of its
  own type, :class:`Revoke`, which the writer recognises: later entries of the same batch
  must see the order revoked.

Order uses and revocations are the writer's own re-checks (an order not revoked, a use
left), so their tables (``app/orders/models.py``, below the audit package) are read here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.models import table_of, utcnow
from app.orders.models import Revocation

REVOCATIONS = table_of(Revocation)

#: The rows the single-statement append takes (``bulwark_append``, app/audit/fastpath.py),
#: in the order the locked append writes them too.
FASTPATH_SINKS = ("disclosures", "holds", "notices")


class RowSink(Protocol):
    """How the rows of one table are written with their events."""

    #: The rows' list in the single-statement append's document (:data:`FASTPATH_SINKS`).
    name: str

    def merged(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows one batch writes (holds keep one row per order and patron)."""
        ...

    async def write(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` (already :meth:`merged`) in the append's transaction."""
        ...


class Row(Protocol):
    """A row an entry writes when it stands (or, for holds, regardless)."""

    @property
    def sink(self) -> RowSink:
        """How the rows of this row's table are written (a class attribute of the row)."""
        ...

    def values(self, seq: int, now: dt.datetime) -> dict[str, Any]:
        """The row's columns, given its event's ``seq`` and time."""
        ...


class Change(Protocol):
    """A write an entry makes in the append's transaction, only when the entry stands."""

    async def apply(self, conn: AsyncConnection) -> None:
        """Make the change on ``conn`` (inside the append's transaction)."""
        ...


@dataclass(slots=True)
class Revoke:
    """Revoke the order ``(iss, jti)``; revoking twice leaves the first revocation standing.

    ``already`` tells, once applied, whether the order was revoked before.
    """

    iss: str
    jti: str
    reason: str
    revoked_by: str
    already: bool = False

    @property
    def order(self) -> tuple[str, str]:
        """The revoked order's ``(iss, jti)``."""
        return (self.iss, self.jti)

    async def apply(self, conn: AsyncConnection) -> None:
        """Insert the revocation unless one exists."""
        key = and_(REVOCATIONS.c.iss == self.iss, REVOCATIONS.c.jti == self.jti)
        self.already = (
            await conn.execute(select(REVOCATIONS.c.jti).where(key))
        ).first() is not None
        if not self.already:
            await conn.execute(
                insert(REVOCATIONS).values(
                    iss=self.iss,
                    jti=self.jti,
                    reason=self.reason,
                    revoked_by=self.revoked_by,
                    revoked_at=utcnow(),
                )
            )


def by_sink(rows: Sequence[tuple[RowSink, dict[str, Any]]]) -> dict[str, tuple[RowSink, list[Any]]]:
    """Rows grouped by their sink's name, merged, in :data:`FASTPATH_SINKS` order first."""
    grouped: dict[str, tuple[RowSink, list[dict[str, Any]]]] = {}
    for sink, values in rows:
        grouped.setdefault(sink.name, (sink, []))[1].append(values)
    order = [n for n in FASTPATH_SINKS if n in grouped] + sorted(
        n for n in grouped if n not in FASTPATH_SINKS
    )
    return {n: (grouped[n][0], grouped[n][0].merged(grouped[n][1])) for n in order}
