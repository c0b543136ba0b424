"""The disclosure path: caller, then order, then policy, then the store, then the audit log.

One function per step, in the order they run. Nothing leaves this module unless the
policy permitted it, every category was read without fault, and the audit event (with the
order's use and the disclosure row, in one transaction) is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Protocol

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.chain import canonical
from app.audit.pseudonyms import Pseudonymizer
from app.audit.writer import Appended, AuditWriter, Entry, UseClaim
from app.callers.service import Caller
from app.core.atrest import sealer_of
from app.core.clock import clock_of
from app.core.config import Settings
from app.core.models import table_of
from app.core.problems import (
    AuditUnavailable,
    AuthError,
    BulwarkError,
    DeniedError,
    RequestInvalid,
    StoreUnavailable,
    receipt_fields,
)
from app.core.reasons import Reason, message_of
from app.disclosures.cursor import (
    Binding,
    Claimed,
    Continuations,
    ContinuationWrite,
    check_handle,
    request_digest,
)
from app.disclosures.models import DisclosureRow
from app.disclosures.schemas import DisclosureRequest
from app.disclosures.spent import SpentOrders
from app.holds.service import HoldRow, hold_rows
from app.notices.service import notice_row
from app.orders.approvals import ApprovalCheck, ApprovalVerifier
from app.orders.checks import OrderCheck
from app.orders.models import OrderClaims, OrderUse, Revocation
from app.orders.tokens import OrderVerifier
from app.policy.decision import AccessRequest, Decision, Effect, OrderState
from app.policy.engine import evaluate
from app.policy.models import LoadedPolicy
from app.records.base import Record, RecordsStore
from app.records.categories import Category
from app.records.cursor import CursorInvalid
from app.records.obligations import Obligations, Period

logger = logging.getLogger("bulwark.disclosures")

#: The one reason label metrics give a decision about a banded instrument (app.metrics).
BANDED_LABEL = "banded_instrument"

USES = table_of(OrderUse)
REVOCATIONS = table_of(Revocation)


class Services(Protocol):
    """What the disclosure path uses of a process's runtime (``app.runtime.Runtime``).

    A protocol, so that this domain does not import the API wiring (docs/architecture.md).
    """

    @property
    def settings(self) -> Settings: ...
    @property
    def state(self) -> AsyncEngine: ...
    @property
    def policy(self) -> LoadedPolicy: ...
    @property
    def verifier(self) -> OrderVerifier: ...
    @property
    def approvals(self) -> ApprovalVerifier: ...
    @property
    def store(self) -> RecordsStore: ...
    @property
    def audit(self) -> AuditWriter: ...
    @property
    def pseudonymize(self) -> Pseudonymizer: ...
    @property
    def cursors(self) -> Continuations: ...
    @property
    def spent_orders(self) -> SpentOrders: ...


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
    approval: ApprovalCheck | None = None  # counsel's approval, where one was verified


async def evaluate_request(
    runtime: Services,
    body: DisclosureRequest,
    *,
    now: dt.datetime,
    continuation: bool = False,
    read_state: bool = True,
) -> Evaluated:
    """Verify the order, read its state, and evaluate the policy. No record is touched.

    ``read_state=False`` skips the read of the order's uses and revocation, taking them from
    what this process already knows (:class:`~app.disclosures.spent.SpentOrders`). The disclosure
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
    approval = _approval(runtime, body, now, check)

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
    patron = runtime.pseudonymize(body.patron_id)
    return Evaluated(access, check, decision, patron, state.uses, approval)


def _approval(
    runtime: Services, body: DisclosureRequest, now: dt.datetime, check: OrderCheck | None = None
) -> ApprovalCheck | None:
    # Verified only where the policy asks for it, or the order is a custodian's transcription
    # (two-person control); the engine decides what a result means.
    transcribed = check is not None and check.issuer is not None and check.issuer.transcribes
    required = runtime.policy.policy.counsel.require_approval or transcribed
    if body.counsel_approval is None or not required:
        return None
    return runtime.approvals.verify(body.counsel_approval, now)


def _hold(runtime: Services, ev: Evaluated) -> tuple[HoldRow, ...]:
    """The legal holds an evaluated order places, written with the event that records it."""
    # Only a verified order places a hold (signature, claims and validity all checked).
    claims = ev.check.claims if ev.check and ev.check.verified else None
    # Stored sealed: the state database alone does not name the patron (app/core/atrest.py).
    sealer = sealer_of(runtime)
    rows = hold_rows(claims, runtime.policy.policy.legal_holds.margin_days, runtime.settings.clock)
    return tuple(replace(row, patron_id=sealer.seal(row.patron_id)) for row in rows)


def _check_categories(runtime: Services, categories: list[Category]) -> None:
    mapped = runtime.store.fields()
    missing = [c.value for c in categories if c not in mapped]
    if missing:
        raise RequestInvalid(
            f"Categories not kept by this deployment: {', '.join(missing)}.",
            [{"loc": ["body", "categories"], "type": "category_not_mapped"}],
        )


async def _order_state(runtime: Services, claims: OrderClaims | None) -> OrderState:
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
        summary: dict[str, Any] = {
            "iss": c.iss,
            "jti": c.jti,
            "case": c.case,
            "instrument": c.instrument.value,
            "verified": check.verified,
        }
        if c.paper_sha256 is not None:
            # Beside the event: the auditor holds the scanned paper against the log.
            summary["paper_sha256"] = c.paper_sha256
        return summary
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
    body = {
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
    if ev.approval is not None:
        # Who approved (counsel's office and person), so that the log shows both signatures.
        body["approval"] = {
            "by": ev.approval.approver,
            "person": ev.approval.person,
            "verified": ev.approval.verified,
        }
    return body


def _codes(reasons: tuple[Reason, ...] | list[Reason]) -> list[str]:
    return [r.value for r in reasons]


# --------------------------------------------------------------------------- entry points


async def dry_run(
    runtime: Services, caller: Caller, body: DisclosureRequest, request_id: str | None
) -> tuple[Evaluated, Appended]:
    """``POST /v1/decisions``: evaluate and record, consume nothing, touch no record."""
    ev = await evaluate_request(runtime, body, now=clock_of(runtime).now())
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
    runtime: Services, caller: Caller, body: DisclosureRequest, request_id: str | None
) -> Released:
    """``POST /v1/disclosures``: the whole path; returns the response body.

    A first page spends one use of the order and reads the whole result set (the snapshot);
    a request with a ``cursor`` continues that snapshot (:func:`_continue`). Whatever fails
    after the decision is recorded as an ``error`` event before the 5xx answer goes out, and
    the use is consumed only with the permit event that releases the records.
    """
    if body.cursor is not None:
        return await _continue(runtime, caller, body, request_id)
    now = clock_of(runtime).now()
    ev = await evaluate_request(runtime, body, now=now, read_state=False)
    base = event_body(caller, request_id, ev, _codes(ev.decision.reasons))
    holds = _hold(runtime, ev)
    if not ev.decision.permitted:
        await _record_refusal(runtime, caller, base, ev.decision.reasons, holds=holds)
    obligations = ev.decision.obligations
    claims = ev.check.claims if ev.check else None
    if obligations is None or claims is None:  # a permit always has both; fail closed if not
        raise BulwarkError(Reason.INTERNAL)
    async with _on_the_record(runtime, caller, base, "disclosure", holds):
        snapshot = await _read_store(runtime, obligations)
        return await _release(runtime, caller, ev, claims, base, snapshot, holds, now)


@contextlib.asynccontextmanager
async def _on_the_record(
    runtime: Services,
    caller: Caller,
    base: dict[str, Any],
    kind: str,
    holds: tuple[HoldRow, ...] = (),
) -> AsyncIterator[None]:
    """Record any failure after a decision as an ``error`` event, then answer 5xx.

    Refusals and an audit log that cannot be written pass through as they are (the first is
    already on the record, the second cannot be). A store fault is ``store.unavailable``
    (503); anything else ``internal.error`` (500). Nothing was released and no use consumed:
    the use is consumed only in the transaction of the event that releases.
    """
    try:
        yield
    except (DeniedError, AuthError, AuditUnavailable, RequestInvalid):
        raise
    except Exception as exc:
        store = isinstance(exc, StoreUnavailable)
        reason = Reason.STORE_UNAVAILABLE if store else Reason.INTERNAL
        if not store:
            logger.error(
                "disclosure failed after its decision", extra={"error_type": type(exc).__name__}
            )
        appended = await runtime.audit.append(
            Entry(
                kind=kind,
                effect="error",
                body={**base, "reasons": [reason.value]},
                caller_id=caller.id,
                holds=holds,
            )
        )
        if store:
            detail = exc.detail if isinstance(exc, StoreUnavailable) else None
            raise StoreUnavailable(
                detail, audit_seq=appended.seq, receipt=appended.receipt
            ) from None
        raise BulwarkError(
            Reason.INTERNAL, extra={"audit_seq": appended.seq, **receipt_fields(appended.receipt)}
        ) from None


async def _record_refusal(
    runtime: Services,
    caller: Caller,
    base: dict[str, Any],
    reasons: tuple[Reason, ...],
    *,
    holds: tuple[HoldRow, ...] = (),
    kind: str = "disclosure",
) -> NoReturn:
    appended = await runtime.audit.append(
        Entry(kind=kind, effect=Effect.DENY.value, body=base, caller_id=caller.id, holds=holds)
    )
    if Reason.CALLER_UNAUTHENTICATED in appended.refused:
        raise AuthError()
    raise DeniedError(
        list(reasons) or [Reason.ORDER_MISSING],
        audit_seq=appended.seq,
        receipt=appended.receipt,
        banded=_banded(runtime, base.get("order")),
    )


def _banded(runtime: Services, order: Any) -> bool:
    """Whether an event's order is a verified one of an instrument the policy bands."""
    if not isinstance(order, dict) or order.get("verified") is not True:
        return False
    banded = {i.value for i in runtime.policy.policy.transparency.banded_instruments}
    return order.get("instrument") in banded


def metrics_reasons(runtime: Services, ev: Evaluated) -> list[str]:
    """The reason codes metrics may count for ``ev``: none one by one for a banded instrument."""
    if _banded(runtime, _order_summary(ev.check)):
        return [BANDED_LABEL]
    return [r.value for r in ev.decision.reasons]


async def _read_store(runtime: Services, obligations: Obligations) -> dict[Category, list[Record]]:
    """Every record of every permitted category: the use's whole result set.

    Categories are read concurrently; one failure and nothing is released. Each category is
    read to its end, a page of the store's at a time, so that the use releases exactly what
    matched when it was spent (later pages come from this snapshot, not from the store).
    """
    limit = runtime.settings.max_records_per_response
    todo = list(obligations.categories)

    async def fetch(category: Category) -> list[Record]:
        page = await runtime.store.fetch(obligations, category, limit=limit)
        records = page.records
        if page.next_cursor is not None:
            records = list(records)
        while page.next_cursor is not None:
            page = await runtime.store.fetch(
                obligations, category, limit=limit, cursor=page.next_cursor
            )
            records.extend(page.records)
        return records

    try:
        if len(todo) == 1:  # most requests: no tasks to start for one read
            results = [await fetch(todo[0])]
        else:
            # A task group cancels the other reads as soon as one fails: nothing is released.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(fetch(c)) for c in todo]
            results = [task.result() for task in tasks]
    except Exception as exc:
        errors = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
        if any(isinstance(e, CursorInvalid) for e in errors):
            raise StoreUnavailable("The records store's paging failed.") from None
        detail = next((e.detail for e in errors if isinstance(e, StoreUnavailable)), None)
        raise StoreUnavailable(detail) from None
    return dict(zip(todo, results, strict=True))


def _encode(records: dict[str, list[Record]]) -> str:
    """Canonical JSON of records read from a store: refused unless every value is sound.

    A value counts as read only once it encodes: finite numbers (no NaN or infinity) and
    text that is valid Unicode (no lone surrogates, which an HTTP store can send escaped).
    """
    try:
        text = canonical(records)
        text.encode("utf-8")
    except (ValueError, TypeError, UnicodeError):
        raise StoreUnavailable(
            "The records store answered a value that is not valid data."
        ) from None
    return text


def _split(
    snapshot: Mapping[str, list[Record]], limit: int
) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
    """The next page (at most ``limit`` records per category) and what is left after it."""
    page = {c: rows[:limit] for c, rows in snapshot.items()}
    rest = {c: rows[limit:] for c, rows in snapshot.items() if len(rows) > limit}
    return page, rest


async def _release(
    runtime: Services,
    caller: Caller,
    ev: Evaluated,
    claims: OrderClaims,
    base: dict[str, Any],
    snapshot: dict[Category, list[Record]],
    holds: tuple[HoldRow, ...],
    now: dt.datetime,
) -> Released:
    obligations = ev.decision.obligations
    assert obligations is not None
    limit = runtime.settings.max_records_per_response
    records, rest = _split({c.value: rows for c, rows in snapshot.items()}, limit)
    records_json = _encode(records)  # encoded once: for the digest and for the answer
    totals = {c.value: len(rows) for c, rows in snapshot.items()}
    disclosure_id = str(uuid.uuid4())
    released = {
        "categories": list(records),
        **obligations.period.as_json(),
        "counts": {k: len(v) for k, v in records.items()},
        "digest": hashlib.sha256(records_json.encode("utf-8")).hexdigest(),
        "truncated": bool(rest),
        "page": 1,
        "totals": totals,
    }
    if rest:
        _encode(rest)  # every value of the snapshot is checked before any of it is released
    handle, change = _next_page(runtime, caller, ev, claims, now, disclosure_id, 2, rest)
    entry = Entry(
        kind="disclosure",
        effect=Effect.PERMIT.value,
        body={**base, "disclosure_id": disclosure_id, "released": released},
        caller_id=caller.id,
        order=(claims.iss, claims.jti),
        use=UseClaim(claims.iss, claims.jti, claims.max_uses),
        disclosure=DisclosureRow(
            id=disclosure_id,
            iss=claims.iss,
            jti=claims.jti,
            caller=caller.name,
            patron_pseudonym=ev.patron,
            categories=json.dumps(list(records)),
            period_from=obligations.period.start.isoformat(),
            period_to=obligations.period.end.isoformat(),
            # The whole use: its later pages release the rest of this snapshot, nothing more.
            record_count=sum(totals.values()),
        ),
        # The hold stands even if the permit is refused under the lock (the order was
        # evaluated); the patron's notice stands or falls with the permit.
        holds=holds,
        holds_regardless=True,
        notice=notice_row(
            disclosure_id=disclosure_id,
            patron_id=sealer_of(runtime).seal(ev.access.patron_id),
            claims=claims,
            categories=list(records),
            period=obligations.period,
            now=now,
            clock=runtime.settings.clock,
        ),
        change=change,
    )
    appended = await runtime.audit.append(entry)
    runtime.spent_orders.learn(claims, appended)
    if appended.refused:
        _raise_refused(appended, _banded(runtime, base.get("order")))
    uses = appended.uses if appended.uses is not None else ev.uses
    return _answer(
        disclosure_id, ev, claims, max(claims.max_uses - uses, 0), appended, handle, records_json
    )


def _answer(
    disclosure_id: str,
    ev: Evaluated,
    claims: OrderClaims,
    uses_left: int,
    appended: Appended,
    handle: str | None,
    records_json: str,
) -> Released:
    envelope = {
        "disclosure_id": disclosure_id,
        "decision": {"effect": "permit", "reasons": [], "policy": ev.decision.policy},
        "order": {
            "iss": claims.iss,
            "jti": claims.jti,
            "case": claims.case,
            "uses_left": uses_left,
        },
        "truncated": handle is not None,
        "cursor": handle,
        "audit": {"seq": appended.seq, "hash": appended.hash, **appended.receipt},
    }
    return Released(envelope, records_json)


def _next_page(
    runtime: Services,
    caller: Caller,
    ev: Evaluated,
    claims: OrderClaims,
    now: dt.datetime,
    disclosure_id: str,
    page: int,
    rest: dict[str, list[Record]],
) -> tuple[str | None, ContinuationWrite | None]:
    """The handle of page ``page`` holding ``rest``, and the write that keeps it (Entry.change).

    ``(None, None)`` when nothing is left: the disclosure ends with this page.
    """
    if not rest:
        return None, None
    binding = Binding(
        disclosure_id=disclosure_id,
        caller_id=caller.id,
        iss=claims.iss,
        jti=claims.jti,
        request=_request_digest(ev),
        expires_at=_window_end(runtime, claims, now),
    )
    handle, row = runtime.cursors.seal(binding, page, rest)
    return handle, ContinuationWrite(row)


def _request_digest(ev: Evaluated) -> str:
    return request_digest(
        ev.patron,
        [c.value for c in ev.access.categories],
        (ev.access.period.start.isoformat(), ev.access.period.end.isoformat()),
    )


def _window_end(runtime: Services, claims: OrderClaims, now: dt.datetime) -> dt.datetime:
    """A continuation's end: the configured window, never past the order's expiry."""
    window = now + dt.timedelta(minutes=runtime.settings.cursor_window_minutes)
    return min(window, dt.datetime.fromtimestamp(claims.exp, dt.UTC))


async def _continue(
    runtime: Services, caller: Caller, body: DisclosureRequest, request_id: str | None
) -> Released:
    """The next page of a use: the same caller, request and order, once, within the window.

    Audited as a page (kind ``disclosure_page``) of the one disclosure, not as a new permit:
    no use, no notice, no hold, no disclosure row. The order is evaluated again (a revoked or
    expired order stops its pages); the records come from the use's snapshot.
    """
    assert body.cursor is not None
    check_handle(body.cursor)  # a malformed cursor is a bad request, before anything else
    now = clock_of(runtime).now()
    ev = await evaluate_request(runtime, body, now=now, continuation=True)
    base = event_body(caller, request_id, ev, _codes(ev.decision.reasons))
    kind = "disclosure_page"
    if not ev.decision.permitted:
        await _record_refusal(runtime, caller, base, ev.decision.reasons, kind=kind)
    claims = ev.check.claims if ev.check else None
    if claims is None:
        raise BulwarkError(Reason.INTERNAL)
    try:
        claimed = await runtime.cursors.claim(
            runtime.state,
            body.cursor,
            caller_id=caller.id,
            iss=claims.iss,
            jti=claims.jti,
            request=_request_digest(ev),
            now=now,
        )
    except Exception:
        raise BulwarkError(Reason.STATE_UNAVAILABLE) from None
    if claimed is None:
        refused = {**base, "reasons": [Reason.CURSOR_INVALID.value]}
        await _record_refusal(runtime, caller, refused, (Reason.CURSOR_INVALID,), kind=kind)
    # Claimed means spent: a page whose event cannot be written is not put back, because the
    # event may have landed all the same (a timeout), and each page is given once at most.
    async with _on_the_record(runtime, caller, base, kind):
        return await _release_page(runtime, caller, ev, claims, base, claimed, now)


async def _release_page(
    runtime: Services,
    caller: Caller,
    ev: Evaluated,
    claims: OrderClaims,
    base: dict[str, Any],
    claimed: Claimed,
    now: dt.datetime,
) -> Released:
    limit = runtime.settings.max_records_per_response
    records, rest = _split(claimed.remaining, limit)
    records_json = _encode(records)
    handle, change = _next_page(
        runtime, caller, ev, claims, now, claimed.disclosure_id, claimed.page + 1, rest
    )
    page_id = str(uuid.uuid4())
    released = {
        "categories": list(records),
        "counts": {k: len(v) for k, v in records.items()},
        "digest": hashlib.sha256(records_json.encode("utf-8")).hexdigest(),
        "truncated": bool(rest),
        "page": claimed.page,
        "continuation_of": claimed.disclosure_id,
    }
    entry = Entry(
        kind="disclosure_page",
        effect=Effect.PERMIT.value,
        body={**base, "disclosure_id": page_id, "released": released},
        caller_id=caller.id,
        order=(claims.iss, claims.jti),
        change=change,
    )
    appended = await runtime.audit.append(entry)
    if appended.refused:
        _raise_refused(appended, _banded(runtime, base.get("order")))
    uses = max(claims.max_uses - ev.uses, 0)
    return _answer(page_id, ev, claims, uses, appended, handle, records_json)


def _raise_refused(appended: Appended, banded: bool) -> NoReturn:
    if Reason.CALLER_UNAUTHENTICATED in appended.refused:
        raise AuthError()
    raise DeniedError(
        list(appended.refused), audit_seq=appended.seq, receipt=appended.receipt, banded=banded
    )


def reasons_out(reasons: tuple[Reason, ...]) -> list[dict[str, str]]:
    return [{"code": r.value, "message": message_of(r)} for r in reasons]
