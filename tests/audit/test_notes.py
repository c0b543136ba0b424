"""Signed notes, verifier keys, cosignatures and the policy's [log] table: malformed and forged
input is refused, never trusted."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from app.audit import notes
from app.core.config import BUNDLED_POLICY
from app.policy.models import PolicyError, parse_policy

LOG = notes.log_signer("library.example/bulwark", ed25519.Ed25519PrivateKey.generate())
W1 = notes.witness_signer("peer.example/w1", ed25519.Ed25519PrivateKey.generate())
TEXT = notes.Checkpoint("library.example/bulwark", 7, b"\x11" * 32).text


def test_a_signed_checkpoint_round_trips() -> None:
    note = TEXT + "\n" + LOG.sign_note(TEXT)
    _, checkpoint = notes.open_checkpoint(note, LOG.verifier)
    assert (checkpoint.size, checkpoint.root) == (7, b"\x11" * 32)
    assert notes.Verifier.parse(LOG.verifier.vkey) == LOG.verifier
    cosigned = notes.parse_note(note + W1.cosign(TEXT, timestamp=1_700_000_000))
    assert list(notes.cosigners(cosigned, [W1.verifier])) == ["peer.example/w1"]
    # The key id is the first four bytes of SHA-256(name || "\n" || type || key).
    assert len(LOG.verifier.id) == 4
    assert LOG.verifier.id != notes.key_id(LOG.name, notes.COSIGNATURE, LOG.verifier.public)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,  # no signatures
        TEXT + "\n",  # a blank line and no signatures
        TEXT.rstrip("\n") + "\n\n" + "— x AAAA",  # no final newline
        TEXT + "\n- library.example/bulwark AAAAAAAA\n",  # not an em dash
        TEXT + "\n— library.example/bulwark !!!\n",  # not base64
        TEXT + "\n— library.example/bulwark AAA=\n",  # too short
        TEXT.replace("7", "\x07") + "\n" + LOG.sign_note(TEXT),  # a control character
        TEXT + "\n" + "".join(LOG.sign_note(TEXT) for _ in range(65)),  # too many signatures
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(notes.NoteInvalid) as caught:
        notes.open_checkpoint(note, LOG.verifier)
    assert caught.value.code == "malformed"


@pytest.mark.parametrize(
    "text",
    [
        "library.example/bulwark\n7\n",  # no root
        "library.example/bulwark\n07\n" + base64.b64encode(b"x" * 32).decode() + "\n",
        "library.example/bulwark\n-7\n" + base64.b64encode(b"x" * 32).decode() + "\n",
        "library.example/bulwark\n7\n" + base64.b64encode(b"x" * 31).decode() + "\n",
        "library.example/bulwark\n7\n\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(notes.NoteInvalid):
        notes.open_checkpoint(text + "\n" + LOG.sign_note(text), LOG.verifier)


def test_forged_and_foreign_signatures_are_refused() -> None:
    other = notes.log_signer("library.example/bulwark", ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(notes.NoteInvalid) as caught:
        notes.open_checkpoint(TEXT + "\n" + other.sign_note(TEXT), LOG.verifier)
    assert caught.value.code == "unsigned"  # same name, another key id: ignored, so unsigned
    line = LOG.sign_note(TEXT)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[10] ^= 1
    forged = f"— {LOG.name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(notes.NoteInvalid) as caught:
        notes.open_checkpoint(TEXT + "\n" + forged, LOG.verifier)
    assert caught.value.code == "signature"
    elsewhere = notes.Checkpoint("elsewhere.example/log", 7, b"\x11" * 32).text
    with pytest.raises(notes.NoteInvalid):  # signed by the log, but not the log's origin
        notes.open_checkpoint(elsewhere + "\n" + LOG.sign_note(elsewhere), LOG.verifier)
    # A cosignature over another text does not verify; one from an unknown witness is ignored.
    note = notes.parse_note(TEXT + "\n" + LOG.sign_note(TEXT) + W1.cosign(TEXT.replace("7", "8")))
    with pytest.raises(notes.NoteInvalid):
        notes.cosigners(note, [W1.verifier])
    stranger = notes.witness_signer("peer.example/w1", ed25519.Ed25519PrivateKey.generate())
    note = notes.parse_note(TEXT + "\n" + LOG.sign_note(TEXT) + stranger.cosign(TEXT))
    assert notes.cosigners(note, [W1.verifier]) == {}


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name+1234",
        "has space+00000000+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "n+zzzzzzzz+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "n+00000000+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),  # wrong key id
        "n+00000000+" + base64.b64encode(b"\x09" + b"k" * 32).decode(),  # unknown type
        "n+00000000+" + base64.b64encode(b"\x01" + b"k" * 31).decode(),  # short key
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(notes.NoteInvalid):
        notes.Verifier.parse(vkey)


def _policy(log: str) -> bytes:
    base = BUNDLED_POLICY.read_text("utf-8")
    return (base[: base.index("[log]")] + log).encode()


def test_the_policy_log_table_is_checked(tmp_path: Path) -> None:
    good = json.dumps([W1.verifier.vkey])
    policy = parse_policy(
        _policy(f"[log]\nwitnesses = {good}\nrequired_witnesses = 1\n"), source="policy.toml"
    )
    assert policy.policy.log.required_witnesses == 1
    for bad in (
        f"[log]\nwitnesses = {good}\nrequired_witnesses = 2\n",  # more than listed
        f'[log]\nwitnesses = ["{LOG.verifier.vkey}"]\n',  # a log key, not a cosigner key
        f"[log]\nwitnesses = {json.dumps([W1.verifier.vkey] * 2)}\n",  # twice
        '[log]\nwitnesses = ["not a key"]\n',
        "[log]\npublic = 1\n",  # no coercion
        "[log]\nmirror = true\n",  # unknown key
    ):
        with pytest.raises(PolicyError):
            parse_policy(_policy(bad), source="policy.toml")
