"""``bulwark keys`` and ``bulwark orders``: issuer keys and signed court orders from a shell.

The main ``bulwark`` command adds these groups (``from app.orders.cli import keys, orders``);
``orders`` is a plain :class:`click.Group`, so more commands can be added to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.core.reasons import Reason, message_of
from app.orders.issuing import (
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_MAX_LIFETIME_DAYS,
    GeneratedAlg,
    InvalidClaimsError,
    algorithm_for_key,
    generate_key_pair,
    issue_order,
    issuer_entry,
    load_private_key,
    merge_issuer_into_trust_store,
    write_private_key,
)
from app.orders.models import Instrument, patron_id_problem
from app.orders.trust import TrustStoreError
from app.records.categories import Category

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.preflight import Preflight

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _numeric_date(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Unix seconds or an ISO 8601 date-time (naive means UTC), as a JWT NumericDate."""
    if value is None:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither Unix seconds nor ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


@click.group()
def keys() -> None:
    """Signing keys for court-order issuers."""


@keys.command("generate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), default="ES256", show_default=True)
@click.option("--kid", required=True, help="The key id that tokens will name in their header.")
@click.option(
    "--private-key",
    "private_key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (created with mode 0600; never overwritten).",
)
@click.option(
    "--trust-store",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Merge the public key into this trust store instead of printing the entry.",
)
@click.option("--iss", required=True, help="The issuer identifier tokens will carry.")
@click.option("--name", required=True, help="The issuer's name, e.g. the court's.")
@click.option("--jurisdiction", "jurisdictions", multiple=True, help="e.g. US-IL (repeatable).")
@click.option(
    "--counsel",
    is_flag=True,
    help="Counsel's approval key: listed under 'counsel', never able to sign an order.",
)
@click.option(
    "--custodian",
    is_flag=True,
    help="The library custodian's transcription key: listed under 'issuers' with role "
    "'custodian' (its orders need the paper's digest and counsel's approval).",
)
def generate(
    alg: GeneratedAlg,
    kid: str,
    private_key_path: Path,
    trust_store: Path | None,
    iss: str,
    name: str,
    jurisdictions: tuple[str, ...],
    counsel: bool,
    custodian: bool,
) -> None:
    """Generate a key pair: the private key to a file, the public key as a trust-store entry."""
    if counsel and custodian:
        raise click.UsageError("a key is counsel's or the custodian's, not both")
    role = "custodian" if custodian else None
    pem, jwk = generate_key_pair(alg, kid)
    try:
        write_private_key(private_key_path, pem)
    except FileExistsError:
        raise click.ClickException(
            f"{private_key_path} exists; refusing to overwrite a key"
        ) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {private_key_path}: {exc.strerror}") from None
    if trust_store is None:
        click.echo(json.dumps(issuer_entry(iss, name, jurisdictions, jwk, role=role), indent=2))
        return
    try:
        merge_issuer_into_trust_store(
            trust_store,
            iss,
            name,
            jurisdictions,
            jwk,
            section="counsel" if counsel else "issuers",
            role=role,
        )
    except TrustStoreError as exc:
        private_key_path.unlink()  # the key would be unusable: do not leave it behind
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added key {kid!r} for {iss} to {trust_store}", err=True)


@click.group()
def orders() -> None:
    """Court-order tokens."""


@orders.command("issue")
@click.option("--iss", required=True, help="The issuer (as listed in the trust store).")
@click.option("--aud", multiple=True, default=["bulwark"], show_default=True, help="Repeatable.")
@click.option("--case", required=True, help="Docket or case number.")
@click.option("--court", required=True, help="The issuing court's name.")
@click.option("--jurisdiction", required=True, help="e.g. US-IL.")
@click.option(
    "--instrument",
    type=click.Choice([i.value for i in Instrument]),
    default=Instrument.COURT_ORDER.value,
    show_default=True,
)
@click.option("--good-cause/--no-good-cause", default=False, show_default=True)
@click.option(
    "--patron",
    "patrons",
    multiple=True,
    required=True,
    callback=lambda _ctx, _param, values: _patron_ids(values),
    help="Repeatable. As the API takes it: letters, digits, . _ : @ -; no surrounding spaces.",
)
@click.option(
    "--category",
    "categories",
    type=click.Choice([c.value for c in Category]),
    multiple=True,
    required=True,
    help="Repeatable.",
)
@click.option("--from", "from_", type=_DATE, required=True, help="First record date, inclusive.")
@click.option("--to", type=_DATE, required=True, help="Last record date, inclusive.")
@click.option("--field", "fields", multiple=True, help="CATEGORY=FIELD: limit fields (repeatable).")
@click.option("--max-uses", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--nondisclosure-until", type=_DATE, help="The patron may not be told before this.")
@click.option("--lifetime-days", type=click.IntRange(min=1), help="exp = now + this.")
@click.option(
    "--exp", callback=_numeric_date, help="Expiry, Unix seconds or ISO 8601 (or --lifetime-days)."
)
@click.option("--nbf", callback=_numeric_date, help="Not before, Unix seconds or ISO 8601.")
@click.option("--jti", default=None, help="The order's unique id (default: a new UUID).")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The issuer's private key (PEM).",
)
@click.option("--kid", required=True)
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), help="Default: from the key.")
@click.option(
    "--max-lifetime-days",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_LIFETIME_DAYS,
    show_default=True,
    help="The longest lifetime the receiving policy allows (checked before signing).",
)
@click.option(
    "--paper",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The scanned paper order this token transcribes: its SHA-256 goes in the token.",
)
@click.option("--transcribed-by", help="Who transcribed the paper order (a staff id).")
@click.option("--allow-invalid", is_flag=True, help="Sign even claims Bulwark would refuse.")
def issue(key_path: Path, kid: str, alg: str | None, **options: Any) -> None:
    """Sign a court order and print the compact token (its iss and jti go to stderr).

    Before anything is printed, the token is checked with Bulwark's own verifier and policy,
    on this deployment's settings (BULWARK_TRUST_STORE, BULWARK_POLICY, BULWARK_JURISDICTIONS,
    BULWARK_RECORDS_MAPPING): an order Bulwark would refuse is not handed out, and the
    refusal gives Bulwark's own reason codes. --allow-invalid skips every check.
    """
    claims = _claims_from_options(options)
    if options["paper"] is not None:
        claims["paper_sha256"] = hashlib.sha256(options["paper"].read_bytes()).hexdigest()
    if options["transcribed_by"] is not None:
        claims["transcribed_by"] = options["transcribed_by"]
    pem = key_path.read_bytes()
    try:
        token = issue_order(
            claims,
            pem,
            kid,
            alg or algorithm_for_key(load_private_key(pem)),
            allow_invalid=options["allow_invalid"],
            max_lifetime_days=options["max_lifetime_days"],
        )
    except InvalidClaimsError as exc:
        lines = "\n".join(f"  {problem}" for problem in exc.problems)
        raise click.ClickException(f"Bulwark would refuse these claims:\n{lines}") from exc
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not options["allow_invalid"]:
        from app.preflight import NOT_YET

        checked = _preflight(token)
        refused = checked.refusals(NOT_YET)
        if refused:
            raise click.ClickException(
                "Bulwark would refuse this order; nothing was issued:\n" + _reason_lines(refused)
            )
        if checked.transcribed:
            click.echo("counsel must approve it: bulwark orders approve", err=True)
    click.echo(f"iss={claims['iss']} jti={claims['jti']}", err=True)
    click.echo(token)


@orders.command("inspect")
@click.argument("token")
@click.option("--approval", help="Counsel's approval token, checked with the order.")
def inspect_order(token: str, approval: str | None) -> None:
    """Show what TOKEN says (unverified, as written) and what Bulwark's policy would decide.

    The decision is Bulwark's own, on this deployment's settings, for the widest request the
    order allows; nothing is recorded and no use is spent.
    """
    checked = _preflight(token.strip(), approval=approval.strip() if approval else None)
    claims = {k: v for k, v in checked.claims.items() if k != "scope"}
    scope = checked.claims.get("scope")
    if isinstance(scope, dict):
        # The patron ids stay on paper and in the token: counted, never printed.
        patrons = scope.get("patrons")
        claims["scope"] = {k: v for k, v in scope.items() if k != "patrons"}
        claims["scope"]["patrons_named"] = len(patrons) if isinstance(patrons, list) else 0
    decision = checked.decision
    shown = {
        "header": checked.header,
        "claims": claims,
        "verified": checked.check.verified,
        "transcription": checked.transcribed,
        "decision": {
            "effect": decision.effect.value,
            "reasons": [{"code": r.value, "message": message_of(r)} for r in decision.reasons],
            "trace": [rule.as_json() for rule in decision.trace],
        },
    }
    click.echo(json.dumps(shown, indent=2, default=str))


@orders.command("approve")
@click.argument("token")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Counsel's private key (PEM); its public key is under 'counsel' in the trust store.",
)
@click.option("--kid", required=True)
@click.option("--iss", required=True, help="Counsel's issuer id (as under 'counsel').")
@click.option("--approver", required=True, help="Who approves (a staff id): not the transcriber.")
@click.option("--lifetime-days", type=click.IntRange(min=1), default=7, show_default=True)
def approve(
    token: str, key_path: Path, kid: str, iss: str, approver: str, lifetime_days: int
) -> None:
    """Counsel's second signature on TOKEN: print an approval token (checked first).

    The order and the approval are checked together with Bulwark's own verifier and policy;
    an approval Bulwark would refuse (the transcriber approving their own transcription, a key
    not under 'counsel', an order it would refuse anyway) is not handed out.
    """
    from app.orders.approvals import issue_approval

    token = token.strip()
    order = _preflight(token)
    iss_jti = (order.claims.get("iss"), order.claims.get("jti"))
    if not order.check.verified or not all(isinstance(v, str) for v in iss_jti):
        refused = order.refusals() or [Reason.ORDER_CLAIMS_INVALID]
        raise click.ClickException("Bulwark would refuse this order:\n" + _reason_lines(refused))
    pem = key_path.read_bytes()
    try:
        approval = issue_approval(
            str(iss_jti[0]),
            str(iss_jti[1]),
            pem,
            kid,
            algorithm_for_key(load_private_key(pem)),
            iss=iss,
            audience=_settings().audience,
            lifetime_days=lifetime_days,
            approver=approver,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    refused = _preflight(token, approval=approval).refusals(frozenset({Reason.ORDER_NOT_YET_VALID}))
    if refused:
        raise click.ClickException(
            "Bulwark would refuse this order with this approval; nothing was issued:\n"
            + _reason_lines(refused)
        )
    click.echo(f"approves iss={iss_jti[0]} jti={iss_jti[1]}", err=True)
    click.echo(approval)


def _reason_lines(reasons: list[Reason]) -> str:
    return "\n".join(f"  {r.value}: {message_of(r)}" for r in reasons)


def _settings() -> Settings:
    from app.api.console import load_settings

    return load_settings()


def _preflight(token: str, *, approval: str | None = None) -> Preflight:
    """Bulwark's own verdict on ``token``, or a clean exit saying what is missing."""
    from app.core.startup import StartupError
    from app.preflight import preflight

    settings = _settings()
    if settings.trust_store is None:
        raise click.ClickException(
            "BULWARK_TRUST_STORE is not set: the order is checked against the trust store "
            "Bulwark uses (with BULWARK_POLICY and BULWARK_JURISDICTIONS), or not issued"
        )
    try:
        return preflight(token, settings, approval=approval)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


def _patron_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    # The API's own rule (app.orders.models.PatronId), with its words: an order for an id the
    # API refuses would be signed for nothing.
    for value in values:
        problem = patron_id_problem(value)
        if problem is not None:
            raise click.BadParameter(problem[1], param_hint="--patron")
    return values


def _claims_from_options(options: dict[str, Any]) -> dict[str, Any]:
    if options["exp"] is not None and options["lifetime_days"] is not None:
        raise click.UsageError("give --exp or --lifetime-days, not both")
    iat = int(dt.datetime.now(dt.UTC).timestamp())
    lifetime = options["lifetime_days"] or DEFAULT_LIFETIME_DAYS
    audiences = list(options["aud"])
    claims: dict[str, Any] = {
        "iss": options["iss"],
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "iat": iat,
        "exp": options["exp"] if options["exp"] is not None else iat + lifetime * 86400,
        "jti": options["jti"] or str(uuid.uuid4()),
        "case": options["case"],
        "court": options["court"],
        "jurisdiction": options["jurisdiction"],
        "instrument": options["instrument"],
        "good_cause": options["good_cause"],
        "scope": _scope_from_options(options),
        "max_uses": options["max_uses"],
    }
    if options["nbf"] is not None:
        claims["nbf"] = options["nbf"]
    if options["nondisclosure_until"] is not None:
        claims["nondisclosure_until"] = options["nondisclosure_until"].date().isoformat()
    return claims


def _scope_from_options(options: dict[str, Any]) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "patrons": list(options["patrons"]),
        "categories": list(options["categories"]),
        "from": options["from_"].date().isoformat(),
        "to": options["to"].date().isoformat(),
    }
    if options["fields"]:
        scope["fields"] = _fields(options["fields"])
    return scope


def _fields(pairs: tuple[str, ...]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for pair in pairs:
        category, sep, field = pair.partition("=")
        if not sep or not category or not field:
            raise click.BadParameter(f"{pair!r} is not CATEGORY=FIELD", param_hint="--field")
        fields.setdefault(category, []).append(field)
    return fields
