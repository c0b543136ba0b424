"""The disclosure path: caller, then order, then policy, then the store, then the audit log.

One function per step, in the order they run. Nothing leaves this module unless the
policy permitted it, every category was read without fault, and the audit event (with the
order's use and the disclosure row, in one transaction) is durable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select

from app.audit.chain import canonical
from app.audit.writer import Appended, Entry, UseClaim
from app.callers.service import Caller
from app.core.models import utcnow
from app.core.problems import (
    AuthError,
    BulwarkError,
    DeniedError,
    RequestInvalid,
    StoreUnavailable,
)
from app.core.reasons import Reason, message_of
from app.disclosures.cursor import CursorState
from app.disclosures.schemas import DisclosureRequest
from app.holds.service import HoldRow, hold_rows
from app.notices.service import notice_row
from app.orders.approvals import ApprovalCheck
from app.orders.checks import OrderCheck
from app.orders.models import Category, OrderClaims, OrderUse, Revocation
from app.policy.decision import AccessRequest, Decision, Effect, Obligations, OrderState, Period
from app.policy.engine import evaluate
from app.records.base import Page
from app.records.cursor import CursorInvalid
from app.runtime import Runtime

USES = OrderUse.__table__  # type: ignore[attr-defined]
REVOCATIONS = Revocation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Released:
    """A permitted disclosure's answer: its envelope, and its records as canonical JSON.

    The records leave as the very text whose SHA-256 is the ``released.digest`` of the audit
    event (so a recipient can check the digest against what it got), and are encoded once.
    """

    envelope: dict[str, Any]
    records_json: str

    def body(self) -> bytes:
        """The response body: the envelope with ``records`` added."""
        head = json.dumps(self.envelope, ensure_ascii=False, separators=(",", ":"))
        return f'{head[:-1]},"records":{self.records_json}}}'.encode()


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A request evaluated against a verified (or failed) order."""

    access: AccessRequest
    check: OrderCheck | None
    decision: Decision
    patron: str  # the pseudonym: the only form of the patron id the audit log sees
    uses: int  # uses of the order already consumed, as read before evaluation


async def evaluate_request(
    runtime: Runtime,
    body: DisclosureRequest,
    *,
    now: dt.datetime,
    continuation: bool = False,
    read_state: bool = True,
) -> Evaluated:
    """Verify the order, read its state, and evaluate the policy. No record is touched.

    ``read_state=False`` skips the read of the order's uses and revocation, taking them from
    what this process already knows (:class:`~app.orders.service.SpentOrders`). The disclosure
    path does so for speed: the audit transaction re-checks both under the chain's lock before
    anything is released, so a stale view can only turn a permit into a refusal, never the
    reverse. A refusal of a verified order then reads the state after all, so that it lists
    every reason that applies; the token and any approval are verified once either way.
    """
    _check_categories(runtime, body.categories)
    access = AccessRequest(
        purpose=body.purpose,
        patron_id=body.patron_id,
        categories=tuple(body.categories),
        period=Period(body.from_, body.to),
        has_order=body.court_order is not None,
    )
    check = runtime.verifier.verify(body.court_order, now) if body.court_order else None
    claims = check.claims if check else None
    approval = _approval(runtime, body, now)

    def decide(state: OrderState) -> Decision:
        return evaluate(
            access,
            check,
            # A continuation rides on the use its first page consumed.
            OrderState(revoked=state.revoked, uses=0) if continuation else state,
            runtime.policy,
            jurisdictions=runtime.settings.jurisdictions,
            mapping_fields=runtime.store.fields(),
            now=now,
            approval=approval,
        )

    state = (
        await _order_state(runtime, claims) if read_state else runtime.spent_orders.state(claims)
    )
    decision = decide(state)
    if not read_state and claims is not None and not decision.permitted:
        state = await _order_state(runtime, claims)
        decision = decide(state)
    return Evaluated(access, check, decision, runtime.pseudonymize(body.patron_id), state.uses)


def _approval(runtime: Runtime, body: DisclosureRequest, now: dt.datetime) -> ApprovalCheck | None:
    # Verified only where the policy asks for it; the engine decides what a result means.
    if body.counsel_approval is None or not runtime.policy.policy.counsel.require_approval:
        return None
    return runtime.approvals.verify(body.counsel_approval, now)


def _hold(runtime: Runtime, ev: Evaluated) -> tuple[HoldRow, ...]:
    """The legal holds an evaluated order places, written with the event that records it."""
    claims = ev.check.claims if ev.check else None
    return hold_rows(claims, runtime.policy.policy.legal_holds.margin_days, runtime.settings.clock)


def _check_categories(runtime: Runtime, categories: list[Category]) -> None:
    mapped = runtime.store.fields()
    missing = [c.value for c in categories if c not in mapped]
    if missing:
        raise RequestInvalid(
            f"Categories not kept by this deployment: {', '.join(missing)}.",
            [{"loc": ["body", "categories"], "type": "category_not_mapped"}],
        )


async def _order_state(runtime: Runtime, claims: OrderClaims | None) -> OrderState:
    if claims is None:
        return OrderState()
    uses = (
        select(USES.c.uses)
        .where(and_(USES.c.iss == claims.iss, USES.c.jti == claims.jti))
        .scalar_subquery()
    )
    revoked = (
        select(REVOCATIONS.c.jti)
        .where(and_(REVOCATIONS.c.iss == claims.iss, REVOCATIONS.c.jti == claims.jti))
        .scalar_subquery()
    )
    try:
        async with runtime.state.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One statement needs no transaction: asyncpg would otherwise wrap it in
                # BEGIN ... ROLLBACK, two more round trips on every decision.
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            row = (await conn.execute(select(uses.label("uses"), revoked.label("rev")))).one()
    except Exception:
        raise BulwarkError(Reason.STATE_UNAVAILABLE) from None
    return OrderState(revoked=row.rev is not None, uses=int(row.uses or 0))


# --------------------------------------------------------------------------- audit bodies


def _order_summary(check: OrderCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    if check.claims is not None:
        c = check.claims
        return {
            "iss": c.iss,
            "jti": c.jti,
            "case": c.case,
            "instrument": c.instrument.value,
            "verified": check.verified,
        }
    u = check.unverified
    return {
        "iss": u.get("iss"),
        "jti": u.get("jti"),
        "case": u.get("case"),
        "instrument": u.get("instrument"),
        "verified": False,
    }


def event_body(
    caller: Caller, request_id: str | None, ev: Evaluated, reasons: list[str]
) -> dict[str, Any]:
    """The audit body of a decision: who, why, under what order, for whom (pseudonym)."""
    return {
        "v": 1,
        "caller": caller.name,
        "request_id": request_id,
        "purpose": ev.access.purpose,
        "reasons": reasons,
        "policy": ev.decision.policy,
        "order": _order_summary(ev.check),
        "patron": ev.patron,
        "asked": {
            "categories": [c.value for c in ev.access.categories],
            **ev.access.period.as_json(),
        },
        "released": None,
    }


def _codes(reasons: tuple[Reason, ...] | list[Reason]) -> list[str]:
    return [r.value for r in reasons]


def _raise_refused(appended: Appended) -> None:
    if Reason.CALLER_UNAUTHENTICATED in appended.refused:
        raise AuthError()
    raise DeniedError(list(appended.refused), audit_seq=appended.seq)


# --------------------------------------------------------------------------- entry points


async def dry_run(
    runtime: Runtime, caller: Caller, body: DisclosureRequest, request_id: str | None
) -> tuple[Evaluated, Appended]:
    """``POST /v1/decisions``: evaluate and record, consume nothing, touch no record."""
    ev = await evaluate_request(runtime, body, now=utcnow())
    entry = Entry(
        kind="evaluation",
        effect=ev.decision.effect.value,
        body=event_body(caller, request_id, ev, _codes(ev.decision.reasons)),
        caller_id=caller.id,
        holds=_hold(runtime, ev),
    )
    appended = await runtime.audit.append(entry)
    if Reason.CALLER_UNAUTHENTICATED in appended.refused:
        raise AuthError()
    return ev, appended


async def disclose(
    runtime: Runtime, caller: Caller, body: DisclosureRequest, request_id: str | None
) -> Released:
    """``POST /v1/disclosures``: the whole path; returns the response body."""
    cursor = runtime.cursors.load(body.cursor) if body.cursor else None
    now = utcnow()
    ev = await evaluate_request(
        runtime, body, now=now, continuation=cursor is not None, read_state=cursor is not None
    )
    if cursor is not None:
        _check_cursor(cursor, ev, body)
    base = event_body(caller, request_id, ev, _codes(ev.decision.reasons))
    holds = _hold(runtime, ev)
    if not ev.decision.permitted:
        await _record_refusal(runtime, caller, base, ev.decision.reasons, holds=holds)
    obligations = ev.decision.obligations
    claims = ev.check.claims if ev.check else None
    if obligations is None or claims is None:  # a permit always has both; fail closed if not
        raise BulwarkError(Reason.INTERNAL)
    pages = await _read_store(runtime, caller, base, obligations, cursor, holds=holds)
    return await _release(runtime, caller, ev, claims, base, pages, cursor, holds)


async def _record_refusal(
    runtime: Runtime,
    caller: Caller,
    base: dict[str, Any],
    reasons: tuple[Reason, ...],
    *,
    holds: tuple[HoldRow, ...] = (),
) -> None:
    appended = await runtime.audit.append(
        Entry(
            kind="disclosure", effect=Effect.DENY.value, body=base, caller_id=caller.id, holds=holds
        )
    )
    if Reason.CALLER_UNAUTHENTICATED in appended.refused:
        raise AuthError()
    raise DeniedError(list(reasons) or [Reason.ORDER_MISSING], audit_seq=appended.seq)


async def _read_store(
    runtime: Runtime,
    caller: Caller,
    base: dict[str, Any],
    obligations: Obligations,
    cursor: CursorState | None,
    *,
    holds: tuple[HoldRow, ...] = (),
) -> dict[Category, Page]:
    """Every permitted category, concurrently; one failure and nothing is released."""
    limit = runtime.settings.max_records_per_response
    positions = cursor.positions if cursor else {}
    todo = [c for c in obligations.categories if cursor is None or c.value in positions]

    async def fetch(category: Category) -> Page:
        return await runtime.store.fetch(
            obligations, category, limit=limit, cursor=positions.get(category.value)
        )

    try:
        if len(todo) == 1:  # most requests: no tasks to start for one read
            pages = [await fetch(todo[0])]
        else:
            # A task group cancels the other reads as soon as one fails: nothing is released.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(fetch(c)) for c in todo]
            pages = [task.result() for task in tasks]
    except Exception as exc:
        errors = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
        if any(isinstance(e, CursorInvalid) for e in errors):
            raise RequestInvalid("The cursor does not fit this store.") from None
        detail = next((e.detail for e in errors if isinstance(e, StoreUnavailable)), None)
        appended = await runtime.audit.append(
            Entry(
                kind="disclosure",
                effect="error",
                body={**base, "reasons": [Reason.STORE_UNAVAILABLE.value]},
                caller_id=caller.id,
                holds=holds,
            )
        )
        raise StoreUnavailable(detail, audit_seq=appended.seq) from None
    return dict(zip(todo, pages, strict=True))


async def _release(
    runtime: Runtime,
    caller: Caller,
    ev: Evaluated,
    claims: OrderClaims,
    base: dict[str, Any],
    pages: dict[Category, Page],
    cursor: CursorState | None,
    holds: tuple[HoldRow, ...],
) -> Released:
    obligations = ev.decision.obligations
    assert obligations is not None
    records = {c.value: p.records for c, p in pages.items()}
    records_json = canonical(records)  # encoded once: for the digest and for the answer
    positions = {c.value: p.next_cursor for c, p in pages.items() if p.next_cursor}
    disclosure_id = str(uuid.uuid4())
    released = {
        "categories": list(records),
        **obligations.period.as_json(),
        "counts": {k: len(v) for k, v in records.items()},
        "digest": hashlib.sha256(records_json.encode("utf-8")).hexdigest(),
        "truncated": bool(positions),
    }
    if cursor is not None:
        released["continuation_of"] = cursor.disclosure_id
    entry = Entry(
        kind="disclosure",
        effect=Effect.PERMIT.value,
        body={**base, "disclosure_id": disclosure_id, "released": released},
        caller_id=caller.id,
        order=(claims.iss, claims.jti),
        use=None if cursor else UseClaim(claims.iss, claims.jti, claims.max_uses),
        disclosure={
            "id": disclosure_id,
            "iss": claims.iss,
            "jti": claims.jti,
            "caller": caller.name,
            "patron_pseudonym": ev.patron,
            "categories": json.dumps(list(records)),
            "period_from": obligations.period.start.isoformat(),
            "period_to": obligations.period.end.isoformat(),
            "record_count": sum(len(v) for v in records.values()),
        },
        # The hold stands even if the permit is refused under the lock (the order was
        # evaluated); the patron's notice (on a first page) stands or falls with the permit.
        holds=holds,
        holds_regardless=True,
        notice=(
            None
            if cursor
            else notice_row(
                disclosure_id=disclosure_id,
                patron_id=ev.access.patron_id,
                claims=claims,
                categories=list(records),
                period=obligations.period,
                now=utcnow(),
                clock=runtime.settings.clock,
            )
        ),
    )
    appended = await runtime.audit.append(entry)
    runtime.spent_orders.learn(claims, appended)
    if appended.refused:
        _raise_refused(appended)
    next_cursor = None
    if positions:
        next_cursor = runtime.cursors.dump(
            CursorState(
                disclosure_id=cursor.disclosure_id if cursor else disclosure_id,
                iss=claims.iss,
                jti=claims.jti,
                patron=ev.patron,
                categories=tuple(c.value for c in ev.access.categories),
                period=(ev.access.period.start.isoformat(), ev.access.period.end.isoformat()),
                positions=positions,
            )
        )
    uses = appended.uses if appended.uses is not None else ev.uses
    envelope = {
        "disclosure_id": disclosure_id,
        "decision": {"effect": "permit", "reasons": [], "policy": ev.decision.policy},
        "order": {
            "iss": claims.iss,
            "jti": claims.jti,
            "case": claims.case,
            "uses_left": max(claims.max_uses - uses, 0),
        },
        "truncated": bool(positions),
        "cursor": next_cursor,
        "audit": {"seq": appended.seq, "hash": appended.hash},
    }
    return Released(envelope, records_json)


def _check_cursor(cursor: CursorState, ev: Evaluated, body: DisclosureRequest) -> None:
    claims = ev.check.claims if ev.check else None
    same = (
        claims is not None
        and cursor.iss == claims.iss
        and cursor.jti == claims.jti
        and cursor.patron == ev.patron
        and cursor.categories == tuple(c.value for c in body.categories)
        and cursor.period == (body.from_.isoformat(), body.to.isoformat())
    )
    if not same:
        raise RequestInvalid("The cursor belongs to another request or order.")


def reasons_out(reasons: tuple[Reason, ...]) -> list[dict[str, str]]:
    return [{"code": r.value, "message": message_of(r)} for r in reasons]
