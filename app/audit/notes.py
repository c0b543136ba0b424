"""C2SP signed notes, checkpoints and witness cosignatures (Ed25519), from the published text.

Written from C2SP/C2SP ``signed-note.md`` (commit 0552876), ``tlog-checkpoint.md``
(2793893), ``tlog-cosignature.md`` (01194db) and ``tlog-witness.md`` (055270b):

* a note is a text ending in a newline, a blank line, and signature lines
  ``— <key name> base64(key ID || signature)``; the text is split from the signatures at
  the last blank line;
* ``key ID = SHA-256(key name || 0x0A || type || public key)[:4]``, type ``0x01`` for an
  Ed25519 note signature, ``0x04`` for a timestamped Ed25519 witness cosignature;
* a checkpoint's text is ``origin``, ``tree size`` and ``base64(root hash)``, one per line;
* a cosignature signs ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint text, and
  its signature bytes are ``uint64 big-endian timestamp || Ed25519 signature``;
* verifier keys ("vkeys") are written ``<name>+<hex key ID>+<base64(type || public key)>``.

Everything that parses outside input raises :class:`NoteInvalid` with a reason the API turns
into a 4xx problem; nothing here trusts a key that the caller did not configure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ED25519 = 0x01
COSIGNATURE = 0x04
DASH = "\u2014 "
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 64 * 1024


class NoteInvalid(ValueError):
    """A note, checkpoint, key or cosignature that is malformed or does not verify.

    ``code`` names which: ``malformed``, ``signature`` (a known key's signature fails),
    ``unsigned`` (no signature from a known key), ``key`` (a bad verifier key).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, kind: int, public: bytes) -> bytes:
    """The 4-byte key ID of signed-note: SHA-256(name || 0x0A || type || key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([kind]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteInvalid("key", "a key name must be non-empty, without spaces or '+'")


@dataclass(frozen=True, slots=True)
class Verifier:
    """A trusted public key: its name, signature type and raw Ed25519 key."""

    name: str
    kind: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.kind, self.public)

    @property
    def vkey(self) -> str:
        """The key as a verifier key string, to publish and to configure elsewhere."""
        data = base64.b64encode(bytes([self.kind]) + self.public).decode("ascii")
        return f"{self.name}+{self.id.hex()}+{data}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A verifier from ``<name>+<hex id>+<base64(type || key)>``; NoteInvalid otherwise."""
        parts = vkey.strip().split("+", 2)  # the base64 key may itself hold "+"
        if len(parts) != 3:
            raise NoteInvalid("key", "a verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, data = parts
        _check_name(name)
        try:
            raw = base64.b64decode(data, validate=True)
            wanted = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise NoteInvalid("key", "a verifier key's id or key is not hex/base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise NoteInvalid("key", "only Ed25519 note and cosignature keys are supported")
        verifier = cls(name, raw[0], raw[1:])
        if verifier.id != wanted:
            raise NoteInvalid("key", "the verifier key's id does not match its name and key")
        return verifier

    def _key(self) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(self.public)


@dataclass(frozen=True, slots=True)
class Signer:
    """A private Ed25519 key under a name: the log's (0x01) or a witness's (0x04)."""

    name: str
    kind: int
    key: ed25519.Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.kind, _raw_public(self.key.public_key()))

    def sign_note(self, text: str) -> str:
        """The signature line of a note signature over ``text`` (type 0x01)."""
        if self.kind != ED25519:
            raise ValueError("a witness key cosigns; it does not sign notes")
        signature = self.key.sign(text.encode("utf-8"))
        return _line(self.name, self.verifier.id + signature)

    def cosign(self, text: str, timestamp: int | None = None) -> str:
        """The cosignature line over checkpoint ``text`` (tlog-cosignature, type 0x04)."""
        if self.kind != COSIGNATURE:
            raise ValueError("only a witness key cosigns")
        ts = int(time.time()) if timestamp is None else timestamp
        signature = self.key.sign(_cosigned_message(text, ts))
        return _line(self.name, self.verifier.id + struct.pack(">Q", ts) + signature)


def _line(name: str, data: bytes) -> str:
    return f"{DASH}{name} {base64.b64encode(data).decode('ascii')}\n"


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key name, the 4-byte key ID and the signature bytes."""

    name: str
    id: bytes
    data: bytes
    line: str


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[Signature, ...]


def parse_note(note: str) -> Note:
    """Split a signed note into text and signatures (nothing is verified yet)."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteInvalid("malformed", "the note is too large")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteInvalid("malformed", "the note holds control characters")
    if not note.endswith("\n"):
        raise NoteInvalid("malformed", "the note does not end in a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteInvalid("malformed", "the note has no blank line before its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    signatures = []
    for line in block.splitlines():
        if not line.startswith(DASH):
            raise NoteInvalid("malformed", "a signature line does not start with an em dash")
        name, _, encoded = line[len(DASH) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteInvalid("malformed", "a signature is not base64") from None
        if not name or len(raw) < 5:
            raise NoteInvalid("malformed", "a signature line is too short")
        signatures.append(Signature(name, raw[:4], raw[4:], line + "\n"))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise NoteInvalid("malformed", "a note needs between 1 and 64 signatures")
    return Note(text, tuple(signatures))


def _matches(sig: Signature, verifier: Verifier) -> bool:
    return sig.name == verifier.name and sig.id == verifier.id


def verify_note(note: Note, verifier: Verifier) -> None:
    """The log's own signature (type 0x01) over the note's text; NoteInvalid unless it holds."""
    found = [s for s in note.signatures if _matches(s, verifier)]
    if not found:
        raise NoteInvalid("unsigned", "no signature from the log's key")
    for sig in found:
        try:
            verifier._key().verify(sig.data, note.text.encode("utf-8"))
        except InvalidSignature:
            raise NoteInvalid("signature", "the log's signature does not verify") from None


def verify_cosignature(text: str, sig: Signature, verifier: Verifier) -> int:
    """A witness's cosignature over checkpoint ``text``; returns its timestamp."""
    if not _matches(sig, verifier) or verifier.kind != COSIGNATURE:
        raise NoteInvalid("unsigned", "the cosignature is not from this witness key")
    if len(sig.data) != 8 + 64:
        raise NoteInvalid("malformed", "a cosignature is a timestamp and an Ed25519 signature")
    (ts,) = struct.unpack(">Q", sig.data[:8])
    if ts >= 2**63:
        raise NoteInvalid("malformed", "the cosignature's timestamp is out of range")
    try:
        verifier._key().verify(sig.data[8:], _cosigned_message(text, ts))
    except InvalidSignature:
        raise NoteInvalid("signature", "the cosignature does not verify") from None
    return int(ts)


def cosigners(note: Note, witnesses: list[Verifier]) -> dict[str, Signature]:
    """The configured witnesses whose cosignatures on ``note`` verify, by name.

    Signatures from unknown keys are ignored (signed-note); a known key whose signature
    fails makes the whole note invalid.
    """
    valid: dict[str, Signature] = {}
    for sig in note.signatures:
        for witness in witnesses:
            if _matches(sig, witness):
                verify_cosignature(note.text, sig, witness)
                valid[witness.name] = sig
    return valid


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint's text: origin, tree size and root hash (tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteInvalid("malformed", "a checkpoint is origin, size and root, one per line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not size.isdigit() or (size != "0" and size.startswith("0")) or len(size) > 20:
            raise NoteInvalid("malformed", "the checkpoint's size is not a decimal number")
        try:
            digest = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise NoteInvalid("malformed", "the checkpoint's root hash is not base64") from None
        if len(digest) != 32:
            raise NoteInvalid("malformed", "the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size), digest)


def open_checkpoint(note_text: str, log: Verifier) -> tuple[Note, Checkpoint]:
    """Parse a signed checkpoint and verify the log's signature; NoteInvalid otherwise."""
    note = parse_note(note_text)
    verify_note(note, log)
    checkpoint = Checkpoint.parse(note.text)
    if checkpoint.origin != log.name:
        raise NoteInvalid("malformed", "the checkpoint's origin is not the log's name")
    return note, checkpoint


def log_signer(name: str, key: ed25519.Ed25519PrivateKey) -> Signer:
    """The deployment's checkpoint signer: note signatures under the log's origin."""
    return Signer(name, ED25519, key)


def witness_signer(name: str, key: ed25519.Ed25519PrivateKey) -> Signer:
    """A witness's cosigner."""
    return Signer(name, COSIGNATURE, key)
