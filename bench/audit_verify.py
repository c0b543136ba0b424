"""Benchmark: audit-chain verification speed on a large log.

Builds a state database with N chained events (default 1,000,000; written directly in bulk, as
the writer would have chained them, with their Merkle tree), then times ``verify_chain``
streaming over it (the chain and the tree) and prints events verified per second. Memory
stays flat: verification pages through the log.

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
                await conn.execute(insert(tree.TREE), tree.rows_json(nodes))
                batch.clear()
                nodes.clear()
        if batch:
            await conn.execute(insert(EVENTS), batch)
            await conn.execute(insert(tree.TREE), tree.rows_json(nodes))
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


if __name__ == "__main__":
    main()
