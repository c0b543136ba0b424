"""The OpenAPI document as a strictly typed client in another language sees it.

A TypeScript client is generated from the live document with openapi-typescript (v7) and
openapi-fetch, a program is written that calls every operation and reads every typed field of
every success body, and ``tsc --strict --noEmit`` compiles it. A field the document leaves
untyped is ``unknown`` in TypeScript, which no typed variable accepts: the compile fails.

The npm packages are installed by ``.ci/run`` into ``.ci/node`` (gitignored), or wherever
``BULWARK_NODE_TOOLS`` points (a directory holding ``node_modules/.bin``). Outside CI the test
is skipped without them; under ``CI=true`` a missing toolchain fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("BULWARK_NODE_TOOLS", ROOT / ".ci" / "node"))
INSTALL = "npm install --prefix .ci/node openapi-typescript@7 openapi-fetch@0.17 typescript@5"
#: Nested fields read below this depth are not read (the document's objects are shallower).
MAX_DEPTH = 6


def _tools() -> Path:
    bin_dir = TOOLS / "node_modules" / ".bin"
    present = shutil.which("node") and all(
        (bin_dir / tool).exists() for tool in ("openapi-typescript", "tsc")
    )
    present = present and (TOOLS / "node_modules" / "openapi-fetch").is_dir()
    if not present:
        message = f"the TypeScript toolchain is not installed in {TOOLS} ({INSTALL})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return bin_dir


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


# --------------------------------------------------------------------------- the program


class Program:
    """Writes the TypeScript program from the document: one block per operation."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        self.count = 0

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def ts_type(self, schema: dict[str, Any]) -> str:
        """The TypeScript type a leaf value must have, written independently of the generator."""
        if "$ref" in schema:
            return f'components["schemas"][{json.dumps(schema["$ref"].rsplit("/", 1)[-1])}]'
        if "enum" in schema:
            return " | ".join(json.dumps(v) for v in schema["enum"])
        if "const" in schema:
            return json.dumps(schema["const"])
        if "anyOf" in schema or "oneOf" in schema:
            return " | ".join(
                f"({self.ts_type(s)})" for s in schema.get("anyOf", schema.get("oneOf"))
            )
        kind = schema.get("type")
        if kind == "array":
            return f"Array<{self.ts_type(schema.get('items', {}))}>"
        simple = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}
        if kind in simple:
            return simple[kind]
        if kind == "null":
            return "null"
        extra = schema.get("additionalProperties")
        if kind == "object" and isinstance(extra, dict) and not schema.get("properties"):
            return f"{{ [key: string]: {self.ts_type(extra)} }}"
        raise AssertionError(f"not a leaf: {schema}")

    def is_leaf(self, schema: dict[str, Any]) -> bool:
        target = self.resolve(schema)
        if "anyOf" in target or "oneOf" in target:
            branches = [
                b for b in target.get("anyOf", target.get("oneOf", [])) if b != {"type": "null"}
            ]
            if len(branches) == 1:
                return self.is_leaf(branches[0])
            return True  # a union of values (a figure, a trace value): read as a whole
        if target.get("type") == "array":
            return self.is_leaf(target.get("items", {}))
        return target.get("type") != "object"

    def reads(self, schema: dict[str, Any], expr: str, depth: int = 0) -> list[str]:
        """Statements that read every leaf under ``expr`` into a variable of its type."""
        if depth > MAX_DEPTH:
            return []
        if self.is_leaf(schema):
            self.count += 1
            leaf = schema
            target = self.resolve(schema)
            if target.get("type") == "array" and not self.is_leaf(target["items"]):
                leaf = target
            return [f"const v{self.count}: {self.ts_type(leaf)} | undefined = {expr};"]
        target = self.resolve(schema)
        branches = [b for b in target.get("anyOf", [target]) if b != {"type": "null"}]
        target = self.resolve(branches[0])
        if target.get("type") == "array":
            return self.reads(target["items"], f"{expr}?.[0]", depth + 1)
        out: list[str] = []
        for name, prop in target.get("properties", {}).items():
            out += self.reads(prop, f"{expr}?.[{json.dumps(name)}]", depth + 1)
        extra = target.get("additionalProperties")
        if isinstance(extra, dict):
            out += self.reads(extra, f'{expr}?.["any"]', depth + 1)
        return out

    def value(self, schema: dict[str, Any]) -> str:
        """A TypeScript literal of ``schema`` (only type-checked, never sent)."""
        schema = self.resolve(schema)
        if "enum" in schema:
            return json.dumps(schema["enum"][0])
        if "anyOf" in schema:
            return self.value(next(s for s in schema["anyOf"] if s != {"type": "null"}))
        kind = schema.get("type")
        if kind == "object":
            props = schema.get("properties", {})
            # openapi-typescript 7 makes a property with a default non-optional (its default
            # --default-non-nullable), so those are written too.
            required = [
                k for k in props if k in schema.get("required", []) or "default" in props[k]
            ]
            return (
                "{" + ", ".join(f"{json.dumps(k)}: {self.value(props[k])}" for k in required) + "}"
            )
        if kind == "array":
            return f"[{self.value(schema.get('items', {}))}]"
        if kind in ("integer", "number"):
            return str(schema.get("minimum", 1))
        if kind == "boolean":
            return "true"
        return json.dumps(
            {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z"}.get(
                schema.get("format", ""), "x"
            )
        )

    def operation(self, method: str, path: str, op: dict[str, Any]) -> str:
        params: dict[str, list[str]] = {}
        for p in op.get("parameters", []):
            if p.get("required"):
                params.setdefault(p["in"], []).append(
                    f"{json.dumps(p['name'])}: {self.value(p['schema'])}"
                )
        init = [f"{where}: {{{', '.join(items)}}}" for where, items in params.items()]
        init = [f"params: {{{', '.join(init)}}}"] if init else []
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            init.append(f"body: {self.value(body)}")
        ok = op["responses"].get("200", {}).get("content", {})
        if "application/json" not in ok:
            init.append(
                'parseAs: "text"'
                if any(m.startswith("text/") for m in ok)
                else 'parseAs: "arrayBuffer"'
            )
        lines = [
            f"// {op['operationId']}",
            "{",
            f"  const {{ data, error }} = await client.{method.upper()}({json.dumps(path)}, {{{', '.join(init)}}});",
            "  if (error !== undefined) { const status: number = error.status; void status; }",
        ]
        if "application/json" in ok:
            # Another media type beside JSON (the report's CSV) makes ``data`` a union.
            narrow = ' && typeof data === "object"' if len(ok) > 1 else ""
            lines.append(f"  if (data !== undefined{narrow}) {{")
            lines += [f"    {s}" for s in self.reads(ok["application/json"]["schema"], "data")]
            lines.append("  }")
        else:
            lines.append("  void data;")
        lines.append("}")
        return "\n".join(lines)

    def source(self) -> str:
        blocks = [
            self.operation(method, path, op)
            for path, item in sorted(self.document["paths"].items())
            for method, op in sorted(item.items())
        ]
        return "\n".join(
            [
                'import createClient from "openapi-fetch";',
                'import type { components, paths } from "./schema";',
                "",
                "export async function main(baseUrl: string, key: string): Promise<void> {",
                "  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });",
                *blocks,
                "}",
                "",
            ]
        )


def _run(*argv: str | Path, cwd: Path) -> None:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"


async def test_a_typescript_client_compiles_under_strict(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    bin_dir = _tools()
    document = (await client.get("/openapi.json")).json()
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    # Resolve "openapi-fetch" from the toolchain's node_modules.
    (tmp_path / "node_modules").symlink_to(TOOLS / "node_modules")
    _run(bin_dir / "openapi-typescript", "openapi.json", "-o", "schema.d.ts", cwd=tmp_path)
    program = Program(document)
    (tmp_path / "client.ts").write_text(program.source())
    _run(
        bin_dir / "tsc", "--strict", "--noEmit", "--target", "es2022", "--module", "esnext",
        "--moduleResolution", "bundler", "--lib", "es2022,dom", "client.ts", cwd=tmp_path,
    )  # fmt: skip
    source = (tmp_path / "client.ts").read_text()
    operations = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert all(f"// {name}\n" in source for name in operations)
    # The typed parts issue 17 names are read with their types.
    for field in (
        '["trace"]?.[0]?.["outcome"]',
        '["body"]?.["kind"]',
        '["checks"]?.["any"]?.["ok"]',
        '["records"]?.["circulation"]?.[0]?.["title"]',
    ):
        assert field in source, field
    assert program.count > 100


def test_an_untyped_field_fails_the_compile(tmp_path: Path) -> None:
    """The check has teeth: a field the document leaves untyped is `unknown` and is refused."""
    bin_dir = _tools()
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/x": {
                "get": {
                    "operationId": "getX",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/X"}}
                            },
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "X": {
                    "type": "object",
                    "required": ["a"],
                    "properties": {
                        "a": {"type": "integer"},
                        "b": {"type": "object", "additionalProperties": True},
                    },
                }
            }
        },
    }
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    (tmp_path / "node_modules").symlink_to(TOOLS / "node_modules")
    _run(bin_dir / "openapi-typescript", "openapi.json", "-o", "schema.d.ts", cwd=tmp_path)
    source = Program(document).source()
    # Pretend the walker believed "b" had a typed field "c": an untyped body cannot be read so.
    source = source.replace(
        "  }\n}\n}", '    const bad: string | undefined = data?.["b"]?.["c"];\n  }\n}\n}'
    )
    (tmp_path / "client.ts").write_text(source)
    done = subprocess.run(
        [str(bin_dir / "tsc"), "--strict", "--noEmit", "--target", "es2022", "--module", "esnext",
         "--moduleResolution", "bundler", "--lib", "es2022,dom", "client.ts"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert re.search(r"TS\d+", done.stdout), done.stdout
