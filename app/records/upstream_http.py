"""What the HTTP records stores share (``http_store`` and ``folio_store``).

Reading an upstream answer's body within a byte bound, and the :class:`StoreUnavailable` a
failed fetch becomes: each store passes its own fault class (``UpstreamFault``,
``FolioFault``), whose message is the reason it names.
"""

from __future__ import annotations

import logging

import httpx

from app.core.problems import StoreUnavailable
from app.records.categories import Category

logger = logging.getLogger("bulwark.records")

#: The JSON values a mapped field may hold: anything nested could carry unmapped data out.
SCALARS = (str, int, float, bool, type(None))


async def read_bounded(response: httpx.Response, max_bytes: int, fault: type[Exception]) -> bytes:
    """The body of a streamed ``response``; ``fault`` once it declares or sends more than
    ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise fault(f"answered more than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise fault(f"answered more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def unavailable(category: Category, exc: BaseException, fault: type[Exception]) -> StoreUnavailable:
    """What a failed fetch of ``category`` answers: a timeout, the store's own ``fault`` (its
    message), or an unreachable upstream; logged with the error's type only."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        reason = "timed out"
    elif isinstance(exc, fault):
        reason = str(exc)
    else:
        reason = "could not be reached"
    logger.warning(
        "records store fetch failed",
        extra={"category": category.value, "error_type": type(exc).__name__},
    )
    return StoreUnavailable(
        f"The records store {reason} for category {category.value!r}; nothing was released."
    )
