# cython: language_level=3
"""A Cython consumer of the book's C interface (``_book.pxd``), and its proof.

Cython code (a reader, a strategy) ``cimport``s ``OrderBook`` and calls ``apply_diff_raw``
and ``best_bid_c``/``best_ask_c`` through the class's C interface: no Python call, no
boxing. ``apply_raw_events`` is the smallest such consumer; the tests feed the same events
to it and to ``OrderBook.apply_diff`` and require the same results.
"""

from libc.stdint cimport int64_t

from tickbook._book cimport OrderBook


def apply_raw_events(OrderBook book, list events):
    """Apply ``(U, u, pu, bids_json, asks_json)`` events through ``apply_diff_raw``.

    ``bids_json``/``asks_json`` are ``bytes`` holding the exchange's level arrays; ``pu`` is
    ignored on spot. Returns, per event, ``(flags, best_bid, best_ask)`` with the best
    levels as ``(price_ticks, qty_ticks)`` or None, read through the C accessors.
    """
    cdef list out = []
    cdef int flags
    cdef int64_t bid_price, bid_qty, ask_price, ask_qty
    cdef bytes bids, asks
    for first_id, final_id, prev_final_id, bids, asks in events:
        flags = book.apply_diff_raw(first_id, final_id, prev_final_id,
                                    bids, len(bids), asks, len(asks))
        best_bid = (bid_price, bid_qty) if book.best_bid_c(&bid_price, &bid_qty) else None
        best_ask = (ask_price, ask_qty) if book.best_ask_c(&ask_price, &ask_qty) else None
        out.append((flags, best_bid, best_ask))
    return out
