"""Real databases for tests: a fresh, uniquely named database per request.

PostgreSQL and MariaDB are the machine's own (127.0.0.1:5432 user postgres, trust auth;
127.0.0.1:3306 root, no password). Without them, tests that need them skip with a message,
except under ``CI=true`` where a missing database fails the run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST = os.environ.get("BULWARK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BULWARK_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BULWARK_TEST_PG_USER", "postgres")
MY_HOST = os.environ.get("BULWARK_TEST_MYSQL_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("BULWARK_TEST_MYSQL_PORT", "3306"))
MY_USER = os.environ.get("BULWARK_TEST_MYSQL_USER", "root")

IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str, host: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when a database server is not reachable."""
    if _reachable(host, port):
        return
    message = f"{service} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its URL and drops it afterwards."""
    require("PostgreSQL", PG_HOST, PG_PORT)
    import asyncio

    import asyncpg

    name = f"bulwark_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A new, empty MariaDB database; yields its URL and drops it afterwards."""
    require("MariaDB", MY_HOST, MY_PORT)
    import pymysql

    name = f"bulwark_test_{uuid.uuid4().hex[:12]}"

    def admin(sql: str) -> None:
        conn = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password="")
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
            conn.commit()
        finally:
            conn.close()

    admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{name}"
    finally:
        admin(f"DROP DATABASE IF EXISTS `{name}`")
