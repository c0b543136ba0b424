"""Files Bulwark writes that hold something private: created 0600 in a 0700 directory.

The state database names pseudonyms and (sealed) patron ids, exports carry the audit log and
generated files carry keys; none of them may be readable by other users of the machine, not
even for the moment between creating a file and changing its mode (issue 16).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing, and make ``path`` itself 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
        path.chmod(PRIVATE_DIR)
    return path


def tighten(path: Path) -> None:
    """Make an existing file 0600 (no-op when it is missing or not this user's to change)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE:
            path.chmod(PRIVATE_FILE)


@contextlib.contextmanager
def open_private(path: Path, *, text: bool = True) -> Iterator[IO[str]]:
    """Open ``path`` for writing (truncating it), created 0600; an existing file is made 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its old mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yield handle


def write_private_text(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0600."""
    with open_private(path) as handle:
        handle.write(content)
