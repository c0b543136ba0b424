"""Safe to operate (issue 16): incremental verification state.

- ``audit_verified``: how far the chain has been verified from genesis, and the lease that
  makes ``GET /v1/audit/verify`` single-flight across replicas.
- ``notices.patron_id`` and ``legal_holds.patron_id`` widened to 512 characters: they hold the
  patron id sealed (app/core/atrest.py). The sealing itself needs the instance's key, which
  the database does not hold: ``bulwark db upgrade`` and every start seal what is left clear.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
SEALED_LENGTH = 512


def upgrade() -> None:
    verified = op.create_table(
        "audit_verified",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verified")),
    )
    # Nothing verified yet: the first verification after the upgrade starts at genesis.
    op.bulk_insert(verified, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    for table in ("notices", "legal_holds"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "patron_id",
                existing_type=sa.String(length=128),
                type_=sa.String(length=SEALED_LENGTH),
                existing_nullable=False,
            )


def downgrade() -> None:
    # Sealed ids stay sealed (a downgrade cannot open them without the key).
    for table in ("notices", "legal_holds"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "patron_id",
                existing_type=sa.String(length=SEALED_LENGTH),
                type_=sa.String(length=128),
                existing_nullable=False,
            )
    op.drop_table("audit_verified")
