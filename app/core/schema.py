"""Every table of the state database, imported in one place for Alembic and the checks."""

from app.audit.models import AuditEvent, AuditHead
from app.callers.models import Client
from app.core.models import metadata
from app.disclosures.models import Disclosure
from app.orders.models import OrderUse, Revocation

target_metadata = metadata

__all__ = [
    "AuditEvent",
    "AuditHead",
    "Client",
    "Disclosure",
    "OrderUse",
    "Revocation",
    "target_metadata",
]
