"""The live feed (``tickbook.feed.DepthFeed``) against the local exchange, on both routers.

Each test runs the exchange in a thread (``run_exchange``) and the feed in the test's own
uvloop loop, over loopback, exactly as it would run against Binance. The oracle is the
exchange's own market stepped offline from the same seed: for every depth event it gives
the true book's top-10 checksum at that update ID. Two things are asserted under every
fault the exchange can inject:

- the end: every book is synced, at the truth's last update ID, with the truth's levels;
- all along: every ``on_update`` call that sees a book flagged as synced sees exactly the
  true book at that book's update ID (a wrong book is never presented as in sync).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from _helpers import IMPLEMENTATIONS
from tickbook.feed import DepthFeed, FeedError, StateKind
from tickbook.sim.market import GeneratedMarket, RecordedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, run_exchange

ROOT = Path(__file__).resolve().parents[1]
SPOT_RECORDING = [ROOT / "data/real/hftbacktest/spot/btcusdt_20240808.gz"]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TOP = 10

Source = Callable[[], Any]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> str:
    """Which router and book: the Cython core or the pure-Python reference."""
    return str(request.param)


def generated(
    market: str = "spot", symbols: list[str] = SYMBOLS, events: int = 2000, seed: int = 11
) -> Source:
    return lambda: GeneratedMarket(symbols, market, seed=seed, max_events=events)


def oracle(make: Source) -> dict[tuple[str, int], int]:
    """(symbol, update ID) -> checksum of the true book's top levels after that event."""
    source = make()
    truth: dict[tuple[str, int], int] = {}
    while source.next_time_ms() is not None:
        for event in source.step():
            if event.kind == "depth":
                truth[event.symbol, event.final_id] = source.truth(event.symbol).checksum(TOP)
    return truth


def run(coro: Awaitable[Any], timeout: float = 60.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return uvloop.run(bounded())


class Watch:
    """Checks every synced book a callback sees against the oracle, and keeps state events."""

    def __init__(self, truth: dict[tuple[str, int], int]) -> None:
        self.truth = truth
        self.checked = 0
        self.wrong: list[tuple[str, int]] = []
        self.events: list[Any] = []

    def on_update(self, book: Any) -> None:
        if book.synced:
            self.checked += 1
            if self.truth.get((book.symbol, book.last_update_id)) != book.checksum(TOP):
                self.wrong.append((book.symbol, book.last_update_id))

    def kinds(self, kind: StateKind) -> int:
        return sum(1 for e in self.events if e.kind is kind)


async def follow(
    ex: ExchangeHandle,
    impl: str,
    symbols: list[str],
    truth: dict[tuple[str, int], int],
    market: str = "spot",
    during: Callable[[DepthFeed], Awaitable[None]] | None = None,
    **options: Any,
) -> tuple[DepthFeed, Watch]:
    """Run a feed until the replay is over and every book reached the truth's last ID."""
    options.setdefault("reconnect_base", 0.05)
    options.setdefault("silence_timeout", 5.0)
    feed = DepthFeed(
        market, symbols, rest_url=ex.rest_url, stream_url=ex.ws_url, implementation=impl, **options
    )
    watch = Watch(truth)
    feed.on_update(watch.on_update)
    feed.on_state(watch.events.append)
    loop = asyncio.get_running_loop()
    async with feed:
        if during is not None:
            await during(feed)
        while not await loop.run_in_executor(None, lambda: ex.finished):
            await asyncio.sleep(0.05)
        final = {s: ex.truth(s, TOP)["lastUpdateId"] for s in symbols}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            books = [feed.book(s) for s in symbols]
            if all(b.synced and b.last_update_id == final[b.symbol] for b in books):
                break
            await asyncio.sleep(0.02)
        for symbol in symbols:
            book = feed.book(symbol)
            want = ex.truth(symbol, 20)
            assert book.synced, (symbol, book.state, book.reason_detail, feed.errors)
            assert book.last_update_id == want["lastUpdateId"]
            assert book.checksum(20) == want["checksum"]
            book._check()
        feed.final_stats = feed.stats()  # type: ignore[attr-defined]
    assert not watch.wrong, watch.wrong[:5]
    assert watch.checked > 0
    return feed, watch


def exchange(make: Source, **options: Any) -> Any:
    options.setdefault("speed", 40.0)
    options.setdefault("wait_for_client", True)
    return run_exchange(make, **options)


# --------------------------------------------------------------------------- the plain run


def test_real_recording_ends_equal_to_the_truth(impl: str) -> None:
    """The real spot BTCUSDT recording, replayed fast: every update seen synced is the truth."""
    make = lambda: RecordedMarket.from_files(SPOT_RECORDING)  # noqa: E731
    truth = oracle(make)
    with exchange(make, speed=None) as ex:
        feed, watch = run(follow(ex, impl, ["BTCUSDT"], truth))
    stats = feed.final_stats  # type: ignore[attr-defined]
    sym = stats["symbols"]["BTCUSDT"]
    assert sym["gaps"] == 0
    assert sym["resyncs"] == 0
    assert sym["bad_messages"] == 0
    assert sym["applied"] >= watch.checked - 1
    assert watch.kinds(StateKind.SYNCED) == 1
    # every event the router applied was timed (those replayed from the buffer when the
    # snapshot landed were applied by the snapshot, not by a frame)
    assert 0 < sym["callback_latency_ns"]["count"] <= sym["applied"]


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_each_market_syncs_with_its_own_rules(impl: str, market: str) -> None:
    symbols = ["BTCUSD_PERP"] if market == "coinm" else SYMBOLS
    make = generated(market, symbols, events=800)
    truth = oracle(make)
    with exchange(make) as ex:
        feed, _ = run(follow(ex, impl, symbols, truth, market=market))
    assert feed.final_stats["totals"]["gaps"] == 0  # type: ignore[attr-defined]
    if market == "usdm":
        assert all(c["route"] == "/public" for c in feed.final_stats["connections"])  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- every fault


FAULTS = {
    "drop@300": "gap",
    "drop@300:count=5": "gap",
    "dup@300": None,
    "reorder@300": "gap",
    "delay@300:0.3": "gap",
    "malformed@300": None,
    "unknown@300": None,
    "BTCUSDT:drop@300": "gap",
    "stale-snapshot": None,
    "slow-snapshot:0.5": None,
    "http@2:500:count=3": None,
    "http@2:503": None,
    "http@2:429:retry=1": None,
    "http@2:418:retry=1": None,
    "close@300": "reconnect",
    "disconnect@300": "reconnect",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_ends_equal_to_the_truth(impl: str, fault: str) -> None:
    make = generated(events=1000)  # the fault at event 300, then 700 events to recover in
    truth = oracle(make)
    with exchange(make, faults=fault) as ex:
        feed, watch = run(follow(ex, impl, SYMBOLS, truth))
        log = ex.fault_log()
        violations = ex.violations()
    assert log, "the fault never fired"
    totals = feed.final_stats["totals"]  # type: ignore[attr-defined]
    expect = FAULTS[fault]
    if expect == "gap":
        assert totals["gaps"] >= 1
        assert totals["resyncs"] >= 1
        assert watch.kinds(StateKind.OUT_OF_SYNC) >= 1
        assert watch.kinds(StateKind.RESYNCING) >= 1
    elif expect == "reconnect":
        assert totals["reconnects"] >= 1
        assert watch.kinds(StateKind.RECONNECTING) >= 1
        assert watch.kinds(StateKind.RECONNECTED) >= 1
    if fault.startswith("malformed"):
        assert totals["bad_messages"] + totals["unknown_messages"] >= 1
    if fault.startswith("unknown"):
        assert totals["gaps"] == 0
    if fault.startswith("http@2:4"):
        budget = feed.budget
        assert budget is not None
        assert (budget.throttled_429 if "429" in fault else budget.bans_418) >= 1
    assert sum(violations.get("rest", {}).values()) == 0 if isinstance(violations.get("rest"), dict) else True


def test_stall_reconnects_the_silent_connection(impl: str) -> None:
    make = generated(events=2400)
    truth = oracle(make)
    with exchange(make, faults="stall@300:3") as ex:
        feed, watch = run(follow(ex, impl, SYMBOLS, truth, silence_timeout=0.6))
    totals = feed.final_stats["totals"]  # type: ignore[attr-defined]
    assert totals["silent_reconnects"] >= 1
    assert watch.kinds(StateKind.RECONNECTING) >= 1


def test_server_shutdown_is_handed_over_without_a_gap(impl: str) -> None:
    """serverShutdown: the replacement connection takes every book over event by event; no
    book ever leaves the synced state."""
    make = generated(events=3000)
    truth = oracle(make)
    rules = {"lifetime": 2.5, "shutdown_notice": 1.5}
    with exchange(make, ws_rules=rules) as ex:
        feed, watch = run(follow(ex, impl, SYMBOLS, truth))
    totals = feed.final_stats["totals"]  # type: ignore[attr-defined]
    assert totals["server_shutdowns"] >= 1
    assert totals["replacements"] >= 1
    assert all(s["handovers"] >= 1 for s in feed.final_stats["symbols"].values())  # type: ignore[attr-defined]
    assert totals["gaps"] == 0
    assert totals["resyncs"] == 0
    assert totals["reconnects"] == 0
    assert watch.kinds(StateKind.OUT_OF_SYNC) == 0
    assert watch.kinds(StateKind.SYNCED) == len(SYMBOLS)


def test_lifetime_without_notice_is_replaced_before_the_cut(impl: str) -> None:
    """Futures send no serverShutdown: the feed replaces connections before their age limit."""
    make = generated("usdm", events=9000)
    truth = oracle(make)
    with exchange(make, lifetime=2.5) as ex:
        feed, watch = run(follow(ex, impl, SYMBOLS, truth, market="usdm", max_connection_age=1.2))
    totals = feed.final_stats["totals"]  # type: ignore[attr-defined]
    assert totals["replacements"] >= 1
    assert totals["handovers"] >= 1
    assert totals["gaps"] == 0
    assert totals["reconnects"] == 0
    assert watch.kinds(StateKind.OUT_OF_SYNC) == 0


def test_missing_pongs_close_and_the_feed_recovers(impl: str) -> None:
    """A server that considers pongs late closes the connection; the feed reconnects, resyncs."""
    make = generated(events=2400)
    truth = oracle(make)
    rules = {"ping_interval": 0.5, "pong_timeout": 0.000_001}
    with exchange(make, ws_rules=rules) as ex:

        async def then_relent(feed: DepthFeed) -> None:
            # Once the feed has come back from a pong-timeout close, connections opened from
            # then on get a patient server: a close in the replay's last moments would leave a
            # book with a snapshot and no later event to bridge it, which no client can mend.
            while feed.stats()["totals"]["reconnects"] < 1:
                await asyncio.sleep(0.01)
            server = ex.exchange._ws
            server.rules = dataclasses.replace(server.rules, pong_timeout=600.0)

        feed, watch = run(follow(ex, impl, SYMBOLS, truth, during=then_relent))
        violations = ex.violations()
    assert feed.final_stats["totals"]["reconnects"] >= 1  # type: ignore[attr-defined]
    assert watch.kinds(StateKind.RECONNECTING) >= 1
    assert "pong_timeout" in str(violations)


# ------------------------------------------------------------------- callbacks and API


def test_callbacks_that_raise_or_are_slow_never_stop_the_feed(impl: str) -> None:
    make = generated(events=800)
    truth = oracle(make)
    calls = {"bbo": 0, "slow": 0}

    def broken(book: Any) -> None:
        calls["bbo"] += 1
        raise RuntimeError("a subscriber's bug")

    def slow(book: Any) -> None:
        calls["slow"] += 1
        if calls["slow"] % 100 == 0:
            time.sleep(0.02)

    async def during(feed: DepthFeed) -> None:
        feed.on_bbo(broken)
        feed.on_update(slow)

    with exchange(make) as ex:
        feed, _ = run(follow(ex, impl, SYMBOLS, truth, during=during))
    totals = feed.final_stats["totals"]  # type: ignore[attr-defined]
    assert calls["bbo"] > 10
    assert totals["callback_errors"] == calls["bbo"]
    per_symbol = feed.final_stats["symbols"]  # type: ignore[attr-defined]
    assert sum(s["callback_errors"] for s in per_symbol.values()) == calls["bbo"]


def test_unsubscribe_during_delivery(impl: str) -> None:
    """A callback that unsubscribes itself and another one mid-delivery: both stop, nothing breaks."""
    make = generated(events=800)
    truth = oracle(make)
    seen = {"a": 0, "b": 0}
    removers: dict[str, Callable[[], None]] = {}

    def first(book: Any) -> None:
        seen["a"] += 1
        if seen["a"] == 50:
            removers["a"]()
            removers["b"]()

    def second(book: Any) -> None:
        seen["b"] += 1

    async def during(feed: DepthFeed) -> None:
        removers["a"] = feed.on_update(first)
        removers["b"] = feed.on_update(second)

    with exchange(make) as ex:
        run(follow(ex, impl, SYMBOLS, truth, during=during))
    assert seen["a"] == 50
    assert seen["b"] in (49, 50)  # the message being delivered may still reach it


def test_bbo_fires_only_on_changes_and_coalesces_per_read(impl: str) -> None:
    make = generated(events=800)
    truth = oracle(make)
    per_message: list[tuple[Any, Any]] = []

    def on_bbo(book: Any) -> None:
        per_message.append((book.best_bid_ticks(), book.best_ask_ticks()))

    async def during(feed: DepthFeed) -> None:
        feed.on_bbo(on_bbo, symbols=["BTCUSDT"])

    with exchange(make) as ex:
        feed, _ = run(follow(ex, impl, SYMBOLS, truth, during=during))
    # consecutive deliveries always differ: nothing fires without a change
    assert len(per_message) > 20
    assert all(a != b for a, b in itertools.pairwise(per_message))
    assert len(per_message) <= feed.final_stats["symbols"]["BTCUSDT"]["bbo_changes"] + 1  # type: ignore[attr-defined]

    # At full speed a short replay can end before the first snapshot is in, leaving nothing
    # to bridge it (the real exchange never stops): a longer one keeps events coming.
    fast = generated(events=6000)
    coalesced: list[int] = []
    with exchange(fast, speed=None) as ex:
        feed2, _ = run(
            follow(
                ex,
                impl,
                SYMBOLS,
                oracle(fast),
                during=lambda f: _register(f, lambda b: coalesced.append(b.last_update_id)),
                coalesce=True,
            )
        )
    changes = feed2.final_stats["symbols"]["BTCUSDT"]["bbo_changes"]  # type: ignore[attr-defined]
    # How many messages share a socket read depends on the machine; the exact rule (one
    # call per read) is checked frame by frame in test_coalescing_is_one_call_per_read.
    assert 0 < len(coalesced) <= changes


class _Hooks:
    """The feed's side of the router, reduced to recording what it is told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append(name)


def _frame(first: int, bid: str) -> bytes:
    return (
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        b'"U":%d,"u":%d,"b":[["10","%s"]],"a":[]}}' % (first, first, bid.encode())
    )


@pytest.mark.parametrize("coalesce", [False, True])
def test_coalescing_is_one_call_per_read(impl: str, coalesce: bool) -> None:
    """Three BBO changes in one socket read: three on_bbo calls, or one with coalesce, made
    at the frame that ends the read; on_update is never coalesced."""
    from tickbook.feed.feed import _implementation

    book_cls, router_mod = _implementation(impl)
    book = book_cls("BTCUSDT", "spot")
    book.apply_snapshot(100, [["10", "1"]], [["11", "1"]])
    hooks = _Hooks()
    slot = router_mod.DepthSlot(book, "btcusdt@depth@100ms", hooks)
    bbo: list[str] = []
    updates: list[int] = []
    slot.set_callbacks(
        [lambda b: bbo.append(b.best_bid_str()[1])], [lambda b: updates.append(b.last_update_id)]
    )
    router = router_mod.Router(hooks, coalesce)
    router.add(slot)
    for i, qty in enumerate(["2", "3", "4"]):
        router.feed(_frame(101 + i, qty), last_in_buffer=False)
        assert len(bbo) == (0 if coalesce else i + 1)
    router.feed(_frame(104, "4"), last_in_buffer=True)  # same top: no BBO change of its own
    assert bbo == (["4"] if coalesce else ["2", "3", "4"])
    assert updates == [101, 102, 103, 104]
    assert book.synced
    assert hooks.calls == ["router_state"]  # BRIDGING -> SYNCED, nothing else


async def _register(feed: DepthFeed, callback: Callable[[Any], None]) -> None:
    feed.on_bbo(callback, symbols=["BTCUSDT"])


def test_async_iterators(impl: str) -> None:
    make = generated(events=800)
    truth = oracle(make)
    got: list[Any] = []
    states: list[Any] = []

    async def during(feed: DepthFeed) -> None:
        async def consume() -> None:
            async for bbo in feed.bbo_updates(["ETHUSDT"]):
                got.append(bbo)
                await asyncio.sleep(0.001)  # a slow consumer: conflated, never a backlog

        async def consume_states() -> None:
            async for event in feed.state_events():
                states.append(event)

        asyncio.get_running_loop().create_task(consume())
        asyncio.get_running_loop().create_task(consume_states())

    with exchange(make) as ex:
        run(follow(ex, impl, SYMBOLS, truth, during=during))
    assert got
    assert all(b.symbol == "ETHUSDT" for b in got)
    assert all(isinstance(b.bid_price, str) for b in got if b.synced)
    assert {e.symbol for e in states if e.kind is StateKind.SYNCED} == set(SYMBOLS)


def test_subscribe_and_unsubscribe_at_runtime(impl: str) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    make = generated(symbols=symbols, events=3000)

    async def main(ex: ExchangeHandle) -> dict[str, Any]:
        feed = DepthFeed("spot", ["BTCUSDT"], rest_url=ex.rest_url, stream_url=ex.ws_url, implementation=impl)
        async with feed:
            await feed.wait_synced(timeout=10)
            await feed.subscribe(["ETHUSDT", "BNBUSDT"])
            await feed.wait_synced(timeout=10)
            assert sorted(feed.symbols) == sorted(symbols)
            await feed.unsubscribe(["ETHUSDT"])
            assert "ETHUSDT" not in feed.books
            with pytest.raises(FeedError):
                feed.book("ETHUSDT")
            subs = await feed.connections[0].list_subscriptions()
            return {"subs": subs, "stats": feed.stats()}

    with exchange(make) as ex:
        result = run(main(ex))
    assert sorted(result["subs"]) == ["bnbusdt@depth@100ms", "btcusdt@depth@100ms"]
    assert result["stats"]["connections"][0]["control_sent"] >= 2


def test_other_public_streams_arrive_typed(impl: str) -> None:
    from decimal import Decimal

    make = generated(events=600)
    trades: list[Any] = []

    async def main(ex: ExchangeHandle) -> None:
        feed = DepthFeed("spot", ["BTCUSDT"], rest_url=ex.rest_url, stream_url=ex.ws_url, implementation=impl)
        async with feed:
            await feed.subscribe_stream("btcusdt@trade", trades.append)
            await feed.wait_synced(timeout=10)
            deadline = time.monotonic() + 10
            while len(trades) < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    with exchange(make) as ex:
        run(main(ex))
    assert len(trades) >= 5
    assert all(isinstance(t.p, Decimal) and isinstance(t.q, Decimal) for t in trades)


# ----------------------------------------------------------------- many symbols, limits


def test_hundreds_of_symbols_stay_within_every_limit(impl: str) -> None:
    """300 books over three connections (100 streams each): every book synced, no 429, no
    inbound-rate, stream or connection-limit breach. (Throttling by the weight budget is
    shown in tests/test_snapshots.py, where a fake clock spares the wait for a new minute.)"""
    symbols = [f"S{i:03d}USDT" for i in range(300)]
    # The exchange runs in this process, so it shares one GIL with the feed: 300 true books of
    # 200 levels a side (snapshots are 100 deep), an event every 500 ms and no trades keep the
    # pair within one core on the debug build too. Limits depend on neither depth nor rate.
    make = lambda: GeneratedMarket(  # noqa: E731
        symbols, "spot", seed=5, max_events=None, levels=200, interval_ms=500, trades=False
    )

    async def main(ex: ExchangeHandle) -> dict[str, Any]:
        feed = DepthFeed(
            "spot",
            symbols,
            rest_url=ex.rest_url,
            stream_url=ex.ws_url,
            implementation=impl,
            streams_per_connection=100,
            depth_limit=100,
            max_snapshots_in_flight=8,
        )
        async with feed:
            # 300 snapshots through an 8-wide window take ~12 s for the pure-Python router here;
            # the margin is for a loaded shared machine (the test is about limits, not speed).
            await feed.wait_synced(timeout=150)
            return feed.stats()

    with exchange(make, speed=1.0) as ex:
        stats = run(main(ex), timeout=180)
        violations = ex.violations()
    assert len(stats["connections"]) == 3
    assert all(s["synced"] for s in stats["symbols"].values())
    assert stats["snapshots"]["throttled"] == 0
    assert _total(violations) == 0, violations


def _total(violations: Any) -> int:
    if isinstance(violations, dict):
        return sum(_total(v) for v in violations.values())
    return int(violations) if isinstance(violations, int) else 0


# -------------------------------------------------------------------------- bad config


def test_bad_configuration_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="rest_url and stream_url"):
        DepthFeed("spot", ["BTCUSDT"], rest_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="unknown market"):
        DepthFeed("margin", ["BTCUSDT"])
    with pytest.raises(ValueError, match="must start with"):
        DepthFeed("spot", ["BTCUSDT"], rest_url="127.0.0.1:1", stream_url="ws://127.0.0.1:1")
    with pytest.raises(ValueError, match="streams_per_connection"):
        DepthFeed("spot", ["BTCUSDT"], streams_per_connection=5000)
    with pytest.raises(ValueError, match="limit"):
        DepthFeed("usdm", ["BTCUSDT"], depth_limit=7)  # futures allow 5..1000 from a fixed set
    with pytest.raises(ValueError, match="implementation"):
        DepthFeed("spot", ["BTCUSDT"], implementation="rust")


def test_unknown_symbol_and_dead_server_fail_clearly(impl: str) -> None:
    make = generated(events=200)

    async def unknown(ex: ExchangeHandle) -> None:
        feed = DepthFeed(
            "spot", ["NOPEUSDT"], rest_url=ex.rest_url, stream_url=ex.ws_url, implementation=impl
        )
        with pytest.raises(FeedError, match="NOPEUSDT"):
            await feed.start()

    with exchange(make) as ex:
        run(unknown(ex))

    async def dead() -> None:
        feed = DepthFeed(
            "spot",
            ["BTCUSDT"],
            rest_url="http://127.0.0.1:9",
            stream_url="ws://127.0.0.1:9",
            implementation=impl,
        )
        with pytest.raises(FeedError, match="exchangeInfo"):
            await feed.start()

    run(dead(), timeout=20)


# ------------------------------------------------------------------ Cython listener


def test_cython_listener_sees_what_python_callbacks_see() -> None:
    """The example Cython listener (examples/cython_listener) is called by the router in C:
    as many updates and BBO changes as the Python callbacks count, and the same last BBO."""
    from tickbook._example_listener import SpreadWatch

    make = generated(events=800)
    truth = oracle(make)
    listener = SpreadWatch()
    counted = {"update": 0, "bbo": 0}
    last: dict[str, Any] = {}

    def on_bbo(book: Any) -> None:
        counted["bbo"] += 1
        last["bid"], last["ask"] = book.best_bid_ticks()[0], book.best_ask_ticks()[0]

    async def during(feed: DepthFeed) -> None:
        feed.add_listener(listener, symbols=["BTCUSDT"])
        feed.on_bbo(on_bbo, symbols=["BTCUSDT"])
        feed.on_update(lambda book: counted.__setitem__("update", counted["update"] + 1), symbols=["BTCUSDT"])

    with exchange(make) as ex:
        run(follow(ex, "c", SYMBOLS, truth, during=during))
    assert listener.updates == counted["update"] > 0
    assert listener.bbo_changes == counted["bbo"] > 0
    assert (listener.last_bid_ticks, listener.last_ask_ticks) == (last["bid"], last["ask"])
    assert listener.widest_spread_ticks >= last["ask"] - last["bid"] > 0


def test_cython_listeners_need_the_cython_core() -> None:
    from tickbook._example_listener import SpreadWatch

    feed = DepthFeed("spot", ["BTCUSDT"], implementation="py")
    with pytest.raises(FeedError, match="Cython"):
        feed.add_listener(SpreadWatch())


def test_replacement_takes_each_book_over_in_step(impl: str) -> None:
    """The replacement's router trails the old one by a message (as it does on the wire):
    it takes the book at the event that puts it in step, the retiring router never takes
    it back, and every event is applied exactly once."""
    from tickbook.feed.feed import _implementation

    book_cls, router_mod = _implementation(impl)
    book = book_cls("BTCUSDT", "spot")
    book.apply_snapshot(100, [["10", "1"]], [["11", "1"]])
    hooks = _Hooks()
    slot = router_mod.DepthSlot(book, "btcusdt@depth@100ms", hooks)
    updates: list[int] = []
    slot.set_callbacks([], [lambda b: updates.append(b.last_update_id)])
    old, new = router_mod.Router(hooks), router_mod.Router(hooks)
    old.add(slot)
    new.add(slot)
    old.feed(_frame(101, "2"))
    old.feed(_frame(102, "3"))
    old.retiring = True  # the feed opened a replacement
    new.feed(_frame(101, "2"))  # behind the book: dropped
    assert slot.owner is old
    new.feed(_frame(102, "3"))  # in step: the replacement owns the book from here
    assert slot.owner is new
    old.feed(_frame(103, "4"))  # the retiring router is ahead, yet never takes it back
    assert slot.owner is new
    new.feed(_frame(103, "4"))
    new.feed(_frame(104, "5"))
    assert updates == [101, 102, 103, 104]
    assert (slot.handovers, slot.duplicates) == (1, 3)
    assert book.synced
    assert book.best_bid_str() == ("10", "5")
    assert hooks.calls == ["router_state", "router_handover"]


# ------------------------------------------------------------------------ busy polling


BUSY_FAULTS = [None, "drop@300", "disconnect@300"]


@pytest.mark.parametrize("fault", BUSY_FAULTS, ids=lambda f: f or "clean")
def test_busy_poll_keeps_every_book_equal_to_the_truth(impl: str, fault: str | None) -> None:
    """``busy_poll=True``: the loop spins between messages; every book still ends equal to
    the truth, every synced book a callback sees is the truth, through a gap and a reconnect."""
    make = generated(events=1200)
    truth = oracle(make)
    options: dict[str, Any] = {"faults": fault} if fault else {}
    with exchange(make, **options) as ex:
        feed, watch = run(follow(ex, impl, SYMBOLS, truth, busy_poll=True))
    assert feed.busy_poll
    assert feed._busy_polls > 0
    if impl == "c":  # the hot path's warm-up ran between messages, and changed nothing
        assert feed._warm_up is not None
        assert feed._warm_up.runs > 0
    else:  # the pure-Python path is too slow to warm up between messages
        assert feed._warm_up is None
    totals = feed.final_stats["totals"]  # type: ignore[attr-defined]
    assert totals["callback_errors"] == totals["bad_messages"] == totals["unknown_messages"] == 0
    if fault == "drop@300":
        assert totals["gaps"] >= 1
        assert watch.kinds(StateKind.RESYNCING) >= 1
    elif fault == "disconnect@300":
        assert totals["reconnects"] >= 1
        assert watch.kinds(StateKind.RECONNECTED) >= 1
    else:
        assert totals["gaps"] == totals["resyncs"] == totals["reconnects"] == 0


def _new_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """The running loop's tasks that were not there ``before``."""
    return [t for t in asyncio.all_tasks() if t not in before]


@pytest.mark.parametrize("busy", [False, True])
def test_busy_poll_spins_while_running_and_stops_with_the_feed(impl: str, busy: bool) -> None:
    """The poller is one task of the feed's: it keeps the loop turning while the feed runs
    (many loop iterations during one sleep of the caller's), and ``stop()`` ends it, leaving
    no task behind. Off (the default), there is no such task and the loop sleeps as usual."""
    make = generated(events=400)

    async def scenario(ex: ExchangeHandle) -> None:
        feed = DepthFeed(
            "spot",
            SYMBOLS,
            rest_url=ex.rest_url,
            stream_url=ex.ws_url,
            implementation=impl,
            **({"busy_poll": True} if busy else {}),
        )
        assert feed.busy_poll is busy
        before = asyncio.all_tasks()
        async with feed:
            await feed.wait_synced(timeout=20)
            pollers = [t for t in _new_tasks(before) if t.get_name().startswith("tickbook-busy-poll")]
            assert len(pollers) == (1 if busy else 0)
            polls = feed._busy_polls
            await asyncio.sleep(0.05)
            if busy:
                assert feed._busy_polls - polls > 1  # it iterated while this coroutine slept once
            else:
                assert feed._busy_polls == 0
        assert not _new_tasks(before), _new_tasks(before)
        after = feed._busy_polls
        await asyncio.sleep(0.02)
        assert feed._busy_polls == after  # nothing spins once the feed has stopped
        if busy:
            assert pollers[0].done()

    with exchange(make) as ex:
        run(scenario(ex))


def _observable(feed: DepthFeed) -> Any:
    """Everything of a feed that a user can see: stats, counters, errors and every level."""
    books = {
        s: (b.state, b.last_update_id, b.bids_str(100_000), b.asks_str(100_000), b.stats())
        for s, b in feed.books.items()
    }
    return feed.stats(), dict(feed.counters), list(feed.errors), books


def test_warm_up_changes_no_book_fires_no_callback_and_counts_nothing(impl: str) -> None:
    """The warm-up runs the whole hot path (its private book advances, its BBO moves) and
    nothing of the feed's changes: no book, no callback, listener or state event, no counter,
    no histogram, no error."""
    from tickbook.feed.warm_up import WARM_UP_SYMBOL, HotPathWarmUp

    make = generated(events=400)
    fired: list[str] = []

    async def scenario(ex: ExchangeHandle) -> None:
        feed = DepthFeed(
            "spot", SYMBOLS, rest_url=ex.rest_url, stream_url=ex.ws_url, implementation=impl, busy_poll=True
        )
        feed.on_bbo(lambda book: fired.append("bbo"))
        feed.on_update(lambda book: fired.append("update"))
        feed.on_state(lambda event: fired.append("state"))
        listener = None
        if impl == "c":
            from tickbook._example_listener import SpreadWatch

            listener = SpreadWatch()
            feed.add_listener(listener)
        async with feed:
            await feed.wait_synced(timeout=20)
        # Stopped: the books stay as they are, and nothing else can touch them now.
        warm_up = feed._warm_up or HotPathWarmUp(feed._book_cls, feed._router_mod, feed.market, feed.speed)
        before, calls = _observable(feed), len(fired)
        heard = (listener.updates, listener.bbo_changes) if listener is not None else None
        runs, first_id = warm_up.runs, warm_up.book.last_update_id
        for _ in range(500):
            warm_up()
        assert _observable(feed) == before
        assert len(fired) == calls
        if listener is not None:
            assert (listener.updates, listener.bbo_changes) == heard
        # ... and the hot path did run, on the warm-up's own book, every time
        assert warm_up.runs == runs + 500
        assert warm_up.book.symbol == WARM_UP_SYMBOL
        assert WARM_UP_SYMBOL not in feed.books
        assert warm_up.book.synced
        assert warm_up.book.last_update_id == first_id + 500
        assert warm_up.slot.messages >= 500
        assert warm_up.book.stats()["bbo_changes"] >= 500
        assert warm_up.slot.bad_messages == warm_up.slot.callback_errors == warm_up.router.unrouted == 0
        warm_up.book._check()

    with exchange(make) as ex:
        run(scenario(ex))
    assert fired.count("state") >= len(SYMBOLS)  # the feed's own events did reach the callbacks


@pytest.mark.parametrize("market", ["usdm", "coinm"])
def test_warm_up_follows_the_futures_rule(impl: str, market: str) -> None:
    """Futures books check ``pu``: the warm-up's frames carry it, and its book stays synced."""
    from tickbook._types import Market
    from tickbook.feed.feed import _implementation
    from tickbook.feed.warm_up import HotPathWarmUp

    book_cls, router_mod = _implementation(impl)
    warm_up = HotPathWarmUp(book_cls, router_mod, Market.parse(market), "100ms")
    for _ in range(101):
        warm_up()
    assert warm_up.book.synced
    assert warm_up.book.stats()["applied"] == 101
    assert warm_up.book.stats()["gaps"] == 0
    warm_up.book._check()


def test_busy_poll_warm_up_is_optional() -> None:
    assert DepthFeed("spot", ["BTCUSDT"]).busy_poll is False  # the default: the loop sleeps
    assert DepthFeed("spot", ["BTCUSDT"], busy_poll=True, busy_poll_warm_up=None).busy_poll_warm_up is None
    with pytest.raises(ValueError, match="busy_poll_warm_up"):
        DepthFeed("spot", ["BTCUSDT"], busy_poll=True, busy_poll_warm_up=0)
