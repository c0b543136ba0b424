"""``bulwark demo``: a complete, self-contained deployment in one folder.

It creates the demo records store, a demo court's signing key and trust store, the state
database with its secrets, a requester and an auditor key, and a freshly signed demo order;
then prints curl commands that work as written. It runs only on its own files: pointing it at
another database or store is refused, so a demo can never touch real patron records.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Mapping
from pathlib import Path

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from app.core.config import BUNDLED_DEMO_MAPPING, BUNDLED_POLICY, Settings
from app.core.files import private_dir

DEMO_ISSUER = "https://courts.example/demo-county"
DEMO_COURT = "Demo County Circuit Court (fictional)"
DEMO_JURISDICTION = "US-DM"
DEMO_KID = "demo-court-2026"
#: The library's own keys in the demo (docs/trust.md): the records custodian, who transcribes
#: paper orders, and counsel, who approves them. Fictional, like everything in the demo.
DEMO_CUSTODIAN = ("https://library.example/demo-custodian", "demo-custodian-2026")
DEMO_COUNSEL = ("https://library.example/demo-counsel", "demo-counsel-2026")
DEMO_PAPER = "demo-paper-order.txt"
#: Settings the demo fixes itself; any of them set in the environment means "not a demo".
GUARDED = (
    "BULWARK_DATABASE_URL",
    "BULWARK_RECORDS_URL",
    "BULWARK_RECORDS_MAPPING",
    "BULWARK_TRUST_STORE",
    "BULWARK_POLICY",
)


class DemoRefused(RuntimeError):
    """The demo would touch something that is not its own."""


class DemoSettings(Settings):
    """Settings built from what the demo chooses only: no ``BULWARK_*`` variable is read.

    A demo started in a shell that holds a production deployment's settings used to inherit
    its pseudonym key, signing key, Redis prefix and host (issue 16).
    """

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def demo_settings(directory: Path, *, port: int = 8080) -> Settings:
    """The settings of the demo deployment in ``directory`` (nothing from the environment)."""
    return DemoSettings(
        data_dir=directory,
        database_url=f"sqlite:///{directory / 'bulwark.db'}",
        records_url=f"sqlite:///{directory / 'demo-records.db'}",
        records_mapping=BUNDLED_DEMO_MAPPING,
        trust_store=directory / "trust-store.json",
        policy=directory / "policy.toml",
        jurisdictions=frozenset({DEMO_JURISDICTION}),
        port=port,
        environment="development",
    )


def _refuse_foreign(directory: Path, environ: Mapping[str, str]) -> None:
    foreign = [name for name in GUARDED if environ.get(name)]
    if foreign:
        raise DemoRefused("`bulwark demo` runs only on its own files; unset " + ", ".join(foreign))
    marker = directory / ".bulwark-demo"
    if directory.exists() and any(directory.iterdir()) and not marker.exists():
        raise DemoRefused(f"{directory} exists and is not a Bulwark demo folder; choose --dir")


def prepare_demo(directory: Path, *, port: int, environ: Mapping[str, str]) -> tuple[Settings, str]:
    """Create (or reuse) the demo in ``directory``; returns its settings and what to print."""
    _refuse_foreign(directory, environ)
    private_dir(directory)  # its state, keys and secrets: this user's only
    (directory / ".bulwark-demo").write_text("This folder holds a Bulwark demo.\n")
    settings = demo_settings(directory, port=port)
    _policy(settings.policy)
    _records(directory)
    private_pem = _issuer(settings)
    _state(settings)
    requester, auditor = _callers(settings)
    permit_token = _token(private_pem, jti_suffix="permit")
    return settings, _instructions(settings, requester, auditor, permit_token)


def _policy(path: Path) -> None:
    """The bundled policy, with the transparency page public so the demo can show it."""
    text = BUNDLED_POLICY.read_text()
    public = text.replace("[transparency]\npublic = false", "[transparency]\npublic = true", 1)
    if public == text:
        raise DemoRefused("the bundled policy has no [transparency] section to make public")
    header = "# The demo's policy: the bundled one, with the transparency page made public.\n"
    path.write_text(header + public)


def _records(directory: Path) -> None:
    from app.records.demo import create_demo_store

    store = directory / "demo-records.db"
    if not store.exists():
        create_demo_store(f"sqlite:///{store}")


def _issuer(settings: Settings) -> bytes:
    from app.orders.issuing import (
        generate_key_pair,
        merge_issuer_into_trust_store,
        write_private_key,
    )

    key_file = settings.data_dir / "demo-court-key.pem"
    custodian_file = settings.data_dir / "demo-custodian-key.pem"
    counsel_file = settings.data_dir / "demo-counsel-key.pem"
    paper = settings.data_dir / DEMO_PAPER
    assert settings.trust_store is not None
    made = (key_file, custodian_file, counsel_file, settings.trust_store, paper)
    if all(path.exists() for path in made):
        return key_file.read_bytes()
    for stale in made:
        stale.unlink(missing_ok=True)
    pem, jwk = generate_key_pair("ES256", DEMO_KID)
    write_private_key(key_file, pem)
    merge_issuer_into_trust_store(
        settings.trust_store, DEMO_ISSUER, DEMO_COURT, [DEMO_JURISDICTION], jwk
    )
    for path, (iss, kid), section, role, name in (
        (custodian_file, DEMO_CUSTODIAN, "issuers", "custodian", "Demo library custodian"),
        (counsel_file, DEMO_COUNSEL, "counsel", None, "Demo library counsel"),
    ):
        private, public = generate_key_pair("ES256", kid)
        write_private_key(path, private)
        merge_issuer_into_trust_store(
            settings.trust_store,
            iss,
            name,
            [DEMO_JURISDICTION],
            public,
            section="counsel" if section == "counsel" else "issuers",
            role=role,
        )
    # What the custodian scans: a stand-in for the court's signed paper order.
    paper.write_text(
        "Demo County Circuit Court (fictional)\nCase DEMO-2026-CR-0002: order for the "
        "circulation and holds records of the patron named in the sealed schedule, 2026-01-01 "
        "to 2026-06-30, on good cause shown. Signed by the (fictional) judge.\n"
    )
    return pem


def _state(settings: Settings) -> None:
    from app.core import migrations
    from app.core.secrets import ensure_instance_secrets

    migrations.upgrade(settings.state_url)
    ensure_instance_secrets(settings)


def _callers(settings: Settings) -> tuple[str, str]:
    """New keys for the demo's requester and auditor (old demo keys are revoked first)."""
    import asyncio

    from app.admin.clients import add_client, revoke_client
    from app.audit.writer import AuditWriter
    from app.callers.models import Role
    from app.callers.service import list_clients
    from app.core.database import create_engine

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")

    async def go() -> tuple[str, str]:
        engine = create_engine(settings.state_url)
        writer = AuditWriter(engine)
        writer.start()
        try:
            for client in await list_clients(engine):
                if client.revoked_at is None and client.name.startswith("demo-"):
                    await revoke_client(engine, client.name, audit=writer)
            _, requester = await add_client(
                engine, f"demo-requester-{stamp}", Role.REQUESTER, audit=writer
            )
            _, auditor = await add_client(
                engine, f"demo-auditor-{stamp}", Role.AUDITOR, audit=writer
            )
            return requester, auditor
        finally:
            await writer.close()
            await engine.dispose()

    return asyncio.run(go())


def _token(private_pem: bytes, *, jti_suffix: str) -> str:
    from app.orders.issuing import issue_order, make_claims
    from app.records.demo import DEMO_PATRON

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    claims = make_claims(
        iss=DEMO_ISSUER,
        court=DEMO_COURT,
        jurisdiction=DEMO_JURISDICTION,
        case="DEMO-2026-CR-0001",
        jti=f"demo-{stamp}-{jti_suffix}",
        patrons=[DEMO_PATRON],
        categories=["circulation", "holds"],
        period=("2026-01-01", "2026-06-30"),
        lifetime_days=30,
        max_uses=3,
    )
    return issue_order(claims, private_pem, DEMO_KID, "ES256")


def _curl(url: str, key: str, body: Mapping[str, object] | None = None) -> str:
    parts = ["curl", "-sS", "-H", f"Authorization: Bearer {key}"]
    if body is not None:
        parts += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    return " ".join(shlex.quote(p) for p in [*parts, url])


def _instructions(settings: Settings, requester: str, auditor: str, token: str) -> str:
    from app.records.demo import DEMO_PATRON, OTHER_PATRON

    base = f"http://{settings.host}:{settings.port}"
    body: dict[str, object] = {
        "purpose": "legal_process",
        "patron_id": DEMO_PATRON,
        "categories": ["circulation"],
        "from": "2026-01-01",
        "to": "2026-06-30",
        "court_order": token,
    }
    denied = {**body, "patron_id": OTHER_PATRON}
    lines = [
        f"Bulwark demo in {settings.data_dir} (fictional data only).",
        "",
        f"# 1. Permitted (the order allows 3 disclosures of {DEMO_PATRON}'s circulation, holds):",
        _curl(f"{base}/v1/disclosures", requester, body),
        "",
        "# 2. Denied with scope.patron (the order does not name this patron):",
        _curl(f"{base}/v1/disclosures", requester, denied),
        "",
        "# 3. The audit log verifies:",
        _curl(f"{base}/v1/audit/verify", auditor),
        "",
        f"# 4. The public transparency report: open {base}/transparency in a browser.",
        "",
        f"requester key: {requester}",
        f"auditor key:   {auditor}",
        "",
    ]
    return "\n".join(lines)
