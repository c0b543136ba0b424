"""The audit chain: appends stay linear under concurrency, and every kind of tampering is caught."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import service
from app.audit.chain import GENESIS_HASH, canonical, chain_hash
from app.audit.writer import AuditWriter, Entry, UseClaim
from app.core.reasons import Reason
from tests.audit.forge import rewrite_event


def entry(i: int, **kw: object) -> Entry:
    return Entry(kind="evaluation", effect="deny", body={"v": 1, "n": i, "reasons": []}, **kw)  # type: ignore[arg-type]


async def fill(writer: AuditWriter, n: int) -> None:
    await asyncio.gather(*(writer.append(entry(i)) for i in range(n)))


async def test_concurrent_appends_form_one_linear_chain(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    results = await asyncio.gather(*(writer.append(entry(i)) for i in range(300)))
    assert sorted(r.seq for r in results) == list(range(1, 301))
    assert len({r.hash for r in results}) == 300
    verdict = await service.verify_chain(engine)
    assert verdict.ok, verdict
    assert verdict.events == 300
    assert verdict.head_seq == 300


async def test_hash_covers_canonical_body_and_previous_hash(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    first = await writer.append(entry(1))
    second = await writer.append(entry(2))
    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT seq, body, hash FROM audit_events ORDER BY seq"))
        ).all()
    assert rows[0].hash == chain_hash(GENESIS_HASH, rows[0].body) == first.hash
    assert rows[1].hash == chain_hash(first.hash, rows[1].body) == second.hash
    assert rows[0].body == canonical(__import__("json").loads(rows[0].body))


async def test_exactly_k_uses_under_concurrency(engine: AsyncEngine, writer: AuditWriter) -> None:
    for k in (1, 3):
        claim = UseClaim("iss", f"order-{k}", k)
        results = await asyncio.gather(
            *(writer.append(entry(i, use=claim, order=("iss", f"order-{k}"))) for i in range(24))
        )
        stood = [r for r in results if not r.refused]
        assert len(stood) == k
        assert all(r.refused == (Reason.ORDER_EXHAUSTED,) for r in results if r.refused)
    assert (await service.verify_chain(engine)).ok


async def test_refused_permit_is_recorded_as_deny(engine: AsyncEngine, writer: AuditWriter) -> None:
    claim = UseClaim("iss", "once", 1)
    await writer.append(entry(1, use=claim))
    refused = await writer.append(
        Entry(kind="disclosure", effect="permit", body={"v": 1, "released": {"n": 3}}, use=claim)
    )
    events = await service.list_events(engine, after=refused.seq - 1, limit=1)
    assert events[0]["effect"] == "deny"
    assert events[0]["body"]["reasons"] == ["order.exhausted"]
    assert events[0]["body"]["released"] is None


async def tamper(engine: AsyncEngine, sql: str, **params: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def test_changed_field_is_detected(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 10)
    await tamper(
        engine,
        "UPDATE audit_events SET body = REPLACE(body, :old, :new) WHERE seq = 4",
        old='"n":',
        new='"n":1',
    )
    verdict = await service.verify_chain(engine)
    assert not verdict.ok
    assert verdict.first_bad_seq == 4


async def test_changed_indexed_column_is_detected(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 5)
    await tamper(engine, "UPDATE audit_events SET effect = 'permit' WHERE seq = 2")
    verdict = await service.verify_chain(engine)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)


async def test_deleted_event_is_detected(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 10)
    await tamper(engine, "DELETE FROM audit_events WHERE seq = 6")
    verdict = await service.verify_chain(engine)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 6)


async def test_inserted_event_is_detected(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 10)
    # Make room at 5 and forge an event there, hashed correctly on its own.
    await tamper(engine, "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 5")
    await tamper(engine, "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1005")
    async with engine.connect() as conn:
        prev = (
            await conn.execute(text("SELECT hash FROM audit_events WHERE seq = 4"))
        ).scalar_one()
    # Its time column agrees with its body, so only the chain after it can give it away.
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stamp = when.isoformat(timespec="microseconds")
    body = canonical({"v": 1, "seq": 5, "kind": "evaluation", "effect": "permit", "ts": stamp})
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(service.EVENTS).values(
                seq=5,
                ts=when,
                kind="evaluation",
                effect="permit",
                body=body,
                prev_hash=prev,
                hash=chain_hash(prev, body),
            )
        )
    verdict = await service.verify_chain(engine)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 6)


async def test_swapped_events_are_detected(engine: AsyncEngine, writer: AuditWriter) -> None:
    await fill(writer, 10)
    await tamper(engine, "UPDATE audit_events SET seq = -3 WHERE seq = 3")
    await tamper(engine, "UPDATE audit_events SET seq = 3 WHERE seq = 4")
    await tamper(engine, "UPDATE audit_events SET seq = 4 WHERE seq = -3")
    verdict = await service.verify_chain(engine)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)


async def test_truncated_tail_with_head_adjusted_is_caught_by_checkpoint(
    engine: AsyncEngine, writer: AuditWriter, tmp_path: object
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    await fill(writer, 10)
    saved = await service.make_checkpoint(engine, key)
    assert saved["checkpoint"]["seq"] == 10
    # A careful administrator: drop the last three events and fix the head to match.
    await tamper(engine, "DELETE FROM audit_events WHERE seq > 7")
    await tamper(
        engine,
        "UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit_events WHERE seq = 7)",
    )
    assert (await service.verify_chain(engine)).ok  # the chain alone cannot see it
    verdict = await service.verify_since(engine, saved, key.public_key())
    assert not verdict.ok
    assert verdict.first_bad_seq == 8


async def test_rewritten_history_with_recomputed_hashes_is_caught_by_checkpoint(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    await fill(writer, 6)
    saved = await service.make_checkpoint(engine, key)
    # Rewrite event 2 and recompute every hash after it, head included.
    await rewrite_event(engine, 2, lambda b: b.replace('"n":', '"n":9'))
    assert (await service.verify_chain(engine)).ok
    verdict = await service.verify_since(engine, saved, key.public_key())
    assert not verdict.ok


async def test_checkpoint_with_forged_signature_is_rejected(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    ours, theirs = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    await fill(writer, 3)
    forged = await service.make_checkpoint(engine, theirs)
    with pytest.raises(service.CheckpointInvalid):
        await service.verify_since(engine, forged, ours.public_key())


async def test_audit_unwritable_fails_every_waiting_append(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    from app.core.problems import AuditUnavailable

    await fill(writer, 2)
    await make_unwritable(engine)
    with pytest.raises(AuditUnavailable):
        await writer.append(entry(99, use=UseClaim("iss", "x", 1)))
    await make_writable(engine)
    ok = await writer.append(entry(100, use=UseClaim("iss", "x", 1)))
    assert ok.refused == ()  # the use was not consumed by the failed append
    assert (await service.verify_chain(engine)).ok


async def make_unwritable(engine: AsyncEngine) -> None:
    """Refuse every insert into audit_events, as a revoked permission would."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(
                text(
                    "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit blocked'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE FUNCTION audit_blocked() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'audit blocked'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION audit_blocked()"
                )
            )


async def make_writable(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER audit_blocked"))
        else:
            await conn.execute(text("DROP TRIGGER audit_blocked ON audit_events"))
            await conn.execute(text("DROP FUNCTION audit_blocked()"))


async def test_an_entry_the_database_refuses_fails_alone(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    """One poisoned entry in a batch must not take the other requests' events down with it."""
    from app.core.problems import AuditUnavailable

    class Poison:
        async def apply(self, conn: object) -> None:
            raise ValueError("refused by the database")

    results = await asyncio.gather(
        *(writer.append(entry(i)) for i in range(5)),
        writer.append(Entry(kind="client", effect="info", body={"v": 1}, change=Poison())),
        *(writer.append(entry(i)) for i in range(5, 10)),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], AuditUnavailable)
    assert sorted(r.seq for r in results if not isinstance(r, BaseException)) == list(range(1, 11))
    assert (await service.verify_chain(engine)).ok


async def test_a_request_that_stops_waiting_still_has_its_event_written(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    waiting = asyncio.create_task(writer.append(entry(1)))
    await asyncio.sleep(0)  # queued, and waiting for its commit
    waiting.cancel()  # its client went away
    with pytest.raises(asyncio.CancelledError):
        await waiting
    after = await writer.append(entry(2))
    assert after.seq == 2  # the first request's event took seq 1 all the same
    verdict = await service.verify_chain(engine)
    assert verdict.ok
    assert verdict.events == 2
