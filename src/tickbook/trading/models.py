"""Typed REST answers: market data, spot orders and account, USD-M orders and account.

Every Struct mirrors one JSON shape the exchange sends (spot REST API and WebSocket API
``result`` objects, USD-M REST API), with readable snake_case attributes that keep the wire
names: most Structs use ``rename="camel"`` (``orig_qty`` reads ``origQty``); the few keys that
camel case cannot spell (``isRPITrade``, one-letter aggregate-trade keys) are named one by one.

Decoding rules, shared with ``tickbook.streams``:

* Prices, quantities, rates and balances arrive as JSON strings and are typed
  ``decimal.Decimal``: msgspec builds each from its text, so ``"0.00150000"`` stays exactly
  ``Decimal("0.00150000")``. No field is a float.
* Keys the exchange adds later are ignored, so a new field never breaks decoding.
* Keys that only some answers carry (ACK vs RESULT vs FULL order responses, the conditional
  order fields of spec section 6.1, v2 vs v3 futures account shapes) default to ``None``
  (or an empty tuple for arrays), so one Struct covers every variant of an endpoint.
* The few values the exchange sends as an empty string where a number is expected (USD-M
  algo orders' ``activatePrice``/``callbackRate``/``actualOrderId`` before they apply) are
  kept as text, with a property that converts them (``None`` when blank).

Decode with ``decode(body, SpotOrder)`` or ``decode(body, list[MyTrade])`` (cached decoders),
or directly with ``msgspec.json.decode(body, type=X)``: the Structs need no hooks. Klines
arrive as arrays: ``Kline`` is ``array_like``, and ``decode_klines`` reads a klines answer.
Two answers mix shapes in one array: ``decode_cancel_all`` (spot ``DELETE
/api/v3/openOrders``: orders and order lists) and ``decode_batch_orders`` (USD-M
``batchOrders``: orders and per-order errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import msgspec

__all__ = [
    "AggTrade",
    "AlgoOrder",
    "AmendKeepPriorityResponse",
    "AmendedOrder",
    "ApiMessage",
    "AvgPrice",
    "Balance",
    "BookTicker",
    "CancelReplaceResponse",
    "CommissionRates",
    "Discount",
    "Fill",
    "FuturesAccount",
    "FuturesAsset",
    "FuturesBalance",
    "FuturesOrder",
    "FuturesPosition",
    "FuturesTrade",
    "Kline",
    "LeverageResponse",
    "ListenKey",
    "MyTrade",
    "OrderList",
    "OrderListLeg",
    "OrderRateLimit",
    "PositionRisk",
    "PriceTicker",
    "ServerTime",
    "SpotAccount",
    "SpotOrder",
    "TestOrderCommission",
    "Ticker24h",
    "Trade",
    "decode",
    "decode_batch_orders",
    "decode_cancel_all",
    "decode_klines",
]

T = TypeVar("T")

# Order states after which nothing changes any more (spec section 6.1; futures 6.3).
FINAL_STATUSES: Final = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})


def _blank_decimal(text: str | None) -> Decimal | None:
    """``Decimal(text)``, or ``None`` for the empty strings some answers send for "not set"."""
    if text is None or not text.strip():
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _blank_int(text: str | int | None) -> int | None:
    if text is None or isinstance(text, int):
        return text
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


class _Model(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """Common configuration: immutable, camelCase wire names, no GC tracking (no cycles)."""


class ApiMessage(_Model, frozen=True):
    """``{"code", "msg"}``: an error inside a successful answer, or a bare acknowledgement.

    Appears as one half of a failed ``cancelReplace``, as one entry of a futures
    ``batchOrders`` answer, and as the whole answer of ``POST /fapi/v1/marginType``
    (``{"code": 200, "msg": "success"}``).
    """

    code: int
    msg: str


# =========================================================================== market data


class ServerTime(_Model, frozen=True):
    """``GET /api/v3/time`` / ``/fapi/v1/time``."""

    server_time: int  # ms since the epoch (µs with the microsecond time unit)


class Trade(_Model, frozen=True):
    """One entry of spot ``GET /api/v3/trades`` and ``/api/v3/historicalTrades``."""

    id: int
    price: Decimal
    qty: Decimal  # base asset
    quote_qty: Decimal  # price * qty, quote asset
    time: int  # ms
    is_buyer_maker: bool  # true: the taker sold
    is_best_match: bool | None = None  # spot only; always true on current data


class FuturesTrade(_Model, frozen=True):
    """One entry of futures ``GET /trades`` and ``/historicalTrades``: USD-M ``/fapi/v1``
    and COIN-M ``/dapi/v1``.

    The markets differ in the size field: USD-M writes ``quoteQty`` (``price * qty``, in the
    quote asset); COIN-M, whose ``qty`` counts contracts, writes ``baseQty`` (the trade's
    value in the base asset: ``qty * contractSize / price``). Each is None on the other market.
    """

    id: int
    price: Decimal
    qty: Decimal  # USD-M: base asset; COIN-M: contracts
    time: int
    is_buyer_maker: bool
    quote_qty: Decimal | None = None  # USD-M only
    base_qty: Decimal | None = None  # COIN-M only
    is_rpi_trade: bool | None = msgspec.field(default=None, name="isRPITrade")  # RPI order involved


class AggTrade(msgspec.Struct, frozen=True, gc=False):
    """One entry of ``GET /api/v3/aggTrades`` / ``/fapi/v1/aggTrades`` (one-letter keys)."""

    agg_trade_id: int = msgspec.field(name="a")
    price: Decimal = msgspec.field(name="p")
    qty: Decimal = msgspec.field(name="q")
    first_trade_id: int = msgspec.field(name="f")
    last_trade_id: int = msgspec.field(name="l")
    time: int = msgspec.field(name="T")
    is_buyer_maker: bool = msgspec.field(name="m")
    is_best_match: bool | None = msgspec.field(default=None, name="M")  # spot only
    rpi_excluded_qty: Decimal | None = msgspec.field(default=None, name="nq")  # USD-M: without RPI


class Kline(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One candlestick of ``GET /api/v3/klines`` / ``/fapi/v1/klines``: a 12-element array.

    Elements past the twelfth (should the exchange append any) are ignored.
    """

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base asset (contracts on COIN-M)
    close_time: int
    quote_volume: Decimal
    trades: int  # number of trades
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal
    ignore: str | None = None  # documented as "Unused field, ignore."


class AvgPrice(_Model, frozen=True):
    """Spot ``GET /api/v3/avgPrice``: the average price over the last ``mins`` minutes."""

    mins: int
    price: Decimal
    close_time: int | None = None  # last trade time included


class Ticker24h(_Model, frozen=True):
    """``GET /api/v3/ticker/24hr`` (FULL or MINI) and ``/fapi/v1/ticker/24hr``.

    Spot FULL adds ``prevClosePrice`` and the best bid/ask; MINI drops the change fields;
    futures has no bid/ask. COIN-M counts volume in contracts and its turnover in the base
    coin (``baseVolume``, ``pair``), with no ``quoteVolume``. Missing keys read ``None``.
    """

    symbol: str
    last_price: Decimal
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    volume: Decimal
    open_time: int
    close_time: int
    count: int
    quote_volume: Decimal | None = None  # spot and USD-M
    base_volume: Decimal | None = None  # COIN-M
    pair: str | None = None  # COIN-M
    first_id: int | None = None  # -1 when no trade in the window
    last_id: int | None = None
    price_change: Decimal | None = None
    price_change_percent: Decimal | None = None
    weighted_avg_price: Decimal | None = None
    prev_close_price: Decimal | None = None
    last_qty: Decimal | None = None
    bid_price: Decimal | None = None
    bid_qty: Decimal | None = None
    ask_price: Decimal | None = None
    ask_qty: Decimal | None = None


class PriceTicker(_Model, frozen=True):
    """``GET /api/v3/ticker/price`` / ``/fapi/v1/ticker/price`` (futures adds ``time``)."""

    symbol: str
    price: Decimal
    time: int | None = None


class BookTicker(_Model, frozen=True):
    """``GET /api/v3/ticker/bookTicker`` / ``/fapi/v1/ticker/bookTicker``."""

    symbol: str
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    time: int | None = None  # futures only
    last_update_id: int | None = None  # futures only


# ================================================================================ spot


class Fill(_Model, frozen=True):
    """One trade of a FULL order response (spec section 6.1)."""

    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int | None = None


class SpotOrder(_Model, frozen=True):
    """A spot order as the exchange reports it; one Struct for every order-shaped answer.

    ``POST /api/v3/order`` with ACK (ids and ``transactTime`` only), RESULT or FULL (adds
    ``fills``), ``GET /api/v3/order``, ``DELETE /api/v3/order`` (``origClientOrderId`` is the
    order's id, ``clientOrderId`` the cancel's), ``openOrders``, ``allOrders``, the legs of
    order lists, and the halves of ``cancelReplace``. Conditional fields (spec section 6.1,
    "Conditional fields in Order Responses") default to ``None``.
    """

    symbol: str
    order_id: int
    client_order_id: str
    order_list_id: int | None = None  # -1 unless part of an order list
    orig_client_order_id: str | None = None  # cancels: the canceled order's client id
    transact_time: int | None = None
    price: Decimal | None = None
    orig_qty: Decimal | None = None
    executed_qty: Decimal | None = None
    orig_quote_order_qty: Decimal | None = None
    cummulative_quote_qty: Decimal | None = None  # sic: the exchange's spelling
    status: str | None = None
    time_in_force: str | None = None
    type: str | None = None
    side: str | None = None
    stop_price: Decimal | None = None
    iceberg_qty: Decimal | None = None
    time: int | None = None  # GET /order: creation time
    update_time: int | None = None
    is_working: bool | None = None
    working_time: int | None = None  # -1 while a stop order is not triggered
    self_trade_prevention_mode: str | None = None
    fills: tuple[Fill, ...] = ()
    prevented_match_id: int | None = None
    prevented_quantity: Decimal | None = None
    strategy_id: int | None = None
    strategy_type: int | None = None
    trailing_delta: int | None = None
    trailing_time: int | None = None
    used_sor: bool | None = None
    working_floor: str | None = None
    peg_price_type: str | None = None
    peg_offset_type: str | None = None
    peg_offset_value: int | None = None
    pegged_price: Decimal | None = None
    expiry_reason: str | None = None

    @property
    def is_final(self) -> bool:
        """The order can change no more (filled, canceled, rejected or expired)."""
        return self.status in FINAL_STATUSES

    @property
    def average_price(self) -> Decimal | None:
        """Average fill price (cumulative quote / executed quantity), ``None`` before a fill."""
        if not self.executed_qty or self.cummulative_quote_qty is None:
            return None
        return self.cummulative_quote_qty / self.executed_qty


class CancelReplaceResponse(_Model, frozen=True, gc=True):
    """``POST /api/v3/order/cancelReplace``: both halves of the request (spec section 6.1).

    On HTTP 200 both halves are orders. On 409 (``-2021``) and 400 (``-2022``) the exchange
    sends ``{"code", "msg", "data": {...}}`` and this Struct is the ``data`` object: a failed
    half is ``{"code", "msg"}`` and a half that was not attempted is ``null``.
    ``from_data`` builds one from that object (``CancelReplacePartial`` carries it); the
    ``cancel_order``/``new_order`` and ``cancel_error``/``new_order_error`` properties sort
    the halves.
    """

    cancel_result: str  # SUCCESS, FAILURE
    new_order_result: str  # SUCCESS, FAILURE, NOT_ATTEMPTED
    cancel_response: dict[str, Any] | None = None
    new_order_response: dict[str, Any] | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CancelReplaceResponse:
        """Build from the body (200) or the error's ``data`` object (409/400)."""
        return msgspec.convert(dict(data), cls)

    @staticmethod
    def _order(half: dict[str, Any] | None) -> SpotOrder | None:
        if half is None or "orderId" not in half:
            return None
        return msgspec.convert(half, SpotOrder)

    @staticmethod
    def _error(half: dict[str, Any] | None) -> ApiMessage | None:
        if half is None or "orderId" in half or "code" not in half:
            return None
        return msgspec.convert(half, ApiMessage)

    @property
    def cancel_order(self) -> SpotOrder | None:
        """The canceled order, when the cancel succeeded."""
        return self._order(self.cancel_response)

    @property
    def new_order(self) -> SpotOrder | None:
        """The new order, when it was placed."""
        return self._order(self.new_order_response)

    @property
    def cancel_error(self) -> ApiMessage | None:
        """Why the cancel failed, when it did."""
        return self._error(self.cancel_response)

    @property
    def new_order_error(self) -> ApiMessage | None:
        """Why the new order failed, when it did (``None`` also when not attempted)."""
        return self._error(self.new_order_response)


class OrderListLeg(_Model, frozen=True):
    """One entry of an order list's ``orders``: the ids of a leg."""

    symbol: str
    order_id: int
    client_order_id: str


class OrderList(_Model, frozen=True):
    """An OCO / OTO / OTOCO / OPO list: placement, cancel and query answers (spec 6.2).

    ``orderReports`` (full leg states) comes with placement and cancel answers only;
    ``listStatusType`` and ``transactionTime`` are absent from the ``listStatus`` object of
    an amend answer.
    """

    order_list_id: int
    contingency_type: str  # OCO, OTO, OTOCO, OPO, OPOCO
    list_order_status: str  # EXECUTING, ALL_DONE, REJECT
    list_client_order_id: str
    symbol: str
    orders: tuple[OrderListLeg, ...] = ()
    order_reports: tuple[SpotOrder, ...] = ()
    list_status_type: str | None = None  # RESPONSE, EXEC_STARTED, UPDATED, ALL_DONE
    transaction_time: int | None = None


class CommissionRates(_Model, frozen=True):
    """Commission rates as fractions (``"0.00100000"`` is 0.1 %)."""

    maker: Decimal
    taker: Decimal
    buyer: Decimal | None = None  # account-level rates only
    seller: Decimal | None = None


class Discount(_Model, frozen=True):
    """The BNB commission discount of ``computeCommissionRates`` answers."""

    enabled_for_account: bool
    enabled_for_symbol: bool
    discount_asset: str
    discount: Decimal  # the standard commission is reduced by this rate


class TestOrderCommission(_Model, frozen=True):
    """``POST /api/v3/order/test``: ``{}`` without ``computeCommissionRates`` (all ``None``)."""

    standard_commission_for_order: CommissionRates | None = None
    special_commission_for_order: CommissionRates | None = None
    tax_commission_for_order: CommissionRates | None = None
    discount: Discount | None = None


class Balance(_Model, frozen=True):
    """One asset of a spot account."""

    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class SpotAccount(_Model, frozen=True):
    """``GET /api/v3/account``."""

    balances: tuple[Balance, ...]
    maker_commission: int | None = None  # bips, legacy; see commission_rates
    taker_commission: int | None = None
    buyer_commission: int | None = None
    seller_commission: int | None = None
    commission_rates: CommissionRates | None = None
    can_trade: bool | None = None
    can_withdraw: bool | None = None
    can_deposit: bool | None = None
    brokered: bool | None = None
    require_self_trade_prevention: bool | None = None
    prevent_sor: bool | None = None
    update_time: int | None = None
    account_type: str | None = None
    permissions: tuple[str, ...] = ()
    uid: int | None = None

    def balance(self, asset: str) -> Balance | None:
        """The balance of ``asset``, ``None`` when the account does not list it."""
        for entry in self.balances:
            if entry.asset == asset:
                return entry
        return None


class MyTrade(_Model, frozen=True):
    """One entry of ``GET /api/v3/myTrades``: a fill of one of the account's orders."""

    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool
    order_list_id: int | None = None
    is_best_match: bool | None = None


class OrderRateLimit(_Model, frozen=True):
    """One entry of ``GET /api/v3/rateLimit/order``: the unfilled-order count of an interval."""

    rate_limit_type: str  # ORDERS
    interval: str  # SECOND, MINUTE, DAY
    interval_num: int
    limit: int
    count: int | None = None


class AmendedOrder(_Model, frozen=True):
    """The order of an amend answer. Its keys differ from ``SpotOrder``'s: ``qty`` and
    ``cumulativeQuoteQty`` (spelled right here), plus ``preventedQty``."""

    symbol: str
    order_id: int
    client_order_id: str
    order_list_id: int | None = None
    orig_client_order_id: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None  # the new quantity
    executed_qty: Decimal | None = None
    prevented_qty: Decimal | None = None
    quote_order_qty: Decimal | None = None
    cumulative_quote_qty: Decimal | None = None
    status: str | None = None
    time_in_force: str | None = None
    type: str | None = None
    side: str | None = None
    working_time: int | None = None
    self_trade_prevention_mode: str | None = None
    stop_price: Decimal | None = None
    iceberg_qty: Decimal | None = None
    strategy_id: int | None = None
    strategy_type: int | None = None
    trailing_delta: int | None = None
    trailing_time: int | None = None
    expiry_reason: str | None = None


class AmendKeepPriorityResponse(_Model, frozen=True):
    """``PUT /api/v3/order/amend/keepPriority``: quantity reduced, queue priority kept."""

    transact_time: int
    execution_id: int
    amended_order: AmendedOrder
    list_status: OrderList | None = None  # when the order belongs to an order list


# ========================================================================= USD-M futures


class FuturesOrder(_Model, frozen=True):
    """A USD-M order: ``POST/GET/DELETE/PUT /fapi/v1/order``, open and all orders.

    ``avgPrice`` and ``cumQuote`` are being removed from place, cancel and modify answers
    (spec section 6.3): they are optional; query the order or follow the user-data stream.
    """

    symbol: str
    order_id: int
    client_order_id: str
    status: str | None = None
    price: Decimal | None = None
    avg_price: Decimal | None = None
    orig_qty: Decimal | None = None
    executed_qty: Decimal | None = None
    cum_qty: Decimal | None = None
    cum_quote: Decimal | None = None
    time_in_force: str | None = None
    type: str | None = None
    orig_type: str | None = None
    side: str | None = None
    position_side: str | None = None
    reduce_only: bool | None = None
    close_position: bool | None = None
    stop_price: Decimal | None = None
    working_type: str | None = None
    price_protect: bool | None = None
    price_match: str | None = None
    self_trade_prevention_mode: str | None = None
    good_till_date: int | None = None
    activate_price: Decimal | None = None  # trailing stops only
    price_rate: Decimal | None = None  # trailing stops: callback rate
    time: int | None = None  # queries: creation time
    update_time: int | None = None
    modify_id: int | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class AlgoOrder(_Model, frozen=True):
    """A USD-M conditional order of the Algo Service (spec section 6.3).

    ``POST/GET /fapi/v1/algoOrder``, ``openAlgoOrders``, ``allAlgoOrders``. Values sent as
    an empty string until they apply are kept as text; read them through the properties.
    """

    algo_id: int
    client_algo_id: str
    symbol: str
    algo_type: str | None = None  # CONDITIONAL
    order_type: str | None = None  # STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT, TRAILING_STOP_MARKET
    side: str | None = None
    position_side: str | None = None
    time_in_force: str | None = None
    quantity: Decimal | None = None
    algo_status: str | None = None  # NEW, CANCELED, TRIGGERING, TRIGGERED, FINISHED, REJECTED, EXPIRED
    trigger_price: Decimal | None = None
    price: Decimal | None = None
    iceberg_quantity: Decimal | None = None
    self_trade_prevention_mode: str | None = None
    working_type: str | None = None
    price_match: str | None = None
    close_position: bool | None = None
    price_protect: bool | None = None
    reduce_only: bool | None = None
    activate_price_text: str | None = msgspec.field(default=None, name="activatePrice")
    callback_rate_text: str | None = msgspec.field(default=None, name="callbackRate")
    actual_order_id_text: str | None = msgspec.field(default=None, name="actualOrderId")
    actual_price: Decimal | None = None
    create_time: int | None = None
    update_time: int | None = None
    trigger_time: int | None = None  # 0 until triggered
    good_till_date: int | None = None

    @property
    def activate_price(self) -> Decimal | None:
        """Trailing stops: the activation price; ``None`` when not set."""
        return _blank_decimal(self.activate_price_text)

    @property
    def callback_rate(self) -> Decimal | None:
        """Trailing stops: the callback rate in percent (1 = 1 %); ``None`` when not set."""
        return _blank_decimal(self.callback_rate_text)

    @property
    def actual_order_id(self) -> int | None:
        """The order placed in the matching engine once triggered; ``None`` before."""
        return _blank_int(self.actual_order_id_text)


class LeverageResponse(_Model, frozen=True):
    """``POST /fapi/v1/leverage``."""

    leverage: int
    max_notional_value: Decimal
    symbol: str


class PositionRisk(_Model, frozen=True):
    """One entry of ``GET /fapi/v3/positionRisk`` (symbols with a position or open orders)."""

    symbol: str
    position_side: str  # BOTH, LONG, SHORT
    position_amt: Decimal  # negative when short
    entry_price: Decimal
    mark_price: Decimal
    un_realized_profit: Decimal
    liquidation_price: Decimal
    break_even_price: Decimal | None = None
    isolated_margin: Decimal | None = None
    notional: Decimal | None = None
    margin_asset: str | None = None
    isolated_wallet: Decimal | None = None
    initial_margin: Decimal | None = None
    maint_margin: Decimal | None = None
    position_initial_margin: Decimal | None = None
    open_order_initial_margin: Decimal | None = None
    adl: int | None = None
    bid_notional: Decimal | None = None
    ask_notional: Decimal | None = None
    update_time: int | None = None


class FuturesAsset(_Model, frozen=True):
    """One asset of ``GET /fapi/v3/account``."""

    asset: str
    wallet_balance: Decimal
    unrealized_profit: Decimal
    margin_balance: Decimal
    maint_margin: Decimal
    initial_margin: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    cross_wallet_balance: Decimal
    cross_un_pnl: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    margin_available: bool | None = None
    update_time: int | None = None


class FuturesPosition(_Model, frozen=True):
    """One position of ``GET /fapi/v3/account`` (v3 lists only symbols with a position)."""

    symbol: str
    position_side: str
    position_amt: Decimal
    unrealized_profit: Decimal
    isolated_margin: Decimal | None = None
    notional: Decimal | None = None
    isolated_wallet: Decimal | None = None
    initial_margin: Decimal | None = None
    maint_margin: Decimal | None = None
    position_initial_margin: Decimal | None = None
    open_order_initial_margin: Decimal | None = None
    entry_price: Decimal | None = None  # v2 shape only
    isolated: bool | None = None  # v2 shape only
    update_time: int | None = None


class FuturesAccount(_Model, frozen=True):
    """``GET /fapi/v3/account`` (the ``total*`` fields count the USDT asset only)."""

    total_initial_margin: Decimal
    total_maint_margin: Decimal
    total_wallet_balance: Decimal
    total_unrealized_profit: Decimal
    total_margin_balance: Decimal
    total_position_initial_margin: Decimal
    total_open_order_initial_margin: Decimal
    total_cross_wallet_balance: Decimal
    total_cross_un_pnl: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    assets: tuple[FuturesAsset, ...] = ()
    positions: tuple[FuturesPosition, ...] = ()
    fee_tier: int | None = None  # v2 shape only
    can_trade: bool | None = None
    can_deposit: bool | None = None
    can_withdraw: bool | None = None
    update_time: int | None = None

    def asset(self, name: str) -> FuturesAsset | None:
        """The entry of asset ``name``, ``None`` when the account does not list it."""
        for entry in self.assets:
            if entry.asset == name:
                return entry
        return None


class FuturesBalance(_Model, frozen=True):
    """One entry of ``GET /fapi/v3/balance``."""

    asset: str
    balance: Decimal
    cross_wallet_balance: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    account_alias: str | None = None
    cross_un_pnl: Decimal | None = None
    margin_available: bool | None = None
    update_time: int | None = None


class ListenKey(_Model, frozen=True):
    """``POST``/``PUT /fapi/v1/listenKey``."""

    listen_key: str


# =============================================================================== decoding

_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(body: bytes | bytearray | memoryview | str, type: type[T]) -> T:
    """Decode one JSON answer into ``type`` (a Struct, or ``list[Struct]``).

    Decoders are built once per type and reused. Raises ``msgspec.DecodeError`` for text
    that is not JSON and ``msgspec.ValidationError`` for JSON of the wrong shape.
    """
    decoder = _DECODERS.get(type)
    if decoder is None:
        decoder = _DECODERS[type] = msgspec.json.Decoder(type)
    result: T = decoder.decode(body)
    return result


def decode_klines(body: bytes | bytearray | memoryview | str) -> list[Kline]:
    """A klines answer: an array of 12-element arrays."""
    return decode(body, list[Kline])


def decode_cancel_all(body: bytes | bytearray | memoryview | str) -> list[SpotOrder | OrderList]:
    """Spot ``DELETE /api/v3/openOrders``: canceled orders and canceled order lists, mixed.

    Entries with ``contingencyType`` are order lists; every other entry is an order.
    """
    entries = decode(body, list[dict[str, Any]])
    return [
        msgspec.convert(entry, OrderList) if "contingencyType" in entry else msgspec.convert(entry, SpotOrder)
        for entry in entries
    ]


def decode_batch_orders(body: bytes | bytearray | memoryview | str) -> list[FuturesOrder | ApiMessage]:
    """USD-M ``POST``/``PUT``/``DELETE /fapi/v1/batchOrders``: one entry per order, in order.

    An order that failed is ``{"code", "msg"}`` (an ``ApiMessage``) in its place.
    """
    entries = decode(body, list[dict[str, Any]])
    return [
        msgspec.convert(entry, FuturesOrder) if "orderId" in entry else msgspec.convert(entry, ApiMessage)
        for entry in entries
    ]
