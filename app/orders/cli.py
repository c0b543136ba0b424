"""``bulwark keys`` and ``bulwark orders``: issuer keys and signed court orders from a shell.

The main ``bulwark`` command adds these groups (``from app.orders.cli import keys, orders``);
``orders`` is a plain :class:`click.Group`, so more commands can be added to it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import click

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
from app.orders.models import Category, Instrument, patron_id_problem
from app.orders.trust import TrustStoreError

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
@click.option("--counsel", is_flag=True, help="List the issuer under 'counsel', not 'issuers'.")
def generate(
    alg: GeneratedAlg,
    kid: str,
    private_key_path: Path,
    trust_store: Path | None,
    iss: str,
    name: str,
    jurisdictions: tuple[str, ...],
    counsel: bool,
) -> None:
    """Generate a key pair: the private key to a file, the public key as a trust-store entry."""
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
        click.echo(json.dumps(issuer_entry(iss, name, jurisdictions, jwk), indent=2))
        return
    try:
        merge_issuer_into_trust_store(
            trust_store, iss, name, jurisdictions, jwk, section="counsel" if counsel else "issuers"
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
@click.option("--allow-invalid", is_flag=True, help="Sign even claims Bulwark would refuse.")
def issue(key_path: Path, kid: str, alg: str | None, **options: Any) -> None:
    """Sign a court order and print the compact token.

    Claims that Bulwark would refuse are not signed unless --allow-invalid is given.
    """
    claims = _claims_from_options(options)
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
    click.echo(token)


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
