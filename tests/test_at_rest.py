"""Nothing at rest names a patron beside a pseudonym, and private files stay private (issue 16).

Notices and legal holds keep the patron id sealed (AES-SIV under a key derived from the
instance's pseudonym key, outside the database); the SQLite state file, its directory, audit
exports, the demo's folder and the topology's ``topology.json`` are this user's only. A state
database made by the previous release (clear ids, events, a checkpoint, uses, revocations)
goes through the upgrade and keeps everything.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from app.audit import service as audit_service
from app.cli import main
from app.core import migrations
from app.core.atrest import PREFIX, PatronSealer, SealBroken, clear_ids_left
from app.core.config import Settings
from app.core.database import create_engine
from app.core.models import table_of
from app.core.secrets import checkpoint_key, ensure_instance_secrets, pseudonym_key
from app.demo import demo_settings
from app.holds.models import LegalHold
from app.notices.models import Notice
from app.records.demo import DEMO_PATRON
from app.runtime import Runtime, build_runtime
from app.schema import SEALED
from tests.conftest import COURT_ISS, auth
from tests.factories import disclosure_body
from tests.previous_release import write_events

Token = Callable[..., str]
NOTICES = table_of(Notice)
HOLDS = table_of(LegalHold)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


body = disclosure_body


async def stored_patrons(runtime: Runtime) -> list[str]:
    async with runtime.state.connect() as conn:
        notices = (await conn.execute(select(NOTICES.c.patron_id))).scalars().all()
        holds = (await conn.execute(select(HOLDS.c.patron_id))).scalars().all()
    return [*notices, *holds]


async def test_notices_and_holds_hold_the_patron_sealed(
    client: httpx.AsyncClient, keys: dict[str, str], order_token: Token, runtime: Runtime
) -> None:
    token = order_token(patrons=[DEMO_PATRON])
    r = await client.post("/v1/disclosures", json=body(token), headers=auth(keys["requester"]))
    assert r.status_code == 200, r.text
    stored = await stored_patrons(runtime)
    assert len(stored) == 2  # one notice, one hold
    assert all(v.startswith(PREFIX) and DEMO_PATRON not in v for v in stored)
    if runtime.settings.state_url.startswith("sqlite"):
        db = Path(runtime.settings.state_url.removeprefix("sqlite:///"))
        for path in db.parent.glob(db.name + "*"):  # the file, its WAL and shared memory
            assert DEMO_PATRON.encode() not in path.read_bytes(), path.name
    # Those who must see the id still do, through the API.
    due = await client.get("/v1/notices/due", headers=auth(keys["notifier"]))
    assert [n["patron_id"] for n in due.json()["notices"]] == [DEMO_PATRON]
    holds = await client.get(
        "/v1/legal-holds", params={"patron_id": DEMO_PATRON}, headers=auth(keys["auditor"])
    )
    assert [h["patron_id"] for h in holds.json()["holds"]] == [DEMO_PATRON]
    # The same patron under the same order is still one hold (the seal is deterministic).
    again = await client.post("/v1/decisions", json=body(token), headers=auth(keys["requester"]))
    assert again.status_code == 200
    assert len(await stored_patrons(runtime)) == 2


def test_the_database_alone_does_not_open_a_seal() -> None:
    mine, other = PatronSealer(b"k" * 16 + os.urandom(16)), PatronSealer(os.urandom(32))
    sealed = mine.seal("P000123")
    assert mine.open(sealed) == "P000123" and sealed == mine.seal("P000123")
    with pytest.raises(SealBroken):
        other.open(sealed)
    with pytest.raises(SealBroken):
        mine.open(sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB"))


# --------------------------------------------------------------------------- in-place upgrade


async def _previous_release_state(settings: Settings) -> dict[str, Any]:
    """A state database as release 0004 left it: events, a checkpoint, uses, revocations,
    and a notice and a hold naming the patron in clear."""
    await asyncio.to_thread(migrations.upgrade, settings.state_url, "0004")
    ensure_instance_secrets(settings)
    engine = create_engine(settings.state_url)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    async with engine.begin() as conn:
        await write_events(
            conn,
            [
                (start + dt.timedelta(seconds=i), "evaluation", "deny", {"reasons": [], "n": i})
                for i in range(5)
            ],
        )
    checkpoint = await audit_service.make_checkpoint(engine, checkpoint_key(settings))
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO order_uses (iss, jti, uses, max_uses, first_used_at, last_used_at) "
                "VALUES (:iss, 'used', 2, 3, :now, :now)"
            ),
            {"iss": COURT_ISS, "now": now},
        )
        await conn.execute(
            text(
                "INSERT INTO order_revocations (iss, jti, reason, revoked_by, revoked_at) "
                "VALUES (:iss, 'gone', 'vacated', 'admin', :now)"
            ),
            {"iss": COURT_ISS, "now": now},
        )
        await conn.execute(
            NOTICES.insert().values(
                id=str(uuid.uuid4()),
                disclosure_id=str(uuid.uuid4()),
                patron_id=DEMO_PATRON,
                iss=COURT_ISS,
                jti="used",
                case="2026-CR-1",
                court="Circuit Court of Cook County",
                instrument="court_order",
                categories='["circulation"]',
                period_from=dt.date(2026, 1, 1),
                period_to=dt.date(2026, 6, 30),
                not_before=today,
                created_at=now,
            )
        )
        await conn.execute(
            HOLDS.insert().values(
                iss=COURT_ISS,
                jti="used",
                patron_id=DEMO_PATRON,
                categories='["circulation"]',
                period_from=dt.date(2026, 1, 1),
                period_to=dt.date(2026, 6, 30),
                held_until=now + dt.timedelta(days=400),
                created_at=now,
            )
        )
    await engine.dispose()
    return checkpoint


def _cli(settings: Settings, *args: str) -> Result:
    env = {
        "BULWARK_DATA_DIR": str(settings.data_dir),
        "BULWARK_DATABASE_URL": settings.state_url,
        "BULWARK_RECORDS_URL": settings.store_url,
        "BULWARK_TRUST_STORE": str(settings.trust_store),
        "BULWARK_JURISDICTIONS": "US-IL",
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


async def test_an_upgraded_database_keeps_everything_and_seals_clear_ids(
    settings: Settings, tmp_path: Path
) -> None:
    checkpoint = await _previous_release_state(settings)
    upgraded = await asyncio.to_thread(_cli, settings, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "sealed 2 patron ids" in upgraded.output
    runtime = await build_runtime(settings)
    try:
        assert await clear_ids_left(runtime.state, SEALED) == 0
        stored = await stored_patrons(runtime)
        assert all(DEMO_PATRON not in v for v in stored)
        sealer = PatronSealer(pseudonym_key(settings))
        assert {sealer.open(v) for v in stored} == {DEMO_PATRON}
        # The chain, the old signed checkpoint, the uses and the revocations are all kept.
        assert (await audit_service.verify_chain(runtime.state)).ok
        public = checkpoint_key(settings).public_key()
        assert (await audit_service.verify_since(runtime.state, checkpoint, public)).ok
        async with runtime.state.connect() as conn:
            uses = (await conn.execute(text("SELECT uses FROM order_uses"))).scalar_one()
            revoked = (await conn.execute(text("SELECT jti FROM order_revocations"))).scalar_one()
        assert (uses, revoked) == (2, "gone")
    finally:
        await runtime.close()


async def test_a_start_seals_what_an_old_replica_left_in_clear(settings: Settings) -> None:
    await _previous_release_state(settings)
    await asyncio.to_thread(migrations.upgrade, settings.state_url)  # schema only, no key
    runtime = await build_runtime(settings)
    try:
        assert await clear_ids_left(runtime.state, SEALED) == 0
    finally:
        await runtime.close()


# --------------------------------------------------------------------------- file modes


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_db_upgrade_makes_the_state_file_and_its_folder_private(settings: Settings) -> None:
    default = settings.model_copy(update={"database_url": ""})
    os.umask(0o022)
    result = _cli(default, "db", "upgrade")
    assert result.exit_code == 0, result.output
    state = default.data_dir / "bulwark.db"
    assert mode(default.data_dir) == 0o700
    assert mode(state) == 0o600
    for sibling in default.data_dir.glob("bulwark.db-*"):
        assert mode(sibling) == 0o600, sibling.name


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_an_old_world_readable_state_file_is_tightened(settings: Settings) -> None:
    default = settings.model_copy(update={"database_url": ""})
    default.data_dir.mkdir(mode=0o755)
    state = default.data_dir / "bulwark.db"
    state.touch(mode=0o644)
    state.chmod(0o644)
    assert _cli(default, "db", "upgrade").exit_code == 0
    assert (mode(default.data_dir), mode(state)) == (0o700, 0o600)


def test_audit_export_is_private(settings: Settings, tmp_path: Path) -> None:
    assert _cli(settings, "db", "upgrade").exit_code == 0
    out = tmp_path / "export.jsonl"
    out.write_text("")
    out.chmod(0o644)  # even over an existing, readable file
    assert _cli(settings, "audit", "export", "-o", str(out)).exit_code == 0
    assert mode(out) == 0o600


def test_the_demo_folder_is_private_and_ignores_production_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inherited = {
        "BULWARK_PSEUDONYM_KEY": "p" * 8 + "roduction-pseudonym-key-0123456789",
        "BULWARK_SIGNING_KEY_FILE": str(tmp_path / "production-checkpoint.pem"),
        "BULWARK_REDIS_PREFIX": "production:rl",
        "BULWARK_HOST": "0.0.0.0",
        "BULWARK_RATE_LIMIT_BACKEND": "redis",
        "BULWARK_REDIS_URL": "redis://production.example:6379/0",
    }
    for name, value in inherited.items():
        monkeypatch.setenv(name, value)
    settings = demo_settings(tmp_path / "demo")
    assert settings.pseudonym_key is None
    assert settings.signing_key_file is None
    assert (settings.redis_prefix, settings.host) == ("bulwark:rl", "127.0.0.1")
    assert settings.rate_limit_backend == "database" and settings.redis_url is None
    result = CliRunner().invoke(
        main, ["demo", "--dir", str(tmp_path / "demo"), "--no-serve"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "demo"
    assert mode(folder) == 0o700
    assert mode(folder / "bulwark.db") == 0o600
    assert not (tmp_path / "production-checkpoint.pem").exists()
    assert json.loads((folder / "trust-store.json").read_text())["issuers"]
