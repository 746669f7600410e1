"""WireLane, the vendor pool's HTTP/1.1 connection, against real servers on loopback.

Each test scripts a small asyncio server that answers with exact bytes (so a test can
send a malformed answer, close mid-body or never answer at all), and runs under
asyncio's own loop and under uvloop, the gateway's loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gc
import gzip
import hashlib
import inspect
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters._http import POOL_LIMITS, VendorTransport, transport_error
from adapters._wire import _HIGH_WATER, WireLane, _Connection

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
#: A test that runs longer than this hangs: fail it rather than the suite.
HANG_S = 5.0


def on_both_loops(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test (fixtures allowed) once under each loop of :data:`LOOPS`."""

    def run(loop: str, **fixtures: Any) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(HANG_S):
                await test(**fixtures)

        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(bounded())
        gc.collect(1)  # an unclosed socket or transport warns now, in this test

    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    run.__dict__.update(test.__dict__)  # its marks (parametrize, ...)
    loop = inspect.Parameter("loop", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(test).parameters.values()
    run.__signature__ = inspect.Signature([loop, *params])  # type: ignore[attr-defined]
    return pytest.mark.parametrize("loop", list(LOOPS))(run)


# --- a scripted server ---------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int  # which accepted connection carried it: 1, 2, ...

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


@dataclass
class Peer:
    """The server's end of one connection, for a handler to answer on."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, *parts: bytes) -> None:
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()

    async def dribble(self, data: bytes) -> None:
        """One byte at a time, yielding between: the client sees every split."""
        for i in range(len(data)):
            await self.send(data[i : i + 1])
            await asyncio.sleep(0)

    async def hang(self) -> None:
        """Answer nothing; return once the client closes the connection."""
        await self.reader.read()

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[Seen, Peer], Awaitable[None]]


def answer(
    status: int = 200,
    body: bytes = b"",
    *headers: str,
    reason: str = "OK",
    length: bool = True,
) -> bytes:
    """A response's bytes; a Content-Length is added unless ``length`` is false."""
    lines = [f"HTTP/1.1 {status} {reason}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Server:
    """A loopback HTTP/1.1 server: parses each request and lets ``handler`` answer it."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0  # accepted
    closed_by_client: int = 0  # connections whose client closed (EOF or reset)
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _server: asyncio.Server | None = None

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        self.connections += 1
        number, peer = self.connections, Peer(reader, writer)
        try:
            while not writer.is_closing():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, version = request_line.split(" ")
                assert version == "HTTP/1.1"
                headers = [(k, v.strip()) for k, v in (line.split(":", 1) for line in lines)]
                seen = Seen(method, target, headers, b"", number)
                assert seen.header("transfer-encoding") is None, "request bodies go with a length"
                seen.body = await reader.readexactly(int(seen.header("content-length") or 0))
                self.requests.append(seen)
                await self.handler(seen, peer)
                if reader.at_eof():
                    self.closed_by_client += 1
                    return
        except ConnectionError:
            self.closed_by_client += 1
        finally:
            writer.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds (the other side's EOF to arrive, ...)."""
    async with asyncio.timeout(1):
        while not predicate():
            await asyncio.sleep(0.001)


async def echo(seen: Seen, peer: Peer) -> None:
    """A JSON account of the request, kept alive."""
    body = json.dumps({"method": seen.method, "target": seen.target}).encode()
    await peer.send(answer(200, body, "Content-Type: application/json"))


def lane_of(transport: httpx.AsyncBaseTransport) -> WireLane:
    """The lane that carries a test's requests (of a VendorTransport: the one it used)."""
    if isinstance(transport, WireLane):
        return transport
    assert isinstance(transport, VendorTransport)
    lanes = [lane.transport for lane in transport._lanes if lane.host]
    assert len(lanes) == 1, "sequential requests to one host share a lane"
    assert isinstance(lanes[0], WireLane)
    return lanes[0]


def conn_of(transport: httpx.AsyncBaseTransport) -> _Connection:
    conn = lane_of(transport)._conn
    assert conn is not None
    return conn


@pytest.fixture(params=["WireLane", "VendorTransport"])
def make(request: pytest.FixtureRequest) -> Callable[[], httpx.AsyncBaseTransport]:
    """The lane on its own, and the pool of lanes the vendor clients use."""
    return WireLane if request.param == "WireLane" else VendorTransport


def test_the_vendor_pool_is_made_of_wire_lanes() -> None:
    lanes = VendorTransport()._lanes
    assert len(lanes) == POOL_LIMITS.max_connections and all(
        isinstance(lane.transport, WireLane) for lane in lanes
    )


# --- requests and responses -----------------------------------------------------------------


@on_both_loops
async def test_get_post_and_delete_carry_exactly_what_was_asked(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async def vendor(seen: Seen, peer: Peer) -> None:
        body = json.dumps({"id": "task-1", "got": seen.method}).encode()
        await peer.send(
            answer(
                201,
                body,
                "Content-Type: application/json",
                "X-Request-Id: r-42",
                "Set-Cookie: a=1",
                "Set-Cookie: b=2",
                reason="Created Here",
            )
        )

    async with Server(vendor) as server, httpx.AsyncClient(transport=make()) as client:
        auth = {"Authorization": "Bearer sk-test"}
        got = await client.get(server.url("/v1/tasks/t%201?a=1&b=x%2Fy"), headers=auth)
        posted = await client.post(server.url("/v1/tasks"), json={"prompt": "é"}, headers=auth)
        deleted = await client.delete(server.url("/v1/tasks/t1"), headers=auth)

        async def parts() -> AsyncIterator[bytes]:  # a body of unknown length
            yield b"abc"
            yield b"def"

        streamed = await client.post(server.url("/upload"), content=parts())

    get, post, delete, upload = server.requests
    host = f"127.0.0.1:{server.port}"
    assert (get.method, get.target, get.body) == ("GET", "/v1/tasks/t%201?a=1&b=x%2Fy", b"")
    assert get.header("host") == host and get.header("authorization") == "Bearer sk-test"
    assert get.header("content-length") is None
    assert (post.method, post.target) == ("POST", "/v1/tasks")
    assert json.loads(post.body) == {"prompt": "é"}
    assert post.header("content-length") == str(len(post.body))
    assert post.header("content-type") == "application/json"
    assert post.header("host") == host and post.header("authorization") == "Bearer sk-test"
    assert (delete.method, delete.target, delete.body) == ("DELETE", "/v1/tasks/t1", b"")
    assert upload.body == b"abcdef" and upload.header("content-length") == "6"
    for response, method in ((got, "GET"), (posted, "POST"), (deleted, "DELETE")):
        assert response.status_code == 201 and response.reason_phrase == "Created Here"
        assert response.json() == {"id": "task-1", "got": method}
        assert response.headers["x-request-id"] == "r-42"
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert response.http_version == "HTTP/1.1"
    assert streamed.status_code == 201
    assert server.connections == 1  # and all of it on one connection


@on_both_loops
async def test_an_answer_dribbled_byte_by_byte_is_parsed_whole() -> None:
    async def slow(seen: Seen, peer: Peer) -> None:
        await peer.dribble(answer(200, b'{"state": "running"}', "X-Long: " + "v" * 300))

    async with Server(slow) as server, httpx.AsyncClient(transport=WireLane()) as client:
        response = await client.get(server.url())
    assert response.reason_phrase == "OK" and response.headers["x-long"] == "v" * 300
    assert response.json() == {"state": "running"}


@on_both_loops
async def test_informational_answers_are_skipped() -> None:
    async def hints(seen: Seen, peer: Peer) -> None:
        await peer.send(
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
            answer(200, b"done", "X-Final: yes", reason="Fine"),
        )

    async with Server(hints) as server, httpx.AsyncClient(transport=WireLane()) as client:
        response = await client.get(server.url())
        again = await client.get(server.url())
    assert (response.status_code, response.reason_phrase, response.text) == (200, "Fine", "done")
    assert "link" not in response.headers and response.headers["x-final"] == "yes"
    assert again.text == "done" and server.connections == 1


@on_both_loops
async def test_204_and_304_have_no_body_and_keep_the_connection() -> None:
    async def bodiless(seen: Seen, peer: Peer) -> None:
        if seen.target == "/204":
            await peer.send(answer(204, length=False, reason="No Content"))
        elif seen.target == "/304":  # the length of the body it stands for, no body
            await peer.send(answer(304, b"", "ETag: x", "Content-Length: 123", length=False))
        else:
            await echo(seen, peer)

    async with Server(bodiless) as server, httpx.AsyncClient(transport=WireLane()) as client:
        assert (await client.delete(server.url("/204"))).content == b""
        not_modified = await client.get(server.url("/304"))
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert (await client.get(server.url("/after"))).json()["target"] == "/after"
    assert server.connections == 1


@on_both_loops
async def test_a_chunked_body_is_decoded() -> None:
    pieces = [b"x" * 10, b"y" * 70_000, b"z"]

    async def chunks(seen: Seen, peer: Peer) -> None:
        await peer.send(answer(200, b"", "Transfer-Encoding: chunked", length=False))
        for piece in pieces:  # one write each: the client sees them arrive apart
            await peer.send(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            await asyncio.sleep(0.001)
        await peer.send(b"0\r\nX-Trailer: t\r\n\r\n")

    async with Server(chunks) as server, httpx.AsyncClient(transport=WireLane()) as client:
        first = await client.get(server.url())
        second = await client.get(server.url())
    assert first.content == second.content == b"".join(pieces)
    assert server.connections == 1  # the terminating chunk ended it: reused


@on_both_loops
async def test_a_body_with_no_length_runs_until_the_server_closes() -> None:
    async def unframed(seen: Seen, peer: Peer) -> None:
        await peer.send(answer(200, length=False), b"part one, ", b"part two")
        peer.close()

    async with Server(unframed) as server, httpx.AsyncClient(transport=WireLane()) as client:
        assert (await client.get(server.url())).text == "part one, part two"
        assert (await client.get(server.url())).text == "part one, part two"
    assert server.connections == 2


# --- keep-alive --------------------------------------------------------------------------


@on_both_loops
async def test_sequential_requests_share_one_connection(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async with Server(echo) as server, httpx.AsyncClient(transport=make()) as client:
        for i in range(3):
            assert (await client.get(server.url(f"/{i}"))).json()["target"] == f"/{i}"
    assert server.connections == 1
    assert [seen.connection for seen in server.requests] == [1, 1, 1]


@on_both_loops
async def test_connection_close_is_honoured(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async def closing(seen: Seen, peer: Peer) -> None:  # says close, but leaves it open
        await peer.send(answer(200, b"bye", "Connection: close"))

    async with Server(closing) as server, httpx.AsyncClient(transport=make()) as client:
        assert (await client.get(server.url())).text == "bye"
        assert (await client.get(server.url())).text == "bye"
        assert server.connections == 2
        await until(lambda: server.closed_by_client == 1)  # the lane closed the first


@on_both_loops
async def test_an_idle_connection_the_server_closed_is_replaced(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async def once(seen: Seen, peer: Peer) -> None:
        await echo(seen, peer)
        peer.close()  # no Connection: close; the server just drops it while idle

    async with Server(once) as server, httpx.AsyncClient(transport=make()) as client:
        await client.get(server.url())
        await until(lambda: conn_of(client._transport)._closed)  # the lane saw the EOF
        assert (await client.get(server.url("/2"))).json()["target"] == "/2"
    assert server.connections == 2


@on_both_loops
async def test_a_connection_closed_right_after_its_answer_is_not_reused(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    """The EOF is in the socket but the loop runs the next request before reading it."""

    async def once(seen: Seen, peer: Peer) -> None:
        await echo(seen, peer)
        peer.close()

    async with Server(once) as server, httpx.AsyncClient(transport=make()) as client:
        for i in range(3):
            assert (await client.get(server.url(f"/{i}"))).json()["target"] == f"/{i}"
    assert server.connections == 3


@on_both_loops
async def test_a_bare_lane_overlapping_requests_opens_another_connection() -> None:
    """VendorTransport never overlaps a lane's requests; a bare lane must not lose a body."""
    async with Server(echo) as server, httpx.AsyncClient(transport=WireLane()) as client:
        first = await client.send(client.build_request("GET", server.url("/first")), stream=True)
        await asyncio.sleep(0.01)  # its body has arrived, unread
        assert (await client.get(server.url("/second"))).json()["target"] == "/second"
        await first.aread()
        assert first.json()["target"] == "/first"
        await first.aclose()
        await until(lambda: server.closed_by_client == 1)  # replaced: closed once read
        a, b = await asyncio.gather(client.get(server.url("/a")), client.get(server.url("/b")))
        assert (a.json()["target"], b.json()["target"]) == ("/a", "/b")
        await until(lambda: server.closed_by_client == 2)
        assert (await client.get(server.url("/c"))).status_code == 200
    assert server.connections == 3


@on_both_loops
async def test_keepalive_expiry_retires_an_idle_connection() -> None:
    async with (
        Server(echo) as server,
        httpx.AsyncClient(transport=WireLane(keepalive_expiry=0.01)) as client,
    ):
        await client.get(server.url())
        await asyncio.sleep(0.02)
        await client.get(server.url())
        await until(lambda: server.closed_by_client == 1)
    assert server.connections == 2


# --- downloads --------------------------------------------------------------------------------

_MIB = 1 << 20
_BIG = 50


def _block(i: int) -> bytes:
    """The i-th MiB of the big download: every MiB different, so a lost or repeated one shows."""
    return hashlib.sha256(b"%d" % i).digest() * (_MIB // 32)


@functools.cache
def _big_digest() -> str:
    digest = hashlib.sha256()
    for i in range(_BIG):
        digest.update(_block(i))
    return digest.hexdigest()


async def big_file(seen: Seen, peer: Peer) -> None:
    if seen.target == "/small":
        return await echo(seen, peer)
    await peer.send(answer(200, b"", f"Content-Length: {_BIG * _MIB}", length=False))
    for i in range(_BIG):
        await peer.send(_block(i))


@on_both_loops
async def test_a_large_download_streams_whole_in_bounded_memory(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    digest, size, peak = hashlib.sha256(), 0, 0
    async with Server(big_file) as server, httpx.AsyncClient(transport=make()) as client:
        async with client.stream("GET", server.url("/video.mp4")) as response:
            assert response.headers["content-length"] == str(_BIG * _MIB)
            chunks = response.aiter_bytes()
            first = await anext(chunks)
            digest.update(first)
            size += len(first)
            conn = conn_of(client._transport)
            await asyncio.sleep(0.05)  # a slow consumer: the server runs ahead until paused
            assert conn._paused and _HIGH_WATER < conn._buffered < 2 * _MIB
            async for chunk in chunks:
                peak = max(peak, conn._buffered)
                digest.update(chunk)
                size += len(chunk)
        assert not conn._paused and peak < 2 * _MIB
        assert (await client.get(server.url("/small"))).status_code == 200
    assert size == _BIG * _MIB and digest.hexdigest() == _big_digest()
    assert server.connections == 1  # read to the end, the connection went on


@on_both_loops
async def test_a_response_closed_unread_closes_its_connection(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async with Server(big_file) as server, httpx.AsyncClient(transport=make()) as client:
        async with client.stream("GET", server.url("/video.mp4")) as response:
            await anext(response.aiter_bytes())  # a first piece, then give up
        await until(lambda: server.closed_by_client == 1)
        async with client.stream("GET", server.url("/video.mp4")):
            pass  # not even a first piece
        await until(lambda: server.closed_by_client == 2)
        assert (await client.get(server.url("/small"))).json()["target"] == "/small"
    assert server.connections == 3


# --- errors -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@on_both_loops
async def test_a_refused_connection_is_a_connect_error(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async with httpx.AsyncClient(transport=make()) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.post(f"http://127.0.0.1:{_free_port()}/v1/tasks", json={})
        assert not transport_error(info.value, "v").outcome_unknown  # nothing was sent
        async with Server(echo) as server:
            assert (await client.get(server.url())).status_code == 200


@on_both_loops
async def test_a_silent_server_is_a_read_timeout(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async def stalls(seen: Seen, peer: Peer) -> None:
        if seen.target == "/no-answer":
            await peer.hang()
        elif seen.target == "/half-body":
            await peer.send(answer(200, b"", "Content-Length: 10", length=False), b"12345")
            await peer.hang()
        else:
            await echo(seen, peer)

    timeout = httpx.Timeout(5, read=0.1)
    async with (
        Server(stalls) as server,
        httpx.AsyncClient(transport=make(), timeout=timeout) as client,
    ):
        await client.get(server.url("/warm"))
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url("/no-answer"))
        await until(lambda: server.closed_by_client == 1)
        assert (await client.get(server.url("/ok"))).json()["target"] == "/ok"
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url("/half-body"))
        await until(lambda: server.closed_by_client == 2)
        assert (await client.get(server.url("/ok"))).json()["target"] == "/ok"
    assert server.connections == 3


@on_both_loops
@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/no-answer", "closed"),  # the request was read, the connection closed
        ("/mid-body", "closed"),  # a length it does not keep
        ("/mid-chunks", "closed"),  # chunks that never end
        ("/garbage", "malformed"),  # no status line at all
        ("/bad-chunk", "malformed"),
        ("/switch", "malformed"),  # an upgrade never asked for
    ],
)
async def test_a_broken_answer_is_a_protocol_error(
    make: Callable[[], httpx.AsyncBaseTransport], path: str, error: str
) -> None:
    async def broken(seen: Seen, peer: Peer) -> None:
        if seen.target == "/mid-body":
            await peer.send(answer(200, b"", "Content-Length: 100", length=False), b"x" * 10)
        elif seen.target == "/mid-chunks":
            await peer.send(answer(200, b"", "Transfer-Encoding: chunked", length=False))
            await peer.send(b"5\r\nhello\r\n")
        elif seen.target == "/garbage":
            await peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            await peer.hang()
        elif seen.target == "/bad-chunk":
            await peer.send(answer(200, b"", "Transfer-Encoding: chunked", length=False))
            await peer.send(b"zz\r\nhello\r\n")
            await peer.hang()
        elif seen.target == "/switch":
            await peer.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n")
            await peer.send(b"Connection: Upgrade\r\n\r\n")
            await peer.hang()
        elif seen.target != "/no-answer":
            return await echo(seen, peer)
        peer.close()

    async with Server(broken) as server, httpx.AsyncClient(transport=make()) as client:
        await client.get(server.url("/warm"))  # a kept-alive connection goes bad
        with pytest.raises(httpx.RemoteProtocolError, match=error) as info:
            await client.post(server.url(path), json={"prompt": "p"})
        assert transport_error(info.value, "v").outcome_unknown  # it may have acted
        assert (await client.get(server.url("/after"))).json()["target"] == "/after"
    assert server.connections == 2


@on_both_loops
async def test_a_request_cancelled_while_waiting_closes_its_connection(
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    async def first_hangs(seen: Seen, peer: Peer) -> None:
        await (peer.hang() if seen.target == "/slow" else echo(seen, peer))

    transport = make()
    if isinstance(transport, VendorTransport):  # one lane: the next request needs it back
        transport = VendorTransport(httpx.Limits(max_connections=1))
    async with Server(first_hangs) as server, httpx.AsyncClient(transport=transport) as client:
        waiting = asyncio.ensure_future(client.get(server.url("/slow")))
        await until(lambda: len(server.requests) == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await until(lambda: server.closed_by_client == 1)
        assert (await client.get(server.url("/next"))).json()["target"] == "/next"
    assert server.connections == 2


@on_both_loops
async def test_a_compressed_answer_is_decoded() -> None:
    async def gzipped(seen: Seen, peer: Peer) -> None:
        assert "gzip" in (seen.header("accept-encoding") or "")
        body = gzip.compress(b'{"state": "succeeded"}')
        await peer.send(answer(200, body, "Content-Encoding: gzip"))

    async with Server(gzipped) as server, httpx.AsyncClient(transport=WireLane()) as client:
        assert (await client.get(server.url())).json() == {"state": "succeeded"}


# --- the fallback ------------------------------------------------------------------------------


@on_both_loops
async def test_head_goes_through_the_fallback() -> None:
    async def head(seen: Seen, peer: Peer) -> None:  # a HEAD answer: a length, no body
        await peer.send(answer(200, b"", "Content-Length: 5000000", length=False))

    async with Server(head) as server, httpx.AsyncClient(transport=WireLane()) as client:
        for _ in range(2):
            response = await client.head(server.url("/video.mp4"))
            assert response.status_code == 200 and response.content == b""
            assert response.headers["content-length"] == "5000000"
        assert client._transport._conn is None  # type: ignore[attr-defined]
    assert [seen.method for seen in server.requests] == ["HEAD", "HEAD"]
    assert server.connections == 1  # the fallback keeps its connection alive too


# --- HTTPS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed, for ``localhost`` only: (ca, cert, key)."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def build(subject: str, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("wire test CA"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
        )

    ca = (
        build("wire test CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        build("localhost", key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@on_both_loops
async def test_https(
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    ca, cert, key = tls_files
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    async def files(seen: Seen, peer: Peer) -> None:
        if seen.target == "/video.mp4":  # read through TLS with the reading paused
            await peer.send(answer(200, b"", f"Content-Length: {8 * _MIB}", length=False))
            for i in range(8):
                await peer.send(_block(i))
        else:
            await echo(seen, peer)

    async with Server(files, tls=tls) as server:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # certifi's roots: not trusted
        async with httpx.AsyncClient(transport=make()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(server.url("/", host="localhost"))

        monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # read when a lane first needs TLS
        async with httpx.AsyncClient(transport=make()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(server.url("/", host="127.0.0.1"))  # not the cert's name
            assert (await client.get(server.url("/a", host="localhost"))).json()["target"] == "/a"
            async with client.stream("GET", server.url("/video.mp4", host="localhost")) as big:
                chunks = big.aiter_bytes()
                received = [await anext(chunks)]
                await asyncio.sleep(0.02)
                received += [chunk async for chunk in chunks]
            assert b"".join(received) == b"".join(_block(i) for i in range(8))
            assert (await client.get(server.url("/b", host="localhost"))).status_code == 200
        handshakes = server.connections
    assert handshakes == 1  # the two failed handshakes never reached the handler


@on_both_loops
async def test_a_tls_handshake_never_answered_is_a_connect_timeout() -> None:
    async with (
        Server(echo) as server,  # plain HTTP: it waits for a request line that never comes
        httpx.AsyncClient(transport=WireLane(), timeout=httpx.Timeout(5, connect=0.05)) as client,
    ):
        with pytest.raises(httpx.ConnectTimeout) as info:
            await client.post(server.url("/v1/tasks").replace("http:", "https:"), json={})
        assert not transport_error(info.value, "v").outcome_unknown  # nothing was sent
        await until(lambda: server.closed_by_client == 1)
        assert not server.requests


# --- a real server --------------------------------------------------------------------------


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A vendor-ish app: JSON about the request, or a chunked download at /stream."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(4):
            await send({"type": "http.response.body", "body": _block(i), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    about = {
        "method": scope["method"],
        "query": scope["query_string"].decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "body": body.decode(),
    }
    payload = json.dumps(about).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@on_both_loops
@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_against_uvicorn(http: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(_asgi, http=http, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started)
        async with httpx.AsyncClient(transport=VendorTransport(), base_url=base) as client:
            response = await client.post("/v1/tasks?x=1", json={"a": 1}, headers={"X-Key": "k"})
            assert response.status_code == 202
            about = response.json()
            assert about["method"] == "POST" and about["query"] == "x=1"
            assert json.loads(about["body"]) == {"a": 1}
            assert about["headers"]["x-key"] == "k"
            assert about["headers"]["content-length"] == str(len(about["body"]))
            async with client.stream("GET", "/stream") as download:
                assert download.headers["transfer-encoding"] == "chunked"
                content = b"".join([chunk async for chunk in download.aiter_bytes()])
            assert content == b"".join(_block(i) for i in range(4))
            assert (await client.delete("/v1/tasks/1")).json()["method"] == "DELETE"
    finally:
        server.should_exit = True
        await serving
        sock.close()
