"""``tickbook.budget.RequestBudget``: the client's mirror of the exchange's weight windows.

Time is fake and moves only when a test says so (``FakeTime.advance``), so every wait is exact:
a waiter must still be waiting one millisecond before its window ends and be through one
millisecond after. Expected numbers come from the spec (binance-spec §5: fixed windows aligned
to the clock, ``X-MBX-USED-WEIGHT-1M``, 429/418 with ``Retry-After`` in seconds).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tickbook.budget import RequestBudget
from tickbook.limits import Interval, RateLimit, RateLimitType

MINUTE_START = 1_750_000_020_000  # epoch ms on a minute boundary (divisible by 60,000)
assert MINUTE_START % 60_000 == 0


def weight_limit(limit: int, interval: Interval = Interval.MINUTE, num: int = 1) -> RateLimit:
    return RateLimit(RateLimitType.REQUEST_WEIGHT, interval, num, limit)


class FakeTime:
    """A clock that stands still until ``advance``; ``sleep`` parks the caller until then."""

    def __init__(self, offset_s: float = 30.0) -> None:
        self.now = offset_s  # seconds since MINUTE_START
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._n = itertools.count()
        self.slept: list[float] = []

    def mono(self) -> float:
        return 1000.0 + self.now

    def wall_ms(self) -> int:
        return MINUTE_START + round(self.now * 1000)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._n), future))
        await future

    def wake(self, seconds: float) -> None:
        """Move time on and wake the sleepers that are due, without letting them run yet."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now + 1e-9:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def advance(self, seconds: float) -> None:
        """Move time on, wake the sleepers that are due, and let everyone run."""
        self.wake(seconds)
        await settle()

    async def advance_to(self, offset_s: float) -> None:
        await self.advance(offset_s - self.now)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def make(t: FakeTime, limits: list[RateLimit] | None = None, **options: Any) -> RequestBudget:
    return RequestBudget(
        "spot",
        [weight_limit(100)] if limits is None else limits,
        clock=t.mono,
        wall_ms=t.wall_ms,
        sleep=t.sleep,
        **options,
    )


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


# ------------------------------------------------------------------ limits and construction


def test_defaults_are_the_documented_weight_limits() -> None:
    assert RequestBudget("spot").limits == (weight_limit(6000),)
    assert RequestBudget("usdm").limits == (weight_limit(2400),)
    assert RequestBudget("coinm").limits == (weight_limit(2400),)
    budget = RequestBudget("spot")
    assert budget.used == {"1M": 0}
    assert budget.headroom == 0.9
    assert (budget.paused_until, budget.banned_until) == (None, None)
    assert (budget.waits, budget.throttled_429, budget.bans_418) == (0, 0, 0)


def test_other_limit_kinds_are_ignored_and_bad_options_refused() -> None:
    orders = RateLimit(RateLimitType.ORDERS, Interval.SECOND, 10, 50)
    assert RequestBudget("spot", [orders, weight_limit(300)]).limits == (weight_limit(300),)
    with pytest.raises(ValueError, match="REQUEST_WEIGHT"):
        RequestBudget("spot", [orders])
    for headroom in (0.0, 1.5, -1.0):
        with pytest.raises(ValueError, match="headroom"):
            RequestBudget("spot", headroom=headroom)
    with pytest.raises(ValueError, match="boundary_guard"):
        RequestBudget("spot", boundary_guard=-1)
    with pytest.raises(ValueError, match="market"):
        RequestBudget("options")


# ------------------------------------------------------------------ waiting for the window


def test_waits_when_the_next_request_would_pass_the_headroom() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t)  # limit 100, headroom 0.9: 90 may be spent per minute
        await budget.acquire(45)
        await budget.acquire(45)  # exactly at the headroom: still allowed
        assert budget.used == {"1M": 90}
        assert budget.waits == 0
        task = asyncio.create_task(budget.acquire(5))
        await settle()
        assert not task.done()
        assert budget.waiting == 1
        await t.advance_to(59.999)  # one millisecond before the window ends
        assert not task.done()
        await t.advance_to(60.001)  # the new window: 0 used
        assert task.done()
        assert budget.used == {"1M": 5}
        assert budget.waits == 1
        assert budget.waiting == 0

    run(main)


def test_window_rollover_is_aligned_to_the_wall_clock() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=59.0)  # one second before the minute ends
        budget = make(t, boundary_guard=0.0)
        await budget.acquire(90)
        task = asyncio.create_task(budget.acquire(90))
        await settle()
        assert t.slept == [pytest.approx(1.001)]  # the window's end, not a minute from now
        await t.advance(1.001)
        assert task.done()
        assert budget.used == {"1M": 90}
        await t.advance(60.0)  # two windows later, nothing carried
        assert budget.used == {"1M": 0}

    run(main)


def test_a_request_heavier_than_the_headroom_goes_into_an_empty_window() -> None:
    async def main() -> None:
        t = FakeTime()
        budget = make(t)
        await budget.acquire(95)  # above 90, within the limit of 100: alone in its window
        task = asyncio.create_task(budget.acquire(1))
        await settle()
        assert not task.done()
        await t.advance_to(60.01)
        assert task.done()
        with pytest.raises(ValueError, match="never be sent"):
            await budget.acquire(101)  # the exchange would refuse it every time
        with pytest.raises(ValueError, match=">= 0"):
            await budget.acquire(-1)
        assert budget.used == {"1M": 1}

    run(main)


def test_every_window_is_respected() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=31.0)
        budget = make(t, [weight_limit(1000), weight_limit(100, Interval.SECOND, 10)], boundary_guard=0.0)
        await budget.acquire(90)
        task = asyncio.create_task(budget.acquire(10))
        await settle()
        assert t.slept == [pytest.approx(9.001)]  # the 10-second window ends at :40, the minute later
        await t.advance(9.001)
        assert task.done()
        assert budget.used == {"1M": 100, "10S": 10}

    run(main)


def test_a_charge_near_the_end_of_a_window_counts_in_the_next_one() -> None:
    """A request sent 0.5 s before the rollover may reach the exchange after it."""

    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t, boundary_guard=1.0)
        await budget.acquire(10)  # mid-window: this window only
        await t.advance_to(59.5)
        await budget.acquire(20)  # within the guard: this window and the next
        assert budget.used == {"1M": 30}
        await t.advance_to(60.2)
        assert budget.used == {"1M": 20}
        await t.advance_to(120.2)
        assert budget.used == {"1M": 0}

    run(main)


def test_a_request_in_the_guard_must_fit_the_next_window_too() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=59.5)
        budget = make(t, boundary_guard=1.0)
        await budget.acquire(60)  # in the guard: carried
        task = asyncio.create_task(budget.acquire(40))  # 100 > 90 here and in the next window
        await settle()
        assert not task.done()
        await t.advance_to(60.01)  # next window holds the carried 60: 60 + 40 > 90
        assert not task.done()
        await t.advance_to(120.01)
        assert task.done()
        assert budget.used == {"1M": 40}

    run(main)


# ------------------------------------------------------------------ headers


def test_used_weight_header_syncs_the_mirror_upwards_only() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=20.0)
        budget = make(t)
        await budget.acquire(5)
        budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "80", "X-MBX-USED-WEIGHT": "80"})
        assert budget.used == {"1M": 80}  # another process on this IP spent 75
        budget.observe(200, {"x-mbx-used-weight-1m": "10"})  # lower: a request served earlier
        assert budget.used == {"1M": 80}
        budget.observe(200, [("X-Mbx-Used-Weight-1m", "85"), ("X-MBX-USED-WEIGHT-1H", "999")])
        assert budget.used == {"1M": 85}  # an interval we do not track is ignored
        budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "garbage"})
        assert budget.used == {"1M": 85}
        task = asyncio.create_task(budget.acquire(10))  # 85 + 10 > 90
        await settle()
        assert not task.done()
        await t.advance_to(60.01)
        assert task.done()
        assert budget.used == {"1M": 10}

    run(main)


def test_a_header_just_after_the_rollover_may_be_the_previous_windows() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t, boundary_guard=1.0)
        await budget.acquire(85)
        await t.advance_to(60.3)  # a response to a request served at :59.9 arrives now
        budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "85"})
        assert budget.used == {"1M": 0}  # not this window's count: ignored
        budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "88"})
        assert budget.used == {"1M": 88}  # more than the last window had: must be real, taken
        await t.advance_to(121.5)  # past the guard, any higher count is this window's
        budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "7"})
        assert budget.used == {"1M": 7}

    run(main)


# ------------------------------------------------------------------ 429 and 418


def test_429_retry_after_pauses_every_request() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=10.0)
        budget = make(t)
        budget.observe(429, {"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "12"})
        assert budget.throttled_429 == 1
        assert budget.paused_until == pytest.approx(t.mono() + 7)
        assert budget.banned_until is None
        assert budget.used == {"1M": 12}
        heavy = asyncio.create_task(budget.acquire(5))
        free = asyncio.create_task(budget.acquire(0))  # weight 0 skips the line, not the pause
        await settle()
        await t.advance(6.99)
        assert not heavy.done()
        assert not free.done()
        await t.advance(0.02)
        assert heavy.done()
        assert free.done()
        assert budget.paused_until is None
        assert budget.used == {"1M": 17}

    run(main)


def test_429_without_retry_after_pauses_until_the_window_ends() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=45.0)
        budget = make(t)
        budget.observe(429, {})
        assert budget.paused_until == pytest.approx(t.mono() + 15.001)
        task = asyncio.create_task(budget.acquire(1))
        await settle()
        await t.advance_to(59.9)
        assert not task.done()
        await t.advance_to(60.01)
        assert task.done()

    run(main)


def test_418_is_a_ban_until_retry_after() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=5.0)
        budget = make(t)
        budget.observe(418, {"Retry-After": "120", "X-MBX-USED-WEIGHT-1M": "40"})
        assert budget.bans_418 == 1
        assert budget.throttled_429 == 0
        assert budget.banned_until == pytest.approx(t.mono() + 120)
        assert budget.paused_until == budget.banned_until
        task = asyncio.create_task(budget.acquire(1))
        await settle()
        await t.advance(119.9)
        assert not task.done()
        assert budget.banned_until is not None
        await t.advance(0.2)
        assert task.done()
        assert (budget.banned_until, budget.paused_until) == (None, None)
        budget.observe(418, {})  # no Retry-After: the shortest ban, two minutes
        assert budget.banned_until == pytest.approx(t.mono() + 120)
        assert budget.bans_418 == 2

    run(main)


# ------------------------------------------------------------------ fairness and cancellation


def test_waiters_are_served_in_arrival_order() -> None:
    """Light requests that would fit now must not pass a heavy one that is waiting."""

    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t)
        await budget.acquire(80)
        done: list[str] = []

        async def take(name: str, weight: int) -> None:
            await budget.acquire(weight)
            done.append(name)

        tasks = [asyncio.create_task(take("heavy", 60))]
        await settle()
        tasks += [asyncio.create_task(take(f"light{i}", 1)) for i in range(5)]
        await settle()
        assert done == []  # 80 + 1 would fit, but the heavy request is first in line
        assert budget.used == {"1M": 80}
        await t.advance_to(60.01)
        assert done == ["heavy", "light0", "light1", "light2", "light3", "light4"]
        assert budget.used == {"1M": 65}
        assert budget.waits == 6
        await asyncio.gather(*tasks)

    run(main)


def test_a_cancelled_waiter_charges_nothing_and_lets_the_next_go() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t)
        await budget.acquire(90)
        head = asyncio.create_task(budget.acquire(10))
        middle = asyncio.create_task(budget.acquire(20))
        last = asyncio.create_task(budget.acquire(5))
        await settle()
        assert budget.waiting == 3
        middle.cancel()  # waiting for its turn
        head.cancel()  # asleep until the rollover
        await settle()
        assert head.cancelled()
        assert middle.cancelled()
        assert budget.waiting == 1
        assert budget.used == {"1M": 90}
        await t.advance_to(60.01)
        assert last.done()
        assert budget.used == {"1M": 5}  # only the request that went
        assert budget.waiting == 0

    run(main)


def test_cancelling_the_head_before_it_wakes_hands_over_the_turn() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t)
        await budget.acquire(90)
        head = asyncio.create_task(budget.acquire(10))
        await settle()
        second = asyncio.create_task(budget.acquire(10))
        await settle()
        t.wake(30.01)  # the head's sleep ends; it is cancelled before it runs
        head.cancel()
        await settle()
        assert head.cancelled()
        assert second.done()
        assert budget.used == {"1M": 10}

    run(main)


# ------------------------------------------------------------------ exchangeInfo


RATE_LIMITS: list[dict[str, object]] = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def test_configure_takes_the_weight_limits_of_exchange_info() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=30.0)
        budget = make(t, [weight_limit(6000)])
        await budget.acquire(150)
        budget.configure(RATE_LIMITS)
        assert budget.limits == (weight_limit(200),)
        assert budget.used == {"1M": 150}  # the count of a kept interval survives
        await budget.acquire(30)  # 180 = 0.9 * 200
        task = asyncio.create_task(budget.acquire(1))
        await settle()
        assert not task.done()
        await t.advance_to(60.01)
        assert task.done()

        budget.configure([RATE_LIMITS[1]])  # no REQUEST_WEIGHT entry: the weight limits stay
        assert budget.limits == (weight_limit(200),)
        budget.configure(
            [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 300},
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 10, "limit": 50},
            ]
        )
        assert budget.limits == (weight_limit(300), weight_limit(50, Interval.SECOND, 10))
        assert budget.used == {"1M": 1, "10S": 0}
        with pytest.raises(ValueError, match="rateLimits"):
            budget.configure([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE"}])
        with pytest.raises(ValueError, match="never be sent"):
            await budget.acquire(51)

    run(main)


def test_a_clock_stepped_back_keeps_the_count() -> None:
    async def main() -> None:
        t = FakeTime(offset_s=61.0)
        budget = make(t)
        await budget.acquire(50)
        await t.advance(-5.0)  # NTP stepped the wall clock back into the previous minute
        assert budget.used == {"1M": 50}

    run(main)
