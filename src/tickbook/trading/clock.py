"""The exchange's clock as seen from here: a continuously tracked server-time offset.

Every SIGNED request carries a ``timestamp`` that the exchange checks against its own clock
(binance-spec §4.4): it is refused with -1021 when it is 1000 ms or more ahead of the server,
or older than ``recvWindow`` on receipt, and (spot, since 2025-06-06) again just before the
matching engine. A local clock that drifts or was stepped makes signed requests fail for
reasons that have nothing to do with the request, so timestamps come from a
``ServerClock``: the local wall clock plus an estimated ``offset = server - local``.

How the offset is estimated, and why:

* a sample is one ``GET /time``: the server stamped its answer somewhere between our send and
  our receipt, so the best estimate of the server's time at the midpoint is ``serverTime`` and
  the offset is ``serverTime - (sent + received) / 2``, wrong by at most half the round trip;
* samples with a short round trip are the precise ones (a slow answer may have waited in a
  queue on either leg), so of the last ``keep`` samples the ``best`` with the lowest round
  trip are kept and their median offset is used: one slow or odd sample moves nothing;
* the offset drifts (both clocks do), so a background task takes a fresh sample every
  ``interval`` seconds while it runs (``start``/``stop``; the REST client starts it when it
  opens and stops it when it closes);
* a -1021 means the estimate is wrong *now* (a server clock step, a local clock step): the
  history is dropped and rebuilt from fresh samples (``sync(reset=True)``) before the
  request is signed again.

The local clock is read through injected functions, so tests control time; nothing here does
HTTP: the sampler is any ``async () -> serverTime`` (the REST client passes its own ``GET
/time``, which goes through the weight budget like every other request).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

__all__ = ["ClockSample", "ServerClock"]

log = logging.getLogger(__name__)

# A serverTime above this is in microseconds (X-MBX-TIME-UNIT: MICROSECOND, §4.4): epoch
# milliseconds stay below it until the year 5138, epoch microseconds passed it in 1973.
_MICROSECONDS_ABOVE = 10**14


def _wall_ms() -> float:
    return time.time_ns() / 1e6


class ClockSample(NamedTuple):
    """One RTT-compensated measurement: ``offset_ms`` = server - local at the midpoint."""

    offset_ms: float
    rtt_ms: float
    taken_at: float  # ``monotonic`` seconds when it was taken


def server_time_ms(value: int | float) -> float:
    """A ``serverTime`` in milliseconds, whatever unit the answer used (ms or µs)."""
    return value / 1000 if value > _MICROSECONDS_ABOVE else float(value)


class ServerClock:
    """Server time estimated from ``/time`` samples (binance-spec §4.4).

    ``sampler``: an ``async () -> serverTime`` (ms or µs; µs is detected by magnitude).
    ``keep``: how many recent samples are remembered; ``best``: how many of them, the lowest
    round trips, the offset is the median of. ``interval``: seconds between background
    resyncs (None: none). ``rounds``: samples per ``sync``. ``wall_ms`` (epoch milliseconds,
    float) and ``monotonic`` (seconds) are the local clocks; tests inject both.

    Before the first sample the offset is 0 (the local clock is trusted), and ``synced`` is
    False: the REST client syncs before its first signed request.
    """

    def __init__(
        self,
        sampler: Callable[[], Awaitable[int | float]] | None = None,
        *,
        keep: int = 16,
        best: int = 3,
        interval: float | None = 60.0,
        rounds: int = 3,
        wall_ms: Callable[[], float] = _wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if keep < 1 or best < 1 or rounds < 1:
            raise ValueError("keep, best and rounds must be at least 1")
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be positive (or None), got {interval}")
        self.sampler = sampler
        self.keep = keep
        self.best = min(best, keep)
        self.interval = interval
        self.rounds = rounds
        self._wall_ms = wall_ms
        self._monotonic = monotonic
        self._samples: collections.deque[ClockSample] = collections.deque(maxlen=keep)
        self._offset = 0.0
        self._lock: asyncio.Lock | None = None  # created on the loop that first syncs
        self._task: asyncio.Task[None] | None = None
        self.syncs = 0  # completed ``sync`` calls
        self.failures = 0  # background samples that failed

    # ------------------------------------------------------------------ reading

    @property
    def offset_ms(self) -> float:
        """Server minus local time, milliseconds (0 before the first sample)."""
        return self._offset

    @property
    def synced(self) -> bool:
        return bool(self._samples)

    @property
    def samples(self) -> list[ClockSample]:
        """The remembered samples, oldest first."""
        return list(self._samples)

    @property
    def uncertainty_ms(self) -> float | None:
        """Half the best round trip: how far the offset may be off (None before a sample)."""
        if not self._samples:
            return None
        return min(s.rtt_ms for s in self._samples) / 2

    def now_ms(self) -> int:
        """The server's time now, epoch milliseconds: what a ``timestamp`` carries."""
        return int(self._wall_ms() + self._offset)

    def now_us(self) -> int:
        """The server's time now, epoch microseconds (the exchange takes µs timestamps too)."""
        return int((self._wall_ms() + self._offset) * 1000)

    # ------------------------------------------------------------------ samples

    def add_sample(self, server_ms: float, sent_ms: float, received_ms: float) -> ClockSample:
        """Record one measurement: the server said ``server_ms`` between our local
        ``sent_ms`` and ``received_ms``. Returns the sample; the offset is updated."""
        if received_ms < sent_ms:
            raise ValueError("received before sent: the local clock was stepped back mid-sample")
        sample = ClockSample(
            server_ms - (sent_ms + received_ms) / 2, received_ms - sent_ms, self._monotonic()
        )
        self._samples.append(sample)
        self._offset = self._estimate()
        return sample

    def _estimate(self) -> float:
        precise = sorted(self._samples, key=lambda s: s.rtt_ms)[: self.best]
        return float(statistics.median(s.offset_ms for s in precise))

    def reset(self) -> None:
        """Forget every sample (the offset keeps its last value until the next sample)."""
        self._samples.clear()

    async def sample(self) -> ClockSample:
        """Take one sample through the sampler."""
        if self.sampler is None:
            raise RuntimeError("this ServerClock has no sampler: call add_sample() instead")
        sent = self._wall_ms()
        server = await self.sampler()
        received = self._wall_ms()
        return self.add_sample(server_time_ms(server), sent, received)

    async def sync(self, *, reset: bool = False) -> float:
        """Take ``rounds`` samples (dropping the history first with ``reset``, after a -1021);
        returns the new offset. Concurrent callers share one sync: the ones that arrive while
        another is running wait for it instead of sampling again (except a ``reset``, which
        must not keep the history it was asked to drop)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._lock.locked() and not reset:
            async with self._lock:  # someone else is syncing: their result is fresh enough
                return self._offset
        async with self._lock:
            if reset:
                self.reset()
            for _ in range(self.rounds):
                await self.sample()
            self.syncs += 1
            log.debug(
                "server clock synced: offset %.1f ms (±%.1f ms)", self._offset, self.uncertainty_ms or 0.0
            )
            return self._offset

    # ------------------------------------------------------------------ background

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Resync every ``interval`` seconds in the background (no-op without an interval, or
        when already running). Needs a running event loop."""
        if self.interval is None or self.sampler is None or self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(self.interval), name="tickbook-clock")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed resync keeps the last estimate; try again later
                self.failures += 1
                log.warning("server clock resync failed (offset kept at %.1f ms): %s", self._offset, exc)

    def __repr__(self) -> str:
        state = f"offset={self._offset:.1f}ms, samples={len(self._samples)}" if self._samples else "unsynced"
        return f"ServerClock({state})"
