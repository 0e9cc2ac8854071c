"""The feed's hot path in pure Python: frame -> decode -> validate -> apply -> publish.

This is the reference twin of the Cython router (``tickbook._router``): same classes, same
attributes, same decisions, and the tests run the feed on both. One ``Router`` belongs to
one WebSocket connection and is called synchronously from its frame callback; it routes
each combined-stream message by its stream name to a slot:

- a ``DepthSlot`` holds one symbol's book and the callbacks that watch it. Slots outlive
  connections: when a connection is replaced (``serverShutdown``, the 24 h cut) the new
  connection's router takes each slot over at the first event that continues the book, so
  nobody sees a gap (see ``DepthSlot.owner``).
- a ``StreamSlot`` holds a decoder and the callbacks of any other public stream.

Everything that is not steady-state (buffering, gaps, state changes, bad frames, unknown
messages, callback errors) goes to the ``hooks`` object, the feed's Python manager, which
schedules snapshots and resyncs. The hot path never allocates a task, a future or a queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import msgspec

from tickbook._types import Applied, BookError
from tickbook.decode import (
    DecodeError,
    combined_depth_decoder,
    combined_futures_depth_decoder,
)

__all__ = ["DepthSlot", "Hooks", "LatencyHistogram", "Router", "StreamSlot", "stream_name"]

# ---------------------------------------------------------------- latency histogram
#
# Log-linear buckets (the HDR layout): values below 2**SUB_BITS ns get a bucket each; above
# that every power of two is split into 2**SUB_BITS equal buckets, so a bucket's width is at
# most 1/16 of its value (6.25%). Recording is a few integer operations, and the memory is
# fixed whatever the values.
SUB_BITS: Final = 4
SUB: Final = 1 << SUB_BITS
MAX_EXP: Final = 48  # 2**48 ns is about 3.3 days; larger values land in the last bucket
NBUCKETS: Final = (MAX_EXP - SUB_BITS + 1) * SUB + SUB


def bucket_of(ns: int) -> int:
    """Bucket index of a non-negative value in ns."""
    if ns < SUB:
        return ns if ns > 0 else 0
    msb = ns.bit_length() - 1
    if msb > MAX_EXP:
        return NBUCKETS - 1
    shift = msb - SUB_BITS
    return (shift + 1) * SUB + ((ns >> shift) & (SUB - 1))


def bucket_high(index: int) -> int:
    """The largest value that lands in bucket ``index`` (what percentiles report)."""
    if index < SUB:
        return index
    shift = index // SUB - 1
    sub = index % SUB
    return ((SUB + sub + 1) << shift) - 1


class LatencyHistogram:
    """Latencies in ns: count, max and percentiles within 6.25% (bucket upper bounds)."""

    __slots__ = ("_counts", "count", "max", "total")

    def __init__(self) -> None:
        self._counts = [0] * NBUCKETS
        self.count = 0
        self.max = 0
        self.total = 0

    def record(self, ns: int) -> None:
        if ns < 0:
            ns = 0  # clocks of two hosts: a negative latency is skew, count it as zero
        self._counts[bucket_of(ns)] += 1
        self.count += 1
        self.total += ns
        if ns > self.max:
            self.max = ns

    def percentile(self, q: float) -> int:
        """The value at quantile ``q`` (0..100), 0 when empty; ``max`` is exact."""
        if self.count == 0:
            return 0
        if q >= 100:
            return self.max
        rank = max(1, -(-int(q * self.count * 1000) // 100_000))  # ceil(q% of count), at least 1
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return min(bucket_high(index), self.max)
        return self.max

    def summary(self) -> dict[str, int]:
        """``count``, ``p50``, ``p99``, ``p999``, ``max`` in ns."""
        return {
            "count": self.count,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "p999": self.percentile(99.9),
            "max": self.max,
        }

    def reset(self) -> None:
        self._counts = [0] * NBUCKETS
        self.count = self.max = self.total = 0


# --------------------------------------------------------------------------- slots

KIND_DEPTH: Final = 0
KIND_STREAM: Final = 1

# Standby events held per slot while a replacement connection waits for the book to reach
# them. Beyond this the handover gives up and the slot resyncs from a snapshot.
MAX_HELD: Final = 4096


class Hooks(Protocol):
    """What the router tells the feed's manager (never on the steady-state path)."""

    def router_flags(self, slot: DepthSlot, flags: int) -> None: ...  # buffered first event, gap, crossed
    def router_state(self, slot: DepthSlot) -> None: ...  # the book's sync state changed
    def router_bad(self, slot: Any, exc: BaseException, payload: bytes) -> None: ...
    def router_callback_error(self, slot: Any, callback: object, exc: BaseException) -> None: ...
    def router_unrouted(self, router: Any, name: bytes | None, payload: bytes) -> None: ...
    def router_handover(self, slot: DepthSlot, router: Any) -> None: ...  # a new router took the slot


class DepthSlot:
    """One symbol's book and its subscribers, shared by the routers of the connections
    that carry its depth stream.

    ``owner`` is the router whose events are applied. Events of another router (a
    replacement connection opened before the old one closes) are not applied while they
    are already in the book (dropped as duplicates) and are held while they are ahead of
    it; the first one that continues the book moves ownership to its router. ``None``: the
    next router to deliver an event takes the slot.
    """

    kind = KIND_DEPTH

    def __init__(self, book: Any, stream: str, hooks: Hooks) -> None:
        self.book = book
        self.symbol: str = book.symbol
        self.stream = stream
        self.futures: bool = book.market.is_futures
        self.decoder = combined_futures_depth_decoder if self.futures else combined_depth_decoder
        self.hooks = hooks
        self.owner: Any = None
        self.held: list[tuple[Any, bytes]] = []  # (standby router, payload copy), oldest first
        self.snapshot_pending = False  # set by the manager while a snapshot is on its way
        self.last_state = int(book.state)
        self.dirty = False  # a coalesced BBO change waits for the end of the socket read
        self.bbo_callbacks: tuple[Callable[[Any], object], ...] = ()
        self.update_callbacks: tuple[Callable[[Any], object], ...] = ()
        self.listeners: tuple[Any, ...] = ()  # Cython BookListeners (Cython router only)
        self.messages = 0
        self.bytes = 0
        self.bad_messages = 0
        self.callback_errors = 0
        self.duplicates = 0  # standby events already in the book
        self.handovers = 0
        self.event_latency = LatencyHistogram()  # exchange event time -> receive (wall clocks)
        self.callback_latency = LatencyHistogram()  # receive -> last callback returned

    def set_callbacks(
        self,
        bbo: Sequence[Callable[[Any], object]],
        update: Sequence[Callable[[Any], object]],
        listeners: Sequence[Any] = (),
    ) -> None:
        """Replace the subscribers. Tuples, swapped whole: a callback that unsubscribes
        another during delivery never disturbs the loop that is calling them."""
        if listeners:
            raise TypeError("Cython listeners need the Cython router (the extension is not in use)")
        self.bbo_callbacks = tuple(bbo)
        self.update_callbacks = tuple(update)


class StreamSlot:
    """Another public stream (trades, klines, tickers, ...): a decoder and its callbacks."""

    kind = KIND_STREAM

    def __init__(self, stream: str, decoder: msgspec.json.Decoder[Any], hooks: Hooks) -> None:
        self.stream = stream
        self.decoder = decoder
        self.hooks = hooks
        self.callbacks: tuple[Callable[[Any], object], ...] = ()
        self.messages = 0
        self.bytes = 0
        self.bad_messages = 0
        self.callback_errors = 0
        self.callback_latency = LatencyHistogram()

    def set_callbacks(self, callbacks: Sequence[Callable[[Any], object]]) -> None:
        self.callbacks = tuple(callbacks)


# -------------------------------------------------------------------------- router

_PREFIX: Final = b'{"stream":"'
_NAME_MAX: Final = 200  # stream names are short; a longer "name" is not one


def stream_name(payload: bytes | memoryview) -> bytes | None:
    """The stream name of a combined-stream message laid out as the exchange sends it
    (``{"stream":"<name>",...``), read without parsing JSON; None otherwise."""
    head = bytes(payload[: len(_PREFIX) + _NAME_MAX + 1])
    if not head.startswith(_PREFIX):
        return None
    end = head.find(b'"', len(_PREFIX))
    if end < 0:
        return None
    return head[len(_PREFIX) : end]


def _call(slot: DepthSlot, callbacks: tuple[Callable[[Any], object], ...]) -> None:
    book = slot.book
    for callback in callbacks:
        try:
            callback(book)
        except Exception as exc:  # a subscriber's bug never stops the feed
            slot.callback_errors += 1
            slot.hooks.router_callback_error(slot, callback, exc)


def publish(slot: DepthSlot, flags: int) -> None:
    """Call the slot's subscribers for an applied message: ``on_update`` ones always,
    ``on_bbo`` ones when ``flags`` has ``BBO_CHANGED``."""
    if slot.update_callbacks:
        _call(slot, slot.update_callbacks)
    if flags & Applied.BBO_CHANGED and slot.bbo_callbacks:
        _call(slot, slot.bbo_callbacks)


class Router:
    """Routes one connection's messages to their slots; called from its frame callback.

    ``coalesce``: BBO callbacks fire once per socket read (per book whose BBO changed
    during it) instead of once per message; ``feed(..., last_in_buffer=True)`` ends a read.
    """

    def __init__(self, hooks: Hooks, coalesce: bool = False) -> None:
        self.hooks = hooks
        self.coalesce = coalesce
        self.routes: dict[bytes, DepthSlot | StreamSlot] = {}
        # Set when this router's connection is being replaced: it never takes a slot over,
        # so ownership moves one way, to the replacement.
        self.retiring = False
        self._dirty: list[DepthSlot] = []
        self.messages = 0
        self.bytes = 0
        self.unrouted = 0

    def add(self, slot: DepthSlot | StreamSlot) -> None:
        self.routes[slot.stream.encode()] = slot

    def remove(self, stream: str) -> DepthSlot | StreamSlot | None:
        slot = self.routes.pop(stream.encode(), None)
        if isinstance(slot, DepthSlot):
            self.release(slot)
        return slot

    def release(self, slot: DepthSlot) -> None:
        """Stop feeding ``slot`` from this router (its connection is going away)."""
        if slot.owner is self:
            slot.owner = None

    def feed(self, payload: bytes | memoryview, last_in_buffer: bool = True) -> None:
        """One complete text message, valid for the duration of the call only."""
        recv_wall = time.time_ns()
        recv = time.perf_counter_ns()
        self.messages += 1
        self.bytes += len(payload)
        name = stream_name(payload)
        slot = self.routes.get(name) if name is not None else None
        if slot is None:
            self.unrouted += 1
            self.hooks.router_unrouted(self, name, bytes(payload))
        elif slot.kind == KIND_DEPTH:
            assert isinstance(slot, DepthSlot)
            slot.messages += 1
            slot.bytes += len(payload)
            self._depth(slot, payload, recv_wall, recv)
        else:
            assert isinstance(slot, StreamSlot)
            slot.messages += 1
            slot.bytes += len(payload)
            self._stream(slot, payload, recv)
        if last_in_buffer and self._dirty:
            self.flush()

    def flush(self) -> None:
        """Deliver the coalesced BBO changes of the socket read that just ended."""
        dirty, self._dirty = self._dirty, []
        for slot in dirty:
            slot.dirty = False
            start = time.perf_counter_ns()
            _call(slot, slot.bbo_callbacks)
            slot.callback_latency.record(time.perf_counter_ns() - start)

    # ------------------------------------------------------------------ depth path

    def _decode_depth(self, slot: DepthSlot, payload: bytes | memoryview) -> Any:
        try:
            event = slot.decoder.decode(payload).data
        except msgspec.DecodeError as exc:
            self._bad(slot, DecodeError(f"{slot.stream}: {exc}", payload), payload)
            return None
        if event.s != slot.symbol:
            self._bad(slot, BookError(f"{slot.stream}: event for {event.s!r}, not {slot.symbol!r}"), payload)
            return None
        return event

    def _depth(self, slot: DepthSlot, payload: bytes | memoryview, recv_wall: int, recv: int) -> None:
        event = self._decode_depth(slot, payload)
        if event is None:
            return
        slot.event_latency.record(recv_wall - event.E * 1_000_000)
        if slot.owner is not self:
            if slot.owner is None:
                self._take(slot)
                if slot.held:  # a released handover: what was held comes first
                    held, slot.held = slot.held, []
                    for _router, data in held:
                        earlier = self._decode_depth(slot, data)
                        if earlier is not None:
                            self._apply(slot, earlier, recv, drain=False)
            elif not self._standby(slot, event, payload):
                return
        self._apply(slot, event, recv)

    def _continues(self, slot: DepthSlot, event: Any) -> int:
        """For a standby event: 1 continues the owner's book, 0 already in it, -1 ahead."""
        book_id = slot.book.last_update_id
        if slot.futures:
            if event.pu == book_id:
                return 1
        elif event.U <= book_id + 1 <= event.u:
            return 1
        return 0 if event.u <= book_id else -1

    def _standby(self, slot: DepthSlot, event: Any, payload: bytes | memoryview) -> bool:
        """An event from a router that does not own ``slot``: True if it takes the slot over.

        Only a synced book is handed over event by event. A book that is resyncing stays
        with its owner until the manager releases it: two connections interleaving
        events into one buffer would turn a harmless delay into a gap.
        """
        if self.retiring or not slot.book.synced:
            slot.duplicates += 1  # its replacement delivers the same events
            return False
        position = self._continues(slot, event)
        if position > 0 and not slot.held:
            self._take(slot)
            return True
        if position == 0:
            slot.duplicates += 1
            if event.u == slot.book.last_update_id and not slot.held:
                # In step with the owner: this router's next event continues the book.
                # (Waiting for an event that continues it would wait forever when this
                # router trails the owner by a message, as a replacement usually does.)
                self._take(slot)
        elif len(slot.held) < MAX_HELD:
            slot.held.append((self, bytes(payload)))
        else:  # the owner never caught up: resync from a snapshot on this connection
            slot.held.clear()
            self._take(slot)
            slot.book.invalidate("handover: the old connection fell too far behind")
            self._after(slot, Applied.NONE)
        return False

    def _take(self, slot: DepthSlot) -> None:
        previous = slot.owner
        slot.owner = self
        if previous is not None:
            slot.handovers += 1
            self.hooks.router_handover(slot, self)

    def _drain(self, slot: DepthSlot, recv: int) -> None:
        """After the owner applied an event: apply the held standby events the book now
        reaches. The first one that continues the book hands the slot to its router."""
        while slot.held:
            router, payload = slot.held[0]
            event = self._decode_depth(slot, payload)
            position = self._continues(slot, event) if event is not None else 0
            if position < 0:
                return
            del slot.held[0]
            if event is None:
                continue
            if position == 0:
                slot.duplicates += 1
                continue
            if slot.owner is not router:
                router._take(slot)
            if not router._apply(slot, event, recv, drain=False):
                return

    def _apply(self, slot: DepthSlot, event: Any, recv: int, drain: bool = True) -> int:
        """Apply one event to the slot's book and publish; returns the book's flags."""
        try:
            flags: int = slot.book.apply_diff(
                event.U, event.u, event.b, event.a, event.pu if slot.futures else None
            )
        except (ValueError, TypeError) as exc:  # BookError, DecimalError, LevelsFormatError
            self._bad(slot, exc, None)
            return 0
        self._after(slot, flags)
        if flags & Applied.APPLIED:
            if self.coalesce and flags & Applied.BBO_CHANGED and slot.bbo_callbacks:
                if not slot.dirty:
                    slot.dirty = True
                    self._dirty.append(slot)
                flags &= ~Applied.BBO_CHANGED
            publish(slot, flags)
            slot.callback_latency.record(time.perf_counter_ns() - recv)
            if drain and slot.held:
                self._drain(slot, recv)
        return flags

    def _after(self, slot: DepthSlot, flags: int) -> None:
        """Tell the manager what it must act on: a state change, a buffered first event, a gap."""
        state = int(slot.book.state)
        if state != slot.last_state:
            slot.last_state = state
            self.hooks.router_state(slot)
        if flags & (Applied.GAP | Applied.CROSSED) or (
            flags & Applied.BUFFERED and not slot.snapshot_pending
        ):
            self.hooks.router_flags(slot, flags)

    # ----------------------------------------------------------------- other streams

    def _stream(self, slot: StreamSlot, payload: bytes | memoryview, recv: int) -> None:
        try:
            message = slot.decoder.decode(payload).data  # the combined-form decoder: one pass
        except msgspec.DecodeError as exc:
            self._bad(slot, DecodeError(f"{slot.stream}: {exc}", payload), payload)
            return
        for callback in slot.callbacks:
            try:
                callback(message)
            except Exception as exc:
                slot.callback_errors += 1
                self.hooks.router_callback_error(slot, callback, exc)
        slot.callback_latency.record(time.perf_counter_ns() - recv)

    def _bad(
        self, slot: DepthSlot | StreamSlot, exc: BaseException, payload: bytes | memoryview | None
    ) -> None:
        slot.bad_messages += 1
        self.hooks.router_bad(slot, exc, bytes(payload) if payload is not None else b"")
