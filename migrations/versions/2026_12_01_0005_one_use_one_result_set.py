"""One use, one result set; the report's figures kept as events are appended.

- ``disclosure_continuations`` keeps the unreleased pages of a use, encrypted, under the
  SHA-256 of a random handle (app/disclosures/cursor.py).
- ``report_figures``: the transparency report's figures per UTC day (app/audit/figures.py),
  filled from the existing log here, then written with every batch of events.
- ``legal_holds.sealed_until``: the order's ``nondisclosure_until``; until then a hold shows
  only the patron and its end (app/holds/service.py).
- PostgreSQL: ``bulwark_append`` as in 0004, plus one block that adds the batch's figures
  (``batch->'figures'``, absent or empty: nothing) in the same statement, and holds written
  with their ``sealed_until``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:40:00.000000
"""

import datetime as dt
import importlib
import json
import os
from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.audit.figures import tally
from app.core.calendar import zone

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIOUS = importlib.import_module("migrations.versions.2026_11_28_0004_single_statement_append")

FIGURES_BLOCK = """
    -- The report's figures of this batch's events (0005), added in the same statement.
    IF jsonb_array_length(COALESCE(batch->'figures', '[]'::jsonb)) > 0 THEN
        INSERT INTO report_figures (day, line, measure, item, count)
        SELECT f.day, f.line, f.measure, f.item, f.count
        FROM jsonb_to_recordset(batch->'figures')
            AS f(day date, line text, measure text, item text, count bigint)
        ON CONFLICT (day, line, measure, item)
            DO UPDATE SET count = report_figures.count + EXCLUDED.count;
    END IF;

    UPDATE audit_head
    SET seq = (batch->'next'->>0)::bigint"""
ANCHOR = """
    UPDATE audit_head
    SET seq = (batch->'next'->>0)::bigint"""
#: The holds block of 0004, each part with ``sealed_until`` added.
HOLD_EDITS = (
    (
        """period_from, period_to,
                                 held_until, created_at)""",
        """period_from, period_to,
                                 held_until, created_at, sealed_until)""",
    ),
    (
        """               h.held_until, batch_now
""",
        """               h.held_until, batch_now, h.sealed_until
""",
    ),
    (
        """            period_to date, held_until timestamptz)""",
        """            period_to date, held_until timestamptz, sealed_until date)""",
    ),
)


def function() -> str:
    """0004's ``bulwark_append`` with this revision's two additions."""
    text = PREVIOUS.FUNCTION
    for old, new in ((ANCHOR, FIGURES_BLOCK), *HOLD_EDITS):
        if text.count(old) != 1:
            raise RuntimeError("bulwark_append is not the one revision 0004 made")
        text = text.replace(old, new)
    return text


def upgrade() -> None:
    op.create_table(
        "disclosure_continuations",
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("disclosure_id", sa.String(length=36), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=False),
        sa.Column("iss", sa.String(length=256), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("request", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("handle", name=op.f("pk_disclosure_continuations")),
    )
    with op.batch_alter_table("disclosure_continuations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_disclosure_continuations_expires_at", ["expires_at"], unique=False
        )
    figures = op.create_table(
        "report_figures",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("line", sa.String(length=32), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "line", "measure", "item", name=op.f("pk_report_figures")),
    )
    _fill_figures(figures)
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_until", sa.Date(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function())


def _fill_figures(figures: sa.Table) -> None:
    """The figures of the log as it stands, counted as the writer counts them from now on."""
    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("seq", sa.BigInteger()),
        sa.column("ts", sa.DateTime(timezone=True)),
        sa.column("kind", sa.String()),
        sa.column("effect", sa.String()),
        sa.column("body", sa.Text()),
    )
    counted: Counter[tuple[dt.date, str, str, str]] = Counter()
    # Figures are kept per day of the library's calendar; `bulwark db upgrade` runs with the
    # deployment's BULWARK_TIMEZONE in its environment (UTC when unset, as Bulwark's default).
    tz = zone(os.environ.get("BULWARK_TIMEZONE") or "UTC")
    after = 0
    while True:
        rows = bind.execute(
            sa.select(events.c.seq, events.c.ts, events.c.kind, events.c.effect, events.c.body)
            .where(events.c.seq > after)
            .order_by(events.c.seq)
            .limit(5000)
        ).all()
        if not rows:
            break
        after = int(rows[-1].seq)
        counted.update(
            tally(
                (
                    (_utc(r.ts), str(r.kind), str(r.effect), json.loads(r.body))
                    for r in rows
                    if r.kind in ("disclosure", "disclosure_page")
                ),
                tz,
            )
        )
    if counted:
        op.bulk_insert(
            figures,
            [
                {"day": day, "line": row, "measure": measure, "item": item, "count": n}
                for (day, row, measure, item), n in counted.items()
            ],
        )


def _utc(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):  # SQLite through a plain column type
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PREVIOUS.FUNCTION)
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_column("sealed_until")
    op.drop_table("report_figures")
    with op.batch_alter_table("disclosure_continuations", schema=None) as batch_op:
        batch_op.drop_index("ix_disclosure_continuations_expires_at")
    op.drop_table("disclosure_continuations")
