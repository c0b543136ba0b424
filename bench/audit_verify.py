"""Benchmark: audit-chain verification speed on a large log.

Builds a state database with N chained events (default 1,000,000; written directly in bulk, as
the writer would have chained them, with their Merkle tree), then times ``verify_chain``
streaming over it (the chain and the tree) and prints events verified per second. Memory
stays flat: verification pages through the log. Then it times what ``GET /v1/audit/verify``
costs (issue 16): the first incremental run (the whole log), twelve concurrent callers after
100 new events (one shared run), and one caller with nothing new.

    python bench/audit_verify.py                       # SQLite, 1,000,000 events
    python bench/audit_verify.py --events 200000 --url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collections import Counter

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import tree
from app.audit.chain import GENESIS_HASH, canonical, chain_hash
from app.audit.figures import FIGURES, Key, add_figures, tally
from app.audit.models import AuditEvent, AuditHead
from app.audit.service import verify_chain
from app.core import migrations
from app.core.database import create_engine
from app.core.models import table_of

EVENTS = table_of(AuditEvent)
HEAD = table_of(AuditHead)


def _event(seq: int, ts: dt.datetime) -> dict[str, object]:
    return {
        "v": 1,
        "seq": seq,
        "ts": ts.isoformat(timespec="microseconds"),
        "kind": "disclosure",
        "effect": "deny" if seq % 3 else "permit",
        "caller": "bench-requester",
        "request_id": f"{seq:032x}",
        "purpose": "legal_process",
        "reasons": ["order.expired"] if seq % 3 else [],
        "policy": "a" * 64,
        "order": {
            "iss": "https://courts.example/il-cook",
            "jti": f"order-{seq}",
            "case": "2026-CR-000123",
            "instrument": "court_order",
            "verified": True,
        },
        "patron": "k1:" + "b" * 64,
        "asked": {"categories": ["circulation"], "from": "2026-01-01", "to": "2026-06-30"},
        "released": None,
    }


async def build(url: str, count: int, *, days: int = 1) -> None:
    """``count`` chained disclosure events spread over the last ``days`` days, with the
    report's figures the writer would have kept for them."""
    engine = create_engine(url)
    now = dt.datetime.now(dt.UTC)
    prev = GENESIS_HASH
    batch: list[dict[str, object]] = []
    counted: Counter[Key] = Counter()
    frontier, nodes = tree.Frontier.empty(), []  # the Merkle tree, as the writer builds it
    async with engine.begin() as conn:
        await conn.execute(delete(EVENTS))
        await conn.execute(delete(FIGURES))
        await conn.execute(delete(tree.TREE))
        for seq in range(1, count + 1):
            ts = now - dt.timedelta(days=(count - seq) * days // count)
            event = _event(seq, ts)
            body = canonical(event)
            nodes.extend(frontier.append(tree.leaf_hash(body)))
            digest = chain_hash(prev, body)
            effect = "deny" if seq % 3 else "permit"
            batch.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "kind": "disclosure",
                    "effect": effect,
                    "body": body,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            counted.update(tally([(ts, "disclosure", effect, event)]))
            prev = digest
            if len(batch) == 20_000:
                await conn.execute(insert(EVENTS), batch)
                if stored := tree.rows_json(nodes):
                    await conn.execute(insert(tree.TREE), stored)
                batch.clear()
                nodes.clear()
        if batch:
            await conn.execute(insert(EVENTS), batch)
            if stored := tree.rows_json(nodes):
                await conn.execute(insert(tree.TREE), stored)
        await add_figures(
            conn,
            [
                {"day": d, "line": line, "measure": m, "item": i, "count": n}
                for (d, line, m, i), n in counted.items()
            ],
        )
        await conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=count, hash=prev))
    await engine.dispose()


async def measure(url: str) -> tuple[int, float, bool]:
    engine = create_engine(url)
    started = time.perf_counter()
    result = await verify_chain(engine)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return result.events, elapsed, result.ok


async def measure_incremental(url: str, count: int) -> list[tuple[str, float, int]]:
    from app.audit.incremental import IncrementalVerifier

    engine = create_engine(url)
    verifier = IncrementalVerifier(engine)
    figures = []
    try:
        started = time.perf_counter()
        first = await verifier.verify()
        figures.append(("first run (whole log)", time.perf_counter() - started, first.events))
        await build_more(engine, count, 100)
        started = time.perf_counter()
        results = await asyncio.gather(*(verifier.verify() for _ in range(12)))
        figures.append(
            (
                "12 concurrent callers, 100 new events",
                time.perf_counter() - started,
                results[0].events,
            )
        )
        started = time.perf_counter()
        last = await verifier.verify()
        figures.append(("1 caller, nothing new", time.perf_counter() - started, last.events))
        assert all(r.ok for r in (first, last, *results))
    finally:
        await engine.dispose()
    return figures


async def build_more(engine: AsyncEngine, after: int, count: int) -> None:
    from sqlalchemy import select

    async with engine.begin() as conn:
        head = (await conn.execute(select(HEAD.c.seq, HEAD.c.hash))).one()
        seq, prev = int(head.seq), str(head.hash)
        now = dt.datetime.now(dt.UTC)
        rows = []
        for _ in range(count):
            seq += 1
            body = canonical(_event(seq, now))
            digest = chain_hash(prev, body)
            rows.append(
                {"seq": seq, "ts": now, "kind": "disclosure",
                 "effect": "deny" if seq % 3 else "permit", "body": body,
                 "prev_hash": prev, "hash": digest}
            )  # fmt: skip
            prev = digest
        await conn.execute(insert(EVENTS), rows)
        await conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=seq, hash=prev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--url", default=None, help="state database URL (default: temp SQLite)")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench-state.db"
    migrations.upgrade(url)
    t0 = time.perf_counter()
    asyncio.run(build(url, args.events))
    print(f"built {args.events:,} events in {time.perf_counter() - t0:.1f} s")
    events, elapsed, ok = asyncio.run(measure(url))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"verified {events:,} events in {elapsed:.2f} s: {events / elapsed:,.0f} events/s "
        f"(intact={ok}, peak RSS {rss_mb:.0f} MiB incl. the build)"
    )
    for label, seconds, verified in asyncio.run(measure_incremental(url, args.events)):
        print(f"GET /v1/audit/verify, {label}: {seconds * 1000:,.1f} ms (head {verified:,})")


if __name__ == "__main__":
    main()
