"""Benchmark: the audit log's Merkle tree (app/audit/tree.py). Prints figures; asserts nothing.

    python bench/tlog.py proofs --leaves 10000000           # proofs at 10 M events (SQLite)
    python bench/tlog.py proofs --leaves 10000000 --url postgresql://postgres@127.0.0.1/x
    python bench/tlog.py verify --events 200000              # chain + tree verification
    python bench/tlog.py append --url postgresql://postgres@127.0.0.1/x --events 20000

``proofs`` stores the tree of N leaves exactly as the writer would (every complete subtree,
keyed by level and index; real SHA-256 of synthetic bodies) and times inclusion and
consistency proofs through the same code the API uses: one indexed query for the few dozen
rows a proof needs, then hashing.

``verify`` times ``verify_chain`` (chain and tree) and the tree's share of it.

``append`` times the audit writer with 64 concurrent appenders, with the tree and with the
tree's hook replaced by a no-op, alternately (A/B/A/B) to share the machine's noise: the
difference is what the tree adds per event.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.audit import tree
from app.core import migrations
from app.core.database import create_engine

BENCH_DIR = str(Path(__file__).resolve().parent)

# --------------------------------------------------------------------------- proofs


def _rows(leaves: int) -> Any:
    """Every stored row of the tree of ``leaves`` synthetic events, in append order."""
    frontier = tree.Frontier.empty()
    for i in range(leaves):
        body = b'{"kind":"evaluation","seq":%d}' % (i + 1)
        yield from frontier.append(tree.leaf_hash(body))


def build_tree(url: str, leaves: int) -> None:
    """Bulk-load the tree's rows (SQLite with sqlite3, PostgreSQL with COPY)."""
    started = time.perf_counter()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = sqlite3.connect(parsed.database or "")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("DELETE FROM audit_tree")
        batch: list[tuple[int, int, str]] = []
        for level, idx, digest in _rows(leaves):
            batch.append((level, idx, digest.hex()))
            if len(batch) == 200_000:
                db.executemany("INSERT INTO audit_tree VALUES (?, ?, ?)", batch)
                batch.clear()
        db.executemany("INSERT INTO audit_tree VALUES (?, ?, ?)", batch)
        db.execute("UPDATE audit_head SET seq = ? WHERE id = 1", (leaves,))
        db.commit()
        db.close()
    else:
        import psycopg  # type: ignore[import-not-found]

        with psycopg.connect(url.replace("+asyncpg", "").replace("+psycopg", "")) as db:
            db.execute("DELETE FROM audit_tree")
            with db.cursor().copy("COPY audit_tree (level, idx, hash) FROM STDIN") as copy:
                for level, idx, digest in _rows(leaves):
                    copy.write_row((level, idx, digest.hex()))
            db.execute("UPDATE audit_head SET seq = %s WHERE id = 1", (leaves,))
            db.execute("ANALYZE audit_tree")
    print(f"stored the tree of {leaves:,} leaves in {time.perf_counter() - started:.0f} s")


async def time_proofs(url: str, leaves: int, samples: int) -> None:
    engine = create_engine(url)
    rng = random.Random(7)
    try:
        async with engine.connect() as conn:
            root = await tree.root_at(conn, leaves)
            for kind in ("inclusion", "consistency"):
                times, rows = [], []
                for _ in range(samples):
                    if kind == "inclusion":
                        i = rng.randrange(leaves)
                        ranges = tree.inclusion_ranges(i, leaves)
                        started = time.perf_counter()
                        proof = await tree.inclusion_proof(conn, i, leaves)
                    else:
                        i = rng.randrange(1, leaves)
                        ranges = tree.consistency_ranges(i, leaves)
                        started = time.perf_counter()
                        proof = await tree.consistency_proof(conn, i, leaves)
                    times.append((time.perf_counter() - started) * 1000)
                    rows.append(len(tree.needed_keys(ranges)))
                    assert len(proof) <= 2 * leaves.bit_length()
                times.sort()
                print(
                    f"{kind} proof at {leaves:,} leaves: median {statistics.median(times):.2f} ms, "
                    f"p99 {times[int(len(times) * 0.99) - 1]:.2f} ms, max {times[-1]:.2f} ms; "
                    f"rows read: median {statistics.median(rows):.0f}, max {max(rows)}"
                )
            print(f"root {root.hex()[:16]}…")
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- verify


async def time_verify(url: str, events: int) -> None:
    sys.path.insert(0, BENCH_DIR)
    import audit_verify  # the chain benchmark's builder, which now also builds the tree

    from app.audit.service import verify_chain
    from app.audit.tree import TreeChecker

    await audit_verify.build(url, events)
    engine = create_engine(url)

    async def timed(coro: Any) -> tuple[Any, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = await coro
        return result, time.perf_counter() - wall, time.process_time() - cpu

    async def tree_only(bodies: list[str]) -> TreeChecker:
        checker = TreeChecker(engine.connect)
        for i in range(0, len(bodies), 5000):
            await checker.add_many(bodies[i : i + 5000])
        await checker.finish()
        return checker

    try:
        async with engine.connect() as conn:
            bodies = list(
                (await conn.execute(text("SELECT body FROM audit_events ORDER BY seq"))).scalars()
            )
        for _ in range(2):  # the second round is the one printed (warm caches)
            chain_only, chain_wall, chain_cpu = await timed(verify_chain(engine, upto=events))
            both, both_wall, both_cpu = await timed(verify_chain(engine))
            checker, tree_wall, tree_cpu = await timed(tree_only(bodies))
    finally:
        await engine.dispose()
    assert chain_only.ok, chain_only
    assert both.ok, both
    assert checker.fault is None, checker.fault
    hashing = _pure_tree_rate(min(events, 200_000))
    for label, wall, cpu in (
        ("chain only", chain_wall, chain_cpu),
        ("chain + tree (bulwark audit verify)", both_wall, both_cpu),
        ("tree alone (bodies in memory, nodes from the database)", tree_wall, tree_cpu),
    ):
        print(
            f"{label}: {events / wall:,.0f} events/s wall clock, "
            f"{events / cpu:,.0f} events per CPU second"
        )
    print(f"tree re-hashing alone, in memory: {hashing:,.0f} events/s")


def _pure_tree_rate(n: int) -> float:
    bodies = [b'{"kind":"evaluation","seq":%d,"x":"%s"}' % (i, b"a" * 300) for i in range(n)]
    started = time.perf_counter()
    frontier = tree.Frontier.empty()
    for body in bodies:
        frontier.append(tree.leaf_hash(body))
    return n / (time.perf_counter() - started)


# --------------------------------------------------------------------------- append


class _NoTree:
    """The writer's tree hook, doing nothing: the baseline without the tree."""

    def extend_known(self, size: int, leaves: Any) -> list[dict[str, object]]:
        return []

    async def extend(self, conn: Any, size: int, leaves: Any) -> list[dict[str, object]]:
        return []

    def committed(self) -> None:
        pass

    def discard(self) -> None:
        pass


async def _worker(writer: Any, queue: list[int], body: dict[str, Any]) -> None:
    from app.audit.writer import Entry

    while queue:
        queue.pop()
        await writer.append(Entry(kind="evaluation", effect="deny", body=body))


async def time_append(url: str, events: int, concurrency: int, rounds: int) -> None:
    from app.audit import writer as writer_module
    from app.audit.writer import AuditWriter

    engine = create_engine(url)
    body = {"v": 1, "purpose": "legal_process", "reasons": ["scope.patron"], "x": "a" * 300}
    results: dict[str, list[float]] = {"tree": [], "no tree": []}
    real_leaf = writer_module.tree.leaf_hash
    try:
        for r in range(rounds):
            for mode in ("tree", "no tree") if r % 2 == 0 else ("no tree", "tree"):
                writer = AuditWriter(engine)
                if mode == "no tree":
                    writer._tree = _NoTree()  # type: ignore[assignment]
                    writer_module.tree.leaf_hash = lambda body: b""  # type: ignore[assignment]
                writer.start()
                queue = list(range(events))
                started = time.perf_counter()
                await asyncio.gather(*(_worker(writer, queue, body) for _ in range(concurrency)))
                elapsed = time.perf_counter() - started
                await writer.close()
                writer_module.tree.leaf_hash = real_leaf
                results[mode].append(elapsed / events * 1e6)
        for mode, per in results.items():
            print(
                f"append with {mode}: median {statistics.median(per):.0f} µs/event over "
                f"{rounds} rounds of {events:,} events at {concurrency} concurrent appenders"
            )
        base, with_tree = statistics.median(results["no tree"]), statistics.median(results["tree"])
        print(f"the tree adds {100 * (with_tree - base) / base:+.1f}% per event")
    finally:
        writer_module.tree.leaf_hash = real_leaf
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("proofs")
    p.add_argument("--leaves", type=int, default=10_000_000)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--url", default=None)
    p.add_argument("--reuse", action="store_true", help="the tree is already stored at --url")
    v = sub.add_parser("verify")
    v.add_argument("--events", type=int, default=200_000)
    v.add_argument("--url", default=None)
    a = sub.add_parser("append")
    a.add_argument("--events", type=int, default=20_000)
    a.add_argument("--concurrency", type=int, default=64)
    a.add_argument("--rounds", type=int, default=4)
    a.add_argument("--url", default=None)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench-state.db"
    if not getattr(args, "reuse", False):
        migrations.upgrade(url)
    if args.what == "proofs":
        if not args.reuse:
            build_tree(url, args.leaves)
        asyncio.run(time_proofs(url, args.leaves, args.samples))
    elif args.what == "verify":
        asyncio.run(time_verify(url, args.events))
    else:
        asyncio.run(time_append(url, args.events, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
