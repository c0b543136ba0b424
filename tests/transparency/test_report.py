"""GET /v1/transparency, its CSV, the page and the CLI: figures from a log the tests build."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.admin.clients import add_client
from app.callers.models import Role
from app.cli import main
from app.core.config import Settings
from app.main import create_app
from app.orders.models import Instrument
from app.records.categories import Category
from app.records.demo import DEMO_PATRON, OTHER_PATRON
from app.runtime import build_runtime
from app.transparency import router as transparency_router
from app.transparency import service
from app.transparency.service import REFUSAL_CODES, band
from tests.conftest import auth, migrate
from tests.factories import disclosure_body

Token = Callable[..., str]
TODAY_RANGE = {"from": "2000-01-01", "to": "2100-12-31"}
ROW_NAMES = [*(i.value for i in Instrument), "unverified", "none"]


def this_half_year() -> dict[str, str]:
    """The calendar half-year the tests' events fall in (they are written now)."""
    today = dt.datetime.now(dt.UTC).date()
    if today.month <= 6:
        return {"from": f"{today.year}-01-01", "to": f"{today.year}-06-30"}
    return {"from": f"{today.year}-07-01", "to": f"{today.year}-12-31"}


@pytest.fixture
def half_closed(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This half-year, with the report's clock moved to the day after it closes."""
    half = this_half_year()
    after = dt.date.fromisoformat(half["to"]) + dt.timedelta(days=1)
    monkeypatch.setattr(service, "utc_today", lambda: after)
    # The routes judge "closed" on the library's calendar at the state database's time.
    monkeypatch.setattr(transparency_router, "library_today", lambda runtime: after)
    return half


def policy_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text('version = "test"\n' + text)
    return path


def disclosure(token: str | None, patron: str = DEMO_PATRON) -> dict[str, Any]:
    return disclosure_body(token, patron)


async def deployment(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A client and a key per role on ``settings`` (migrated here)."""
    await migrate(settings)
    runtime = await build_runtime(settings)
    try:
        keys = {}
        for role in Role:
            _, keys[role.value] = await add_client(
                runtime.state, f"t-{role}", role, audit=runtime.audit
            )
        app = create_app(runtime=runtime)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as c:
                yield c, keys
    finally:
        await runtime.close()


@pytest.fixture
async def public(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A deployment whose policy publishes the report, in bands of 3 (edges are reachable)."""
    path = policy_file(tmp_path, "[transparency]\npublic = true\nband_width = 3\n")
    async for pair in deployment(make_settings(policy=path)):
        yield pair


async def build_log(client: httpx.AsyncClient, key: str, order_token: Token) -> None:
    """Every kind of disclosure event: permits, refusals for several reasons, none, unknown."""
    requests = [
        disclosure(order_token(patrons=[DEMO_PATRON])),  # permit
        disclosure(order_token(patrons=[DEMO_PATRON], max_uses=2)),  # permit
        disclosure(order_token(patrons=[OTHER_PATRON])),  # scope.patron
        disclosure(order_token(patrons=[DEMO_PATRON], good_cause=False, allow_invalid=True)),
        disclosure(order_token(instrument="national_security_letter", allow_invalid=True)),
        disclosure(order_token(instrument="fisa_order")),  # not accepted by the policy
        disclosure(order_token(instrument="search_warrant", patrons=[DEMO_PATRON])),  # permit
        disclosure(None),  # order.missing
        disclosure("not-a-token"),  # order.malformed: no instrument can be read
    ]
    for body in requests:
        r = await client.post("/v1/disclosures", json=body, headers=auth(key))
        assert r.status_code in (200, 403), r.text


async def audit_events(client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        r = await client.get(
            "/v1/audit/events", params={"after": after, "limit": 1000}, headers=auth(key)
        )
        page = r.json()
        events += page["events"]
        after = page["next_after"]
    return events


def expected_from_events(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """An independent count over the log as auditors read it: exact numbers per row."""
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["kind"] != "disclosure":
            continue
        order = event["body"]["order"]
        if order is None:
            name = "none"
        elif order.get("verified") is True:
            name = order["instrument"]
        else:
            name = "unverified"  # whatever instrument a token that failed verification names
        row = rows.setdefault(name, {"m": Counter(), "reasons": Counter(), "released": Counter()})
        row["m"]["requests"] += 1
        effect = event["effect"]
        key = {"permit": "permitted", "deny": "refused"}.get(effect, "failed")
        row["m"][key] += 1
        if effect == "deny":
            row["reasons"].update(event["body"]["reasons"])
        if effect == "permit":
            row["released"].update(event["body"]["released"]["counts"])
    return rows


async def test_report_figures_match_the_audit_events(
    public: tuple[httpx.AsyncClient, dict[str, str]],
    order_token: Token,
    half_closed: dict[str, str],
) -> None:
    client, keys = public
    await build_log(client, keys["requester"], order_token)
    report = (await client.get("/v1/transparency", params=half_closed)).json()
    assert report["bands_published"] is True
    expected = expected_from_events(await audit_events(client, keys["auditor"]))
    rows = {row["instrument"]: row for row in report["instruments"]}
    assert list(rows) == ROW_NAMES
    assert [name for name, row in rows.items() if row["banded"]] == [
        "fisa_order",
        "national_security_letter",
    ]
    assert expected["court_order"]["m"]["permitted"] == 2
    assert expected["unverified"]["m"]["requests"] >= 1
    for name, row in rows.items():
        want = expected.get(name, {"m": Counter(), "reasons": Counter(), "released": Counter()})
        if row["banded"]:
            assert {m: row[m] for m in ("requests", "permitted", "refused", "failed")} == {
                m: band(want["m"][m], 3) for m in ("requests", "permitted", "refused", "failed")
            }
            assert set(row["refusals_by_reason"]) >= set(REFUSAL_CODES)
            assert all(
                row["refusals_by_reason"][c] == band(n, 3) for c, n in want["reasons"].items()
            )
        else:
            assert row["requests"] == want["m"]["requests"]
            assert row["permitted"] == want["m"]["permitted"]
            assert row["refused"] == want["m"]["refused"]
            assert row["failed"] == want["m"]["failed"]
            assert row["refusals_by_reason"] == dict(want["reasons"])
            assert row["records_released"] == {c.value: want["released"][c.value] for c in Category}
    assert rows["court_order"]["refusals_by_reason"] == {
        "order.no_good_cause": 1,
        "scope.patron": 1,
    }
    assert rows["court_order"]["records_released"]["circulation"] > 0
    assert rows["none"]["refusals_by_reason"] == {"order.missing": 1}
    # No total across instruments: with one, the banded rows could be worked out exactly.
    assert "total" not in json.dumps(report)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0-249"),
        (1, "0-249"),
        (249, "0-249"),
        (250, "250-499"),
        (499, "250-499"),
        (500, "500-749"),
    ],
)
def test_band_edges(count: int, expected: str) -> None:
    assert band(count, 250) == expected


async def test_banded_instruments_change_band_exactly_at_the_edge(
    public: tuple[httpx.AsyncClient, dict[str, str]],
    order_token: Token,
    half_closed: dict[str, str],
) -> None:
    client, keys = public

    async def nsl_row() -> dict[str, Any]:
        # As an auditor: figures as of now (the public's are cached for a while).
        report = (
            await client.get("/v1/transparency", params=half_closed, headers=auth(keys["auditor"]))
        ).json()
        return next(
            r for r in report["instruments"] if r["instrument"] == "national_security_letter"
        )

    async def send_nsl() -> None:
        token = order_token(instrument="national_security_letter", allow_invalid=True)
        r = await client.post(
            "/v1/disclosures", json=disclosure(token), headers=auth(keys["requester"])
        )
        assert r.status_code == 403

    # Listed with every code and category even when nothing came: presence reveals nothing.
    row = await nsl_row()
    assert row["banded"] is True
    assert row["requests"] == "0-2"
    assert set(row["refusals_by_reason"]) == set(REFUSAL_CODES)
    assert set(row["records_released"]) == {c.value for c in Category}
    for _ in range(2):
        await send_nsl()
    row = await nsl_row()
    assert (row["requests"], row["refused"]) == ("0-2", "0-2")  # 2: the last of the band
    await send_nsl()
    row = await nsl_row()
    assert (row["requests"], row["refused"]) == ("3-5", "3-5")  # 3: the first of the next
    assert row["refusals_by_reason"]["order.not_court_issued"] == "3-5"
    assert row["refusals_by_reason"]["order.expired"] == "0-2"
    assert not any(isinstance(v, int) for v in (row["requests"], row["permitted"], row["failed"]))


async def test_csv_has_the_same_figures_as_json(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token
) -> None:
    client, keys = public
    await build_log(client, keys["requester"], order_token)
    report = (await client.get("/v1/transparency", params=TODAY_RANGE)).json()
    r = await client.get("/v1/transparency", params=TODAY_RANGE, headers={"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows, "no CSV rows"
    from_csv: dict[tuple[str, str, str], str] = {
        (row["instrument"], row["measure"], row["item"]): row["value"] for row in rows
    }
    for inst in report["instruments"]:
        name = inst["instrument"]
        for m in ("requests", "permitted", "refused", "failed"):
            assert from_csv.pop((name, m, "")) == str(inst[m])
        for code, v in inst["refusals_by_reason"].items():
            assert from_csv.pop((name, "refused_by_reason", code)) == str(v)
        for cat, v in inst["records_released"].items():
            assert from_csv.pop((name, "records_released", cat)) == str(v)
    assert from_csv == {}
    assert {row["from"] for row in rows} == {"2000-01-01"}


async def test_period_outside_the_log_counts_nothing(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token
) -> None:
    client, keys = public
    await build_log(client, keys["requester"], order_token)
    report = (
        await client.get("/v1/transparency", params={"from": "2001-01-01", "to": "2001-12-31"})
    ).json()
    court = next(r for r in report["instruments"] if r["instrument"] == "court_order")
    assert court["requests"] == 0
    assert (report["from"], report["to"]) == ("2001-01-01", "2001-12-31")


@pytest.mark.parametrize(
    "params",
    [{"from": "2026-02-01", "to": "2026-01-01"}, {"from": "yesterday"}, {"to": "2026-13-01"}],
    ids=["to-before-from", "not-a-date", "no-such-month"],
)
async def test_bad_period_is_422(
    public: tuple[httpx.AsyncClient, dict[str, str]], params: dict[str, str]
) -> None:
    client, _ = public
    r = await client.get("/v1/transparency", params=params)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [x["code"] for x in r.json()["reasons"]] == ["request.invalid"]


async def test_private_report_needs_an_auditor(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # The bundled policy does not publish the report.
    anonymous = await client.get("/v1/transparency")
    assert anonymous.status_code == 401
    assert anonymous.json()["reasons"][0]["code"] == "caller.unauthenticated"
    bad_key = await client.get("/v1/transparency", headers=auth("bwk_unknown"))
    assert bad_key.status_code == 401
    for role in ("requester", "notifier", "records_admin"):
        r = await client.get("/v1/transparency", headers=auth(keys[role]))
        assert r.status_code == 403, role
        assert r.json()["reasons"][0]["code"] == "caller.forbidden"
    for role in ("auditor", "admin"):
        r = await client.get("/v1/transparency", headers=auth(keys[role]))
        assert r.status_code == 200, role
    page = await client.get("/transparency")
    assert page.status_code == 404
    assert page.headers["content-type"] == "application/problem+json"


async def test_public_report_and_page_need_no_key(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token
) -> None:
    client, keys = public
    await build_log(client, keys["requester"], order_token)
    assert (await client.get("/v1/transparency")).status_code == 200
    page = await client.get("/transparency", params=TODAY_RANGE)
    assert page.status_code == 200
    html = page.text
    assert page.headers["content-type"].startswith("text/html")
    # Self-contained and readable without JavaScript: no script, no external asset.
    assert "<script" not in html.lower()
    assert "src=" not in html.lower()
    assert "<link" not in html.lower()
    assert '<html lang="en">' in html
    assert '<svg role="img" aria-labelledby="chart-title chart-desc"' in html
    assert "<h1>" in html and "<caption>" in html and 'scope="col"' in html
    assert 'data-instrument="court_order" data-measure="permitted">2<' in html
    # The audit log's public key (docs/auditors.md), to check its signed checkpoints with.
    assert "id='log-key'" in html
    assert "bulwark.invalid/bulwark+" in html


async def test_untrusted_values_are_escaped_on_the_page(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token
) -> None:
    client, keys = public
    # An unverified order may name any instrument: it is counted as unverified, never shown.
    token = order_token(instrument="<script>alert(1)</script>", allow_invalid=True)
    r = await client.post(
        "/v1/disclosures", json=disclosure(token), headers=auth(keys["requester"])
    )
    assert r.status_code == 403
    html = (await client.get("/transparency", params=TODAY_RANGE)).text
    assert "<script" not in html
    report = (await client.get("/v1/transparency", params=TODAY_RANGE)).json()
    row = next(r for r in report["instruments"] if r["instrument"] == "unverified")
    assert row["requests"] == 1


async def test_cli_report_equals_the_api(
    public: tuple[httpx.AsyncClient, dict[str, str]],
    order_token: Token,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, keys = public
    await build_log(client, keys["requester"], order_token)
    api = (await client.get("/v1/transparency", params=TODAY_RANGE)).json()
    settings = make_settings(policy=tmp_path / "policy.toml")
    monkeypatch.setenv("BULWARK_DATABASE_URL", settings.state_url)
    monkeypatch.setenv("BULWARK_POLICY", str(settings.policy))
    monkeypatch.setenv("BULWARK_DATA_DIR", str(settings.data_dir))
    args = ["report", "transparency", "--from", TODAY_RANGE["from"], "--to", TODAY_RANGE["to"]]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["instruments"] == api["instruments"]
    as_csv = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--format", "csv"])
    assert as_csv.exit_code == 0
    assert as_csv.output.replace("\r\n", "\n") == (
        await client.get("/v1/transparency", params=TODAY_RANGE, headers={"Accept": "text/csv"})
    ).text.replace("\r\n", "\n")
    backwards = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["report", "transparency", "--from", "2026-02-01", "--to", "2026-01-01"],
    )
    assert backwards.exit_code != 0
    assert "--to is before --from" in backwards.output


async def test_only_events_inside_the_period_count(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token
) -> None:
    client, keys = public
    await build_log(client, keys["requester"], order_token)
    events = [e for e in await audit_events(client, keys["auditor"]) if e["kind"] == "disclosure"]
    today = dt.datetime.now(dt.UTC).date()

    async def court_orders(start: dt.date, end: dt.date) -> int:
        params = {"from": start.isoformat(), "to": end.isoformat()}
        report = await client.get("/v1/transparency", params=params)
        row = next(r for r in report.json()["instruments"] if r["instrument"] == "court_order")
        return int(row["requests"])

    court = sum(
        1
        for e in events
        if (e["body"]["order"] or {}).get("instrument") == "court_order"
        and e["body"]["order"].get("verified")
    )
    day = dt.timedelta(days=1)
    assert await court_orders(today, today) == court
    assert await court_orders(today - 10 * day, today - day) == 0
    assert await court_orders(today + day, today + 10 * day) == 0


async def test_public_readers_get_a_cached_report_auditors_a_fresh_one(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token
) -> None:
    client, keys = public

    async def court_orders(headers: dict[str, str]) -> int:
        r = await client.get("/v1/transparency", params=TODAY_RANGE, headers=headers)
        return int(
            next(x for x in r.json()["instruments"] if x["instrument"] == "court_order")["requests"]
        )

    assert await court_orders({}) == 0
    token = order_token(patrons=[DEMO_PATRON])
    r = await client.post(
        "/v1/disclosures", json=disclosure(token), headers=auth(keys["requester"])
    )
    assert r.status_code == 200
    # A loop of anonymous requests cannot make the process re-read the log each time.
    assert await court_orders({}) == 0
    assert await court_orders(auth(keys["requester"])) == 0  # another role reads as the public
    assert await court_orders(auth(keys["auditor"])) == 1
    assert (await client.get("/v1/transparency", headers=auth("bwk_wrong"))).status_code == 401


async def test_report_cache_expires_evicts_and_computes_once() -> None:
    from app.transparency.service import ReportCache

    calls: list[str] = []

    def computer(name: str) -> Callable[[], Any]:
        async def compute() -> dict[str, Any]:
            calls.append(name)
            await asyncio.sleep(0.01)
            return {"name": name}

        return compute

    cache = ReportCache(ttl_seconds=0, max_entries=2)
    key = ("2026-01-01", "2026-01-31", "p")
    await cache.get(key, computer("a"), final=False)
    await cache.get(key, computer("a"), final=False)  # ttl 0: computed again
    assert calls == ["a", "a"]
    await asyncio.gather(*(cache.get(key, computer("b"), final=True) for _ in range(5)))
    assert calls == ["a", "a", "b"]  # concurrent readers wait for one computation
    await cache.get(("x", "x", "p"), computer("c"), final=True)
    await cache.get(("y", "y", "p"), computer("d"), final=True)  # evicts the oldest (key)
    await cache.get(key, computer("e"), final=True)
    assert calls == ["a", "a", "b", "c", "d", "e"]


# ------------------------------------------------------------------ issue 15: figures that cannot be gamed


def forged_nsl() -> str:
    """An NSL token signed by a key no trusted issuer holds, naming the trusted court."""
    from app.orders.issuing import generate_key_pair, issue_order, make_claims

    pem, _ = generate_key_pair("ES256", "cook-2026")  # the court's kid, not the court's key
    claims = make_claims(instrument="national_security_letter", jurisdiction="US-IL")
    return issue_order(claims, pem, "cook-2026", "ES256")


async def test_forged_nsl_tokens_neither_move_nor_probe_the_band(
    public: tuple[httpx.AsyncClient, dict[str, str]],
    order_token: Token,
    half_closed: dict[str, str],
) -> None:
    client, keys = public

    async def rows() -> dict[str, dict[str, Any]]:
        r = await client.get("/v1/transparency", params=half_closed, headers=auth(keys["auditor"]))
        return {row["instrument"]: row for row in r.json()["instruments"]}

    # Two real (verified) NSLs: one short of the band's edge at width 3.
    for _ in range(2):
        token = order_token(instrument="national_security_letter")
        r = await client.post(
            "/v1/disclosures", json=disclosure(token), headers=auth(keys["requester"])
        )
        assert r.status_code == 403
    assert (await rows())["national_security_letter"]["requests"] == "0-2"
    # Forgeries naming the NSL instrument: the band never flips, so it tells nothing.
    for _ in range(7):
        r = await client.post(
            "/v1/disclosures", json=disclosure(forged_nsl()), headers=auth(keys["requester"])
        )
        assert [x["code"] for x in r.json()["reasons"]] == ["order.signature_invalid"]
        assert (await rows())["national_security_letter"]["requests"] == "0-2"
    after = await rows()
    assert after["unverified"]["requests"] == 7  # counted, under no instrument


@pytest.mark.parametrize(
    "window",
    ["default", "arbitrary", "slid-by-a-day", "half-year-still-open"],
)
async def test_banded_rows_are_withheld_outside_closed_half_years(
    public: tuple[httpx.AsyncClient, dict[str, str]], order_token: Token, window: str
) -> None:
    client, keys = public
    token = order_token(instrument="national_security_letter")
    await client.post("/v1/disclosures", json=disclosure(token), headers=auth(keys["requester"]))
    half = this_half_year()
    start = dt.date.fromisoformat(half["from"])
    params = {
        "default": {},
        "arbitrary": TODAY_RANGE,
        "slid-by-a-day": {
            "from": (start + dt.timedelta(days=1)).isoformat(),
            "to": (dt.date.fromisoformat(half["to"]) + dt.timedelta(days=1)).isoformat(),
        },
        "half-year-still-open": half,  # the real clock: this half-year has not closed
    }[window]
    for headers in ({}, auth(keys["auditor"])):
        r = await client.get("/v1/transparency", params=params, headers=headers)
        report = r.json()
        assert report["bands_published"] is False
        for row in report["instruments"]:
            if row["banded"]:
                assert row["withheld"] is True
                assert {row[m] for m in ("requests", "permitted", "refused", "failed")} == {
                    "withheld"
                }
                assert row["refusals_by_reason"] == {}
                assert set(row["records_released"].values()) == {"withheld"}
        page = await client.get("/transparency", params=params)
        assert page.status_code == 200
        assert 'data-instrument="national_security_letter" data-measure="requests">withheld<' in (
            page.text
        )


async def test_to_far_in_the_future_is_422(
    public: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, _ = public
    for path in ("/v1/transparency", "/transparency"):
        r = await client.get(path, params={"to": "9999-12-31"})
        assert r.status_code == 422, path
        assert [x["code"] for x in r.json()["reasons"]] == ["request.invalid"]


async def test_verify_checks_the_figures_against_the_chain(
    public: tuple[httpx.AsyncClient, dict[str, str]],
    order_token: Token,
    make_settings: Callable[..., Settings],
) -> None:
    from sqlalchemy import text

    from app.audit.service import verify_chain
    from app.core.database import create_engine

    client, keys = public
    await build_log(client, keys["requester"], order_token)
    ok = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert ok.json()["ok"] is True
    engine = create_engine(make_settings().state_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE report_figures SET count = count + 1 "
                    "WHERE line = 'court_order' AND measure = 'permitted'"
                )
            )
        # `bulwark audit verify`, the full recomputation, recounts the figures (the API's
        # run is incremental and checks the events it has not verified yet).
        bad = (await verify_chain(engine)).as_json()
    finally:
        await engine.dispose()
    assert bad["ok"] is False
    assert "figures" in bad["problem"]
