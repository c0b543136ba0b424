"""PostgreSQL: ``bulwark_append(jsonb)``, a whole audit batch in one statement.

The audit writer (``app/audit/writer.py``) decides a batch in memory from what it last knew
(the chain's head, the orders' use counts) and hands the result to this function, which runs
as one statement and so commits, durably, in one round trip. Under the head's row lock it
checks that what the writer assumed still holds: the head is where the writer left it, every
caller in the batch is active, no order in it is revoked, and each order's use count is the
one the writer started from. If any of that fails it writes nothing and names what was stale;
the writer then appends the batch the long way, re-reading every fact under the lock.

SQLite and other databases have no such function; their batches always take the long way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 00:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION bulwark_append(batch jsonb) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    head_seq bigint;
    head_hash text;
    batch_now timestamptz := (batch->>'now')::timestamptz;
BEGIN
    -- The lock every appender of every replica takes first: the chain stays linear.
    UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash INTO head_seq, head_hash;
    IF head_seq IS DISTINCT FROM (batch->'head'->>0)::bigint
       OR head_hash IS DISTINCT FROM batch->'head'->>1 THEN
        RETURN 'head';
    END IF;
    IF EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(batch->'callers') AS c(id)
        WHERE NOT EXISTS (
            SELECT 1 FROM clients
            WHERE clients.id = c.id::integer AND clients.revoked_at IS NULL))
    THEN
        RETURN 'caller';
    END IF;
    IF EXISTS (
        SELECT 1 FROM jsonb_to_recordset(batch->'orders') AS o(iss text, jti text)
        JOIN order_revocations r ON r.iss = o.iss AND r.jti = o.jti)
    THEN
        RETURN 'revoked';
    END IF;
    IF EXISTS (
        SELECT 1 FROM jsonb_to_recordset(batch->'uses') AS u(iss text, jti text, uses integer)
        LEFT JOIN order_uses ou ON ou.iss = u.iss AND ou.jti = u.jti
        WHERE ou.uses IS DISTINCT FROM u.uses)
    THEN
        RETURN 'uses';
    END IF;

    -- Each table is written only when the batch has rows for it (a refusal writes one event).
    -- Absolute counts are safe: every writer of order_uses holds the head's lock.
    IF jsonb_array_length(batch->'writes') > 0 THEN
        INSERT INTO order_uses (iss, jti, uses, max_uses, first_used_at, last_used_at)
        SELECT w.iss, w.jti, w.uses, w.max_uses, batch_now, batch_now
        FROM jsonb_to_recordset(batch->'writes')
            AS w(iss text, jti text, uses integer, max_uses integer)
        ON CONFLICT (iss, jti) DO UPDATE
            SET uses = EXCLUDED.uses, last_used_at = EXCLUDED.last_used_at;
    END IF;

    IF jsonb_array_length(batch->'events') > 0 THEN
        INSERT INTO audit_events (seq, ts, kind, effect, body, prev_hash, hash)
        SELECT e.seq, e.ts, e.kind, e.effect, e.body, e.prev_hash, e.hash
        FROM jsonb_to_recordset(batch->'events') AS e(
            seq bigint, ts timestamptz, kind text, effect text, body text, prev_hash text,
            hash text)
        ORDER BY e.seq;
    END IF;

    IF jsonb_array_length(batch->'disclosures') > 0 THEN
        INSERT INTO disclosures (id, audit_seq, iss, jti, caller, patron_pseudonym, categories,
                                 period_from, period_to, record_count, created_at)
        SELECT d.id, d.audit_seq, d.iss, d.jti, d.caller, d.patron_pseudonym, d.categories,
               d.period_from, d.period_to, d.record_count, d.created_at
        FROM jsonb_to_recordset(batch->'disclosures') AS d(
            id text, audit_seq bigint, iss text, jti text, caller text, patron_pseudonym text,
            categories text, period_from text, period_to text, record_count integer,
            created_at timestamptz);
    END IF;

    -- A patron already held under the order keeps the later end (an equal one is left as is).
    IF jsonb_array_length(batch->'holds') > 0 THEN
        INSERT INTO legal_holds (iss, jti, patron_id, categories, period_from, period_to,
                                 held_until, created_at)
        SELECT h.iss, h.jti, h.patron_id, h.categories, h.period_from, h.period_to,
               h.held_until, batch_now
        FROM jsonb_to_recordset(batch->'holds') AS h(
            iss text, jti text, patron_id text, categories text, period_from date,
            period_to date, held_until timestamptz)
        ON CONFLICT (iss, jti, patron_id) DO UPDATE
            SET held_until = EXCLUDED.held_until
            WHERE legal_holds.held_until < EXCLUDED.held_until;
    END IF;

    IF jsonb_array_length(batch->'notices') > 0 THEN
        INSERT INTO notices (id, disclosure_id, patron_id, iss, jti, "case", court, instrument,
                             categories, period_from, period_to, not_before, created_at)
        SELECT n.id, n.disclosure_id, n.patron_id, n.iss, n.jti, n."case", n.court, n.instrument,
               n.categories, n.period_from, n.period_to, n.not_before, n.created_at
        FROM jsonb_to_recordset(batch->'notices') AS n(
            id text, disclosure_id text, patron_id text, iss text, jti text, "case" text,
            court text, instrument text, categories text, period_from date, period_to date,
            not_before date, created_at timestamptz);
    END IF;

    UPDATE audit_head
    SET seq = (batch->'next'->>0)::bigint, hash = batch->'next'->>1
    WHERE id = 1;
    RETURN 'ok';
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bulwark_append(jsonb)")
