"""Typing examples: mypy --strict checks this file against the stubs (make typecheck).

It is never run; it shows how the public API is meant to be typed, so a stub that
drifts from the implementation fails the type check.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tickbook import Applied, Fill, Market, OrderBook, SnapshotResult, SyncState


def feed(book: OrderBook, raw_bids: bytes, raw_asks: bytes) -> bool:
    result: SnapshotResult = book.apply_snapshot(100, [("1.0", "2")], [("1.1", "3")], limit=1000)
    flags: int = book.apply_diff(101, 101, raw_bids, raw_asks)
    state: SyncState = book.state
    return bool(flags & Applied.BBO_CHANGED) and result is SnapshotResult.SYNCED and state is SyncState.SYNCED


def read(book: OrderBook) -> float:
    bid: tuple[float, float] | None = book.best_bid()
    exact: tuple[str, str] | None = book.best_ask_str()
    ticks: list[tuple[int, int]] = book.bids_ticks(5)
    array: npt.NDArray[np.float64] = book.asks_array(10)
    fill: Fill | None = book.fill("buy", notional="1000")
    market: Market = book.market
    crc: int = book.checksum(10)
    total = float(len(ticks) + array.shape[0] + crc) + (0.0 if exact is None else 1.0)
    if bid is not None and fill is not None and market is Market.SPOT:
        total += bid[0] + fill.avg_price
    return total
