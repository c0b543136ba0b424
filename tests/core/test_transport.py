"""Encrypted transport by default (issue 16): TLS required and verified to any host that is
not genuinely loopback, libpq's sslmode understood, no silent fallback to plaintext."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings, new_secret
from app.core.database import UnsupportedDatabase, create_engine, redact
from app.core.transport import (
    client_context,
    http_verify,
    is_loopback_host,
    is_loopback_url,
    redis_tls_options,
    tls_mode,
)
from tests.databases import MY_HOST, MY_PORT, PG_HOST, PG_PORT, require


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost.", True),
        (None, True),  # the driver's Unix socket
        ("/var/run/postgresql", True),
        ("127.records-evil.example", False),  # the trick: a prefix is not an address
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("10.0.0.5", False),
        ("db.example.org", False),
        ("0x7f.0.0.1", False),
    ],
)
def test_loopback_is_parsed_not_matched_by_prefix(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_the_loopback_trick_is_refused_for_a_records_api() -> None:
    assert not is_loopback_url("http://127.records-evil.example/api")
    with pytest.raises(ValidationError, match="plain http"):
        Settings(records_url="http://127.records-evil.example/api", environment="production")
    Settings(records_url="http://127.0.0.1:9000/api", environment="production")


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("database_url", "postgresql://bulwark@db.example.org/bulwark?sslmode=disable"),
        ("records_url", "mysql://koha@koha-db.example.org/koha?sslmode=disable"),
        ("redis_url", "redis://cache.example.org:6379/0"),
    ],
)
def test_production_refuses_plaintext_to_a_remote_host(name: str, url: str) -> None:
    extra: dict[str, Any] = {"rate_limit_backend": "redis"} if name == "redis_url" else {}
    with pytest.raises(ValidationError, match="remote host"):
        Settings(**{name: url}, environment="production", **extra)


@pytest.mark.parametrize("mode", ["prefer", "allow", "bogus"])
def test_sslmodes_that_fall_back_to_plaintext_are_refused(mode: str) -> None:
    with pytest.raises(ValidationError, match="sslmode"):
        Settings(database_url=f"postgresql://u@db.example.org/x?sslmode={mode}")
    with pytest.raises(UnsupportedDatabase):
        create_engine(f"postgresql://u@db.example.org/x?sslmode={mode}")


def test_defaults_verify_full_to_a_remote_host_and_nothing_to_loopback() -> None:
    assert tls_mode(make_url("postgresql://u@db.example.org/x")) == "verify-full"
    assert tls_mode(make_url("postgresql://u@127.0.0.1/x")) == "disable"
    assert tls_mode(make_url("postgresql://u@127.evil.example/x")) == "verify-full"
    full = client_context("verify-full", None)
    assert full is not None and full.check_hostname and full.verify_mode == ssl.CERT_REQUIRED
    ca = client_context("verify-ca", None)
    assert ca is not None and not ca.check_hostname and ca.verify_mode == ssl.CERT_REQUIRED
    assert client_context("disable", None) is None


@pytest.mark.parametrize("mode", ["disable", "require", "verify-ca", "verify-full"])
def test_sslmode_is_turned_into_the_drivers_own_setting(mode: str, tmp_path: Path) -> None:
    from tests.test_deploy_files import _self_signed

    _self_signed(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    for url in (
        f"postgresql://u@db.example.org/x?sslmode={mode}&sslrootcert={tmp_path / 'ca.pem'}",
        f"mysql://u@db.example.org/x?sslmode={mode}",
    ):
        engine = create_engine(url)
        assert "sslmode" not in engine.url.query and "sslrootcert" not in engine.url.query
        asyncio.run(engine.dispose())


def test_the_ca_bundle_setting_reaches_every_database_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    settings = Settings(
        database_url="postgresql://u:p%40ss@db.example.org/x",
        records_url="mysql://koha@koha.example.org/koha?sslrootcert=/own/ca.pem",
        tls_ca_file=ca,
    )
    assert make_url(settings.state_url).query["sslrootcert"] == str(ca)
    assert make_url(settings.state_url).password == "p@ss"
    assert make_url(settings.store_url).query["sslrootcert"] == "/own/ca.pem"  # the URL's wins


def test_rediss_verifies_the_server(tmp_path: Path) -> None:
    options = redis_tls_options("rediss://cache.example.org:6380/0", tmp_path / "ca.pem")
    assert options == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(tmp_path / "ca.pem"),
    }
    assert redis_tls_options("redis://127.0.0.1:6379/0", None) == {}


def test_a_private_ca_verifies_a_records_api(tmp_path: Path) -> None:
    from tests.test_deploy_files import _self_signed

    _self_signed(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    context = http_verify(tmp_path / "ca.pem")
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509"] == 1  # the private CA, and only it
    assert http_verify(None) is True


def test_redact_hides_query_string_credentials() -> None:
    shown = redact("https://svc:hunter2@records.example/api?api_key=SECRET123&sslmode=require")
    assert "SECRET123" not in shown and "hunter2" not in shown
    assert "api_key=***" in shown and "sslmode=require" in shown
    assert "TOKEN" not in redact("postgresql://u@h/db?password=TOKEN")
    assert (
        redact("sqlite:////var/lib/bulwark/bulwark.db") == "sqlite:////var/lib/bulwark/bulwark.db"
    )
    assert redact("postgresql://u:pw@db/x") == "postgresql://u:***@db/x"


@pytest.mark.parametrize(
    "weak", ["a" * 32, "ab" * 16, "abcdefghij" * 4, "changeme", "aaaaaaaabbbbbbbbccccccccdddddddd"]
)
def test_weak_secrets_are_refused(weak: str) -> None:
    with pytest.raises(ValidationError, match="BULWARK_PSEUDONYM_KEY"):
        Settings(pseudonym_key=weak)
    with pytest.raises(ValidationError, match="BULWARK_METRICS_KEY"):
        Settings(metrics="key", metrics_key=weak)


def test_random_secrets_are_accepted() -> None:
    import secrets

    for good in (new_secret(), secrets.token_hex(32), secrets.token_urlsafe(24)):
        assert Settings(pseudonym_key=good).pseudonym_key is not None


# --------------------------------------------------------------------------- real servers


def _non_loopback_address() -> str:
    """An address of this machine that is not loopback (the test needs one)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        address = str(s.getsockname()[0])
        if not is_loopback_host(address):
            return address
    pytest.skip("this machine has no non-loopback address")


@contextlib.asynccontextmanager
async def forwarder(target_host: str, target_port: int) -> AsyncIterator[tuple[str, int]]:
    """A TCP relay on a non-loopback address to a server that listens on loopback only."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    host = _non_loopback_address()
    server = await asyncio.start_server(relay, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield host, port
    finally:
        server.close()


async def _select_one(url: str) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar()
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_postgresql_connection_without_tls_is_refused() -> None:
    require("PostgreSQL", PG_HOST, PG_PORT)
    async with forwarder(PG_HOST, PG_PORT) as (host, port):
        # The server offers no TLS: before, asyncpg's "prefer" went on in clear.
        with pytest.raises(Exception) as refused:
            await _select_one(f"postgresql://postgres@{host}:{port}/postgres")
        assert not isinstance(refused.value, TypeError)
        assert "SSL" in str(refused.value) or "ssl" in str(refused.value).lower()
        # Only an explicit sslmode=disable goes on in clear (refused in production).
        assert await _select_one(f"postgresql://postgres@{host}:{port}/postgres?sslmode=disable")


@pytest.mark.postgres
async def test_sslmode_require_is_understood_not_a_type_error() -> None:
    require("PostgreSQL", PG_HOST, PG_PORT)
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
    assert await _select_one(url + "?sslmode=disable")
    with pytest.raises(Exception) as failed:  # this server has no TLS at all
        await _select_one(url + "?sslmode=require")
    assert not isinstance(failed.value, TypeError)


@pytest.mark.mariadb
async def test_a_mariadb_connection_without_tls_is_refused() -> None:
    require("MariaDB", MY_HOST, MY_PORT)
    async with forwarder(MY_HOST, MY_PORT) as (host, port):
        with pytest.raises(Exception) as refused:
            await _select_one(f"mysql://root@{host}:{port}/mysql")
        assert not isinstance(refused.value, TypeError)
        assert await _select_one(f"mysql://root@{host}:{port}/mysql?sslmode=disable")
