"""The HTTP records store: an upstream records API, re-narrowed locally.

For each category the mapping names a path template; a fetch is one request::

    GET {base_url}{path with {patron} as one URL-quoted segment}
        ?from=YYYY-MM-DD&to=YYYY-MM-DD&limit=N[&cursor=<the upstream's own cursor>]
    Authorization: Bearer <BULWARK_RECORDS_API_TOKEN>

The answer is a JSON list of objects, or (when the mapping names ``items``) an object whose
``items`` member holds that list and whose optional top-level ``next_cursor`` (a string, or
null at the end) continues it. docs/records.md describes the shape in full.

Bulwark does not trust the upstream to narrow: every record is checked again here. Records
dated outside the permit's period are dropped, records naming another patron are dropped
(when the mapping names ``patron_field``), and only permitted fields leave, renamed. A field
must be a JSON scalar, so that no nested object can carry unmapped data out.

Only Bulwark's own credential is sent, never the caller's key or the court order (the store
never sees either). The body is streamed and abandoned past ``max_response_bytes``; timeouts,
error statuses, redirects, non-JSON and wrongly shaped answers all raise StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.core.calendar import UTC_CLOCK, LibraryClock
from app.core.problems import StoreUnavailable
from app.records.base import Page, Record, StoreValueMalformed
from app.records.categories import Category
from app.records.cursor import CursorInvalid, decode_cursor, encode_cursor, require_int
from app.records.mapping import PATRON_PLACEHOLDER, HttpCategory, MappingError, RecordsMapping
from app.records.obligations import Obligations
from app.records.periods import MalformedTime, TimeFrame
from app.records.upstream_http import SCALARS, read_bounded, unavailable

logger = logging.getLogger("bulwark.records")

_DAY = dt.timedelta(days=1)
#: Longest upstream cursor passed on; ours wraps it, and cursors stay URL-sized.
MAX_UPSTREAM_CURSOR = 2048


class UpstreamFault(Exception):
    """Why an upstream answer was refused; the text is safe to show (no patron, no data)."""


class HttpRecordsStore:
    """A :class:`~app.records.base.RecordsStore` over an upstream records API."""

    def __init__(
        self,
        base_url: str,
        mapping: RecordsMapping,
        client: httpx.AsyncClient,
        *,
        token: str | None,
        max_response_bytes: int,
        timeout: httpx.Timeout | float,
        clock: LibraryClock = UTC_CLOCK,
    ) -> None:
        if mapping.kind != "http":
            raise MappingError("the mapping describes SQL tables, but the URL is an HTTP API")
        self._base = base_url.rstrip("/")
        self._mapping = mapping
        self._client = client
        self._max_bytes = max_response_bytes
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        # Per-read timeouts alone let a server drip bytes forever: bound the whole exchange.
        self._deadline = (self._timeout.connect or 0.0) + (self._timeout.read or 5.0)
        self._frames = {
            category: TimeFrame.of(clock, mapping.store_zone(category, clock.tz))
            for category in mapping.categories
        }
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """Per mapped category, the output field names the mapping allows to leave."""
        return self._mapping.fields()

    async def validate(self) -> None:
        """An HTTP store has no schema to inspect: confirm that it answers its health path."""
        await self.check()

    async def fetch(
        self,
        obligations: Obligations,
        category: Category,
        *,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """At most ``limit`` records of ``category`` narrowed by ``obligations``, in upstream order.

        A category the permit or the mapping does not name, or one without permitted fields,
        yields an empty page without a request.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        mapping = self._mapping.categories.get(category)
        allowed = set(obligations.fields.get(category, ()))
        if not isinstance(mapping, HttpCategory) or category not in obligations.categories:
            return Page([], None)
        names = tuple(name for name in mapping.fields if name in allowed)
        if not names or not obligations.patron_id:
            return Page([], None)
        upstream_cursor, skip = _position(category, cursor)
        try:
            async with asyncio.timeout(self._deadline):
                body = await self._get(mapping, obligations, limit, upstream_cursor)
            items, next_upstream = _items(mapping, body)
            frame, match = self._frames[category], self._mapping.matching(category)
            narrowing = _Narrowing(mapping, names, obligations, frame, match)
            records, consumed = narrowing.run(items, skip, limit)
        except MalformedTime:
            logger.warning(
                "upstream record with an unplaceable date", extra={"category": category.value}
            )
            raise StoreValueMalformed(category) from None
        except (UpstreamFault, httpx.HTTPError, TimeoutError) as exc:
            raise unavailable(category, exc, UpstreamFault) from None
        next_cursor = _next_cursor(category, upstream_cursor, next_upstream, consumed, len(items))
        return Page(records, next_cursor)

    async def _get(
        self,
        mapping: HttpCategory,
        obligations: Obligations,
        limit: int,
        upstream_cursor: str | None,
    ) -> Any:
        url = self._base + mapping.path.replace(
            PATRON_PLACEHOLDER, patron_segment(obligations.patron_id)
        )
        # One day more on each side: an upstream that reads the dates in another zone (UTC)
        # still sends every record of the period; Bulwark narrows by the library's calendar.
        start, end = obligations.period.start, obligations.period.end
        params = {
            "from": (start - _DAY if start > dt.date.min else start).isoformat(),
            "to": (end + _DAY if end < dt.date.max else end).isoformat(),
            "limit": str(limit),
        }
        if upstream_cursor is not None:
            params["cursor"] = upstream_cursor
        body = await self._read(url, params)
        try:
            return json.loads(body)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            raise UpstreamFault("answered with something other than JSON") from None

    async def _read(self, url: str, params: Mapping[str, str] | None) -> bytes:
        request = self._client.build_request(
            "GET", url, params=params, headers=self._headers, timeout=self._timeout
        )
        response = await self._client.send(request, stream=True, follow_redirects=False)
        try:
            if not response.is_success:
                raise UpstreamFault(f"answered with status {response.status_code}")
            return await read_bounded(response, self._max_bytes, UpstreamFault)
        finally:
            await response.aclose()

    async def check(self) -> None:
        """Raise StoreUnavailable unless the upstream answers its health path with 2xx."""
        try:
            async with asyncio.timeout(self._deadline):
                await self._read(self._base + self._mapping.health_path, None)
        except (UpstreamFault, httpx.HTTPError, TimeoutError) as exc:
            logger.warning("records store check failed", extra={"error_type": type(exc).__name__})
            raise StoreUnavailable("The records store is not answering.") from None

    async def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the application's lifespan."""


def patron_segment(patron_id: str) -> str:
    """``patron_id`` as exactly one path segment.

    Everything but unreserved characters is percent-encoded, and so are dots: a patron id of
    ``..`` must not become a dot-segment that URL normalisation would resolve into another
    endpoint of the upstream (one that might list every patron's records).
    """
    return quote(patron_id, safe="").replace(".", "%2E")


def _position(category: Category, cursor: str | None) -> tuple[str | None, int]:
    if cursor is None:
        return None, 0
    state = decode_cursor(cursor, category)
    if set(state) != {"u", "s"}:
        raise CursorInvalid("cursor does not fit this category")
    upstream = state["u"]
    if upstream is not None and not isinstance(upstream, str):
        raise CursorInvalid("cursor position is malformed")
    return upstream, require_int(state, "s")


def _items(mapping: HttpCategory, body: Any) -> tuple[list[Any], str | None]:
    """The list of items in an answer, and the upstream's cursor to continue it."""
    if mapping.items is None:
        if not isinstance(body, list):
            raise UpstreamFault("answered malformed data (expected a JSON list)")
        return body, None
    if not isinstance(body, dict) or not isinstance(body.get(mapping.items), list):
        raise UpstreamFault(f"answered malformed data (expected an object with {mapping.items!r})")
    next_cursor = body.get("next_cursor")
    if next_cursor is not None and (
        not isinstance(next_cursor, str) or not 0 < len(next_cursor) <= MAX_UPSTREAM_CURSOR
    ):
        raise UpstreamFault("answered malformed data (next_cursor)")
    return body[mapping.items], next_cursor


@dataclass(frozen=True, slots=True)
class _Narrowing:
    """How one category's upstream items are narrowed for one request."""

    mapping: HttpCategory
    names: tuple[str, ...]
    obligations: Obligations
    frame: TimeFrame
    match: str

    def run(self, items: list[Any], skip: int, limit: int) -> tuple[list[Record], int]:
        """Permitted records from ``items[skip:]``, at most ``limit``, and how many were read."""
        records: list[Record] = []
        position = skip
        for item in items[skip:]:
            if len(records) >= limit:
                break
            position += 1
            record = self.record(item)
            if record is not None:
                records.append(record)
        return records, position

    def record(self, item: Any) -> Record | None:
        mapping = self.mapping
        if not isinstance(item, dict):
            raise UpstreamFault("answered malformed data (an item is not an object)")
        if mapping.patron_field is not None and not _same_patron(
            item.get(mapping.patron_field), self.obligations.patron_id, self.match
        ):
            logger.warning("upstream returned another patron's record; dropped")
            return None
        if not _inside(item, mapping, self.obligations, self.frame):
            return None
        period_fields = {mapping.date_field, mapping.end_field}
        record: Record = {}
        for name in self.names:
            key = mapping.fields[name]
            if key not in item or not isinstance(item[key], SCALARS):
                raise UpstreamFault(f"answered malformed data (field {key!r})")
            value = item[key]
            # A period member leaves as a placed time: a datetime with its offset.
            if key in period_fields and value is not None:
                value = self.frame.release(value)
            record[name] = value
        return record


def _same_patron(value: Any, patron_id: str, match: str | None) -> bool:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return False
    if match == "case_insensitive":
        return str(value).lower() == patron_id.lower()
    return str(value) == patron_id


def _inside(
    item: Mapping[str, Any], mapping: HttpCategory, obligations: Obligations, frame: TimeFrame
) -> bool:
    """Whether the item lies in the period; a record without a date never does.

    Values are ISO 8601 text, judged by their form: a date, a wall-clock datetime (the
    store's zone), or an instant (``Z`` or an offset). Anything else raises MalformedTime.
    """
    date_field = mapping.date_field
    if date_field not in item:
        raise UpstreamFault(f"answered malformed data (field {date_field!r})")
    value = item[date_field]
    if value is None:
        return False
    if not isinstance(value, str):
        raise MalformedTime("not ISO 8601 text")
    if mapping.end_field is None:
        return frame.event_in(value, obligations.period)
    end = item.get(mapping.end_field)
    if end is not None and not isinstance(end, str):
        raise MalformedTime("not ISO 8601 text")
    return frame.state_in(value, end, obligations.period)


def _next_cursor(
    category: Category, current: str | None, upstream_next: str | None, consumed: int, total: int
) -> str | None:
    """Where the next page starts: further into this upstream page, or the upstream's next.

    Resuming inside an upstream page re-requests that page and skips what was read, so an
    upstream that sends more than ``limit`` items loses none of them.
    """
    if consumed < total:
        return encode_cursor(category, {"u": current, "s": consumed})
    if upstream_next is not None:
        return encode_cursor(category, {"u": upstream_next, "s": 0})
    return None
