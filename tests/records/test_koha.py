"""examples/koha on a real MariaDB: Koha's tables as Koha defines them, the example's views,
mapping and README, for a library in Chicago (west of UTC, with daylight-saving time).

The central test follows examples/koha/README.md word for word (its views, its grants, its
time-zone setting, `bulwark records check`) and compares what Bulwark releases with what plain
SQL over Koha's raw tables says, in Koha's own time zone, for one patron and one year.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from app.cli import main
from app.core.calendar import LibraryClock
from app.core.config import BUNDLED_POLICY
from app.policy.models import load_policy
from app.records.categories import Category
from app.records.mapping import load_mapping, validate_against_policy
from app.records.obligations import Obligations, Period
from app.records.sql_store import SqlRecordsStore
from tests.databases import mariadb_database

pytestmark = pytest.mark.mariadb

C = Category
HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "koha"
README = (EXAMPLE / "README.md").read_text()
ZONE = "America/Chicago"
CHICAGO = ZoneInfo(ZONE)
YEAR = Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
CARD = "C0001"
OTHER_CARD = "C0002"
NEVER = ("$2a$08$hash", "TOTP-SECRET", "staff-only note", "private hold note", "sess-0001")

#: Koha's columns, in Koha's order, for every table the views read (kohastructure.sql at the
#: commit README.md names). The test copy (koha_schema.sql) must match them exactly.
KOHA_COLUMNS = {
    "borrowers": "borrowernumber cardnumber surname firstname preferred_name middle_name title "
    "othernames initials pronouns streetnumber streettype address address2 city state zipcode "
    "country email phone mobile fax emailpro phonepro B_streetnumber B_streettype B_address "
    "B_address2 B_city B_state B_zipcode B_country B_email B_phone dateofbirth branchcode "
    "categorycode dateenrolled dateexpiry password_expiration_date date_renewed gonenoaddress "
    "lost debarred debarredcomment contactname contactfirstname contacttitle borrowernotes "
    "relationship sex password secret auth_method flags userid opacnote contactnote sort1 sort2 "
    "altcontactfirstname altcontactsurname altcontactaddress1 altcontactaddress2 "
    "altcontactaddress3 altcontactstate altcontactzipcode altcontactcountry altcontactphone "
    "smsalertnumber sms_provider_id privacy privacy_guarantor_fines privacy_guarantor_checkouts "
    "checkprevcheckout updated_on lastseen lang login_attempts overdrive_auth_token anonymized "
    "autorenew_checkouts primary_contact_method protected",
    "biblio": "biblionumber frameworkcode author title medium subtitle part_number part_name "
    "unititle notes serial seriestitle copyrightdate timestamp datecreated abstract "
    "opac_suppressed",
    "items": "itemnumber biblionumber biblioitemnumber barcode bookable dateaccessioned "
    "booksellerid homebranch price replacementprice replacementpricedate datelastborrowed "
    "datelastseen stack notforloan damaged damaged_on itemlost itemlost_on withdrawn "
    "withdrawn_on itemcallnumber coded_location_qualifier issues renewals localuse reserves "
    "restricted itemnotes itemnotes_nonpublic holdingbranch timestamp deleted_on location "
    "permanent_location onloan cn_source cn_sort ccode materials uri itype more_subfields_xml "
    "enumchron copynumber stocknumber new_status exclude_from_local_holds_priority",
    "issues": "issue_id borrowernumber issuer_id itemnumber booking_id date_due branchcode "
    "returndate checkin_library lastreneweddate renewals_count unseen_renewals auto_renew "
    "auto_renew_error timestamp issuedate onsite_checkout note notedate noteseen",
    "old_issues": "issue_id borrowernumber issuer_id itemnumber booking_id date_due branchcode "
    "returndate checkin_library lastreneweddate renewals_count unseen_renewals auto_renew "
    "auto_renew_error timestamp issuedate onsite_checkout note notedate noteseen",
    "reserves": "reserve_id borrowernumber reservedate biblionumber deleted_biblionumber "
    "item_group_id branchcode desk_id notificationdate reminderdate cancellationdate "
    "cancellation_reason reservenotes priority found timestamp itemnumber waitingdate "
    "expirationdate patron_expiration_date lowestPriority suspend suspend_until itemtype "
    "item_level_hold non_priority hold_group_id",
    "old_reserves": "reserve_id borrowernumber reservedate biblionumber deleted_biblionumber "
    "item_group_id branchcode desk_id notificationdate reminderdate cancellationdate "
    "cancellation_reason reservenotes priority found timestamp itemnumber waitingdate "
    "expirationdate patron_expiration_date lowestPriority suspend suspend_until itemtype "
    "item_level_hold non_priority hold_group_id",
    "illrequests": "illrequest_id borrowernumber managedby biblio_id deleted_biblio_id due_date "
    "branchcode status status_alias placed replied updated completed medium accessurl cost "
    "price_paid notesopac notesstaff orderid backend batch_id",
    "illrequestattributes": "illrequest_id backend type value readonly",
    "search_history": "id userid sessionid query_desc query_cgi type total time",
}

# Rows as Koha writes them, for a library in Chicago: DATETIME columns hold Chicago wall-clock
# times, and search_history.time is written by Koha's session in Chicago's zone (so the
# statements that write it set the session zone to the offset of that date).
ROWS = """
INSERT INTO borrowers (borrowernumber, cardnumber, surname, firstname, address, city, zipcode,
  email, phone, dateofbirth, branchcode, categorycode, dateenrolled, dateexpiry, borrowernotes,
  password, secret, userid) VALUES
 (1, 'C0001', 'Velquidor', 'Kalo', '12 Tash Lane (fictional)', 'Quillmarsh', '00001',
  'kalo@example.invalid', '+1-555-0101', '1990-04-01', 'CPL', 'PT', '2019-05-01', '2027-05-01',
  'staff-only note', '$2a$08$hash', 'TOTP-SECRET', 'kalo'),
 (2, 'C0002', 'Fensul', 'Mira', '3 Dor Road (fictional)', 'Vennatoll', '00002',
  'mira@example.invalid', '+1-555-0102', '1985-01-01', 'CPL', 'PT', '2025-02-02', '2029-02-02',
  NULL, '$2a$08$other', NULL, 'mira');
INSERT INTO biblio (biblionumber, author, title, datecreated) VALUES
 (1, 'Vel Tash', 'The Quiet Lantern (fictional)', '2020-01-01'),
 (2, 'Ren Dor', 'Paper Atlas (fictional)', '2020-01-01'),
 (3, 'Ota Pel', 'Salt Almanac (fictional)', '2020-01-01');
INSERT INTO items (itemnumber, biblionumber, biblioitemnumber, barcode, itemnotes_nonpublic) VALUES
 (10, 1, 1, 'B10', 'staff-only note'), (11, 2, 2, 'B11', NULL), (12, 1, 1, 'B12', NULL),
 (13, 3, 3, 'B13', NULL);
INSERT INTO issues (issue_id, borrowernumber, itemnumber, date_due, branchcode, issuedate, note)
VALUES
 (100, 1, 10, '2025-01-21 23:59:00', 'CPL', '2024-12-31 23:30:00', 'staff-only note'),
 (101, 2, 12, '2024-03-04 23:59:00', 'CPL', '2024-02-11 09:00:00', NULL);
INSERT INTO old_issues (issue_id, borrowernumber, itemnumber, date_due, branchcode, returndate,
  issuedate) VALUES
 (90, 1, 11, '2024-01-22 23:59:00', 'CPL', '2024-01-20 12:00:00', '2024-01-01 00:00:00'),
 (91, 1, 11, '2024-01-21 23:59:00', 'CPL', '2024-01-02 12:00:00', '2023-12-31 23:59:59'),
 (92, NULL, 10, '2024-03-22 23:59:00', 'CPL', '2024-03-10 12:00:00', '2024-03-01 10:00:00'),
 (93, 1, NULL, '2024-03-31 23:59:00', 'CPL', '2024-03-20 12:00:00', '2024-03-10 02:30:00'),
 (94, 1, 13, '2025-01-21 23:59:00', 'CPL', '2025-01-02 12:00:00', '2025-01-01 00:00:00');
INSERT INTO reserves (reserve_id, borrowernumber, reservedate, biblionumber, branchcode,
  reservenotes, found, suspend, expirationdate, waitingdate) VALUES
 (200, 1, '2024-04-01', 2, 'CPL', 'private hold note', 'W', 0, '2024-04-15', '2024-04-08'),
 (201, 1, '2024-04-02', 3, 'CPL', NULL, NULL, 1, NULL, NULL),
 (202, 1, '2024-04-03', 1, 'CPL', NULL, NULL, 0, NULL, NULL),
 (203, 2, '2024-04-02', 1, 'CPL', NULL, NULL, 0, NULL, NULL);
INSERT INTO old_reserves (reserve_id, borrowernumber, reservedate, biblionumber, branchcode,
  cancellationdate, found, expirationdate, patron_expiration_date, priority) VALUES
 (190, 1, '2024-01-15', 1, 'CPL', '2024-01-20', NULL, NULL, NULL, 0),
 (191, 1, '2024-07-01', 1, 'CPL', NULL, 'F', NULL, NULL, 0),
 (192, 1, '2024-02-01', 2, 'CPL', '2024-03-02', NULL, '2024-03-01', NULL, 0),
 (193, 1, '2024-02-02', 3, 'CPL', '2024-02-11', NULL, NULL, '2024-02-10', 0),
 (194, 1, '2024-02-03', 3, 'CPL', '2024-02-05', NULL, '2024-06-01', NULL, 0),
 (195, 1, '2023-12-31', 3, 'CPL', '2024-01-02', NULL, NULL, NULL, 0);
INSERT INTO illrequests (illrequest_id, borrowernumber, biblio_id, branchcode, status, placed,
  medium, notesopac, notesstaff, backend) VALUES
 (300, 1, NULL, 'CPL', 'REQ', '2024-05-05', 'Book', 'for a thesis', 'staff-only note', 'FreeForm'),
 (301, 1, 1, 'CPL', 'COMP', '2024-05-06', 'Book', NULL, NULL, 'FreeForm'),
 (302, 2, NULL, 'CPL', 'REQ', '2024-05-07', 'Article', NULL, NULL, 'FreeForm'),
 (303, 1, NULL, 'CPL', 'REQ', '2025-01-01', 'Book', NULL, NULL, 'FreeForm');
INSERT INTO illrequestattributes (illrequest_id, backend, type, value) VALUES
 (300, 'Standard', 'title', 'Salt Almanac, first request (fictional)'),
 (300, 'Standard', 'author', 'Ota Pel (old backend)'),
 (300, 'FreeForm', 'title', 'Salt Almanac (fictional)'),
 (300, 'FreeForm', 'author', 'Ota Pel'),
 (302, 'FreeForm', 'title', 'Someone else''s article');
SET time_zone = '-06:00';
INSERT INTO search_history (id, userid, sessionid, query_desc, query_cgi, type, total, time)
VALUES
 (400, 1, 'sess-0001', 'kw,wrdl: lanterns', 'q=lanterns&sess-0001', 'biblio', 3,
  '2023-12-31 20:00:00'),
 (401, 1, 'sess-0001', 'kw,wrdl: almanacs', 'q=almanacs', 'biblio', 2, '2024-12-31 23:30:00'),
 (402, 2, 'sess-0002', 'kw,wrdl: atlases', 'q=atlases', 'biblio', 1, '2024-03-04 10:00:00');
SET time_zone = '-05:00';
INSERT INTO search_history (id, userid, sessionid, query_desc, query_cgi, type, total, time)
VALUES
 (403, 1, 'sess-0003', 'kw,wrdl: ferries', 'q=ferries', 'biblio', 4, '2024-07-04 21:15:00');
"""


def _statements(sql: str) -> list[str]:
    """Split a script on the semicolons that end its lines (none occur inside a statement)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", body + "\n") if part.strip()]


def _run_as_admin(url: str, *scripts: str) -> None:
    parts = make_url(url)
    conn = pymysql.connect(
        host=parts.host, port=parts.port or 3306, user=parts.username, database=parts.database
    )
    try:
        with conn.cursor() as cur:
            for script in scripts:
                for statement in _statements(script):
                    cur.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _raw(url: str, sql: str, *params: Any, zone: str = "-06:00") -> list[tuple[Any, ...]]:
    """SQL over Koha's raw tables, in a session set to Koha's zone (CST for these dates)."""
    parts = make_url(url)
    conn = pymysql.connect(
        host=parts.host, port=parts.port or 3306, user=parts.username, database=parts.database
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"SET time_zone = '{zone}'")
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def koha_url() -> Iterator[str]:
    with mariadb_database() as url:
        _run_as_admin(url, (HERE / "koha_schema.sql").read_text(), ROWS)
        yield url


# --------------------------------------------------------------------------- the README


def _readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    [block] = [b for b in blocks if containing in b]
    return block


@pytest.fixture(scope="module")
def bulwark_account(koha_url: str) -> Iterator[str]:
    """README step 1 and 2, word for word: the views, then the account and its grants."""
    database = make_url(koha_url).database or ""
    user = f"bulwark_{uuid.uuid4().hex[:6]}"
    password = f"pw-{uuid.uuid4().hex}"
    views = _readme_block("sh", "views.sql")
    assert views.strip() == "mariadb koha_library < examples/koha/views.sql"
    _run_as_admin(koha_url, (EXAMPLE / "views.sql").read_text())
    grants = (
        _readme_block("sql", "GRANT SELECT")
        .replace("koha_library", database)
        .replace("'bulwark'@'10.0.0.%'", f"'{user}'@'%'")
        .replace("<a long random password>", password)
    )
    _run_as_admin(koha_url, grants)
    yield (
        make_url(koha_url)
        .set(username=user, password=password)
        .render_as_string(hide_password=False)
    )
    _run_as_admin(koha_url, f"DROP USER '{user}'@'%';")


def test_the_readme_s_steps_give_what_koha_s_tables_say(
    koha_url: str, bulwark_account: str, tmp_path: Path
) -> None:
    # Step 3: the settings the README gives, with this library's zone.
    assert "export BULWARK_TIMEZONE=" in README
    env = {
        "BULWARK_RECORDS_URL": bulwark_account,
        "BULWARK_RECORDS_MAPPING": str(EXAMPLE / "mapping.toml"),
        "BULWARK_TIMEZONE": ZONE,
        "BULWARK_DATA_DIR": str(tmp_path),
    }
    # Step 4: `bulwark records check`, as after every Koha upgrade.
    assert "bulwark records check" in README
    checked = CliRunner().invoke(main, ["records", "check"], env=env)
    assert checked.exit_code == 0, checked.output
    assert "5 categories" in checked.output and f"time zone {ZONE}" in checked.output

    released = asyncio.run(_released(bulwark_account, CARD, YEAR))
    expected = _what_koha_says(koha_url, CARD, YEAR)
    assert released == expected
    # Nothing was left out by accident: every category had something to release.
    assert all(released.values()), released


async def _released(url: str, card: str, period: Period) -> dict[str, list[Any]]:
    mapping = load_mapping(EXAMPLE / "mapping.toml")
    store = SqlRecordsStore(url, mapping, clock=LibraryClock.named(ZONE))
    try:
        await store.validate()
        ob = Obligations(card, tuple(mapping.categories), period, mapping.fields())
        pages = {c: (await store.fetch(ob, c, limit=100)).records for c in ob.categories}
    finally:
        await store.close()

    def local(value: str | None) -> str | None:
        # Released with its offset; compared with Koha's wall-clock reading of it.
        if value is None:
            return None
        # Wall-clock values carry Koha's zone's offset, instants are shown in the library's
        # zone: either way the local time is the text before the offset.
        parsed = dt.datetime.fromisoformat(value)
        assert parsed.tzinfo is not None
        return parsed.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")

    return {
        "registration": [r["card_number"] for r in pages[C.REGISTRATION]],
        "circulation": sorted(local(r["checkout_date"]) or "" for r in pages[C.CIRCULATION]),
        "holds": sorted(r["placed_on"] for r in pages[C.HOLDS]),
        "interlibrary_loan": sorted(r["placed_on"] for r in pages[C.INTERLIBRARY_LOAN]),
        "search_history": sorted(local(r["searched_at"]) or "" for r in pages[C.SEARCH_HISTORY]),
    }


def _what_koha_says(url: str, card: str, period: Period) -> dict[str, list[Any]]:
    first, after = period.start.isoformat(), (period.end + dt.timedelta(days=1)).isoformat()
    last = period.end.isoformat()
    patron = "borrowernumber = (SELECT borrowernumber FROM borrowers WHERE cardnumber = %s)"
    registration = _raw(
        url,
        "SELECT cardnumber FROM borrowers WHERE cardnumber = %s AND dateenrolled <= %s "
        "AND (dateexpiry IS NULL OR dateexpiry >= %s)",
        card,
        last,
        first,
    )
    loans = _raw(
        url,
        f"SELECT issuedate FROM issues WHERE {patron} AND issuedate >= %s AND issuedate < %s "
        f"UNION ALL SELECT issuedate FROM old_issues WHERE {patron} AND issuedate >= %s "
        "AND issuedate < %s",
        card,
        first,
        after,
        card,
        first,
        after,
    )
    holds = _raw(
        url,
        f"SELECT reservedate FROM reserves WHERE {patron} AND reservedate BETWEEN %s AND %s "
        f"UNION ALL SELECT reservedate FROM old_reserves WHERE {patron} "
        "AND reservedate BETWEEN %s AND %s",
        card,
        first,
        last,
        card,
        first,
        last,
    )
    ill = _raw(
        url,
        f"SELECT placed FROM illrequests WHERE {patron} AND placed BETWEEN %s AND %s",
        card,
        first,
        last,
    )
    # Koha's session runs in Chicago's zone: `time` reads as Chicago time there.
    searches = _raw(
        url,
        "SELECT `time` FROM search_history WHERE userid = (SELECT borrowernumber FROM borrowers "
        "WHERE cardnumber = %s) AND `time` >= %s AND `time` < %s",
        card,
        f"{first} 00:00:00",
        f"{after} 00:00:00",
    )
    return {
        "registration": [row[0] for row in registration],
        "circulation": sorted(row[0].strftime("%Y-%m-%d %H:%M:%S") for row in loans),
        "holds": sorted(row[0].isoformat() for row in holds),
        "interlibrary_loan": sorted(row[0].isoformat() for row in ill),
        "search_history": sorted(
            # Read in a -06:00 session (both ends of 2024 are CST in Chicago, so the bounds
            # above are Chicago's midnights); shown as Koha shows them, in Chicago's time.
            dt.datetime.fromtimestamp(
                row[0].replace(tzinfo=dt.timezone(dt.timedelta(hours=-6))).timestamp(), CHICAGO
            ).strftime("%Y-%m-%d %H:%M:%S")
            for row in searches
        ),
    }


# --------------------------------------------------------------------------- what is released


async def _fetch_all(url: str, card: str = CARD) -> dict[Category, list[dict[str, Any]]]:
    mapping = load_mapping(EXAMPLE / "mapping.toml")
    store = SqlRecordsStore(url, mapping, clock=LibraryClock.named(ZONE))
    try:
        ob = Obligations(card, tuple(mapping.categories), YEAR, mapping.fields())
        return {c: (await store.fetch(ob, c, limit=100)).records for c in ob.categories}
    finally:
        await store.close()


def test_the_test_copy_is_koha_s_tables(koha_url: str) -> None:
    database = make_url(koha_url).database
    for table, columns in KOHA_COLUMNS.items():
        rows = _raw(
            koha_url,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY ordinal_position",
            database,
            table,
        )
        assert [r[0] for r in rows] == columns.split(), table


def test_the_mapping_passes_the_bundled_policy() -> None:
    policy = load_policy(BUNDLED_POLICY)
    validate_against_policy(
        load_mapping(EXAMPLE / "mapping.toml"), policy.policy.forbidden_fields()
    )


def test_records_are_narrowed(koha_url: str, bulwark_account: str) -> None:
    records = asyncio.run(_fetch_all(bulwark_account))

    [patron] = records[C.REGISTRATION]
    # Enrolled in 2019, expiring in 2027: registered all through 2024.
    assert (patron["card_number"], patron["enrolled_on"]) == (CARD, "2019-05-01")

    loans = records[C.CIRCULATION]
    assert [(r["title"], r["checkout_date"]) for r in loans] == [
        ("Paper Atlas (fictional)", "2024-01-01T00:00:00-06:00"),  # the first local instant
        (None, "2024-03-10T02:30:00-06:00"),  # the item since deleted; a time in the DST gap
        ("The Quiet Lantern (fictional)", "2024-12-31T23:30:00-06:00"),  # still out
    ]
    assert loans[2]["return_date"] is None

    assert [(r["title"], r["status"]) for r in records[C.HOLDS]] == [
        ("The Quiet Lantern (fictional)", "cancelled"),
        ("Paper Atlas (fictional)", "expired"),  # cancelled by the expiry job
        ("Salt Almanac (fictional)", "expired"),  # the patron's own expiry date passed
        ("Salt Almanac (fictional)", "cancelled"),  # cancelled before it expired
        ("Paper Atlas (fictional)", "waiting"),
        ("Salt Almanac (fictional)", "suspended"),
        ("The Quiet Lantern (fictional)", "pending"),
        ("The Quiet Lantern (fictional)", "filled"),
    ]
    # Attributes of the request's current backend only, though it has two backends' attributes.
    assert [(r["title"], r["author"]) for r in records[C.INTERLIBRARY_LOAN]] == [
        ("Salt Almanac (fictional)", "Ota Pel"),
        ("The Quiet Lantern (fictional)", "Vel Tash"),  # from biblio
    ]
    text = json.dumps(records)
    for secret in NEVER:
        assert secret not in text
    assert OTHER_CARD not in text
    assert "Someone else" not in text
    assert "old backend" not in text


def test_searches_fall_on_chicago_s_dates(bulwark_account: str) -> None:
    # Made at 20:00 on 31 December 2023 in Chicago (02:00 UTC on 1 January 2024): not in 2024.
    # Made at 23:30 on 31 December 2024 (05:30 UTC on 1 January 2025): in 2024.
    records = asyncio.run(_fetch_all(bulwark_account))
    assert [r["searched_at"] for r in records[C.SEARCH_HISTORY]] == [
        "2024-07-04T21:15:00-05:00",
        "2024-12-31T23:30:00-06:00",
    ]


def test_a_card_number_in_another_case_is_the_same_patron(bulwark_account: str) -> None:
    lower = asyncio.run(_fetch_all(bulwark_account, CARD.lower()))
    upper = asyncio.run(_fetch_all(bulwark_account, CARD))
    assert lower == upper
    assert lower[C.CIRCULATION]
    assert asyncio.run(_fetch_all(bulwark_account, CARD + " "))[C.CIRCULATION] == []


def test_other_patron_sees_only_their_own(bulwark_account: str) -> None:
    records = asyncio.run(_fetch_all(bulwark_account, OTHER_CARD))
    assert [r["barcode"] for r in records[C.CIRCULATION]] == ["B12"]
    assert [r["title"] for r in records[C.INTERLIBRARY_LOAN]] == ["Someone else's article"]
    # Enrolled in 2025: not registered in 2024.
    assert records[C.REGISTRATION] == []
    assert CARD not in json.dumps(records)


def test_views_let_mariadb_use_the_patron_indexes(koha_url: str) -> None:
    rows = _raw(
        koha_url,
        "EXPLAIN SELECT issue_id FROM bulwark_circulation WHERE cardnumber = 'c0001' "
        "AND issuedate >= '2024-01-01' AND issuedate < '2025-01-01'",
    )
    # The patron's condition reaches the tables inside the UNION: issues and old_issues are
    # read by borrower through their indexes, never scanned whole.
    tables = [(r[2], r[3]) for r in rows]  # (table, access type)
    assert not {t for t, kind in tables if kind == "ALL"} & {"i", "oi"}, tables


def test_the_example_is_refused_by_an_account_without_its_grants(koha_url: str) -> None:
    user = f"nogrant_{uuid.uuid4().hex[:6]}"
    _run_as_admin(koha_url, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-nogrant-123';")
    try:
        url = (
            make_url(koha_url)
            .set(username=user, password="pw-nogrant-123")
            .render_as_string(hide_password=False)
        )
        env = {
            "BULWARK_RECORDS_URL": url,
            "BULWARK_RECORDS_MAPPING": str(EXAMPLE / "mapping.toml"),
        }
        checked = CliRunner().invoke(main, ["records", "check"], env=env)
        assert checked.exit_code == 1
        # No grant on the database at all: MariaDB refuses the database, and says so.
        assert "unreachable" not in checked.output
    finally:
        _run_as_admin(koha_url, f"DROP USER '{user}'@'%';")


def test_koha_upgrade_that_drops_a_column_is_named(tmp_path: Path) -> None:
    with mariadb_database() as url:
        _run_as_admin(
            url, (HERE / "koha_schema.sql").read_text(), (EXAMPLE / "views.sql").read_text()
        )
        _run_as_admin(url, "ALTER TABLE old_reserves DROP COLUMN patron_expiration_date;")
        env = {
            "BULWARK_RECORDS_URL": url,
            "BULWARK_RECORDS_MAPPING": str(EXAMPLE / "mapping.toml"),
            "BULWARK_DATA_DIR": str(tmp_path),
        }
        checked = CliRunner().invoke(main, ["records", "check"], env=env)
    assert checked.exit_code == 1
    assert "view 'bulwark_holds' exists but cannot be read" in " ".join(checked.output.split())
