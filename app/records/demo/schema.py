"""The demo records store's schema: one table per contract category, defined once in code.

DDL for SQLite, PostgreSQL and MariaDB/MySQL is compiled from these definitions. Every table
carries some columns that the bundled mapping deliberately leaves out (a PIN hash, staff notes,
IP and MAC addresses): they exist so that tests can show such columns never leave the store.

Each table has an index on ``(patron, date, id)``. A real store needs at least
``(patron_column, date_column)``: every disclosure query filters on the patron and a date
range and orders by date, and without that index each query scans the whole table.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()


def _id(name: str) -> Column[int]:
    # Explicit ids, no sequences: the generator numbers rows itself, identically everywhere.
    return Column(name, Integer, primary_key=True, autoincrement=False)


def _patron() -> Column[str]:
    return Column("patron_id", String(16), nullable=False)


patrons = Table(
    "patrons",
    metadata,
    Column("patron_id", String(16), primary_key=True),
    Column("card_number", String(20), nullable=False),
    Column("full_name", String(120), nullable=False),
    Column("street_address", String(200)),
    Column("city", String(80)),
    Column("email", String(120)),
    Column("phone", String(32)),
    Column("date_of_birth", Date),
    Column("registered_on", Date, nullable=False),
    Column("pin_hash", String(64)),  # never mapped
    Column("staff_notes", Text),  # never mapped
)

loans = Table(
    "loans",
    metadata,
    _id("loan_id"),
    _patron(),
    Column("title", String(200), nullable=False),
    Column("checked_out_at", DateTime, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("returned_at", DateTime),
    Column("branch", String(40)),
    Column("staff_note", Text),  # never mapped
)

holds = Table(
    "holds",
    metadata,
    _id("hold_id"),
    _patron(),
    Column("title", String(200), nullable=False),
    Column("placed_on", Date, nullable=False),
    Column("pickup_branch", String(40)),
    Column("status", String(16), nullable=False),
    Column("expires_on", Date),
    Column("staff_note", Text),  # never mapped
)

ill_requests = Table(
    "ill_requests",
    metadata,
    _id("request_id"),
    _patron(),
    Column("requested_on", Date, nullable=False),
    Column("title", String(200), nullable=False),
    Column("author", String(120)),
    Column("lending_library", String(80)),
    Column("status", String(16), nullable=False),
    Column("fee_cents", Integer),  # never mapped
    Column("internal_note", Text),  # never mapped
)

searches = Table(
    "searches",
    metadata,
    _id("search_id"),
    _patron(),
    Column("searched_at", DateTime, nullable=False),
    Column("query_text", String(200), nullable=False),
    Column("source", String(40), nullable=False),
    Column("ip_address", String(45)),  # never mapped
    Column("session_token", String(64)),  # never mapped
)

reference_transcripts = Table(
    "reference_transcripts",
    metadata,
    _id("transcript_id"),
    _patron(),
    Column("started_at", DateTime, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("question", Text, nullable=False),
    Column("transcript", Text),
    Column("staff_initials", String(8)),  # never mapped
)

facility_sessions = Table(
    "facility_sessions",
    metadata,
    _id("session_id"),
    _patron(),
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("resource", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("mac_address", String(17)),  # never mapped
)

#: (table, its date column, its id column), in load order.
DEMO_TABLES: tuple[tuple[Table, str, str], ...] = (
    (patrons, "registered_on", "patron_id"),
    (loans, "checked_out_at", "loan_id"),
    (holds, "placed_on", "hold_id"),
    (ill_requests, "requested_on", "request_id"),
    (searches, "searched_at", "search_id"),
    (reference_transcripts, "started_at", "transcript_id"),
    (facility_sessions, "started_at", "session_id"),
)


def _patron_date_index(table: Table, date_column: str, id_column: str) -> Index:
    # patrons is keyed by patron_id already; every other table adds its id for keyset paging.
    names = dict.fromkeys(["patron_id", date_column, id_column])
    return Index(f"ix_{table.name}_patron_date", *(table.c[n] for n in names))


#: The ``(patron, date, id)`` index of every demo table, created after the bulk load.
INDEXES: tuple[Index, ...] = tuple(_patron_date_index(*entry) for entry in DEMO_TABLES)
