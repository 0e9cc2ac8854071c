"""``tickbook.feed.snapshots.SnapshotScheduler`` against the local exchange on 127.0.0.1.

Each test starts an exchange (``tickbook.sim``) serving a generated market and fetches real
snapshots over loopback HTTP. The replay is held (``hold=True``), so the true book does not
move and every snapshot can be compared with it exactly. Faults come from the exchange's own
fault plan (``http@N:STATUS``, ``slow-snapshot``); limit breaches are the exchange's count
(``violations()``), which must stay empty.

Weight windows last a minute and ``Retry-After`` says seconds to minutes, so the tests that
need windows to roll over run the exchange's clock and the budget's clocks on one ``Warp``:
the same time, passing a few hundred times faster than real time, on both sides.

The one test that is not against the exchange (``test_unusual_answers``) runs a tiny HTTP
server on 127.0.0.1 for answers the exchange never gives: a malformed 200, a 408 and a WAF 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

import tickbook
from tickbook.budget import RequestBudget
from tickbook.feed.snapshots import Snapshot, SnapshotError, SnapshotScheduler, SnapshotStats
from tickbook.limits import weight
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange, run_exchange

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]
T = TypeVar("T")

SYMBOLS = [f"S{i:03d}USDT" for i in range(300)]
INFO_PATH = {
    "spot": "/api/v3/exchangeInfo",
    "usdm": "/fapi/v1/exchangeInfo",
    "coinm": "/dapi/v1/exchangeInfo",
}
NO_VIOLATIONS: dict[str, Any] = {"rest": {}, "ws": {}}


class Warp:
    """A clock shared by the exchange (``clock_ms``) and the budget (``clock``, ``wall_ms``,
    ``sleep``) that runs ``scale`` times faster than real time once ``speed_up`` is called.

    It starts at real speed, one second into a minute, so starting the exchange takes no
    noticeable warped time. Its state is one tuple, swapped whole, so the exchange's thread
    never reads half of an update.
    """

    def __init__(self) -> None:
        now = time.time_ns() // 1_000_000
        self.origin_ms = now - now % 60_000 + 1_000
        self._state = (0.0, time.monotonic(), 1.0)  # (elapsed at m0, m0, scale)

    def elapsed(self) -> float:
        base, m0, scale = self._state
        return base + (time.monotonic() - m0) * scale

    def speed_up(self, scale: float) -> None:
        self._state = (self.elapsed(), time.monotonic(), scale)

    def wall_ms(self) -> int:
        return self.origin_ms + int(self.elapsed() * 1000)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self._state[2])

    def budget(self, market: str, **options: Any) -> RequestBudget:
        return RequestBudget(market, clock=self.elapsed, wall_ms=self.wall_ms, sleep=self.sleep, **options)


async def configure(budget: RequestBudget, session: aiohttp.ClientSession, rest_url: str) -> None:
    """What a feed does first: exchangeInfo (through the budget), then its rateLimits."""
    market = budget.market.value
    await budget.acquire(weight(market, "GET", INFO_PATH[market]))
    async with session.get(rest_url + INFO_PATH[market]) as response:
        budget.observe(response.status, response.headers)
        info = await response.json()
    budget.configure(info["rateLimits"])


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.002)


def assert_matches_truth(ex: ExchangeHandle, snap: Snapshot, market: str, *, same_id: bool = True) -> None:
    """The snapshot loads into a fresh book, which then holds exactly the exchange's truth."""
    truth = ex.truth(snap.symbol, snap.limit, market=market)
    book = tickbook.OrderBook(snap.symbol, market)
    book.apply_snapshot(snap.last_update_id, snap.bids, snap.asks, limit=snap.limit)
    assert book.bids_str() == [tuple(level) for level in truth["bids"]]
    assert book.asks_str() == [tuple(level) for level in truth["asks"]]
    if same_id:
        assert snap.last_update_id == truth["lastUpdateId"]


# ------------------------------------------------------------------ many symbols, low limit


def test_300_symbols_under_a_low_weight_limit_draw_no_429(exchange: Start) -> None:
    """2,100 weight of snapshots, plus 300 spent by another process on the same IP, against
    a 1,000-per-minute limit: the budget spreads them over three windows and the exchange
    never sees the limit passed."""
    warp = Warp()
    ex = exchange(
        lambda: GeneratedMarket(SYMBOLS, levels=50), hold=True, weight_limit=1000, clock_ms=warp.wall_ms
    )
    limits = {s: 500 if i % 10 == 0 else 100 for i, s in enumerate(SYMBOLS)}  # weights 25 and 5

    async def main() -> tuple[list[Snapshot], SnapshotStats, RequestBudget, int, int]:
        # Windows are a minute of exchange time: ~0.3 s of real time at 200x. A request
        # charged in the last 10 exchange seconds (50 real ms) of a window counts in both.
        budget = warp.budget("spot", boundary_guard=10.0)
        async with aiohttp.ClientSession() as session:
            for _ in range(15):  # another process on this IP: 15 x 20 weight
                async with session.get(ex.rest_url + INFO_PATH["spot"]) as response:
                    assert response.status == 200
            await configure(budget, session, ex.rest_url)
            assert budget.limits[0].limit == 1000
            assert budget.used["1M"] >= 320  # synced from the exchange's header
            warp.speed_up(200)
            start = warp.wall_ms()
            async with SnapshotScheduler(session, ex.rest_url, "spot", budget) as scheduler:
                futures = [scheduler.request(s, limits[s], priority=1) for s in SYMBOLS]
                snaps = await asyncio.gather(*futures)
                stats = scheduler.stats()
            return snaps, stats, budget, start, warp.wall_ms()

    snaps, stats, budget, start, end = run(main)
    assert ex.violations() == NO_VIOLATIONS
    assert stats == {
        "requested": 300,
        "fetched": 300,
        "retries": 0,
        "errors": {},
        "throttled": 0,
        "banned": 0,
        "in_flight": 0,
        "queued": 0,
        "weight_used": 270 * 5 + 30 * 25,
    }
    assert budget.throttled_429 == 0
    assert budget.waits > 0
    assert end // 60_000 - start // 60_000 >= 2  # it had to wait for at least two rollovers
    for snap, symbol in zip(snaps, SYMBOLS, strict=True):
        assert (snap.symbol, snap.limit, snap.attempts) == (symbol, limits[symbol], 1)
        assert snap.weight == (25 if limits[symbol] == 500 else 5)
        assert_matches_truth(ex, snap, "spot")


# ------------------------------------------------------------------ markets, limits, weights


@pytest.mark.parametrize(
    ("market", "symbol", "cases"),
    [
        ("spot", "BTCUSDT", [(5, 5, 5), (100, 100, 5), (6000, 5000, 250)]),
        ("usdm", "BTCUSDT", [(5, 5, 2), (500, 500, 10), (1000, 1000, 20)]),
        ("coinm", "BTCUSD_PERP", [(10, 10, 2), (1000, 1000, 20)]),
    ],
)
def test_each_markets_path_limits_and_weights(
    exchange: Start, market: str, symbol: str, cases: list[tuple[int, int, int]]
) -> None:
    ex = exchange(lambda: GeneratedMarket([symbol, "ETH" + symbol[3:]], market, levels=50), hold=True)

    async def main() -> list[Snapshot]:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session, ex.rest_url, market, RequestBudget(market), max_in_flight=1
            ) as scheduler,
        ):
            snaps = []
            for asked, _, _ in cases:
                snaps.append(await scheduler.request(symbol, asked))
            return snaps

    for snap, (_, served, weight_) in zip(run(main), cases, strict=True):
        assert (snap.limit, snap.weight) == (served, weight_)
        # Futures answer with the next event's U as lastUpdateId when it is known (docs/sim.md).
        assert_matches_truth(ex, snap, market, same_id=market == "spot")
    assert ex.violations() == NO_VIOLATIONS


def test_refused_limits_and_bad_arguments_raise_at_once() -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            usdm = SnapshotScheduler(session, "http://127.0.0.1:9", "usdm", RequestBudget("usdm"))
            for bad in (7, 0, 5000, 2000):
                with pytest.raises(ValueError, match="depth limit"):
                    usdm.request("BTCUSDT", bad)
            spot = SnapshotScheduler(session, "http://127.0.0.1:9", "spot", RequestBudget("spot"))
            with pytest.raises(ValueError, match="not valid"):
                spot.request("BTCUSDT", 0)
            with pytest.raises(ValueError, match="symbol"):
                spot.request("", 100)
            assert usdm.stats()["requested"] == spot.stats()["requested"] == 0
            with pytest.raises(ValueError, match="budget"):
                SnapshotScheduler(session, "http://127.0.0.1:9", "spot", RequestBudget("usdm"))
            with pytest.raises(ValueError, match="max_in_flight"):
                SnapshotScheduler(
                    session, "http://127.0.0.1:9", "spot", RequestBudget("spot"), max_in_flight=0
                )
            with pytest.raises(ValueError, match="retry_base"):
                SnapshotScheduler(
                    session, "http://127.0.0.1:9", "spot", RequestBudget("spot"), retry_base=2, retry_cap=1
                )
            await usdm.close()
            await spot.close()

    run(main)


# ------------------------------------------------------------------ priorities and merging


def test_a_more_urgent_request_goes_next_even_behind_a_budget_wait(exchange: Start) -> None:
    """The dispatcher is asleep in the budget for a low-priority request when an urgent one
    arrives: when the window rolls over, the urgent one is sent first."""
    warp = Warp()
    ex = exchange(
        lambda: GeneratedMarket(SYMBOLS[:61], levels=20), hold=True, weight_limit=100, clock_ms=warp.wall_ms
    )
    urgent = SYMBOLS[60]

    async def main() -> list[str]:
        budget = warp.budget("spot", boundary_guard=15.0)
        order: list[str] = []
        async with aiohttp.ClientSession() as session:
            await configure(budget, session, ex.rest_url)
            warp.speed_up(300)
            async with SnapshotScheduler(session, ex.rest_url, "spot", budget) as scheduler:
                futures = [scheduler.request(s, 100, priority=5) for s in SYMBOLS[:60]]
                for future in futures:
                    future.add_done_callback(lambda f: order.append(f.result().symbol))
                # The first window's worth is sent; the dispatcher then waits for the budget.
                await wait_until(lambda: budget.waiting == 1 and scheduler.stats()["in_flight"] == 0)
                # (Not len(order): a future resolved in this very loop turn has not run its
                # callback yet.)
                done_before = sum(f.done() for f in futures)
                assert 0 < done_before < 60
                high = scheduler.request(urgent, 100, priority=0)
                high.add_done_callback(lambda f: order.append(f.result().symbol))
                await asyncio.gather(high, *futures)
                assert order.index(urgent) == done_before
        return order

    order = run(main)
    assert sorted(order) == sorted(SYMBOLS[:61])
    assert ex.violations() == NO_VIOLATIONS


def test_a_queued_symbol_is_one_request(exchange: Start) -> None:
    ex = exchange(lambda: GeneratedMarket(SYMBOLS[:3], levels=20), hold=True)
    a, b, c = SYMBOLS[:3]

    async def main() -> None:
        order: list[str] = []
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session, ex.rest_url, "spot", RequestBudget("spot"), max_in_flight=1
            ) as scheduler,
        ):
            first = scheduler.request(a, 100, priority=5)
            assert scheduler.request(a.lower(), 50, priority=5) is first
            fb = scheduler.request(b, 100, priority=5)
            fc = scheduler.request(c, 100, priority=5)
            assert scheduler.request(a, 500, priority=0) is first  # more urgent, more levels
            for future in (first, fb, fc):
                future.add_done_callback(lambda f: order.append(f.result().symbol))
            assert scheduler.stats()["queued"] == 3
            snap = await first
            await asyncio.gather(fb, fc)
            assert (snap.limit, snap.weight) == (500, 25)
            assert order == [a, b, c]
            assert scheduler.stats()["requested"] == 5
            assert scheduler.stats()["fetched"] == 3
            assert scheduler.stats()["weight_used"] == 25 + 5 + 5

    run(main)


def test_asking_again_after_a_caller_gave_up(exchange: Start) -> None:
    """A caller cancels its future while the request is queued; another asks for the same
    symbol before and after the queue noticed: both get a live future and the snapshot."""
    first, second = SYMBOLS[:2]
    ex = exchange(lambda: GeneratedMarket(SYMBOLS[:2], levels=20), hold=True)

    async def main() -> None:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session, ex.rest_url, "spot", RequestBudget("spot"), max_in_flight=1
            ) as scheduler,
        ):
            busy = scheduler.request(first, 100)
            given_up = scheduler.request(second, 100)
            given_up.cancel()
            again = scheduler.request(second, 100)  # the cancellation is not processed yet
            assert again is not given_up
            assert scheduler.request(second, 100) is again
            await asyncio.sleep(0)
            later = scheduler.request(second, 100)
            assert later is again
            assert (await later).symbol == second
            await busy
            assert scheduler.stats()["fetched"] == 2

    run(main)


def test_a_request_while_one_is_in_flight_gets_a_fresh_snapshot(exchange: Start) -> None:
    symbol = SYMBOLS[0]
    ex = exchange(
        lambda: GeneratedMarket([symbol], levels=20), hold=True, faults=f"{symbol}:slow-snapshot:0.3"
    )

    async def main() -> None:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(session, ex.rest_url, "spot", RequestBudget("spot")) as scheduler,
        ):
            first = scheduler.request(symbol, 100)
            await wait_until(lambda: scheduler.stats()["in_flight"] == 1)
            second = scheduler.request(symbol, 100)
            assert second is not first
            one, two = await asyncio.gather(first, second)
            assert one is not two
            assert two.received_ns < one.received_ns  # only the first answer was slowed
            assert scheduler.stats()["fetched"] == 2

    run(main)


# ------------------------------------------------------------------ failures the exchange injects


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_until_success(exchange: Start, status: int) -> None:
    ex = exchange(
        lambda: GeneratedMarket(SYMBOLS[:1], levels=20), hold=True, faults=f"http@1:{status}:count=3"
    )

    async def main() -> tuple[Snapshot, SnapshotStats]:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session, ex.rest_url, "spot", RequestBudget("spot"), retry_base=0.01, retry_cap=0.02
            ) as scheduler,
        ):
            snap = await scheduler.request(SYMBOLS[0], 100)
            return snap, scheduler.stats()

    snap, stats = run(main)
    assert snap.attempts == 4
    assert stats["errors"] == {"server": 3}
    assert stats["retries"] == 3
    assert stats["weight_used"] == 4 * 5  # the exchange charges failed requests too
    assert [entry["status"] for entry in ex.fault_log()] == [status] * 3
    assert_matches_truth(ex, snap, "spot")


@pytest.mark.parametrize("status", [429, 418])
def test_429_and_418_pause_until_retry_after(exchange: Start, status: int) -> None:
    """The exchange answers the first request with 429 (Retry-After: until the minute ends)
    or 418 (Retry-After: 120 s); the request goes again only after that, and succeeds."""
    warp = Warp()
    symbols = SYMBOLS[:5]
    ex = exchange(
        lambda: GeneratedMarket(symbols, levels=20),
        hold=True,
        faults=f"http@1:{status}",
        clock_ms=warp.wall_ms,
    )

    async def main() -> tuple[list[Snapshot], SnapshotStats, RequestBudget, int, int]:
        budget = warp.budget("spot")
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(session, ex.rest_url, "spot", budget, max_in_flight=1) as scheduler,
        ):
            warp.speed_up(600)
            start = warp.wall_ms()
            snaps = await asyncio.gather(*(scheduler.request(s, 100) for s in symbols))
            return snaps, scheduler.stats(), budget, start, warp.wall_ms()

    snaps, stats, budget, start, end = run(main)
    assert [s.attempts for s in snaps] == [2, 1, 1, 1, 1]  # the first one went again
    assert stats["retries"] == 1
    assert stats["errors"] == {}
    if status == 429:
        assert (stats["throttled"], stats["banned"]) == (1, 0)
        assert (budget.throttled_429, budget.bans_418) == (1, 0)
        assert end // 60_000 > start // 60_000  # waited for the minute to end
    else:
        assert (stats["throttled"], stats["banned"]) == (0, 1)
        assert (budget.throttled_429, budget.bans_418) == (0, 1)
        assert end - start >= 120_000  # the ban's Retry-After
        assert budget.banned_until is None  # over by now
    assert ex.violations() == NO_VIOLATIONS
    for snap in snaps:
        assert_matches_truth(ex, snap, "spot")


def test_a_timeout_is_retried(exchange: Start) -> None:
    ex = exchange(lambda: GeneratedMarket(SYMBOLS[:1], levels=20), hold=True, faults="slow-snapshot:0.5")

    async def main() -> tuple[Snapshot, SnapshotStats]:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session, ex.rest_url, "spot", RequestBudget("spot"), retry_base=0.01, request_timeout=0.1
            ) as scheduler,
        ):
            return await scheduler.request(SYMBOLS[0], 100), scheduler.stats()

    snap, stats = run(main)
    assert snap.attempts == 2
    assert stats["errors"] == {"timeout": 1}


def test_an_invalid_symbol_fails_without_retry(exchange: Start) -> None:
    ex = exchange(lambda: GeneratedMarket(SYMBOLS[:1], levels=20), hold=True)

    async def main() -> None:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(session, ex.rest_url, "spot", RequestBudget("spot")) as scheduler,
        ):
            bad = scheduler.request("NOSUCHSYMBOL", 100)
            good = scheduler.request(SYMBOLS[0], 100)
            with pytest.raises(SnapshotError) as caught:
                await bad
            error = caught.value
            assert (error.code, error.msg, error.symbol, error.status) == (
                -1121,
                "Invalid symbol.",
                "NOSUCHSYMBOL",
                400,
            )
            assert "-1121" in str(error)
            assert (await good).symbol == SYMBOLS[0]
            stats = scheduler.stats()
            assert stats["errors"] == {"rejected": 1}
            assert stats["retries"] == 0
            assert stats["fetched"] == 1

    run(main)


# ------------------------------------------------------------------ a dead server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_dead_server_is_retried_until_it_comes_up() -> None:
    port = free_port()
    symbol = SYMBOLS[0]

    async def main(stack: contextlib.ExitStack) -> tuple[Snapshot, SnapshotStats]:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session,
                f"http://127.0.0.1:{port}",
                "spot",
                RequestBudget("spot"),
                retry_base=0.01,
                retry_cap=0.05,
            ) as scheduler,
        ):
            future = scheduler.request(symbol, 100)
            await wait_until(lambda: scheduler.stats()["retries"] >= 3)
            assert not future.done()
            stats = scheduler.stats()
            assert stats["in_flight"] + stats["queued"] == 1  # never dropped
            server = run_exchange(lambda: GeneratedMarket([symbol], levels=20), hold=True, rest_port=port)
            await asyncio.to_thread(stack.enter_context, server)
            return await asyncio.wait_for(future, 5.0), scheduler.stats()

    with contextlib.ExitStack() as stack:
        snap, stats = asyncio.run(main(stack))
    assert snap.attempts >= 4
    assert stats["errors"] == {"connection": snap.attempts - 1}


def test_close_cancels_requests_that_keep_failing() -> None:
    port = free_port()

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            scheduler = SnapshotScheduler(
                session,
                f"http://127.0.0.1:{port}",
                "spot",
                RequestBudget("spot"),
                retry_base=0.01,
                retry_cap=0.02,
            )
            futures = [scheduler.request(s, 100) for s in SYMBOLS[:6]]
            await wait_until(lambda: scheduler.stats()["retries"] >= 8)
            assert not any(f.done() for f in futures)
            await scheduler.close()
            assert all(f.cancelled() for f in futures)
            assert scheduler.stats()["in_flight"] == scheduler.stats()["queued"] == 0
            assert scheduler.closed
            with pytest.raises(RuntimeError, match="closed"):
                scheduler.request(SYMBOLS[0], 100)
            await scheduler.close()  # twice is fine

    run(main)


def test_close_releases_a_dispatcher_waiting_for_the_budget() -> None:
    async def main() -> None:
        budget = RequestBudget("spot")
        budget.observe(429, {"Retry-After": "600"})
        async with aiohttp.ClientSession() as session:
            async with SnapshotScheduler(session, "http://127.0.0.1:9", "spot", budget) as scheduler:
                futures = [scheduler.request(s, 100) for s in SYMBOLS[:3]]
                await wait_until(lambda: budget.waiting == 1)
            assert all(f.cancelled() for f in futures)
            assert budget.waiting == 0
            assert budget.used == {"1M": 0}  # the cancelled wait charged nothing
            assert scheduler.stats()["weight_used"] == 0

    run(main)


# ------------------------------------------------------------------ cancel


def test_cancel_drops_queued_and_in_flight_requests(exchange: Start) -> None:
    slow, a, b, c = SYMBOLS[:4]
    ex = exchange(
        lambda: GeneratedMarket(SYMBOLS[:4], levels=20), hold=True, faults=f"{slow}:slow-snapshot:0.8"
    )

    async def main() -> None:
        async with (
            aiohttp.ClientSession() as session,
            SnapshotScheduler(
                session, ex.rest_url, "spot", RequestBudget("spot"), max_in_flight=1
            ) as scheduler,
        ):
            fs = scheduler.request(slow, 100)
            fa = scheduler.request(a, 100)
            fb = scheduler.request(b, 100)
            fc = scheduler.request(c, 100)
            await wait_until(lambda: scheduler.stats()["in_flight"] == 1)
            assert scheduler.cancel(b)  # queued
            assert fb.cancelled()
            assert scheduler.stats()["queued"] == 2
            fc.cancel()  # a caller giving up on its own future drops the request too
            await asyncio.sleep(0)
            assert scheduler.stats()["queued"] == 1
            started = time.monotonic()
            assert scheduler.cancel(slow)  # in flight: its slow answer is not awaited
            assert fs.cancelled()
            assert (await fa).symbol == a
            assert time.monotonic() - started < 0.5
            assert not scheduler.cancel("NOTQUEUED")
            await wait_until(lambda: scheduler.stats()["in_flight"] == 0)
            stats = scheduler.stats()
            assert (stats["fetched"], stats["queued"]) == (1, 0)

    run(main)


# ------------------------------------------------------------------ answers the exchange never gives


def test_unusual_answers() -> None:
    """A malformed 200 and a 408 are retried; a 4xx that is not a Binance error (a WAF's
    page) fails with ``code`` None; usage headers reach the budget."""
    answers = {
        "AAA": [
            web.Response(status=200, body=b'{"lastUpdateId":1,"bids":[["1"', content_type="application/json"),
            web.Response(status=408, body=b""),
            web.Response(
                status=200,
                body=b'{"lastUpdateId":7,"bids":[["1.0","2.0"]],"asks":[["1.5","3.0"]]}',
                content_type="application/json",
                headers={"X-MBX-USED-WEIGHT-1M": "1234"},
            ),
        ],
        "BBB": [web.Response(status=403, text="<html>Forbidden</html>", content_type="text/html")],
    }

    async def depth(request: web.Request) -> web.Response:
        assert request.query["limit"] == "100"
        return answers[request.query["symbol"]].pop(0)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/v3/depth", depth)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        budget = RequestBudget("spot", wall_ms=lambda: 1_750_000_050_000)  # no rollover mid-test
        try:
            async with (
                aiohttp.ClientSession() as session,
                SnapshotScheduler(
                    session, f"http://127.0.0.1:{port}/", "spot", budget, retry_base=0.01
                ) as scheduler,
            ):
                waf = scheduler.request("BBB", 100)
                snap = await scheduler.request("AAA", 100)
                assert (snap.last_update_id, bytes(snap.bids), bytes(snap.asks)) == (
                    7,
                    b'[["1.0","2.0"]]',
                    b'[["1.5","3.0"]]',
                )
                assert snap.attempts == 3
                with pytest.raises(SnapshotError) as caught:
                    await waf
                assert (caught.value.code, caught.value.status) == (None, 403)
                assert "Forbidden" in caught.value.msg
                assert scheduler.stats()["errors"] == {"decode": 1, "timeout": 1, "rejected": 1}
                assert budget.used == {"1M": 1234}
        finally:
            await runner.cleanup()

    run(main)
