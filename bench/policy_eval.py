"""Time evaluate() for a permit and a deny: median and p99 microseconds per call.

Run from the repository root: ``python bench/policy_eval.py [iterations]`` (default 20,000).
Each call is timed on its own with perf_counter_ns after a warm-up, so the figures include
building the trace and the obligations, as the disclosure path pays for them.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns

# Measure this working tree's code, whatever else is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.config import BUNDLED_POLICY
from app.orders.checks import OrderCheck, TrustedIssuer
from app.orders.models import OrderClaims
from app.policy.decision import AccessRequest, Decision, Effect, OrderState
from app.policy.engine import evaluate
from app.policy.models import load_policy
from app.records.categories import Category
from app.records.obligations import Period

NOW = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
POLICY = load_policy(BUNDLED_POLICY)
LIBRARY = frozenset({"US-IL", "US-FED"})
MAPPING = {
    Category.REGISTRATION: ("name", "address", "email", "date_of_birth", "card_number"),
    Category.CIRCULATION: ("title", "checkout_date", "due_date", "return_date"),
    Category.SEARCH_HISTORY: ("query_text", "searched_at", "source"),
}
CLAIMS = OrderClaims.model_validate(
    {
        "iss": "https://courts.example/il-cook",
        "aud": "bulwark",
        "iat": 1_790_000_000,
        "exp": 1_790_000_000 + 30 * 86400,
        "jti": "order-1",
        "case": "2026-CR-0042",
        "court": "Circuit Court of Cook County",
        "jurisdiction": "US-IL",
        "instrument": "court_order",
        "good_cause": True,
        "scope": {
            "patrons": [f"P{n:06d}" for n in range(20)],
            "categories": ["circulation", "registration"],
            "from": "2025-12-01",
            "to": "2026-12-31",
            "fields": {"circulation": ["title", "due_date"]},
        },
    }
)
ORDER = OrderCheck(
    claims=CLAIMS,
    issuer=TrustedIssuer("https://courts.example/il-cook", "Cook County", frozenset({"US-IL"})),
    failures=(),
)
PERMIT = AccessRequest(
    purpose="legal_process",
    patron_id="P000013",
    categories=(Category.CIRCULATION, Category.REGISTRATION),
    period=Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
    has_order=True,
)
# Several rules fail at once: a patron the order does not name, a period outside it.
DENY = AccessRequest(
    purpose="legal_process",
    patron_id="P999999",
    categories=(Category.CIRCULATION, Category.SEARCH_HISTORY),
    period=Period(dt.date(2024, 1, 1), dt.date(2026, 6, 30)),
    has_order=True,
)


def _case(request: AccessRequest) -> Callable[[], Decision]:
    def run() -> Decision:
        return evaluate(
            request,
            ORDER,
            OrderState(),
            POLICY,
            jurisdictions=LIBRARY,
            mapping_fields=MAPPING,
            now=NOW,
        )

    return run


def measure(run: Callable[[], Decision], iterations: int) -> tuple[float, float]:
    """Median and p99 of one call, in microseconds."""
    for _ in range(1000):
        run()
    samples = []
    for _ in range(iterations):
        start = perf_counter_ns()
        run()
        samples.append(perf_counter_ns() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples) / 1000, p99 / 1000


def main() -> None:
    """Print the figures for the permit and the deny case."""
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    permit, deny = _case(PERMIT), _case(DENY)
    assert permit().effect is Effect.PERMIT
    assert deny().effect is Effect.DENY
    print(f"evaluate(), {iterations} iterations each, Python {sys.version.split()[0]}")
    for name, run in (("permit", permit), ("deny", deny)):
        median, p99 = measure(run, iterations)
        print(f"  {name:<6}  median {median:6.1f} us   p99 {p99:6.1f} us")


if __name__ == "__main__":
    main()
