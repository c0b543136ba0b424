"""Upgrading in place from 0004: events logged by the previous release become the tree's first
leaves, in order; the chain, old ECDSA checkpoints, order uses and revocations are kept."""

from __future__ import annotations

import asyncio
import datetime as dt

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from app.audit import service, tlog, tree
from app.audit.chain import GENESIS_HASH, canonical, chain_hash
from app.audit.notes import log_signer
from app.audit.writer import AuditWriter, Entry
from app.core import migrations
from app.core.database import create_engine
from app.core.secrets import new_ed25519_pem
from tests.audit import rfc9162

EVENTS = 300


async def test_upgrade_from_0004_builds_the_tree_and_keeps_everything(state_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, state_url, "0004")
    engine = create_engine(state_url)
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    bodies = []
    try:
        # What the previous release wrote: chained events, the head, a use, a revocation.
        async with engine.begin() as conn:
            prev = GENESIS_HASH
            rows = []
            for seq in range(1, EVENTS + 1):
                body = canonical(
                    {
                        "v": 1,
                        "seq": seq,
                        "ts": now.isoformat(),
                        "kind": "evaluation",
                        "effect": "deny",
                        "reasons": ["scope.patron"],
                    }
                )
                h = chain_hash(prev, body)
                rows.append(
                    {
                        "seq": seq,
                        "ts": now,
                        "kind": "evaluation",
                        "effect": "deny",
                        "body": body,
                        "prev": prev,
                        "hash": h,
                    }
                )
                bodies.append(body.encode())
                prev = h
            await conn.execute(
                text(
                    "INSERT INTO audit_events (seq, ts, kind, effect, body, prev_hash, hash) "
                    "VALUES (:seq, :ts, :kind, :effect, :body, :prev, :hash)"
                ),
                rows,
            )
            await conn.execute(
                text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": EVENTS, "h": prev}
            )
            await conn.execute(
                text(
                    "INSERT INTO order_uses (iss, jti, uses, max_uses, first_used_at, last_used_at)"
                    " VALUES ('iss', 'o1', 1, 3, :t, :t)"
                ),
                {"t": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO order_revocations (iss, jti, reason, revoked_by, revoked_at) "
                    "VALUES ('iss', 'o2', 'vacated', 'cli', :t)"
                ),
                {"t": now},
            )
        key = ec.generate_private_key(ec.SECP256R1())
        old_checkpoint = await service.make_checkpoint(engine, key)

        await asyncio.to_thread(migrations.upgrade, state_url)

        verdict = await service.verify_chain(engine)
        assert verdict.ok, verdict
        assert (await service.verify_since(engine, old_checkpoint, key.public_key())).ok
        async with engine.connect() as conn:
            assert await tree.root_at(conn, EVENTS) == rfc9162.mth(bodies)
            uses = (await conn.execute(text("SELECT uses FROM order_uses"))).scalar_one()
            revoked = (await conn.execute(text("SELECT jti FROM order_revocations"))).scalar_one()
        assert (uses, revoked) == (1, "o2")

        # The new release appends after the migrated leaves, and signs checkpoints over them.
        writer = AuditWriter(engine)
        writer.start()
        try:
            appended = await writer.append(
                Entry(kind="evaluation", effect="deny", body={"v": 1, "after": True})
            )
        finally:
            await writer.close()
        assert appended.seq == EVENTS + 1
        async with engine.connect() as conn:
            body = (
                await conn.execute(
                    text("SELECT body FROM audit_events WHERE seq = :s"), {"s": appended.seq}
                )
            ).scalar_one()
            assert await tree.root_at(conn, EVENTS + 1) == rfc9162.mth([*bodies, body.encode()])
        assert (await service.verify_chain(engine)).ok
        from cryptography.hazmat.primitives import serialization

        ed = serialization.load_pem_private_key(new_ed25519_pem(), password=None)
        config = tlog.LogConfig(log_signer("library.example/bulwark", ed))  # type: ignore[arg-type]
        signed = await tlog.sign_checkpoint(engine, config)
        assert signed.size == EVENTS + 1
    finally:
        await engine.dispose()
