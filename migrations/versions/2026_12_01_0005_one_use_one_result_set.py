"""One use, one result set: server-side continuations of a disclosure.

``disclosure_continuations`` keeps the unreleased pages of a use, encrypted, under the SHA-256
of a random handle (app/disclosures/cursor.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def downgrade() -> None:
    with op.batch_alter_table("disclosure_continuations", schema=None) as batch_op:
        batch_op.drop_index("ix_disclosure_continuations_expires_at")
    op.drop_table("disclosure_continuations")
