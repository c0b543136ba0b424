"""Revoking orders: refused from then on, on every replica (the state database is shared)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.audit.writer import Appended, AuditWriter, Entry
from app.core.models import utcnow
from app.orders.models import Revocation

REVOCATIONS = Revocation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RevocationResult:
    iss: str
    jti: str
    already_revoked: bool
    audit: Appended


async def revoke_order(
    audit: AuditWriter, *, iss: str, jti: str, reason: str, by: str, caller_id: int | None
) -> RevocationResult:
    """Revoke (iss, jti), audited in the same transaction.

    Revoking twice is not an error (the first revocation stands); revoking an order never
    seen is allowed, since it may be presented later.
    """
    found: dict[str, bool] = {}

    async def apply(conn: AsyncConnection) -> None:
        key = and_(REVOCATIONS.c.iss == iss, REVOCATIONS.c.jti == jti)
        exists = (await conn.execute(select(REVOCATIONS.c.jti).where(key))).first() is not None
        found["already"] = exists
        if not exists:
            await conn.execute(
                insert(REVOCATIONS).values(
                    iss=iss, jti=jti, reason=reason, revoked_by=by, revoked_at=utcnow()
                )
            )

    appended = await audit.append(
        Entry(
            kind="revocation",
            effect="info",
            body={"v": 1, "caller": by, "order": {"iss": iss, "jti": jti}, "reason": reason},
            caller_id=caller_id,
            apply=apply,
        )
    )
    return RevocationResult(iss, jti, found.get("already", False), appended)
