"""Reading and verifying the audit log, and signing checkpoints of its head.

Verification streams the log in pages of a few thousand events, so its memory does not grow
with the log. It recomputes every hash from the genesis hash, checks that sequence numbers run
without gap, that the columns auditors filter on agree with the hashed body, and that the
stored head is the last event. A checkpoint (the head, signed with the deployment's own key)
saved earlier catches what the chain alone cannot: a database administrator who rewrites or
truncates history and recomputes every hash after it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import figures
from app.audit.chain import GENESIS_HASH, canonical, chain_hash
from app.audit.models import AuditEvent, AuditHead
from app.audit.tree import TreeChecker
from app.core.models import table_of

EVENTS = table_of(AuditEvent)
#: What verifying the chain reads of each event (app/audit/incremental.py reads the same).
CHAIN_COLUMNS = (
    EVENTS.c.seq,
    EVENTS.c.ts,
    EVENTS.c.kind,
    EVENTS.c.effect,
    EVENTS.c.body,
    EVENTS.c.prev_hash,
    EVENTS.c.hash,
)
HEAD = table_of(AuditHead)
PAGE = 5000


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of a verification (docs/audit.md)."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


async def _rows(engine: AsyncEngine, after: int = 0) -> AsyncIterator[Any]:
    """Every event after ``after`` in order, a page at a time (keyset, not offset)."""
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*CHAIN_COLUMNS)
                    .where(EVENTS.c.seq > after)
                    .order_by(EVENTS.c.seq)
                    .limit(PAGE)
                )
            ).all()
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        after = int(rows[-1].seq)


def _row_fault(row: Any, expected_seq: int, prev: str) -> str | None:
    seq = int(row.seq)
    if seq != expected_seq:
        return f"sequence gap or insertion: expected {expected_seq}, found {seq}"
    if row.prev_hash != prev:
        return "prev_hash does not match the previous event's hash"
    if chain_hash(prev, row.body) != row.hash:
        return "hash does not match the event's body"
    # Canonical bodies have sorted keys, so these fragments are exact: the columns that
    # auditors query must say what the hashed body says.
    body = row.body
    if (
        f'"seq":{seq},' not in body
        or f'"kind":{json.dumps(row.kind)}' not in body
        or f'"effect":{json.dumps(row.effect)}' not in body
    ):
        return "indexed columns disagree with the hashed body"
    # Every event since the first release hashes its time; the column must say the same, or
    # a rewritten ts (which moves an event between report periods) would pass.
    if f'"ts":"{_stamp(row.ts)}"' not in body:
        return "the event's time disagrees with the hashed body"
    return None


def _stamp(ts: dt.datetime) -> str:
    """An event time as the writer puts it in the body (UTC, microseconds)."""
    return ts.astimezone(dt.UTC).isoformat(timespec="microseconds")


async def verify_chain(
    engine: AsyncEngine, *, upto: int | None = None, tz: dt.tzinfo = dt.UTC
) -> VerifyResult:
    """Verify the whole chain from genesis; stops at the first bad event.

    A whole-chain run also recounts the transparency report's figures from the events and
    compares them with the stored ones (:mod:`app.audit.figures`).
    """
    prev, expected, count = GENESIS_HASH, 1, 0
    counted: Counter[figures.Key] = Counter()
    first_of_day: dict[dt.date, int] = {}
    # The whole log is also re-hashed into its Merkle tree and compared with the stored one
    # (app/audit/tree.py); a chain fault, found first, is reported before a tree fault.
    checker = TreeChecker(engine.connect) if upto is None else None
    bodies: list[str] = []  # checked into the tree a page at a time
    async for row in _rows(engine):
        if upto is not None and int(row.seq) > upto:
            break
        fault = _row_fault(row, expected, prev)
        if fault is not None:
            return VerifyResult(False, count, expected - 1, prev, expected, fault)
        if upto is None and row.kind in figures.KINDS:
            day = row.ts.astimezone(tz).date()  # the library's day, as the writer keeps it
            first_of_day.setdefault(day, expected)
            for line, measure, item, n in figures.figures_of(
                row.kind, row.effect, json.loads(row.body)
            ):
                counted[(day, line, measure, item)] += n
        if checker is not None:
            bodies.append(row.body)
            if len(bodies) == PAGE:
                await checker.add_many(bodies)
                bodies.clear()
        prev, expected, count = str(row.hash), expected + 1, count + 1
    if checker is not None:
        await checker.add_many(bodies)
        await checker.finish()
    if upto is None:
        async with engine.connect() as conn:
            # Figures first, head second: an append between the two moves the head, which the
            # check below reports; figures read after the head could count an unread event.
            found = await figures.stored(conn)
            head = (await conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1))).one()
        if int(head.seq) != count or head.hash != prev:
            return VerifyResult(
                False,
                count,
                count,
                prev,
                min(int(head.seq), count) + 1,
                "the stored head does not match the last event (events removed or added)",
            )
        days = figures.disagreeing_days(counted, found)
        if days:
            return VerifyResult(
                False,
                count,
                count,
                prev,
                first_of_day.get(days[0], count),
                f"the report's figures for {days[0].isoformat()} disagree with the chain",
            )
    if checker is not None and checker.fault is not None:
        return VerifyResult(False, count, count, prev, checker.fault[0], checker.fault[1])
    return VerifyResult(True, count, count, prev, None)


async def list_events(engine: AsyncEngine, *, after: int, limit: int) -> list[dict[str, Any]]:
    """A page of events in order, each with its parsed body."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(EVENTS).where(EVENTS.c.seq > after).order_by(EVENTS.c.seq).limit(limit)
            )
        ).all()
    return [_event_json(row) for row in rows]


def _event_json(row: Any) -> dict[str, Any]:
    return {
        "seq": int(row.seq),
        "ts": row.ts.isoformat(),
        "kind": row.kind,
        "effect": row.effect,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "body": json.loads(row.body),
    }


async def export_events(
    engine: AsyncEngine, *, start: dt.datetime | None, end: dt.datetime | None
) -> AsyncIterator[dict[str, Any]]:
    """Events whose time lies in [start, end), streamed; each line verifiable on its own."""
    after = 0
    while True:
        cond = [EVENTS.c.seq > after]
        if start is not None:
            cond.append(EVENTS.c.ts >= start)
        if end is not None:
            cond.append(EVENTS.c.ts < end)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(EVENTS).where(and_(*cond)).order_by(EVENTS.c.seq).limit(PAGE)
                )
            ).all()
        for row in rows:
            yield {**_event_json(row), "body_canonical": row.body}
        if len(rows) < PAGE:
            return
        after = int(rows[-1].seq)


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    ts: str
    key_id: str


def public_key_id(key: ec.EllipticCurvePublicKey) -> str:
    """A stable id for the deployment's checkpoint key: sha256 of its DER, shortened."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    from hashlib import sha256

    return sha256(der).hexdigest()[:16]


async def make_checkpoint(engine: AsyncEngine, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The head, signed (ECDSA P-256, SHA-256) over its canonical JSON."""
    async with engine.connect() as conn:
        head = (await conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1))).one()
    public = key.public_key()
    cp = Checkpoint(
        seq=int(head.seq),
        hash=str(head.hash),
        ts=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        key_id=public_key_id(public),
    )
    signature = key.sign(canonical(asdict(cp)).encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return {
        "checkpoint": asdict(cp),
        "signature": base64.b64encode(signature).decode("ascii"),
        "algorithm": "ECDSA-P256-SHA256",
        "public_key": pem,
    }


class CheckpointInvalid(ValueError):
    """The checkpoint is malformed or its signature does not verify."""


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    """The deployment's checkpoint public key from PEM (what GET /v1/audit/checkpoint shows)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise CheckpointInvalid("the public key file is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CheckpointInvalid("the checkpoint public key must be an EC P-256 key")
    return key


def check_checkpoint_signature(
    document: dict[str, Any], key: ec.EllipticCurvePublicKey
) -> Checkpoint:
    """Verify a saved checkpoint against the deployment's public key (not the one it carries)."""
    try:
        cp = Checkpoint(**document["checkpoint"])
        signature = base64.b64decode(document["signature"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise CheckpointInvalid("the checkpoint file is malformed") from None
    try:
        key.verify(signature, canonical(asdict(cp)).encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CheckpointInvalid("the checkpoint's signature does not verify") from None
    return cp


async def verify_since(
    engine: AsyncEngine,
    document: dict[str, Any],
    key: ec.EllipticCurvePublicKey,
    tz: dt.tzinfo = dt.UTC,
) -> VerifyResult:
    """Verify the chain, and that it still passes through the checkpoint's (seq, hash)."""
    cp = check_checkpoint_signature(document, key)
    upto = await verify_chain(engine, upto=cp.seq)
    if not upto.ok:
        return upto
    if upto.head_seq != cp.seq or upto.head_hash != cp.hash:
        return VerifyResult(
            False,
            upto.events,
            upto.head_seq,
            upto.head_hash,
            min(upto.head_seq + 1, cp.seq) if upto.head_seq < cp.seq else cp.seq,
            "the log no longer extends the checkpoint (history rewritten or truncated)",
        )
    return await verify_chain(engine, tz=tz)
