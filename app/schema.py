"""Every table of the state database, imported in one place for Alembic and the checks."""

from app.audit.models import AuditEvent, AuditHead, AuditVerified, ReportFigure
from app.audit.tlog_models import AuditCheckpoint, AuditCosignature, AuditTreeNode
from app.callers.models import Client
from app.core.instance import InstanceBinding
from app.core.models import metadata, table_of
from app.disclosures.models import Continuation, Disclosure
from app.holds.models import LegalHold
from app.idempotency.models import IdempotentRequest
from app.notices.models import Notice
from app.orders.models import OrderUse, Revocation
from app.ratelimit.models import RateLimitCounter

target_metadata = metadata

#: The tables that keep a patron id sealed (app/core/atrest.py): ``bulwark db upgrade`` seals
#: what an older release left in clear.
SEALED = (table_of(Notice), table_of(LegalHold))

__all__ = [
    "SEALED",
    "AuditCheckpoint",
    "AuditCosignature",
    "AuditEvent",
    "AuditHead",
    "AuditTreeNode",
    "AuditVerified",
    "Client",
    "Continuation",
    "Disclosure",
    "IdempotentRequest",
    "InstanceBinding",
    "LegalHold",
    "Notice",
    "OrderUse",
    "RateLimitCounter",
    "ReportFigure",
    "Revocation",
    "target_metadata",
]
