"""Configuration that proves itself (issue 16).

The files that decide who is a court (the trust store), what may be released (the policy,
the records mapping) and the instance's keys were loaded whatever their mode: a 0666 trust
store in a 0777 directory loaded silently, and replicas started with different trust stores,
jurisdictions, policies or keys were never noticed. So:

- :func:`check_config_files` refuses to start when any of them, or the directory holding it,
  can be written by anyone but its owner (group or others);
- :class:`ConfigFingerprint` names what is in force (a short sha256 of each), and the audit
  writer records it in every event (``"config"``), so an auditor sees which configuration
  decided each event;
- :func:`disagreements` finds, among recent events, configurations other than this replica's:
  readyz (admin) and ``GET /v1/audit/verify`` report replicas that disagree.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.core.config import Settings

#: Hex digits of each fingerprint: enough to tell configurations apart, short in every event.
FINGERPRINT_HEX = 16


class ConfigFileUnsafe(RuntimeError):
    """A configuration or key file, or its directory, is writable by group or others."""


def _config_files(settings: Settings) -> list[tuple[str, Path]]:
    files = [("policy", settings.policy), ("records mapping", settings.records_mapping)]
    if settings.trust_store is not None:
        files.append(("trust store", settings.trust_store))
    files.append(("checkpoint signing key", settings.checkpoint_key_file))
    if settings.pseudonym_key is None:
        files.append(("pseudonym key", settings.pseudonym_key_file))
    return files


def _writable_by_others(mode: int) -> bool:
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def check_config_files(settings: Settings) -> None:
    """Raise :class:`ConfigFileUnsafe` naming the first file or directory others may write.

    A missing file is left to the loader that needs it (it says what is missing). A directory
    with the sticky bit (like /tmp) still lets others create files beside ours but not replace
    ours; it is refused all the same: a trust store belongs in a directory of its own.
    """
    for what, path in _config_files(settings):
        try:
            file_mode = path.stat().st_mode
        except OSError:
            continue
        for target, mode in ((path, file_mode), (path.resolve().parent, None)):
            if mode is None:
                try:
                    mode = target.stat().st_mode
                except OSError:
                    continue
            if _writable_by_others(mode):
                kind = "its directory" if target != path else "it"
                raise ConfigFileUnsafe(
                    f"the {what} {path} is unsafe: {kind} ({target}) is writable by group or "
                    f"others (mode {stat.S_IMODE(mode):04o}); `chmod go-w {target}`"
                )


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_HEX]


@dataclass(frozen=True, slots=True)
class ConfigFingerprint:
    """What is in force on this replica, each as a short sha256 (no content, no key)."""

    policy: str
    trust_store: str
    jurisdictions: str
    keys: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        policy_sha256: str,
        pseudonym_key: bytes,
        checkpoint_key: ec.EllipticCurvePrivateKey,
    ) -> ConfigFingerprint:
        """The fingerprint of a replica's settings, files and keys."""
        trust = settings.trust_store.read_bytes() if settings.trust_store else b""
        der = checkpoint_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # The pseudonym key is secret: only a MAC under it is mixed in, never the key.
        pseudonym_id = hmac.new(pseudonym_key, b"bulwark key fingerprint", "sha256").digest()
        return cls(
            policy=policy_sha256[:FINGERPRINT_HEX],
            trust_store=_short(trust),
            jurisdictions=_short(",".join(sorted(settings.jurisdictions)).encode("utf-8")),
            keys=_short(der + settings.pseudonym_key_id.encode("utf-8") + pseudonym_id),
        )


def config_of_body(body: str) -> dict[str, str] | None:
    """The ``config`` an event's canonical body records (None for older events)."""
    if '"config":' not in body:
        return None
    try:
        found = json.loads(body).get("config")
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def disagreements(own: ConfigFingerprint, bodies: Iterable[str]) -> list[dict[str, str]]:
    """Configurations recorded in ``bodies`` other than ``own``, each once."""
    mine = own.as_json()
    seen: list[dict[str, str]] = []
    for body in bodies:
        config = config_of_body(body)
        if config is not None and config != mine and config not in seen:
            seen.append(config)
    return seen


def interleaved(bodies: Iterable[str]) -> list[dict[str, str]]:
    """Configurations that alternate in ``bodies`` (A, B, A): replicas deciding side by side
    under different configurations, as opposed to one change rolled out (A, B)."""
    order: list[dict[str, str]] = []
    flagged: list[dict[str, str]] = []
    for body in bodies:
        config = config_of_body(body)
        if config is None:
            continue
        if not order or order[-1] != config:
            if config in order and config not in flagged:
                flagged.append(config)
                flagged.extend(c for c in order[order.index(config) + 1 :] if c not in flagged)
            order.append(config)
    return flagged
