"""The audit log's Merkle tree, its signed checkpoints and witnesses' cosignatures.

``audit_tree`` holds the hash of every complete subtree of the RFC 9162 tree whose leaves are
the audit events' canonical bodies (app/audit/tree.py); the events already in the log are
hashed into it here, in order, a page at a time. Old ECDSA checkpoints are untouched: the
chain and its head do not change.

PostgreSQL: ``bulwark_append_tree(jsonb)`` wraps migration 0004's ``bulwark_append`` (left
as it is): it calls it and, only when that wrote the batch (under the head's lock, in the
same statement and so the same transaction), inserts the batch's new tree nodes from the
document's ``tree`` array.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 00:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.audit.tree import Frontier, leaf_hash
from app.core.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 5000

FUNCTION = """
CREATE OR REPLACE FUNCTION bulwark_append_tree(batch jsonb) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    outcome text;
BEGIN
    outcome := bulwark_append(batch);
    IF outcome = 'ok' AND jsonb_array_length(COALESCE(batch->'tree', '[]'::jsonb)) > 0 THEN
        INSERT INTO audit_tree (level, idx, hash)
        SELECT t.level, t.idx, t.hash
        FROM jsonb_to_recordset(batch->'tree') AS t(level smallint, idx bigint, hash text);
    END IF;
    RETURN outcome;
END
$fn$
"""


def upgrade() -> None:
    tree = op.create_table(
        "audit_tree",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_cosignatures",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_audit_cosignatures")),
    )
    _hash_existing_events(tree)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def _hash_existing_events(tree: sa.Table) -> None:
    """Every event already logged becomes a leaf, in sequence order (keyset pages)."""
    bind = op.get_bind()
    frontier, after = Frontier.empty(), 0
    while True:
        rows = bind.execute(
            sa.text("SELECT seq, body FROM audit_events WHERE seq > :after ORDER BY seq LIMIT :n"),
            {"after": after, "n": PAGE},
        ).all()
        if not rows:
            return
        nodes = []
        for seq, body in rows:
            if int(seq) != frontier.size + 1:
                raise RuntimeError(
                    f"audit_events has a gap before seq {seq}: run `bulwark audit verify` and "
                    "restore the log before upgrading"
                )
            for level, idx, digest in frontier.append(leaf_hash(body)):
                nodes.append({"level": level, "idx": idx, "hash": digest.hex()})
        bind.execute(sa.insert(tree), nodes)
        after = int(rows[-1][0])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bulwark_append_tree(jsonb)")
    op.drop_table("audit_cosignatures")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree")
