"""POST /v1/disclosures end to end: caller, order, policy, store, audit — and every refusal."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.audit import service as audit_service
from app.audit.chain import canonical, digest
from app.audit.tree import leaf_hash
from app.core.config import Settings
from app.main import create_app
from app.records.demo import DEMO_BUSY_PATRON, DEMO_PATRON, OTHER_PATRON
from app.runtime import Runtime, build_runtime
from tests.audit.test_chain import make_unwritable, make_writable
from tests.conftest import auth, migrate
from tests.factories import disclosure_body

Token = Callable[..., str]


def request(token: str | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = disclosure_body(token)
    body.update(overrides)
    return body


def order(token: Token, **overrides: Any) -> str:
    overrides.setdefault("patrons", [DEMO_PATRON])
    overrides.setdefault("categories", ["circulation", "holds", "search_history"])
    return token(**overrides)


def store_rows(url: str, patron: str, start: str, end: str) -> list[tuple[Any, ...]]:
    path = make_url(url).database
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT title, checked_out_at FROM loans WHERE patron_id = ? "
            "AND checked_out_at >= ? AND checked_out_at < date(?, '+1 day') ORDER BY checked_out_at",
            (patron, start, end),
        ).fetchall()


def reasons(response: httpx.Response) -> list[str]:
    return [r["code"] for r in response.json()["reasons"]]


async def test_permit_releases_only_narrowed_records(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order(order_token, period=("2026-01-01", "2026-12-31"))
    r = await client.post(
        "/v1/disclosures",
        json=request(token, **{"from": "2026-02-01", "to": "2026-05-31"}),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == {"effect": "permit", "reasons": [], "policy": runtime.policy.sha256}
    assert body["order"]["uses_left"] == 0
    loans = body["records"]["circulation"]
    expected = store_rows(runtime.settings.store_url, DEMO_PATRON, "2026-02-01", "2026-05-31")
    assert len(loans) == len(expected) > 0
    assert set(body["records"]) == {"circulation"}
    for loan in loans:
        assert set(loan) == {"title", "checkout_date", "due_date", "return_date", "branch"}
        assert "2026-02-01" <= loan["checkout_date"][:10] <= "2026-05-31"
    # The audit event records what was released by count and digest, never the content.
    events = await audit_service.list_events(runtime.state, after=body["audit"]["seq"] - 1, limit=1)
    event = events[0]
    assert event["hash"] == body["audit"]["hash"]
    assert event["body"]["released"]["digest"] == digest(body["records"])
    # The records leave as the very canonical text that digest was taken of.
    assert f'"records":{canonical(body["records"])}' in r.text
    assert event["body"]["released"]["counts"] == {"circulation": len(loans)}
    assert event["body"]["released"]["from"] == "2026-02-01"
    assert event["body"]["patron"] == runtime.pseudonymize(DEMO_PATRON)
    dumped = json.dumps(events)
    assert DEMO_PATRON not in dumped
    assert loans[0]["title"] not in dumped


async def test_order_fields_narrow_the_record(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(order_token, fields={"circulation": ["title", "checkout_date"]})
    r = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert r.status_code == 200, r.text
    assert {frozenset(x) for x in r.json()["records"]["circulation"]} == {
        frozenset({"title", "checkout_date"})
    }


async def test_replay_after_uses_are_spent_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(order_token, max_uses=1)
    first = await client.post(
        "/v1/disclosures", json=request(token), headers=auth(keys["requester"])
    )
    assert first.status_code == 200
    again = await client.post(
        "/v1/disclosures", json=request(token), headers=auth(keys["requester"])
    )
    assert again.status_code == 403
    assert reasons(again) == ["order.exhausted"]
    assert "records" not in again.json()
    assert isinstance(again.json()["audit_seq"], int)


@pytest.mark.parametrize("k", [1, 3])
async def test_exactly_k_of_n_parallel_requests_succeed(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, k: int
) -> None:
    token = order(order_token, max_uses=k)
    responses = await asyncio.gather(
        *(
            client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
            for _ in range(24)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == k
    assert all(reasons(r) == ["order.exhausted"] for r in responses if r.status_code != 200)


async def test_patron_not_in_order_is_denied_with_audit_seq(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order(order_token)
    r = await client.post(
        "/v1/disclosures",
        json=request(token, patron_id=OTHER_PATRON),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert reasons(r) == ["scope.patron"]
    assert "records" not in body and OTHER_PATRON not in r.text
    event = (await audit_service.list_events(runtime.state, after=body["audit_seq"] - 1, limit=1))[
        0
    ]
    assert event["effect"] == "deny"
    assert event["body"]["reasons"] == ["scope.patron"]
    assert event["body"]["order"]["verified"] is True


async def test_deny_lists_every_reason(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(
        order_token,
        instrument="subpoena",
        good_cause=False,
        jurisdiction="US-NY",
        allow_invalid=True,
    )
    r = await client.post(
        "/v1/disclosures",
        json=request(
            token, patron_id=OTHER_PATRON, categories=["reference"], **{"from": "2025-01-01"}
        ),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 403
    assert set(reasons(r)) == {
        "order.not_court_issued",
        "order.no_good_cause",
        "order.jurisdiction",
        "scope.patron",
        "scope.category",
        "scope.period",
    }


async def test_missing_order_and_side_door_purposes(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post("/v1/disclosures", json=request(None), headers=auth(keys["requester"]))
    assert (r.status_code, reasons(r)) == (403, ["order.missing"])
    for purpose in ("national_security", "emergency", "law_enforcement", "curiosity"):
        r = await client.post(
            "/v1/disclosures", json=request(None, purpose=purpose), headers=auth(keys["requester"])
        )
        assert r.status_code == 403
        assert "purpose.unsupported" in reasons(r)


async def test_bad_signature_is_denied_and_audited_as_unverified(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order(order_token)
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    r = await client.post("/v1/disclosures", json=request(forged), headers=auth(keys["requester"]))
    assert (r.status_code, reasons(r)) == (403, ["order.signature_invalid"])
    event = (
        await audit_service.list_events(runtime.state, after=r.json()["audit_seq"] - 1, limit=1)
    )[0]
    assert event["body"]["order"]["verified"] is False


async def test_dry_run_consumes_nothing_and_explains(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(order_token, max_uses=1)
    for role in ("requester", "auditor", "admin"):
        r = await client.post("/v1/decisions", json=request(token), headers=auth(keys[role]))
        assert r.status_code == 200, r.text
        decision = r.json()["decision"]
        assert decision["effect"] == "permit"
        assert {t["rule"] for t in decision["trace"]} >= {"scope.patron", "scope.period"}
        assert DEMO_PATRON not in r.text
        assert "records" not in r.json()
    # The single use is still there for the real request.
    r = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert r.status_code == 200


async def test_dry_run_of_a_denied_request_is_200_with_reasons(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(order_token)
    r = await client.post(
        "/v1/decisions", json=request(token, patron_id=OTHER_PATRON), headers=auth(keys["auditor"])
    )
    assert r.status_code == 200
    assert r.json()["decision"]["effect"] == "deny"
    assert [x["code"] for x in r.json()["decision"]["reasons"]] == ["scope.patron"]


async def test_revoked_order_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(order_token, max_uses=5, jti="revoke-me")
    ok = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert ok.status_code == 200
    revocation = {"iss": ok.json()["order"]["iss"], "jti": "revoke-me", "reason": "vacated"}
    for already in (False, True):  # revoking twice is not an error
        r = await client.post(
            "/v1/orders/revocations", json=revocation, headers=auth(keys["admin"])
        )
        assert r.status_code == 200, r.text
        assert r.json()["already_revoked"] is already
    r = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert (r.status_code, reasons(r)) == (403, ["order.revoked"])


async def test_revoking_an_order_never_seen_then_presenting_it(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    revocation = {"iss": "https://courts.example/il-cook", "jti": "future-order", "reason": "x"}
    r = await client.post("/v1/orders/revocations", json=revocation, headers=auth(keys["admin"]))
    # Never seen: refused unless said to be pre-emptive (a mistyped jti is not "revoked").
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert reasons(r) == ["order.unseen"]
    revocation["pre_emptive"] = True
    r = await client.post("/v1/orders/revocations", json=revocation, headers=auth(keys["admin"]))
    assert r.status_code == 200
    token = order(order_token, jti="future-order")
    r = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert reasons(r) == ["order.revoked"]


async def test_revoking_a_mistyped_jti_is_refused_and_the_real_order_stays_valid(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    token = order(order_token, max_uses=3, jti="DEMO-0002-order-1")
    dry = await client.post("/v1/decisions", json=request(token), headers=auth(keys["admin"]))
    assert dry.json()["decision"]["effect"] == "permit"
    iss = "https://courts.example/il-cook"
    typo = {"iss": iss, "jti": "DEMO-0002-order-l", "reason": "vacated"}
    r = await client.post("/v1/orders/revocations", json=typo, headers=auth(keys["admin"]))
    assert (r.status_code, reasons(r)) == (404, ["order.unseen"])
    like = {"iss": iss, "jti": "DEMO-0002-order-%", "reason": "vacated"}  # no LIKE wildcard
    r = await client.post("/v1/orders/revocations", json=like, headers=auth(keys["admin"]))
    assert r.status_code == 404
    # An order seen only in a dry run is known: revoking it works.
    real = {"iss": iss, "jti": "DEMO-0002-order-1", "reason": "vacated"}
    r = await client.post("/v1/orders/revocations", json=real, headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    r = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert reasons(r) == ["order.revoked"]


async def test_unmapped_category_is_422(
    make_settings: Callable[..., Settings], keys: dict[str, str], order_token: Token, tmp_path: Path
) -> None:
    from app.records.demo import DEMO_MAPPING

    mapping = tmp_path / "mapping.toml"
    text_ = DEMO_MAPPING.read_text()
    mapping.write_text(text_[: text_.index("[categories.reference]")])
    settings = make_settings(records_mapping=mapping)
    await migrate(settings)
    rt = await build_runtime(settings)
    try:
        async with _client(rt) as c:
            from app.admin.clients import add_client
            from app.callers.models import Role

            _, key = await add_client(rt.state, "r2", Role.REQUESTER, audit=rt.audit)
            r = await c.post(
                "/v1/disclosures",
                json=request(order(order_token), categories=["reference"]),
                headers=auth(key),
            )
        assert (r.status_code, reasons(r)) == (422, ["request.invalid"])
    finally:
        await rt.close()


def _client(rt: Runtime) -> httpx.AsyncClient:
    app = create_app(runtime=rt)
    app.state.runtime = rt
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _uses(rt: Runtime) -> int:
    async with rt.state.connect() as conn:
        return int(
            (await conn.execute(text("SELECT COALESCE(SUM(uses), 0) FROM order_uses"))).scalar_one()
        )


async def test_one_failing_category_of_three_releases_nothing(
    make_settings: Callable[..., Settings], demo_store_url: str, order_token: Token, tmp_path: Path
) -> None:
    copy = tmp_path / "records-copy.db"
    shutil.copy(make_url(demo_store_url).database or "", copy)
    settings = make_settings(records_url=f"sqlite:///{copy}")
    await migrate(settings)
    rt = await build_runtime(settings)
    try:
        from app.admin.clients import add_client
        from app.callers.models import Role

        _, key = await add_client(rt.state, "r3", Role.REQUESTER, audit=rt.audit)
        with sqlite3.connect(copy) as conn:
            conn.execute("DROP TABLE holds")
        token = order(order_token, max_uses=1)
        body = request(token, categories=["circulation", "holds", "search_history"])
        async with _client(rt) as c:
            r = await c.post("/v1/disclosures", json=body, headers=auth(key))
        assert (r.status_code, reasons(r)) == (503, ["store.unavailable"])
        assert "records" not in r.json()
        assert DEMO_PATRON not in r.text
        assert await _uses(rt) == 0
        event = (
            await audit_service.list_events(rt.state, after=r.json()["audit_seq"] - 1, limit=1)
        )[0]
        assert (event["effect"], event["body"]["reasons"]) == ("error", ["store.unavailable"])
        # An error is a recorded decision too: it carries its receipt (docs/auditors.md).
        assert r.json()["audit_leaf_index"] == event["seq"] - 1
        assert r.json()["audit_leaf_hash"] == leaf_hash(canonical(event["body"])).hex()
    finally:
        await rt.close()


async def test_a_date_that_cannot_be_placed_in_time_releases_nothing(
    make_settings: Callable[..., Settings], demo_store_url: str, order_token: Token, tmp_path: Path
) -> None:
    from app.metrics import STORE_MALFORMED

    copy = tmp_path / "records-copy.db"
    shutil.copy(make_url(demo_store_url).database or "", copy)
    with sqlite3.connect(copy) as conn:
        conn.execute(
            "UPDATE searches SET searched_at = '31/03/2026 10:00' WHERE search_id = "
            "(SELECT MIN(search_id) FROM searches WHERE patron_id = ?)",
            (DEMO_PATRON,),
        )
    settings = make_settings(records_url=f"sqlite:///{copy}")
    await migrate(settings)
    rt = await build_runtime(settings)
    counted = STORE_MALFORMED.labels("search_history")
    before = counted._value.get()
    try:
        from app.admin.clients import add_client
        from app.callers.models import Role

        _, key = await add_client(rt.state, "r4", Role.REQUESTER, audit=rt.audit)
        token = order(order_token, max_uses=1)
        body = request(token, categories=["circulation", "search_history"])
        async with _client(rt) as c:
            r = await c.post("/v1/disclosures", json=body, headers=auth(key))
        assert (r.status_code, reasons(r)) == (503, ["store.unavailable"])
        assert "cannot be placed in time" in r.json()["detail"]
        assert "records" not in r.json()
        assert "31/03/2026" not in r.text
        assert await _uses(rt) == 0
        assert counted._value.get() == before + 1
    finally:
        await rt.close()


async def test_audit_unwritable_releases_nothing_and_keeps_the_use(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order(order_token, max_uses=1)
    await make_unwritable(runtime.state)
    try:
        r = await client.post(
            "/v1/disclosures", json=request(token), headers=auth(keys["requester"])
        )
        assert (r.status_code, reasons(r)) == (503, ["audit.unavailable"])
        assert "records" not in r.json()
    finally:
        await make_writable(runtime.state)
    assert await _uses(runtime) == 0
    r = await client.post("/v1/disclosures", json=request(token), headers=auth(keys["requester"]))
    assert r.status_code == 200
    assert (await audit_service.verify_chain(runtime.state)).ok


async def test_truncated_answer_continues_under_the_same_use(
    make_settings: Callable[..., Settings], order_token: Token
) -> None:
    settings = make_settings(max_records_per_response=40)
    await migrate(settings)
    rt = await build_runtime(settings)
    try:
        from app.admin.clients import add_client
        from app.callers.models import Role

        _, key = await add_client(rt.state, "pager", Role.REQUESTER, audit=rt.audit)
        token = order(order_token, patrons=[DEMO_BUSY_PATRON], max_uses=1)
        body = request(token, patron_id=DEMO_BUSY_PATRON)
        seen: list[dict[str, Any]] = []
        async with _client(rt) as c:
            r = await c.post("/v1/disclosures", json=body, headers=auth(key))
            assert r.status_code == 200, r.text
            pages = 1
            while True:
                page = r.json()
                seen.extend(page["records"].get("circulation", []))
                if not page["truncated"]:
                    assert page["cursor"] is None
                    break
                assert len(page["records"]["circulation"]) == 40
                r = await c.post(
                    "/v1/disclosures", json={**body, "cursor": page["cursor"]}, headers=auth(key)
                )
                assert r.status_code == 200, r.text
                pages += 1
            # A forged cursor, and a genuine one replayed for another patron, are refused.
            bad = await c.post(
                "/v1/disclosures", json={**body, "cursor": "eyJ9.AAAA"}, headers=auth(key)
            )
            assert bad.status_code == 422
        expected = store_rows(settings.store_url, DEMO_BUSY_PATRON, "2026-01-01", "2026-06-30")
        assert pages > 1
        assert len(seen) == len(expected)
        assert [(x["title"], x["checkout_date"]) for x in seen] == [
            (row[0], _iso(row[1])) for row in expected
        ]
        assert await _uses(rt) == 1
    finally:
        await rt.close()


def _iso(value: str) -> str:
    # Stored as wall-clock text; released with the library's offset (UTC in these settings).
    return value.replace(" ", "T") + "+00:00"
