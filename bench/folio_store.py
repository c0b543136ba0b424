"""Benchmark: the FOLIO store kind against the test suite's FOLIO fake, on loopback.

Prints, for a patron with N loans in the period (default 2,000) among the loans of other
patrons and an anonymized one, the time of a cold fetch (login + user lookup + first page),
of warm fetches of one page (token reused), of reading every page, and how many requests
FOLIO received. FOLIO's own latency is not in these figures (the fake answers from memory):
they are Bulwark's side of the exchange, and the number of round trips each costs.

    python bench/folio_store.py
    python bench/folio_store.py --loans 10000 --limit 1000 --repeat 50
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from app.records.categories import Category
from app.records.folio_store import FolioCredentials, FolioRecordsStore
from app.records.mapping import load_mapping
from app.records.obligations import Obligations
from tests.records.folio_fake import PASSWORD, TENANT, USERNAME, running_folio
from tests.records.test_folio import BARCODE, PERIOD, UA, UB, _loan, tenant_data

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "folio" / "mapping.toml"


async def run(loans: int, limit: int, repeat: int) -> None:
    data = tenant_data()
    data.loans = [
        _loan(
            10_000 + i,
            UA if i % 4 else UB,
            f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:00:00.000+00:00",
            f"t{i}",
        )
        for i in range(loans * 4 // 3)
    ]
    mapping = load_mapping(EXAMPLE)
    ob = Obligations(BARCODE, (Category.CIRCULATION,), PERIOD, mapping.fields())
    with running_folio(**{TENANT: data}) as folio:
        async with httpx.AsyncClient(trust_env=False) as client:
            store = FolioRecordsStore(
                folio.base_url,
                mapping,
                client,
                credentials=FolioCredentials(TENANT, USERNAME, PASSWORD),
                zone=ZoneInfo("America/Chicago"),
                max_response_bytes=64 << 20,
                timeout=10.0,
            )
            start = time.perf_counter()
            await store.fetch(ob, Category.CIRCULATION, limit=limit)
            cold = time.perf_counter() - start
            warm = []
            for _ in range(repeat):
                start = time.perf_counter()
                await store.fetch(ob, Category.CIRCULATION, limit=limit)
                warm.append(time.perf_counter() - start)
            folio.seen.clear()
            start = time.perf_counter()
            cursor, total = None, 0
            while True:
                page = await store.fetch(ob, Category.CIRCULATION, limit=limit, cursor=cursor)
                total += len(page.records)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            everything = time.perf_counter() - start
    print(f"patron's loans in the period: {total} (limit {limit} per page)")
    print(f"cold fetch (login, user, first page): {cold * 1000:.1f} ms")
    print(
        f"warm fetch of one page: median {statistics.median(warm) * 1000:.1f} ms, "
        f"max {max(warm) * 1000:.1f} ms over {repeat}"
    )
    print(
        f"all pages: {everything * 1000:.1f} ms, {len(folio.seen)} FOLIO requests "
        f"({sum(1 for s in folio.seen if s.path == '/users')} user lookups), "
        f"{len(folio.logins())} logins while paging (the token is reused)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.loans, args.limit, args.repeat))


if __name__ == "__main__":
    main()
