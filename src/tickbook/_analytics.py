"""Book queries that are not on the hot path, written once for both books.

Each function works on exact ticks and the book's scales and converts to
float only at the end, so the Cython core and the reference book give
bit-identical answers. The books pass a ``top(n)`` callable that returns the
best ``n`` levels of one side as ``(price_ticks, qty_ticks)`` pairs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

TopLevels = Callable[[int | None], list[tuple[int, int]]]


class Fill(NamedTuple):
    """Result of walking one side of the book for a market order."""

    avg_price: float  # volume-weighted average price of what was filled
    worst_price: float  # price of the last (worst) level touched
    filled_qty: float  # base quantity filled
    filled_notional: float  # quote quantity filled
    complete: bool  # False when the side ran out before the request was met


def _exact(value: float | int | str | Fraction) -> Fraction:
    """A user-given amount as an exact fraction (floats via their shortest repr)."""
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def _walk(top: TopLevels) -> Iterator[tuple[int, int]]:
    """Levels best first, fetched in growing chunks so a shallow walk stays cheap."""
    n = 64
    seen = 0
    while True:
        levels = top(n)
        yield from levels[seen:]
        if len(levels) < n:
            return
        seen = len(levels)
        n *= 4


def mid(bid: int, ask: int, price_scale: int) -> float:
    return float((bid + ask) / (2 * 10**price_scale))


def microprice(bid: int, bid_qty: int, ask: int, ask_qty: int, price_scale: int) -> float:
    return float((bid * ask_qty + ask * bid_qty) / ((bid_qty + ask_qty) * 10**price_scale))


def depth_within_bps_ticks(
    bid: int, ask: int, bps: float | int | str, top_bids: TopLevels, top_asks: TopLevels
) -> tuple[int, int]:
    """Cumulative quantity (ticks) of bids priced >= mid*(1-bps/1e4) and asks <= mid*(1+bps/1e4)."""
    b = _exact(bps)
    if b < 0:
        raise ValueError(f"bps must be >= 0, got {bps!r}")
    mid2 = bid + ask  # twice the mid, in price ticks: keeps the comparison in integers
    low = mid2 * (10000 - b)
    high = mid2 * (10000 + b)
    bid_total = 0
    for price, qty in _walk(top_bids):
        if 20000 * price < low:
            break
        bid_total += qty
    ask_total = 0
    for price, qty in _walk(top_asks):
        if 20000 * price > high:
            break
        ask_total += qty
    return bid_total, ask_total


def fill(
    top: TopLevels,
    price_scale: int,
    qty_scale: int,
    qty: float | int | str | None,
    notional: float | int | str | None,
) -> Fill | None:
    """Walk levels best first until ``qty`` (base) or ``notional`` (quote) is met."""
    if (qty is None) == (notional is None):
        raise ValueError("give exactly one of qty= or notional=")
    want = _exact(qty if qty is not None else notional)  # type: ignore[arg-type]
    if want <= 0:
        raise ValueError(f"amount must be positive, got {want}")
    price_div = 10**price_scale
    qty_div = 10**qty_scale
    filled_qty = Fraction(0)
    filled_notional = Fraction(0)
    worst = None
    for price_ticks, qty_ticks in _walk(top):
        price = Fraction(price_ticks, price_div)
        level_qty = Fraction(qty_ticks, qty_div)
        if qty is not None:
            take = min(level_qty, want - filled_qty)
        else:
            take = min(level_qty, (want - filled_notional) / price)
        filled_qty += take
        filled_notional += take * price
        worst = price
        done = filled_qty >= want if qty is not None else filled_notional >= want
        if done:
            break
    if worst is None:
        return None
    complete = filled_qty >= want if qty is not None else filled_notional >= want
    return Fill(
        float(filled_notional / filled_qty),
        float(worst),
        float(filled_qty),
        float(filled_notional),
        complete,
    )


def checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """CRC-32 of ``p:q|p:q|...``: bids best first, then asks best first (canonical decimals)."""
    text = "|".join(f"{p}:{q}" for p, q in bids + asks)
    return zlib.crc32(text.encode("ascii"))


def float_array(ticks: npt.NDArray[np.int64], price_scale: int, qty_scale: int) -> npt.NDArray[np.float64]:
    """(k, 2) int64 ticks -> float64 prices and quantities (one rounding each)."""
    out = ticks.astype(np.float64)
    out[:, 0] /= 10.0**price_scale
    out[:, 1] /= 10.0**qty_scale
    return out


def ticks_array(levels: list[tuple[int, int]]) -> npt.NDArray[np.int64]:
    if not levels:
        return np.empty((0, 2), dtype=np.int64)
    return np.array(levels, dtype=np.int64)
