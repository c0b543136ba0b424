"""Bulwark against a bare pass-through: throughput, latency, their ratios, and the targets.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 and wrk installed::

    python bench/run.py                      # default: 1,000,000 loans, SQLite and PostgreSQL
    python bench/run.py --scale              # also 10k / 1M / 10M loans on PostgreSQL
    python bench/run.py --profile            # also py-spy profiles of the permit and deny paths

What one run does:

1. seeds the records stores (the demo generator, about ``--loans`` loan rows over
   ``--patrons`` patrons, plus the benchmark patron's 80 loans) in SQLite and PostgreSQL,
   reusing a store an earlier run seeded at the same size;
2. builds a fresh Bulwark state database on PostgreSQL (migrations, instance secrets, a bench
   court in the trust store, a requester and an auditor);
3. per store, starts ``bulwark serve`` (one worker) and the baseline of ``bench/baseline.py``
   (one worker, same store, same query), checks that both return the same records, then
   drives each with wrk from a separate process: the baseline, the permit path (fresh court
   orders, each good for 1,000 uses) and the deny path (a well-formed order with a bad
   signature, from an authenticated caller); each at 64 connections and at 1;
4. checks the audit chain (intact, and at least one event for every answered decision);
5. prints the figures and the ratios against the targets, and writes them all as JSON to
   ``bench/results/<time>.json`` (and ``bench/results/latest.json``) so that runs compare.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import harness  # noqa: E402
from bench.harness import WORK, Deployment, Store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ORDERS_PER_RUN = 150  # x 1,000 uses: more permits than any one run can answer
TARGETS = {
    "permit_rps_ratio": (">=", 0.6),
    "deny_rps_ratio": (">=", 0.8),
    "permit_p50_added_ms": ("<=", 1.0),
    "permit_p99_added_ms": ("<=", 2.0),
}
SCALE_TARGET = 1.5
SCALE_SIZES = (10_000, 1_000_000, 10_000_000)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000, help="loan rows in the store")
    parser.add_argument("--patrons", type=int, default=20_000)
    parser.add_argument(
        "--stores", default="sqlite,postgresql", help="records stores to measure, comma-separated"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, default=1, help="Bulwark's workers (the targets are for one)"
    )
    parser.add_argument("--scale", action="store_true", help="also the 10k/1M/10M-row runs")
    parser.add_argument("--profile", action="store_true", help="also profile under load")
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument("--reseed", action="store_true", help="regenerate the stores")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    return parser.parse_args()


# --------------------------------------------------------------------------- one store


class Bench:
    """One benchmark run: the deployment, the answered decisions, and the figures."""

    def __init__(self, args: argparse.Namespace, deployment: Deployment) -> None:
        self.args = args
        self.deployment = deployment
        self.answered = 0  # decisions Bulwark answered (each must have its audit event)
        self.runs = 0

    def bodies(self, kind: str) -> Path:
        """A fresh bodies file: new orders for the permit path, a forged one for the deny."""
        self.runs += 1
        pem = self.deployment.court_pem
        tokens = harness.issue_orders(pem, ORDERS_PER_RUN if kind == "permit" else 1)
        if kind == "deny":
            tokens = [harness.forged(tokens[0])]
        return harness.write_bodies(WORK / f"bodies-{kind}-{self.runs}.jsonl", tokens)

    def load(self, server: harness.Server, kind: str, connections: int, seconds: float) -> Any:
        key = "" if kind == "baseline" else self.deployment.requester_key
        result = harness.load(
            server.url, self.bodies(kind), key, connections=connections, seconds=seconds
        )
        expected = {"baseline": "200", "permit": "200", "deny": "403"}[kind]
        result["unexpected"] = sum(n for code, n in result["statuses"].items() if code != expected)
        if kind != "baseline":
            self.answered += sum(result["statuses"].get(c, 0) for c in ("200", "403"))
        # wrk counts every non-2xx answer as a "status" error: the deny path's 403s are not.
        failures = sum(v for k, v in result["errors"].items() if k != "status")
        if result["unexpected"] or failures:
            print(f"   ! {kind}: statuses {result['statuses']} errors {result['errors']}")
        return result

    def measure(self, server: harness.Server, kind: str) -> dict[str, Any]:
        """Warm up, then 64 connections and 1 connection."""
        args = self.args
        self.load(server, kind, args.connections, args.warmup)
        before = harness.cpu_seconds(server.pid), harness.postgres_cpu_seconds()
        many = self.load(server, kind, args.connections, args.duration)
        after = harness.cpu_seconds(server.pid), harness.postgres_cpu_seconds()
        one = self.load(server, kind, 1, args.duration)
        # CPU per answered request at 64 connections: is the server bound by its own CPU?
        answered = max(many["requests"], 1)
        many["cpu_ms_per_request"] = round((after[0] - before[0]) / answered * 1000, 3)
        many["postgres_cpu_ms_per_request"] = round((after[1] - before[1]) / answered * 1000, 3)
        many["server_cpu_busy"] = round((after[0] - before[0]) / args.duration, 2)
        row = {"c64": many, "c1": one}
        print(
            f"   {kind:<9} {many['rps']:>9.1f} rps   "
            f"p50/p99 @1 {ms(one, 'p50'):6.2f}/{ms(one, 'p99'):6.2f} ms   "
            f"@{args.connections} {ms(many, 'p50'):6.2f}/{ms(many, 'p99'):6.2f} ms   "
            f"cpu/req {many['cpu_ms_per_request']:.3f} ms "
            f"(+pg {many['postgres_cpu_ms_per_request']:.3f}), busy {many['server_cpu_busy']:.0%}"
        )
        return row

    def store(self, store: Store) -> dict[str, Any]:
        """Baseline, permit and deny against one records store."""
        print(f"\n== {store.backend}: {store.loans:,} loans over {store.patrons:,} patrons")
        load_before = os.getloadavg()
        with (
            harness.baseline(store.url) as base,
            harness.bulwark(self.deployment, store.url, self.args.workers) as bw,
        ):
            same = self.same_answer(base, bw)
            figures = {kind: self.measure(base if kind == "baseline" else bw, kind)
                       for kind in ("baseline", "permit", "deny")}  # fmt: skip
            audit = self.audit(bw)
            fixed = self.fixed_cost(base, bw)
        ratios = compare(figures)
        for name, value in ratios.items():
            op, bound = TARGETS[name]
            print(f"   {name:<22} {value:8.3f}   target {op} {bound}   {verdict(name, value)}")
        return {"store": asdict(store), "records": same, "figures": figures, "ratios": ratios,
                "targets": {k: verdict(k, v) for k, v in ratios.items()}, "audit": audit,
                "fixed_cost": fixed,
                "plan": harness.explain(store.url),
                # Other work on the machine skews every figure: kept with them, to judge by.
                "load_average": {"before": load_before, "after": os.getloadavg()}}  # fmt: skip

    def fixed_cost(self, base: harness.Server, bw: harness.Server) -> dict[str, Any]:
        """``GET /healthz`` on both servers: what every request costs before any work is done.

        Both answer a constant; the difference is the framework, middleware, logging and
        headers that every Bulwark request goes through, measured apart from its own work.
        """
        out = {}
        for name, server in (("baseline", base), ("bulwark", bw)):
            started = harness.cpu_seconds(server.pid)
            result = harness.load_get(f"{server.url}/healthz", self.args.connections, 5)
            cpu = harness.cpu_seconds(server.pid) - started
            result["cpu_ms_per_request"] = round(cpu / max(result["requests"], 1) * 1000, 3)
            out[name] = result
        print(
            "   GET /healthz   "
            + "   ".join(
                f"{n} {r['rps']:.0f} rps, cpu/req {r['cpu_ms_per_request']:.3f} ms"
                for n, r in out.items()
            )
        )
        return out

    def same_answer(self, base: harness.Server, bw: harness.Server) -> int:
        """Both servers return the same records for the benchmark request; the deny denies."""
        token = harness.issue_orders(self.deployment.court_pem, 1)[0]
        body = harness.request_body(token)
        headers = {"Authorization": f"Bearer {self.deployment.requester_key}"}
        permit = httpx.post(f"{bw.url}/v1/disclosures", json=body, headers=headers, timeout=10)
        plain = httpx.post(f"{base.url}/v1/disclosures", json=body, timeout=10)
        bad = {**body, "court_order": harness.forged(token)}
        deny = httpx.post(f"{bw.url}/v1/disclosures", json=bad, headers=headers, timeout=10)
        self.answered += 2
        if permit.status_code != 200 or plain.status_code != 200:
            raise SystemExit(f"sanity: permit {permit.status_code} {permit.text[:500]}")
        if permit.json()["records"] != plain.json()["records"]:
            raise SystemExit("sanity: Bulwark and the baseline returned different records")
        codes = [r["code"] for r in deny.json().get("reasons", [])]
        if deny.status_code != 403 or "order.signature_invalid" not in codes:
            raise SystemExit(f"sanity: deny {deny.status_code} {deny.text[:500]}")
        return len(plain.json()["records"]["circulation"])

    def audit(self, bw: harness.Server) -> dict[str, Any]:
        """The chain verifies, and holds an event for every decision answered so far."""
        headers = {"Authorization": f"Bearer {self.deployment.auditor_key}"}
        started = time.perf_counter()
        report = httpx.get(f"{bw.url}/v1/audit/verify", headers=headers, timeout=300).json()
        result = {
            "ok": report["ok"],
            "events": report["events"],
            "answered_decisions": self.answered,
            "every_answer_audited": report["events"] >= self.answered,
            "verify_seconds": round(time.perf_counter() - started, 2),
        }
        print(f"   audit: {result}")
        return result


def ms(result: dict[str, Any], percentile: str) -> float:
    """A wrk latency percentile in milliseconds."""
    return float(result["latency_us"][percentile]) / 1000


def compare(figures: dict[str, Any]) -> dict[str, float]:
    """The four ratios and differences the targets are stated in."""
    base, permit, deny = figures["baseline"], figures["permit"], figures["deny"]
    return {
        "permit_rps_ratio": round(permit["c64"]["rps"] / base["c64"]["rps"], 3),
        "deny_rps_ratio": round(deny["c64"]["rps"] / base["c64"]["rps"], 3),
        "permit_p50_added_ms": round(ms(permit["c1"], "p50") - ms(base["c1"], "p50"), 3),
        "permit_p99_added_ms": round(ms(permit["c1"], "p99") - ms(base["c1"], "p99"), 3),
    }


def verdict(name: str, value: float) -> str:
    op, bound = TARGETS[name]
    met = value >= bound if op == ">=" else value <= bound
    return "met" if met else "MISSED"


# --------------------------------------------------------------------------- scale, profile


def scale(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """Permit latency at one connection for the same request as the store grows."""
    print("\n== scale: permit latency at 1 connection, PostgreSQL store")
    sizes: dict[str, Any] = {}
    for loans in SCALE_SIZES:
        store = harness.seed_store("postgresql", loans, args.patrons, reseed=args.reseed)
        with harness.bulwark(bench.deployment, store.url) as bw:
            bench.load(bw, "permit", 1, args.warmup)
            one = bench.load(bw, "permit", 1, args.duration)
        sizes[str(loans)] = {"store": asdict(store), "c1": one, "plan": harness.explain(store.url)}
        print(f"   {loans:>12,} loans   p50 {ms(one, 'p50'):6.2f} ms   p99 {ms(one, 'p99'):6.2f} ms"
              f"   (seeded in {store.seed_seconds} s)")  # fmt: skip
    small, large = sizes[str(SCALE_SIZES[0])]["c1"], sizes[str(SCALE_SIZES[-1])]["c1"]
    ratio = {p: round(ms(large, p) / ms(small, p), 3) for p in ("p50", "p99")}
    met = "met" if ratio["p50"] <= SCALE_TARGET else "MISSED"
    print(f"   10M / 10k latency: p50 x{ratio['p50']}  p99 x{ratio['p99']}   "
          f"target p50 <= x{SCALE_TARGET}   {met}")  # fmt: skip
    return {"sizes": sizes, "ratio_largest_to_smallest": ratio, "target": met}


def profile(bench: Bench, store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """py-spy profiles of the permit and the deny path at full load."""
    from bench import profiling

    out: dict[str, Any] = {}
    with harness.bulwark(bench.deployment, store.url) as bw:
        for kind in ("permit", "deny"):
            bench.load(bw, kind, args.connections, args.warmup)
            raw = RESULTS / f"profile-{kind}.txt"
            sampler = profiling.record(bw.pid, args.profile_seconds, raw)
            bench.load(bw, kind, args.connections, args.profile_seconds)
            sampler.wait(60)
            summary = profiling.summarise(raw)
            text = profiling.render(summary, f"{kind} path, {store.backend} store")
            (RESULTS / f"profile-{kind}.summary.txt").write_text(text + "\n")
            print(text)
            out[kind] = {"raw": str(raw.relative_to(ROOT)), **summary}
    return out


# --------------------------------------------------------------------------- the run


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import sqlalchemy
    import uvicorn

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor())  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "commit": commit,
    }


def main() -> None:
    args = parse_args()
    harness.ensure_wrk()
    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "stores": {},
    }
    print("seeding the records stores (reused when an earlier run left them) ...", flush=True)
    stores = [
        harness.seed_store(backend, args.loans, args.patrons, reseed=args.reseed)
        for backend in args.stores.split(",")
    ]
    for store in stores:
        took = "reused" if store.seed_seconds is None else f"{store.seed_seconds} s"
        print(f"   {store.backend}: {harness.redacted(store.url)} ({took})")
    state_url = harness.recreate_pg_database("bulwark_bench_state")
    bench = Bench(args, harness.prepare_deployment(state_url, WORK / "data"))
    for store in stores:
        results["stores"][store.backend] = bench.store(store)
    if args.profile:
        postgres = next((s for s in stores if s.backend == "postgresql"), stores[0])
        results["profile"] = profile(bench, postgres, args)
    if args.scale:
        results["scale"] = scale(bench, args)
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = args.out or RESULTS / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    text = json.dumps(results, indent=2)
    out.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(f"\nfigures written to {out} ({results['seconds']} s in all)")


if __name__ == "__main__":
    main()
