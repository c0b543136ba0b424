"""Choosing and building the configured records store.

``settings.store_url`` decides: an ``http://`` or ``https://`` URL is an upstream records API,
anything else a SQLAlchemy URL (the bundled demo SQLite file when ``BULWARK_RECORDS_URL`` is
empty). The mapping must describe the same kind of store. Start-up is then::

    mapping = load_configured_mapping(settings)
    validate_against_policy(mapping, policy.forbidden_fields)
    store = build_store(settings, mapping, http_client)
    await store.validate()
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

import httpx

from app.core.config import Settings
from app.records.base import RecordsStore
from app.records.http_store import HttpRecordsStore
from app.records.mapping import MappingError, RecordsMapping, load_mapping
from app.records.sql_store import SqlRecordsStore

__all__ = ["ConfiguredStore", "build_store", "is_http_store", "load_configured_mapping"]


class ConfiguredStore(RecordsStore, Protocol):
    """A records store that can also check itself against its mapping at start."""

    async def validate(self) -> None:
        """Raise MappingError when the store does not match the mapping."""
        ...


def is_http_store(url: str) -> bool:
    """Whether ``url`` names an upstream records API rather than a database."""
    return urlsplit(url).scheme.lower() in ("http", "https")


def load_configured_mapping(settings: Settings) -> RecordsMapping:
    """The mapping file named by ``BULWARK_RECORDS_MAPPING``, validated."""
    return load_mapping(settings.records_mapping)


def build_store(
    settings: Settings, mapping: RecordsMapping, http_client: httpx.AsyncClient
) -> ConfiguredStore:
    """The records store for ``settings.store_url``, narrowed by ``mapping``."""
    url = settings.store_url
    wanted = "http" if is_http_store(url) else "sql"
    if mapping.kind != wanted:
        raise MappingError(
            f"{settings.records_mapping}: describes a {mapping.kind.upper()} store, but "
            f"BULWARK_RECORDS_URL names a {wanted.upper()} one"
        )
    if wanted == "sql":
        return SqlRecordsStore(
            url, mapping, timeout=settings.records_timeout_seconds, clock=settings.clock
        )
    token = settings.records_api_token
    return HttpRecordsStore(
        url,
        mapping,
        http_client,
        token=token.get_secret_value() if token else None,
        max_response_bytes=settings.records_max_response_bytes,
        timeout=httpx.Timeout(
            settings.records_timeout_seconds, connect=settings.records_connect_timeout_seconds
        ),
        clock=settings.clock,
    )
