"""`bulwark witness serve`: the C2SP tlog-witness `add-checkpoint` endpoint, against a log
built in memory (an honest one, and a fork of it)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from app.audit import notes, tree
from app.core.secrets import load_ed25519, new_ed25519_pem, write_private
from app.witness import add_checkpoint_app

ORIGIN = "library.example/bulwark"


def _key(path: Path) -> object:
    write_private(path, new_ed25519_pem())
    return load_ed25519(path, "k")


class Log:
    """A log in memory: leaves, every node, and checkpoints signed with its key."""

    def __init__(self, signer: notes.Signer, prefix: bytes = b"") -> None:
        self.signer, self.prefix = signer, prefix
        self.frontier, self.nodes = tree.Frontier.empty(), {}

    def grow(self, n: int) -> None:
        for _ in range(n):
            body = self.prefix + b"event %d" % self.frontier.size
            for level, idx, h in self.frontier.append(tree.leaf_hash(body)):
                self.nodes[(level, idx)] = h

    def checkpoint(self) -> str:
        text = notes.Checkpoint(ORIGIN, self.frontier.size, self.frontier.root()).text
        return text + "\n" + self.signer.sign_note(text)

    def request(self, old: int, note: str | None = None) -> bytes:
        ranges = tree.consistency_ranges(old, self.frontier.size)
        proof = tree.fold_ranges(ranges, self.nodes)
        lines = [f"old {old}"] + [base64.b64encode(h).decode() for h in proof]
        return ("\n".join(lines) + "\n\n" + (note or self.checkpoint())).encode()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Log, notes.Signer, httpx.AsyncClient]:
    log = Log(notes.log_signer(ORIGIN, _key(tmp_path / "log.key")))  # type: ignore[arg-type]
    witness = notes.witness_signer("peer.example/w1", _key(tmp_path / "w.key"))  # type: ignore[arg-type]
    app = add_checkpoint_app(log.signer.verifier, witness, tmp_path / "state.json")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w")
    return log, witness, client


async def test_add_checkpoint_follows_an_honest_log_and_refuses_a_fork(
    setup: tuple[Log, notes.Signer, httpx.AsyncClient], tmp_path: Path
) -> None:
    log, witness, client = setup
    log.grow(5)
    first = await client.post("/add-checkpoint", content=log.request(0))
    assert first.status_code == 200, first.text
    note = notes.parse_note(log.checkpoint() + first.text)
    assert list(notes.cosigners(note, [witness.verifier])) == ["peer.example/w1"]
    # The old size must be the one cosigned last (409 says which).
    log.grow(7)
    stale = await client.post("/add-checkpoint", content=log.request(0))
    assert (stale.status_code, stale.text) == (409, "5\n")
    assert stale.headers["content-type"].startswith("text/x.tlog.size")
    assert (await client.post("/add-checkpoint", content=log.request(5))).status_code == 200
    # The same size again, same root: cosigned again; another root for it: a fork (409).
    assert (await client.post("/add-checkpoint", content=log.request(12))).status_code == 200
    fork = Log(log.signer, prefix=b"rewritten ")
    fork.grow(12)
    forked = await client.post("/add-checkpoint", content=fork.request(12))
    assert (forked.status_code, forked.text) == (409, "12\n")
    # A larger forked tree with its own (valid for it) proof: not consistent, 422.
    fork.grow(4)
    bad = await client.post("/add-checkpoint", content=fork.request(12))
    assert bad.status_code == 422
    assert "not consistent" in (tmp_path / "state.json.fork").read_text()
    # And the honest log goes on.
    log.grow(4)
    assert (await client.post("/add-checkpoint", content=log.request(12))).status_code == 200


async def test_add_checkpoint_refuses_bad_requests(
    setup: tuple[Log, notes.Signer, httpx.AsyncClient], tmp_path: Path
) -> None:
    log, _, client = setup
    log.grow(3)
    other = notes.log_signer("elsewhere.example/log", _key(tmp_path / "o.key"))  # type: ignore[arg-type]
    text = notes.Checkpoint(other.name, 3, log.frontier.root()).text
    unknown = f"old 0\n\n{text}\n{other.sign_note(text)}".encode()
    assert (await client.post("/add-checkpoint", content=unknown)).status_code == 404
    impostor = notes.log_signer(ORIGIN, _key(tmp_path / "i.key"))  # type: ignore[arg-type]
    text = notes.Checkpoint(ORIGIN, 3, log.frontier.root()).text
    forged = f"old 0\n\n{text}\n{impostor.sign_note(text)}".encode()
    assert (await client.post("/add-checkpoint", content=forged)).status_code == 403
    assert (await client.post("/add-checkpoint", content=b"garbage")).status_code == 400
    assert (
        await client.post("/add-checkpoint", content=log.request(0).replace(b"old 0", b"old 9"))
    ).status_code == 400
    with_proof = log.request(0).replace(
        b"old 0\n", b"old 0\n" + base64.b64encode(b"x" * 32) + b"\n"
    )
    assert (await client.post("/add-checkpoint", content=with_proof)).status_code == 422
