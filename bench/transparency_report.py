"""Benchmark: the transparency report over a large audit log, and what holds and notices cost.

1. Builds a state database with N disclosure events (default 500,000, chained as the writer
   would, with the report's figures; the builder of ``bench/audit_verify.py``), then times
   ``build_report`` for today and prints it with the report's own peak Python memory
   (tracemalloc). The report sums per-day figures (``bench/report_scale.py`` compares sizes).
2. Appends M permits through the real ``AuditWriter`` as the disclosure path does (revocation
   check, a use consumed, a disclosure row; batches of 64 concurrent appends), first without,
   then with the legal hold (5 patrons) and the notice a permit now carries, and prints
   permits per second for both.

    python bench/transparency_report.py
    python bench/transparency_report.py --events 200000 --appends 2000 \\
        --url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_verify import build  # the same chained-log builder

from app.audit.writer import AuditWriter, Entry, UseClaim
from app.core import migrations
from app.core.config import BUNDLED_POLICY
from app.core.database import create_engine
from app.disclosures.models import DisclosureRow
from app.holds.service import hold_rows
from app.notices.service import notice_row
from app.orders.issuing import make_claims
from app.orders.models import OrderClaims
from app.policy.models import load_policy
from app.records.obligations import Period
from app.transparency.service import build_report


async def time_report(url: str) -> tuple[float, float, int]:
    engine = create_engine(url)
    policy = load_policy(BUNDLED_POLICY)
    today = dt.datetime.now(dt.UTC).date()
    tracemalloc.start()
    started = time.perf_counter()
    report = await build_report(engine, policy, start=today, end=today)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await engine.dispose()
    court = next(r for r in report["instruments"] if r["instrument"] == "court_order")
    return elapsed, peak / 2**20, int(court["requests"])


def _entry(n: int, with_writes: bool) -> Entry:
    """A permit as the disclosure path appends it: revocation check, a use, a disclosure row."""
    claims = OrderClaims.model_validate(
        make_claims(jti=f"bench-{with_writes}-{n}", patrons=[f"P{n:06d}-{i}" for i in range(5)])
    )
    disclosure_id = str(uuid.UUID(int=n + (1 << 64 if with_writes else 0)))
    notice = None
    if with_writes:
        notice = notice_row(
            disclosure_id=disclosure_id,
            patron_id=claims.scope.patrons[0],
            claims=claims,
            categories=["circulation"],
            period=Period(claims.scope.from_, claims.scope.to),
            now=dt.datetime.now(dt.UTC),
        )
    return Entry(
        kind="disclosure",
        effect="permit",
        body={"v": 1, "n": n},
        order=(claims.iss, claims.jti),
        use=UseClaim(claims.iss, claims.jti, 1),
        disclosure=DisclosureRow(
            id=disclosure_id,
            iss=claims.iss,
            jti=claims.jti,
            caller="bench",
            patron_pseudonym="k1:" + "b" * 64,
            categories='["circulation"]',
            period_from="2026-01-01",
            period_to="2026-06-30",
            record_count=3,
        ),
        holds=hold_rows(claims, 365) if with_writes else (),
        notice=notice,
    )


async def time_appends(url: str, count: int, with_writes: bool) -> float:
    engine = create_engine(url)
    writer = AuditWriter(engine)
    writer.start()
    entries = [_entry(n, with_writes) for n in range(count)]
    started = time.perf_counter()
    for i in range(0, count, 64):
        await asyncio.gather(*(writer.append(e) for e in entries[i : i + 64]))
    elapsed = time.perf_counter() - started
    await writer.close()
    await engine.dispose()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--url", default=None, help="state database URL (default: temp SQLite)")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench-state.db"
    migrations.upgrade(url)
    t0 = time.perf_counter()
    asyncio.run(build(url, args.events))
    print(f"built {args.events:,} disclosure events in {time.perf_counter() - t0:.1f} s")
    elapsed, peak_mib, counted = asyncio.run(time_report(url))
    print(
        f"transparency report counting {counted:,} events in {elapsed * 1000:.1f} ms, "
        f"report peak Python memory {peak_mib:.1f} MiB"
    )
    bare = asyncio.run(time_appends(url, args.appends, with_writes=False))
    held = asyncio.run(time_appends(url, args.appends, with_writes=True))
    print(
        f"permit appends: {bare:,.0f}/s without, {held:,.0f}/s with a 5-patron hold and a "
        f"notice each ({(1 - held / bare) * 100:.0f}% fewer)"
    )


if __name__ == "__main__":
    main()
