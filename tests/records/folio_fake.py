"""A FOLIO fake for the FOLIO store's tests: answers as FOLIO's gateway and modules do.

Written from FOLIO's published definitions (mod-login ``ramls/login.raml`` and
``loginResponseWithExpiry.json``; mod-users ``ramls/userdata.json``; mod-circulation
``ramls/circulation.raml``, ``loan.json``, ``loans.json``, ``request.json``; the shared
``raml-util/traits/pageable.raml``), not from any FOLIO code:

- tenants: every call needs ``X-Okapi-Tenant`` naming a known tenant (else 400, as the
  gateway answers an unknown tenant), and every call but the logins a live token for it
  (else 401);
- both logins: ``POST /authn/login-with-expiry`` → 201 with ``Set-Cookie: folioAccessToken``
  and ``folioRefreshToken`` and the expiries in the body; ``POST /authn/login`` (legacy) →
  201 with ``x-okapi-token``; a tenant may lack the first (404), as older FOLIO does;
- tokens expire after ``ttl`` seconds;
- collections page with ``offset`` (default 0) and ``limit`` (default **10**) and report
  ``totalRecords``;
- CQL, the subset these endpoints are queried with: ``field==value`` (case-blind, with
  ``*`` and ``?`` as wildcards unless escaped with ``\\``), ``=`` likewise, and ``<``,
  ``<=``, ``>``, ``>=`` comparing **text** (so dates compare as the strings stored), joined
  by ``and``, then ``sortBy field[/sort.ascending|/sort.descending] …``. A call without
  ``query`` answers every record of the tenant (what Bulwark must never ask for).

Every request is kept, headers and all, so tests can assert what Bulwark sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.records.serving import local_socket, serving

TENANT = "diku"
USERNAME = "bulwark-reader"
PASSWORD = "correct horse battery staple 7"


@dataclass
class Seen:
    """One request as FOLIO received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class TenantData:
    """One tenant's records and login."""

    users: list[dict[str, Any]] = field(default_factory=list)
    loans: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    username: str = USERNAME
    password: str = PASSWORD
    expiring_login: bool = True  # has /authn/login-with-expiry


@dataclass
class Folio:
    """The running fake: its base URL, its data, its knobs and what it received."""

    base_url: str
    tenants: dict[str, TenantData] = field(default_factory=dict)
    ttl: float = 600.0
    seen: list[Seen] = field(default_factory=list)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token → tenant, expiry
    status: dict[str, int] = field(default_factory=dict)  # path → forced status
    delay: float = 0.0  # seconds before answering a data call
    malformed: bool = False  # data calls answer broken JSON
    refuse_tokens: bool = False  # every token is refused (401)

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (mid-run expiry)."""
        self.tokens = {t: (tenant, 0.0) for t, (tenant, _) in self.tokens.items()}

    def logins(self) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith("/authn/")]

    def data_calls(self) -> list[Seen]:
        return [s for s in self.seen if not s.path.startswith("/authn/")]


# -- CQL ---------------------------------------------------------------------------------------

_CLAUSE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_.]*)\s*(==|<=|>=|=|<|>)\s*"((?:[^"\\]|\\.)*)"\s*')


def _unescape_pattern(value: str) -> re.Pattern[str]:
    """A CQL string as a case-blind regex: ``*`` and ``?`` are wildcards unless escaped."""
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _unescape_text(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _get(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def cql_filter(records: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The records ``query`` selects, in its ``sortBy`` order."""
    where, _, sort = query.partition(" sortBy ")
    clauses = []
    rest = where.strip()
    while rest:
        match = _CLAUSE.match(rest)
        if not match:
            raise ValueError(f"unsupported CQL near {rest[:20]!r}")
        clauses.append(match.groups())
        rest = rest[match.end() :]
        if rest.startswith("and "):
            rest = rest[4:]
        elif rest:
            raise ValueError(f"unsupported CQL near {rest[:20]!r}")

    def keep(record: dict[str, Any]) -> bool:
        for name, op, raw in clauses:
            value = _get(record, name)
            if value is None:
                return False
            text = str(value)
            if op in ("==", "="):
                if not _unescape_pattern(raw).fullmatch(text):
                    return False
                continue
            other = _unescape_text(raw)
            ok = {"<": text < other, "<=": text <= other, ">": text > other, ">=": text >= other}
            if not ok[op]:
                return False
        return True

    selected = [r for r in records if keep(r)]
    for key in reversed(sort.split()):
        name, _, direction = key.partition("/")

        def by(record: dict[str, Any], name: str = name) -> str:
            return str(_get(record, name) or "")

        selected.sort(key=by, reverse=direction == "sort.descending")
    return selected


# -- the app -----------------------------------------------------------------------------------


def _text(status: int, body: str) -> Response:
    return Response(body, status_code=status, media_type="text/plain")


def build_app(folio: Folio) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        folio.seen.append(
            Seen(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers=dict(request.headers),
                body=body,
            )
        )
        response = await answer(request, body)
        await response(scope, receive, send)

    async def answer(request: Request, body: bytes) -> Response:
        path = request.url.path
        tenant_id = request.headers.get("x-okapi-tenant", "")
        tenant = folio.tenants.get(tenant_id)
        if tenant is None:
            return _text(400, f"No such Tenant {tenant_id}")
        if path in folio.status:
            return _text(folio.status[path], "forced")
        if path == "/authn/login-with-expiry" and request.method == "POST":
            if not tenant.expiring_login:
                return _text(404, "No suitable module found for path /authn/login-with-expiry")
            return _login(tenant_id, tenant, body, expiring=True)
        if path == "/authn/login" and request.method == "POST":
            return _login(tenant_id, tenant, body, expiring=False)
        token = request.headers.get("x-okapi-token", "")
        issued = folio.tokens.get(token)
        if folio.refuse_tokens or issued is None or issued[0] != tenant_id:
            return _text(401, "Invalid token")
        if issued[1] < time.time():
            return _text(401, "Token expired")
        if folio.delay:
            await asyncio.sleep(folio.delay)
        if folio.malformed:
            return Response(b'{"loans": [{"id": "unterminated', media_type="application/json")
        collections = {
            "/users": ("users", tenant.users),
            "/circulation/loans": ("loans", tenant.loans),
            "/circulation/requests": ("requests", tenant.requests),
        }
        if path not in collections or request.method != "GET":
            return _text(404, f"No suitable module found for path {path}")
        key, records = collections[path]
        query = request.query_params.get("query")
        try:
            selected = cql_filter(records, query) if query else list(records)
            offset = int(request.query_params.get("offset", "0"))
            limit = int(request.query_params.get("limit", "10"))
        except ValueError as exc:
            return _text(400, str(exc))
        page = selected[offset : offset + limit]
        return JSONResponse({key: page, "totalRecords": len(selected)})

    def _login(tenant_id: str, tenant: TenantData, body: bytes, *, expiring: bool) -> Response:
        try:
            credentials = json.loads(body)
        except ValueError:
            return _text(400, "Bad request")
        if credentials != {"username": tenant.username, "password": tenant.password}:
            return JSONResponse(
                {"errors": [{"message": "Password does not match", "code": "password.incorrect"}]},
                status_code=422,
            )
        token = secrets.token_urlsafe(24)
        expires = time.time() + folio.ttl
        folio.tokens[token] = (tenant_id, expires)
        if not expiring:
            return JSONResponse({"okapiToken": token}, 201, headers={"x-okapi-token": token})
        at = dt.datetime.fromtimestamp(expires, dt.UTC)
        response = JSONResponse(
            {
                "accessTokenExpiration": at.isoformat().replace("+00:00", "Z"),
                "refreshTokenExpiration": (at + dt.timedelta(days=7)).isoformat(),
            },
            201,
        )
        max_age = max(int(folio.ttl), 0)
        response.set_cookie(
            "folioAccessToken", token, max_age=max_age, path="/", httponly=True, samesite="lax"
        )
        response.set_cookie(
            "folioRefreshToken", "r-" + token, max_age=604800, path="/authn", httponly=True
        )
        return response

    return app


@contextmanager
def running_folio(**tenants: TenantData) -> Iterator[Folio]:
    """Serve the fake on 127.0.0.1 until the block ends."""
    sock, url = local_socket()
    folio = Folio(url, tenants=dict(tenants))
    with serving(build_app(folio), sock, "the FOLIO fake"):
        yield folio
