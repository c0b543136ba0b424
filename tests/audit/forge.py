"""What a careful insider does after rewriting audit_events: rebuild the Merkle tree to match.

Test tooling only: it shows that the tree alone cannot stop someone with write access to the
database, and that signed, witnessed checkpoints do.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import tree


async def rebuild_tree(engine: AsyncEngine) -> None:
    """Replace audit_tree with the tree of the events as they now stand."""
    async with engine.begin() as conn:
        bodies = (await conn.execute(text("SELECT body FROM audit_events ORDER BY seq"))).all()
        frontier, rows = tree.Frontier.empty(), []
        for (body,) in bodies:
            rows.extend(frontier.append(tree.leaf_hash(body)))
        await conn.execute(delete(tree.TREE))
        if rows:
            await conn.execute(insert(tree.TREE), tree.rows_json(rows))
