"""The policy document: its typed model, and loading a file into a validated, hashed policy.

The seed (ALA policy on the confidentiality of library users' records) allows one path to a
patron's records: "a court order, following a showing of good cause based on specific facts,
by a court of competent jurisdiction". A policy file tunes that path (which court-issued
instruments, how long an order may live, which fields never leave); it cannot open another
one. Choices that would (accepting a subpoena, dropping good cause, an order-free purpose) are
refused when the file is loaded, so a deployment fails at start rather than at a disclosure.

Every model forbids unknown keys and refuses type coercion of scalars: a typo or a quoted
number is a fault in the file, never a silent default. Every fault stops the load with a
:class:`PolicyError` reading ``<file>:<line>: <what is wrong>``. The hash is taken over the
file's exact bytes: it is what every decision cites as ``policy``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from app.orders.models import Instrument
from app.records.categories import Category

#: Instruments no court issues. The seed names the court order as "the mechanism"; a subpoena,
#: a national security letter or an informal request can never be accepted, whatever a
#: policy file says.
NEVER_ACCEPTED: frozenset[Instrument] = frozenset(
    {Instrument.SUBPOENA, Instrument.NATIONAL_SECURITY_LETTER, Instrument.INFORMAL_REQUEST}
)

#: The one purpose the contract names.
LEGAL_PROCESS = "legal_process"

FieldName = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z_]\w*$")
]
PurposeName = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]
Version = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


class _Section(BaseModel):
    """Base of every policy table: unknown keys and coerced scalars are faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryRules(_Section):
    """``[categories.<id>]``: per record category, what never leaves even if mapped."""

    forbidden_fields: tuple[FieldName, ...] = ()


class PurposeRules(_Section):
    """``[purposes.<name>]``: a purpose a caller may state."""

    requires_order: Annotated[bool, Field(strict=True)] = True

    @field_validator("requires_order")
    @classmethod
    def _order_always_required(cls, value: bool) -> bool:
        # The engine releases records only within an order's scope; a purpose without one
        # would be a door the seed does not have (and the usual name of a side door).
        if not value:
            raise ValueError(
                "requires_order must be true: the seed releases records only under 'a court "
                "order, following a showing of good cause based on specific facts', and gives "
                "national_security, emergency and law_enforcement requests no other path"
            )
        return value


class TransparencyRules(_Section):
    """``[transparency]``: the public report of disclosures (used by a later issue)."""

    public: Annotated[bool, Field(strict=True)] = False
    banded_instruments: tuple[Instrument, ...] = (
        Instrument.NATIONAL_SECURITY_LETTER,
        Instrument.FISA_ORDER,
    )
    band_width: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 250


class LogRules(_Section):
    """``[log]``: the audit log's Merkle tree checkpoints and their witnesses.

    ``public`` serves the content-free view (checkpoints and tree hashes, never an event) to
    anyone under ``/log``; off, it needs an auditor's or admin's key. ``witnesses`` are the
    C2SP verifier keys (type 0x04) of the witnesses the library accepts cosignatures from;
    a checkpoint is published once ``required_witnesses`` of them cosigned it.
    """

    public: Annotated[bool, Field(strict=True)] = False
    witnesses: tuple[str, ...] = ()
    required_witnesses: Annotated[int, Field(strict=True, ge=0, le=16)] = 0

    @field_validator("witnesses")
    @classmethod
    def _witness_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from app.audit.notes import COSIGNATURE, NoteInvalid, Verifier

        names = set()
        for vkey in value:
            try:
                verifier = Verifier.parse(vkey)
            except NoteInvalid as exc:
                raise ValueError(f"[log] witnesses: {exc}") from None
            if verifier.kind != COSIGNATURE:
                raise ValueError("[log] witnesses must be cosignature (type 0x04) keys")
            if verifier.name in names:
                raise ValueError(f"[log] witnesses names {verifier.name} twice")
            names.add(verifier.name)
        return value

    @model_validator(mode="after")
    def _quorum_possible(self) -> LogRules:
        if self.required_witnesses > len(self.witnesses):
            raise ValueError("[log] required_witnesses is more than the witnesses listed")
        return self


class CounselRules(_Section):
    """``[counsel]``: whether the library's counsel must approve a disclosure (later issue)."""

    require_approval: Annotated[bool, Field(strict=True)] = False


class LegalHoldRules(_Section):
    """``[legal_holds]``: how long records under an order are kept past it (later issue)."""

    margin_days: Annotated[int, Field(strict=True, ge=0, le=3650)] = 365


def _default_purposes() -> dict[str, PurposeRules]:
    return {LEGAL_PROCESS: PurposeRules()}


class Policy(_Section):
    """A whole policy document.

    ``max_order_lifetime_days`` and ``clock_skew_seconds`` are enforced by the token verifier;
    everything else by :func:`app.policy.engine.evaluate`.
    """

    version: Version
    accepted_instruments: tuple[Instrument, ...] = (
        Instrument.COURT_ORDER,
        Instrument.SEARCH_WARRANT,
    )
    require_good_cause: Annotated[bool, Field(strict=True)] = True
    max_order_lifetime_days: Annotated[int, Field(strict=True, ge=1, le=366)] = 90
    clock_skew_seconds: Annotated[int, Field(strict=True, ge=0, le=600)] = 60
    categories: dict[Category, CategoryRules] = Field(default_factory=dict)
    purposes: dict[PurposeName, PurposeRules] = Field(default_factory=_default_purposes)
    transparency: TransparencyRules = Field(default_factory=TransparencyRules)
    counsel: CounselRules = Field(default_factory=CounselRules)
    log: LogRules = Field(default_factory=LogRules)
    legal_holds: LegalHoldRules = Field(default_factory=LegalHoldRules)

    def forbidden_fields(self) -> dict[Category, frozenset[str]]:
        """Per category with a ``[categories.<id>]`` table, the fields that never leave."""
        return {cat: frozenset(rules.forbidden_fields) for cat, rules in self.categories.items()}

    @field_validator("accepted_instruments")
    @classmethod
    def _court_issued_only(cls, value: tuple[Instrument, ...]) -> tuple[Instrument, ...]:
        refused = sorted(i.value for i in NEVER_ACCEPTED.intersection(value))
        if refused:
            raise ValueError(
                f"{', '.join(refused)} can never be accepted: no court issues it, and the seed "
                "allows release only under 'a court order ... by a court of competent "
                "jurisdiction'"
            )
        return value

    @field_validator("require_good_cause")
    @classmethod
    def _good_cause_required(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "require_good_cause must be true: the seed allows release only 'following a "
                "showing of good cause based on specific facts'"
            )
        return value


# Loading: a file's exact bytes in, a LoadedPolicy or a PolicyError out.

Loc = tuple[int | str, ...]


class PolicyError(ValueError):
    """A policy file that must not be enforced; ``line`` is None when the file is unreadable."""

    def __init__(self, source: str, faults: Sequence[tuple[int | None, str]]) -> None:
        self.source = source
        self.line = faults[0][0]
        self.faults = tuple(faults)
        super().__init__(
            "; ".join(
                f"{source}:{line}: {what}" if line is not None else f"{source}: {what}"
                for line, what in faults
            )
        )


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy, the sha256 of its file's exact bytes, its text, and lookups.

    The lookups (``accepted_instruments`` and their sorted ``accepted_names``, ``purposes``
    mapped to whether each requires an order, ``forbidden_fields`` per category) are computed
    once here so that evaluation never walks the pydantic model.
    """

    policy: Policy
    sha256: str
    text: str
    accepted_instruments: frozenset[Instrument] = field(init=False)
    accepted_names: tuple[str, ...] = field(init=False)
    purposes: Mapping[str, bool] = field(init=False)
    forbidden_fields: Mapping[Category, frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        policy = self.policy
        derived = {
            "accepted_instruments": frozenset(policy.accepted_instruments),
            "accepted_names": tuple(sorted(i.value for i in policy.accepted_instruments)),
            "purposes": MappingProxyType(
                {name: rules.requires_order for name, rules in policy.purposes.items()}
            ),
            "forbidden_fields": MappingProxyType(policy.forbidden_fields()),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def max_order_lifetime_days(self) -> int:
        """The longest ``exp - iat`` the token verifier accepts, in days."""
        return self.policy.max_order_lifetime_days

    @property
    def clock_skew_seconds(self) -> int:
        """The clock skew the token verifier allows on ``exp``, ``nbf`` and ``iat``."""
        return self.policy.clock_skew_seconds


def load_policy(path: str | os.PathLike[str]) -> LoadedPolicy:
    """Read, parse and validate the policy file at ``path``; raise PolicyError on any fault."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(source, [(None, f"cannot read the policy file: {exc.strerror}")]) from exc
    return parse_policy(data, source=source)


def parse_policy(data: bytes, *, source: str) -> LoadedPolicy:
    """Parse and validate a policy document's bytes; ``source`` names it in error messages."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(source, [(line, "the policy file is not valid UTF-8")]) from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, [_syntax_fault(text, str(exc))]) from exc
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        index = key_lines(text)
        faults = [
            (line_of(index, err["loc"]), _describe(err["loc"], err["msg"])) for err in exc.errors()
        ]
        raise PolicyError(source, faults) from exc
    return LoadedPolicy(policy=policy, sha256=hashlib.sha256(data).hexdigest(), text=text)


_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_SYNTAX_AT_END = re.compile(r"\s*\(at end of document\)$")


def _syntax_fault(text: str, message: str) -> tuple[int, str]:
    # Python 3.11's TOMLDecodeError carries its position only in the message text.
    found = _SYNTAX_AT.search(message)
    if found:
        what = _SYNTAX_AT.sub(f" (column {found.group(2)})", message)
        return int(found.group(1)), f"TOML syntax error: {what}"
    last_line = max(1, len(text.splitlines()))
    return last_line, f"TOML syntax error: {_SYNTAX_AT_END.sub(' (at end of file)', message)}"


def _describe(loc: Loc, message: str) -> str:
    where = "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "[key]"
    ).removeprefix(".")
    message = message.removeprefix("Value error, ")
    if "[key]" in loc:
        message = f"not a known name; {message}"
    return f"{where or '(document)'}: {message}"


_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER_LINE = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_PART)


def _key_path(dotted: str) -> tuple[str, ...]:
    return tuple(p[1:-1] if p[0] in "\"'" else p for p in _PART_RE.findall(dotted))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each table header and key path written in ``text`` to its first line (1-based).

    A line scanner, not a TOML parser: enough to point at the line behind a validation error
    in a file that has already parsed. Keys inside inline tables are found through their
    outer key's line.
    """
    index: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER_LINE.match(line)
        if header:
            table = _key_path(header.group(1))
            index.setdefault(table, number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            index.setdefault(table + _key_path(key.group(1)), number)
    return index


def line_of(index: Mapping[tuple[str, ...], int], loc: Loc) -> int:
    """The line of the longest written key path that ``loc`` starts with; 1 if none is."""
    path: list[str] = []
    for part in loc:
        # A list index or a dict-key marker ends the key path: the fault is on that key's line.
        if isinstance(part, int) or part == "[key]":
            break
        path.append(part)
    for end in range(len(path), 0, -1):
        line = index.get(tuple(path[:end]))
        if line is not None:
            return line
    return 1
