"""Court-order token verification: the one place that checks a signature with python-jose.

The token never chooses how it is checked. Its header may only *name* a key (``kid``) of the
issuer its payload names (``iss``); the key itself, and the one algorithm it may be used with,
come from the trust store. Key-carrying headers (``jku``, ``x5u``, ``jwk``, ``x5c``) are never
read, let alone fetched: verification is offline.

The order of the checks, and what each may report::

    size, segments, base64url, JSON   -> order.malformed (and nothing else)
    typ, crit, alg, kid               -> order.wrong_type, order.malformed,
                                         order.algorithm_rejected, order.unknown_key
    iss, (iss, kid), key's own alg    -> order.untrusted_issuer, order.unknown_key,
                                         order.algorithm_rejected
    signature (only with a key found) -> order.signature_invalid (and stop: the payload is
                                         untrusted, so no claim is reported as a fact)
    claims (only after a good signature) -> order.claims_invalid, order.audience,
                                         order.expired, order.not_yet_valid,
                                         order.lifetime_exceeded, all that apply
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jws
from jose.backends.base import Key
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey
from jose.exceptions import JOSEError
from pydantic import ValidationError

from app.core.config import ASYMMETRIC_ALGORITHMS
from app.core.reasons import Reason
from app.orders.checks import OrderCheck, TrustedIssuer
from app.orders.models import OrderClaims
from app.orders.trust import (
    IssuerRegistry,
    TrustedKey,
    TrustStore,
    b64url_decode,
    hash_for,
    strict_json_loads,
)

#: The only ``typ`` a court order may carry (compared exactly).
ORDER_TYP: Final = "court-order+jwt"
#: The longest value kept, per field, in ``OrderCheck.unverified``.
MAX_UNVERIFIED_CHARS: Final = 256

#: Tokens whose time-independent outcome a verifier remembers (the most recently shown).
CHECKED_TOKENS: Final = 4096

_HEADER_FIELDS: Final = ("kid", "alg")
_PAYLOAD_FIELDS: Final = ("iss", "jti", "case", "instrument")


@dataclass(frozen=True, slots=True)
class _Parsed:
    header: dict[str, Any]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Checked:
    """A token's outcome at any time: its failures so far and, past its signature, claims.

    ``parsed`` and ``issuer`` are set when the signature verified; then ``claims`` holds the
    typed claims, or None when they did not parse (``order.claims_invalid`` is among the
    failures).
    """

    failures: tuple[Reason, ...]
    unverified: dict[str, Any]
    parsed: _Parsed | None = None
    issuer: TrustedIssuer | None = None
    claims: OrderClaims | None = None


@dataclass(frozen=True, slots=True)
class _VerifyingKey:
    trusted: TrustedKey
    jose_key: Key


class OrderVerifier:
    """Checks court-order tokens against a trust store; build one per process and reuse it.

    Args:
        trust: the issuers and keys to believe.
        audience: the ``aud`` value that names this deployment.
        allowed_algorithms: the signature algorithms accepted (asymmetric only).
        clock_skew_seconds: how far ``exp``, ``nbf`` and ``iat`` may be off.
        max_lifetime_days: the longest ``exp - iat`` the policy allows.
        max_token_bytes: tokens longer than this are refused before any decoding.
    """

    __slots__ = (
        "_allowed",
        "_audience",
        "_checked",
        "_keys",
        "_max_bytes",
        "_max_lifetime",
        "_skew",
        "_trust",
    )

    def __init__(
        self,
        trust: TrustStore,
        *,
        audience: str,
        allowed_algorithms: Collection[str],
        clock_skew_seconds: int,
        max_lifetime_days: int,
        max_token_bytes: int = 16384,
    ) -> None:
        check_verifier_settings(
            allowed_algorithms, clock_skew_seconds, max_lifetime_days, max_token_bytes
        )
        self._trust = trust
        self._audience = audience
        self._allowed = frozenset(allowed_algorithms)
        self._skew = clock_skew_seconds
        self._max_lifetime = max_lifetime_days * 86400
        self._max_bytes = max_token_bytes
        self._keys = wrap_keys(trust.courts)
        self._checked: OrderedDict[bytes, _Checked] = OrderedDict()

    def verify(self, token: str, now: datetime) -> OrderCheck:
        """Check ``token`` at time ``now`` (timezone-aware) and report every failure found.

        ``claims`` and ``issuer`` are set only when nothing failed. Never raises for a bad
        token; raises ``ValueError`` only for a naive ``now`` (a programming error).
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        checked = self._check(token)
        if checked.parsed is None or checked.issuer is None:  # stopped before the claims
            return _denied(list(checked.failures), checked.unverified)
        # Only the checks that depend on the time are made on every call.
        failures = list(checked.failures)
        found = registered_claim_failures(
            checked.parsed.payload,
            now.timestamp(),
            audience=self._audience,
            skew=self._skew,
            max_lifetime=self._max_lifetime,
        )
        for reason in found:
            _add(failures, reason)
        if failures or checked.claims is None:
            return _denied(failures, checked.unverified)
        return OrderCheck(
            claims=checked.claims, issuer=checked.issuer, failures=(), unverified=checked.unverified
        )

    def _check(self, token: str) -> _Checked:
        """Everything about ``token`` that does not depend on the time, remembered.

        The trust store cannot change while this verifier lives, so a token's signature is
        as good (or as bad) the second time it is shown: a disclosure that presents the same
        order again, or a flood of one forged token, costs a SHA-256 instead of a signature
        check. Keyed by the token's digest; only tokens within the size cap are remembered.
        """
        cacheable = isinstance(token, str) and len(token) <= self._max_bytes
        if not cacheable:
            return self._check_uncached(token)
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        checked = self._checked.get(digest)
        if checked is not None:
            self._checked.move_to_end(digest)
            return checked
        checked = self._check_uncached(token)
        self._checked[digest] = checked
        if len(self._checked) > CHECKED_TOKENS:
            self._checked.popitem(last=False)
        return checked

    def _check_uncached(self, token: str) -> _Checked:
        parsed = _parse_compact(token, self._max_bytes)
        if parsed is None:
            return _Checked(failures=(Reason.ORDER_MALFORMED,), unverified={})
        unverified = _unverified(parsed)
        failures = _header_failures(parsed.header, self._allowed)
        issuer, key = self._resolve(parsed, failures)
        if issuer is None or key is None:
            return _Checked(failures=tuple(failures), unverified=unverified)
        if not _signature_ok(token, key):
            # The payload is untrusted: report no claim as a fact, only what we found so far.
            failures.append(Reason.ORDER_SIGNATURE_INVALID)
            return _Checked(failures=tuple(failures), unverified=unverified)
        try:
            claims: OrderClaims | None = OrderClaims.model_validate(parsed.payload)
        except ValidationError:
            claims = None
            failures.append(Reason.ORDER_CLAIMS_INVALID)
        return _Checked(
            failures=tuple(failures),
            unverified=unverified,
            parsed=parsed,
            issuer=issuer,
            claims=claims,
        )

    def _resolve(
        self, parsed: _Parsed, failures: list[Reason]
    ) -> tuple[TrustedIssuer | None, _VerifyingKey | None]:
        """Find the issuer and its key named by the token, adding any failure to ``failures``."""
        return resolve_key(parsed, self._trust.courts, self._keys, self._allowed, failures)


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


def wrap_keys(registry: IssuerRegistry) -> dict[tuple[str, str], _VerifyingKey]:
    """Every key of ``registry``, wrapped for python-jose once, so that a request parses none."""
    return {(key.iss, key.kid): _VerifyingKey(key, _jose_key(key)) for key in registry.keys}


def resolve_key(
    parsed: _Parsed,
    registry: IssuerRegistry,
    keys: dict[tuple[str, str], _VerifyingKey],
    allowed: frozenset[str],
    failures: list[Reason],
) -> tuple[TrustedIssuer | None, _VerifyingKey | None]:
    """The issuer and key a token names, from ``registry`` only; failures go to ``failures``.

    The token never chooses how it is checked: the key is found by (iss, kid) among the trusted
    ones, and used only with its own algorithm, and only if this deployment allows it.
    """
    iss, kid = parsed.payload.get("iss"), parsed.header.get("kid")
    issuer = registry.issuer(iss) if isinstance(iss, str) else None
    if issuer is None:
        _add(failures, Reason.ORDER_UNTRUSTED_ISSUER)
        return None, None
    key = keys.get((issuer.iss, kid)) if isinstance(kid, str) else None
    if key is None:
        _add(failures, Reason.ORDER_UNKNOWN_KEY)
        return issuer, None
    alg = parsed.header.get("alg")
    if alg != key.trusted.alg or alg not in allowed:
        _add(failures, Reason.ORDER_ALGORITHM_REJECTED)
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


def _parse_compact(token: object, max_bytes: int) -> _Parsed | None:
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
    return _Parsed(header=header, payload=payload)


def _header_failures(
    header: Mapping[str, Any], allowed: frozenset[str], typ: str = ORDER_TYP
) -> list[Reason]:
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


def _signature_ok(token: str, key: _VerifyingKey) -> bool:
    try:
        jws.verify(token, key.jose_key, algorithms=[key.trusted.alg])
    except JOSEError:
        return False
    return True


def _jose_key(key: TrustedKey) -> Key:
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


def _unverified(parsed: _Parsed) -> dict[str, Any]:
    """Best-effort, never-trusted strings for the audit log."""
    found: dict[str, Any] = {}
    for source, names in ((parsed.header, _HEADER_FIELDS), (parsed.payload, _PAYLOAD_FIELDS)):
        for name in names:
            value = source.get(name)
            if isinstance(value, str):
                # A JSON escape can smuggle in a lone surrogate, which no UTF-8 encoder takes:
                # replaced, so that the audit event of the refusal can be written at all.
                found[name] = (
                    value[:MAX_UNVERIFIED_CHARS].encode("utf-8", "replace").decode("utf-8")
                )
            elif isinstance(value, int | float) and not isinstance(value, bool):
                found[name] = str(value)[:MAX_UNVERIFIED_CHARS]
    return found


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


def _add(failures: list[Reason], reason: Reason) -> None:
    if reason not in failures:
        failures.append(reason)


def _denied(failures: list[Reason], unverified: dict[str, Any]) -> OrderCheck:
    unique = tuple(dict.fromkeys(failures))
    return OrderCheck(claims=None, issuer=None, failures=unique, unverified=unverified)
