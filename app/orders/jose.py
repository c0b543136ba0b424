"""JOSE for both verifiers: compact JWS parsing, header rules, signature check, strict JSON.

The court-order verifier (:mod:`app.orders.tokens`) and the counsel-approval verifier
(:mod:`app.orders.approvals`) check tokens the same way (docs/court-orders.md,
docs/counsel.md); this module is that way, and the one place that calls python-jose:

- :func:`parse_compact`: size first, then three canonical base64url segments (RFC 7515
  section 2, :func:`b64url_decode`) whose header and payload are strict JSON objects
  (:func:`strict_json_loads`: no duplicate member names, no NaN);
- :func:`header_failures`: the exact ``typ``, no ``crit``, an allowed asymmetric ``alg``, a
  ``kid``;
- :func:`resolve_key`: the key is found by ``(iss, kid)`` among the trusted ones only, and used
  only with its own algorithm; the token never chooses how it is checked;
- :func:`signature_ok`, then :func:`registered_claim_failures` (``aud``, ``exp``, ``nbf``,
  ``iat``), each reported where it is readable.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict, TypeGuard, Unpack

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jws
from jose.backends.base import Key
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey
from jose.exceptions import JOSEError

from app.core.config import ASYMMETRIC_ALGORITHMS
from app.core.reasons import Reason
from app.orders.checks import TrustedIssuer

if TYPE_CHECKING:
    from app.orders.trust import IssuerRegistry, TrustedKey

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")

_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def b64url_decode(segment: str) -> bytes:
    """Decode canonical unpadded base64url (RFC 7515 section 2), refusing anything else.

    The standard library's decoder silently drops characters outside the alphabet and ignores
    the unused low bits of the last character; a token or key that needs either is malformed,
    not something to guess at. Canonical encoding also means one order has one spelling.

    Raises:
        ValueError: ``segment`` is not canonical unpadded base64url.
    """
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:  # pragma: no cover - the pattern above already excludes it
        raise ValueError("not unpadded base64url") from exc
    if b64url_encode(decoded) != segment:  # non-zero unused bits in the last character
        raise ValueError("not canonical base64url")
    return decoded


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def strict_json_loads(data: bytes) -> Any:
    """Parse UTF-8 JSON, refusing duplicate member names and NaN/Infinity.

    Duplicate names are how two parsers come to disagree about one document (RFC 7515
    section 4 lets a JWS parser reject them; we do, here and in the trust store).

    Raises:
        ValueError: not UTF-8, not JSON, a duplicate member name or a non-finite number.
        RecursionError: nesting deeper than the interpreter allows.
    """
    return json.loads(
        data.decode("utf-8"),
        object_pairs_hook=_object_without_duplicates,
        parse_constant=_refuse_constant,
    )


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise ValueError(f"duplicate member name {name!r}")
        obj[name] = value
    return obj


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def hash_for(alg: str) -> hashes.HashAlgorithm:
    """The hash of a JWS signature algorithm: SHA-256 for RS256, PS256 and ES256, and so on."""
    return _HASHES[alg[2:]]()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A compact JWS split and decoded (never trusted before :func:`signature_ok`)."""

    header: dict[str, Any]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """A trusted key, wrapped once for python-jose."""

    trusted: TrustedKey
    jose_key: Key


def check_verifier_settings(
    allowed_algorithms: Collection[str],
    clock_skew_seconds: int,
    max_lifetime_days: int,
    max_token_bytes: int,
) -> None:
    """Refuse a verifier configured to accept what it must not (a programming error)."""
    refused = set(allowed_algorithms) - ASYMMETRIC_ALGORITHMS
    if refused or not allowed_algorithms:
        raise ValueError(f"allowed_algorithms must be asymmetric; refused: {sorted(refused)}")
    if clock_skew_seconds < 0 or max_lifetime_days <= 0 or max_token_bytes <= 0:
        raise ValueError("skew must be >= 0; lifetime and token size must be positive")


def wrap_keys(registry: IssuerRegistry) -> dict[tuple[str, str], VerifyingKey]:
    """Every key of ``registry``, wrapped for python-jose once, so that a request parses none."""
    return {(key.iss, key.kid): VerifyingKey(key, jose_key(key)) for key in registry.keys}


class VerifierLimits(TypedDict):
    """What a token verifier accepts (the keyword arguments of :class:`TokenVerifier`)."""

    #: The ``aud`` value that names this deployment.
    audience: str
    #: The signature algorithms accepted (asymmetric only).
    allowed_algorithms: Collection[str]
    #: How far ``exp``, ``nbf`` and ``iat`` may be off.
    clock_skew_seconds: int
    #: The longest ``exp - iat`` the policy allows.
    max_lifetime_days: int
    #: Tokens longer than this are refused before any decoding (default 16384).
    max_token_bytes: NotRequired[int]


class TokenVerifier:
    """What every verifier of signed tokens holds: its registry's keys, wrapped once, and
    its :class:`VerifierLimits` (checked by :func:`check_verifier_settings`)."""

    __slots__ = (
        "_allowed",
        "_audience",
        "_keys",
        "_max_bytes",
        "_max_lifetime",
        "_registry",
        "_skew",
    )

    def __init__(self, registry: IssuerRegistry, **limits: Unpack[VerifierLimits]) -> None:
        max_token_bytes = limits.get("max_token_bytes", 16384)
        check_verifier_settings(
            limits["allowed_algorithms"],
            limits["clock_skew_seconds"],
            limits["max_lifetime_days"],
            max_token_bytes,
        )
        self._registry = registry
        self._audience = limits["audience"]
        self._allowed = frozenset(limits["allowed_algorithms"])
        self._skew = limits["clock_skew_seconds"]
        self._max_lifetime = limits["max_lifetime_days"] * 86400
        self._max_bytes = max_token_bytes
        self._keys = wrap_keys(registry)


def resolve_key(
    parsed: Parsed,
    registry: IssuerRegistry,
    keys: dict[tuple[str, str], VerifyingKey],
    allowed: frozenset[str],
    failures: list[Reason],
) -> tuple[TrustedIssuer | None, VerifyingKey | None]:
    """The issuer and key a token names, from ``registry`` only; failures go to ``failures``.

    The token never chooses how it is checked: the key is found by (iss, kid) among the trusted
    ones, and used only with its own algorithm, and only if this deployment allows it.
    """
    iss, kid = parsed.payload.get("iss"), parsed.header.get("kid")
    issuer = registry.issuer(iss) if isinstance(iss, str) else None
    if issuer is None:
        add_failure(failures, Reason.ORDER_UNTRUSTED_ISSUER)
        return None, None
    key = keys.get((issuer.iss, kid)) if isinstance(kid, str) else None
    if key is None:
        add_failure(failures, Reason.ORDER_UNKNOWN_KEY)
        return issuer, None
    alg = parsed.header.get("alg")
    if alg != key.trusted.alg or alg not in allowed:
        add_failure(failures, Reason.ORDER_ALGORITHM_REJECTED)
        return issuer, None
    return issuer, key


def registered_claim_failures(
    payload: Mapping[str, Any], now: float, *, audience: str, skew: int, max_lifetime: int
) -> list[Reason]:
    """``aud``, ``exp``, ``nbf``, ``iat`` checked one by one, each where it is readable.

    Independent of the typed model, so that a token both expired and misaddressed and
    missing a claim is reported as all three. ``max_lifetime`` is in seconds. Shared by the
    court-order verifier and the counsel-approval verifier (:mod:`app.orders.approvals`).
    """
    found: list[Reason] = []
    aud = payload.get("aud")
    if _readable_audience(aud) and not _names_audience(aud, audience):
        found.append(Reason.ORDER_AUDIENCE)
    exp, iat, nbf = (_numeric_date(payload.get(name)) for name in ("exp", "iat", "nbf"))
    if exp is not None and now > exp + skew:
        found.append(Reason.ORDER_EXPIRED)
    if any(t is not None and t > now + skew for t in (nbf, iat)):
        found.append(Reason.ORDER_NOT_YET_VALID)
    if exp is not None and iat is not None:
        if exp - iat > max_lifetime:
            found.append(Reason.ORDER_LIFETIME_EXCEEDED)
        if exp < iat:  # a token that expires before it was issued is not a shape we accept
            found.append(Reason.ORDER_CLAIMS_INVALID)
    return found


def parse_compact(token: object, max_bytes: int) -> Parsed | None:
    """Split and decode a compact JWS; ``None`` when it is not one."""
    # A character is at least one byte, so len() > max already means too many bytes; what
    # passes must be ASCII (non-ASCII is malformed anyway), where len() is the byte count.
    if not isinstance(token, str) or len(token) > max_bytes or not token.isascii():
        return None
    segments = token.split(".")
    if len(segments) != 3:  # two: no signature part; five: a JWE
        return None
    try:
        header = strict_json_loads(b64url_decode(segments[0]))
        payload = strict_json_loads(b64url_decode(segments[1]))
        b64url_decode(segments[2])
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return Parsed(header=header, payload=payload)


def header_failures(header: Mapping[str, Any], allowed: frozenset[str], typ: str) -> list[Reason]:
    """The header rules: the exact ``typ``, no ``crit``, an allowed ``alg``, a ``kid``."""
    failures: list[Reason] = []
    if header.get("typ") != typ:
        failures.append(Reason.ORDER_WRONG_TYPE)
    if "crit" in header:
        # RFC 7515 section 4.1.11: extensions we do not implement must not be ignored.
        failures.append(Reason.ORDER_MALFORMED)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:  # "none" in any case, HS*, ...
        failures.append(Reason.ORDER_ALGORITHM_REJECTED)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        failures.append(Reason.ORDER_UNKNOWN_KEY)
    return failures


def signature_ok(token: str, key: VerifyingKey) -> bool:
    """Whether ``token``'s signature verifies under ``key``, with the key's own algorithm."""
    try:
        jws.verify(token, key.jose_key, algorithms=[key.trusted.alg])
    except JOSEError:
        return False
    return True


def jose_key(key: TrustedKey) -> Key:
    """The python-jose key object for a trusted key, bound to the key's own algorithm."""
    if key.alg.startswith("PS"):
        return _RsaPssKey(key.public_key, key.alg)
    if key.alg.startswith("RS"):
        return CryptographyRSAKey(key.public_key, key.alg)
    return CryptographyECKey(key.public_key, key.alg)


class _RsaPssKey(Key):  # type: ignore[misc]  # jose is untyped
    """RSASSA-PSS verification (RFC 7518 section 3.5), which python-jose 3.x lacks.

    The salt is as long as the hash output and MGF1 uses the same hash, as RFC 7518 requires.
    """

    def __init__(self, public_key: object, algorithm: str) -> None:
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise TypeError("RSASSA-PSS needs an RSA public key")
        self._public_key = public_key
        self._hash = hash_for(algorithm)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        pss = padding.PSS(mgf=padding.MGF1(self._hash), salt_length=self._hash.digest_size)
        try:
            self._public_key.verify(sig, msg, pss, self._hash)
        except InvalidSignature:
            return False
        return True


def _readable_audience(aud: object) -> TypeGuard[str | list[str]]:
    return isinstance(aud, str) or (
        isinstance(aud, list) and all(isinstance(item, str) for item in aud)
    )


def _names_audience(aud: str | list[str], audience: str) -> bool:
    return aud == audience if isinstance(aud, str) else audience in aud


def _numeric_date(value: object) -> float | None:
    """A registered time claim's value where it can be read as a number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def add_failure(failures: list[Reason], reason: Reason) -> None:
    """Add ``reason`` to ``failures`` once."""
    if reason not in failures:
        failures.append(reason)
