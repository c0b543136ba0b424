"""Whether a batch whose commit reply was lost is in the log already.

``bulwark_append`` commits in its own implicit transaction. If the connection drops after
the commit but before the reply arrives, the writer cannot tell from the error whether the
batch was written. Deciding it again under the lock would append it a second time (a
duplicate permit, or a permit for a request that was answered 503). So before deciding again
the writer asks, under the head's lock, whether the batch's last event is in the log: its
hash chains every event of the batch, their times included, so a match means exactly that
batch landed, and the writer answers its requests from the plan it sent.
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.audit.models import AuditEvent
from app.core.models import table_of

EVENTS = table_of(AuditEvent)


async def landed(conn: AsyncConnection, seq: int, hash_: str) -> bool:
    """True when the event ``(seq, hash_)`` (a batch's last) is in the log."""
    found = await conn.execute(
        select(EVENTS.c.seq).where(and_(EVENTS.c.seq == seq, EVENTS.c.hash == hash_))
    )
    return found.first() is not None
