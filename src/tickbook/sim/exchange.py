"""``Exchange``: the local Binance-compatible exchange, composed and paced.

One ``Exchange`` serves one market source (a recording or a generated market) on loopback:
the REST API (``tickbook.sim.rest``, aiohttp) and the market streams (``tickbook.sim.ws``,
picows), both on 127.0.0.1, plus the pacing loop that advances the source and publishes its
events. Everything runs on one event loop, so the truth a REST request reads is exactly the
book after the last event published: no locks, and a snapshot is always consistent with the
stream.

Pacing. ``speed=1.0`` replays at the recorded pace (event time ``E``), ``speed=X`` X times
faster, ``speed=None`` as fast as possible. In every mode the loop publishes a batch of
steps, flushes the hub once (one write per connection for the whole batch: per-message sends
would make the server the bottleneck of any feed benchmark), and then yields to the loop so
REST requests and WebSocket control messages are served between batches. When a client reads
slower than the exchange publishes, the hub reports congestion and the loop waits for it to
drain: a replay at maximum speed is "as fast as the client reads", never a memory blow-up.

Depth events are published under every diff-depth stream name of the market (``@depth``,
``@depth@100ms``, ...), because a subscriber names a speed and the hub matches names
exactly. A name whose update window is longer than the recorded cadence (``@depth``, 1000 ms
on spot, from a ``@100ms`` recording; every futures speed from a ``@0ms`` one) gets the
recorded events merged per window (``tickbook.sim.speeds.DepthMerger``), as the exchange
builds its slower streams; other names get the events as recorded. Partial depth
(``@depth20@100ms``...) is published after every depth event. Derived streams (bookTicker, depthN) are
built by the source only while someone is subscribed to them (``set_derived``).

Faults (``tickbook.sim.faults.FaultPlan``) are asked once per depth event *of a symbol* and the
answer is applied by the hub to every connection carrying any of its depth streams; REST
faults are applied by the REST app. Every injected fault lands in ``fault_log``.

Several markets in one process: ``Venue`` runs one ``Exchange`` per market (each with its own
pacing loop, limits, faults and WebSocket server, since spot's and COIN-M's stream paths are
the same) behind ONE REST server that routes ``/api/v3``, ``/fapi`` and ``/dapi`` to their
market, as Binance's separate hosts do. All of it shares the one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from aiohttp import web

from tickbook import OrderBook
from tickbook._types import Market
from tickbook.limits import MarketLimits, RateGuard, RateLimit, RateLimitType, default_limits
from tickbook.signing import KeyRegistry, SigningKey
from tickbook.sim.faults import Action, FaultPlan
from tickbook.sim.market import DerivedStreams, Event, MarketSource
from tickbook.sim.rest import DEFAULT_BALANCES, build_app, build_multi_app, truth_summary
from tickbook.sim.speeds import DepthMerger, period_ms
from tickbook.sim.trading import TradingEngine
from tickbook.sim.ws import StreamHub, WsRules, WsServer
from tickbook.sim.wsapi import PrivateApi

__all__ = ["Exchange", "KeySpec", "Venue", "VenueFaults", "new_event_loop"]

log = logging.getLogger(__name__)

KeySpec = str | SigningKey  # "API_KEY:SECRET", "API_KEY:@PEMFILE", or a client key object
_PlanLike = FaultPlan | str | None
# A venue's faults: one spec for every market (each counts its own), or one per market.
VenueFaults = FaultPlan | str | Mapping[Market, _PlanLike] | Mapping[str, _PlanLike] | None

# Stream-name speed suffixes the market serves for diff depth and partial depth (binance-spec
# §1.1, §2.1; the same sets ``tickbook.sim.ws`` validates subscriptions against).
_DEPTH_SPEEDS: Final = {
    Market.SPOT: ("", "@100ms", "@1000ms"),
    Market.USDM: ("", "@100ms", "@250ms", "@500ms"),
    Market.COINM: ("", "@100ms", "@250ms", "@500ms"),
}
_PARTIAL: Final = ("depth5", "depth10", "depth20")

# Maximum-speed batches: this many steps, or this much wall time, between two yields to the
# loop. Large enough that the per-batch overhead (flush, yield) vanishes, small enough that a
# REST request waits at most a couple of milliseconds.
_BATCH_STEPS: Final = 512
_BATCH_SECONDS: Final = 0.002
# Recorded-pace catch-up: at most this many due steps per batch before yielding.
_PACED_BATCH: Final = 4096
_TRADES_KEPT: Final = 1000  # recent trades per symbol, for GET trades (its maximum limit)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop (a dependency on POSIX: picows and the exchange are tuned for it), or
    the default loop where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _DepthFaults:
    """The hub's fault hook, answering with the plan's decision for the event being published.

    The hub asks once per *stream* (``@depth`` and ``@depth@100ms`` count separately), the plan
    wants to be asked once per depth event *of a symbol* (its ``N`` and its log). The exchange
    asks the plan itself and parks the answer here while it publishes that event's names.
    """

    __slots__ = ("actions", "symbol")

    def __init__(self) -> None:
        self.symbol = ""
        self.actions: Sequence[Action] = ()

    def on_depth_event(self, symbol: str, n: int) -> Sequence[Action]:
        return self.actions if symbol == self.symbol else ()


class Exchange:
    """A local exchange serving ``source`` on 127.0.0.1.

    Parameters:

    * ``faults``: a ``FaultPlan`` or a ``--faults`` spec string;
    * ``keys``: API keys signed endpoints accept, as ``"API_KEY:SECRET"`` (HMAC),
      ``"API_KEY:@FILE"`` (RSA/Ed25519 public key PEM) or client key objects
      (``tickbook.signing.HmacKey``/``RsaKey``/``Ed25519Key``: their public half is registered);
    * ``speed``: 1.0 recorded pace, X times faster, None as fast as possible;
    * ``lifetime``: maximum WebSocket connection lifetime in seconds (default the market's);
    * ``ws_rules``: a ``WsRules`` (or overrides for ``WsRules.for_market``);
    * ``rest_port``/``ws_port``: 0 picks free ports;
    * ``weight_limit``: the REQUEST_WEIGHT per minute to enforce instead of the documented one;
      ``ban_tolerance``/``ban_base_ms``: requests tolerated while throttled before a 418, and
      the first ban's length (escalating from there);
    * ``balances``: the simulated account of every key (asset -> amount text),
      ``key_balances`` per key;
    * ``clock_ms``: the server clock (epoch ms; default the wall clock); a fault plan's skew
      is added to it;
    * ``wait_for_client``: hold the replay until a client shows up (a REST request or a
      WebSocket connection); ``hold``: hold it until ``resume()``;
    * ``idle``: seconds to sleep between two batches (default 0: just yield to the loop).
      When the exchange shares its process with a client (a test running it in a thread),
      a short real sleep hands that thread the GIL: at full speed the exchange otherwise
      takes it back at every loop turn and can starve the client (CPython's GIL favours
      the thread that just released it for I/O).
    """

    def __init__(
        self,
        source: MarketSource,
        *,
        faults: FaultPlan | str | None = None,
        keys: KeyRegistry | Iterable[KeySpec] = (),
        speed: float | None = 1.0,
        lifetime: float | None = None,
        ws_rules: WsRules | Mapping[str, Any] | None = None,
        rest_port: int = 0,
        ws_port: int = 0,
        host: str = "127.0.0.1",
        weight_limit: int | None = None,
        ban_tolerance: int = 2,
        ban_base_ms: int | None = None,
        balances: Mapping[str, str] | None = None,
        key_balances: Mapping[str, Mapping[str, str]] | None = None,
        clock_ms: Callable[[], int] | None = None,
        wait_for_client: bool = False,
        hold: bool = False,
        idle: float = 0.0,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive (or None for maximum speed), got {speed}")
        if weight_limit is not None and weight_limit < 1:
            raise ValueError(f"weight_limit must be positive, got {weight_limit}")
        self._source = source
        self.market: Market = source.market
        self.speed = speed
        self.host = host
        self._rest_port = rest_port
        self._ws_port = ws_port
        self.plan: FaultPlan | None = FaultPlan.from_spec(faults) if isinstance(faults, str) else faults
        self._clock = clock_ms if clock_ms is not None else _wall_ms
        self._keys = keys if isinstance(keys, KeyRegistry) else self._registry(keys)
        self._guard = self._make_guard(weight_limit, ban_tolerance, ban_base_ms)
        self.weight_limit = weight_limit
        self._balances = dict(balances) if balances is not None else dict(DEFAULT_BALANCES)
        self._key_balances = {k: dict(v) for k, v in (key_balances or {}).items()}
        # Accounts, orders and matching against the replay (tickbook.sim.trading).
        self.trading = TradingEngine(self.market, source, now_ms=self.now_ms, balances=self.balances)
        rules = (
            ws_rules if isinstance(ws_rules, WsRules) else WsRules.for_market(self.market, **(ws_rules or {}))
        )
        if lifetime is not None:
            rules = replace(
                rules, lifetime=lifetime, shutdown_notice=min(rules.shutdown_notice, lifetime / 2)
            )
        self.ws_rules = rules
        self._hook = _DepthFaults()
        self.hub = StreamHub(self._hook if self.plan is not None else None, now_ms=self.now_ms)
        # The WebSocket API, listenKeys and user-data streams (served by the WsServer and REST).
        self.private_api = PrivateApi(self)
        self._ws: WsServer | None = None
        self._runner: web.AppRunner | None = None
        self._rest_base: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._rest_violations: collections.Counter[str] = collections.Counter()
        self._trades: dict[str, collections.deque[bytes]] = {}
        self._depth_n: dict[str, int] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        # Per symbol, the diff-depth stream names and the merger of each slower one (None: as recorded).
        self._depth_routes: dict[str, tuple[tuple[str, DepthMerger | None], ...]] = {}
        self._mergers: list[tuple[str, str, DepthMerger]] = []  # (symbol, stream name, merger)
        # Fault actions of the raw events inside each merged stream's open window: they apply to
        # the merged event that carries those events (a dropped update drops its whole window, so
        # the client sees an ID gap instead of silently missing levels).
        self._window_actions: dict[str, tuple[Action, ...]] = {}
        self._derived_candidates = self._derived_names()
        self._derived_now: frozenset[str] = frozenset()
        self._client_seen: asyncio.Event | None = None  # created on the loop in start()
        self._running: asyncio.Event | None = None
        self.wait_for_client = wait_for_client
        self._hold = hold
        self.idle = idle
        self._pause_at: int | None = None
        self.finished: asyncio.Event = asyncio.Event()
        self.steps = 0  # source steps taken
        self.events = 0  # events published (each counted once, whatever its stream names)
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: BaseException | None = None  # what ended the pacing loop, if not the source

    # ------------------------------------------------------------------ construction helpers

    def _registry(self, keys: Iterable[KeySpec]) -> KeyRegistry:
        registry = KeyRegistry(clock=lambda: self.now_ms() * 1000)
        for key in keys:
            if isinstance(key, str):
                registry.register(key)
            else:
                registry.add(key)
        return registry

    def _make_guard(self, weight_limit: int | None, tolerance: int, ban_base_ms: int | None) -> RateGuard:
        limits = default_limits(self.market)
        if weight_limit is not None:
            kept = tuple(rl for rl in limits.rate_limits if rl.kind is not RateLimitType.REQUEST_WEIGHT)
            weight = RateLimit(
                RateLimitType.REQUEST_WEIGHT,
                limits.of(RateLimitType.REQUEST_WEIGHT)[0].interval,
                1,
                weight_limit,
            )
            limits = MarketLimits(self.market, (weight, *kept))
        options: dict[str, Any] = {"tolerance": tolerance, "clock": self.now_ms}
        if ban_base_ms is not None:
            options["ban_base_ms"] = ban_base_ms
        return RateGuard(limits, **options)

    def _derived_names(self) -> tuple[str, ...]:
        """Every subscribable name of a derived stream of the served symbols."""
        names: list[str] = []
        for symbol in self._source.symbols:
            lower = symbol.lower()
            names.append(f"{lower}@bookTicker")
            for kind in _PARTIAL:
                names.extend(f"{lower}@{kind}{speed}" for speed in _DEPTH_SPEEDS[self.market])
        return tuple(names)

    def _stream_names(self, event: Event) -> tuple[str, ...]:
        """The stream names an event is published under (speed variants for depth kinds)."""
        stream = event.stream
        names = self._names.get(stream)
        if names is None:
            kind = event.kind
            if kind == "depth" or kind in _PARTIAL:
                names = tuple(stream + speed for speed in _DEPTH_SPEEDS[self.market])
            else:
                names = (stream,)
            self._names[stream] = names
        return names

    # ------------------------------------------------------------------ the context REST reads

    @property
    def source(self) -> MarketSource:
        return self._source

    @property
    def keys(self) -> KeyRegistry:
        return self._keys

    @property
    def guard(self) -> RateGuard:
        return self._guard

    @property
    def faults(self) -> FaultPlan | None:
        return self.plan

    @property
    def fault_log(self) -> list[dict[str, Any]]:
        """Every fault injected so far (``kind``, ``symbol``, ``at``, ``time``, details)."""
        return self.plan.log if self.plan is not None else []

    @property
    def violations(self) -> dict[str, dict[str, int]]:
        """Breaches of the exchange's limits by clients: REST (429s, 418s) and WebSocket."""
        return {"rest": dict(self._rest_violations), "ws": dict(self.hub.violations)}

    def now_ms(self) -> int:
        """The exchange's clock: ``clock_ms`` plus the fault plan's skew."""
        skew = self.plan.clock_skew_ms() if self.plan is not None else 0
        return self._clock() + skew

    def count_violation(self, kind: str) -> None:
        self._rest_violations[kind] += 1

    def client_seen(self) -> None:
        """A client made contact (the REST app calls this): releases ``wait_for_client``."""
        if self._client_seen is not None:
            self._client_seen.set()

    def recent_trades(self, symbol: str) -> Sequence[bytes]:
        return self._trades.get(symbol, ())

    def balances(self, api_key: str) -> Mapping[str, str]:
        return self._key_balances.get(api_key, self._balances)

    def truth(self, symbol: str) -> OrderBook:
        """The true book of ``symbol`` (live: read it on the exchange's loop)."""
        return self._source.truth(symbol)

    def truth_summary(self, symbol: str, limit: int = 20) -> dict[str, Any]:
        """What ``GET /sim/truth`` answers: top levels as exact strings, ID, ``checksum(limit)``."""
        return truth_summary(self._source, symbol, limit)

    # ------------------------------------------------------------------ lifecycle

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT`` (in a ``Venue``: the venue's REST server)."""
        if self._rest_base is None:
            raise RuntimeError("Exchange not started")
        return self._rest_base

    @property
    def ws_url(self) -> str:
        if self._ws is None:
            raise RuntimeError("Exchange not started")
        return self._ws.url

    @property
    def symbols(self) -> list[str]:
        return list(self._source.symbols)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Bind both servers (free ports for 0) and start the pacing loop."""
        await self._start_streams()
        try:
            runner, port = await _serve_rest(
                build_app(self, rate_limit_override=self.weight_limit), self.host, self._rest_port
            )
        except BaseException:
            await self.stop()
            raise
        self._runner = runner
        self._rest_port = port
        self._attach_rest(f"http://{self.host}:{port}")
        self._begin()

    # The three steps of ``start``, also taken by a ``Venue``, which serves the REST API of
    # all its markets itself: bind the WebSocket server, learn the REST URL, start pacing.

    async def _start_streams(self) -> None:
        if self._ws is not None:
            raise RuntimeError("Exchange already started")
        self._client_seen = asyncio.Event()
        self._running = asyncio.Event()
        if not self._hold:
            self._running.set()
        ws = WsServer(
            self.hub, self.market, self.ws_rules, host=self.host, port=self._ws_port, api=self.private_api
        )
        await ws.start()
        self._ws = ws

    def _attach_rest(self, url: str) -> None:
        self._rest_base = url

    def _begin(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._pace(), name="tickbook-sim-pacing")

    async def stop(self) -> None:
        """Stop the pacing loop, close every WebSocket (``serverShutdown`` first on spot) and
        stop listening. Safe to call twice and from a cancelled task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws, self._ws = self._ws, None
        runner, self._runner = self._runner, None
        self._rest_base = None
        try:
            if ws is not None:
                await ws.stop()
        finally:
            if runner is not None:
                await runner.cleanup()

    async def __aenter__(self) -> Exchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def pause(self, at_step: int | None = None) -> None:
        """Stop stepping the source (the servers keep answering): after the current batch, or
        right after step number ``at_step`` (so a test can stop the replay at an exact point,
        whatever the speed)."""
        if at_step is not None:
            self._pause_at = at_step
            return
        if self._running is not None:
            self._running.clear()
        else:
            self._hold = True

    @property
    def paused(self) -> bool:
        """Whether the replay is held (by ``hold``, ``pause()`` or a reached ``at_step``)."""
        return self._running is None or not self._running.is_set()

    def resume(self) -> None:
        """Go on stepping (also releases ``hold``)."""
        self._hold = False
        self._pause_at = None
        if self._running is not None:
            self._running.set()

    async def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait for the replay to end; False on timeout."""
        try:
            await asyncio.wait_for(self.finished.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ pacing

    async def _wait_for_client(self) -> None:
        assert self._client_seen is not None
        while not self._client_seen.is_set():
            if self.hub.connection_count:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._client_seen.wait(), 0.005)

    async def _pace(self) -> None:
        """Step the source at the chosen pace and publish; sets ``finished`` at the end."""
        try:
            if self.wait_for_client:
                await self._wait_for_client()
            await self._paced() if self.speed is not None else await self._max_speed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken source: log it, keep the servers answering
            self.error = exc
            log.exception("the exchange's pacing loop stopped")
            return
        self._close_windows(0, final=True)  # the last window of every merged stream
        self.hub.flush()
        self.finished_at = time.monotonic()
        self.finished.set()

    async def _yield(self) -> None:
        """Let a congested client drain (as fast as the client reads), else yield to the loop."""
        if self.hub.congested:
            await self.hub.drain()
        else:
            await asyncio.sleep(self.idle)

    async def _gate(self) -> None:
        """Between batches: let a congested client drain, yield to the loop, honour a pause.

        The pause is checked last, after every await, so that a ``pause()`` that ran while
        this task was suspended takes effect before the next batch.
        """
        assert self._running is not None
        await self._yield()
        while not self._running.is_set():
            self.hub.flush()
            await self._running.wait()

    async def _max_speed(self) -> None:
        src = self._source
        loop = asyncio.get_running_loop()
        self.started_at = time.monotonic()
        publish = self._publish
        # With an idle pause, batches are longer so that the pause stays a fifth of the time.
        batch_seconds = max(_BATCH_SECONDS, 4 * self.idle)
        while src.next_time_ms() is not None:
            await self._gate()
            self._refresh_derived()
            deadline = loop.time() + batch_seconds
            for i in range(_BATCH_STEPS):
                publish(src.step())
                if src.next_time_ms() is None or (i & 63 == 63 and loop.time() >= deadline):
                    break
                if self.steps == self._pause_at:
                    break
            self._check_pause_at()
            self.hub.flush()

    async def _paced(self) -> None:
        src = self._source
        loop = asyncio.get_running_loop()
        assert self.speed is not None
        scale = 1.0 / (1000.0 * self.speed)
        t0 = src.next_time_ms()
        w0 = loop.time()
        self.started_at = time.monotonic()
        while (t := src.next_time_ms()) is not None:
            assert self._running is not None
            assert t0 is not None
            if not self._running.is_set():  # a pause shifts the schedule: no burst on resume
                paused_at = loop.time()
                await self._gate()
                w0 += loop.time() - paused_at
                continue
            wait = w0 + (t - t0) * scale - loop.time()
            if wait > 0:
                self.hub.flush()
                await asyncio.sleep(wait)
                continue
            self._refresh_derived()
            now = loop.time()
            for _ in range(_PACED_BATCH):
                self._publish(src.step())
                t = src.next_time_ms()
                if t is None or w0 + (t - t0) * scale > now or self.steps == self._pause_at:
                    break
            self._check_pause_at()
            self.hub.flush()
            await self._yield()  # a pause is handled at the top, where it shifts the schedule

    def _check_pause_at(self) -> None:
        if self._pause_at is not None and self.steps >= self._pause_at:
            self._pause_at = None
            assert self._running is not None
            self._running.clear()

    def _refresh_derived(self) -> None:
        """Tell the source which derived streams have subscribers (it builds only those)."""
        src = self._source
        if not isinstance(src, DerivedStreams):
            return
        hub = self.hub
        wanted = frozenset(name for name in self._derived_candidates if hub.subscribers(name))
        if wanted != self._derived_now:
            self._derived_now = wanted
            src.set_derived(wanted)

    def _routes(self, event: Event) -> tuple[tuple[str, DepthMerger | None], ...]:
        """A symbol's diff-depth stream names, each with its merger if it is slower than recorded."""
        routes = self._depth_routes.get(event.symbol)
        if routes is None:
            recorded = getattr(self._source, "depth_speeds", {}).get(event.symbol)
            native = period_ms(self.market, recorded) if recorded is not None else 0
            built = []
            for name, speed in zip(self._stream_names(event), _DEPTH_SPEEDS[self.market], strict=True):
                period = period_ms(self.market, speed)
                merger = DepthMerger(period) if period > native else None
                if merger is not None:
                    self._mergers.append((event.symbol, name, merger))
                built.append((name, merger))
            routes = self._depth_routes[event.symbol] = tuple(built)
        return routes

    def _publish_depth(self, event: Event, actions: tuple[Action, ...] = ()) -> None:
        """Publish a depth event on its streams: as recorded, or into the slower streams' windows."""
        hub = self.hub
        hook = self._hook
        hook.symbol = event.symbol
        for name, merger in self._routes(event):
            if merger is None:
                hook.actions = actions
                hub.publish(name, event.payload)
                continue
            merged = merger.add(event.payload)
            if merged is not None:  # this event opened a new window: the previous one is complete
                hook.actions = self._window_actions.pop(name, ())
                hub.publish(name, merged)
            if actions:
                self._window_actions[name] = (*self._window_actions.get(name, ()), *actions)
        hook.actions = ()

    def _close_windows(self, now_ms: int, *, final: bool = False) -> None:
        """Publish the merged events of the windows that exchange time ``now_ms`` has closed."""
        hook = self._hook
        for symbol, name, merger in self._mergers:
            merged = merger.flush() if final else merger.close_if_due(now_ms)
            if merged is not None:
                hook.symbol = symbol
                hook.actions = self._window_actions.pop(name, ())
                self.hub.publish(name, merged)
        hook.actions = ()

    def _publish(self, events: list[Event]) -> None:
        """Publish one step's events under all their stream names; faults per symbol event."""
        hub = self.hub
        plan = self.plan
        self.steps += 1
        self.events += len(events)
        if events and self._mergers:
            self._close_windows(events[0].time_ms)
        for event in events:
            kind = event.kind
            if kind == "depth":
                if plan is None:
                    self._publish_depth(event)
                    continue
                symbol = event.symbol
                n = self._depth_n[symbol] = self._depth_n.get(symbol, 0) + 1
                self._publish_depth(event, tuple(plan.on_depth_event(symbol, n)))
                continue
            names = self._stream_names(event)
            if kind == "trade":
                trades = self._trades.get(event.symbol)
                if trades is None:
                    trades = self._trades[event.symbol] = collections.deque(maxlen=_TRADES_KEPT)
                trades.append(event.payload)
            for name in names:
                hub.publish(name, event.payload)
        # After the step's events are out: the replayed trades and books fill resting orders.
        self.trading.on_events(events)


async def _serve_rest(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0: a free port); the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


class Venue:
    """Several markets in one process, the way Binance serves them from separate hosts.

    One ``Exchange`` per market (each with its own source, pacing loop, stream hub, limits,
    fault plan and WebSocket server on its own port: the stream paths of spot and COIN-M are
    the same, ``/ws`` and ``/stream``), and ONE REST server for all of them: their REST paths
    never overlap (``/api/v3``, ``/fapi``, ``/dapi``), so every market's routes are mounted on
    one aiohttp app and each request is charged against its own market's weight counters
    (``tickbook.sim.rest.build_multi_app``). The control endpoints on it cover every market:
    ``/sim/truth?symbol=S&market=M`` (``market`` needed only when S is served on several
    markets), ``/sim/faults`` (each entry with its ``market``), ``/sim/violations`` (totals
    plus ``markets``: each market's own).

    ``Venue(exchanges, rest_port=0)`` composes exchanges built as usual (their ``rest_port`` is
    not used); ``Venue.from_sources(sources, **options)`` builds them with shared options.
    The first exchange is the *first market*: ``ws_url``, ``market`` and ``symbols`` are its
    (what a one-market client reads), ``markets_info()`` describes them all.
    """

    def __init__(self, exchanges: Iterable[Exchange], *, rest_port: int = 0) -> None:
        by_market: dict[Market, Exchange] = {}
        for ex in exchanges:
            if ex.market in by_market:
                raise ValueError(
                    f"two sources of market {ex.market.value}: one source per market "
                    "(a source may hold several symbols)"
                )
            by_market[ex.market] = ex
        if not by_market:
            raise ValueError("a venue needs at least one market")
        hosts = {ex.host for ex in by_market.values()}
        if len(hosts) != 1:
            raise ValueError(f"the exchanges of a venue listen on one host, got {sorted(hosts)}")
        self.exchanges: dict[Market, Exchange] = by_market
        self.host: str = hosts.pop()
        self._rest_port = rest_port
        self._runner: web.AppRunner | None = None

    @classmethod
    def from_sources(
        cls,
        sources: Iterable[MarketSource],
        *,
        rest_port: int = 0,
        ws_ports: Mapping[Market, int] | Mapping[str, int] | None = None,
        faults: VenueFaults = None,
        keys: KeyRegistry | Iterable[KeySpec] = (),
        **options: Any,
    ) -> Venue:
        """One ``Exchange(source, **options)`` per source (one source per market).

        ``ws_ports``: WebSocket port per market (default 0: free ports). ``faults``: a spec,
        whose faults then apply to each market separately (``drop@500`` drops the 500th depth
        event of every symbol of every market, ``http@3:500`` fails the 3rd request of each
        market's REST API), or a plan or spec per market; a lone ``FaultPlan`` only for one
        source (it counts per symbol, and a symbol may be on several markets). ``keys``: one
        registry shared by all markets. ``options``: the other ``Exchange`` options.
        """
        source_list = list(sources)
        if "ws_port" in options:
            raise TypeError("Venue.from_sources takes rest_port= and ws_ports={market: port}")
        ports = {Market.parse(m): p for m, p in (ws_ports or {}).items()}
        if isinstance(faults, FaultPlan) and len(source_list) > 1:
            raise ValueError("a FaultPlan serves one market: give a spec, or a plan per market")
        plans: Mapping[Market, FaultPlan | str | None]
        if isinstance(faults, Mapping):
            plans = {Market.parse(m): f for m, f in faults.items()}
        else:
            plans = {src.market: faults for src in source_list}
        # One registry for all markets (one account): the first exchange builds it from specs.
        shared: KeyRegistry | list[KeySpec] = keys if isinstance(keys, KeyRegistry) else list(keys)
        exchanges: list[Exchange] = []
        for src in source_list:
            ex = Exchange(
                src, faults=plans.get(src.market), keys=shared, ws_port=ports.get(src.market, 0), **options
            )
            shared = ex.keys
            exchanges.append(ex)
        return cls(exchanges, rest_port=rest_port)

    # ------------------------------------------------------------------ where and what

    def exchange(self, market: Market | str | None = None) -> Exchange:
        """The exchange of ``market`` (default: the first market)."""
        if market is None:
            return next(iter(self.exchanges.values()))
        m = Market.parse(market)
        try:
            return self.exchanges[m]
        except KeyError:
            raise LookupError(f"market {m.value} is not served") from None

    def exchange_for(self, symbol: str, market: Market | str | None = None) -> Exchange:
        """The exchange serving ``symbol`` (``market`` needed when several markets serve it)."""
        if market is not None:
            ex = self.exchange(market)
            if symbol not in ex.symbols:
                raise LookupError(f"{symbol} is not served on {ex.market.value}")
            return ex
        holders = [ex for ex in self.exchanges.values() if symbol in ex.symbols]
        if not holders:
            raise LookupError(f"{symbol} is not served")
        if len(holders) > 1:
            served = ", ".join(ex.market.value for ex in holders)
            raise LookupError(f"{symbol} is served on {served}: say which market")
        return holders[0]

    @property
    def market(self) -> Market:
        return self.exchange().market

    @property
    def symbols(self) -> list[str]:
        """The first market's symbols."""
        return self.exchange().symbols

    @property
    def rest_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("Venue not started")
        return f"http://{self.host}:{self._rest_port}"

    @property
    def ws_url(self) -> str:
        """The first market's WebSocket URL (each market has its own)."""
        return self.exchange().ws_url

    def markets_info(self) -> dict[str, dict[str, Any]]:
        """``{"spot": {"rest": URL, "ws": URL, "symbols": [...]}, "usdm": {...}}``."""
        return {
            m.value: {"rest": ex.rest_url, "ws": ex.ws_url, "symbols": ex.symbols}
            for m, ex in self.exchanges.items()
        }

    def urls(self) -> dict[str, Any]:
        """What ``tickbook sim`` prints first: the first market's ``rest``, ``ws``, ``market``
        and ``symbols`` (what a one-market client reads), and ``markets``: all of them."""
        return {
            "rest": self.rest_url,
            "ws": self.ws_url,
            "market": self.market.value,
            "symbols": self.symbols,
            "markets": self.markets_info(),
        }

    # ------------------------------------------------------------------ reads across markets

    def truth(self, symbol: str, market: Market | str | None = None) -> OrderBook:
        return self.exchange_for(symbol, market).truth(symbol)

    def truth_summary(
        self, symbol: str, limit: int = 20, market: Market | str | None = None
    ) -> dict[str, Any]:
        return self.exchange_for(symbol, market).truth_summary(symbol, limit)

    @property
    def fault_log(self) -> list[dict[str, Any]]:
        """Every market's injected faults, each entry with its ``market``, in time order."""
        entries = [{**entry, "market": m.value} for m, ex in self.exchanges.items() for entry in ex.fault_log]
        entries.sort(key=lambda e: e.get("time") or 0)
        return entries

    @property
    def violations(self) -> dict[str, Any]:
        """``{"rest": {...}, "ws": {...}}`` summed over markets, and ``markets``: each one's."""
        per = {m.value: ex.violations for m, ex in self.exchanges.items()}
        total: dict[str, collections.Counter[str]] = {
            "rest": collections.Counter(),
            "ws": collections.Counter(),
        }
        for counts in per.values():
            for side, kinds in counts.items():
                total[side].update(kinds)
        return {"rest": dict(total["rest"]), "ws": dict(total["ws"]), "markets": per}

    @property
    def steps(self) -> int:
        return sum(ex.steps for ex in self.exchanges.values())

    @property
    def events(self) -> int:
        return sum(ex.events for ex in self.exchanges.values())

    @property
    def error(self) -> BaseException | None:
        """What ended a market's pacing loop, if anything did (the first market's first)."""
        return next((ex.error for ex in self.exchanges.values() if ex.error is not None), None)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind every market's WebSocket server and the shared REST server, start pacing."""
        if self._runner is not None:
            raise RuntimeError("Venue already started")
        exchanges = list(self.exchanges.values())
        try:
            for ex in exchanges:
                await ex._start_streams()
            app = build_multi_app([(ex, ex.weight_limit) for ex in exchanges], control=self)
            self._runner, self._rest_port = await _serve_rest(app, self.host, self._rest_port)
        except BaseException:
            for ex in exchanges:
                await ex.stop()
            raise
        url = self.rest_url
        for ex in exchanges:
            ex._attach_rest(url)
        for ex in exchanges:
            ex._begin()

    async def stop(self) -> None:
        """Stop every market (pacing, WebSockets), then the REST server. Safe to call twice."""
        runner, self._runner = self._runner, None
        try:
            for ex in self.exchanges.values():
                await ex.stop()
        finally:
            if runner is not None:
                await runner.cleanup()

    async def __aenter__(self) -> Venue:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return any(ex.running for ex in self.exchanges.values())

    @property
    def finished(self) -> bool:
        """Whether every market's replay is over."""
        return all(ex.finished.is_set() for ex in self.exchanges.values())

    async def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait for every market's replay to end; False on timeout."""
        waits = [ex.finished.wait() for ex in self.exchanges.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    def _scope(self, market: Market | str | None) -> list[Exchange]:
        return list(self.exchanges.values()) if market is None else [self.exchange(market)]

    def pause(self, at_step: int | None = None, market: Market | str | None = None) -> None:
        """``Exchange.pause`` on every market (``at_step`` counts each market's own steps), or
        on ``market`` only."""
        for ex in self._scope(market):
            ex.pause(at_step)

    def resume(self, market: Market | str | None = None) -> None:
        for ex in self._scope(market):
            ex.resume()

    def is_paused(self, market: Market | str | None = None) -> bool:
        """Whether every market (or ``market``) is paused."""
        return all(ex.paused for ex in self._scope(market))
