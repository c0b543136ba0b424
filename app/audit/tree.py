"""The audit log's Merkle tree (RFC 9162 section 2.1, as C2SP tlog-checkpoint uses it).

Every audit event is one leaf. The leaf's input is the event's canonical body (the exact text
the hash chain hashes), so ``leaf hash = SHA-256(0x00 || body)`` and an interior node is
``SHA-256(0x01 || left || right)``; the empty tree's root is ``SHA-256("")``. Leaf ``i`` is the
event with ``seq = i + 1``.

Storage: ``audit_tree`` keeps the hash of the complete subtrees at every fourth level
(4, 8, 12…), keyed by ``(level, idx)``: the node at level ``l`` and index ``j`` covers leaves
``[j * 2**l, (j + 1) * 2**l)``. Leaves are not stored: a leaf hash is the hash of an event's
body, read from ``audit_events`` when a proof needs it, so the tree holds nothing that could
disagree with the events beneath a stored node. An append writes one row per sixteen events
on average and never changes a row; a node between stored levels is folded from at most
eight nodes of the stored level (or leaves) below it. An inclusion or consistency proof at
ten million events so reads about a hundred short rows (node rows and at most a few dozen
event bodies) in two indexed queries — the layout of C2SP tlog-tiles, with groups of sixteen
instead of tiles of 256. The tlog-tiles resources (``tile/<L>/<N>``) are the rows at level
``8 * L`` (for ``L = 0``, the events' leaf hashes).

This module is pure: hashing, the right edge of the tree (the frontier) that the writer
extends, proofs over a node lookup, and the RFC's verification algorithms.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, SmallInteger, String, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause
from sqlmodel import Field, SQLModel

from app.audit.models import AuditEvent
from app.core.models import table_of

LEAF_PREFIX = b"\x00"
#: Only levels that are multiples of STRIDE (and above the leaves) are stored.
STRIDE = 4
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A complete subtree's coordinates: (level, index).
NodeKey = tuple[int, int]


class AuditTreeNode(SQLModel, table=True):
    """The hash of one complete subtree of the audit log's Merkle tree (hex)."""

    __tablename__ = "audit_tree"

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


TREE = table_of(AuditTreeNode)
EVENTS = table_of(AuditEvent)


class ProofError(ValueError):
    """A proof was asked for sizes or indexes the tree cannot answer."""


def leaf_hash(body: str | bytes) -> bytes:
    """RFC 9162: ``SHA-256(0x00 || leaf input)``; the input is the event's canonical body."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------- the right edge


@dataclass(slots=True)
class Frontier:
    """The complete subtrees along the right edge of a tree of ``size`` leaves.

    ``hashes`` holds one hash per set bit of ``size``, largest subtree first: all the writer
    needs to add leaves, and all anyone needs to compute the root.
    """

    size: int
    hashes: list[bytes]

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, [])

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the new rows ``(level, idx, hash)``, leaf first."""
        index = self.size
        rows = [(0, index, leaf)]
        node, level, i = leaf, 0, index
        while i & 1:
            node = node_hash(self.hashes.pop(), node)
            level += 1
            i >>= 1
            rows.append((level, i, node))
        self.hashes.append(node)
        self.size += 1
        return rows

    def root(self) -> bytes:
        """The Merkle tree hash of the whole tree."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root


def frontier_keys(size: int) -> list[NodeKey]:
    """The rows that make up the frontier of a tree of ``size`` leaves, largest first."""
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


@functools.lru_cache(maxsize=512)
def _range_query(table: str, count: int) -> TextClause:
    """``count`` key ranges, one per disjunct, each answered from the primary key.

    Plain SQL on purpose: building and compiling an expression for each proof cost more than
    the query itself (milliseconds against a fraction of one). Only numbered placeholders are
    formatted in; every value is a bound parameter.
    """
    if table == "audit_tree":
        head = "SELECT level, idx, hash FROM audit_tree WHERE "
        terms = (f"(level = :l{i} AND idx >= :a{i} AND idx < :b{i})" for i in range(count))
    else:
        head = "SELECT seq, body FROM audit_events WHERE "
        terms = (f"(seq >= :a{i} AND seq < :b{i})" for i in range(count))
    return text(head + " OR ".join(terms))


def _ranges(keys: Iterable[NodeKey]) -> list[tuple[int, int, int]]:
    """Sorted keys as ``(level, first, end)`` runs of consecutive indexes."""
    runs: list[tuple[int, int, int]] = []
    for level, idx in sorted(set(keys)):
        if runs and runs[-1][0] == level and runs[-1][2] == idx:
            runs[-1] = (level, runs[-1][1], idx + 1)
        else:
            runs.append((level, idx, idx + 1))
    return runs


def is_stored(level: int) -> bool:
    """Whether nodes of ``level`` have rows in ``audit_tree``."""
    return level > 0 and level % STRIDE == 0


def _base(key: NodeKey) -> list[NodeKey]:
    """The nodes of the stored level (or the leaves) below ``key`` that fold into it."""
    level, idx = key
    below = level - level % STRIDE
    span = 1 << (level - below)
    first = idx << (level - below)
    return [(below, first + j) for j in range(span)]


def _perfect(hashes: list[bytes]) -> bytes:
    """The root of a perfect subtree whose bottom row is ``hashes`` (a power of two)."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


async def read_nodes(conn: AsyncConnection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """The hashes of the complete subtrees ``keys`` (missing ones are absent).

    Two indexed queries at most: runs of stored nodes, and runs of the events whose leaf
    hashes are needed (a node between stored levels covers consecutive ones of either).
    """
    bases = {key: _base(key) for key in set(keys)}
    runs = _ranges(b for bs in bases.values() for b in bs)
    stored = [r for r in runs if r[0] > 0]
    leaves = [r for r in runs if r[0] == 0]
    nodes: dict[NodeKey, bytes] = {}
    if stored:
        params = {}
        for i, (level, first, end) in enumerate(stored):
            params[f"l{i}"], params[f"a{i}"], params[f"b{i}"] = level, first, end
        rows = await conn.execute(_range_query("audit_tree", len(stored)), params)
        for level, idx, digest in rows:
            nodes[(int(level), int(idx))] = bytes.fromhex(digest)
    if leaves:
        params = {}
        for i, (_, first, end) in enumerate(leaves):  # leaf i is the event with seq i + 1
            params[f"a{i}"], params[f"b{i}"] = first + 1, end + 1
        rows = await conn.execute(_range_query("audit_events", len(leaves)), params)
        for seq, body in rows:
            nodes[(0, int(seq) - 1)] = leaf_hash(body)
    out = {}
    for key, bs in bases.items():
        if all(b in nodes for b in bs):
            out[key] = _perfect([nodes[b] for b in bs])
    return out


async def read_frontier(conn: AsyncConnection, size: int) -> Frontier:
    """The frontier of the stored tree at ``size`` leaves; raises if a row is missing."""
    keys = frontier_keys(size)
    nodes = await read_nodes(conn, keys)
    missing = [k for k in keys if k not in nodes]
    if missing:
        raise LookupError(f"the audit tree lacks {len(missing)} node(s) at size {size}")
    return Frontier(size, [nodes[k] for k in keys])


def rows_json(rows: Iterable[tuple[int, int, bytes]]) -> list[dict[str, object]]:
    """The stored ones of new nodes, as column values (an INSERT, the single statement)."""
    return [{"level": lvl, "idx": idx, "hash": h.hex()} for lvl, idx, h in rows if is_stored(lvl)]


# --------------------------------------------------------------------------- proofs


def _subtree_keys(lo: int, hi: int) -> list[NodeKey]:
    """The complete subtrees whose fold is ``MTH(D[lo:hi])`` (lo aligned as in the RFC)."""
    keys = []
    while hi - lo > 0:
        n = hi - lo
        size = n if n & (n - 1) == 0 else _split(n)
        level = size.bit_length() - 1
        keys.append((level, lo >> level))
        lo += size
    return keys


def _fold(keys: Sequence[NodeKey], nodes: Mapping[NodeKey, bytes]) -> bytes:
    h = nodes[keys[-1]]
    for key in reversed(keys[:-1]):
        h = node_hash(nodes[key], h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form ``PATH(index, D[0:size])`` (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError("leaf index beyond the tree")
    out: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()  # the RFC lists the path from the leaf upwards
    return out


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form ``PROOF(old, D[0:new])`` (RFC 9162 2.1.4.1)."""
    if not 0 <= old <= new:
        raise ProofError("the old size is larger than the new one")
    if old == 0 or old == new:
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new, old, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    out.reverse()
    return out


def needed_keys(ranges: Sequence[tuple[int, int]]) -> set[NodeKey]:
    """The stored rows from which the hashes of ``ranges`` are folded."""
    return {k for lo, hi in ranges for k in _subtree_keys(lo, hi)}


def fold_ranges(ranges: Sequence[tuple[int, int]], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """``MTH`` of each range, folded from complete subtrees; LookupError if one is missing."""
    try:
        return [_fold(_subtree_keys(lo, hi), nodes) for lo, hi in ranges]
    except KeyError:
        raise LookupError("the audit tree lacks a node the proof needs") from None


async def hashes_for(conn: AsyncConnection, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """``MTH`` of each range, from the stored complete subtrees (one query)."""
    return fold_ranges(ranges, await read_nodes(conn, needed_keys(ranges)))


async def root_at(conn: AsyncConnection, size: int) -> bytes:
    """The root hash of the tree's first ``size`` leaves, from stored rows."""
    if size == 0:
        return EMPTY_ROOT
    return (await hashes_for(conn, [(0, size)]))[0]


async def inclusion_proof(conn: AsyncConnection, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return await hashes_for(conn, inclusion_ranges(index, size))


async def consistency_proof(conn: AsyncConnection, old: int, new: int) -> list[bytes]:
    """The consistency proof from the tree of ``old`` leaves to that of ``new`` leaves."""
    return await hashes_for(conn, consistency_ranges(old, new))


# --------------------------------------------------------------------------- verification


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` under ``root``?"""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree ``(new, new_root)`` an extension of ``(old, old_root)``?"""
    if old < 0 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof  # every tree extends the empty one
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# --------------------------------------------------------------------------- the writer's side


@dataclass(slots=True)
class TreeAppender:
    """The audit writer's view of the tree: its frontier as last committed, and the next one.

    The frontier is a cache: it is valid while the chain's head is at ``frontier.size``
    (one chain, so one tree). When another replica has appended, the locked append reads
    the frontier afresh (at most ``log2(n)`` rows); the single-statement append, which cannot
    read, is skipped for that batch.
    """

    known: Frontier | None = None
    staged: Frontier | None = None

    def extend_known(self, size: int, leaves: Sequence[bytes]) -> list[dict[str, object]] | None:
        """Rows for ``leaves`` after a tree of ``size`` leaves, if the cache is at that size."""
        if self.known is None or self.known.size != size:
            return None
        return self._extend(self.known, leaves)

    async def extend(
        self, conn: AsyncConnection, size: int, leaves: Sequence[bytes]
    ) -> list[dict[str, object]]:
        """Rows for ``leaves`` after a tree of ``size`` leaves, reading the frontier if needed."""
        if self.known is None or self.known.size != size:
            self.known = await read_frontier(conn, size)
        return self._extend(self.known, leaves)

    def _extend(self, base: Frontier, leaves: Sequence[bytes]) -> list[dict[str, object]]:
        frontier = base.copy()
        rows: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            rows.extend(frontier.append(leaf))
        self.staged = frontier
        return rows_json(rows)

    def committed(self) -> None:
        """The staged rows are durable: the staged frontier is now the known one."""
        if self.staged is not None:
            self.known, self.staged = self.staged, None

    def discard(self) -> None:
        """The staged rows were not written. The known frontier stays a guess: it is used
        only while the head is at its size, which a commit that did happen would have moved."""
        self.staged = None


# --------------------------------------------------------------------------- checking storage


class TreeChecker:
    """Recompute the tree from the events, in order, and compare every stored node.

    Fed one event body at a time (as the chain's verification streams them); it reads the
    stored nodes level by level in pages, so memory stays flat. ``fault`` is the first
    disagreement: ``(first seq the bad node covers, description)``.
    """

    PAGE = 10_000

    def __init__(
        self,
        conn_factory: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        frontier: Frontier | None = None,
    ):
        self._connect = conn_factory
        # An incremental check starts from the stored frontier of the part already verified.
        self._frontier = frontier.copy() if frontier is not None else Frontier.empty()
        self._pages: dict[int, tuple[int, Sequence[str]]] = {}
        self.fault: tuple[int, str] | None = None

    @property
    def size(self) -> int:
        return self._frontier.size

    async def add(self, body: str) -> None:
        """Hash the next event into the recomputed tree and check the nodes it completes."""
        await self.add_many([body])

    async def add_many(self, bodies: Sequence[str]) -> None:
        """:meth:`add` for a page of events: the hot loop of ``bulwark audit verify``.

        Inlined on purpose (the frontier's append, the hashing, the page lookups): at over
        100,000 events a second, a function call per node is a large share of the cost.
        """
        sha256 = hashlib.sha256
        hashes, size, pages = self._frontier.hashes, self._frontier.size, self._pages
        for body in bodies:
            if self.fault is not None:
                break
            node = sha256(LEAF_PREFIX + body.encode("utf-8")).digest()
            level, i = 0, size
            while True:
                if level and not level % STRIDE:  # a stored level (leaves are the events)
                    start, page = pages.get(level, (0, ()))
                    if start <= i < start + len(page):
                        stored: str | None = page[i - start]
                    else:
                        stored = await self._fetch(level, i)
                    if stored != node.hex():
                        what = f"Merkle tree node (level {level}, index {i})"
                        self.fault = ((i << level) + 1, f"{what} does not match the events")
                        break
                if not i & 1:
                    break
                node = sha256(NODE_PREFIX + hashes.pop() + node).digest()
                level += 1
                i >>= 1
            if self.fault is None:
                hashes.append(node)
                size += 1
        self._frontier.size = size

    async def _fetch(self, level: int, idx: int) -> str | None:
        """Read the page of ``level`` that starts at ``idx``; the hash at ``idx`` or None."""
        window = (TREE.c.level == level, TREE.c.idx >= idx, TREE.c.idx < idx + self.PAGE)
        async with self._connect() as conn:
            hashes = list(
                (await conn.execute(select(TREE.c.hash).where(*window).order_by(TREE.c.idx)))
                .scalars()
                .all()
            )
            if len(hashes) < self.PAGE:
                # Short: the tree's end, or a missing row. The primary key makes a full window
                # gapless; a short one keeps only its run without gaps from idx, so that a
                # missing row is a fault at its own place.
                found = (
                    await conn.execute(select(TREE.c.idx).where(*window).order_by(TREE.c.idx))
                ).scalars()
                run = 0
                for i, j in enumerate(found):
                    if int(j) != idx + i:
                        break
                    run += 1
                hashes = hashes[:run]
        self._pages[level] = (idx, hashes)
        return hashes[0] if hashes else None

    async def finish(self) -> None:
        """No node beyond the recomputed tree: nothing was added to the tree alone."""
        if self.fault is not None:
            return
        async with self._connect() as conn:
            rows = (
                await conn.execute(
                    select(TREE.c.level, func.count(), func.max(TREE.c.idx)).group_by(TREE.c.level)
                )
            ).all()
        size = self._frontier.size
        for level, count, top in rows:
            expected = size >> int(level) if is_stored(int(level)) else 0
            if int(count) != expected or (expected and int(top) != expected - 1):
                # Every node the events imply was checked in add(): these are extra ones.
                self.fault = (
                    size + 1,
                    f"the Merkle tree has nodes at level {level} beyond the log",
                )
                return
