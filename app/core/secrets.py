"""Instance secrets: the pseudonym key and the checkpoint signing key.

They may be given in settings (``BULWARK_PSEUDONYM_KEY``, ``BULWARK_SIGNING_KEY_FILE``) or be
created by ``bulwark db upgrade`` under ``data_dir/secrets`` with mode 0600. Bulwark refuses to
start without them: it cannot audit without pseudonyms, nor sign checkpoints without its key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from app.core.config import Settings, is_weak_secret, new_secret


class SecretsError(RuntimeError):
    """An instance secret is missing, unreadable or too openly readable."""


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never readable by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_instance_secrets(settings: Settings) -> list[Path]:
    """Create the secrets that are neither configured nor present; returns what it created."""
    created: list[Path] = []
    if settings.pseudonym_key is None and not settings.pseudonym_key_file.exists():
        write_private(settings.pseudonym_key_file, new_secret().encode("ascii"))
        created.append(settings.pseudonym_key_file)
    if not settings.checkpoint_key_file.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(settings.checkpoint_key_file, pem)
        created.append(settings.checkpoint_key_file)
    if not settings.log_key_path.exists():
        write_private(settings.log_key_path, new_ed25519_pem())
        created.append(settings.log_key_path)
    return created


def _read_private(path: Path, what: str) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise SecretsError(
            f"{what} {path} is missing or unreadable ({exc.strerror}); run `bulwark db upgrade` "
            "to create it, or configure it"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(f"{what} {path} is readable by others; chmod 600 it")
    return data


def pseudonym_key(settings: Settings) -> bytes:
    """The HMAC key for patron pseudonyms."""
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode("utf-8")
    key = _read_private(settings.pseudonym_key_file, "the pseudonym key").strip()
    if is_weak_secret(key.decode("utf-8", "replace")):
        raise SecretsError(
            f"the pseudonym key in {settings.pseudonym_key_file} is too short or not random"
        )
    return key


def checkpoint_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """The deployment's own key for signing audit checkpoints (never an issuer key)."""
    data = _read_private(settings.checkpoint_key_file, "the checkpoint signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise SecretsError(f"{settings.checkpoint_key_file} is not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SecretsError(f"{settings.checkpoint_key_file} must be an EC P-256 private key")
    return key


def new_ed25519_pem() -> bytes:
    """A fresh Ed25519 private key, PKCS#8 PEM (the tree's checkpoint key, a witness key)."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_ed25519(path: Path, what: str) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file only its owner may read."""
    data = _read_private(path, what)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise SecretsError(f"{path} is not a PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SecretsError(f"{path} must be an Ed25519 private key")
    return key


def log_key(settings: Settings) -> ed25519.Ed25519PrivateKey:
    """The deployment's own key for signing Merkle tree checkpoints (signed notes)."""
    return load_ed25519(settings.log_key_path, "the log signing key")
