"""Dependencies run one way (docs/architecture.md, "Layers").

Every import of every module under ``app/`` is read from its source (``ast``: imports inside
functions and under ``TYPE_CHECKING`` count too). A module belongs to a unit: its package
(``app.orders.tokens`` to ``orders``), or, for the API wiring, the top: ``app.api``, the
modules at the root of ``app/`` (``main``, ``runtime``, ``cli``, ...) and each domain
package's routers, command lines and middleware (``core``'s ASGI helpers stay in ``core``). A unit may import only units of lower layers; two
wiring units may import each other one way only. No exceptions are listed.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

#: Bottom to top. Units of one layer do not import each other.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),
    frozenset({"records", "callers"}),
    frozenset({"orders"}),
    frozenset({"audit"}),
    frozenset({"policy"}),
    frozenset({"holds", "notices", "idempotency", "metrics", "witness", "admin"}),
    frozenset({"disclosures", "ratelimit", "counsel", "transparency", "health"}),
    # The API reference (/docs, /problems, the typed document): it describes the others.
    frozenset({"apidocs"}),
)
#: The API wiring's layer: above every domain.
WIRING = len(LAYERS)
#: Modules of a domain package that belong to the API wiring, by name.
WIRING_NAMES = ("router", "cli", "middleware")


def unit_of(module: str) -> tuple[str, int]:
    """The unit of ``module`` (``app.x.y``) and its layer."""
    parts = module.split(".")
    if len(parts) == 2 and parts[1] not in _domain_units():  # app/main.py, app/runtime.py...
        return parts[1], WIRING
    package = parts[1]
    if package == "api":
        return "api", WIRING
    if package != "core" and len(parts) > 2 and parts[-1].endswith(WIRING_NAMES):
        return f"{package}.wiring", WIRING
    for rank, layer in enumerate(LAYERS):
        if package in layer:
            return package, rank
    raise AssertionError(f"{module}: package {package!r} is in no layer of docs/architecture.md")


def _domain_units() -> frozenset[str]:
    return frozenset().union(*LAYERS)


def modules() -> dict[str, Path]:
    """Every module under app/, by dotted name."""
    found = {}
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP.parent).with_suffix("")
        name = ".".join(rel.parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, name: str) -> set[str]:
    """The ``app`` modules (or packages) ``path`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            # ``from app.audit import tree`` imports the module app.audit.tree.
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("app.")}


def edges() -> dict[tuple[str, str], set[str]]:
    """(importing unit, imported unit) -> the importing modules, across units only."""
    known = modules()
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, path in known.items():
        if name == "app":
            continue
        here, _ = unit_of(name)
        for target in imports(path, name):
            if target not in known:  # a name imported from a module, not a module
                continue
            there, _ = unit_of(target)
            if there != here:
                out[(here, there)].add(name)
    return out


def test_every_package_has_a_layer() -> None:
    for name in modules():
        if name != "app":
            unit_of(name)


def test_no_module_imports_upward() -> None:
    ranks = {}
    for name in modules():
        if name != "app":
            unit, rank = unit_of(name)
            ranks[unit] = rank
    upward = sorted(
        f"{', '.join(sorted(mods))}: {src} (layer {ranks[src]}) imports {dst} (layer {ranks[dst]})"
        for (src, dst), mods in edges().items()
        if ranks[dst] >= ranks[src] and not (ranks[src] == ranks[dst] == WIRING)
    )
    assert not upward, "\n".join(upward)


def test_no_two_units_import_each_other() -> None:
    found = edges()
    pairs = sorted(
        f"{a} <-> {b}: {sorted(found[(a, b)])} / {sorted(found[(b, a)])}"
        for a, b in found
        if a < b and (b, a) in found
    )
    assert not pairs, "\n".join(pairs)


def test_core_imports_no_domain() -> None:
    for (src, dst), mods in edges().items():
        assert src != "core", f"{sorted(mods)} import {dst}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The parser finds imports inside functions and relative ones (the check's own test)."""
    source = tmp_path / "m.py"
    source.write_text(
        "from __future__ import annotations\n"
        "def f() -> None:\n"
        "    from app.runtime import Runtime\n"
        "from . import writer\n",
        encoding="utf-8",
    )
    found = imports(source, "app.audit.m")
    assert {"app.runtime", "app.audit.writer"} <= found
    assert unit_of("app.runtime") == ("runtime", WIRING)
    assert unit_of("app.orders.router") == ("orders.wiring", WIRING)
    assert unit_of("app.core.database")[1] < unit_of("app.orders.tokens")[1]
