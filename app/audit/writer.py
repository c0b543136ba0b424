"""Appending to the audit log: one linear chain, durable before any answer, group-committed.

Every decision is appended through :class:`AuditWriter`. Requests put their event on a queue
and wait; one task per process takes whatever has queued up and writes it in ONE transaction:

1. ``UPDATE audit_head`` first. It takes the head's row lock (PostgreSQL, MariaDB) or the
   database write lock (SQLite), so appends from every process and replica serialise here and
   the chain stays linear: no fork, no gap, no duplicate.
2. Per event, the facts that must hold at the moment of release are re-checked under that
   lock: the caller's key is still active, the order is not revoked, and (for a disclosure) a
   use of the order is still left, which is then consumed.  A permit that fails one of them is
   recorded as a deny instead, and nothing is released.
3. The events, the use counts and the disclosure rows are written and committed together.

Only after the commit returns (``synchronous=FULL`` on SQLite, a synchronous commit on
PostgreSQL) is each waiting request given its sequence number. If the transaction fails, every
request in the batch gets :class:`~app.core.problems.AuditUnavailable`: nothing is released and
no use is consumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    insert,
    literal,
    null,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit import fastpath, tree
from app.audit.chain import canonical, chain_hash
from app.audit.entries import Change, Revoke, Row, RowSink, by_sink
from app.audit.figures import add_figures, batch_rows
from app.audit.landed import landed
from app.audit.models import AuditEvent, AuditHead
from app.callers.models import Client
from app.core.models import table_of, utcnow
from app.core.problems import AuditUnavailable
from app.core.reasons import Reason
from app.orders.models import OrderUse, Revocation

logger = logging.getLogger("bulwark.audit")

EVENTS = table_of(AuditEvent)
HEAD = table_of(AuditHead)
# The writer's own re-checks under the lock: the caller's key is active, the order is not
# revoked, a use is left (docs/architecture.md, "Layers": these packages sit below audit).
CLIENTS = table_of(Client)
USES = table_of(OrderUse)
REVOCATIONS = table_of(Revocation)

MAX_BATCH = 256
APPEND_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class UseClaim:
    """Consume one use of an order, if one is left, in the append's transaction."""

    iss: str
    jti: str
    max_uses: int


@dataclass(frozen=True, slots=True)
class Entry:
    """An event to append, and what must hold under the lock for it to stand as written.

    ``body`` is the event without ``seq`` and ``ts``, which the writer adds. When
    ``caller_id`` is set the caller's key must still be active; when ``order`` is set the
    order must not be revoked; ``use`` consumes one use; ``disclosure`` is the row recorded
    with a permit that stands, ``notice`` the patron's notice of it; ``holds`` are the legal
    holds the evaluated order places, written when the entry stands, or even when it is turned
    into a refusal under the lock if ``holds_regardless`` (the order was evaluated either way);
    ``change`` makes the change the event records (a :class:`~app.audit.entries.Revoke`, a
    client key) in the same transaction, and only when the entry stands. Rows are typed data
    that their domains own (:mod:`app.audit.entries`), so that a batch writes each table
    once. A write that fails fails the batch, which is then retried entry by entry, so it
    fails alone.
    """

    kind: str
    effect: str
    body: dict[str, Any]
    caller_id: int | None = None
    order: tuple[str, str] | None = None
    use: UseClaim | None = None
    disclosure: Row | None = None
    notice: Row | None = None
    holds: tuple[Row, ...] = ()
    holds_regardless: bool = False
    change: Change | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event landed, and whether the writer turned a permit into a refusal."""

    seq: int
    hash: str
    ts: dt.datetime
    refused: tuple[Reason, ...] = ()
    uses: int | None = None
    #: The event's Merkle tree leaf hash (its index is ``seq - 1``): the receipt.
    leaf: bytes = b""

    @property
    def receipt(self) -> dict[str, Any]:
        """``leaf_index`` and ``leaf_hash`` (hex): what answers carry (docs/auditors.md)."""
        return {"leaf_index": self.seq - 1, "leaf_hash": self.leaf.hex()}


@dataclass(slots=True)
class _Pending:
    entry: Entry
    future: asyncio.Future[Appended]
    refused: list[Reason] = field(default_factory=list)
    uses: int | None = None


class AuditWriter:
    """The single appender of one process; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        observe: Any = None,
        now: Callable[[], dt.datetime] | None = None,
        config: dict[str, str] | None = None,
        tz: dt.tzinfo = dt.UTC,
    ) -> None:
        self._engine = engine
        # The library's time zone: the report's figures are kept per day of its calendar.
        self._tz = tz
        # The configuration in force (app/core/config_proof.py), recorded in every event.
        self._extra: dict[str, Any] = {"config": config} if config else {}
        # Events are dated by the state database's clock (app.core.clock), shared by every
        # replica, and never before the event they follow (_stamp).
        self._now = now or utcnow
        self._last_ts: dt.datetime | None = None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._observe = observe  # optional callback(seconds, batch_size) for metrics
        # Held from batch to batch: a pool checkout pings the server first (three round
        # trips on asyncpg), which would cost more than a small batch's own statements.
        self._conn: AsyncConnection | None = None
        self._known = _Known()
        self._tree = tree.TreeAppender()  # the Merkle tree's right edge (app/audit/tree.py)
        # The single-statement append exists on PostgreSQL only (migration 0004).
        self._single_statement = engine.dialect.name == "postgresql"
        #: Batches appended in one statement, and under the lock (tests and diagnostics).
        self.batches = {"single_statement": 0, "locked": 0}

    @property
    def running(self) -> bool:
        """True while the appender task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bulwark-audit-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop and give the held connection back."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release()

    async def append(self, entry: Entry) -> Appended:
        """Append ``entry`` and return once it is durable (or raise AuditUnavailable)."""
        if not self.running:
            raise AuditUnavailable("The audit writer is not running; nothing was released.")
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(entry, future))  # the queue is unbounded
        try:
            # A request that is cancelled (its client left) or times out stops waiting, and
            # its future with it; the entry is already queued and is written all the same.
            async with asyncio.timeout(APPEND_TIMEOUT_SECONDS):
                return await future
        except TimeoutError:
            raise AuditUnavailable("The audit log did not answer in time.") from None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Pending]) -> None:
        """Commit ``batch``; if it fails, commit its entries one by one.

        A failed transaction leaves nothing behind, so retrying entry by entry is safe: an
        entry the database refuses on its own (bad data) then fails alone, and the requests
        that shared its batch are still answered. When the database itself is down, every
        entry fails and is answered with AuditUnavailable.
        """
        started = time.perf_counter()
        try:
            results = await self._commit(batch)
        except Exception as exc:  # nothing in this batch stands
            logger.error("audit append failed", extra={"error_type": type(exc).__name__})
            if len(batch) > 1 and not _unreachable(exc):
                for pending in batch:
                    pending.refused.clear()
                    pending.uses = None
                    await self._write([pending])
                return
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(AuditUnavailable())
            return
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)
        if self._observe is not None:
            self._observe(time.perf_counter() - started, len(batch))

    async def _commit(self, batch: Sequence[_Pending]) -> list[Appended]:
        head = self._known.head
        unsure: tuple[_Plan, _Facts] | None = None
        if self._single_statement and head and all(p.entry.change is None for p in batch):
            outcome = await self._commit_single(batch, head)
            if isinstance(outcome, list):
                return outcome
            unsure = outcome  # the statement failed: it may have committed all the same
            for pending in batch:  # decided on a stale guess: decide again, under the lock
                pending.refused.clear()
                pending.uses = None
        self._known.forget()  # learnt again only from what this batch commits
        conn, seq, prev = await self._begin()
        try:
            if unsure is not None and await landed(conn, unsure[0].seq, unsure[0].hash):
                # Its reply was lost after the commit: the batch is in the log, once.
                await conn.rollback()
                self._known.learn(*unsure)
                return unsure[0].results
            plan, facts = await self._append(conn, batch, seq, prev)
            await conn.commit()
        except BaseException:
            self._tree.discard()
            await self._release()  # rolls back; the next batch starts on a fresh connection
            raise
        self._tree.committed()
        self._known.learn(plan, facts)
        self._last_ts = plan.now
        self.batches["locked"] += 1
        return plan.results

    async def _commit_single(
        self, batch: Sequence[_Pending], head: tuple[int, str]
    ) -> list[Appended] | tuple[_Plan, _Facts] | None:
        """Append ``batch`` in one statement (see :mod:`app.audit.fastpath`).

        None when the guess was stale: nothing was written. The plan sent when the statement
        failed: it may have committed before its reply was lost (:mod:`app.audit.landed`).
        Either way the caller then appends the batch under the lock, which also settles
        whether the database is reachable at all.
        """
        facts = self._known.assume(batch)
        before = dict(facts.uses)
        plan = await _decide(
            batch, facts, head[0], head[1], self._stamp(self._last_ts), None, self._extra
        )
        rows = by_sink(plan.rows)
        if any(name not in fastpath.ROWS for name in rows):
            return None  # a row the statement does not take: appended under the lock
        nodes = self._tree.extend_known(head[0], [r.leaf for r in plan.results])
        if nodes is None:  # the tree's right edge is not known at this head: read it, locked
            return None
        document = fastpath.payload(
            head=head,
            next_head=(plan.seq, plan.hash),
            now=plan.now,
            callers=facts.active,
            orders={p.entry.order for p in batch if p.entry.order is not None},
            uses_before=before,
            writes=[(k, facts.uses[k] or 0, facts.max_uses[k]) for k in facts.changed],
            events=plan.events,
            rows={name: values for name, (_, values) in rows.items()},
            figures=batch_rows(plan.events, self._tz),
            tree=nodes,
        )
        try:
            if self._conn is None:
                self._conn = await self._engine.connect()
            raw = await self._conn.get_raw_connection()
            outcome = await fastpath.append(raw.driver_connection, document)
        except Exception as exc:
            # Whether or not it reached the database, the locked append decides what stands;
            # a statement that failed wrote nothing.
            logger.warning(
                "single-statement audit append failed",
                extra={"error_type": type(exc).__name__},
            )
            await self._release()
            self._tree.discard()  # learnt again under the lock, whether or not it landed
            return plan, facts
        if outcome != fastpath.WRITTEN:
            logger.debug("single-statement audit append was stale", extra={"stale": outcome})
            self._tree.discard()
            return None
        self._tree.committed()
        self._known.learn(plan, facts)
        self._last_ts = plan.now
        self.batches["single_statement"] += 1
        return plan.results

    async def _begin(self) -> tuple[AsyncConnection, int, str]:
        """Begin a transaction holding the head's lock, on the held connection.

        A connection the server dropped while it was idle (a restart, a failover) fails here,
        before anything is written: it is replaced once. Any later failure fails the batch.
        """
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = await self._engine.connect()
            try:
                await self._conn.begin()
                seq, prev = await _lock_head(self._conn)
            except DBAPIError as exc:
                await self._release()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
            else:
                return self._conn, seq, prev
        raise AssertionError("unreachable")

    def _stamp(self, floor: dt.datetime | None) -> dt.datetime:
        """Now, by the shared clock, but never before ``floor`` (the previous event's time)."""
        now = self._now()
        return now if floor is None or now >= floor else floor

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _append(
        self, conn: AsyncConnection, batch: Sequence[_Pending], seq: int, prev: str
    ) -> tuple[_Plan, _Facts]:
        """Decide and write the batch's events after ``prev`` (at ``seq``), under the lock."""
        # Everything the re-checks need, read once for the whole batch (one statement),
        # then decided in order in memory: the cost of a batch hardly grows with its size.
        facts = await _read_facts(conn, batch)
        now = self._stamp(await _ts_of(conn, seq))
        plan = await _decide(batch, facts, seq, prev, now, conn, self._extra)
        await facts.write_uses(conn, plan.now)
        await conn.execute(insert(EVENTS), plan.events)
        await add_figures(conn, batch_rows(plan.events, self._tz))  # with their events
        nodes = await self._tree.extend(conn, seq, [r.leaf for r in plan.results])
        if nodes:
            await conn.execute(insert(tree.TREE), nodes)
        for sink, rows in by_sink(plan.rows).values():
            if rows:
                await sink.write(conn, rows)
        await conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=plan.seq, hash=plan.hash))
        return plan, facts


@dataclass(slots=True)
class _Plan:
    """A decided batch: the rows to write and what each request will be told."""

    now: dt.datetime
    seq: int
    hash: str
    events: list[dict[str, Any]] = field(default_factory=list)
    #: The entries' rows, in order, each with the sink its domain writes it through.
    rows: list[tuple[RowSink, dict[str, Any]]] = field(default_factory=list)
    results: list[Appended] = field(default_factory=list)


async def _decide(
    batch: Sequence[_Pending],
    facts: _Facts,
    seq: int,
    prev: str,
    now: dt.datetime,
    conn: AsyncConnection | None,
    extra: dict[str, Any] | None = None,
) -> _Plan:
    """Re-check each entry against ``facts`` in order and chain its event after ``prev``.

    ``conn`` runs the entries' own ``change`` writes; it is None only for batches without one
    (the single-statement path of :mod:`app.audit.fastpath`).
    """
    plan = _Plan(now=now, seq=seq, hash=prev)
    for pending in batch:
        entry = pending.entry
        facts.recheck(pending)
        stands = not pending.refused
        plan.seq += 1
        if entry.holds and (stands or entry.holds_regardless):
            plan.rows.extend((h.sink, h.values(plan.seq, now)) for h in entry.holds)
        if entry.change is not None and stands:
            if conn is None:
                raise AssertionError("an entry with its own write needs the locked path")
            await entry.change.apply(conn)
            facts.applied(entry)
        text = canonical(_final_body(pending, plan.seq, now, extra or {}))
        digest_ = chain_hash(plan.hash, text)
        plan.events.append(
            {
                "seq": plan.seq,
                "ts": now,
                "kind": entry.kind,
                "effect": "deny" if pending.refused else entry.effect,
                "body": text,
                "prev_hash": plan.hash,
                "hash": digest_,
            }
        )
        for row in (entry.disclosure, entry.notice):
            if stands and row is not None:
                plan.rows.append((row.sink, row.values(plan.seq, now)))
        plan.results.append(
            Appended(
                plan.seq, digest_, now, tuple(pending.refused), pending.uses, tree.leaf_hash(text)
            )
        )
        plan.hash = digest_
    return plan


async def _ts_of(conn: AsyncConnection, seq: int) -> dt.datetime | None:
    """The time of event ``seq`` (the head), read under the lock: the next may not be earlier."""
    if seq == 0:
        return None
    ts: dt.datetime | None = (
        await conn.execute(select(EVENTS.c.ts).where(EVENTS.c.seq == seq))
    ).scalar_one_or_none()
    return ts


def _unreachable(exc: BaseException) -> bool:
    """The database itself failed (down, dropped, timed out), not one entry's data."""
    if isinstance(exc, OperationalError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def _lock_head(conn: AsyncConnection) -> tuple[int, str]:
    """Take the head's lock, then read it: ``(seq, hash)``.

    Lock first, read after: on SQLite a transaction that starts with a write takes the write
    lock at once (and waits for it), so it can never be refused an upgrade. Where the
    database returns rows from an UPDATE (PostgreSQL, SQLite), both are one statement.
    """
    lock = update(HEAD).where(HEAD.c.id == 1).values(seq=HEAD.c.seq)
    if conn.dialect.update_returning:
        head = (await conn.execute(lock.returning(HEAD.c.seq, HEAD.c.hash))).one()
    else:
        await conn.execute(lock)
        head = (await conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1))).one()
    return int(head.seq), str(head.hash)


OrderKey = tuple[str, str]

#: Use counts a writer remembers for its single-statement appends (the most recent orders).
KNOWN_ORDERS = 10_000


@dataclass(slots=True)
class _Known:
    """The head and the use counts as this process last committed them: a guess.

    The single-statement append checks every part of the guess under the head's lock and
    writes nothing when any part is stale (another replica appended, an order was revoked,
    another replica consumed a use); the batch is then appended under the lock, which reads
    the facts afresh and refreshes the guess.
    """

    head: tuple[int, str] | None = None
    uses: OrderedDict[OrderKey, int] = field(default_factory=OrderedDict)

    def assume(self, batch: Sequence[_Pending]) -> _Facts:
        """Facts as guessed: every caller active, no order revoked, the counts last seen."""
        callers = {p.entry.caller_id for p in batch if p.entry.caller_id is not None}
        used = {(p.entry.use.iss, p.entry.use.jti) for p in batch if p.entry.use is not None}
        uses = {key: self.uses.get(key) for key in used}
        existed = {key for key, n in uses.items() if n is not None}
        return _Facts(active=callers, revoked=set(), uses=uses, existed=existed)

    def learn(self, plan: _Plan, facts: _Facts) -> None:
        """Take in a committed batch: its head and the counts it read or wrote."""
        self.head = (plan.seq, plan.hash)
        for key, count in facts.uses.items():
            if count is None:
                self.uses.pop(key, None)
                continue
            self.uses[key] = count
            self.uses.move_to_end(key)
        while len(self.uses) > KNOWN_ORDERS:
            self.uses.popitem(last=False)

    def forget(self) -> None:
        self.head = None


@dataclass(slots=True)
class _Facts:
    """What held under the lock when the batch began, updated as its entries are decided.

    ``uses`` maps an order to its use count (``None``: no row yet); ``changed`` the orders
    whose count this batch raised, written back by :meth:`write_uses`.
    """

    active: set[int]
    revoked: set[OrderKey]
    uses: dict[OrderKey, int | None]
    max_uses: dict[OrderKey, int] = field(default_factory=dict)
    changed: set[OrderKey] = field(default_factory=set)
    existed: set[OrderKey] = field(default_factory=set)

    def recheck(self, pending: _Pending) -> None:
        """Refuse what no longer holds for ``pending``; consume its use if it stands."""
        entry = pending.entry
        if entry.caller_id is not None and entry.caller_id not in self.active:
            pending.refused.append(Reason.CALLER_UNAUTHENTICATED)
        if entry.order is not None and entry.order in self.revoked:
            pending.refused.append(Reason.ORDER_REVOKED)
        if entry.use is not None and not pending.refused:
            self._consume(pending, entry.use)

    def _consume(self, pending: _Pending, use: UseClaim) -> None:
        key = (use.iss, use.jti)
        current = self.uses.get(key)
        if current is not None and current >= use.max_uses:
            pending.uses = current
            pending.refused.append(Reason.ORDER_EXHAUSTED)
            return
        self.uses[key] = pending.uses = (current or 0) + 1
        self.max_uses.setdefault(key, use.max_uses)
        self.changed.add(key)

    def applied(self, entry: Entry) -> None:
        """Take in what an entry just changed that later entries of the batch must see."""
        if isinstance(entry.change, Revoke):
            self.revoked.add(entry.change.order)

    async def write_uses(self, conn: AsyncConnection, now: dt.datetime) -> None:
        """The new use counts: one INSERT for first uses, one UPDATE for the others."""
        new = [k for k in self.changed if k not in self.existed]
        old = [k for k in self.changed if k in self.existed]
        if new:
            await conn.execute(
                insert(USES),
                [
                    {
                        "iss": iss,
                        "jti": jti,
                        "uses": self.uses[(iss, jti)],
                        "max_uses": self.max_uses[(iss, jti)],
                        "first_used_at": now,
                        "last_used_at": now,
                    }
                    for iss, jti in new
                ],
            )
        if old:
            # Absolute counts are safe: every writer of order_uses holds the head's lock.
            await conn.execute(
                update(USES)
                .where(and_(USES.c.iss == bindparam("k_iss"), USES.c.jti == bindparam("k_jti")))
                .values(uses=bindparam("k_uses"), last_used_at=now),
                [{"k_iss": i, "k_jti": j, "k_uses": self.uses[(i, j)]} for i, j in old],
            )


async def _read_facts(conn: AsyncConnection, batch: Sequence[_Pending]) -> _Facts:
    """Active callers, revoked orders and use counts the batch names, in one statement."""
    callers = {p.entry.caller_id for p in batch if p.entry.caller_id is not None}
    orders = {p.entry.order for p in batch if p.entry.order is not None}
    used = {(p.entry.use.iss, p.entry.use.jti) for p in batch if p.entry.use is not None}
    parts = []
    if callers:
        parts.append(
            select(literal("c").label("k"), CLIENTS.c.id.label("n"), _null(), _null()).where(
                and_(CLIENTS.c.id.in_(callers), CLIENTS.c.revoked_at.is_(None))
            )
        )
    if orders:
        key = tuple_(REVOCATIONS.c.iss, REVOCATIONS.c.jti)
        parts.append(
            select(literal("r"), _null_int(), REVOCATIONS.c.iss, REVOCATIONS.c.jti).where(
                key.in_(sorted(orders))
            )
        )
    if used:
        key = tuple_(USES.c.iss, USES.c.jti)
        parts.append(
            select(literal("u"), USES.c.uses, USES.c.iss, USES.c.jti).where(key.in_(sorted(used)))
        )
    facts = _Facts(active=set(), revoked=set(), uses=dict.fromkeys(used))
    if not parts:
        return facts
    rows = await conn.execute(parts[0] if len(parts) == 1 else union_all(*parts))
    for kind, number, iss, jti in rows:
        if kind == "c":
            facts.active.add(int(number))
        elif kind == "r":
            facts.revoked.add((str(iss), str(jti)))
        else:
            facts.uses[(str(iss), str(jti))] = int(number)
            facts.existed.add((str(iss), str(jti)))
    return facts


def _null() -> Any:
    return null().cast(String)


def _null_int() -> Any:
    return null().cast(Integer)


def _final_body(
    pending: _Pending, seq: int, now: dt.datetime, extra: dict[str, Any]
) -> dict[str, Any]:
    entry = pending.entry
    body = {
        **entry.body,
        **extra,
        "seq": seq,
        "ts": now.isoformat(timespec="microseconds"),
        "kind": entry.kind,
        "effect": entry.effect,
    }
    if pending.refused:
        # A permit that no longer holds at the moment of release is recorded as what it
        # became: a deny with the reasons found under the lock, and nothing released.
        body["effect"] = "deny"
        body["reasons"] = [r.value for r in pending.refused]
        body["released"] = None
    return body
