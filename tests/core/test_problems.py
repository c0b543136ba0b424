"""Every error is RFC 9457 problem+json with a reason code; no stack trace leaks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from app.admin.clients import revoke_client
from app.runtime import Runtime
from tests.conftest import auth
from tests.factories import disclosure_body

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    for key in ("type", "title", "status", "detail", "reasons"):
        assert key in body, key
    assert body["status"] == status
    assert [r["code"] for r in body["reasons"]][0] == code
    return body


def body(**overrides: Any) -> dict[str, Any]:
    return disclosure_body("a.b.c", "P000001", **overrides)


async def test_no_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/disclosures", json=body())
    assert_problem(r, 401, "caller.unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_malformed_key_is_401(client: httpx.AsyncClient) -> None:
    for header in (
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-bulwark-key",
        "Bearer " + "x" * 5000,
    ):
        r = await client.post("/v1/disclosures", json=body(), headers={"Authorization": header})
        assert_problem(r, 401, "caller.unauthenticated")


async def test_unknown_key_is_401(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    forged = keys["requester"][:-4] + ("AAAA" if not keys["requester"].endswith("AAAA") else "BBBB")
    r = await client.post("/v1/disclosures", json=body(), headers=auth(forged))
    assert_problem(r, 401, "caller.unauthenticated")


async def test_revoked_key_is_refused_at_once(
    client: httpx.AsyncClient, keys: dict[str, str], runtime: Runtime
) -> None:
    # Warm this process's cache first: the refusal must not wait for it to expire.
    r = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert r.status_code == 200
    r = await client.post("/v1/decisions", json=body(), headers=auth(keys["requester"]))
    assert r.status_code == 200
    await revoke_client(runtime.state, "test-auditor", audit=runtime.audit)
    await revoke_client(runtime.state, "test-requester", audit=runtime.audit)
    r = await client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert_problem(r, 401, "caller.unauthenticated")
    r = await client.post("/v1/decisions", json=body(), headers=auth(keys["requester"]))
    assert_problem(r, 401, "caller.unauthenticated")
    r = await client.post("/v1/disclosures", json=body(), headers=auth(keys["requester"]))
    assert_problem(r, 401, "caller.unauthenticated")


async def test_wrong_role_is_403(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.post("/v1/disclosures", json=body(), headers=auth(keys["auditor"]))
    assert_problem(r, 403, "caller.forbidden")
    r = await client.get("/v1/audit/verify", headers=auth(keys["requester"]))
    assert_problem(r, 403, "caller.forbidden")
    r = await client.post(
        "/v1/orders/revocations",
        json={"iss": "x", "jti": "y", "reason": "z"},
        headers=auth(keys["auditor"]),
    )
    assert_problem(r, 403, "caller.forbidden")


async def test_body_not_json_is_422(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.post(
        "/v1/disclosures",
        content=b"{not json",
        headers={**auth(keys["requester"]), "Content-Type": "application/json"},
    )
    assert_problem(r, 422, "request.invalid")


async def test_body_over_limit_is_413_before_parsing(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    huge = json.dumps(body(court_order="a" * (70 * 1024))).encode()
    r = await client.post(
        "/v1/disclosures",
        content=huge,
        headers={**auth(keys["requester"]), "Content-Type": "application/json"},
    )
    assert_problem(r, 413, "request.too_large")


async def test_streamed_body_over_limit_is_413(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    r = await client.post(
        "/v1/disclosures",
        content=chunks(),
        headers={**auth(keys["requester"]), "Content-Type": "application/json"},
    )
    assert_problem(r, 413, "request.too_large")


async def test_wrong_content_type_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/disclosures",
        content=json.dumps(body()).encode(),
        headers={**auth(keys["requester"]), "Content-Type": "text/plain"},
    )
    assert_problem(r, 422, "request.invalid")


async def test_unknown_fields_are_422(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.post(
        "/v1/disclosures", json=body(nationality="FR"), headers=auth(keys["requester"])
    )
    problem = assert_problem(r, 422, "request.invalid")
    # The problem names where, never echoes what was sent.
    assert "FR" not in r.text
    assert problem["errors"][0]["loc"][-1] == "nationality"


async def test_validation_error_does_not_echo_patron_id(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/disclosures",
        json=body(patron_id="SECRET-PATRON-<script>"),
        headers=auth(keys["requester"]),
    )
    assert_problem(r, 422, "request.invalid")
    assert "SECRET-PATRON" not in r.text


async def test_404_and_405_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404, "request.not_found")
    assert_problem(await client.get("/v1/disclosures"), 405, "request.method_not_allowed")


async def test_unexpected_error_is_500_without_internals(runtime: Runtime) -> None:
    from app.main import create_app

    app = create_app(runtime=runtime)
    boom = APIRouter()

    @boom.get("/boom")
    async def explode() -> None:
        raise RuntimeError("secret internal detail P000042 /etc/passwd")

    app.include_router(boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/boom")
    assert_problem(r, 500, "internal.error")
    assert "secret" not in r.text and "Traceback" not in r.text and "P000042" not in r.text


async def test_security_headers_and_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
    assert r.headers["x-request-id"] != "bad id\twith tabs"


@pytest.mark.parametrize("path", ["/v1/audit/events", "/v1/audit/verify", "/v1/policy"])
async def test_every_v1_route_needs_a_key(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(path), 401, "caller.unauthenticated")
