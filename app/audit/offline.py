"""Checking proofs offline: only the proof document, the log's public key and (optionally)
the witnesses' keys. No database, no settings, no network: what `bulwark audit verify-proof`
runs, and what docs/auditors.md redoes by hand with ``hashlib``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

from app.audit import notes, tlog, tree


class ProofInvalid(ValueError):
    """The proof, its checkpoint or its cosignatures do not verify; the message says which."""


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified proof established."""

    size: int
    root: bytes
    cosigners: tuple[str, ...]


def _hashes(values: Any) -> list[bytes]:
    if not isinstance(values, list) or len(values) > 64:
        raise ProofInvalid("the proof's hashes are not a list of at most 64 hex strings")
    try:
        out = [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError, binascii.Error):
        raise ProofInvalid("a proof hash is not hex") from None
    if any(len(h) != 32 for h in out):
        raise ProofInvalid("a proof hash is not 32 bytes")
    return out


def check_checkpoint(
    note_text: Any, log: notes.Verifier, witnesses: list[notes.Verifier], quorum: int
) -> tuple[notes.Checkpoint, tuple[str, ...]]:
    """The log's signature, then at least ``quorum`` valid witness cosignatures."""
    if not isinstance(note_text, str):
        raise ProofInvalid("the proof carries no checkpoint")
    try:
        note, checkpoint = notes.open_checkpoint(note_text, log)
        valid = notes.cosigners(note, witnesses)
    except notes.NoteInvalid as exc:
        raise ProofInvalid(f"checkpoint rejected: {exc}") from None
    if len(valid) < quorum:
        raise ProofInvalid(
            f"checkpoint cosigned by {len(valid)} of the given witnesses; {quorum} required"
        )
    return checkpoint, tuple(sorted(valid))


def check_inclusion(
    document: dict[str, Any],
    log: notes.Verifier,
    *,
    witnesses: list[notes.Verifier] | None = None,
    quorum: int = 0,
    leaf_hash: bytes | None = None,
) -> Verified:
    """Verify an inclusion proof (``bulwark-inclusion-proof/v1``); ProofInvalid if it fails.

    ``leaf_hash``: the receipt's leaf hash, which the proof's own must equal.
    """
    if document.get("type") != tlog.INCLUSION:
        raise ProofInvalid("not an inclusion proof")
    checkpoint, cosigners = check_checkpoint(
        document.get("checkpoint"), log, witnesses or [], quorum
    )
    try:
        index, size = int(document["leaf_index"]), int(document["tree_size"])
        leaf = bytes.fromhex(document["leaf_hash"])
    except (KeyError, TypeError, ValueError):
        raise ProofInvalid("the proof lacks leaf_index, tree_size or leaf_hash") from None
    if size != checkpoint.size:
        raise ProofInvalid("the proof's tree size is not the checkpoint's")
    if leaf_hash is not None and leaf != leaf_hash:
        raise ProofInvalid("the proof is for another leaf than the receipt's")
    if not tree.verify_inclusion(
        leaf, index, size, _hashes(document.get("hashes")), checkpoint.root
    ):
        raise ProofInvalid("the inclusion proof does not lead to the checkpoint's root hash")
    return Verified(size, checkpoint.root, cosigners)


def check_consistency(
    document: dict[str, Any],
    log: notes.Verifier,
    *,
    witnesses: list[notes.Verifier] | None = None,
    quorum: int = 0,
) -> Verified:
    """Verify a consistency proof (``bulwark-consistency-proof/v1``) between two checkpoints."""
    if document.get("type") != tlog.CONSISTENCY:
        raise ProofInvalid("not a consistency proof")
    new, cosigners = check_checkpoint(document.get("new_checkpoint"), log, witnesses or [], quorum)
    old_text = document.get("old_checkpoint")
    if old_text is None:
        old_size, old_root = 0, tree.EMPTY_ROOT
    else:
        old, _ = check_checkpoint(old_text, log, witnesses or [], 0)
        old_size, old_root = old.size, old.root
    if (document.get("old_size"), document.get("new_size")) != (old_size, new.size):
        raise ProofInvalid("the proof's sizes are not its checkpoints' sizes")
    if not tree.verify_consistency(
        old_size, new.size, old_root, new.root, _hashes(document.get("hashes"))
    ):
        raise ProofInvalid("the checkpoints are NOT consistent: the log forked or was rewritten")
    return Verified(new.size, new.root, cosigners)
