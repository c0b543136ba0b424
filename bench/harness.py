"""The pieces ``bench/run.py`` assembles: stores, state, orders, servers and the load generator.

Everything runs on this machine: PostgreSQL at 127.0.0.1:5432 (user postgres), SQLite files
under ``bench/results/work/``, servers on loopback ports, and wrk as the load generator (a
separate process written in C, so that the client is not the bottleneck).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "results" / "work"
LUA = ROOT / "bench" / "wrk" / "post.lua"
PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")

COURT_ISS = "https://courts.example/bench"
COURT_KID = "bench-2026"
JURISDICTION = "US-IL"
#: The patron every benchmark request asks for. Its loans are added after the demo generator
#: ran, outside the generator's patron range, so that the answer is the same 40 records at
#: every store size: only the store's size changes between the scale runs, not the work.
BENCH_PATRON = "P990001"
PERIOD = ("2026-01-01", "2026-06-30")
BENCH_LOANS_IN_PERIOD = 40
BENCH_LOANS_OUTSIDE = 40
#: Share of the demo generator's activity rows that land in ``loans`` (35% of the budget,
#: plus the busy demo patron's 1/80): used to ask it for a number of loan rows.
LOAN_SHARE = 0.3581
SEED_VERSION = 1
#: Uses per court order; the contract's maximum. Permit runs rotate through fresh orders.
USES_PER_ORDER = 1000


# --------------------------------------------------------------------------- records stores


@dataclass(frozen=True, slots=True)
class Store:
    """A seeded records store."""

    backend: str  # "sqlite" or "postgresql"
    url: str
    loans: int
    patrons: int
    seed_seconds: float | None  # None: reused from an earlier run


def store_url(backend: str, loans: int, patrons: int) -> str:
    """Where the store of that size lives (reused across runs until ``--reseed``)."""
    if backend == "sqlite":
        return f"sqlite:///{WORK / f'records-{loans}-{patrons}.db'}"
    return f"{PG_SERVER}/bulwark_bench_records_{loans}_{patrons}"


def seed_store(backend: str, loans: int, patrons: int, *, reseed: bool) -> Store:
    """The demo store with about ``loans`` loan rows over ``patrons`` patrons, plus the
    benchmark patron's loans; reused when an earlier run left one of the same size."""
    from app.records.demo import create_demo_store

    url = store_url(backend, loans, patrons)
    if backend == "postgresql":
        _ensure_pg_database(url)
    else:
        WORK.mkdir(parents=True, exist_ok=True)
    if not reseed and asyncio.run(_seeded(url)) == (loans, patrons, SEED_VERSION):
        return Store(backend, url, loans, patrons, None)
    started = time.perf_counter()
    summary = create_demo_store(
        url, patrons=patrons, rows=max(1000, round(loans / LOAN_SHARE)), seed=2026, replace=True
    )
    asyncio.run(_add_bench_patron(url, summary.rows["loans"], backend))
    asyncio.run(_mark_seeded(url, loans, patrons))
    return Store(backend, url, loans, patrons, round(time.perf_counter() - started, 1))


def redacted(url: str) -> str:
    """A store URL safe to print."""
    from app.core.database import redact

    return redact(url)


def _engine(url: str) -> Any:
    from app.core.database import create_engine

    return create_engine(url, pool_size=1)


async def _seeded(url: str) -> tuple[int, int, int] | None:
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.exec_driver_sql("SELECT loans, patrons, version FROM bench_seed")
            ).first()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        await engine.dispose()
    return (int(row[0]), int(row[1]), int(row[2])) if row else None


async def _mark_seeded(url: str, loans: int, patrons: int) -> None:
    engine = _engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE IF EXISTS bench_seed")
            await conn.exec_driver_sql(
                "CREATE TABLE bench_seed (loans INTEGER, patrons INTEGER, version INTEGER)"
            )
            await conn.execute(
                sa.text("INSERT INTO bench_seed VALUES (:l, :p, :v)"),
                {"l": loans, "p": patrons, "v": SEED_VERSION},
            )
    finally:
        await engine.dispose()


async def _add_bench_patron(url: str, generated_loans: int, backend: str) -> None:
    """Give BENCH_PATRON its fixed loans: 40 in the benchmark period, 40 in the year before."""
    loans = sa.table(
        "loans",
        *(sa.column(n) for n in ("loan_id", "patron_id", "title", "checked_out_at", "due_on")),
        *(sa.column(n) for n in ("returned_at", "branch", "staff_note")),
    )
    text_dates = backend == "sqlite"  # as the generator stores them: ISO text in SQLite

    def value(v: dt.date) -> Any:
        return v.isoformat() if text_dates else v

    rows = []
    days = [dt.date(2026, 1, 2) + dt.timedelta(days=4 * i) for i in range(BENCH_LOANS_IN_PERIOD)]
    days += [dt.date(2025, 1, 3) + dt.timedelta(days=8 * i) for i in range(BENCH_LOANS_OUTSIDE)]
    for i, day in enumerate(days):
        out = dt.datetime.combine(day, dt.time(10 + i % 8, 15))
        rows.append(
            {
                "loan_id": 10 * generated_loans + i + 1,  # above every generated id
                "patron_id": BENCH_PATRON,
                "title": f"The Benchmark Atlas, volume {i + 1} (fictional)",
                "checked_out_at": value(out),
                "due_on": value(day + dt.timedelta(days=21)),
                "returned_at": value(out + dt.timedelta(days=9)),
                "branch": "Central (fictional)",
                "staff_note": "Staff only (fictional)",
            }
        )
    engine = _engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(loans), rows)
    finally:
        await engine.dispose()


def _ensure_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not found:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


def recreate_pg_database(name: str) -> str:
    """An empty PostgreSQL database ``name`` (dropped first if it exists); its URL."""

    async def recreate() -> None:
        import asyncpg

        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    return f"{PG_SERVER}/{name}"


def explain(url: str) -> list[str]:
    """The plan the store chooses for the benchmark query (PostgreSQL: with timings)."""
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    sql = (
        "SELECT title, checked_out_at, due_on, returned_at, branch FROM loans "
        "WHERE patron_id = :p AND checked_out_at >= :s AND checked_out_at < :e "
        "ORDER BY checked_out_at, loan_id LIMIT 1001"
    )
    if backend == "sqlite":
        params: dict[str, Any] = {"p": BENCH_PATRON, "s": PERIOD[0], "e": "2026-07-01"}
        prefix = "EXPLAIN QUERY PLAN "
    else:
        params = {"p": BENCH_PATRON, "s": dt.datetime(2026, 1, 1), "e": dt.datetime(2026, 7, 1)}
        prefix = "EXPLAIN (ANALYZE, BUFFERS) "

    async def run() -> list[str]:
        engine = _engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text(prefix + sql), params)
                return [" ".join(str(v) for v in row) for row in rows]
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --------------------------------------------------------------------------- Bulwark's state


@dataclass(frozen=True, slots=True)
class Deployment:
    """A migrated state database, a trusted bench court, and callers' keys."""

    env: dict[str, str]
    court_pem: bytes
    requester_key: str
    auditor_key: str


def prepare_deployment(state_url: str, data_dir: Path) -> Deployment:
    """Migrate ``state_url``, create instance secrets, a court key and two callers."""
    from app.callers.models import Role
    from app.core import migrations
    from app.core.config import Settings
    from app.core.secrets import ensure_instance_secrets
    from app.orders.issuing import generate_key_pair

    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    pem, jwk = generate_key_pair("ES256", COURT_KID)
    trust = data_dir / "trust-store.json"
    issuer = {"iss": COURT_ISS, "name": "Bench Court", "jurisdictions": [JURISDICTION]}
    trust.write_text(json.dumps({"issuers": [{**issuer, "keys": [jwk]}]}))
    env = {
        # One caller sends every benchmark request: its per-minute limit must not be what
        # is measured (the limiter still counts every request, at full cost).
        "BULWARK_RATE_LIMIT_PER_MINUTE": "1000000",
        "BULWARK_DATA_DIR": str(data_dir),
        "BULWARK_DATABASE_URL": state_url,
        "BULWARK_TRUST_STORE": str(trust),
        "BULWARK_JURISDICTIONS": JURISDICTION,
    }
    settings = Settings(data_dir=data_dir, database_url=state_url, trust_store=trust)
    migrations.upgrade(settings.state_url)
    ensure_instance_secrets(settings)
    keys = asyncio.run(_add_callers(state_url, [("bench-requester", Role.REQUESTER),
                                                ("bench-auditor", Role.AUDITOR)]))  # fmt: skip
    return Deployment(env, pem, keys[0], keys[1])


async def _add_callers(state_url: str, callers: list[tuple[str, Any]]) -> list[str]:
    from app.admin.clients import add_client
    from app.audit.writer import AuditWriter
    from app.core.database import create_engine

    engine = create_engine(state_url)
    writer = AuditWriter(engine)
    writer.start()
    try:
        return [(await add_client(engine, n, r, audit=writer))[1] for n, r in callers]
    finally:
        await writer.close()
        await engine.dispose()


def request_body(token: str) -> dict[str, Any]:
    """The benchmark request: the bench patron's loans in the first half of 2026."""
    return {
        "purpose": "legal_process",
        "patron_id": BENCH_PATRON,
        "categories": ["circulation"],
        "from": PERIOD[0],
        "to": PERIOD[1],
        "court_order": token,
    }


def issue_orders(court_pem: bytes, count: int) -> list[str]:
    """``count`` fresh court orders for the bench patron, each good for USES_PER_ORDER."""
    from app.orders.issuing import issue_order, make_claims

    now = dt.datetime.now(dt.UTC)
    return [
        issue_order(
            make_claims(
                iss=COURT_ISS,
                now=now,
                patrons=(BENCH_PATRON,),
                period=PERIOD,
                max_uses=USES_PER_ORDER,
            ),
            court_pem,
            COURT_KID,
            "ES256",
            now=now,
        )
        for _ in range(count)
    ]


def forged(token: str) -> str:
    """The same token with another signature of the right length: well formed, not valid."""
    head, payload, signature = token.split(".")
    size = len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    bad = base64.urlsafe_b64encode(secrets.token_bytes(size)).rstrip(b"=").decode("ascii")
    return f"{head}.{payload}.{bad}"


def write_bodies(path: Path, tokens: list[str]) -> Path:
    """One JSON body per line, for bench/wrk/post.lua."""
    path.write_text("".join(json.dumps(request_body(t)) + "\n" for t in tokens))
    return path


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class Server:
    """A server process on a loopback port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextmanager
def serve(name: str, argv: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    """Start ``argv`` (listening on ``port``), wait for /healthz, stop it afterwards."""
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / f"{name}.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BULWARK_", "BENCH_"))}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            argv, env={**clean, **env}, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
        )
    server = Server(name, process, port, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        server.stop()


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not become healthy: {server.log.read_text()[-3000:]}")


def bulwark(deployment: Deployment, records_url: str, workers: int = 1) -> Any:
    """``bulwark serve`` (one worker unless asked) on the deployment's state and ``records_url``."""
    port = free_port()
    env = {**deployment.env, "BULWARK_RECORDS_URL": records_url, "BULWARK_WORKERS": str(workers)}
    argv = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    return serve("bulwark", argv, env, port)


def baseline(records_url: str) -> Any:
    """The bare pass-through of bench/baseline.py, served the way ``bulwark serve`` is."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.baseline:app", "--port", str(port)]
    argv += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    return serve("baseline", argv, {"BENCH_RECORDS_URL": records_url}, port)


# --------------------------------------------------------------------------- load


def _proc_cpu_seconds(wanted: Callable[[str, str, list[str]], bool]) -> float:
    """User plus system CPU of the processes ``wanted(pid, name, fields)`` picks (``/proc``)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue  # a process that ended while we looked
        fields = tail.split()
        if wanted(stat.parent.name, head.split("(", 1)[-1], fields):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_seconds(pid: int) -> float:
    """CPU used so far by a process and its children (uvicorn's workers)."""
    return _proc_cpu_seconds(lambda p, _name, fields: str(pid) in (p, fields[1]))


def postgres_cpu_seconds() -> float:
    """CPU used so far by this machine's PostgreSQL processes (0 when none can be read)."""
    return _proc_cpu_seconds(lambda _p, name, _fields: name == "postgres")


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing and we may, else exit."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it (apt-get install -y wrk) ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "bench/run.py needs wrk (the HTTP load generator): install it with "
            "`sudo apt-get install -y wrk` (Debian/Ubuntu) and run again."
        )
    return found


def load_get(url: str, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run of plain GETs at ``url``: requests and requests per second."""
    argv = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{round(seconds)}s", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"requests": requests, "rps": round(requests / seconds, 1), "connections": connections}


def load(url: str, bodies: Path, key: str, *, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run: POST the bodies at ``url`` over ``connections`` connections."""
    argv = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s"]
    argv += ["-s", str(LUA), f"{url}/v1/disclosures", "--", str(bodies), key]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    result["connections"] = connections
    result["rps"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    return result
