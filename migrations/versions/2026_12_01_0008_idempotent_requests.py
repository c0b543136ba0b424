"""Idempotent requests (one row per caller and Idempotency-Key, the answer sealed), and the
instance binding (the fingerprints of the secrets the state database was made with).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 00:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=False),
        sa.Column("request_mac", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "answer",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("lookup", name=op.f("pk_idempotent_requests")),
    )
    op.create_index(
        "ix_idempotent_requests_expires_at", "idempotent_requests", ["expires_at"], unique=False
    )
    op.create_table(
        "instance_binding",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data_dir", sa.String(length=1024), nullable=False),
        sa.Column("pseudonym_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_key_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_binding")),
    )


def downgrade() -> None:
    op.drop_table("instance_binding")
    op.drop_index("ix_idempotent_requests_expires_at", table_name="idempotent_requests")
    op.drop_table("idempotent_requests")
