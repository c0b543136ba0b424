"""Bulwark's one settings object, read from ``BULWARK_*`` environment variables.

Settings are validated when the process starts: an insecure or inconsistent value stops
Bulwark before it answers a single request (fail closed).
"""

from __future__ import annotations

import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.core.calendar import DEFAULT_TIMEZONE, LibraryClock, UnknownTimeZone, zone

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUNDLED_POLICY = PACKAGE_DIR / "policy" / "default_policy.toml"
BUNDLED_DEMO_DIR = PACKAGE_DIR / "records" / "demo"
BUNDLED_DEMO_MAPPING = BUNDLED_DEMO_DIR / "mapping.toml"

#: Algorithms a court-order signature may ever use. HMAC and ``none`` are never allowed:
#: a shared secret would let anyone who can verify an order also forge one.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)

#: An exact web origin: scheme, host and optional port; nothing else.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")

#: Settings that may be read from a file named by ``BULWARK_<NAME>_FILE`` (secrets).
FILE_SETTINGS = (
    "database_url",
    "records_url",
    "records_api_token",
    "pseudonym_key",
    "redis_url",
    "metrics_key",
    "folio_password",
)

#: Values that must never be used as secrets (copied from examples or left as placeholders).
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "test", "example"})


class Settings(BaseSettings):
    """Every setting of a Bulwark deployment (docs/deploy.md)."""

    model_config = SettingsConfigDict(
        env_prefix="BULWARK_", extra="ignore", frozen=True, validate_default=True
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="Where embedded state lives: the SQLite state database and instance secrets.",
    )
    database_url: str = Field(
        default="",
        description="Bulwark's own state database. Empty: an SQLite file under data_dir.",
    )
    records_url: str = Field(
        default="",
        description="The backing store: a SQLAlchemy URL or an http(s):// records API. "
        "Empty: the bundled demo SQLite store under data_dir.",
    )
    records_mapping: Path = Field(default=BUNDLED_DEMO_MAPPING)
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="The library's time zone, an IANA name (America/Chicago): its calendar "
        "dates are those of orders, periods, notices, legal holds and transparency reports.",
    )
    records_api_token: SecretStr | None = Field(
        default=None, description="Credential Bulwark presents to an upstream records API."
    )
    # The FOLIO store kind (docs/records.md): tenant and the service account Bulwark logs in as.
    folio_tenant: str = Field(default="", pattern=r"^([a-z][a-z0-9_]{0,62})?$")
    folio_username: str = Field(default="", max_length=256)
    folio_password: SecretStr | None = Field(
        default=None, description="Also from BULWARK_FOLIO_PASSWORD_FILE (preferred)."
    )
    records_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    records_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    records_max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_records_per_response: int = Field(default=1000, ge=1, le=100_000)
    cursor_window_minutes: int = Field(
        default=10,
        ge=1,
        le=120,
        description="Minutes a truncated disclosure's next page can be fetched (never past the "
        "order's expiry); its records wait encrypted in the state database until then.",
    )
    trust_store: Path | None = Field(default=None)
    policy: Path = Field(default=BUNDLED_POLICY)
    audience: str = Field(default="bulwark", min_length=1)
    jurisdictions: Annotated[frozenset[str], NoDecode] = Field(default=frozenset())
    allowed_algorithms: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({"RS256", "ES256"})
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for patron pseudonyms in the audit log. Empty: read from "
        "data_dir/secrets/pseudonym.key (created by `bulwark db upgrade`).",
    )
    pseudonym_key_id: str = Field(default="k1", min_length=1, max_length=32)
    signing_key_file: Path | None = Field(
        default=None,
        description="The deployment's own EC private key for audit checkpoints. Empty: "
        "data_dir/secrets/checkpoint.pem (created by `bulwark db upgrade`).",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="A PEM bundle of the CAs that sign the state database's, the records "
        "store's, Redis's (rediss://) and the records API's certificates, for a private CA. "
        "Empty: the system's trust store. A database URL's own `sslrootcert=` wins.",
    )
    log_key_file: Path | None = Field(
        default=None,
        description="The deployment's own Ed25519 key for signing Merkle tree checkpoints "
        "(C2SP signed notes). Empty: data_dir/secrets/log.key (created by `bulwark db upgrade`).",
    )
    log_checkpoint_seconds: int = Field(
        default=60,
        ge=0,
        le=86_400,
        description="How often each process signs a checkpoint of the audit log's Merkle tree "
        "when it has grown (0: never; then `bulwark audit log-checkpoint` from cron).",
    )
    log_origin: str = Field(
        default="",
        max_length=200,
        pattern=r"^[^\s+]*$",
        description="The checkpoints' origin line and key name, a schema-less URL naming this "
        "deployment (e.g. library.example.org/bulwark). Empty: bulwark.invalid/<audience>.",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_token_bytes: int = Field(default=16 * 1024, ge=1024, le=64 * 1024)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    auto_migrate: bool = Field(
        default=False, description="Upgrade the state schema at start (demo and tests only)."
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        le=1_000_000,
        description="Requests per caller per minute on /v1, across all replicas. There is no "
        "off switch: a gatekeeper always limits (docs/security.md).",
    )
    rate_limit_backend: Literal["database", "redis"] = Field(
        default="database",
        description="Where the shared counters live: the state database, or Redis "
        "(BULWARK_REDIS_URL).",
    )
    redis_url: SecretStr | None = Field(
        default=None, description="Redis for the rate limiter, e.g. redis://127.0.0.1:6379/0."
    )
    redis_prefix: str = Field(
        default="bulwark:rl",
        min_length=1,
        max_length=64,
        description="Key prefix in Redis, so that deployments may share one server.",
    )
    cors_origins: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Browser origins allowed to call Bulwark (comma-separated). Empty: none.",
    )
    client_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a whole request (headers and body) before "
        "`bulwark serve` closes its connection: slow clients cannot hold connections.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="Largest request line and header block `bulwark serve` reads (431 beyond).",
    )
    environment: Literal["production", "development", "test"] = "production"
    metrics: Literal["off", "open", "key"] = Field(
        default="off",
        description="GET /metrics: `off` (not served), `open` (for a private port that only "
        "the scraper reaches) or `key` (needs `Authorization: Bearer <BULWARK_METRICS_KEY>`).",
    )
    metrics_key: SecretStr | None = Field(
        default=None, description="The scraper's bearer token when BULWARK_METRICS=key."
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: object) -> object:
        """``BULWARK_<NAME>_FILE``: read a secret setting from a file (compose secrets).

        Environment variables leak (``docker inspect``, /proc/<pid>/environ, crash reports);
        files mounted from a secret store do not. The value set directly wins over the file.
        """
        if not isinstance(data, dict):
            return data
        for name in FILE_SETTINGS:
            path = os.environ.get(f"BULWARK_{name.upper()}_FILE")
            if not path or data.get(name):
                continue
            try:
                data[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"BULWARK_{name.upper()}_FILE={path} cannot be read ({exc.strerror})"
                ) from None
        return data

    @field_validator("jurisdictions", "allowed_algorithms", "cors_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_algorithms")
    @classmethod
    def _only_asymmetric(cls, value: frozenset[str]) -> frozenset[str]:
        refused = sorted(value - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(
                f"BULWARK_ALLOWED_ALGORITHMS may only name asymmetric signature algorithms; "
                f"refused: {', '.join(refused)}"
            )
        if not value:
            raise ValueError("BULWARK_ALLOWED_ALGORITHMS must name at least one algorithm")
        return value

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            zone(value)
        except UnknownTimeZone as exc:
            raise ValueError(f"BULWARK_TIMEZONE: {exc}") from None
        return value

    @field_validator("pseudonym_key")
    @classmethod
    def _strong_pseudonym_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if is_weak_secret(raw):
            raise ValueError(
                "BULWARK_PSEUDONYM_KEY must be at least 32 characters of real randomness "
                "(for example `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, value: frozenset[str]) -> frozenset[str]:
        # A wildcard would let any web page drive a caller's browser against Bulwark.
        bad = sorted(o for o in value if not _ORIGIN.fullmatch(o))
        if bad:
            raise ValueError(
                "BULWARK_CORS_ORIGINS must list exact origins like https://ils.example.org "
                f"(no wildcard, path or trailing slash); refused: {', '.join(bad)}"
            )
        return value

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Settings:
        if self.rate_limit_backend == "redis" and self.redis_url is None:
            raise ValueError("BULWARK_RATE_LIMIT_BACKEND=redis needs BULWARK_REDIS_URL")
        return self

    @model_validator(mode="after")
    def _encrypted_transport(self) -> Settings:
        from app.core.transport import TransportError, check_plaintext, tls_mode

        urls = [
            ("BULWARK_DATABASE_URL", self.database_url),
            ("BULWARK_RECORDS_URL", self.records_url),
            ("BULWARK_REDIS_URL", self.redis_url.get_secret_value() if self.redis_url else ""),
        ]
        try:
            for name, url in urls:
                if not url:
                    continue
                if url.split(":", 1)[0].split("+")[0] in ("postgresql", "postgres", "mysql"):
                    tls_mode(make_url(url))  # an unknown or plaintext-fallback sslmode
                if self.environment == "production":
                    check_plaintext(name, url)
        except TransportError as exc:
            raise ValueError(str(exc)) from None
        except ArgumentError:
            return self  # not a URL: the engine's own error says so at start
        return self

    @model_validator(mode="after")
    def _metrics_key_when_needed(self) -> Settings:
        key = self.metrics_key.get_secret_value() if self.metrics_key else ""
        if self.metrics == "key" and is_weak_secret(key):
            raise ValueError(
                "BULWARK_METRICS=key needs BULWARK_METRICS_KEY: at least 32 characters of real "
                "randomness (for example `openssl rand -base64 32`)"
            )
        return self

    @cached_property
    def state_url(self) -> str:
        """The state database URL, defaulting to an SQLite file under ``data_dir``."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'bulwark.db').resolve()}"
        return self._with_ca(url)

    @cached_property
    def store_url(self) -> str:
        """The records store URL, defaulting to the bundled demo SQLite store."""
        url = self.records_url or f"sqlite:///{(self.data_dir / 'demo-records.db').resolve()}"
        return self._with_ca(url)

    def _with_ca(self, url: str) -> str:
        """A database URL carrying ``sslrootcert`` from BULWARK_TLS_CA_FILE (unless it has one).

        In the URL, the CA reaches every engine built from it: the service's, the CLI's and
        the migrations'.
        """
        if self.tls_ca_file is None or not url.startswith(("postgres", "mysql", "mariadb")):
            return url
        parsed = make_url(url)
        if "sslrootcert" in parsed.query:
            return url
        with_ca = parsed.update_query_dict({"sslrootcert": str(self.tls_ca_file)})
        return with_ca.render_as_string(hide_password=False)

    @cached_property
    def clock(self) -> LibraryClock:
        """The library's clock (``BULWARK_TIMEZONE``)."""
        return LibraryClock.named(self.timezone)

    @property
    def secrets_dir(self) -> Path:
        """Where instance secrets generated by Bulwark itself are kept (mode 0700)."""
        return self.data_dir / "secrets"

    @property
    def pseudonym_key_file(self) -> Path:
        return self.secrets_dir / "pseudonym.key"

    @property
    def log_key_path(self) -> Path:
        """The Ed25519 private key that signs the Merkle tree's checkpoints."""
        return self.log_key_file or self.secrets_dir / "log.key"

    @property
    def log_name(self) -> str:
        """The log's origin line (and its key's name in signed notes)."""
        return self.log_origin or f"bulwark.invalid/{self.audience}"

    @property
    def checkpoint_key_file(self) -> Path:
        return self.signing_key_file or self.secrets_dir / "checkpoint.pem"


def is_weak_secret(raw: str) -> bool:
    """Too short, a placeholder, or too little variety to be random (32 x 'a', 'abab…').

    A random secret of 32+ characters (``secrets.token_urlsafe(32)``, ``openssl rand -base64
    32`` or ``-hex 32``) has well over a dozen distinct characters, none dominating.
    """
    if len(raw) < 32 or raw.lower() in PLACEHOLDER_SECRETS:
        return True
    most = max(raw.count(c) for c in set(raw))
    return len(set(raw)) < 12 or most > len(raw) // 4


def new_secret() -> str:
    """A fresh random secret suitable for ``BULWARK_PSEUDONYM_KEY``."""
    return secrets.token_urlsafe(32)
