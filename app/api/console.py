"""What every ``bulwark`` command shares: settings from the environment, one event loop.

Below ``app/cli.py`` and the packages' own command groups (``app/orders/cli.py``,
``app/audit/log_cli.py``), so that they need not import each other (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from app.core.config import Settings

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a fresh event loop (one per command)."""
    return asyncio.run(coro)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a clean exit naming every bad value."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  BULWARK_{'_'.join(str(p) for p in e['loc']).upper() or '?'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise click.ClickException("invalid settings:\n" + "\n".join(lines)) from None
