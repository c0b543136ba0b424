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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.audit.chain import canonical, chain_hash
from app.audit.models import AuditEvent, AuditHead
from app.callers.models import Client
from app.core.models import utcnow
from app.core.problems import AuditUnavailable
from app.core.reasons import Reason
from app.disclosures.models import Disclosure
from app.orders.models import OrderUse, Revocation

logger = logging.getLogger("bulwark.audit")

EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
HEAD = AuditHead.__table__  # type: ignore[attr-defined]
CLIENTS = Client.__table__  # type: ignore[attr-defined]
USES = OrderUse.__table__  # type: ignore[attr-defined]
REVOCATIONS = Revocation.__table__  # type: ignore[attr-defined]
DISCLOSURES = Disclosure.__table__  # type: ignore[attr-defined]

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
    with a permit that stands; ``apply`` makes the change the event records (a revocation, a
    client key) in the same transaction. ``apply`` must not fail for reasons of its own
    entry alone, since a failure fails the whole batch (its callers check first).
    """

    kind: str
    effect: str
    body: dict[str, Any]
    caller_id: int | None = None
    order: tuple[str, str] | None = None
    use: UseClaim | None = None
    disclosure: dict[str, Any] | None = None
    apply: Callable[[AsyncConnection], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event landed, and whether the writer turned a permit into a refusal."""

    seq: int
    hash: str
    ts: dt.datetime
    refused: tuple[Reason, ...] = ()
    uses: int | None = None


@dataclass(slots=True)
class _Pending:
    entry: Entry
    future: asyncio.Future[Appended]
    refused: list[Reason] = field(default_factory=list)
    uses: int | None = None


class AuditWriter:
    """The single appender of one process; see the module docstring."""

    def __init__(self, engine: AsyncEngine, *, observe: Any = None) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._observe = observe  # optional callback(seconds, batch_size) for metrics

    @property
    def running(self) -> bool:
        """True while the appender task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bulwark-audit-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def append(self, entry: Entry) -> Appended:
        """Append ``entry`` and return once it is durable (or raise AuditUnavailable)."""
        if not self.running:
            raise AuditUnavailable("The audit writer is not running; nothing was released.")
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(entry, future))
        try:
            # shield: a client that disconnects must not cancel the write of its own event.
            return await asyncio.wait_for(asyncio.shield(future), APPEND_TIMEOUT_SECONDS)
        except TimeoutError:
            raise AuditUnavailable("The audit log did not answer in time.") from None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            started = time.perf_counter()
            try:
                results = await self._commit(batch)
            except Exception as exc:  # any failure: nothing in this batch stands
                logger.error("audit append failed", extra={"error_type": type(exc).__name__})
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(AuditUnavailable())
            else:
                for pending, result in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)
                if self._observe is not None:
                    self._observe(time.perf_counter() - started, len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: Sequence[_Pending]) -> list[Appended]:
        async with self._engine.begin() as conn:
            # Lock first, read after: on SQLite a transaction that starts with a write takes
            # the write lock at once (and waits for it), so it can never be refused an upgrade.
            await conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=HEAD.c.seq))
            head = (await conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1))).one()
            active = await _active_callers(conn, batch)
            seq, prev = int(head.seq), str(head.hash)
            now = utcnow()
            events: list[dict[str, Any]] = []
            disclosures: list[dict[str, Any]] = []
            results: list[Appended] = []
            for pending in batch:
                await _recheck(conn, pending, active, now)
                if pending.entry.apply is not None and not pending.refused:
                    await pending.entry.apply(conn)
                seq += 1
                body = _final_body(pending, seq, now)
                text = canonical(body)
                digest_ = chain_hash(prev, text)
                events.append(
                    {
                        "seq": seq,
                        "ts": now,
                        "kind": body["kind"],
                        "effect": body["effect"],
                        "body": text,
                        "prev_hash": prev,
                        "hash": digest_,
                    }
                )
                if pending.entry.disclosure is not None and not pending.refused:
                    disclosures.append(
                        {**pending.entry.disclosure, "audit_seq": seq, "created_at": now}
                    )
                results.append(Appended(seq, digest_, now, tuple(pending.refused), pending.uses))
                prev = digest_
            await conn.execute(insert(EVENTS), events)
            if disclosures:
                await conn.execute(insert(DISCLOSURES), disclosures)
            await conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=seq, hash=prev))
        return results


async def _active_callers(conn: AsyncConnection, batch: Sequence[_Pending]) -> set[int]:
    ids = {p.entry.caller_id for p in batch if p.entry.caller_id is not None}
    if not ids:
        return set()
    rows = await conn.execute(
        select(CLIENTS.c.id).where(and_(CLIENTS.c.id.in_(ids), CLIENTS.c.revoked_at.is_(None)))
    )
    return {int(r.id) for r in rows}


async def _recheck(
    conn: AsyncConnection, pending: _Pending, active: set[int], now: dt.datetime
) -> None:
    entry = pending.entry
    if entry.caller_id is not None and entry.caller_id not in active:
        pending.refused.append(Reason.CALLER_UNAUTHENTICATED)
    if entry.order is not None and await _revoked(conn, *entry.order):
        pending.refused.append(Reason.ORDER_REVOKED)
    if entry.use is not None and not pending.refused:
        await _consume(conn, pending, entry.use, now)


async def _revoked(conn: AsyncConnection, iss: str, jti: str) -> bool:
    row = await conn.execute(
        select(REVOCATIONS.c.jti).where(and_(REVOCATIONS.c.iss == iss, REVOCATIONS.c.jti == jti))
    )
    return row.first() is not None


async def _consume(
    conn: AsyncConnection, pending: _Pending, use: UseClaim, now: dt.datetime
) -> None:
    key = and_(USES.c.iss == use.iss, USES.c.jti == use.jti)
    row = (await conn.execute(select(USES.c.uses).where(key))).first()
    if row is None:
        await conn.execute(
            insert(USES).values(
                iss=use.iss,
                jti=use.jti,
                uses=1,
                max_uses=use.max_uses,
                first_used_at=now,
                last_used_at=now,
            )
        )
        pending.uses = 1
    elif int(row.uses) < use.max_uses:
        await conn.execute(update(USES).where(key).values(uses=USES.c.uses + 1, last_used_at=now))
        pending.uses = int(row.uses) + 1
    else:
        pending.uses = int(row.uses)
        pending.refused.append(Reason.ORDER_EXHAUSTED)


def _final_body(pending: _Pending, seq: int, now: dt.datetime) -> dict[str, Any]:
    entry = pending.entry
    body = {
        **entry.body,
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
