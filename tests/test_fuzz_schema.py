"""Schemathesis over Bulwark's own OpenAPI document, against a real ``bulwark serve``.

Every operation, with the key of every role, through every phase schemathesis 4 has
(examples, coverage, fuzzing; then the stateful state machine) and with every check it
enables by default (among them: no 5xx; every status code, content type, header and body
declared; negative data refused and positive data accepted; ignored auth; missing required
headers; unsupported methods). Derandomized so CI is stable, and bounded: the operation's own
role gets ``MAX_EXAMPLES`` fuzzed cases, every other role a few (they are refused with 403
before any parsing matters).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from app.apidocs.typed import records_by_category
from app.callers.models import Role
from app.core.config import Settings
from app.main import create_app
from app.orders.issuing import issue_order, make_claims
from app.records.demo import DEMO_MAPPING, DEMO_PATRON
from app.records.mapping import load_mapping
from tests.conftest import COURT_ISS, COURT_KID, JURISDICTION, auth
from tests.factories import disclosure_body
from tests.servers import Server, provision, start_server

pytestmark = pytest.mark.slow

#: The role whose key each operation is called with; any other operation gets an admin's key.
ROLE_FOR = {
    "createDisclosure": Role.REQUESTER,
    "listDueNotices": Role.NOTIFIER,
    "markNoticeDelivered": Role.NOTIFIER,
}
#: 422s for requests the document cannot call invalid, since JSON Schema cannot compare two
#: values or know the log's state: `to` before `from` (body and query), an index or size
#: beyond the tree, a witness's note that is not a signed note.
SEMANTIC = {"date_order", "value_error"}
SEMANTIC_CODES = {"log.index_beyond_tree", "log.checkpoint_malformed"}
#: Stateful scenarios per role, and calls per scenario.
STATEFUL_EXAMPLES = 10
STATEFUL_STEPS = 6
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")
#: Fuzzed cases per operation for its own role, and for every other role.
MAX_EXAMPLES = 30
OTHER_ROLE_EXAMPLES = 3
#: A refusal of the key itself: the operation was not reached.
NOT_REACHED = {"caller.unauthenticated", "caller.forbidden"}


@dataclass
class Target:
    server: Server
    keys: dict[str, str]
    reached: dict[str, bool] = field(default_factory=dict)


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory,
    demo_store_url: str,
    trust_store_file: Path,
    court_key: tuple[bytes, dict[str, str]],
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'state.db'}",
        records_url=demo_store_url,
        trust_store=trust_store_file,
        jurisdictions=frozenset({JURISDICTION}),
        environment="test",
        rate_limit_per_minute=1_000_000,
    )
    keys = asyncio.run(provision(settings, "fuzz"))
    env = {
        "BULWARK_DATA_DIR": str(settings.data_dir),
        "BULWARK_DATABASE_URL": settings.state_url,
        "BULWARK_RECORDS_URL": demo_store_url,
        "BULWARK_TRUST_STORE": str(trust_store_file),
        "BULWARK_JURISDICTIONS": JURISDICTION,
        "BULWARK_ENVIRONMENT": "test",
        "BULWARK_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    server = start_server(env, root, name="fuzz")
    try:
        # Something in every list first, so that response bodies with items are checked too.
        token = issue_order(
            make_claims(iss=COURT_ISS, jurisdiction=JURISDICTION, patrons=[DEMO_PATRON]),
            court_key[0],
            COURT_KID,
            "ES256",
        )
        r = httpx.post(
            f"{server.url}/v1/disclosures",
            json=disclosure_body(token),
            headers=auth(keys["requester"]),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        yield Target(server, keys)
    finally:
        server.stop()


def _document() -> dict[str, Any]:
    # The document the server below publishes (checked by the last test): built from the app,
    # so that operations are known when tests are collected, with the records typed per
    # category from the demo mapping as the running server types them.
    settings = Settings(environment="test", _env_file=None)  # type: ignore[call-arg]
    document = create_app(settings).openapi()
    fields = load_mapping(DEMO_MAPPING).fields()
    records_by_category(document, {c.value: names for c, names in fields.items()})
    return document


schema = schemathesis.openapi.from_dict(_document())


#: The operation's own key (None), then every role's.
ROLES = [None, *Role]


@pytest.mark.parametrize("as_role", ROLES, ids=lambda r: r.value if r else "own")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, target: Target, as_role: Role | None
) -> None:
    operation_id = case.operation.definition.raw.get("operationId", case.operation.label)
    role = as_role or ROLE_FOR.get(operation_id, Role.ADMIN)
    _with_fresh_idempotency_key(case)
    response = case.call(
        base_url=target.server.url, headers=auth(target.keys[role.value]), timeout=30
    )
    codes = validate(case, response)
    if not codes & NOT_REACHED and as_role is None:
        target.reached[operation_id] = True


def validate(case: schemathesis.Case, response: Any) -> set[str]:
    """Every enabled check on ``response``; the problem's reason codes, if it is one."""
    codes: set[str] = set()
    kinds: set[str] = set()
    if response.headers.get("content-type", [""])[0].startswith("application/problem+json"):
        problem = response.json()
        codes = {r["code"] for r in problem.get("reasons", [])}
        kinds = {e["type"] for e in problem.get("errors", [])}
    # A refusal no JSON Schema can state (see SEMANTIC) is not a valid request rejected.
    semantic = response.status_code == 422 and bool(codes & SEMANTIC_CODES or kinds & SEMANTIC)
    excluded = [positive_data_acceptance] if semantic else []
    case.validate_response(response, excluded_checks=excluded)
    return codes


def _with_fresh_idempotency_key(case: schemathesis.Case) -> None:
    key = case.headers.get("Idempotency-Key", "") if case.headers else ""
    if IDEMPOTENCY_KEY.fullmatch(str(key)):
        # A valid key reused with another body is refused (422 idempotency.key_reused) by
        # design; each generated request gets a key of its own.
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"


@pytest.mark.parametrize("as_role", ROLES, ids=lambda r: r.value if r else "own")
def test_stateful_sequences_answer_as_documented(target: Target, as_role: Role | None) -> None:
    """The stateful phase: sequences of calls, each checked like a single call above."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            _with_fresh_idempotency_key(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            operation_id = case.operation.definition.raw.get("operationId")
            role = as_role or ROLE_FOR.get(operation_id, Role.ADMIN)
            headers = auth(target.keys[role.value])
            return {"base_url": target.server.url, "headers": headers, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case, **_: Any) -> None:
            validate(case, response)

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_every_operation_was_reached_with_a_valid_key(target: Target) -> None:
    """The keys chosen above are admitted: the fuzzing tested handlers, not just the guard."""
    published = httpx.get(f"{target.server.url}/openapi.json", timeout=10).json()
    assert published == _document()
    operations = {op["operationId"] for path in published["paths"].values() for op in path.values()}
    assert operations - set(target.reached) == set()
