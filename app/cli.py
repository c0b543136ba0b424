"""The ``bulwark`` command line (docs/cli.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from app.api.console import load_settings, run_async
from app.core.config import Settings

_run = run_async


@click.group()
@click.version_option(package_name="bulwark-gatekeeper")
def main() -> None:
    """Bulwark: releases library patron records only under a valid court order."""


# --------------------------------------------------------------------------- serve


def preflight(settings: Settings) -> None:
    """Build and close a runtime: every start-up check, with a clear message on failure."""
    from app.core.startup import StartupError
    from app.ratelimit import start_limiter
    from app.runtime import build_runtime

    async def check() -> None:
        runtime = await build_runtime(settings)
        try:
            await (await start_limiter(runtime)).close()
        finally:
            await runtime.close()

    try:
        _run(check())
    except StartupError as exc:
        raise click.ClickException(f"refusing to start: {exc}") from None


@main.command()
@click.option("--host", default=None, help="Interface to bind (BULWARK_HOST).")
@click.option("--port", type=int, default=None, help="Port (BULWARK_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (BULWARK_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the service with uvicorn."""
    settings = load_settings(host=host, port=port, workers=workers)
    preflight(settings)
    _serve(settings)


def _serve(settings: Settings) -> None:
    import uvicorn

    from app.core.logging import configure_logging

    configure_logging()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        # Slow clients: idle keep-alive connections are closed; a request must arrive whole
        # within BULWARK_CLIENT_TIMEOUT_SECONDS and its headers stay under
        # BULWARK_MAX_HEADER_BYTES (app/ratelimit/slow_clients.py).
        http="app.ratelimit.slow_clients:GuardedHttpToolsProtocol",
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
    )


# --------------------------------------------------------------------------- records


@main.group()
def records() -> None:
    """The records store."""


@records.command("check")
def records_check() -> None:
    """Check the mapping against the live store, as start-up does (exit 0, or 1 and why).

    Run it with Bulwark's own settings and account after every upgrade of the library
    system: it reads only what SELECT on the mapped tables or views allows.
    """
    import httpx

    from app.core.database import redact
    from app.core.startup import StartupError
    from app.policy.models import PolicyError, load_policy
    from app.records.mapping import MappingError, load_mapping, validate_against_policy
    from app.runtime import open_records_store

    settings = load_settings()
    try:
        policy = load_policy(settings.policy)
        mapping = load_mapping(settings.records_mapping)
        validate_against_policy(mapping, policy.policy.forbidden_fields())
    except (PolicyError, MappingError) as exc:
        click.echo(f"records check failed: {exc}", err=True)
        sys.exit(1)

    async def check() -> None:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as http:
            store = await open_records_store(settings, mapping, http)
            await store.close()

    try:
        _run(check())
    except StartupError as exc:
        click.echo(f"records check failed: {exc}", err=True)
        sys.exit(1)
    names = ", ".join(c.value for c in mapping.categories)
    click.echo(
        f"records store {redact(settings.store_url)} matches {settings.records_mapping} "
        f"({len(mapping.categories)} categories: {names}; time zone {settings.clock.name})"
    )


# --------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """The state database."""


@db.command("upgrade")
@click.option(
    "--allow-foreign-tables",
    is_flag=True,
    help="Migrate even though the database holds tables that are not Bulwark's.",
)
def db_upgrade(allow_foreign_tables: bool) -> None:
    """Migrate the state database to this version, and create missing instance secrets."""
    from app.audit.service import EVENTS
    from app.core import migrations
    from app.core.database import create_engine, redact
    from app.core.files import private_dir
    from app.core.instance import InstanceMismatch, prepare_secrets
    from app.core.secrets import SecretsError
    from app.schema import target_metadata

    settings = load_settings()
    private_dir(settings.data_dir)  # state file and secrets: this user's only (0700)
    foreign = _run(migrations.foreign_tables(settings.state_url, target_metadata.tables))
    if foreign and not allow_foreign_tables:
        # Pointed at the records store (or any other application's database) by mistake,
        # the upgrade would add Bulwark's tables, patron pseudonyms included, to it.
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise click.ClickException(
            f"{redact(settings.state_url)} holds tables that are not Bulwark's ({shown}): is "
            "BULWARK_DATABASE_URL the records store? Give Bulwark a database of its own, or "
            "pass --allow-foreign-tables if this is intended"
        )
    try:
        migrations.upgrade(settings.state_url)
    except Exception as exc:
        raise click.ClickException(
            f"could not migrate {redact(settings.state_url)}: {type(exc).__name__}"
        ) from None

    async def secrets() -> list[str]:
        engine = create_engine(settings.state_url)
        try:
            return await prepare_secrets(settings, engine, EVENTS)
        finally:
            await engine.dispose()

    try:
        created = _run(secrets())
    except (InstanceMismatch, SecretsError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in created:
        click.echo(f"created {path} (mode 0600)")
    sealed = _run(_seal_at_rest(settings))
    if sealed:
        click.echo(f"sealed {sealed} patron ids held in clear by notices and legal holds")
    click.echo(f"state database {redact(settings.state_url)} at {migrations.head_revision()}")


async def _seal_at_rest(settings: Settings) -> int:
    from app.core.atrest import PatronSealer, seal_existing
    from app.core.database import create_engine
    from app.core.secrets import pseudonym_key
    from app.schema import SEALED

    engine = create_engine(settings.state_url)
    try:
        return await seal_existing(engine, PatronSealer(pseudonym_key(settings)), SEALED)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- clients


@main.group()
def clients() -> None:
    """API keys of the library systems that call Bulwark."""


def _state_and_audit(settings: Settings) -> Any:
    from app.audit.writer import AuditWriter
    from app.core.database import create_engine

    engine = create_engine(settings.state_url)
    writer = AuditWriter(engine)
    writer.start()
    return engine, writer


@clients.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["requester", "auditor", "admin", "notifier", "records_admin"]),
    required=True,
)
def clients_add(name: str, role: str) -> None:
    """Create a caller and print its key once (only its hash is kept)."""
    from app.admin.clients import ClientExists, add_client
    from app.callers.models import Role

    settings = load_settings()

    async def go() -> str:
        engine, writer = _state_and_audit(settings)
        try:
            _, key = await add_client(engine, name, Role(role), audit=writer)
            return key
        finally:
            await writer.close()
            await engine.dispose()

    try:
        key = _run(go())
    except ClientExists as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key)
    click.echo(f"# key for {name!r} ({role}); shown once, store it now", err=True)


@clients.command("list")
def clients_list() -> None:
    """List callers (never their keys)."""
    from app.callers.service import list_clients
    from app.core.database import create_engine

    settings = load_settings()

    async def go() -> list[Any]:
        engine = create_engine(settings.state_url)
        try:
            return await list_clients(engine)
        finally:
            await engine.dispose()

    for c in _run(go()):
        state = f"revoked {c.revoked_at.isoformat()}" if c.revoked_at else "active"
        click.echo(f"{c.name}\t{c.role}\t{c.key_prefix}…\t{state}")


@clients.command("revoke")
@click.argument("name")
def clients_revoke(name: str) -> None:
    """Revoke a caller's key; refused at once by every process."""
    from app.admin.clients import ClientNotFound, revoke_client

    settings = load_settings()

    async def go() -> None:
        engine, writer = _state_and_audit(settings)
        try:
            await revoke_client(engine, name, audit=writer)
        finally:
            await writer.close()
            await engine.dispose()

    try:
        _run(go())
    except ClientNotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {name}")


# --------------------------------------------------------------------------- orders, keys


def _register_order_tools() -> None:
    from app.orders.cli import keys, orders

    @orders.command("revoke")
    @click.argument("iss")
    @click.argument("jti")
    @click.option("--reason", required=True, help="Why (recorded in the audit log).")
    @click.option(
        "--pre-emptive",
        is_flag=True,
        help="Revoke an order Bulwark has never been shown (refused otherwise).",
    )
    def orders_revoke(iss: str, jti: str, reason: str, pre_emptive: bool) -> None:
        """Revoke an order; every replica refuses it from now on."""
        from app.admin.revocations import OrderNeverSeen, revoke_order

        settings = load_settings()

        async def go() -> bool:
            engine, writer = _state_and_audit(settings)
            try:
                result = await revoke_order(
                    writer,
                    engine,
                    iss=iss,
                    jti=jti,
                    reason=reason,
                    by="cli",
                    caller_id=None,
                    pre_emptive=pre_emptive,
                )
                return result.already_revoked
            finally:
                await writer.close()
                await engine.dispose()

        try:
            already = _run(go())
        except OrderNeverSeen as exc:
            raise click.ClickException(f"{exc.detail} ({exc.reasons[0].value})") from None
        click.echo(f"revoked {jti}" + (" (already revoked)" if already else ""))

    main.add_command(keys)
    main.add_command(orders)


_register_order_tools()


# --------------------------------------------------------------------------- audit


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option(
    "--since",
    "since",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint saved earlier that the log must still extend.",
)
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The deployment's checkpoint PUBLIC key (PEM), for --since: an auditor needs no "
    "private key. Default: derived from the deployment's own signing key.",
)
def audit_verify(since: Path | None, public_key: Path | None) -> None:
    """Recompute the whole hash chain from genesis; exit 0 when intact, 1 when not.

    The full recomputation (GET /v1/audit/verify goes on from the last verified event).
    """
    from app.audit import service
    from app.core.database import create_engine
    from app.core.secrets import SecretsError, checkpoint_key

    settings = load_settings()

    def key() -> Any:
        if public_key is None:
            return checkpoint_key(settings).public_key()
        return service.load_public_key(public_key.read_bytes())

    async def go() -> service.VerifyResult:
        engine = create_engine(settings.state_url)
        try:
            if since is None:
                return await service.verify_chain(engine, tz=settings.clock.tz)
            document = json.loads(await asyncio.to_thread(since.read_text))
            return await service.verify_since(engine, document, key(), settings.clock.tz)
        finally:
            await engine.dispose()

    try:
        result = _run(go())
    except (service.CheckpointInvalid, SecretsError, json.JSONDecodeError) as exc:
        click.echo(f"checkpoint rejected: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(result.as_json(), indent=2))
    if not result.ok:
        click.echo(f"audit log BROKEN at seq {result.first_bad_seq}: {result.problem}", err=True)
        sys.exit(1)


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Print a signed checkpoint of the head (save it for `verify --since`)."""
    from app.audit import service
    from app.core.database import create_engine
    from app.core.secrets import checkpoint_key

    settings = load_settings()

    async def go() -> dict[str, Any]:
        engine = create_engine(settings.state_url)
        try:
            return await service.make_checkpoint(engine, checkpoint_key(settings))
        finally:
            await engine.dispose()

    click.echo(json.dumps(_run(go()), indent=2))


@audit.command("public-key")
@click.option("--fingerprint", is_flag=True, help="Print only the key's SHA-256 fingerprint.")
def audit_public_key(fingerprint: bool) -> None:
    """The checkpoint key's public half (PEM), or its SHA-256 fingerprint to pin out of band.

    Give the fingerprint to auditors on paper or another channel the database's administrator
    does not control: a checkpoint verifies only against the pinned key (docs/auditors.md).
    """
    import hashlib

    from cryptography.hazmat.primitives import serialization

    from app.core.secrets import SecretsError, checkpoint_key

    try:
        public = checkpoint_key(load_settings()).public_key()
    except SecretsError as exc:
        raise click.ClickException(str(exc)) from None
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if fingerprint:
        click.echo(hashlib.sha256(der).hexdigest())
        return
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    click.echo(pem.decode("ascii"), nl=False)


def _register_log_tools() -> None:
    from app.audit.log_cli import register

    register(main, audit)


_register_log_tools()


@audit.command("export")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day included."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("-"),
    help="File to write (created 0600), or - for standard output.",
)
def audit_export(start: dt.datetime | None, end: dt.datetime | None, output: Path) -> None:
    """Write events as JSON Lines (each with its canonical body, to re-verify)."""
    from app.core.files import open_private

    if str(output) == "-":
        _export(start, end, sys.stdout)
        return
    with open_private(output) as handle:  # the log's events: this user's only
        _export(start, end, handle)


def _export(start: dt.datetime | None, end: dt.datetime | None, output: Any) -> None:
    from app.audit import service
    from app.core.database import create_engine

    settings = load_settings()
    lo = start.replace(tzinfo=dt.UTC) if start else None
    hi = (end.replace(tzinfo=dt.UTC) + dt.timedelta(days=1)) if end else None

    async def go() -> int:
        engine = create_engine(settings.state_url)
        count = 0
        try:
            async for event in service.export_events(engine, start=lo, end=hi):
                output.write(json.dumps(event, sort_keys=True) + "\n")
                count += 1
        finally:
            await engine.dispose()
        return count

    count = _run(go())
    click.echo(f"exported {count} events", err=True)


# --------------------------------------------------------------------------- report


@main.group()
def report() -> None:
    """Reports computed from the audit log."""


@report.command("transparency")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day included."
)
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
@click.option("--output", "-o", type=click.File("w"), default="-")
def report_transparency(
    start: dt.datetime | None, end: dt.datetime | None, fmt: str, output: Any
) -> None:
    """The transparency report (as GET /v1/transparency), banded as the policy says."""
    from app.core.database import create_engine
    from app.core.problems import RequestInvalid
    from app.policy.models import PolicyError, load_policy
    from app.transparency import service
    from app.transparency.router import period

    settings = load_settings()
    try:
        policy = load_policy(settings.policy)
    except PolicyError as exc:
        raise click.ClickException(f"policy invalid: {exc}") from None
    try:
        first, last = period(
            start.date() if start else None, end.date() if end else None, settings.clock
        )
    except RequestInvalid:
        raise click.ClickException("--to is before --from") from None

    async def go() -> dict[str, Any]:
        engine = create_engine(settings.state_url)
        try:
            return await service.build_report(
                engine, policy, start=first, end=last, today=settings.clock.today()
            )
        finally:
            await engine.dispose()

    result = _run(go())
    output.write(service.to_csv(result) if fmt == "csv" else json.dumps(result, indent=2) + "\n")


# --------------------------------------------------------------------------- demo


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bulwark-demo"),
    show_default=True,
    help="The demo's own files.",
)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare and print, but do not start serving.")
def demo(directory: Path, port: int, no_serve: bool) -> None:
    """Create a demo store, issuer, keys and token, print curl commands, and serve."""
    from app.demo import DemoRefused, prepare_demo

    try:
        settings, text = prepare_demo(directory.resolve(), port=port, environ=os.environ)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text)
    if no_serve:
        return
    preflight(settings)
    # The worker processes read their settings from the environment: hand them exactly
    # what the demo chose, and nothing a production shell left there (issue 16).
    for name in [n for n in os.environ if n.upper().startswith("BULWARK_")]:
        del os.environ[name]
    chosen = settings.model_dump(mode="json", include=settings.model_fields_set)
    for name, value in chosen.items():
        os.environ[f"BULWARK_{name.upper()}"] = (
            ",".join(sorted(value)) if isinstance(value, list) else str(value)
        )
    _serve(settings)


if __name__ == "__main__":  # pragma: no cover
    main()
