"""User-data streams: spot over the WebSocket API, USD-M (and COIN-M) over a listenKey.

Spot (binance-spec §8.1, §9). The listenKey streams of spot are gone (``/api/v3/userDataStream``
stopped working on 2026-02-20); user data now comes over the WebSocket API
(``wss://ws-api.binance.com:443/ws-api/v3``). ``SpotUserData`` opens one connection and
subscribes with ``userDataStream.subscribe.signature`` (``apiKey``, ``timestamp``,
``signature`` over the sorted params, any key type, no logon), or, asked to and with an
Ed25519 key, ``session.logon`` then ``userDataStream.subscribe``. Events arrive as
``{"subscriptionId": N, "event": {...}}``; there is no keepalive any more besides the
WebSocket ping/pong (the server pings every 20 s and closes after a minute without a pong).
The stream resubscribes when its subscription ends (``eventStreamTerminated`` for its id),
reconnects when the connection drops, and moves to a fresh connection *before* the old one
goes away when the server announces a shutdown (``serverShutdown``) or the connection nears
its 24 h lifetime (§3).

USD-M (§8.2). ``FuturesUserData`` creates the account's listenKey with ``POST
/fapi/v1/listenKey`` (API key only, no signature), connects to
``<stream base>/private/ws/<listenKey>`` (COIN-M: ``/ws/<listenKey>``), extends the key with a
``PUT`` on a timer (every 30 min by default; a key lives 60 min), makes a new one when the
exchange says the key is gone (-1125 on the ``PUT``, or a ``listenKeyExpired`` event) and
reconnects, and moves to a fresh connection before the 24 h cut. ``close()`` deletes the key.
Every (re)connection first POSTs: that returns the live key (extended) or a new one, so a
reconnect never uses a dead key.

Both deliver every decoded event (``tickbook.trading.events``; control events such as
``serverShutdown`` or ``listenKeyExpired`` included) to callbacks and to async iterators,
and feed an optional ``OrderTracker``. A callback that raises is logged and counted; a frame
that does not decode is logged and counted; neither stops the stream. While two connections
overlap (a planned move), an event can arrive on both: events are de-duplicated on their
exact bytes (two distinct events always differ, at least in their times or ids).

Events sent while no connection was subscribed are lost (the exchange does not replay them):
each reconnection after a drop is announced to status callbacks as ``RESUBSCRIBED`` with
``gap=True``, the cue to reconcile open orders over REST.

Errors: an answer with ``error`` becomes the exception ``tickbook.trading.errors`` gives its
code (``error_from_payload``). Authentication failures (-2015 invalid key, IP or permission,
which on the WebSocket API also revokes the session; -1022 invalid signature, also what a
``session.logon`` with a non-Ed25519 key gets) and request errors are final: retrying cannot
fix them, so the stream stops and raises them from ``start()``, from its iterators and from
``wait_closed()``. -1021 resyncs the clock and retries; -2035 (a subscription already active
on the connection) unsubscribes and subscribes again; -2036 (none active) is ignored when
closing. Network failures, 5xx, 429 and the like are retried with exponential backoff and
jitter (a 429 waits its ``retryAfter``).

Transport: aiohttp's WebSocket client, not picows (which the market-data feed uses). This
stream carries a few messages per second at most, and needs request/answer exchanges
(logon, subscribe) that aiohttp's awaitable API expresses directly; it is the library the REST
side already uses (one dependency, one way to configure TLS and proxies); and aiohttp answers
each ping with the same payload, as the exchange requires. picows' advantage is throughput (several times
aiohttp's on loopback), which matters for depth streams and not here.

Timestamps of signed requests come from a ``ServerClock`` (``tickbook.trading.clock``) when one
is given (a ``RestClient``'s ``clock``), else from the local clock.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import enum
import hashlib
import itertools
import logging
import random
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self, TypeAlias

import aiohttp
import msgspec

from tickbook._types import Market
from tickbook.feed.endpoints import Endpoints, Environment, rest_base_url
from tickbook.signing import Ed25519Key, SigningKey, sign_ws
from tickbook.trading.errors import (
    AuthenticationError,
    BinanceError,
    RateLimited,
    RequestError,
    TimestampError,
    error_from_payload,
)
from tickbook.trading.events import (
    EventStreamTerminated,
    ListenKeyExpired,
    ServerShutdown,
    UnknownEvent,
    UserEvent,
    decode_spot_frame,
    decode_user_event,
)

if TYPE_CHECKING:
    from tickbook.trading.client import RestClient
    from tickbook.trading.clock import ServerClock
    from tickbook.trading.tracker import OrderTracker

__all__ = [
    "SPOT_WS_API_URLS",
    "Event",
    "EventIterator",
    "FuturesUserData",
    "SpotUserData",
    "StreamState",
    "StreamStatus",
    "UserDataStream",
    "futures_stream_base",
    "spot_ws_api_url",
]

log = logging.getLogger(__name__)

Event: TypeAlias = UserEvent | UnknownEvent

# §11: the spot WebSocket API per environment.
SPOT_WS_API_URLS: Final = {
    Environment.PRODUCTION: "wss://ws-api.binance.com:443/ws-api/v3",
    Environment.TESTNET: "wss://ws-api.testnet.binance.vision/ws-api/v3",
    Environment.DEMO: "wss://demo-ws-api.binance.com/ws-api/v3",
}
LIFETIME_S: Final = 24 * 3600.0  # §3: every connection is cut after 24 h
ROTATE_MARGIN_S: Final = 15 * 60.0  # move to a new connection this long before the cut
KEEPALIVE_S: Final = 30 * 60.0  # §8.2: a listenKey lives 60 min; extend it about every 30
REQUEST_TIMEOUT_S: Final = 10.0  # the WebSocket API gives up on a request after 10 s (§9)
_STABLE_S: Final = 30.0  # a connection that lived this long resets the backoff
_RECENT_EVENTS: Final = 1024  # event digests remembered to drop the copies of an overlap
_END: Final = object()  # ends the async iterators


class StreamState(enum.StrEnum):
    """What a status callback is told."""

    SUBSCRIBED = "subscribed"  # the first subscription (connection) is up
    RESUBSCRIBED = "resubscribed"  # up again after a drop (gap=True) or a planned move (gap=False)
    DISCONNECTED = "disconnected"  # the subscription was lost; reconnecting
    FAILED = "failed"  # a final error: the stream stopped (see ``error``)
    CLOSED = "closed"  # closed by the program


@dataclass(frozen=True, slots=True)
class StreamStatus:
    state: StreamState
    detail: str = ""
    gap: bool = False  # events may have been missed: reconcile over REST


def spot_ws_api_url(environment: Environment | str = Environment.PRODUCTION) -> str:
    """The spot WebSocket API URL of ``environment`` (production, testnet, demo; §11)."""
    try:
        return SPOT_WS_API_URLS[Environment(str(environment).lower())]
    except ValueError:
        names = ", ".join(e.value for e in Environment)
        raise ValueError(f"unknown environment {environment!r}; expected one of: {names}") from None


def futures_stream_base(client: RestClient) -> str:
    """The stream base URL that goes with a futures client's REST base URL (§11), for the
    documented hosts; a custom host (the local exchange) needs ``stream_base_url``."""
    for env in Environment:
        try:
            if rest_base_url(client.market, env) == client.base_url:
                return Endpoints.of(client.market, env).stream
        except (KeyError, ValueError):
            continue
    raise ValueError(
        f"no known stream host for {client.base_url}: pass stream_base_url (e.g. the local "
        "exchange's ws://127.0.0.1:PORT)"
    )


class _Fatal(Exception):
    """Wraps an error that retrying cannot fix."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _WsApiFrame(msgspec.Struct, gc=False):
    """What arrives on the WebSocket API: an answer (``id``, ``status``, ``result`` or
    ``error``) or an event (``subscriptionId``, ``event``)."""

    id: int | str | None = None
    status: int | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    subscriptionId: int | None = None  # the exchange's key, kept as is
    event: msgspec.Raw = msgspec.Raw()  # empty: not an event


_frame_decoder: Final = msgspec.json.Decoder(_WsApiFrame)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class _Link:
    """One WebSocket connection of a stream: a reader task, pending requests, its fate.

    ``trouble`` resolves with why the stream must act: ``"closed"`` (the connection ended),
    ``"shutdown"`` (the server announced it), ``"renew"`` (the listenKey is gone).
    """

    _numbers = itertools.count(1)

    def __init__(self, stream: UserDataStream, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        loop = asyncio.get_running_loop()
        self.stream = stream
        self.ws = ws
        self.number = next(self._numbers)
        self.opened_at = loop.time()
        self.subscription_id: int | None = None
        self.retired = False  # replaced: its frames are ignored
        self.resubscribing = False
        self.close_reason = ""
        self.trouble: asyncio.Future[str] = loop.create_future()
        self._pending: dict[int, asyncio.Future[_WsApiFrame]] = {}
        self._ids = itertools.count(1)
        self.reader = asyncio.create_task(self._read(), name=f"user-data link #{self.number}")

    def __repr__(self) -> str:
        return f"<link #{self.number} sub={self.subscription_id}>"

    def signal(self, reason: str) -> None:
        if not self.trouble.done():
            self.trouble.set_result(reason)

    async def _read(self) -> None:
        ws = self.ws
        idle = self.stream.idle_timeout
        try:
            while True:
                msg = await ws.receive(timeout=idle)
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    if not self.retired:
                        self.stream._on_frame(self, data)
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    self.close_reason = f"closed by the server (code {ws.close_code})"
                    break
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    self.close_reason = f"connection error: {ws.exception()!r}"
                    break
        except TimeoutError:
            # The server pings every 20 s (futures 3 min): this much silence is a dead link.
            self.close_reason = f"nothing received for {idle:.3g} s"
        except asyncio.CancelledError:
            self.close_reason = self.close_reason or "cancelled"
            raise
        except Exception as exc:  # a callback's bug is caught earlier; this is the transport's
            self.close_reason = f"reader failed: {exc!r}"
            log.exception("user-data link #%d: reader failed", self.number)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"connection lost ({self.close_reason})"))
            self._pending.clear()
            self.signal("closed")

    def on_answer(self, frame: _WsApiFrame) -> bool:
        if not isinstance(frame.id, int):
            return False
        future = self._pending.get(frame.id)
        if future is None or future.done():
            return False
        future.set_result(frame)
        return True

    async def request(self, method: str, params: Mapping[str, Any], market: Market) -> Any:
        """One WebSocket API request; its ``result``, or the error's exception."""
        if self.ws.closed:
            raise ConnectionError("connection closed")
        rid = next(self._ids)
        future: asyncio.Future[_WsApiFrame] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await self.ws.send_str(
                msgspec.json.encode({"id": rid, "method": method, "params": params}).decode()
            )
            frame = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        finally:
            self._pending.pop(rid, None)
        if frame.error is not None or (frame.status is not None and frame.status >= 400):
            raise error_from_payload(frame.status, frame.error, endpoint=method, market=market)
        return frame.result

    async def close(self) -> None:
        self.retired = True
        with contextlib.suppress(Exception):
            await self.ws.close()
        if not self.reader.done():
            self.reader.cancel()
        # wait() never raises the reader's outcome, and lets a cancellation of ours through.
        await asyncio.wait({self.reader})


class EventIterator:
    """The events of one ``async for`` over a stream (see ``UserDataStream.iterate``)."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(size)
        self._done = False

    def __aiter__(self) -> EventIterator:
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        event: Event = item
        return event

    def pending(self) -> int:
        """Events waiting to be read."""
        return self._queue.qsize()


class UserDataStream(abc.ABC):
    """What the spot and futures streams share: the connection loop, delivery, status.

    Use ``async with stream:`` (or ``await stream.start()`` ... ``await stream.close()``);
    ``start`` returns once the first subscription is up and raises a final error instead.
    Read events with ``async for event in stream`` (each iteration sees every event from the
    moment it starts) or with ``add_callback``.
    """

    market: Market

    def __init__(
        self,
        *,
        tracker: OrderTracker | None,
        on_event: Callable[[Event], Any] | None,
        on_status: Callable[[StreamStatus], Any] | None,
        idle_timeout: float,
        lifetime: float,
        backoff: float,
        backoff_cap: float,
        queue_size: int,
    ) -> None:
        if idle_timeout <= 0 or lifetime <= 0 or backoff <= 0 or backoff_cap < backoff or queue_size < 1:
            raise ValueError("timeouts, lifetime, backoff and queue_size must be positive")
        self.tracker = tracker
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.queue_size = queue_size
        self.error: BaseException | None = None
        self.connects = 0  # connections subscribed
        self.reconnects = 0  # ... after a drop
        self.rotations = 0  # ... planned moves (shutdown notice, lifetime)
        self.events = 0  # events delivered
        self.duplicates = 0  # events dropped as copies
        self.decode_errors = 0
        self.callback_errors = 0
        self.dropped = 0  # events an iterator was too slow to take (its queue full)
        self._callbacks: list[Callable[[Event], Any]] = []
        self._status_callbacks: list[Callable[[StreamStatus], Any]] = []
        if on_event is not None:
            self._callbacks.append(on_event)
        if on_status is not None:
            self._status_callbacks.append(on_status)
        self._iterators: weakref.WeakSet[EventIterator] = weakref.WeakSet()
        self._recent: collections.deque[bytes] = collections.deque(maxlen=_RECENT_EVENTS)
        self._recent_set: set[bytes] = set()
        self._session: aiohttp.ClientSession | None = None
        self._own_session = True
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._closing = False

    # ------------------------------------------------------------------ public API

    def add_callback(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a remover."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def add_status_callback(self, callback: Callable[[StreamStatus], Any]) -> Callable[[], None]:
        """Call ``callback(status)`` on (re)subscriptions, drops, failure and close."""
        self._status_callbacks.append(callback)
        return lambda: self._status_callbacks.remove(callback) if callback in self._status_callbacks else None

    @property
    def subscribed(self) -> bool:
        link = self._link
        return link is not None and not link.trouble.done() and not link.ws.closed

    async def start(self) -> None:
        """Connect and subscribe; returns when events flow. Raises a final error (bad key,
        bad signature) instead; transient failures are retried in the background."""
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name=f"{type(self).__name__}")
        assert self._ready is not None
        await self._ready.wait()
        if self.error is not None:
            raise self.error

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until a connection is subscribed (after a reconnect, for instance)."""
        async with asyncio.timeout(timeout):
            while not self.subscribed:
                if self.error is not None:
                    raise self.error
                if self._task is None or self._task.done():
                    raise RuntimeError("the stream is not running")
                await asyncio.sleep(0.01)

    async def wait_closed(self) -> None:
        """Wait for the stream to end: returns after ``close()``, raises a final error."""
        if self._task is not None:
            await asyncio.wait({self._task})
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        """Stop: close the connection, end the iterators."""
        if self._closing:
            return
        self._closing = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        if self._link is not None:
            await self._link.close()
            self._link = None
        await self._cleanup()
        self._end_iterators(_END)
        if self.error is None:
            self._status(StreamStatus(StreamState.CLOSED))

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> EventIterator:
        return self.iterate()

    def iterate(self) -> EventIterator:
        """An async iterator over every event from now on, until the stream closes (or
        fails: it then raises the error). Each iterator buffers up to ``queue_size`` events
        and drops its oldest when a slow reader lets it fill (counted in ``dropped``)."""
        iterator = EventIterator(self.queue_size)
        if self._closing or self.error is not None:
            iterator._queue.put_nowait(self.error if self.error is not None else _END)
        else:
            self._iterators.add(iterator)
        return iterator

    def stats(self) -> dict[str, int]:
        return {
            "connects": self.connects,
            "reconnects": self.reconnects,
            "rotations": self.rotations,
            "events": self.events,
            "duplicates": self.duplicates,
            "decode_errors": self.decode_errors,
            "callback_errors": self.callback_errors,
            "dropped": self.dropped,
        }

    # ------------------------------------------------------------------ subclass hooks

    def _use_session(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._own_session = session is None

    def _http(self) -> aiohttp.ClientSession:
        """The session the WebSocket connects through: the one given, else one of its own."""
        if self._session is None or (self._own_session and self._session.closed):
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def _close_session(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse[bool]:
        return await self._http().ws_connect(
            url,
            autoping=True,  # answer every ping with its payload (§3)
            heartbeat=None,  # the server pings; silence is caught by idle_timeout
            decode_text=False,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        )

    @abc.abstractmethod
    async def _open(self) -> _Link:
        """Connect and subscribe; raise ``_Fatal`` for errors retrying cannot fix."""

    @abc.abstractmethod
    def _on_frame(self, link: _Link, data: bytes) -> None:
        """One text frame of ``link``."""

    async def _cleanup(self) -> None:
        """Release what the subclass holds (a listenKey, a session)."""
        return None

    async def _on_connected(self, link: _Link) -> None:
        """The stream just switched to ``link``."""
        return None

    # ------------------------------------------------------------------ the loop

    def _delay(self, attempt: int, error: BaseException | None) -> float:
        """Exponential backoff with jitter (half fixed, half random), or a 429's wait."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return float(error.retry_after) + random.uniform(0, self.backoff)
        step = min(self.backoff_cap, self.backoff * 2.0 ** min(attempt - 1, 30))
        return step / 2 + random.uniform(0, step / 2)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        dropped = False  # a subscription was lost: the next one reports a gap
        try:
            while not self._stopped():
                try:
                    link = await self._open()
                except _Fatal as fatal:
                    self._fail(fatal.error)
                    return
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    attempt += 1
                    delay = self._delay(attempt, exc)
                    log.warning(
                        "%s: connect/subscribe failed (%s); retry %d in %.2f s",
                        self,
                        _describe(exc),
                        attempt,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                self.connects += 1
                if dropped:
                    self.reconnects += 1
                await self._switch(link)
                self._status(
                    StreamStatus(StreamState.RESUBSCRIBED, "reconnected", gap=True)
                    if dropped
                    else StreamStatus(StreamState.SUBSCRIBED)
                )
                assert self._ready is not None
                self._ready.set()
                try:
                    link = await self._supervise(link)
                except _Fatal as fatal:
                    self._fail(fatal.error)
                    return
                # The link is gone (closed, or its listenKey expired): reconnect.
                lived = loop.time() - link.opened_at
                reason = link.trouble.result() if link.trouble.done() else "closed"
                await link.close()
                if self._link is link:
                    self._link = None
                if self._stopped():
                    return
                dropped = True
                self._status(StreamStatus(StreamState.DISCONNECTED, link.close_reason or reason, gap=True))
                attempt = 0 if lived >= _STABLE_S else attempt + 1
                if reason != "renew" and attempt:
                    await asyncio.sleep(self._delay(attempt, None))
        except asyncio.CancelledError:
            if not self._closing:
                raise
        except Exception as exc:  # a bug here must not leave the program waiting forever
            log.exception("%s: stream loop failed", self)
            self._fail(exc)

    def _stopped(self) -> bool:
        return self._closing or self.error is not None

    async def _switch(self, link: _Link) -> None:
        self._link = link
        await self._on_connected(link)

    async def _supervise(self, link: _Link) -> _Link:
        """Serve ``link`` until it fails; move to a new connection on a shutdown notice or
        near the lifetime. Returns the link that failed."""
        loop = asyncio.get_running_loop()
        while True:
            remaining = link.opened_at + self.lifetime - loop.time()
            done, _ = await asyncio.wait({link.trouble}, timeout=max(0.0, remaining))
            reason = link.trouble.result() if done else "lifetime"
            if reason not in ("shutdown", "lifetime"):
                return link
            log.info("%s: moving to a new connection (%s)", type(self).__name__, reason)
            new = await self._replace(link)
            if new is None:
                return link
            link = new

    async def _replace(self, old: _Link) -> _Link | None:
        """Make before break: open and subscribe a new connection while ``old`` still
        delivers, then retire ``old``. None when ``old`` died first (a plain reconnect)."""
        attempt = 0
        while not old.reader.done():
            try:
                new = await self._open()
            except (_Fatal, asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:
                attempt += 1
                delay = self._delay(attempt, exc)
                log.warning("%s: replacement failed (%s); retry in %.2f s", self, _describe(exc), delay)
                await asyncio.sleep(delay)
                continue
            old.retired = True
            self.connects += 1
            self.rotations += 1
            await self._switch(new)
            await old.close()
            self._status(StreamStatus(StreamState.RESUBSCRIBED, "moved to a new connection"))
            return new
        return None

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            log.error("%s stopped: %s", type(self).__name__, error)
            self._status(StreamStatus(StreamState.FAILED, str(error)))
        self._end_iterators(error)
        if self._ready is not None:
            self._ready.set()

    # ------------------------------------------------------------------ delivery

    def _is_duplicate(self, data: bytes) -> bool:
        digest = _digest(data)
        if digest in self._recent_set:
            self.duplicates += 1
            return True
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(digest)
        self._recent_set.add(digest)
        return False

    def _deliver(self, event: Event) -> None:
        self.events += 1
        tracker = self.tracker
        if tracker is not None and isinstance(event, UserEvent):
            try:
                tracker.on_event(event)
            except Exception:
                self.callback_errors += 1
                log.exception("order tracker failed on %s", event.event_type)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                self.callback_errors += 1
                log.exception("user-data callback %r failed", callback)
        for iterator in list(self._iterators):
            queue = iterator._queue
            if queue.full():
                # A stalled reader must not hold the stream: drop its oldest event.
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    def _status(self, status: StreamStatus) -> None:
        for callback in list(self._status_callbacks):
            try:
                callback(status)
            except Exception:
                self.callback_errors += 1
                log.exception("user-data status callback %r failed", callback)

    def _end_iterators(self, item: object) -> None:
        for iterator in list(self._iterators):
            queue = iterator._queue
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)
        self._iterators.clear()

    def _now_ms(self, clock: ServerClock | Callable[[], int] | None) -> int:
        if clock is None:
            return time.time_ns() // 1_000_000
        if callable(clock):
            return int(clock())
        return clock.now_ms()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _final(error: BinanceError) -> bool:
    """Errors retrying cannot fix: a refused key or signature, a malformed request."""
    if isinstance(error, TimestampError):
        return False
    return isinstance(error, AuthenticationError | RequestError)


class SpotUserData(UserDataStream):
    """Spot user data over the WebSocket API (binance-spec §8.1, §9).

    ``key``: the account's ``tickbook.signing`` key. ``url``: the WebSocket API URL (the local
    exchange's ``ws://127.0.0.1:PORT/ws-api/v3``); default that of ``environment``
    (``"production"``, ``"testnet"``, ``"demo"``). ``logon``: authenticate the connection with
    ``session.logon`` and subscribe with ``userDataStream.subscribe`` (Ed25519 keys only);
    default ``userDataStream.subscribe.signature``, which works with any key.
    ``clock``: a ``ServerClock`` (or a ``() -> epoch ms``) for the signed timestamps.
    ``recv_window_ms``: sent as ``recvWindow`` when given. ``tracker``: fed every event.
    ``session``: an aiohttp session to use (not closed here); default one of its own.
    ``lifetime``: seconds after which the connection is replaced (before the exchange's
    24 h cut). ``idle_timeout``: seconds of silence (no ping either) after which the
    connection is taken for dead. ``backoff``/``backoff_cap``: reconnection delays.
    ``queue_size``: events buffered per async iterator.
    """

    market = Market.SPOT

    def __init__(
        self,
        key: SigningKey,
        url: str | None = None,
        *,
        environment: Environment | str = Environment.PRODUCTION,
        logon: bool = False,
        clock: ServerClock | Callable[[], int] | None = None,
        recv_window_ms: int | None = None,
        tracker: OrderTracker | None = None,
        on_event: Callable[[Event], Any] | None = None,
        on_status: Callable[[StreamStatus], Any] | None = None,
        session: aiohttp.ClientSession | None = None,
        lifetime: float = LIFETIME_S - ROTATE_MARGIN_S,
        idle_timeout: float = 75.0,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(
            tracker=tracker,
            on_event=on_event,
            on_status=on_status,
            idle_timeout=idle_timeout,
            lifetime=lifetime,
            backoff=backoff,
            backoff_cap=backoff_cap,
            queue_size=queue_size,
        )
        if logon and not isinstance(key, Ed25519Key):
            raise ValueError(
                "session.logon takes Ed25519 keys only (§9); use the default subscribe.signature"
            )
        if url is None:
            url = spot_ws_api_url(environment)
        elif not url.startswith(("ws://", "wss://")):
            raise ValueError(f"WebSocket API URL {url!r} must start with ws:// or wss://")
        self.key = key
        self.url = url
        self.logon = logon
        self.clock = clock
        self.recv_window_ms = recv_window_ms
        self._use_session(session)
        self._resubscribing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"SpotUserData({self.url}, {'logon' if self.logon else 'subscribe.signature'})"

    @property
    def subscription_id(self) -> int | None:
        return self._link.subscription_id if self._link is not None else None

    async def _open(self) -> _Link:
        link = _Link(self, await self._connect(self.url))
        try:
            await self._subscribe(link)
        except BaseException:
            await link.close()
            raise
        return link

    def _signed(self, params: Mapping[str, Any] | None = None) -> dict[str, object]:
        values: dict[str, object] = dict(params or {})
        values["timestamp"] = self._now_ms(self.clock)
        if self.recv_window_ms is not None:
            values["recvWindow"] = self.recv_window_ms
        return sign_ws(self.key, values)

    async def _call(self, link: _Link, method: str, params: Callable[[], Mapping[str, Any]]) -> Any:
        """A request with the recoveries its errors allow: -1021 resyncs the clock and
        retries once; final errors become ``_Fatal``."""
        for attempt in (1, 2):
            try:
                return await link.request(method, params(), self.market)
            except TimestampError:
                sync = getattr(self.clock, "sync", None)
                if attempt == 2 or sync is None:
                    raise
                log.warning("%s: -1021, resyncing the server clock", method)
                await sync(reset=True)
            except BinanceError as exc:
                if exc.code == -2035:
                    raise  # handled by the caller
                if _final(exc):
                    raise _Fatal(exc) from exc
                raise
        raise AssertionError("unreachable")

    async def _subscribe(self, link: _Link) -> None:
        """Authenticate (logon mode) and subscribe on ``link`` (§8.1)."""
        for attempt in (1, 2):
            try:
                if self.logon:
                    await self._call(link, "session.logon", self._signed)
                    result = await self._call(link, "userDataStream.subscribe", dict)
                else:
                    result = await self._call(link, "userDataStream.subscribe.signature", self._signed)
            except BinanceError as exc:
                if exc.code != -2035:
                    raise
                if attempt == 2:
                    raise _Fatal(exc) from exc
                # One subscription per account per connection: ours is active but its id was
                # lost. End every subscription of the connection, then subscribe again.
                link.subscription_id = -1  # the terminations that follow are not ours to act on
                with contextlib.suppress(BinanceError):
                    await link.request("userDataStream.unsubscribe", {}, self.market)
                continue
            subscription = result.get("subscriptionId") if isinstance(result, Mapping) else None
            if not isinstance(subscription, int):
                raise BinanceError(
                    f"unexpected subscribe answer: {result!r}", endpoint="userDataStream.subscribe"
                )
            link.subscription_id = subscription
            return

    def _resubscribe(self, link: _Link) -> None:
        """Our subscription ended but the connection lives: subscribe again on it."""
        if link.resubscribing:
            return
        link.resubscribing = True
        self._status(StreamStatus(StreamState.DISCONNECTED, "subscription terminated", gap=True))

        async def again() -> None:
            try:
                await self._subscribe(link)
                log.info("%s: resubscribed on the same connection (id %s)", self, link.subscription_id)
                self._status(StreamStatus(StreamState.RESUBSCRIBED, "subscription renewed", gap=True))
            except _Fatal as fatal:
                self._fail(fatal.error)
                link.signal("closed")
            except Exception as exc:
                log.warning("%s: resubscribe failed (%s): reconnecting", self, _describe(exc))
                link.signal("closed")
            finally:
                link.resubscribing = False

        task = asyncio.create_task(again())
        self._resubscribing.add(task)
        task.add_done_callback(self._resubscribing.discard)

    def _on_frame(self, link: _Link, data: bytes) -> None:
        try:
            frame = _frame_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.decode_errors += 1
            log.warning("%s: undecodable frame dropped (%d bytes)", self, len(data))
            return
        if not frame.event:
            if link.on_answer(frame):
                return
            if frame.status == 401 or (frame.error is not None and frame.error.get("code") == -2015):
                # §9: the session's key was revoked (answer with a null id): nothing will flow.
                self._fail(
                    error_from_payload(frame.status, frame.error, endpoint="session", market=self.market)
                )
                link.signal("closed")
                return
            log.debug("%s: unmatched answer %r", self, frame.id)
            return
        raw = bytes(frame.event)
        try:
            _, event = decode_spot_frame(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.decode_errors += 1
            log.warning("%s: malformed event dropped: %s", self, exc)
            return
        # Control events act on the link they came on, even when another link delivered the
        # same bytes first (a shutdown notice sent to every connection in one millisecond).
        if isinstance(event, ServerShutdown):
            link.signal("shutdown")  # §3: reconnect now, no fixed lead time
        elif isinstance(event, EventStreamTerminated):
            ours = frame.subscriptionId is None or frame.subscriptionId == link.subscription_id
            if ours and link.subscription_id != -1 and not self._closing:
                link.subscription_id = None
                self._resubscribe(link)
        if not self._is_duplicate(raw):
            self._deliver(event)

    async def _cleanup(self) -> None:
        for task in list(self._resubscribing):
            task.cancel()
        await self._close_session()


class FuturesUserData(UserDataStream):
    """USD-M (or COIN-M) user data over a listenKey stream (binance-spec §8.2).

    ``client``: the market's ``RestClient`` (with an API key: the listenKey endpoints take
    the key only, no signature). ``stream_base_url``: the stream host (the local exchange's
    ``ws://127.0.0.1:PORT``); default the one that goes with the client's documented REST
    host. ``keepalive``: seconds between two ``PUT`` extensions (a key lives 60 min).
    ``session``: an aiohttp session for the WebSocket (not closed here); default the
    client's pooled session, so the listenKey requests and the stream share one connection
    pool (close the stream before the client). Other options as ``SpotUserData``
    (``idle_timeout`` is longer: the server pings every 3 min and waits 10 min for the pong).
    """

    def __init__(
        self,
        client: RestClient,
        stream_base_url: str | None = None,
        *,
        keepalive: float = KEEPALIVE_S,
        session: aiohttp.ClientSession | None = None,
        tracker: OrderTracker | None = None,
        on_event: Callable[[Event], Any] | None = None,
        on_status: Callable[[StreamStatus], Any] | None = None,
        lifetime: float = LIFETIME_S - ROTATE_MARGIN_S,
        idle_timeout: float = 11 * 60.0,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(
            tracker=tracker,
            on_event=on_event,
            on_status=on_status,
            idle_timeout=idle_timeout,
            lifetime=lifetime,
            backoff=backoff,
            backoff_cap=backoff_cap,
            queue_size=queue_size,
        )
        if not client.market.is_futures:
            raise ValueError("FuturesUserData needs a futures client; spot user data is SpotUserData")
        if keepalive <= 0:
            raise ValueError(f"keepalive must be positive, got {keepalive}")
        self.market = client.market
        self.client = client
        base = stream_base_url if stream_base_url is not None else futures_stream_base(client)
        if not base.startswith(("ws://", "wss://")):
            raise ValueError(f"stream base URL {base!r} must start with ws:// or wss://")
        self.stream_base = base.rstrip("/")
        # USD-M serves user data on the /private route since 2026-04-23 (§3); COIN-M has none.
        self.route = "/private/ws" if self.market is Market.USDM else "/ws"
        self.path = f"{client.prefix}/listenKey"
        self.keepalive = keepalive
        self.listen_key: str | None = None
        self.keepalives = 0  # PUTs that extended the key
        self.renewals = 0  # keys re-created after expiry
        self._keepalive_task: asyncio.Task[None] | None = None
        self._session = session
        self._own_session = False  # the given session or the client's: never closed here

    def __repr__(self) -> str:
        return f"FuturesUserData({self.stream_base}{self.route}, {self.market.value})"

    def _http(self) -> aiohttp.ClientSession:
        """The given session, else the client's (read each time: the client makes a new
        one if it was closed and used again)."""
        return self._session if self._session is not None else self.client.session

    async def _listen_key(self, method: str) -> str | None:
        try:
            answer = await self.client.request_json(method, self.path, api_key_only=True)
        except BinanceError as exc:
            if method == "POST" and _final(exc):
                raise _Fatal(exc) from exc
            raise
        key = answer.get("listenKey") if isinstance(answer, Mapping) else None
        return key if isinstance(key, str) and key else None

    async def _open(self) -> _Link:
        # POST returns the account's live key extended, or a new one when it expired.
        key = await self._listen_key("POST")
        if key is None:
            raise BinanceError("POST listenKey answered without a key", method="POST", endpoint=self.path)
        if key != self.listen_key and self.listen_key is not None:
            self.renewals += 1
        self.listen_key = key
        return _Link(self, await self._connect(f"{self.stream_base}{self.route}/{key}"))

    async def _on_connected(self, link: _Link) -> None:
        if self._keepalive_task is None or self._keepalive_task.done():
            self._keepalive_task = asyncio.create_task(self._keep_alive(), name="listenKey keepalive")

    async def _keep_alive(self) -> None:
        """``PUT`` every ``keepalive`` seconds; -1125 (the key is gone) makes a new key."""
        while True:
            await asyncio.sleep(self.keepalive)
            try:
                await self._listen_key("PUT")
                self.keepalives += 1
            except BinanceError as exc:
                if exc.code == -1125:
                    log.warning("%s: the listenKey expired; creating a new one", self)
                    self._renew()
                else:
                    log.warning("%s: listenKey keepalive failed (%s)", self, _describe(exc))
            except Exception as exc:
                log.warning("%s: listenKey keepalive failed (%s)", self, _describe(exc))

    def _renew(self) -> None:
        link = self._link
        if link is not None:
            link.signal("renew")

    def _on_frame(self, link: _Link, data: bytes) -> None:
        try:
            event = decode_user_event(data, self.market)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.decode_errors += 1
            log.warning("%s: malformed event dropped: %s", self, exc)
            return
        if isinstance(event, ListenKeyExpired) and event.listen_key in (None, self.listen_key):
            # §8.2: nothing more arrives on this key; a new one needs a new connection. Acted
            # on per link, before the copies of an overlap are dropped.
            link.signal("renew")
        if not self._is_duplicate(data):
            self._deliver(event)

    async def _cleanup(self) -> None:
        task = self._keepalive_task
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        if self.listen_key is not None:
            try:
                await self._listen_key("DELETE")
            except Exception as exc:
                log.warning("%s: could not delete the listenKey (%s)", self, _describe(exc))
            self.listen_key = None
        await self._close_session()
