"""The single-statement append on PostgreSQL, and its fall-back to the locked append.

A writer that knows the head appends a batch in one statement (``bulwark_append``). Each part
of what it assumed is tested stale on its own: the head moved (another replica appended), a
use was consumed, the order was revoked, the caller's key was revoked behind its back. Each
must write nothing in one statement and be decided again under the lock, with the outcome the
locked append alone would give.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import service
from app.audit.writer import Appended, AuditWriter, Entry, UseClaim
from app.core.reasons import Reason
from app.disclosures.models import DisclosureRow
from app.holds.service import HoldRow
from app.notices.models import NoticeRow
from tests.audit.conftest import engine_with_a_client
from tests.databases import postgres_database

pytestmark = pytest.mark.postgres

ORDER = ("https://courts.example/a", "order-1")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await engine_with_a_client(pg_url)
    yield engine
    await engine.dispose()


def permit(n: int, *, max_uses: int = 5, with_rows: bool = False) -> Entry:
    rows: dict[str, Any] = {}
    if with_rows:
        disclosure_id = f"00000000-0000-0000-0000-{n:012d}"
        rows = {
            "disclosure": DisclosureRow(
                **{
                    "id": disclosure_id,
                    "iss": ORDER[0],
                    "jti": ORDER[1],
                    "caller": "ils",
                    "patron_pseudonym": "k1:" + "a" * 64,
                    "categories": '["circulation"]',
                    "period_from": "2026-01-01",
                    "period_to": "2026-06-30",
                    "record_count": 3,
                }
            ),
            "notice": NoticeRow(
                **{
                    "id": f"10000000-0000-0000-0000-{n:012d}",
                    "disclosure_id": disclosure_id,
                    "patron_id": "P000123",
                    "iss": ORDER[0],
                    "jti": ORDER[1],
                    "case": "2026-CV-1",
                    "court": "Court",
                    "instrument": "court_order",
                    "categories": '["circulation"]',
                    "period_from": dt.date(2026, 1, 1),
                    "period_to": dt.date(2026, 6, 30),
                    "not_before": dt.date(2026, 11, 1),
                    "created_at": dt.datetime.now(dt.UTC),
                }
            ),
            "holds": (
                HoldRow(
                    **{
                        "iss": ORDER[0],
                        "jti": ORDER[1],
                        "patron_id": "P000123",
                        "categories": '["circulation"]',
                        "period_from": dt.date(2026, 1, 1),
                        "period_to": dt.date(2026, 6, 30),
                        "held_until": dt.datetime(2027, 1, n, tzinfo=dt.UTC),
                    }
                ),
            ),
            "holds_regardless": True,
        }
    return Entry(
        kind="disclosure",
        effect="permit",
        body={"v": 1, "n": n},
        caller_id=1,
        order=ORDER,
        use=UseClaim(*ORDER, max_uses=max_uses),
        **rows,
    )


async def scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql(sql)).scalar_one()


async def test_once_the_head_is_known_a_batch_is_one_statement_with_every_row(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    first = await writer.append(permit(1, with_rows=True))
    second = await writer.append(permit(2, with_rows=True))
    third = await writer.append(permit(3, with_rows=True))
    assert writer.batches == {"locked": 1, "single_statement": 2}
    assert [first.uses, second.uses, third.uses] == [1, 2, 3]
    assert await scalar(engine, "SELECT uses FROM order_uses") == 3
    assert await scalar(engine, "SELECT count(*) FROM disclosures") == 3
    assert await scalar(engine, "SELECT count(*) FROM notices") == 3
    assert await scalar(engine, "SELECT max(audit_seq) FROM disclosures") == third.seq
    # One hold per (order, patron), keeping the latest end of the three.
    assert await scalar(engine, "SELECT count(*) FROM legal_holds") == 1
    held = await scalar(engine, "SELECT held_until FROM legal_holds")
    assert held == dt.datetime(2027, 1, 3, tzinfo=dt.UTC)
    assert await scalar(engine, "SELECT seq FROM audit_head") == third.seq
    # The bodies stored are the very text that was hashed: the chain verifies.
    verdict = await service.verify_chain(engine)
    assert verdict.ok and verdict.events == 3
    body = json.loads(
        await scalar(engine, f"SELECT body FROM audit_events WHERE seq = {third.seq}")
    )
    assert body["n"] == 3 and body["seq"] == third.seq


async def test_a_head_moved_by_another_replica_is_appended_under_the_lock(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await writer.append(permit(1))
    other = AuditWriter(engine)  # a second replica on the same database
    other.start()
    try:
        theirs = await other.append(permit(2))
    finally:
        await other.close()
    mine = await writer.append(permit(3))
    assert mine.seq == theirs.seq + 1
    assert mine.uses == 3  # the other replica's use counted
    assert writer.batches == {"locked": 2, "single_statement": 0}
    assert (await service.verify_chain(engine)).ok


async def stale_then_append(
    engine: AsyncEngine, writer: AuditWriter, behind_its_back: str, **kw: Any
) -> Appended:
    """One permit the writer remembers, a change it cannot know of, then a second permit."""
    await writer.append(permit(1, **kw))
    async with engine.begin() as conn:
        await conn.exec_driver_sql(behind_its_back)
    appended = await writer.append(permit(2, with_rows=True, **kw))
    assert writer.batches["single_statement"] == 0  # the guess was stale: under the lock
    return appended


async def test_a_use_consumed_behind_the_writers_back_is_seen_under_the_lock(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    refused = await stale_then_append(engine, writer, "UPDATE order_uses SET uses = 2", max_uses=2)
    assert refused.refused == (Reason.ORDER_EXHAUSTED,)
    assert await scalar(engine, "SELECT uses FROM order_uses") == 2


async def test_an_order_revoked_behind_the_writers_back_is_refused_under_the_lock(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    revoke = (
        "INSERT INTO order_revocations (iss, jti, reason, revoked_by, revoked_at) "
        f"VALUES ('{ORDER[0]}', '{ORDER[1]}', 'r', 'counsel', now())"
    )
    refused = await stale_then_append(engine, writer, revoke)
    assert refused.refused == (Reason.ORDER_REVOKED,)
    assert await scalar(engine, "SELECT uses FROM order_uses") == 1
    assert await scalar(engine, "SELECT count(*) FROM disclosures") == 0
    assert await scalar(engine, "SELECT count(*) FROM notices") == 0
    # The hold stands regardless: the order was evaluated.
    assert await scalar(engine, "SELECT count(*) FROM legal_holds") == 1


async def test_a_caller_revoked_behind_the_writers_back_is_refused_under_the_lock(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    refused = await stale_then_append(engine, writer, "UPDATE clients SET revoked_at = now()")
    assert refused.refused == (Reason.CALLER_UNAUTHENTICATED,)
    assert await scalar(engine, "SELECT uses FROM order_uses") == 1
    assert await scalar(engine, "SELECT count(*) FROM disclosures") == 0


async def test_an_exhausted_order_known_to_the_writer_is_refused_in_one_statement(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await writer.append(permit(1, max_uses=1))
    refused = await writer.append(permit(2, max_uses=1))
    assert refused.refused == (Reason.ORDER_EXHAUSTED,)
    assert writer.batches == {"locked": 1, "single_statement": 1}
    assert await scalar(engine, "SELECT uses FROM order_uses") == 1
    body = json.loads(
        await scalar(engine, f"SELECT body FROM audit_events WHERE seq = {refused.seq}")
    )
    assert body["effect"] == "deny" and body["reasons"] == ["order.exhausted"]


async def test_a_failing_statement_falls_back_and_fails_closed(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    from app.core.problems import AuditUnavailable

    await writer.append(permit(1))
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN RAISE EXCEPTION 'audit table is read-only'; END$$"
        )
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    with pytest.raises(AuditUnavailable):
        await writer.append(permit(2))
    assert await scalar(engine, "SELECT uses FROM order_uses") == 1
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP TRIGGER refuse ON audit_events")
    after = await writer.append(permit(3))
    assert after.uses == 2
    assert (await service.verify_chain(engine)).ok
