"""A records store that times every read, for ``bulwark_store_fetch_duration_seconds``."""

from __future__ import annotations

import time
from collections.abc import Mapping

from app.metrics.registry import STORE_LATENCY, STORE_MALFORMED
from app.records.base import Page, RecordsStore, StoreValueMalformed
from app.records.categories import Category
from app.records.obligations import Obligations


class MeasuredStore:
    """Wraps a :class:`RecordsStore`; answers exactly as it does, and times ``fetch``.

    The labels are the category id and the outcome (``ok`` or ``error``): never the patron,
    the period or anything else of the request.
    """

    def __init__(self, inner: RecordsStore) -> None:
        self.inner = inner
        self._ok = {c: STORE_LATENCY.labels(c.value, "ok") for c in Category}
        self._error = {c: STORE_LATENCY.labels(c.value, "error") for c in Category}
        self._malformed = {c: STORE_MALFORMED.labels(c.value) for c in Category}

    def fields(self) -> Mapping[Category, tuple[str, ...]]:
        """The inner store's disclosable fields per category."""
        return self.inner.fields()

    async def fetch(
        self,
        obligations: Obligations,
        category: Category,
        *,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """The inner store's page, timed under its category and outcome."""
        started = time.perf_counter()
        try:
            page = await self.inner.fetch(obligations, category, limit=limit, cursor=cursor)
        except BaseException as exc:
            self._error[category].observe(time.perf_counter() - started)
            if isinstance(exc, StoreValueMalformed):
                self._malformed[category].inc()
            raise
        self._ok[category].observe(time.perf_counter() - started)
        return page

    async def validate(self) -> None:
        """The inner store's start-up check against its mapping."""
        await self.inner.validate()

    async def check(self) -> None:
        """The inner store's readiness check."""
        await self.inner.check()

    async def close(self) -> None:
        """Close the inner store."""
        await self.inner.close()
