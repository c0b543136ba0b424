"""Least privilege in the shipped deployment (issue 16): an append-only log role checked by
readyz, secrets from files, verification with the public key alone, and `db upgrade` that
will not move into another application's database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.cli import main
from app.core.config import Settings
from app.core.database import create_engine
from app.main import create_app
from app.records.demo import DEMO_PATRON
from app.runtime import build_runtime
from tests.conftest import auth, migrate
from tests.databases import PG_HOST, PG_PORT, PG_USER, postgres_database
from tests.factories import disclosure_body
from tests.servers import cli_env

Token = Callable[..., str]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
async def app_login(pg_url: str) -> AsyncIterator[str]:
    """The state URL as the replicas use it: a login in bulwark_app (after the migration)."""
    from app.core import migrations

    await asyncio.to_thread(migrations.upgrade, pg_url)
    user = f"bulwark_test_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE ROLE "{user}" LOGIN IN ROLE bulwark_app')
    try:
        yield make_url(pg_url).set(username=user).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP OWNED BY "{user}"')  # nothing, but the role must own nothing
        await _admin(f'DROP ROLE IF EXISTS "{user}"')


body = disclosure_body


@pytest.mark.postgres
async def test_the_log_role_may_append_but_not_update_or_delete(app_login: str) -> None:
    engine = create_engine(app_login)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit_events (seq, ts, kind, effect, body, prev_hash, hash) "
                    "VALUES (1, now(), 'evaluation', 'deny', '{}', :z, :h)"
                ),
                {"z": "0" * 64, "h": "1" * 64},
            )
        for statement in (
            "UPDATE audit_events SET effect = 'permit' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 1",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(Exception, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT effect FROM audit_events"))).scalar_one()
        assert kept == "deny"
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_readyz_refuses_a_replica_that_could_rewrite_the_log(
    make_settings: Callable[..., Settings], pg_url: str, app_login: str, order_token: Token
) -> None:
    owner = make_settings(database_url=pg_url, environment="production")
    await migrate(owner)
    service = make_settings(database_url=app_login, environment="production")
    for settings, ready in ((owner, False), (service, True)):
        runtime = await build_runtime(settings)
        app = create_app(runtime=runtime)
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    from app.admin.clients import add_client
                    from app.callers.models import Role

                    _, admin = await add_client(
                        runtime.state,
                        f"admin-{uuid.uuid4().hex[:6]}",
                        Role.ADMIN,
                        audit=runtime.audit,
                    )
                    _, requester = await add_client(
                        runtime.state,
                        f"req-{uuid.uuid4().hex[:6]}",
                        Role.REQUESTER,
                        audit=runtime.audit,
                    )
                    r = await c.get("/readyz", headers=auth(admin))
                    check = r.json()["checks"]["audit_log"]
                    assert (r.status_code == 200) is ready, r.text
                    assert check["append_only"] is ready and check["ok"] is ready
                    # The service role does everything Bulwark does: decide, disclose, verify.
                    token = order_token(patrons=[DEMO_PATRON])
                    d = await c.post("/v1/disclosures", json=body(token), headers=auth(requester))
                    assert d.status_code == 200, d.text
                    v = await c.get("/v1/audit/verify", headers=auth(admin))
                    assert v.status_code == 200 and v.json()["ok"], v.text
        finally:
            await runtime.close()


# --------------------------------------------------------------------------- CLI


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_audit_verify_since_needs_only_the_public_key(settings: Settings, tmp_path: Path) -> None:
    env = cli_env(settings)
    assert run(env, "db", "upgrade").exit_code == 0
    checkpoint = run(env, "audit", "checkpoint")
    assert checkpoint.exit_code == 0
    saved = tmp_path / "checkpoint.json"
    saved.write_text(checkpoint.stdout)
    public = tmp_path / "checkpoint.pub.pem"
    public.write_text(json.loads(checkpoint.stdout)["public_key"])
    # An auditor's machine: no private key anywhere.
    auditor = {**env, "BULWARK_SIGNING_KEY_FILE": str(tmp_path / "no-such-key.pem")}
    ok = run(auditor, "audit", "verify", "--since", str(saved), "--public-key", str(public))
    assert ok.exit_code == 0, ok.output
    # A different public key does not verify the checkpoint.
    from cryptography.hazmat.primitives.asymmetric import ec

    other = tmp_path / "other.pub.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    bad = run(auditor, "audit", "verify", "--since", str(saved), "--public-key", str(other))
    assert bad.exit_code == 1 and "signature does not verify" in bad.output


async def test_db_upgrade_refuses_a_database_holding_other_tables(settings: Settings) -> None:
    engine = create_engine(settings.state_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE borrowers (borrowernumber INTEGER PRIMARY KEY)"))
    await engine.dispose()
    env = cli_env(settings)
    refused = await asyncio.to_thread(run, env, "db", "upgrade")
    assert refused.exit_code != 0 and "borrowers" in refused.output
    assert "--allow-foreign-tables" in refused.output
    told = await asyncio.to_thread(run, env, "db", "upgrade", "--allow-foreign-tables")
    assert told.exit_code == 0, told.output


def test_secret_settings_are_read_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import new_secret

    key = new_secret()
    secret = tmp_path / "pseudonym_key"
    secret.write_text(key + "\n")
    monkeypatch.setenv("BULWARK_PSEUDONYM_KEY_FILE", str(secret))
    monkeypatch.setenv("BULWARK_DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(Exception, match="BULWARK_DATABASE_URL_FILE"):
        Settings()
    monkeypatch.delenv("BULWARK_DATABASE_URL_FILE")
    settings = Settings()
    assert settings.pseudonym_key is not None
    assert settings.pseudonym_key.get_secret_value() == key
