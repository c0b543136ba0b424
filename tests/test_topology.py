"""The deployment's topology on this machine: PostgreSQL state, two `bulwark serve` replicas
and nginx in front, started by deploy/local_topology.py; traffic goes through the proxy."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.orders.issuing import issue_order, make_claims
from app.records.demo import DEMO_PATRON, OTHER_PATRON
from tests.conftest import auth
from tests.databases import IN_CI, PG_HOST, PG_PORT, PG_USER, require
from tests.factories import disclosure_body

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    require("PostgreSQL", PG_HOST, PG_PORT)
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        if IN_CI:
            pytest.fail("nginx is missing; .ci/run installs it", pytrace=False)
        pytest.skip("nginx is not installed (apt-get install nginx)")
    directory = tmp_path / "topology"
    log = (tmp_path / "topology.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy" / "local_topology.py"), "up", "--dir", str(directory),
         "--postgres", f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        info_file = directory / "topology.json"
        while not info_file.exists():
            assert process.poll() is None, (tmp_path / "topology.log").read_text()
            assert time.monotonic() < deadline, "topology did not start"
            time.sleep(0.2)
        yield process, json.loads(info_file.read_text())
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def disclosure(info: dict[str, Any], patron: str, jti: str) -> dict[str, Any]:
    court = info["court"]
    claims = make_claims(
        iss=court["iss"],
        court=court["name"],
        jurisdiction=court["jurisdiction"],
        jti=jti,
        patrons=[DEMO_PATRON],
        max_uses=5,
    )
    token = issue_order(claims, Path(court["key"]).read_bytes(), court["kid"], "ES256")
    return disclosure_body(token, patron)


def request_ids(log: str) -> set[str]:
    lines = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
    return {line["request_id"] for line in lines if line["logger"] == "bulwark.access"}


async def test_traffic_through_the_proxy_reaches_both_replicas_and_survives_one(
    topology: tuple[subprocess.Popen[bytes], dict[str, Any]],
) -> None:
    process, info = topology
    keys = info["keys"]
    async with httpx.AsyncClient(base_url=info["proxy"], timeout=30) as proxy:
        for i in range(12):
            r = await proxy.get("/healthz", headers={"X-Request-ID": f"topo-{i}"})
            assert r.status_code == 200 and r.headers["x-request-id"] == f"topo-{i}"
        ok = await proxy.post(
            "/v1/disclosures",
            json=disclosure(info, DEMO_PATRON, "topo-1"),
            headers=auth(keys["requester"]),
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["records"]["circulation"]
        denied = await proxy.post(
            "/v1/disclosures",
            json=disclosure(info, OTHER_PATRON, "topo-2"),
            headers=auth(keys["requester"]),
        )
        assert denied.status_code == 403
        assert [r["code"] for r in denied.json()["reasons"]] == ["scope.patron"]

        # The proxy's own refusals are problem+json too; metrics never leave through it.
        hidden = await proxy.get("/metrics")
        assert (hidden.status_code, hidden.headers["content-type"]) == (
            404,
            "application/problem+json",
        )
        too_big = await proxy.post("/v1/decisions", content=b"x" * 70_000)
        assert too_big.status_code == 413
        assert too_big.json()["reasons"][0]["code"] == "request.too_large"

    # Every replica answered some of the traffic, and logged each request as one JSON line.
    seen = [request_ids(r["log"]) for r in info["replicas"]]
    ours = {f"topo-{i}" for i in range(12)}
    assert all(s & ours for s in seen), seen
    assert set().union(*seen) >= ours
    async with httpx.AsyncClient(timeout=10) as direct:
        scraped = await direct.get(f"{info['replicas'][0]['url']}/metrics")
    assert scraped.status_code == 200 and "bulwark_http_requests_total" in scraped.text

    # One replica dies: the other carries on behind the same address, with the same state.
    os.kill(info["pids"]["replica-0"], signal.SIGKILL)
    async with httpx.AsyncClient(base_url=info["proxy"], timeout=30) as proxy:
        for _ in range(6):
            assert (await proxy.get("/readyz")).status_code == 200
        again = await proxy.post(
            "/v1/disclosures",
            json=disclosure(info, DEMO_PATRON, "topo-3"),
            headers=auth(keys["requester"]),
        )
        assert again.status_code == 200, again.text
        verified = await proxy.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    # Three client keys, then the three decisions: one chain across both replicas.
    assert verified.json()["ok"] is True
    assert verified.json()["events"] == 6
    assert again.json()["audit"]["seq"] == 6

    # Stopping the script stops every process it started and drops its database.
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    # The script waits for each child before it exits: none may be left running.
    assert not [name for name, pid in info["pids"].items() if _alive(pid)]
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", info["database"]
        )
    finally:
        await conn.close()
    assert left == 0


async def _grow_log(info: dict[str, Any], events: int) -> int:
    """Append ``events`` chained events after the head, straight into the state database, with
    the Merkle tree's nodes as the writer would store them."""
    import datetime as dt

    from sqlalchemy import insert, text

    from app.audit import tree
    from app.audit.chain import canonical, chain_hash
    from app.audit.service import EVENTS
    from app.core.database import create_engine

    url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{info['database']}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            head = (
                await conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"))
            ).one()
            seq, prev = int(head.seq), str(head.hash)
            frontier = await tree.read_frontier(conn, seq)
            now = dt.datetime.now(dt.UTC)
            stamp = now.isoformat(timespec="microseconds")
            rows, nodes = [], []
            for _ in range(events):
                seq += 1
                body = canonical(
                    {"v": 1, "seq": seq, "ts": stamp, "kind": "evaluation",
                     "effect": "deny", "reasons": ["scope.patron"]}
                )  # fmt: skip
                digest = chain_hash(prev, body)
                rows.append({"seq": seq, "ts": now, "kind": "evaluation", "effect": "deny",
                             "body": body, "prev_hash": prev, "hash": digest})  # fmt: skip
                nodes.extend(frontier.append(tree.leaf_hash(body)))
                prev = digest
            for i in range(0, len(rows), 20_000):
                await conn.execute(insert(EVENTS), rows[i : i + 20_000])
            stored = tree.rows_json(nodes)
            for i in range(0, len(stored), 20_000):
                await conn.execute(insert(tree.TREE), stored[i : i + 20_000])
            await conn.execute(
                text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                {"s": seq, "h": prev},
            )
        return seq
    finally:
        await engine.dispose()


async def test_concurrent_verifies_of_a_large_log_through_the_proxy_stay_bounded(
    topology: tuple[subprocess.Popen[bytes], dict[str, Any]],
) -> None:
    """Issue 16: twelve auditors verifying a large log at once turned every call into a 502.

    Now the replicas share one incremental run through the state database, the proxy never
    retries the long request on the other replica nor marks a replica down for it, and the
    next round verifies only what was appended since.
    """
    _, info = topology
    auditor = auth(info["keys"]["auditor"])
    head = await _grow_log(info, 200_000)
    async with httpx.AsyncClient(base_url=info["proxy"], timeout=120) as proxy:
        first = await asyncio.gather(*(proxy.get("/v1/audit/verify", headers=auditor)
                                       for _ in range(12)))  # fmt: skip
        assert [r.status_code for r in first] == [200] * 12, [r.text[:200] for r in first]
        assert all(r.json()["ok"] and r.json()["events"] == head for r in first)
        # Both replicas still ready: none was marked down for a slow answer.
        for replica in info["replicas"]:
            assert (await proxy.get(f"{replica['url']}/readyz")).status_code == 200
        grown = await _grow_log(info, 10)
        started = time.monotonic()
        second = await asyncio.gather(*(proxy.get("/v1/audit/verify", headers=auditor)
                                        for _ in range(12)))  # fmt: skip
        elapsed = time.monotonic() - started
    assert all(r.status_code == 200 and r.json()["events"] == grown for r in second)
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=info["database"]
    )
    try:
        verified = await conn.fetchrow("SELECT seq, lease_owner FROM audit_verified")
    finally:
        await conn.close()
    assert (verified["seq"], verified["lease_owner"]) == (grown, None)
    print(f"second round of 12 verifies after 10 new events: {elapsed:.3f} s")
