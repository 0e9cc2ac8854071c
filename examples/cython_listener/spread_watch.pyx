# cython: language_level=3
"""A strategy hook written in Cython: the feed's router calls it in C.

``SpreadWatch`` subclasses ``tickbook._router.BookListener``. After every message the
router applies, it calls ``on_update_c``; when the best bid or ask changed, ``on_bbo_c``.
Both are vtable calls with the typed ``OrderBook``: no Python frame, no boxing, and the
best levels are read through the book's C accessors (``best_bid_c``/``best_ask_c``).

Use it from Python::

    from tickbook._example_listener import SpreadWatch
    watch = SpreadWatch()
    feed.add_listener(watch, symbols=["BTCUSDT"])
    ... watch.bbo_changes, watch.widest_spread_ticks ...

Build your own the same way: ``cimport`` ``OrderBook`` from ``tickbook._book`` and
``BookListener`` from ``tickbook._router`` (the installed ``.pxd`` files), and compile it
with Cython against the installed package (this one is built by tickbook's setup.py as
``tickbook._example_listener`` so the tests can run it).
"""

from libc.stdint cimport int64_t

from tickbook._book cimport OrderBook
from tickbook._router cimport BookListener


cdef class SpreadWatch(BookListener):
    """Counts updates and BBO changes, and keeps the widest spread seen (in price ticks)."""

    cdef public int64_t updates
    cdef public int64_t bbo_changes
    cdef public int64_t widest_spread_ticks
    cdef public int64_t last_bid_ticks
    cdef public int64_t last_ask_ticks

    cdef int on_update_c(self, OrderBook book) except -1:
        self.updates += 1
        return 0

    cdef int on_bbo_c(self, OrderBook book) except -1:
        cdef int64_t bid_price, bid_qty, ask_price, ask_qty
        self.bbo_changes += 1
        if book.best_bid_c(&bid_price, &bid_qty) and book.best_ask_c(&ask_price, &ask_qty):
            if ask_price - bid_price > self.widest_spread_ticks:
                self.widest_spread_ticks = ask_price - bid_price
            self.last_bid_ticks = bid_price
            self.last_ask_ticks = ask_price
        return 0
