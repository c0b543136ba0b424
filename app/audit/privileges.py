"""Whether the service's own database role could change the audit log (readyz).

Migration 0006 creates the PostgreSQL role ``bulwark_app``, which may only SELECT and INSERT
audit events. A replica connected as a role that may UPDATE, DELETE or TRUNCATE them (the
owner, a superuser) would let one compromised replica rewrite history; in production readyz
then answers 503, naming the check (admin), so the operator connects as a member of
``bulwark_app`` instead (docs/deploy.md). SQLite has no roles: whoever holds the file holds
the log, which is why SQLite is for a single machine and the checkpoints kept elsewhere.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

_PRIVILEGES = text(
    "SELECT has_table_privilege('audit_events', 'UPDATE'), "
    "has_table_privilege('audit_events', 'DELETE'), "
    "has_table_privilege('audit_events', 'TRUNCATE'), current_user"
)


async def readiness(runtime: Any) -> dict[str, Any]:
    """``{"ok": …, "append_only": …}`` for this replica's state database connection."""
    engine = runtime.state
    if engine.dialect.name != "postgresql":
        return {"ok": True, "append_only": None, "detail": "no database roles (SQLite)"}
    async with engine.connect() as conn:
        update, delete, truncate, user = (await conn.execute(_PRIVILEGES)).one()
    may = [
        name
        for name, yes in (("UPDATE", update), ("DELETE", delete), ("TRUNCATE", truncate))
        if yes
    ]
    if not may:
        return {"ok": True, "append_only": True}
    production = runtime.settings.environment == "production"
    return {
        "ok": not production,
        "append_only": False,
        "detail": f"the role {user} may {', '.join(may)} audit events; connect as a member "
        "of bulwark_app (docs/deploy.md)",
    }
