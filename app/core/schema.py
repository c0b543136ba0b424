"""Every table of the state database, imported in one place for Alembic and the checks."""

from app.audit.models import AuditEvent, AuditHead
from app.callers.models import Client
from app.core.instance import InstanceBinding
from app.core.models import metadata
from app.disclosures.models import Disclosure
from app.holds.models import LegalHold
from app.idempotency.models import IdempotentRequest
from app.notices.models import Notice
from app.orders.models import OrderUse, Revocation
from app.ratelimit.models import RateLimitCounter

target_metadata = metadata

__all__ = [
    "AuditEvent",
    "AuditHead",
    "Client",
    "Disclosure",
    "IdempotentRequest",
    "InstanceBinding",
    "LegalHold",
    "Notice",
    "OrderUse",
    "RateLimitCounter",
    "Revocation",
    "target_metadata",
]
