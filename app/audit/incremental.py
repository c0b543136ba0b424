"""``GET /v1/audit/verify`` bounded: incremental, single-flight, stopped when nobody waits.

Recomputing the whole chain on every call let one auditor key take the service down (issue
16: twelve clients on a 600,000-event log turned every call into a 502). So the route:

- starts from the last event already verified from genesis, remembered in the state database
  (``audit_verified``), after checking that this event still carries the hash it was verified
  with; only events appended since are recomputed. The full recomputation from genesis, which
  also re-reads old history, is the CLI job ``bulwark audit verify``;
- runs at most once at a time per deployment: in a process, concurrent callers share one run;
  across replicas, a lease row in the state database lets one replica verify while the others
  wait for its progress (which is then theirs too);
- stops when nobody is waiting: the last caller that goes away cancels the run. Progress is
  saved page by page, so the next run does not start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditVerified
from app.audit.service import CHAIN_COLUMNS, EVENTS, HEAD, PAGE, VerifyResult, _row_fault
from app.audit.tree import TreeChecker, read_frontier
from app.core.config_proof import interleaved
from app.core.models import table_of, utcnow

VERIFIED = table_of(AuditVerified)

#: How long a replica's claim to be the one verifying lasts without being renewed (each page
#: renews it); a replica that died mid-run delays the others by at most this much.
LEASE_SECONDS = 30.0
#: How often a replica waiting for another's lease looks again.
POLL_SECONDS = 0.2


class IncrementalVerifier:
    """One per process; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        page: int = PAGE,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._page = page
        # Leases are compared across replicas: by the state database's clock (app.core.clock).
        self._now = now
        self._owner = uuid.uuid4().hex
        self._task: asyncio.Task[VerifyResult] | None = None
        self._waiters = 0
        #: Runs started (tests: concurrent callers share one).
        self.runs = 0
        #: Configurations that alternated in the events the last run verified (replicas
        #: deciding side by side under different trust stores, policies or keys).
        self.disagreements: list[dict[str, str]] = []

    async def verify(self) -> VerifyResult:
        """The chain's verdict, from the last verified event to the current head."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="bulwark-audit-verify")
            self.runs += 1
        task = self._task
        self._waiters += 1
        try:
            return await asyncio.shield(task)
        finally:
            self._waiters -= 1
            if self._waiters == 0 and not task.done():
                # Nobody is waiting any more: stop, rather than spend the database on it.
                task.cancel()

    async def _run(self) -> VerifyResult:
        # Another replica verifies: wait for its lease (its progress is then ours). It lives
        # in the database, so polling is the only way to see it go.
        while not await self._claim():  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
        try:
            return await self._verify()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release())

    async def _claim(self) -> bool:
        now = self._now()
        until = now + dt.timedelta(seconds=LEASE_SECONDS)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(VERIFIED)
                .where(
                    and_(
                        VERIFIED.c.id == 1,
                        or_(
                            VERIFIED.c.lease_until.is_(None),
                            VERIFIED.c.lease_until < now,
                            VERIFIED.c.lease_owner == self._owner,
                        ),
                    )
                )
                .values(lease_owner=self._owner, lease_until=until)
            )
        return bool(result.rowcount)

    async def _release(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(VERIFIED)
                .where(and_(VERIFIED.c.id == 1, VERIFIED.c.lease_owner == self._owner))
                .values(lease_owner=None, lease_until=None)
            )

    async def _save(self, seq: int, digest: str) -> None:
        """Remember progress and renew the lease, only while this process holds it."""
        now = self._now()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(VERIFIED)
                .where(
                    and_(
                        VERIFIED.c.id == 1,
                        VERIFIED.c.lease_owner == self._owner,
                        VERIFIED.c.seq <= seq,
                    )
                )
                .values(
                    seq=seq,
                    hash=digest,
                    verified_at=now,
                    lease_until=now + dt.timedelta(seconds=LEASE_SECONDS),
                )
            )

    async def _verify(self) -> VerifyResult:
        async with self._engine.connect() as conn:
            start = (await conn.execute(select(VERIFIED.c.seq, VERIFIED.c.hash))).one()
            # The head first: events appended while this run reads are left to the next one.
            head = (await conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1))).one()
            anchor: Any = None
            if int(start.seq) > 0:
                anchor = (
                    await conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == start.seq))
                ).one_or_none()
        seq, prev = int(start.seq), str(start.hash)
        head_seq, head_hash = int(head.seq), str(head.hash)
        if seq > 0 and (anchor is None or anchor.hash != prev):
            return VerifyResult(
                False,
                seq - 1,
                seq - 1,
                prev,
                seq,
                "the last verified event was changed or removed (history rewritten); run "
                "`bulwark audit verify` for the full recomputation",
            )
        if head_seq < seq:
            return VerifyResult(
                False,
                head_seq,
                head_seq,
                head_hash,
                head_seq + 1,
                "the stored head is behind events already verified (events removed)",
            )
        try:
            checker = await self._tree_checker(seq)
        except LookupError:
            return VerifyResult(
                False, seq, seq, prev, seq + 1, "the Merkle tree lacks nodes of verified events"
            )
        configs: list[str] = []
        try:
            return await self._pages(seq, prev, head_seq, head_hash, configs, checker)
        finally:
            runs = [c for i, c in enumerate(configs) if c and (i == 0 or configs[i - 1] != c)]
            self.disagreements = interleaved(runs)

    async def _tree_checker(self, seq: int) -> TreeChecker:
        """A checker of the tree nodes the events after ``seq`` complete.

        It starts from the stored frontier at ``seq``, trusted as the chain up to there is:
        the full recomputation (``bulwark audit verify``) re-hashes the whole tree.
        """
        if seq == 0:
            return TreeChecker(self._engine.connect)
        async with self._engine.connect() as conn:
            frontier = await read_frontier(conn, seq)
        return TreeChecker(self._engine.connect, frontier)

    async def _pages(
        self,
        seq: int,
        prev: str,
        head_seq: int,
        head_hash: str,
        configs: list[str],
        checker: TreeChecker,
    ) -> VerifyResult:
        while seq < head_seq:
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(*CHAIN_COLUMNS)
                        .where(and_(EVENTS.c.seq > seq, EVENTS.c.seq <= head_seq))
                        .order_by(EVENTS.c.seq)
                        .limit(self._page)
                    )
                ).all()
            if not rows:
                break
            configs.extend(_config_text(str(row.body)) for row in rows)
            for row in rows:
                fault = _row_fault(row, seq + 1, prev)
                if fault is not None:
                    await self._save(seq, prev)
                    return VerifyResult(False, seq, seq, prev, seq + 1, fault)
                seq, prev = seq + 1, str(row.hash)
            await checker.add_many([str(row.body) for row in rows])
            if checker.fault is not None:
                first, what = checker.fault
                return VerifyResult(False, first - 1, first - 1, prev, first, what)
            await self._save(seq, prev)
        if seq != head_seq or prev != head_hash:
            return VerifyResult(
                False,
                seq,
                seq,
                prev,
                min(head_seq, seq) + 1,
                "the stored head does not match the last event (events removed or added)",
            )
        return VerifyResult(True, seq, seq, prev, None)


def _config_text(body: str) -> str:
    """The ``"config":{...}`` fragment of a canonical body, without parsing it (fast)."""
    start = body.find('"config":{')
    if start < 0:
        return ""
    end = body.find("}", start)
    return "{" + body[start : end + 1] + "}" if end > 0 else ""


class VerifierHost(Protocol):
    """What keeps a process's verifier (``app.runtime.Runtime``)."""

    state: AsyncEngine
    audit_verifier: IncrementalVerifier | None


def verifier_of(runtime: VerifierHost) -> IncrementalVerifier:
    """The process's verifier, created on first use (kept in ``runtime.audit_verifier``).

    Its leases go by the state database's clock, which every replica compares them with.
    """
    from app.core.clock import clock_of

    if runtime.audit_verifier is None:
        runtime.audit_verifier = IncrementalVerifier(runtime.state, now=clock_of(runtime).now)
    return runtime.audit_verifier
