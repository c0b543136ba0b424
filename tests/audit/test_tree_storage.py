"""The Merkle tree is written with the events, on every append path, and verified with them."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import service, tree
from app.audit.writer import AuditWriter, Entry
from tests.audit import rfc9162
from tests.audit.forge import rebuild_tree, rewrite_event


def entry(i: int) -> Entry:
    return Entry(kind="evaluation", effect="deny", body={"v": 1, "n": i, "reasons": []})


async def bodies(engine: AsyncEngine) -> list[bytes]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT body FROM audit_events ORDER BY seq"))
        return [r.body.encode() for r in rows]


async def tamper(engine: AsyncEngine, sql: str, **params: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def test_tree_matches_the_rfc_tree_of_the_events(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    results = []
    for burst in (1, 7, 30, 5, 1):
        results += await asyncio.gather(*(writer.append(entry(i)) for i in range(burst)))
    data = await bodies(engine)
    assert len(data) == 44
    by_seq = {r.seq: r for r in results}
    for seq, body in enumerate(data, start=1):
        # The receipt: the leaf hash of the event at index seq - 1.
        assert by_seq[seq].leaf == tree.leaf_hash(body)
    async with engine.connect() as conn:
        for n in (1, 2, 3, 8, 31, 44):
            assert await tree.root_at(conn, n) == rfc9162.mth(data[:n])
        assert await tree.inclusion_proof(conn, 5, 44) == rfc9162.path(5, data)
        assert await tree.consistency_proof(conn, 13, 44) == rfc9162.proof(13, data)
    assert (await service.verify_chain(engine)).ok


async def test_two_writers_on_one_database_build_one_tree(engine: AsyncEngine) -> None:
    # Two replicas: each must read the tree's right edge afresh when the other appended.
    a, b = AuditWriter(engine), AuditWriter(engine)
    a.start()
    b.start()
    try:
        for _ in range(4):
            await asyncio.gather(
                *(a.append(entry(i)) for i in range(9)), *(b.append(entry(i)) for i in range(5))
            )
    finally:
        await a.close()
        await b.close()
    data = await bodies(engine)
    async with engine.connect() as conn:
        assert await tree.root_at(conn, len(data)) == rfc9162.mth(data)
    assert (await service.verify_chain(engine)).ok


async def test_only_every_fourth_level_is_stored(engine: AsyncEngine, writer: AuditWriter) -> None:
    await asyncio.gather(*(writer.append(entry(i)) for i in range(40)))
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT level, idx FROM audit_tree ORDER BY 1, 2"))).all()
    # Leaves are the events themselves; nodes of 16 events are stored (two complete ones).
    assert [tuple(r) for r in rows] == [(4, 0), (4, 1)]


async def test_a_tampered_tree_node_is_caught(engine: AsyncEngine, writer: AuditWriter) -> None:
    await asyncio.gather(*(writer.append(entry(i)) for i in range(40)))
    await tamper(engine, "UPDATE audit_tree SET hash = :h WHERE level = 4 AND idx = 1", h="ab" * 32)
    verdict = await service.verify_chain(engine)
    assert not verdict.ok
    assert verdict.first_bad_seq == 17  # the node covers leaves 16..31, events 17..32
    assert "Merkle tree" in (verdict.problem or "")


async def test_a_missing_or_extra_node_is_caught(engine: AsyncEngine, writer: AuditWriter) -> None:
    await asyncio.gather(*(writer.append(entry(i)) for i in range(40)))
    await tamper(engine, "DELETE FROM audit_tree WHERE level = 4 AND idx = 1")
    assert (await service.verify_chain(engine)).first_bad_seq == 17
    await tamper(engine, "INSERT INTO audit_tree (level, idx, hash) VALUES (4, 1, :h)", h="1" * 64)
    assert (await service.verify_chain(engine)).first_bad_seq == 17
    await rebuild_tree(engine)
    assert (await service.verify_chain(engine)).ok
    for level, idx in ((0, 3), (4, 2), (5, 0)):  # a level never stored, beyond the log
        await tamper(
            engine,
            "INSERT INTO audit_tree (level, idx, hash) VALUES (:l, :i, :h)",
            l=level,
            i=idx,
            h="1" * 64,
        )
        verdict = await service.verify_chain(engine)
        assert not verdict.ok
        assert "beyond the log" in (verdict.problem or "")
        await rebuild_tree(engine)


async def test_a_tampered_event_is_caught_by_the_tree_even_with_the_chain_recomputed(
    engine: AsyncEngine, writer: AuditWriter
) -> None:
    await asyncio.gather(*(writer.append(entry(i)) for i in range(20)))
    await rewrite_event(engine, 3, lambda b: b.replace('"n":', '"n":7'))
    verdict = await service.verify_chain(engine)
    # Caught by the stored node over events 1..16, which event 3 no longer hashes into.
    assert (verdict.ok, verdict.first_bad_seq) == (False, 1)
    assert "Merkle tree" in (verdict.problem or "")
