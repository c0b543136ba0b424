"""The audit writer's batch path: one read of the facts per batch, and its held connection.

The writer keeps one connection from batch to batch (a pool checkout would ping the server
first). A connection the server dropped while idle must be replaced before anything is
written; facts decided in memory must still see what earlier entries of the same batch did.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.audit import service
from app.audit.entries import Revoke
from app.audit.writer import AuditWriter, Entry, UseClaim, _Pending
from app.core import migrations
from app.core.database import create_engine
from app.core.reasons import Reason
from tests.databases import PG_HOST, PG_PORT, PG_USER


def entry(i: int, **kw: object) -> Entry:
    return Entry(kind="disclosure", effect="permit", body={"v": 1, "n": i}, **kw)  # type: ignore[arg-type]


# Only a server database can drop a connection.
@pytest.mark.parametrize(
    "state_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_connection_dropped_while_idle_is_replaced_before_writing(
    state_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, state_url)
    pg_engine = create_engine(state_url)
    writer = AuditWriter(pg_engine)
    writer.start()
    try:
        first = await writer.append(entry(1))
        database = pg_engine.url.database
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
        try:
            # What a server restart or a failover does to an idle connection.
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()
        assert killed >= 1
        second = await writer.append(entry(2))
        verdict = await service.verify_chain(pg_engine)
    finally:
        await writer.close()
        await pg_engine.dispose()
    assert second.seq == first.seq + 1
    assert verdict.ok and verdict.events == 2


async def test_a_revocation_earlier_in_a_batch_refuses_later_permits(state_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, state_url)
    engine = create_engine(state_url)
    writer = AuditWriter(engine)
    order = ("iss", "revoked-in-batch")

    revocation = Entry(
        kind="revocation",
        effect="info",
        body={"v": 1, "order": {"iss": order[0], "jti": order[1]}},
        change=Revoke(*order, reason="r", revoked_by="t"),
    )
    claim = UseClaim(*order, max_uses=5)
    loop = asyncio.get_running_loop()
    batch = [
        _Pending(e, loop.create_future())
        for e in (entry(1, order=order, use=claim), revocation, entry(2, order=order, use=claim))
    ]
    try:
        before, _, after = await writer._commit(batch)  # one batch, exactly these three
    finally:
        await writer.close()
        await engine.dispose()
    assert before.refused == () and before.uses == 1
    assert after.refused == (Reason.ORDER_REVOKED,)
    assert after.seq == before.seq + 2
