"""examples/evergreen on a real PostgreSQL: Evergreen's tables (our DDL), the example's views,
its least-privilege role and its mapping, read by Bulwark's SQL store as that role.

The library is in America/Chicago (west of UTC; clocks change on 2026-03-08); the period is
2026-01-01 … 2026-03-31. Expected records come from SQL over Evergreen's raw tables (the
oracle below), not from the views.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.admin.clients import add_client
from app.callers.models import Role
from app.core.calendar import LibraryClock
from app.core.config import Settings
from app.policy.models import parse_policy
from app.records.categories import Category
from app.records.mapping import MappingError, load_mapping, parse_mapping, validate_against_policy
from app.records.obligations import Obligations, Period
from app.records.sql_store import SqlRecordsStore
from app.runtime import build_runtime
from tests.conftest import auth, migrate
from tests.databases import PG_HOST, PG_PORT, PG_USER, postgres_database
from tests.disclosures.test_disclosures import _client

pytestmark = pytest.mark.postgres

C = Category
HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "evergreen"
ZONE = "America/Chicago"
PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 3, 31))
CARD = "EG-0002"  # the patron's current card
OLD_CARD = "OLD-0001"  # the card it replaced (inactive)
OTHER_CARD = "EG-0003"
NEVER = (
    "md5-password-hash",
    "DL-555-SECRET",
    "PASSPORT-77",
    "staff alert: watch",
    "staff-only note",
    "copy alert: damaged",
    "STAFF01",
)

ROWS = """
INSERT INTO actor.org_unit (id, ou_type, shortname, name) VALUES
 (1, 1, 'CONS', 'Example Consortium'), (2, 3, 'BR1', 'Example Branch 1');
INSERT INTO actor.usr (id, card, profile, usrname, email, passwd, ident_type, ident_value,
  ident_type2, ident_value2, first_given_name, second_given_name, family_name, day_phone,
  home_ou, dob, alert_message, create_date, expire_date, mailing_address) VALUES
 (1, 1, 10, 'admin', NULL, 'md5-password-hash', 1, 'staff-id', NULL, NULL, 'Ada', NULL,
  'Admin', NULL, 1, NULL, NULL, '2020-01-01 09:00-06', '2030-01-01 09:00-06', NULL),
 (2, 11, 2, 'kvelquidor', 'kalo@example.invalid', 'md5-password-hash', 1, 'DL-555-SECRET',
  2, 'PASSPORT-77', 'Kalo', 'Tash', 'Velquidor', '+1-555-0101', 2, '1990-04-01 00:00-06',
  'staff alert: watch', '2025-06-01 10:00-05', '2028-06-01 10:00-05', NULL),
 (3, 12, 2, 'mfensul', 'mira@example.invalid', 'md5-password-hash', 1, 'DL-555-OTHER', NULL,
  NULL, 'Mira', NULL, 'Fensul', '+1-555-0102', 2, NULL, NULL, '2024-01-01 10:00-06',
  '2025-12-31 10:00-06', NULL);
INSERT INTO actor.card (id, usr, barcode, active) VALUES
 (1, 1, 'STAFF01', TRUE), (10, 2, 'OLD-0001', FALSE), (11, 2, 'EG-0002', TRUE),
 (12, 3, 'EG-0003', TRUE);
INSERT INTO actor.usr_address (id, usr, street1, city, state, country, post_code) VALUES
 (1, 2, '12 Tash Lane (fictional)', 'Quillmarsh', 'IL', 'US', '60000');
UPDATE actor.usr SET mailing_address = 1 WHERE id = 2;
INSERT INTO actor.usr_note (usr, creator, title, value) VALUES (2, 1, 'note', 'staff-only note');
INSERT INTO reporter.materialized_simple_record (id, title, author) VALUES
 (100, 'The Quiet Lantern (fictional)', 'Vel Tash'),
 (101, 'Paper Atlas (fictional)', 'Ren Dor');
INSERT INTO asset.call_number (id, creator, editor, record, owning_lib, label) VALUES
 (-1, 1, 1, -1, 1, '##URI##'), (200, 1, 1, 100, 2, 'FIC TAS'), (201, 1, 1, 101, 2, '912 DOR');
INSERT INTO asset.copy (id, circ_lib, creator, call_number, editor, loan_duration, fine_level,
  barcode, dummy_title, dummy_author, alert_message) VALUES
 (300, 2, 1, 200, 1, 2, 2, 'I300', NULL, NULL, 'copy alert: damaged'),
 (301, 2, 1, 201, 1, 2, 2, 'I301', NULL, NULL, NULL),
 (302, 2, 1, -1, 1, 2, 2, 'I302', 'Precat Zine (fictional)', 'Anon', NULL);
INSERT INTO action.circulation (id, usr, xact_start, target_copy, circ_lib, circ_staff,
  renewal_remaining, grace_period, due_date, checkin_time, duration_rule, recurring_fine_rule,
  max_fine_rule, parent_circ) VALUES
 (1, 2, '2026-01-01 00:00:00-06', 300, 2, 1, 2, '1 day', '2026-01-22 23:59:59-06', NULL,
  'default', 'default', 'default', NULL),
 (2, 2, '2025-12-31 23:59:59-06', 301, 2, 1, 2, '1 day', '2026-01-21 23:59:59-06',
  '2026-01-05 10:00-06', 'default', 'default', 'default', NULL),
 (3, 2, '2026-03-31 23:59:59-05', 301, 2, 1, 2, '1 day', '2026-04-21 23:59:59-05', NULL,
  'default', 'default', 'default', NULL),
 (4, 2, '2026-04-01 00:00:00-05', 300, 2, 1, 2, '1 day', '2026-04-22 23:59:59-05', NULL,
  'default', 'default', 'default', NULL),
 (5, 2, '2026-03-08 01:30:00-06', 300, 2, 1, 2, '1 day', '2026-03-29 23:59:59-05',
  '2026-03-20 12:00-05', 'default', 'default', 'default', NULL),
 (6, 2, '2026-03-08 03:30:00-05', 301, 2, 1, 2, '1 day', '2026-03-29 23:59:59-05',
  '2026-03-25 12:00-05', 'default', 'default', 'default', NULL),
 (7, 2, '2026-03-20 12:00:00-05', 300, 2, 1, 1, '1 day', '2026-04-10 23:59:59-05', NULL,
  'default', 'default', 'default', 5),
 (8, 3, '2026-02-02 12:00:00-06', 301, 2, 1, 2, '1 day', '2026-02-23 23:59:59-06', NULL,
  'default', 'default', 'default', NULL),
 (9, 2, '2026-02-10 10:00:00-06', 302, 2, 1, 2, '1 day', '2026-03-03 23:59:59-06', NULL,
  'default', 'default', 'default', NULL);
INSERT INTO action.aged_circulation (id, usr_post_code, usr_home_ou, usr_profile,
  usr_birth_year, copy_call_number, copy_owning_lib, copy_circ_lib, copy_bib_record,
  xact_start, target_copy, circ_lib, circ_staff, renewal_remaining, grace_period,
  duration_rule, recurring_fine_rule, max_fine_rule, create_time, fine_interval,
  phone_renewal, desk_renewal, opac_renewal, copy_location, auto_renewal) VALUES
 (50, '60000', 2, 2, 1990, 200, 2, 2, 100, '2026-01-20 10:00-06', 300, 2, 1, 2, '1 day',
  'default', 'default', 'default', '2026-01-20 10:00-06', '1 day', FALSE, FALSE, FALSE, 1,
  FALSE);
INSERT INTO action.usr_circ_history (id, usr, xact_start, target_copy, due_date, checkin_time,
  source_circ) VALUES
 (1, 2, '2026-01-15 10:00:00-06', 301, '2026-02-05 23:59:59-06', '2026-01-30 10:00-06', NULL),
 (2, 2, '2026-01-01 00:00:00-06', 300, '2026-01-22 23:59:59-06', NULL, 1);
INSERT INTO config.non_cataloged_type (id, owning_lib, name) VALUES
 (1, 1, 'Paperback (fictional)');
INSERT INTO action.non_cataloged_circulation (id, patron, staff, circ_lib, item_type,
  circ_time) VALUES (1, 2, 1, 2, 1, '2026-02-14 14:00:00-06');
INSERT INTO action.in_house_use (item, staff, org_unit, use_time) VALUES
 (300, 1, 2, '2026-02-15 11:00:00-06');
INSERT INTO action.hold_request (id, request_time, usr, requestor, request_lib, selection_ou,
  pickup_lib, hold_type, target, cancel_time, cancel_cause, cancel_note, expire_time) VALUES
 (1, '2026-01-01 00:00:00-06', 2, 2, 2, 2, 2, 'T', 100, NULL, NULL, NULL,
  '2026-07-01 00:00-05'),
 (2, '2026-03-31 23:30:00-05', 2, 1, 2, 2, 2, 'C', 301, '2026-04-30 00:00-05', 2,
  'staff-only note', NULL),
 (3, '2025-12-31 23:30:00-06', 2, 2, 2, 2, 2, 'T', 101, NULL, NULL, NULL, NULL),
 (4, '2026-02-01 12:00:00-06', 3, 3, 2, 2, 2, 'T', 101, NULL, NULL, NULL, NULL);
INSERT INTO action.aged_hold_request (id, usr_home_ou, usr_profile, staff_placed,
  request_time, target, request_lib, selection_ou, selection_depth, pickup_lib, hold_type,
  phone_notify, email_notify, sms_notify, frozen, mint_condition, behind_desk) VALUES
 (90, 2, 2, FALSE, '2026-02-20 10:00-06', 100, 2, 2, 0, 2, 'T', FALSE, FALSE, FALSE, FALSE,
  TRUE, FALSE);
"""

# SQL over Evergreen's raw tables: what a patron's card and the period select, by hand.
ORACLE_CIRCULATION = """
WITH p AS (SELECT usr FROM actor.card WHERE barcode = $1)
SELECT t, k FROM (
  SELECT xact_start AS t, id * 4 AS k FROM action.circulation WHERE usr = (SELECT usr FROM p)
  UNION ALL
  SELECT xact_start, id * 4 + 1 FROM action.usr_circ_history
   WHERE usr = (SELECT usr FROM p) AND source_circ IS NULL
  UNION ALL
  SELECT circ_time, id * 4 + 2 FROM action.non_cataloged_circulation
   WHERE patron = (SELECT usr FROM p)
) x
WHERE (t AT TIME ZONE 'America/Chicago')::date BETWEEN $2 AND $3
ORDER BY t, k
"""
ORACLE_HOLDS = """
SELECT id FROM action.hold_request
 WHERE usr = (SELECT usr FROM actor.card WHERE barcode = $1)
   AND (request_time AT TIME ZONE 'America/Chicago')::date BETWEEN $2 AND $3
 ORDER BY request_time, id
"""


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", body + "\n") if part.strip()]


def _pg_kwargs(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "database": parsed.database,
    }


async def _run(url: str, *scripts: str) -> None:
    conn = await asyncpg.connect(**_pg_kwargs(url))
    try:
        for script in scripts:
            for statement in _statements(script):
                await conn.execute(statement)
    finally:
        await conn.close()


def _role_sql(role: str) -> str:
    """role.sql exactly as the README applies it, with this test run's own role name."""
    return (EXAMPLE / "role.sql").read_text().replace("bulwark_reader", role)


@pytest.fixture(scope="module")
def evergreen() -> Iterator[tuple[str, str]]:
    """``(owner_url, reader_url)``: Evergreen's tables with rows, the views and the role."""
    role = f"bulwark_reader_{uuid.uuid4().hex[:10]}"
    try:
        with postgres_database() as url:
            asyncio.run(
                _run(
                    url,
                    (HERE / "evergreen_schema.sql").read_text(),
                    ROWS,
                    (EXAMPLE / "views.sql").read_text(),
                    _role_sql(role),
                )
            )
            reader = f"postgresql://{role}@{PG_HOST}:{PG_PORT}/{make_url(url).database}"
            yield url, reader
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres"
            )
            try:
                await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            finally:
                await conn.close()

        asyncio.run(drop())


@pytest.fixture
async def store(evergreen: tuple[str, str]) -> AsyncIterator[SqlRecordsStore]:
    """The example's mapping, read as the least-privilege role."""
    sql_store = SqlRecordsStore(
        evergreen[1], load_mapping(EXAMPLE / "mapping.toml"), clock=LibraryClock.named(ZONE)
    )
    await sql_store.validate()
    yield sql_store
    await sql_store.close()


def _obligations(card: str = CARD) -> Obligations:
    mapping = load_mapping(EXAMPLE / "mapping.toml")
    return Obligations(card, tuple(mapping.categories), PERIOD, mapping.fields())


async def _fetch_all(
    store: SqlRecordsStore, card: str, category: Category, limit: int = 100
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await store.fetch(_obligations(card), category, limit=limit, cursor=cursor)
        records.extend(page.records)
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


async def _oracle(url: str, sql: str, card: str) -> list[Any]:
    conn = await asyncpg.connect(**_pg_kwargs(url))
    try:
        return [tuple(r) for r in await conn.fetch(sql, card, PERIOD.start, PERIOD.end)]
    finally:
        await conn.close()


async def test_least_privilege_role_starts_bulwark(store: SqlRecordsStore) -> None:
    await store.check()  # validate() ran in the fixture, as the role


async def test_the_role_reads_nothing_but_the_views(evergreen: tuple[str, str]) -> None:
    conn = await asyncpg.connect(**_pg_kwargs(evergreen[1]))
    try:
        for table in ("actor.usr", "actor.card", "action.circulation", "action.aged_circulation"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT 1 FROM {table} LIMIT 1")
        assert await conn.fetchval("SELECT count(*) FROM registration") == 4
    finally:
        await conn.close()


@pytest.mark.parametrize("limit", [1, 2, 100])
async def test_circulation_is_exactly_the_raw_tables(
    evergreen: tuple[str, str], store: SqlRecordsStore, limit: int
) -> None:
    loans = await _fetch_all(store, CARD, C.CIRCULATION, limit)
    oracle = await _oracle(evergreen[0], ORACLE_CIRCULATION, CARD)
    # The same instants, released in the library's time with their offset.
    assert [dt.datetime.fromisoformat(r["checkout_time"]) for r in loans] == [t for t, _ in oracle]
    assert loans[0]["checkout_time"] == "2026-01-01T00:00:00-06:00"
    assert loans[-1]["checkout_time"] == "2026-03-31T23:59:59-05:00"
    assert [(r["source"], r["title"]) for r in loans] == [
        ("circulation", "The Quiet Lantern (fictional)"),  # 00:00 local on the first day
        ("reading_history", "Paper Atlas (fictional)"),  # aged loan kept by the patron's opt-in
        ("circulation", "Precat Zine (fictional)"),  # pre-cataloged: the copy's dummy title
        ("non_cataloged", "Paperback (fictional)"),
        ("circulation", "The Quiet Lantern (fictional)"),  # 01:30 CST, before the change
        ("circulation", "Paper Atlas (fictional)"),  # 03:30 CDT, after it
        ("circulation", "The Quiet Lantern (fictional)"),  # the renewal of the 01:30 loan
        ("circulation", "Paper Atlas (fictional)"),  # 23:59:59 local on the last day
    ]
    assert [r["renewal"] for r in loans].count(True) == 1


async def test_holds_are_exactly_the_raw_tables(
    evergreen: tuple[str, str], store: SqlRecordsStore
) -> None:
    holds = await _fetch_all(store, CARD, C.HOLDS)
    oracle = await _oracle(evergreen[0], ORACLE_HOLDS, CARD)
    assert len(holds) == len(oracle) == 2
    assert [(h["title"], h["status"], h["hold_type"]) for h in holds] == [
        ("The Quiet Lantern (fictional)", "pending", "T"),  # title hold: the bib record
        ("Paper Atlas (fictional)", "expired", "C"),  # copy hold, ended by shelf expiry
    ]


async def test_a_replaced_card_names_the_same_patron(store: SqlRecordsStore) -> None:
    old = {c: await _fetch_all(store, OLD_CARD, c) for c in (C.CIRCULATION, C.HOLDS)}
    new = {c: await _fetch_all(store, CARD, c) for c in (C.CIRCULATION, C.HOLDS)}
    assert old == new and old[C.CIRCULATION]


async def test_registration_is_a_state(store: SqlRecordsStore) -> None:
    # Registered in June 2025, expiring 2028: registered throughout the period.
    [current] = await _fetch_all(store, CARD, C.REGISTRATION)
    assert current["card_active"] is True and current["surname"] == "Velquidor"
    [replaced] = await _fetch_all(store, OLD_CARD, C.REGISTRATION)
    assert replaced["card_active"] is False and replaced["current_card_barcode"] == CARD
    # Expired on 2025-12-31: not registered at any time in 2026's first quarter.
    assert await _fetch_all(store, OTHER_CARD, C.REGISTRATION) == []


async def test_staff_only_values_and_other_patrons_never_leave(store: SqlRecordsStore) -> None:
    out = {c: await _fetch_all(store, CARD, c) for c in (C.CIRCULATION, C.HOLDS)}
    text = json.dumps(out)
    for secret in NEVER:
        assert secret not in text
    assert "Fensul" not in text and OTHER_CARD not in text


async def test_what_aging_leaves_behind_is_not_reachable(evergreen: tuple[str, str]) -> None:
    # The aged loan and aged hold carry no patron: no view lists them.
    conn = await asyncpg.connect(**_pg_kwargs(evergreen[0]))
    try:
        aged = await conn.fetchval(
            "SELECT count(*) FROM bulwark.circulation WHERE checkout_time = $1",
            await conn.fetchval("SELECT xact_start FROM action.aged_circulation WHERE id = 50"),
        )
        assert aged == 0
        assert await conn.fetchval("SELECT count(*) FROM bulwark.holds WHERE hold_id = 90") == 0
    finally:
        await conn.close()


def test_the_policy_forbids_the_staff_only_fields() -> None:
    text = (EXAMPLE / "policy-forbidden-fields.toml").read_text()
    base = (HERE.parents[1] / "app" / "policy" / "default_policy.toml").read_text()
    policy = parse_policy((base + "\n" + text).encode(), source="policy")
    mapping = load_mapping(EXAMPLE / "mapping.toml")
    validate_against_policy(mapping, policy.forbidden_fields)  # the example maps none of them
    for category, column in (
        ("registration", "passwd"),
        ("registration", "ident_value"),
        ("registration", "alert_message"),
        ("holds", "cancel_note"),
    ):
        document = json.loads(json.dumps({"categories": {}}))
        body = {"table": "t", "patron_column": "p", "date_column": "d", "fields": {column: column}}
        document["categories"][category] = body
        with pytest.raises(MappingError, match="the policy forbids"):
            validate_against_policy(parse_mapping(document), policy.forbidden_fields)


async def test_the_readme_starts_bulwark_and_discloses(
    evergreen: tuple[str, str],
    make_settings: Callable[..., Settings],
    order_token: Callable[..., str],
) -> None:
    """README.md's steps: views.sql, role.sql, then these settings; the API answers."""
    settings = make_settings(
        records_url=evergreen[1],
        records_mapping=EXAMPLE / "mapping.toml",
        timezone=ZONE,
    )
    await migrate(settings)
    rt = await build_runtime(settings)  # start-up's checks, as the least-privilege role
    try:
        _, key = await add_client(rt.state, "eg-requester", Role.REQUESTER, audit=rt.audit)
        token = order_token(
            patrons=[OLD_CARD],
            categories=["circulation", "holds"],
            period=("2026-01-01", "2026-03-31"),
        )
        body = {
            "purpose": "legal_process",
            "patron_id": OLD_CARD,
            "categories": ["circulation", "holds"],
            "from": "2026-01-01",
            "to": "2026-03-31",
            "court_order": token,
        }
        async with _client(rt) as c:
            r = await c.post("/v1/disclosures", json=body, headers=auth(key))
        assert r.status_code == 200, r.text
        records = r.json()["records"]
        for secret in NEVER:
            assert secret not in r.text
        oracle = await _oracle(evergreen[0], ORACLE_CIRCULATION, CARD)
        released = [dt.datetime.fromisoformat(r["checkout_time"]) for r in records["circulation"]]
        assert released == [t for t, _ in oracle] and len(released) == 8
        holds = await _oracle(evergreen[0], ORACLE_HOLDS, CARD)
        assert len(records["holds"]) == len(holds) == 2
    finally:
        await rt.close()
