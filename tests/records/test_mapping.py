"""Mapping files: what loads, and every way one is refused (each naming category and key)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.records.categories import Category
from app.records.demo import DEMO_MAPPING
from app.records.mapping import (
    HttpCategory,
    MappingError,
    SqlCategory,
    load_mapping,
    parse_mapping,
    validate_against_policy,
)
from tests.records import fixtures

KOHA_MAPPING = Path(__file__).resolve().parents[2] / "examples" / "koha" / "mapping.toml"


def _with(change: dict[str, Any], category: str = "holds") -> dict[str, Any]:
    document = copy.deepcopy(fixtures.MAPPING)
    document["categories"][category].update(change)
    return document


def _refused(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(document)
    assert expected in str(caught.value)


def test_demo_mapping_loads_all_seven_categories() -> None:
    mapping = load_mapping(DEMO_MAPPING)
    assert mapping.kind == "sql"
    assert list(mapping.categories) == list(Category)
    assert mapping.fields()[Category.CIRCULATION] == (
        "title",
        "checkout_date",
        "due_date",
        "return_date",
        "branch",
    )
    columns = {c for m in mapping.categories.values() for c in m.fields.values()}
    for hidden in ("pin_hash", "staff_notes", "staff_note", "ip_address", "mac_address"):
        assert hidden not in columns


def test_koha_mapping_loads() -> None:
    mapping = load_mapping(KOHA_MAPPING)
    assert set(mapping.categories) == {
        Category.REGISTRATION,
        Category.CIRCULATION,
        Category.HOLDS,
        Category.INTERLIBRARY_LOAN,
        Category.SEARCH_HISTORY,
    }


def test_fields_keep_file_order() -> None:
    document = _with({"fields": {"zeta": "title", "alpha": "placed_on", "mid": "title"}})
    assert parse_mapping(document).fields()[Category.HOLDS] == ("zeta", "alpha", "mid")


def test_date_column_need_not_be_a_field() -> None:
    mapping = parse_mapping(_with({"fields": {"title": "title"}}))
    assert mapping.sql(Category.HOLDS).date_column == "placed_on"


def test_http_mapping_loads() -> None:
    mapping = parse_mapping(
        {
            "health_path": "/status",
            "categories": {
                "circulation": {
                    "path": "/patrons/{patron}/loans",
                    "date_field": "checked-out",
                    "fields": {"title": "title"},
                    "items": "loans",
                }
            },
        }
    )
    assert mapping.kind == "http"
    assert isinstance(mapping.categories[Category.CIRCULATION], HttpCategory)
    assert mapping.health_path == "/status"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping"):
        load_mapping(tmp_path / "missing.toml")


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text("[categories.holds\ntable = 'x'\n")
    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping(path)


def test_unknown_category() -> None:
    document = copy.deepcopy(fixtures.MAPPING)
    document["categories"]["national_security"] = document["categories"].pop("holds")
    _refused(document, "categories.national_security: not a contract category")


def test_unknown_key_in_category() -> None:
    _refused(_with({"where": "1=1"}), "categories.holds.where: unknown key")


def test_unknown_top_level_key() -> None:
    _refused({**fixtures.MAPPING, "store": "sql"}, "unknown key 'store'")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"table": "holds; DROP TABLE loans"}, "table"),
        ({"table": "public.holds"}, "table"),
        ({"patron_column": "patron_id --"}, "patron_column"),
        ({"date_column": "1placed"}, "date_column"),
        ({"id_column": "hold id"}, "id_column"),
        ({"table": "x" * 65}, "table"),
        ({"fields": {"title": "title) UNION SELECT"}}, "fields.title"),
        ({"fields": {"bad name": "title"}}, "fields.bad name"),
        ({"table": 'holds"'}, "table"),
    ],
)
def test_identifiers_must_be_plain(change: dict[str, Any], key: str) -> None:
    _refused(_with(change), f"categories.holds.{key}")
    _refused(_with(change), "not a plain identifier")


@pytest.mark.parametrize("key", ["table", "patron_column", "date_column", "fields"])
def test_required_keys(key: str) -> None:
    document = copy.deepcopy(fixtures.MAPPING)
    del document["categories"]["holds"][key]
    _refused(document, f"categories.holds.{key}: required")


def test_fields_must_not_be_empty() -> None:
    _refused(_with({"fields": {}}), "categories.holds.fields")


def test_no_categories() -> None:
    _refused({"categories": {}}, "must map at least one category")


def test_sql_and_http_do_not_mix() -> None:
    document = copy.deepcopy(fixtures.MAPPING)
    document["categories"]["holds"] = {
        "path": "/p/{patron}",
        "date_field": "d",
        "fields": {"title": "title"},
    }
    _refused(document, "mix SQL tables and HTTP paths")


def test_health_path_is_for_http_only() -> None:
    _refused({**fixtures.MAPPING, "health_path": "/healthz"}, "health_path applies only")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("patrons/{patron}", "must start with '/'"),
        ("/patrons/loans", "{patron} exactly once"),
        ("/p/{patron}/{patron}", "{patron} exactly once"),
        ("/p/{patron}?all=1", "plain path characters"),
        ("/p/{patron}/{other}", "plain path characters"),
        ("/p/../{patron}", "'.' or '..'"),
    ],
)
def test_http_path_template(path: str, message: str) -> None:
    category = {"path": path, "date_field": "d", "fields": {"title": "title"}}
    _refused({"categories": {"circulation": category}}, "categories.circulation.path")
    _refused({"categories": {"circulation": category}}, message)


def test_policy_forbidden_field_is_refused() -> None:
    mapping = parse_mapping(fixtures.MAPPING)
    forbidden = {Category.SEARCH_HISTORY: frozenset({"query_text"})}
    with pytest.raises(MappingError) as caught:
        validate_against_policy(mapping, forbidden)
    assert str(caught.value).startswith("categories.search_history.fields.query_text:")


def test_policy_forbidding_unmapped_fields_is_fine() -> None:
    mapping = parse_mapping(fixtures.MAPPING)
    validate_against_policy(
        mapping, {Category.SEARCH_HISTORY: {"ip_address"}, Category.REFERENCE: {"x"}}
    )


def test_models_are_the_sql_kind() -> None:
    mapping = parse_mapping(fixtures.MAPPING)
    assert all(isinstance(m, SqlCategory) for m in mapping.categories.values())
    assert mapping.sql(Category.HOLDS).columns() == ("patron_id", "placed_on", "title", "hold_id")
