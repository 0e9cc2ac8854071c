"""User-data events: spot (WebSocket API subscription) and USD-M (listenKey stream).

Spot events arrive on the WebSocket API as ``{"subscriptionId": N, "event": {...}}`` (spec
section 8.1; ``eventStreamTerminated`` and ``serverShutdown`` may come without a
subscription id). USD-M events arrive on ``/private/ws/<listenKey>`` as the event object
itself, or as ``{"stream": ..., "data": {...}}`` on a combined connection (spec 8.2).

Each event type is a frozen msgspec Struct, tagged on the ``e`` key, so one decode reads the
frame and picks the right Struct. The exchange's one-letter keys become readable attributes
(``client_order_id`` reads ``c``); the keys sit next to each field. Decimal values are
``decimal.Decimal``, built from the text. Unknown keys are ignored. An event type this module
does not know decodes to ``UnknownEvent(event_type, raw)`` instead of failing, so a new
event the exchange starts sending never stops a stream.

The cancel subtlety (spec 8.1): in an ``executionReport`` for a cancel, ``c`` is the *cancel
request's* client id and ``C`` the canceled order's. ``ExecutionReport.order_client_id``
returns the order's own client id in every case; key order state on ``order_id`` (``i``) or
on that property, never on ``client_order_id`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, TypeAlias

import msgspec

from tickbook._types import Market
from tickbook.trading.models import _blank_decimal

__all__ = [
    "AccountConfigUpdate",
    "AccountUpdate",
    "AccountUpdateBalance",
    "AccountUpdateData",
    "AccountUpdatePosition",
    "AlgoOrderUpdate",
    "AlgoUpdate",
    "BalanceUpdate",
    "EventStreamTerminated",
    "ExecutionReport",
    "ExternalLockUpdate",
    "FuturesEvent",
    "FuturesOrderUpdate",
    "LeverageConfig",
    "ListStatus",
    "ListStatusOrder",
    "ListenKeyExpired",
    "MarginCall",
    "MarginCallPosition",
    "MultiAssetsConfig",
    "OrderTradeUpdate",
    "OutboundAccountPosition",
    "PositionBalance",
    "ServerShutdown",
    "SpotEvent",
    "TradeLite",
    "UnknownEvent",
    "UserEvent",
    "decode_spot_frame",
    "decode_user_event",
]


class UserEvent(msgspec.Struct, frozen=True, gc=False, tag_field="e"):
    """Base of every user-data event; the tag (the ``e`` key) is the event type."""

    @property
    def event_type(self) -> str:
        """The ``e`` key: ``"executionReport"``, ``"ORDER_TRADE_UPDATE"``, ..."""
        return str(type(self).__struct_config__.tag)


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event whose type this module does not know, kept as the exchange sent it."""

    event_type: str  # the "e" key ("" when the object had none)
    raw: dict[str, Any]


# ================================================================================== spot


class ExecutionReport(UserEvent, frozen=True, tag="executionReport"):
    """Spot ``executionReport``: an order was accepted, traded, canceled, expired or amended.

    ``x`` (``execution_type``) is NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED or
    TRADE_PREVENTION; ``X`` (``order_status``) the order's state after it. Average fill price
    is ``cumulative_quote_qty / cumulative_qty``.
    """

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    client_order_id: str = msgspec.field(name="c")  # on a cancel: the cancel request's id
    side: str = msgspec.field(name="S")
    order_type: str = msgspec.field(name="o")
    quantity: Decimal = msgspec.field(name="q")
    price: Decimal = msgspec.field(name="p")
    execution_type: str = msgspec.field(name="x")
    order_status: str = msgspec.field(name="X")
    order_id: int = msgspec.field(name="i")
    last_qty: Decimal = msgspec.field(name="l")  # quantity of this fill
    cumulative_qty: Decimal = msgspec.field(name="z")
    last_price: Decimal = msgspec.field(name="L")  # price of this fill
    transaction_time: int = msgspec.field(name="T")
    time_in_force: str | None = msgspec.field(default=None, name="f")
    stop_price: Decimal | None = msgspec.field(default=None, name="P")
    iceberg_qty: Decimal | None = msgspec.field(default=None, name="F")
    order_list_id: int | None = msgspec.field(default=None, name="g")  # -1 when none
    orig_client_order_id: str | None = msgspec.field(default=None, name="C")  # cancels: the order's id
    reject_reason: str | None = msgspec.field(default=None, name="r")
    commission: Decimal | None = msgspec.field(default=None, name="n")
    commission_asset: str | None = msgspec.field(default=None, name="N")  # null until a fill
    trade_id: int | None = msgspec.field(default=None, name="t")  # -1 when not a trade
    execution_id: int | None = msgspec.field(default=None, name="I")
    is_working: bool | None = msgspec.field(default=None, name="w")  # on the book
    is_maker: bool | None = msgspec.field(default=None, name="m")
    order_creation_time: int | None = msgspec.field(default=None, name="O")
    cumulative_quote_qty: Decimal | None = msgspec.field(default=None, name="Z")
    last_quote_qty: Decimal | None = msgspec.field(default=None, name="Y")
    quote_order_qty: Decimal | None = msgspec.field(default=None, name="Q")
    working_time: int | None = msgspec.field(default=None, name="W")
    self_trade_prevention_mode: str | None = msgspec.field(default=None, name="V")
    trailing_delta: int | None = msgspec.field(default=None, name="d")
    trailing_time: int | None = msgspec.field(default=None, name="D")
    strategy_id: int | None = msgspec.field(default=None, name="j")
    strategy_type: int | None = msgspec.field(default=None, name="J")
    prevented_match_id: int | None = msgspec.field(default=None, name="v")
    prevented_quantity: Decimal | None = msgspec.field(default=None, name="A")
    last_prevented_quantity: Decimal | None = msgspec.field(default=None, name="B")
    trade_group_id: int | None = msgspec.field(default=None, name="u")
    counter_order_id: int | None = msgspec.field(default=None, name="U")
    counter_symbol: str | None = msgspec.field(default=None, name="Cs")
    prevented_execution_quantity: Decimal | None = msgspec.field(default=None, name="pl")
    prevented_execution_price: Decimal | None = msgspec.field(default=None, name="pL")
    prevented_execution_quote_qty: Decimal | None = msgspec.field(default=None, name="pY")
    match_type: str | None = msgspec.field(default=None, name="b")  # SOR
    allocation_id: int | None = msgspec.field(default=None, name="a")  # SOR
    working_floor: str | None = msgspec.field(default=None, name="k")  # SOR
    used_sor: bool | None = msgspec.field(default=None, name="uS")
    peg_price_type: str | None = msgspec.field(default=None, name="gP")
    peg_offset_type: str | None = msgspec.field(default=None, name="gOT")
    peg_offset_value: int | None = msgspec.field(default=None, name="gOV")
    pegged_price: Decimal | None = msgspec.field(default=None, name="gp")
    expiry_reason: str | None = msgspec.field(default=None, name="eR")

    @property
    def order_client_id(self) -> str:
        """The client id of the order itself (spec 8.1).

        On a cancel (``x == "CANCELED"``) ``c`` names the cancel request and ``C`` the order;
        on every other execution type (and when ``C`` is empty) ``c`` is the order's id.
        """
        if self.execution_type == "CANCELED" and self.orig_client_order_id:
            return self.orig_client_order_id
        return self.client_order_id

    @property
    def is_trade(self) -> bool:
        """The event reports a fill (``last_qty``/``last_price`` describe it)."""
        return self.execution_type == "TRADE"

    @property
    def average_price(self) -> Decimal | None:
        """Average fill price so far, ``None`` before the first fill."""
        if not self.cumulative_qty or self.cumulative_quote_qty is None:
            return None
        return self.cumulative_quote_qty / self.cumulative_qty


class PositionBalance(msgspec.Struct, frozen=True, gc=False):
    """One asset of an ``outboundAccountPosition``."""

    asset: str = msgspec.field(name="a")
    free: Decimal = msgspec.field(name="f")
    locked: Decimal = msgspec.field(name="l")


class OutboundAccountPosition(UserEvent, frozen=True, tag="outboundAccountPosition"):
    """Spot balances after a change; lists only the assets that changed."""

    event_time: int = msgspec.field(name="E")
    last_update_time: int = msgspec.field(name="u")
    balances: tuple[PositionBalance, ...] = msgspec.field(default=(), name="B")


class BalanceUpdate(UserEvent, frozen=True, tag="balanceUpdate"):
    """Spot deposit, withdrawal or transfer between the account's wallets."""

    event_time: int = msgspec.field(name="E")
    asset: str = msgspec.field(name="a")
    delta: Decimal = msgspec.field(name="d")
    clear_time: int = msgspec.field(name="T")


class ListStatusOrder(msgspec.Struct, frozen=True, gc=False):
    """One leg of a ``listStatus`` event."""

    symbol: str = msgspec.field(name="s")
    order_id: int = msgspec.field(name="i")
    client_order_id: str = msgspec.field(name="c")


class ListStatus(UserEvent, frozen=True, tag="listStatus"):
    """Spot order list (OCO, OTO, OTOCO, ...) state change."""

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    order_list_id: int = msgspec.field(name="g")
    contingency_type: str = msgspec.field(name="c")
    list_status_type: str = msgspec.field(name="l")  # RESPONSE, EXEC_STARTED, UPDATED, ALL_DONE
    list_order_status: str = msgspec.field(name="L")  # EXECUTING, ALL_DONE, REJECT
    list_client_order_id: str = msgspec.field(name="C")
    transaction_time: int = msgspec.field(name="T")
    list_reject_reason: str | None = msgspec.field(default=None, name="r")
    orders: tuple[ListStatusOrder, ...] = msgspec.field(default=(), name="O")


class EventStreamTerminated(UserEvent, frozen=True, tag="eventStreamTerminated"):
    """The subscription ended (unsubscribe, logout): resubscribe to keep receiving events."""

    event_time: int | None = msgspec.field(default=None, name="E")


class ExternalLockUpdate(UserEvent, frozen=True, tag="externalLockUpdate"):
    """Part of a spot balance was locked or unlocked by an external system (collateral)."""

    event_time: int = msgspec.field(name="E")
    asset: str = msgspec.field(name="a")
    delta: Decimal = msgspec.field(name="d")
    transaction_time: int = msgspec.field(name="T")


class ServerShutdown(UserEvent, frozen=True, tag="serverShutdown"):
    """The server is about to shut down: reconnect and resubscribe soon."""

    event_time: int | None = msgspec.field(default=None, name="E")


SpotEvent: TypeAlias = (
    ExecutionReport
    | OutboundAccountPosition
    | BalanceUpdate
    | ListStatus
    | EventStreamTerminated
    | ExternalLockUpdate
    | ServerShutdown
)


# ================================================================================= USD-M


class FuturesOrderUpdate(msgspec.Struct, frozen=True, gc=False):
    """The ``o`` object of ``ORDER_TRADE_UPDATE``.

    ``x`` (``execution_type``) is NEW, CANCELED, CALCULATED (liquidation, ADL), EXPIRED,
    TRADE or AMENDMENT. A client id starting ``autoclose-`` marks a liquidation, and
    ``adl_autoclose`` an ADL.
    """

    symbol: str = msgspec.field(name="s")
    client_order_id: str = msgspec.field(name="c")
    side: str = msgspec.field(name="S")
    order_type: str = msgspec.field(name="o")
    quantity: Decimal = msgspec.field(name="q")
    price: Decimal = msgspec.field(name="p")
    execution_type: str = msgspec.field(name="x")
    order_status: str = msgspec.field(name="X")
    order_id: int = msgspec.field(name="i")
    last_qty: Decimal = msgspec.field(name="l")
    cumulative_qty: Decimal = msgspec.field(name="z")
    last_price: Decimal = msgspec.field(name="L")
    time_in_force: str | None = msgspec.field(default=None, name="f")
    average_price: Decimal | None = msgspec.field(default=None, name="ap")
    stop_price: Decimal | None = msgspec.field(default=None, name="sp")
    commission_asset: str | None = msgspec.field(default=None, name="N")
    commission: Decimal | None = msgspec.field(default=None, name="n")
    trade_time: int | None = msgspec.field(default=None, name="T")
    trade_id: int | None = msgspec.field(default=None, name="t")
    bids_notional: Decimal | None = msgspec.field(default=None, name="b")
    asks_notional: Decimal | None = msgspec.field(default=None, name="a")
    is_maker: bool | None = msgspec.field(default=None, name="m")
    reduce_only: bool | None = msgspec.field(default=None, name="R")
    working_type: str | None = msgspec.field(default=None, name="wt")
    original_order_type: str | None = msgspec.field(default=None, name="ot")
    position_side: str | None = msgspec.field(default=None, name="ps")
    close_position: bool | None = msgspec.field(default=None, name="cp")
    activation_price: Decimal | None = msgspec.field(default=None, name="AP")
    callback_rate: Decimal | None = msgspec.field(default=None, name="cr")
    price_protect: bool | None = msgspec.field(default=None, name="pP")
    realized_profit: Decimal | None = msgspec.field(default=None, name="rp")
    self_trade_prevention_mode: str | None = msgspec.field(default=None, name="V")
    price_match: str | None = msgspec.field(default=None, name="pm")
    good_till_date: int | None = msgspec.field(default=None, name="gtd")
    expiry_reason: str | None = msgspec.field(default=None, name="er")  # "0".."9" (spec 8.2)

    @property
    def is_liquidation(self) -> bool:
        """An order the exchange placed to liquidate (``autoclose-``) or deleverage."""
        return self.client_order_id.startswith("autoclose-") or self.client_order_id == "adl_autoclose"


class OrderTradeUpdate(UserEvent, frozen=True, tag="ORDER_TRADE_UPDATE"):
    """USD-M order accepted, traded, canceled, expired or amended."""

    event_time: int = msgspec.field(name="E")
    transaction_time: int = msgspec.field(name="T")
    order: FuturesOrderUpdate = msgspec.field(name="o")


class AccountUpdateBalance(msgspec.Struct, frozen=True, gc=False):
    """One asset of ``ACCOUNT_UPDATE``."""

    asset: str = msgspec.field(name="a")
    wallet_balance: Decimal = msgspec.field(name="wb")
    cross_wallet_balance: Decimal | None = msgspec.field(default=None, name="cw")
    balance_change: Decimal | None = msgspec.field(default=None, name="bc")  # except PnL and fees


class AccountUpdatePosition(msgspec.Struct, frozen=True, gc=False):
    """One position of ``ACCOUNT_UPDATE``."""

    symbol: str = msgspec.field(name="s")
    position_amount: Decimal = msgspec.field(name="pa")
    entry_price: Decimal | None = msgspec.field(default=None, name="ep")
    break_even_price: Decimal | None = msgspec.field(default=None, name="bep")
    accumulated_realized: Decimal | None = msgspec.field(default=None, name="cr")
    unrealized_pnl: Decimal | None = msgspec.field(default=None, name="up")
    margin_type: str | None = msgspec.field(default=None, name="mt")
    isolated_wallet: Decimal | None = msgspec.field(default=None, name="iw")
    position_side: str | None = msgspec.field(default=None, name="ps")
    margin_asset: str | None = msgspec.field(default=None, name="ma")


class AccountUpdateData(msgspec.Struct, frozen=True, gc=False):
    """The ``a`` object of ``ACCOUNT_UPDATE``."""

    reason: str = msgspec.field(name="m")  # ORDER, FUNDING_FEE, DEPOSIT, ...
    balances: tuple[AccountUpdateBalance, ...] = msgspec.field(default=(), name="B")
    positions: tuple[AccountUpdatePosition, ...] = msgspec.field(default=(), name="P")


class AccountUpdate(UserEvent, frozen=True, tag="ACCOUNT_UPDATE"):
    """USD-M balance, position or margin-type change (not sent for unfilled orders)."""

    event_time: int = msgspec.field(name="E")
    transaction_time: int = msgspec.field(name="T")
    data: AccountUpdateData = msgspec.field(name="a")


class AlgoOrderUpdate(msgspec.Struct, frozen=True, gc=False):
    """The ``o`` object of ``ALGO_UPDATE``.

    ``ai`` (the order placed once triggered), ``ap``, ``aq`` and ``act`` are empty or zero
    until the order triggers; they are kept as text with converting properties.
    """

    client_algo_id: str = msgspec.field(name="caid")
    algo_id: int = msgspec.field(name="aid")
    symbol: str = msgspec.field(name="s")
    side: str = msgspec.field(name="S")
    algo_status: str = msgspec.field(name="X")  # NEW, CANCELED, TRIGGERING, TRIGGERED, FINISHED, ...
    algo_type: str | None = msgspec.field(default=None, name="at")
    order_type: str | None = msgspec.field(default=None, name="o")
    position_side: str | None = msgspec.field(default=None, name="ps")
    time_in_force: str | None = msgspec.field(default=None, name="f")
    quantity: Decimal | None = msgspec.field(default=None, name="q")
    trigger_price: Decimal | None = msgspec.field(default=None, name="tp")
    price: Decimal | None = msgspec.field(default=None, name="p")
    self_trade_prevention_mode: str | None = msgspec.field(default=None, name="V")
    working_type: str | None = msgspec.field(default=None, name="wt")
    price_match: str | None = msgspec.field(default=None, name="pm")
    close_position: bool | None = msgspec.field(default=None, name="cp")
    price_protect: bool | None = msgspec.field(default=None, name="pP")
    reduce_only: bool | None = msgspec.field(default=None, name="R")
    trigger_time: int | None = msgspec.field(default=None, name="tt")
    good_till_date: int | None = msgspec.field(default=None, name="gtd")
    fail_reason: str | None = msgspec.field(default=None, name="rm")
    actual_order_id_text: str | None = msgspec.field(default=None, name="ai")
    actual_avg_price_text: str | None = msgspec.field(default=None, name="ap")
    actual_qty_text: str | None = msgspec.field(default=None, name="aq")
    actual_order_type: str | None = msgspec.field(default=None, name="act")

    @property
    def actual_order_id(self) -> int | None:
        """The matching-engine order placed once triggered; ``None`` before."""
        text = (self.actual_order_id_text or "").strip()
        return int(text) if text.lstrip("-").isdigit() else None

    @property
    def actual_avg_price(self) -> Decimal | None:
        return _blank_decimal(self.actual_avg_price_text)

    @property
    def actual_qty(self) -> Decimal | None:
        return _blank_decimal(self.actual_qty_text)


class AlgoUpdate(UserEvent, frozen=True, tag="ALGO_UPDATE"):
    """USD-M conditional (algo) order state change (spec 6.3, 8.2)."""

    event_time: int = msgspec.field(name="E")
    transaction_time: int = msgspec.field(name="T")
    order: AlgoOrderUpdate = msgspec.field(name="o")


class TradeLite(UserEvent, frozen=True, tag="TRADE_LITE"):
    """USD-M fill, lower latency than ``ORDER_TRADE_UPDATE`` (trades only)."""

    event_time: int = msgspec.field(name="E")
    transaction_time: int = msgspec.field(name="T")
    symbol: str = msgspec.field(name="s")
    quantity: Decimal = msgspec.field(name="q")  # the order's original quantity
    price: Decimal = msgspec.field(name="p")  # the order's original price
    is_maker: bool = msgspec.field(name="m")
    client_order_id: str = msgspec.field(name="c")
    side: str = msgspec.field(name="S")
    last_price: Decimal = msgspec.field(name="L")
    last_qty: Decimal = msgspec.field(name="l")
    trade_id: int = msgspec.field(name="t")
    order_id: int = msgspec.field(name="i")


class MarginCallPosition(msgspec.Struct, frozen=True, gc=False):
    """One position of ``MARGIN_CALL``."""

    symbol: str = msgspec.field(name="s")
    position_side: str | None = msgspec.field(default=None, name="ps")
    position_amount: Decimal | None = msgspec.field(default=None, name="pa")
    margin_type: str | None = msgspec.field(default=None, name="mt")
    isolated_wallet: Decimal | None = msgspec.field(default=None, name="iw")
    mark_price: Decimal | None = msgspec.field(default=None, name="mp")
    unrealized_pnl: Decimal | None = msgspec.field(default=None, name="up")
    maintenance_margin: Decimal | None = msgspec.field(default=None, name="mm")


class MarginCall(UserEvent, frozen=True, tag="MARGIN_CALL"):
    """USD-M margin call (advisory only)."""

    event_time: int = msgspec.field(name="E")
    cross_wallet_balance: Decimal | None = msgspec.field(default=None, name="cw")
    positions: tuple[MarginCallPosition, ...] = msgspec.field(default=(), name="p")


class ListenKeyExpired(UserEvent, frozen=True, tag="listenKeyExpired"):
    """The listenKey expired: no more events until a new key is created (spec 8.2).

    Older payloads sent ``E`` as a string; both forms decode (``event_time_ms`` is an int).
    """

    event_time: int | str = msgspec.field(name="E")
    listen_key: str | None = msgspec.field(default=None, name="listenKey")

    @property
    def event_time_ms(self) -> int:
        return int(self.event_time)


class LeverageConfig(msgspec.Struct, frozen=True, gc=False):
    """The ``ac`` object of ``ACCOUNT_CONFIG_UPDATE``: a symbol's leverage changed."""

    symbol: str = msgspec.field(name="s")
    leverage: int = msgspec.field(name="l")


class MultiAssetsConfig(msgspec.Struct, frozen=True, gc=False):
    """The ``ai`` object of ``ACCOUNT_CONFIG_UPDATE``: multi-assets mode changed."""

    multi_assets_mode: bool = msgspec.field(name="j")


class AccountConfigUpdate(UserEvent, frozen=True, tag="ACCOUNT_CONFIG_UPDATE"):
    """USD-M leverage or multi-assets mode change."""

    event_time: int = msgspec.field(name="E")
    transaction_time: int | None = msgspec.field(default=None, name="T")
    leverage: LeverageConfig | None = msgspec.field(default=None, name="ac")
    multi_assets: MultiAssetsConfig | None = msgspec.field(default=None, name="ai")


FuturesEvent: TypeAlias = (
    OrderTradeUpdate
    | AccountUpdate
    | AlgoUpdate
    | TradeLite
    | MarginCall
    | ListenKeyExpired
    | AccountConfigUpdate
)


# ============================================================================== decoding


class _SpotFrame(msgspec.Struct, frozen=True, gc=False):
    subscriptionId: int | None = None  # the exchange's key, kept as is
    event: SpotEvent | None = None


class _FuturesCombined(msgspec.Struct, frozen=True, gc=False):
    stream: str | None = None
    data: FuturesEvent | None = None


_SPOT_TAGS: Final = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (
        ExecutionReport,
        OutboundAccountPosition,
        BalanceUpdate,
        ListStatus,
        EventStreamTerminated,
        ExternalLockUpdate,
        ServerShutdown,
    )
)
_FUTURES_TAGS: Final = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (
        OrderTradeUpdate,
        AccountUpdate,
        AlgoUpdate,
        TradeLite,
        MarginCall,
        ListenKeyExpired,
        AccountConfigUpdate,
    )
)

_spot_frame_decoder: Final = msgspec.json.Decoder(_SpotFrame)
_spot_event_decoder: Final[msgspec.json.Decoder[SpotEvent]] = msgspec.json.Decoder(SpotEvent)
_futures_event_decoder: Final[msgspec.json.Decoder[FuturesEvent]] = msgspec.json.Decoder(FuturesEvent)
_futures_combined_decoder: Final = msgspec.json.Decoder(_FuturesCombined)
_any_decoder: Final = msgspec.json.Decoder()

Payload: TypeAlias = bytes | bytearray | memoryview | str | Mapping[str, Any]


def _unknown(obj: Any, known: frozenset[str], error: msgspec.ValidationError) -> UnknownEvent:
    """Keep an event of an unknown type; re-raise when a known type is malformed."""
    if not isinstance(obj, Mapping):
        raise error
    event_type = obj.get("e")
    name = event_type if isinstance(event_type, str) else ""
    if name in known:
        raise error
    return UnknownEvent(name, dict(obj))


def _spot_from_object(obj: Any) -> tuple[int | None, UserEvent | UnknownEvent]:
    sub_id = None
    if isinstance(obj, Mapping) and isinstance(obj.get("event"), Mapping):
        raw_id = obj.get("subscriptionId")
        sub_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        obj = obj["event"]
    try:
        event: UserEvent = msgspec.convert(obj, SpotEvent)
    except msgspec.ValidationError as exc:
        return sub_id, _unknown(obj, _SPOT_TAGS, exc)
    return sub_id, event


def decode_spot_frame(data: Payload) -> tuple[int | None, UserEvent | UnknownEvent]:
    """A spot WebSocket API event frame: ``(subscriptionId or None, event)``.

    Accepts the frame as bytes/str or already parsed, and also a bare event object.
    """
    if isinstance(data, Mapping):
        return _spot_from_object(data)
    try:
        frame = _spot_frame_decoder.decode(data)
    except msgspec.ValidationError:
        return _spot_from_object(_any_decoder.decode(data))
    if frame.event is not None:
        return frame.subscriptionId, frame.event
    # No "event" key: a bare event object (as the local exchange's listeners hand them over).
    try:
        return None, _spot_event_decoder.decode(data)
    except msgspec.ValidationError:
        return _spot_from_object(_any_decoder.decode(data))


def _futures_from_object(obj: Any) -> UserEvent | UnknownEvent:
    if isinstance(obj, Mapping) and "e" not in obj and isinstance(obj.get("data"), Mapping):
        obj = obj["data"]  # combined stream: {"stream": ..., "data": {...}}
    try:
        event: UserEvent = msgspec.convert(obj, FuturesEvent)
    except msgspec.ValidationError as exc:
        return _unknown(obj, _FUTURES_TAGS, exc)
    return event


def decode_user_event(data: Payload, market: Market | str = Market.SPOT) -> UserEvent | UnknownEvent:
    """Decode one user-data frame of ``market`` into its event Struct.

    Spot: the WebSocket API frame ``{"subscriptionId", "event"}`` (or a bare event). USD-M:
    the event object, or a combined-stream ``{"stream", "data"}`` wrapper. Known event types
    decode in one pass; an unknown ``e`` gives ``UnknownEvent``. A known event missing a
    documented key raises ``msgspec.ValidationError``; text that is not JSON raises
    ``msgspec.DecodeError``.
    """
    if not Market.parse(market).is_futures:
        return decode_spot_frame(data)[1]
    if isinstance(data, Mapping):
        return _futures_from_object(data)
    try:
        return _futures_event_decoder.decode(data)
    except msgspec.ValidationError:
        pass
    try:
        combined = _futures_combined_decoder.decode(data)
    except msgspec.ValidationError:
        combined = None
    if combined is not None and combined.data is not None:
        return combined.data
    return _futures_from_object(_any_decoder.decode(data))
