"""Benchmark: what an ``Idempotency-Key`` costs on ``POST /v1/disclosures``.

In one process (ASGI, no network), over a fresh SQLite state database and the demo records
store: N disclosures without the header, N first requests with a fresh key each (claim, run,
seal and keep), and N replays of one key (lookup, decrypt, a `replay` audit event). Prints the
median and 95th percentile of each, in milliseconds.

    python bench/idempotency.py            # 300 of each
    python bench/idempotency.py --n 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from app.admin.clients import add_client
from app.callers.models import Role
from app.core import migrations
from app.core.config import Settings
from app.core.secrets import ensure_instance_secrets
from app.main import create_app
from app.orders.issuing import generate_key_pair, issue_order, issuer_entry, make_claims
from app.records.demo import DEMO_PATRON, create_demo_store
from app.runtime import build_runtime

ISS = "https://courts.example/bench"


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pem, jwk = generate_key_pair("ES256", "bench-2026")
        trust = root / "trust.json"
        trust.write_text(json.dumps({"issuers": [issuer_entry(ISS, "Bench", ["US-IL"], jwk)]}))
        records = f"sqlite:///{root / 'records.db'}"
        create_demo_store(records, patrons=50, rows=5000, seed=3)
        settings = Settings(
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'state.db'}",
            records_url=records,
            trust_store=trust,
            jurisdictions=frozenset({"US-IL"}),
            environment="test",
            rate_limit_per_minute=1_000_000,
        )
        migrations.upgrade(settings.state_url)
        ensure_instance_secrets(settings)
        asyncio.run(measure(settings, pem, n))


async def measure(settings: Settings, pem: bytes, n: int) -> None:
    """Time the three kinds of request (see the module docstring) and print the figures."""
    runtime = await build_runtime(settings)
    _, key = await add_client(runtime.state, "bench", Role.REQUESTER, audit=runtime.audit)
    claims = make_claims(iss=ISS, patrons=[DEMO_PATRON], jurisdiction="US-IL", max_uses=1000)
    token = issue_order(claims, pem, "bench-2026", "ES256")
    body = {
        "purpose": "legal_process",
        "patron_id": DEMO_PATRON,
        "categories": ["circulation"],
        "from": "2026-01-01",
        "to": "2026-06-30",
        "court_order": token,
    }
    app = create_app(runtime=runtime)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:

                async def timed(headers: dict[str, str]) -> float:
                    started = time.perf_counter()
                    r = await client.post("/v1/disclosures", json=body, headers=headers)
                    assert r.status_code == 200, r.text
                    return time.perf_counter() - started

                await timed(auth)  # warm caches (token verification, store connection)
                plain = [await timed(auth) for _ in range(n // 3)]
                first = [
                    await timed({**auth, "Idempotency-Key": str(uuid.uuid4())})
                    for _ in range(n // 3)
                ]
                replayed_key = {**auth, "Idempotency-Key": str(uuid.uuid4())}
                await timed(replayed_key)
                replays = [await timed(replayed_key) for _ in range(n // 3)]
    finally:
        await runtime.close()
    print(f"without Idempotency-Key:  {_ms(plain)}  (n={len(plain)})")
    print(f"first use of a key:       {_ms(first)}  (n={len(first)})")
    print(f"replay of a kept answer:  {_ms(replays)}  (n={len(replays)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=900, help="requests in all (a third each)")
    main(parser.parse_args().n)
