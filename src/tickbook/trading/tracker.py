"""Local order state, fed by REST answers and user-data events, keyed by order id.

An order's state reaches a program by two paths that race: the answer to the request that
placed, cancelled or queried it, and the user-data stream (spot ``executionReport`` and
``listStatus``, spec section 8.1; USD-M ``ORDER_TRADE_UPDATE``, ``TRADE_LITE`` and
``ALGO_UPDATE``, section 8.2). Either may come first: the event of a fill often beats the
answer of the request that caused it, and an answer can report a state older than the last
event (a query sent before a fill, answered after it). ``OrderTracker`` merges both into one
state per order and makes the result independent of the order in which they arrived:

* **Key.** An order is ``(market, symbol, orderId)``: order ids are sequences per symbol, so
  the same number exists on several symbols, and spot and futures number separately. A
  secondary index maps client order ids to orders (the newest one when an id was reused,
  which the exchange allows once the earlier order is closed, spec 6.1).
* **The cancel-id subtlety** (spec 8.1). On a spot cancel, the ``executionReport``'s ``c`` is
  the *cancel request's* client id and ``C`` the order's own; a ``DELETE /api/v3/order``
  answer likewise carries the order's id in ``origClientOrderId`` and the cancel's in
  ``clientOrderId``. The order keeps its own id; the cancel's is kept apart
  (``cancel_client_order_id``) and never indexed as the order's.
* **Never backwards.** Every update carries a version: ``(final, T, status rank, cumulative
  qty, sequence)`` where ``final`` says the status is terminal (FILLED, CANCELED, REJECTED,
  EXPIRED, EXPIRED_IN_MATCH: nothing follows them, so they beat anything), ``T`` is the
  transaction time (``transactTime``/``updateTime`` of an answer), the status rank orders
  PENDING_NEW < NEW < PARTIALLY_FILLED < PENDING_CANCEL within one millisecond, the
  cumulative quantity orders fills within one millisecond, and the sequence (spot execution
  id ``I``, amend ``executionId``, USD-M event time ``E``; 0 for answers) breaks the last
  ties in favour of events. Each field remembers the version that set it and only a newer
  version replaces it, so an update that lacks a field (an ACK answer, a ``TRADE_LITE``)
  never erases it and an older one never overwrites it: the final state is the same for any
  arrival order of the same updates.
* **Fills** are merged by trade id (a set, so duplicates and replays are harmless; a fill
  seen in a FULL answer and again in its ``executionReport`` is one fill).
* **Averages** are exact decimals: spot ``Z / z`` (``cummulativeQuoteQty / executedQty``);
  USD-M reports ``ap``/``avgPrice`` and, in answers that still carry it, ``cumQuote``. When
  the stream gives no cumulative quote (USD-M events), it is the sum of the fills' quote once
  the fills account for the whole executed quantity.

Order lists (spot OCO/OTO/OTOCO/OPO) and USD-M algo orders (conditional orders of the Algo
Service, spec 6.3) have their own states, versioned the same way; an algo order links to the
matching-engine order it placed when triggered (``ai``), and that order's state points back
(``algo_id``).

Callbacks (``add_callback``, ``add_list_callback``, ``add_algo_callback``) run after each
update that changed something, with the live state object: it belongs to the tracker, read
it but do not modify it. A callback that raises is logged and counted, never propagated.
Everything here runs on one thread (the event loop's); nothing blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any, Final, TypeAlias

from tickbook._types import Market
from tickbook.trading import events as ev
from tickbook.trading import models as md

__all__ = [
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "AlgoState",
    "ListState",
    "OrderState",
    "OrderTracker",
    "TrackedFill",
]

log = logging.getLogger(__name__)

# Spec 6.1 / 6.3: the statuses an order can still leave, and the ones it never leaves.
OPEN_STATUSES: Final = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED", "PENDING_CANCEL"})
FINAL_STATUSES: Final = md.FINAL_STATUSES
_STATUS_RANK: Final = {"PENDING_NEW": 0, "NEW": 1, "PARTIALLY_FILLED": 2, "PENDING_CANCEL": 3}
_FINAL_RANK: Final = 4
_NO_STATUS: Final = -1  # an update that reports no status (ACK answer, TRADE_LITE)

# Algo orders (spec 8.2 ALGO_UPDATE): NEW -> TRIGGERING -> TRIGGERED -> FINISHED, or an end.
ALGO_FINAL_STATUSES: Final = frozenset({"FINISHED", "CANCELED", "REJECTED", "EXPIRED"})
_ALGO_RANK: Final = {"NEW": 0, "TRIGGERING": 1, "TRIGGERED": 2}

# Order lists (spec 6.2): listStatusType RESPONSE -> EXEC_STARTED -> UPDATED -> ALL_DONE;
# listOrderStatus EXECUTING, then ALL_DONE or REJECT (final).
LIST_FINAL_STATUSES: Final = frozenset({"ALL_DONE", "REJECT"})
_LIST_RANK: Final = {"RESPONSE": 0, "EXEC_STARTED": 1, "UPDATED": 2, "ALL_DONE": 3}

# (final, time, rank, cumulative qty, sequence): compared as a tuple, newest is largest.
Version: TypeAlias = tuple[int, int, int, Decimal, int]
OrderKey: TypeAlias = tuple[Market, str, int]
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class TrackedFill:
    """One trade of an order. Fields a source did not give are ``None`` (a FULL answer has
    no trade time; ``TRADE_LITE`` no commission) and are completed by the other sources."""

    trade_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal | None = None
    commission_asset: str | None = None
    time: int | None = None  # transaction time, ms
    maker: bool | None = None
    realized_pnl: Decimal | None = None  # USD-M ``rp``

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty

    def merged(self, other: TrackedFill) -> TrackedFill:
        """This fill completed with what ``other`` (the same trade) knows and this lacks."""
        missing = {
            f.name: getattr(other, f.name)
            for f in fields(self)
            if getattr(self, f.name) is None and getattr(other, f.name) is not None
        }
        return replace(self, **missing) if missing else self


class _Versioned:
    """Per-field versions: a field changes only for a newer version than the one that set
    it. ``_apply`` returns whether any value changed."""

    __slots__ = ()
    _versions: dict[str, Any]

    def _apply(self, version: Any, values: Mapping[str, Any], first: Mapping[str, Any]) -> bool:
        changed = False
        versions = self._versions
        for name, value in values.items():
            if value is None:
                continue
            old = versions.get(name)
            if old is None or version > old:
                versions[name] = version
                if getattr(self, name) != value:
                    changed = True
                setattr(self, name, value)
        # Facts that never change (side, creation time, ...): the first source to give them
        # wins; every source gives the same value, so arrival order does not matter.
        for name, value in first.items():
            if value is not None and getattr(self, name) is None:
                setattr(self, name, value)
                changed = True
        return changed


@dataclass(eq=False, slots=True)
class OrderState(_Versioned):
    """What is known of one order. Owned by the tracker: read, do not modify.

    ``status`` is ``None`` while no source has reported it (an ACK answer only says the order
    was accepted); such an order counts as open. ``client_order_id`` is the order's own id,
    never a cancel request's (that one is ``cancel_client_order_id``).
    """

    market: Market
    symbol: str
    order_id: int
    client_order_id: str | None = None
    side: str | None = None
    type: str | None = None
    time_in_force: str | None = None
    status: str | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    orig_qty: Decimal | None = None
    orig_quote_qty: Decimal | None = None  # spot quoteOrderQty
    iceberg_qty: Decimal | None = None
    executed_qty: Decimal = _ZERO
    reported_cum_quote: Decimal | None = None  # spot Z / cummulativeQuoteQty, USD-M cumQuote
    reported_avg_price: Decimal | None = None  # USD-M ap / avgPrice
    order_list_id: int | None = None
    algo_id: int | None = None  # USD-M: the algo order that placed this one
    position_side: str | None = None
    reduce_only: bool | None = None
    close_position: bool | None = None
    is_working: bool | None = None
    reject_reason: str | None = None
    expiry_reason: str | None = None
    cancel_client_order_id: str | None = None
    created_time: int | None = None
    update_time: int | None = None  # the newest transaction time seen
    _fills: dict[int, TrackedFill] = field(default_factory=dict, repr=False)
    _versions: dict[str, Version] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> OrderKey:
        return (self.market, self.symbol, self.order_id)

    @property
    def is_final(self) -> bool:
        """Filled, canceled, rejected or expired: it will not change again."""
        return self.status in FINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """Not known to be closed (an order whose status is still unknown counts as open)."""
        return not self.is_final

    @property
    def fills(self) -> tuple[TrackedFill, ...]:
        """Fills seen so far, by trade id."""
        return tuple(self._fills[t] for t in sorted(self._fills))

    @property
    def remaining_qty(self) -> Decimal | None:
        return None if self.orig_qty is None else self.orig_qty - self.executed_qty

    def _current(self, name: str) -> bool:
        """The reported field was set by the same update as ``executed_qty`` (not stale)."""
        version = self._versions.get(name)
        return version is not None and version == self._versions.get("executed_qty")

    @property
    def cum_quote(self) -> Decimal | None:
        """Cumulative quote quantity: as reported alongside ``executed_qty`` (spot ``Z``),
        else the fills' sum when they account for all of ``executed_qty``."""
        if self.reported_cum_quote is not None and self._current("reported_cum_quote"):
            return self.reported_cum_quote
        if not self.executed_qty:
            return _ZERO if "executed_qty" in self._versions else None
        fills = self._fills.values()
        if sum((f.qty for f in fills), _ZERO) == self.executed_qty:
            return sum((f.quote_qty for f in fills), _ZERO)
        return None

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price, ``None`` before the first fill: spot ``Z / z`` exactly, USD-M
        the reported ``ap`` (or cumulative quote / executed when the fills give it)."""
        if not self.executed_qty:
            return None
        if self.reported_avg_price and self._current("reported_avg_price"):
            return self.reported_avg_price
        quote = self.cum_quote
        return None if quote is None else quote / self.executed_qty

    def as_dict(self) -> dict[str, Any]:
        """The public state as plain values (fills as a tuple), for comparison and logging."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        out["fills"] = self.fills
        out["cum_quote"] = self.cum_quote
        out["avg_price"] = self.avg_price
        return out

    def _add_fill(self, fill: TrackedFill) -> bool:
        old = self._fills.get(fill.trade_id)
        new = fill if old is None else old.merged(fill)
        if new is old:
            return False
        self._fills[fill.trade_id] = new
        return True


@dataclass(eq=False, slots=True)
class ListState(_Versioned):
    """A spot order list (OCO, OTO, OTOCO, OPO, OPOCO). Owned by the tracker."""

    symbol: str
    order_list_id: int
    list_client_order_id: str | None = None
    contingency_type: str | None = None
    list_status_type: str | None = None  # RESPONSE, EXEC_STARTED, UPDATED, ALL_DONE
    list_order_status: str | None = None  # EXECUTING, ALL_DONE, REJECT
    reject_reason: str | None = None
    transaction_time: int | None = None
    _legs: dict[int, str] = field(default_factory=dict, repr=False)  # order id -> client id
    _versions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict, repr=False)

    @property
    def order_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self._legs))

    @property
    def is_final(self) -> bool:
        return self.list_order_status in LIST_FINAL_STATUSES

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        out["order_ids"] = self.order_ids
        return out


@dataclass(eq=False, slots=True)
class AlgoState(_Versioned):
    """A USD-M algo (conditional) order. Owned by the tracker.

    ``actual_order_id`` is the matching-engine order placed once triggered (``ai``);
    ``actual_qty`` and ``actual_avg_price`` its fills as the algo service reports them.
    """

    symbol: str
    algo_id: int
    client_algo_id: str | None = None
    algo_type: str | None = None
    order_type: str | None = None
    side: str | None = None
    position_side: str | None = None
    time_in_force: str | None = None
    status: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool | None = None
    close_position: bool | None = None
    actual_order_id: int | None = None
    actual_qty: Decimal | None = None
    actual_avg_price: Decimal | None = None
    fail_reason: str | None = None
    created_time: int | None = None
    trigger_time: int | None = None
    update_time: int | None = None
    _versions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict, repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in ALGO_FINAL_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


Tracked: TypeAlias = OrderState | ListState | AlgoState


def _order_version(
    status: str | None, time: int | None, executed: Decimal | None, seq: int | None
) -> Version:
    if status is None:
        final, rank = 0, _NO_STATUS
    elif status in FINAL_STATUSES:
        final, rank = 1, _FINAL_RANK
    else:
        final, rank = 0, _STATUS_RANK.get(status, _STATUS_RANK["NEW"])
    return (final, time or 0, rank, executed if executed is not None else _ZERO, seq or 0)


def _positive(value: int | None) -> int | None:
    """Ids the exchange sends as -1 for "none" (orderListId, tradeId)."""
    return value if value is not None and value >= 0 else None


def _max_time(old: int | None, new: int | None) -> int | None:
    if new is None or new <= 0:
        return old
    return new if old is None else max(old, new)


class OrderTracker:
    """Order states of one account (spot, USD-M, or both), merged from answers and events.

    Feed it with ``on_response(obj)`` (any decoded answer of ``tickbook.trading.models`` that
    describes orders: ``SpotOrder``, ``OrderList``, ``CancelReplaceResponse``,
    ``AmendKeepPriorityResponse``, ``FuturesOrder``, ``AlgoOrder``, or a list of them) and
    ``on_event(evt)`` (``tickbook.trading.events``: ``ExecutionReport``, ``ListStatus``,
    ``OrderTradeUpdate``, ``TradeLite``, ``AlgoUpdate``; other events are ignored), or with
    ``apply(obj)``, which takes either and returns the states that changed.
    ``futures_market`` is the market futures answers and events belong to (USD-M by
    default; COIN-M shares the shapes).

    ``on_change`` (optional) is registered as the first order callback.
    """

    def __init__(
        self,
        *,
        futures_market: Market | str = Market.USDM,
        on_change: Callable[[OrderState], None] | None = None,
    ) -> None:
        self.futures_market = Market.parse(futures_market)
        if not self.futures_market.is_futures:
            raise ValueError(f"futures_market must be a futures market, got {self.futures_market.value}")
        self._orders: dict[OrderKey, OrderState] = {}
        self._by_id: dict[tuple[Market, int], list[OrderKey]] = {}
        self._by_client: dict[tuple[Market, str], list[OrderKey]] = {}
        self._lists: dict[tuple[str, int], ListState] = {}
        self._algos: dict[tuple[Market, int], AlgoState] = {}
        self._algo_of_order: dict[OrderKey, int] = {}
        self._callbacks: list[Callable[[OrderState], None]] = []
        self._list_callbacks: list[Callable[[ListState], None]] = []
        self._algo_callbacks: list[Callable[[AlgoState], None]] = []
        self.updates = 0  # updates received
        self.unchanged = 0  # updates that changed nothing (duplicates, stale)
        self.callback_errors = 0
        if on_change is not None:
            self._callbacks.append(on_change)

    # ------------------------------------------------------------------ callbacks

    def add_callback(self, callback: Callable[[OrderState], None]) -> Callable[[], None]:
        """Call ``callback(state)`` after every change of an order; returns a remover."""
        return _register(self._callbacks, callback)

    def add_list_callback(self, callback: Callable[[ListState], None]) -> Callable[[], None]:
        return _register(self._list_callbacks, callback)

    def add_algo_callback(self, callback: Callable[[AlgoState], None]) -> Callable[[], None]:
        return _register(self._algo_callbacks, callback)

    def _notify(self, changed: list[Tracked]) -> None:
        for state in changed:
            callbacks: list[Callable[[Any], None]]
            if isinstance(state, OrderState):
                callbacks = self._callbacks
            elif isinstance(state, ListState):
                callbacks = self._list_callbacks
            else:
                callbacks = self._algo_callbacks
            for callback in list(callbacks):
                try:
                    callback(state)
                except Exception:
                    self.callback_errors += 1
                    log.exception("order tracker callback %r failed", callback)

    # ------------------------------------------------------------------ queries

    def get(
        self, order_id: int, symbol: str | None = None, market: Market | str | None = None
    ) -> OrderState | None:
        """The order with this id (``symbol``/``market`` narrow it down; ids repeat across
        symbols). Raises ``LookupError`` when several tracked orders match."""
        if symbol is not None and market is not None:
            return self._orders.get((Market.parse(market), symbol, order_id))
        found = [
            self._orders[key]
            for m in self._markets(market)
            for key in self._by_id.get((m, order_id), ())
            if symbol is None or key[1] == symbol
        ]
        if len(found) > 1:
            raise LookupError(f"order id {order_id} is tracked on several symbols/markets: pass symbol=")
        return found[0] if found else None

    def by_client_id(
        self, client_order_id: str, symbol: str | None = None, market: Market | str | None = None
    ) -> OrderState | None:
        """The order whose own client id this is; when the id was reused (allowed once the
        earlier order closed), the open one, else the newest."""
        found = [
            self._orders[key]
            for m in self._markets(market)
            for key in self._by_client.get((m, client_order_id), ())
            if symbol is None or key[1] == symbol
        ]
        if not found:
            return None
        return max(found, key=lambda s: (s.is_open, s.update_time or 0, s.order_id))

    def open_orders(self, symbol: str | None = None, market: Market | str | None = None) -> list[OrderState]:
        """Orders not known to be closed, oldest first."""
        markets = set(self._markets(market))
        return sorted(
            (
                s
                for s in self._orders.values()
                if s.is_open and s.market in markets and (symbol is None or s.symbol == symbol)
            ),
            key=lambda s: (s.created_time or s.update_time or 0, s.order_id),
        )

    def orders(self) -> list[OrderState]:
        return list(self._orders.values())

    def order_list(self, order_list_id: int, symbol: str | None = None) -> ListState | None:
        found = [s for (sym, lid), s in self._lists.items() if lid == order_list_id and symbol in (None, sym)]
        if len(found) > 1:
            raise LookupError(f"order list {order_list_id} is tracked on several symbols: pass symbol=")
        return found[0] if found else None

    def algo(self, algo_id: int, market: Market | str | None = None) -> AlgoState | None:
        return self._algos.get((Market.parse(market) if market else self.futures_market, algo_id))

    def algo_order(self, algo_id: int, market: Market | str | None = None) -> OrderState | None:
        """The order an algo order placed when it triggered, once known and tracked."""
        algo = self.algo(algo_id, market)
        if algo is None or algo.actual_order_id is None:
            return None
        return self._orders.get((self.futures_market, algo.symbol, algo.actual_order_id))

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[OrderState]:
        return iter(list(self._orders.values()))

    def forget_closed(self, before_ms: int | None = None) -> int:
        """Drop final orders (last updated before ``before_ms``, or all); returns how many.

        A late duplicate of a forgotten order's event would create a fresh entry, so keep
        orders at least as long as events can lag behind (seconds, not days)."""
        gone = [
            key
            for key, s in self._orders.items()
            if s.is_final and (before_ms is None or (s.update_time or 0) < before_ms)
        ]
        for key in gone:
            state = self._orders.pop(key)
            _unindex(self._by_id, (key[0], key[2]), key)
            if state.client_order_id is not None:
                _unindex(self._by_client, (key[0], state.client_order_id), key)
            self._algo_of_order.pop(key, None)
        return len(gone)

    def _markets(self, market: Market | str | None) -> tuple[Market, ...]:
        if market is not None:
            return (Market.parse(market),)
        return (Market.SPOT, self.futures_market)

    # ------------------------------------------------------------------ feeding

    def on_response(self, obj: Any) -> None:
        """Merge a decoded REST (or WebSocket API) answer (the trading classes call this)."""
        self.apply(obj)

    def on_event(self, event: Any) -> None:
        """Merge a decoded user-data event (the user-data streams call this); events that say
        nothing about orders (balances, for instance) are ignored."""
        self.apply(event)

    def apply(self, obj: Any) -> list[Tracked]:
        """Merge an answer or an event, run the callbacks, and return the states it changed
        (empty for a duplicate, a stale update or an event about something else)."""
        changed: list[Tracked] = []
        if isinstance(obj, ev.UserEvent | ev.UnknownEvent):
            self._event(obj, changed)
        else:
            self._response(obj, changed)
        self._notify(changed)
        return changed

    def _event(self, event: Any, changed: list[Tracked]) -> None:
        if isinstance(event, ev.ExecutionReport):
            self._execution_report(event, changed)
        elif isinstance(event, ev.ListStatus):
            self._list_status(event, changed)
        elif isinstance(event, ev.OrderTradeUpdate):
            self._order_trade_update(event, changed)
        elif isinstance(event, ev.TradeLite):
            self._trade_lite(event, changed)
        elif isinstance(event, ev.AlgoUpdate):
            self._algo_update(event, changed)

    def _response(self, obj: Any, changed: list[Tracked]) -> None:
        if isinstance(obj, list | tuple):
            for item in obj:
                self._response(item, changed)
        elif isinstance(obj, md.SpotOrder):
            self._spot_order(obj, changed)
        elif isinstance(obj, md.FuturesOrder):
            self._futures_order(obj, changed)
        elif isinstance(obj, md.OrderList):
            self._order_list(obj, changed)
        elif isinstance(obj, md.CancelReplaceResponse):
            for half in (obj.cancel_order, obj.new_order):
                if half is not None:
                    self._spot_order(half, changed)
        elif isinstance(obj, md.AmendKeepPriorityResponse):
            self._amended(obj, changed)
            if obj.list_status is not None:
                self._order_list(obj.list_status, changed)
        elif isinstance(obj, md.AlgoOrder):
            self._algo_order(obj, changed)
        elif isinstance(obj, md.ApiMessage) or obj is None:
            pass  # the failed entry of a batch, or an absent half: no order to track
        else:
            raise TypeError(f"the order tracker does not take {type(obj).__name__} answers")

    # -- the order map

    def _state(self, market: Market, symbol: str, order_id: int) -> OrderState:
        key = (market, symbol, order_id)
        state = self._orders.get(key)
        if state is None:
            state = self._orders[key] = OrderState(market, symbol, order_id)
            self._by_id.setdefault((market, order_id), []).append(key)
            algo_id = self._algo_of_order.get(key)
            if algo_id is not None:
                state.algo_id = algo_id
        return state

    def _merge(
        self,
        market: Market,
        symbol: str,
        order_id: int,
        version: Version,
        values: Mapping[str, Any],
        first: Mapping[str, Any],
        fills: Iterable[TrackedFill] = (),
        time: int | None = None,
        changed: list[Tracked] | None = None,
    ) -> OrderState:
        self.updates += 1
        state = self._state(market, symbol, order_id)
        had_client_id = state.client_order_id
        dirty = state._apply(version, values, first)
        for fill in fills:
            dirty |= state._add_fill(fill)
        new_time = _max_time(state.update_time, time)
        if new_time != state.update_time:
            state.update_time = new_time
            dirty = True
        if state.client_order_id is not None and state.client_order_id != had_client_id:
            index = self._by_client.setdefault((market, state.client_order_id), [])
            if state.key not in index:
                index.append(state.key)
        if dirty:
            if changed is not None and state not in changed:
                changed.append(state)
        else:
            self.unchanged += 1
        return state

    # -- spot

    def _spot_order(self, o: md.SpotOrder, changed: list[Tracked]) -> None:
        # A cancel's answer names the order in origClientOrderId and the cancel in
        # clientOrderId (spec 6.1); every other answer has the order's id in clientOrderId.
        if o.orig_client_order_id:
            own_id, cancel_id = o.orig_client_order_id, o.client_order_id
        else:
            own_id, cancel_id = o.client_order_id, None
        time = o.transact_time if o.transact_time is not None else o.update_time
        executed = o.executed_qty
        fills = [
            TrackedFill(f.trade_id, f.price, f.qty, f.commission, f.commission_asset)
            for f in o.fills
            if f.trade_id is not None and f.trade_id >= 0
        ]
        self._merge(
            Market.SPOT,
            o.symbol,
            o.order_id,
            _order_version(o.status, time, executed, 0),
            {
                "status": o.status,
                "executed_qty": executed,
                "reported_cum_quote": o.cummulative_quote_qty,
                "orig_qty": o.orig_qty,
                "orig_quote_qty": o.orig_quote_order_qty,
                "price": o.price,
                "stop_price": o.stop_price,
                "iceberg_qty": o.iceberg_qty,
                "type": o.type,
                "time_in_force": o.time_in_force,
                "is_working": o.is_working,
                "expiry_reason": o.expiry_reason,
            },
            {
                "client_order_id": own_id,
                "cancel_client_order_id": cancel_id,
                "side": o.side,
                "order_list_id": _positive(o.order_list_id),
                "created_time": o.time,
            },
            fills,
            time if time is not None else o.time,
            changed,
        )

    def _amended(self, r: md.AmendKeepPriorityResponse, changed: list[Tracked]) -> None:
        o = r.amended_order
        self._merge(
            Market.SPOT,
            o.symbol,
            o.order_id,
            # The amend's executionId is the ``I`` of its REPLACED executionReport: the two
            # carry the same version and agree.
            _order_version(o.status, r.transact_time, o.executed_qty, r.execution_id),
            {
                "status": o.status,
                "executed_qty": o.executed_qty,
                "reported_cum_quote": o.cumulative_quote_qty,
                "orig_qty": o.qty,
                "price": o.price,
                "stop_price": o.stop_price,
                "iceberg_qty": o.iceberg_qty,
                "type": o.type,
                "time_in_force": o.time_in_force,
            },
            {
                "client_order_id": o.orig_client_order_id or o.client_order_id,
                "side": o.side,
                "order_list_id": _positive(o.order_list_id),
            },
            (),
            r.transact_time,
            changed,
        )

    def _execution_report(self, e: ev.ExecutionReport, changed: list[Tracked]) -> None:
        if e.order_id < 0:
            return  # a rejection that never became an order: nothing to key it on
        fills = []
        trade_id = _positive(e.trade_id)
        if e.execution_type == "TRADE" and trade_id is not None:
            fills.append(
                TrackedFill(
                    trade_id,
                    e.last_price,
                    e.last_qty,
                    e.commission,
                    e.commission_asset,
                    e.transaction_time,
                    e.is_maker,
                )
            )
        # Spec 8.1: on CANCELED, c is the cancel request's id and C the order's own.
        own_id = e.order_client_id
        cancel_id = e.client_order_id if own_id != e.client_order_id else None
        self._merge(
            Market.SPOT,
            e.symbol,
            e.order_id,
            _order_version(
                e.order_status, e.transaction_time, e.cumulative_qty, e.execution_id or e.event_time
            ),
            {
                "status": e.order_status,
                "executed_qty": e.cumulative_qty,
                "reported_cum_quote": e.cumulative_quote_qty,
                "orig_qty": e.quantity,
                "orig_quote_qty": e.quote_order_qty,
                "price": e.price,
                "stop_price": e.stop_price,
                "iceberg_qty": e.iceberg_qty,
                "type": e.order_type,
                "time_in_force": e.time_in_force,
                "is_working": e.is_working,
                "reject_reason": e.reject_reason,
                "expiry_reason": e.expiry_reason,
            },
            {
                "client_order_id": own_id,
                "cancel_client_order_id": cancel_id,
                "side": e.side,
                "order_list_id": _positive(e.order_list_id),
                "created_time": e.order_creation_time,
            },
            fills,
            e.transaction_time,
            changed,
        )

    # -- spot order lists

    def _list(
        self,
        symbol: str,
        order_list_id: int,
        version: tuple[int, int, int, int],
        values: Mapping[str, Any],
        first: Mapping[str, Any],
        legs: Iterable[tuple[str, int, str]],
        changed: list[Tracked],
    ) -> None:
        self.updates += 1
        key = (symbol, order_list_id)
        state = self._lists.get(key)
        if state is None:
            state = self._lists[key] = ListState(symbol, order_list_id)
        dirty = state._apply(version, values, first)
        for leg_symbol, order_id, client_id in legs:
            if order_id not in state._legs:
                state._legs[order_id] = client_id
                dirty = True
            # The list's answer names its legs before any of their own reports arrive.
            self._merge(
                Market.SPOT,
                leg_symbol,
                order_id,
                _order_version(None, None, None, None),
                {},
                {"client_order_id": client_id, "order_list_id": order_list_id},
                changed=changed,
            )
        if dirty:
            changed.append(state)
        else:
            self.unchanged += 1

    @staticmethod
    def _list_version(
        status: str | None, status_type: str | None, time: int | None, seq: int
    ) -> tuple[int, int, int, int]:
        final = 1 if status in LIST_FINAL_STATUSES else 0
        return (final, time or 0, _LIST_RANK.get(status_type or "", -1), seq)

    def _order_list(self, r: md.OrderList, changed: list[Tracked]) -> None:
        for report in r.order_reports:
            self._spot_order(report, changed)
        self._list(
            r.symbol,
            r.order_list_id,
            self._list_version(r.list_order_status, r.list_status_type, r.transaction_time, 0),
            {
                "list_status_type": r.list_status_type,
                "list_order_status": r.list_order_status,
                "transaction_time": r.transaction_time,
            },
            {"list_client_order_id": r.list_client_order_id, "contingency_type": r.contingency_type},
            [(leg.symbol, leg.order_id, leg.client_order_id) for leg in r.orders],
            changed,
        )

    def _list_status(self, e: ev.ListStatus, changed: list[Tracked]) -> None:
        self._list(
            e.symbol,
            e.order_list_id,
            self._list_version(e.list_order_status, e.list_status_type, e.transaction_time, e.event_time),
            {
                "list_status_type": e.list_status_type,
                "list_order_status": e.list_order_status,
                "transaction_time": e.transaction_time,
                "reject_reason": e.list_reject_reason,
            },
            {"list_client_order_id": e.list_client_order_id, "contingency_type": e.contingency_type},
            [(leg.symbol, leg.order_id, leg.client_order_id) for leg in e.orders],
            changed,
        )

    # -- futures

    def _futures_order(self, o: md.FuturesOrder, changed: list[Tracked]) -> None:
        executed = o.executed_qty if o.executed_qty is not None else o.cum_qty
        self._merge(
            self.futures_market,
            o.symbol,
            o.order_id,
            _order_version(o.status, o.update_time, executed, 0),
            {
                "status": o.status,
                "executed_qty": executed,
                "reported_cum_quote": o.cum_quote,
                "reported_avg_price": o.avg_price,
                "orig_qty": o.orig_qty,
                "price": o.price,
                "stop_price": o.stop_price,
                "type": o.type,
                "time_in_force": o.time_in_force,
                "reduce_only": o.reduce_only,
                "close_position": o.close_position,
            },
            {
                "client_order_id": o.client_order_id,
                "side": o.side,
                "position_side": o.position_side,
                "created_time": o.time,
            },
            (),
            o.update_time if o.update_time is not None else o.time,
            changed,
        )

    def _order_trade_update(self, e: ev.OrderTradeUpdate, changed: list[Tracked]) -> None:
        o = e.order
        time = o.trade_time or e.transaction_time
        fills = []
        trade_id = _positive(o.trade_id)
        if o.execution_type in ("TRADE", "CALCULATED") and trade_id and o.last_qty:
            fills.append(
                TrackedFill(
                    trade_id,
                    o.last_price,
                    o.last_qty,
                    o.commission,
                    o.commission_asset,
                    time,
                    o.is_maker,
                    o.realized_profit,
                )
            )
        self._merge(
            self.futures_market,
            o.symbol,
            o.order_id,
            # Events of one connection are ordered by E (spec 8.2): it breaks the ties.
            _order_version(o.order_status, time, o.cumulative_qty, e.event_time),
            {
                "status": o.order_status,
                "executed_qty": o.cumulative_qty,
                "reported_avg_price": o.average_price,
                "orig_qty": o.quantity,
                "price": o.price,
                "stop_price": o.stop_price,
                "type": o.order_type,
                "time_in_force": o.time_in_force,
                "reduce_only": o.reduce_only,
                "close_position": o.close_position,
                "expiry_reason": o.expiry_reason,
            },
            {"client_order_id": o.client_order_id, "side": o.side, "position_side": o.position_side},
            fills,
            time,
            changed,
        )

    def _trade_lite(self, e: ev.TradeLite, changed: list[Tracked]) -> None:
        # A fill ahead of its ORDER_TRADE_UPDATE: no status or cumulative quantity, so it
        # only adds the fill (merged with the full event's by trade id).
        fills = []
        if _positive(e.trade_id) is not None and e.last_qty:
            fills.append(
                TrackedFill(e.trade_id, e.last_price, e.last_qty, time=e.transaction_time, maker=e.is_maker)
            )
        self._merge(
            self.futures_market,
            e.symbol,
            e.order_id,
            _order_version(None, e.transaction_time, None, e.event_time),
            {"orig_qty": e.quantity, "price": e.price},
            {"client_order_id": e.client_order_id, "side": e.side},
            fills,
            e.transaction_time,
            changed,
        )

    # -- futures algo orders

    def _algo(
        self,
        symbol: str,
        algo_id: int,
        version: tuple[int, int, int, int],
        values: Mapping[str, Any],
        first: Mapping[str, Any],
        time: int | None,
        changed: list[Tracked],
    ) -> None:
        self.updates += 1
        key = (self.futures_market, algo_id)
        state = self._algos.get(key)
        if state is None:
            state = self._algos[key] = AlgoState(symbol, algo_id)
        dirty = state._apply(version, values, first)
        new_time = _max_time(state.update_time, time)
        if new_time != state.update_time:
            state.update_time = new_time
            dirty = True
        if state.actual_order_id is not None:
            order_key = (self.futures_market, symbol, state.actual_order_id)
            self._algo_of_order[order_key] = algo_id
            order = self._orders.get(order_key)
            if order is not None and order.algo_id != algo_id:
                order.algo_id = algo_id
                changed.append(order)
        if dirty:
            changed.append(state)
        else:
            self.unchanged += 1

    @staticmethod
    def _algo_version(status: str | None, time: int | None, seq: int) -> tuple[int, int, int, int]:
        if status in ALGO_FINAL_STATUSES:
            return (1, time or 0, 3, seq)
        return (0, time or 0, _ALGO_RANK.get(status or "", -1), seq)

    def _algo_order(self, r: md.AlgoOrder, changed: list[Tracked]) -> None:
        time = r.update_time if r.update_time else r.create_time
        self._algo(
            r.symbol,
            r.algo_id,
            self._algo_version(r.algo_status, time, 0),
            {
                "status": r.algo_status,
                "quantity": r.quantity,
                "price": r.price,
                "trigger_price": r.trigger_price,
                "order_type": r.order_type,
                "time_in_force": r.time_in_force,
                "reduce_only": r.reduce_only,
                "close_position": r.close_position,
                "actual_avg_price": r.actual_price or None,
                "trigger_time": r.trigger_time or None,
            },
            {
                "client_algo_id": r.client_algo_id,
                "algo_type": r.algo_type,
                "side": r.side,
                "position_side": r.position_side,
                "created_time": r.create_time,
                "actual_order_id": r.actual_order_id or None,
            },
            time,
            changed,
        )

    def _algo_update(self, e: ev.AlgoUpdate, changed: list[Tracked]) -> None:
        o = e.order
        self._algo(
            o.symbol,
            o.algo_id,
            self._algo_version(o.algo_status, e.transaction_time, e.event_time),
            {
                "status": o.algo_status,
                "quantity": o.quantity,
                "price": o.price,
                "trigger_price": o.trigger_price,
                "order_type": o.order_type,
                "time_in_force": o.time_in_force,
                "reduce_only": o.reduce_only,
                "close_position": o.close_position,
                "actual_qty": o.actual_qty or None,
                "actual_avg_price": o.actual_avg_price or None,
                "fail_reason": o.fail_reason or None,
                "trigger_time": o.trigger_time or None,
            },
            {
                "client_algo_id": o.client_algo_id,
                "algo_type": o.algo_type,
                "side": o.side,
                "position_side": o.position_side,
                # The triggered order's id never changes once given (0/"" before).
                "actual_order_id": o.actual_order_id or None,
            },
            e.transaction_time,
            changed,
        )


def _register(callbacks: list[Any], callback: Any) -> Callable[[], None]:
    callbacks.append(callback)

    def remove() -> None:
        if callback in callbacks:
            callbacks.remove(callback)

    return remove


def _unindex(index: dict[Any, list[OrderKey]], name: Any, key: OrderKey) -> None:
    keys = index.get(name)
    if keys and key in keys:
        keys.remove(key)
        if not keys:
            del index[name]
