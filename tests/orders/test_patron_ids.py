"""One rule for patron ids: the issuing tool signs exactly the ids the API accepts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.disclosures.schemas import DisclosureRequest
from app.orders.cli import keys, orders
from app.orders.issuing import InvalidClaimsError, check_claims_for_issue, make_claims
from app.orders.models import PATRON_ID_CHARACTERS, PATRON_ID_WHITESPACE
from tests.conftest import auth

from .helpers import COOK

SAMPLES = [
    "P000123",
    "C0001",
    "c0001",
    "23105000123456",
    "jane.doe@example.org",
    "ns:patron-1_a",
    "C0001 ",
    " C0001",
    "\tC0001",
    "C0001\n",
    "C 0001",
    "",
    "x" * 128,
    "x" * 129,
    "P\x00",
    "Pé",
    "P/1",
    "P%20",
]


def _ask(patron: str) -> DisclosureRequest:
    """What the API makes of a request (no court order) for ``patron``."""
    return DisclosureRequest.model_validate(
        {
            "purpose": "legal_process",
            "patron_id": patron,
            "categories": ["circulation"],
            "from": "2026-01-01",
            "to": "2026-06-30",
        }
    )


def _api_accepts(patron: str) -> bool:
    try:
        _ask(patron)
    except ValidationError:
        return False
    return True


def _issuer_accepts(patron: str) -> bool:
    try:
        check_claims_for_issue(make_claims(patrons=[patron]))
    except InvalidClaimsError:
        return False
    return True


@pytest.mark.parametrize("patron", SAMPLES)
def test_the_api_and_the_issuing_tool_agree(patron: str) -> None:
    assert _api_accepts(patron) is _issuer_accepts(patron)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=140))
def test_they_agree_on_any_text(patron: str) -> None:
    assert _api_accepts(patron) is _issuer_accepts(patron)


@pytest.mark.parametrize("patron", ["C0001 ", " C0001", "C0001\t"])
def test_surrounding_whitespace_is_refused_by_both_with_the_same_words(
    patron: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidClaimsError) as issued:
        check_claims_for_issue(make_claims(patrons=[patron]))
    assert issued.value.problems == (f"scope.patrons.0: {PATRON_ID_WHITESPACE}",)
    with pytest.raises(ValidationError) as asked:
        _ask(patron)
    [error] = asked.value.errors()
    assert (error["type"], error["msg"]) == ("patron_id_whitespace", PATRON_ID_WHITESPACE)

    key = tmp_path / "court.pem"
    runner = CliRunner()
    made = runner.invoke(
        keys,
        [
            "generate",
            "--alg",
            "ES256",
            "--kid",
            "k1",
            "--private-key",
            str(key),
            "--iss",
            COOK,
            "--name",
            "Court",
            "--jurisdiction",
            "US-IL",
        ],
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(
        orders,
        [
            "issue",
            "--iss",
            COOK,
            "--case",
            "1",
            "--court",
            "Court",
            "--jurisdiction",
            "US-IL",
            "--good-cause",
            "--patron",
            patron,
            "--category",
            "circulation",
            "--from",
            "2026-01-01",
            "--to",
            "2026-06-30",
            "--key",
            str(key),
            "--kid",
            "k1",
        ],
    )
    assert result.exit_code == 2
    assert PATRON_ID_WHITESPACE in result.output
    assert "eyJ" not in result.output  # nothing was signed


def test_other_characters_are_refused_with_their_own_words() -> None:
    with pytest.raises(InvalidClaimsError) as issued:
        check_claims_for_issue(make_claims(patrons=["C/0001"]))
    assert issued.value.problems == (f"scope.patrons.0: {PATRON_ID_CHARACTERS}",)


async def test_the_api_says_the_same_words(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    body = {
        "purpose": "legal_process",
        "patron_id": "C0001 ",
        "categories": ["circulation"],
        "from": "2026-01-01",
        "to": "2026-06-30",
        "court_order": "x.y.z",
    }
    r = await client.post("/v1/disclosures", json=body, headers=auth(keys["requester"]))
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f"The request failed validation: body.patron_id (patron_id_whitespace): "
        f"{PATRON_ID_WHITESPACE}"
    )
    assert "C0001" not in r.text
