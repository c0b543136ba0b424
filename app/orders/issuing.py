"""Making court-order tokens: keys for issuers, trust-store entries, and signed orders.

For court custodians and the library's counsel (through ``bulwark keys`` / ``bulwark orders``)
and for tests across the project. Signing uses ``cryptography`` directly, so that what Bulwark
verifies with python-jose is checked against an independent implementation.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pydantic import ValidationError

from app.core.config import ASYMMETRIC_ALGORITHMS
from app.orders.jose import b64url_encode, hash_for, strict_json_loads
from app.orders.models import OrderClaims
from app.orders.tokens import ORDER_TYP
from app.orders.trust import EC_CURVES, TrustStore, TrustStoreError, jwk_curve_name

#: The policy's default ``max_order_lifetime_days`` (see ``app/policy/default_policy.toml``).
DEFAULT_MAX_LIFETIME_DAYS: Final = 90
#: How long an order made by :func:`make_claims` lasts unless told otherwise.
DEFAULT_LIFETIME_DAYS: Final = 30
#: RSA modulus size for new keys: comfortably above the 2048-bit floor for a long-lived key.
DEFAULT_RSA_BITS: Final = 3072

GeneratedAlg = Literal["ES256", "RS256"]


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: Pass as a claim's value to :func:`make_claims` to leave that claim out altogether.
OMIT: Final = _Omit()


class InvalidClaimsError(ValueError):
    """Claims Bulwark's verifier would refuse; ``problems`` says why, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


# --- keys -----------------------------------------------------------------------------------


def generate_key_pair(
    alg: GeneratedAlg, kid: str, *, rsa_bits: int = DEFAULT_RSA_BITS
) -> tuple[bytes, dict[str, str]]:
    """A new signing key: ``(private key as unencrypted PKCS#8 PEM, public JWK)``.

    The JWK carries ``kid``, ``alg`` and ``use: sig``, ready for a trust-store entry.
    """
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif alg == "ES256":
        private = ec.generate_private_key(EC_CURVES[alg])
    else:
        raise ValueError(f"cannot generate keys for {alg!r}; choose ES256 or RS256")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, public_jwk(private.public_key(), kid=kid, alg=alg)


def public_jwk(
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, *, kid: str, alg: str
) -> dict[str, str]:
    """The public JWK (RFC 7517) of ``public_key``, bound to ``kid`` and ``alg``."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {
            "kty": "RSA",
            "kid": kid,
            "alg": alg,
            "use": "sig",
            "n": b64url_encode(_int_bytes(numbers.n)),
            "e": b64url_encode(_int_bytes(numbers.e)),
        }
    size = (public_key.curve.key_size + 7) // 8
    point = public_key.public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "alg": alg,
        "use": "sig",
        "crv": jwk_curve_name(public_key.curve),
        "x": b64url_encode(point.x.to_bytes(size, "big")),
        "y": b64url_encode(point.y.to_bytes(size, "big")),
    }


def write_private_key(path: str | os.PathLike[str], pem: bytes) -> None:
    """Write a private key readable by its owner only (mode 0600 from creation on).

    Refuses to overwrite an existing file, so that a key in use is never lost by mistake.

    Raises:
        FileExistsError: ``path`` exists.
    """
    # O_EXCL also refuses a symlink planted at path; the mode applies at creation, so the key
    # is never readable by others, not even for an instant before a chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Parse an unencrypted PEM private key (RSA or EC).

    Raises:
        ValueError: not a PEM private key, or of another type.
    """
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("only RSA and EC private keys can sign court orders")
    return key


def algorithm_for_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """The default algorithm for a key: RS256 for RSA, ES256/384/512 by EC curve."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    for alg, curve in EC_CURVES.items():
        if curve.name == key.curve.name:
            return alg
    raise ValueError(f"unsupported curve {key.curve.name}")


# --- trust store ----------------------------------------------------------------------------


def issuer_entry(
    iss: str,
    name: str,
    jurisdictions: Sequence[str],
    public_jwk: Mapping[str, Any],
    *,
    role: str | None = None,
) -> dict[str, Any]:
    """A trust-store issuer entry holding one key (``role`` only when not a court's)."""
    entry: dict[str, Any] = {
        "iss": iss,
        "name": name,
        "jurisdictions": list(jurisdictions),
        "keys": [dict(public_jwk)],
    }
    if role is not None:
        entry["role"] = role
    return entry


def merge_issuer_into_trust_store(
    path: str | os.PathLike[str],
    iss: str,
    name: str,
    jurisdictions: Sequence[str],
    public_jwk: Mapping[str, Any],
    *,
    section: Literal["issuers", "counsel"] = "issuers",
    role: str | None = None,
) -> None:
    """Add a public key to ``iss``'s entry in the trust store at ``path``.

    Creates the file (and the entry) when missing. An existing entry keeps its name; its
    jurisdictions must be the ones given, so that adding a key never widens a court's reach
    silently. The result is validated as Bulwark would load it before the file is replaced,
    atomically.

    Raises:
        TrustStoreError: a duplicate ``kid``, differing jurisdictions, private key material,
            or an existing file that is not a valid trust store.
    """
    target = Path(path)
    document = _read_document(target)
    entries = document.setdefault(section, [])
    if not isinstance(entries, list):
        raise TrustStoreError(f"trust store {target}: {section} must be a list")
    entry = next((e for e in entries if isinstance(e, dict) and e.get("iss") == iss), None)
    if entry is None:
        entries.append(issuer_entry(iss, name, jurisdictions, public_jwk, role=role))
    elif sorted(entry.get("jurisdictions", [])) != sorted(jurisdictions):
        raise TrustStoreError(
            f"trust store {target}: issuer {iss!r} is listed with jurisdictions "
            f"{entry.get('jurisdictions')}; edit the file to change them"
        )
    else:
        entry.setdefault("keys", []).append(dict(public_jwk))
    TrustStore.from_document(document, source=str(target))  # refuses duplicate kids and more
    _replace_file(target, json.dumps(document, indent=2).encode() + b"\n")


def _read_document(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"issuers": []}
    try:
        document = strict_json_loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise TrustStoreError(f"trust store {path}: cannot read: {exc}") from exc
    if not isinstance(document, dict):
        raise TrustStoreError(f"trust store {path}: the document must be a JSON object")
    return document


def _replace_file(path: Path, content: bytes) -> None:
    # Write beside the target and rename over it, so that a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)  # public keys only: readable by the service account
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- claims ---------------------------------------------------------------------------------


def make_claims(
    *,
    now: dt.datetime | None = None,
    lifetime_days: float = DEFAULT_LIFETIME_DAYS,
    patrons: Sequence[str] = ("P000123",),
    categories: Sequence[str] = ("circulation",),
    period: tuple[dt.date | str, dt.date | str] = ("2026-01-01", "2026-06-30"),
    fields: Mapping[str, Sequence[str]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims of a valid court order, JSON-ready, for tests and examples.

    Any claim may be replaced by keyword (``jti="x"``, ``aud=["a", "b"]``) or left out with
    :data:`OMIT` (``case=OMIT``). ``iat`` is ``now`` and ``exp`` is ``lifetime_days`` later.
    """
    issued = int((now or dt.datetime.now(dt.UTC)).timestamp())
    scope: dict[str, Any] = {
        "patrons": list(patrons),
        "categories": list(categories),
        "from": str(period[0]),
        "to": str(period[1]),
    }
    if fields is not None:
        scope["fields"] = {category: list(names) for category, names in fields.items()}
    claims: dict[str, Any] = {
        "iss": "https://courts.example/il-cook",
        "aud": "bulwark",
        "iat": issued,
        "exp": issued + int(lifetime_days * 86400),
        "jti": str(uuid.uuid4()),
        "case": "2026-CR-000123",
        "court": "Circuit Court of Cook County",
        "jurisdiction": "US-IL",
        "instrument": "court_order",
        "good_cause": True,
        "scope": scope,
        "max_uses": 1,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not OMIT}


def check_claims_for_issue(
    claims: Mapping[str, Any],
    *,
    max_lifetime_days: int = DEFAULT_MAX_LIFETIME_DAYS,
    now: dt.datetime | None = None,
) -> None:
    """Refuse claims that Bulwark's verifier would reject, so that no useless order is signed.

    Checks the typed claim model, ``exp`` after ``iat``, the lifetime, that ``iat`` is not in
    the future and that the order has not already expired. A future ``nbf`` is allowed: an
    order may take effect later.

    Raises:
        InvalidClaimsError: with every problem found.
    """
    problems: list[str] = []
    try:
        OrderClaims.model_validate(claims)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    current = (now or dt.datetime.now(dt.UTC)).timestamp()
    iat, exp = claims.get("iat"), claims.get("exp")
    if isinstance(iat, int) and isinstance(exp, int):
        if exp <= iat:
            problems.append("exp: must be after iat")
        if exp - iat > max_lifetime_days * 86400:
            problems.append(f"exp: lifetime is longer than {max_lifetime_days} days")
        if iat > current:
            problems.append("iat: is in the future")
        if exp <= current:
            problems.append("exp: the order has already expired")
    if problems:
        raise InvalidClaimsError(problems)


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "claims"
    return f"{where}: {error.get('msg', 'invalid')}"


# --- signing --------------------------------------------------------------------------------


def issue_order(
    claims: Mapping[str, Any],
    private_pem: bytes,
    kid: str,
    alg: str,
    *,
    allow_invalid: bool = False,
    max_lifetime_days: int = DEFAULT_MAX_LIFETIME_DAYS,
    now: dt.datetime | None = None,
) -> str:
    """Sign ``claims`` as a court-order token (header ``alg``, ``kid``, ``typ``).

    Refuses claims the verifier would reject unless ``allow_invalid`` (for tests of refusals).

    Raises:
        InvalidClaimsError: the claims would be refused (and ``allow_invalid`` is false).
        ValueError: the key does not fit ``alg``.
    """
    if not allow_invalid:
        check_claims_for_issue(claims, max_lifetime_days=max_lifetime_days, now=now)
    header = {"alg": alg, "kid": kid, "typ": ORDER_TYP}
    return sign_compact(header, claims, private_pem, alg)


def sign_compact(
    header: Mapping[str, Any],
    payload: Mapping[str, Any] | bytes,
    private_pem: bytes,
    alg: str,
) -> str:
    """Sign ``payload`` under exactly ``header`` with ``alg``: a compact JWS.

    Low level: the header is taken as given (tests use this to build hostile tokens).

    Raises:
        ValueError: ``alg`` is not an asymmetric algorithm, or the key does not fit it.
    """
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"refusing to sign with {alg!r}: not an asymmetric algorithm")
    body = payload if isinstance(payload, bytes) else _json(payload)
    signing_input = f"{b64url_encode(_json(header))}.{b64url_encode(body)}"
    signature = _sign(load_private_key(private_pem), alg, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def _sign(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, alg: str, data: bytes) -> bytes:
    digest = hash_for(alg)
    if isinstance(key, rsa.RSAPrivateKey) and alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), digest)
    if isinstance(key, rsa.RSAPrivateKey) and alg.startswith("PS"):
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return key.sign(data, pss, digest)
    curve = EC_CURVES.get(alg)
    if isinstance(key, ec.EllipticCurvePrivateKey) and curve and key.curve.name == curve.name:
        # JWS wants the raw r || s pair (RFC 7518 section 3.4), not the DER that OpenSSL gives.
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise ValueError(f"this {type(key).__name__} cannot sign {alg}")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_json_default).encode("utf-8")


def _json_default(value: object) -> str:
    if isinstance(value, dt.date):  # also datetime
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
