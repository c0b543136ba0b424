"""Serving a test upstream (the HTTP records API, the FOLIO fake) on 127.0.0.1 in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def local_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free port on 127.0.0.1, and its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serving(app: Any, sock: socket.socket, what: str) -> Iterator[None]:
    """Serve ``app`` on ``sock`` in a daemon thread until the block ends, then close ``sock``;
    RuntimeError naming ``what`` if it does not start within 10 seconds."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="none",
        http="h11",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
