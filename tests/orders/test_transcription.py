"""The trust model: counsel never a court; a custodian's transcription needs the paper's digest
and counsel's approval by another person; the digest is kept in the audit log and exported."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.audit import service as audit_service
from app.core.config import Settings
from app.core.startup import StartupError
from app.orders.approvals import issue_approval
from app.orders.issuing import generate_key_pair, issue_order, issuer_entry, make_claims
from app.orders.trust import TrustStore, TrustStoreError
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime, build_runtime
from tests.conftest import COURT_ISS, JURISDICTION, auth, migrate
from tests.factories import disclosure_body

CUSTODIAN_ISS = "https://library.example/custodian"
COUNSEL_ISS = "https://library.example/counsel"
PAPER = b"%PDF-1.7 scanned order DEMO-2026-CR-0002, signed by Judge Example\n"
PAPER_SHA256 = hashlib.sha256(PAPER).hexdigest()

Keys = dict[str, tuple[bytes, dict[str, str]]]


@pytest.fixture(scope="module")
def library_keys() -> Keys:
    return {
        "custodian": generate_key_pair("ES256", "custodian-2026"),
        "counsel": generate_key_pair("ES256", "counsel-2026"),
    }


def document(court_key: tuple[bytes, dict[str, str]], library_keys: Keys) -> dict[str, Any]:
    return {
        "issuers": [
            issuer_entry(COURT_ISS, "Circuit Court of Cook County", [JURISDICTION], court_key[1]),
            issuer_entry(
                CUSTODIAN_ISS,
                "Library records custodian",
                [JURISDICTION],
                library_keys["custodian"][1],
                role="custodian",
            ),
        ],
        "counsel": [
            issuer_entry(COUNSEL_ISS, "Library counsel", [JURISDICTION], library_keys["counsel"][1])
        ],
    }


@pytest.fixture
def trust_store_file(
    tmp_path: Path, court_key: tuple[bytes, dict[str, str]], library_keys: Keys
) -> Path:
    path = tmp_path / "trust-store.json"
    path.write_text(json.dumps(document(court_key, library_keys)))
    return path


def transcription(library_keys: Keys, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "iss": CUSTODIAN_ISS,
        "jurisdiction": JURISDICTION,
        "patrons": [DEMO_PATRON],
        "paper_sha256": PAPER_SHA256,
        "transcribed_by": "custodian.alice",
        "jti": "transcribed-1",
    }
    values.update(overrides)
    claims = make_claims(**values)
    return issue_order(claims, library_keys["custodian"][0], "custodian-2026", "ES256")


def approval(library_keys: Keys, approver: str, jti: str = "transcribed-1") -> str:
    return issue_approval(
        CUSTODIAN_ISS,
        jti,
        library_keys["counsel"][0],
        "counsel-2026",
        "ES256",
        iss=COUNSEL_ISS,
        approver=approver,
    )


def body(token: str, approval_token: str | None) -> dict[str, Any]:
    if approval_token is None:
        return disclosure_body(token)
    return disclosure_body(token, counsel_approval=approval_token)


def codes(response: httpx.Response) -> list[str]:
    return [r["code"] for r in response.json()["reasons"]]


# --- counsel can never act as a court ----------------------------------------------------------


def test_counsel_key_listed_as_a_court_is_refused_at_start(
    court_key: tuple[bytes, dict[str, str]], library_keys: Keys, tmp_path: Path
) -> None:
    # docs/counsel.md used to put counsel's key under 'issuers': the same key material under
    # another iss and kid is counsel's key all the same.
    doc = document(court_key, library_keys)
    as_court = dict(library_keys["counsel"][1], kid="counsel-as-court")
    doc["issuers"].append(issuer_entry(COUNSEL_ISS + "/court", "Counsel", ["US-IL"], as_court))
    with pytest.raises(TrustStoreError, match="a counsel key can never act as a court"):
        TrustStore.from_document(doc)


def test_role_counsel_under_issuers_is_refused(
    court_key: tuple[bytes, dict[str, str]], library_keys: Keys
) -> None:
    doc = document(court_key, library_keys)
    doc["issuers"][1]["role"] = "counsel"
    with pytest.raises(TrustStoreError, match="counsel can never act as a court"):
        TrustStore.from_document(doc)
    doc["issuers"][1]["role"] = "clerk"
    with pytest.raises(TrustStoreError, match="'role' must be one of court, custodian"):
        TrustStore.from_document(doc)
    doc = document(court_key, library_keys)
    doc["counsel"][0]["role"] = "court"
    with pytest.raises(TrustStoreError, match="only have role 'counsel'"):
        TrustStore.from_document(doc)


async def test_the_service_refuses_to_start_with_counsel_as_a_court(
    make_settings: Callable[..., Settings],
    court_key: tuple[bytes, dict[str, str]],
    library_keys: Keys,
    tmp_path: Path,
) -> None:
    doc = document(court_key, library_keys)
    as_court = copy.deepcopy(doc["counsel"][0]) | {"iss": "https://x.example/c"}
    as_court["keys"][0]["kid"] = "counsel-as-court"
    doc["issuers"].append(as_court)
    path = tmp_path / "counsel-as-court.json"
    path.write_text(json.dumps(doc))
    settings = make_settings(trust_store=path)
    await migrate(settings)
    with pytest.raises(StartupError, match="counsel key can never act as a court"):
        await build_runtime(settings)


def test_an_older_trust_store_still_loads_as_courts(trust_store_file: Path) -> None:
    store = TrustStore.load(trust_store_file)
    court = store.issuer(COURT_ISS)
    assert court is not None and court.role == "court" and not court.transcribes
    custodian = store.issuer(CUSTODIAN_ISS)
    assert custodian is not None and custodian.transcribes


# --- two-person control, through the API -------------------------------------------------------


async def test_a_transcription_approved_by_another_person_is_released_and_its_paper_kept(
    client: httpx.AsyncClient, keys: dict[str, str], library_keys: Keys, runtime: Runtime
) -> None:
    token = transcription(library_keys)
    r = await client.post(
        "/v1/disclosures",
        json=body(token, approval(library_keys, "counsel.bob")),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 200, r.text
    seq = r.json()["audit"]["seq"]
    page = await client.get(
        "/v1/audit/events", params={"after": seq - 1, "limit": 1}, headers=auth(keys["auditor"])
    )
    event = page.json()["events"][0]
    assert event["body"]["order"]["paper_sha256"] == PAPER_SHA256
    # The export (`bulwark audit export`) carries it too, in the hashed body.
    exported = [e async for e in audit_service.export_events(runtime.state, start=None, end=None)]
    mine = next(e for e in exported if e["seq"] == seq)
    assert mine["body"]["order"]["paper_sha256"] == PAPER_SHA256
    assert PAPER_SHA256 in mine["body_canonical"]


async def test_the_transcriber_approving_their_own_transcription_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], library_keys: Keys
) -> None:
    token = transcription(library_keys)
    r = await client.post(
        "/v1/disclosures",
        json=body(token, approval(library_keys, "custodian.alice")),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 403
    assert codes(r) == ["approval.same_person"]


async def test_an_unnamed_transcriber_or_approver_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], library_keys: Keys
) -> None:
    from app.orders.issuing import OMIT

    token = transcription(library_keys, transcribed_by=OMIT, jti="transcribed-2")
    r = await client.post(
        "/v1/disclosures",
        json=body(token, approval(library_keys, "counsel.bob", jti="transcribed-2")),
        headers=auth(keys["requester"]),
    )
    assert codes(r) == ["approval.same_person"]


async def test_a_transcription_without_approval_or_paper_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], library_keys: Keys
) -> None:
    from app.orders.issuing import OMIT

    r = await client.post(
        "/v1/disclosures",
        json=body(transcription(library_keys), None),
        headers=auth(keys["requester"]),
    )
    assert (r.status_code, codes(r)) == (403, ["approval.missing"])
    no_paper = transcription(library_keys, paper_sha256=OMIT, jti="transcribed-3")
    r = await client.post(
        "/v1/disclosures",
        json=body(no_paper, approval(library_keys, "counsel.bob", jti="transcribed-3")),
        headers=auth(keys["requester"]),
    )
    assert (r.status_code, codes(r)) == (403, ["order.paper_missing"])


async def test_a_court_order_needs_no_approval_unless_the_policy_says_so(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Callable[..., str]
) -> None:
    token = order_token(patrons=[DEMO_PATRON])
    r = await client.post(
        "/v1/disclosures", json=body(token, None), headers=auth(keys["requester"])
    )
    assert r.status_code == 200, r.text


def test_a_malformed_paper_digest_is_a_claims_fault() -> None:
    from pydantic import ValidationError

    from app.orders.models import OrderClaims

    with pytest.raises(ValidationError):
        OrderClaims.model_validate(make_claims(paper_sha256="ABC"))
