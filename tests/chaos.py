"""Fault injectors for the chaos tests: a private PostgreSQL that a test may stop and start,
and an HTTP records API that can be told to hang."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.databases import IN_CI
from tests.servers import free_port


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of the test's own, on 127.0.0.1:``port``, trust auth."""

    bin_dir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._pg_ctl("-l", str(self.root / "server.log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server dies as in a crash (recovery runs at the next start)."""
        self._pg_ctl("-m", mode, "-w", "stop")


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb, start, yield; always stopped and removed afterwards.

    The machine's shared PostgreSQL is never touched: other tests rely on it meanwhile.
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or shutil.which("runuser") is None or os.geteuid() != 0:
        _unavailable("a private PostgreSQL needs its binaries, runuser and root")
    bin_dir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="bulwark-pg-"))
    shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(bin_dir, root, free_port())
    try:
        subprocess.run(
            [
                *("runuser", "-u", "postgres", "--", str(bin_dir / "initdb")),
                *("-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


class HangingRecordsApi:
    """An upstream records API on 127.0.0.1 that answers, or hangs when told to.

    It answers every GET with one loan dated 2026-02-01 (health checks included); while
    ``hang`` is set it accepts connections, reads the request and never answers.
    """

    def __init__(self) -> None:
        self.hang = False
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HangingRecordsApi:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._ready.set()
        await self._stop.wait()
        server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if self.hang:
                    await asyncio.sleep(3600)
                body = b'[{"title": "t", "checked_out": "2026-02-01"}]'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


HTTP_MAPPING = """
health_path = "/healthz"

[categories.circulation]
path = "/patrons/{patron}/loans"
date_field = "checked_out"
fields = { title = "title", checkout_date = "checked_out" }
"""
