"""Court-order token verification (JOSE itself: :mod:`app.orders.jose`).

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
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Unpack

from pydantic import ValidationError

from app.core.reasons import Reason
from app.orders import jose
from app.orders.checks import OrderCheck, TrustedIssuer
from app.orders.jose import Parsed, VerifyingKey
from app.orders.models import OrderClaims
from app.orders.trust import TrustStore

#: The only ``typ`` a court order may carry (compared exactly).
ORDER_TYP: Final = "court-order+jwt"
#: The longest value kept, per field, in ``OrderCheck.unverified``.
MAX_UNVERIFIED_CHARS: Final = 256

#: Tokens whose time-independent outcome a verifier remembers (the most recently shown).
CHECKED_TOKENS: Final = 4096

_HEADER_FIELDS: Final = ("kid", "alg")
_PAYLOAD_FIELDS: Final = ("iss", "jti", "case", "instrument")


@dataclass(frozen=True, slots=True)
class _Checked:
    """A token's outcome at any time: its failures so far and, past its signature, claims.

    ``parsed`` and ``issuer`` are set when the signature verified; then ``claims`` holds the
    typed claims, or None when they did not parse (``order.claims_invalid`` is among the
    failures).
    """

    failures: tuple[Reason, ...]
    unverified: dict[str, Any]
    parsed: Parsed | None = None
    issuer: TrustedIssuer | None = None
    claims: OrderClaims | None = None


class OrderVerifier(jose.TokenVerifier):
    """Checks court-order tokens against a trust store; build one per process and reuse it.

    Args:
        trust: the issuers and keys to believe.
        **limits: the :class:`app.orders.jose.VerifierLimits`.
    """

    __slots__ = ("_checked", "_trust")

    def __init__(self, trust: TrustStore, **limits: Unpack[jose.VerifierLimits]) -> None:
        super().__init__(trust.courts, **limits)
        self._trust = trust
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
        found = jose.registered_claim_failures(
            checked.parsed.payload,
            now.timestamp(),
            audience=self._audience,
            skew=self._skew,
            max_lifetime=self._max_lifetime,
        )
        for reason in found:
            jose.add_failure(failures, reason)
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
        parsed = jose.parse_compact(token, self._max_bytes)
        if parsed is None:
            return _Checked(failures=(Reason.ORDER_MALFORMED,), unverified={})
        unverified = _unverified(parsed)
        failures = jose.header_failures(parsed.header, self._allowed, ORDER_TYP)
        issuer, key = self._resolve(parsed, failures)
        if issuer is None or key is None:
            return _Checked(failures=tuple(failures), unverified=unverified)
        if not jose.signature_ok(token, key):
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
        self, parsed: Parsed, failures: list[Reason]
    ) -> tuple[TrustedIssuer | None, VerifyingKey | None]:
        """Find the issuer and its key named by the token, adding any failure to ``failures``."""
        return jose.resolve_key(parsed, self._trust.courts, self._keys, self._allowed, failures)


def _unverified(parsed: Parsed) -> dict[str, Any]:
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


def _denied(failures: list[Reason], unverified: dict[str, Any]) -> OrderCheck:
    unique = tuple(dict.fromkeys(failures))
    return OrderCheck(claims=None, issuer=None, failures=unique, unverified=unverified)
