"""Benchmark: where one permit's time goes, stage by stage, in process (no HTTP).

Builds a fresh PostgreSQL state database, uses the benchmark records store that
``bench/run.py`` seeds (``--records-url``), and times 300 sequential disclosures of the
benchmark patron: verification and policy, the store read, and the audit transaction.

    python bench/run.py            # once, to seed the store
    python bench/stages.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from app.admin.clients import add_client
from app.callers.models import Role
from app.core import migrations
from app.core.config import Settings
from app.core.secrets import ensure_instance_secrets
from app.disclosures import service
from app.disclosures.schemas import DisclosureRequest
from app.orders.issuing import generate_key_pair, issue_order, make_claims
from app.runtime import build_runtime

STATE_DB = "bulwark_bench_stages"
PATRON = "P990001"
TIMES: dict[str, list[float]] = {}


def timed(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            TIMES.setdefault(name, []).append(time.perf_counter() - started)

    return wrapper


async def fresh_state(pg: str) -> str:
    conn = await asyncpg.connect(f"{pg}/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {STATE_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {STATE_DB}")
    finally:
        await conn.close()
    return f"{pg}/{STATE_DB}"


async def main(records_url: str, pg: str, n: int) -> None:
    data = Path(tempfile.mkdtemp())
    pem, jwk = generate_key_pair("ES256", "bench")
    trust = data / "trust.json"
    trust.write_text(
        json.dumps(
            {
                "issuers": [
                    {
                        "iss": "https://bench",
                        "name": "Bench court",
                        "jurisdictions": ["US-IL"],
                        "keys": [jwk],
                    }
                ]
            }
        )
    )
    settings = Settings(
        data_dir=data,
        database_url=await fresh_state(pg),
        records_url=records_url,
        trust_store=trust,
        jurisdictions=frozenset({"US-IL"}),
        environment="test",
        rate_limit_per_minute=1_000_000,
    )
    await asyncio.to_thread(migrations.upgrade, settings.state_url)
    ensure_instance_secrets(settings)
    rt = await build_runtime(settings)
    try:
        _, key = await add_client(rt.state, "bench", Role.REQUESTER, audit=rt.audit)
        caller = await rt.callers.authenticate(key, live=True)
        rt.store.fetch = timed("store read", rt.store.fetch)  # type: ignore[method-assign]
        rt.audit.append = timed("audit append (one batch)", rt.audit.append)  # type: ignore[method-assign]
        evaluate = timed("verify + policy", service.evaluate_request)
        service.evaluate_request = evaluate  # type: ignore[assignment]
        bodies = [
            DisclosureRequest.model_validate(
                {
                    "purpose": "legal_process",
                    "patron_id": PATRON,
                    "categories": ["circulation"],
                    "from": "2026-01-01",
                    "to": "2026-06-30",
                    "court_order": issue_order(
                        make_claims(iss="https://bench", patrons=[PATRON], max_uses=1000),
                        pem,
                        "bench",
                        "ES256",
                    ),
                }
            )
            for _ in range(3)
        ]
        for i in range(30):
            await service.disclose(rt, caller, bodies[i % 3], None)
        TIMES.clear()
        whole = []
        for i in range(n):
            started = time.perf_counter()
            await service.disclose(rt, caller, bodies[i % 3], None)
            whole.append(time.perf_counter() - started)
        print(f"{n} sequential permits of {PATRON} (40 records), PostgreSQL state and store")
        print(f"  {'whole disclosure':28s} p50 {statistics.median(whole) * 1e3:7.3f} ms")
        for name, values in TIMES.items():
            print(f"  {name:28s} p50 {statistics.median(values) * 1e3:7.3f} ms")
    finally:
        await rt.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--records-url",
        default="postgresql://postgres@127.0.0.1:5432/bulwark_bench_records_1000000_20000",
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.records_url, args.pg, args.n))
