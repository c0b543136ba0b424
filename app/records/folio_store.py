"""The FOLIO store kind: patron records read from a FOLIO tenant through its gateway.

FOLIO (folio-org; Okapi or Kong in front of modules) is read with a service account of the
library's, read-only, with these calls only (docs/records.md, examples/folio/README.md)::

    POST /authn/login-with-expiry      {"username", "password"}  → 201, Set-Cookie folioAccessToken
    POST /authn/login                  (legacy, where the first answers 404) → 201, x-okapi-token
    GET  /users?query=barcode=="<escaped>" sortBy id/sort.ascending&limit=20&offset=K
    GET  /circulation/loans?query=userId=="<uuid>" and loanDate>="…" and loanDate<"…"
                                        sortBy loanDate/sort.ascending id/sort.ascending
                                        &limit=N&offset=K
    GET  /circulation/requests?query=requesterId=="<uuid>" and requestDate…  (likewise)

Every call carries ``X-Okapi-Tenant``; every call but the logins carries the access token as
``X-Okapi-Token``. The token is reused until it expires; a 401 drops it and logs in once more
(the new login carries no token and no cookie) before the call is tried a second and last
time. Cookies FOLIO sets are read from the login answer and never kept in the shared client.

Narrowing, whatever FOLIO answers:

- the patron is found by barcode with the barcode escaped for CQL, then compared **exactly**
  (CQL's ``==`` ignores case; a barcode differing in case is another patron's);
- loans and requests are asked for by that patron's UUID only (checked to be a UUID, so no
  answer from FOLIO can widen a query) and by a date range widened by two days on each side,
  because FOLIO compares dates as text and keeps some with local offsets; each record's
  instant is then judged in the library's time zone, inclusive. No query is ever sent
  without the patron's UUID in it, so anonymized loans (without ``userId``) are never read;
- every page is asked with an explicit ``limit`` (FOLIO's default is 10) and a stable
  ``sortBy``, following ``offset`` to ``totalRecords``; Bulwark's own cursor holds the
  offset where the next page starts;
- only the mapped fields leave (dotted paths into FOLIO's JSON; scalars only).

Registration is a state: a user record is released when the patron was registered at some
time in the period (enrolled on or before its last day, and not expired before its first).

Every fault (connection, timeout, non-2xx, unknown tenant, malformed or oversized answer, a
token refused twice) raises StoreUnavailable naming the category; the password and tokens
appear in no log line, message or state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import Field

from app.core.problems import StoreUnavailable
from app.records.base import Page, Record, StoreValueMalformed
from app.records.categories import Category
from app.records.cursor import CursorInvalid, decode_cursor, encode_cursor, require_int
from app.records.mapping import Identifier, MappedCategory, MappingError, RecordsMapping
from app.records.obligations import Obligations, Period
from app.records.sql_schema import StoreLoginError
from app.records.upstream_http import SCALARS, read_bounded, unavailable

if TYPE_CHECKING:
    from app.core.config import Settings

logger = logging.getLogger("bulwark.records")

#: A dotted path into a FOLIO record: ``loanDate``, ``item.title``, ``personal.lastName``.
FIELD_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}$"
FieldPath = Annotated[str, Field(pattern=FIELD_PATH_PATTERN)]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: FOLIO's own page cap is 1000 on most modules; Bulwark never asks for more.
MAX_FOLIO_PAGE = 1000
MIN_FOLIO_PAGE = 50
#: Users asked for per page when looking a barcode up (case variants of one barcode).
USERS_PAGE = 20
#: FOLIO requests one fetch may make before handing out a cursor instead.
MAX_REQUESTS_PER_FETCH = 20
#: A token is renewed this long before FOLIO's stated expiry, so none expires in flight.
EXPIRY_MARGIN_SECONDS = 10.0
#: How far the CQL date range is widened on each side (FOLIO compares dates as text, in
#: whatever offset each record was stored with; any two real offsets differ by < 2 days).
WIDEN = dt.timedelta(days=2)
ACCESS_COOKIE = "folioAccessToken"


class FolioCategory(MappedCategory):
    """One category read from FOLIO: which record source, and which fields may leave."""

    source: Literal["users", "loans", "requests"]
    fields: dict[Identifier, FieldPath] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class _Source:
    path: str
    items: str
    patron_field: str  # the member holding the patron's UUID
    date_field: str  # the instant periods are matched on (events)


_SOURCES = {
    "loans": _Source("/circulation/loans", "loans", "userId", "loanDate"),
    "requests": _Source("/circulation/requests", "requests", "requesterId", "requestDate"),
}


class FolioFault(Exception):
    """Why FOLIO's answer was refused; the text is safe to show (no patron, no token)."""


class FolioLoginRefused(FolioFault):
    """FOLIO answered the login, and refused it (a wrong password, an unknown tenant)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"login answered with status {status}")
        self.status = status


class FolioDateMalformed(FolioFault):
    """A record's date cannot be placed in time (failed closed, and counted)."""


@dataclass(frozen=True, slots=True)
class FolioCredentials:
    """The tenant and service account Bulwark logs in with."""

    tenant: str
    username: str
    password: str

    def __repr__(self) -> str:  # never the password, whatever prints this
        return f"FolioCredentials(tenant={self.tenant!r}, username=<hidden>, password=<hidden>)"


class FolioRecordsStore:
    """A :class:`~app.records.base.RecordsStore` over a FOLIO tenant."""

    def __init__(
        self,
        base_url: str,
        mapping: RecordsMapping,
        client: httpx.AsyncClient,
        *,
        credentials: FolioCredentials,
        zone: dt.tzinfo,
        max_response_bytes: int,
        timeout: httpx.Timeout | float,
    ) -> None:
        if mapping.kind != "folio":
            raise MappingError("the mapping does not describe a FOLIO store")
        self._base = base_url.rstrip("/")
        self._mapping = mapping
        self._client = client
        self._credentials = credentials
        self._zone = zone
        self._max_bytes = max_response_bytes
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        # Per-read timeouts alone let a server drip bytes forever: bound each exchange.
        self._deadline = (self._timeout.connect or 0.0) + (self._timeout.read or 5.0)
        self._token: str | None = None
        self._expires_at = 0.0  # time.monotonic() after which the token is not used
        self._legacy_login = False
        self._login_lock = asyncio.Lock()

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """Per mapped category, the output field names the mapping allows to leave."""
        return self._mapping.fields()

    async def validate(self) -> None:
        """FOLIO has no schema to inspect here: confirm the tenant, login and users module.

        A refused login is a StoreLoginError naming the setting to fix; no answer at all is
        StoreUnavailable.
        """
        try:
            async with asyncio.timeout(self._deadline * 2):
                await self._current_token()
        except FolioLoginRefused as exc:
            raise StoreLoginError(self._login_guidance(exc.status)) from None
        except (FolioFault, httpx.HTTPError, TimeoutError) as exc:
            logger.warning("records store login failed", extra={"error_type": type(exc).__name__})
            raise StoreUnavailable("The records store's login is not answering.") from None
        await self.check()

    def _login_guidance(self, status: int) -> str:
        if status == 400:
            return (
                f"FOLIO did not accept the tenant {self._credentials.tenant!r} (status 400); "
                "check BULWARK_FOLIO_TENANT"
            )
        return (
            f"FOLIO refused the login of {self._credentials.username!r} (status {status}); "
            "check BULWARK_FOLIO_USERNAME, BULWARK_FOLIO_PASSWORD (or its _FILE) and that the "
            "account is active"
        )

    async def check(self) -> None:
        """Raise StoreUnavailable unless FOLIO answers a (scoped, empty) users query."""
        try:
            async with asyncio.timeout(self._deadline * 3):
                await self._get(
                    "/users", {"query": 'id=="00000000-0000-0000-0000-000000000000"', "limit": "1"}
                )
        except (FolioFault, httpx.HTTPError, TimeoutError) as exc:
            logger.warning("records store check failed", extra={"error_type": type(exc).__name__})
            raise StoreUnavailable("The records store is not answering.") from None

    async def close(self) -> None:
        """Forget the token; the HTTP client belongs to the application's lifespan."""
        self._token = None

    async def fetch(
        self,
        obligations: Obligations,
        category: Category,
        *,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """At most ``limit`` records of ``category`` narrowed by ``obligations``, oldest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        mapping = self._mapping.categories.get(category)
        allowed = set(obligations.fields.get(category, ()))
        if not isinstance(mapping, FolioCategory) or category not in obligations.categories:
            return Page([], None)
        names = tuple(name for name in mapping.fields if name in allowed)
        barcode = obligations.patron_id
        if not names or not barcode or any(ord(ch) < 32 or ord(ch) == 127 for ch in barcode):
            return Page([], None)  # no barcode holds a control character
        offset = _offset(category, cursor)
        try:
            user = await self._user(barcode)
            if user is None:
                return Page([], None)
            if mapping.source == "users":
                record = self._registration(mapping, names, obligations.period, user)
                return Page([] if record is None else [record], None)
            return await self._events(mapping, names, obligations.period, user, limit, offset)
        except FolioDateMalformed as exc:
            unavailable(category, exc, FolioFault)  # logged as any fault; counted by the metrics
            raise StoreValueMalformed(category) from None
        except (FolioFault, httpx.HTTPError, TimeoutError) as exc:
            raise unavailable(category, exc, FolioFault) from None

    # -- the patron --------------------------------------------------------------------------

    async def _user(self, barcode: str) -> dict[str, Any] | None:
        """The user whose barcode is exactly ``barcode``, or None.

        CQL's ``==`` ignores case (and accents): FOLIO may answer several users whose
        barcodes differ from the order's only so, in any order. All of them are read, a page
        at a time, and only the exact one is kept.
        """
        query = f'barcode=="{cql_escape(barcode)}" sortBy id/sort.ascending'
        exact: list[dict[str, Any]] = []
        offset = 0
        for _ in range(MAX_REQUESTS_PER_FETCH):
            body = await self._get(
                "/users", {"query": query, "limit": str(USERS_PAGE), "offset": str(offset)}
            )
            users = _collection(body, "users")
            total = _total(body)
            exact += [u for u in users if isinstance(u, dict) and u.get("barcode") == barcode]
            offset += len(users)
            if not users or offset >= total:
                break
        else:
            raise FolioFault("answered too many users for one barcode")
        if len(exact) > 1:
            raise FolioFault("answered two users for one barcode")
        if not exact:
            return None
        user = exact[0]
        if not isinstance(user.get("id"), str) or not _UUID.match(user["id"]):
            raise FolioFault("answered malformed data (user id)")
        return user

    def _registration(
        self, mapping: FolioCategory, names: tuple[str, ...], period: Period, user: dict[str, Any]
    ) -> Record | None:
        """The user record when the patron was registered at some time in ``period``."""
        enrolled = _member(user, "enrollmentDate")
        if enrolled is None:
            enrolled = _member(user, "metadata.createdDate")
        if enrolled is None:
            return None  # no date to place the registration in time: not released
        expires = _member(user, "expirationDate")
        if self._local_date(enrolled, "enrollmentDate") > period.end:
            return None
        if expires is not None and self._local_date(expires, "expirationDate") < period.start:
            return None
        return _record(mapping, names, user)

    # -- loans and requests ------------------------------------------------------------------

    async def _events(
        self,
        mapping: FolioCategory,
        names: tuple[str, ...],
        period: Period,
        user: dict[str, Any],
        limit: int,
        offset: int,
    ) -> Page:
        source = _SOURCES[mapping.source]
        user_id = user["id"]
        query = event_query(source.patron_field, user_id, source.date_field, period)
        # Records outside the period (the widened days) are read and dropped, so ask for a
        # little more than `limit`; the cursor keeps the exact offset either way.
        page_size = str(min(max(limit, MIN_FOLIO_PAGE), MAX_FOLIO_PAGE))
        category = next(c for c, m in self._mapping.categories.items() if m is mapping)
        records: list[Record] = []
        for _ in range(MAX_REQUESTS_PER_FETCH):
            body = await self._get(
                source.path, {"query": query, "limit": page_size, "offset": str(offset)}
            )
            items = _collection(body, source.items)
            total = _total(body)
            for item in items:
                offset += 1
                record = self._event(mapping, names, source, user_id, period, item)
                if record is not None:
                    records.append(record)
                    if len(records) == limit:
                        more = offset < total
                        return Page(
                            records, encode_cursor(category, {"o": offset}) if more else None
                        )
            if not items or offset >= total:
                return Page(records, None)
        return Page(records, encode_cursor(category, {"o": offset}))

    def _event(
        self,
        mapping: FolioCategory,
        names: tuple[str, ...],
        source: _Source,
        user_id: str,
        period: Period,
        item: Any,
    ) -> Record | None:
        if not isinstance(item, dict):
            raise FolioFault("answered malformed data (an item is not an object)")
        if item.get(source.patron_field) != user_id:
            logger.warning("records store returned another patron's record; dropped")
            return None
        value = item.get(source.date_field)
        if value is None:
            return None  # undated: never inside a period
        day = self._local_date(value, source.date_field)
        if not period.start <= day <= period.end:
            return None
        return _record(mapping, names, item)

    def _local_date(self, value: Any, name: str) -> dt.date:
        """The library's calendar date of a FOLIO date or date-time."""
        if not isinstance(value, str):
            raise FolioDateMalformed(f"answered malformed data ({name})")
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            raise FolioDateMalformed(f"answered malformed data ({name})") from None
        if instant.tzinfo is None:
            # FOLIO's modules write UTC; a date-time without an offset is read as UTC.
            instant = instant.replace(tzinfo=dt.UTC)
        return instant.astimezone(self._zone).date()

    # -- talking to FOLIO ----------------------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET a JSON object, logging in first or again (once) as needed."""
        for attempt in (1, 2):
            token = await self._current_token()
            headers = {
                "Accept": "application/json",
                "X-Okapi-Tenant": self._credentials.tenant,
                "X-Okapi-Token": token,
            }
            status, body, _ = await self._exchange_full(
                "GET", self._base + path, headers, params=params
            )
            if status == 401 and attempt == 1:
                self._drop(token)
                continue
            if not 200 <= status < 300:
                raise FolioFault(f"answered with status {status}")
            return _json_object(body)
        raise FolioFault("refused a fresh token")  # pragma: no cover - the loop returns

    async def _current_token(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < self._expires_at:
            return token
        async with self._login_lock:
            # Another request may have logged in while this one waited.
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            self._token = None
            self._token, self._expires_at = await self._login()
            return self._token

    def _drop(self, token: str) -> None:
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    async def _login(self) -> tuple[str, float]:
        """A new access token and when to stop using it (``time.monotonic()``)."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Okapi-Tenant": self._credentials.tenant,
        }
        payload = json.dumps(
            {"username": self._credentials.username, "password": self._credentials.password}
        ).encode()
        if not self._legacy_login:
            status, body, response = await self._login_call(
                "/authn/login-with-expiry", headers, payload
            )
            if status == 201:
                data = _json_object(body)
                # The cookie is where current FOLIO puts it; releases that also return it in
                # the body (mod-login's loginResponseWithExpiry) are read there too.
                token = response.cookies.get(ACCESS_COOKIE) or data.get("accessToken")
                if not isinstance(token, str) or not token:
                    raise FolioFault("login answered without an access token")
                return token, self._expiry(data)
            if status != 404:
                raise _login_failure(status)
            self._legacy_login = True  # this FOLIO predates expiring tokens
        status, _, response = await self._login_call("/authn/login", headers, payload)
        if status != 201:
            raise _login_failure(status)
        token = response.headers.get("x-okapi-token")
        if not token:
            raise FolioFault("login answered without x-okapi-token")
        # Legacy tokens do not expire; a 401 is what retires one.
        return token, float("inf")

    async def _login_call(
        self, path: str, headers: Mapping[str, str], payload: bytes
    ) -> tuple[int, bytes, httpx.Response]:
        return await self._exchange_full("POST", self._base + path, headers, content=payload)

    def _expiry(self, data: dict[str, Any]) -> float:
        value = data.get("accessTokenExpiration")
        try:
            expires = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            expires = None
        if expires is None:
            raise FolioFault("login answered malformed data (accessTokenExpiration)")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)  # "in UTC", says mod-login's schema
        remaining = (expires - dt.datetime.now(dt.UTC)).total_seconds() - EXPIRY_MARGIN_SECONDS
        return time.monotonic() + max(remaining, 0.0)

    async def _exchange_full(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> tuple[int, bytes, httpx.Response]:
        """One request under the store's deadline: status, body (bounded) and the response."""
        # The shared client would otherwise send FOLIO's cookies back (an expired token
        # with a new login, among others): it holds none of them, ever.
        self._client.cookies.clear()
        request = self._client.build_request(
            method, url, params=params, headers=headers, content=content, timeout=self._timeout
        )
        async with asyncio.timeout(self._deadline):
            response = await self._client.send(request, stream=True, follow_redirects=False)
            self._client.cookies.clear()  # no await since send() stored them: none leaks
            try:
                body = await read_bounded(response, self._max_bytes, FolioFault)
            finally:
                await response.aclose()
        return response.status_code, body, response


def _login_failure(status: int) -> FolioFault:
    # 5xx: FOLIO is failing, not refusing; anything else is a refusal of these credentials.
    return (
        FolioFault(f"login answered with status {status}")
        if status >= 500
        else (FolioLoginRefused(status))
    )


def cql_escape(value: str) -> str:
    """``value`` as the inside of a CQL quoted string, matched literally.

    Backslash, double quote and CQL's masking characters (``*``, ``?``, ``^``) are escaped
    with a backslash, so that a barcode such as ``*`` or ``A"or"1`` matches only itself.
    """
    return re.sub(r'([\\"*?^])', r"\\\1", value)


def event_query(patron_field: str, user_id: str, date_field: str, period: Period) -> str:
    """The CQL for one patron's loans or requests around ``period``, in a stable order."""
    if not _UUID.match(user_id):
        raise FolioFault("answered malformed data (user id)")
    start = (period.start - WIDEN).isoformat()
    end = (period.end + WIDEN + dt.timedelta(days=1)).isoformat()
    return (
        f'{patron_field}=="{user_id}" and {date_field}>="{start}" and {date_field}<"{end}"'
        f" sortBy {date_field}/sort.ascending id/sort.ascending"
    )


def _offset(category: Category, cursor: str | None) -> int:
    if cursor is None:
        return 0
    state = decode_cursor(cursor, category)
    if set(state) != {"o"}:
        raise CursorInvalid("cursor does not fit this category")
    return require_int(state, "o", minimum=1)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise FolioFault("answered with something other than JSON") from None
    if not isinstance(data, dict):
        raise FolioFault("answered malformed data (expected a JSON object)")
    return data


def _collection(body: dict[str, Any], key: str) -> list[Any]:
    items = body.get(key)
    if not isinstance(items, list):
        raise FolioFault(f"answered malformed data (expected {key!r})")
    return items


def _total(body: dict[str, Any]) -> int:
    total = body.get("totalRecords")
    if type(total) is not int or total < 0:
        raise FolioFault("answered malformed data (totalRecords)")
    return total


def _member(item: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path``; None when any step is absent (FOLIO omits empties)."""
    value: Any = item
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _record(mapping: FolioCategory, names: tuple[str, ...], item: Mapping[str, Any]) -> Record:
    record: Record = {}
    for name in names:
        value = _member(item, mapping.fields[name])
        if not isinstance(value, SCALARS):
            # A nested object or list could carry unmapped data out.
            raise FolioFault(f"answered malformed data (field {mapping.fields[name]!r})")
        record[name] = value
    return record


def build_folio_store(
    settings: Settings, mapping: RecordsMapping, client: httpx.AsyncClient
) -> FolioRecordsStore:
    """The FOLIO store for ``settings``; refuses to start, naming the setting, when one lacks."""
    # BULWARK_FOLIO_PASSWORD, or the file BULWARK_FOLIO_PASSWORD_FILE names (app/core/config.py).
    password = settings.folio_password.get_secret_value() if settings.folio_password else ""
    for name, value in (
        ("BULWARK_FOLIO_TENANT", settings.folio_tenant),
        ("BULWARK_FOLIO_USERNAME", settings.folio_username),
        ("BULWARK_FOLIO_PASSWORD (or BULWARK_FOLIO_PASSWORD_FILE)", password),
    ):
        if not value:
            raise MappingError(f"a FOLIO records store needs {name}")
    return FolioRecordsStore(
        settings.store_url,
        mapping,
        client,
        credentials=FolioCredentials(settings.folio_tenant, settings.folio_username, password),
        zone=settings.clock.tz,
        max_response_bytes=settings.records_max_response_bytes,
        timeout=httpx.Timeout(
            settings.records_timeout_seconds, connect=settings.records_connect_timeout_seconds
        ),
    )
