"""How long one court-order verification takes: median and p99, RS256 and ES256.

Run: ``python bench/verify_tokens.py [--iterations N] [--rsa-bits BITS]``

Keys are generated in memory; each token is verified ``N`` times by one ``OrderVerifier``,
exactly as a request would (parse, header checks, key lookup, signature, typed claims).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.orders.issuing import generate_key_pair, issue_order, make_claims
from app.orders.tokens import OrderVerifier
from app.orders.trust import TrustStore

ISS = "https://courts.example/il-cook"


def measure(verifier: OrderVerifier, token: str, now: dt.datetime, iterations: int) -> list[int]:
    """Nanoseconds per verify, one sample per call (after a short warm-up)."""
    for _ in range(50):
        verifier.verify(token, now)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        check = verifier.verify(token, now)
        samples.append(time.perf_counter_ns() - start)
        if not check.verified:
            raise SystemExit(f"benchmark token failed to verify: {check.failures}")
    return samples


def main() -> None:
    """Print one line per algorithm: median and p99 in microseconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--rsa-bits", type=int, default=2048)
    args = parser.parse_args()

    rsa_pem, rsa_jwk = generate_key_pair("RS256", "bench-rs", rsa_bits=args.rsa_bits)
    ec_pem, ec_jwk = generate_key_pair("ES256", "bench-es")
    trust = TrustStore.from_document(
        {"issuers": [{"iss": ISS, "name": "Bench", "jurisdictions": ["US-IL"],
                      "keys": [rsa_jwk, ec_jwk]}]}
    )  # fmt: skip
    verifier = OrderVerifier(
        trust,
        audience="bulwark",
        allowed_algorithms={"RS256", "ES256"},
        clock_skew_seconds=60,
        max_lifetime_days=90,
    )
    now = dt.datetime.now(dt.UTC)
    print(f"{args.iterations} verifications each, python {sys.version.split()[0]}")
    for alg, pem, kid in (("RS256", rsa_pem, "bench-rs"), ("ES256", ec_pem, "bench-es")):
        token = issue_order(make_claims(iss=ISS, now=now), pem, kid, alg, now=now)
        samples = sorted(measure(verifier, token, now, args.iterations))
        median = statistics.median(samples) / 1000
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000
        label = f"{alg} (RSA {args.rsa_bits})" if alg == "RS256" else f"{alg} (P-256)"
        print(f"{label:<18} median {median:8.1f} µs   p99 {p99:8.1f} µs")


if __name__ == "__main__":
    main()
