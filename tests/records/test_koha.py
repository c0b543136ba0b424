"""examples/koha on a real MariaDB: Koha's tables, the example's views and mapping."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.database import create_engine
from app.orders.models import Category
from app.policy.decision import Obligations
from app.records.mapping import load_mapping
from tests.databases import mariadb_database
from tests.records.conftest import StoreFactory
from tests.records.fixtures import PERIOD

pytestmark = pytest.mark.mariadb

C = Category
HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "koha"
CARD = "C0001"
OTHER_CARD = "C0002"
NEVER = ("$2a$08$hash", "TOTP-SECRET", "staff-only note", "private hold note", "sess-0001")

ROWS = """
INSERT INTO borrowers (borrowernumber, cardnumber, surname, firstname, address, city, zipcode,
  email, phone, dateofbirth, branchcode, categorycode, dateenrolled, dateexpiry, borrowernotes,
  password, secret, userid) VALUES
 (1, 'C0001', 'Velquidor', 'Kalo', '12 Tash Lane (fictional)', 'Quillmarsh', '00001',
  'kalo@example.invalid', '+1-555-0101', '1990-04-01', 'CPL', 'PT', '2026-02-01', '2029-02-01',
  'staff-only note', '$2a$08$hash', 'TOTP-SECRET', 'kalo'),
 (2, 'C0002', 'Fensul', 'Mira', '3 Dor Road (fictional)', 'Vennatoll', '00002',
  'mira@example.invalid', '+1-555-0102', '1985-01-01', 'CPL', 'PT', '2026-02-02', '2029-02-02',
  NULL, '$2a$08$other', NULL, 'mira');
INSERT INTO biblio (biblionumber, author, title, datecreated) VALUES
 (1, 'Vel Tash', 'The Quiet Lantern (fictional)', '2024-01-01'),
 (2, 'Ren Dor', 'Paper Atlas (fictional)', '2024-01-01');
INSERT INTO items (itemnumber, biblionumber, biblioitemnumber, barcode, itemnotes_nonpublic) VALUES
 (10, 1, 1, 'B10', 'staff-only note'), (11, 2, 2, 'B11', NULL), (12, 1, 1, 'B12', NULL);
INSERT INTO issues (issue_id, borrowernumber, itemnumber, date_due, branchcode, issuedate, note)
VALUES
 (100, 1, 10, '2026-03-03 23:59:00', 'CPL', '2026-02-10 09:00:00', 'staff-only note'),
 (101, 2, 12, '2026-03-04 23:59:00', 'CPL', '2026-02-11 09:00:00', NULL);
INSERT INTO old_issues (issue_id, borrowernumber, itemnumber, date_due, branchcode, returndate,
  issuedate) VALUES
 (90, 1, 11, '2026-01-22 23:59:00', 'CPL', '2026-01-20 12:00:00', '2026-01-01 00:00:00'),
 (91, 1, 11, '2026-01-21 23:59:00', 'CPL', '2026-01-02 12:00:00', '2025-12-31 23:59:59'),
 (92, NULL, 10, '2026-03-22 23:59:00', 'CPL', '2026-03-10 12:00:00', '2026-03-01 10:00:00'),
 (93, 1, NULL, '2026-07-21 23:59:00', 'CPL', '2026-07-02 12:00:00', '2026-06-30 23:59:59');
INSERT INTO reserves (reserve_id, borrowernumber, reservedate, biblionumber, branchcode,
  reservenotes, found, expirationdate) VALUES
 (200, 1, '2026-04-01', 2, 'CPL', 'private hold note', 'W', '2026-04-15'),
 (201, 2, '2026-04-02', 1, 'CPL', NULL, NULL, NULL);
INSERT INTO old_reserves (reserve_id, borrowernumber, reservedate, biblionumber, branchcode,
  cancellationdate, found) VALUES
 (190, 1, '2026-01-15', 1, 'CPL', '2026-01-20', NULL),
 (191, 1, '2026-07-01', 1, 'CPL', NULL, 'F');
INSERT INTO illrequests (illrequest_id, borrowernumber, biblio_id, branchcode, status, placed,
  medium, notesopac, notesstaff, backend) VALUES
 (300, 1, NULL, 'CPL', 'REQ', '2026-05-05', 'Book', 'for a thesis', 'staff-only note', 'Standard'),
 (301, 1, 1, 'CPL', 'COMP', '2026-05-06', 'Book', NULL, NULL, 'Standard'),
 (302, 2, NULL, 'CPL', 'REQ', '2026-05-07', 'Article', NULL, NULL, 'Standard');
INSERT INTO illrequestattributes (illrequest_id, type, value) VALUES
 (300, 'title', 'Salt Almanac (fictional)'), (300, 'author', 'Ota Pel'),
 (302, 'title', 'Someone else''s article');
INSERT INTO search_history (id, userid, sessionid, query_desc, query_cgi, type, total, time)
VALUES
 (400, 1, 'sess-0001', 'kw,wrdl: lanterns', 'q=lanterns&sess-0001', 'biblio', 3,
  '2026-03-03 10:00:00'),
 (401, 2, 'sess-0002', 'kw,wrdl: atlases', 'q=atlases', 'biblio', 1, '2026-03-04 10:00:00');
"""


def _statements(sql: str) -> list[str]:
    """Split a script on the semicolons that end its lines (none occur inside a statement)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", body + "\n") if part.strip()]


async def _build(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for script in (
                (HERE / "koha_schema.sql").read_text(),
                (EXAMPLE / "views.sql").read_text(),
                ROWS,
            ):
                for statement in _statements(script):
                    await conn.exec_driver_sql(statement.replace("%", "%%"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def koha_url() -> Iterator[str]:
    with mariadb_database() as url:
        asyncio.run(_build(url))
        yield url


def _obligations(card: str = CARD) -> Obligations:
    mapping = load_mapping(EXAMPLE / "mapping.toml")
    return Obligations(card, tuple(mapping.categories), PERIOD, mapping.fields())


async def _fetch_all(store: Any, card: str = CARD) -> dict[Category, list[dict[str, Any]]]:
    ob = _obligations(card)
    return {c: (await store.fetch(ob, c, limit=100)).records for c in ob.categories}


async def test_example_mapping_matches_koha(koha_url: str, open_store: StoreFactory) -> None:
    store = open_store(koha_url, load_mapping(EXAMPLE / "mapping.toml"))
    await store.validate()


async def test_records_are_narrowed(koha_url: str, open_store: StoreFactory) -> None:
    store = open_store(koha_url, load_mapping(EXAMPLE / "mapping.toml"))
    await store.validate()
    records = await _fetch_all(store)

    [patron] = records[C.REGISTRATION]
    assert patron["card_number"] == CARD
    assert patron["enrolled_on"] == "2026-02-01"

    loans = records[C.CIRCULATION]
    assert [(r["title"], r["checkout_date"]) for r in loans] == [
        ("Paper Atlas (fictional)", "2026-01-01T00:00:00"),  # old_issues, first instant
        ("The Quiet Lantern (fictional)", "2026-02-10T09:00:00"),  # issues, still out
        (None, "2026-06-30T23:59:59"),  # returned; its item since deleted
    ]
    assert loans[1]["return_date"] is None

    assert [(r["title"], r["status"]) for r in records[C.HOLDS]] == [
        ("The Quiet Lantern (fictional)", "cancelled"),
        ("Paper Atlas (fictional)", "waiting"),
    ]
    assert [(r["title"], r["author"]) for r in records[C.INTERLIBRARY_LOAN]] == [
        ("Salt Almanac (fictional)", "Ota Pel"),  # from illrequestattributes
        ("The Quiet Lantern (fictional)", "Vel Tash"),  # from biblio
    ]
    assert records[C.SEARCH_HISTORY] == [
        {
            "searched_at": "2026-03-03T10:00:00",
            "query_text": "kw,wrdl: lanterns",
            "search_type": "biblio",
            "results": 3,
        }
    ]
    text = json.dumps(records)
    for secret in NEVER:
        assert secret not in text
    assert OTHER_CARD not in text
    assert "Someone else" not in text


async def test_other_patron_sees_only_their_own(koha_url: str, open_store: StoreFactory) -> None:
    store = open_store(koha_url, load_mapping(EXAMPLE / "mapping.toml"))
    records = await _fetch_all(store, OTHER_CARD)
    assert [r["barcode"] for r in records[C.CIRCULATION]] == ["B12"]
    assert [r["title"] for r in records[C.INTERLIBRARY_LOAN]] == ["Someone else's article"]
    assert CARD not in json.dumps(records)


async def test_views_let_mariadb_use_the_patron_indexes(koha_url: str) -> None:
    engine = create_engine(koha_url)
    try:
        async with engine.connect() as conn:
            plan = await conn.exec_driver_sql(
                "EXPLAIN SELECT issue_id FROM bulwark_circulation "
                "WHERE cardnumber = 'C0001' AND issuedate >= '2026-01-01' "
                "AND issuedate < '2026-07-01'"
            )
            rows = [dict(r._mapping) for r in plan]
    finally:
        await engine.dispose()
    # The patron's condition reaches the tables inside the UNION: borrowers by its unique
    # card number, then issues and old_issues by borrower (no full scans of the loans).
    full_scans = [r["table"] for r in rows if r["type"] == "ALL"]
    assert not {"i", "oi"} & set(full_scans), rows
