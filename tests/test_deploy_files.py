"""The Dockerfile and docker-compose.yml stay true to the code (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from app.cli import main
from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, object]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command_exists(argv: list[str]) -> bool:
    assert argv[0] == "bulwark"
    command: click.Command = main
    for word in argv[1:]:
        if word.startswith("-"):
            break
        assert isinstance(command, click.Group), (
            f"{word!r} follows a command that has no subcommands"
        )
        sub = command.commands.get(word)
        if sub is None:
            return False
        command = sub
    options = {opt for p in command.params for opt in getattr(p, "opts", [])}
    given = [w for w in argv[1:] if w.startswith("--")]
    return all(opt in options for opt in given)


def test_every_compose_setting_is_a_real_setting() -> None:
    fields = {f"BULWARK_{name.upper()}" for name in Settings.model_fields}
    services = _compose()["services"]
    assert isinstance(services, dict)
    seen = 0
    for name, service in services.items():
        for key in service.get("environment") or {}:
            if key.startswith("BULWARK_"):
                seen += 1
                assert key in fields, f"{name}: {key} is not a Settings field"
    assert seen > 0


def test_every_compose_command_exists() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    commands = [
        s["command"] for s in services.values() if "command" in s and s["command"][0] == "bulwark"
    ]
    assert {tuple(c[:3]) for c in commands} >= {("bulwark", "db", "upgrade")}
    for argv in commands:
        assert _command_exists(argv), argv


def test_migrations_run_before_serving() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    servers = [
        s for s in services.values() if s.get("command", [None, None])[:2] == ["bulwark", "serve"]
    ]
    assert servers
    for server in servers:
        assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_is_slim_non_root_and_installs_like_the_readme() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "pip install ." in text
    cmd = re.search(r'^CMD \["bulwark", "serve"\]', text, re.M)
    assert cmd and _command_exists(["bulwark", "serve"])
    env_keys = re.findall(r"(BULWARK_[A-Z_]+)=", text)
    fields = {f"BULWARK_{name.upper()}" for name in Settings.model_fields}
    assert env_keys and all(k in fields for k in env_keys)
