# cython: language_level=3
"""C-level interface of the feed's router, for Cython code to ``cimport``.

A strategy written in Cython subclasses ``BookListener`` and overrides ``on_bbo_c`` /
``on_update_c``; the router calls them through the vtable, right after applying a frame,
with no Python call in between (see examples/cython_listener/).
"""

from libc.stdint cimport int64_t

from tickbook._book cimport OrderBook

# Log-linear histogram layout, identical to tickbook._router_py (tests compare them).
cdef enum:
    HIST_SUB_BITS = 4
    HIST_SUB = 16
    HIST_MAX_EXP = 48
    HIST_NBUCKETS = (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB + HIST_SUB


cdef class LatencyHistogram:
    cdef int64_t _counts[HIST_NBUCKETS]
    cdef readonly int64_t count
    cdef readonly int64_t max
    cdef readonly int64_t total
    cdef void add(self, int64_t ns) noexcept


cdef class BookListener:
    # Called after a message changed the best bid or ask / after every applied message.
    # Raise to report a problem: it is counted and logged, and the feed goes on.
    cdef int on_bbo_c(self, OrderBook book) except -1
    cdef int on_update_c(self, OrderBook book) except -1


cdef class DepthSlot:
    cdef readonly OrderBook book
    cdef readonly str symbol
    cdef readonly str stream
    cdef readonly bint futures
    cdef public object decoder
    cdef public object hooks
    cdef public object owner           # the Router whose events are applied, or None
    cdef public list held              # (standby router, payload bytes), oldest first
    cdef public bint snapshot_pending
    cdef public bint dirty
    cdef public int last_state
    cdef public tuple bbo_callbacks
    cdef public tuple update_callbacks
    cdef public tuple listeners        # BookListener instances
    cdef public int64_t messages, bytes, bad_messages, callback_errors, duplicates, handovers
    cdef readonly LatencyHistogram event_latency
    cdef readonly LatencyHistogram callback_latency


cdef class StreamSlot:
    cdef readonly str stream
    cdef public object decoder
    cdef public object hooks
    cdef public tuple callbacks
    cdef public int64_t messages, bytes, bad_messages, callback_errors
    cdef readonly LatencyHistogram callback_latency


cdef class Router:
    cdef public object hooks
    cdef public bint coalesce
    cdef public bint retiring          # being replaced: never takes a slot over
    cdef public dict routes
    cdef list _dirty
    cdef public int64_t messages, bytes, unrouted

    cpdef feed(self, object payload, bint last_in_buffer=*)
    cpdef flush(self)
    cdef object _decode_depth(self, DepthSlot slot, object payload)
    cdef int _frame(self, DepthSlot slot, const char* p, Py_ssize_t n, int64_t recv_wall,
                    int64_t recv) except -2
    cdef int _depth(self, DepthSlot slot, object payload, int64_t recv_wall, int64_t recv) except -1
    cdef int _continues(self, DepthSlot slot, object event) except -2
    cdef bint _standby(self, DepthSlot slot, object event, object payload) except -1
    cdef int _take(self, DepthSlot slot) except -1
    cdef int _drain(self, DepthSlot slot, int64_t recv) except -1
    cdef int _apply(self, DepthSlot slot, object event, int64_t recv, bint drain) except -1
    cdef int _published(self, DepthSlot slot, int flags, int64_t recv, bint drain) except -1
    cdef int _after(self, DepthSlot slot, int flags) except -1
    cdef int _stream(self, StreamSlot slot, object payload, int64_t recv) except -1
    cdef int _bad(self, object slot, object exc, object payload) except -1
