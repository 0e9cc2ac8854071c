"""Typing for the order book. Both implementations follow this contract:

* ``tickbook._book.OrderBook``  - the Cython core (``_book.pyx`` / ``_book.pxd``);
* ``tickbook._book_py.OrderBook`` - the pure-Python reference on ``SortedDict``.

Units. Inside, every price and quantity is an ``int`` of *ticks*: the decimal
value times ``10**price_scale`` (or ``10**qty_scale``). Methods come in three
flavours: ``*_ticks`` (exact ints), ``*_str`` (exact canonical decimal text:
no exponent, no trailing zeros after the point, no trailing point) and plain
(``float``, converted once at the edge, for convenience).

Levels input (``Levels``): either a JSON array text ``[["price","qty"],...]``
given as ``bytes``/``bytearray``/``memoryview``/``msgspec.Raw``/``str``, or a
sequence of ``(price, qty)`` pairs whose items are ``str`` or ``bytes``.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tickbook._analytics import Fill
from tickbook._types import Market, OutOfSyncReason, SnapshotResult, SyncState

Levels = bytes | bytearray | memoryview | str | Sequence[Sequence[str | bytes]] | Any

class OrderBook:
    def __init__(
        self,
        symbol: str,
        market: str | Market = ...,
        *,
        tick_size: str | None = ...,
        step_size: str | None = ...,
        max_depth: int = ...,
        buffer_limit: int = ...,
        layout: str | None = ...,
    ) -> None:
        """A local book for one symbol.

        ``tick_size``/``step_size`` (exchangeInfo PRICE_FILTER/LOT_SIZE text,
        e.g. ``"0.01000000"``) fix the scales; otherwise the scales are the
        largest number of decimals written in the first snapshot (and the
        events buffered before it). ``max_depth`` > 0 keeps at most that many
        levels per side (the worst are trimmed, and the book then knows it is
        incomplete beyond them). ``buffer_limit`` bounds the events kept
        while waiting for a snapshot (default 10,000; the oldest are dropped).
        ``layout`` (``"auto"``, ``"blocks"``, ``"pages"`` or ``"tiers"``;
        default ``$TICKBOOK_LAYOUT``, else ``"auto"``) is how the core stores
        each side: sorted blocks of levels (any spread of prices), pages
        indexed by price (dense books: no search, about half the update time),
        or tiers (a window near the best price, as a quantity per tick when it
        is busy, else pages; blocks beyond it). ``"auto"`` takes pages for a
        side whose snapshot fits them in 32 bytes per level, else tiers, and
        moves from pages to tiers if they grow past 48. Results never depend on
        it; the reference book only checks the name.
        """

    # identity and sync state
    @property
    def symbol(self) -> str: ...
    @property
    def market(self) -> Market: ...
    @property
    def state(self) -> SyncState: ...
    @property
    def synced(self) -> bool:
        """True only in ``SyncState.SYNCED``: the book is proven continuous."""
    @property
    def reason(self) -> OutOfSyncReason: ...
    @property
    def reason_detail(self) -> str:
        """Human-readable detail of ``reason`` with the IDs involved ('' if synced)."""
    @property
    def state_since_ns(self) -> int:
        """``time.time_ns()`` of the last state change."""
    @property
    def state_since_update_id(self) -> int:
        """Book update ID at the last state change (-1 before any snapshot)."""
    @property
    def last_update_id(self) -> int:
        """The book's update ID: snapshot lastUpdateId, then ``u`` of the last applied event; -1 if none."""
    @property
    def price_scale(self) -> int | None: ...
    @property
    def qty_scale(self) -> int | None: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def layout(self) -> str:
        """The ``layout`` the book was created with (after the default)."""
    @property
    def bid_count(self) -> int: ...
    @property
    def ask_count(self) -> int: ...
    @property
    def buffered(self) -> int:
        """Events held for replay once a snapshot arrives."""
    @property
    def first_buffered_id(self) -> int:
        """``U`` of the oldest buffered event, -1 if none."""
    @property
    def bid_floor(self) -> int | None:
        """Bids priced below this (ticks) are known to be incomplete; None if none are."""
    @property
    def ask_ceiling(self) -> int | None:
        """Asks priced above this (ticks) are known to be incomplete; None if none are."""
    def stats(self) -> dict[str, int]:
        """Counters: applied, bbo_changes, stale, buffered, gaps, no_bridge, crossed,
        snapshots, stale_snapshots, buffer_dropped, bad_buffered."""

    # feeding
    def apply_snapshot(
        self, last_update_id: int, bids: Levels, asks: Levels, *, limit: int | None = ...
    ) -> SnapshotResult:
        """Load a REST depth snapshot and replay the buffered events after it.

        ``limit`` is the limit the snapshot was requested with: a side with
        fewer levels than it is complete. Returns STALE (book unchanged, fetch
        again) when no buffered event can bridge the snapshot because it is
        older than the stream. Raises ``DecimalError``/``LevelsFormatError``
        for bad numbers, with the book unchanged.
        """
    def apply_diff(
        self,
        first_id: int,
        final_id: int,
        bids: Levels,
        asks: Levels,
        prev_final_id: int | None = ...,
    ) -> int:
        """Validate one depth event (``U``, ``u``, ``b``, ``a``, futures ``pu``) and apply it.

        Returns ``Applied`` bits (a plain int). Atomic: the book changes completely or
        not at all. Raises on bad numbers (book and state unchanged). Futures books
        require ``prev_final_id``.
        """
    def apply_event(self, event: Any) -> int:
        """``apply_diff`` for a decoded depth event (attributes ``s``, ``U``, ``u``,
        ``b``, ``a`` and, on futures, ``pu``). A different symbol raises ``BookError``."""
    def apply_frame(self, frame: bytes | bytearray | memoryview | str) -> int:
        """One depth message exactly as received: a combined-stream message or a bare event.

        The exchange's own layout is decoded, checked and applied in one C pass;
        any other valid layout goes through msgspec and ``apply_event`` with the
        same result. Raises ``DecodeError`` (malformed) or ``BookError`` (another
        symbol) with the book unchanged. Returns the flags of ``apply_event``."""

    def _scan_only(
        self, frame: bytes | bytearray | memoryview | str
    ) -> tuple[int, int, int | None, int, int, int] | None:
        """The frame scan of ``apply_frame`` alone (benchmark floor, tests); the book is untouched."""

    def invalidate(self, detail: str = ...) -> None:
        """Mark the book out of sync (e.g. the connection dropped) and start a new buffer."""

    # top of book
    def best_bid(self) -> tuple[float, float] | None: ...
    def best_ask(self) -> tuple[float, float] | None: ...
    def best_bid_ticks(self) -> tuple[int, int] | None: ...
    def best_ask_ticks(self) -> tuple[int, int] | None: ...
    def best_bid_str(self) -> tuple[str, str] | None: ...
    def best_ask_str(self) -> tuple[str, str] | None: ...
    def spread(self) -> float | None: ...
    def spread_ticks(self) -> int | None: ...
    def mid(self) -> float | None: ...
    def microprice(self) -> float | None:
        """Size-weighted mid: (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)."""

    # depth
    def bids(self, n: int | None = ...) -> list[tuple[float, float]]: ...
    def asks(self, n: int | None = ...) -> list[tuple[float, float]]: ...
    def bids_ticks(self, n: int | None = ...) -> list[tuple[int, int]]: ...
    def asks_ticks(self, n: int | None = ...) -> list[tuple[int, int]]: ...
    def bids_str(self, n: int | None = ...) -> list[tuple[str, str]]: ...
    def asks_str(self, n: int | None = ...) -> list[tuple[str, str]]: ...
    def bids_array(self, n: int | None = ...) -> npt.NDArray[np.float64]:
        """Top ``n`` bids (all if None), best first, shape (k, 2): price, qty."""
    def asks_array(self, n: int | None = ...) -> npt.NDArray[np.float64]: ...
    def bids_ticks_array(self, n: int | None = ...) -> npt.NDArray[np.int64]: ...
    def asks_ticks_array(self, n: int | None = ...) -> npt.NDArray[np.int64]: ...
    def qty_at(self, price: str | bytes) -> float:
        """Quantity resting at ``price`` on either side (0.0 if none)."""
    def qty_at_ticks(self, price: int) -> int: ...
    def depth_within_bps(self, bps: float | int | str) -> tuple[float, float] | None:
        """Cumulative (bid, ask) quantity priced within ``bps`` basis points of mid."""
    def depth_within_bps_ticks(self, bps: float | int | str) -> tuple[int, int] | None: ...
    def fill(
        self, side: str, *, qty: float | int | str | None = ..., notional: float | int | str | None = ...
    ) -> Fill | None:
        """Walk the book for a market ``"buy"`` (asks) or ``"sell"`` (bids) of a base
        ``qty`` or a quote ``notional``. None when the side is empty."""
    def checksum(self, n: int) -> int:
        """CRC-32 (zlib) of the top n bids then top n asks, best first, each
        ``price:qty`` in canonical decimal, joined by ``|``."""

    # exact conversions at the book's scales
    def parse_price(self, text: str | bytes) -> int: ...
    def parse_qty(self, text: str | bytes) -> int: ...
    def price_str(self, ticks: int) -> str: ...
    def qty_str(self, ticks: int) -> str: ...
    def copy(self) -> OrderBook:
        """An independent copy: levels, state, IDs, scales, counters and buffer."""
    def memory_bytes(self) -> int:
        """Bytes held by the level storage (for the memory benchmarks)."""
    def _layouts(self) -> tuple[str, str]:
        """The storage the bids and the asks use now: "blocks", "pages", or "tiers:" and the
        near tier's layout ("tiers:dense", "tiers:pages" or "tiers:blocks")."""
    def _tiers(self) -> tuple[dict[str, int] | None, dict[str, int] | None]:
        """For each tiers side (None otherwise), bids then asks: its floor key, the window's
        bounds (low, high) and the levels and bytes of its near and far tiers."""
    def _check(self) -> None:
        """Raise AssertionError if an invariant is broken."""
