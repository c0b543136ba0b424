"""Slow and oversized clients against a real ``bulwark serve``: silent connections, headers
dribbled a byte at a time (slowloris), bodies dribbled, header blocks too large, garbage.
Each is answered or dropped within the client timeout, and the server keeps answering
others all the while."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.core.middleware import SECURITY_HEADERS
from tests.conftest import JURISDICTION, migrate
from tests.servers import Server, start_server

pytestmark = pytest.mark.slow

TIMEOUT = 1.0  # BULWARK_CLIENT_TIMEOUT_SECONDS for the server below


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, demo_store_url: str, trust_store_file: Path
) -> Iterator[Server]:
    from app.core.config import Settings

    root = tmp_path_factory.mktemp("slow")
    env = {
        "BULWARK_DATA_DIR": str(root / "data"),
        "BULWARK_DATABASE_URL": f"sqlite:///{root / 'state.db'}",
        "BULWARK_RECORDS_URL": demo_store_url,
        "BULWARK_TRUST_STORE": str(trust_store_file),
        "BULWARK_JURISDICTIONS": JURISDICTION,
        "BULWARK_ENVIRONMENT": "test",
        "BULWARK_CLIENT_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    settings = Settings(
        data_dir=root / "data", database_url=env["BULWARK_DATABASE_URL"], environment="test"
    )
    asyncio.run(migrate(settings))
    started = start_server(env, root, name="slow")
    try:
        yield started
    finally:
        started.stop()


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.heard = False  # the server has said something: stop sending

    async def send(self, data: bytes) -> bool:
        """Write; False once the server has closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def answer(self, within: float) -> tuple[bytes, float]:
        """Everything the server sends until it closes (or resets), and when that was."""
        started = time.monotonic()
        chunks: list[bytes] = []
        async with asyncio.timeout(within):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except ConnectionResetError:  # our last byte crossed its close
                    break
                if not chunk:
                    break
                self.heard = True
                chunks.append(chunk)
        return b"".join(chunks), time.monotonic() - started


async def connect(server: Server) -> Conn:
    return Conn(*await asyncio.open_connection("127.0.0.1", server.port))


async def healthy_meanwhile(server: Server, seconds: float) -> list[float]:
    """Latencies of /healthz requests on fresh connections, for ``seconds``."""
    latencies = []
    async with httpx.AsyncClient(timeout=5) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = await client.get(f"{server.url}/healthz", headers={"Connection": "close"})
            assert r.status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.1)
    return latencies


def problem(raw: bytes, status: int) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    for name, value in SECURITY_HEADERS:
        assert headers[name.decode()] == value.decode()
    parsed = json.loads(body)
    assert parsed["status"] == status and parsed["reasons"]
    return parsed


@pytest.fixture
async def crowd(server: Server) -> AsyncIterator[list[Conn]]:
    """Fifty connections that are opened and left silent, for the length of a test."""
    conns = [await connect(server) for _ in range(50)]
    yield conns
    for c in conns:
        c.writer.close()


async def test_silent_connections_are_closed_and_others_served(
    server: Server, crowd: list[Conn]
) -> None:
    latencies, closed = await asyncio.gather(
        healthy_meanwhile(server, TIMEOUT + 0.5),
        asyncio.gather(*(c.answer(TIMEOUT + 3) for c in crowd)),
    )
    assert all(data == b"" and took < TIMEOUT + 2 for data, took in closed)
    assert max(latencies) < 0.75 * TIMEOUT  # answered before the slow ones were even cut


async def test_slowloris_headers_get_408_and_others_served(server: Server) -> None:
    conns = [await connect(server) for _ in range(20)]
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200

    async def dribble(conn: Conn) -> None:
        for byte in request:  # one byte every 50 ms, forever if allowed
            if conn.heard or not await conn.send(bytes([byte])):
                return
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(dribble(c)) for c in conns]
    latencies, answers = await asyncio.gather(
        healthy_meanwhile(server, TIMEOUT + 0.5),
        asyncio.gather(*(c.answer(TIMEOUT + 3) for c in conns)),
    )
    for task in tasks:
        task.cancel()
    assert all(took < TIMEOUT + 2 for _, took in answers)  # every one dropped in time
    # Answered 408 first, unless a dribbled byte crossed the close (then the peer resets).
    told = [problem(data, 408) for data, _ in answers if data]
    assert len(told) >= len(conns) // 2
    assert all(p["reasons"][0]["code"] == "request.invalid" for p in told)  # type: ignore[index]
    assert max(latencies) < 0.75 * TIMEOUT  # answered before the slow ones were even cut


async def test_dribbled_body_is_dropped_and_others_served(server: Server) -> None:
    conn = await connect(server)
    await conn.send(
        b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )

    async def dribble() -> None:
        for _ in range(999):  # a byte every 100 ms: the body would take 100 s
            if not await conn.send(b" "):
                return
            await asyncio.sleep(0.1)

    task = asyncio.create_task(dribble())
    latencies, (_, took) = await asyncio.gather(
        healthy_meanwhile(server, TIMEOUT + 0.5), conn.answer(TIMEOUT + 3)
    )
    task.cancel()
    assert took < TIMEOUT + 2
    assert max(latencies) < 0.75 * TIMEOUT  # answered before the slow ones were even cut


async def test_oversized_header_block_gets_431(server: Server) -> None:
    conn = await connect(server)
    lines = b"".join(f"X-Fill-{i}: ".encode() + b"f" * 1024 + b"\r\n" for i in range(40))
    # 40 KiB of headers in 1 KiB lines; the limit is 16 KiB.
    await conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    data, _ = await conn.answer(5)
    assert problem(data, 431)["reasons"][0]["code"] == "request.too_large"  # type: ignore[index]
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/healthz")).status_code == 200


async def test_one_huge_header_line_gets_431(server: Server) -> None:
    conn = await connect(server)
    await conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n")
    data, _ = await conn.answer(5)
    problem(data, 431)


async def test_garbage_gets_a_400_problem(server: Server) -> None:
    conn = await connect(server)
    await conn.send(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
    data, _ = await conn.answer(5)
    problem(data, 400)


async def test_a_request_in_time_is_answered_on_a_kept_alive_connection(server: Server) -> None:
    """The deadline runs per request: a connection that keeps sending whole requests in
    time is served for longer than the timeout."""
    async with httpx.AsyncClient() as client:
        started = time.monotonic()
        while time.monotonic() - started < TIMEOUT * 2:
            assert (await client.get(f"{server.url}/healthz")).status_code == 200
            await asyncio.sleep(0.3)


async def test_chunked_body_past_the_limit_gets_413(server: Server) -> None:
    """No Content-Length to refuse up front: the body is counted as it arrives."""
    conn = await connect(server)
    chunk = b"x" * 8192
    await conn.send(
        b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 12  # 96 KiB; the limit is 64
        + b"0\r\n\r\n"
    )
    data, _ = await conn.answer(5)
    assert problem(data, 413)["reasons"][0]["code"] == "request.too_large"  # type: ignore[index]
