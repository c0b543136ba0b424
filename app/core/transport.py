"""Encrypted transport by default, for every connection that carries state or patron records.

Before issue 16, PostgreSQL connections did not require TLS and silently fell back to
plaintext, ``?sslmode=require`` stopped start-up with a TypeError, and the plain-HTTP guard took
``http://127.records-evil.example`` for loopback. Now:

- a host is loopback only when it parses as a loopback IP address, or is exactly
  ``localhost``, or is a Unix socket path; never by prefix (:func:`is_loopback_host`);
- PostgreSQL and MariaDB/MySQL URLs take libpq's ``sslmode`` (``disable``, ``require``,
  ``verify-ca``, ``verify-full``) and ``sslrootcert`` (a PEM CA bundle) query parameters,
  turned into the driver's own TLS setting (asyncpg's and asyncmy's ``ssl``); the modes that
  fall back to plaintext (``allow``, ``prefer``) are refused;
- without ``sslmode``, a loopback host is ``disable`` and any other host ``verify-full``: TLS
  required and the server's certificate and name verified;
- ``BULWARK_TLS_CA_FILE`` is the CA bundle for every store (databases, Redis over ``rediss://``,
  an ``https://`` records API) when a URL names none: a records system on a private CA can be
  verified.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import URL

#: libpq's modes that Bulwark accepts; ``allow`` and ``prefer`` would fall back to plaintext.
SSLMODES = ("disable", "require", "verify-ca", "verify-full")
_TLS_PARAMS = ("sslmode", "sslrootcert")


class TransportError(ValueError):
    """A connection setting would carry data in clear, or is not understood."""


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is this machine: a loopback address, ``localhost`` or a socket path.

    Parsed, never matched by prefix: ``127.records-evil.example`` is a DNS name like any other.
    """
    if host is None or host == "":
        return True  # no host: the driver's Unix socket
    if host.startswith("/"):
        return True  # a Unix socket directory (libpq's ?host=/var/run/postgresql)
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether an ``http(s)://`` or ``redis://`` URL points at this machine."""
    try:
        return is_loopback_host(urlsplit(url).hostname)
    except ValueError:
        return False


def _host_of(url: URL) -> str | None:
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, str) and socket_dir:
        return socket_dir
    return url.host


def tls_mode(url: URL) -> str:
    """The URL's ``sslmode``, or the default: ``disable`` on loopback, else ``verify-full``."""
    given = url.query.get("sslmode")
    if isinstance(given, tuple):
        raise TransportError("sslmode is given more than once")
    if given is None:
        return "disable" if is_loopback_host(_host_of(url)) else "verify-full"
    if given not in SSLMODES:
        raise TransportError(
            f"sslmode={given!r} is not supported: use one of {', '.join(SSLMODES)} "
            "(allow and prefer would fall back to plaintext)"
        )
    return given


def client_context(mode: str, ca_file: str | Path | None) -> ssl.SSLContext | None:
    """The client TLS context for a libpq ``sslmode``; None for ``disable``."""
    if mode == "disable":
        return None
    if mode == "require":
        # Encrypted, but the server is not authenticated (libpq's require without a root
        # certificate). Chosen explicitly by the operator; verify-full is the default.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode == "verify-ca":
        context.check_hostname = False  # the chain is verified, the name is not
    return context


def driver_tls(url: URL, ca_file: Path | None) -> tuple[URL, str, ssl.SSLContext | None]:
    """``url`` without the libpq TLS parameters, its mode, and the driver's TLS context.

    ``sslrootcert`` in the URL wins over ``ca_file`` (``BULWARK_TLS_CA_FILE``).
    """
    mode = tls_mode(url)
    root = url.query.get("sslrootcert")
    ca = root if isinstance(root, str) and root else ca_file
    stripped = url.difference_update_query(list(_TLS_PARAMS))
    return stripped, mode, client_context(mode, ca)


def http_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """httpx's ``verify=`` for an ``https://`` records API (system CAs, or the bundle)."""
    if ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(ca_file))


def redis_tls_options(url: str, ca_file: Path | None) -> dict[str, Any]:
    """redis-py options: ``rediss://`` verifies the certificate and the host name."""
    if urlsplit(url).scheme.lower() != "rediss":
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if ca_file is not None:
        options["ssl_ca_certs"] = str(ca_file)
    return options


def check_plaintext(what: str, url: str) -> None:
    """Raise :class:`TransportError` when ``url`` would carry data in clear to another host."""
    from sqlalchemy.engine import make_url

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "redis"):
        if not is_loopback_url(url):
            secure = "https" if scheme == "http" else "rediss"
            raise TransportError(
                f"{what} uses plain {scheme}:// to a remote host; use {secure}:// "
                "(plain is accepted only to loopback addresses)"
            )
        return
    if scheme.split("+")[0] not in ("postgresql", "postgres", "mysql", "mariadb"):
        return
    parsed = make_url(url)
    if tls_mode(parsed) == "disable" and not is_loopback_host(_host_of(parsed)):
        raise TransportError(
            f"{what} has sslmode=disable to a remote host; patron records and state must "
            "travel encrypted (use verify-full, and BULWARK_TLS_CA_FILE for a private CA)"
        )
