"""``GET /v1/audit/verify`` is bounded (issue 16): incremental from the last verified event,
one run at a time per deployment, stopped when nobody waits."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import incremental
from app.audit.chain import GENESIS_HASH, canonical, chain_hash
from app.audit.incremental import IncrementalVerifier
from app.audit.writer import AuditWriter, Entry
from app.runtime import Runtime
from tests.conftest import auth


def entry(i: int) -> Entry:
    return Entry(kind="evaluation", effect="deny", body={"v": 1, "n": i, "reasons": []})


async def fill(writer: AuditWriter, n: int) -> None:
    await asyncio.gather(*(writer.append(entry(i)) for i in range(n)))


async def verified_upto(engine: AsyncEngine) -> tuple[int, str | None]:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT seq, lease_owner FROM audit_verified"))).one()
    return int(row.seq), row.lease_owner


async def test_second_verification_starts_where_the_first_ended(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await fill(writer, 50)
    verifier = IncrementalVerifier(engine, page=7)
    first = await verifier.verify()
    assert first.ok and first.events == 50 and first.head_seq == 50
    assert await verified_upto(engine) == (50, None)  # remembered; the lease given back
    await fill(writer, 5)
    # Event 10 is rewritten after it was verified: the incremental run does not re-read it
    # (that is the CLI's full recomputation), which shows it starts at 50, not at genesis.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET effect = 'permit' WHERE seq = 10"))
    second = await verifier.verify()
    assert second.ok and second.events == 55
    assert await verified_upto(engine) == (55, None)


async def test_concurrent_callers_share_one_run(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 40)
    verifier = IncrementalVerifier(engine, page=5)
    results = await asyncio.gather(*(verifier.verify() for _ in range(12)))
    assert verifier.runs == 1
    assert all(r.ok and r.events == 40 for r in results)


async def test_run_stops_when_nobody_waits(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 60)
    verifier = IncrementalVerifier(engine, page=1)
    waiter = asyncio.create_task(verifier.verify())
    await asyncio.sleep(0.05)
    assert verifier._task is not None
    run = verifier._task
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(asyncio.CancelledError):
        await run
    seq, owner = await verified_upto(engine)
    assert seq < 60  # stopped before the end ...
    assert owner is None  # ... and the lease given back for the next caller
    again = await verifier.verify()  # ... which goes on from the saved progress
    assert again.ok and again.events == 60


async def test_one_replica_verifies_at_a_time(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 30)
    a, b = IncrementalVerifier(engine, page=1), IncrementalVerifier(engine, page=1)
    holder: list[str] = []
    original = a._save

    async def slow_save(seq: int, digest: str) -> None:
        _, owner = await verified_upto(engine)
        holder.append(owner or "")
        await original(seq, digest)
        await asyncio.sleep(0.01)

    a._save = slow_save  # type: ignore[method-assign]
    first = asyncio.create_task(a.verify())
    await asyncio.sleep(0.05)
    second = await b.verify()  # waits for a's lease, then has little left to do
    assert (await first).ok and second.ok and second.events == 30
    assert set(holder) == {a._owner}  # b never took the lease while a held it


async def test_expired_lease_of_a_dead_replica_is_taken_over(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await fill(writer, 3)
    async with engine.begin() as conn:
        await conn.execute(
            update(incremental.VERIFIED).values(
                lease_owner="dead", lease_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
            )
        )
    assert (await IncrementalVerifier(engine).verify()).ok


async def test_tampering_after_the_verified_point_is_found(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await fill(writer, 10)
    verifier = IncrementalVerifier(engine)
    assert (await verifier.verify()).ok
    await fill(writer, 10)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET body = body || ' ' WHERE seq = 15"))
    verdict = await verifier.verify()
    assert not verdict.ok and verdict.first_bad_seq == 15
    assert (await verified_upto(engine))[0] == 14


async def test_rewriting_the_verified_point_is_found(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await fill(writer, 10)
    verifier = IncrementalVerifier(engine)
    assert (await verifier.verify()).ok
    # A rewrite of the last verified event, with every later hash recomputed, is seen.
    body = canonical({"v": 1, "seq": 10, "forged": True})
    async with engine.begin() as conn:
        prev = (await conn.execute(text("SELECT hash FROM audit_events WHERE seq = 9"))).scalar()
        new = chain_hash(str(prev), body)
        await conn.execute(
            text("UPDATE audit_events SET body = :b, hash = :h WHERE seq = 10"),
            {"b": body, "h": new},
        )
        await conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": new})
    verdict = await verifier.verify()
    assert not verdict.ok and verdict.first_bad_seq == 10


async def test_the_route_is_incremental_and_single_flight(
    client: httpx.AsyncClient, keys: dict[str, str], runtime: Runtime
) -> None:
    answers = await asyncio.gather(
        *(client.get("/v1/audit/verify", headers=auth(keys["auditor"])) for _ in range(8))
    )
    assert all(r.status_code == 200 and r.json()["ok"] for r in answers)
    verifier = incremental.verifier_of(runtime)
    assert verifier.runs <= 2  # the eight shared (at most) one run each side of a race
    assert (await verified_upto(runtime.state))[0] == answers[0].json()["events"]
    assert answers[0].json()["head"]["hash"] != GENESIS_HASH
