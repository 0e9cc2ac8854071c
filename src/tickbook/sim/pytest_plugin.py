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
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from tickbook.sim.exchange import Exchange, new_event_loop
from tickbook.sim.market import MarketSource

__all__ = ["ExchangeHandle", "exchange", "run_exchange"]

T = TypeVar("T")
SourceLike = MarketSource | Callable[[], MarketSource]


class ExchangeHandle:
    """A running exchange seen from another thread: URLs, and thread-safe reads and controls."""

    def __init__(self, exchange: Exchange, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.exchange = exchange  # live object: touch it only through ``call``
        self.loop = loop
        self.timeout = timeout
        self.rest_url = exchange.rest_url
        self.ws_url = exchange.ws_url
        self.market = exchange.market.value
        self.symbols = list(exchange.symbols)

    def urls(self) -> dict[str, Any]:
        """What ``tickbook sim`` prints first: ``{"rest", "ws", "market", "symbols"}``."""
        return {"rest": self.rest_url, "ws": self.ws_url, "market": self.market, "symbols": self.symbols}

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(self.timeout if timeout is None else timeout)

    def call(self, fn: Callable[[Exchange], T], timeout: float | None = None) -> T:
        """``fn(exchange)`` run on the exchange's loop, its result returned here."""

        async def on_loop() -> T:
            return fn(self.exchange)

        return self._run(on_loop(), timeout)

    def truth(self, symbol: str, limit: int = 20) -> dict[str, Any]:
        """The true book as ``GET /sim/truth`` gives it (exact strings, ID, checksum)."""
        return self.call(lambda ex: ex.truth_summary(symbol, limit))

    def fault_log(self) -> list[dict[str, Any]]:
        """A copy of the faults injected so far."""
        return self.call(lambda ex: [dict(entry) for entry in ex.fault_log])

    def violations(self) -> dict[str, dict[str, int]]:
        return self.call(lambda ex: ex.violations)

    def pause(self, at_step: int | None = None) -> None:
        """Stop the replay after the current batch, or right after step ``at_step`` (the
        servers keep answering)."""
        self.call(lambda ex: ex.pause(at_step))

    @property
    def paused(self) -> bool:
        return self.call(lambda ex: ex.paused)

    def wait_paused(self, timeout: float = 10.0) -> None:
        """Block until the replay is paused (``pause(at_step=...)`` reached)."""
        deadline = time.monotonic() + timeout
        while not self.paused:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replay did not pause within {timeout} s")
            time.sleep(0.005)

    def resume(self) -> None:
        self.call(lambda ex: ex.resume())

    @property
    def finished(self) -> bool:
        """Whether the replay is over (a generated market without an end never is)."""
        return self.call(lambda ex: ex.finished.is_set())

    def wait_finished(self, timeout: float = 30.0) -> bool:
        """Block until the replay is over; False on timeout."""
        return self._run(self.exchange.wait_finished(timeout), timeout + 5.0)


def _serve(
    source: SourceLike,
    options: dict[str, Any],
    ready: threading.Event,
    box: dict[str, Any],
) -> None:
    """The exchange thread: start, report, wait for the stop request, stop."""

    async def main() -> None:
        try:
            src = source() if callable(source) else source
            ex = Exchange(src, **options)
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
def run_exchange(source: SourceLike, *, timeout: float = 30.0, **options: Any) -> Iterator[ExchangeHandle]:
    """Run an ``Exchange(source, **options)`` in a background thread for the ``with`` block.

    ``source`` is a market source or a function making one (called in the exchange's thread,
    which then owns it). ``timeout`` bounds the start, each handle call and the stop.
    Errors while starting (a bad recording, a port in use) are raised here.

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
    """A factory: ``exchange(source, **Exchange options)`` starts one and returns its handle.

    All exchanges started by a test are stopped when it ends.
    """
    with contextlib.ExitStack() as stack:

        def start(source: SourceLike, **options: Any) -> ExchangeHandle:
            return stack.enter_context(run_exchange(source, **options))

        yield start
