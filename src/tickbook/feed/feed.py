"""``DepthFeed``: many local books kept in sync over the network, with callbacks.

Structure (docs/feed.md has the whole story):

- every symbol has a ``DepthSlot`` (``tickbook._router``): its book, its subscribers and
  its counters. Slots outlive connections.
- symbols are packed onto ``StreamConnection``s, up to the exchange's streams per
  connection; each connection has a router that applies its frames synchronously.
- this class is the slow path: it answers the routers' hooks (a first buffered event or a
  gap asks for a snapshot, through the weight-aware ``SnapshotScheduler``), reconnects lost
  connections with backoff and jitter under the connection-attempt limit, reconnects
  silent ones, and replaces connections before the exchange cuts them (``serverShutdown``,
  the 24 h lifetime): the replacement is opened first, takes every book over at the first
  event that continues it, and only then is the old one closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import aiohttp
import msgspec

from tickbook._types import Applied, Market, OutOfSyncReason, SnapshotResult, SyncState
from tickbook.budget import RequestBudget
from tickbook.feed.connection import AttemptLimiter, ControlError, Pacer, StreamConnection
from tickbook.feed.endpoints import Endpoints, Environment, depth_route, depth_stream
from tickbook.feed.snapshots import Snapshot, SnapshotScheduler
from tickbook.feed.warm_up import HotPathWarmUp
from tickbook.limits import depth_limit as normalise_depth_limit
from tickbook.limits import weight

log = logging.getLogger(__name__)

__all__ = ["BestBidAsk", "DepthFeed", "FeedError", "StateEvent", "StateKind"]


class FeedError(RuntimeError):
    """The feed cannot do what was asked (unknown symbol, not started, ...)."""


class StateKind(enum.StrEnum):
    SYNCED = "synced"  # the book passed the snapshot bridge; every event since is continuous
    OUT_OF_SYNC = "out_of_sync"  # a rule failed (reason says which); last good book still readable
    RESYNCING = "resyncing"  # a snapshot was requested to bring the book back
    RECONNECTING = "reconnecting"  # the book's connection was lost
    RECONNECTED = "reconnected"  # its connection is back (the book resyncs next)
    FAILED = "failed"  # the exchange refused the symbol (no retry)


class StateEvent(msgspec.Struct, frozen=True):
    """A change in a book's life, for ``on_state`` callbacks and ``state_events()``."""

    symbol: str
    kind: StateKind
    state: SyncState  # the book's state when the event was made
    reason: OutOfSyncReason
    detail: str
    last_update_id: int
    time_ns: int


class BestBidAsk(msgspec.Struct, frozen=True):
    """A copy of a book's top, exact decimal text (for ``bbo_updates()``)."""

    symbol: str
    synced: bool
    last_update_id: int
    bid_price: str | None
    bid_qty: str | None
    ask_price: str | None
    ask_qty: str | None
    time_ns: int

    @classmethod
    def of(cls, book: Any) -> BestBidAsk:
        bid = book.best_bid_str()
        ask = book.best_ask_str()
        return cls(
            book.symbol,
            book.synced,
            book.last_update_id,
            bid[0] if bid else None,
            bid[1] if bid else None,
            ask[0] if ask else None,
            ask[1] if ask else None,
            time.time_ns(),
        )


def _implementation(name: str | None) -> tuple[type, Any]:
    """(OrderBook class, router module) of the C core or the Python reference."""
    import tickbook

    choice = name or tickbook.IMPLEMENTATION
    if choice == "c":
        from tickbook import _book, _router

        return _book.OrderBook, _router
    if choice == "py":
        from tickbook import _book_py, _router_py

        return _book_py.OrderBook, _router_py
    raise ValueError(f"implementation must be 'c' or 'py', got {name!r}")


class _Subscribers:
    """Feed-wide callbacks plus per-symbol ones; rebuilt into each slot's tuples on change."""

    def __init__(self) -> None:
        self.bbo: list[tuple[Callable[[Any], object], frozenset[str] | None]] = []
        self.update: list[tuple[Callable[[Any], object], frozenset[str] | None]] = []
        self.listeners: list[tuple[Any, frozenset[str] | None]] = []

    @staticmethod
    def pick(entries: Sequence[tuple[Any, frozenset[str] | None]], symbol: str) -> list[Any]:
        return [cb for cb, only in entries if only is None or symbol in only]


class _Channel:
    """An async iterator over items pushed by the feed, optionally keeping only the latest
    item per key (``conflate``): a slow consumer sees the newest BBO of each symbol, never a
    growing backlog."""

    def __init__(self, close: Callable[[_Channel], None], conflate: bool, maxsize: int) -> None:
        self._close = close
        self._conflate = conflate
        self._latest: dict[str, Any] = {}
        self._queue: deque[Any] = deque(maxlen=maxsize)
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        self.closed = False

    def push(self, key: str, item: Any) -> None:
        if self._conflate:
            self._latest.pop(key, None)  # re-insert: dict order is arrival order
            self._latest[key] = item
        else:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self.closed:
                raise StopAsyncIteration
            if self._latest:
                key = next(iter(self._latest))
                return self._latest.pop(key)
            if self._queue:
                return self._queue.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close(self)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)


DEFAULT_DEPTH: Final = {Market.SPOT: 5000, Market.USDM: 1000, Market.COINM: 1000}


class DepthFeed:
    """Local order books for a set of symbols on one market, kept in sync over WebSockets.

    ``market``: ``"spot"``, ``"usdm"`` or ``"coinm"``. Where: ``environment``
    (``"production"`` or ``"testnet"``), or ``rest_url`` + ``stream_url`` for any other host
    (the local exchange). ``speed``: the depth stream's cadence (``"100ms"``; None for the
    market's default). ``depth_limit``: snapshot depth (default the market's maximum), per
    symbol in ``depth_limits``. ``coalesce``: deliver ``on_bbo`` once per socket read rather
    than once per message. ``implementation``: ``"c"`` (the Cython core and router) or
    ``"py"`` (the pure-Python reference), default whichever ``tickbook`` uses. ``budget``:
    a ``RequestBudget`` shared with the other REST callers of the same host (a
    ``tickbook.trading.RestClient``'s ``client.budget``), so snapshots and other requests spend
    one weight count; default a budget of the feed's own (``weight_headroom``).
    ``busy_poll``: keep the event loop from ever sleeping between messages, for the lowest
    latency at low and middle message rates; it spends a whole CPU core (docs/feed.md, "Busy
    polling"). Off by default. While busy polling with the Cython core, the hot path is run on a
    made-up frame for a private book after every ``busy_poll_warm_up`` seconds (100 µs)
    without a real message (None: never), which touches nothing of the feed's.

    Use as ``async with DepthFeed(...) as feed:`` or ``await feed.start()`` /
    ``await feed.stop()``. Callbacks run on the event loop inside the frame callback: keep
    them short; one that raises is logged and counted and never stops the feed.
    """

    def __init__(
        self,
        market: Market | str = Market.SPOT,
        symbols: Iterable[str] = (),
        *,
        environment: Environment | str = Environment.PRODUCTION,
        rest_url: str | None = None,
        stream_url: str | None = None,
        speed: str | None = "100ms",
        depth_limit: int | None = None,
        depth_limits: Mapping[str, int] | None = None,
        priorities: Mapping[str, int] | None = None,
        streams_per_connection: int | None = None,
        coalesce: bool = False,
        implementation: str | None = None,
        max_snapshots_in_flight: int = 4,
        weight_headroom: float = 0.8,
        silence_timeout: float = 30.0,
        max_connection_age: float | None = None,
        handover_timeout: float = 10.0,
        reconnect_base: float = 0.25,
        reconnect_cap: float = 30.0,
        control_rate: float | None = None,
        buffer_limit: int = 10_000,
        fetch_exchange_info: bool = True,
        session: aiohttp.ClientSession | None = None,
        budget: RequestBudget | None = None,
        busy_poll: bool = False,
        busy_poll_warm_up: float | None = 100e-6,
    ) -> None:
        self.market = Market.parse(market)
        if budget is not None and budget.market is not self.market:
            raise ValueError(f"the budget is {budget.market.value}'s, not {self.market.value}'s")
        if (rest_url is None) != (stream_url is None):
            raise ValueError("give both rest_url and stream_url, or neither")
        self.endpoints = (
            Endpoints.custom(self.market, rest_url, stream_url)
            if rest_url is not None and stream_url is not None
            else Endpoints.of(self.market, environment)
        )
        limits = self.endpoints.limits
        self.speed = speed
        self._default_depth = normalise_depth_limit(self.market, depth_limit or DEFAULT_DEPTH[self.market])
        self._depth_limits = {
            s.upper(): normalise_depth_limit(self.market, n) for s, n in (depth_limits or {}).items()
        }
        self._priorities = {s.upper(): p for s, p in (priorities or {}).items()}
        per_connection = streams_per_connection or limits.streams_per_connection
        if not 1 <= per_connection <= limits.streams_per_connection:
            raise ValueError(
                f"streams_per_connection must be 1..{limits.streams_per_connection}, got {per_connection}"
            )
        self.streams_per_connection = per_connection
        self.coalesce = coalesce
        self._book_cls, self._router_mod = _implementation(implementation)
        self.implementation = "c" if self._router_mod.__name__.endswith("_router") else "py"
        self._max_in_flight = max_snapshots_in_flight
        self._headroom = weight_headroom
        self.silence_timeout = silence_timeout
        self.max_connection_age = (
            max_connection_age if max_connection_age is not None else limits.lifetime_s - 600.0
        )
        self.handover_timeout = handover_timeout
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        self._control_rate = control_rate or max(1.0, limits.inbound_per_s - 2.0)
        self._buffer_limit = buffer_limit
        self._fetch_info = fetch_exchange_info
        self._own_session = session is None
        self._session = session
        self._attempts = AttemptLimiter(int(limits.attempts * 0.9), limits.attempts_window_s)
        if busy_poll_warm_up is not None and not busy_poll_warm_up > 0:
            raise ValueError(f"busy_poll_warm_up must be positive seconds or None, got {busy_poll_warm_up!r}")
        self.busy_poll = bool(busy_poll)
        self.busy_poll_warm_up = busy_poll_warm_up
        self._busy_polls = 0  # loop iterations the busy poller has seen (busy_poll only)
        self._warm_up: HotPathWarmUp | None = None  # made at start when busy polling

        self._symbols: list[str] = list(dict.fromkeys(s.upper() for s in symbols))
        self._slots: dict[str, Any] = {}  # symbol -> DepthSlot
        self._stream_slots: dict[str, Any] = {}  # stream name -> StreamSlot
        self._connections: list[StreamConnection] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subs = _Subscribers()
        self._state_callbacks: list[Callable[[StateEvent], object]] = []
        self._channels: set[_Channel] = set()
        self._state_channels: set[_Channel] = set()
        self._listed: set[str] = set()  # symbols exchangeInfo lists
        # A budget shared with other REST callers of the same host (a RestClient's): one IP,
        # one weight count. Without one the feed makes its own at start().
        self._shared_budget = budget
        self._budget: RequestBudget | None = budget
        self._snapshots: SnapshotScheduler | None = None
        self._started = False
        self._stopping = False
        self._synced_once: set[str] = set()
        self._delivered: set[str] = set()  # symbols whose subscribers have seen a synced book
        self._callback_error_log_at = 0.0
        self.errors: deque[str] = deque(maxlen=100)  # recent problems, newest last
        self.counters = dict.fromkeys(
            (
                "gaps",
                "resyncs",
                "reconnects",
                "silent_reconnects",
                "replacements",
                "handovers",
                "server_shutdowns",
                "callback_errors",
                "bad_messages",
                "unknown_messages",
                "snapshot_errors",
            ),
            0,
        )
        self._per_symbol: dict[str, dict[str, int]] = {}

    # ------------------------------------------------------------------ public API

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def connections(self) -> list[StreamConnection]:
        return list(self._connections)

    @property
    def budget(self) -> RequestBudget | None:
        return self._budget

    def book(self, symbol: str) -> Any:
        """The live book of ``symbol`` (check ``book.synced`` before trusting it)."""
        try:
            return self._slots[symbol.upper()].book
        except KeyError:
            raise FeedError(f"{symbol!r} is not subscribed") from None

    @property
    def books(self) -> dict[str, Any]:
        return {s: slot.book for s, slot in self._slots.items()}

    def on_bbo(
        self, callback: Callable[[Any], object], symbols: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """``callback(book)`` whenever a book's best bid or ask (price or quantity) changed,
        once per applied message (or per socket read with ``coalesce``). Returns a function
        that unsubscribes it."""
        return self._add(self._subs.bbo, callback, symbols)

    def on_update(
        self, callback: Callable[[Any], object], symbols: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """``callback(book)`` after every applied message."""
        return self._add(self._subs.update, callback, symbols)

    def add_listener(self, listener: Any, symbols: Iterable[str] | None = None) -> Callable[[], None]:
        """A Cython ``tickbook._router.BookListener``: its ``on_bbo_c``/``on_update_c`` are
        called from the router in C, with no Python call in between."""
        if self.implementation != "c":
            raise FeedError("Cython listeners need the Cython core (implementation='c')")
        return self._add(self._subs.listeners, listener, symbols)

    def on_state(self, callback: Callable[[StateEvent], object]) -> Callable[[], None]:
        """``callback(StateEvent)`` for synced, out of sync, resyncing, reconnecting, reconnected."""
        self._state_callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._state_callbacks.remove(callback)

        return remove

    def bbo_updates(
        self, symbols: Iterable[str] | None = None, *, conflate: bool = True, maxsize: int = 10_000
    ) -> AsyncIterator[BestBidAsk]:
        """``async for bbo in feed.bbo_updates():`` a ``BestBidAsk`` per change. With
        ``conflate`` (default) a slow consumer gets the latest per symbol, never a backlog."""

        def close(ch: _Channel) -> None:
            remove()
            self._channels.discard(ch)

        channel = _Channel(close, conflate, maxsize)
        self._channels.add(channel)
        # The symbol filter is the subscription's: the router only calls push for those books.
        remove = self.on_bbo(lambda book: channel.push(book.symbol, BestBidAsk.of(book)), symbols)
        return channel

    def state_events(self, maxsize: int = 10_000) -> AsyncIterator[StateEvent]:
        """``async for event in feed.state_events():`` every ``StateEvent``, in order."""
        channel = _Channel(self._state_channels.discard, False, maxsize)
        self._state_channels.add(channel)
        return channel

    async def start(self) -> None:
        """Read exchangeInfo (weight limits, symbols), open the connections, start syncing."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        if self._shared_budget is not None:
            self._budget = self._shared_budget
        else:
            self._budget = RequestBudget(self.market, headroom=self._headroom)
        self._snapshots = SnapshotScheduler(
            self._session, self.endpoints.rest, self.market, self._budget, max_in_flight=self._max_in_flight
        )
        try:
            if self._fetch_info:
                await self._load_exchange_info(self._symbols)
            symbols, self._symbols = self._symbols, []
            await self._add_symbols(symbols)
        except BaseException:
            await self.stop()
            raise
        self._spawn(self._watchdog())
        if self.busy_poll:
            if self.busy_poll_warm_up is not None and self.implementation == "c" and self._warm_up is None:
                self._warm_up = HotPathWarmUp(self._book_cls, self._router_mod, self.market, self.speed)
            self._spawn(self._busy_poll()).set_name(f"tickbook-busy-poll-{id(self):x}")

    async def stop(self) -> None:
        """Close every connection and stop every task; books stay readable."""
        self._stopping = True
        for connection in self._connections:
            connection.close("client stop")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for connection in self._connections:
            connection.abort()
        self._connections.clear()
        if self._snapshots is not None:
            await self._snapshots.close()
        for channel in list(self._channels) + list(self._state_channels):
            channel.close()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
        self._started = False

    async def __aenter__(self) -> DepthFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def subscribe(
        self, symbols: Iterable[str], *, depth_limit: int | None = None, priority: int = 0
    ) -> None:
        """Add books at runtime (paced SUBSCRIBEs on existing connections, or new ones)."""
        wanted = [s.upper() for s in symbols if s.upper() not in self._slots]
        for symbol in wanted:
            if depth_limit is not None:
                self._depth_limits[symbol] = normalise_depth_limit(self.market, depth_limit)
            self._priorities.setdefault(symbol, priority)
        if not self._started:
            self._symbols.extend(s for s in wanted if s not in self._symbols)
            return
        await self._add_symbols(wanted)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Drop books: UNSUBSCRIBE, cancel their snapshots; their last state stays in ``stats``."""
        for symbol in [s.upper() for s in symbols]:
            slot = self._slots.pop(symbol, None)
            if slot is None:
                continue
            self._symbols.remove(symbol)
            if self._snapshots is not None:
                self._snapshots.cancel(symbol)
            slot.set_callbacks((), (), ())
            for connection in self._connections:
                if slot.stream in connection.streams:
                    connection.router.remove(slot.stream)
                    await self._control(connection, "unsubscribe", [slot.stream])

    async def subscribe_stream(self, stream: str, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Another public stream (``btcusdt@aggTrade``, ``btcusdt@kline_1m``, ...) on the
        same connections; ``callback`` gets each message as a typed Struct (exact decimals)."""
        from tickbook import streams as stream_types

        name = stream_types.validate_stream_name(self.market, stream)
        slot = self._stream_slots.get(name)
        if slot is None:
            decoder = stream_types.stream_decoder(self.market, name, combined=True)
            if decoder is None:
                raise FeedError(f"{name!r} is a diff-depth stream: subscribe its symbol instead")
            slot = self._router_mod.StreamSlot(name, decoder, self)
            self._stream_slots[name] = slot
            route = stream_types.usdm_route(name) if self.market is Market.USDM else ""
            if self._started:
                await self._place([(name, slot)], route)
        slot.set_callbacks((*slot.callbacks, callback))

        def remove() -> None:
            slot.set_callbacks(tuple(cb for cb in slot.callbacks if cb is not callback))

        return remove

    async def unsubscribe_stream(self, stream: str) -> None:
        slot = self._stream_slots.pop(stream, None)
        if slot is None:
            return
        slot.set_callbacks(())
        for connection in self._connections:
            if stream in connection.streams:
                connection.router.remove(stream)
                await self._control(connection, "unsubscribe", [stream])

    async def wait_synced(self, symbols: Iterable[str] | None = None, timeout: float | None = None) -> None:
        """Return when every named book (default: all) is synced; TimeoutError otherwise."""
        names = [s.upper() for s in symbols] if symbols is not None else None

        async def poll() -> None:
            while True:
                wanted = names if names is not None else list(self._slots)
                if all(s in self._slots and self._slots[s].book.synced for s in wanted):
                    return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), timeout)

    def stats(self) -> dict[str, Any]:
        """Counters and latency percentiles, per symbol and per connection, plus feed totals."""
        symbols = {}
        for symbol, slot in self._slots.items():
            book = slot.book
            bid = book.best_bid_str()
            ask = book.best_ask_str()
            extra = self._per_symbol.get(symbol, {})
            symbols[symbol] = {
                "state": book.state.name.lower(),
                "reason": book.reason.name.lower(),
                "synced": book.synced,
                "last_update_id": book.last_update_id,
                "best_bid": list(bid) if bid else None,
                "best_ask": list(ask) if ask else None,
                "messages": slot.messages,
                "bytes": slot.bytes,
                "applied": book.stats()["applied"],
                "bbo_changes": book.stats()["bbo_changes"],
                "gaps": extra.get("gaps", 0),
                "resyncs": extra.get("resyncs", 0),
                "reconnects": extra.get("reconnects", 0),
                "snapshots": book.stats()["snapshots"],
                "bad_messages": slot.bad_messages,
                "callback_errors": slot.callback_errors,
                "handovers": slot.handovers,
                "duplicates": slot.duplicates,
                "event_latency_ns": slot.event_latency.summary(),
                "callback_latency_ns": slot.callback_latency.summary(),
            }
        connections = [
            {
                "id": c.id,
                "route": c.route,
                "state": c.state,
                "streams": len(c.streams),
                "messages": c.router.messages,
                "bytes": c.router.bytes,
                "unrouted": c.router.unrouted,
                "connects": c.connects,
                "control_sent": c.control_sent,
            }
            for c in self._connections
        ]
        streams = {
            name: {
                "messages": s.messages,
                "bytes": s.bytes,
                "bad_messages": s.bad_messages,
                "callback_errors": s.callback_errors,
                "callback_latency_ns": s.callback_latency.summary(),
            }
            for name, s in self._stream_slots.items()
        }
        return {
            "market": self.market.value,
            "implementation": self.implementation,
            "symbols": symbols,
            "streams": streams,
            "connections": connections,
            "totals": dict(self.counters),
            "snapshots": self._snapshots.stats() if self._snapshots is not None else {},
        }

    # -------------------------------------------------------------- subscriptions

    def _add(
        self, entries: list[tuple[Any, frozenset[str] | None]], item: Any, symbols: Iterable[str] | None
    ) -> Callable[[], None]:
        entry = (item, frozenset(s.upper() for s in symbols) if symbols is not None else None)
        entries.append(entry)
        self._refresh_callbacks()

        def remove() -> None:
            with contextlib.suppress(ValueError):
                entries.remove(entry)
                self._refresh_callbacks()

        return remove

    def _refresh_callbacks(self) -> None:
        for symbol, slot in self._slots.items():
            self._set_slot_callbacks(symbol, slot)

    def _set_slot_callbacks(self, symbol: str, slot: Any) -> None:
        slot.set_callbacks(
            self._subs.pick(self._subs.bbo, symbol),
            self._subs.pick(self._subs.update, symbol),
            self._subs.pick(self._subs.listeners, symbol),
        )

    async def _load_exchange_info(self, symbols: list[str]) -> None:
        """Weight limits for the budget; symbols the exchange does not list are refused."""
        assert self._session is not None
        assert self._budget is not None
        params = {}
        if self.market is Market.SPOT and symbols:
            params["symbols"] = msgspec.json.encode(symbols).decode()
        url = self.endpoints.rest + self.endpoints.exchange_info_path
        await self._budget.acquire(weight(self.market, "GET", self.endpoints.exchange_info_path, params))
        try:
            async with self._session.get(url, params=params) as response:
                self._budget.observe(response.status, response.headers)
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FeedError(f"exchangeInfo from {url}: {exc}") from exc
        if response.status != 200:
            asked = f" (asked for {', '.join(symbols)})" if symbols else ""
            raise FeedError(f"exchangeInfo from {url}: HTTP {response.status}{asked}: {body[:200]!r}")
        try:
            info = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise FeedError(f"exchangeInfo from {url}: not JSON ({exc}): {body[:120]!r}") from None
        if info.get("rateLimits"):
            self._budget.configure(info["rateLimits"])
        self._listed.update(entry["symbol"] for entry in info.get("symbols", []))
        unknown = [s for s in symbols if s not in self._listed]
        if unknown:
            raise FeedError(f"not listed on {self.market.value}: {', '.join(unknown)}")

    async def _add_symbols(self, symbols: list[str]) -> None:
        placed = []
        for symbol in symbols:
            if symbol in self._slots:
                continue
            # Scales come from the decimals the exchange writes (always its full precision),
            # not from exchangeInfo's tick and step: those change over a symbol's life, and a
            # finer tick announced after the book started must not make events unparsable.
            book = self._book_cls(symbol, self.market, buffer_limit=self._buffer_limit)
            slot = self._router_mod.DepthSlot(book, depth_stream(symbol, self.speed), self)
            self._slots[symbol] = slot
            self._symbols.append(symbol)
            self._per_symbol.setdefault(symbol, {"gaps": 0, "resyncs": 0, "reconnects": 0})
            self._set_slot_callbacks(symbol, slot)
            placed.append((slot.stream, slot))
        if placed:
            await self._place(placed, depth_route(self.market))

    async def _place(self, items: list[tuple[str, Any]], route: str) -> None:
        """Put streams on connections of ``route`` with room, opening new ones as needed."""
        new_connections: list[StreamConnection] = []
        pending: dict[StreamConnection, list[str]] = {}
        for name, slot in items:
            connection = next(
                (
                    c
                    for c in self._connections
                    if c.route == route and not c.replaced and len(c.streams) < self.streams_per_connection
                ),
                None,
            )
            if connection is None:
                connection = self._new_connection(route)
                self._connections.append(connection)
                new_connections.append(connection)
            connection.router.add(slot)
            if connection in new_connections:
                connection.streams.append(name)
            else:
                pending.setdefault(connection, []).append(name)
        for connection, names in pending.items():
            await self._control(connection, "subscribe", names)
        for connection in new_connections:
            self._spawn(self._run(connection))

    def _new_connection(self, route: str, router: Any = None) -> StreamConnection:
        return StreamConnection(
            self.endpoints,
            route,
            router if router is not None else self._router_mod.Router(self, self.coalesce),
            pacer=Pacer(self._control_rate),
            auto_ping_idle=max(1.0, self.silence_timeout / 2),
            auto_ping_reply=max(1.0, self.silence_timeout / 2),
        )

    async def _control(self, connection: StreamConnection, action: str, names: list[str]) -> None:
        try:
            if action == "subscribe":
                await connection.subscribe(names)
            else:
                await connection.unsubscribe(names)
        except (ControlError, ConnectionError) as exc:
            # The names stay in connection.streams: a reconnect subscribes them again.
            self._problem(f"{action} {names[:3]}... on connection #{connection.id}: {exc}")

    # --------------------------------------------------------------- connections

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**n))."""
        return random.uniform(0, min(self._reconnect_cap, self._reconnect_base * 2 ** min(failures, 30)))

    async def _run(self, connection: StreamConnection) -> None:
        """Keep one connection open until the feed stops or a replacement takes over."""
        failures = 0
        lost_once = False
        while not self._finished(connection):
            await self._attempts.acquire()
            try:
                await connection.open()
            except Exception as exc:  # refused, reset, timed out, a handshake error: retry later
                failures += 1
                self._problem(f"connection #{connection.id}: connect failed ({failures}): {exc!r}")
                connection.abort()
                await asyncio.sleep(self._backoff(failures))
                continue
            failures = 0
            if lost_once:
                self._each_symbol(connection, StateKind.RECONNECTED, "connection is back")
            await connection.wait_closed()
            if self._finished(connection):
                return
            lost_once = True
            self.counters["reconnects"] += 1
            why = f"connection lost ({connection.close_code}: {connection.close_reason})".replace(
                "(None: )", ""
            )
            self._lose(connection, why)
            await asyncio.sleep(self._backoff(1))

    async def _busy_poll(self) -> None:
        """``busy_poll``: hand control back to the loop at once, for ever. With a callback
        always ready, the loop polls its sockets with a zero timeout instead of sleeping in
        ``epoll_wait``, so the thread never goes idle and the CPU never drops into an idle
        state between two messages (waking from one, with caches and predictors gone cold,
        is most of a frame's cost at low rates). Frames are still read by the loop's own I/O
        callbacks: this task only keeps the loop turning, one short step per iteration.

        With a warm-up (``tickbook.feed.warm_up``): once per ``busy_poll_warm_up`` seconds,
        if no connection delivered a message since the last look, the hot path runs once on
        the warm-up's made-up frame (a couple of µs with the Cython core)."""
        warm_up = self._warm_up
        every = round((self.busy_poll_warm_up or 0.0) * 1e9)
        clock = time.monotonic_ns
        due = clock() + every
        seen = -1
        while not self._stopping:
            self._busy_polls += 1
            await asyncio.sleep(0)
            if warm_up is not None and clock() >= due:
                messages = sum(c.router.messages for c in self._connections)
                if messages == seen:
                    try:
                        warm_up()
                    except Exception as exc:  # never expected; the poller goes on without it
                        self._problem(f"busy poll: warm-up failed, turned off: {exc!r}")
                        warm_up = None
                seen = messages
                due = clock() + every

    def _finished(self, connection: StreamConnection) -> bool:
        """The feed is stopping, or a replacement took this connection's place."""
        return self._stopping or connection.replaced

    def _lose(self, connection: StreamConnection, why: str) -> None:
        """Every book of a lost connection is out of sync until it resyncs."""
        for slot in self._depth_slots(connection):
            connection.router.release(slot)
            self._per_symbol[slot.symbol]["reconnects"] += 1
            if slot.owner is None:
                slot.book.invalidate(why)
                slot.held.clear()
                self._state_changed(slot)
            self._emit(slot, StateKind.RECONNECTING, why)

    def _depth_slots(self, connection: StreamConnection) -> list[Any]:
        return [s for s in connection.router.routes.values() if s.kind == 0 and s.symbol in self._slots]

    def _each_symbol(self, connection: StreamConnection, kind: StateKind, detail: str) -> None:
        for slot in self._depth_slots(connection):
            self._emit(slot, kind, detail)

    async def _watchdog(self) -> None:
        """Once a second: reconnect silent connections, replace old ones before the cut."""
        seen: dict[int, tuple[int, float]] = {}
        tick = min(1.0, self.silence_timeout / 4, self.max_connection_age / 10)
        while not self._stopping:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for connection in list(self._connections):
                if not connection.is_open or connection.replaced:
                    seen.pop(connection.id, None)
                    continue
                count = connection.router.messages
                last_count, since = seen.get(connection.id, (-1, now))
                if count != last_count:
                    seen[connection.id] = (count, now)
                elif now - since >= self.silence_timeout:
                    self.counters["silent_reconnects"] += 1
                    self._problem(
                        f"connection #{connection.id}: silent for {now - since:.1f} s, reconnecting"
                    )
                    seen.pop(connection.id, None)
                    connection.abort()
                    continue
                if now - connection.opened_at >= self.max_connection_age:
                    self._replace(connection, "connection age limit")

    def _replace(self, old: StreamConnection, why: str) -> None:
        """Make-before-break: open a replacement carrying the same streams, let it take the
        books over event by event, then close ``old``."""
        if old.replaced or self._stopping:
            return
        old.replaced = True
        old.router.retiring = True
        self.counters["replacements"] += 1
        router = self._router_mod.Router(self, self.coalesce)
        for slot in old.router.routes.values():
            router.add(slot)
        new = self._new_connection(old.route, router)
        new.streams = list(old.streams)
        self._connections.append(new)
        log.info("connection #%d: replacing with #%d (%s)", old.id, new.id, why)
        self._spawn(self._run(new))
        self._spawn(self._handover(old, new))

    async def _handover(self, old: StreamConnection, new: StreamConnection) -> None:
        deadline = time.monotonic() + self.handover_timeout
        while time.monotonic() < deadline and old.is_open:
            if new.is_open and all(
                slot.owner is not old.router or not slot.book.synced for slot in self._depth_slots(old)
            ):
                break
            await asyncio.sleep(0.005)
        for slot in self._depth_slots(old):
            if slot.owner is old.router:
                old.router.release(slot)
                if not slot.book.synced:
                    # Its buffer holds the old connection's events: start clean on the new one.
                    slot.book.invalidate("handover while resyncing")
                    slot.held.clear()
                    self._state_changed(slot)
        old.close("replaced")
        with contextlib.suppress(ValueError):
            self._connections.remove(old)
        await old.wait_closed()

    # ------------------------------------------------------- router hooks (slow path)

    def router_flags(self, slot: Any, flags: int) -> None:
        if flags & (Applied.GAP | Applied.CROSSED):
            self.counters["gaps"] += 1
            self._per_symbol[slot.symbol]["gaps"] += 1
        self._request_snapshot(slot)

    def router_state(self, slot: Any) -> None:
        self._state_changed(slot)

    def _state_changed(self, slot: Any) -> None:
        book = slot.book
        slot.last_state = int(book.state)
        if book.state == SyncState.SYNCED:
            self._synced_once.add(slot.symbol)
            self._emit(slot, StateKind.SYNCED, "")
        elif book.state == SyncState.OUT_OF_SYNC:
            self._emit(slot, StateKind.OUT_OF_SYNC, book.reason_detail)

    def router_bad(self, slot: Any, exc: BaseException, payload: bytes) -> None:
        self.counters["bad_messages"] += 1
        self._problem(f"{getattr(slot, 'stream', '?')}: bad message ({exc}): {payload[:120]!r}")

    def router_callback_error(self, slot: Any, callback: object, exc: BaseException) -> None:
        self.counters["callback_errors"] += 1
        now = time.monotonic()
        if now - self._callback_error_log_at >= 1.0:  # a callback failing on every message: log once a second
            self._callback_error_log_at = now
            log.error("callback %r raised on %s", callback, getattr(slot, "stream", "?"), exc_info=exc)

    def router_unrouted(self, router: Any, name: bytes | None, payload: bytes) -> None:
        connection = next((c for c in self._connections if c.router is router), None)
        if connection is not None and name is None and connection.on_reply(payload):
            return
        if name == b"!serverShutdown" or (name is None and b'"serverShutdown"' in payload[:64]):
            self.counters["server_shutdowns"] += 1
            if connection is not None:
                self._replace(connection, "serverShutdown")
            return
        self.counters["unknown_messages"] += 1
        if name is None:
            # Not a stream message nor a reply: malformed or unexpected. Counted, shown.
            self._problem(f"unexpected message: {payload[:120]!r}")

    def router_handover(self, slot: Any, router: Any) -> None:
        self.counters["handovers"] += 1

    # ------------------------------------------------------------------ snapshots

    def _request_snapshot(self, slot: Any) -> None:
        if slot.snapshot_pending or self._snapshots is None or self._stopping:
            return
        symbol = slot.symbol
        if symbol not in self._slots:
            return
        slot.snapshot_pending = True
        if symbol in self._synced_once:
            self.counters["resyncs"] += 1
            self._per_symbol[symbol]["resyncs"] += 1
            self._emit(slot, StateKind.RESYNCING, slot.book.reason_detail)
        # A book that was live before goes first: its subscribers are waiting on it.
        priority = self._priorities.get(symbol, 0) - (1000 if symbol in self._synced_once else 0)
        limit = self._depth_limits.get(symbol, self._default_depth)
        future = self._snapshots.request(symbol, limit, priority)
        future.add_done_callback(lambda f: self._on_snapshot(slot, f))

    def _is_current(self, slot: Any) -> bool:
        """Whether ``slot`` is still the symbol's slot (not unsubscribed meanwhile)."""
        return bool(self._slots.get(slot.symbol) is slot)

    def _on_snapshot(self, slot: Any, future: asyncio.Future[Snapshot]) -> None:
        slot.snapshot_pending = False
        if future.cancelled() or self._stopping or not self._is_current(slot):
            return
        exc = future.exception()
        if exc is not None:
            self.counters["snapshot_errors"] += 1
            self._problem(f"{slot.symbol}: snapshot refused: {exc}")
            self._emit(slot, StateKind.FAILED, str(exc))
            return
        snap = future.result()
        book = slot.book
        before = (book.best_bid_ticks(), book.best_ask_ticks())
        try:
            result = book.apply_snapshot(snap.last_update_id, snap.bids, snap.asks, limit=snap.limit)
        except (ValueError, TypeError) as exc:  # BookError, DecimalError: a broken snapshot
            self.counters["snapshot_errors"] += 1
            self._problem(f"{slot.symbol}: unusable snapshot: {exc}")
            self._request_snapshot(slot)
            return
        if int(book.state) != slot.last_state:
            self._state_changed(slot)
        if result == SnapshotResult.SYNCED:
            self._deliver_resynced(slot, before)
        elif result in (SnapshotResult.STALE, SnapshotResult.OUT_OF_SYNC):
            # Older than the first buffered event, or no buffered event bridges it: again.
            self._request_snapshot(slot)
        # BRIDGING: the next event bridges it (or reports NO_BRIDGE, which asks again).

    def _deliver_resynced(self, slot: Any, before: tuple[Any, Any]) -> None:
        """A book that became synced from a snapshot is news to its subscribers."""
        book = slot.book
        changed = (
            book.best_bid_ticks(),
            book.best_ask_ticks(),
        ) != before or slot.symbol not in self._delivered
        self._delivered.add(slot.symbol)
        self._router_mod.publish(slot, Applied.APPLIED | (Applied.BBO_CHANGED if changed else 0))

    def _guarded(self, slot: Any, callback: Callable[[Any], object], arg: Any) -> None:
        try:
            callback(arg)
        except Exception as exc:
            slot.callback_errors += 1
            self.router_callback_error(slot, callback, exc)

    # --------------------------------------------------------------------- events

    def _emit(self, slot: Any, kind: StateKind, detail: str) -> None:
        book = slot.book
        event = StateEvent(
            slot.symbol, kind, book.state, book.reason, detail, book.last_update_id, time.time_ns()
        )
        for callback in list(self._state_callbacks):
            self._guarded(slot, callback, event)
        for channel in self._state_channels:
            channel.push(slot.symbol, event)

    def _problem(self, text: str) -> None:
        log.warning("%s", text)
        self.errors.append(text)
