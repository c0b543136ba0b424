"""The bundled demo records store: its schema, its mapping and a deterministic generator.

``BULWARK_RECORDS_MAPPING`` defaults to :data:`DEMO_MAPPING`; ``bulwark demo`` creates the
store with :func:`create_demo_store` and uses :data:`DEMO_PATRON` with the period
:data:`DEMO_FROM` … :data:`DEMO_TO` in the request it prints (and :data:`OTHER_PATRON`,
who has records in that period too, for a request the order does not cover). Those patrons
and :data:`DEMO_BUSY_PATRON` exist at every generator size.
"""

from __future__ import annotations

from pathlib import Path

from app.records.demo.generator import (
    DATA_END,
    DATA_START,
    DEMO_BUSY_PATRON,
    DEMO_FROM,
    DEMO_PATRON,
    DEMO_TO,
    OTHER_PATRON,
    DemoStoreExists,
    DemoSummary,
    create_demo_store,
    patron_id,
)

#: The bundled mapping of the demo schema (the default ``BULWARK_RECORDS_MAPPING``).
DEMO_MAPPING = Path(__file__).resolve().parent / "mapping.toml"

__all__ = [
    "DATA_END",
    "DATA_START",
    "DEMO_BUSY_PATRON",
    "DEMO_FROM",
    "DEMO_MAPPING",
    "DEMO_PATRON",
    "DEMO_TO",
    "OTHER_PATRON",
    "DemoStoreExists",
    "DemoSummary",
    "create_demo_store",
    "patron_id",
]
