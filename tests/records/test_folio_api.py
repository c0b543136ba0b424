"""The FOLIO store kind through the API: examples/folio as its README configures it, against
the FOLIO fake; every FOLIO fault is 503 store.unavailable with nothing released and no use
consumed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.admin.clients import add_client
from app.callers.models import Role
from app.core.config import Settings
from app.runtime import Runtime, StartupError, build_runtime
from tests.conftest import auth, migrate
from tests.disclosures.test_disclosures import _client, _uses, reasons
from tests.records.folio_fake import PASSWORD, TENANT, USERNAME, Folio, running_folio
from tests.records.test_folio import BARCODE, LOANS, REQUESTS, UA, tenant_data

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "folio"
Token = Callable[..., str]


@pytest.fixture
async def setup(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Runtime, Folio, str, Settings]]:
    password_file = tmp_path / "folio-password"
    password_file.write_text(PASSWORD + "\n")
    monkeypatch.setenv("BULWARK_FOLIO_PASSWORD_FILE", str(password_file))
    with running_folio(**{TENANT: tenant_data()}) as folio:
        # The settings examples/folio/README.md gives, pointed at the fake.
        settings = make_settings(
            records_url=folio.base_url,
            records_mapping=EXAMPLE / "mapping.toml",
            folio_tenant=TENANT,
            folio_username=USERNAME,
            records_timeout_seconds=1.0,
            records_connect_timeout_seconds=0.5,
            timezone="America/Chicago",
        )
        await migrate(settings)
        rt = await build_runtime(settings)
        try:
            _, key = await add_client(rt.state, "folio-requester", Role.REQUESTER, audit=rt.audit)
            yield rt, folio, key, settings
        finally:
            await rt.close()


def _body(token: str) -> dict[str, Any]:
    return {
        "purpose": "legal_process",
        "patron_id": BARCODE,
        "categories": ["circulation", "holds"],
        "from": "2026-01-01",
        "to": "2026-03-31",
        "court_order": token,
    }


def _order(order_token: Token, max_uses: int = 3) -> str:
    return order_token(
        patrons=[BARCODE],
        categories=["registration", "circulation", "holds"],
        period=("2026-01-01", "2026-03-31"),
        max_uses=max_uses,
    )


def _expected(records: list[dict[str, Any]], who: str, when: str, settings: Settings) -> list[str]:
    """The raw data's answer: the patron's dates in the period, in the library's calendar."""
    import datetime as dt

    zone = settings.clock.tz
    chosen = [
        r[when]
        for r in records
        if r.get(who) == UA
        and dt.date(2026, 1, 1)
        <= dt.datetime.fromisoformat(r[when]).astimezone(zone).date()
        <= dt.date(2026, 3, 31)
    ]
    return sorted(chosen, key=dt.datetime.fromisoformat)


async def test_disclosure_from_folio(
    setup: tuple[Runtime, Folio, str, Settings], order_token: Token
) -> None:
    rt, folio, key, settings = setup
    async with _client(rt) as c:
        r = await c.post("/v1/disclosures", json=_body(_order(order_token)), headers=auth(key))
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    loans = [r["checkout_date"] for r in records["circulation"]]
    assert loans == _expected(LOANS, "userId", "loanDate", settings) and len(loans) == 18
    holds = [r["placed_on"] for r in records["holds"]]
    assert holds == _expected(REQUESTS, "requesterId", "requestDate", settings)
    assert UA not in r.text and PASSWORD not in r.text
    for token in folio.tokens:
        assert token not in r.text
    assert all(s.headers.get("x-okapi-tenant") == TENANT for s in folio.seen)
    assert len(folio.logins()) == 1  # at start-up; reused since


@pytest.mark.parametrize(
    "fault",
    ["status_500", "status_503", "slow", "malformed", "refused_token", "unknown_tenant"],
)
async def test_folio_faults_release_nothing_and_use_nothing(
    setup: tuple[Runtime, Folio, str, Settings], order_token: Token, fault: str
) -> None:
    rt, folio, key, _ = setup
    if fault.startswith("status_"):
        folio.status["/circulation/requests"] = int(fault[7:])
    elif fault == "slow":
        folio.delay = 3.0  # past BULWARK_RECORDS_TIMEOUT_SECONDS (1 s here)
    elif fault == "malformed":
        folio.malformed = True
    elif fault == "refused_token":
        folio.refuse_tokens = True
    else:
        folio.tenants = {"other": folio.tenants[TENANT]}
    async with _client(rt) as c:
        r = await c.post("/v1/disclosures", json=_body(_order(order_token)), headers=auth(key))
    assert (r.status_code, reasons(r)) == (503, ["store.unavailable"])
    assert "records" not in r.json()
    assert BARCODE not in r.text and PASSWORD not in r.text
    assert await _uses(rt) == 0


async def test_expired_token_mid_run_is_renewed(
    setup: tuple[Runtime, Folio, str, Settings], order_token: Token
) -> None:
    rt, folio, key, _ = setup
    folio.expire_tokens()
    async with _client(rt) as c:
        r = await c.post("/v1/disclosures", json=_body(_order(order_token)), headers=auth(key))
    assert r.status_code == 200, r.text
    assert len(folio.logins()) == 2
    assert await _uses(rt) == 1


async def test_the_http_client_carries_no_folio_cookie(
    setup: tuple[Runtime, Folio, str, Settings], order_token: Token
) -> None:
    rt, _, key, _ = setup
    async with _client(rt) as c:
        await c.post("/v1/disclosures", json=_body(_order(order_token)), headers=auth(key))
    http: httpx.AsyncClient = rt.http
    assert not http.cookies


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"folio_tenant": ""}, "a FOLIO records store needs BULWARK_FOLIO_TENANT"),
        ({"folio_username": "nobody"}, "FOLIO refused the login of 'nobody'"),
        ({"folio_tenant": "nosuch"}, "check BULWARK_FOLIO_TENANT"),
    ],
)
async def test_start_up_refusals_name_the_setting(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    change: dict[str, str],
    message: str,
) -> None:
    with running_folio(**{TENANT: tenant_data()}) as folio:
        values: dict[str, Any] = {
            "records_url": folio.base_url,
            "records_mapping": EXAMPLE / "mapping.toml",
            "folio_tenant": TENANT,
            "folio_username": USERNAME,
            "folio_password": PASSWORD,
        }
        settings = make_settings(**{**values, **change})
        await migrate(settings)
        with pytest.raises(StartupError, match=message) as caught:
            await build_runtime(settings)
        assert PASSWORD not in str(caught.value)
