"""Safe to operate (issue 16): incremental verification state.

- ``audit_verified``: how far the chain has been verified from genesis, and the lease that
  makes ``GET /v1/audit/verify`` single-flight across replicas.
- ``notices.patron_id`` and ``legal_holds.patron_id`` widened to 512 characters: they hold the
  patron id sealed (app/core/atrest.py). The sealing itself needs the instance's key, which
  the database does not hold: ``bulwark db upgrade`` and every start seal what is left clear.
- PostgreSQL: the role ``bulwark_app`` (NOLOGIN; the replicas log in as a member of it) may
  read and write Bulwark's tables but only SELECT and INSERT audit events: no UPDATE, DELETE
  or TRUNCATE on the log. readyz (in production) refuses a connection that could. Created
  only where the migrating role may create roles; otherwise the operator creates it
  (docs/deploy.md) and runs the upgrade again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
SEALED_LENGTH = 512

GRANTS = """
DO $grants$
BEGIN
    BEGIN
        CREATE ROLE bulwark_app NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;  -- another database made it
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role bulwark_app; create it and upgrade again';
            RETURN;
    END;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO bulwark_app', current_database());
    GRANT USAGE ON SCHEMA public TO bulwark_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bulwark_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bulwark_app;
    -- The log is append-only for the service: it may read and add events, never change them.
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM bulwark_app;
    -- The schema's revision is the migrations' business.
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM bulwark_app;
    -- Tables later migrations create (by this same migrating role) are granted likewise.
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bulwark_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO bulwark_app;
    GRANT EXECUTE ON FUNCTION bulwark_append(jsonb) TO bulwark_app;
END
$grants$
"""

REVOKES = """
DO $revokes$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_app') THEN
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM bulwark_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE USAGE, SELECT ON SEQUENCES FROM bulwark_app;
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM bulwark_app;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM bulwark_app;
        REVOKE ALL ON SCHEMA public FROM bulwark_app;
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM bulwark_app', current_database());
    END IF;
END
$revokes$
"""


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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GRANTS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REVOKES)
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
