"""State made by the previous release (schema 0004) upgrades to 0008 with everything kept:
events verify, a checkpoint signed before still verifies, uses and revocations stand, and the
first start binds the instance secrets it already had."""

from __future__ import annotations

import asyncio

from sqlalchemy import insert, select, text

from app.audit import service as audit_service
from app.audit.writer import AuditWriter
from app.callers.models import Role
from app.callers.service import add_client
from app.core import migrations
from app.core.config import Settings
from app.core.database import create_engine
from app.core.instance import BINDING
from app.core.models import utcnow
from app.core.secrets import checkpoint_key, ensure_instance_secrets
from app.orders.service import REVOCATIONS, USES, revoke_order
from app.runtime import build_runtime


async def test_state_of_0004_upgrades_with_everything_kept(settings: Settings) -> None:
    await asyncio.to_thread(migrations.upgrade, settings.state_url, "0004")
    ensure_instance_secrets(settings)
    engine = create_engine(settings.state_url)
    writer = AuditWriter(engine)
    writer.start()
    try:
        await add_client(engine, "old-admin", Role.ADMIN, audit=writer)
        await revoke_order(
            writer,
            engine,
            iss="https://courts.example/il-cook",
            jti="old-order",
            reason="vacated",
            by="cli",
            caller_id=None,
            pre_emptive=True,
        )
        async with engine.begin() as conn:
            await conn.execute(
                insert(USES).values(
                    iss="https://courts.example/il-cook",
                    jti="used-order",
                    uses=1,
                    max_uses=3,
                    first_used_at=utcnow(),
                    last_used_at=utcnow(),
                )
            )
        signed = await audit_service.make_checkpoint(engine, checkpoint_key(settings))
    finally:
        await writer.close()
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
