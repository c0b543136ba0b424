"""State made by the previous release (schema 0004) upgrades to 0008 with everything kept:
events verify, a checkpoint signed before still verifies, uses and revocations stand, and the
first start binds the instance secrets it already had."""

from __future__ import annotations

import asyncio

from sqlalchemy import insert, select, text

from app.admin.revocations import REVOCATIONS, USES
from app.audit import service as audit_service
from app.core import migrations
from app.core.config import Settings
from app.core.database import create_engine
from app.core.instance import BINDING
from app.core.models import utcnow
from app.core.secrets import checkpoint_key, ensure_instance_secrets
from app.runtime import build_runtime
from tests.previous_release import write_events


async def test_state_of_0004_upgrades_with_everything_kept(settings: Settings) -> None:
    await asyncio.to_thread(migrations.upgrade, settings.state_url, "0004")
    ensure_instance_secrets(settings)
    engine = create_engine(settings.state_url)
    court = "https://courts.example/il-cook"
    now = utcnow()
    try:
        # What 0004 wrote for a client added and an order revoked (raw SQL: the current writer
        # also writes tables 0004 does not have), an order's uses, and a checkpoint.
        async with engine.begin() as conn:
            await write_events(
                conn,
                [
                    (now, "client", "permit", {"client": "old-admin", "role": "admin"}),
                    (now, "revocation", "permit", {"order": {"iss": court, "jti": "old-order"}}),
                ],
            )
            await conn.execute(
                text(
                    "INSERT INTO clients (name, role, key_hash, key_prefix, created_at) "
                    "VALUES ('old-admin', 'admin', :h, 'bwk_old', :t)"
                ),
                {"h": "ab" * 32, "t": now},
            )
            await conn.execute(
                insert(REVOCATIONS).values(
                    iss=court, jti="old-order", reason="vacated", revoked_by="cli", revoked_at=now
                )
            )
            await conn.execute(
                insert(USES).values(
                    iss=court,
                    jti="used-order",
                    uses=1,
                    max_uses=3,
                    first_used_at=now,
                    last_used_at=now,
                )
            )
        signed = await audit_service.make_checkpoint(engine, checkpoint_key(settings))
    finally:
        await engine.dispose()

    await asyncio.to_thread(migrations.upgrade, settings.state_url)
    runtime = await build_runtime(settings)  # the first start binds the existing secrets
    try:
        public = runtime.checkpoint_key.public_key()
        verdict = await audit_service.verify_since(runtime.state, signed, public)
        assert verdict.ok, verdict
        assert verdict.events == 2
        async with runtime.state.connect() as conn:
            revoked = (await conn.execute(select(REVOCATIONS.c.jti))).scalars().all()
            uses = (await conn.execute(text("SELECT uses, max_uses FROM order_uses"))).all()
            bound = (await conn.execute(select(BINDING))).all()
        assert revoked == ["old-order"]
        assert [tuple(u) for u in uses] == [(1, 3)]
        assert len(bound) == 1
    finally:
        await runtime.close()
