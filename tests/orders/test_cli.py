"""``keys generate`` and ``orders issue`` through click's runner."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from app.core.reasons import Reason
from app.orders.cli import keys, orders
from app.orders.tokens import OrderVerifier
from app.orders.trust import TrustStore

from .helpers import AUDIENCE, COOK, MAX_LIFETIME_DAYS, SKEW

KID = "cook-cli-2026"


def _run(group: click.Group, *args: str) -> Result:
    return CliRunner().invoke(group, list(args), catch_exceptions=False)


def _generate(tmp_path: Path, *extra: str, alg: str = "ES256") -> tuple[Result, Path]:
    key = tmp_path / "court.pem"
    result = _run(
        keys,
        "generate",
        "--alg",
        alg,
        "--kid",
        KID,
        "--private-key",
        str(key),
        "--iss",
        COOK,
        "--name",
        "Circuit Court of Cook County",
        "--jurisdiction",
        "US-IL",
        *extra,
    )
    return result, key


def _issue(key: Path, *extra: str) -> Result:
    return _run(
        orders,
        "issue",
        "--iss",
        COOK,
        "--case",
        "2026-CR-0042",
        "--court",
        "Circuit Court of Cook County",
        "--jurisdiction",
        "US-IL",
        "--good-cause",
        "--patron",
        "P000123",
        "--category",
        "circulation",
        "--from",
        "2026-01-01",
        "--to",
        "2026-06-30",
        "--key",
        str(key),
        "--kid",
        KID,
        *extra,
    )


def _verifier(store: Path) -> OrderVerifier:
    return OrderVerifier(
        TrustStore.load(store),
        audience=AUDIENCE,
        allowed_algorithms={"ES256", "RS256"},
        clock_skew_seconds=SKEW,
        max_lifetime_days=MAX_LIFETIME_DAYS,
    )


@pytest.fixture
def court(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A generated ES256 court key and a trust store holding its public half, which is also
    the deployment's (``orders issue`` checks orders against it)."""
    store = tmp_path / "trust.json"
    result, key = _generate(tmp_path, "--trust-store", str(store))
    assert result.exit_code == 0, result.output
    deployment(monkeypatch, store)
    return key, store


def deployment(monkeypatch: pytest.MonkeyPatch, store: Path) -> None:
    """The settings ``orders issue`` checks against: this trust store, a US-IL library."""
    monkeypatch.setenv("BULWARK_TRUST_STORE", str(store))
    monkeypatch.setenv("BULWARK_JURISDICTIONS", "US-IL")


def test_keys_generate_writes_a_0600_key_and_prints_the_entry(tmp_path: Path) -> None:
    result, key = _generate(tmp_path)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    entry = json.loads(result.stdout)
    assert entry["iss"] == COOK
    assert entry["jurisdictions"] == ["US-IL"]
    assert entry["keys"][0]["kid"] == KID
    assert "d" not in entry["keys"][0]
    TrustStore.from_document({"issuers": [entry]})  # a valid trust-store entry


def test_keys_generate_rsa(tmp_path: Path) -> None:
    result, _ = _generate(tmp_path, alg="RS256")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["keys"][0]["kty"] == "RSA"


def test_keys_generate_merges_into_a_trust_store(court: tuple[Path, Path]) -> None:
    _, store = court
    assert TrustStore.load(store).key(COOK, KID) is not None


def test_keys_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    key = tmp_path / "court.pem"
    key.write_bytes(b"the key in use")
    result, _ = _generate(tmp_path)
    assert result.exit_code != 0
    assert "refusing to overwrite" in result.output
    assert key.read_bytes() == b"the key in use"


def test_keys_generate_refuses_a_duplicate_kid(court: tuple[Path, Path], tmp_path: Path) -> None:
    _, store = court
    other = tmp_path / "again"
    other.mkdir()
    result, key = _generate(other, "--trust-store", str(store))
    assert result.exit_code != 0
    assert "duplicate kid" in result.output
    assert not key.exists()  # an unusable key is not left behind


def test_orders_issue_prints_a_token_that_verifies(court: tuple[Path, Path]) -> None:
    key, store = court
    result = _issue(key, "--field", "circulation=title", "--max-uses", "2", "--jti", "o-1")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    check = _verifier(store).verify(token, dt.datetime.now(dt.UTC))
    assert check.failures == ()
    assert check.claims is not None
    assert check.claims.jti == "o-1"
    assert check.claims.max_uses == 2
    assert check.claims.good_cause is True
    assert check.claims.scope.fields == {"circulation": ["title"]}


def test_orders_issue_with_rsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "trust.json"
    result, key = _generate(tmp_path, "--trust-store", str(store), alg="RS256")
    assert result.exit_code == 0, result.output
    deployment(monkeypatch, store)
    result = _issue(key, "--nbf", "2020-01-01T00:00:00")
    assert result.exit_code == 0, result.output
    check = _verifier(store).verify(result.stdout.strip(), dt.datetime.now(dt.UTC))
    assert check.verified
    assert check.unverified["alg"] == "RS256"


def test_orders_issue_refuses_invalid_claims(court: tuple[Path, Path]) -> None:
    key, _ = court
    result = _issue(key, "--lifetime-days", "400")
    assert result.exit_code != 0
    assert "Bulwark would refuse these claims" in result.output
    assert "lifetime is longer than 90 days" in result.output


def test_orders_issue_refuses_an_unknown_field_category(court: tuple[Path, Path]) -> None:
    key, _ = court
    result = _issue(key, "--field", "diaries=text")
    assert result.exit_code != 0
    assert "scope.fields" in result.output


def test_orders_issue_signs_invalid_claims_when_allowed(court: tuple[Path, Path]) -> None:
    key, store = court
    result = _issue(key, "--lifetime-days", "400", "--allow-invalid")
    assert result.exit_code == 0, result.output
    check = _verifier(store).verify(result.stdout.strip(), dt.datetime.now(dt.UTC))
    assert check.failures == (Reason.ORDER_LIFETIME_EXCEEDED,)


def test_orders_issue_with_an_explicit_exp(court: tuple[Path, Path]) -> None:
    key, store = court
    exp = int(dt.datetime.now(dt.UTC).timestamp()) + 3600
    result = _issue(key, "--exp", str(exp), "--aud", AUDIENCE, "--aud", "records")
    assert result.exit_code == 0, result.output
    check = _verifier(store).verify(result.stdout.strip(), dt.datetime.now(dt.UTC))
    assert check.claims is not None
    assert check.claims.exp == exp
    assert check.claims.aud == [AUDIENCE, "records"]


def test_orders_issue_refuses_exp_and_lifetime_together(court: tuple[Path, Path]) -> None:
    key, _ = court
    result = _issue(key, "--exp", "2030-01-01T00:00:00Z", "--lifetime-days", "5")
    assert result.exit_code == 2
    assert "not both" in result.output


@pytest.mark.parametrize("value", ["circulation", "=title", "circulation="])
def test_orders_issue_refuses_a_malformed_field(court: tuple[Path, Path], value: str) -> None:
    key, _ = court
    result = _issue(key, "--field", value)
    assert result.exit_code == 2
    assert "CATEGORY=FIELD" in result.output


def test_orders_issue_refuses_a_bad_date(court: tuple[Path, Path]) -> None:
    key, _ = court
    result = _issue(key, "--nbf", "next tuesday")
    assert result.exit_code == 2
    assert "neither Unix seconds nor ISO 8601" in result.output


def test_orders_is_a_group_others_can_extend() -> None:
    assert isinstance(orders, click.Group)
    assert "issue" in orders.commands
