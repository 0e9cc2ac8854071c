"""The client's mirror of the exchange's REQUEST_WEIGHT limits: wait before sending, never draw a 429.

Binance counts request weight per IP in fixed windows aligned to the clock (a 1-minute window
resets at :00 of every minute, binance-spec §5.1), answers 429 with ``Retry-After`` past the
limit and bans an IP that keeps sending (418, 2 minutes to 3 days, §5.2). A client that only
reacts to 429s has already lost: the next requests in flight draw strikes and then a ban. So
every request of one market's host goes through one ``RequestBudget``: ``await
budget.acquire(weight)`` before sending, ``budget.observe(status, headers)`` after the answer.

What it does, and why:

* it counts its own charges in windows aligned like the exchange's
  (``tickbook.limits.WeightWindow.window_start``) and lets a request go only while every window
  stays at or under ``headroom * limit``: the rest is the margin for clock skew, requests in
  flight and other processes on the same IP;
* the ``X-MBX-USED-WEIGHT-<interval>`` headers are the exchange's own count: when one is higher
  than the mirror, the mirror takes it (another process spent weight too); it never lowers the
  mirror, because a header describes the moment the request was served, not requests still in
  flight;
* a request charged in the last ``boundary_guard`` seconds of a window may reach the exchange
  in the next one (latency, clock skew), so it is charged to the next window too; likewise, a
  header that arrives within ``boundary_guard`` seconds after a rollover and is no higher than
  what the previous window ended with may be the previous window's count, and is not applied
  to the new one (otherwise every busy rollover would block a whole window for nothing);
* 429 and 418 pause every request until ``Retry-After`` has passed (a 429 without it: until the
  current window ends; a 418 without it: the shortest ban, 2 minutes);
* waiters are served first come, first served: a heavy request is never starved by a stream of
  light ones. Only the waiter at the head of the line sleeps; the others wait for their turn.
  A waiter that is cancelled leaves the line and charges nothing.

Requests of weight 0 (futures order placement, §5.3) consume nothing, so they skip the line; a
pause (429/418) still holds them, since the exchange refuses everything from a throttled IP.

No aiohttp here: the snapshot scheduler and the REST client both call ``acquire``/``observe``
around their own HTTP calls. Not thread-safe: use one budget from one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import operator
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final, TypeAlias, TypeVar

from tickbook._types import Market
from tickbook.limits import (
    BAN_MIN_MS,
    MarketLimits,
    OrderCount,
    RateLimit,
    RateLimitType,
    WeightWindow,
    default_limits,
    parse_usage_headers,
    system_clock_ms,
)

__all__ = ["OrderBudget", "OrderLimitExceeded", "RequestBudget"]

log = logging.getLogger(__name__)

Headers: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

# Sleep this much past a computed window end, so the waiter wakes inside the new window even
# when float seconds and integer milliseconds round against it.
_WAKE_MARGIN_S: Final = 0.001


class _Window:
    """One REQUEST_WEIGHT limit's current window: what was spent in it and what is already
    known to land in the next one."""

    __slots__ = ("cap", "carry", "limit", "previous", "start", "used")

    def __init__(self, limit: RateLimit, headroom: float, now_ms: int) -> None:
        self.limit = limit
        self.cap = math.floor(limit.limit * headroom)
        self.start = WeightWindow.window_start(limit, now_ms)
        self.used = 0  # own charges and synced headers, current window
        self.carry = 0  # charges near the end of this window, counted in the next one too
        self.previous = 0  # what the previous window ended with (header ambiguity after a rollover)

    @property
    def end(self) -> int:
        return self.start + self.limit.interval_ms

    def roll(self, now_ms: int) -> None:
        """Move to the window containing ``now_ms``. Never backwards: a wall clock stepped
        back keeps the current count, which only makes the budget more careful."""
        start = WeightWindow.window_start(self.limit, now_ms)
        if start <= self.start:
            return
        adjacent = start == self.start + self.limit.interval_ms
        self.previous = self.used if adjacent else 0
        self.used = self.carry if adjacent else 0
        self.carry = 0
        self.start = start

    def _fits_in(self, used: int, weight: int) -> bool:
        # A request heavier than the headroom but within the limit may go into an empty window,
        # or it could never go at all.
        return used + weight <= self.cap or (used == 0 and weight <= self.limit.limit)

    def fits(self, weight: int, now_ms: int, guard_ms: int) -> bool:
        if not self._fits_in(self.used, weight):
            return False
        return self.end - now_ms > guard_ms or self._fits_in(self.carry, weight)

    def charge(self, weight: int, now_ms: int, guard_ms: int) -> None:
        self.used += weight
        if self.end - now_ms <= guard_ms:
            self.carry += weight

    def sync(self, reported: int, now_ms: int, guard_ms: int) -> None:
        if now_ms - self.start < guard_ms and reported <= self.previous:
            return  # possibly the previous window's count, served just before the rollover
        if reported > self.used:
            self.used = reported


class _Ticket:
    """A waiter in line: its weight and the future that tells it it is at the head."""

    __slots__ = ("turn", "weight")

    def __init__(self, weight: int, turn: asyncio.Future[None]) -> None:
        self.weight = weight
        self.turn = turn


W = TypeVar("W", bound=_Window)


class _Budget:
    """What ``RequestBudget`` and ``OrderBudget`` share: the market, the fraction of each limit
    they spend, the guard around window boundaries, the clocks and the sleep (injectable, so
    tests control time), and windows that keep their counts when the limits change."""

    def __init__(
        self,
        market: Market | str,
        *,
        headroom: float,
        boundary_guard: float,
        clock: Callable[[], float],
        wall_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        if not 0.0 < headroom <= 1.0:
            raise ValueError(f"headroom must be in (0, 1], got {headroom}")
        self.market: Market = Market.parse(market)
        self._headroom = headroom
        self._guard_ms = round(boundary_guard * 1000)
        self._clock = clock
        self._wall_ms = wall_ms
        self._sleep = sleep

    def _given_limits(self, limits: Iterable[RateLimit] | None) -> tuple[RateLimit, ...]:
        """``limits``, or the market's documented ones (``tickbook.limits.default_limits``)."""
        return default_limits(self.market).rate_limits if limits is None else tuple(limits)

    def _windows_for(self, limits: Iterable[RateLimit], kind: type[W], old: Iterable[_Window]) -> list[W]:
        """Windows for ``limits``, keeping the counts of the ``old`` ones whose interval remains."""
        now = self._wall_ms()
        kept_by_interval = {w.limit.interval_ms: w for w in old}
        windows = []
        for limit in limits:
            window = kind(limit, self._headroom, now)
            kept = kept_by_interval.get(limit.interval_ms)
            if kept is not None:
                kept.roll(now)
                window.start, window.used = kept.start, kept.used
                window.carry, window.previous = kept.carry, kept.previous
            windows.append(window)
        return windows


class RequestBudget(_Budget):
    """The REQUEST_WEIGHT budget of one market's host (one IP), shared by every REST caller.

    ``limits``: the REQUEST_WEIGHT limits to respect (other kinds are ignored); default the
    market's documented ones (``tickbook.limits.default_limits``), replaced by exchangeInfo's
    through ``configure``. ``headroom``: the fraction of each limit the budget spends.
    ``boundary_guard``: seconds before a window's end during which a charge also counts in the
    next window (cover the request latency plus the clock skew to the exchange).

    ``clock`` (monotonic seconds) times pauses; ``wall_ms`` (epoch milliseconds) places the
    windows, as the exchange does; ``sleep`` waits. Tests inject all three to control time.
    """

    def __init__(
        self,
        market: Market | str,
        limits: Iterable[RateLimit] | None = None,
        *,
        headroom: float = 0.9,
        boundary_guard: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = system_clock_ms,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            market,
            headroom=headroom,
            boundary_guard=boundary_guard,
            clock=clock,
            wall_ms=wall_ms,
            sleep=sleep,
        )
        if not boundary_guard >= 0.0:
            raise ValueError(f"boundary_guard must be >= 0, got {boundary_guard}")
        self._config = MarketLimits(self.market, self._weight_limits(self._given_limits(limits)))
        self._windows: list[_Window] = []
        self._rebuild()
        self._line: collections.deque[_Ticket] = collections.deque()
        self._paused_until = -math.inf  # monotonic seconds
        self._banned_until = -math.inf
        self._waits = 0
        self._throttled_429 = 0
        self._bans_418 = 0

    @staticmethod
    def _weight_limits(limits: Iterable[RateLimit]) -> tuple[RateLimit, ...]:
        weights = tuple(rl for rl in limits if rl.kind is RateLimitType.REQUEST_WEIGHT)
        if not weights:
            raise ValueError("no REQUEST_WEIGHT limit given")
        return weights

    def _rebuild(self) -> None:
        """Windows for the configured limits, keeping the counts of intervals that remain."""
        self._windows = self._windows_for(self._config.rate_limits, _Window, self._windows)

    # ------------------------------------------------------------------ configuration

    def configure(self, rate_limits: Iterable[Mapping[str, object]]) -> None:
        """Take the REQUEST_WEIGHT limits of an exchangeInfo ``rateLimits`` array (the live
        values win over the documented ones). An array without REQUEST_WEIGHT entries keeps
        the current limits; counts carry over for intervals that stay. A waiter already asleep
        finishes its sleep before it sees the new values."""
        self._config = MarketLimits(self.market, self._config.rate_limits).with_exchange_info(rate_limits)
        self._config = MarketLimits(self.market, self._weight_limits(self._config.rate_limits))
        self._rebuild()

    # ------------------------------------------------------------------ monitoring

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return self._config.rate_limits

    @property
    def headroom(self) -> float:
        return self._headroom

    @property
    def used(self) -> dict[str, int]:
        """The weight counted in each current window, by interval label (``"1M"``)."""
        now = self._wall_ms()
        for window in self._windows:
            window.roll(now)
        return {w.limit.label: w.used for w in self._windows}

    @property
    def paused_until(self) -> float | None:
        """When requests may go again after a 429 or 418 (``clock`` seconds), or None."""
        until = max(self._paused_until, self._banned_until)
        return until if until > self._clock() else None

    @property
    def banned_until(self) -> float | None:
        """When the 418 ban ends (``clock`` seconds), or None when not banned."""
        return self._banned_until if self._banned_until > self._clock() else None

    @property
    def ban_remaining(self) -> float:
        """Seconds until the 418 ban ends (0.0 when not banned): what a caller that must not
        even queue during a ban (the REST client) checks before ``acquire``."""
        return max(0.0, self._banned_until - self._clock())

    @property
    def pause_remaining(self) -> float:
        """Seconds until requests may go again after a 429 or 418 (0.0 when they may)."""
        return max(0.0, self._pause_remaining())

    @property
    def waits(self) -> int:
        """How many ``acquire`` calls had to wait (for a window, a pause or their turn)."""
        return self._waits

    @property
    def throttled_429(self) -> int:
        return self._throttled_429

    @property
    def bans_418(self) -> int:
        return self._bans_418

    @property
    def waiting(self) -> int:
        """Callers in line right now."""
        return len(self._line)

    # ------------------------------------------------------------------ spending

    def _check_weight(self, weight: int) -> None:
        for window in self._windows:
            if weight > window.limit.limit:
                raise ValueError(
                    f"a request of weight {weight} can never be sent: the {window.limit.label} "
                    f"limit is {window.limit.limit}"
                )

    def _pause_remaining(self) -> float:
        return max(self._paused_until, self._banned_until) - self._clock()

    def _delay(self, weight: int) -> float:
        """Seconds until ``weight`` may be charged (<= 0: now)."""
        delay = self._pause_remaining()
        now = self._wall_ms()
        for window in self._windows:
            window.roll(now)
            if not window.fits(weight, now, self._guard_ms):
                delay = max(delay, (window.end - now) / 1000 + _WAKE_MARGIN_S)
        return delay

    def _charge(self, weight: int) -> None:
        now = self._wall_ms()
        for window in self._windows:
            window.roll(now)
            window.charge(weight, now, self._guard_ms)

    async def acquire(self, weight: int) -> None:
        """Return once a request of ``weight`` may be sent, having charged it.

        Waits, in arrival order, for a window to roll over or a pause to end. Raises
        ``ValueError`` for a weight above a limit (the exchange would refuse it every time).
        Cancellation while waiting charges nothing and lets the next waiter go.
        """
        weight = operator.index(weight)
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self._check_weight(weight)
        if weight == 0:
            if self._pause_remaining() > 0:
                self._waits += 1
                while (remaining := self._pause_remaining()) > 0:
                    await self._sleep(remaining)
            return
        if not self._line and self._delay(weight) <= 0:
            self._charge(weight)
            return
        self._waits += 1
        ticket = _Ticket(weight, asyncio.get_running_loop().create_future())
        self._line.append(ticket)
        if self._line[0] is ticket:
            ticket.turn.set_result(None)
        try:
            await ticket.turn
            while True:
                self._check_weight(weight)  # configure() may have lowered a limit meanwhile
                delay = self._delay(weight)
                if delay <= 0:
                    break
                await self._sleep(delay)
            self._charge(weight)
        finally:
            self._leave(ticket)

    def _leave(self, ticket: _Ticket) -> None:
        was_head = bool(self._line) and self._line[0] is ticket
        self._line.remove(ticket)
        if was_head and self._line:
            head = self._line[0]
            if not head.turn.done():
                head.turn.set_result(None)

    # ------------------------------------------------------------------ what the exchange said

    def observe(self, status: int, headers: Headers) -> None:
        """Read one response: sync the counts from ``X-MBX-USED-WEIGHT-*``, and on 429/418
        pause every request for ``Retry-After`` seconds (418: a ban)."""
        usage = parse_usage_headers(headers)
        now = self._wall_ms()
        for window in self._windows:
            reported = usage.used_weight.get(window.limit.label)
            if reported is not None:
                window.roll(now)
                window.sync(reported, now, self._guard_ms)
        if status == 429:
            self._throttled_429 += 1
            if usage.retry_after_s is not None:
                seconds = float(usage.retry_after_s)
            else:
                seconds = self._until_window_end(now)
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            log.warning("429 from the exchange: requests paused for %.1f s", seconds)
        elif status == 418:
            self._bans_418 += 1
            seconds = float(usage.retry_after_s) if usage.retry_after_s is not None else BAN_MIN_MS / 1000
            self._banned_until = max(self._banned_until, self._clock() + seconds)
            log.error("418 from the exchange: IP banned, requests paused for %.1f s", seconds)

    def _until_window_end(self, now_ms: int) -> float:
        """Seconds a 429 without Retry-After pauses for: until the end of the windows that are
        full by our count, or of the shortest window when none is (we do not know which one
        the exchange hit)."""
        full = [w for w in self._windows if w.used >= w.cap]
        chosen = full or [min(self._windows, key=lambda w: w.limit.interval_ms)]
        return max(w.end - now_ms for w in chosen) / 1000 + _WAKE_MARGIN_S

    def __repr__(self) -> str:
        used = ", ".join(f"{label}={n}" for label, n in self.used.items())
        return f"RequestBudget({self.market.value}, {used}, waiting={len(self._line)})"


# --------------------------------------------------------------------------------------------
# The unfilled-order count


class OrderLimitExceeded(Exception):
    """An order request would pass an ORDERS limit, and waiting for the window to reset takes
    longer than the caller allows (``retry_after`` seconds). Nothing was sent."""

    def __init__(self, limit: RateLimit, used: int, count: int, retry_after: float) -> None:
        self.limit = limit
        self.used = used
        self.count = count
        self.retry_after = retry_after
        super().__init__(
            f"{count} more order(s) would pass the ORDERS limit of {limit.limit} per "
            f"{limit.interval_num} {limit.interval.value} ({used} counted); "
            f"the window resets in {retry_after:.1f} s"
        )


class _OrderWindow(_Window):
    """One ORDERS limit's current window: the count the exchange reported (or we added).

    Nothing is carried into the next window (``carry`` stays 0): the order count comes from
    the exchange's headers, which say which window they count. A headroom never leaves less
    than one order."""

    __slots__ = ()

    def __init__(self, limit: RateLimit, headroom: float, now_ms: int) -> None:
        super().__init__(limit, headroom, now_ms)
        self.cap = max(1, self.cap)


class OrderBudget(_Budget):
    """The client's mirror of the account's unfilled-order count (binance-spec §5.1, §5.3).

    The exchange counts new orders per *account* in fixed windows (spot: 10 seconds and 1 day
    by default; futures: 10 seconds and 1 minute) and refuses an order past the limit with
    429/-1015. Unlike request weight the count is not only spent: on spot the first fill of an
    order gives some back, so only the exchange knows the real number, and it tells it in the
    ``X-MBX-ORDER-COUNT-<interval>`` headers of order responses.

    So the mirror is driven by the headers: ``acquire(count)`` before sending an order request
    (``tickbook.limits.order_count`` says how much it adds) checks that the count of the
    requests still in flight plus the last reported count plus this one stays within
    ``headroom * limit`` of every window; ``settle(count, headers)`` after the answer takes the
    reported count as the window's value (lower too: fills gave budget back), or, without a
    header (a failed request, a lost answer), keeps counting the request, which errs on the
    safe side; ``release(count)`` drops a request that never left. A request that does not
    fit waits for its window to reset when that is at most ``max_wait`` seconds away (the
    10-second window), and is refused with ``OrderLimitExceeded`` otherwise (a full day
    window: nothing to wait for).

    The shortest ORDERS interval takes ``OrderCount.short``, the others ``OrderCount.long``
    (futures batches count 5 on the 10-second window and 1 on the minute). Clocks and sleep
    are injectable as in ``RequestBudget``; use one instance from one event loop.
    """

    def __init__(
        self,
        market: Market | str,
        limits: Iterable[RateLimit] | None = None,
        *,
        headroom: float = 1.0,
        max_wait: float = 11.0,
        boundary_guard: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = system_clock_ms,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            market,
            headroom=headroom,
            boundary_guard=boundary_guard,
            clock=clock,
            wall_ms=wall_ms,
            sleep=sleep,
        )
        if not max_wait >= 0.0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        self.max_wait = max_wait
        self._limits = tuple(rl for rl in self._given_limits(limits) if rl.kind is RateLimitType.ORDERS)
        self._windows: list[_OrderWindow] = []
        self._in_flight: dict[int, int] = {}  # interval_ms -> counts sent, not yet answered
        self._rebuild()
        self._lock = asyncio.Lock()
        self._paused_until = -math.inf
        self._waits = 0
        self._refused = 0

    def _rebuild(self) -> None:
        limits = sorted(self._limits, key=lambda rl: rl.interval_ms)  # the shortest first: OrderCount.short
        windows = self._windows_for(limits, _OrderWindow, self._windows)
        self._windows = windows
        self._in_flight = {w.limit.interval_ms: self._in_flight.get(w.limit.interval_ms, 0) for w in windows}

    def configure(self, rate_limits: Iterable[Mapping[str, object]]) -> None:
        """Take the ORDERS limits of an exchangeInfo ``rateLimits`` array (an array without
        ORDERS entries keeps the current ones); counts carry over for intervals that stay."""
        parsed = [RateLimit.from_json(entry) for entry in rate_limits]
        orders = [rl for rl in parsed if rl.kind is RateLimitType.ORDERS]
        if orders:
            self._limits = tuple(orders)
            self._rebuild()

    # ------------------------------------------------------------------ monitoring

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return tuple(w.limit for w in self._windows)

    @property
    def counts(self) -> dict[str, int]:
        """The count of each current window by interval label (``"10S"``), requests in
        flight included."""
        now = self._wall_ms()
        out = {}
        for window in self._windows:
            window.roll(now)
            out[window.limit.label] = window.used + self._in_flight[window.limit.interval_ms]
        return out

    @property
    def waits(self) -> int:
        return self._waits

    @property
    def refused(self) -> int:
        return self._refused

    # ------------------------------------------------------------------ spending

    def _shares(self, count: OrderCount) -> list[tuple[_OrderWindow, int]]:
        return [(w, count.short if i == 0 else count.long) for i, w in enumerate(self._windows)]

    def _blocking(self, count: OrderCount) -> tuple[float, _OrderWindow | None]:
        """Seconds until ``count`` fits (<= 0: now) and the window that holds it up."""
        now = self._wall_ms()
        delay, blocking = self._paused_until - self._clock(), None
        for window, n in self._shares(count):
            window.roll(now)
            if n and window.used + self._in_flight[window.limit.interval_ms] + n > window.cap:
                wait = (window.end - now) / 1000 + _WAKE_MARGIN_S
                if wait > delay or blocking is None:
                    delay, blocking = max(delay, wait), window
        return delay, blocking

    async def acquire(self, count: OrderCount | int, *, max_wait: float | None = None) -> None:
        """Return once ``count`` more orders fit every ORDERS window, having counted them as
        in flight (``settle`` must follow once answered, or ``release`` when it was never
        sent: until then they hold their place in every window). Raises
        ``OrderLimitExceeded`` when they would only fit after more than ``max_wait`` seconds
        (default the budget's), and ``ValueError`` when they can never fit."""
        if isinstance(count, int):
            count = OrderCount(count, count)
        if count.short < 0 or count.long < 0:
            raise ValueError(f"order counts must be >= 0, got {count}")
        if not any(n for _, n in self._shares(count)):
            return
        for window, n in self._shares(count):
            if n > window.limit.limit:
                raise ValueError(
                    f"{n} orders in one request can never fit the ORDERS limit of {window.limit.limit}"
                )
        limit_s = self.max_wait if max_wait is None else max_wait
        async with self._lock:  # first come, first served
            while True:
                delay, blocking = self._blocking(count)
                if delay <= 0:
                    break
                if delay > limit_s:
                    self._refused += 1
                    held = blocking if blocking is not None else self._windows[0]  # else: a pause
                    n = count.short if held is self._windows[0] else count.long
                    raise OrderLimitExceeded(
                        held.limit, held.used + self._in_flight[held.limit.interval_ms], n, delay
                    )
                self._waits += 1
                await self._sleep(delay)
            for window, n in self._shares(count):
                self._in_flight[window.limit.interval_ms] += n

    def settle(self, count: OrderCount | int, headers: Headers | None = None) -> None:
        """The answer to a request ``acquire(count)`` let go arrived (or never will): it is no
        longer in flight, and the reported counts, when the answer carried them, replace the
        mirror. Without a report the request stays counted (it may have placed orders)."""
        if isinstance(count, int):
            count = OrderCount(count, count)
        reported = parse_usage_headers(headers).order_count if headers is not None else {}
        now = self._wall_ms()
        for window, n in self._shares(count):
            key = window.limit.interval_ms
            self._in_flight[key] = max(0, self._in_flight[key] - n)
            window.roll(now)
            value = reported.get(window.limit.label)
            # A report just after a rollover that is no higher than what the previous window
            # ended with may be that window's count: it is not applied to the new one (the
            # request itself still counts). The guard is at most a tenth of the interval.
            guard = min(self._guard_ms, window.limit.interval_ms // 10)
            stale = value is not None and now - window.start < guard and 0 < value <= window.previous
            if value is None or stale:
                window.used += n
            else:
                window.used = value

    def release(self, count: OrderCount | int) -> None:
        """A request ``acquire(count)`` let go was never sent (refused locally, connection
        refused): it leaves the in-flight count and counts nothing."""
        if isinstance(count, int):
            count = OrderCount(count, count)
        for window, n in self._shares(count):
            key = window.limit.interval_ms
            self._in_flight[key] = max(0, self._in_flight[key] - n)

    def observe(self, headers: Headers) -> None:
        """Sync the mirror from any response's ``X-MBX-ORDER-COUNT-*`` headers (a request
        that was not counted through ``acquire``: a query of ``rateLimit/order``)."""
        self.settle(OrderCount(0, 0), headers)

    def pause(self, seconds: float) -> None:
        """Hold every order request for ``seconds`` (after a -1015 refusal)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def __repr__(self) -> str:
        counts = ", ".join(f"{label}={n}" for label, n in self.counts.items())
        return f"OrderBudget({self.market.value}, {counts})"
