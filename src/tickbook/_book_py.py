"""The pure-Python reference order book, on ``sortedcontainers.SortedDict``.

This module is the oracle: it follows ``docs/book.md`` as literally as possible, and the
Cython core (``tickbook._book``) is tested against it, step by step, on every book test.
It is also what ``tickbook.OrderBook`` falls back to when the extension was not built
(no compiler where the package was installed) or when ``TICKBOOK_NO_EXTENSIONS=1``.

Clarity beats speed here. Each side is a ``SortedDict`` mapping a price in integer ticks to
a quantity in integer ticks; bids are read from the end (highest first), asks from the start.
The update-ID rules come from ``tickbook._rules``, decimal text from ``tickbook._decimal`` and
the non-trivial queries from ``tickbook._analytics``, so the two books share one definition
of each and give bit-identical answers.
"""

from __future__ import annotations

import itertools
import operator
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedDict

from tickbook import _analytics
from tickbook._analytics import Fill
from tickbook._decimal import (
    INT64_MAX,
    check_scale,
    decimals_of,
    format_decimal,
    parse_decimal,
    scale_of_step,
)
from tickbook._rules import Verdict, classify, snapshot_is_stale
from tickbook._types import (
    Applied,
    BookError,
    DecimalError,
    LevelsFormatError,
    Market,
    OutOfSyncReason,
    SnapshotResult,
    SyncState,
    layout_policy,
)
from tickbook.decode import decode_depth_message

__all__ = ["DEFAULT_BUFFER_LIMIT", "OrderBook"]

#: Events kept while waiting for a snapshot when ``buffer_limit`` is not given.
DEFAULT_BUFFER_LIMIT = 10_000
#: Scale used for prices/quantities when the first snapshot and the buffer have no level at all.
DEFAULT_SCALE = 8

Levels = bytes | bytearray | memoryview | str | Sequence[Sequence[str | bytes]] | Any
Text = str | bytes | bytearray | memoryview
Pair = tuple[Text, Text]

# One reused typed decoder: it accepts exactly a JSON array of two-string arrays.
_LEVELS_DECODER = msgspec.json.Decoder(list[tuple[str, str]])
_JSON_TYPES = (bytes, bytearray, memoryview, str, msgspec.Raw)
_BYTES_LIKE = (bytes, bytearray, memoryview)
_TEXT_TYPES = (str, bytes, bytearray, memoryview)


class _Event(NamedTuple):
    """A buffered depth event, kept unparsed until a snapshot arrives."""

    U: int  # first update ID
    u: int  # final update ID
    pu: int | None  # previous final update ID (futures only; None on spot)
    bids: Levels  # as given (bytes-like inputs copied to ``bytes``)
    asks: Levels


def _update_id(value: object, name: str) -> int:
    """An exchange update ID: an int in int64's non-negative range, else ``BookError``."""
    if not isinstance(value, int):
        raise BookError(f"{name} must be an int update ID, got {type(value).__name__}: {value!r}")
    if not 0 <= value <= INT64_MAX:
        raise BookError(f"{name} must be an update ID in 0..2**63-1, got {value!r}")
    return int(value)


def _read_levels(levels: Levels) -> list[Pair]:
    """Validate the shape of one side and return its ``(price, qty)`` texts, unparsed.

    JSON text (bytes-like, ``msgspec.Raw`` or ``str``) must be an array of two-string arrays;
    a Python sequence must hold pairs of exactly two ``str``/bytes-like items. Anything else
    raises ``LevelsFormatError``. O(k) in the number of levels.
    """
    if isinstance(levels, _JSON_TYPES):
        try:
            decoded: list[tuple[str, str]] = _LEVELS_DECODER.decode(levels)
        except msgspec.DecodeError as exc:  # also covers msgspec.ValidationError
            raise LevelsFormatError(f"levels are not a JSON array of [price, qty] strings: {exc}") from None
        return list(decoded)
    if not isinstance(levels, Sequence):
        raise LevelsFormatError(
            f"levels must be JSON text or a sequence of [price, qty] pairs, got {type(levels).__name__}"
        )
    pairs: list[Pair] = []
    for index, pair in enumerate(levels):
        if isinstance(pair, _TEXT_TYPES) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise LevelsFormatError(f"level {index} is not a [price, qty] pair: {pair!r}")
        price, qty = pair[0], pair[1]
        if not isinstance(price, _TEXT_TYPES) or not isinstance(qty, _TEXT_TYPES):
            raise LevelsFormatError(f"level {index} must hold two strings, got {pair!r}")
        pairs.append((price, qty))
    return pairs


def _parse_pairs(pairs: list[Pair], price_scale: int, qty_scale: int) -> list[tuple[int, int]]:
    """Texts -> ``(price_ticks, qty_ticks)``, in order; ``DecimalError`` on bad number text."""
    return [(parse_decimal(p, price_scale), parse_decimal(q, qty_scale)) for p, q in pairs]


def _max_decimals(pairs: list[Pair]) -> tuple[int, int]:
    """Largest number of decimals written over the prices and over the quantities (-1 if none)."""
    price_dec = qty_dec = -1
    for p, q in pairs:
        price_dec = max(price_dec, decimals_of(p))
        qty_dec = max(qty_dec, decimals_of(q))
    return price_dec, qty_dec


def _keep(levels: Levels) -> Levels:
    """What the buffer holds for one side: bytes-like input is copied (a caller's memoryview or
    bytearray may change after the call, and a ``msgspec.Raw`` may be a view of such a buffer,
    as when a message was decoded from a bytearray); ``bytes``, ``str`` and sequences are kept."""
    if isinstance(levels, (bytearray, memoryview, msgspec.Raw)):
        return bytes(levels)
    return levels


def _side_bytes(side: Any) -> int:
    """Estimated bytes held by one ``SortedDict``: its hash table, its sorted key list (the
    sublists, maxes and index of the underlying ``SortedList``) and the int objects."""
    total = sys.getsizeof(side)
    sorted_list = getattr(side, "_list", None)
    if sorted_list is not None:
        total += sys.getsizeof(sorted_list)
        sublists = getattr(sorted_list, "_lists", [])
        total += sys.getsizeof(sublists) + sum(sys.getsizeof(sub) for sub in sublists)
        total += sys.getsizeof(getattr(sorted_list, "_maxes", []))
        total += sys.getsizeof(getattr(sorted_list, "_index", []))
    total += sum(sys.getsizeof(price) + sys.getsizeof(qty) for price, qty in side.items())
    return total


class OrderBook:
    """A local book for one symbol (see ``tickbook._book.pyi`` and ``docs/book.md``).

    ``tick_size``/``step_size`` (exchangeInfo text such as ``"0.01000000"``) fix the scales;
    otherwise they are inferred at the first snapshot. ``max_depth`` > 0 keeps at most that
    many levels per side; ``buffer_limit`` bounds the events buffered while not in sync.
    """

    __slots__ = (
        "_applied",
        "_ask_ceiling",
        "_asks",
        "_bad_buffered",
        "_bbo_changes",
        "_bid_floor",
        "_bids",
        "_buffer",
        "_buffer_dropped",
        "_buffer_limit",
        "_buffered_total",
        "_crossed",
        "_futures",
        "_gaps",
        "_last_update_id",
        "_layout",
        "_market",
        "_max_depth",
        "_no_bridge",
        "_price_div",
        "_price_scale",
        "_qty_div",
        "_qty_scale",
        "_reason",
        "_reason_detail",
        "_snapshots",
        "_stale",
        "_stale_snapshots",
        "_state",
        "_state_since_ns",
        "_state_since_update_id",
        "_symbol",
    )

    def __init__(
        self,
        symbol: str,
        market: str | Market = "spot",
        *,
        tick_size: str | None = None,
        step_size: str | None = None,
        max_depth: int = 0,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        layout: str | None = None,
    ) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol must be a non-empty str, got {symbol!r}")
        max_depth = operator.index(max_depth)
        buffer_limit = operator.index(buffer_limit)
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0 (0: no cap), got {max_depth}")
        if buffer_limit < 1:
            raise ValueError(f"buffer_limit must be >= 1, got {buffer_limit}")
        self._layout = layout_policy(layout)  # the core's storage choice; one layout here
        self._symbol = symbol
        self._market = Market.parse(market)
        self._futures = self._market.is_futures
        self._max_depth = max_depth
        self._buffer_limit = buffer_limit
        self._price_scale: int | None = None
        self._qty_scale: int | None = None
        self._price_div = 1  # 10**price_scale once known
        self._qty_div = 1
        if tick_size is not None:
            self._set_price_scale(scale_of_step(tick_size))
        if step_size is not None:
            self._set_qty_scale(scale_of_step(step_size))
        self._bids: SortedDict[int, int] = SortedDict()  # price ticks -> qty ticks; best is last
        self._asks: SortedDict[int, int] = SortedDict()  # price ticks -> qty ticks; best is first
        self._bid_floor: int | None = None
        self._ask_ceiling: int | None = None
        self._last_update_id = -1
        self._buffer: deque[_Event] = deque()
        self._state = SyncState.WAITING_FOR_SNAPSHOT
        self._reason = OutOfSyncReason.NOT_STARTED
        self._reason_detail = "no snapshot yet"
        self._state_since_ns = time.time_ns()
        self._state_since_update_id = -1
        self._applied = 0
        self._bbo_changes = 0
        self._stale = 0
        self._buffered_total = 0
        self._gaps = 0
        self._no_bridge = 0
        self._crossed = 0
        self._snapshots = 0
        self._stale_snapshots = 0
        self._buffer_dropped = 0
        self._bad_buffered = 0

    # ------------------------------------------------------------------ internals

    def _set_price_scale(self, scale: int) -> None:
        self._price_scale = check_scale(scale)
        self._price_div = 10**scale

    def _set_qty_scale(self, scale: int) -> None:
        self._qty_scale = check_scale(scale)
        self._qty_div = 10**scale

    def _scales(self) -> tuple[int, int]:
        """Both scales, or ``BookError`` when they are not known yet."""
        if self._price_scale is None or self._qty_scale is None:
            raise BookError(
                f"{self._symbol}: scales are not known yet (give tick_size/step_size or apply a snapshot)"
            )
        return self._price_scale, self._qty_scale

    def _set_state(self, state: SyncState, reason: OutOfSyncReason, detail: str = "") -> None:
        """Every state change goes through here and is timestamped with the book's update ID."""
        self._state = state
        self._reason = reason
        self._reason_detail = detail
        self._state_since_ns = time.time_ns()
        self._state_since_update_id = self._last_update_id

    def _push(self, U: int, u: int, pu: int | None, bids: Levels, asks: Levels) -> None:
        """Append one event to the buffer, dropping the oldest beyond ``buffer_limit``. O(1)."""
        if len(self._buffer) >= self._buffer_limit:
            self._buffer.popleft()
            self._buffer_dropped += 1
        self._buffer.append(_Event(U, u, pu, _keep(bids), _keep(asks)))
        self._buffered_total += 1

    def _restart_buffer(
        self, reason: OutOfSyncReason, detail: str, U: int, u: int, pu: int | None, bids: Levels, asks: Levels
    ) -> None:
        """Go out of sync: the buffer starts anew with this event as its first entry."""
        self._set_state(SyncState.OUT_OF_SYNC, reason, detail)
        self._buffer.clear()
        self._push(U, u, pu, bids, asks)

    def _best_bid(self) -> tuple[int, int] | None:
        if not self._bids:
            return None
        price, qty = self._bids.peekitem(-1)
        return int(price), int(qty)

    def _best_ask(self) -> tuple[int, int] | None:
        if not self._asks:
            return None
        price, qty = self._asks.peekitem(0)
        return int(price), int(qty)

    def _apply_depth_cap(self) -> None:
        """Trim each side to its best ``max_depth`` levels, moving ``bid_floor`` up and
        ``ask_ceiling`` down past every removed level. O(r log n) for r removed levels."""
        if self._max_depth <= 0:
            return
        while len(self._bids) > self._max_depth:
            price, _ = self._bids.popitem(0)  # the worst bid
            if self._bid_floor is None or self._bid_floor < price + 1:
                self._bid_floor = price + 1
        while len(self._asks) > self._max_depth:
            price, _ = self._asks.popitem(-1)  # the worst ask
            if self._ask_ceiling is None or self._ask_ceiling > price - 1:
                self._ask_ceiling = price - 1

    def _infer_scales(self, bid_pairs: list[Pair], ask_pairs: list[Pair]) -> tuple[int, int]:
        """Largest number of decimals written over the snapshot's levels and the buffered
        events' levels, for prices and quantities separately; 8 when there is no level at all.
        A buffered event whose levels cannot be read is left out (its replay will count it)."""
        price_dec, qty_dec = _max_decimals(bid_pairs + ask_pairs)
        for event in self._buffer:
            try:
                ev_price, ev_qty = _max_decimals(_read_levels(event.bids) + _read_levels(event.asks))
            except BookError:
                continue
            price_dec = max(price_dec, ev_price)
            qty_dec = max(qty_dec, ev_qty)
        price_scale = check_scale(price_dec) if price_dec >= 0 else DEFAULT_SCALE
        qty_scale = check_scale(qty_dec) if qty_dec >= 0 else DEFAULT_SCALE
        return price_scale, qty_scale

    # ------------------------------------------------------------ identity and state

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def market(self) -> Market:
        return self._market

    @property
    def state(self) -> SyncState:
        return self._state

    @property
    def synced(self) -> bool:
        """True only in ``SyncState.SYNCED``: the book is proven continuous."""
        return self._state is SyncState.SYNCED

    @property
    def reason(self) -> OutOfSyncReason:
        return self._reason

    @property
    def reason_detail(self) -> str:
        """Human-readable detail of ``reason`` with the IDs involved ('' if synced)."""
        return self._reason_detail

    @property
    def state_since_ns(self) -> int:
        """``time.time_ns()`` of the last state change."""
        return self._state_since_ns

    @property
    def state_since_update_id(self) -> int:
        """Book update ID at the last state change (-1 before any snapshot)."""
        return self._state_since_update_id

    @property
    def last_update_id(self) -> int:
        """Snapshot lastUpdateId, then ``u`` of the last applied event; -1 if none."""
        return self._last_update_id

    @property
    def price_scale(self) -> int | None:
        return self._price_scale

    @property
    def qty_scale(self) -> int | None:
        return self._qty_scale

    @property
    def max_depth(self) -> int:
        return self._max_depth

    @property
    def layout(self) -> str:
        return self._layout

    @property
    def bid_count(self) -> int:
        """Number of bid levels. O(1)."""
        return len(self._bids)

    @property
    def ask_count(self) -> int:
        """Number of ask levels. O(1)."""
        return len(self._asks)

    @property
    def buffered(self) -> int:
        """Events held for replay once a snapshot arrives (the current buffer length)."""
        return len(self._buffer)

    @property
    def first_buffered_id(self) -> int:
        """``U`` of the oldest buffered event, -1 if none."""
        return self._buffer[0].U if self._buffer else -1

    @property
    def bid_floor(self) -> int | None:
        """Bids priced below this (ticks) are known to be incomplete; None if none are."""
        return self._bid_floor

    @property
    def ask_ceiling(self) -> int | None:
        """Asks priced above this (ticks) are known to be incomplete; None if none are."""
        return self._ask_ceiling

    def stats(self) -> dict[str, int]:
        """Counters since construction. ``buffered`` counts every event put in the buffer."""
        return {
            "applied": self._applied,
            "bbo_changes": self._bbo_changes,
            "stale": self._stale,
            "buffered": self._buffered_total,
            "gaps": self._gaps,
            "no_bridge": self._no_bridge,
            "crossed": self._crossed,
            "snapshots": self._snapshots,
            "stale_snapshots": self._stale_snapshots,
            "buffer_dropped": self._buffer_dropped,
            "bad_buffered": self._bad_buffered,
        }

    # ------------------------------------------------------------------- feeding

    def apply_snapshot(
        self, last_update_id: int, bids: Levels, asks: Levels, *, limit: int | None = None
    ) -> SnapshotResult:
        """Load a REST depth snapshot and replay the buffered events after it.

        Returns STALE (nothing changed) when the snapshot is older than the oldest buffered
        event. Raises ``DecimalError``/``LevelsFormatError``, or ``BookError`` for a crossed
        snapshot, with the book, its state and its scales unchanged.
        O(k log k) for k snapshot levels, plus the replay of the buffer.
        """
        snapshot_id = _update_id(last_update_id, "lastUpdateId")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive int or None, got {limit!r}")
        # 1. a snapshot older than the stream cannot be bridged: fetch again
        if self._buffer and snapshot_is_stale(snapshot_id, self._buffer[0].U, self._futures):
            self._stale_snapshots += 1
            return SnapshotResult.STALE

        # 2. settle the scales and parse everything before any change
        bid_pairs = _read_levels(bids)
        ask_pairs = _read_levels(asks)
        price_scale, qty_scale = self._price_scale, self._qty_scale
        if price_scale is None or qty_scale is None:
            inferred_price, inferred_qty = self._infer_scales(bid_pairs, ask_pairs)
            price_scale = inferred_price if price_scale is None else price_scale
            qty_scale = inferred_qty if qty_scale is None else qty_scale
        new_bids: SortedDict[int, int] = SortedDict()
        new_asks: SortedDict[int, int] = SortedDict()
        for side, pairs in ((new_bids, bid_pairs), (new_asks, ask_pairs)):
            for price, qty in _parse_pairs(pairs, price_scale, qty_scale):
                if qty:  # zero quantities are skipped; a repeated price: the last one wins
                    side[price] = qty
        if new_bids and new_asks and new_bids.peekitem(-1)[0] >= new_asks.peekitem(0)[0]:
            best_bid = format_decimal(new_bids.peekitem(-1)[0], price_scale)
            best_ask = format_decimal(new_asks.peekitem(0)[0], price_scale)
            raise BookError(
                f"{self._symbol}: crossed snapshot {snapshot_id}: best bid {best_bid} >= best ask {best_ask}"
            )

        # 3. replace the book
        if self._price_scale is None:
            self._set_price_scale(price_scale)
        if self._qty_scale is None:
            self._set_qty_scale(qty_scale)
        self._bids = new_bids
        self._asks = new_asks
        complete_bids = limit is not None and len(new_bids) < limit
        complete_asks = limit is not None and len(new_asks) < limit
        self._bid_floor = None if complete_bids or not new_bids else int(new_bids.peekitem(0)[0])
        self._ask_ceiling = None if complete_asks or not new_asks else int(new_asks.peekitem(-1)[0])
        self._last_update_id = snapshot_id
        self._snapshots += 1
        self._set_state(SyncState.BRIDGING, OutOfSyncReason.NONE)
        self._apply_depth_cap()

        # 4. replay the buffer through the continuity rules
        pending = self._buffer
        self._buffer = deque()
        for event in pending:
            try:
                self.apply_diff(event.U, event.u, event.bids, event.asks, event.pu)
            except (DecimalError, LevelsFormatError):
                self._bad_buffered += 1

        # 5. the state after the replay
        if self._state is SyncState.SYNCED:
            return SnapshotResult.SYNCED
        if self._state is SyncState.BRIDGING:
            return SnapshotResult.BRIDGING
        return SnapshotResult.OUT_OF_SYNC

    def apply_diff(
        self,
        first_id: int,
        final_id: int,
        bids: Levels,
        asks: Levels,
        prev_final_id: int | None = None,
    ) -> int:
        """Validate one depth event (``U``, ``u``, ``b``, ``a``, futures ``pu``) and apply it.

        Atomic: the book changes completely or not at all; a raise leaves book and state as
        they were. O(k log n) for k levels in the event (each SortedDict set is O(log n)).
        """
        U = _update_id(first_id, "U (first update ID)")
        u = _update_id(final_id, "u (final update ID)")
        pu: int | None = None
        if self._futures:
            if prev_final_id is None:
                raise BookError(f"{self._symbol}: a {self._market.value} event needs pu (prev_final_id)")
            pu = _update_id(prev_final_id, "pu (previous final update ID)")
        if u < U:
            raise BookError(f"{self._symbol}: event U={U} > u={u}")

        # 2. no book to apply to: keep it for the next snapshot
        if self._state is SyncState.WAITING_FOR_SNAPSHOT or self._state is SyncState.OUT_OF_SYNC:
            self._push(U, u, pu, bids, asks)
            return Applied.BUFFERED

        # 3. the continuity rule of the market and phase
        book_id = self._last_update_id
        bridging = self._state is SyncState.BRIDGING
        verdict = classify(U, u, -1 if pu is None else pu, book_id, bridging, self._futures)
        if verdict is Verdict.STALE:
            self._stale += 1
            return Applied.STALE
        if verdict is Verdict.GAP:
            self._gaps += 1
            if self._futures:
                detail = f"gap: pu={pu} != last_update_id={book_id} (event U={U}, u={u})"
            else:
                detail = f"gap: U={U} > last_update_id+1={book_id + 1} (event u={u})"
            self._restart_buffer(OutOfSyncReason.GAP, detail, U, u, pu, bids, asks)
            return Applied.GAP
        if verdict is Verdict.NO_BRIDGE:
            self._no_bridge += 1
            bound = f"lastUpdateId={book_id}" if self._futures else f"lastUpdateId+1={book_id + 1}"
            detail = f"no bridge: first event U={U} > {bound} (event u={u})"
            self._restart_buffer(OutOfSyncReason.NO_BRIDGE, detail, U, u, pu, bids, asks)
            return Applied.GAP

        # 6. apply: parse everything first, then set each level remembering the old quantity
        price_scale, qty_scale = self._scales()
        bid_levels = _parse_pairs(_read_levels(bids), price_scale, qty_scale)
        ask_levels = _parse_pairs(_read_levels(asks), price_scale, qty_scale)
        bbo_before = (self._best_bid(), self._best_ask())
        undo: list[tuple[SortedDict[int, int], int, int | None]] = []
        for side, levels in ((self._bids, bid_levels), (self._asks, ask_levels)):
            for price, qty in levels:
                old = side.get(price)
                undo.append((side, price, old))
                if qty:
                    side[price] = qty
                elif old is not None:
                    del side[price]

        best_bid, best_ask = self._best_bid(), self._best_ask()
        if best_bid is not None and best_ask is not None and best_bid[0] >= best_ask[0]:
            for side, price, old in reversed(undo):
                if old is None:
                    side.pop(price, None)
                else:
                    side[price] = old
            self._crossed += 1
            detail = (
                f"crossed: event U={U} u={u} would leave best bid {format_decimal(best_bid[0], price_scale)}"
                f" >= best ask {format_decimal(best_ask[0], price_scale)} (book id {book_id})"
            )
            self._restart_buffer(OutOfSyncReason.CROSSED, detail, U, u, pu, bids, asks)
            return Applied.CROSSED

        self._last_update_id = u
        if bridging:
            self._set_state(SyncState.SYNCED, OutOfSyncReason.NONE)
        self._apply_depth_cap()
        self._applied += 1
        if (self._best_bid(), self._best_ask()) != bbo_before:
            self._bbo_changes += 1
            return Applied.APPLIED | Applied.BBO_CHANGED
        return Applied.APPLIED

    def apply_event(self, event: Any) -> int:
        """``apply_diff`` for a decoded depth event (attributes ``s``, ``U``, ``u``, ``b``, ``a``
        and, on futures, ``pu``). A different symbol raises ``BookError``."""
        if event.s != self._symbol:
            raise BookError(f"event for {event.s!r} given to the {self._symbol!r} book")
        pu = event.pu if self._futures else None
        return self.apply_diff(event.U, event.u, event.b, event.a, pu)

    def apply_frame(self, frame: bytes | bytearray | memoryview | str) -> int:
        """One depth message as received (combined-stream or bare event): decode with msgspec,
        then ``apply_event``. Malformed input raises ``DecodeError`` with the book unchanged."""
        return self.apply_event(decode_depth_message(frame, self._market))

    def invalidate(self, detail: str = "") -> None:
        """Clear the buffer; from BRIDGING or SYNCED go OUT_OF_SYNC (reason INVALIDATED). O(1)."""
        self._buffer.clear()
        if self._state is SyncState.BRIDGING or self._state is SyncState.SYNCED:
            text = f"invalidated at update id {self._last_update_id}"
            text = f"{text}: {detail}" if detail else text
            self._set_state(SyncState.OUT_OF_SYNC, OutOfSyncReason.INVALIDATED, text)

    # --------------------------------------------------------------- top of book

    def best_bid(self) -> tuple[float, float] | None:
        """Best bid (price, qty) as floats, None if no bids. O(1)."""
        best = self._best_bid()
        return None if best is None else (best[0] / self._price_div, best[1] / self._qty_div)

    def best_ask(self) -> tuple[float, float] | None:
        """Best ask (price, qty) as floats, None if no asks. O(1)."""
        best = self._best_ask()
        return None if best is None else (best[0] / self._price_div, best[1] / self._qty_div)

    def best_bid_ticks(self) -> tuple[int, int] | None:
        """Best bid (price, qty) in ticks. O(1)."""
        return self._best_bid()

    def best_ask_ticks(self) -> tuple[int, int] | None:
        """Best ask (price, qty) in ticks. O(1)."""
        return self._best_ask()

    def best_bid_str(self) -> tuple[str, str] | None:
        """Best bid (price, qty) as exact canonical decimal text. O(1)."""
        best = self._best_bid()
        return None if best is None else self._level_str(best)

    def best_ask_str(self) -> tuple[str, str] | None:
        """Best ask (price, qty) as exact canonical decimal text. O(1)."""
        best = self._best_ask()
        return None if best is None else self._level_str(best)

    def spread(self) -> float | None:
        """Best ask minus best bid, as a float; None unless both sides have levels. O(1)."""
        ticks = self.spread_ticks()
        return None if ticks is None else ticks / self._price_div

    def spread_ticks(self) -> int | None:
        """Best ask minus best bid, in price ticks. O(1)."""
        bid, ask = self._best_bid(), self._best_ask()
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def mid(self) -> float | None:
        """(best bid + best ask) / 2; None unless both sides have levels. O(1)."""
        bid, ask = self._best_bid(), self._best_ask()
        if bid is None or ask is None or self._price_scale is None:
            return None
        return _analytics.mid(bid[0], ask[0], self._price_scale)

    def microprice(self) -> float | None:
        """Size-weighted mid: (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty). O(1)."""
        bid, ask = self._best_bid(), self._best_ask()
        if bid is None or ask is None or self._price_scale is None:
            return None
        return _analytics.microprice(bid[0], bid[1], ask[0], ask[1], self._price_scale)

    # --------------------------------------------------------------------- depth

    @staticmethod
    def _count(n: int | None, available: int) -> int:
        if n is None:
            return available
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"n must be >= 0 or None, got {n}")
        return min(n, available)

    def bids_ticks(self, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` bids (all if None), best first, in ticks. O(log N + n)."""
        items = self._bids.items()
        k = self._count(n, len(items))
        if k == 0:
            return []
        return [(int(p), int(q)) for p, q in reversed(items[len(items) - k :])]

    def asks_ticks(self, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` asks (all if None), best first, in ticks. O(log N + n)."""
        items = self._asks.items()
        k = self._count(n, len(items))
        return [(int(p), int(q)) for p, q in items[:k]]

    def _level_float(self, level: tuple[int, int]) -> tuple[float, float]:
        return level[0] / self._price_div, level[1] / self._qty_div

    def _level_str(self, level: tuple[int, int]) -> tuple[str, str]:
        price_scale, qty_scale = self._scales()
        return format_decimal(level[0], price_scale), format_decimal(level[1], qty_scale)

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """Top ``n`` bids as floats, best first. O(log N + n)."""
        return [self._level_float(level) for level in self.bids_ticks(n)]

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """Top ``n`` asks as floats, best first. O(log N + n)."""
        return [self._level_float(level) for level in self.asks_ticks(n)]

    def bids_str(self, n: int | None = None) -> list[tuple[str, str]]:
        """Top ``n`` bids as exact canonical decimal text, best first. O(log N + n)."""
        return [self._level_str(level) for level in self.bids_ticks(n)]

    def asks_str(self, n: int | None = None) -> list[tuple[str, str]]:
        """Top ``n`` asks as exact canonical decimal text, best first. O(log N + n)."""
        return [self._level_str(level) for level in self.asks_ticks(n)]

    def _float_array(self, levels: list[tuple[int, int]]) -> npt.NDArray[np.float64]:
        if not levels:
            return np.empty((0, 2), dtype=np.float64)
        price_scale, qty_scale = self._scales()
        return _analytics.float_array(_analytics.ticks_array(levels), price_scale, qty_scale)

    def bids_array(self, n: int | None = None) -> npt.NDArray[np.float64]:
        """Top ``n`` bids (all if None), best first, shape (k, 2): price, qty. O(log N + n)."""
        return self._float_array(self.bids_ticks(n))

    def asks_array(self, n: int | None = None) -> npt.NDArray[np.float64]:
        """Top ``n`` asks (all if None), best first, shape (k, 2): price, qty. O(log N + n)."""
        return self._float_array(self.asks_ticks(n))

    def bids_ticks_array(self, n: int | None = None) -> npt.NDArray[np.int64]:
        """Top ``n`` bids in ticks, shape (k, 2), int64. O(log N + n)."""
        return _analytics.ticks_array(self.bids_ticks(n))

    def asks_ticks_array(self, n: int | None = None) -> npt.NDArray[np.int64]:
        """Top ``n`` asks in ticks, shape (k, 2), int64. O(log N + n)."""
        return _analytics.ticks_array(self.asks_ticks(n))

    def qty_at(self, price: str | bytes) -> float:
        """Quantity resting at ``price`` on either side (0.0 if none). Needs the scales. O(1)."""
        return self.qty_at_ticks(self.parse_price(price)) / self._qty_div

    def qty_at_ticks(self, price: int) -> int:
        """Quantity (ticks) resting at ``price`` (ticks) on either side, 0 if none. O(1)."""
        price = operator.index(price)
        qty = self._bids.get(price)
        if qty is None:
            qty = self._asks.get(price, 0)
        return int(qty)

    def depth_within_bps(self, bps: float | int | str) -> tuple[float, float] | None:
        """Cumulative (bid, ask) quantity priced within ``bps`` basis points of mid."""
        ticks = self.depth_within_bps_ticks(bps)
        if ticks is None:
            return None
        return ticks[0] / self._qty_div, ticks[1] / self._qty_div

    def depth_within_bps_ticks(self, bps: float | int | str) -> tuple[int, int] | None:
        """As ``depth_within_bps``, in quantity ticks. O(log N + levels within the band)."""
        bid, ask = self._best_bid(), self._best_ask()
        if bid is None or ask is None:
            return None
        return _analytics.depth_within_bps_ticks(bid[0], ask[0], bps, self.bids_ticks, self.asks_ticks)

    def fill(
        self,
        side: str,
        *,
        qty: float | int | str | None = None,
        notional: float | int | str | None = None,
    ) -> Fill | None:
        """Walk the book for a market ``"buy"`` (asks) or ``"sell"`` (bids) of a base ``qty``
        or a quote ``notional``. None when the side is empty. O(log N + levels walked)."""
        if side == "buy":
            top = self.asks_ticks
        elif side == "sell":
            top = self.bids_ticks
        else:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        price_scale = self._price_scale if self._price_scale is not None else 0
        qty_scale = self._qty_scale if self._qty_scale is not None else 0
        return _analytics.fill(top, price_scale, qty_scale, qty, notional)

    def checksum(self, n: int) -> int:
        """CRC-32 (zlib) of the top n bids then top n asks, best first, each ``price:qty`` in
        canonical decimal, joined by ``|``. O(log N + n)."""
        return _analytics.checksum(self.bids_str(n), self.asks_str(n))

    # ----------------------------------------------------------- conversions

    def parse_price(self, text: str | bytes) -> int:
        """Exact price ticks of ``text`` at the book's price scale (``DecimalError`` if not exact)."""
        price_scale, _ = self._scales()
        return parse_decimal(text, price_scale)

    def parse_qty(self, text: str | bytes) -> int:
        """Exact quantity ticks of ``text`` at the book's quantity scale."""
        _, qty_scale = self._scales()
        return parse_decimal(text, qty_scale)

    def price_str(self, ticks: int) -> str:
        """Canonical decimal text of a price in ticks."""
        price_scale, _ = self._scales()
        return format_decimal(operator.index(ticks), price_scale)

    def qty_str(self, ticks: int) -> str:
        """Canonical decimal text of a quantity in ticks."""
        _, qty_scale = self._scales()
        return format_decimal(operator.index(ticks), qty_scale)

    # ----------------------------------------------------------------- the rest

    def copy(self) -> OrderBook:
        """An independent copy: levels, state, IDs, scales, counters and buffer. O(N)."""
        twin = type(self).__new__(type(self))
        for name in OrderBook.__slots__:
            setattr(twin, name, getattr(self, name))
        twin._bids = self._bids.copy()  # ints are immutable: a shallow copy is independent
        twin._asks = self._asks.copy()
        twin._buffer = deque(self._buffer)  # entries are immutable tuples the book never mutates
        return twin

    def memory_bytes(self) -> int:
        """Estimated bytes held by the level storage (both SortedDicts and their int objects). O(N)."""
        return _side_bytes(self._bids) + _side_bytes(self._asks)

    def _check(self) -> None:
        """Raise AssertionError if an invariant of ``docs/book.md`` is broken. O(N)."""

        def fail(message: str) -> None:
            raise AssertionError(f"{self._symbol} ({self._state.name}): {message}")

        bid_prices = list(self._bids.keys())
        ask_prices = list(self._asks.keys())
        # SortedDict keeps keys ascending: bids read from the end are strictly descending
        for name, prices in (("bid", bid_prices), ("ask", ask_prices)):
            for lower, higher in itertools.pairwise(prices):
                if not lower < higher:
                    fail(f"{name} prices not strictly ordered: {lower} then {higher}")
        for name, side in (("bid", self._bids), ("ask", self._asks)):
            for price, qty in side.items():
                if not isinstance(price, int) or not isinstance(qty, int):
                    fail(f"{name} level {price!r}: {qty!r} is not int ticks")
                if qty <= 0:
                    fail(f"{name} level at {price} has quantity {qty} <= 0")
        for name, side, prices in (("bid", self._bids, bid_prices), ("ask", self._asks, ask_prices)):
            internal_check = getattr(side, "_check", None)
            if internal_check is not None:
                internal_check()  # SortedDict's own consistency of its dict and sorted list
            if len(side) != len(prices) or len(side.items()) != len(prices):
                fail(f"{name} count {len(side)} disagrees with the storage ({len(prices)} keys)")
        if self._state is SyncState.SYNCED and bid_prices and ask_prices and bid_prices[-1] >= ask_prices[0]:
            fail(f"crossed while SYNCED: best bid {bid_prices[-1]} >= best ask {ask_prices[0]}")
        if self._max_depth > 0 and (len(bid_prices) > self._max_depth or len(ask_prices) > self._max_depth):
            fail(f"max_depth {self._max_depth} exceeded: {len(bid_prices)} bids, {len(ask_prices)} asks")
        if (bid_prices or ask_prices) and (self._price_scale is None or self._qty_scale is None):
            fail("levels present but the scales are not set")
        if len(self._buffer) > self._buffer_limit:
            fail(f"buffer holds {len(self._buffer)} events > buffer_limit {self._buffer_limit}")
        in_sync_phase = self._state in (SyncState.BRIDGING, SyncState.SYNCED)
        if in_sync_phase != (self._reason is OutOfSyncReason.NONE):
            fail(f"reason {self._reason.name} does not fit state {self._state.name}")

    def __repr__(self) -> str:
        def side(best: tuple[int, int] | None) -> str:
            if best is None:
                return "-"
            price, qty = self._level_str(best)
            return f"{price} x {qty}"

        return (
            f"<OrderBook {self._symbol} {self._market.value} {self._state.name}"
            f" bid={side(self._best_bid())} ask={side(self._best_ask())}"
            f" levels={len(self._bids)}/{len(self._asks)} id={self._last_update_id}>"
        )
