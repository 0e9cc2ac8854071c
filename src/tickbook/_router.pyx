# cython: language_level=3
"""The feed's hot path in Cython: frame -> decode -> validate -> apply -> publish.

Same classes, attributes and decisions as ``tickbook._router_py`` (its docstring explains
them; the tests run the feed on both). What this version saves is Python overhead
between the steps: the stream name is read from the frame's bytes in C; the book that
owns the stream then reads the whole frame in C (``OrderBook.apply_frame_c``: envelope,
symbol, update IDs and levels in one pass, no Python object per message); a frame in
any other layout, or one for a book in a handover, is decoded with msgspec and its
``Raw`` level spans go to ``OrderBook.apply_diff_raw``. The BBO flag comes back as a C
int, and Cython ``BookListener``s are called through their vtable.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t
from libc.string cimport memchr, memcmp
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

import msgspec

from tickbook._book cimport (
    F_APPLIED,
    F_BBO_CHANGED,
    F_BUFFERED,
    F_CROSSED,
    F_DECLINED,
    F_GAP,
    STATE_SYNCED,
    OrderBook,
)

from tickbook._types import BookError
from tickbook.decode import (
    DecodeError,
    combined_depth_decoder,
    combined_futures_depth_decoder,
)

KIND_DEPTH = 0
KIND_STREAM = 1
SUB_BITS = HIST_SUB_BITS
MAX_EXP = HIST_MAX_EXP
NBUCKETS = HIST_NBUCKETS
MAX_HELD = 4096

cdef const char* _PREFIX = b'{"stream":"'
cdef Py_ssize_t _PREFIX_LEN = 11
cdef Py_ssize_t _NAME_MAX = 200

_DecodeErrors = (msgspec.DecodeError,)


cdef inline int64_t _clock_ns(int clock) noexcept:
    cdef timespec ts
    clock_gettime(clock, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


# ------------------------------------------------------------ latency histogram

cdef inline Py_ssize_t _bucket_of(int64_t ns) noexcept:
    cdef int msb, shift
    if ns < HIST_SUB:
        return ns if ns > 0 else 0
    msb = 63 - __builtin_clzll(<unsigned long long>ns)
    if msb > HIST_MAX_EXP:
        return HIST_NBUCKETS - 1
    shift = msb - HIST_SUB_BITS
    return (shift + 1) * HIST_SUB + ((ns >> shift) & (HIST_SUB - 1))


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


def bucket_of(int64_t ns):
    """Bucket index of a non-negative value in ns."""
    return _bucket_of(ns)


def bucket_high(Py_ssize_t index):
    """The largest value that lands in bucket ``index``."""
    cdef Py_ssize_t shift, sub
    if index < HIST_SUB:
        return index
    shift = index // HIST_SUB - 1
    sub = index % HIST_SUB
    return ((HIST_SUB + sub + 1) << shift) - 1


@cython.final
cdef class LatencyHistogram:
    """Latencies in ns: count, max and percentiles within 6.25% (bucket upper bounds)."""

    def __cinit__(self):
        self.reset()

    cdef void add(self, int64_t ns) noexcept:
        if ns < 0:
            ns = 0  # clocks of two hosts: a negative latency is skew, count it as zero
        self._counts[_bucket_of(ns)] += 1
        self.count += 1
        self.total += ns
        if ns > self.max:
            self.max = ns

    def record(self, int64_t ns):
        self.add(ns)

    def percentile(self, double q):
        """The value at quantile ``q`` (0..100), 0 when empty; ``max`` is exact."""
        cdef int64_t rank, seen = 0
        cdef Py_ssize_t i
        if self.count == 0:
            return 0
        if q >= 100:
            return self.max
        rank = max(1, -(-(<object>int(q * self.count * 1000)) // 100000))
        for i in range(HIST_NBUCKETS):
            seen += self._counts[i]
            if seen >= rank:
                return min(bucket_high(i), self.max)
        return self.max

    def summary(self):
        """``count``, ``p50``, ``p99``, ``p999``, ``max`` in ns."""
        return {
            "count": self.count,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "p999": self.percentile(99.9),
            "max": self.max,
        }

    def reset(self):
        cdef Py_ssize_t i
        for i in range(HIST_NBUCKETS):
            self._counts[i] = 0
        self.count = 0
        self.max = 0
        self.total = 0


# ------------------------------------------------------------------ listeners

cdef class BookListener:
    """Subclass in Cython and override ``on_bbo_c`` / ``on_update_c`` (both no-ops here)."""

    cdef int on_bbo_c(self, OrderBook book) except -1:
        return 0

    cdef int on_update_c(self, OrderBook book) except -1:
        return 0


# ---------------------------------------------------------------------- slots

@cython.final
cdef class DepthSlot:
    """One symbol's book and its subscribers; see ``tickbook._router_py.DepthSlot``."""

    kind = KIND_DEPTH

    def __init__(self, OrderBook book, str stream, object hooks):
        self.book = book
        self.symbol = book.symbol
        self.stream = stream
        self.futures = book.market.is_futures
        self.decoder = combined_futures_depth_decoder if self.futures else combined_depth_decoder
        self.hooks = hooks
        self.owner = None
        self.held = []
        self.snapshot_pending = False
        self.dirty = False
        self.last_state = int(book.state)
        self.bbo_callbacks = ()
        self.update_callbacks = ()
        self.listeners = ()
        self.event_latency = LatencyHistogram()
        self.callback_latency = LatencyHistogram()

    def set_callbacks(self, bbo, update, listeners=()):
        """Replace the subscribers (tuples, swapped whole)."""
        for listener in listeners:
            if not isinstance(listener, BookListener):
                raise TypeError(f"{listener!r} is not a tickbook._router.BookListener")
        self.bbo_callbacks = tuple(bbo)
        self.update_callbacks = tuple(update)
        self.listeners = tuple(listeners)


@cython.final
cdef class StreamSlot:
    """Another public stream: a decoder and its callbacks."""

    kind = KIND_STREAM

    def __init__(self, str stream, object decoder, object hooks):
        self.stream = stream
        self.decoder = decoder
        self.hooks = hooks
        self.callbacks = ()
        self.callback_latency = LatencyHistogram()

    def set_callbacks(self, callbacks):
        self.callbacks = tuple(callbacks)


cdef int _call(DepthSlot slot, tuple callbacks) except -1:
    cdef OrderBook book = slot.book
    for callback in callbacks:
        try:
            callback(book)
        except Exception as exc:  # a subscriber's bug never stops the feed
            slot.callback_errors += 1
            slot.hooks.router_callback_error(slot, callback, exc)
    return 0


cdef int _publish(DepthSlot slot, int flags) except -1:
    cdef BookListener listener
    cdef OrderBook book = slot.book
    if slot.update_callbacks:
        _call(slot, slot.update_callbacks)
    for item in slot.listeners:
        listener = <BookListener>item
        try:
            listener.on_update_c(book)
            if flags & F_BBO_CHANGED:
                listener.on_bbo_c(book)
        except Exception as exc:
            slot.callback_errors += 1
            slot.hooks.router_callback_error(slot, listener, exc)
    if flags & F_BBO_CHANGED and slot.bbo_callbacks:
        _call(slot, slot.bbo_callbacks)
    return 0


def publish(DepthSlot slot, int flags):
    """Call the slot's subscribers for an applied message (see ``_router_py.publish``)."""
    _publish(slot, flags)


def stream_name(payload):
    """The stream name of a combined-stream message as the exchange lays it out, or None."""
    cdef Py_buffer view
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return _stream_name(<const char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef inline object _stream_name(const char* p, Py_ssize_t n):
    cdef const char* end
    if n <= _PREFIX_LEN or memcmp(p, _PREFIX, _PREFIX_LEN) != 0:
        return None
    end = <const char*>memchr(p + _PREFIX_LEN, b'"', min(n - _PREFIX_LEN, _NAME_MAX + 1))
    if end == NULL:
        return None
    return PyBytes_FromStringAndSize(p + _PREFIX_LEN, end - p - _PREFIX_LEN)


# --------------------------------------------------------------------- router

@cython.final
cdef class Router:
    """Routes one connection's messages to their slots; see ``tickbook._router_py.Router``."""

    def __init__(self, object hooks, bint coalesce=False):
        self.hooks = hooks
        self.coalesce = coalesce
        self.routes = {}
        self._dirty = []
        self.retiring = False

    def add(self, slot):
        self.routes[slot.stream.encode()] = slot

    def remove(self, str stream):
        slot = self.routes.pop(stream.encode(), None)
        if isinstance(slot, DepthSlot):
            self.release(slot)
        return slot

    def release(self, DepthSlot slot):
        """Stop feeding ``slot`` from this router (its connection is going away)."""
        if slot.owner is self:
            slot.owner = None

    cpdef feed(self, object payload, bint last_in_buffer=True):
        """One complete text message, valid for the duration of the call only."""
        cdef int64_t recv_wall = _clock_ns(CLOCK_REALTIME)
        cdef int64_t recv = _clock_ns(CLOCK_MONOTONIC)
        cdef Py_buffer view
        cdef object name, slot
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            self.messages += 1
            self.bytes += view.len
            name = _stream_name(<const char*>view.buf, view.len)
            slot = self.routes.get(name) if name is not None else None
            if slot is None:
                self.unrouted += 1
                self.hooks.router_unrouted(self, name, bytes(payload))
            elif type(slot) is DepthSlot:
                (<DepthSlot>slot).messages += 1
                (<DepthSlot>slot).bytes += view.len
                if (<DepthSlot>slot).owner is not self or (<DepthSlot>slot).held or self._frame(
                        <DepthSlot>slot, <const char*>view.buf, view.len, recv_wall, recv) == F_DECLINED:
                    self._depth(<DepthSlot>slot, payload, recv_wall, recv)
            else:
                (<StreamSlot>slot).messages += 1
                (<StreamSlot>slot).bytes += view.len
                self._stream(<StreamSlot>slot, payload, recv)
        finally:
            PyBuffer_Release(&view)
        if last_in_buffer and self._dirty:
            self.flush()

    cpdef flush(self):
        """Deliver the coalesced BBO changes of the socket read that just ended."""
        cdef DepthSlot slot
        cdef int64_t start
        dirty, self._dirty = self._dirty, []
        for item in dirty:
            slot = <DepthSlot>item
            slot.dirty = False
            start = _clock_ns(CLOCK_MONOTONIC)
            _publish_bbo_only(slot)
            slot.callback_latency.add(_clock_ns(CLOCK_MONOTONIC) - start)

    # --------------------------------------------------------------- depth path

    cdef object _decode_depth(self, DepthSlot slot, object payload):
        try:
            event = slot.decoder.decode(payload).data
        except msgspec.DecodeError as exc:
            self._bad(slot, DecodeError(f"{slot.stream}: {exc}", payload), payload)
            return None
        if event.s != slot.symbol:
            self._bad(slot, BookError(f"{slot.stream}: event for {event.s!r}, not {slot.symbol!r}"), payload)
            return None
        return event

    cdef int _frame(self, DepthSlot slot, const char* p, Py_ssize_t n, int64_t recv_wall,
                    int64_t recv) except -2:
        """The hot path: the owner's book reads the frame in C (``apply_frame_c``).

        Returns F_DECLINED, with nothing done, for a message that is not in the
        exchange's exact layout or is not for this book; ``_depth`` then decodes it
        with msgspec and says what is wrong with it, if anything.
        """
        cdef int64_t event_ms = 0
        cdef int flags
        try:
            flags = slot.book.apply_frame_c(p, n, &event_ms)
        except (ValueError, TypeError) as exc:  # as in _apply: counted and reported, never fatal
            self._bad(slot, exc, None)
            return 0
        if flags == F_DECLINED:
            return F_DECLINED
        slot.event_latency.add(recv_wall - event_ms * 1000000)
        self._after(slot, flags)
        self._published(slot, flags, recv, True)
        return flags

    cdef int _depth(self, DepthSlot slot, object payload, int64_t recv_wall, int64_t recv) except -1:
        cdef int64_t event_ms
        event = self._decode_depth(slot, payload)
        if event is None:
            return 0
        event_ms = event.E
        slot.event_latency.add(recv_wall - event_ms * 1000000)
        if slot.owner is not self:
            if slot.owner is None:
                self._take(slot)
                if slot.held:  # a released handover: what was held comes first
                    held, slot.held = slot.held, []
                    for _router, data in held:
                        earlier = self._decode_depth(slot, data)
                        if earlier is not None:
                            self._apply(slot, earlier, recv, False)
            elif not self._standby(slot, event, payload):
                return 0
        self._apply(slot, event, recv, True)
        return 0

    cdef int _continues(self, DepthSlot slot, object event) except -2:
        """For a standby event: 1 continues the owner's book, 0 already in it, -1 ahead."""
        cdef int64_t book_id = slot.book._id
        cdef int64_t first_id = event.U, final_id = event.u
        if slot.futures:
            if <int64_t>event.pu == book_id:
                return 1
        elif first_id <= book_id + 1 <= final_id:
            return 1
        return 0 if final_id <= book_id else -1

    cdef bint _standby(self, DepthSlot slot, object event, object payload) except -1:
        cdef int position
        if self.retiring or slot.book._state != STATE_SYNCED:
            slot.duplicates += 1  # its replacement delivers the same events
            return False
        position = self._continues(slot, event)
        if position > 0 and not slot.held:
            self._take(slot)
            return True
        if position == 0:
            slot.duplicates += 1
            if <int64_t>event.u == slot.book._id and not slot.held:
                self._take(slot)  # in step with the owner: see _router_py._standby
        elif len(slot.held) < MAX_HELD:
            slot.held.append((self, bytes(payload)))
        else:  # the owner never caught up: resync from a snapshot on this connection
            slot.held.clear()
            self._take(slot)
            slot.book.invalidate("handover: the old connection fell too far behind")
            self._after(slot, 0)
        return False

    cdef int _take(self, DepthSlot slot) except -1:
        previous = slot.owner
        slot.owner = self
        if previous is not None:
            slot.handovers += 1
            self.hooks.router_handover(slot, self)
        return 0

    cdef int _drain(self, DepthSlot slot, int64_t recv) except -1:
        cdef int position
        cdef Router router
        while slot.held:
            router_obj, data = slot.held[0]
            router = <Router>router_obj
            event = self._decode_depth(slot, data)
            position = self._continues(slot, event) if event is not None else 0
            if position < 0:
                return 0
            del slot.held[0]
            if event is None:
                continue
            if position == 0:
                slot.duplicates += 1
                continue
            if slot.owner is not router:
                router._take(slot)
            if not router._apply(slot, event, recv, False):
                return 0
        return 0

    cdef int _apply(self, DepthSlot slot, object event, int64_t recv, bint drain) except -1:
        """Apply one event to the slot's book and publish; returns the book's flags."""
        cdef OrderBook book = slot.book
        cdef Py_buffer bids, asks
        cdef int flags
        cdef int64_t first_id = event.U, final_id = event.u, prev_id = event.pu if slot.futures else 0
        bids_raw = event.b
        asks_raw = event.a
        PyObject_GetBuffer(bids_raw, &bids, PyBUF_SIMPLE)
        try:
            PyObject_GetBuffer(asks_raw, &asks, PyBUF_SIMPLE)
            try:
                flags = book.apply_diff_raw(first_id, final_id, prev_id,
                                            <const char*>bids.buf, bids.len,
                                            <const char*>asks.buf, asks.len)
            finally:
                PyBuffer_Release(&asks)
        except (ValueError, TypeError) as exc:  # BookError, DecimalError, LevelsFormatError
            self._bad(slot, exc, None)
            return 0
        finally:
            PyBuffer_Release(&bids)
        self._after(slot, flags)
        self._published(slot, flags, recv, drain)
        return flags

    cdef int _published(self, DepthSlot slot, int flags, int64_t recv, bint drain) except -1:
        """Publish an applied event (coalesced or not), then drain what the slot holds."""
        if flags & F_APPLIED:
            if self.coalesce and flags & F_BBO_CHANGED and slot.bbo_callbacks:
                if not slot.dirty:
                    slot.dirty = True
                    self._dirty.append(slot)
                _publish(slot, flags & ~F_BBO_CHANGED)
                if slot.listeners:  # Cython listeners are never coalesced: they cost nothing
                    _listeners_bbo(slot)
            else:
                _publish(slot, flags)
            slot.callback_latency.add(_clock_ns(CLOCK_MONOTONIC) - recv)
            if drain and slot.held:
                self._drain(slot, recv)
        return 0

    cdef int _after(self, DepthSlot slot, int flags) except -1:
        cdef int state = slot.book._state
        if state != slot.last_state:
            slot.last_state = state
            self.hooks.router_state(slot)
        if flags & (F_GAP | F_CROSSED) or (flags & F_BUFFERED and not slot.snapshot_pending):
            self.hooks.router_flags(slot, flags)
        return 0

    # -------------------------------------------------------------- other streams

    cdef int _stream(self, StreamSlot slot, object payload, int64_t recv) except -1:
        try:
            message = slot.decoder.decode(payload).data  # the combined-form decoder: one pass
        except msgspec.DecodeError as exc:
            self._bad(slot, DecodeError(f"{slot.stream}: {exc}", payload), payload)
            return 0
        for callback in slot.callbacks:
            try:
                callback(message)
            except Exception as exc:
                slot.callback_errors += 1
                self.hooks.router_callback_error(slot, callback, exc)
        slot.callback_latency.add(_clock_ns(CLOCK_MONOTONIC) - recv)
        return 0

    cdef int _bad(self, object slot, object exc, object payload) except -1:
        slot.bad_messages += 1
        self.hooks.router_bad(slot, exc, bytes(payload) if payload is not None else b"")
        return 0


cdef int _publish_bbo_only(DepthSlot slot) except -1:
    if slot.bbo_callbacks:
        _call(slot, slot.bbo_callbacks)
    return 0


cdef int _listeners_bbo(DepthSlot slot) except -1:
    cdef BookListener listener
    for item in slot.listeners:
        listener = <BookListener>item
        try:
            listener.on_bbo_c(slot.book)
        except Exception as exc:
            slot.callback_errors += 1
            slot.hooks.router_callback_error(slot, listener, exc)
    return 0
