"""Database engines for Bulwark's own state and for SQL records stores.

Operators write plain SQLAlchemy URLs (``sqlite:///…``, ``postgresql://…``, ``mysql://…``);
Bulwark picks the asyncio driver for each. SQLite files run in WAL mode with a busy timeout so
that several processes can share one file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.files import PRIVATE_FILE, private_dir, tighten
from app.core.problems import BulwarkError, StateUnavailable
from app.core.transport import TransportError, driver_tls

ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Longest a request waits for a pooled connection before failing (closed) with 503.
POOL_TIMEOUT_SECONDS = 10
DEFAULT_POOL_SIZE = 20


class UnsupportedDatabase(ValueError):
    """The URL names a database Bulwark does not support."""


class TransportNotEncrypted(ConnectionError):
    """The server answered without the TLS the connection requires."""


def async_url(url: str) -> URL:
    """The asyncio-driver form of an operator's database URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise UnsupportedDatabase(
            f"unsupported database {backend!r}: use sqlite, postgresql or mysql/mariadb"
        )
    return parsed.set(drivername=ASYNC_DRIVERS[backend])


def dialect_of(url: str) -> str:
    """``sqlite``, ``postgresql`` or ``mysql``."""
    return async_url(url).get_backend_name()


#: Query parameters whose values are safe to print; any other value is hidden (api_key,
#: token, password, sig… and whatever a records API calls its credential).
SAFE_QUERY = frozenset(
    {"sslmode", "sslrootcert", "charset", "host", "port", "connect_timeout", "timeout"}
)


def redact(url: str) -> str:
    """A URL safe to print: the password and every credential-like query value hidden."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
        query = urlencode(
            [
                (k, v if k.lower() in SAFE_QUERY else "***")
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*/:",
        )
        if "://" not in url:
            return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
        # Rebuilt by hand: urlunsplit drops the "//" of schemes it does not know (sqlite:///).
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except Exception:  # not a URL at all: say nothing of its content
        return "<unparseable URL>"


def _private_sqlite_file(path: Path) -> None:
    """The state file (and its WAL and shared-memory files) 0600, its new directory 0700.

    SQLite creates its files with the process's umask (0644 by default): readable by every
    user of the machine (issue 16). It gives the -wal and -shm files the main file's mode, so
    creating the main file 0600 first is enough; files an older release made are tightened.
    A directory Bulwark did not create keeps its mode (it may be shared, like /tmp); `bulwark
    db upgrade` makes the data directory itself 0700.
    """
    if not path.parent.exists():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # FULL: a commit is on disk before it returns, so an audit event is durable before the
    # answer that it records is sent, even across a power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    read_only: bool = False,
    state: bool = True,
) -> AsyncEngine:
    """An async engine for ``url`` with Bulwark's connection settings.

    ``state``: an SQLite file is Bulwark's own and is created 0600 (a records store's file is
    not Bulwark's to create or change).
    """
    target = async_url(url)
    backend = target.get_backend_name()
    # No pre-ping: it costs round trips on every checkout. A connection that died (a database
    # restart) fails its one request with 503, and SQLAlchemy then invalidates the whole pool,
    # so the next requests get fresh connections: recovery without a restart, still fail closed.
    # No overflow: connections opened past the pool are closed again on return, and under
    # load that churn (TLS attempt, authentication) costs more than waiting for a pooled one.
    kwargs: dict[str, Any] = {"pool_pre_ping": False}
    if backend == "sqlite":
        database = target.database or ""
        if database and database != ":memory:" and state:
            _private_sqlite_file(Path(database))
        elif database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        if read_only:
            kwargs["poolclass"] = NullPool
        else:
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_timeout=POOL_TIMEOUT_SECONDS)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            pool_recycle=1800,
        )
        # TLS from libpq's sslmode/sslrootcert (app/core/transport.py): verified by default
        # to any host but loopback; the parameters are the drivers' own `ssl` argument, never
        # passed through (asyncpg took ?sslmode=require as an unknown keyword: TypeError).
        try:
            target, mode, context = driver_tls(target, None)
        except TransportError as exc:
            raise UnsupportedDatabase(str(exc)) from None
        if backend == "postgresql":
            # False, not None: asyncpg's own default ("prefer") would fall back to plaintext.
            kwargs["connect_args"] = {
                "timeout": 5,
                "command_timeout": 30,
                "ssl": context if context is not None else False,
            }
        else:
            kwargs["connect_args"] = {"connect_timeout": 5}
            if context is not None:
                kwargs["connect_args"]["ssl"] = context
    engine = create_async_engine(target, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif backend == "mysql" and mode != "disable":
        event.listen(engine.sync_engine, "connect", _mysql_encrypted)
    return engine


def _mysql_encrypted(dbapi_connection: Any, _record: Any) -> None:
    """Refuse a MariaDB/MySQL connection that is not encrypted.

    The MySQL protocol lets a client that asked for TLS carry on in clear when the server
    does not offer it; that silent fallback is exactly what must not happen.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cursor.fetchone()
    finally:
        cursor.close()
    if not row or not row[1]:
        raise TransportNotEncrypted(
            "the MariaDB/MySQL server did not encrypt the connection (TLS was required)"
        )


@contextlib.contextmanager
def state_errors(*, keep: tuple[type[BaseException], ...] = (BulwarkError,)) -> Iterator[None]:
    """Turn a fault of the state database (any driver error) into 503 ``state.unavailable``.

    In the spirit of httpx's ``map_exceptions``: one place decides how a driver fault becomes
    a problem (docs/api.md, "Reason codes"), never a 500 and never the driver's message, which
    may name a host or a row. Problems already raised inside (``keep``) pass unchanged;
    ``keep=()`` turns every error into ``state.unavailable``.
    """
    try:
        yield
    except keep:
        raise
    except Exception:
        raise StateUnavailable() from None
