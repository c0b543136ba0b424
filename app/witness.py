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
