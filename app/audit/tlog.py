"""The audit log as a transparency log: signed checkpoints, proofs, receipts, cosignatures.

A *checkpoint* is the tree's size and root hash as a C2SP signed note, signed with the
deployment's own Ed25519 key (``BULWARK_LOG_KEY_FILE``) under its origin
(``BULWARK_LOG_ORIGIN``). The log never signs a checkpoint its stored tree cannot prove
consistent with the last one it signed. Witnesses (``[log] witnesses`` in the policy) fetch
checkpoints, check consistency with the last one they cosigned and send back cosignatures;
a checkpoint is *published* once ``[log] required_witnesses`` of them have cosigned it.

Proofs are JSON documents that carry everything an outsider needs besides the log's public
key: the checkpoint note (with its cosignatures), the sizes, and the proof's hashes in hex.
Nothing here returns an event body: the view is content-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit import notes, tree
from app.audit.models import AuditHead
from app.audit.tlog_models import AuditCheckpoint, AuditCosignature
from app.core.models import table_of, utcnow
from app.core.problems import BulwarkError
from app.core.reasons import Reason

logger = logging.getLogger("bulwark.audit.log")

CHECKPOINTS = table_of(AuditCheckpoint)
COSIGNATURES = table_of(AuditCosignature)
HEAD = table_of(AuditHead)

#: What a proof document says it is (``bulwark audit verify-proof`` reads it).
INCLUSION = "bulwark-inclusion-proof/v1"
CONSISTENCY = "bulwark-consistency-proof/v1"


class LogError(BulwarkError):
    """A request about the tree or its checkpoints that cannot be answered (4xx), or a
    stored tree that contradicts a signed checkpoint (503)."""

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        super().__init__(reason, detail)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The log's signer, and the witnesses whose cosignatures count toward publication."""

    signer: notes.Signer
    witnesses: tuple[notes.Verifier, ...] = ()
    required: int = 0

    @property
    def verifier(self) -> notes.Verifier:
        return self.signer.verifier

    @classmethod
    def build(cls, signer: notes.Signer, witnesses: tuple[str, ...], required: int) -> LogConfig:
        return cls(signer, tuple(notes.Verifier.parse(v) for v in witnesses), required)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str  # the checkpoint text, a blank line, the log's signature line
    cosignatures: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return self.note[: self.note.rindex("\n\n") + 1]

    @property
    def full(self) -> str:
        """The note with every cosignature line appended (what is served)."""
        return self.note + "".join(self.cosignatures)


# --------------------------------------------------------------------------- checkpoints


async def _head_size(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(HEAD.c.seq).where(HEAD.c.id == 1))).scalar_one())


async def _latest_row(conn: AsyncConnection, upto: int | None = None) -> Any:
    query = select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1)
    if upto is not None:
        query = query.where(CHECKPOINTS.c.size <= upto)
    return (await conn.execute(query)).first()


async def sign_checkpoint(engine: AsyncEngine, log: LogConfig) -> StoredCheckpoint:
    """Sign and store a checkpoint of the tree as it now stands (or return the current one).

    Refuses (503 log.inconsistent) when the stored tree cannot be proved consistent with the
    last checkpoint signed: a tree rewritten under the log is never signed over.
    """
    async with engine.connect() as conn:
        size = await _head_size(conn)
        root = await tree.root_at(conn, size)
        last = await _latest_row(conn)
        if last is not None:
            last_root = bytes.fromhex(last.root)
            if int(last.size) == size:
                if last_root != root:
                    raise LogError(Reason.LOG_INCONSISTENT)
                return await _with_cosignatures(conn, last)
            if int(last.size) > size:
                raise LogError(Reason.LOG_INCONSISTENT, "The tree is smaller than a checkpoint.")
            proof = await tree.consistency_proof(conn, int(last.size), size)
            if not tree.verify_consistency(int(last.size), size, last_root, root, proof):
                raise LogError(Reason.LOG_INCONSISTENT)
    checkpoint = notes.Checkpoint(log.signer.name, size, root)
    note = checkpoint.text + "\n" + log.signer.sign_note(checkpoint.text)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(CHECKPOINTS).values(
                    size=size, root=root.hex(), note=note, created_at=utcnow()
                )
            )
    except IntegrityError:  # another replica signed this size a moment ago
        return await checkpoint_at(engine, size)
    return StoredCheckpoint(size, root, note)


async def _with_cosignatures(conn: AsyncConnection, row: Any) -> StoredCheckpoint:
    lines = await conn.execute(
        select(COSIGNATURES.c.line)
        .where(COSIGNATURES.c.size == row.size)
        .order_by(COSIGNATURES.c.witness)
    )
    return StoredCheckpoint(
        int(row.size),
        bytes.fromhex(row.root),
        str(row.note),
        tuple(str(x) for x in lines.scalars()),
    )


async def checkpoint_at(engine: AsyncEngine, size: int) -> StoredCheckpoint:
    """The checkpoint signed at ``size``; 404 log.size_not_checkpointed if there is none."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.size == size))).first()
        if row is None:
            raise LogError(Reason.LOG_SIZE_NOT_CHECKPOINTED)
        return await _with_cosignatures(conn, row)


async def latest_signed(engine: AsyncEngine) -> StoredCheckpoint:
    """The newest checkpoint the log signed, witnessed or not (what witnesses fetch)."""
    async with engine.connect() as conn:
        row = await _latest_row(conn)
        if row is None:
            raise LogError(Reason.LOG_NO_CHECKPOINT)
        return await _with_cosignatures(conn, row)


def is_published(checkpoint: StoredCheckpoint, log: LogConfig) -> bool:
    """Cosigned by at least ``required`` of the configured witnesses (re-verified here)."""
    if log.required == 0:
        return True
    note = notes.parse_note(checkpoint.full)
    try:
        valid = notes.cosigners(note, list(log.witnesses))
    except notes.NoteInvalid:
        return False
    return len(valid) >= log.required


async def latest_published(
    engine: AsyncEngine, log: LogConfig, *, containing: int = 0
) -> StoredCheckpoint:
    """The newest published checkpoint (of at least ``containing`` leaves); 404 if none."""
    query = select(CHECKPOINTS).where(CHECKPOINTS.c.size >= max(containing, 0))
    if log.required:
        # Only checkpoints with enough cosignature rows are candidates (each is re-verified):
        # a backlog of checkpoints the witnesses have not reached yet is skipped in the query.
        cosigned = (
            select(COSIGNATURES.c.size)
            .group_by(COSIGNATURES.c.size)
            .having(func.count() >= log.required)
        )
        query = query.where(CHECKPOINTS.c.size.in_(cosigned))
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(CHECKPOINTS.c.size.desc()).limit(20))).all()
        for row in rows:
            checkpoint = await _with_cosignatures(conn, row)
            if is_published(checkpoint, log):
                return checkpoint
    raise LogError(Reason.LOG_NO_CHECKPOINT)


async def published_at(engine: AsyncEngine, log: LogConfig, size: int) -> StoredCheckpoint:
    """The checkpoint at ``size`` if it is published; 404 log.size_not_checkpointed if not."""
    checkpoint = await checkpoint_at(engine, size)
    if not is_published(checkpoint, log):
        raise LogError(Reason.LOG_SIZE_NOT_CHECKPOINTED, "That checkpoint is not yet witnessed.")
    return checkpoint


async def add_cosignatures(engine: AsyncEngine, log: LogConfig, note_text: str) -> list[str]:
    """Take a witness's cosignature(s) on one of the log's checkpoints; returns who cosigned.

    The note must be one of our own checkpoints (text and log signature both verify and the
    text is exactly the stored one), carrying at least one cosignature from a configured
    witness; every configured witness's line on it must verify.
    """
    try:
        note, checkpoint = notes.open_checkpoint(note_text, log.verifier)
    except notes.NoteInvalid as exc:
        raise LogError(
            Reason.LOG_CHECKPOINT_MALFORMED
            if exc.code == "malformed"
            else Reason.LOG_CHECKPOINT_FORGED,
            str(exc),
        ) from None
    stored = await checkpoint_at(engine, checkpoint.size)
    if stored.text != note.text:
        raise LogError(Reason.LOG_CHECKPOINT_FORGED, "This log never signed that checkpoint.")
    try:
        valid = notes.cosigners(note, list(log.witnesses))
    except notes.NoteInvalid as exc:
        raise LogError(Reason.LOG_COSIGNATURE_INVALID, str(exc)) from None
    if not valid:
        raise LogError(Reason.LOG_WITNESS_UNKNOWN)
    now = utcnow()
    async with engine.begin() as conn:
        have = set(
            (
                await conn.execute(
                    select(COSIGNATURES.c.witness).where(COSIGNATURES.c.size == checkpoint.size)
                )
            ).scalars()
        )
        rows = [
            {
                "size": checkpoint.size,
                "witness": name,
                "line": sig.line,
                "signed_at": int.from_bytes(sig.data[:8], "big"),
                "created_at": now,
            }
            for name, sig in sorted(valid.items())
            if name not in have
        ]
        if rows:
            await conn.execute(insert(COSIGNATURES), rows)
    return sorted(valid)


# --------------------------------------------------------------------------- proofs


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


async def inclusion(
    engine: AsyncEngine, log: LogConfig, index: int, size: int | None, *, published: bool
) -> dict[str, Any]:
    """The inclusion proof of leaf ``index`` in the checkpoint of ``size`` (default: the
    newest that contains it). ``published``: only a checkpoint witnesses have cosigned."""
    if index < 0:
        raise LogError(Reason.LOG_INDEX_BEYOND_TREE)
    async with engine.connect() as conn:
        if index >= await _head_size(conn):
            raise LogError(Reason.LOG_INDEX_BEYOND_TREE)
    if size is None:
        if published:
            checkpoint = await latest_published(engine, log, containing=index + 1)
        else:
            checkpoint = await latest_signed(engine)
            if checkpoint.size <= index:
                raise LogError(Reason.LOG_NO_CHECKPOINT, "No checkpoint contains that leaf yet.")
    else:
        checkpoint = await (
            published_at(engine, log, size) if published else checkpoint_at(engine, size)
        )
    if index >= checkpoint.size:
        raise LogError(Reason.LOG_INDEX_BEYOND_TREE, "The leaf is beyond that checkpoint.")
    async with engine.connect() as conn:
        leaf = (await tree.read_nodes(conn, [(0, index)])).get((0, index))
        proof = await tree.inclusion_proof(conn, index, checkpoint.size)
    if leaf is None:
        raise LogError(Reason.LOG_INCONSISTENT)
    return {
        "type": INCLUSION,
        "leaf_index": index,
        "seq": index + 1,
        "leaf_hash": leaf.hex(),
        "tree_size": checkpoint.size,
        "hashes": _hex(proof),
        "checkpoint": checkpoint.full,
    }


async def consistency(
    engine: AsyncEngine,
    log: LogConfig,
    old: int,
    new: int,
    *,
    published: bool,
    any_old: bool = False,
) -> dict[str, Any]:
    """The consistency proof between the checkpoints of ``old`` and ``new`` leaves.

    ``any_old``: the old size need not be a stored checkpoint (a witness holds its own copy of
    the checkpoint it cosigned; the log may have lost, or hidden, its copy).
    """
    if old < 0 or new < old:
        raise LogError(Reason.LOG_INDEX_BEYOND_TREE, "The old size must not exceed the new.")
    if published:
        new_cp = await published_at(engine, log, new)
        old_cp = await published_at(engine, log, old) if old else None
    else:
        new_cp = await checkpoint_at(engine, new)
        old_cp = await checkpoint_at(engine, old) if old and not any_old else None
    async with engine.connect() as conn:
        proof = await tree.consistency_proof(conn, old, new)
    return {
        "type": CONSISTENCY,
        "old_size": old,
        "new_size": new,
        "hashes": _hex(proof),
        "old_checkpoint": old_cp.full if old_cp else None,
        "new_checkpoint": new_cp.full,
    }


async def tile(engine: AsyncEngine, log: LogConfig, level: int, index: int, width: int) -> bytes:
    """The C2SP tlog-tiles tile ``<level>/<index>`` of ``width`` hashes (256 when full).

    Served only within the newest published checkpoint: a mirror never sees more than what
    was published.
    """
    checkpoint = await latest_published(engine, log)
    height = 8 * level
    available = checkpoint.size >> height  # hashes at this tree level inside the checkpoint
    first = index * 256
    if width < 1 or width > 256 or first + width > available:
        raise LogError(Reason.LOG_INDEX_BEYOND_TREE, "No such tile in the published tree.")
    if width < 256 and available - first != width:
        raise LogError(Reason.LOG_INDEX_BEYOND_TREE, "That partial tile does not exist.")
    keys = [(height, first + i) for i in range(width)]
    async with engine.connect() as conn:
        nodes = await tree.read_nodes(conn, keys)  # level 0: the events' leaf hashes
    if len(nodes) != width:
        raise LogError(Reason.LOG_INCONSISTENT)
    return b"".join(nodes[k] for k in keys)


class Checkpointer:
    """Signs a checkpoint every ``interval`` seconds while the tree grows (one per process).

    Several replicas may sign the same size at once: the first insert wins and the others
    return it. A refusal (``log.inconsistent``: the stored tree contradicts a checkpoint) is
    logged as an error every round; it needs a person, not a retry.
    """

    def __init__(self, engine: AsyncEngine, log: LogConfig, interval: int) -> None:
        self._engine, self._log, self._interval = engine, log, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="bulwark-log-checkpoints")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await sign_checkpoint(self._engine, self._log)
            except LogError as exc:
                logger.error("checkpoint refused", extra={"reason": exc.reasons[0].value})
            except Exception as exc:  # the state database is down: the next round retries
                logger.warning("checkpoint failed", extra={"error_type": type(exc).__name__})
