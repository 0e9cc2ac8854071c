"""``tickbook.trading.clock.ServerClock``: the server-time offset signed requests are stamped with.

Local time is fake (a number the test moves), the "server" is a function of it with a known
offset and a chosen one-way delay per leg, so every estimate can be checked exactly: the
RTT-compensated offset of a sample is ``serverTime - (sent + received) / 2`` (binance-spec
§4.4 gives the rule the offset protects: a timestamp 1000 ms ahead or older than recvWindow
is -1021).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tickbook.trading.clock import ServerClock, server_time_ms

LOCAL_START = 1_750_000_000_000.0


class FakeLink:
    """A server ``offset`` ms ahead of the local clock, reached over legs of chosen delays."""

    def __init__(self, offset: float) -> None:
        self.local = LOCAL_START
        self.offset = offset
        self.legs: list[tuple[float, float]] = []  # (out, back) delays of the next samples, ms
        self.calls = 0

    def wall_ms(self) -> float:
        return self.local

    def monotonic(self) -> float:
        return self.local / 1000

    async def sampler(self) -> int:
        self.calls += 1
        await asyncio.sleep(0)  # a real request yields to the loop while in flight
        out, back = self.legs.pop(0) if self.legs else (5.0, 5.0)
        self.local += out
        served = self.local + self.offset
        self.local += back
        return int(served)


def make(link: FakeLink, **options: object) -> ServerClock:
    return ServerClock(link.sampler, wall_ms=link.wall_ms, monotonic=link.monotonic, **options)  # type: ignore[arg-type]


def run(coro_factory: Callable[[], object]) -> None:
    asyncio.run(coro_factory())  # type: ignore[arg-type]


def test_unsynced_clock_is_the_local_clock() -> None:
    link = FakeLink(offset=2500)
    clock = make(link)
    assert not clock.synced
    assert clock.offset_ms == 0.0
    assert clock.now_ms() == int(LOCAL_START)
    assert clock.uncertainty_ms is None


def test_symmetric_round_trip_gives_the_exact_offset() -> None:
    link = FakeLink(offset=2500)
    clock = make(link, rounds=3)

    async def main() -> None:
        await clock.sync()

    run(main)
    assert link.calls == 3
    assert clock.synced
    assert clock.offset_ms == pytest.approx(2500.0, abs=1.0)  # serverTime is whole ms
    assert clock.uncertainty_ms == pytest.approx(5.0)
    assert clock.now_ms() == pytest.approx(link.local + 2500, abs=1.0)
    assert clock.now_us() == pytest.approx((link.local + 2500) * 1000, abs=1000.0)


def test_the_lowest_round_trips_win_over_slow_odd_samples() -> None:
    # Slow samples with a lopsided delay are off by half their asymmetry; the fast ones are
    # nearly exact. The median of the 3 fastest must ignore the slow ones entirely.
    link = FakeLink(offset=-1200)
    link.legs = [(400.0, 2.0), (2.0, 2.0), (3.0, 3.0), (2.0, 900.0), (1.0, 1.0)]
    clock = make(link, rounds=5, best=3)

    async def main() -> None:
        await clock.sync()

    run(main)
    assert clock.offset_ms == pytest.approx(-1200.0, abs=1.0)
    assert clock.uncertainty_ms == pytest.approx(1.0)
    rtts = sorted(s.rtt_ms for s in clock.samples)
    assert rtts == pytest.approx([2.0, 4.0, 6.0, 402.0, 902.0])


def test_history_is_bounded_and_reset_drops_it() -> None:
    link = FakeLink(offset=100)
    clock = make(link, keep=4, rounds=6)

    async def main() -> None:
        await clock.sync()
        assert len(clock.samples) == 4  # only the last ``keep``
        link.offset = 7000  # the server clock stepped
        link.legs = [(1.0, 1.0)] * 3
        await clock.sync()  # without reset the old fast samples still outvote the new ones
        assert clock.offset_ms == pytest.approx(7000.0, abs=1.0)  # 3 new ones of 4 kept, fastest
        link.offset = -300
        link.legs = [(20.0, 20.0)] * 6
        await clock.sync(reset=True)  # slower, but the only ones left
        assert clock.offset_ms == pytest.approx(-300.0, abs=1.0)

    run(main)


def test_add_sample_refuses_a_clock_stepped_back_mid_sample() -> None:
    clock = ServerClock()
    with pytest.raises(ValueError, match="stepped back"):
        clock.add_sample(1000.0, 500.0, 400.0)
    sample = clock.add_sample(server_ms=1_000_010.0, sent_ms=1_000.0, received_ms=1_020.0)
    assert sample.offset_ms == pytest.approx(999_000.0)
    assert sample.rtt_ms == pytest.approx(20.0)


def test_microsecond_server_time_is_detected() -> None:
    assert server_time_ms(1_750_000_000_123) == 1_750_000_000_123.0
    assert server_time_ms(1_750_000_000_123_456) == pytest.approx(1_750_000_000_123.456)


def test_concurrent_syncs_share_one_round_of_samples() -> None:
    link = FakeLink(offset=50)
    clock = make(link, rounds=2)

    async def main() -> None:
        await asyncio.gather(*(clock.sync() for _ in range(5)))

    run(main)
    assert link.calls == 2  # the four late callers waited for the first one's result


def test_background_resync_runs_while_started_and_survives_failures() -> None:
    link = FakeLink(offset=10)
    failures = [True]

    async def sampler() -> int:
        if failures and failures.pop():
            raise OSError("exchange unreachable")
        return await link.sampler()

    clock = ServerClock(sampler, wall_ms=link.wall_ms, monotonic=link.monotonic, interval=0.01, rounds=1)

    async def main() -> None:
        clock.start()
        clock.start()  # idempotent
        assert clock.running
        for _ in range(200):
            if clock.syncs >= 2:
                break
            await asyncio.sleep(0.01)
        await clock.stop()
        assert not clock.running

    run(main)
    assert clock.failures == 1
    assert clock.syncs >= 2
    assert clock.offset_ms == pytest.approx(10.0, abs=1.0)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ServerClock(keep=0)
    with pytest.raises(ValueError, match="interval"):
        ServerClock(interval=0)
    with pytest.raises(RuntimeError, match="no sampler"):
        asyncio.run(ServerClock().sample())
