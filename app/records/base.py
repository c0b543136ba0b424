"""The records-store interface that the disclosure path depends on.

Adapters (SQL, HTTP) implement :class:`RecordsStore`. Every failure they meet (timeout,
error status, malformed answer, lost connection, missing table) is raised as
:class:`app.core.problems.StoreUnavailable` with a message that names no patron and quotes no
record; the disclosure path then releases nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.core.problems import StoreUnavailable
from app.records.categories import Category
from app.records.obligations import Obligations

Record = dict[str, Any]


class StoreValueMalformed(StoreUnavailable):
    """A row's date cannot be placed in time: the request fails closed, and it is counted.

    The message names the category only, never the value (it may be a patron's data).
    """

    def __init__(self, category: Category) -> None:
        super().__init__(
            f"The records store holds a date that cannot be placed in time for category "
            f"{category.value!r}; nothing was released."
        )
        self.category = category


@dataclass(frozen=True, slots=True)
class Page:
    """Records of one category, and where to continue if the cap cut them short."""

    records: list[Record]
    next_cursor: str | None  # opaque to callers; None when nothing is left


class RecordsStore(Protocol):
    """A backing store narrowed by a permit's obligations."""

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """Per mapped category, the output field names the mapping allows to leave."""
        ...

    async def fetch(
        self,
        obligations: Obligations,
        category: Category,
        *,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """At most ``limit`` records of ``category`` for ``obligations``, oldest first.

        Only ``obligations.patron_id``'s rows, dated inside ``obligations.period``
        (inclusive), holding only the fields in ``obligations.fields[category]``. Dates are
        returned as ISO strings.
        """
        ...

    async def validate(self) -> None:
        """At start: check the mapping against the live store (tables, columns, types).

        Raises MappingError naming what is missing, or StoreUnavailable.
        """
        ...

    async def check(self) -> None:
        """Raise StoreUnavailable when the store cannot answer (for readyz)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
