"""Run the local exchange from synchronous code: ``run_exchange(...)`` and the ``exchange`` fixture.

Tests are mostly synchronous, and a client under test may run its own event loop, so the
exchange gets a thread of its own with its own uvloop loop: the test talks to it over
loopback exactly as it would to Binance, and reads the truth, the fault log and the limit
violations through an ``ExchangeHandle`` whose methods hop onto the exchange's loop (the
truth is only ever read there, between two published batches, so it is consistent).

Use it as a context manager::

    from tickbook.sim.market import RecordedMarket
    from tickbook.sim.pytest_plugin import run_exchange

    with run_exchange(lambda: RecordedMarket.from_files(paths), speed=None) as ex:
        ... ex.rest_url, ex.ws_url, ex.truth("BTCUSDT"), ex.fault_log() ...

Several markets in one process (a ``Venue``: one REST server for all, one WebSocket server
per market): pass one source per market::

    with run_exchange([lambda: RecordedMarket.from_files(spot_files),
                       lambda: RecordedMarket.from_files(usdm_files)], speed=None) as ex:
        ... ex.rest_url, ex.ws_urls["usdm"], ex.markets, ex.truth("BTCUSDT", market="usdm") ...

or as a fixture, imported into a test module (pytest only loads plugins from conftest files
or the command line, so importing the fixture is the way that needs no configuration)::

    from tickbook.sim.pytest_plugin import exchange  # noqa: F401

    def test_client(exchange):
        ex = exchange(lambda: GeneratedMarket(["BTCUSDT"]), faults="drop@50")

Every exchange the fixture started is stopped at the end of the test. The module also works
as a pytest plugin (``-p tickbook.sim.pytest_plugin``), which registers the same fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import pytest

from tickbook._types import Market
from tickbook.sim.exchange import Exchange, Venue, new_event_loop
from tickbook.sim.market import MarketSource

__all__ = ["ExchangeHandle", "exchange", "run_exchange"]

T = TypeVar("T")
SourceLike = MarketSource | Callable[[], MarketSource]


class ExchangeHandle:
    """A running exchange seen from another thread: URLs, and thread-safe reads and controls.

    With several markets (a ``Venue``), ``rest_url`` is the shared REST server, ``ws_url``,
    ``market`` and ``symbols`` are the first market's, ``markets`` / ``ws_urls`` give every
    market's, and the reads and controls take ``market=`` (``truth`` needs it only for a
    symbol served on several markets; ``pause``/``resume`` without it act on every market).
    """

    def __init__(self, exchange: Exchange | Venue, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.venue: Venue | None = exchange if isinstance(exchange, Venue) else None
        first = exchange.exchange() if isinstance(exchange, Venue) else exchange
        # Live objects: touch them only through ``call``.
        self.exchange: Exchange = first  # the (first) market's exchange
        self.exchanges: dict[str, Exchange] = (
            {m.value: ex for m, ex in self.venue.exchanges.items()}
            if self.venue is not None
            else {first.market.value: first}
        )
        self.loop = loop
        self.timeout = timeout
        self.rest_url = first.rest_url
        self.ws_url = first.ws_url
        self.market = first.market.value
        self.symbols = list(first.symbols)
        self.markets: dict[str, dict[str, Any]] = {
            m: {"rest": ex.rest_url, "ws": ex.ws_url, "symbols": list(ex.symbols)}
            for m, ex in self.exchanges.items()
        }
        self.ws_urls: dict[str, str] = {m: info["ws"] for m, info in self.markets.items()}

    def urls(self) -> dict[str, Any]:
        """What ``tickbook sim`` prints first: ``{"rest", "ws", "market", "symbols"}`` (the first
        market's) and ``markets`` (each market's ``rest``, ``ws`` and ``symbols``)."""
        return {
            "rest": self.rest_url,
            "ws": self.ws_url,
            "market": self.market,
            "symbols": self.symbols,
            "markets": self.markets,
        }

    def _exchange(self, market: Market | str | None) -> Exchange:
        if market is None:
            return self.exchange
        name = Market.parse(market).value
        if name not in self.exchanges:
            raise LookupError(f"market {name} is not served (served: {', '.join(self.exchanges)})")
        return self.exchanges[name]

    def _scope(self, market: Market | str | None) -> list[Exchange]:
        return list(self.exchanges.values()) if market is None else [self._exchange(market)]

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(self.timeout if timeout is None else timeout)

    def _on_loop(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        async def on_loop() -> T:
            return fn()

        return self._run(on_loop(), timeout)

    def call(
        self, fn: Callable[[Exchange], T], timeout: float | None = None, *, market: Market | str | None = None
    ) -> T:
        """``fn(exchange)`` run on the exchange's loop, its result returned here (``market``:
        that market's exchange; default the first)."""
        ex = self._exchange(market)
        return self._on_loop(lambda: fn(ex), timeout)

    def truth(self, symbol: str, limit: int = 20, *, market: Market | str | None = None) -> dict[str, Any]:
        """The true book as ``GET /sim/truth`` gives it (exact strings, ID, checksum)."""
        venue = self.venue
        if venue is not None:
            return self._on_loop(lambda: venue.truth_summary(symbol, limit, market))
        ex = self._exchange(market)
        return self._on_loop(lambda: ex.truth_summary(symbol, limit))

    def fault_log(self) -> list[dict[str, Any]]:
        """A copy of the faults injected so far (with several markets: each with its ``market``)."""
        venue = self.venue
        if venue is not None:
            return self._on_loop(lambda: venue.fault_log)
        return self.call(lambda ex: [dict(entry) for entry in ex.fault_log])

    def violations(self) -> dict[str, Any]:
        """``{"rest": {...}, "ws": {...}}`` (with several markets: totals, plus ``markets``)."""
        venue = self.venue
        if venue is not None:
            return self._on_loop(lambda: venue.violations)
        return self.call(lambda ex: ex.violations)

    def pause(self, at_step: int | None = None, *, market: Market | str | None = None) -> None:
        """Stop the replay after the current batch, or right after step ``at_step`` (the
        servers keep answering); every market's, or ``market``'s (``at_step`` counts each
        market's own steps)."""
        exchanges = self._scope(market)

        def pause() -> None:
            for ex in exchanges:
                ex.pause(at_step)

        self._on_loop(pause)

    @property
    def paused(self) -> bool:
        """Whether the replay is paused (every market's)."""
        return self.is_paused()

    def is_paused(self, market: Market | str | None = None) -> bool:
        exchanges = self._scope(market)
        return self._on_loop(lambda: all(ex.paused for ex in exchanges))

    def wait_paused(self, timeout: float = 10.0, *, market: Market | str | None = None) -> None:
        """Block until the replay is paused (``pause(at_step=...)`` reached): every market's,
        or ``market``'s."""
        deadline = time.monotonic() + timeout
        while not self.is_paused(market):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replay did not pause within {timeout} s")
            time.sleep(0.005)

    def resume(self, *, market: Market | str | None = None) -> None:
        exchanges = self._scope(market)

        def resume() -> None:
            for ex in exchanges:
                ex.resume()

        self._on_loop(resume)

    @property
    def finished(self) -> bool:
        """Whether the replay is over, on every market (a generated market without an end
        never is)."""
        return self.is_finished()

    def is_finished(self, market: Market | str | None = None) -> bool:
        exchanges = self._scope(market)
        return self._on_loop(lambda: all(ex.finished.is_set() for ex in exchanges))

    def wait_finished(self, timeout: float = 30.0) -> bool:
        """Block until the replay is over (every market's); False on timeout."""
        target = self.venue if self.venue is not None else self.exchange
        return self._run(target.wait_finished(timeout), timeout + 5.0)


def _serve(
    source: SourceLike | Sequence[SourceLike],
    options: dict[str, Any],
    ready: threading.Event,
    box: dict[str, Any],
) -> None:
    """The exchange thread: start, report, wait for the stop request, stop."""

    async def main() -> None:
        try:
            ex: Exchange | Venue
            if isinstance(source, Sequence):
                ex = Venue.from_sources([s() if callable(s) else s for s in source], **options)
            else:
                ex = Exchange(source() if callable(source) else source, **options)
            await ex.start()
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            return
        stop = asyncio.Event()
        box["exchange"] = ex
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop
        ready.set()
        try:
            await stop.wait()
        finally:
            await ex.stop()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


@contextlib.contextmanager
def run_exchange(
    source: SourceLike | Sequence[SourceLike], *, timeout: float = 30.0, **options: Any
) -> Iterator[ExchangeHandle]:
    """Run an ``Exchange(source, **options)`` in a background thread for the ``with`` block.

    ``source`` is a market source or a function making one (called in the exchange's thread,
    which then owns it). A list (or tuple) of them, one per market, runs a ``Venue`` instead
    (``Venue.from_sources(sources, **options)``: one REST server, one WebSocket server per
    market; ``rest_port=`` and ``ws_ports={market: port}`` choose ports). ``timeout`` bounds
    the start, each handle call and the stop. Errors while starting (a bad recording, a port
    in use) are raised here.

    The exchange shares this process's GIL with the test and its client. At maximum speed it
    would take the GIL back at every turn of its loop and starve them (each call through the
    handle could wait tens of milliseconds), so ``idle`` defaults to 1 ms here: the exchange
    sleeps that long between batches (about a fifth of the time at full speed). Pass
    ``idle=0`` for raw speed, or run ``tickbook sim`` in a subprocess for a client that must
    not share a GIL with the exchange (benchmarks).
    """
    options.setdefault("idle", 0.001)
    ready = threading.Event()
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=_serve, args=(source, options, ready, box), name="tickbook-sim-exchange", daemon=True
    )
    thread.start()
    if not ready.wait(timeout):
        raise TimeoutError(f"the exchange did not start within {timeout} s")
    if "error" in box:
        thread.join(timeout)
        raise box["error"]
    loop: asyncio.AbstractEventLoop = box["loop"]
    stop: asyncio.Event = box["stop"]
    handle = ExchangeHandle(box["exchange"], loop, timeout)
    try:
        yield handle
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():  # pragma: no cover - a stop that hangs is a bug worth seeing
            raise TimeoutError(f"the exchange did not stop within {timeout} s")


@pytest.fixture
def exchange() -> Iterator[Callable[..., ExchangeHandle]]:
    """A factory: ``exchange(source, **Exchange options)`` starts one and returns its handle
    (``exchange([source, source], ...)``: several markets, as ``run_exchange``).

    All exchanges started by a test are stopped when it ends.
    """
    with contextlib.ExitStack() as stack:

        def start(source: SourceLike | Sequence[SourceLike], **options: Any) -> ExchangeHandle:
            return stack.enter_context(run_exchange(source, **options))

        yield start
