"""The Dockerfile and docker-compose.yml stay true to the code (no Docker engine runs here)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.cli import main
from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


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
    from app.core.config import FILE_SETTINGS

    fields = {f"BULWARK_{name.upper()}" for name in Settings.model_fields}
    fields |= {f"BULWARK_{name.upper()}_FILE" for name in FILE_SETTINGS}
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


# --------------------------------------------------------------------------- replicas, proxy


def _topology_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_topology", DEPLOY / "local_topology.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _replicas() -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in _services().items()
        if s.get("command", [None, None])[:2] == ["bulwark", "serve"]
    }


def test_two_health_checked_replicas_behind_a_health_checked_proxy() -> None:
    replicas = _replicas()
    assert len(replicas) >= 2
    for name, replica in replicas.items():
        assert "/readyz" in " ".join(replica["healthcheck"]["test"]), name
        assert "ports" not in replica, f"{name}: replicas are reached through the proxy only"
    proxy = _services()["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["healthcheck"]["test"]
    assert {n: d["condition"] for n, d in proxy["depends_on"].items()} == dict.fromkeys(
        replicas, "service_healthy"
    )
    assert [p.split(":")[-1] for p in proxy["ports"]] == ["443"]
    for volume in proxy["volumes"] + replicas[next(iter(replicas))]["volumes"]:
        source = volume.split(":")[0]
        assert (ROOT / source).exists(), f"{source} is mounted but missing"


def test_the_proxy_config_is_rendered_from_the_one_template_for_these_replicas() -> None:
    topology = _topology_module()
    text = (DEPLOY / "nginx" / "bulwark.conf").read_text()
    expected = topology.render_site(
        topology.COMPOSE_UPSTREAMS, listen="443", tls=True, health_listen="127.0.0.1:8081"
    )
    assert text == expected, "regenerate: python deploy/local_topology.py nginx-site"
    upstreams = set(re.findall(r"^\s*server ([\w-]+):8080", text, re.M))
    assert upstreams == set(_replicas())
    health = _services()["proxy"]["healthcheck"]["test"]
    assert any("127.0.0.1:8081/readyz" in word for word in health)


def test_the_proxy_config_passes_nginx_syntax_check(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is missing; .ci/run installs it", pytrace=False)
        pytest.skip("nginx is not installed (apt-get install nginx)")
    topology = _topology_module()
    tls = tmp_path / "tls"
    tls.mkdir()
    _self_signed(tls / "fullchain.pem", tls / "privkey.pem")
    site = (
        (DEPLOY / "nginx" / "bulwark.conf")
        .read_text()
        .replace("/etc/nginx/tls", str(tls))
        .replace("listen 443 ssl", "listen 127.0.0.1:1 ssl")
    )
    for name in _replicas():
        site = site.replace(f"{name}:8080", "127.0.0.1:9")  # resolvable without compose's DNS
    (tmp_path / "spool").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(topology.render_main(site, tmp_path))
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bulwark.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _site() -> str:
    return (DEPLOY / "nginx" / "bulwark.conf").read_text()


def _block(text: str, opening: str) -> str:
    start = text.index(opening)
    depth, i = 0, start
    while True:
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        i += 1


def test_the_proxy_never_marks_a_replica_down_for_one_slow_answer() -> None:
    site = _site()
    for line in re.findall(r"^\s*server [\w-]+:8080[^;]*;", site, re.M):
        fails = re.search(r"max_fails=(\d+)", line)
        assert fails is None or int(fails.group(1)) >= 3 or int(fails.group(1)) == 0, line
    # A timeout is never a reason to try (and so to count against) a replica.
    for directive in re.findall(r"proxy_next_upstream\s+([^;]*);", site):
        assert "timeout" not in directive.split(), directive
        assert "non_idempotent" not in directive.split(), directive


def test_the_proxy_never_replays_verification_on_the_other_replica() -> None:
    verify = _block(_site(), "location = /v1/audit/verify")
    assert re.search(r"proxy_next_upstream\s+off;", verify)
    assert "proxy_ignore_client_abort on" not in verify  # a caller leaving stops the run


def test_the_proxy_log_has_no_query_string_and_names_the_request_id() -> None:
    site = _site()
    fmt = re.search(r"log_format bulwark_access ((?:'[^']*'\s*)+);", site)
    assert fmt is not None
    words = fmt.group(1)
    assert "$uri" in words and "$bulwark_request_id" in words
    for leaky in ("$request ", '$request"', "$request_uri", "$args", "$query_string"):
        assert leaky not in words, leaky
    public = _block(site, "server {")
    assert re.search(r"access_log \S+ bulwark_access;", public)


SECRET_SETTINGS = ("DATABASE_URL", "RECORDS_URL", "PSEUDONYM_KEY", "METRICS_KEY", "REDIS_URL")


def test_compose_passes_secrets_as_files_not_environment_variables() -> None:
    """Issue 16: the pseudonym key and the database password were environment variables."""
    for name, service in _services().items():
        env = service.get("environment") or {}
        for key, value in env.items():
            assert not any(key == f"BULWARK_{s}" for s in SECRET_SETTINGS), (name, key)
            assert "PASSWORD" not in str(value) and "PG_PASSWORD" not in key, (name, key)
            if str(value).startswith("/run/secrets/"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []), (name, key)
    secrets = _compose()["secrets"]
    assert isinstance(secrets, dict)
    assert all(set(s) == {"file"} for s in secrets.values()), "secrets come from files"


def test_replicas_connect_as_the_append_only_role_and_verify_tls() -> None:
    replicas = _replicas()
    assert all(
        r["environment"]["BULWARK_DATABASE_URL_FILE"] == "/run/secrets/database_url"
        for r in replicas.values()
    )
    migrate = _services()["migrate"]["environment"]
    assert migrate["BULWARK_DATABASE_URL_FILE"] == "/run/secrets/database_owner_url"
    postgres = _services()["postgres"]
    assert "ssl=on" in postgres["command"]
    init = ROOT / "deploy" / "postgres" / "init-roles.sh"
    assert "IN ROLE bulwark_app" in init.read_text()


@pytest.mark.parametrize(
    "path",
    [
        "deploy/config/checkpoint.pem",
        "deploy/config/ca.pem",
        "deploy/config/court-key.pem",
        "deploy/tls/privkey.pem",
        "deploy/secrets/pseudonym_key",
        "deploy/secrets/database_url",
        "deploy/secrets/pg_tls_key.pem",
        "data/secrets/pseudonym.key",
        "data/secrets/checkpoint.pem",
        "bulwark-demo/demo-court-key.pem",
        "court-key.pem",
        "topology/topology.json",
    ],
)
def test_gitignore_covers_every_private_key_path(path: str) -> None:
    done = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, f"{path} could be committed"
