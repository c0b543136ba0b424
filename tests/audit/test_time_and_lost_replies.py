"""Every stored column of an event under the chain, and an append that is never applied twice.

- A rewritten ``ts`` (which moves an event between report periods) fails verification,
  through ``GET /v1/audit/verify``.
- A log written by the previous release (schema 0004) upgrades in place: its events, its
  signed checkpoint, its order uses and revocations all stand, and the new time check holds
  for its events too.
- ``bulwark_append`` commits but its reply is lost: the writer recognises the batch under the
  lock and answers from it, instead of deciding it again on top of the new head.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import fastpath, service
from app.audit.chain import GENESIS_HASH, canonical, chain_hash
from app.audit.figures import read_figures
from app.audit.writer import AuditWriter, Entry, UseClaim
from app.core import migrations
from app.core.database import create_engine
from app.holds.service import list_holds
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime
from tests.audit.conftest import engine_with_a_client
from tests.conftest import auth
from tests.databases import postgres_database
from tests.disclosures.test_disclosures import request

ORDER = ("https://courts.example/a", "order-1")


async def test_a_rewritten_event_time_fails_verification(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Any, runtime: Runtime
) -> None:
    token = order_token(patrons=[DEMO_PATRON], categories=["circulation"], max_uses=3)
    body = request(token)
    for _ in range(3):
        r = await client.post("/v1/disclosures", json=body, headers=auth(keys["requester"]))
        assert r.status_code == 200, r.text
    seq = r.json()["audit"]["seq"] - 1
    assert (await service.verify_chain(runtime.state)).ok
    # Move the middle permit into another half-year, as someone reshaping a report would.
    async with runtime.state.begin() as conn:
        await conn.execute(
            sa.update(service.EVENTS)
            .where(service.EVENTS.c.seq == seq)
            .values(ts=dt.datetime(2025, 12, 31, 12, tzinfo=dt.UTC))
        )
    # The API's run (incremental, first from genesis here) and the CLI's full recomputation.
    bad = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert (bad.json()["ok"], bad.json()["first_bad_seq"]) == (False, seq)
    full = await service.verify_chain(runtime.state)
    assert (full.ok, full.first_bad_seq) == (False, seq)


# ------------------------------------------------------------------ upgrade in place


@pytest.fixture
async def old_engine(state_url: str) -> AsyncIterator[AsyncEngine]:
    """A state database at the previous release's schema (0004)."""
    await asyncio.to_thread(migrations.upgrade, state_url, "0004")
    engine = create_engine(state_url)
    yield engine
    await engine.dispose()


async def write_as_the_previous_release(engine: AsyncEngine, n: int) -> None:
    """Events, the head and an order's uses as the 0004 writer wrote them (raw SQL)."""
    prev = GENESIS_HASH
    base = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    async with engine.begin() as conn:
        for seq in range(1, n + 1):
            ts = base + dt.timedelta(days=seq)
            order = {
                "iss": ORDER[0],
                "jti": ORDER[1],
                "case": "c",
                "verified": True,
                "instrument": "national_security_letter" if seq % 2 else "court_order",
            }
            body = canonical(
                {
                    "v": 1,
                    "seq": seq,
                    "ts": ts.isoformat(timespec="microseconds"),
                    "kind": "disclosure",
                    "effect": "permit",
                    "order": order,
                    "reasons": [],
                    "released": {"counts": {"circulation": seq}},
                }
            )
            digest = chain_hash(prev, body)
            await conn.execute(
                sa.insert(service.EVENTS).values(
                    seq=seq,
                    ts=ts,
                    kind="disclosure",
                    effect="permit",
                    body=body,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        await conn.execute(
            sa.update(service.HEAD).where(service.HEAD.c.id == 1).values(seq=n, hash=prev)
        )
        await conn.execute(
            text(
                "INSERT INTO order_uses (iss, jti, uses, max_uses, first_used_at, last_used_at) "
                "VALUES (:i, :j, :n, 5, :t, :t)"
            ),
            {"i": ORDER[0], "j": ORDER[1], "n": n, "t": base},
        )


async def test_a_log_of_the_previous_release_upgrades_in_place(
    state_url: str, old_engine: AsyncEngine
) -> None:
    await write_as_the_previous_release(old_engine, 4)
    async with old_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO order_revocations (iss, jti, reason, revoked_by, revoked_at) "
                "VALUES ('https://courts.example/a', 'order-2', 'vacated', 'admin', :t)"
            ),
            {"t": dt.datetime(2026, 11, 30, tzinfo=dt.UTC)},
        )
        await conn.execute(
            text(
                "INSERT INTO legal_holds (iss, jti, patron_id, categories, period_from, "
                "period_to, held_until, created_at) VALUES (:i, :j, 'P000123', "
                "'[\"circulation\"]', :f, :to, :u, :c)"
            ),
            {
                "i": ORDER[0],
                "j": ORDER[1],
                "f": dt.date(2026, 1, 1),
                "to": dt.date(2026, 6, 30),
                "u": dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
                "c": dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
            },
        )
    key = ec.generate_private_key(ec.SECP256R1())
    saved = await service.make_checkpoint(old_engine, key)

    await asyncio.to_thread(migrations.upgrade, state_url)
    assert (await service.verify_chain(old_engine)).ok
    assert (await service.verify_since(old_engine, saved, key.public_key())).ok
    async with old_engine.connect() as conn:
        uses = (await conn.execute(text("SELECT uses FROM order_uses"))).scalar_one()
        revoked = (await conn.execute(text("SELECT jti FROM order_revocations"))).scalar_one()
    assert (uses, revoked) == (4, "order-2")
    # A hold placed by the previous release is kept, and shown as before (it has no seal).
    (hold,) = await list_holds(old_engine, now=dt.datetime.now(dt.UTC))
    assert (hold["sealed"], hold["order"]["jti"], hold["patron_id"]) == (False, ORDER[1], "P000123")
    # The report's figures were counted from the log as it stood.
    async with old_engine.connect() as conn:
        figures = await read_figures(conn, dt.date(2026, 1, 1), dt.date(2026, 6, 30))
    assert figures[("court_order", "permitted", "")] == 2
    assert figures[("national_security_letter", "released", "circulation")] == 1 + 3
    # The old events' times are under the check too.
    async with old_engine.begin() as conn:
        await conn.execute(
            sa.update(service.EVENTS)
            .where(service.EVENTS.c.seq == 2)
            .values(ts=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        )
    verdict = await service.verify_chain(old_engine)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)


# ------------------------------------------------------------------ the lost reply


@pytest.fixture
def pg_engine_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.mark.postgres
async def test_a_batch_whose_reply_was_lost_is_not_applied_twice(
    pg_engine_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await engine_with_a_client(pg_engine_url)
    writer = AuditWriter(engine)
    writer.start()
    real = fastpath.append

    async def commit_then_lose_the_reply(connection: Any, document: str) -> str:
        await real(connection, document)  # committed: bulwark_append is its own transaction
        raise ConnectionResetError("connection lost before the reply")

    claim = UseClaim(*ORDER, max_uses=2)

    def permit(n: int) -> Entry:
        return Entry(
            kind="disclosure",
            effect="permit",
            body={"v": 1, "n": n},
            caller_id=1,
            order=ORDER,
            use=claim,
        )

    try:
        first = await writer.append(permit(1))  # locked: learns the head
        monkeypatch.setattr(fastpath, "append", commit_then_lose_the_reply)
        second = await writer.append(permit(2))
        monkeypatch.undo()
        assert (first.seq, second.seq) == (1, 2)
        assert second.refused == () and second.uses == 2
        async with engine.connect() as conn:
            events = (await conn.execute(text("SELECT count(*) FROM audit_events"))).scalar_one()
            uses = (await conn.execute(text("SELECT uses FROM order_uses"))).scalar_one()
        assert (events, uses) == (2, 2)
        # The writer's view is right too: the next append chains after the batch, once.
        third = await writer.append(permit(3))
        assert third.seq == 3 and "order.exhausted" in third.refused
        assert (await service.verify_chain(engine)).ok
    finally:
        await writer.close()
        await engine.dispose()
