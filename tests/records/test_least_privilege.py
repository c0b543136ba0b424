"""Bulwark with SELECT on the mapped views and nothing else, on PostgreSQL and MariaDB.

Each test makes a real account that may only SELECT two views over private tables, and checks
that the store validates and reads through it, and that each fault start-up can meet (a view
without a grant, a column the view lacks, a view broken under it, a relation that is not
there, a refused login, a server that does not answer) is named for what it is, the same at
start-up and in ``bulwark records check``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from app.cli import main
from app.core.database import create_engine
from app.records.categories import Category
from app.records.mapping import MappingError, parse_mapping
from app.records.obligations import Obligations
from app.records.sql_schema import StoreLoginError
from app.records.sql_store import SqlRecordsStore
from tests.databases import mariadb_database, postgres_database
from tests.records.fixtures import PERIOD

C = Category
PASSWORD = "least-privilege-test-password"

TABLES = [
    "CREATE TABLE loans_private (loan_id INTEGER PRIMARY KEY, patron VARCHAR(20) NOT NULL, "
    "title VARCHAR(100) NOT NULL, at DATE NOT NULL, staff_note VARCHAR(100))",
    "CREATE TABLE holds_private (hold_id INTEGER PRIMARY KEY, patron VARCHAR(20) NOT NULL, "
    "title VARCHAR(100) NOT NULL, placed DATE NOT NULL)",
    "INSERT INTO loans_private VALUES (1, 'P1', 'Loan one', '2026-02-01', 'secret'), "
    "(2, 'P2', 'Loan two', '2026-02-01', 'secret')",
    "INSERT INTO holds_private VALUES (1, 'P1', 'Hold one', '2026-03-01')",
    "CREATE VIEW v_loans AS SELECT loan_id, patron, title, at FROM loans_private",
    "CREATE VIEW v_holds AS SELECT hold_id, patron, title, placed FROM holds_private",
]

MAPPING: dict[str, Any] = {
    "categories": {
        "circulation": {
            "table": "v_loans",
            "patron_column": "patron",
            "date_column": "at",
            "id_column": "loan_id",
            "fields": {"title": "title", "checked_out": "at"},
        },
        "holds": {
            "table": "v_holds",
            "patron_column": "patron",
            "date_column": "placed",
            "id_column": "hold_id",
            "fields": {"title": "title", "placed": "placed"},
        },
    }
}


def _mapping(**changes: dict[str, Any]) -> Any:
    categories = {k: {**v, **changes.get(k, {})} for k, v in MAPPING["categories"].items()}
    return parse_mapping({"categories": categories})


async def _admin(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@contextmanager
def _postgres() -> Iterator[tuple[str, str, Callable[[list[str]], None]]]:
    """(admin URL, the limited account's URL, run statements as admin)."""
    with postgres_database() as url:
        role = f"bulwark_ro_{uuid.uuid4().hex[:8]}"
        owner = f"view_owner_{uuid.uuid4().hex[:8]}"
        database = make_url(url).database

        def admin(statements: list[str]) -> None:
            asyncio.run(_admin(url, statements))

        admin(
            [
                *TABLES[:4],
                # The views belong to an ordinary role that may read the tables: so that its
                # grant can be taken away (a view broken under Bulwark).
                f"CREATE ROLE {owner}",
                f"GRANT SELECT ON loans_private, holds_private TO {owner}",
                f"GRANT CREATE, USAGE ON SCHEMA public TO {owner}",
                f"SET ROLE {owner}",
                *TABLES[4:],
                "RESET ROLE",
                f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'",
                f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
                f"GRANT USAGE ON SCHEMA public TO {role}",
                f"GRANT SELECT ON v_loans, v_holds TO {role}",
            ]
        )
        limited = make_url(url).set(username=role, password=PASSWORD)
        try:
            yield url, limited.render_as_string(hide_password=False), admin
        finally:
            admin(
                [
                    "DROP VIEW IF EXISTS v_loans, v_holds",
                    f"DROP OWNED BY {role}",
                    f"DROP OWNED BY {owner}",
                    f"DROP ROLE {role}",
                    f"DROP ROLE {owner}",
                ]
            )


@contextmanager
def _mariadb() -> Iterator[tuple[str, str, Callable[[list[str]], None]]]:
    with mariadb_database() as url:
        user = f"bulwark_ro_{uuid.uuid4().hex[:8]}"
        database = make_url(url).database

        def admin(statements: list[str]) -> None:
            # The driver formats statements with %: the host wildcard is written %%.
            asyncio.run(_admin(url, [s.replace("%", "%%") for s in statements]))

        admin(
            [
                *TABLES,
                f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'",
                f"GRANT SELECT ON `{database}`.v_loans TO '{user}'@'%'",
                f"GRANT SELECT ON `{database}`.v_holds TO '{user}'@'%'",
            ]
        )
        limited = make_url(url).set(username=user, password=PASSWORD)
        try:
            yield url, limited.render_as_string(hide_password=False), admin
        finally:
            admin([f"DROP USER '{user}'@'%'"])


SERVERS = [
    pytest.param(_postgres, marks=pytest.mark.postgres, id="postgres"),
    pytest.param(_mariadb, marks=pytest.mark.mariadb, id="mariadb"),
]


async def _validate(url: str, mapping: Any) -> None:
    store = SqlRecordsStore(url, mapping)
    try:
        await store.validate()
    finally:
        await store.close()


async def _read(url: str) -> list[Any]:
    mapping = _mapping()
    store = SqlRecordsStore(url, mapping)
    try:
        await store.validate()
        ob = Obligations("P1", (C.CIRCULATION, C.HOLDS), PERIOD, mapping.fields())
        return [
            (await store.fetch(ob, C.CIRCULATION, limit=10)).records,
            (await store.fetch(ob, C.HOLDS, limit=10)).records,
        ]
    finally:
        await store.close()


def _refusal(url: str, mapping: Any) -> str:
    async def run() -> str:
        with pytest.raises(MappingError) as caught:
            await _validate(url, mapping)
        return str(caught.value)

    return asyncio.run(run())


def _check_cli(url: str, mapping_file: Path, tmp_path: Path) -> tuple[int, str]:
    env = {
        "BULWARK_RECORDS_URL": url,
        "BULWARK_RECORDS_MAPPING": str(mapping_file),
        "BULWARK_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(main, ["records", "check"], env=env)
    return result.exit_code, result.output


def _mapping_file(tmp_path: Path, **changes: dict[str, Any]) -> Path:
    lines = []
    for name, body in MAPPING["categories"].items():
        merged = {**body, **changes.get(name, {})}
        lines.append(f"[categories.{name}]")
        for key, value in merged.items():
            if isinstance(value, dict):
                inner = ", ".join(f'{k} = "{v}"' for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f'{key} = "{value}"')
    path = tmp_path / f"mapping-{uuid.uuid4().hex[:6]}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("server", SERVERS)
def test_select_on_the_views_is_enough(server: Any, tmp_path: Path) -> None:
    with server() as (_admin_url, url, _run):
        loans, holds = asyncio.run(_read(url))
        assert [r["title"] for r in loans] == ["Loan one"]
        assert [r["title"] for r in holds] == ["Hold one"]
        code, output = _check_cli(url, _mapping_file(tmp_path), tmp_path)
        assert code == 0, output
        assert "matches" in output and "2 categories: circulation, holds" in output


@pytest.mark.parametrize("server", SERVERS)
def test_a_view_without_a_grant(server: Any, tmp_path: Path) -> None:
    with server() as (_admin_url, url, admin):
        user = make_url(url).username
        host = "" if "postgresql" in url else "@'%'"
        target = f"'{user}'{host}" if host else user
        admin([f"REVOKE SELECT ON v_holds FROM {target}"])
        text = _refusal(url, _mapping())
        assert text.startswith(f"categories.holds.table: {user} has no SELECT grant on 'v_holds'")
        assert text.endswith("GRANT SELECT ON v_holds TO it")
        code, output = _check_cli(url, _mapping_file(tmp_path), tmp_path)
        assert code == 1
        assert f"records mapping does not match the store: {text}" in " ".join(output.split())


@pytest.mark.parametrize("server", SERVERS)
def test_a_column_the_view_does_not_have(server: Any, tmp_path: Path) -> None:
    with server() as (_admin_url, url, _run):
        change = {"fields": {"title": "title", "note": "staff_note"}}
        text = _refusal(url, _mapping(circulation=change))
        assert text == (
            "categories.circulation.fields.note: column 'staff_note' does not exist in "
            "'v_loans'; fix the mapping, or recreate the view if an upgrade of the library "
            "system renamed it"
        )
        code, output = _check_cli(url, _mapping_file(tmp_path, circulation=change), tmp_path)
        assert code == 1
        assert "column 'staff_note' does not exist in 'v_loans'" in " ".join(output.split())


@pytest.mark.parametrize("server", SERVERS)
def test_a_view_broken_under_it(server: Any, tmp_path: Path) -> None:
    with server() as (_admin_url, url, admin):
        if "postgresql" in url:
            # PostgreSQL will not drop a column a view uses; the view's owner losing its
            # grant on the table breaks it the same way for every reader.
            admin(
                [
                    "DO $$ DECLARE r text; BEGIN SELECT viewowner INTO r FROM pg_views "
                    "WHERE viewname = 'v_holds'; EXECUTE format('REVOKE SELECT ON holds_private "
                    "FROM %I', r); END $$"
                ]
            )
        else:
            admin(["ALTER TABLE holds_private DROP COLUMN placed"])
        text = _refusal(url, _mapping())
        assert text.startswith("categories.holds.table: view 'v_holds' exists but cannot be read")
        assert "recreate the view" in text
        code, output = _check_cli(url, _mapping_file(tmp_path), tmp_path)
        assert code == 1
        assert "view 'v_holds' exists but cannot be read" in " ".join(output.split())


@pytest.mark.parametrize("server", SERVERS)
def test_a_view_that_is_not_there(server: Any, tmp_path: Path) -> None:
    with server() as (_admin_url, url, admin):
        admin(["DROP VIEW v_holds"])
        text = _refusal(url, _mapping())
        assert text.startswith(
            "categories.holds.table: table or view 'v_holds' does not exist in the records store"
        )


@pytest.mark.parametrize("server", SERVERS)
def test_a_refused_login_is_not_unreachable(server: Any, tmp_path: Path) -> None:
    with server() as (_admin_url, url, _run):
        wrong = make_url(url).set(username="nobody_at_all", password="wrong")
        wrong_url = wrong.render_as_string(hide_password=False)

        async def run() -> str:
            with pytest.raises(StoreLoginError) as caught:
                await _validate(wrong_url, _mapping())
            return str(caught.value)

        text = asyncio.run(run())
        assert text.startswith("the records store refused the login of 'nobody_at_all'")
        code, output = _check_cli(wrong_url, _mapping_file(tmp_path), tmp_path)
        assert code == 1
        assert "refused the login" in output
        assert "unreachable" not in output


def test_unreachable_only_when_nothing_answers(tmp_path: Path, closed_port: int) -> None:
    url = f"postgresql://bulwark@127.0.0.1:{closed_port}/koha"
    code, output = _check_cli(url, _mapping_file(tmp_path), tmp_path)
    assert code == 1
    assert "unreachable: The records store could not be reached" in output


@pytest.mark.mariadb
def test_case_insensitive_matching_needs_a_collation_that_ignores_case() -> None:
    with mariadb_database() as url:
        asyncio.run(
            _admin(
                url,
                [
                    "CREATE TABLE loans_bin (loan_id INTEGER PRIMARY KEY, patron VARCHAR(20) "
                    "COLLATE utf8mb4_bin NOT NULL, at DATE NOT NULL)",
                    "INSERT INTO loans_bin VALUES (1, 'C0001', '2026-02-01')",
                ],
            )
        )
        mapping = parse_mapping(
            {
                "patron_match": "case_insensitive",
                "categories": {
                    "circulation": {
                        "table": "loans_bin",
                        "patron_column": "patron",
                        "date_column": "at",
                        "fields": {"at": "at"},
                    }
                },
            }
        )
        text = _refusal(url, mapping)
    assert text.startswith(
        "categories.circulation.patron_match: column 'patron' of 'loans_bin' has the collation "
        "utf8mb4_bin, which does not ignore case"
    )


@pytest.mark.parametrize("server", SERVERS)
def test_start_up_refuses_with_the_same_words(
    server: Any, tmp_path: Path, trust_store_file: Path
) -> None:
    from app.core.config import Settings
    from app.core.secrets import ensure_instance_secrets
    from app.core.startup import StartupError
    from app.runtime import build_runtime

    with server() as (_admin_url, url, admin):
        user = make_url(url).username
        target = user if "postgresql" in url else f"'{user}'@'%'"
        admin([f"REVOKE SELECT ON v_holds FROM {target}"])
        mapping_file = _mapping_file(tmp_path)
        settings = Settings(
            data_dir=tmp_path / "data",
            records_url=url,
            records_mapping=mapping_file,
            trust_store=trust_store_file,
            environment="test",
            auto_migrate=True,
        )
        ensure_instance_secrets(settings)

        async def start() -> str:
            with pytest.raises(StartupError) as caught:
                await build_runtime(settings)
            return str(caught.value)

        refused = asyncio.run(start())
        code, output = _check_cli(url, mapping_file, tmp_path)
    assert refused.startswith(
        f"records mapping does not match the store: categories.holds.table: {user} has no "
        "SELECT grant on 'v_holds'"
    )
    assert code == 1
    assert f"records check failed: {refused}" == " ".join(output.split())
