"""One keep-alive HTTP/1.1 connection as an httpx transport: a lane of ``VendorTransport``.

Thousands of jobs in flight mean hundreds of status polls a second, and through
httpcore each one cost about 0.9 ms of CPU, most of it in its anyio layers (cancel
scopes, checkpoints and task lookups around every read and write) and h11. Here a
request is one ``transport.write`` on asyncio's own transport and a response is parsed
by httptools (C, the parser uvicorn uses): about 0.35 ms per poll through the same
``httpx.AsyncClient``. httpx still builds the request, applies auth, follows nothing,
decodes content encodings and raises its own errors, so adapters see no difference.

What a lane does not do goes to a plain ``httpx.AsyncHTTPTransport`` of one
connection: ``HEAD`` (the parser cannot be told a body will not follow), anything
other than http/https, and everything when httptools is not installed.
"""

from __future__ import annotations

import asyncio
import collections
import select
import ssl
import time
from collections.abc import AsyncIterator
from typing import cast

import httpx

__all__ = ["WireLane", "wire_available"]

#: Read-ahead before the socket stops being read (a download consumed slowly).
_HIGH_WATER = 1 << 20
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})

try:
    import httptools
except ImportError:  # the server extra brings it; without it every lane falls back
    httptools = None  # type: ignore[assignment]


def wire_available() -> bool:
    return httptools is not None


class WireLane(httpx.AsyncBaseTransport):
    """One connection, reused while its origin, keep-alive and idle time allow."""

    def __init__(self, *, keepalive_expiry: float | None = 5.0) -> None:
        self._expiry = keepalive_expiry
        self._conn: _Connection | None = None
        self._fallback: httpx.AsyncHTTPTransport | None = None
        self._ssl: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if httptools is None or request.method == "HEAD" or url.scheme not in _DEFAULT_PORTS:
            if self._fallback is None:
                one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
                self._fallback = httpx.AsyncHTTPTransport(limits=one)
            return await self._fallback.handle_async_request(request)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        origin = (url.scheme, url.host, url.port or _DEFAULT_PORTS[url.scheme])
        conn = self._conn
        if conn is None or conn.busy or not conn.reusable(origin, self._expiry):
            # A busy one (a response still open: VendorTransport never overlaps a lane's
            # requests, a bare lane may) is left to its response, which closes it.
            if conn is not None and not conn.busy:
                conn.close()
            self._conn = None
            conn = await self._connect(origin, timeouts.get("connect"))
            self._conn = conn
        conn.busy = True
        body = await request.aread()
        try:
            conn.send(_head(request, len(body)) + body)
            status, reason, headers = await conn.response_head(timeouts.get("read"))
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            status,
            headers=headers,
            stream=_Body(self, conn, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def _connect(self, origin: tuple[str, str, int], timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._fallback is not None:
            await self._fallback.aclose()


def _head(request: httpx.Request, length: int) -> bytes:
    """Request line and headers; the body (already read) always goes with a length."""
    url = request.url
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), url.raw_path)]
    has_length = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"transfer-encoding":
            continue
        if lower == b"content-length":
            has_length = True
        if b"\r" in value or b"\n" in value:
            raise httpx.LocalProtocolError(f"header {name!r} holds a line break")
        lines.append(name + b": " + value)
    if length and not has_length:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Connection(asyncio.Protocol):
    """The socket's side: parses responses as bytes arrive, one exchange at a time."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        assert httptools is not None
        self.origin = origin
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._fd = -1
        self.busy = False  # a response on it is still open
        self._closed = False
        self._error: httpx.TransportError | None = None
        self._idle_since = time.monotonic()
        self._keep_alive = True
        # The response in progress.
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._status = 0
        self._head_done = False
        self._until_eof = False
        self._complete = True
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods but not its class.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools' parser errors (and upgrades we never ask for)
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._head_done and self._until_eof and exc is None:
            self._complete = True  # a body with neither length nor chunks ends here
        if not self._complete:
            why = f": {exc}" if exc else ""
            self._fail(httpx.RemoteProtocolError(f"the server closed the connection{why}"))
        self._wake()

    # --- httptools callbacks --------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational: the real answer follows
            self._headers, self._reason = [], b""
            return
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()
        framed = {name.lower() for name, _ in self._headers} & _FRAMING
        self._until_eof = not framed and status not in (204, 304)
        self._head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._head_done:
            self._complete = True
            self._wake()

    # --- the lane's side --------------------------------------------------------------

    def reusable(self, origin: tuple[str, str, int], expiry: float | None) -> bool:
        idle = time.monotonic() - self._idle_since
        return (
            not self._closed
            and self._keep_alive
            and self._complete
            and origin == self.origin
            and (expiry is None or idle < expiry)
            and not self._readable()
        )

    def _readable(self) -> bool:
        """Whether the idle socket holds bytes or an EOF the loop has not read yet.

        A server that closes a keep-alive connection right after its answer (or just as
        it idles out) has its EOF waiting here while the loop runs the next request
        before reading it: reused, the request would fail with "the server closed the
        connection". httpcore makes the same check before reusing a connection.
        """
        if self._fd < 0:
            return False
        if not hasattr(select, "poll"):  # Windows
            return bool(select.select([self._fd], [], [], 0)[0])
        poll = select.poll()
        poll.register(self._fd, select.POLLIN)
        return bool(poll.poll(0))

    def send(self, data: bytes) -> None:
        if self._closed or self._transport is None:
            raise httpx.WriteError("the connection is closed")
        self._headers, self._reason, self._status = [], b"", 0
        self._head_done, self._complete, self._error = False, False, None
        self._chunks.clear()
        self._buffered = 0
        self._transport.write(data)

    async def response_head(
        self, timeout: float | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        while not self._head_done:
            await self._wait(timeout)
        return self._status, self._reason, self._headers

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The next piece of the body; None once it is complete."""
        while not self._chunks:
            if self._complete:
                self._idle_since = time.monotonic()
                return None
            await self._wait(timeout)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered <= _HIGH_WATER // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    async def _wait(self, timeout: float | None) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise httpx.RemoteProtocolError("the server closed the connection")
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout("no answer within the read timeout") from None
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _fail(self, error: httpx.TransportError) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; a body not read to its end closes the
    connection (what is left of it cannot be skipped safely)."""

    def __init__(self, lane: WireLane, conn: _Connection, timeout: float | None) -> None:
        self._lane = lane
        self._conn = conn
        self._timeout = timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while (chunk := await self._conn.next_chunk(self._timeout)) is not None:
                yield chunk
        except BaseException:
            self._conn.close()
            raise
        self._done = True
        self._release()

    async def aclose(self) -> None:
        if not self._done:
            self._conn.close()
        self._release()

    def _release(self) -> None:
        """The connection may carry the next request, or, if an overlapping request
        replaced it as the lane's connection meanwhile, is closed: nothing would reuse it."""
        conn = self._conn
        if conn.busy:
            conn.busy = False
            if self._lane._conn is not conn:
                conn.close()
