"""What one Bulwark process holds while it runs, built once at start by the lifespan.

Everything that can be parsed or checked once is, here: the policy, the trust store and its
keys, the records mapping (checked against the live store), the instance secrets, the state
schema revision. Any fault stops the start with a :class:`StartupError` that says what is wrong
and how to fix it: Bulwark never serves with a piece missing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.incremental import IncrementalVerifier
from app.audit.pseudonyms import Pseudonymizer
from app.audit.tlog import LogConfig
from app.audit.writer import AuditWriter
from app.callers.service import CallerRegistry
from app.core import migrations, secrets
from app.core.atrest import PatronSealer, seal_existing
from app.core.clock import StateClock
from app.core.config import Settings
from app.core.config_proof import ConfigFileUnsafe, ConfigFingerprint, check_config_files
from app.core.database import create_engine, redact
from app.core.problems import StoreUnavailable
from app.core.startup import StartupError
from app.core.transport import http_verify
from app.disclosures.cursor import Continuations
from app.disclosures.spent import SpentOrders
from app.idempotency.store import IdempotencyStore
from app.metrics import MeasuredStore, observe_audit_append
from app.orders.approvals import ApprovalVerifier
from app.orders.jose import VerifierLimits
from app.orders.tokens import OrderVerifier
from app.orders.trust import TrustStore, TrustStoreError
from app.policy.models import LoadedPolicy, PolicyError, load_policy
from app.ratelimit.limiter import RateLimiter
from app.ratelimit.unknown_keys import UnknownKeyGuard
from app.records.base import RecordsStore
from app.records.factory import build_store
from app.records.mapping import MappingError, RecordsMapping, load_mapping, validate_against_policy
from app.records.sql_schema import StoreLoginError
from app.schema import SEALED
from app.transparency.service import ReportCache

logger = logging.getLogger("bulwark.runtime")


@dataclass(slots=True)
class Runtime:
    """The long-lived state of one process (no module-level globals)."""

    settings: Settings
    state: AsyncEngine
    http: httpx.AsyncClient
    policy: LoadedPolicy
    trust: TrustStore
    verifier: OrderVerifier
    mapping: RecordsMapping
    store: RecordsStore
    callers: CallerRegistry
    audit: AuditWriter
    pseudonymize: Pseudonymizer
    checkpoint_key: ec.EllipticCurvePrivateKey
    cursors: Continuations
    approvals: ApprovalVerifier
    spent_orders: SpentOrders = field(default_factory=SpentOrders)
    # The parts below are built at start (build_runtime) or on first use, once per process,
    # by the function named beside each.
    clock: StateClock | None = None  # app/core/clock.py: clock_of
    sealer: PatronSealer | None = None  # app/core/atrest.py: sealer_of
    config_fingerprint: ConfigFingerprint | None = None  # app/core/config_proof.py
    log: LogConfig | None = None  # the Merkle tree's checkpoint signer (tlog_config)
    limiter: RateLimiter | None = None  # app/ratelimit/limiter.py: limiter_of
    audit_verifier: IncrementalVerifier | None = None  # app/audit/incremental.py: verifier_of
    unknown_keys: UnknownKeyGuard | None = None  # app/ratelimit/unknown_keys.py: guard_of
    idempotency: IdempotencyStore | None = None  # app/idempotency/middleware.py: store_of
    report_cache: ReportCache = field(default_factory=ReportCache)  # the transparency report
    #: The last readiness answer (monotonic time, checks) and the lock of its renewal.
    readyz: tuple[float, dict[str, Any]] | None = None
    readyz_lock: asyncio.Lock | None = None

    async def close(self) -> None:
        await self.audit.close()
        await self.store.close()
        await self.http.aclose()
        await self.state.dispose()


def load_static(settings: Settings) -> tuple[LoadedPolicy, TrustStore, RecordsMapping]:
    """Parse the policy, the trust store and the mapping; no I/O beyond reading files."""
    try:
        check_config_files(settings)
    except ConfigFileUnsafe as exc:
        raise StartupError(str(exc)) from None
    try:
        policy = load_policy(settings.policy)
    except PolicyError as exc:
        raise StartupError(f"policy invalid: {exc}") from None
    if settings.trust_store is None:
        raise StartupError(
            "BULWARK_TRUST_STORE is not set: without trusted issuers no order can be verified"
        )
    try:
        trust = TrustStore.load(settings.trust_store)
    except TrustStoreError as exc:
        raise StartupError(f"trust store invalid: {exc}") from None
    try:
        mapping = load_mapping(settings.records_mapping)
        validate_against_policy(mapping, policy.policy.forbidden_fields())
    except MappingError as exc:
        raise StartupError(f"records mapping invalid: {exc}") from None
    return policy, trust, mapping


async def build_runtime(settings: Settings) -> Runtime:
    """Build everything a process needs, or raise StartupError."""
    policy, trust, mapping = load_static(settings)
    try:
        pseudonym_key = secrets.pseudonym_key(settings)
        checkpoint_key = secrets.checkpoint_key(settings)
        log = tlog_config(settings, policy)  # the Merkle tree's signer and witnesses
    except secrets.SecretsError as exc:
        raise StartupError(str(exc)) from None
    state = create_engine(settings.state_url)
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.records_timeout_seconds, connect=settings.records_connect_timeout_seconds
        ),
        follow_redirects=False,
        trust_env=False,
        verify=http_verify(settings.tls_ca_file),  # system CAs, or BULWARK_TLS_CA_FILE
    )
    clock = StateClock(state, skew_seconds=policy.policy.clock_skew_seconds)
    try:
        await _prepare_state(settings, state)
        await _check_instance(settings, state, pseudonym_key, checkpoint_key)
        await _measure_clock(settings, clock)
        sealer = await _seal_at_rest(settings, state, pseudonym_key)
        store = await open_records_store(settings, mapping, http)
    except BaseException:
        await http.aclose()
        await state.dispose()
        raise
    limits = verifier_limits(settings, policy)
    verifier = OrderVerifier(trust, **limits)
    approvals = ApprovalVerifier(trust.counsel_issuers, **limits)
    fingerprint = ConfigFingerprint.of(
        settings,
        policy_sha256=policy.sha256,
        pseudonym_key=pseudonym_key,
        checkpoint_key=checkpoint_key,
    )
    audit = AuditWriter(
        state,
        observe=observe_audit_append,
        now=clock.now,
        config=fingerprint.as_json(),
        tz=settings.clock.tz,
    )
    audit.start()
    return Runtime(
        settings=settings,
        state=state,
        http=http,
        policy=policy,
        trust=trust,
        verifier=verifier,
        mapping=mapping,
        store=MeasuredStore(store),
        callers=CallerRegistry(state),
        audit=audit,
        pseudonymize=Pseudonymizer(pseudonym_key, settings.pseudonym_key_id),
        checkpoint_key=checkpoint_key,
        cursors=Continuations(pseudonym_key),
        approvals=approvals,
        clock=clock,
        sealer=sealer,
        config_fingerprint=fingerprint,
        log=log,
    )


def verifier_limits(settings: Settings, policy: LoadedPolicy) -> VerifierLimits:
    """What the order and approval verifiers accept, from the settings and the policy."""
    return {
        "audience": settings.audience,
        "allowed_algorithms": settings.allowed_algorithms,
        "clock_skew_seconds": policy.policy.clock_skew_seconds,
        "max_lifetime_days": policy.policy.max_order_lifetime_days,
        "max_token_bytes": settings.max_token_bytes,
    }


def tlog_config(settings: Settings, policy: LoadedPolicy) -> LogConfig:
    """The audit log's checkpoint signer and the witnesses the policy names."""
    from app.audit import notes, tlog

    signer = notes.log_signer(settings.log_name, secrets.log_key(settings))
    rules = policy.policy.log
    return tlog.LogConfig.build(signer, rules.witnesses, rules.required_witnesses)


async def _prepare_state(settings: Settings, state: AsyncEngine) -> None:
    try:
        if settings.auto_migrate:
            await _upgrade_in_place(state)
        await migrations.check_schema(state)
    except migrations.SchemaMismatch as exc:
        raise StartupError(exc.detail) from None
    except Exception as exc:
        raise StartupError(
            f"state database {redact(settings.state_url)} unreachable "
            f"({type(exc).__name__}); check BULWARK_DATABASE_URL"
        ) from None


async def _seal_at_rest(settings: Settings, state: AsyncEngine, key: bytes) -> PatronSealer:
    """The sealer; clear patron ids an older release (or replica) left are sealed now."""
    sealer = PatronSealer(key)
    try:
        sealed = await seal_existing(state, sealer, SEALED)
    except Exception as exc:
        raise StartupError(
            f"could not seal patron ids at rest in {redact(settings.state_url)} "
            f"({type(exc).__name__})"
        ) from None
    if sealed:
        logger.warning("sealed patron ids left in clear", extra={"count": sealed})
    return sealer


async def _measure_clock(settings: Settings, clock: StateClock) -> None:
    try:
        await clock.measure()
    except Exception as exc:
        raise StartupError(
            f"state database {redact(settings.state_url)} did not tell its time "
            f"({type(exc).__name__}); check BULWARK_DATABASE_URL"
        ) from None


async def _check_instance(
    settings: Settings, state: AsyncEngine, pseudonym: bytes, checkpoint: ec.EllipticCurvePrivateKey
) -> None:
    # The secrets must be the ones the state was made with (app/core/instance.py).
    from app.core.instance import InstanceMismatch, check_binding

    try:
        await check_binding(settings, state, pseudonym, checkpoint)
    except InstanceMismatch as exc:
        raise StartupError(str(exc)) from None


async def _upgrade_in_place(state: AsyncEngine) -> None:
    from alembic import command

    def run(connection: Any) -> None:
        config = migrations.alembic_config(str(state.url))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with state.begin() as conn:
        await conn.run_sync(run)


async def open_records_store(
    settings: Settings, mapping: RecordsMapping, http: httpx.AsyncClient
) -> RecordsStore:
    """The configured store, checked against ``mapping`` (``bulwark records check`` too).

    StartupError names what is wrong: the login, the database, the table or view, the column
    and what to do; "unreachable" only when the store cannot be reached at all.
    """
    try:
        store = build_store(settings, mapping, http)
    except MappingError as exc:  # a store kind's own settings (FOLIO's tenant, account)
        raise StartupError(f"records store settings: {exc}") from None
    try:
        await store.validate()
    except StoreLoginError as exc:
        await store.close()
        raise StartupError(f"records store {redact(settings.store_url)}: {exc}") from None
    except MappingError as exc:
        await store.close()
        raise StartupError(f"records mapping does not match the store: {exc}") from None
    except StoreUnavailable as exc:
        await store.close()
        raise StartupError(
            f"records store {redact(settings.store_url)} unreachable: {exc.detail} Check "
            "BULWARK_RECORDS_URL and that the server is up and reachable from here"
        ) from None
    except Exception as exc:
        await store.close()
        raise StartupError(
            f"records store {redact(settings.store_url)} could not be checked "
            f"({type(exc).__name__})"
        ) from None
    return store
