"""``bulwark witness``: cosign another institution's audit log checkpoints (C2SP tlog-witness).

A witness keeps, per log, the last checkpoint it cosigned (a small JSON state file). Each
round it fetches the log's newest signed checkpoint, checks the log's signature, asks the log
for a consistency proof from the size it cosigned last, verifies it against the root *it*
remembers, and only then cosigns (a timestamped Ed25519 cosignature, tlog-cosignature) and
sends the cosignature back. The state is saved before the cosignature leaves.

It never cosigns what it cannot prove consistent: a checkpoint of the same size with another
root, a smaller tree, or a failing consistency proof is a *fork*: refused, reported, and the
two signed checkpoints are kept as evidence (``<state>.fork``) — they prove the log signed
two histories.

Pull rather than push: the log's side (``/log/witness/...``) is read over HTTP, so a witness
needs nothing from the library but its URL and public key (and an auditor key while the
library does not publish its log).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.audit import notes, tree


class ForkDetected(RuntimeError):
    """The log showed a history inconsistent with the one this witness cosigned."""


class WitnessError(RuntimeError):
    """The round failed without evidence of a fork (network, bad answer, bad signature)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one round did: ``cosigned``, ``unchanged``."""

    action: str
    size: int


@dataclass(frozen=True, slots=True)
class WitnessState:
    origin: str
    size: int
    root: str  # base64, as in the checkpoint
    note: str  # the log-signed checkpoint we cosigned (evidence if the log forks later)

    @classmethod
    def load(cls, path: Path) -> WitnessState | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text("utf-8"))
        return cls(data["origin"], int(data["size"]), data["root"], data["note"])

    def save(self, path: Path) -> None:
        # Atomic: a crash leaves the old state or the new one, never half a file.
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(_asdict(self)), encoding="utf-8")
        os.replace(tmp, path)


def _asdict(state: WitnessState) -> dict[str, Any]:
    return {"origin": state.origin, "size": state.size, "root": state.root, "note": state.note}


def _fork(state_path: Path, held: WitnessState, seen: str, why: str) -> ForkDetected:
    evidence = state_path.with_suffix(state_path.suffix + ".fork")
    evidence.write_text(
        f"# {why}\n# cosigned earlier:\n{held.note}\n# now shown:\n{seen}", encoding="utf-8"
    )
    return ForkDetected(f"{why} (evidence in {evidence})")


async def witness_once(
    client: httpx.AsyncClient,
    log: notes.Verifier,
    signer: notes.Signer,
    state_path: Path,
) -> Outcome:
    """One round against the log at ``client``'s base URL; raises ForkDetected on a fork."""
    response = await client.get("/v1/log/witness/checkpoint")
    if response.status_code != 200:
        raise WitnessError(f"the log answered {response.status_code} for its checkpoint")
    seen = response.text
    try:
        note, checkpoint = notes.open_checkpoint(seen, log)
    except notes.NoteInvalid as exc:
        raise WitnessError(f"the log's checkpoint is refused: {exc}") from None
    held = WitnessState.load(state_path)
    if held is not None and held.origin != checkpoint.origin:
        raise WitnessError("the state file belongs to another log")
    root_b64 = base64.b64encode(checkpoint.root).decode("ascii")
    if held is not None:
        if checkpoint.size < held.size:
            raise _fork(state_path, held, seen, "the log shows a smaller tree than it did")
        if checkpoint.size == held.size:
            if root_b64 != held.root:
                raise _fork(state_path, held, seen, "two different roots signed for one size")
            return Outcome("unchanged", checkpoint.size)
        if held.size > 0:
            proof = await client.get(
                "/v1/log/witness/consistency", params={"old": held.size, "new": checkpoint.size}
            )
            if proof.status_code != 200:
                raise WitnessError(f"the log answered {proof.status_code} for a consistency proof")
            try:
                hashes = [bytes.fromhex(h) for h in proof.json()["hashes"]]
            except (KeyError, TypeError, ValueError):
                raise WitnessError("the log's consistency proof is malformed") from None
            old_root = base64.b64decode(held.root)
            if not tree.verify_consistency(
                held.size, checkpoint.size, old_root, checkpoint.root, hashes
            ):
                raise _fork(state_path, held, seen, "the new checkpoint is not consistent")
    WitnessState(checkpoint.origin, checkpoint.size, root_b64, seen).save(state_path)
    line = signer.cosign(note.text)
    submitted = await client.post(
        "/v1/log/witness/cosignatures",
        content=(seen + line).encode("utf-8"),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    if submitted.status_code != 200:
        raise WitnessError(f"the log refused the cosignature ({submitted.status_code})")
    return Outcome("cosigned", checkpoint.size)


# --------------------------------------------------------------------------- push: add-checkpoint


def add_checkpoint_app(log: notes.Verifier, signer: notes.Signer, state_path: Path) -> Any:
    """The C2SP tlog-witness ``POST /add-checkpoint`` endpoint, for logs that push.

    Same state file and same refusals as :func:`witness_once`: 404 for another origin, 403
    when the log's signature does not verify, 400 for a malformed body or an old size above
    the checkpoint's, 409 (``text/x.tlog.size``, the size cosigned last) when the old size is
    not the one this witness cosigned or a size it cosigned comes with another root, 422 when
    the consistency proof fails. Checking and saving the state happen under one lock.
    """
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    lock = asyncio.Lock()

    def answer(status: int, text: str = "", media: str = "text/plain") -> PlainTextResponse:
        return PlainTextResponse(text, status_code=status, media_type=media)

    async def add(request: Request) -> PlainTextResponse:
        raw = await request.body()
        if len(raw) > notes.MAX_NOTE_BYTES:
            return answer(413)
        try:
            body = raw.decode("utf-8")
            head, _, note_text = body.partition("\n\n")
            lines = head.split("\n")
            if not lines[0].startswith("old "):
                raise ValueError("no old size line")
            old = int(lines[0][4:])
            if str(old) != lines[0][4:] or old < 0:
                raise ValueError("bad old size")
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            if len(proof) > 63 or any(len(h) != 32 for h in proof):
                raise ValueError("bad proof")
            note = notes.parse_note(note_text)
            checkpoint = notes.Checkpoint.parse(note.text)
        except (ValueError, notes.NoteInvalid):
            return answer(400)
        if checkpoint.origin != log.name:
            return answer(404)
        try:
            notes.verify_note(note, log)
        except notes.NoteInvalid:
            return answer(403)
        if old > checkpoint.size:
            return answer(400)
        async with lock:
            held = WitnessState.load(state_path)
            held_size = held.size if held else 0
            if old != held_size:
                return answer(409, f"{held_size}\n", "text/x.tlog.size")
            root_b64 = base64.b64encode(checkpoint.root).decode("ascii")
            if held is not None and old == checkpoint.size:
                if root_b64 != held.root:
                    _fork(state_path, held, note_text, "two different roots signed for one size")
                    return answer(409, f"{held_size}\n", "text/x.tlog.size")
            elif old == 0:
                if proof:
                    return answer(422)
            else:
                assert held is not None
                if not tree.verify_consistency(
                    old, checkpoint.size, base64.b64decode(held.root), checkpoint.root, proof
                ):
                    _fork(state_path, held, note_text, "the new checkpoint is not consistent")
                    return answer(422)
            WitnessState(checkpoint.origin, checkpoint.size, root_b64, note_text).save(state_path)
        return answer(200, signer.cosign(note.text))

    return Starlette(routes=[Route("/add-checkpoint", add, methods=["POST"])])
