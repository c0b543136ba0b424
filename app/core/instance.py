"""Binding the state database to the instance secrets it was made with.

The pseudonym key and the checkpoint key live in files under ``data_dir/secrets`` (or come
from settings); the state database does not hold them. A ``bulwark db upgrade`` run with
another ``BULWARK_DATA_DIR`` (a relative one, from another directory) would otherwise make new
secrets silently: every signed checkpoint would stop verifying against the deployment's key,
and every pseudonym would change. So the state database keeps one row naming the secrets it
was made with (their SHA-256 fingerprints, and the absolute data directory, for the message
only), and:

* ``bulwark db upgrade`` refuses to create secrets for a state database that already has a
  binding (or already holds audit events), and says which directory holds the right ones;
* every start compares the loaded secrets with the binding and refuses a mismatch.

The same secrets mounted at another path (another host, a container) are the same secrets:
only the fingerprints are compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Column, Integer, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from app.core import secrets
from app.core.config import Settings
from app.core.models import table_of


class InstanceBinding(SQLModel, table=True):
    """The one row naming the instance secrets this state database was made with."""

    __tablename__ = "instance_binding"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    data_dir: str = Field(sa_column=Column(String(1024), nullable=False))
    pseudonym_key_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    checkpoint_key_sha256: str = Field(sa_column=Column(String(64), nullable=False))


BINDING = table_of(InstanceBinding)


class InstanceMismatch(RuntimeError):
    """The secrets at hand are not (or would not be) the ones the state was made with."""


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """SHA-256 fingerprints of the two instance secrets (never the secrets)."""

    pseudonym: str
    checkpoint: str


def fingerprints(pseudonym_key: bytes, checkpoint_key: ec.EllipticCurvePrivateKey) -> Fingerprints:
    """Fingerprint the secrets: the pseudonym key's bytes, the checkpoint key's public half."""
    public = checkpoint_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Fingerprints(
        hashlib.sha256(b"bulwark pseudonym key\x00" + pseudonym_key).hexdigest(),
        hashlib.sha256(public).hexdigest(),
    )


def _missing(settings: Settings) -> bool:
    pseudonym_missing = settings.pseudonym_key is None and not settings.pseudonym_key_file.exists()
    return pseudonym_missing or not settings.checkpoint_key_file.exists()


async def prepare_secrets(settings: Settings, engine: AsyncEngine, audit: Table) -> list[str]:
    """``bulwark db upgrade``: create the secrets only for a state that has none, then bind.

    ``audit`` is the audit log's table, passed in since ``core`` knows no domain
    (docs/architecture.md).

    Returns the paths created. Raises :class:`InstanceMismatch` instead of creating secrets
    that the state database was not made with.
    """
    here = str(settings.data_dir.resolve())
    async with engine.connect() as conn:
        row = (await conn.execute(select(BINDING).where(BINDING.c.id == 1))).first()
        events = (await conn.execute(select(func.count()).select_from(audit))).scalar_one()
    if _missing(settings) and row is not None:
        raise InstanceMismatch(
            f"the state database was made with the instance secrets in {row.data_dir}; "
            f"none are in {here}. Set BULWARK_DATA_DIR={row.data_dir} (an absolute path). "
            "New secrets would orphan every signed checkpoint and change every pseudonym."
        )
    if _missing(settings) and events:
        raise InstanceMismatch(
            f"the state database already holds {events} audit events, but {here} holds no "
            "instance secrets: set BULWARK_DATA_DIR to the directory that holds secrets/ "
            "(an absolute path). New secrets would orphan every signed checkpoint."
        )
    created = [str(path) for path in secrets.ensure_instance_secrets(settings)]
    await check_binding(settings, engine)
    return created


async def check_binding(
    settings: Settings,
    engine: AsyncEngine,
    pseudonym_key: bytes | None = None,
    checkpoint_key: ec.EllipticCurvePrivateKey | None = None,
) -> None:
    """Compare the secrets with the state's binding, or bind them if there is none yet.

    Raises:
        InstanceMismatch: the state database was made with other secrets.
        app.core.secrets.SecretsError: a secret cannot be read.
    """
    found = fingerprints(
        pseudonym_key if pseudonym_key is not None else secrets.pseudonym_key(settings),
        checkpoint_key if checkpoint_key is not None else secrets.checkpoint_key(settings),
    )
    for _ in range(2):
        async with engine.connect() as conn:
            row = (await conn.execute(select(BINDING).where(BINDING.c.id == 1))).first()
        if row is not None:
            break
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(BINDING).values(
                        id=1,
                        data_dir=str(settings.data_dir.resolve()),
                        pseudonym_key_sha256=found.pseudonym,
                        checkpoint_key_sha256=found.checkpoint,
                    )
                )
            return
        except IntegrityError:
            continue  # another process bound it first: compare with what it wrote
    if row is None:  # pragma: no cover - the insert's conflict means a row exists
        raise InstanceMismatch("the state database's instance binding could not be read")
    if (row.pseudonym_key_sha256, row.checkpoint_key_sha256) != (
        found.pseudonym,
        found.checkpoint,
    ):
        raise InstanceMismatch(
            f"these instance secrets (data dir {settings.data_dir.resolve()}) are not the ones "
            f"the state database was made with (in {row.data_dir}): set BULWARK_DATA_DIR to "
            "that directory, or restore its secrets/"
        )
