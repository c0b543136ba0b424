"""Real `bulwark serve` processes for multi-process, replica and chaos tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.admin.clients import add_client
from app.audit.service import VerifyResult, list_events, verify_chain
from app.audit.writer import AuditWriter
from app.callers.models import Role
from app.core.config import Settings
from app.core.database import create_engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def bulwark_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")}
    env.update(settings_env)
    return env


def start_server(
    settings_env: Mapping[str, str], log_dir: Path, *, name: str = "bulwark"
) -> Server:
    port = free_port()
    log = log_dir / f"{name}-{port}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=bulwark_env(settings_env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


@contextmanager
def servers(settings_env: Mapping[str, str], log_dir: Path, count: int) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for i in range(count):
            started.append(start_server(settings_env, log_dir, name=f"replica{i}"))
        yield started
    finally:
        for s in started:
            s.stop()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a `bulwark` command use ``settings``' files and databases
    (its environment left to the default)."""
    return {
        "BULWARK_DATA_DIR": str(settings.data_dir),
        "BULWARK_DATABASE_URL": settings.state_url,
        "BULWARK_RECORDS_URL": settings.store_url,
        "BULWARK_TRUST_STORE": str(settings.trust_store),
        "BULWARK_JURISDICTIONS": ",".join(sorted(settings.jurisdictions)),
        **extra,
    }


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a `bulwark serve` process use ``settings``."""
    return cli_env(settings, **{"BULWARK_ENVIRONMENT": "test", **extra})


async def provision(
    settings: Settings, prefix: str, roles: Iterable[Role] = tuple(Role)
) -> dict[str, str]:
    """Migrate the state database and create a key per role of ``roles`` (named
    ``prefix-role``), by role."""
    from tests.conftest import migrate

    await migrate(settings)
    engine = create_engine(settings.state_url)
    writer = AuditWriter(engine)
    writer.start()
    try:
        return {
            role.value: (await add_client(engine, f"{prefix}-{role.value}", role, audit=writer))[1]
            for role in roles
        }
    finally:
        await writer.close()
        await engine.dispose()


async def chain_verdict(state_url: str) -> VerifyResult:
    """The chain's verdict (``verify_chain``) over the state database at ``state_url``."""
    engine = create_engine(state_url)
    try:
        return await verify_chain(engine)
    finally:
        await engine.dispose()


async def chain_and_events(state_url: str) -> tuple[VerifyResult, dict[int, str]]:
    """The chain's verdict, and every event's hash by sequence number."""
    engine = create_engine(state_url)
    try:
        verdict = await verify_chain(engine)
        events = {e["seq"]: e["hash"] for e in await list_events(engine, after=0, limit=100_000)}
    finally:
        await engine.dispose()
    return verdict, events
