"""The trust store: which issuers Bulwark believes, and the public keys it checks them with.

The store is a JSON file (docs/trust.md)::

    {"issuers": [{"iss": "...", "name": "...", "jurisdictions": ["US-IL"],
                  "keys": [{"kty": "RSA", "kid": "cook-2026", "alg": "RS256",
                            "n": "...", "e": "AQAB"}]}],
     "counsel": [ ...same shape, optional... ]}

It is read and validated once, when Bulwark starts: every key is parsed into a ``cryptography``
public key object then, so that verifying a request never touches the file or re-parses a key.
Anything doubtful stops the load with a :class:`TrustStoreError` that names the entry at fault
(fail closed: a half-understood trust store must not serve).

A key is trusted only for its own issuer and its own ``alg``; ``kid`` values are unique across
the whole store, so that a ``kid`` never means two keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.core.config import ASYMMETRIC_ALGORITHMS
from app.orders.checks import ISSUER_ROLES, ROLE_COURT, TrustedIssuer
from app.orders.jose import b64url_decode, strict_json_loads

#: RSA moduli shorter than this are refused (NIST SP 800-131A: 2048 bits minimum).
MIN_RSA_BITS: Final = 2048

#: The curve each ECDSA algorithm is defined on (RFC 7518 section 3.4).
EC_CURVES: Final[Mapping[str, ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}

#: JWK ``crv`` names (RFC 7518 section 6.2.1.1) and the curve each denotes.
JWK_CURVES: Final[Mapping[str, ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


# Members that only a private or symmetric JWK carries (RFC 7518 sections 6.2.2, 6.3.2, 6.4).
_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_MAX_KID_CHARS: Final = 256

PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class TrustStoreError(ValueError):
    """The trust store cannot be used; the message names the file and the entry at fault."""


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One trusted public key: usable only for ``iss`` and only with ``alg``."""

    iss: str
    kid: str
    alg: str
    public_key: PublicKey


class IssuerRegistry:
    """Issuers of one kind (courts, or counsel) and their keys, looked up by ``(iss, kid)``."""

    __slots__ = ("_issuers", "_keys")

    def __init__(
        self, issuers: Iterable[TrustedIssuer] = (), keys: Iterable[TrustedKey] = ()
    ) -> None:
        self._issuers = {issuer.iss: issuer for issuer in issuers}
        self._keys = {(key.iss, key.kid): key for key in keys}

    def issuer(self, iss: str) -> TrustedIssuer | None:
        """The issuer ``iss``, or ``None`` when it is not trusted."""
        return self._issuers.get(iss)

    def key(self, iss: str, kid: str) -> TrustedKey | None:
        """Issuer ``iss``'s own key ``kid``; another issuer's key of that kid is not returned."""
        return self._keys.get((iss, kid))

    @property
    def issuers(self) -> tuple[TrustedIssuer, ...]:
        """Every issuer, in file order."""
        return tuple(self._issuers.values())

    @property
    def keys(self) -> tuple[TrustedKey, ...]:
        """Every key, in file order."""
        return tuple(self._keys.values())

    def __len__(self) -> int:
        return len(self._issuers)


class TrustStore:
    """Trusted court issuers, and separately the library's counsel offices, with their keys.

    ``issuer()`` and ``key()`` answer for courts; ``counsel_issuers`` is the same lookup for
    the optional ``counsel`` section. Build one with :meth:`load` (or :meth:`empty`).
    """

    __slots__ = ("counsel_issuers", "courts", "sha256", "source")

    def __init__(
        self,
        courts: IssuerRegistry,
        counsel_issuers: IssuerRegistry,
        source: str | None = None,
        sha256: str | None = None,
    ) -> None:
        self.courts = courts
        self.counsel_issuers = counsel_issuers
        self.source = source
        #: SHA-256 (hex) of the file as loaded: ``/readyz`` shows it, so an operator can tell
        #: with ``sha256sum`` whether the running process has the file on disk.
        self.sha256 = sha256

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrustStore:
        """Read and validate the trust store at ``path``.

        Raises:
            TrustStoreError: the file is missing or unreadable, not JSON, or any entry is wrong.
        """
        source = os.fspath(path)
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise TrustStoreError(f"trust store {source}: cannot read: {exc.strerror}") from exc
        try:
            document = strict_json_loads(raw)
        except (ValueError, RecursionError) as exc:
            raise TrustStoreError(f"trust store {source}: malformed JSON: {exc}") from exc
        store = cls.from_document(document, source=source)
        store.sha256 = hashlib.sha256(raw).hexdigest()
        return store

    @classmethod
    def from_document(cls, document: object, *, source: str = "<document>") -> TrustStore:
        """Validate an already parsed trust-store document (see :meth:`load`).

        Raises:
            TrustStoreError: any entry is wrong.
        """
        courts, counsel = _Loader(source).document(document)
        return cls(courts, counsel, source)

    @classmethod
    def empty(cls) -> TrustStore:
        """A store that trusts nobody: every order is refused as from an untrusted issuer."""
        return cls(IssuerRegistry(), IssuerRegistry())

    def issuer(self, iss: str) -> TrustedIssuer | None:
        """The trusted court issuer ``iss``, or ``None``."""
        return self.courts.issuer(iss)

    def key(self, iss: str, kid: str) -> TrustedKey | None:
        """Court issuer ``iss``'s own key ``kid``, or ``None``."""
        return self.courts.key(iss, kid)

    def summary(self) -> dict[str, int]:
        """Counts for ``/readyz``: no key material, no names."""
        return {
            "issuers": len(self.courts),
            "keys": len(self.courts.keys),
            "counsel_issuers": len(self.counsel_issuers),
            "counsel_keys": len(self.counsel_issuers.keys),
        }


class _Loader:
    """Walks a trust-store document once, building registries and naming any fault's place."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._kids: dict[str, str] = {}  # kid -> where it was first seen, across all sections

    def fail(self, where: str, problem: str) -> TrustStoreError:
        prefix = f"trust store {self._source}: "
        return TrustStoreError(f"{prefix}{where}: {problem}" if where else prefix + problem)

    def document(self, document: object) -> tuple[IssuerRegistry, IssuerRegistry]:
        if not isinstance(document, dict):
            raise self.fail("", "the document must be a JSON object with an 'issuers' list")
        if "issuers" not in document:
            raise self.fail("", "missing 'issuers' (a list of issuer entries)")
        courts = self.section("issuers", document["issuers"])
        counsel = self.section("counsel", document.get("counsel", []))
        for issuer in counsel.issuers:
            if courts.issuer(issuer.iss) is not None:
                where = f"counsel ({_show('iss', issuer.iss)})"
                raise self.fail(where, "issuer is listed under both 'issuers' and 'counsel'")
        # Counsel keys can never act as courts: the same key material under another kid or
        # iss in 'issuers' would let counsel sign an order for any patron.
        counsel_keys = {key_fingerprint(key.public_key): key for key in counsel.keys}
        for key in courts.keys:
            twin = counsel_keys.get(key_fingerprint(key.public_key))
            if twin is not None:
                where = f"issuers ({_show('iss', key.iss)}, {_show('kid', key.kid)})"
                raise self.fail(
                    where,
                    f"this is counsel's key ({_show('kid', twin.kid)} under 'counsel'); "
                    "a counsel key can never act as a court",
                )
        return courts, counsel

    def section(self, name: str, entries: object) -> IssuerRegistry:
        if not isinstance(entries, list):
            raise self.fail(name, "must be a list of issuer entries")
        issuers: list[TrustedIssuer] = []
        keys: list[TrustedKey] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"{name}[{index}]"
            issuer, issuer_keys = self.issuer(path, entry)
            if issuer.iss in seen:
                raise self.fail(f"{path} ({_show('iss', issuer.iss)})", "duplicate issuer")
            seen.add(issuer.iss)
            issuers.append(issuer)
            keys.extend(issuer_keys)
        return IssuerRegistry(issuers, keys)

    def issuer(self, path: str, entry: object) -> tuple[TrustedIssuer, list[TrustedKey]]:
        if not isinstance(entry, dict):
            raise self.fail(path, "an issuer entry must be a JSON object")
        iss = self.text(path, entry, "iss")
        where = f"{path} ({_show('iss', iss)})"
        name = self.text(where, entry, "name")
        jurisdictions = entry.get("jurisdictions")
        if not isinstance(jurisdictions, list) or not all(
            isinstance(j, str) and j for j in jurisdictions
        ):
            raise self.fail(where, "'jurisdictions' must be a list of non-empty strings")
        raw_keys = entry.get("keys")
        if not isinstance(raw_keys, list) or not raw_keys:
            raise self.fail(where, "'keys' must be a non-empty list of JWKs")
        role = self.role(path, where, entry)
        keys = [self.key(f"{path}.keys[{i}]", iss, jwk) for i, jwk in enumerate(raw_keys)]
        issuer = TrustedIssuer(
            iss=iss, name=name, jurisdictions=frozenset(jurisdictions), role=role
        )
        return issuer, keys

    def role(self, path: str, where: str, entry: Mapping[str, Any]) -> str:
        role = entry.get("role", ROLE_COURT if path.startswith("issuers") else "counsel")
        if path.startswith("counsel"):
            if role != "counsel":
                raise self.fail(where, "an entry under 'counsel' can only have role 'counsel'")
            return "counsel"  # approvals only: the counsel registry never verifies an order
        if role == "counsel":
            raise self.fail(
                where,
                "role 'counsel' under 'issuers': counsel can never act as a court; "
                "list counsel under 'counsel' (bulwark keys generate --counsel)",
            )
        if role not in ISSUER_ROLES:
            raise self.fail(where, f"'role' must be one of {', '.join(ISSUER_ROLES)}")
        return str(role)

    def text(self, where: str, entry: Mapping[str, Any], member: str) -> str:
        value = entry.get(member)
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"'{member}' must be a non-empty string")
        return value

    def key(self, where: str, iss: str, jwk: object) -> TrustedKey:
        if not isinstance(jwk, dict):
            raise self.fail(where, "a key must be a JWK object")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID_CHARS:
            raise self.fail(where, f"'kid' must be a string of 1 to {_MAX_KID_CHARS} characters")
        where = f"{where} ({_show('kid', kid)})"
        if kid in self._kids:
            raise self.fail(where, f"duplicate kid (already used by {self._kids[kid]})")
        try:
            alg, public_key = parse_public_jwk(jwk)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from exc
        self._kids[kid] = where
        return TrustedKey(iss=iss, kid=kid, alg=alg, public_key=public_key)


def parse_public_jwk(jwk: Mapping[str, Any]) -> tuple[str, PublicKey]:
    """Check a public signature JWK and build its key: ``(alg, public key)``.

    Raises:
        ValueError: no ``alg``, private or symmetric material, an algorithm that is not
            asymmetric, or a key that does not fit its algorithm.
    """
    alg = jwk.get("alg")
    if not isinstance(alg, str) or not alg:
        raise ValueError("'alg' is required: a key is trusted only for its own algorithm")
    kty = jwk.get("kty")
    if kty == "oct" or alg.upper().startswith("HS"):
        raise ValueError("symmetric (HMAC/oct) keys are never trusted: a verifier could forge")
    private = [member for member in _PRIVATE_MEMBERS if member in jwk]
    if private:
        raise ValueError(f"holds private key material ({', '.join(private)}); list public keys")
    if alg not in ASYMMETRIC_ALGORITHMS:
        allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
        raise ValueError(f"alg {alg!r} is not an accepted signature algorithm ({allowed})")
    if "use" in jwk and jwk["use"] != "sig":
        raise ValueError(f"'use' is {jwk['use']!r}; a court-order key must be a 'sig' key")
    if alg.startswith(("RS", "PS")):
        return alg, _rsa_public_key(alg, jwk)
    return alg, _ec_public_key(alg, jwk)


def _rsa_public_key(alg: str, jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    if jwk.get("kty") != "RSA":
        raise ValueError(f"alg {alg} needs an RSA key, not kty {jwk.get('kty')!r}")
    n, e = _big_int(jwk, "n"), _big_int(jwk, "e")
    if n.bit_length() < MIN_RSA_BITS:
        raise ValueError(f"RSA modulus is {n.bit_length()} bits; at least {MIN_RSA_BITS} needed")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise ValueError(f"not a valid RSA public key: {exc}") from exc


def _ec_public_key(alg: str, jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    curve = EC_CURVES[alg]
    crv = jwk.get("crv")
    if jwk.get("kty") != "EC" or not isinstance(crv, str) or crv not in JWK_CURVES:
        raise ValueError(f"alg {alg} needs an EC {jwk_curve_name(curve)} key")
    if JWK_CURVES[crv].name != curve.name:
        raise ValueError(f"alg {alg} needs curve {jwk_curve_name(curve)}, not {crv}")
    size = (curve.key_size + 7) // 8
    x, y = _coordinate(jwk, "x", size), _coordinate(jwk, "y", size)
    try:
        return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    except ValueError as exc:  # the point is not on the curve
        raise ValueError(f"not a valid EC public key: {exc}") from exc


def key_fingerprint(public_key: PublicKey) -> str:
    """SHA-256 (hex) of a public key's DER SubjectPublicKeyInfo: the same key, however named."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def jwk_curve_name(curve: ec.EllipticCurve) -> str:
    """The JWK ``crv`` name (``P-256``...) of a supported curve."""
    return next(name for name, known in JWK_CURVES.items() if known.name == curve.name)


def _member_bytes(jwk: Mapping[str, Any], member: str) -> bytes:
    value = jwk.get(member)
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{member}' must be a non-empty base64url string")
    try:
        return b64url_decode(value)
    except ValueError as exc:
        raise ValueError(f"'{member}' is not base64url") from exc


def _big_int(jwk: Mapping[str, Any], member: str) -> int:
    return int.from_bytes(_member_bytes(jwk, member), "big")


def _coordinate(jwk: Mapping[str, Any], member: str, size: int) -> int:
    # RFC 7518 section 6.2.1.2: a coordinate is always the full size of the curve's field.
    raw = _member_bytes(jwk, member)
    if len(raw) != size:
        raise ValueError(f"'{member}' must be {size} bytes, not {len(raw)}")
    return int.from_bytes(raw, "big")


def _show(label: str, value: str) -> str:
    # Names an entry in a message without letting a long value swamp it.
    shown = value if len(value) <= 80 else value[:77] + "..."
    return f"{label} {shown!r}"
