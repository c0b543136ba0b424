"""Benchmark: the transparency report's cost at 10,000 and at 1,000,000 events.

For each size, builds a state database of chained disclosure events spread over the last
180 days, with the figures the writer keeps for them (``bench/audit_verify.py``'s builder),
then times ``build_report`` over the whole year (the median of 20 runs) and prints it with
the number of figure rows the report read. The report sums per-day figures, so its cost
follows the days in the window, not the events in the log.

    python bench/report_scale.py
    python bench/report_scale.py --sizes 10000,1000000 --url postgresql://postgres@127.0.0.1/b
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_verify import build  # the chained-log builder, figures included
from sqlalchemy import func, select

from app.audit.figures import FIGURES
from app.core import migrations
from app.core.config import BUNDLED_POLICY
from app.core.database import create_engine
from app.policy.models import load_policy
from app.transparency.service import build_report

DAYS = 180
RUNS = 20


async def time_report(url: str) -> tuple[float, int, int]:
    """Median seconds of one report over the last year, figure rows, requests counted."""
    engine = create_engine(url)
    policy = load_policy(BUNDLED_POLICY)
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=365)
    times = []
    report = {}
    for _ in range(RUNS):
        began = time.perf_counter()
        report = await build_report(engine, policy, start=start, end=today)
        times.append(time.perf_counter() - began)
    async with engine.connect() as conn:
        rows = int((await conn.execute(select(func.count()).select_from(FIGURES))).scalar_one())
    await engine.dispose()
    court = next(r for r in report["instruments"] if r["instrument"] == "court_order")
    return statistics.median(times), rows, int(court["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--url", default=None, help="state database URL (default: temp SQLite)")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench-state.db"
        migrations.upgrade(url)
        began = time.perf_counter()
        asyncio.run(build(url, size, days=DAYS))
        built = time.perf_counter() - began
        seconds, rows, counted = asyncio.run(time_report(url))
        print(
            f"{size:>9,} events ({built:.0f} s to build): report over a year "
            f"{seconds * 1000:.2f} ms (median of {RUNS}), {rows:,} figure rows, "
            f"{counted:,} requests counted"
        )


if __name__ == "__main__":
    main()
