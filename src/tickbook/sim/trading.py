"""The local exchange's trading side: accounts, orders, matching, positions, user-data events.

``TradingEngine`` holds no HTTP: ``routes()`` hands the REST app and the WebSocket API one
handler per endpoint (``handler(params, api_key) -> JSON-able body``, refusals raised as
``tickbook.sim.rest.ApiError`` with the exchange's status, code and message), and
``on_events`` is called by the exchange after each replay step. Response bodies and event
payloads follow binance-spec sections 6 (orders), 8 (user data) and 10 (codes).

Matching model
--------------
* The market is the replayed true book (``source.truth(symbol)``), which our orders never
  change: two clients can both take the same level, and nothing we do moves the replay.
* A marketable order (or the marketable part of a limit order) takes the levels it crosses,
  level by level at the levels' prices and sizes, best first. IOC keeps what it took and
  expires the rest; FOK takes everything or expires with nothing; MARKET orders (by
  ``quantity`` or ``quoteOrderQty``) that run out of levels end ``EXPIRED`` with what they
  got (spec 6.1). A ``quoteOrderQty`` order takes at each level the largest quantity the
  remaining quote buys (sells for), rounded down to the lot step, and stops at the first
  level it cannot take whole.
* A resting order fills when the replayed market trades through its price: a ``trade``
  event (``aggTrade`` for a symbol whose replay has no ``trade`` stream) priced strictly
  better than the order's price fills it, at the order's own price (it is the maker), up to
  the trade's quantity; a trade exactly at the order's price first eats the quantity that
  was resting ahead of the order in the true book when it started resting (queue position),
  and only the rest fills it. One trade's quantity is shared by our resting orders in price
  then time priority. For a symbol whose replay has had no trade yet, the signal is the
  true book crossing the order's price after a depth event: the opposite side's levels at
  or through the price fill it (at its price, up to those levels' total size per step).
* Stops trigger on the last trade price (the mid of the true book while a symbol has no
  trades): spot STOP_LOSS BUY / TAKE_PROFIT SELL when last >= stopPrice, STOP_LOSS SELL /
  TAKE_PROFIT BUY when last <= stopPrice. Trailing stops (``trailingDelta`` in BIPS) track
  the best price since tracking started (placement, or the stop condition being met when a
  ``stopPrice`` is also given) and trigger on a move of delta against it. A triggered
  market stop takes the book like a MARKET order; a ``*_LIMIT`` stop becomes a limit order.
  USD-M algo orders trigger per spec 6.3 on the last price (``CONTRACT_PRICE``) or the mark
  price (``MARK_PRICE``), which is the mid of the true book.

Accounts and commissions
------------------------
Each API key is one account, funded on first use from the exchange's ``balances(api_key)``.
Spot: ``free``/``locked`` per asset; a BUY limit locks ``price x qty`` quote (a market stop
BUY ``stopPrice x qty``), a SELL locks ``qty`` base; an OCO locks once for both legs.
Commission is 0.1 % maker and 0.1 % taker (``makerCommission``/``takerCommission`` 10, as
the account endpoint reports), charged in the asset received (base on a BUY, quote on a
SELL) and rounded up to 8 decimals. Futures: one-way mode (``positionSide=BOTH``), cross
margin by default, leverage 20 by default; commission 0.02 % maker and 0.05 % taker of the
notional, charged to the wallet in the margin asset; the initial margin of a new order or
position is notional / leverage; the mark price is the true book's mid. COIN-M positions
are inverse (PnL in the base coin, ``contractSize`` USD per contract).

Limits: the unfilled order count per account (spec 5.1) counts +1 per new order (2 per
OCO/OTO, 3 per OTOCO) in every ORDERS window of exchangeInfo; the first fill of a spot order
gives 1 back; over a limit the order is refused with 429 / -1015.
``order_count_headers(api_key)`` gives the ``X-MBX-ORDER-COUNT-*`` values.

Not modelled: hedge mode (``positionSide`` LONG/SHORT is refused with -4061), isolated
margin (``marginType`` is recorded and reported, margin is computed as cross), liquidation,
funding, self-trade prevention (our orders never meet each other: they only meet the
replay), pegged orders, SOR, OPO/OPOCO lists, COIN-M conditional orders. A stop that
triggers sends no event of its own: its fills (or its expiry) do.

Deterministic: time comes from ``now_ms``, ids from counters.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from tickbook._types import Market
from tickbook.limits import RateLimit, RateLimitType, WeightWindow, default_limits, order_count_header
from tickbook.sim.market import Event, MarketSource
from tickbook.sim.rest import ApiError, futures_account_body, spot_account_body

__all__ = ["COMMISSION", "Handler", "Route", "TradingEngine"]

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any], str], Any]
Route = tuple[str, str, str, Handler]

# (maker, taker) commission rates per market (see the module docstring).
COMMISSION: Final[Mapping[Market, tuple[Decimal, Decimal]]] = {
    Market.SPOT: (Decimal("0.001"), Decimal("0.001")),
    Market.USDM: (Decimal("0.0002"), Decimal("0.0005")),
    Market.COINM: (Decimal("0.0002"), Decimal("0.0005")),
}
DEFAULT_LEVERAGE: Final = 20
MAX_AMENDS: Final = 10  # MAX_NUM_ORDER_AMENDS (spec 7) when exchangeInfo does not say
MAX_BATCH: Final = 5  # POST /fapi/v1/batchOrders (spec 6.3)
MAX_ALGO_ORDERS: Final = 200  # open conditional orders per account (spec 6.3)

_Z: Final = Decimal(0)
_Q8: Final = Decimal("0.00000001")
_DECIMAL_TEXT: Final = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_SPOT_TYPES: Final = frozenset(
    {"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
)
_LIMIT_TYPES: Final = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_STOP_TYPES: Final = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
# OCO legs (spec 6.2): the types each position takes, and the take-profit side's types (one
# leg must be of these, the other a stop loss).
_OCO_ABOVE_TYPES: Final = frozenset(
    {"STOP_LOSS_LIMIT", "STOP_LOSS", "LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
)
_OCO_BELOW_TYPES: Final = frozenset(
    {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
)
_OCO_TAKE_TYPES: Final = frozenset({"LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_ALGO_TYPES: Final = frozenset(
    {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)
_STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER")
_OPEN: Final = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW"})

_SUCCESS_CANCEL_ALL: Final = {"code": 200, "msg": "The operation of cancel all open order is done."}
_INSUFFICIENT: Final = "Account has insufficient balance for requested action."
_OCO_TYPES_MSG: Final = (
    "OCO order type rejected: one leg must be a limit maker or take profit, the other a stop loss."
)
_ALGO_SWITCH_MSG: Final = (
    "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
)


# ------------------------------------------------------------------------------------ errors


def _err(code: int, msg: str, status: int = 400) -> ApiError:
    return ApiError(status, code, msg)


def _mandatory(name: str) -> ApiError:
    return _err(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _not_required(name: str) -> ApiError:
    return _err(-1106, f"Parameter '{name}' sent when not required.")


def _invalid(name: str) -> ApiError:
    return _err(-1130, f"Data sent for parameter '{name}' is not valid.")


def _rejected(msg: str) -> ApiError:
    return _err(-2010, msg)


def _error_body(exc: ApiError) -> dict[str, Any]:
    return {"code": exc.code, "msg": exc.msg}


# ------------------------------------------------------------------------------------ params


class _Params:
    """The request's parameters (already authenticated) with the exchange's parsing rules.

    REST gives text; the WebSocket API may give JSON numbers and booleans, read as their text.
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def _name(self, name: str) -> str:
        return name

    def has(self, name: str) -> bool:
        value = self.raw.get(self._name(name))
        return value is not None and value != ""

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.raw.get(self._name(name))
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def need(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise _mandatory(self._name(name))
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        text = self.text(name)
        if text is None:
            if required:
                raise _mandatory(self._name(name))
            return None
        if not _DECIMAL_TEXT.fullmatch(text):
            raise _err(
                -1100,
                f"Illegal characters found in parameter '{self._name(name)}'; "
                "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
            )
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
            raise _mandatory(self._name(name)) from None

    def integer(self, name: str, *, required: bool = False) -> int | None:
        text = self.text(name)
        if text is None:
            if required:
                raise _mandatory(self._name(name))
            return None
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise _err(
                -1100,
                f"Illegal characters found in parameter '{self._name(name)}'; "
                "legal range is '^[0-9]{1,20}$'.",
            )
        return int(text)

    def flag(self, name: str) -> bool:
        text = self.text(name)
        if text is None:
            return False
        low = text.lower()
        if low not in ("true", "false"):
            raise _invalid(self._name(name))
        return low == "true"

    def enum(self, name: str, allowed: frozenset[str] | tuple[str, ...], code: int, msg: str) -> str | None:
        text = self.text(name)
        if text is None:
            return None
        if text not in allowed:
            raise _err(code, msg)
        return text


# ------------------------------------------------------------------------------------ text


def _s8(value: Decimal) -> str:
    """Wire decimals with 8 places (spot amounts; computed PnL and margins rounded half-even)."""
    value = value.quantize(_Q8, rounding=ROUND_HALF_EVEN)
    return f"{abs(value) if value == 0 else value:f}"  # never "-0.00000000"


def _c8(value: Decimal) -> str:
    """Canonical text of ``value`` rounded to 8 places (futures prices and PnL)."""
    return _canon(value.quantize(_Q8, rounding=ROUND_HALF_EVEN))


def _canon(value: Decimal) -> str:
    if value == 0:
        return "0"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _fixed(value: Decimal, decimals: int | None) -> str:
    if decimals is None:
        return _canon(value)
    value = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    return f"{abs(value) if value == 0 else value:f}"


def _floor_step(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value // step) * step


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    """Commission on ``amount``: rounded up to 8 decimals (the exchange never undercharges)."""
    return (amount * rate).quantize(_Q8, rounding=ROUND_UP)


class _TradeProbe(msgspec.Struct):
    p: str  # price
    q: str  # quantity
    m: bool = False  # buyer is the maker (the seller took a bid)
    T: int = 0  # trade time


_TRADE_DECODER: Final = msgspec.json.Decoder(_TradeProbe)


# ------------------------------------------------------------------------------------ state


@dataclass
class _Symbol:
    """What the engine needs of one symbol's exchangeInfo object."""

    name: str
    obj: dict[str, Any]
    rules: Any  # tickbook.trading.filters.SymbolRules
    base: str
    quote: str
    margin_asset: str
    step: Decimal  # LOT_SIZE stepSize (0: none)
    market_step: Decimal  # MARKET_LOT_SIZE stepSize, else LOT_SIZE
    price_decimals: int | None  # futures pricePrecision
    qty_decimals: int | None  # futures quantityPrecision
    contract_size: Decimal  # COIN-M USD per contract (1 elsewhere)
    max_amends: int
    default_stp: str
    allowed_stp: tuple[str, ...]


@dataclass
class _Lock:
    """Funds an order holds: ``amount`` of ``asset``, shared by the legs of an OCO."""

    asset: str
    amount: Decimal
    holders: int = 1


@dataclass
class _Fill:
    trade_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    time: int
    realized: Decimal = _Z


@dataclass(eq=False)
class _Order:
    api_key: str
    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    tif: str
    price: Decimal
    qty: Decimal
    time: int
    quote_qty: Decimal = _Z
    stop_price: Decimal = _Z
    iceberg: Decimal = _Z
    trailing_delta: int | None = None
    stp: str = "NONE"
    strategy_id: int | None = None
    strategy_type: int | None = None
    status: str = "NEW"
    executed: Decimal = _Z
    cum_quote: Decimal = _Z
    update_time: int = 0
    working_time: int = -1
    working: bool = False  # on the book (a stop: triggered)
    list_id: int = -1
    expiry_reason: str | None = None
    lock: _Lock | None = None
    lock_price: Decimal = _Z
    queue_ahead: Decimal = _Z
    trail_active: bool = False
    trail_extreme: Decimal | None = None
    amends: int = 0
    first_fill_counted: bool = False
    fills: list[_Fill] = field(default_factory=list)
    # futures
    reduce_only: bool = False
    position_side: str = "BOTH"
    close_position: bool = False
    orig_type: str = ""
    price_match: str = "NONE"
    good_till: int = 0
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    realized: Decimal = _Z
    margin_rate: Decimal = _Z  # initial margin held per unit of quantity (futures)
    algo_id: int = 0  # the algo order that created it (futures)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN


@dataclass(eq=False)
class _OrderList:
    api_key: str
    list_id: int
    client_id: str
    symbol: str
    contingency: str  # OCO, OTO, OTOCO
    orders: list[_Order]
    time: int
    status_type: str = "EXEC_STARTED"
    order_status: str = "EXECUTING"
    working: _Order | None = None  # OTO/OTOCO working leg
    pending: list[_Order] = field(default_factory=list)  # OTO/OTOCO pending legs (PENDING_NEW)


@dataclass(eq=False)
class _Algo:
    api_key: str
    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    price: Decimal
    trigger_price: Decimal
    tif: str
    working_type: str
    position_side: str
    reduce_only: bool
    close_position: bool
    price_protect: bool
    price_match: str
    stp: str
    activate_price: Decimal | None
    callback_rate: Decimal | None
    good_till: int
    time: int
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order: _Order | None = None
    activated: bool = False
    extreme: Decimal | None = None


@dataclass
class _Position:
    amount: Decimal = _Z  # signed: > 0 long, < 0 short
    entry: Decimal = _Z
    realized: Decimal = _Z  # accumulated realized PnL ("cr")
    update_time: int = 0


@dataclass
class _Account:
    api_key: str
    free: dict[str, Decimal]
    locked: dict[str, Decimal]
    trades: list[tuple[_Order, _Fill]] = field(default_factory=list)
    update_time: int = 0
    # futures
    positions: dict[str, _Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_type: dict[str, str] = field(default_factory=dict)
    windows: list[tuple[RateLimit, WeightWindow]] = field(default_factory=list)


class TradingEngine:
    """Accounts, orders and matching of one market of the local exchange (module docstring)."""

    def __init__(
        self,
        market: Market,
        source: MarketSource,
        *,
        now_ms: Callable[[], int],
        balances: Callable[[str], Mapping[str, str]],
    ) -> None:
        self.market = market
        self.futures = market.is_futures
        self.inverse = market is Market.COINM
        self._source = source
        self._now = now_ms
        self._balances = balances
        self._maker_rate, self._taker_rate = COMMISSION[market]
        self._symbols: dict[str, _Symbol] | None = None
        self._order_limits: tuple[RateLimit, ...] | None = None
        self._accounts: dict[str, _Account] = {}
        self._orders: dict[int, _Order] = {}
        self._open: dict[str, list[_Order]] = {}  # symbol -> open orders, in placement order
        self._lists: dict[int, _OrderList] = {}
        self._algos: dict[int, _Algo] = {}
        self._listeners: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._last: dict[str, Decimal] = {}  # last trade price per symbol
        self._last_raw: dict[str, bytes] = {}  # last trade payload, parsed on demand
        self._trade_kind: dict[str, str] = {}  # the stream a symbol's trades come from
        self._dirty: dict[str, set[str]] = {}  # spot assets changed per account, not yet reported
        self._amendments: dict[int, list[dict[str, Any]]] = {}
        self._cancel_ids: dict[int, str] = {}  # orderId -> the client id of the request that canceled it
        self._good_till: set[_Order] = set()  # open futures GTD orders
        self._next_order = 1
        self._next_trade = 1
        self._next_list = 1
        self._next_algo = 1
        self._next_exec = 1
        self._next_client = 1

    # ================================================================== plumbing

    def routes(self) -> list[Route]:
        """``(http method, path, WS-API method or "", handler)`` for every trading endpoint."""
        if self.market is Market.SPOT:
            p = "/api/v3"
            return [
                ("POST", f"{p}/order", "order.place", self.new_order),
                ("POST", f"{p}/order/test", "order.test", self.test_order),
                ("GET", f"{p}/order", "order.status", self.query_order),
                ("DELETE", f"{p}/order", "order.cancel", self.cancel_order),
                ("POST", f"{p}/order/cancelReplace", "order.cancelReplace", self.cancel_replace),
                (
                    "PUT",
                    f"{p}/order/amend/keepPriority",
                    "order.amend.keepPriority",
                    self.amend_keep_priority,
                ),
                ("GET", f"{p}/order/amendments", "order.amendments", self.order_amendments),
                ("GET", f"{p}/openOrders", "openOrders.status", self.open_orders),
                ("DELETE", f"{p}/openOrders", "openOrders.cancelAll", self.cancel_open_orders),
                ("GET", f"{p}/allOrders", "allOrders", self.all_orders),
                ("POST", f"{p}/orderList/oco", "orderList.place.oco", self.new_oco),
                ("POST", f"{p}/orderList/oto", "orderList.place.oto", self.new_oto),
                ("POST", f"{p}/orderList/otoco", "orderList.place.otoco", self.new_otoco),
                ("DELETE", f"{p}/orderList", "orderList.cancel", self.cancel_order_list),
                ("GET", f"{p}/orderList", "orderList.status", self.query_order_list),
                ("GET", f"{p}/openOrderList", "openOrderLists.status", self.open_order_lists),
                ("GET", f"{p}/allOrderList", "allOrderLists", self.all_order_lists),
                ("GET", f"{p}/account", "account.status", self.spot_account),
                ("GET", f"{p}/account/commission", "account.commission", self.account_commission),
                ("GET", f"{p}/myTrades", "myTrades", self.my_trades),
                ("GET", f"{p}/rateLimit/order", "account.rateLimits.orders", self.order_rate_limits),
            ]
        p = "/fapi" if self.market is Market.USDM else "/dapi"
        routes: list[Route] = [
            ("POST", f"{p}/v1/order", "order.place", self.f_new_order),
            ("PUT", f"{p}/v1/order", "order.modify", self.f_modify_order),
            ("DELETE", f"{p}/v1/order", "order.cancel", self.f_cancel_order),
            ("GET", f"{p}/v1/order", "order.status", self.f_query_order),
            ("GET", f"{p}/v1/openOrder", "", self.f_query_open_order),
            ("POST", f"{p}/v1/batchOrders", "", self.f_batch_orders),
            ("DELETE", f"{p}/v1/allOpenOrders", "", self.f_cancel_all),
            ("GET", f"{p}/v1/openOrders", "", self.f_open_orders),
            ("GET", f"{p}/v1/allOrders", "", self.f_all_orders),
            ("GET", f"{p}/v1/userTrades", "", self.f_user_trades),
            ("POST", f"{p}/v1/leverage", "", self.f_leverage),
            ("POST", f"{p}/v1/marginType", "", self.f_margin_type),
            ("GET", f"{p}/v1/rateLimit/order", "", self.f_order_rate_limits),
        ]
        if self.market is Market.USDM:
            routes += [
                ("POST", f"{p}/v1/algoOrder", "algoOrder.place", self.f_new_algo),
                ("DELETE", f"{p}/v1/algoOrder", "algoOrder.cancel", self.f_cancel_algo),
                ("GET", f"{p}/v1/algoOrder", "", self.f_query_algo),
                ("GET", f"{p}/v1/openAlgoOrders", "", self.f_open_algos),
                ("DELETE", f"{p}/v1/algoOpenOrders", "", self.f_cancel_all_algos),
                ("GET", f"{p}/v2/positionRisk", "account.position", self.f_position_risk_v2),
                ("GET", f"{p}/v3/positionRisk", "v2/account.position", self.f_position_risk_v3),
                ("GET", f"{p}/v2/account", "account.status", self.f_account_v2),
                ("GET", f"{p}/v3/account", "v2/account.status", self.f_account_v3),
                ("GET", f"{p}/v2/balance", "account.balance", self.f_balance),
                ("GET", f"{p}/v3/balance", "v2/account.balance", self.f_balance),
            ]
        else:
            routes += [
                ("GET", f"{p}/v1/positionRisk", "account.position", self.f_position_risk_v2),
                ("GET", f"{p}/v1/account", "account.status", self.f_account_v2),
                ("GET", f"{p}/v1/balance", "account.balance", self.f_balance),
            ]
        return routes

    def add_listener(self, api_key: str, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Deliver ``api_key``'s user-data events (wire dicts, as Binance sends them) to
        ``callback``; returns the function that stops the delivery."""
        callbacks = self._listeners.setdefault(api_key, [])
        callbacks.append(callback)

        def remove() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return remove

    def _emit(self, api_key: str, event: dict[str, Any]) -> None:
        for callback in list(self._listeners.get(api_key, ())):
            try:
                callback(event)
            except Exception:  # a broken listener must not break matching for everyone
                log.exception("user-data listener failed")

    def order_count_headers(self, api_key: str) -> dict[str, str]:
        """``X-MBX-ORDER-COUNT-10S`` etc.: the account's unfilled order count per window."""
        account = self._account(api_key)
        now = self._now()
        return {
            order_count_header(limit): str(window.used(api_key, now)) for limit, window in account.windows
        }

    # ------------------------------------------------------------------ symbols and accounts

    def _symbol_table(self) -> dict[str, _Symbol]:
        if self._symbols is None:
            from tickbook.trading.filters import SymbolRules

            info = json.loads(self._source.exchange_info())
            table: dict[str, _Symbol] = {}
            for obj in info.get("symbols", []):
                name = str(obj.get("symbol", ""))
                filters = {f.get("filterType"): f for f in obj.get("filters", [])}
                lot = filters.get("LOT_SIZE", {})
                mlot = filters.get("MARKET_LOT_SIZE", {})
                step = Decimal(str(lot.get("stepSize", "0")))
                mstep = Decimal(str(mlot.get("stepSize", "0"))) or step
                amends = filters.get("MAX_NUM_ORDER_AMENDS", {}).get("maxNumOrderAmends", MAX_AMENDS)
                base = str(obj.get("baseAsset", ""))
                quote = str(obj.get("quoteAsset", ""))
                default_size = 100 if name.startswith("BTC") else 10
                table[name] = _Symbol(
                    name=name,
                    obj=obj,
                    rules=SymbolRules.from_exchange_info(obj, self.market),
                    base=base,
                    quote=quote,
                    margin_asset=str(obj.get("marginAsset", base if self.inverse else quote)),
                    step=step,
                    market_step=mstep,
                    price_decimals=obj.get("pricePrecision") if self.futures else None,
                    qty_decimals=obj.get("quantityPrecision") if self.futures else None,
                    contract_size=Decimal(str(obj.get("contractSize", default_size)))
                    if self.inverse
                    else Decimal(1),
                    max_amends=int(amends),
                    default_stp=str(obj.get("defaultSelfTradePreventionMode", "NONE")),
                    allowed_stp=tuple(obj.get("allowedSelfTradePreventionModes", _STP_MODES)),
                )
            self._symbols = table
            limits = default_limits(self.market).with_exchange_info(info.get("rateLimits", []))
            self._order_limits = limits.of(RateLimitType.ORDERS)
        return self._symbols

    def _sym(self, params: _Params, *, required: bool = True) -> _Symbol | None:
        text = params.text("symbol")
        if text is None:
            if required:
                raise _mandatory("symbol")
            return None
        table = self._symbol_table()
        found = table.get(text.upper() if self.futures else text)
        if found is None:
            raise _err(-1121, "Invalid symbol.")
        return found

    def _need_sym(self, params: _Params) -> _Symbol:
        sym = self._sym(params)
        assert sym is not None
        return sym

    def _account(self, api_key: str) -> _Account:
        account = self._accounts.get(api_key)
        if account is None:
            self._symbol_table()
            free = {asset: Decimal(amount) for asset, amount in self._balances(api_key).items()}
            account = _Account(api_key, free, {asset: _Z for asset in free})
            account.windows = [(limit, WeightWindow(limit)) for limit in self._order_limits or ()]
            self._accounts[api_key] = account
        return account

    def _fmt_price(self, sym: _Symbol, value: Decimal) -> str:
        return _fixed(value, sym.price_decimals) if self.futures else _s8(value)

    def _fmt_qty(self, sym: _Symbol, value: Decimal) -> str:
        return _fixed(value, sym.qty_decimals) if self.futures else _s8(value)

    def _client_id(self, params: _Params, name: str) -> str | None:
        """A client id parameter, checked against the market's character set (spec 6.1)."""
        from tickbook.trading.errors import BinanceError
        from tickbook.trading.ids import check_client_order_id

        text = params.text(name)
        if text is None:
            return None
        try:
            return check_client_order_id(text, self.market, param=params._name(name))
        except BinanceError as exc:
            # A local refusal has no HTTP status; the exchange answers this one with 400.
            raise ApiError(400, exc.code if exc.code is not None else -1100, exc.msg) from None

    def _new_client_id(self) -> str:
        n = self._next_client
        self._next_client += 1
        return f"sim{n:019d}"  # 22 characters, like the exchange's generated ids

    # ------------------------------------------------------------------ prices

    def last_price(self, symbol: str) -> Decimal | None:
        """The last trade price of ``symbol``; the true book's mid while it has had no trade."""
        raw = self._last_raw.pop(symbol, None)
        if raw is not None:
            with contextlib.suppress(msgspec.DecodeError, InvalidOperation):
                self._last[symbol] = Decimal(_TRADE_DECODER.decode(raw).p)
        last = self._last.get(symbol)
        return last if last is not None else self.mark_price(symbol)

    def mark_price(self, symbol: str) -> Decimal | None:
        """The mid of the true book (the futures mark price of this exchange)."""
        book = self._source.truth(symbol)
        bid, ask = book.best_bid_str(), book.best_ask_str()
        if bid is None or ask is None:
            side = bid or ask
            return Decimal(side[0]) if side is not None else None
        return (Decimal(bid[0]) + Decimal(ask[0])) / 2

    def _best(self, symbol: str, side: str) -> Decimal | None:
        """Best price an order of ``side`` would take (ask for BUY, bid for SELL)."""
        book = self._source.truth(symbol)
        level = book.best_ask_str() if side == "BUY" else book.best_bid_str()
        return Decimal(level[0]) if level is not None else None

    def _levels(self, symbol: str, side: str) -> Iterator[tuple[Decimal, Decimal]]:
        """The true book's levels a ``side`` order takes, best first (fetched in growing pages)."""
        book = self._source.truth(symbol)
        n, seen = 32, 0
        while True:
            levels = book.asks_str(n) if side == "BUY" else book.bids_str(n)
            for price, qty in levels[seen:]:
                yield Decimal(price), Decimal(qty)
            if len(levels) < n:
                return
            seen, n = n, n * 4

    def _walk(
        self,
        sym: _Symbol,
        side: str,
        *,
        limit: Decimal | None = None,
        qty: Decimal | None = None,
        quote: Decimal | None = None,
    ) -> list[tuple[Decimal, Decimal]]:
        """The (price, qty) an order would take from the true book now (module docstring)."""
        out: list[tuple[Decimal, Decimal]] = []
        left_qty, left_quote = qty, quote
        for price, size in self._levels(sym.name, side):
            if limit is not None and (price > limit if side == "BUY" else price < limit):
                break
            if left_qty is not None:
                take = min(size, left_qty)
            else:
                assert left_quote is not None
                take = min(size, _floor_step(left_quote / self._unit_value(sym, price), sym.market_step))
                if take <= 0:
                    break
            out.append((price, take))
            if left_qty is not None:
                left_qty -= take
                if left_qty <= 0:
                    break
            else:
                assert left_quote is not None
                left_quote -= take * self._unit_value(sym, price)
                if take < size:
                    break
        return out

    def _unit_value(self, sym: _Symbol, price: Decimal) -> Decimal:
        """Quote value of one unit of quantity at ``price`` (COIN-M: coin value of a contract)."""
        return sym.contract_size / price if self.inverse else price

    # ================================================================== replay hook

    def on_events(self, events: list[Event]) -> None:
        """Called after each replay step: trades fill resting orders and trigger stops."""
        touched: set[str] | None = None
        for event in events:
            kind = event.kind
            if kind == "trade" or kind == "aggTrade":
                symbol = event.symbol
                stream = self._trade_kind.get(symbol)
                if stream is None:
                    stream = self._trade_kind[symbol] = kind
                elif stream != kind:
                    if kind == "aggTrade":
                        continue  # the trade stream has the same fills, finer
                    self._trade_kind[symbol] = kind  # a trade stream showed up: prefer it
                if symbol not in self._open and not self._algos:
                    self._last_raw[symbol] = event.payload  # parsed only when someone asks
                    continue
                try:
                    trade = _TRADE_DECODER.decode(event.payload)
                    price, qty = Decimal(trade.p), Decimal(trade.q)
                except (msgspec.DecodeError, InvalidOperation):
                    continue
                self._last_raw.pop(symbol, None)
                self._last[symbol] = price
                self._on_trade(symbol, price, qty, trade.m)
            elif kind == "depth":
                symbol = event.symbol
                if symbol in self._open or self._algos:
                    if touched is None:
                        touched = set()
                    touched.add(symbol)
        if touched:
            for symbol in touched:
                self._on_book(symbol)
        if self._good_till:
            self._expire_good_till()
        self._flush_accounts()

    def _expire_good_till(self) -> None:
        """Futures GTD orders expire at ``goodTillDate`` (spec 6.3)."""
        now = self._now()
        for order in list(self._good_till):
            if not order.is_open:
                self._good_till.discard(order)
            elif order.good_till <= now:
                self._good_till.discard(order)
                self._expire(order, "GTD_EXPIRED")

    def _on_trade(self, symbol: str, price: Decimal, qty: Decimal, buyer_maker: bool) -> None:
        # The orders resting before this trade: one that a stop turns into a limit order now
        # has taken the book already and must not be filled again by the trade that woke it.
        resting = [o for o in self._open.get(symbol, ()) if o.working and o.type in _LIMIT_TYPES]
        self._check_triggers(symbol, price)
        resting = [o for o in resting if o.is_open]
        if not resting:
            return
        available = qty
        # Price then time priority among our orders: one trade's quantity is shared.
        buys = sorted((o for o in resting if o.side == "BUY"), key=lambda o: (-o.price, o.order_id))
        sells = sorted((o for o in resting if o.side == "SELL"), key=lambda o: (o.price, o.order_id))
        for order in buys:
            if available <= 0 or price > order.price:
                break
            available = self._fill_resting(order, price, available, hit=buyer_maker)
        available = qty
        for order in sells:
            if available <= 0 or price < order.price:
                break
            available = self._fill_resting(order, price, available, hit=not buyer_maker)

    def _fill_resting(self, order: _Order, price: Decimal, available: Decimal, *, hit: bool) -> Decimal:
        """Fill ``order`` from a trade at ``price``; returns the trade quantity left for others."""
        if price == order.price:
            if not hit:
                return available  # the trade took the other side of the book
            if order.queue_ahead > 0:
                eaten = min(order.queue_ahead, available)
                order.queue_ahead -= eaten
                available -= eaten
                if available <= 0:
                    return _Z
        take = min(order.remaining, available)
        if take > 0:
            self._execute(order, [(order.price, take)], maker=True)
        return available - take

    def _on_book(self, symbol: str) -> None:
        """After a depth event: the book-crossing fill signal (no trades yet) and mark triggers."""
        traded = symbol in self._trade_kind
        if not traded or self._algos:
            mid = self.mark_price(symbol)
            if mid is not None:
                if not traded:
                    self._check_triggers(symbol, mid)
                elif self._algos:
                    self._check_algo_triggers(symbol, mid, mark_only=True)
        if traded:
            return
        for order in list(self._open.get(symbol, ())):
            if not (order.is_open and order.working and order.type in _LIMIT_TYPES):
                continue
            # The opposite side's levels at or through the order's price (what it would take).
            crossing = self._walk(
                self._symbol_table()[symbol], order.side, limit=order.price, qty=order.remaining
            )
            total = sum((q for _, q in crossing), _Z)
            if total > 0:
                self._execute(order, [(order.price, total)], maker=True)

    def _check_triggers(self, symbol: str, price: Decimal) -> None:
        for order in list(self._open.get(symbol, ())):
            waiting = order.is_open and not order.working and order.status != "PENDING_NEW"
            # _stop_fires also moves a trailing stop's reference: asked only of waiting stops.
            if waiting and order.type in _STOP_TYPES and self._stop_fires(order, price):
                self._trigger_stop(order)
        if self._algos:
            self._check_algo_triggers(symbol, price, mark_only=False)

    # ================================================================== spot: placement

    def _spot_order_from(
        self,
        api_key: str,
        params: _Params,
        sym: _Symbol,
        *,
        list_id: int = -1,
        side: str | None = None,
        qty: Decimal | None = None,
        allowed: frozenset[str] = _SPOT_TYPES,
    ) -> _Order:
        """Validate a new spot order's parameters (spec 6.1) into an order not yet placed."""
        side = side or params.need("side")
        if side not in ("BUY", "SELL"):
            raise _err(-1117, "Invalid side.")
        otype = params.need("type")
        if otype not in _SPOT_TYPES:
            raise _err(-1116, "Invalid orderType.")
        if otype not in allowed:
            raise _err(-1158, "Order type not supported in OCO.")
        tif = params.enum("timeInForce", ("GTC", "IOC", "FOK"), -1115, "Invalid timeInForce.")
        quantity = qty if qty is not None else params.decimal("quantity")
        quote_qty = params.decimal("quoteOrderQty")
        price = params.decimal("price")
        stop = params.decimal("stopPrice")
        iceberg = params.decimal("icebergQty")
        trailing = params.integer("trailingDelta")
        strategy_type = params.integer("strategyType")
        if strategy_type is not None and strategy_type < 1_000_000:
            raise _err(-1134, "strategyType was less than 1000000.")
        needs_price = otype in _LIMIT_TYPES
        needs_tif = otype in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
        if otype == "MARKET":
            if quantity is None and quote_qty is None:
                raise _mandatory("quantity")
            if quantity is not None and quote_qty is not None:
                raise _err(-1128, "Combination of optional parameters invalid.")
        elif quantity is None:
            raise _mandatory("quantity")
        elif quote_qty is not None:
            raise _not_required("quoteOrderQty")
        if needs_tif and tif is None:
            raise _mandatory(params._name("timeInForce"))
        if not needs_tif and tif is not None:
            # MARKET, STOP_LOSS, TAKE_PROFIT and LIMIT_MAKER take no timeInForce: the exchange
            # answers -1106 naming the parameter (an OCO leg's as e.g. 'aboveTimeInForce').
            raise _not_required(params._name("timeInForce"))
        if needs_price and price is None:
            raise _mandatory("price")
        if not needs_price and price is not None:
            raise _not_required("price")
        if otype in _STOP_TYPES:
            if stop is None and trailing is None:
                raise _err(
                    -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed."
                )
        else:
            if stop is not None:
                raise _not_required("stopPrice")
            if trailing is not None:
                raise _not_required("trailingDelta")
        if iceberg is not None and iceberg > 0:
            if otype not in _LIMIT_TYPES:
                raise _not_required("icebergQty")
            if (tif or "GTC") != "GTC":
                raise _err(-1013, "Iceberg orders must have timeInForce GTC.")
        if quantity is not None and quantity <= 0:
            raise _err(-1013, "Invalid quantity.")
        if quote_qty is not None and quote_qty <= 0:
            raise _err(-1013, "Invalid quantity.")
        if price is not None and price <= 0:
            raise _err(-1013, "Invalid price.")
        if stop is not None and stop <= 0:
            raise _err(-1013, "Stop price is invalid.")
        if trailing is not None and trailing <= 0:
            raise _err(-1013, "Trailing delta is invalid.")
        stp = params.text("selfTradePreventionMode", sym.default_stp) or "NONE"
        if stp not in sym.allowed_stp and stp != sym.default_stp:
            raise _invalid("selfTradePreventionMode")
        self._check_filters(
            sym,
            side=side,
            type=otype,
            price=price,
            quantity=quantity,
            quote_order_qty=quote_qty,
            stop_price=stop,
            iceberg_qty=iceberg,
            trailing_delta=trailing,
        )
        client = self._client_id(params, "newClientOrderId") or self._new_client_id()
        now = self._now()
        order = _Order(
            api_key=api_key,
            symbol=sym.name,
            order_id=0,
            client_id=client,
            side=side,
            type=otype,
            tif=tif or "GTC",
            price=price or _Z,
            qty=quantity if quantity is not None else _Z,
            time=now,
            quote_qty=quote_qty or _Z,
            stop_price=stop or _Z,
            iceberg=iceberg or _Z,
            trailing_delta=trailing,
            stp=stp,
            strategy_id=params.integer("strategyId"),
            strategy_type=strategy_type,
            update_time=now,
            list_id=list_id,
        )
        return order

    def _check_filters(self, sym: _Symbol, **kwargs: Any) -> None:
        """The symbol's filters (``tickbook.trading.filters``): the exchange's code on failure."""
        from tickbook.trading.errors import BinanceError

        try:
            sym.rules.check_order(reference_price=self.last_price(sym.name), **kwargs)
        except BinanceError as exc:
            # A local refusal has no HTTP status; the exchange answers filter failures with 400.
            raise ApiError(400, exc.code if exc.code is not None else -1013, exc.msg) from None

    def _check_duplicate(self, api_key: str, symbol: str, client_id: str) -> None:
        """A client id is unique among the account's open orders (spec 6.1)."""
        for order in self._open.get(symbol, ()):
            if order.api_key == api_key and order.client_id == client_id:
                if self.futures:
                    raise _err(-4116, "ClientOrderId is duplicated.")
                raise _rejected("Duplicate order sent.")
        if self.futures:
            for algo in self._algos.values():
                if algo.api_key == api_key and algo.client_id == client_id and algo.status == "NEW":
                    raise _err(-4116, "ClientOrderId is duplicated.")

    def _charge_orders(self, api_key: str, short: int, long: int | None = None) -> None:
        """Count new orders against the ORDERS limits; 429 / -1015 over one (spec 5.1)."""
        account = self._account(api_key)
        now = self._now()
        long = short if long is None else long
        for limit, window in account.windows:
            amount = short if limit.interval_ms <= 10_000 else long
            if window.would_exceed(api_key, amount, now) is not None:
                raise ApiError(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit.limit} orders per "
                    f"{limit.interval_num} {limit.interval.value}.",
                    {"Retry-After": str(WeightWindow.retry_after_s(limit, now))},
                )
        for limit, window in account.windows:
            window.charge(api_key, short if limit.interval_ms <= 10_000 else long, now)

    def _first_fill(self, order: _Order) -> None:
        """Spot: the first fill of an order gives one unit of the unfilled count back."""
        if order.first_fill_counted or self.futures:
            return
        order.first_fill_counted = True
        account = self._account(order.api_key)
        now = self._now()
        for _, window in account.windows:
            window.charge(order.api_key, -1, now)

    def _lock_for(self, sym: _Symbol, order: _Order) -> tuple[str, Decimal, Decimal]:
        """(asset, amount, price) a spot order locks while open (module docstring)."""
        if order.side == "SELL":
            return sym.base, order.qty, _Z
        lock_price = order.price if order.type in _LIMIT_TYPES else order.stop_price
        if lock_price <= 0 and order.trailing_delta is not None:
            lock_price = self.last_price(sym.name) or _Z
        return sym.quote, lock_price * order.qty, lock_price

    def _stop_fires(self, order: _Order, price: Decimal) -> bool:
        """Whether a spot stop triggers at ``price`` (spec 6.1 trigger directions, trailing)."""
        up = (order.type.startswith("STOP_LOSS") and order.side == "BUY") or (
            order.type.startswith("TAKE_PROFIT") and order.side == "SELL"
        )
        condition = (
            (price >= order.stop_price if up else price <= order.stop_price) if order.stop_price > 0 else True
        )
        if order.trailing_delta is None:
            return condition
        if not order.trail_active:
            if not condition:
                return False
            order.trail_active = True
            order.trail_extreme = price
            return False
        extreme = order.trail_extreme if order.trail_extreme is not None else price
        delta = Decimal(order.trailing_delta) / Decimal(10_000)
        if order.side == "SELL":
            extreme = max(extreme, price)
            order.trail_extreme = extreme
            return price <= extreme * (1 - delta)
        extreme = min(extreme, price)
        order.trail_extreme = extreme
        return price >= extreme * (1 + delta)

    def _would_trigger(self, order: _Order) -> bool:
        if order.stop_price <= 0:
            return False
        last = self.last_price(order.symbol)
        if last is None:
            return False
        up = (order.type.startswith("STOP_LOSS") and order.side == "BUY") or (
            order.type.startswith("TAKE_PROFIT") and order.side == "SELL"
        )
        return last >= order.stop_price if up else last <= order.stop_price

    def _precheck(self, sym: _Symbol, order: _Order) -> None:
        """The matching engine's refusals that need no balance: duplicate client id, market
        closed, LIMIT_MAKER that would take, stop that would trigger at once (spec 6.1, 10.3)."""
        self._check_duplicate(order.api_key, order.symbol, order.client_id)
        if sym.obj.get("status", sym.obj.get("contractStatus", "TRADING")) != "TRADING":
            raise _rejected("Market is closed.")
        if order.type == "LIMIT_MAKER":
            best = self._best(sym.name, order.side)
            if best is not None and (order.price >= best if order.side == "BUY" else order.price <= best):
                raise _rejected("Order would immediately match and take.")
        if order.type in _STOP_TYPES and self._would_trigger(order):
            raise _rejected("Order would trigger immediately.")

    def _admit_spot(
        self, sym: _Symbol, order: _Order, *, lock: _Lock | None = None
    ) -> list[tuple[Decimal, Decimal]]:
        """Every check before an order is accepted (``_precheck``, then the balance); returns
        the planned taking of a market order."""
        self._precheck(sym, order)
        plan: list[tuple[Decimal, Decimal]] = []
        account = self._account(order.api_key)
        if order.type == "MARKET":
            if order.quote_qty > 0:
                plan = self._walk(sym, order.side, quote=order.quote_qty)
                if order.side == "BUY":
                    need_asset, need = sym.quote, order.quote_qty
                else:
                    need_asset, need = sym.base, sum((q for _, q in plan), _Z)
            else:
                plan = self._walk(sym, order.side, qty=order.qty)
                if order.side == "BUY":
                    need_asset, need = sym.quote, sum((p * q for p, q in plan), _Z)
                else:
                    need_asset, need = sym.base, order.qty
            if account.free.get(need_asset, _Z) < need:
                raise _rejected(_INSUFFICIENT)
        elif lock is None:
            asset, amount, _ = self._lock_for(sym, order)
            if account.free.get(asset, _Z) < amount:
                raise _rejected(_INSUFFICIENT)
        return plan

    def _store(self, order: _Order) -> None:
        order.order_id = self._next_order
        self._next_order += 1
        self._orders[order.order_id] = order
        self._open.setdefault(order.symbol, []).append(order)

    def _take_lock(self, sym: _Symbol, order: _Order, lock: _Lock | None = None) -> None:
        if order.type == "MARKET":
            return
        account = self._account(order.api_key)
        asset, amount, price = self._lock_for(sym, order)
        order.lock_price = price
        if lock is not None:
            order.lock = lock
            return
        order.lock = _Lock(asset, amount)
        account.free[asset] = account.free.get(asset, _Z) - amount
        account.locked[asset] = account.locked.get(asset, _Z) + amount
        self._touch(order.api_key, asset)

    def _release(self, order: _Order) -> None:
        """Give back what a closing order still holds (shared locks: when the last leg closes)."""
        lock = order.lock
        if lock is None:
            return
        order.lock = None
        lock.holders -= 1
        if lock.holders > 0 or lock.amount == 0:
            return
        account = self._account(order.api_key)
        account.locked[lock.asset] = account.locked.get(lock.asset, _Z) - lock.amount
        account.free[lock.asset] = account.free.get(lock.asset, _Z) + lock.amount
        lock.amount = _Z
        self._touch(order.api_key, lock.asset)

    def _touch(self, api_key: str, asset: str) -> None:
        self._dirty.setdefault(api_key, set()).add(asset)
        self._account(api_key).update_time = self._now()

    def _flush_accounts(self) -> None:
        """One ``outboundAccountPosition`` per account with the assets that changed (spec 8.1)."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        if self.futures:
            return
        now = self._now()
        for api_key, assets in dirty.items():
            account = self._account(api_key)
            self._emit(
                api_key,
                {
                    "e": "outboundAccountPosition",
                    "E": now,
                    "u": account.update_time,
                    "B": [
                        {"a": a, "f": _s8(account.free.get(a, _Z)), "l": _s8(account.locked.get(a, _Z))}
                        for a in sorted(assets)
                    ],
                },
            )

    def _activate(
        self, sym: _Symbol, order: _Order, plan: list[tuple[Decimal, Decimal]] | None = None
    ) -> None:
        """Run a newly accepted order: take what it crosses, then rest, expire or wait."""
        now = self._now()
        if order.type in _STOP_TYPES:
            order.working = False
            order.working_time = -1
            if order.trailing_delta is not None and order.stop_price <= 0:
                order.trail_active = True
                last = self.last_price(sym.name)
                order.trail_extreme = last
            return
        order.working = True
        order.working_time = now
        self._match(sym, order, plan)

    def _match(self, sym: _Symbol, order: _Order, plan: list[tuple[Decimal, Decimal]] | None = None) -> None:
        """Take the crossed levels of a working order; then rest (GTC) or expire the rest."""
        if order.type == "MARKET":
            if plan is None:
                if order.quote_qty > 0:
                    plan = self._walk(sym, order.side, quote=order.quote_qty)
                else:
                    plan = self._walk(sym, order.side, qty=order.remaining)
            if order.quote_qty > 0:
                order.qty = sum((q for _, q in plan), _Z)  # origQty of a quote order: what it got
                complete = self._quote_complete(sym, order, plan)
                if not plan:
                    self._expire(order, "INSUFFICIENT_LIQUIDITY")
                    return
                self._execute(order, plan, maker=False)
                if not complete and order.is_open:
                    self._expire(order, "INSUFFICIENT_LIQUIDITY")
                return
            self._take_market(order, plan)
            return
        takes = self._walk(sym, order.side, limit=order.price, qty=order.remaining)
        if order.tif == "FOK" and sum((q for _, q in takes), _Z) < order.remaining:
            self._expire(order, "UNFILLED_FOK_ORDER_EXPIRED")
            return
        if takes:
            self._execute(order, takes, maker=False)
        if not order.is_open:
            return
        if order.tif == "IOC" or order.tif == "FOK":
            self._expire(order, "UNFILLED_IOC_QUANTITY_EXPIRED")
            return
        # Rests: what the true book shows at this price is ahead of it in the queue.
        book = self._source.truth(sym.name)
        try:
            ticks = book.qty_at_ticks(book.parse_price(_canon(order.price)))
            order.queue_ahead = Decimal(book.qty_str(ticks))
        except (ValueError, ArithmeticError):  # a price finer than the book's scale: no level there
            order.queue_ahead = _Z

    def _take_market(self, order: _Order, plan: list[tuple[Decimal, Decimal]]) -> None:
        """A market order takes the levels planned for it; what they leave unfilled expires."""
        if plan:
            self._execute(order, plan, maker=False)
        if order.is_open:
            self._expire(order, "INSUFFICIENT_LIQUIDITY")

    def _quote_complete(self, sym: _Symbol, order: _Order, plan: list[tuple[Decimal, Decimal]]) -> bool:
        """Whether a quoteOrderQty order got all it could: less than one lot step of quote left."""
        spent = sum((p * q for p, q in plan), _Z)
        left = order.quote_qty - spent
        if not plan:
            return False
        last_price = plan[-1][0]
        return left < last_price * (sym.market_step or Decimal(0)) or left <= 0

    def _execute(self, order: _Order, takes: list[tuple[Decimal, Decimal]], *, maker: bool) -> None:
        """Book fills of ``order`` (spot or futures): balances, status, events."""
        if self.futures:
            self._f_execute(order, takes, maker=maker)
            return
        sym = self._symbol_table()[order.symbol]
        account = self._account(order.api_key)
        rate = self._maker_rate if maker else self._taker_rate
        now = self._now()
        for price, qty in takes:
            if qty <= 0:
                continue
            cost = price * qty
            if order.side == "BUY":
                commission = _fee(qty, rate)
                asset = sym.base
                self._spend(account, order, sym.quote, cost, qty * order.lock_price)
                account.free[sym.base] = account.free.get(sym.base, _Z) + qty - commission
            else:
                commission = _fee(cost, rate)
                asset = sym.quote
                self._spend(account, order, sym.base, qty, qty)
                account.free[sym.quote] = account.free.get(sym.quote, _Z) + cost - commission
            self._touch(order.api_key, sym.base)
            self._touch(order.api_key, sym.quote)
            fill = _Fill(self._next_trade, price, qty, commission, asset, maker, now)
            self._next_trade += 1
            order.executed += qty
            order.cum_quote += cost
            order.fills.append(fill)
            order.update_time = now
            account.trades.append((order, fill))
            self._first_fill(order)
            order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
            if order.status == "FILLED":
                self._close(order)
            self._emit(order.api_key, self._execution_report(order, "TRADE", fill=fill))
            if order.list_id >= 0:
                self._on_leg_fill(order)

    def _spend(
        self, account: _Account, order: _Order, asset: str, amount: Decimal, from_lock: Decimal
    ) -> None:
        """Pay ``amount`` of ``asset``: from the order's lock (up to ``from_lock``), then free."""
        lock = order.lock
        taken = _Z
        if lock is not None and lock.asset == asset:
            taken = min(lock.amount, from_lock if from_lock > 0 else amount)
            lock.amount -= taken
            account.locked[asset] = account.locked.get(asset, _Z) - taken
        account.free[asset] = account.free.get(asset, _Z) + taken - amount

    def _close(self, order: _Order) -> None:
        """An order left the open set (filled, canceled, expired): release, unlist."""
        self._release(order)
        opened = self._open.get(order.symbol)
        if opened is not None and order in opened:
            opened.remove(order)
            if not opened:
                del self._open[order.symbol]
        order.working = False if order.status != "FILLED" else order.working

    def _expire(self, order: _Order, reason: str) -> None:
        now = self._now()
        order.status = "EXPIRED"
        order.expiry_reason = reason
        order.update_time = now
        self._close(order)
        if self.futures:
            self._f_emit_order(order, "EXPIRED")
            self._algo_done(order)
            return
        self._emit(order.api_key, self._execution_report(order, "EXPIRED"))
        if order.list_id >= 0:
            self._on_leg_closed(order)

    def _trigger_stop(self, order: _Order) -> None:
        """A spot stop's condition is met: it becomes a market or limit order now."""
        sym = self._symbol_table()[order.symbol]
        now = self._now()
        order.working = True
        order.working_time = now
        order.update_time = now
        if order.list_id >= 0:
            self._on_leg_triggered(order)
        if order.type in ("STOP_LOSS", "TAKE_PROFIT"):
            plan = self._walk(sym, order.side, qty=order.remaining)
            if order.side == "BUY":
                account = self._account(order.api_key)
                cost = sum((p * q for p, q in plan), _Z)
                held = order.lock.amount if order.lock is not None else _Z
                if account.free.get(sym.quote, _Z) + held < cost:
                    self._expire(order, "INSUFFICIENT_BALANCE")
                    return
                order.lock_price = _Z  # take from the lock first, whatever the price
            self._take_market(order, plan)
            return
        self._match(sym, order)

    # ------------------------------------------------------------------ spot: responses

    def _fills_json(self, sym: _Symbol, fills: list[_Fill]) -> list[dict[str, Any]]:
        return [
            {
                "price": _s8(f.price),
                "qty": _s8(f.qty),
                "commission": _s8(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in fills
        ]

    def _order_json(self, order: _Order, resp: str, *, fills_from: int = 0) -> dict[str, Any]:
        """POST /api/v3/order's answer (ACK, RESULT or FULL; spec 6.1)."""
        out: dict[str, Any] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": order.list_id,
            "clientOrderId": order.client_id,
            "transactTime": order.time,
        }
        if resp == "ACK":
            return out
        out.update(
            price=_s8(order.price),
            origQty=_s8(order.qty),
            executedQty=_s8(order.executed),
            origQuoteOrderQty=_s8(order.quote_qty),
            cummulativeQuoteQty=_s8(order.cum_quote),
            status=order.status,
            timeInForce=order.tif,
            type=order.type,
            side=order.side,
        )
        self._conditional_fields(order, out)
        out["workingTime"] = order.working_time
        out["selfTradePreventionMode"] = order.stp
        if order.expiry_reason is not None:
            out["expiryReason"] = order.expiry_reason
        if resp == "FULL":
            sym = self._symbol_table()[order.symbol]
            out["fills"] = self._fills_json(sym, order.fills[fills_from:])
        return out

    def _conditional_fields(self, order: _Order, out: dict[str, Any]) -> None:
        if order.stop_price > 0:
            out["stopPrice"] = _s8(order.stop_price)
        if order.iceberg > 0:
            out["icebergQty"] = _s8(order.iceberg)
        if order.trailing_delta is not None:
            out["trailingDelta"] = order.trailing_delta
            if order.trail_active:
                out["trailingTime"] = order.update_time
        if order.strategy_id is not None:
            out["strategyId"] = order.strategy_id
        if order.strategy_type is not None:
            out["strategyType"] = order.strategy_type

    def _query_json(self, order: _Order) -> dict[str, Any]:
        """GET /api/v3/order's answer."""
        out: dict[str, Any] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": order.list_id,
            "clientOrderId": order.client_id,
            "price": _s8(order.price),
            "origQty": _s8(order.qty),
            "executedQty": _s8(order.executed),
            "cummulativeQuoteQty": _s8(order.cum_quote),
            "status": order.status,
            "timeInForce": order.tif,
            "type": order.type,
            "side": order.side,
            "stopPrice": _s8(order.stop_price),
            "icebergQty": _s8(order.iceberg),
            "time": order.time,
            "updateTime": order.update_time,
            "isWorking": order.working,
            "workingTime": order.working_time,
            "origQuoteOrderQty": _s8(order.quote_qty),
            "selfTradePreventionMode": order.stp,
        }
        if order.trailing_delta is not None:
            out["trailingDelta"] = order.trailing_delta
        if order.strategy_id is not None:
            out["strategyId"] = order.strategy_id
        if order.strategy_type is not None:
            out["strategyType"] = order.strategy_type
        if order.expiry_reason is not None:
            out["expiryReason"] = order.expiry_reason
        return out

    def _cancel_json(self, order: _Order, orig_client_id: str) -> dict[str, Any]:
        """DELETE /api/v3/order's answer: ``clientOrderId`` is the cancel's own id."""
        out: dict[str, Any] = {
            "symbol": order.symbol,
            "origClientOrderId": orig_client_id,
            "orderId": order.order_id,
            "orderListId": order.list_id,
            "clientOrderId": order.client_id
            if order.status != "CANCELED"
            else self._cancel_ids.get(order.order_id, order.client_id),
            "transactTime": order.update_time,
            "price": _s8(order.price),
            "origQty": _s8(order.qty),
            "executedQty": _s8(order.executed),
            "origQuoteOrderQty": _s8(order.quote_qty),
            "cummulativeQuoteQty": _s8(order.cum_quote),
            "status": order.status,
            "timeInForce": order.tif,
            "type": order.type,
            "side": order.side,
        }
        self._conditional_fields(order, out)
        out["selfTradePreventionMode"] = order.stp
        return out

    def _execution_report(
        self,
        order: _Order,
        x: str,
        *,
        fill: _Fill | None = None,
        cancel_id: str | None = None,
        reject: str = "NONE",
    ) -> dict[str, Any]:
        """The ``executionReport`` event (spec 8.1); on a cancel ``c`` is the cancel's id and
        ``C`` the order's own."""
        now = self._now()
        execution = self._next_exec
        self._next_exec += 1
        event: dict[str, Any] = {
            "e": "executionReport",
            "E": now,
            "s": order.symbol,
            "c": cancel_id if cancel_id is not None else order.client_id,
            "S": order.side,
            "o": order.type,
            "f": order.tif,
            "q": _s8(order.qty),
            "p": _s8(order.price),
            "P": _s8(order.stop_price),
            "F": _s8(order.iceberg),
            "g": order.list_id,
            "C": order.client_id if cancel_id is not None else "",
            "x": x,
            "X": order.status,
            "r": reject,
            "i": order.order_id,
            "l": _s8(fill.qty) if fill is not None else "0.00000000",
            "z": _s8(order.executed),
            "L": _s8(fill.price) if fill is not None else "0.00000000",
            "n": _s8(fill.commission) if fill is not None else "0",
            "N": fill.commission_asset if fill is not None else None,
            "T": fill.time if fill is not None else order.update_time,
            "t": fill.trade_id if fill is not None else -1,
            "I": execution,
            "w": order.working and order.is_open,
            "m": fill.maker if fill is not None else False,
            "M": False,
            "O": order.time,
            "Z": _s8(order.cum_quote),
            "Y": _s8(fill.price * fill.qty) if fill is not None else "0.00000000",
            "Q": _s8(order.quote_qty),
            "W": order.working_time,
            "V": order.stp,
        }
        if order.trailing_delta is not None:
            event["d"] = order.trailing_delta
            if order.trail_active:
                event["D"] = order.update_time
        if order.strategy_id is not None:
            event["j"] = order.strategy_id
        if order.strategy_type is not None:
            event["J"] = order.strategy_type
        if order.expiry_reason is not None and x == "EXPIRED":
            event["eR"] = order.expiry_reason
        return event

    def _resp_type(self, params: _Params, otype: str) -> str:
        default = "FULL" if otype in ("MARKET", "LIMIT") else "ACK"
        text = params.text("newOrderRespType", default) or default
        if text not in ("ACK", "RESULT", "FULL"):
            raise _invalid("newOrderRespType")
        return text

    # ------------------------------------------------------------------ spot: endpoints

    def new_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /api/v3/order (spec 6.1)."""
        params = _Params(raw)
        sym = self._need_sym(params)
        order = self._spot_order_from(api_key, params, sym)
        resp = self._resp_type(params, order.type)
        plan = self._admit_spot(sym, order)
        self._charge_orders(api_key, 1)
        self._store(order)
        self._take_lock(sym, order)
        self._emit(api_key, self._execution_report(order, "NEW"))
        self._activate(sym, order, plan or None)
        self._flush_accounts()
        return self._order_json(order, resp)

    def test_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /api/v3/order/test: validated, never matched; optional commission rates."""
        params = _Params(raw)
        sym = self._need_sym(params)
        compute = params.flag("computeCommissionRates")
        order = self._spot_order_from(api_key, params, sym)
        self._resp_type(params, order.type)  # validated like the real thing, never matched
        if not compute:
            return {}
        maker, taker = _s8(self._maker_rate), _s8(self._taker_rate)
        zero = "0.00000000"
        return {
            "standardCommissionForOrder": {"maker": maker, "taker": taker},
            "specialCommissionForOrder": {"maker": zero, "taker": zero},
            "taxCommissionForOrder": {"maker": zero, "taker": zero},
            "discount": _no_discount(),
        }

    def _find(
        self,
        api_key: str,
        sym: _Symbol,
        params: _Params,
        *,
        id_name: str = "orderId",
        client_name: str = "origClientOrderId",
        unknown: ApiError | None = None,
    ) -> _Order:
        """The order named by id and/or client id (spec 6.1: by id, then the client id must match)."""
        order_id = params.integer(id_name)
        client = params.text(client_name)
        if order_id is None and client is None:
            raise _err(-1102, f"Param '{client_name}' or '{id_name}' must be sent, but both were empty/null!")
        missing = unknown or _err(-2013, "Order does not exist.")
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.api_key != api_key or order.symbol != sym.name:
                raise missing
            if client is not None and order.client_id != client:
                raise missing
            return order
        assert client is not None
        for order in self._open.get(sym.name, ()):
            if order.api_key == api_key and order.client_id == client:
                return order
        for order in reversed(list(self._orders.values())):  # the latest order with that id
            if order.api_key == api_key and order.symbol == sym.name and order.client_id == client:
                return order
        raise missing

    def query_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/order."""
        params = _Params(raw)
        sym = self._need_sym(params)
        return self._query_json(self._find(api_key, sym, params))

    def _cancel(self, order: _Order, cancel_id: str, *, status: str = "CANCELED") -> None:
        now = self._now()
        order.status = status
        order.update_time = now
        self._cancel_ids[order.order_id] = cancel_id
        self._close(order)
        if self.futures:
            self._f_emit_order(order, status)
            self._algo_done(order)
            return
        self._emit(order.api_key, self._execution_report(order, "CANCELED", cancel_id=cancel_id))

    def _restrict(self, params: _Params, order: _Order) -> None:
        restriction = params.text("cancelRestrictions")
        if restriction is None:
            return
        if restriction not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise _err(-1145, "Invalid cancelRestrictions")
        wanted = "NEW" if restriction == "ONLY_NEW" else "PARTIALLY_FILLED"
        if order.status != wanted:
            raise _err(-2011, "Order was not canceled due to cancel restrictions.")

    def cancel_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /api/v3/order; an order-list leg cancels its whole list (spec 6.1, 6.2)."""
        params = _Params(raw)
        sym = self._need_sym(params)
        cancel_id = self._client_id(params, "newClientOrderId") or self._new_client_id()
        order = self._find(api_key, sym, params, unknown=_err(-2011, "Unknown order sent."))
        if not order.is_open:
            raise _err(-2011, "Unknown order sent.")
        self._restrict(params, order)
        if order.list_id >= 0:
            olist = self._lists[order.list_id]
            self._cancel_list(olist, cancel_id)
            self._flush_accounts()
            return self._cancel_json(order, order.client_id)
        self._cancel(order, cancel_id)
        self._flush_accounts()
        return self._cancel_json(order, order.client_id)

    def cancel_open_orders(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /api/v3/openOrders: every open order of the symbol, lists included."""
        params = _Params(raw)
        sym = self._need_sym(params)
        out: list[dict[str, Any]] = []
        done_lists: set[int] = set()
        for order in list(self._open.get(sym.name, ())):
            if order.api_key != api_key or not order.is_open:
                continue
            if order.list_id >= 0:
                if order.list_id in done_lists:
                    continue
                done_lists.add(order.list_id)
                olist = self._lists[order.list_id]
                self._cancel_list(olist, self._new_client_id())
                out.append(self._list_json(olist, reports="cancel"))
                continue
            self._cancel(order, self._new_client_id())
            out.append(self._cancel_json(order, order.client_id))
        self._flush_accounts()
        return out

    def _open_orders(self, raw: Mapping[str, Any], api_key: str) -> list[_Order]:
        """The account's open orders on the symbol asked for, or on every symbol (openOrders)."""
        params = _Params(raw)
        sym = self._sym(params, required=False)
        symbols = [sym.name] if sym is not None else list(self._open)
        return [o for s in symbols for o in self._open.get(s, ()) if o.api_key == api_key and o.is_open]

    def open_orders(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/openOrders (one symbol, or all)."""
        return [self._query_json(o) for o in self._open_orders(raw, api_key)]

    def _window(self, params: _Params, orders: list[_Order], key: Callable[[_Order], int]) -> list[_Order]:
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = params.integer("limit") or 500
        limit = max(1, min(limit, 1000))
        picked = [o for o in orders if (start is None or key(o) >= start) and (end is None or key(o) <= end)]
        return picked[-limit:] if start is None else picked[:limit]

    def _all_orders(self, raw: Mapping[str, Any], api_key: str) -> list[_Order]:
        """The account's orders on the symbol, open or not, from ``orderId`` on and within
        the time window and ``limit`` (allOrders)."""
        params = _Params(raw)
        sym = self._need_sym(params)
        from_id = params.integer("orderId")
        orders = [
            o
            for o in self._orders.values()
            if o.api_key == api_key and o.symbol == sym.name and (from_id is None or o.order_id >= from_id)
        ]
        return self._window(params, orders, lambda o: o.time)

    def all_orders(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/allOrders."""
        return [self._query_json(o) for o in self._all_orders(raw, api_key)]

    def spot_account(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/account: the real balances, in the shape of the exchange's answer."""
        params = _Params(raw)
        omit = params.flag("omitZeroBalances")
        account = self._account(api_key)
        rows = []
        for asset in sorted(set(account.free) | set(account.locked)):
            free, locked = account.free.get(asset, _Z), account.locked.get(asset, _Z)
            if omit and free == 0 and locked == 0:
                continue
            rows.append({"asset": asset, "free": _s8(free), "locked": _s8(locked)})
        update_time = account.update_time or self._now()
        return spot_account_body(rows, update_time, self._maker_rate, self._taker_rate)

    def account_commission(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/account/commission."""
        params = _Params(raw)
        sym = self._need_sym(params)
        maker, taker = _s8(self._maker_rate), _s8(self._taker_rate)
        zero = "0.00000000"
        return {
            "symbol": sym.name,
            "standardCommission": {"maker": maker, "taker": taker, "buyer": zero, "seller": zero},
            "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "discount": _no_discount(),
        }

    def _trades(self, api_key: str, params: _Params, sym: _Symbol) -> list[tuple[_Order, _Fill]]:
        """The account's fills on the symbol, of one order (``orderId``) and from a trade ID
        (``fromId``) on when asked: what myTrades and userTrades then window and page."""
        order_id = params.integer("orderId")
        from_id = params.integer("fromId")
        return [
            (o, f)
            for o, f in self._account(api_key).trades
            if o.symbol == sym.name
            and (order_id is None or o.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
        ]

    def my_trades(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/myTrades."""
        params = _Params(raw)
        sym = self._need_sym(params)
        from_id = params.integer("fromId")
        rows = self._trades(api_key, params, sym)
        start, end = params.integer("startTime"), params.integer("endTime")
        rows = [
            (o, f) for o, f in rows if (start is None or f.time >= start) and (end is None or f.time <= end)
        ]
        limit = max(1, min(params.integer("limit") or 500, 1000))
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return [
            {
                "symbol": o.symbol,
                "id": f.trade_id,
                "orderId": o.order_id,
                "orderListId": o.list_id,
                "price": _s8(f.price),
                "qty": _s8(f.qty),
                "quoteQty": _s8(f.price * f.qty),
                "commission": _s8(f.commission),
                "commissionAsset": f.commission_asset,
                "time": f.time,
                "isBuyer": o.side == "BUY",
                "isMaker": f.maker,
                "isBestMatch": True,
            }
            for o, f in rows
        ]

    def order_rate_limits(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/rateLimit/order: the account's unfilled order count per window."""
        account = self._account(api_key)
        now = self._now()
        return [{**limit.to_json(), "count": window.used(api_key, now)} for limit, window in account.windows]

    # ------------------------------------------------------------------ cancelReplace, amend

    def cancel_replace(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /api/v3/order/cancelReplace (spec 6.1): 200 both, 409 -2021 one, 400 -2022 none."""
        params = _Params(raw)
        sym = self._need_sym(params)
        mode = params.need("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise _invalid("cancelReplaceMode")
        if not params.has("cancelOrderId") and not params.has("cancelOrigClientOrderId"):
            raise _err(
                -1102,
                "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!",
            )
        rate_mode = params.text("orderRateLimitExceededMode", "DO_NOTHING")
        if rate_mode not in ("DO_NOTHING", "CANCEL_ONLY"):
            raise _invalid("orderRateLimitExceededMode")
        # The new order's parameters are checked before anything happens (a malformed request
        # is refused whole, as a plain -11xx).
        new_order = self._spot_order_from(api_key, params, sym)
        resp = self._resp_type(params, new_order.type)
        try:
            self._charge_orders(api_key, 1)
        except ApiError:
            if rate_mode != "CANCEL_ONLY":
                raise
            over_limit = True
        else:
            over_limit = False
        cancel_id = self._client_id(params, "cancelNewClientOrderId") or self._new_client_id()
        cancel_resp: dict[str, Any]
        cancel_ok = True
        try:
            target = self._find(
                api_key,
                sym,
                params,
                id_name="cancelOrderId",
                client_name="cancelOrigClientOrderId",
                unknown=_err(-2011, "Unknown order sent."),
            )
            if not target.is_open:
                raise _err(-2011, "Unknown order sent.")
            self._restrict(params, target)
            if target.list_id >= 0:
                self._cancel_list(self._lists[target.list_id], cancel_id)
            else:
                self._cancel(target, cancel_id)
            cancel_resp = self._cancel_json(target, target.client_id)
        except ApiError as exc:
            cancel_ok = False
            cancel_resp = _error_body(exc)
        new_resp: dict[str, Any] | None = None
        new_ok = False
        if over_limit:
            new_resp = {"code": -1015, "msg": "Too many new orders."}
        elif cancel_ok or mode == "ALLOW_FAILURE":
            try:
                plan = self._admit_spot(sym, new_order)
                self._store(new_order)
                self._take_lock(sym, new_order)
                self._emit(api_key, self._execution_report(new_order, "NEW"))
                self._activate(sym, new_order, plan or None)
                new_resp = self._order_json(new_order, resp)
                new_ok = True
            except ApiError as exc:
                new_resp = _error_body(exc)
        self._flush_accounts()
        data = {
            "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
            "newOrderResult": "SUCCESS" if new_ok else ("NOT_ATTEMPTED" if new_resp is None else "FAILURE"),
            "cancelResponse": cancel_resp,
            "newOrderResponse": new_resp,
        }
        if cancel_ok and new_ok:
            return data
        if over_limit and cancel_ok:
            raise ApiError(
                429,
                -1015,
                "Too many new orders.",
                body={"code": -1015, "msg": "Too many new orders.", "data": data},
            )
        if cancel_ok or new_ok:
            msg = "Order cancel-replace partially failed."
            raise ApiError(409, -2021, msg, body={"code": -2021, "msg": msg, "data": data})
        msg = "Order cancel-replace failed."
        raise ApiError(400, -2022, msg, body={"code": -2022, "msg": msg, "data": data})

    def amend_keep_priority(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """PUT /api/v3/order/amend/keepPriority: reduce the quantity, keep the queue place."""
        params = _Params(raw)
        sym = self._need_sym(params)
        new_qty = params.decimal("newQty", required=True)
        assert new_qty is not None
        new_client = self._client_id(params, "newClientOrderId")
        order = self._find(api_key, sym, params)
        if not order.is_open:
            raise _err(-2013, "Order does not exist.")
        if new_qty <= 0 or new_qty >= order.qty:
            raise _err(-2038, "Order amend (quantity increase) is not supported.")
        if order.amends >= sym.max_amends:
            raise _err(-2038, "Order amend rejected: the maximum number of amendments has been reached.")
        if new_client is not None and new_client != order.client_id:
            self._check_duplicate(api_key, sym.name, new_client)
        self._check_filters(
            sym, side=order.side, type=order.type, price=order.price or None, quantity=new_qty
        )
        now = self._now()
        orig_client, orig_qty = order.client_id, order.qty
        order.client_id = new_client or self._new_client_id()
        order.qty = new_qty
        order.amends += 1
        order.update_time = now
        if order.lock is not None and order.lock.holders == 1:
            # Give back the lock of the quantity that was removed.
            account = self._account(api_key)
            freed = (orig_qty - new_qty) * (order.lock_price if order.side == "BUY" else Decimal(1))
            freed = min(freed, order.lock.amount)
            order.lock.amount -= freed
            account.locked[order.lock.asset] -= freed
            account.free[order.lock.asset] = account.free.get(order.lock.asset, _Z) + freed
            self._touch(api_key, order.lock.asset)
        if order.executed >= order.qty:
            order.status = "EXPIRED" if order.executed < orig_qty else order.status
            order.expiry_reason = "NONE"
            self._close(order)
        execution = self._next_exec
        self._emit(api_key, self._execution_report(order, "REPLACED"))
        self._amendments.setdefault(order.order_id, []).append(
            {
                "symbol": order.symbol,
                "orderId": order.order_id,
                "executionId": execution,
                "origClientOrderId": orig_client,
                "newClientOrderId": order.client_id,
                "origQty": _s8(orig_qty),
                "newQty": _s8(new_qty),
                "time": now,
            }
        )
        self._flush_accounts()
        out: dict[str, Any] = {
            "transactTime": now,
            "executionId": execution,
            "amendedOrder": {
                "symbol": order.symbol,
                "orderId": order.order_id,
                "orderListId": order.list_id,
                "origClientOrderId": orig_client,
                "clientOrderId": order.client_id,
                "price": _s8(order.price),
                "qty": _s8(order.qty),
                "executedQty": _s8(order.executed),
                "preventedQty": "0.00000000",
                "quoteOrderQty": _s8(order.quote_qty),
                "cumulativeQuoteQty": _s8(order.cum_quote),
                "status": order.status,
                "timeInForce": order.tif,
                "type": order.type,
                "side": order.side,
                "workingTime": order.working_time,
                "selfTradePreventionMode": order.stp,
            },
        }
        if order.list_id >= 0:
            olist = self._lists[order.list_id]
            out["listStatus"] = {
                "orderListId": olist.list_id,
                "contingencyType": olist.contingency,
                "listOrderStatus": olist.order_status,
                "listClientOrderId": olist.client_id,
                "symbol": olist.symbol,
                "orders": _list_legs(olist),
            }
        return out

    def order_amendments(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/order/amendments."""
        params = _Params(raw)
        sym = self._need_sym(params)
        order_id = params.integer("orderId", required=True)
        assert order_id is not None
        order = self._orders.get(order_id)
        if order is None or order.api_key != api_key or order.symbol != sym.name:
            raise _err(-2013, "Order does not exist.")
        start = params.integer("fromExecutionId")
        rows = [r for r in self._amendments.get(order_id, []) if start is None or r["executionId"] >= start]
        return rows[: max(1, min(params.integer("limit") or 500, 1000))]

    # ------------------------------------------------------------------ order lists

    def _list_client_id(self, api_key: str, params: _Params) -> str:
        client = self._client_id(params, "listClientOrderId") or self._new_client_id()
        for olist in self._lists.values():
            if olist.api_key == api_key and olist.client_id == client and olist.order_status == "EXECUTING":
                raise _rejected("Duplicate order sent.")
        return client

    def _leg(
        self,
        api_key: str,
        params: _Params,
        prefix: str,
        sym: _Symbol,
        *,
        side: str | None,
        qty: Decimal | None,
        allowed: frozenset[str],
        list_id: int,
    ) -> _Order:
        """One leg of an order list: its ``<prefix>Xxx`` parameters as a plain order's."""
        leg = _LegParams(params.raw, prefix)
        if not leg.has("type"):
            raise _mandatory(f"{prefix}Type")
        iceberg = leg.decimal("icebergQty")
        if iceberg is not None and iceberg > 0 and leg.text("timeInForce", "GTC") != "GTC":
            raise _err(-1160, f"Parameter '{prefix}IcebergQty' requires '{prefix}TimeInForce' GTC.")
        return self._spot_order_from(api_key, leg, sym, list_id=list_id, side=side, qty=qty, allowed=allowed)

    def _oco_pair(
        self,
        api_key: str,
        params: _Params,
        sym: _Symbol,
        above_prefix: str,
        below_prefix: str,
        side: str,
        qty: Decimal,
        list_id: int,
    ) -> tuple[_Order, _Order]:
        """The above/below legs of an OCO, checked against each other and the last price."""
        above = self._leg(
            api_key, params, above_prefix, sym, side=side, qty=qty, allowed=_OCO_ABOVE_TYPES, list_id=list_id
        )
        below = self._leg(
            api_key, params, below_prefix, sym, side=side, qty=qty, allowed=_OCO_BELOW_TYPES, list_id=list_id
        )
        kinds = (above.type in _OCO_TAKE_TYPES, below.type in _OCO_TAKE_TYPES)
        if kinds == (True, True) or kinds == (False, False):
            raise (
                _err(-1168, "At least one OCO order must be contingent.")
                if kinds == (True, True)
                else _err(
                    -1158,
                    _OCO_TYPES_MSG,
                )
            )
        last = self.last_price(sym.name)
        if last is not None:
            for leg in (above, below):
                level = leg.price if leg.type == "LIMIT_MAKER" else leg.stop_price
                if level <= 0:
                    continue
                self._oco_price_rule(leg, level, last)
        return above, below

    @staticmethod
    def _oco_price_rule(leg: _Order, level: Decimal, last: Decimal) -> None:
        """SELL: limit/TP above the last price, stop below; BUY the mirror (spec 6.2, 10.2)."""
        if leg.side == "SELL":
            if leg.type == "LIMIT_MAKER" and level <= last:
                raise _err(-1166, "A limit order in a sell OCO must be above the market price.")
            if leg.type.startswith("TAKE_PROFIT") and level <= last:
                raise _err(-1199, "A take profit order in a sell OCO must be above the market price.")
            if leg.type.startswith("STOP_LOSS") and level >= last:
                raise _err(-1197, "A stop loss order in a sell OCO must be below the market price.")
        else:
            if leg.type == "LIMIT_MAKER" and level >= last:
                raise _err(-1165, "A limit order in a buy OCO must be below the market price.")
            if leg.type.startswith("TAKE_PROFIT") and level >= last:
                raise _err(-1198, "A take profit order in a buy OCO must be below the market price.")
            if leg.type.startswith("STOP_LOSS") and level <= last:
                raise _err(-1196, "A stop loss order in a buy OCO must be above the market price.")

    def _oco_lock(self, sym: _Symbol, legs: list[_Order]) -> _Lock:
        """One lock for both legs of an OCO: the base quantity (SELL) or the dearer leg (BUY)."""
        amounts = [self._lock_for(sym, leg) for leg in legs]
        asset = amounts[0][0]
        return _Lock(asset, max(a for _, a, _ in amounts), holders=len(legs))

    def _place_lock(self, api_key: str, lock: _Lock) -> None:
        account = self._account(api_key)
        if account.free.get(lock.asset, _Z) < lock.amount:
            raise _rejected(_INSUFFICIENT)
        account.free[lock.asset] = account.free.get(lock.asset, _Z) - lock.amount
        account.locked[lock.asset] = account.locked.get(lock.asset, _Z) + lock.amount
        self._touch(api_key, lock.asset)

    def _new_list(
        self, api_key: str, sym: _Symbol, client: str, contingency: str, orders: list[_Order]
    ) -> _OrderList:
        list_id = self._next_list
        self._next_list += 1
        olist = _OrderList(api_key, list_id, client, sym.name, contingency, orders, self._now())
        self._lists[list_id] = olist
        for order in orders:
            order.list_id = list_id
        return olist

    def _list_json(self, olist: _OrderList, *, reports: str = "RESULT") -> dict[str, Any]:
        out = self._list_summary(olist)
        if reports == "cancel":
            out["transactionTime"] = self._now()  # a cancel answers with its own time
            out["orderReports"] = [self._cancel_json(o, o.client_id) for o in olist.orders]
        elif reports != "ACK":
            out["orderReports"] = [self._order_json(o, "RESULT") for o in olist.orders]
        return out

    def _list_status_event(self, olist: _OrderList) -> dict[str, Any]:
        return {
            "e": "listStatus",
            "E": self._now(),
            "s": olist.symbol,
            "g": olist.list_id,
            "c": olist.contingency,
            "l": olist.status_type,
            "L": olist.order_status,
            "r": "NONE",
            "C": olist.client_id,
            "T": self._now(),
            "O": [{"s": o.symbol, "i": o.order_id, "c": o.client_id} for o in olist.orders],
        }

    def _list_resp_type(self, params: _Params) -> str:
        text = params.text("newOrderRespType", "FULL") or "FULL"
        if text not in ("ACK", "RESULT", "FULL"):
            raise _invalid("newOrderRespType")
        return text

    def new_oco(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /api/v3/orderList/oco (spec 6.2)."""
        params = _Params(raw)
        sym = self._need_sym(params)
        side = params.need("side")
        if side not in ("BUY", "SELL"):
            raise _err(-1117, "Invalid side.")
        qty = params.decimal("quantity", required=True)
        assert qty is not None
        resp = self._list_resp_type(params)
        client = self._list_client_id(api_key, params)
        above, below = self._oco_pair(api_key, params, sym, "above", "below", side, qty, -1)
        for leg in (above, below):
            self._precheck(sym, leg)
        if above.client_id == below.client_id:
            raise _rejected("Duplicate order sent.")
        lock = self._oco_lock(sym, [above, below])
        account = self._account(api_key)
        if account.free.get(lock.asset, _Z) < lock.amount:
            raise _rejected(_INSUFFICIENT)
        self._charge_orders(api_key, 2)
        self._place_lock(api_key, lock)
        legs = [below, above]  # the exchange lists the lower leg first
        for leg in legs:
            self._store(leg)
            self._take_lock(sym, leg, lock)
        olist = self._new_list(api_key, sym, client, "OCO", legs)
        for leg in legs:
            self._emit(api_key, self._execution_report(leg, "NEW"))
        self._emit(api_key, self._list_status_event(olist))
        for leg in legs:
            if leg.is_open:
                self._activate(sym, leg)
        self._flush_accounts()
        return self._list_json(olist, reports=resp)

    def _working_and_pending(
        self, api_key: str, params: _Params, sym: _Symbol
    ) -> tuple[_Order, list[_Order], str]:
        working = self._leg(
            api_key,
            params,
            "working",
            sym,
            side=None,
            qty=None,
            allowed=frozenset({"LIMIT", "LIMIT_MAKER"}),
            list_id=-1,
        )
        return working, [], working.side

    def new_oto(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /api/v3/orderList/oto: the pending leg is placed once the working leg fills."""
        params = _Params(raw)
        sym = self._need_sym(params)
        resp = self._list_resp_type(params)
        client = self._list_client_id(api_key, params)
        working, _, _ = self._working_and_pending(api_key, params, sym)
        pending = self._leg(
            api_key, params, "pending", sym, side=None, qty=None, allowed=_SPOT_TYPES, list_id=-1
        )
        if pending.type == "MARKET" and pending.quote_qty > 0:
            raise _not_required("pendingQuoteOrderQty")
        return self._place_working_list(api_key, sym, client, "OTO", working, [pending], resp)

    def new_otoco(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /api/v3/orderList/otoco: the working leg, then an OCO pair once it fills."""
        params = _Params(raw)
        sym = self._need_sym(params)
        resp = self._list_resp_type(params)
        client = self._list_client_id(api_key, params)
        working, _, _ = self._working_and_pending(api_key, params, sym)
        side = params.need("pendingSide")
        if side not in ("BUY", "SELL"):
            raise _err(-1117, "Invalid side.")
        qty = params.decimal("pendingQuantity", required=True)
        assert qty is not None
        above = self._leg(
            api_key, params, "pendingAbove", sym, side=side, qty=qty, allowed=_OCO_ABOVE_TYPES, list_id=-1
        )
        if params.has("pendingBelowType"):
            below = self._leg(
                api_key, params, "pendingBelow", sym, side=side, qty=qty, allowed=_OCO_BELOW_TYPES, list_id=-1
            )
            if (above.type in _OCO_TAKE_TYPES) == (below.type in _OCO_TAKE_TYPES):
                raise _err(
                    -1158,
                    _OCO_TYPES_MSG,
                )
            legs = [below, above]
        else:
            legs = [above]
        return self._place_working_list(api_key, sym, client, "OTOCO", working, legs, resp)

    def _place_working_list(
        self,
        api_key: str,
        sym: _Symbol,
        client: str,
        contingency: str,
        working: _Order,
        pending: list[_Order],
        resp: str,
    ) -> Any:
        ids = [working.client_id, *(p.client_id for p in pending)]
        if len(set(ids)) != len(ids):
            raise _rejected("Duplicate order sent.")
        for leg in pending:
            self._check_duplicate(api_key, sym.name, leg.client_id)
        plan = self._admit_spot(sym, working)
        self._charge_orders(api_key, 1 + len(pending))
        self._store(working)
        self._take_lock(sym, working)
        for leg in pending:
            leg.status = "PENDING_NEW"
            self._store(leg)
        olist = self._new_list(api_key, sym, client, contingency, [working, *pending])
        olist.working = working
        olist.pending = list(pending)
        self._emit(api_key, self._execution_report(working, "NEW"))
        for leg in pending:
            self._emit(api_key, self._execution_report(leg, "NEW"))
        self._emit(api_key, self._list_status_event(olist))
        self._activate(sym, working, plan or None)
        self._flush_accounts()
        body = self._list_json(olist, reports=resp)
        return body

    def _on_leg_fill(self, order: _Order) -> None:
        olist = self._lists.get(order.list_id)
        if olist is None:
            return
        if olist.working is order:
            if order.status == "FILLED":
                self._start_pending(olist)
            return
        # An OCO leg traded: the other leg of its pair expires (spec 6.2).
        self._expire_siblings(olist, order)
        if not any(o.is_open for o in olist.orders):
            self._finish_list(olist)

    def _on_leg_triggered(self, order: _Order) -> None:
        olist = self._lists.get(order.list_id)
        if olist is not None and olist.working is not order:
            self._expire_siblings(olist, order)

    def _expire_siblings(self, olist: _OrderList, order: _Order) -> None:
        pair = olist.pending if olist.working is not None else olist.orders
        for other in pair:
            if other is not order and other.is_open:
                self._expire(other, "OCO_TRIGGER")  # a shared lock stays with the leg that traded

    def _on_leg_closed(self, order: _Order) -> None:
        olist = self._lists.get(order.list_id)
        if olist is None:
            return
        if olist.working is order and order.status != "FILLED":
            for leg in olist.pending:
                if leg.is_open:
                    leg.status = "EXPIRED"
                    leg.expiry_reason = "OTO_PHASE_ONE_EXPIRED"
                    self._close(leg)
                    self._emit(leg.api_key, self._execution_report(leg, "EXPIRED"))
        if not any(o.is_open for o in olist.orders):
            self._finish_list(olist)

    def _finish_list(self, olist: _OrderList) -> None:
        if olist.order_status == "ALL_DONE":
            return
        olist.status_type = "ALL_DONE"
        olist.order_status = "ALL_DONE"
        self._emit(olist.api_key, self._list_status_event(olist))

    def _start_pending(self, olist: _OrderList) -> None:
        """The working leg filled: the pending leg(s) go live (OTO) or become an OCO (OTOCO)."""
        sym = self._symbol_table()[olist.symbol]
        pending = [leg for leg in olist.pending if leg.status == "PENDING_NEW"]
        if not pending:
            return
        now = self._now()
        try:
            if len(pending) > 1:
                lock = self._oco_lock(sym, pending)
                self._place_lock(olist.api_key, lock)
                for leg in pending:
                    self._take_lock(sym, leg, lock)
            else:
                leg = pending[0]
                if leg.type != "MARKET":
                    asset, amount, _ = self._lock_for(sym, leg)
                    if self._account(leg.api_key).free.get(asset, _Z) < amount:
                        raise _rejected(_INSUFFICIENT)
                    self._take_lock(sym, leg)
        except ApiError:
            for leg in pending:
                leg.status = "REJECTED"
                leg.update_time = now
                self._close(leg)
                self._emit(
                    leg.api_key, self._execution_report(leg, "REJECTED", reject="INSUFFICIENT_BALANCES")
                )
            self._finish_list(olist)
            return
        for leg in pending:
            leg.status = "NEW"
            leg.time = now
            leg.update_time = now
            self._emit(leg.api_key, self._execution_report(leg, "NEW"))
        for leg in pending:
            if not leg.is_open:
                continue
            if leg.type in _STOP_TYPES and self._would_trigger(leg):
                self._trigger_stop(leg)
            else:
                self._activate(sym, leg)

    def _cancel_list(self, olist: _OrderList, cancel_id: str) -> None:
        for leg in olist.orders:
            if leg.is_open:
                self._cancel(leg, cancel_id)
        self._finish_list(olist)

    def _find_list(
        self, api_key: str, params: _Params, missing: ApiError, client_name: str = "listClientOrderId"
    ) -> _OrderList:
        """The list named by ``orderListId`` and/or its client id (DELETE names that
        ``listClientOrderId``, GET ``origClientOrderId``)."""
        list_id = params.integer("orderListId")
        client = params.text(client_name)
        if list_id is None and client is None:
            raise _err(
                -1102, f"Param '{client_name}' or 'orderListId' must be sent, but both were empty/null!"
            )
        if list_id is not None:
            olist = self._lists.get(list_id)
            if (
                olist is None
                or olist.api_key != api_key
                or (client is not None and olist.client_id != client)
            ):
                raise missing
            return olist
        for olist in reversed(list(self._lists.values())):
            if olist.api_key == api_key and olist.client_id == client:
                return olist
        raise missing

    def cancel_order_list(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /api/v3/orderList: every leg of the list."""
        params = _Params(raw)
        sym = self._need_sym(params)
        cancel_id = self._client_id(params, "newClientOrderId") or self._new_client_id()
        olist = self._find_list(api_key, params, _err(-2011, "Unknown order list sent."))
        if olist.symbol != sym.name or olist.order_status == "ALL_DONE":
            raise _err(-2011, "Unknown order list sent.")
        self._cancel_list(olist, cancel_id)
        self._flush_accounts()
        return self._list_json(olist, reports="cancel")

    def _list_summary(self, olist: _OrderList) -> dict[str, Any]:
        return {
            "orderListId": olist.list_id,
            "contingencyType": olist.contingency,
            "listStatusType": olist.status_type,
            "listOrderStatus": olist.order_status,
            "listClientOrderId": olist.client_id,
            "transactionTime": olist.time,
            "symbol": olist.symbol,
            "orders": _list_legs(olist),
        }

    def query_order_list(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/orderList."""
        params = _Params(raw)
        name = "origClientOrderId" if params.has("origClientOrderId") else "listClientOrderId"
        olist = self._find_list(api_key, params, _err(-2013, "Order list does not exist."), name)
        return self._list_summary(olist)

    def open_order_lists(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/openOrderList."""
        return [
            self._list_summary(olist)
            for olist in self._lists.values()
            if olist.api_key == api_key and olist.order_status == "EXECUTING"
        ]

    def all_order_lists(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /api/v3/allOrderList."""
        params = _Params(raw)
        limit = max(1, min(params.integer("limit") or 500, 1000))
        lists = [olist for olist in self._lists.values() if olist.api_key == api_key]
        return [self._list_summary(olist) for olist in lists[-limit:]]

    # ================================================================== futures (USD-M, COIN-M)

    def _f_position(self, account: _Account, symbol: str) -> _Position:
        pos = account.positions.get(symbol)
        if pos is None:
            pos = account.positions[symbol] = _Position()
        return pos

    def _leverage(self, account: _Account, symbol: str) -> int:
        return account.leverage.get(symbol, DEFAULT_LEVERAGE)

    def _notional(self, sym: _Symbol, qty: Decimal, price: Decimal) -> Decimal:
        """Margin-asset value of ``qty`` at ``price`` (USD-M quote; COIN-M coins)."""
        if self.inverse:
            return qty * sym.contract_size / price if price else _Z
        return qty * price

    def _upnl(self, sym: _Symbol, pos: _Position, mark: Decimal | None) -> Decimal:
        if pos.amount == 0 or mark is None or pos.entry == 0:
            return _Z
        if self.inverse:
            return pos.amount * sym.contract_size * (1 / pos.entry - 1 / mark)
        return pos.amount * (mark - pos.entry)

    def _apply_fill(self, sym: _Symbol, pos: _Position, signed: Decimal, price: Decimal) -> Decimal:
        """Move a one-way position by ``signed`` at ``price``; returns the realized PnL."""
        amount = pos.amount
        if amount == 0 or (amount > 0) == (signed > 0):
            new = amount + signed
            if amount == 0:
                entry = price
            elif self.inverse:  # average entry of inverse contracts is harmonic
                entry = abs(new) / (abs(amount) / pos.entry + abs(signed) / price)
            else:
                entry = (abs(amount) * pos.entry + abs(signed) * price) / abs(new)
            pos.amount, pos.entry = new, entry
            return _Z
        closing = min(abs(signed), abs(amount))
        direction = 1 if amount > 0 else -1
        if self.inverse:
            realized = closing * sym.contract_size * (1 / pos.entry - 1 / price) * direction
        else:
            realized = closing * (price - pos.entry) * direction
        new = amount + signed
        if new == 0:
            pos.entry = _Z
        elif (new > 0) != (amount > 0):
            pos.entry = price  # flipped: the rest opened at this price
        pos.amount = new
        pos.realized += realized
        return realized

    def _available(self, account: _Account, margin_asset: str) -> Decimal:
        """Cross available balance: wallet + unrealized PnL - position and open-order margin."""
        table = self._symbol_table()
        total = account.free.get(margin_asset, _Z)
        for symbol, pos in account.positions.items():
            sym = table.get(symbol)
            if sym is None or sym.margin_asset != margin_asset or pos.amount == 0:
                continue
            mark = self.mark_price(symbol)
            total += self._upnl(sym, pos, mark)
            ref = mark if mark is not None else pos.entry
            total -= self._notional(sym, abs(pos.amount), ref) / self._leverage(account, symbol)
        for orders in self._open.values():
            for order in orders:
                if order.api_key == account.api_key and table[order.symbol].margin_asset == margin_asset:
                    total -= order.margin_rate * order.remaining
        return total

    def _f_order_from(self, api_key: str, params: _Params, sym: _Symbol) -> tuple[_Order, str]:
        """Validate a new futures order (spec 6.3) into an order not yet placed, and its
        newOrderRespType."""
        side = params.need("side")
        if side not in ("BUY", "SELL"):
            raise _err(-1117, "Invalid side.")
        otype = params.need("type")
        if otype in _ALGO_TYPES:
            raise _err(-4120, _ALGO_SWITCH_MSG)
        if otype not in ("LIMIT", "MARKET"):
            raise _err(-1116, "Invalid orderType.")
        position_side = params.text("positionSide", "BOTH") or "BOTH"
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise _invalid("positionSide")
        if position_side != "BOTH":  # hedge mode is not offered: accounts are one-way
            raise _err(-4061, "Order's position side does not match user's setting.")
        tif = params.enum("timeInForce", ("GTC", "IOC", "FOK", "GTX", "GTD"), -1115, "Invalid timeInForce.")
        qty = params.decimal("quantity")
        price = params.decimal("price")
        price_match = params.text("priceMatch", "NONE") or "NONE"
        if price_match not in ("NONE", "OPPONENT", "OPPONENT_5", "QUEUE", "QUEUE_5", "QUEUE_10", "QUEUE_20"):
            raise _invalid("priceMatch")
        reduce_only = params.flag("reduceOnly")
        if params.has("closePosition") and params.flag("closePosition"):
            raise _not_required("closePosition")
        if params.has("stopPrice"):
            raise _not_required("stopPrice")
        resp = params.text("newOrderRespType", "ACK") or "ACK"
        if resp not in ("ACK", "RESULT"):
            raise _err(-1136, "Invalid newOrderRespType.")
        if qty is None:
            raise _mandatory("quantity")
        if otype == "LIMIT":
            if tif is None:
                raise _mandatory("timeInForce")
            if price_match != "NONE":
                if price is not None:
                    raise _err(-1128, "Combination of optional parameters invalid.")
                price = self._match_price(sym, side, price_match)
                if price is None:
                    raise _err(-1112, "No orders on book for symbol.")
            elif price is None:
                raise _mandatory("price")
        else:
            # A MARKET order takes no price, timeInForce or priceMatch: -1106 for each.
            for name, sent in (
                ("price", price),
                ("timeInForce", tif),
                ("priceMatch", params.text("priceMatch")),
            ):
                if sent is not None:
                    raise _not_required(name)
        good_till = 0
        if tif == "GTD":
            good_till = params.integer("goodTillDate") or 0
            if good_till <= self._now() + 600_000:
                raise _err(
                    -1102, "Mandatory parameter 'goodTillDate' was not sent, was empty/null, or malformed."
                )
        if qty <= 0:
            raise _err(-4003, "Quantity less than or equal to zero.")
        if price is not None and price <= 0:
            raise _err(-4013, "Price less than min price.")
        self._check_filters(sym, side=side, type=otype, price=price, quantity=qty, reduce_only=reduce_only)
        client = self._client_id(params, "newClientOrderId") or self._new_client_id()
        now = self._now()
        order = _Order(
            api_key=api_key,
            symbol=sym.name,
            order_id=0,
            client_id=client,
            side=side,
            type=otype,
            tif=tif or "GTC",
            price=price or _Z,
            qty=qty,
            time=now,
            stp=params.text("selfTradePreventionMode", "EXPIRE_MAKER") or "EXPIRE_MAKER",
            update_time=now,
            reduce_only=reduce_only,
            position_side=position_side,
            orig_type=otype,
            price_match=price_match,
            good_till=good_till,
        )
        return order, resp

    def _match_price(self, sym: _Symbol, side: str, match: str) -> Decimal | None:
        """``priceMatch``: the opposite side's best (OPPONENT) or own side's (QUEUE), n levels in."""
        book = self._source.truth(sym.name)
        opponent = match.startswith("OPPONENT")
        depth = int(match.rsplit("_", 1)[1]) if "_" in match else 1
        take_asks = (side == "BUY") == opponent
        levels = book.asks_str(depth) if take_asks else book.bids_str(depth)
        if not levels:
            return None
        return Decimal(levels[min(depth, len(levels)) - 1][0])

    def _f_admit(self, sym: _Symbol, order: _Order) -> None:
        """Futures engine checks: duplicate id, post-only, reduce-only, margin (spec 6.3, 10.3)."""
        self._check_duplicate(order.api_key, order.symbol, order.client_id)
        if sym.obj.get("status", sym.obj.get("contractStatus", "TRADING")) != "TRADING":
            raise _rejected("Market is closed.")
        if order.tif == "GTX" and order.type == "LIMIT":
            best = self._best(sym.name, order.side)
            if best is not None and (order.price >= best if order.side == "BUY" else order.price <= best):
                raise _err(
                    -5022,
                    "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                    "The order will not be recorded in the order history",
                )
        account = self._account(order.api_key)
        pos = self._f_position(account, sym.name)
        signed = order.qty if order.side == "BUY" else -order.qty
        if order.reduce_only:
            if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
                raise _err(-2022, "ReduceOnly Order is rejected.")
            return
        opening = (
            order.qty
            if pos.amount == 0 or (pos.amount > 0) == (signed > 0)
            else max(_Z, order.qty - abs(pos.amount))
        )
        if opening <= 0:
            return
        ref = (
            order.price
            if order.type == "LIMIT"
            else (self._best(sym.name, order.side) or self.mark_price(sym.name))
        )
        if ref is None:
            raise _err(-1112, "No orders on book for symbol.")
        leverage = self._leverage(account, sym.name)
        margin = self._notional(sym, opening, ref) / leverage
        if margin > self._available(account, sym.margin_asset):
            raise _err(-2019, "Margin is insufficient.")
        if order.type == "LIMIT":
            order.margin_rate = margin / order.qty

    def _f_place(self, api_key: str, raw: Mapping[str, Any], *, charge: bool = True) -> dict[str, Any]:
        params = _Params(raw)
        sym = self._need_sym(params)
        order, resp = self._f_order_from(api_key, params, sym)
        self._f_admit(sym, order)
        if charge:
            self._charge_orders(api_key, 1, 1)
        self._store(order)
        self._f_emit_order(order, "NEW")
        ack = self._f_order_json(order, place=True)
        order.working = True
        order.working_time = order.time
        self._match(sym, order)
        if order.good_till and order.is_open:
            self._good_till.add(order)
        return ack if resp == "ACK" else self._f_order_json(order, place=True)

    def _f_execute(self, order: _Order, takes: list[tuple[Decimal, Decimal]], *, maker: bool) -> None:
        sym = self._symbol_table()[order.symbol]
        account = self._account(order.api_key)
        pos = self._f_position(account, sym.name)
        rate = self._maker_rate if maker else self._taker_rate
        now = self._now()
        for price, qty in takes:
            if order.reduce_only:
                # A reduce-only order never opens: it trades at most the opposite position.
                opposite = pos.amount < 0 if order.side == "BUY" else pos.amount > 0
                qty = min(qty, abs(pos.amount)) if opposite else _Z
            if qty <= 0:
                break
            signed = qty if order.side == "BUY" else -qty
            realized = self._apply_fill(sym, pos, signed, price)
            notional = self._notional(sym, qty, price)
            commission = _fee(notional, rate)
            asset = sym.margin_asset
            account.free[asset] = account.free.get(asset, _Z) + realized - commission
            pos.update_time = now
            account.update_time = now
            fill = _Fill(self._next_trade, price, qty, commission, asset, maker, now, realized)
            self._next_trade += 1
            order.executed += qty
            order.cum_quote += notional if self.inverse else qty * price
            order.realized += realized
            order.fills.append(fill)
            order.update_time = now
            account.trades.append((order, fill))
            order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
            if order.status == "FILLED":
                self._close(order)
            self._f_emit_order(order, "TRADE", fill)
            self._emit(order.api_key, self._trade_lite(order, fill))
            self._emit(order.api_key, self._account_update(account, sym, pos))
        if order.reduce_only and order.is_open and pos.amount == 0:
            self._expire(order, "REDUCE_ONLY")
        elif not order.is_open:
            self._algo_done(order)

    def _algo_done(self, order: _Order) -> None:
        """The order an algo placed is over: the algo is FINISHED (spec 8.2 ALGO_UPDATE)."""
        algo = self._algos.get(order.algo_id) if order.algo_id else None
        if algo is not None:
            self._finish_algo(algo)

    def _avg_price(self, order: _Order) -> Decimal:
        if order.executed == 0:
            return _Z
        if self.inverse:  # cum_quote holds coins: the average is contracts x size / coins
            sym = self._symbol_table()[order.symbol]
            return order.executed * sym.contract_size / order.cum_quote if order.cum_quote else _Z
        return order.cum_quote / order.executed

    def _f_order_json(self, order: _Order, *, place: bool = False) -> dict[str, Any]:
        """A futures order as POST/DELETE/GET /fapi/v1/order answer it (spec 6.3)."""
        sym = self._symbol_table()[order.symbol]
        out: dict[str, Any] = {
            "orderId": order.order_id,
            "symbol": order.symbol,
            "status": order.status,
            "clientOrderId": order.client_id,
            "price": self._fmt_price(sym, order.price),
            "avgPrice": self._fmt_price(sym, self._avg_price(order)),
            "origQty": self._fmt_qty(sym, order.qty),
            "executedQty": self._fmt_qty(sym, order.executed),
        }
        if place:
            out["cumQty"] = self._fmt_qty(sym, order.executed)
        if self.inverse:
            out["cumBase"] = _c8(order.cum_quote)
            out["pair"] = str(sym.obj.get("pair", sym.name.split("_", 1)[0]))
        else:
            out["cumQuote"] = _c8(order.cum_quote)
        out.update(
            timeInForce=order.tif,
            type=order.type,
            reduceOnly=order.reduce_only,
            closePosition=order.close_position,
            side=order.side,
            positionSide=order.position_side,
            stopPrice=self._fmt_price(sym, order.stop_price),
            workingType=order.working_type,
            priceProtect=order.price_protect,
            origType=order.orig_type or order.type,
            priceMatch=order.price_match,
            selfTradePreventionMode=order.stp,
            goodTillDate=order.good_till,
        )
        if not place:
            out["time"] = order.time
        out["updateTime"] = order.update_time
        return out

    def _open_notional(self, account: _Account, symbol: str) -> tuple[Decimal, Decimal]:
        sym = self._symbol_table()[symbol]
        bid = ask = _Z
        for order in self._open.get(symbol, ()):
            if order.api_key == account.api_key and order.price > 0:
                value = self._notional(sym, order.remaining, order.price)
                if order.side == "BUY":
                    bid += value
                else:
                    ask += value
        return bid, ask

    def _f_emit_order(self, order: _Order, x: str, fill: _Fill | None = None) -> None:
        """``ORDER_TRADE_UPDATE`` (spec 8.2)."""
        sym = self._symbol_table()[order.symbol]
        account = self._account(order.api_key)
        bid, ask = self._open_notional(account, order.symbol)
        now = self._now()
        event = {
            "e": "ORDER_TRADE_UPDATE",
            "E": now,
            "T": now,
            "o": {
                "s": order.symbol,
                "c": order.client_id,
                "S": order.side,
                "o": order.type,
                "f": order.tif,
                "q": self._fmt_qty(sym, order.qty),
                "p": self._fmt_price(sym, order.price),
                "ap": self._fmt_price(sym, self._avg_price(order)),
                "sp": self._fmt_price(sym, order.stop_price),
                "x": x,
                "X": order.status,
                "i": order.order_id,
                "l": self._fmt_qty(sym, fill.qty) if fill is not None else "0",
                "z": self._fmt_qty(sym, order.executed),
                "L": self._fmt_price(sym, fill.price) if fill is not None else "0",
                "N": sym.margin_asset,
                "n": _canon(fill.commission) if fill is not None else "0",
                "T": fill.time if fill is not None else order.update_time,
                "t": fill.trade_id if fill is not None else 0,
                "b": _canon(bid),
                "a": _canon(ask),
                "m": fill.maker if fill is not None else False,
                "R": order.reduce_only,
                "wt": order.working_type,
                "ot": order.orig_type or order.type,
                "ps": order.position_side,
                "cp": order.close_position,
                "rp": _c8(fill.realized) if fill is not None else "0",
                "pP": order.price_protect,
                "si": 0,
                "ss": 0,
                "V": order.stp,
                "pm": order.price_match,
                "gtd": order.good_till,
            },
        }
        self._emit(order.api_key, event)

    def _trade_lite(self, order: _Order, fill: _Fill) -> dict[str, Any]:
        sym = self._symbol_table()[order.symbol]
        now = self._now()
        return {
            "e": "TRADE_LITE",
            "E": now,
            "T": fill.time,
            "s": order.symbol,
            "q": self._fmt_qty(sym, order.qty),
            "p": self._fmt_price(sym, order.price),
            "m": fill.maker,
            "c": order.client_id,
            "S": order.side,
            "L": self._fmt_price(sym, fill.price),
            "l": self._fmt_qty(sym, fill.qty),
            "t": fill.trade_id,
            "i": order.order_id,
        }

    def _account_update(
        self, account: _Account, sym: _Symbol, pos: _Position, reason: str = "ORDER"
    ) -> dict[str, Any]:
        """``ACCOUNT_UPDATE`` with the margin asset and the symbol's position (spec 8.2)."""
        now = self._now()
        wallet = account.free.get(sym.margin_asset, _Z)
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": reason,
                "B": [{"a": sym.margin_asset, "wb": _s8(wallet), "cw": _s8(wallet), "bc": "0"}],
                "P": [self._position_event(account, sym, pos)],
            },
        }

    def _position_event(self, account: _Account, sym: _Symbol, pos: _Position) -> dict[str, Any]:
        return {
            "s": sym.name,
            "pa": self._fmt_qty(sym, pos.amount),
            "ep": _c8(pos.entry),
            "bep": _c8(self._break_even(sym, pos)),
            "cr": _c8(pos.realized),
            "up": _c8(self._upnl(sym, pos, self.mark_price(sym.name))),
            "mt": account.margin_type.get(sym.name, "CROSSED").lower().replace("crossed", "cross"),
            "iw": "0",
            "ps": "BOTH",
        }

    def _break_even(self, sym: _Symbol, pos: _Position) -> Decimal:
        """Entry moved by the taker fee of closing (what the position must reach to break even)."""
        if pos.amount == 0:
            return _Z
        factor = self._taker_rate if pos.amount > 0 else -self._taker_rate
        return pos.entry * (1 + factor)

    # ------------------------------------------------------------------ futures: endpoints

    def f_new_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /fapi/v1/order (LIMIT and MARKET only since 2025-12-09; spec 6.3)."""
        return self._f_place(api_key, raw)

    def _f_find(self, api_key: str, sym: _Symbol, params: _Params, missing: ApiError) -> _Order:
        order_id = params.integer("orderId")
        client = params.text("origClientOrderId")
        if order_id is None and client is None:
            raise _err(-1102, "Either orderId or origClientOrderId must be sent.")
        return self._find(api_key, sym, params, unknown=missing)

    def f_query_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/order."""
        params = _Params(raw)
        sym = self._need_sym(params)
        return self._f_order_json(self._f_find(api_key, sym, params, _err(-2013, "Order does not exist.")))

    def f_query_open_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/openOrder: only while the order is open."""
        params = _Params(raw)
        sym = self._need_sym(params)
        order = self._f_find(api_key, sym, params, _err(-2013, "Order does not exist."))
        if not order.is_open:
            raise _err(-2013, "Order does not exist.")
        return self._f_order_json(order)

    def f_cancel_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /fapi/v1/order."""
        params = _Params(raw)
        sym = self._need_sym(params)
        order = self._f_find(api_key, sym, params, _err(-2011, "Unknown order sent."))
        if not order.is_open:
            raise _err(-2011, "Unknown order sent.")
        self._cancel(order, order.client_id)
        return self._f_order_json(order, place=True)

    def f_modify_order(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """PUT /fapi/v1/order: a LIMIT order's price and quantity; it loses its queue place."""
        params = _Params(raw)
        sym = self._need_sym(params)
        side = params.need("side")
        qty = params.decimal("quantity", required=True)
        price = params.decimal("price")
        match = params.text("priceMatch", "NONE") or "NONE"
        if price is None and match == "NONE":
            raise _mandatory("price")
        assert qty is not None
        order = self._f_find(api_key, sym, params, _err(-2013, "Order does not exist."))
        if not order.is_open:
            raise _err(-2013, "Order does not exist.")
        if order.type != "LIMIT":
            raise _err(-1116, "Invalid orderType.")
        if side != order.side:
            raise _err(-1117, "Invalid side.")
        if price is None:
            price = self._match_price(sym, side, match)
            if price is None:
                raise _err(-1112, "No orders on book for symbol.")
        if price == order.price and qty == order.qty:
            raise _err(-5027, "No need to modify the order.")
        self._check_filters(
            sym, side=side, type="LIMIT", price=price, quantity=qty, reduce_only=order.reduce_only
        )
        self._charge_orders(api_key, 1, 1)
        now = self._now()
        order.update_time = now
        if qty <= order.executed:
            self._cancel(order, order.client_id)
            return self._f_order_json(order, place=True)
        if order.tif == "GTX":
            best = self._best(sym.name, side)
            if best is not None and (price >= best if side == "BUY" else price <= best):
                self._cancel(order, order.client_id)
                return self._f_order_json(order, place=True)
        order.price, order.qty = price, qty
        order.status = "PARTIALLY_FILLED" if order.executed > 0 else "NEW"
        self._f_emit_order(order, "AMENDMENT")
        self._match(sym, order)
        return self._f_order_json(order, place=True)

    def f_batch_orders(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /fapi/v1/batchOrders: at most 5; each answered in request order, an error in
        place of a refused one (spec 6.3)."""
        params = _Params(raw)
        text = params.need("batchOrders")
        try:
            batch = json.loads(text)
        except ValueError:
            raise _invalid("batchOrders") from None
        if not isinstance(batch, list) or not batch or not all(isinstance(b, dict) for b in batch):
            raise _invalid("batchOrders")
        if len(batch) > MAX_BATCH:
            raise _err(
                -1130, f"Data sent for parameter 'batchOrders' is not valid: at most {MAX_BATCH} orders."
            )
        self._charge_orders(api_key, MAX_BATCH, 1)
        out: list[Any] = []
        for item in batch:
            try:
                out.append(self._f_place(api_key, {k: v for k, v in item.items()}, charge=False))
            except ApiError as exc:
                out.append(_error_body(exc))
        return out

    def f_cancel_all(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /fapi/v1/allOpenOrders."""
        params = _Params(raw)
        sym = self._need_sym(params)
        for order in list(self._open.get(sym.name, ())):
            if order.api_key == api_key and order.is_open:
                self._cancel(order, order.client_id)
        return dict(_SUCCESS_CANCEL_ALL)

    def f_open_orders(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/openOrders (one symbol, or all)."""
        return [self._f_order_json(o) for o in self._open_orders(raw, api_key)]

    def f_all_orders(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/allOrders."""
        return [self._f_order_json(o) for o in self._all_orders(raw, api_key)]

    def f_user_trades(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/userTrades."""
        params = _Params(raw)
        sym = self._need_sym(params)
        from_id = params.integer("fromId")
        rows = self._trades(api_key, params, sym)
        limit = max(1, min(params.integer("limit") or 500, 1000))
        rows = rows[:limit] if from_id is not None else rows[-limit:]
        out = []
        for o, f in rows:
            row: dict[str, Any] = {
                "buyer": o.side == "BUY",
                "commission": _canon(f.commission),
                "commissionAsset": f.commission_asset,
                "id": f.trade_id,
                "maker": f.maker,
                "orderId": o.order_id,
                "price": self._fmt_price(sym, f.price),
                "qty": self._fmt_qty(sym, f.qty),
                "realizedPnl": _c8(f.realized),
                "side": o.side,
                "positionSide": o.position_side,
                "symbol": o.symbol,
                "time": f.time,
            }
            if self.inverse:
                row["baseQty"] = _canon(
                    self._notional(sym, f.qty, f.price).quantize(_Q8, rounding=ROUND_HALF_EVEN)
                )
            else:
                row["quoteQty"] = _canon(f.price * f.qty)
            out.append(row)
        return out

    def f_leverage(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /fapi/v1/leverage: 1..125."""
        params = _Params(raw)
        sym = self._need_sym(params)
        leverage = params.integer("leverage", required=True)
        assert leverage is not None
        if not 1 <= leverage <= 125:
            raise _err(-4028, f"Leverage {leverage} is not valid")
        account = self._account(api_key)
        account.leverage[sym.name] = leverage
        now = self._now()
        self._emit(
            api_key, {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ac": {"s": sym.name, "l": leverage}}
        )
        if self.inverse:
            return {"leverage": leverage, "maxQty": "1000000", "symbol": sym.name}
        return {"leverage": leverage, "maxNotionalValue": "1000000000", "symbol": sym.name}

    def f_margin_type(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /fapi/v1/marginType (ISOLATED | CROSSED); recorded and reported, the margin
        itself is always computed as cross."""
        params = _Params(raw)
        sym = self._need_sym(params)
        margin_type = params.need("marginType").upper()
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise _invalid("marginType")
        account = self._account(api_key)
        if account.margin_type.get(sym.name, "CROSSED") == margin_type:
            raise _err(-4046, "No need to change margin type.")
        if self._f_position(account, sym.name).amount != 0:
            raise _err(-4048, "Margin type cannot be changed if there exists position.")
        if any(o.api_key == api_key for o in self._open.get(sym.name, ())):
            raise _err(-4047, "Margin type cannot be changed if there exists open orders.")
        account.margin_type[sym.name] = margin_type
        return {"code": 200, "msg": "success"}

    def f_order_rate_limits(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/rateLimit/order."""
        account = self._account(api_key)
        now = self._now()
        return [{**limit.to_json(), "count": window.used(api_key, now)} for limit, window in account.windows]

    def _position_rows(
        self, api_key: str, *, all_symbols: bool, symbol: str | None
    ) -> list[tuple[_Symbol, _Position]]:
        account = self._account(api_key)
        table = self._symbol_table()
        rows = []
        for name, sym in table.items():
            if symbol is not None and name != symbol:
                continue
            pos = account.positions.get(name) or _Position()
            has_orders = any(o.api_key == api_key for o in self._open.get(name, ()))
            if all_symbols or pos.amount != 0 or has_orders:
                rows.append((sym, pos))
        return rows

    def _position_numbers(self, account: _Account, sym: _Symbol, pos: _Position) -> dict[str, Decimal]:
        mark = self.mark_price(sym.name) or _Z
        notional = self._notional(sym, pos.amount, mark) if mark else _Z
        leverage = self._leverage(account, sym.name)
        bid, ask = self._open_notional(account, sym.name)
        order_margin = sum(
            (
                o.margin_rate * o.remaining
                for o in self._open.get(sym.name, ())
                if o.api_key == account.api_key
            ),
            _Z,
        )
        return {
            "mark": mark,
            "notional": notional,
            "upnl": self._upnl(sym, pos, mark or None),
            "initial": abs(notional) / leverage,
            "maint": abs(notional) * Decimal("0.004"),  # the first maintenance bracket of BTCUSDT
            "orders": order_margin,
            "bid": bid,
            "ask": ask,
        }

    def f_position_risk_v3(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v3/positionRisk: symbols with a position or open orders (spec 6.3)."""
        params = _Params(raw)
        sym_filter = self._sym(params, required=False)
        account = self._account(api_key)
        out = []
        for sym, pos in self._position_rows(
            api_key, all_symbols=False, symbol=sym_filter.name if sym_filter else None
        ):
            n = self._position_numbers(account, sym, pos)
            out.append(
                {
                    "symbol": sym.name,
                    "positionSide": "BOTH",
                    "positionAmt": self._fmt_qty(sym, pos.amount),
                    "entryPrice": _c8(pos.entry),
                    "breakEvenPrice": _c8(self._break_even(sym, pos)),
                    "markPrice": _canon(n["mark"]),
                    "unRealizedProfit": _s8(n["upnl"]),
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": _s8(n["notional"]),
                    "marginAsset": sym.margin_asset,
                    "isolatedWallet": "0",
                    "initialMargin": _s8(n["initial"] + n["orders"]),
                    "maintMargin": _s8(n["maint"]),
                    "positionInitialMargin": _s8(n["initial"]),
                    "openOrderInitialMargin": _s8(n["orders"]),
                    "adl": 0,
                    "bidNotional": _canon(n["bid"]),
                    "askNotional": _canon(n["ask"]),
                    "updateTime": pos.update_time,
                }
            )
        return out

    def f_position_risk_v2(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v2/positionRisk (every symbol, with leverage and margin type)."""
        params = _Params(raw)
        sym_filter = self._sym(params, required=False)
        account = self._account(api_key)
        out = []
        for sym, pos in self._position_rows(
            api_key, all_symbols=True, symbol=sym_filter.name if sym_filter else None
        ):
            n = self._position_numbers(account, sym, pos)
            margin_type = account.margin_type.get(sym.name, "CROSSED")
            out.append(
                {
                    "entryPrice": _c8(pos.entry),
                    "breakEvenPrice": _c8(self._break_even(sym, pos)),
                    "marginType": "cross" if margin_type == "CROSSED" else "isolated",
                    "isAutoAddMargin": "false",
                    "isolatedMargin": "0.00000000",
                    "leverage": str(self._leverage(account, sym.name)),
                    "liquidationPrice": "0",
                    "markPrice": _canon(n["mark"]),
                    "maxNotionalValue": "1000000000",
                    "positionAmt": self._fmt_qty(sym, pos.amount),
                    "notional": _canon(n["notional"]),
                    "isolatedWallet": "0",
                    "symbol": sym.name,
                    "unRealizedProfit": _s8(n["upnl"]),
                    "positionSide": "BOTH",
                    "updateTime": pos.update_time,
                }
            )
        return out

    def _assets(self, account: _Account) -> list[dict[str, Any]]:
        table = self._symbol_table()
        now = account.update_time or self._now()
        rows = []
        for asset in sorted(account.free):
            wallet = account.free[asset]
            upnl = initial = orders = maint = _Z
            for symbol, pos in account.positions.items():
                sym = table.get(symbol)
                if sym is None or sym.margin_asset != asset:
                    continue
                n = self._position_numbers(account, sym, pos)
                upnl += n["upnl"]
                initial += n["initial"]
                orders += n["orders"]
                maint += n["maint"]
            available = wallet + upnl - initial - orders
            rows.append(
                {
                    "asset": asset,
                    "walletBalance": _s8(wallet),
                    "unrealizedProfit": _s8(upnl),
                    "marginBalance": _s8(wallet + upnl),
                    "maintMargin": _s8(maint),
                    "initialMargin": _s8(initial + orders),
                    "positionInitialMargin": _s8(initial),
                    "openOrderInitialMargin": _s8(orders),
                    "crossWalletBalance": _s8(wallet),
                    "crossUnPnl": _s8(upnl),
                    "availableBalance": _s8(available),
                    "maxWithdrawAmount": _s8(min(wallet, available)),
                    "marginAvailable": True,
                    "updateTime": now,
                }
            )
        return rows

    def _totals(self, assets: list[dict[str, Any]]) -> dict[str, str]:
        """USD-M account totals over the USD-valued margin assets."""
        usd = [a for a in assets if a["asset"] in ("USDT", "USDC", "FDUSD", "BNFCR")]

        def total(key: str) -> str:
            return _s8(sum((Decimal(a[key]) for a in usd), _Z))

        return {
            "totalInitialMargin": total("initialMargin"),
            "totalMaintMargin": total("maintMargin"),
            "totalWalletBalance": total("walletBalance"),
            "totalUnrealizedProfit": total("unrealizedProfit"),
            "totalMarginBalance": total("marginBalance"),
            "totalPositionInitialMargin": total("positionInitialMargin"),
            "totalOpenOrderInitialMargin": total("openOrderInitialMargin"),
            "totalCrossWalletBalance": total("crossWalletBalance"),
            "totalCrossUnPnl": total("crossUnPnl"),
            "availableBalance": total("availableBalance"),
            "maxWithdrawAmount": total("maxWithdrawAmount"),
        }

    def f_account_v3(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v3/account: assets, and positions that are open."""
        account = self._account(api_key)
        assets = self._assets(account)
        positions = []
        for sym, pos in self._position_rows(api_key, all_symbols=False, symbol=None):
            n = self._position_numbers(account, sym, pos)
            positions.append(
                {
                    "symbol": sym.name,
                    "positionSide": "BOTH",
                    "positionAmt": self._fmt_qty(sym, pos.amount),
                    "unrealizedProfit": _s8(n["upnl"]),
                    "isolatedMargin": "0",
                    "notional": _s8(n["notional"]),
                    "isolatedWallet": "0",
                    "initialMargin": _s8(n["initial"] + n["orders"]),
                    "maintMargin": _s8(n["maint"]),
                    "updateTime": pos.update_time,
                }
            )
        return {**self._totals(assets), "assets": assets, "positions": positions}

    def f_account_v2(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v2/account (COIN-M: /dapi/v1/account): every symbol's position row."""
        account = self._account(api_key)
        assets = self._assets(account)
        positions = []
        for sym, pos in self._position_rows(api_key, all_symbols=True, symbol=None):
            n = self._position_numbers(account, sym, pos)
            positions.append(
                {
                    "symbol": sym.name,
                    "initialMargin": _s8(n["initial"] + n["orders"]),
                    "maintMargin": _s8(n["maint"]),
                    "unrealizedProfit": _s8(n["upnl"]),
                    "positionInitialMargin": _s8(n["initial"]),
                    "openOrderInitialMargin": _s8(n["orders"]),
                    "leverage": str(self._leverage(account, sym.name)),
                    "isolated": account.margin_type.get(sym.name, "CROSSED") == "ISOLATED",
                    "entryPrice": _c8(pos.entry),
                    "breakEvenPrice": _c8(self._break_even(sym, pos)),
                    "maxNotional": "1000000000",
                    "bidNotional": _canon(n["bid"]),
                    "askNotional": _canon(n["ask"]),
                    "positionSide": "BOTH",
                    "positionAmt": self._fmt_qty(sym, pos.amount),
                    "updateTime": pos.update_time,
                }
            )
        totals = {} if self.inverse else self._totals(assets)
        return futures_account_body(assets, positions, totals, inverse=self.inverse)

    def f_balance(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v2/balance and v3."""
        account = self._account(api_key)
        return [
            {
                "accountAlias": "SgsR",
                "asset": a["asset"],
                "balance": a["walletBalance"],
                "crossWalletBalance": a["crossWalletBalance"],
                "crossUnPnl": a["crossUnPnl"],
                "availableBalance": a["availableBalance"],
                "maxWithdrawAmount": a["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": a["updateTime"],
            }
            for a in self._assets(account)
        ]

    # ------------------------------------------------------------------ futures: algo orders

    def f_new_algo(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """POST /fapi/v1/algoOrder: a conditional order waiting in the algo service (spec 6.3)."""
        params = _Params(raw)
        sym = self._need_sym(params)
        algo_type = params.need("algoType")
        if algo_type != "CONDITIONAL":
            raise _invalid("algoType")
        side = params.need("side")
        if side not in ("BUY", "SELL"):
            raise _err(-1117, "Invalid side.")
        otype = params.need("type")
        if otype not in _ALGO_TYPES:
            raise _err(-1116, "Invalid orderType.")
        position_side = params.text("positionSide", "BOTH") or "BOTH"
        if position_side != "BOTH":
            raise _err(-4061, "Order's position side does not match user's setting.")
        qty = params.decimal("quantity")
        price = params.decimal("price")
        trigger = params.decimal("triggerPrice")
        close_position = params.flag("closePosition")
        reduce_only = params.flag("reduceOnly")
        working_type = params.text("workingType", "CONTRACT_PRICE") or "CONTRACT_PRICE"
        if working_type not in ("CONTRACT_PRICE", "MARK_PRICE"):
            raise _invalid("workingType")
        tif = params.enum("timeInForce", ("GTC", "IOC", "FOK", "GTX", "GTD"), -1115, "Invalid timeInForce.")
        activate = params.decimal("activatePrice")
        callback = params.decimal("callbackRate")
        if close_position:
            if otype not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise _not_required("closePosition")
            if qty is not None:
                raise _not_required("quantity")
            if reduce_only:
                raise _not_required("reduceOnly")
        elif qty is None:
            raise _mandatory("quantity")
        if otype in ("STOP", "TAKE_PROFIT"):
            if price is None:
                raise _mandatory("price")
        elif price is not None:
            raise _not_required("price")
        if otype == "TRAILING_STOP_MARKET":
            if callback is None:
                raise _mandatory("callbackRate")
            if not Decimal("0.1") <= callback <= Decimal(10):
                raise _invalid("callbackRate")
            if trigger is not None:
                raise _not_required("triggerPrice")
        else:
            if trigger is None:
                raise _mandatory("triggerPrice")
            if activate is not None or callback is not None:
                raise _not_required("activatePrice" if activate is not None else "callbackRate")
        now = self._now()
        current = self.mark_price(sym.name) if working_type == "MARK_PRICE" else self.last_price(sym.name)
        # A trailing SELL activates on a rise to activatePrice, a BUY on a fall: the other side
        # of the current price is -2021.
        wrong_side = (
            current is not None
            and activate is not None
            and ((side == "SELL" and activate <= current) or (side == "BUY" and activate >= current))
        )
        if otype == "TRAILING_STOP_MARKET" and wrong_side:
            raise _err(-2021, "Order would immediately trigger.")
        if trigger is not None and current is not None and self._algo_fires(otype, side, trigger, current):
            raise _err(-2021, "Order would immediately trigger.")
        self._check_filters(
            sym,
            side=side,
            type=otype,
            price=price,
            quantity=qty,
            stop_price=trigger,
            reduce_only=reduce_only,
            close_position=close_position,
        )
        client = self._client_id(params, "clientAlgoId") or self._new_client_id()
        self._check_duplicate(api_key, sym.name, client)
        open_algos = sum(1 for a in self._algos.values() if a.api_key == api_key and a.status == "NEW")
        if open_algos >= MAX_ALGO_ORDERS:
            raise _err(-2025, "Reach max open order limit.")
        algo = _Algo(
            api_key=api_key,
            algo_id=self._next_algo,
            client_id=client,
            symbol=sym.name,
            side=side,
            type=otype,
            qty=qty or _Z,
            price=price or _Z,
            trigger_price=trigger or _Z,
            tif=tif or "GTC",
            working_type=working_type,
            position_side=position_side,
            reduce_only=reduce_only,
            close_position=close_position,
            price_protect=params.flag("priceProtect"),
            price_match=params.text("priceMatch", "NONE") or "NONE",
            stp=params.text("selfTradePreventionMode", "EXPIRE_MAKER") or "EXPIRE_MAKER",
            activate_price=activate,
            callback_rate=callback,
            good_till=params.integer("goodTillDate") or 0,
            time=now,
            update_time=now,
        )
        self._next_algo += 1
        if otype == "TRAILING_STOP_MARKET":
            algo.extreme = current
            algo.activated = activate is None
        self._algos[algo.algo_id] = algo
        self._emit_algo(algo)
        return self._algo_json(algo)

    @staticmethod
    def _algo_fires(otype: str, side: str, trigger: Decimal, price: Decimal) -> bool:
        """STOP*: BUY at price >= trigger, SELL at <=; TAKE_PROFIT*: the reverse (spec 6.3)."""
        if otype.startswith("STOP"):
            return price >= trigger if side == "BUY" else price <= trigger
        return price <= trigger if side == "BUY" else price >= trigger

    def _trailing_fires(self, algo: _Algo, price: Decimal) -> bool:
        """TRAILING_STOP_MARKET: BUY tracks the lowest price since placement; it activates
        once that is at or below activatePrice and triggers at lowest x (1 + rate); SELL the
        mirror (spec 6.3)."""
        assert algo.callback_rate is not None
        rate = algo.callback_rate / 100
        if algo.side == "BUY":
            algo.extreme = price if algo.extreme is None else min(algo.extreme, price)
            if not algo.activated and algo.activate_price is not None and algo.extreme <= algo.activate_price:
                algo.activated = True
            return algo.activated and price >= algo.extreme * (1 + rate)
        algo.extreme = price if algo.extreme is None else max(algo.extreme, price)
        if not algo.activated and algo.activate_price is not None and algo.extreme >= algo.activate_price:
            algo.activated = True
        return algo.activated and price <= algo.extreme * (1 - rate)

    def _check_algo_triggers(self, symbol: str, price: Decimal, *, mark_only: bool) -> None:
        for algo in list(self._algos.values()):
            if algo.symbol != symbol or algo.status != "NEW":
                continue
            if algo.working_type == "MARK_PRICE":
                p = self.mark_price(symbol)
            elif mark_only:
                continue
            else:
                p = price
            if p is None:
                continue
            if algo.type == "TRAILING_STOP_MARKET":
                fires = self._trailing_fires(algo, p)
            else:
                fires = self._algo_fires(algo.type, algo.side, algo.trigger_price, p)
            if fires:
                self._fire_algo(algo)

    def _fire_algo(self, algo: _Algo) -> None:
        """The condition is met: the algo places a regular order (spec 6.3)."""
        sym = self._symbol_table()[algo.symbol]
        now = self._now()
        algo.status = "TRIGGERING"
        algo.trigger_time = now
        algo.update_time = now
        self._emit_algo(algo)
        qty = algo.qty
        reduce_only = algo.reduce_only
        if algo.close_position:
            pos = self._f_position(self._account(algo.api_key), algo.symbol)
            opposite = pos.amount < 0 if algo.side == "BUY" else pos.amount > 0
            qty = abs(pos.amount) if opposite else _Z
            reduce_only = True
        is_limit = algo.type in ("STOP", "TAKE_PROFIT")
        order = _Order(
            api_key=algo.api_key,
            symbol=algo.symbol,
            order_id=0,
            client_id=algo.client_id,
            side=algo.side,
            type="LIMIT" if is_limit else "MARKET",
            tif=algo.tif if is_limit else "GTC",
            price=algo.price if is_limit else _Z,
            qty=qty,
            time=now,
            stop_price=algo.trigger_price,
            stp=algo.stp,
            update_time=now,
            reduce_only=reduce_only,
            close_position=algo.close_position,
            orig_type=algo.type,
            working_type=algo.working_type,
            price_protect=algo.price_protect,
            price_match=algo.price_match,
            algo_id=algo.algo_id,
        )
        try:
            if qty <= 0:
                raise _err(-2022, "ReduceOnly Order is rejected.")
            self._f_admit(sym, order)
        except ApiError as exc:
            algo.status = "REJECTED"
            algo.update_time = now
            self._emit_algo(algo, reason=exc.msg)
            return
        self._store(order)
        algo.actual_order = order
        algo.status = "TRIGGERED"
        self._emit_algo(algo)
        self._f_emit_order(order, "NEW")
        order.working = True
        order.working_time = now
        self._match(sym, order)

    def _finish_algo(self, algo: _Algo) -> None:
        if algo.status == "TRIGGERED":
            algo.status = "FINISHED"
            algo.update_time = self._now()
            self._emit_algo(algo)

    def _algo_json(self, algo: _Algo) -> dict[str, Any]:
        sym = self._symbol_table()[algo.symbol]
        actual = algo.actual_order
        return {
            "algoId": algo.algo_id,
            "clientAlgoId": algo.client_id,
            "algoType": "CONDITIONAL",
            "orderType": algo.type,
            "symbol": algo.symbol,
            "side": algo.side,
            "positionSide": algo.position_side,
            "timeInForce": algo.tif,
            "quantity": self._fmt_qty(sym, algo.qty),
            "algoStatus": algo.status,
            "actualOrderId": str(actual.order_id) if actual is not None else "",
            "actualPrice": self._fmt_price(sym, self._avg_price(actual)) if actual is not None else "0",
            "triggerPrice": self._fmt_price(sym, algo.trigger_price),
            "price": self._fmt_price(sym, algo.price),
            "icebergQuantity": None,
            "tpTriggerPrice": "0",
            "tpPrice": "0",
            "slTriggerPrice": "0",
            "slPrice": "0",
            "tpOrderType": "",
            "selfTradePreventionMode": algo.stp,
            "workingType": algo.working_type,
            "priceMatch": algo.price_match,
            "closePosition": algo.close_position,
            "priceProtect": algo.price_protect,
            "reduceOnly": algo.reduce_only,
            "activatePrice": self._fmt_price(sym, algo.activate_price)
            if algo.activate_price is not None
            else "",
            "callbackRate": _canon(algo.callback_rate) if algo.callback_rate is not None else "",
            "createTime": algo.time,
            "updateTime": algo.update_time,
            "triggerTime": algo.trigger_time,
            "goodTillDate": algo.good_till,
        }

    def _emit_algo(self, algo: _Algo, reason: str = "") -> None:
        """``ALGO_UPDATE`` (spec 8.2)."""
        sym = self._symbol_table()[algo.symbol]
        actual = algo.actual_order
        now = self._now()
        self._emit(
            algo.api_key,
            {
                "e": "ALGO_UPDATE",
                "T": now,
                "E": now,
                "o": {
                    "caid": algo.client_id,
                    "aid": algo.algo_id,
                    "at": "CONDITIONAL",
                    "o": algo.type,
                    "s": algo.symbol,
                    "S": algo.side,
                    "ps": algo.position_side,
                    "f": algo.tif,
                    "q": self._fmt_qty(sym, algo.qty),
                    "X": algo.status,
                    "ai": str(actual.order_id) if actual is not None else "",
                    "ap": self._fmt_price(sym, self._avg_price(actual)) if actual is not None else "0",
                    "aq": self._fmt_qty(sym, actual.executed) if actual is not None else "0",
                    "act": actual.type if actual is not None else "",
                    "tp": self._fmt_price(sym, algo.trigger_price),
                    "p": self._fmt_price(sym, algo.price),
                    "V": algo.stp,
                    "wt": algo.working_type,
                    "pm": algo.price_match,
                    "cp": algo.close_position,
                    "pP": algo.price_protect,
                    "R": algo.reduce_only,
                    "tt": algo.trigger_time,
                    "gtd": algo.good_till,
                    "rm": reason,
                },
            },
        )

    def _find_algo(self, api_key: str, params: _Params, missing: ApiError) -> _Algo:
        algo_id = params.integer("algoId")
        client = params.text("clientAlgoId")
        if algo_id is None and client is None:
            raise _err(-1102, "Either algoId or clientAlgoId must be sent.")
        if algo_id is not None:
            algo = self._algos.get(algo_id)
            if algo is None or algo.api_key != api_key or (client is not None and algo.client_id != client):
                raise missing
            return algo
        for algo in reversed(list(self._algos.values())):
            if algo.api_key == api_key and algo.client_id == client:
                return algo
        raise missing

    def f_cancel_algo(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /fapi/v1/algoOrder: an untriggered algo order."""
        params = _Params(raw)
        algo = self._find_algo(api_key, params, _err(-2011, "Unknown order sent."))
        if algo.status != "NEW":
            raise _err(-2011, "Unknown order sent.")
        algo.status = "CANCELED"
        algo.update_time = self._now()
        self._emit_algo(algo)
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_id, "code": "200", "msg": "success"}

    def f_query_algo(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/algoOrder."""
        params = _Params(raw)
        return self._algo_json(self._find_algo(api_key, params, _err(-2013, "Order does not exist.")))

    def f_open_algos(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """GET /fapi/v1/openAlgoOrders (one symbol, or all)."""
        params = _Params(raw)
        sym = self._sym(params, required=False)
        return [
            self._algo_json(a)
            for a in self._algos.values()
            if a.api_key == api_key and a.status == "NEW" and (sym is None or a.symbol == sym.name)
        ]

    def f_cancel_all_algos(self, raw: Mapping[str, Any], api_key: str) -> Any:
        """DELETE /fapi/v1/algoOpenOrders."""
        params = _Params(raw)
        sym = self._need_sym(params)
        now = self._now()
        for algo in list(self._algos.values()):
            if algo.api_key == api_key and algo.status == "NEW" and algo.symbol == sym.name:
                algo.status = "CANCELED"
                algo.update_time = now
                self._emit_algo(algo)
        return dict(_SUCCESS_CANCEL_ALL)


def _no_discount() -> dict[str, Any]:
    """The commission answers' ``discount``: no BNB discount on this exchange."""
    return {
        "enabledForAccount": False,
        "enabledForSymbol": False,
        "discountAsset": "BNB",
        "discount": "0.00000000",
    }


def _list_legs(olist: _OrderList) -> list[dict[str, Any]]:
    """An order list's orders as its answers name them (``orders``)."""
    return [{"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_id} for o in olist.orders]


class _LegParams(_Params):
    """An order-list leg's parameters under their plain names (``abovePrice`` -> ``price``,
    ``aboveClientOrderId`` -> ``newClientOrderId``); list-wide ones keep theirs."""

    _SHARED: Final = frozenset({"symbol", "selfTradePreventionMode", "newOrderRespType"})

    def __init__(self, raw: Mapping[str, Any], prefix: str) -> None:
        super().__init__(raw)
        self.prefix = prefix

    def _name(self, name: str) -> str:
        if name in self._SHARED:
            return name
        if name == "newClientOrderId":
            name = "clientOrderId"
        return self.prefix + name[0].upper() + name[1:]
