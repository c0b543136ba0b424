"""Request bodies the tests send, built in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.records.demo import DEMO_PATRON


def disclosure_body(
    token: str | None = None,
    patron: str = DEMO_PATRON,
    *,
    categories: Sequence[str] = ("circulation",),
    start: str = "2026-01-01",
    end: str = "2026-06-30",
    **extra: Any,
) -> dict[str, Any]:
    """A ``POST /v1/disclosures`` (or ``/v1/decisions``) body; ``extra`` adds or replaces members."""
    body: dict[str, Any] = {
        "purpose": "legal_process",
        "patron_id": patron,
        "categories": list(categories),
        "from": start,
        "to": end,
        "court_order": token,
    }
    body.update(extra)
    return body
