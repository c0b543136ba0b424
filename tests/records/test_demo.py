"""The bundled demo store: its size and speed, its patrons, and what never leaves it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.records.categories import Category
from app.records.demo import (
    DEMO_BUSY_PATRON,
    DEMO_FROM,
    DEMO_MAPPING,
    DEMO_PATRON,
    DEMO_TO,
    OTHER_PATRON,
    DemoStoreExists,
    create_demo_store,
)
from app.records.mapping import load_mapping
from app.records.obligations import Obligations, Period
from app.records.sql_store import SqlRecordsStore
from tests.databases import mariadb_database, postgres_database
from tests.records.conftest import StoreFactory

DEMO = Period(DEMO_FROM, DEMO_TO)
#: Values of the unmapped demo columns (or fragments of them).
UNMAPPED = ("Staff only", "Internal:", "198.51.100.", "demo-pin")


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    path = tmp_path_factory.mktemp("demo") / "demo-records.db"
    started = time.perf_counter()
    summary = create_demo_store(path)
    return f"sqlite:///{path}", (summary, time.perf_counter() - started)


def _obligations(patron: str) -> Obligations:
    mapping = load_mapping(DEMO_MAPPING)
    return Obligations(patron, tuple(Category), DEMO, mapping.fields())


async def _records(store: SqlRecordsStore, patron: str) -> dict[Category, list[dict[str, Any]]]:
    ob = _obligations(patron)
    return {c: (await store.fetch(ob, c, limit=1000)).records for c in Category}


def test_default_size_is_large_and_quick(default_demo: tuple[str, Any]) -> None:
    _, (summary, seconds) = default_demo
    assert summary.rows["patrons"] >= 2000
    assert summary.total - summary.rows["patrons"] == 100_000
    assert all(count > 0 for count in summary.rows.values())
    assert seconds < 10  # about one second on a developer's machine


def test_indexes_serve_the_disclosure_query(default_demo: tuple[str, Any]) -> None:
    url, _ = default_demo
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT title FROM loans WHERE patron_id = ? "
            "AND checked_out_at >= ? AND checked_out_at < ? ORDER BY checked_out_at, loan_id",
            (DEMO_PATRON, "2026-01-01", "2026-07-01"),
        ).fetchall()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "ix_loans_patron_date" in detail
    assert "TEMP B-TREE" not in detail  # no sort: the index already has the order


async def test_demo_patrons_have_records_in_every_category(
    default_demo: tuple[str, Any], open_store: StoreFactory
) -> None:
    url, _ = default_demo
    store = open_store(url, load_mapping(DEMO_MAPPING))
    await store.validate()
    for patron in (DEMO_PATRON, OTHER_PATRON):
        records = await _records(store, patron)
        assert all(records[c] for c in Category), patron
        text = json.dumps(records)
        for secret in UNMAPPED:
            assert secret not in text


async def test_busy_patron_needs_more_than_one_page(
    default_demo: tuple[str, Any], open_store: StoreFactory
) -> None:
    url, _ = default_demo
    store = open_store(url, load_mapping(DEMO_MAPPING))
    page = await store.fetch(_obligations(DEMO_BUSY_PATRON), Category.CIRCULATION, limit=1000)
    assert len(page.records) == 1000
    assert page.next_cursor is not None


async def test_period_narrows_the_demo_patron(
    default_demo: tuple[str, Any], open_store: StoreFactory
) -> None:
    url, _ = default_demo
    store = open_store(url, load_mapping(DEMO_MAPPING))
    records = await _records(store, DEMO_PATRON)
    facility = [dt.datetime.fromisoformat(r["started_at"]) for r in records[Category.FACILITY_USE]]
    assert all(DEMO_FROM <= moment.date() <= DEMO_TO for moment in facility)
    assert DEMO_TO in {moment.date() for moment in facility}  # the boundary day is in


def _dump(path: Path) -> list[Any]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in sorted(tables)]


def test_same_seed_same_store(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        create_demo_store(tmp_path / f"{name}.db", patrons=150, rows=3000, seed=seed)
    assert _dump(tmp_path / "a.db") == _dump(tmp_path / "b.db")
    assert _dump(tmp_path / "a.db") != _dump(tmp_path / "c.db")


def test_small_stores_still_hold_the_demo_patrons(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    summary = create_demo_store(path, patrons=60, rows=6000, seed=7)
    with sqlite3.connect(path) as conn:
        ids = {r[0] for r in conn.execute("SELECT patron_id FROM patrons")}
    assert {DEMO_PATRON, OTHER_PATRON, DEMO_BUSY_PATRON} <= ids
    assert summary.rows["patrons"] == len(ids) == 62


def test_existing_store_is_refused_unless_replaced(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    create_demo_store(path, patrons=130, rows=2000)
    with pytest.raises(DemoStoreExists):
        create_demo_store(path, patrons=130, rows=2000)
    assert create_demo_store(path, patrons=130, rows=3000, replace=True).total == 3130


@pytest.mark.parametrize("rows", [10, -1])
def test_too_few_rows_is_refused(tmp_path: Path, rows: int) -> None:
    with pytest.raises(ValueError, match="rows must be at least"):
        create_demo_store(tmp_path / "demo.db", rows=rows)


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    database = postgres_database if request.param == "postgres" else mariadb_database
    with database() as url:
        yield url


async def test_server_databases_get_the_same_records(
    server_url: str, tmp_path: Path, open_store: StoreFactory
) -> None:
    await asyncio.to_thread(create_demo_store, server_url, patrons=130, rows=4000, seed=11)
    await asyncio.to_thread(create_demo_store, tmp_path / "d.db", patrons=130, rows=4000, seed=11)
    mapping = load_mapping(DEMO_MAPPING)
    server = open_store(server_url, mapping)
    await server.validate()
    local = open_store(f"sqlite:///{tmp_path / 'd.db'}", mapping)
    for patron in (DEMO_PATRON, OTHER_PATRON):
        assert await _records(server, patron) == await _records(local, patron)
