"""Counsel's tools: `orders issue` refuses what the API refuses (same codes, same messages) and
prints iss/jti; `orders inspect`; `orders approve` for the second signature."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import Result

from app.core.reasons import Reason, message_of
from app.orders.cli import keys, orders

from .test_cli import KID, _generate, _issue, _run, deployment


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A court (Cook, US-IL), the library's custodian and counsel, in one trust store."""
    store = tmp_path / "trust.json"
    result, court = _generate(tmp_path, "--trust-store", str(store))
    assert result.exit_code == 0, result.output
    custodian = tmp_path / "custodian.pem"
    counsel = tmp_path / "counsel.pem"
    for path, kid, iss, flag in (
        (custodian, "custodian-2026", "https://library.example/custodian", "--custodian"),
        (counsel, "counsel-2026", "https://library.example/counsel", "--counsel"),
    ):
        made = _run(
            keys,
            "generate",
            "--kid",
            kid,
            "--private-key",
            str(path),
            "--iss",
            iss,
            "--name",
            "Library",
            "--jurisdiction",
            "US-IL",
            "--trust-store",
            str(store),
            flag,
        )
        assert made.exit_code == 0, made.output
    deployment(monkeypatch, store)
    paper = tmp_path / "order.pdf"
    paper.write_bytes(b"%PDF scanned paper order\n")
    return {
        "store": store,
        "court": court,
        "custodian": custodian,
        "counsel": counsel,
        "paper": paper,
    }


def refused_with(result: Result, reason: Reason) -> None:
    assert result.exit_code != 0
    assert "nothing was issued" in result.output
    # Bulwark's own code and message, word for word.
    assert f"{reason.value}: {message_of(reason)}" in result.output


def test_issue_refuses_a_subpoena(library: dict[str, Path]) -> None:
    refused_with(
        _issue(library["court"], "--instrument", "subpoena"), Reason.ORDER_NOT_COURT_ISSUED
    )


def test_issue_refuses_no_good_cause(library: dict[str, Path]) -> None:
    refused_with(_issue(library["court"], "--no-good-cause"), Reason.ORDER_NO_GOOD_CAUSE)


def test_issue_refuses_a_wrong_kid(library: dict[str, Path]) -> None:
    refused_with(_issue(library["court"], "--kid", "cook-2025"), Reason.ORDER_UNKNOWN_KEY)


def test_issue_refuses_a_foreign_jurisdiction(library: dict[str, Path]) -> None:
    result = _issue(library["court"], "--jurisdiction", "US-CA")
    refused_with(result, Reason.ORDER_JURISDICTION)


def test_issue_refuses_an_issuer_not_in_the_trust_store(library: dict[str, Path]) -> None:
    result = _issue(library["court"], "--iss", "https://courts.example/elsewhere")
    refused_with(result, Reason.ORDER_UNTRUSTED_ISSUER)


def test_issue_without_the_deployment_settings_refuses(
    library: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BULWARK_TRUST_STORE")
    result = _issue(library["court"])
    assert result.exit_code != 0
    assert "BULWARK_TRUST_STORE is not set" in result.output


def test_issue_prints_iss_and_jti(library: dict[str, Path]) -> None:
    result = _issue(library["court"], "--jti", "o-7")
    assert result.exit_code == 0, result.output
    assert "iss=https://courts.example/il-cook jti=o-7" in result.stderr
    assert result.stdout.count(".") == 2  # the token alone on stdout, ready for $(...)


def test_inspect_shows_the_claims_and_the_decision(library: dict[str, Path]) -> None:
    token = _issue(library["court"], "--jti", "o-8").stdout.strip()
    result = _run(orders, "inspect", token)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["claims"]["jti"] == "o-8"
    assert shown["header"]["kid"] == KID
    assert shown["verified"] is True
    assert shown["decision"]["effect"] == "permit"
    assert "P000123" not in result.stdout  # patrons counted, never printed
    assert shown["claims"]["scope"]["patrons_named"] == 1
    bad = _issue(library["court"], "--instrument", "subpoena", "--allow-invalid").stdout.strip()
    shown = json.loads(_run(orders, "inspect", bad).stdout)
    assert shown["decision"]["effect"] == "deny"
    assert [r["code"] for r in shown["decision"]["reasons"]] == ["order.not_court_issued"]


def _transcribe(library: dict[str, Path], *extra: str) -> Result:
    return _issue(
        library["custodian"],
        "--iss",
        "https://library.example/custodian",
        "--kid",
        "custodian-2026",
        "--jti",
        "t-1",
        *extra,
    )


def test_transcription_with_paper_then_approval_by_another_person(
    library: dict[str, Path],
) -> None:
    issued = _transcribe(library, "--paper", str(library["paper"]), "--transcribed-by", "alice")
    assert issued.exit_code == 0, issued.output
    assert "counsel must approve it" in issued.stderr
    token = issued.stdout.strip()
    shown = json.loads(_run(orders, "inspect", token).stdout)
    assert (
        shown["claims"]["paper_sha256"] == hashlib.sha256(b"%PDF scanned paper order\n").hexdigest()
    )
    assert shown["transcription"] is True
    assert [r["code"] for r in shown["decision"]["reasons"]] == ["approval.missing"]
    approve = ["approve", token, "--key", str(library["counsel"]), "--kid", "counsel-2026"]
    approve += ["--iss", "https://library.example/counsel"]
    same = _run(orders, *approve, "--approver", "alice")
    assert same.exit_code != 0
    assert f"approval.same_person: {message_of(Reason.APPROVAL_SAME_PERSON)}" in same.output
    other = _run(orders, *approve, "--approver", "bob")
    assert other.exit_code == 0, other.output
    approval = other.stdout.strip()
    both = json.loads(_run(orders, "inspect", token, "--approval", approval).stdout)
    assert both["decision"]["effect"] == "permit"


def test_transcription_without_paper_is_not_issued(library: dict[str, Path]) -> None:
    refused_with(_transcribe(library, "--transcribed-by", "alice"), Reason.ORDER_PAPER_MISSING)


def test_a_counsel_key_cannot_sign_an_order(library: dict[str, Path]) -> None:
    result = _issue(
        library["counsel"], "--iss", "https://library.example/counsel", "--kid", "counsel-2026"
    )
    refused_with(result, Reason.ORDER_UNTRUSTED_ISSUER)
