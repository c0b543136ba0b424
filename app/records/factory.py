"""Choosing and building the configured records store: the registry of store kinds.

A mapping names its store ``kind`` (``kind = "folio"``); without one, categories naming a
``path`` are ``http`` and the others ``sql``, as before kinds existed. Each kind in
:data:`KINDS` brings:

- ``category``: the pydantic model one ``[categories.<id>]`` section must match (so each kind
  validates its own section: tables and columns, paths, FOLIO sources…);
- ``top_level_keys``: the mapping keys besides ``kind`` and ``categories`` it accepts;
- ``accepts_url``: which ``BULWARK_RECORDS_URL`` it can read (a database URL, an ``http(s)``
  base URL);
- ``build``: the store, from the settings (each kind checks the settings it needs here and
  refuses to start, naming the setting, when one is missing).

Adding a kind is one new module (its category model, its store and a ``build`` function) and
one line in :data:`KINDS`; docs/records.md walks through the HTTP kind as the example.
Start-up is then::

    mapping = load_configured_mapping(settings)
    validate_against_policy(mapping, policy.forbidden_fields)
    store = build_store(settings, mapping, http_client)
    await store.validate()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from app.core.config import Settings
from app.records.base import RecordsStore
from app.records.folio_store import FolioCategory, build_folio_store
from app.records.http_store import HttpRecordsStore
from app.records.mapping import (
    HttpCategory,
    MappedCategory,
    MappingError,
    RecordsMapping,
    SqlCategory,
    load_mapping,
)
from app.records.sql_store import SqlRecordsStore

__all__ = [
    "KINDS",
    "ConfiguredStore",
    "StoreKind",
    "build_store",
    "is_http_store",
    "load_configured_mapping",
]


class ConfiguredStore(RecordsStore, Protocol):
    """A records store that can also check itself against its mapping at start."""

    async def validate(self) -> None:
        """Raise MappingError when the store does not match the mapping."""
        ...


Builder = Callable[[Settings, RecordsMapping, httpx.AsyncClient], ConfiguredStore]


@dataclass(frozen=True, slots=True)
class StoreKind:
    """One kind of records store: how its mapping reads and how its store is built."""

    name: str
    category: type[MappedCategory]
    accepts_url: Callable[[str], bool]
    build: Builder
    top_level_keys: frozenset[str] = field(default_factory=frozenset)


def is_http_store(url: str) -> bool:
    """Whether ``url`` names an upstream records API rather than a database."""
    return urlsplit(url).scheme.lower() in ("http", "https")


def _is_database(url: str) -> bool:
    return not is_http_store(url)


def _build_sql(
    settings: Settings, mapping: RecordsMapping, _: httpx.AsyncClient
) -> SqlRecordsStore:
    return SqlRecordsStore(
        settings.store_url, mapping, timeout=settings.records_timeout_seconds, clock=settings.clock
    )


def _build_http(
    settings: Settings, mapping: RecordsMapping, client: httpx.AsyncClient
) -> HttpRecordsStore:
    token = settings.records_api_token
    return HttpRecordsStore(
        settings.store_url,
        mapping,
        client,
        token=token.get_secret_value() if token else None,
        max_response_bytes=settings.records_max_response_bytes,
        timeout=httpx.Timeout(
            settings.records_timeout_seconds, connect=settings.records_connect_timeout_seconds
        ),
        clock=settings.clock,
    )


#: Mapping-wide keys of the SQL and HTTP kinds: the zone of wall-clock values, patron matching.
_SQL_KEYS = frozenset({"time_zone", "patron_match"})

#: The store kinds, by the name a mapping's ``kind`` gives. One line per kind.
KINDS: Mapping[str, StoreKind] = {
    kind.name: kind
    for kind in (
        StoreKind("sql", SqlCategory, _is_database, _build_sql, _SQL_KEYS),
        StoreKind("http", HttpCategory, is_http_store, _build_http, _SQL_KEYS | {"health_path"}),
        StoreKind("folio", FolioCategory, is_http_store, build_folio_store),
    )
}


def load_configured_mapping(settings: Settings) -> RecordsMapping:
    """The mapping file named by ``BULWARK_RECORDS_MAPPING``, validated."""
    return load_mapping(settings.records_mapping)


def build_store(
    settings: Settings, mapping: RecordsMapping, http_client: httpx.AsyncClient
) -> ConfiguredStore:
    """The records store of the mapping's kind, reading ``settings.store_url``."""
    kind = KINDS[mapping.kind]
    url = settings.store_url
    if not kind.accepts_url(url):
        named = "HTTP" if is_http_store(url) else "SQL"
        raise MappingError(
            f"{settings.records_mapping}: describes a {kind.name.upper()} store, but "
            f"BULWARK_RECORDS_URL names a {named} one"
        )
    return kind.build(settings, mapping, http_client)
