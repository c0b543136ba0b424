"""Decisions are data: what was asked, what was found, and what the store must honour.

These values cross domain lines (orders → policy → records → audit), so they are plain,
frozen and typed. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from app.core.reasons import Reason
from app.records.categories import Category
from app.records.obligations import Obligations, Period


class Effect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What a caller asks for, already validated for shape."""

    purpose: str
    patron_id: str
    categories: tuple[Category, ...]
    period: Period
    has_order: bool


@dataclass(frozen=True, slots=True)
class OrderState:
    """Facts about an order that live in the state database, read before evaluation."""

    revoked: bool = False
    uses: int = 0


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule checked: its outcome and the values it compared (never a patron id)."""

    rule: str
    outcome: Literal["pass", "fail", "skipped"]
    reasons: tuple[Reason, ...] = ()
    compared: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "reasons": [r.value for r in self.reasons],
            "compared": dict(self.compared),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of evaluating a request: default deny, every reason, the policy's hash."""

    effect: Effect
    reasons: tuple[Reason, ...]
    policy: str
    obligations: Obligations | None = None
    trace: tuple[RuleTrace, ...] = ()

    @property
    def permitted(self) -> bool:
        return self.effect is Effect.PERMIT and self.obligations is not None and not self.reasons
