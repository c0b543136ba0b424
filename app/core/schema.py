"""Every table of the state database, imported in one place for Alembic and the checks."""

from app.audit.models import AuditEvent, AuditHead, AuditVerified, ReportFigure
from app.callers.models import Client
from app.core.models import metadata
from app.disclosures.models import Continuation, Disclosure
from app.holds.models import LegalHold
from app.notices.models import Notice
from app.orders.models import OrderUse, Revocation
from app.ratelimit.models import RateLimitCounter

target_metadata = metadata

__all__ = [
    "AuditEvent",
    "AuditHead",
    "AuditVerified",
    "Client",
    "Continuation",
    "Disclosure",
    "LegalHold",
    "Notice",
    "OrderUse",
    "RateLimitCounter",
    "ReportFigure",
    "Revocation",
    "target_metadata",
]
