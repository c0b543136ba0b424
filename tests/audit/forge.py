"""What a careful insider does: rewrite an event and recompute the hash chain after it, then
rebuild the Merkle tree to match.

Test tooling only: it shows that the tree alone cannot stop someone with write access to the
database, and that signed, witnessed checkpoints do.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import tree
from app.audit.chain import GENESIS_HASH, chain_hash


async def rewrite_event(engine: AsyncEngine, seq: int, edit: Callable[[str], str]) -> None:
    """Replace event ``seq``'s body with ``edit(body)`` and recompute every hash after it,
    the head's included (the chain alone then verifies)."""
    async with engine.begin() as conn:
        rows = (await conn.execute(text("SELECT seq, body FROM audit_events ORDER BY seq"))).all()
        prev = GENESIS_HASH
        for row in rows:
            body = edit(row.body) if row.seq == seq else row.body
            h = chain_hash(prev, body)
            await conn.execute(
                text("UPDATE audit_events SET body = :b, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"b": body, "p": prev, "h": h, "s": row.seq},
            )
            prev = h
        await conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


async def rebuild_tree(engine: AsyncEngine) -> None:
    """Replace audit_tree with the tree of the events as they now stand."""
    async with engine.begin() as conn:
        bodies = (await conn.execute(text("SELECT body FROM audit_events ORDER BY seq"))).all()
        frontier, rows = tree.Frontier.empty(), []
        for (body,) in bodies:
            rows.extend(frontier.append(tree.leaf_hash(body)))
        await conn.execute(delete(tree.TREE))
        stored = tree.rows_json(rows)
        if stored:
            await conn.execute(insert(tree.TREE), stored)
