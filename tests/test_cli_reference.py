"""docs/cli.md names every command and option of `bulwark` (so the reference cannot drift)."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli import main

CLI_MD = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()


def commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
        else:
            found.append((path, command))
    return found


def test_every_command_and_option_is_in_docs_cli() -> None:
    for path, command in commands(main, "bulwark"):
        assert f"`{path}" in CLI_MD, f"docs/cli.md does not describe {path}"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                longest = max(param.opts, key=len)
                assert longest in CLI_MD, f"docs/cli.md: {path} does not mention {longest}"
