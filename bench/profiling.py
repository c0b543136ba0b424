"""Profile a running server with py-spy, and summarise where its CPU time went.

``record`` samples a process (py-spy, 400 samples a second, raw "collapsed stacks") while the
caller drives load at it; ``summarise`` turns those stacks into the tables docs/performance.md
shows: the share of samples in which a function was on the stack (inclusive), the functions
that were running themselves (self), and self time by package.

    python bench/profiling.py bench/results/profile-permit.txt     # summarise an earlier run
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_PACKAGE_MARKERS = ("site-packages/", "/lib/python3")


def py_spy() -> str:
    """The py-spy binary (``pip install py-spy``), or exit saying so."""
    found = shutil.which("py-spy")
    if not found:
        raise SystemExit("profiling needs py-spy: pip install -e '.[bench]'")
    return found


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (collapsed stacks); returns at once."""
    argv = [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds)]
    argv += ["--rate", "400", "--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> tuple[str, str]:
    """``(function label, package)`` of one py-spy frame ``func (path:line)``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), "?"
    path = match["file"]
    module = path
    for marker in _PACKAGE_MARKERS:
        if marker in path:
            module = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                module = "stdlib/" + module.split("/", 1)[-1]
            break
    else:
        if "/app/" in path:
            module = "app/" + path.split("/app/", 1)[1]
        elif "/bench/" in path:
            module = "bench/" + path.split("/bench/", 1)[1]
    package = module.split("/", 1)[0] if "/" in module else module
    if package == "stdlib":
        package = "stdlib:" + module.split("/")[1].removesuffix(".py")
    elif package == "app":
        package = "app." + module.split("/")[1].removesuffix(".py")
    return f"{match['func']} ({module})", package


def summarise(path: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive, self and per-package shares of the samples in a collapsed-stack file."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith("process ")]
        frames = [f for f in frames if not f[0].startswith("thread ")]
        if not frames:
            continue
        total += count
        for label in {label for label, _ in frames}:
            inclusive[label] += count
        own[frames[-1][0]] += count
        packages[frames[-1][1]] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    ours = Counter({k: v for k, v in inclusive.items() if " (app/" in k})
    return {
        "samples": total,
        "app_inclusive_pct": shares(ours),
        "inclusive_pct": shares(inclusive),
        "self_pct": shares(own),
        "self_by_package_pct": shares(packages),
    }


def render(summary: dict[str, Any], title: str, rows: int = 15) -> str:
    """A plain-text report of :func:`summarise`'s result."""
    lines = [f"== {title}: {summary['samples']} samples"]
    for key, label in (
        ("self_by_package_pct", "self time by package"),
        ("app_inclusive_pct", "Bulwark's functions on the stack (inclusive)"),
        ("inclusive_pct", "on the stack (inclusive)"),
        ("self_pct", "running itself (self)"),
    ):
        lines.append(f"-- {label}")
        lines.extend(f"{pct:6.1f}%  {name}" for name, pct in summary[key][:rows])
    return "\n".join(lines)


def main() -> None:
    """Summarise collapsed-stack files given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(render(summarise(path, args.top), str(path), args.top))


if __name__ == "__main__":
    main()
