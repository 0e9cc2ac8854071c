"""One WebSocket connection of the feed: picows on the running (uvloop) loop, its router, its
subscriptions and the exchange's connection rules.

The frame callback hands each complete text message straight to the connection's router
(``tickbook._router``): decode, validate, apply and publish happen inside that one call.
Everything else here is slow-path bookkeeping: opening with the first streams in the URL,
SUBSCRIBE/UNSUBSCRIBE paced under the exchange's inbound message limit, replies matched by
id, close and disconnect. Reconnecting and replacing connections is the feed's job
(``tickbook.feed.feed``), which knows the books.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import msgspec
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from tickbook.feed.endpoints import Endpoints

log = logging.getLogger(__name__)

_TEXT: Final = WSMsgType.TEXT
_CONTINUATION: Final = WSMsgType.CONTINUATION
URL_STREAMS: Final = 64  # streams named in the connect URL; the rest are SUBSCRIBEd
SUBSCRIBE_CHUNK: Final = 200  # streams per SUBSCRIBE message
REPLY_TIMEOUT: Final = 10.0


class ControlError(RuntimeError):
    """The exchange refused a SUBSCRIBE/UNSUBSCRIBE (its ``code`` and ``msg``), or never answered."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Pacer:
    """Spaces control messages so that no second holds more than ``per_second`` of them.

    A reservation is taken before sleeping, so concurrent senders queue in order. One
    message every ``1 / per_second`` seconds keeps any sliding one-second window at or
    under ``per_second`` messages plus the one on its edge; the feed asks for two fewer
    than the exchange allows, leaving room for the pongs the exchange's pings draw.
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError(f"per_second must be positive, got {per_second}")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._next = 0.0

    def reserve(self) -> float:
        """Seconds to wait before sending the next message (its slot is now taken)."""
        now = self._clock()
        at = max(now, self._next)
        self._next = at + self.interval
        return at - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class AttemptLimiter:
    """Connection attempts per window, shared by every connection of a feed (one IP)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self.waits = 0

    def delay(self) -> float:
        """Seconds until an attempt is allowed (0: now); records the attempt when 0."""
        now = self._clock()
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) < self.limit:
            self._times.append(now)
            return 0.0
        return self._times[0] + self.window_s - now

    async def acquire(self) -> None:
        while (delay := self.delay()) > 0:
            self.waits += 1
            await asyncio.sleep(delay)


class _Reply(msgspec.Struct, frozen=True, gc=False):
    id: int | str | None = None  # request id echoed by the exchange
    result: msgspec.Raw = msgspec.Raw()  # null on success, the list for LIST_SUBSCRIPTIONS
    error: dict[str, Any] | None = None  # {"code": 2, "msg": "..."} (futures style)
    code: int | None = None  # spot style error: {"code": 2, "msg": "...", "id": 1}
    msg: str | None = None


_reply_decoder: Final = msgspec.json.Decoder(_Reply)


class _Listener(WSListener):
    """picows callbacks for one connection. ``on_ws_frame`` is the hot path: one call into
    the router per complete text message."""

    def __init__(self, connection: StreamConnection) -> None:
        super().__init__()
        self._connection = connection
        self._feed = connection.router.feed
        self._fragments: list[bytes] | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._connection._on_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type  # a property that builds the enum: read it once
        if msg_type is _TEXT and frame.fin:
            self._feed(frame.get_payload_as_memoryview(), frame.last_in_buffer)
        elif msg_type is _TEXT or (msg_type is _CONTINUATION and self._fragments is not None):
            # A fragmented message (the exchange does not send them, a proxy might).
            if msg_type is _TEXT:
                self._fragments = []
            assert self._fragments is not None
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                whole, self._fragments = b"".join(self._fragments), None
                self._feed(whole, frame.last_in_buffer)
        elif msg_type is WSMsgType.CLOSE:
            self._connection.close_code = frame.get_close_code()
            self._connection.close_reason = frame.get_close_message().decode("utf-8", "replace")
        # PING is answered by picows (enable_auto_pong, echoing the payload as the
        # exchange requires); PONG and BINARY carry nothing for the feed.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._connection._on_disconnected()


class StreamConnection:
    """A combined-stream connection on one route, carrying up to the exchange's stream limit.

    ``router`` is this connection's router; ``streams`` the names it should carry (the
    feed edits them through ``subscribe``/``unsubscribe``). Open with ``open()``; wait for
    the end with ``wait_closed()``.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        endpoints: Endpoints,
        route: str,
        router: Any,
        *,
        pacer: Pacer,
        auto_ping_idle: float,
        auto_ping_reply: float,
    ) -> None:
        self.id = next(self._ids)
        self.endpoints = endpoints
        self.route = route
        self.router = router
        self.pacer = pacer
        self.streams: list[str] = []
        self.transport: WSTransport | None = None
        self.state = "new"  # new, connecting, open, closed
        self.opened_at = 0.0  # monotonic time of the last open
        self.connects = 0
        self.control_sent = 0
        self.close_code: WSCloseCode | None = None
        self.close_reason = ""
        self.replaced = False  # a replacement took over (make-before-break)
        self._auto_ping_idle = auto_ping_idle
        self._auto_ping_reply = auto_ping_reply
        self._closed = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<StreamConnection #{self.id} {self.route or '/'} {self.state} streams={len(self.streams)}>"

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect with the first streams in the URL, then SUBSCRIBE the rest (paced)."""
        if not self.streams:
            raise ValueError("a connection needs at least one stream")
        self.state = "connecting"
        self._closed.clear()
        self.close_code = None
        self.close_reason = ""
        first, rest = self.streams[:URL_STREAMS], self.streams[URL_STREAMS:]
        url = self.endpoints.stream_url(self.route, first)
        try:
            transport, _ = await ws_connect(
                lambda: _Listener(self),
                url,
                enable_auto_ping=True,
                auto_ping_idle_timeout=self._auto_ping_idle,
                auto_ping_reply_timeout=self._auto_ping_reply,
                max_frame_size=64 * 1024 * 1024,
                websocket_handshake_timeout=10,
            )
        except BaseException:
            self.state = "closed"
            self._closed.set()
            raise
        self.transport = transport
        if rest:
            await self._control("SUBSCRIBE", rest)

    def _on_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.state = "open"
        self.opened_at = time.monotonic()
        self.connects += 1

    def _on_disconnected(self) -> None:
        self.state = "closed"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"connection #{self.id} closed"))
        self._pending.clear()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close(self, reason: str = "") -> None:
        """Close politely (a close frame); picows then disconnects."""
        transport = self.transport
        if transport is not None and self.state in ("open", "connecting"):
            try:
                transport.send_close(WSCloseCode.OK, reason.encode()[:120])
                transport.disconnect(graceful=True)
            except Exception:  # already gone: nothing to close
                log.debug("connection #%d: close on a dead transport", self.id, exc_info=True)

    def abort(self) -> None:
        """Drop the TCP connection at once (a silent or misbehaving server)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    # ------------------------------------------------------------- subscriptions

    async def subscribe(self, streams: list[str]) -> None:
        """Add streams; sent now if open, else named when it opens."""
        new = [s for s in streams if s not in self.streams]
        self.streams.extend(new)
        if new and self.is_open:
            await self._control("SUBSCRIBE", new)

    async def unsubscribe(self, streams: list[str]) -> None:
        gone = [s for s in streams if s in self.streams]
        self.streams = [s for s in self.streams if s not in gone]
        if gone and self.is_open:
            await self._control("UNSUBSCRIBE", gone)

    async def list_subscriptions(self) -> list[str]:
        reply = await self._request("LIST_SUBSCRIPTIONS", None)
        return list(msgspec.json.decode(reply)) if reply else []

    async def _control(self, method: str, streams: list[str]) -> None:
        for start in range(0, len(streams), SUBSCRIBE_CHUNK):
            await self._request(method, streams[start : start + SUBSCRIBE_CHUNK])

    async def _request(self, method: str, params: list[str] | None) -> bytes:
        """Send one control message (paced) and wait for its reply's ``result``."""
        await self.pacer.wait()
        transport = self.transport
        if transport is None or not self.is_open:
            raise ConnectionError(f"connection #{self.id} is not open")
        request_id = next(self._request_ids)
        body: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            body["params"] = params
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        transport.send(_TEXT, msgspec.json.encode(body))
        self.control_sent += 1
        try:
            return bytes(await asyncio.wait_for(future, REPLY_TIMEOUT))
        except TimeoutError:
            raise ControlError(
                f"connection #{self.id}: no reply to {method} within {REPLY_TIMEOUT} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def on_reply(self, payload: bytes) -> bool:
        """A message that is not a stream event: settle the control request it answers.
        False when it is not a reply to anything pending."""
        try:
            reply = _reply_decoder.decode(payload)
        except msgspec.DecodeError:
            return False
        if not isinstance(reply.id, int):
            return False
        future = self._pending.get(reply.id)
        if future is None or future.done():
            return False
        if reply.error is not None or reply.code is not None:
            error = reply.error or {"code": reply.code, "msg": reply.msg}
            future.set_exception(ControlError(f"exchange refused: {error.get('msg')}", error.get("code")))
        else:
            future.set_result(bytes(reply.result) if reply.result else b"")
        return True
