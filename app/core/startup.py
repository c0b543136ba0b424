"""The one error that stops a process from starting (docs/operations.md)."""

from __future__ import annotations


class StartupError(RuntimeError):
    """Bulwark cannot start safely; the message says why and what fixes it."""
