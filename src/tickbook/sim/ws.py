"""The local exchange's WebSocket market-stream server (picows), and the hub that fans events out.

Two objects, split so the exchange loop never touches a socket:

* ``StreamHub`` is what the exchange publishes to. ``publish(stream, payload)`` queues one
  ready-made WebSocket frame per subscribed connection; ``flush()`` writes each connection's
  queue with ONE ``transport.write``. The frames are built here, not by picows: a per-message
  ``send`` costs a Python->C call and a syscall per message and tops out near 200 k msg/s on
  the reference machine, while joining a batch and writing it once moves millions per second.
  Server-to-client frames are unmasked, so a frame is a 2/4/10-byte header plus the payload,
  and the combined wrapper ``{"stream":"<name>","data":<payload>}`` is three byte strings
  around the untouched payload: an event is never parsed or re-serialised on its way out.
* ``WsServer`` speaks Binance's market-stream protocol (``../../../../shared/binance-spec.md``
  section 3): the raw ``/ws/<stream>`` and combined ``/stream?streams=a/b`` paths (and the
  USD-M ``/public`` / ``/market`` route prefixes), live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` /
  ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` / ``GET_PROPERTY`` with the exchange's replies and
  error codes, and the exchange's limits (``WsRules``): server pings and the pong deadline,
  the inbound message rate, streams per connection, connection lifetime with a
  ``serverShutdown`` notice, and connection attempts per window (HTTP 429). Every breach is
  counted in ``violations`` so a client's tests can assert it never broke a rule.
* The private paths on the same port, when the server is given the exchange's ``PrivateRoutes``
  (``tickbook.sim.wsapi.PrivateApi``): the WebSocket API (spot ``/ws-api/v3``, USD-M
  ``/ws-fapi/v1``) and the USD-M / COIN-M user-data streams (``/private/ws/<listenKey>``,
  ``/ws/<listenKey>``). Their connections are ``_Connection`` subclasses that live under the
  same ping, pong, lifetime and shutdown rules but are not market-stream connections: the hub
  neither numbers them (``conn=K`` faults count market-stream connections only) nor fans
  market events out to them.

Faults (``FaultHook``) are asked once per published diff-depth event and applied to every
connection subscribed to that stream (or, for an action with a ``connection`` number, only to
the connection the hub accepted as that number, see ``_Connection.number``), at publish/flush
time: drop, dup, reorder, delay, stall, close, disconnect, malformed, unknown.

Backpressure: when a connection's transport buffer passes ``WsRules.write_high_water`` (or a
stalled connection's queue grows long) the hub reports ``congested``; a loop that replays "as
fast as the client reads" then awaits ``hub.drain()``. Slow consumers are DROPPED, never
buffered without bound: a connection whose unsent output passes ``WsRules.max_write_buffer``
(the loop kept publishing at recorded pace while the client stopped reading), or that stays
above the high-water mark longer than ``drain(max_wait=...)`` allows, is aborted with a
warning in the log and counted in ``violations["slow_consumer"]``, as the real exchange drops
clients that do not keep up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import re
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_connect,
    ws_create_server,
)

from tickbook._types import Market

__all__ = [
    "FAULT_KINDS",
    "FaultAction",
    "FaultActionLike",
    "FaultHook",
    "PrivateRoutes",
    "StreamHub",
    "WsRules",
    "WsServer",
    "measure_throughput",
    "measure_throughput_stats",
    "valid_stream",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True, slots=True)
class WsRules:
    """The exchange's WebSocket limits (spec section 3). Defaults are spot's; see ``for_market``.

    Tests shrink the intervals (a lifetime of seconds, a ping every 50 ms) to see each rule act.
    """

    ping_interval: float = 20.0  # server PING every ... s (futures: 180)
    pong_timeout: float = 60.0  # a PING not answered (same payload) within ... s closes (futures: 600)
    inbound_limit: int = 5  # client frames (text, binary, ping, pong) per inbound_window (futures: 10)
    inbound_window: float = 1.0
    max_streams: int = 1024  # per connection
    lifetime: float = 24 * 3600.0  # a connection is closed after this long
    shutdown_notice: float = 5.0  # serverShutdown is sent this long before the lifetime close
    shutdown_event: bool = True  # spot sends serverShutdown; USD-M / COIN-M document none
    attempts_limit: int = 300  # connection attempts per attempts_window ...
    attempts_window: float = 300.0  # ... beyond that the handshake gets HTTP 429
    write_high_water: int = 1 << 20  # transport buffer above this: hub.congested (pace the replay)
    max_write_buffer: int = 64 << 20  # unsent bytes above this: the connection is dropped
    max_queued_parts: int = 1_000_000  # queued frame pieces of a stalled connection before a drop
    max_frame_size: int = 1 << 20  # largest client frame accepted

    def __post_init__(self) -> None:
        # Ping payloads are millisecond stamps, unique only if pings are at least 1 ms apart.
        if self.ping_interval < 0.01 or self.pong_timeout <= 0:
            raise ValueError("ping_interval must be >= 0.01 s and pong_timeout > 0")
        if self.inbound_limit < 1 or self.inbound_window <= 0 or self.max_streams < 1:
            raise ValueError("inbound_limit, inbound_window and max_streams must be positive")
        if self.lifetime <= 0 or self.shutdown_notice < 0 or self.attempts_limit < 1:
            raise ValueError("lifetime and attempts_limit must be positive, shutdown_notice >= 0")

    @classmethod
    def for_market(cls, market: Market | str, **overrides: Any) -> WsRules:
        """The documented defaults of ``market`` (spot, usdm, coinm), then ``overrides``."""
        m = Market.parse(market)
        rules = cls()
        if m.is_futures:
            rules = replace(
                rules, ping_interval=180.0, pong_timeout=600.0, inbound_limit=10, shutdown_event=False
            )
        return replace(rules, **overrides) if overrides else rules


# ---------------------------------------------------------------------------------------------
# Faults


class FaultActionLike(Protocol):
    """One thing to do to a depth event: ``kind`` (see ``FAULT_KINDS``), ``seconds`` for timed ones.

    An action may also carry ``connection`` (``int | None``): apply it only on the connection
    the hub accepted as that number (1-based, in acceptance order); absent or None: on every
    connection carrying the stream.
    """

    @property
    def kind(self) -> str: ...

    @property
    def seconds(self) -> float: ...


class FaultHook(Protocol):
    """What the hub asks before sending the ``n``-th (1-based) event of a diff-depth stream.

    ``symbol`` is upper-case (``"BTCUSDT"``). Each diff-depth stream (``@depth``,
    ``@depth@100ms``) counts its own events. Return an empty sequence for "no fault".
    """

    def on_depth_event(self, symbol: str, n: int) -> Sequence[FaultActionLike]: ...


@dataclass(frozen=True, slots=True)
class FaultAction:
    """A plain ``FaultActionLike``."""

    kind: str
    seconds: float = 0.0
    connection: int | None = None  # only on the connection accepted as this number; None: all


#: drop: not sent (a gap); dup/duplicate: sent twice; reorder: held and sent after the stream's
#: next event; delay: sent ``seconds`` later; stall: from this event on nothing is written to
#: the connection for ``seconds`` (it stays open, pings go on, output queues); close: a clean
#: close frame right after the event; disconnect: the transport is aborted right after it;
#: malformed: an extra frame of invalid JSON (the event cut in half) before it; unknown: an extra
#: ``{"e":"simUnknownEvent",...}`` frame before it. malformed/unknown are extra frames, so they
#: test the client's parser, not its gap logic.
FAULT_KINDS = frozenset(
    {"drop", "dup", "duplicate", "reorder", "delay", "stall", "close", "disconnect", "malformed", "unknown"}
)

# ---------------------------------------------------------------------------------------------
# Frames

_SMALL_HEADERS = [bytes((0x81, n)) for n in range(126)]
_pack16 = struct.Struct(">BBH").pack
_pack64 = struct.Struct(">BBQ").pack


def _text_header(n: int) -> bytes:
    """FIN + TEXT opcode, then the payload length in 7, 16 or 64 bits (server frames are unmasked)."""
    if n < 126:
        return _SMALL_HEADERS[n]
    if n < 65536:
        return _pack16(0x81, 126, n)
    return _pack64(0x81, 127, n)


# A stalled connection with more queued frame pieces than this makes the hub congested.
_STALL_CONGESTED_PARTS = 65536


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------------------------------------
# Stream names


_SYM = r"[a-z0-9][a-z0-9_]*"  # lower case only; COIN-M and delivery contracts carry "_"
_KL_SPOT = r"kline_(?:1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"
_KL_FUT = r"kline_(?:1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"
_CKL = r"continuousKline_(?:1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"

_SPOT_SYM = (
    r"depth(?:@(?:100|1000)ms)?",
    r"depth(?:5|10|20)(?:@(?:100|1000)ms)?",
    "bookTicker",
    "trade",
    "aggTrade",
    "miniTicker",
    "ticker",
    "avgPrice",
    r"ticker_(?:1h|4h|1d)",
    _KL_SPOT,
)
_SPOT_ALL = (r"!miniTicker@arr", r"!ticker@arr", r"!ticker_(?:1h|4h|1d)@arr")
_FUT_PUBLIC_SYM = (
    r"depth(?:@(?:100|250|500)ms)?",
    r"depth(?:5|10|20)(?:@(?:100|250|500)ms)?",
    "bookTicker",
    r"rpiDepth@500ms",
)
_FUT_PUBLIC_ALL = (r"!bookTicker",)
_FUT_MARKET_SYM = (
    "aggTrade",
    "trade",
    r"markPrice(?:@1s)?",
    r"indexPrice(?:@1s)?",
    _KL_FUT,
    "miniTicker",
    "ticker",
    "forceOrder",
    "compositeIndex",
    "assetIndex",
    _CKL,  # continuous klines: <pair>_perpetual@...
)
_FUT_MARKET_ALL = (
    r"!markPrice@arr(?:@1s)?",
    r"!miniTicker@arr",
    r"!ticker@arr",
    r"!forceOrder@arr",
    r"!contractInfo",
    r"!assetIndex@arr",
)


def _stream_re(per_symbol: Iterable[str], global_: Iterable[str]) -> re.Pattern[str]:
    sym = "|".join(per_symbol)
    alt = "|".join(global_)
    return re.compile(rf"(?:{_SYM}@(?:{sym})|{alt})")


_STREAMS: dict[tuple[Market, str], re.Pattern[str]] = {
    (Market.SPOT, ""): _stream_re(_SPOT_SYM, _SPOT_ALL),
    # Since 2026-04-23 an unrouted USD-M URL serves only the /public streams.
    (Market.USDM, ""): _stream_re(_FUT_PUBLIC_SYM, _FUT_PUBLIC_ALL),
    (Market.USDM, "/public"): _stream_re(_FUT_PUBLIC_SYM, _FUT_PUBLIC_ALL),
    (Market.USDM, "/market"): _stream_re(_FUT_MARKET_SYM, _FUT_MARKET_ALL),
    (Market.COINM, ""): _stream_re(_FUT_PUBLIC_SYM + _FUT_MARKET_SYM, _FUT_PUBLIC_ALL + _FUT_MARKET_ALL),
}
_ROUTES = {Market.SPOT: ("",), Market.USDM: ("", "/public", "/market"), Market.COINM: ("",)}
_DIFF_DEPTH = re.compile(r"([a-z0-9][a-z0-9_]*)@depth(?:@\d+ms)?")


def valid_stream(market: Market | str, name: str, route: str = "") -> bool:
    """Whether ``name`` is a stream the exchange serves on ``market`` (and USD-M ``route``).

    Only the shape is checked (lower-case symbol, known stream kind and speed): like the
    exchange, a well-formed stream of a symbol that does not trade is accepted and stays silent.
    """
    pattern = _STREAMS.get((Market.parse(market), route))
    return pattern is not None and pattern.fullmatch(name) is not None


# ---------------------------------------------------------------------------------------------
# The hub


class StreamHub:
    """Fan-out of published events to subscribed connections, with batched writes.

    The exchange loop calls ``publish`` for every event and ``flush`` after every step; the
    first ``publish`` of a loop iteration also schedules a ``flush`` with ``call_soon``, so
    publishers that forget to flush still get their frames out, a loop turn later.
    """

    def __init__(
        self,
        faults: FaultHook | None = None,
        *,
        fault_observer: Callable[[str, str, int, int], None] | None = None,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        """``fault_observer(kind, symbol, n, connections)`` is told of every fault applied."""
        self._faults = faults
        self._fault_observer = fault_observer
        self.now_ms = now_ms
        self._subs: dict[str, list[_Connection]] = {}
        self._prefixes: dict[str, bytes] = {}
        self._conns: list[_Connection] = []
        self._accepted = 0  # connections attached so far: the last one's ``number``
        self._depth_symbol: dict[str, str | None] = {}
        self._depth_n: dict[str, int] = {}
        self._held: dict[str, list[tuple[_Connection, list[bytes]]]] = {}
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused: set[_Connection] = set()  # transport buffer above its high-water mark
        self._stall_full: set[_Connection] = set()  # stalled (a fault) with a long queue
        self._drained: asyncio.Event | None = None
        #: breaches of the exchange's rules, by kind (shared with the WsServer using this hub)
        self.violations: collections.Counter[str] = collections.Counter()
        #: faults applied, by kind
        self.faults_applied: collections.Counter[str] = collections.Counter()
        self.frames = 0  # event frames queued (one per subscriber per publish)
        self.writes = 0  # transport.write calls
        self.bytes_written = 0
        self.max_batch_bytes = 0

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, stream: str, payload: bytes) -> None:
        """Queue ``payload`` (a bare event) for every connection subscribed to ``stream``.

        The hot path of the whole exchange: a dict lookup and two list appends per subscriber.
        """
        if self._faults is not None and self._faulted(stream, payload):
            return
        subs = self._subs.get(stream)
        if subs is None:
            return
        n = len(payload)
        raw_header: bytes | None = None
        for conn in subs:
            out = conn.out
            if conn.combined:
                prefix = self._prefix(stream)
                out += (_text_header(len(prefix) + n + 1), prefix, payload, b"}")
            else:
                if raw_header is None:
                    raw_header = _SMALL_HEADERS[n] if n < 126 else _text_header(n)
                out.append(raw_header)
                out.append(payload)
        self.frames += len(subs)
        if not self._flush_scheduled:
            self._schedule_flush()

    def publish_many(self, stream: str, payloads: Sequence[bytes]) -> None:
        """``publish`` each of ``payloads`` (in order) on one stream, framing them once for all.

        For a max-speed replay of one stream: the frames of the whole run are built in one
        comprehension and queued as one block per connection, which is several times cheaper
        per message than ``publish``. Events that a fault plan may touch go one by one.
        """
        if self._faults is not None and self._symbol(stream) is not None:
            for payload in payloads:
                self.publish(stream, payload)
            return
        subs = self._subs.get(stream)
        if subs is None or not payloads:
            return
        raw_block: bytes | None = None
        combined_block: bytes | None = None
        for conn in subs:
            if conn.combined:
                if combined_block is None:
                    prefix = self._prefix(stream)
                    k = len(prefix) + 1
                    combined_block = b"".join(
                        [x for p in payloads for x in (_text_header(len(p) + k), prefix, p, b"}")]
                    )
                conn.out.append(combined_block)
            else:
                if raw_block is None:
                    small = _SMALL_HEADERS
                    raw_block = b"".join(
                        [
                            x
                            for p in payloads
                            for x in ((small[len(p)] if len(p) < 126 else _text_header(len(p))), p)
                        ]
                    )
                conn.out.append(raw_block)
        self.frames += len(subs) * len(payloads)
        if not self._flush_scheduled:
            self._schedule_flush()

    def flush(self) -> None:
        """Write every connection's queued frames: one ``transport.write`` per connection."""
        self._flush_scheduled = False
        now = -1.0
        for conn in tuple(self._conns):
            if not conn.out:
                continue
            if conn.stalled_until:
                if now < 0:
                    now = self._get_loop().time()
                if now < conn.stalled_until:
                    queued = len(conn.out)
                    if queued > conn.rules.max_queued_parts:
                        self._drop_slow(conn, f"{queued} frame pieces queued while stalled")
                    elif queued > _STALL_CONGESTED_PARTS and conn not in self._stall_full:
                        self._stall_full.add(conn)  # a max-speed loop waits for the stall to end
                    continue
                conn.stalled_until = 0.0
            self._write(conn)

    # -- backpressure --------------------------------------------------------------------------

    @property
    def congested(self) -> bool:
        """A connection cannot take more now: its transport buffer is above the high-water
        mark, or it is stalled (a fault) with a long queue. A max-speed loop stops publishing."""
        return bool(self._paused or self._stall_full)

    async def drain(self, max_wait: float | None = None) -> None:
        """Wait until no connection is congested (or has gone).

        With ``max_wait``, connections whose transport is still above its high-water mark
        after that long are dropped as slow consumers, so one client that stopped reading
        cannot hold a max-speed replay (and every other client) forever. Stalled connections
        are never dropped here: their stall ends by itself.
        """
        loop = self._get_loop()
        deadline = None if max_wait is None else loop.time() + max_wait
        while self._paused or self._stall_full:
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            if deadline is None:
                await self._drained.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                for conn in list(self._paused):
                    self._drop_slow(conn, f"buffer above high water for {max_wait:.3g} s")
                if not self._stall_full:
                    return
                deadline = None
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), remaining)

    def subscribers(self, stream: str) -> int:
        """How many connections receive ``stream`` now."""
        return len(self._subs.get(stream, ()))

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- connections (used by WsServer) --------------------------------------------------------

    def _attach(self, conn: _Connection) -> None:
        self._accepted += 1
        conn.number = self._accepted
        self._conns.append(conn)
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    def _detach(self, conn: _Connection) -> None:
        """Forget ``conn``: no more frames are queued for it (its queue is left to the caller)."""
        if conn in self._conns:
            self._conns.remove(conn)
        for stream in conn.streams:
            subs = self._subs.get(stream)
            if subs is not None and conn in subs:
                subs.remove(conn)
                if not subs:
                    del self._subs[stream]
        self._set_paused(conn, False)

    def _subscribe(self, conn: _Connection, streams: Iterable[str]) -> None:
        for stream in streams:
            if stream not in conn.streams:
                conn.streams[stream] = None
                self._subs.setdefault(stream, []).append(conn)

    def _unsubscribe(self, conn: _Connection, streams: Iterable[str]) -> None:
        for stream in streams:
            if stream in conn.streams:
                del conn.streams[stream]
                subs = self._subs[stream]
                subs.remove(conn)
                if not subs:
                    del self._subs[stream]

    def _set_paused(self, conn: _Connection, paused: bool) -> None:
        if paused:
            self._paused.add(conn)
            return
        self._paused.discard(conn)
        self._stall_full.discard(conn)
        if not self._paused and not self._stall_full and self._drained is not None:
            self._drained.set()

    def _queue_message(self, conn: _Connection, payload: bytes, *, stream: str | None = None) -> None:
        """Queue a non-event text message (a reply, a notice): wrapped when the connection is combined."""
        if stream is not None and conn.combined:
            prefix = self._prefix(stream)
            conn.out += (_text_header(len(prefix) + len(payload) + 1), prefix, payload, b"}")
        else:
            conn.out += (_text_header(len(payload)), payload)

    def _flush_one(self, conn: _Connection, *, ignore_stall: bool = False) -> None:
        if conn.out and (ignore_stall or not conn.stalled_until or self._unstalled(conn)):
            self._write(conn)

    # -- internals -----------------------------------------------------------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _schedule_flush(self) -> None:
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:  # published outside a loop: the caller flushes explicitly
                return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def _prefix(self, stream: str) -> bytes:
        prefix = self._prefixes.get(stream)
        if prefix is None:
            prefix = self._prefixes[stream] = b'{"stream":"' + stream.encode() + b'","data":'
        return prefix

    def _symbol(self, stream: str) -> str | None:
        """The upper-case symbol of a diff-depth stream (the ones faults apply to), else None."""
        symbol = self._depth_symbol.get(stream, "")
        if symbol == "":
            m = _DIFF_DEPTH.fullmatch(stream)
            symbol = self._depth_symbol[stream] = m.group(1).upper() if m else None
        return symbol

    def _faulted(self, stream: str, payload: bytes) -> bool:
        """Count a diff-depth event, ask the fault plan, apply its actions: True if it took the event."""
        assert self._faults is not None
        symbol = self._symbol(stream)
        if symbol is None:
            return False
        n = self._depth_n[stream] = self._depth_n.get(stream, 0) + 1
        actions = self._faults.on_depth_event(symbol, n)
        if not actions and stream not in self._held:
            return False
        self._publish_faulted(stream, payload, symbol, n, actions)
        return True

    def _unstalled(self, conn: _Connection) -> bool:
        if self._get_loop().time() < conn.stalled_until:
            return False
        conn.stalled_until = 0.0
        return True

    def _write(self, conn: _Connection) -> None:
        data = b"".join(conn.out)
        conn.out.clear()
        if not conn.alive:
            return
        conn.write(data)
        self.writes += 1
        self.bytes_written += len(data)
        if len(data) > self.max_batch_bytes:
            self.max_batch_bytes = len(data)
        buffered = conn.buffer_size()
        if buffered > conn.rules.max_write_buffer:
            self._drop_slow(conn, f"{buffered} bytes unsent")

    def _drop_slow(self, conn: _Connection, why: str) -> None:
        log.warning("dropping slow consumer #%d (%s > limit): it is not reading its stream", conn.id, why)
        self.violations["slow_consumer"] += 1
        conn.out.clear()
        conn.abort("slow_consumer")

    def _frame_parts(self, conn: _Connection, stream: str, payload: bytes) -> list[bytes]:
        if conn.combined:
            prefix = self._prefix(stream)
            return [_text_header(len(prefix) + len(payload) + 1), prefix, payload, b"}"]
        return [_text_header(len(payload)), payload]

    def _publish_faulted(
        self, stream: str, payload: bytes, symbol: str, n: int, actions: Sequence[FaultActionLike]
    ) -> None:
        """The slow path of ``publish``: this event has faults, or an earlier one waits to follow it."""
        common: dict[str, float] = {}  # kind -> seconds, on every connection
        targeted: dict[int, dict[str, float]] = {}  # connection number -> its own kinds
        for action in actions:
            kind = "dup" if action.kind == "duplicate" else action.kind
            if kind not in FAULT_KINDS:
                log.error("ignoring unknown fault action %r (known: %s)", action.kind, sorted(FAULT_KINDS))
                continue
            target: int | None = getattr(action, "connection", None)
            (common if target is None else targeted.setdefault(target, {}))[kind] = float(action.seconds)
        subs = list(self._subs.get(stream, ()))
        held = self._held.pop(stream, None)
        loop = self._get_loop()
        applied = [(kind, len(subs)) for kind in common]
        for target, target_kinds in targeted.items():
            hits = sum(1 for conn in subs if conn.number == target)
            applied += [(kind, hits) for kind in target_kinds]
        for kind, connections in applied:
            self.faults_applied[kind] += 1
            if self._fault_observer is not None:
                self._fault_observer(kind, symbol, n, connections)
        self.frames += len(subs)
        for conn in subs:
            own = targeted.get(conn.number)
            kinds = common if own is None else {**common, **own}
            parts = self._frame_parts(conn, stream, payload)
            if "malformed" in kinds:
                whole = b"".join(parts[1:])
                cut = whole[: max(1, len(whole) // 2)]
                conn.out += (_text_header(len(cut)), cut)
            if "unknown" in kinds:
                body = b'{"e":"simUnknownEvent","E":%d,"s":"%s"}' % (self.now_ms(), symbol.encode())
                self._queue_message(conn, body, stream=stream)
            copies = 0 if "drop" in kinds else 2 if "dup" in kinds else 1
            if "stall" in kinds:  # what was queued before this event still goes out now
                self._flush_one(conn)
                until = conn.stalled_until = loop.time() + kinds["stall"]
                loop.call_later(kinds["stall"], self._end_stall, conn, until)
            if copies:
                if "delay" in kinds:
                    loop.call_later(kinds["delay"], self._inject, conn, parts * copies)
                elif "reorder" in kinds:
                    self._held.setdefault(stream, []).append((conn, parts * copies))
                else:
                    conn.out += parts * copies
            if "close" in kinds:
                conn.close(WSCloseCode.OK, "fault: close", why="fault_close")
            elif "disconnect" in kinds:
                self._flush_one(conn, ignore_stall=True)
                conn.abort("fault_disconnect")
        if held:
            for conn, parts in held:
                if conn.alive:
                    conn.out += parts
        if not self._flush_scheduled:
            self._schedule_flush()

    def _end_stall(self, conn: _Connection, until: float) -> None:
        """A stall's time is up (unless a later stall extended it): write what queued meanwhile."""
        if conn.stalled_until == until:
            conn.stalled_until = 0.0
            self._flush_one(conn)
            if conn in self._stall_full:
                self._stall_full.discard(conn)
                if not self._paused and not self._stall_full and self._drained is not None:
                    self._drained.set()

    def _inject(self, conn: _Connection, parts: list[bytes]) -> None:
        """A delayed event is due: queue it behind whatever was queued meanwhile, and write."""
        if conn.alive:
            conn.out += parts
            self._flush_one(conn)


# ---------------------------------------------------------------------------------------------
# Control messages


class _RequestError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_EXPECTED = "expected one of " + ", ".join(f"`{m}`" for m in _METHODS)
_METHOD_VALUE = re.compile(r'"method"\s*:\s*"(?:[^"\\]|\\.)*"')
_SPOT_STR_ID = re.compile(r"[A-Za-z0-9-]{1,36}")  # "alphanumeric, max 36" (a UUID is 36 with dashes)
_BAD_ID = "Invalid request: request ID must be an unsigned integer"
_BAD_PROPERTY_NAME = "Invalid request: property name must be a string"
_TOO_MANY_PARAMS = "Invalid request: too many parameters"
_INVALID_STREAM = "Invalid request: invalid stream"


def _line_col(text: str, end: int) -> tuple[int, int]:
    """serde's position: the line (1-based) and the characters read on it up to ``end``."""
    line = text.count("\n", 0, end) + 1
    return line, end - (text.rfind("\n", 0, end) + 1)


def _json_reason(err: json.JSONDecodeError) -> str:
    """The JSON parser's complaint in serde_json's words (the exchange's messages are serde_json's)."""
    if err.msg.startswith("Expecting value"):
        return "expected value"
    if err.msg.startswith("Expecting property name"):
        return "key must be a string"
    return err.msg[:1].lower() + err.msg[1:]


def _check_id(market: Market, request: dict[str, Any]) -> Any:
    """The request's ``id`` if the market accepts its format (spot: int64 / short string / null;
    futures: unsigned int, required)."""
    if "id" not in request:
        if market is Market.SPOT:
            return None  # serde reads a missing Option field as null
        raise _RequestError(2, _BAD_ID)
    rid = request["id"]
    if isinstance(rid, bool):
        raise _RequestError(2, _BAD_ID)
    if market is Market.SPOT:
        if rid is None or (isinstance(rid, int) and -(1 << 63) <= rid < (1 << 63)):
            return rid
        if isinstance(rid, str) and _SPOT_STR_ID.fullmatch(rid):
            return rid
        raise _RequestError(2, _BAD_ID)
    if isinstance(rid, int) and 0 <= rid < (1 << 64):
        return rid
    raise _RequestError(2, _BAD_ID)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class PrivateRoutes(Protocol):
    """The exchange's private WebSocket side, as the server consults it for every handshake."""

    def route(self, server: WsServer, target: str) -> WSListener | WSUpgradeResponseWithListener | None:
        """The listener (or the refusal) for ``target`` (path and query) when it is a private
        path, ``None`` when it is not (the market-stream paths are tried next)."""

    def stop(self) -> None:
        """The server is stopping: cancel timers."""


# ---------------------------------------------------------------------------------------------
# A connection


class _Connection(WSListener):
    """One client: its subscriptions, its queued output and the rules' timers.

    Subclasses (the private paths) turn off what only market-stream connections do.
    """

    # Numbered and subscribed by the hub (market streams); False: outside the hub's fan-out.
    market_stream: ClassVar[bool] = True
    # Subject to the inbound message limit; the WebSocket API is limited by request weight instead.
    inbound_limited: ClassVar[bool] = True

    def __init__(self, server: WsServer, cid: int, route: str, combined: bool, streams: list[str]) -> None:
        super().__init__()
        self.server = server
        self.hub = server.hub
        self.rules = server.rules
        self.id = cid
        self.number = 0  # set by the hub on connect: 1 for the first connection it accepted, ...
        self.route = route
        self.combined = combined
        self.initial_streams = streams
        self.streams: dict[str, None] = {}  # insertion-ordered set, for LIST_SUBSCRIPTIONS
        self.out: list[bytes] = []
        self.alive = False
        self.stalled_until = 0.0
        self.transport: WSTransport | None = None
        self.write: Callable[[bytes], object] = _no_write
        self.buffer_size: Callable[[], int] = _zero
        self._inbound: collections.deque[float] = collections.deque(maxlen=self.rules.inbound_limit)
        self._pings: dict[bytes, asyncio.TimerHandle] = {}  # unanswered ping payload -> its deadline
        self._timers: list[asyncio.TimerHandle] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- picows callbacks ----------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        tr = transport.underlying_transport
        self.write = tr.write
        self.buffer_size = tr.get_write_buffer_size
        tr.set_write_buffer_limits(high=self.rules.write_high_water)
        self._loop = loop = asyncio.get_running_loop()
        self.alive = True
        if self.market_stream:
            self.hub._attach(self)
            self.hub._subscribe(self, self.initial_streams)
        self.server._conns.add(self)
        rules = self.rules
        self._timers.append(loop.call_later(rules.ping_interval, self._ping))
        if rules.shutdown_event:
            notice_at = max(0.0, rules.lifetime - rules.shutdown_notice)
            self._timers.append(loop.call_later(notice_at, self._shutdown_notice))
        self._timers.append(loop.call_later(rules.lifetime, self._expire))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == WSMsgType.CLOSE:
            # Echo the client's close (a close without a code is answered with 1000), then FIN.
            try:
                code = frame.get_close_code()
            except ValueError:  # a code picows has no name for (4000-4999): answer 1000
                code = WSCloseCode.NO_INFO
            transport.send_close(WSCloseCode.OK if code == WSCloseCode.NO_INFO else code)
            transport.disconnect()
            return
        if not self.alive:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        inbound = self._inbound
        if (
            self.inbound_limited
            and len(inbound) == inbound.maxlen
            and now - inbound[0] < self.rules.inbound_window
        ):
            self.server.violations["inbound_rate"] += 1
            log.info(
                "closing #%d: more than %d messages in %.3g s",
                self.id,
                self.rules.inbound_limit,
                self.rules.inbound_window,
            )
            self.close(WSCloseCode.POLICY_VIOLATION, "Too many requests", why="inbound_rate")
            return
        inbound.append(now)
        if msg_type == WSMsgType.TEXT:
            self._on_request(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.PONG:
            self._on_pong(frame.get_payload_as_bytes())
        # BINARY / CONTINUATION: counted, otherwise ignored (the exchange takes JSON text only)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._forget("client")

    def pause_writing(self) -> None:
        self.hub._set_paused(self, True)

    def resume_writing(self) -> None:
        self.hub._set_paused(self, False)

    # -- closing -------------------------------------------------------------------------------

    def close(self, code: WSCloseCode, reason: str, *, why: str) -> None:
        """Send what is queued, then a close frame, then close the TCP connection (FIN)."""
        if not self.alive or self.transport is None:
            return
        self.hub._flush_one(self, ignore_stall=True)
        if self._dropped():  # the flush found a slow consumer and dropped it
            return
        self._forget(why)
        self.transport.send_close(code, reason.encode())
        self.transport.disconnect()

    def _dropped(self) -> bool:
        return not self.alive

    def abort(self, why: str) -> None:
        """Reset the TCP connection now (no close frame): what a crashed server looks like."""
        if not self.alive or self.transport is None:
            return
        self._forget(why)
        self.transport.disconnect(graceful=False)

    def _forget(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        self.server.closes[why] += 1
        self.hub._detach(self)
        self.server._conns.discard(self)
        for handle in self._timers:
            handle.cancel()
        for handle in self._pings.values():
            handle.cancel()
        self._timers.clear()
        self._pings.clear()

    # -- rules ---------------------------------------------------------------------------------

    def _ping(self) -> None:
        if not self.alive or self.transport is None or self._loop is None:
            return
        payload = str(_wall_ms()).encode()  # wall time even if the exchange's clock is simulated
        if payload not in self._pings:
            self._pings[payload] = self._loop.call_later(self.rules.pong_timeout, self._pong_missed, payload)
            self.transport.send_ping(payload)
        self._timers[0] = self._loop.call_later(self.rules.ping_interval, self._ping)

    def _on_pong(self, payload: bytes) -> None:
        """A pong answers its ping and every earlier one; an unsolicited pong keeps nothing alive."""
        if payload not in self._pings:
            return
        while self._pings:
            key = next(iter(self._pings))
            self._pings.pop(key).cancel()
            if key == payload:
                break

    def _pong_missed(self, payload: bytes) -> None:
        if self.alive and payload in self._pings:
            self.server.violations["pong_timeout"] += 1
            log.info("closing #%d: no pong within %.3g s", self.id, self.rules.pong_timeout)
            self.close(WSCloseCode.POLICY_VIOLATION, "Pong timeout", why="pong_timeout")

    def send_server_shutdown(self) -> None:
        """The exchange's notice before a planned close: reconnect now."""
        if not self.alive:
            return
        body = b'{"e":"serverShutdown","E":%d}' % self.hub.now_ms()
        self.hub._queue_message(self, body, stream="!serverShutdown")
        self.hub._flush_one(self, ignore_stall=True)

    def _shutdown_notice(self) -> None:
        self.send_server_shutdown()

    def _expire(self) -> None:
        self.close(WSCloseCode.GOING_AWAY, "Connection lifetime reached", why="lifetime")

    # -- requests ------------------------------------------------------------------------------

    def _reply(self, obj: dict[str, Any]) -> None:
        self.hub._queue_message(self, _dumps(obj))
        self.hub._flush_one(self)

    def _on_request(self, raw: bytes) -> None:
        rid: Any = None
        try:
            try:
                text = raw.decode()
                request = json.loads(text)
            except UnicodeDecodeError as exc:
                raise _RequestError(3, f"Invalid JSON: invalid unicode at byte {exc.start + 1}") from None
            except json.JSONDecodeError as exc:
                raise _RequestError(
                    3, f"Invalid JSON: {_json_reason(exc)} at line {exc.lineno} column {exc.colno}"
                ) from None
            if not isinstance(request, dict):
                raise _RequestError(2, "Invalid request: expected a JSON object")
            rid = _check_id(self.server.market, request)
            result = self._dispatch(text, request)
        except _RequestError as exc:
            self.server.violations["request_error"] += 1
            self._reply({"error": {"code": exc.code, "msg": exc.msg}, "id": rid})
            return
        self._reply({"result": result, "id": rid})

    def _dispatch(self, text: str, request: dict[str, Any]) -> Any:
        if "method" not in request:
            line, col = _line_col(text, len(text.rstrip()))
            raise _RequestError(2, f"Invalid request: missing field `method` at line {line} column {col}")
        method = request["method"]
        if method not in _METHODS:
            m = _METHOD_VALUE.search(text)
            line, col = _line_col(text, m.end() if m else len(text.rstrip()))
            shown = f"`{method}`" if isinstance(method, str) else json.dumps(method)
            raise _RequestError(
                2, f"Invalid request: unknown variant {shown}, {_EXPECTED} at line {line} column {col}"
            )
        params = request.get("params")
        if method == "SUBSCRIBE" or method == "UNSUBSCRIBE":
            if not isinstance(params, list):
                raise _RequestError(
                    2,
                    "Invalid request: missing field `params`"
                    if params is None
                    else "Invalid request: params must be a list of stream names",
                )
            streams: list[str] = []
            for name in params:
                if not isinstance(name, str) or not self.server.valid_stream(name, self.route):
                    raise _RequestError(2, _INVALID_STREAM)
                streams.append(name)
            if method == "UNSUBSCRIBE":
                self.hub._unsubscribe(self, streams)
                return None
            total = len(self.streams.keys() | set(streams))
            if total > self.rules.max_streams:
                self.server.violations["too_many_streams"] += 1
                limit = self.rules.max_streams
                raise _RequestError(
                    2, f"Invalid request: too many streams ({total} > {limit} per connection)"
                )
            self.hub._subscribe(self, streams)
            return None
        if method == "LIST_SUBSCRIPTIONS":
            if params:
                raise _RequestError(2, _TOO_MANY_PARAMS)
            return list(self.streams)
        # SET_PROPERTY / GET_PROPERTY
        if not isinstance(params, list) or not params:
            raise _RequestError(2, _BAD_PROPERTY_NAME)
        if len(params) > (2 if method == "SET_PROPERTY" else 1):
            raise _RequestError(2, _TOO_MANY_PARAMS)
        if not isinstance(params[0], str):
            raise _RequestError(2, _BAD_PROPERTY_NAME)
        if params[0] != "combined":
            raise _RequestError(0, "Unknown property")
        if method == "GET_PROPERTY":
            return self.combined
        if len(params) < 2 or not isinstance(params[1], bool):
            raise _RequestError(1, "Invalid value type: expected Boolean")
        self.combined = params[1]
        return None


def _no_write(data: bytes) -> None:
    raise RuntimeError("connection not established")


def _zero() -> int:
    return 0


# ---------------------------------------------------------------------------------------------
# The server


class WsServer:
    """Binance market streams on ``ws://127.0.0.1:PORT`` for one market, fed by ``hub``.

    ``await start()`` binds (port 0: a free port), ``url`` says where, ``await stop()`` sends
    ``serverShutdown`` (spot) and closes every connection. ``violations`` counts every breach of
    ``rules`` by kind: ``inbound_rate``, ``pong_timeout``, ``too_many_streams``,
    ``connection_attempts``, ``invalid_url``, ``request_error``, ``slow_consumer``.
    ``closes`` counts why connections ended. ``api`` (the exchange's ``PrivateRoutes``) adds
    the WebSocket API and user-data stream paths; without it only market streams are served.
    """

    def __init__(
        self,
        hub: StreamHub,
        market_kind: Market | str,
        rules: WsRules | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api: PrivateRoutes | None = None,
    ) -> None:
        self.hub = hub
        self.api = api
        self.market = Market.parse(market_kind)
        self.rules = rules if rules is not None else WsRules.for_market(self.market)
        self.host = host
        self.port = port
        self.closes: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()
        self._ids = itertools.count(1)
        # picows hands the listener factory the HTTP request only, not the peer address; the
        # server binds loopback, so every client shares one address and one attempts window.
        self._attempts: collections.deque[float] = collections.deque()

    @property
    def violations(self) -> collections.Counter[str]:
        return self.hub.violations

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` (append ``/ws/<stream>`` or ``/stream?streams=...``)."""
        if self._server is None:
            raise RuntimeError("WsServer not started")
        return f"ws://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._conns)

    def valid_stream(self, name: str, route: str = "") -> bool:
        return valid_stream(self.market, name, route)

    async def start(self) -> None:
        self._server = await ws_create_server(
            self._route,
            self.host,
            self.port,
            enable_auto_pong=False,  # client pings count toward the inbound limit: see them
            max_frame_size=self.rules.max_frame_size,
            websocket_handshake_timeout=5,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, timeout: float = 2.0) -> None:
        """serverShutdown (spot), then a close frame on every connection; stop listening."""
        if self.api is not None:
            self.api.stop()
        for conn in list(self._conns):
            if self.rules.shutdown_event:
                conn.send_server_shutdown()
            conn.close(WSCloseCode.GOING_AWAY, "Server shutdown", why="server_stop")
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout)
            except TimeoutError:  # pragma: no cover - a peer that never closes its side
                log.warning("WsServer.stop: listener not closed within %.3g s", timeout)

    async def __aenter__(self) -> WsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the handshake -------------------------------------------------------------------------

    def reject(self, status: HTTPStatus, body: bytes, **headers: str) -> WSUpgradeResponseWithListener:
        """Refuse a handshake with ``status`` and a JSON ``body`` (and extra headers)."""
        response = WSUpgradeResponse.create_error_response(
            status, body, extra_headers={"Content-Type": "application/json", **headers}
        )
        return WSUpgradeResponseWithListener(response, None)

    def _route(self, request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener | None:
        """picows's listener factory: rate-limit, parse the path, validate streams, build the listener."""
        now = time.monotonic()
        window = self.rules.attempts_window
        attempts = self._attempts
        while attempts and now - attempts[0] >= window:
            attempts.popleft()
        attempts.append(now)  # rejected attempts count too: hammering keeps the door shut
        if len(attempts) > self.rules.attempts_limit:
            self.violations["connection_attempts"] += 1
            retry = max(1, int(attempts[-self.rules.attempts_limit] + window - now + 0.999))
            return self.reject(
                HTTPStatus.TOO_MANY_REQUESTS,
                _dumps({"code": -1003, "msg": f"Too many connection attempts; retry in {retry} s."}),
                **{"Retry-After": str(retry)},
            )
        target = request.path.decode("latin-1")
        if self.api is not None:
            private = self.api.route(self, target)
            if private is not None:
                return private
        parsed = self._parse_path(target)
        if parsed is None:
            self.violations["invalid_url"] += 1
            return None  # picows answers 404
        route, combined, streams = parsed
        for name in streams:
            if not self.valid_stream(name, route):
                self.violations["invalid_url"] += 1
                return self.reject(HTTPStatus.BAD_REQUEST, _dumps({"code": 2, "msg": _INVALID_STREAM}))
        if len(streams) > self.rules.max_streams:
            self.violations["too_many_streams"] += 1
            return self.reject(
                HTTPStatus.BAD_REQUEST,
                _dumps(
                    {
                        "code": 2,
                        "msg": f"Invalid request: too many streams ({len(streams)} > "
                        f"{self.rules.max_streams} per connection)",
                    }
                ),
            )
        return _Connection(self, next(self._ids), route, combined, streams)

    def _parse_path(self, target: str) -> tuple[str, bool, list[str]] | None:
        """``(route, combined, streams)`` for a served path, ``None`` for anything else."""
        parts = urlsplit(target)
        path = parts.path
        route = ""
        for prefix in _ROUTES[self.market]:
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                route = prefix
                path = path[len(prefix) :]
                break
        if path in ("/ws", "/ws/"):
            return route, False, []
        if path.startswith("/ws/"):
            names = unquote(path[4:]).split("/")
            return route, False, list(dict.fromkeys(n for n in names if n))
        if path in ("/stream", "/stream/"):
            query = parse_qs(parts.query, keep_blank_values=True).get("streams", [""])
            names = "/".join(query).split("/")
            return route, True, list(dict.fromkeys(n for n in names if n))
        return None


# ---------------------------------------------------------------------------------------------
# Throughput


class _CountingClient(WSListener):
    def __init__(self, expected: int, done: asyncio.Future[float]) -> None:
        super().__init__()
        self.count = 0
        self.expected = expected
        self.done = done

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.count += 1
            if self.count == self.expected and not self.done.done():
                self.done.set_result(time.perf_counter())


def _bench_client_main() -> None:
    """The benchmark's client, run as ``python -c ... KIND PORT PATH N BYTES`` in its own process.

    ``picows``: count N text frames with picows. ``raw``: handshake over a plain socket, then
    count bytes until the N frames' BYTES arrived (no per-frame work, so it never limits the
    server). Prints ``done``. A subprocess, not multiprocessing: the caller's ``__main__`` is
    never re-imported.
    """
    import base64
    import os
    import socket
    import sys

    import uvloop

    kind, port, path, expected, expected_bytes = sys.argv[1:6]
    if kind == "raw":
        with socket.create_connection(("127.0.0.1", int(port))) as sock:
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise SystemExit("closed during the handshake")
                head += chunk
            if not head.startswith(b"HTTP/1.1 101"):
                raise SystemExit(head.split(b"\r\n", 1)[0].decode())
            got = len(head.split(b"\r\n\r\n", 1)[1])
            buf = bytearray(1 << 20)
            while got < int(expected_bytes):
                n = sock.recv_into(buf)
                if not n:
                    raise SystemExit("closed early")
                got += n
        print("done", flush=True)
        return

    async def main() -> None:
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        url = f"ws://127.0.0.1:{port}{path}"
        transport, _ = await ws_connect(lambda: _CountingClient(int(expected), done), url)
        try:
            await asyncio.wait_for(done, 120)
            print("done", flush=True)
        finally:
            transport.disconnect()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


_BENCH_PAYLOAD = (
    b'{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT","U":100000001,"u":100000003,'
    b'"b":[["37000.01000000","0.50000000"]],"a":[["37000.02000000","1.20000000"]]}'
)


def measure_throughput_stats(
    n_messages: int = 1_000_000,
    payload: bytes | None = None,
    *,
    step: int = 1000,
    batched: bool = False,
    client: str = "raw",
) -> dict[str, float]:
    """Push ``n_messages`` copies of ``payload`` (a 159-byte depth event by default) to one
    client on loopback; time it from the first publish to the last byte received.

    The publisher works like the exchange's max-speed loop: ``step`` events (one ``publish``
    each, or one ``publish_many`` call if ``batched``), ``flush``, a loop turn, and a wait
    (``hub.drain``) whenever the client's buffer is full. ``client``:

    * ``"raw"`` (default): a WebSocket client in its own process that only counts bytes, so
      the number is the server's own rate;
    * ``"picows"``: a picows client in its own process, one Python callback per frame;
    * ``"inline"``: a picows client in the server's loop (both sides' cost: a floor).

    Returns ``msgs_per_s``, ``seconds``, ``writes``, ``msgs_per_write``, ``bytes_per_write``,
    ``max_batch_bytes``.
    """
    import os
    import sys

    import uvloop  # a dependency except on Windows; only the benchmark insists on it

    import tickbook

    if client not in ("raw", "picows", "inline"):
        raise ValueError(f"client must be raw, picows or inline, not {client!r}")
    body = _BENCH_PAYLOAD if payload is None else payload
    stream = "btcusdt@depth@100ms"
    path = f"/ws/{stream}"
    frame_bytes = n_messages * (len(_text_header(len(body))) + len(body))
    src = os.path.dirname(os.path.dirname(os.path.abspath(tickbook.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p))
    child_code = "from tickbook.sim.ws import _bench_client_main; _bench_client_main()"

    async def run() -> dict[str, float]:
        hub = StreamHub()
        server = WsServer(hub, Market.SPOT, WsRules(write_high_water=4 << 20))
        await server.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[float] = loop.create_future()
        transport: WSTransport | None = None
        child: asyncio.subprocess.Process | None = None
        try:
            if client == "inline":
                url = server.url + path
                transport, _ = await ws_connect(lambda: _CountingClient(n_messages, done), url)
            else:
                args = (client, str(server.port), path, str(n_messages), str(frame_bytes))
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", child_code, *args, stdout=asyncio.subprocess.PIPE, env=env
                )
            deadline = loop.time() + 30
            while hub.subscribers(stream) == 0:
                if loop.time() > deadline or (child is not None and child.returncode is not None):
                    raise RuntimeError("the benchmark client did not connect")
                await asyncio.sleep(0.001)
            publish = hub.publish
            chunk = [body] * step
            t0 = time.perf_counter()
            sent = 0
            while sent < n_messages:
                k = min(step, n_messages - sent)
                if batched:
                    hub.publish_many(stream, chunk if k == step else chunk[:k])
                else:
                    for _ in range(k):
                        publish(stream, body)
                sent += k
                hub.flush()
                await asyncio.sleep(0)
                if hub.congested:
                    await hub.drain()
            if child is not None:
                assert child.stdout is not None
                line = await asyncio.wait_for(child.stdout.readline(), 120)
                if line.strip() != b"done":
                    raise RuntimeError(f"the benchmark client failed: {line!r}")
                t1 = time.perf_counter()
            else:
                t1 = await asyncio.wait_for(done, 120)
        finally:
            if transport is not None:
                transport.disconnect()
            await server.stop()
            if child is not None:
                try:
                    await asyncio.wait_for(child.wait(), 10)
                except TimeoutError:  # pragma: no cover - only if the client hung
                    child.kill()
                    await child.wait()
        return {
            "msgs_per_s": n_messages / (t1 - t0),
            "seconds": t1 - t0,
            "writes": hub.writes,
            "msgs_per_write": n_messages / max(1, hub.writes),
            "bytes_per_write": hub.bytes_written / max(1, hub.writes),
            "max_batch_bytes": hub.max_batch_bytes,
        }

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run())


def measure_throughput(n_messages: int = 1_000_000, payload: bytes | None = None) -> float:
    """Messages per second the server pushes to one client on loopback, one ``publish`` per
    message as the exchange's loop does (client: its own process, counting bytes). See
    ``measure_throughput_stats`` for the method, other clients and the batch sizes."""
    return measure_throughput_stats(n_messages, payload)["msgs_per_s"]
