"""Benchmark: the audit log's Merkle tree (app/audit/tree.py). Prints figures; asserts nothing.

    python bench/tlog.py proofs --leaves 10000000           # proofs at 10 M events (SQLite)
    python bench/tlog.py verify --events 200000              # chain + tree verification
    python bench/tlog.py append --url postgresql://postgres@127.0.0.1/a \\
        --baseline-url postgresql://postgres@127.0.0.1/b --events 20000

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


def _body(seq: int) -> bytes:
    return b'{"effect":"deny","kind":"evaluation","seq":%d,"v":1}' % seq


def _rows(leaves: int) -> Any:
    """Each synthetic event's row, then the tree rows its append stores, in append order."""
    frontier = tree.Frontier.empty()
    for i in range(leaves):
        body = _body(i + 1)
        yield "event", i + 1, body
        for level, idx, digest in frontier.append(tree.leaf_hash(body)):
            if tree.is_stored(level):
                yield level, idx, digest


def build_tree(url: str, leaves: int) -> None:
    """Bulk-load the events (short synthetic bodies, placeholder chain hashes: proofs read
    leaves from bodies, never the chain) and the tree's stored rows, with sqlite3."""
    started = time.perf_counter()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise SystemExit("proofs: the bulk load is written for SQLite (give no --url)")
    db = sqlite3.connect(parsed.database or "")
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("DELETE FROM audit_tree")
    db.execute("DELETE FROM audit_events")
    events: list[tuple[Any, ...]] = []
    nodes: list[tuple[int, int, str]] = []
    ts = "2026-12-01 00:00:00.000000"
    for kind, number, value in _rows(leaves):
        if kind == "event":
            h = f"{number:064x}"
            events.append((number, ts, "evaluation", "deny", value.decode(), h, h))
        else:
            nodes.append((int(kind), number, value.hex()))
        if len(events) == 200_000:
            db.executemany("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?)", events)
            db.executemany("INSERT INTO audit_tree VALUES (?, ?, ?)", nodes)
            events.clear()
            nodes.clear()
    db.executemany("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?)", events)
    db.executemany("INSERT INTO audit_tree VALUES (?, ?, ?)", nodes)
    db.execute("UPDATE audit_head SET seq = ? WHERE id = 1", (leaves,))
    db.commit()
    db.close()
    print(f"stored {leaves:,} events and their tree in {time.perf_counter() - started:.0f} s")


async def time_proofs(url: str, leaves: int, samples: int) -> None:
    engine = create_engine(url)
    rng = random.Random(7)
    try:
        async with engine.connect() as conn:
            root = await tree.root_at(conn, leaves)
            for kind in ("inclusion", "consistency"):
                times, rows, reads = [], [], []
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
                    keys = tree.needed_keys(ranges)
                    rows.append(len(keys))
                    reads.append(len({b for k in keys for b in tree._base(k)}))
                    assert len(proof) <= 2 * leaves.bit_length()
                times.sort()
                print(
                    f"{kind} proof at {leaves:,} leaves: median {statistics.median(times):.2f} ms, "
                    f"p99 {times[int(len(times) * 0.99) - 1]:.2f} ms, max {times[-1]:.2f} ms; "
                    f"complete subtrees: median {statistics.median(rows):.0f}, max {max(rows)}; "
                    f"rows read (nodes + event bodies): median {statistics.median(reads):.0f}, "
                    f"max {max(reads)}"
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


async def time_append(urls: dict[str, str], events: int, concurrency: int, rounds: int) -> None:
    """Each mode appends to its own database (a log without tree rows is not a valid log for
    the tree's writer), alternately, so that both see the same load from the machine."""
    from app.audit import writer as writer_module
    from app.audit.writer import AuditWriter

    engines = {mode: create_engine(url) for mode, url in urls.items()}
    body = {"v": 1, "purpose": "legal_process", "reasons": ["scope.patron"], "x": "a" * 300}
    results: dict[str, list[float]] = {mode: [] for mode in urls}
    real_leaf = writer_module.tree.leaf_hash
    try:
        for r in range(rounds):
            for mode in ("tree", "no tree") if r % 2 == 0 else ("no tree", "tree"):
                writer = AuditWriter(engines[mode])
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
                f"append with {mode}: median {statistics.median(per):.1f} µs/event over "
                f"{rounds} rounds of {events:,} events at {concurrency} concurrent appenders "
                f"(each round: {', '.join(f'{x:.1f}' for x in per)})"
            )
        base, with_tree = statistics.median(results["no tree"]), statistics.median(results["tree"])
        print(f"the tree adds {100 * (with_tree - base) / base:+.1f}% per event")
    finally:
        writer_module.tree.leaf_hash = real_leaf
        for engine in engines.values():
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
    a.add_argument("--url", default=None, help="the database appended to with the tree")
    a.add_argument("--baseline-url", default=None, help="another, appended to without it")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench-state.db"
    if not getattr(args, "reuse", False):
        migrations.upgrade(url)
    baseline = getattr(args, "baseline_url", None) or f"sqlite:///{tempfile.mkdtemp()}/base.db"
    if args.what == "append":
        migrations.upgrade(baseline)
    if args.what == "proofs":
        if not args.reuse:
            build_tree(url, args.leaves)
        asyncio.run(time_proofs(url, args.leaves, args.samples))
    elif args.what == "verify":
        asyncio.run(time_verify(url, args.events))
    else:
        urls = {"tree": url, "no tree": baseline}
        asyncio.run(time_append(urls, args.events, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
