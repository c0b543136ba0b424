"""Command line for the audit log's Merkle tree and for witnesses (hooked into app/cli.py).

``bulwark audit log-checkpoint | log-key | prove | verify-proof`` and
``bulwark witness keygen | run``. ``verify-proof`` needs no settings and no database: only
the proof file, the log's public key and, to insist on witnesses, theirs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click


def _vkey(value: str) -> Any:
    from app.audit.notes import NoteInvalid, Verifier

    text = Path(value).read_text("utf-8").strip() if Path(value).is_file() else value
    try:
        return Verifier.parse(text)
    except NoteInvalid as exc:
        raise click.BadParameter(str(exc)) from None


def register(main: click.Group, audit: click.Group) -> None:
    """Add the tree's commands to ``bulwark audit`` and the ``bulwark witness`` group."""
    from app.api.console import load_settings
    from app.api.console import run_async as _run

    def log_config() -> Any:
        from app.core.secrets import SecretsError
        from app.policy.models import PolicyError, load_policy
        from app.runtime import tlog_config

        settings = load_settings()
        try:
            return settings, tlog_config(settings, load_policy(settings.policy))
        except (SecretsError, PolicyError) as exc:
            raise click.ClickException(str(exc)) from None

    @audit.command("log-checkpoint")
    def log_checkpoint() -> None:
        """Sign a checkpoint of the Merkle tree now (C2SP signed note) and print it."""
        from app.audit import tlog
        from app.core.database import create_engine
        from app.core.problems import BulwarkError

        settings, config = log_config()

        async def go() -> str:
            engine = create_engine(settings.state_url)
            try:
                return (await tlog.sign_checkpoint(engine, config)).full
            finally:
                await engine.dispose()

        try:
            click.echo(_run(go()), nl=False)
        except BulwarkError as exc:
            raise click.ClickException(exc.detail) from None

    @audit.command("log-key")
    def log_key() -> None:
        """Print the log's public key (C2SP verifier key) to publish and give to witnesses."""
        _, config = log_config()
        click.echo(config.verifier.vkey)

    @audit.command("log-keygen")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
    def log_keygen(out: Path) -> None:
        """Create a Merkle tree checkpoint key (Ed25519, mode 0600) for BULWARK_LOG_KEY_FILE."""
        from app.core.secrets import new_ed25519_pem, write_private

        try:
            write_private(out, new_ed25519_pem())
        except FileExistsError:
            raise click.ClickException(f"{out} exists; not overwritten") from None
        click.echo(f"wrote {out}; set BULWARK_LOG_KEY_FILE={out} on every replica")

    @audit.command("prove")
    @click.option("--seq", type=click.IntRange(min=1), help="Inclusion proof of this event.")
    @click.option("--size", type=click.IntRange(min=1), help="Against this checkpoint's size.")
    @click.option("--old", type=click.IntRange(min=0), help="Consistency proof from this size…")
    @click.option("--new", type=click.IntRange(min=1), help="…to this one.")
    def prove(seq: int | None, size: int | None, old: int | None, new: int | None) -> None:
        """Print an inclusion (--seq [--size]) or consistency (--old --new) proof as JSON."""
        from app.audit import tlog
        from app.core.database import create_engine
        from app.core.problems import BulwarkError

        if (seq is None) == (old is None or new is None):
            raise click.UsageError("give --seq [--size], or --old and --new")
        settings, config = log_config()

        async def go() -> dict[str, Any]:
            engine = create_engine(settings.state_url)
            try:
                if seq is not None:
                    return await tlog.inclusion(engine, config, seq - 1, size, published=False)
                assert old is not None
                assert new is not None
                return await tlog.consistency(engine, config, old, new, published=False)
            finally:
                await engine.dispose()

        try:
            click.echo(json.dumps(_run(go()), indent=2))
        except BulwarkError as exc:
            raise click.ClickException(f"{exc.reasons[0].value}: {exc.detail}") from None

    @audit.command("verify-proof")
    @click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--log-key", "log_vkey", required=True, help="The log's vkey (or a file).")
    @click.option("--witness", "witness_keys", multiple=True, help="A witness vkey (or file).")
    @click.option("--quorum", type=click.IntRange(min=0), default=None, help="Cosigners needed.")
    @click.option("--leaf-hash", default=None, help="The receipt's leaf hash (hex) to match.")
    def verify_proof(
        proof: Path,
        log_vkey: str,
        witness_keys: tuple[str, ...],
        quorum: int | None,
        leaf_hash: str | None,
    ) -> None:
        """Verify a proof offline; exit 0 when it holds, 1 when not."""
        from app.audit import offline

        log = _vkey(log_vkey)
        witnesses = [_vkey(w) for w in witness_keys]
        need = len(witnesses) if quorum is None else quorum
        try:
            document = json.loads(proof.read_text("utf-8"))
            if not isinstance(document, dict):
                raise offline.ProofInvalid("the proof file is not a JSON object")
            wanted = bytes.fromhex(leaf_hash) if leaf_hash else None
            if str(document.get("type", "")).startswith("bulwark-consistency"):
                result = offline.check_consistency(document, log, witnesses=witnesses, quorum=need)
            else:
                result = offline.check_inclusion(
                    document, log, witnesses=witnesses, quorum=need, leaf_hash=wanted
                )
        except (offline.ProofInvalid, ValueError) as exc:
            click.echo(f"proof REJECTED: {exc}", err=True)
            sys.exit(1)
        cosigned = ", ".join(result.cosigners) or "no witness"
        click.echo(f"proof OK: tree size {result.size}, cosigned by {cosigned}")

    @main.group()
    def witness() -> None:
        """Witness another institution's audit log (C2SP tlog-witness)."""

    @witness.command("keygen")
    @click.argument("name")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
    def keygen(name: str, out: Path) -> None:
        """Create a witness key (mode 0600) and print its vkey for the log's policy."""
        from app.audit.notes import NoteInvalid, witness_signer
        from app.core.secrets import load_ed25519, new_ed25519_pem, write_private

        try:
            write_private(out, new_ed25519_pem())
        except FileExistsError:
            raise click.ClickException(f"{out} exists; not overwritten") from None
        try:
            click.echo(witness_signer(name, load_ed25519(out, "the witness key")).verifier.vkey)
        except NoteInvalid as exc:
            out.unlink()
            raise click.ClickException(str(exc)) from None

    @witness.command("serve")
    @click.option("--log-key", "log_vkey", required=True, help="The log's vkey (or a file).")
    @click.option("--name", required=True, help="This witness's name (as in its vkey).")
    @click.option("--key", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--state", type=click.Path(dir_okay=False, path_type=Path), required=True)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=8081, show_default=True)
    def serve(log_vkey: str, name: str, key: Path, state: Path, host: str, port: int) -> None:
        """Serve C2SP tlog-witness `POST /add-checkpoint` for a log that pushes checkpoints."""
        import uvicorn

        from app.audit.notes import witness_signer
        from app.core.secrets import SecretsError, load_ed25519
        from app.witness import add_checkpoint_app

        try:
            signer = witness_signer(name, load_ed25519(key, "the witness key"))
        except SecretsError as exc:
            raise click.ClickException(str(exc)) from None
        uvicorn.run(add_checkpoint_app(_vkey(log_vkey), signer, state), host=host, port=port)

    @witness.command("run")
    @click.option("--log", "url", required=True, help="The log's base URL (its /log is read).")
    @click.option("--log-key", "log_vkey", required=True, help="The log's vkey (or a file).")
    @click.option("--name", required=True, help="This witness's name (as in its vkey).")
    @click.option("--key", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--state", type=click.Path(dir_okay=False, path_type=Path), required=True)
    @click.option("--api-key", envvar="BULWARK_WITNESS_API_KEY", default=None, hidden=True)
    @click.option("--interval", type=click.IntRange(min=1), default=60, show_default=True)
    @click.option("--once", is_flag=True, help="One round, then exit.")
    def run(
        url: str,
        log_vkey: str,
        name: str,
        key: Path,
        state: Path,
        api_key: str | None,
        interval: int,
        once: bool,
    ) -> None:
        """Fetch, check consistency, cosign; exit 2 and keep the evidence on a fork."""
        import httpx

        from app.audit.notes import witness_signer
        from app.core.secrets import SecretsError, load_ed25519
        from app.witness import ForkDetected, WitnessError, witness_once

        log = _vkey(log_vkey)
        try:
            signer = witness_signer(name, load_ed25519(key, "the witness key"))
        except SecretsError as exc:
            raise click.ClickException(str(exc)) from None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

        async def go() -> None:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
                while True:
                    try:
                        outcome = await witness_once(client, log, signer, state)
                        click.echo(f"{outcome.action} {log.name} at size {outcome.size}")
                    except (WitnessError, httpx.HTTPError) as exc:
                        click.echo(f"round failed: {exc}", err=True)
                        if once:
                            sys.exit(1)
                    if once:
                        return
                    await asyncio.sleep(interval)

        try:
            _run(go())
        except ForkDetected as exc:
            click.echo(f"FORK of {log.name}: {exc}; refusing to cosign", err=True)
            sys.exit(2)
