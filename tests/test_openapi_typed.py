"""The OpenAPI document as a strictly typed client sees it, and requests parsed as declared.

Every success body is typed all the way down; public routes list the anonymous alternative;
the constraints the code enforces are in the document; and values a typed client would never
send (a number for a date, "0.5" for an integer) are refused with 422, not read loosely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from app.records.demo import DEMO_PATRON
from tests.conftest import auth
from tests.factories import disclosure_body

Token = Callable[..., str]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(environment="test", _env_file=None)).openapi()  # type: ignore[call-arg]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def untyped(document: dict[str, Any], schema: Any, where: str, seen: set[str]) -> Iterator[str]:
    """Where ``schema`` lets a value through without a type: ``{}``, or a bare object."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from untyped(document, _resolve(document, schema), name, seen)
        return
    keywords = {"type", "anyOf", "oneOf", "allOf", "enum", "const"}
    if not keywords & set(schema):
        yield where
    if schema.get("type") == "object":
        extra = schema.get("additionalProperties")
        if "properties" not in schema and not isinstance(extra, dict):
            yield where
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from untyped(document, sub, f"{where}/{key}/{i}", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from untyped(document, sub, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from untyped(document, schema[key], f"{where}/{key}", seen)


def test_every_success_body_is_typed_all_the_way_down(document: dict[str, Any]) -> None:
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if not status.startswith("2"):
                    continue
                for media, content in response.get("content", {}).items():
                    where = f"{method} {path} {status} {media}"
                    found += untyped(document, content.get("schema", {}), where, set())
    assert found == []


def test_the_walker_finds_an_untyped_body() -> None:
    doc: dict[str, Any] = {"components": {"schemas": {"A": {"type": "object"}}}}
    assert list(untyped(doc, {"$ref": "#/components/schemas/A"}, "x", set())) == ["A"]
    assert list(untyped(doc, {}, "x", set())) == ["x"]
    open_row = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
    assert list(untyped(doc, open_row, "x", set())) == ["x/items"]


def test_the_typed_parts_are_declared(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    trace = schemas["DecisionOut"]["properties"]["trace"]["anyOf"][0]["items"]
    assert trace == {"$ref": "#/components/schemas/TraceRow"}
    assert {"rule", "outcome", "reasons", "compared"} <= set(schemas["TraceRow"]["required"])
    body = schemas["AuditEventOut"]["properties"]["body"]
    assert body["additionalProperties"] is True
    assert {"seq", "ts", "kind", "effect"} <= set(body["properties"])
    checks = schemas["Readiness"]["properties"]["checks"]["anyOf"][0]
    assert checks["additionalProperties"]["required"] == ["ok"]


def test_public_routes_list_the_anonymous_alternative(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert paths["/healthz"]["get"]["security"] == [{}]
    assert paths["/readyz"]["get"]["security"] == [{"ApiKey": []}, {}]
    assert paths["/v1/transparency"]["get"]["security"] == [{"ApiKey": []}, {}]
    for path, item in paths.items():
        if path.startswith("/v1/log/"):
            assert item["get" if "get" in item else "post"]["security"][-1] == {}, path
    assert {} not in paths["/v1/disclosures"]["post"]["security"]


def test_statuses_the_code_answers_are_declared(document: dict[str, Any]) -> None:
    # The report and the public log authenticate a key when one is sent: rate limited too.
    assert "429" in document["paths"]["/v1/transparency"]["get"]["responses"]
    assert "429" in document["paths"]["/v1/log/checkpoint"]["get"]["responses"]


def test_the_constraints_the_code_enforces_are_declared(document: dict[str, Any]) -> None:
    request = document["components"]["schemas"]["DisclosureRequest"]["properties"]
    assert request["categories"]["uniqueItems"] is True
    cursor = request["cursor"]["anyOf"][0]
    assert (cursor["minLength"], cursor["maxLength"]) == (43, 43)


# --------------------------------------------------------------------------- through the API


def _body(token: str, **overrides: Any) -> dict[str, Any]:
    body = disclosure_body(token)
    return {**body, **overrides}


def _refused(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [r["code"] for r in response.json()["reasons"]]


@pytest.mark.parametrize(
    "value", [0, 1_700_000_000, 20260101.0, True, "2026-01-01T00:00:00", "0", "20260101"]
)
async def test_a_date_that_is_not_an_iso_date_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, value: Any
) -> None:
    token = order_token(patrons=[DEMO_PATRON])
    for endpoint in ("/v1/decisions", "/v1/disclosures"):
        r = await client.post(
            endpoint, json=_body(token, **{"from": value}), headers=auth(keys["requester"])
        )
        assert _refused(r) == ["request.invalid"]


async def test_an_iso_date_is_still_read(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    r = await client.post(
        "/v1/decisions",
        json=_body(order_token(patrons=[DEMO_PATRON])),
        headers=auth(keys["requester"]),
    )
    assert r.status_code == 200, r.text
    trace = r.json()["decision"]["trace"]
    assert trace and all(set(row) == {"rule", "outcome", "reasons", "compared"} for row in trace)


@pytest.mark.parametrize("value", ["0.5", "1.0", "+1", "1_0", " 1", "1e3", "0x1"])
async def test_an_integer_query_that_is_not_decimal_digits_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], value: str
) -> None:
    auditor = auth(keys["auditor"])
    r = await client.get("/v1/audit/events", params={"after": value}, headers=auditor)
    assert _refused(r) == ["request.invalid"]
    r = await client.get("/v1/audit/events", params={"limit": value}, headers=auditor)
    assert _refused(r) == ["request.invalid"]
    r = await client.get("/v1/legal-holds", params={"after": value}, headers=auth(keys["admin"]))
    assert _refused(r) == ["request.invalid"]


async def test_decimal_digits_are_still_read(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.get(
        "/v1/audit/events", params={"after": "0", "limit": "2"}, headers=auth(keys["auditor"])
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["0.5", "0", "1700000000", "2026-13-01T00:00:00Z"])
async def test_an_instant_that_is_not_a_date_time_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], value: str
) -> None:
    r = await client.get("/v1/notices", params={"after": value}, headers=auth(keys["admin"]))
    assert _refused(r) == ["request.invalid"]


@pytest.mark.parametrize("value", ["0", "1700000000", "2026-01-01T00:00:00"])
async def test_a_report_date_that_is_not_an_iso_date_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], value: str
) -> None:
    r = await client.get("/v1/transparency", params={"from": value}, headers=auth(keys["admin"]))
    assert _refused(r) == ["request.invalid"]


async def test_a_repeated_category_and_an_overlong_cursor_are_refused(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    """The two constraints the document now declares were enforced already: still 422."""
    token = order_token(patrons=[DEMO_PATRON])
    requester = auth(keys["requester"])
    twice = _body(token, categories=["circulation", "circulation"])
    assert _refused(await client.post("/v1/disclosures", json=twice, headers=requester))
    long = _body(token, cursor="A" * 44)
    assert _refused(await client.post("/v1/disclosures", json=long, headers=requester))


async def test_the_live_document_types_records_per_mapped_category(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    records = document["components"]["schemas"]["DisclosureResponse"]["properties"]["records"]
    assert records["additionalProperties"] is False
    circulation = records["properties"]["circulation"]["items"]
    assert "title" in circulation["properties"]
    assert circulation["additionalProperties"] is False


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
async def test_a_boolean_that_is_not_a_json_boolean_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], value: Any
) -> None:
    body = {"iss": "https://courts.example/x", "jti": "j-1", "reason": "r", "pre_emptive": value}
    r = await client.post("/v1/orders/revocations", json=body, headers=auth(keys["admin"]))
    assert _refused(r) == ["request.invalid"]


async def test_an_undeclared_query_parameter_is_refused_without_echoing_it(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.get(
        "/v1/legal-holds", params={"patron": DEMO_PATRON}, headers=auth(keys["admin"])
    )
    assert _refused(r) == ["request.invalid"]
    assert DEMO_PATRON not in r.text and "patron" not in r.json()["detail"]
    # Without a key the key is refused first: an anonymous caller learns nothing else.
    assert (await client.get("/v1/legal-holds", params={"x": "1"})).status_code == 401


async def test_a_malformed_cursor_is_refused_by_a_dry_run_too(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token
) -> None:
    body = _body(order_token(patrons=[DEMO_PATRON]), cursor="AAA")
    r = await client.post("/v1/decisions", json=body, headers=auth(keys["requester"]))
    assert _refused(r) == ["request.invalid"]


def test_the_tile_path_is_declared_as_the_code_reads_it(document: dict[str, Any]) -> None:
    import re

    from app.audit.log_router import parse_tile_index

    (rest,) = [
        p for p in document["paths"]["/v1/log/tile/{level}/{rest}"]["get"]["parameters"]
        if p["name"] == "rest"
    ]  # fmt: skip
    pattern = re.compile(rest["schema"]["pattern"])
    for path in ["000", "x001/234", "001.p/5", "000.p/255", "000.p/256", "1", "000.p/0", "x1/000"]:
        try:
            parse_tile_index(path)
            accepted = True
        except Exception:
            accepted = False
        assert accepted == bool(pattern.search(path)), path
