"""Diff-depth streams at the exchange's slower speeds, built from faster events.

Binance publishes one diff-depth event per symbol per update window: ``@depth`` every
1000 ms on spot (250 ms on futures), ``@depth@100ms`` every 100 ms, futures also 250 and
500 ms. A slower stream carries the same updates as a faster one, merged: one event from
the first update ID of the window to the last (``U`` of the first event, ``u`` of the last,
futures ``pu`` of the first), each price at its last quantity of the window. That is what
``DepthMerger`` does, so a recording made at ``@depth@100ms`` (or futures ``@depth@0ms``)
can be served faithfully to a client that subscribes to ``@depth``, and the merged stream
still passes the documented continuity checks (spot ``U == prev u + 1``, futures
``pu == prev u``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from tickbook._types import Market

__all__ = ["DepthMerger", "period_ms"]

# Update windows of the diff-depth stream names (binance-spec §1.1, §2.1); 0 means "every
# event as it comes" (the recorded cadence).
_PERIODS: Final = {
    Market.SPOT: {"": 1000, "@100ms": 100, "@1000ms": 1000},
    Market.USDM: {"": 250, "@100ms": 100, "@250ms": 250, "@500ms": 500, "@0ms": 0},
    Market.COINM: {"": 250, "@100ms": 100, "@250ms": 250, "@500ms": 500, "@0ms": 0},
}

_decode = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


def period_ms(market: Market, speed_suffix: str) -> int:
    """The update window of ``<sym>@depth<speed_suffix>``, in ms (``KeyError`` if unknown)."""
    return _PERIODS[market][speed_suffix]


def _side(levels: dict[str, str], descending: bool) -> list[list[str]]:
    """Levels as the exchange lists them: bids best (highest) first, asks best (lowest) first."""
    ordered = sorted(levels.items(), key=lambda kv: Decimal(kv[0]), reverse=descending)
    return [[price, qty] for price, qty in ordered]


class DepthMerger:
    """Merge one symbol's diff-depth events into the events of a ``period``-ms stream.

    ``add(payload)`` takes the next event (bare JSON bytes, as recorded) and returns the
    merged event of the previous window when this one opens a new window (``None``
    otherwise); ``flush()`` returns the open window's event at the end. Windows are aligned
    to the events' exchange time ``E`` (``E // period``), so every subscriber of a speed
    sees the same events. Key order follows the first event of the window, which is the
    market's wire order.
    """

    __slots__ = ("_asks", "_bids", "_first", "_last", "_window", "period")

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError(f"a merged stream needs a positive period, got {period}")
        self.period = period
        self._window = -1
        self._first: dict[str, Any] | None = None
        self._last: dict[str, Any] | None = None
        self._bids: dict[str, str] = {}
        self._asks: dict[str, str] = {}

    def add(self, payload: bytes) -> bytes | None:
        event = _decode(payload)
        window = int(event["E"]) // self.period
        out = None
        if self._first is not None and window != self._window:
            out = self.flush()
        if self._first is None:
            self._first = event
            self._window = window
        self._last = event
        for price, qty in event["b"]:
            self._bids[price] = qty
        for price, qty in event["a"]:
            self._asks[price] = qty
        return out

    def close_if_due(self, now_ms: int) -> bytes | None:
        """The open window's event once exchange time ``now_ms`` is past the window's end."""
        if self._first is not None and now_ms >= (self._window + 1) * self.period:
            return self.flush()
        return None

    def flush(self) -> bytes | None:
        """The open window's merged event (None if no event is pending)."""
        first, last = self._first, self._last
        if first is None or last is None:
            return None
        merged: dict[str, Any] = {}
        for key in first:  # the wire's key order
            if key in ("E", "T", "u"):
                merged[key] = last[key]
            elif key == "b":
                merged[key] = _side(self._bids, descending=True)
            elif key == "a":
                merged[key] = _side(self._asks, descending=False)
            else:
                merged[key] = first[key]  # e, s, ps, U, pu: the window's first event
        self._first = self._last = None
        self._bids = {}
        self._asks = {}
        return _encode(merged)
