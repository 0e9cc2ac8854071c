"""REST depth snapshots for hundreds of symbols, fetched under the weight budget without a 429.

The feed needs a snapshot per symbol at start and after every gap, and at start that is
hundreds at once: 300 spot snapshots of 1000 levels weigh 15,000, more than two minutes of the
spot limit (binance-spec §1.3, §5.1). Sending them as they are asked for draws 429s and then a
418 ban that also cuts the WebSocket API (§5.2). So every request goes through one queue:

* ``request(symbol, limit, priority)`` returns a future at once; a symbol already queued gets
  the same future back (more urgent priority and larger limit win), so a burst of gaps on one
  symbol costs one request;
* one dispatcher takes the most urgent request (lower ``priority`` first, FIFO within one),
  waits for the budget (``RequestBudget.acquire``) and only then for nothing else: it hands
  the request to a fetch task, at most ``max_in_flight`` of them at a time. The budget is
  charged only when a slot is free, so a request that arrives while the dispatcher waits for
  the budget still goes next;
* every answer goes back to the budget (``observe``): its usage headers keep the mirror honest,
  a 429/418 pauses everything for ``Retry-After`` and the request goes back to its place in the
  queue;
* 5xx, timeouts and connection errors (the server is down) are retried with exponential
  backoff and full jitter, for as long as it takes: the feed cannot run without the snapshot,
  so the request is never dropped; the fetch keeps its slot while it backs off, which holds
  the load on a failing server to ``max_in_flight`` requests. A Binance error on a 4xx
  (-1121 invalid symbol...) fails the future with ``SnapshotError``: retrying it unchanged
  cannot succeed (§10.2).

There is a task per request in flight (at most ``max_in_flight``) and one dispatcher, never a
task per queued request: queued requests are entries in a heap.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, TypedDict

import aiohttp
import msgspec

from tickbook._types import Market
from tickbook.budget import RequestBudget
from tickbook.decode import DecodeError, decode_snapshot
from tickbook.feed.endpoints import DEPTH_PATHS
from tickbook.limits import depth_limit, depth_weight

__all__ = ["Snapshot", "SnapshotError", "SnapshotScheduler", "SnapshotStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One depth snapshot as the exchange sent it.

    ``bids``/``asks`` are the raw JSON arrays (``OrderBook.apply_snapshot`` parses them
    directly); ``limit`` the levels asked for (pass it as ``apply_snapshot(..., limit=)``);
    ``received_ns`` the wall clock (epoch ns) when the body arrived; ``weight`` what one
    request cost; ``attempts`` how many HTTP requests it took.
    """

    symbol: str
    limit: int
    last_update_id: int
    bids: msgspec.Raw
    asks: msgspec.Raw
    received_ns: int
    weight: int
    attempts: int


class SnapshotStats(TypedDict):
    """``SnapshotScheduler.stats()``: see there."""

    requested: int
    fetched: int
    retries: int
    errors: dict[str, int]
    throttled: int
    banned: int
    in_flight: int
    queued: int
    weight_used: int


class SnapshotError(Exception):
    """The exchange refused the request (a 4xx): retrying it unchanged cannot succeed.

    ``code``/``msg`` are Binance's (``-1121``, ``"Invalid symbol."``); ``code`` is None when
    the body was not a Binance error (a WAF 403, a proxy's page). ``status`` is the HTTP status.
    """

    def __init__(self, symbol: str, code: int | None, msg: str, status: int) -> None:
        super().__init__(f"{symbol}: HTTP {status}, code {code}: {msg}")
        self.symbol = symbol
        self.code = code
        self.msg = msg
        self.status = status


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str = ""


_error_decoder: Final = msgspec.json.Decoder(_ErrorBody)

_QUEUED: Final = 0
_DISPATCHING: Final = 1  # taken from the queue, waiting for the budget
_ACTIVE: Final = 2  # in a fetch task (sending, or backing off after a failure)
_DONE: Final = 3  # resolved, failed, cancelled or merged into another job

_Outcome = Literal["done", "requeue", "retry"]


class _Job:
    """One symbol's pending snapshot and every future waiting for it."""

    __slots__ = ("attempts", "failures", "futures", "limit", "priority", "seq", "state", "symbol", "weight")

    def __init__(self, symbol: str, limit: int, weight: int, priority: int, seq: int) -> None:
        self.symbol = symbol
        self.limit = limit
        self.weight = weight
        self.priority = priority
        self.seq = seq
        self.futures: list[asyncio.Future[Snapshot]] = []
        self.state = _QUEUED
        self.attempts = 0  # HTTP requests sent
        self.failures = 0  # retryable failures, for the backoff

    @property
    def alive(self) -> bool:
        """Whether anyone still waits for the result."""
        return any(not f.done() for f in self.futures)

    def cancel_futures(self) -> bool:
        cancelled = False
        for future in self.futures:
            cancelled |= future.cancel()
        return cancelled


class SnapshotScheduler:
    """Fetches depth snapshots from ``rest_base`` (``https://api.binance.com``, or the local
    exchange's ``rest_url``) through ``session``, under ``budget`` (the market host's shared
    ``RequestBudget``, for the same ``market``).

    ``max_in_flight`` bounds concurrent requests; ``retry_base``/``retry_cap`` (seconds) shape
    the backoff after a failure (``uniform(0, min(cap, base * 2**n))`` before the n+1-th
    retry); ``request_timeout`` bounds one HTTP request. Create and use it on one event loop;
    ``close()`` (or ``async with``) stops it and cancels what is still pending. The session is
    the caller's: it is not closed here.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        rest_base: str,
        market: Market | str,
        budget: RequestBudget,
        *,
        max_in_flight: int = 4,
        retry_base: float = 0.25,
        retry_cap: float = 10.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.market: Market = Market.parse(market)
        if budget.market is not self.market:
            raise ValueError(f"the budget is {budget.market.value}'s, not {self.market.value}'s")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if not 0 < retry_base <= retry_cap:
            raise ValueError(f"need 0 < retry_base <= retry_cap, got {retry_base}, {retry_cap}")
        if not request_timeout > 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        self._session = session
        self._url = rest_base.rstrip("/") + DEPTH_PATHS[self.market]
        self.budget = budget
        self.max_in_flight = max_in_flight
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._heap: list[tuple[int, int, _Job]] = []
        self._queued: dict[str, _Job] = {}
        self._dispatching: _Job | None = None
        self._active: dict[_Job, asyncio.Task[None]] = {}
        self._owner: dict[asyncio.Future[Snapshot], _Job] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False
        self._broken: BaseException | None = None
        self._requested = 0
        self._fetched = 0
        self._retries = 0
        self._throttled = 0
        self._banned = 0
        self._weight_used = 0
        self._errors: Counter[str] = Counter()

    # ------------------------------------------------------------------ public API

    def request(self, symbol: str, limit: int, priority: int = 0) -> asyncio.Future[Snapshot]:
        """Queue a snapshot of ``symbol`` with ``limit`` levels; lower ``priority`` goes first.

        ``limit`` is checked as the exchange checks it (futures take only 5, 10, 20, 50, 100,
        500, 1000; spot serves above 5000 as 5000): a refused one raises ``ValueError`` here.
        A symbol already queued returns the same future. A symbol whose request is already in
        flight gets a new one: the caller wants a snapshot taken after this call.
        """
        if self._broken is not None:
            raise RuntimeError("the snapshot dispatcher failed") from self._broken
        if self._closed:
            raise RuntimeError("SnapshotScheduler is closed")
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol must be a non-empty str, got {symbol!r}")
        symbol = symbol.upper()
        levels = depth_limit(self.market, limit)
        weight = depth_weight(self.market, levels)
        loop = asyncio.get_running_loop()
        self._requested += 1
        job = self._queued.get(symbol)
        if job is not None:
            if levels > job.limit:
                job.limit, job.weight = levels, weight
            if priority < job.priority:
                job.priority, job.seq = priority, next(self._seq)
                heapq.heappush(self._heap, (job.priority, job.seq, job))
                self._wake.set()
            for pending in job.futures:
                if not pending.done():
                    return pending
            # Every waiter cancelled its future but the callback has not run yet: new future.
            future: asyncio.Future[Snapshot] = loop.create_future()
            self._attach(job, future)
            return future
        job = _Job(symbol, levels, weight, priority, next(self._seq))
        future = loop.create_future()
        self._attach(job, future)
        self._queued[symbol] = job
        heapq.heappush(self._heap, (job.priority, job.seq, job))
        self._start()
        self._wake.set()
        return future

    def cancel(self, symbol: str) -> bool:
        """Drop the symbol's queued request and cancel its request in flight; their futures
        are cancelled. Returns whether there was anything to cancel."""
        symbol = symbol.upper()
        jobs = [job for job in self._active if job.symbol == symbol]
        if (queued := self._queued.get(symbol)) is not None:
            jobs.append(queued)
        if self._dispatching is not None and self._dispatching.symbol == symbol:
            jobs.append(self._dispatching)
        found = False
        for job in jobs:
            found |= job.cancel_futures()
            self._abandon(job)
        return found

    async def close(self) -> None:
        """Stop the dispatcher and the fetches; cancel every pending future. Idempotent."""
        self._closed = True
        tasks = list(self._active.values())
        if self._dispatcher is not None:
            tasks.append(self._dispatcher)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._cancel_everything()

    async def __aenter__(self) -> SnapshotScheduler:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> SnapshotStats:
        """Counters for monitoring: requests asked for, snapshots fetched, retries (every
        re-send), errors by kind (``server``: 5xx, ``timeout``, ``connection``, ``decode``,
        ``http``: another unexpected status, ``rejected``: a 4xx error), 429s (``throttled``)
        and 418s (``banned``) received, requests ``in_flight`` (sending or backing off) and
        ``queued``, and the ``weight_used`` charged to the budget."""
        return {
            "requested": self._requested,
            "fetched": self._fetched,
            "retries": self._retries,
            "errors": dict(self._errors),
            "throttled": self._throttled,
            "banned": self._banned,
            "in_flight": len(self._active),
            "queued": len(self._queued),
            "weight_used": self._weight_used,
        }

    # ------------------------------------------------------------------ bookkeeping

    def _attach(self, job: _Job, future: asyncio.Future[Snapshot]) -> None:
        job.futures.append(future)
        self._owner[future] = job
        future.add_done_callback(self._future_done)

    def _future_done(self, future: asyncio.Future[Snapshot]) -> None:
        """A caller may cancel its future (``wait_for`` timing out does): when nobody waits
        for a job any more, stop spending weight on it."""
        job = self._owner.pop(future, None)
        if job is not None and job.state != _DONE and not job.alive:
            self._abandon(job)

    def _abandon(self, job: _Job) -> None:
        """Forget a job nobody waits for: out of the queue, its fetch cancelled. (A job being
        dispatched is dropped by the dispatcher when the budget lets it go.)"""
        if job.state == _QUEUED:
            job.state = _DONE
            if self._queued.get(job.symbol) is job:
                del self._queued[job.symbol]
        elif job.state == _ACTIVE:
            task = self._active.get(job)
            if task is not None:
                task.cancel()

    def _valid(self, entry: tuple[int, int, _Job]) -> bool:
        priority, seq, job = entry
        return job.state == _QUEUED and job.priority == priority and job.seq == seq

    def _peek(self) -> _Job | None:
        """The most urgent queued job, after discarding stale heap entries."""
        heap = self._heap
        while heap:
            if self._valid(heap[0]):
                job = heap[0][2]
                if job.alive:
                    return job
                self._abandon(job)
            heapq.heappop(heap)
        return None

    def _pop(self) -> _Job | None:
        job = self._peek()
        if job is None:
            return None
        heapq.heappop(self._heap)
        del self._queued[job.symbol]
        job.state = _DISPATCHING
        return job

    def _requeue(self, job: _Job) -> None:
        """Put a job back at its place (its priority and sequence number). A request for the
        same symbol queued meanwhile is merged in: this job's next attempt is after it, so one
        snapshot serves both."""
        if not job.alive or self._closed:
            job.state = _DONE
            job.cancel_futures()
            return
        other = self._queued.pop(job.symbol, None)
        if other is not None:
            other.state = _DONE
            for future in other.futures:
                if not future.done():
                    job.futures.append(future)
                    self._owner[future] = job
            other.futures = []
            if (other.priority, other.seq) < (job.priority, job.seq):
                job.priority, job.seq = other.priority, other.seq
            if other.limit > job.limit:
                job.limit, job.weight = other.limit, other.weight
        job.state = _QUEUED
        self._queued[job.symbol] = job
        heapq.heappush(self._heap, (job.priority, job.seq, job))
        self._wake.set()

    def _cancel_everything(self) -> None:
        jobs = list(self._queued.values()) + list(self._active)
        if self._dispatching is not None:
            jobs.append(self._dispatching)
        for job in jobs:
            job.state = _DONE
            job.cancel_futures()
        self._queued.clear()
        self._heap.clear()
        self._dispatching = None

    # ------------------------------------------------------------------ dispatching

    def _start(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name="tickbook-snapshot-dispatcher"
            )
            self._dispatcher.add_done_callback(self._dispatcher_done)

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        # A bug, not an exchange condition: fail loudly rather than leave futures hanging.
        log.error("snapshot dispatcher failed", exc_info=exc)
        self._broken = exc
        jobs = list(self._queued.values()) + ([self._dispatching] if self._dispatching else [])
        for job in jobs:
            job.state = _DONE
            for future in job.futures:
                if not future.done():
                    future.set_exception(RuntimeError(f"snapshot dispatcher failed: {exc!r}"))
        self._queued.clear()
        self._heap.clear()

    async def _dispatch(self) -> None:
        """Take the most urgent job, wait for the budget, start its fetch; forever."""
        while True:
            head = self._peek()
            if head is None or len(self._active) >= self.max_in_flight:
                self._wake.clear()
                await self._wake.wait()
                continue
            charged = head.weight
            try:
                await self.budget.acquire(charged)
            except ValueError as exc:  # heavier than the whole limit: can never be sent
                if head.state == _QUEUED and self._queued.get(head.symbol) is head:
                    del self._queued[head.symbol]
                self._fail(head, exc)
                continue
            self._weight_used += charged
            job = self._pop()  # the most urgent now, which may have arrived meanwhile
            if job is None:
                continue  # everything was cancelled while we waited: the charge is lost, safely
            self._dispatching = job
            try:
                if job.weight > charged:  # its limit grew, or a heavier job overtook
                    extra = job.weight - charged
                    await self.budget.acquire(extra)
                    self._weight_used += extra
            except ValueError as exc:
                self._dispatching = None
                self._fail(job, exc)
                continue
            except BaseException:
                self._dispatching = None
                self._requeue(job)
                raise
            self._dispatching = None
            if not job.alive:
                job.state = _DONE
                continue
            job.state = _ACTIVE
            task = asyncio.get_running_loop().create_task(self._fetch(job), name=f"snapshot-{job.symbol}")
            self._active[job] = task
            task.add_done_callback(functools.partial(self._fetch_done, job))

    def _fail(self, job: _Job, exc: BaseException) -> None:
        job.state = _DONE
        for future in job.futures:
            if not future.done():
                future.set_exception(exc)

    def _fetch_done(self, job: _Job, task: asyncio.Task[None]) -> None:
        # A job re-queued by this task may already be in flight again, in a new task, by the
        # time this callback runs: only this task's entry is ours to remove.
        if self._active.get(job) is task:
            del self._active[job]
        self._wake.set()
        if task.cancelled():
            job.state = _DONE
            job.cancel_futures()
            return
        exc = task.exception()
        if exc is not None:
            log.error("snapshot fetch of %s failed unexpectedly", job.symbol, exc_info=exc)
            self._fail(job, exc)

    # ------------------------------------------------------------------ fetching

    async def _fetch(self, job: _Job) -> None:
        """One attempt; then resolve, fail, back off and re-queue, or re-queue at once."""
        try:
            outcome = await self._attempt(job)
            if outcome == "done":
                return
            self._retries += 1
            if outcome == "retry":
                ceiling = min(self.retry_cap, self.retry_base * 2 ** min(job.failures - 1, 62))
                await asyncio.sleep(random.uniform(0, ceiling))
            self._requeue(job)
        finally:
            # Leave the in-flight set in the same step as the job re-enters the queue, so
            # the counts never show it in neither.
            if self._active.get(job) is asyncio.current_task():
                del self._active[job]

    async def _attempt(self, job: _Job) -> _Outcome:
        job.attempts += 1
        params = {"symbol": job.symbol, "limit": str(job.limit)}
        try:
            async with self._session.get(
                self._url, params=params, timeout=self._timeout, raise_for_status=False
            ) as response:
                body = await response.read()
                status = response.status
                headers = response.headers
        except TimeoutError:
            return self._failed(job, "timeout", f"no answer within {self._timeout.total} s")
        except aiohttp.ClientError as exc:
            return self._failed(job, "connection", repr(exc))
        received_ns = time.time_ns()
        self.budget.observe(status, headers)
        if status == 200:
            try:
                decoded = decode_snapshot(body, self.market)
            except DecodeError as exc:
                return self._failed(job, "decode", str(exc))
            snapshot = Snapshot(
                job.symbol,
                job.limit,
                decoded.lastUpdateId,
                decoded.bids,
                decoded.asks,
                received_ns,
                job.weight,
                job.attempts,
            )
            job.state = _DONE
            self._fetched += 1
            for future in job.futures:
                if not future.done():
                    future.set_result(snapshot)
            return "done"
        if status in (429, 418):
            # The budget now holds every request until Retry-After; this one keeps its place.
            if status == 429:
                self._throttled += 1
            else:
                self._banned += 1
            log.warning(
                "snapshot of %s: HTTP %d, re-queued until the exchange allows more", job.symbol, status
            )
            return "requeue"
        if status >= 500 or status == 408:  # 408: the futures backend timed out (§5.2)
            return self._failed(job, "server" if status >= 500 else "timeout", f"HTTP {status}")
        if 400 <= status < 500:
            self._reject(job, status, body)
            return "done"
        return self._failed(job, "http", f"unexpected HTTP {status}")

    def _failed(self, job: _Job, kind: str, detail: str) -> _Outcome:
        job.failures += 1
        self._errors[kind] += 1
        # The first failure and then every tenth: a dead server must not flood the log.
        level = logging.WARNING if job.failures == 1 or job.failures % 10 == 0 else logging.DEBUG
        log.log(
            level,
            "snapshot of %s failed (%s: %s), attempt %d; retrying",
            job.symbol,
            kind,
            detail,
            job.attempts,
        )
        return "retry"

    def _reject(self, job: _Job, status: int, body: bytes) -> None:
        try:
            error = _error_decoder.decode(body)
            code: int | None = error.code
            msg = error.msg
        except msgspec.DecodeError:
            code, msg = None, body[:200].decode("utf-8", "replace")
        self._errors["rejected"] += 1
        log.error("snapshot of %s refused: HTTP %d, code %s: %s", job.symbol, status, code, msg)
        self._fail(job, SnapshotError(job.symbol, code, msg, status))
