"""build_store picks the store from the URL and refuses a mapping of the other kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.records.categories import Category
from app.records.demo import DEMO_MAPPING
from app.records.factory import (
    KINDS,
    StoreKind,
    build_store,
    is_http_store,
    load_configured_mapping,
)
from app.records.http_store import HttpRecordsStore
from app.records.mapping import MappedCategory, MappingError, RecordsMapping, parse_mapping
from app.records.sql_store import SqlRecordsStore

HTTP_MAPPING = {
    "categories": {
        "circulation": {
            "path": "/patrons/{patron}/loans",
            "date_field": "checked_out",
            "fields": {"title": "title"},
        }
    }
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, environment="test", **values)  # type: ignore[arg-type]


async def test_default_is_the_demo_sqlite_store(tmp_path: Path, client: httpx.AsyncClient) -> None:
    settings = _settings(tmp_path)
    mapping = load_configured_mapping(settings)
    assert settings.records_mapping == DEMO_MAPPING
    store = build_store(settings, mapping, client)
    try:
        assert isinstance(store, SqlRecordsStore)
        assert str(store.engine.url).endswith("demo-records.db")
    finally:
        await store.close()


async def test_http_url_builds_the_http_store(tmp_path: Path, client: httpx.AsyncClient) -> None:
    settings = _settings(
        tmp_path, records_url="https://ils.example/api", records_api_token="s3cret-token-value"
    )
    store = build_store(settings, parse_mapping(HTTP_MAPPING), client)
    assert isinstance(store, HttpRecordsStore)


async def test_mapping_kind_must_match_the_url(tmp_path: Path, client: httpx.AsyncClient) -> None:
    http_settings = _settings(tmp_path, records_url="https://ils.example/api")
    with pytest.raises(MappingError, match="describes a SQL store"):
        build_store(http_settings, load_configured_mapping(http_settings), client)
    with pytest.raises(MappingError, match="describes a HTTP store"):
        build_store(_settings(tmp_path), parse_mapping(HTTP_MAPPING), client)


@pytest.mark.parametrize(
    ("url", "http"),
    [
        ("https://ils.example/api", True),
        ("HTTP://127.0.0.1:8000", True),
        ("sqlite:///data/records.db", False),
        ("postgresql://reader@db/records", False),
        ("mysql://reader@db/koha", False),
    ],
)
def test_scheme_decides(url: str, http: bool) -> None:
    assert is_http_store(url) is http


# ---------------------------------------------------------------- the registry of store kinds


def test_kinds_are_registered() -> None:
    assert set(KINDS) >= {"sql", "http", "folio"}


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (HTTP_MAPPING, "http"),  # no `kind`: a path means HTTP, as before kinds existed
        ({**HTTP_MAPPING, "kind": "http"}, "http"),
    ],
)
def test_kind_named_or_inferred(document: dict[str, object], kind: str) -> None:
    assert parse_mapping(document).kind == kind


def test_a_section_of_another_kind_is_refused() -> None:
    with pytest.raises(MappingError, match=r"categories\.circulation\.table: required"):
        parse_mapping({**HTTP_MAPPING, "kind": "sql"})
    with pytest.raises(MappingError, match="not a store kind"):
        parse_mapping({**HTTP_MAPPING, "kind": "HTTP"})


class ToyCategory(MappedCategory):
    """A kind invented for this test: one category model, one builder, one registry line."""

    shelf: str


class ToyStore:
    def __init__(self, mapping: RecordsMapping) -> None:
        self.mapping = mapping


async def test_a_new_kind_is_one_module_and_one_registry_line(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build(settings: Settings, mapping: RecordsMapping, _: httpx.AsyncClient) -> ToyStore:
        return ToyStore(mapping)

    toy = StoreKind("toy", ToyCategory, is_http_store, build, frozenset({"shelf_list"}))  # type: ignore[arg-type]
    monkeypatch.setitem(KINDS, "toy", toy)  # type: ignore[arg-type]
    document = {
        "kind": "toy",
        "shelf_list": "/x",
        "categories": {"holds": {"shelf": "A", "fields": {"title": "t"}}},
    }
    mapping = parse_mapping(document)
    assert isinstance(mapping.categories[Category.HOLDS], ToyCategory)
    with pytest.raises(MappingError, match=r"categories\.holds\.shelf: required"):
        parse_mapping({**document, "categories": {"holds": {"fields": {"title": "t"}}}})
    settings = _settings(tmp_path, records_url="https://toy.example")
    assert isinstance(build_store(settings, mapping, client), ToyStore)
    with pytest.raises(MappingError, match="describes a TOY store"):
        build_store(_settings(tmp_path), mapping, client)


async def test_every_kind_gets_the_librarys_clock(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    chicago = {"timezone": "America/Chicago"}
    sql = build_store(
        _settings(tmp_path, **chicago), load_configured_mapping(_settings(tmp_path)), client
    )
    try:
        assert isinstance(sql, SqlRecordsStore)
        assert {f.clock.name for f in sql._frames.values()} == {"America/Chicago"}
    finally:
        await sql.close()
    settings = _settings(tmp_path, records_url="https://ils.example/api", **chicago)
    http = build_store(settings, parse_mapping(HTTP_MAPPING), client)
    assert isinstance(http, HttpRecordsStore)
    assert {f.clock.name for f in http._frames.values()} == {"America/Chicago"}
