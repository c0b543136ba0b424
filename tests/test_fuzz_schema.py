"""Schemathesis over Bulwark's own OpenAPI document, against a real ``bulwark serve``.

Every operation, with a valid key for it, derandomized so CI is stable: no 5xx, every status
code, content type, header and body declared by the document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.callers.models import Role
from app.core.config import Settings
from app.main import create_app
from app.orders.issuing import issue_order, make_claims
from app.records.demo import DEMO_PATRON
from tests.conftest import COURT_ISS, COURT_KID, JURISDICTION, auth
from tests.servers import Server, provision, start_server

pytestmark = pytest.mark.slow

#: The role whose key each operation is called with; any other operation gets an admin's key.
ROLE_FOR = {
    "createDisclosure": Role.REQUESTER,
    "listDueNotices": Role.NOTIFIER,
    "markNoticeDelivered": Role.NOTIFIER,
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
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
            json={
                "purpose": "legal_process",
                "patron_id": DEMO_PATRON,
                "categories": ["circulation"],
                "from": "2026-01-01",
                "to": "2026-06-30",
                "court_order": token,
            },
            headers=auth(keys["requester"]),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        yield Target(server, keys)
    finally:
        server.stop()


def _document() -> dict[str, Any]:
    # The document the server below publishes (checked by the last test): built from the app,
    # so that operations are known when tests are collected.
    settings = Settings(environment="test", _env_file=None)  # type: ignore[call-arg]
    return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, target: Target) -> None:
    operation_id = case.operation.definition.raw.get("operationId", case.operation.label)
    role = ROLE_FOR.get(operation_id, Role.ADMIN)
    response = case.call_and_validate(
        base_url=target.server.url,
        headers=auth(target.keys[role.value]),
        checks=CHECKS,
        timeout=30,
    )
    codes = set()
    if response.headers.get("content-type", [""])[0].startswith("application/problem+json"):
        codes = {r["code"] for r in response.json().get("reasons", [])}
    if not codes & NOT_REACHED:
        target.reached[operation_id] = True


def test_every_operation_was_reached_with_a_valid_key(target: Target) -> None:
    """The keys chosen above are admitted: the fuzzing tested handlers, not just the guard."""
    published = httpx.get(f"{target.server.url}/openapi.json", timeout=10).json()
    assert published == _document()
    operations = {op["operationId"] for path in published["paths"].values() for op in path.values()}
    assert operations - set(target.reached) == set()
