"""Order parameters, built and checked before anything is sent.

Each builder takes typed Python arguments, checks the exchange's mandatory-parameter rules for
that order type (binance-spec §6) and returns the request's parameters under their wire names,
every value already as the exact text that will travel (``dict[str, str]``, in the order the
exchange documents them). A missing, superfluous or contradictory parameter raises
``RequestError`` carrying the code and message the exchange itself would answer (-1102
mandatory parameter missing, -1106 parameter sent when not required, -1128 bad combination of
optional parameters, -1115/-1116/-1117 bad enum values, the order-list codes -1158..-1199, ...),
so a bug in the caller is caught with nothing sent and costs neither weight nor an order count.

The filters (tick size, lot size, notional, ...; §7) are not checked here: they need the
symbol's rules from exchangeInfo and are checked by ``SymbolRules.check_order``
(``tickbook.trading.filters``); ``filter_args`` turns a built order into that method's
arguments.

Numbers: prices and quantities are ``Decimal``, ``int`` or ``str`` (decimal text such as
``"0.00100000"``). A ``float`` is refused with ``TypeError``: a float such as ``0.1`` is not the
number it prints as, and silently sending ``0.1000000000000000055`` or a rounded guess of what
was meant is exactly the kind of error this layer exists to prevent. Convert with
``Decimal(str(x))`` at the boundary if you must start from floats. Text is sent as given
(trailing zeros kept); a ``Decimal`` is written positionally (never with an exponent, which the
exchange refuses). A negative, non-finite or malformed number is refused with -1100, the
exchange's "illegal characters" answer for numeric parameters.

This module also holds what ``SpotTrading`` and ``FuturesTrading`` share (``TradingBase``):
the local filter check, the tracker hook and the placement loop
(``place_with_reconciliation``): send once, and on an unknown outcome query by client order ID
before ever sending again (§10.4).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import msgspec

from tickbook._types import Market
from tickbook.trading.errors import (
    FUTURES_FILTER_CODES,
    BinanceError,
    FilterFailure,
    NetworkError,
    NoSuchOrder,
    RequestError,
    ServerBusy,
    UnknownOutcome,
)
from tickbook.trading.ids import check_client_order_id, new_client_order_id

if TYPE_CHECKING:
    from tickbook.trading.client import RestClient
    from tickbook.trading.filters import SymbolRules

__all__ = [
    "FUTURES_ALGO_TYPES",
    "FUTURES_ORDER_TYPES",
    "OCO_ABOVE_TYPES",
    "OCO_BELOW_TYPES",
    "SPOT_ORDER_TYPES",
    "Leg",
    "Num",
    "Params",
    "ReconcilePolicy",
    "ResponseSink",
    "TradingBase",
    "amend_keep_priority_params",
    "cancel_order_list_params",
    "cancel_order_params",
    "cancel_replace_params",
    "decimal_text",
    "filter_args",
    "futures_batch_params",
    "futures_conditional",
    "futures_modify",
    "futures_order",
    "is_reconciled",
    "oco_params",
    "order_ref",
    "oto_params",
    "otoco_params",
    "place_with_reconciliation",
    "reconciled_as",
    "spot_order",
]

log = logging.getLogger("tickbook.trading")

Num = Decimal | str | int
"""An exact number: ``Decimal``, ``int`` or decimal text. Never ``float`` (see the module doc)."""

Params = dict[str, str]
"""A built request: wire names to the exact text sent, in documented order."""

T = TypeVar("T")


class ResponseSink(Protocol):
    """What an order tracker needs from the trading classes: every decoded order response."""

    def on_response(self, obj: Any) -> None: ...


# ------------------------------------------------------------------------------------ enums

SIDES: Final = frozenset({"BUY", "SELL"})
SPOT_ORDER_TYPES: Final = frozenset(
    {"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
)
SPOT_TIME_IN_FORCE: Final = frozenset({"GTC", "IOC", "FOK"})
SPOT_RESP_TYPES: Final = frozenset({"ACK", "RESULT", "FULL"})
SPOT_STP_MODES: Final = frozenset(
    {"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER"}
)
PEG_PRICE_TYPES: Final = frozenset({"PRIMARY_PEG", "MARKET_PEG"})
PEG_OFFSET_TYPES: Final = frozenset({"PRICE_LEVEL"})
CANCEL_RESTRICTIONS: Final = frozenset({"ONLY_NEW", "ONLY_PARTIALLY_FILLED"})
CANCEL_REPLACE_MODES: Final = frozenset({"STOP_ON_FAILURE", "ALLOW_FAILURE"})
RATE_LIMIT_EXCEEDED_MODES: Final = frozenset({"DO_NOTHING", "CANCEL_ONLY"})

# Order lists (§6.2). The "take profit" group sits on the profitable side of the market, the
# "stop loss" group on the other: a SELL list has its take-profit leg above and its stop
# below, a BUY list the mirror.
OCO_ABOVE_TYPES: Final = frozenset(
    {"STOP_LOSS_LIMIT", "STOP_LOSS", "LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
)
# LIMIT_MAKER below is how a BUY OCO buys under the market (the documented BUY price rule
# "LIMIT_MAKER price (below) < last < stopPrice (above)").
OCO_BELOW_TYPES: Final = frozenset(
    {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
)
_TP_GROUP: Final = frozenset({"LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_SL_GROUP: Final = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})
OTO_WORKING_TYPES: Final = frozenset({"LIMIT", "LIMIT_MAKER"})

FUTURES_ORDER_TYPES: Final = frozenset({"LIMIT", "MARKET"})
FUTURES_ALGO_TYPES: Final = frozenset(
    {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)
FUTURES_TIME_IN_FORCE: Final = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD", "RPI"})
FUTURES_RESP_TYPES: Final = frozenset({"ACK", "RESULT"})
FUTURES_STP_MODES: Final = frozenset({"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"})
POSITION_SIDES: Final = frozenset({"BOTH", "LONG", "SHORT"})
PRICE_MATCH: Final = frozenset({"OPPONENT", "OPPONENT_5", "QUEUE", "QUEUE_5", "QUEUE_10", "QUEUE_20"})
WORKING_TYPES: Final = frozenset({"MARK_PRICE", "CONTRACT_PRICE"})

GTD_MIN_AHEAD_MS: Final = 600_000  # goodTillDate must be more than now + 600 s (§6.3)
GTD_MAX_MS: Final = 253_402_300_799_000  # the exchange's upper bound (year 9999)
CALLBACK_RATE_MIN: Final = Decimal("0.1")
CALLBACK_RATE_MAX: Final = Decimal("10")
MAX_BATCH_ORDERS: Final = 5
STRATEGY_TYPE_MIN: Final = 1_000_000
PEG_OFFSET_MAX: Final = 100

# The exchange's legal range for numeric parameters, quoted in its -1100 message.
LEGAL_DECIMAL: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_DECIMAL_RE: Final = re.compile(LEGAL_DECIMAL)
_INT_RE: Final = re.compile(r"^[0-9]{1,19}$")

SPOT_ORDER: Final = "/api/v3/order"
FUTURES_ORDER: Final = "/fapi/v1/order"
FUTURES_ALGO: Final = "/fapi/v1/algoOrder"


# ------------------------------------------------------------------------------------ errors


def _error(code: int, msg: str, endpoint: str, method: str = "POST") -> RequestError:
    return RequestError(msg, code=code, method=method, endpoint=endpoint)


def _mandatory(name: str, endpoint: str, method: str = "POST") -> RequestError:
    return _error(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.", endpoint, method
    )


def _either(a: str, b: str, endpoint: str, method: str = "POST") -> RequestError:
    return _error(-1102, f"Param '{a}' or '{b}' must be sent, but both were empty/null!", endpoint, method)


def _not_required(name: str, endpoint: str, method: str = "POST") -> RequestError:
    return _error(-1106, f"Parameter '{name}' sent when not required.", endpoint, method)


def _bad_combo(detail: str, endpoint: str, method: str = "POST") -> RequestError:
    return _error(-1128, f"Combination of optional parameters invalid. {detail}", endpoint, method)


def _invalid(
    name: str, value: object, allowed: frozenset[str], endpoint: str, method: str = "POST"
) -> RequestError:
    return _error(
        -1130,
        f"Data sent for parameter '{name}' is not valid: {value!r} (allowed: {', '.join(sorted(allowed))}).",
        endpoint,
        method,
    )


# ------------------------------------------------------------------------------------ values


def decimal_text(name: str, value: object, endpoint: str = SPOT_ORDER) -> str:
    """``value`` as the exact decimal text to send, or an error (see the module doc).

    Raises ``TypeError`` for ``float`` (and anything else that is not ``Decimal``/``int``/
    ``str``), ``RequestError(-1100)`` for negative, non-finite or malformed numbers.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        if isinstance(value, float):
            raise TypeError(
                f"{name}: float {value!r} is not exact; pass a Decimal or a decimal string "
                f"(e.g. Decimal(str(x)) if the value really starts as a float)"
            )
        raise TypeError(f"{name}: expected Decimal, int or str, got {type(value).__name__}")
    if isinstance(value, str):
        text = value
    else:
        number = Decimal(value)
        text = format(number, "f") if number.is_finite() else str(number)
    if not _DECIMAL_RE.match(text):
        raise _error(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '{LEGAL_DECIMAL}'.",
            endpoint,
        )
    return text


def _int_text(name: str, value: object, endpoint: str) -> str:
    """A whole number parameter (``trailingDelta``, ``strategyId``, IDs, times)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        if isinstance(value, float | Decimal):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    text = str(value)
    if not _INT_RE.match(text):
        raise _error(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,19}}$'.",
            endpoint,
        )
    return text


def _bool_text(name: str, value: object, endpoint: str) -> str:
    """A boolean parameter as the exchange's ``"true"``/``"false"`` text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value in ("true", "false"):
        return value
    raise _error(
        -1130, f"Data sent for parameter '{name}' is not valid: {value!r} (expected true or false).", endpoint
    )


def _enum(name: str, value: object, allowed: frozenset[str], endpoint: str, code: int = -1130) -> str:
    if not isinstance(value, str) or value not in allowed:
        if code == -1130:
            raise _invalid(name, value, allowed, endpoint)
        raise _error(code, _ENUM_MESSAGES.get(code, f"Invalid {name}.") + f" Got {value!r}.", endpoint)
    return value


# The futures codes of a quantity outside its lot filter (see ``TradingBase._name_lot_filter``).
_FUTURES_QTY_CODES: Final = frozenset(
    code for code, (name, _field) in FUTURES_FILTER_CODES.items() if name == "LOT_SIZE"
)

_ENUM_MESSAGES: Final = {
    -1115: "Invalid timeInForce.",
    -1116: "Invalid orderType.",
    -1117: "Invalid side.",
    -1136: "Invalid newOrderRespType.",
    -1145: "Invalid cancelRestrictions.",
    -1210: "Invalid pegPriceType.",
    -1211: "Invalid pegOffsetType.",
}


def _symbol(symbol: object, endpoint: str, method: str = "POST") -> str:
    if not isinstance(symbol, str) or not symbol:
        raise _mandatory("symbol", endpoint, method)
    return symbol


def _client_id(name: str, value: object, market: Market, endpoint: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    try:
        return check_client_order_id(value, market, param=name)
    except RequestError as exc:
        exc.method, exc.endpoint = "POST", endpoint
        raise


# ------------------------------------------------------------------------------------ spot


@dataclass(frozen=True)
class _SpotTypeRule:
    """Which parameters one spot order type takes (§6.1): ``True`` required, ``False`` refused.

    ``trigger``: ``stopPrice`` or ``trailingDelta`` (at least one) required or refused.
    ``iceberg``/``peg``: whether ``icebergQty``/``peg*`` are allowed at all.
    """

    time_in_force: bool
    price: bool
    trigger: bool
    iceberg: bool
    peg: bool


_SPOT_TYPES: Final = {
    "LIMIT": _SpotTypeRule(time_in_force=True, price=True, trigger=False, iceberg=True, peg=True),
    "MARKET": _SpotTypeRule(time_in_force=False, price=False, trigger=False, iceberg=False, peg=False),
    "STOP_LOSS": _SpotTypeRule(time_in_force=False, price=False, trigger=True, iceberg=False, peg=False),
    "STOP_LOSS_LIMIT": _SpotTypeRule(time_in_force=True, price=True, trigger=True, iceberg=True, peg=True),
    "TAKE_PROFIT": _SpotTypeRule(time_in_force=False, price=False, trigger=True, iceberg=False, peg=False),
    "TAKE_PROFIT_LIMIT": _SpotTypeRule(time_in_force=True, price=True, trigger=True, iceberg=True, peg=True),
    "LIMIT_MAKER": _SpotTypeRule(time_in_force=False, price=True, trigger=False, iceberg=True, peg=True),
}


def _wire(prefix: str, name: str) -> str:
    """``price`` -> ``price``, or with a leg prefix ``abovePrice``/``pendingAbovePrice``."""
    return name if not prefix else prefix + name[0].upper() + name[1:]


@dataclass(frozen=True)
class Leg:
    """One order of an order list (§6.2): an OCO's ``above``/``below`` leg, an OTO's
    ``working``/``pending`` leg, an OTOCO's ``working``/``pending_above``/``pending_below`` leg.

    ``side`` and ``quantity`` belong to OTO/OTOCO working and OTO pending legs only; an OCO (and
    an OTOCO's pending pair) shares one side and quantity given to the list.
    """

    type: str
    price: Num | None = None
    stop_price: Num | None = None
    trailing_delta: int | str | None = None
    time_in_force: str | None = None
    iceberg_qty: Num | None = None
    client_order_id: str | None = None
    strategy_id: int | str | None = None
    strategy_type: int | str | None = None
    peg_price_type: str | None = None
    peg_offset_value: int | str | None = None
    peg_offset_type: str | None = None
    side: str | None = None
    quantity: Num | None = None


def _spot_leg(
    prefix: str,
    endpoint: str,
    *,
    type: str,
    side: str | None,
    quantity: Num | None,
    quote_order_qty: Num | None = None,
    price: Num | None = None,
    time_in_force: str | None = None,
    stop_price: Num | None = None,
    trailing_delta: int | str | None = None,
    iceberg_qty: Num | None = None,
    client_order_id_name: str,
    client_order_id: str | None = None,
    strategy_id: int | str | None = None,
    strategy_type: int | str | None = None,
    peg_price_type: str | None = None,
    peg_offset_value: int | str | None = None,
    peg_offset_type: str | None = None,
    quantity_given_by_list: bool = False,
    iceberg_tif_code: int = -1013,
) -> Params:
    """The params of one spot order or order-list leg, wire names prefixed with ``prefix``.

    ``side is None`` / ``quantity_given_by_list``: the list gives them (OCO legs).
    """

    def w(name: str) -> str:
        return _wire(prefix, name)

    rule = _SPOT_TYPES.get(type) if isinstance(type, str) else None
    if rule is None:
        if not type:
            raise _mandatory(w("type"), endpoint)
        raise _error(-1116, f"Invalid orderType for '{w('type')}': {type!r}.", endpoint)
    out: Params = {}
    if side is not None or not quantity_given_by_list:
        if side is None:
            raise _mandatory(w("side"), endpoint)
        out[w("side")] = _enum(w("side"), side, SIDES, endpoint, -1117)
    out[w("type")] = type

    # timeInForce: required by the limit types that rest, refused by the others.
    if time_in_force is not None:
        if not rule.time_in_force:
            raise _not_required(w("timeInForce"), endpoint)
        out[w("timeInForce")] = _enum(w("timeInForce"), time_in_force, SPOT_TIME_IN_FORCE, endpoint, -1115)
    elif rule.time_in_force:
        raise _mandatory(w("timeInForce"), endpoint)

    # quantity / quoteOrderQty: MARKET takes exactly one of them, every other type quantity.
    if quantity_given_by_list:
        if quantity is not None:
            raise _not_required(w("quantity"), endpoint)
    elif type == "MARKET":
        if quantity is None and quote_order_qty is None:
            raise _either(w("quantity"), w("quoteOrderQty"), endpoint)
        if quantity is not None and quote_order_qty is not None:
            raise _bad_combo(f"Send '{w('quantity')}' or '{w('quoteOrderQty')}', not both.", endpoint)
    elif quantity is None:
        raise _mandatory(w("quantity"), endpoint)
    if quote_order_qty is not None and type != "MARKET":
        raise _not_required(w("quoteOrderQty"), endpoint)
    if quantity is not None:
        out[w("quantity")] = decimal_text(w("quantity"), quantity, endpoint)
    if quote_order_qty is not None:
        out[w("quoteOrderQty")] = decimal_text(w("quoteOrderQty"), quote_order_qty, endpoint)

    # price: required by the limit types unless the order is pegged (the peg sets it).
    pegged = peg_price_type is not None
    if price is not None:
        if not rule.price:
            raise _not_required(w("price"), endpoint)
        out[w("price")] = decimal_text(w("price"), price, endpoint)
    elif rule.price and not pegged:
        raise _mandatory(w("price"), endpoint)

    if client_order_id is not None:
        out[client_order_id_name] = _client_id(client_order_id_name, client_order_id, Market.SPOT, endpoint)
    if strategy_id is not None:
        out[w("strategyId")] = _int_text(w("strategyId"), strategy_id, endpoint)
    if strategy_type is not None:
        text = _int_text(w("strategyType"), strategy_type, endpoint)
        if int(text) < STRATEGY_TYPE_MIN:
            raise _error(
                -1134,
                f"strategyType was less than {STRATEGY_TYPE_MIN} ('{w('strategyType')}'={text}).",
                endpoint,
            )
        out[w("strategyType")] = text

    # The trigger: stopPrice and/or trailingDelta (BIPS, a positive whole number) for the
    # STOP_LOSS*/TAKE_PROFIT* types; refused on LIMIT, MARKET and LIMIT_MAKER.
    if rule.trigger:
        if stop_price is None and trailing_delta is None:
            raise _either(w("stopPrice"), w("trailingDelta"), endpoint)
    else:
        if stop_price is not None:
            raise _not_required(w("stopPrice"), endpoint)
        if trailing_delta is not None:
            raise _not_required(w("trailingDelta"), endpoint)
    if stop_price is not None:
        out[w("stopPrice")] = decimal_text(w("stopPrice"), stop_price, endpoint)
    if trailing_delta is not None:
        text = _int_text(w("trailingDelta"), trailing_delta, endpoint)
        if int(text) <= 0:
            raise _error(
                -1130, f"Data sent for parameter '{w('trailingDelta')}' is not valid: {text}.", endpoint
            )
        out[w("trailingDelta")] = text

    # Iceberg: only on the types that rest in the book, and only good-till-cancelled.
    if iceberg_qty is not None:
        if not rule.iceberg:
            raise _not_required(w("icebergQty"), endpoint)
        if rule.time_in_force and time_in_force != "GTC":
            raise _error(
                iceberg_tif_code,
                f"Iceberg orders must have timeInForce GTC: '{w('icebergQty')}' requires "
                f"'{w('timeInForce')}'=GTC (got {time_in_force}).",
                endpoint,
            )
        out[w("icebergQty")] = decimal_text(w("icebergQty"), iceberg_qty, endpoint)

    # Pegged orders (§6.1, since 2025-08-28): type and offset come together.
    if pegged:
        if not rule.peg:
            raise _not_required(w("pegPriceType"), endpoint)
        out[w("pegPriceType")] = _enum(w("pegPriceType"), peg_price_type, PEG_PRICE_TYPES, endpoint, -1210)
    if peg_offset_value is not None or peg_offset_type is not None:
        if not pegged:
            name = "pegOffsetValue" if peg_offset_value is not None else "pegOffsetType"
            raise _not_required(w(name), endpoint)
        if peg_offset_value is None:
            raise _mandatory(w("pegOffsetValue"), endpoint)
        if peg_offset_type is None:
            raise _mandatory(w("pegOffsetType"), endpoint)
        text = _int_text(w("pegOffsetValue"), peg_offset_value, endpoint)
        if int(text) > PEG_OFFSET_MAX:
            raise _error(
                -1130,
                f"Data sent for parameter '{w('pegOffsetValue')}' is not valid: {text} (max 100).",
                endpoint,
            )
        out[w("pegOffsetValue")] = text
        out[w("pegOffsetType")] = _enum(
            w("pegOffsetType"), peg_offset_type, PEG_OFFSET_TYPES, endpoint, -1211
        )
    return out


def spot_order(
    symbol: str,
    side: str,
    type: str,
    *,
    quantity: Num | None = None,
    quote_order_qty: Num | None = None,
    price: Num | None = None,
    time_in_force: str | None = None,
    stop_price: Num | None = None,
    trailing_delta: int | str | None = None,
    iceberg_qty: Num | None = None,
    new_client_order_id: str | None = None,
    new_order_resp_type: str | None = None,
    self_trade_prevention_mode: str | None = None,
    strategy_id: int | str | None = None,
    strategy_type: int | str | None = None,
    peg_price_type: str | None = None,
    peg_offset_value: int | str | None = None,
    peg_offset_type: str | None = None,
    endpoint: str = SPOT_ORDER,
) -> Params:
    """``POST /api/v3/order`` params (also ``/order/test`` and the new half of cancelReplace).

    Per type (§6.1): LIMIT needs ``timeInForce``, ``quantity``, ``price``; MARKET exactly one
    of ``quantity``/``quoteOrderQty``; STOP_LOSS and TAKE_PROFIT ``quantity`` plus
    ``stopPrice`` or ``trailingDelta`` (BIPS: 100 = 1 %); STOP_LOSS_LIMIT and
    TAKE_PROFIT_LIMIT both sets; LIMIT_MAKER ``quantity`` and ``price`` and no
    ``timeInForce``. ``icebergQty`` only on LIMIT, LIMIT_MAKER and the ``*_LIMIT`` stops, with
    GTC. ``pegPriceType`` (``PRIMARY_PEG``/``MARKET_PEG``) on the same types makes ``price``
    optional; ``pegOffsetValue`` (<= 100) goes with ``pegOffsetType=PRICE_LEVEL``.
    ``strategyType`` must be >= 1000000. ``newOrderRespType``: ACK, RESULT or FULL.
    """
    params: Params = {"symbol": _symbol(symbol, endpoint)}
    params.update(
        _spot_leg(
            "",
            endpoint,
            type=type,
            side=side,
            quantity=quantity,
            quote_order_qty=quote_order_qty,
            price=price,
            time_in_force=time_in_force,
            stop_price=stop_price,
            trailing_delta=trailing_delta,
            iceberg_qty=iceberg_qty,
            client_order_id_name="newClientOrderId",
            client_order_id=new_client_order_id,
            strategy_id=strategy_id,
            strategy_type=strategy_type,
            peg_price_type=peg_price_type,
            peg_offset_value=peg_offset_value,
            peg_offset_type=peg_offset_type,
        )
    )
    _list_options(params, endpoint, new_order_resp_type, self_trade_prevention_mode)
    return _documented_order(params)


_SPOT_ORDER_KEYS: Final = (
    *("symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price", "newClientOrderId"),
    *("strategyId", "strategyType", "stopPrice", "trailingDelta", "icebergQty", "newOrderRespType"),
    *("selfTradePreventionMode", "pegPriceType", "pegOffsetValue", "pegOffsetType"),
)


def _documented_order(params: Params) -> Params:
    """The same params in the order the exchange documents them (easier to read in logs)."""
    ordered: Params = {k: params[k] for k in _SPOT_ORDER_KEYS if k in params}
    ordered.update((k, v) for k, v in params.items() if k not in ordered)
    return ordered


def _list_options(
    params: Params, endpoint: str, new_order_resp_type: str | None, self_trade_prevention_mode: str | None
) -> None:
    if new_order_resp_type is not None:
        params["newOrderRespType"] = _enum("newOrderRespType", new_order_resp_type, SPOT_RESP_TYPES, endpoint)
    if self_trade_prevention_mode is not None:
        params["selfTradePreventionMode"] = _enum(
            "selfTradePreventionMode", self_trade_prevention_mode, SPOT_STP_MODES, endpoint
        )


def _leg_args(leg: Leg) -> dict[str, Any]:
    return {
        "type": leg.type,
        "price": leg.price,
        "time_in_force": leg.time_in_force,
        "stop_price": leg.stop_price,
        "trailing_delta": leg.trailing_delta,
        "iceberg_qty": leg.iceberg_qty,
        "client_order_id": leg.client_order_id,
        "strategy_id": leg.strategy_id,
        "strategy_type": leg.strategy_type,
        "peg_price_type": leg.peg_price_type,
        "peg_offset_value": leg.peg_offset_value,
        "peg_offset_type": leg.peg_offset_type,
    }


def _leg_level(leg: Leg, prefix: str, endpoint: str, *, tp_side: bool) -> Decimal | None:
    """The price that places a leg relative to the market: a take-profit leg's limit price
    (its stop price for a plain TAKE_PROFIT), a stop-loss leg's stop price. None when only a
    trailing delta is given (then the exchange alone can judge it)."""
    name = "price" if tp_side and leg.type != "TAKE_PROFIT" else "stopPrice"
    value = leg.price if name == "price" else leg.stop_price
    return None if value is None else Decimal(decimal_text(_wire(prefix, name), value, endpoint))


def _oco_pair(
    side: str, above: Leg, below: Leg, endpoint: str, *, above_prefix: str, below_prefix: str
) -> None:
    """The OCO leg rules (§6.2): allowed types per position, one take-profit-side leg and one
    stop-loss leg on the sides the list's side requires, and their prices in that order."""
    a_type, b_type = _wire(above_prefix, "type"), _wire(below_prefix, "type")
    if above.type not in OCO_ABOVE_TYPES:
        raise _error(-1158, f"Order type not supported in OCO: '{a_type}'={above.type}.", endpoint)
    if below.type not in OCO_BELOW_TYPES:
        raise _error(-1158, f"Order type not supported in OCO: '{b_type}'={below.type}.", endpoint)
    takes = (above.type in _TP_GROUP, below.type in _TP_GROUP)
    if takes == (True, True):
        raise _error(
            -1168, "At least one OCO order must be contingent: both legs are take-profit side.", endpoint
        )
    if takes == (False, False):
        raise _error(-1158, "OCO order type rejected: one leg must be LIMIT_MAKER/TAKE_PROFIT*.", endpoint)
    if side == "SELL":
        if above.type in _SL_GROUP:
            raise _error(-1197, f"A SELL OCO's stop loss must be below ('{a_type}'={above.type}).", endpoint)
        high = _leg_level(above, above_prefix, endpoint, tp_side=True)
        low = _leg_level(below, below_prefix, endpoint, tp_side=False)
        if high is not None and low is not None and not high > low:
            raise _error(
                -1166,
                f"A SELL OCO's limit/take-profit price ({high}) must be above its stop ({low}).",
                endpoint,
            )
    else:
        if above.type in _TP_GROUP:
            raise _error(-1198, f"A BUY OCO's take profit must be below ('{a_type}'={above.type}).", endpoint)
        high = _leg_level(above, above_prefix, endpoint, tp_side=False)
        low = _leg_level(below, below_prefix, endpoint, tp_side=True)
        if high is not None and low is not None and not low < high:
            raise _error(
                -1165,
                f"A BUY OCO's limit/take-profit price ({low}) must be below its stop ({high}).",
                endpoint,
            )


def _oco_legs(params: Params, side: str, above: Leg, below: Leg, endpoint: str, *, prefix: str = "") -> None:
    """Check an OCO pair under the OCO rules and add its legs to ``params``: an OCO's
    ``above*``/``below*`` legs, or with ``prefix="pending"`` an OTOCO's ``pendingAbove*``/
    ``pendingBelow*`` pair. The list gives both legs their side and quantity."""
    above_prefix, below_prefix = _wire(prefix, "above"), _wire(prefix, "below")
    legs = ((above_prefix, above), (below_prefix, below))
    for leg_prefix, leg in legs:
        if not leg.type:
            raise _mandatory(_wire(leg_prefix, "type"), endpoint)
    _oco_pair(side, above, below, endpoint, above_prefix=above_prefix, below_prefix=below_prefix)
    for leg_prefix, leg in legs:
        if leg.side is not None:
            raise _not_required(_wire(leg_prefix, "side"), endpoint)
        if leg.quantity is not None:
            raise _not_required(_wire(leg_prefix, "quantity"), endpoint)
        params.update(
            _spot_leg(
                leg_prefix,
                endpoint,
                side=None,
                quantity=None,
                quantity_given_by_list=True,
                client_order_id_name=_wire(leg_prefix, "clientOrderId"),
                iceberg_tif_code=-1160,
                **_leg_args(leg),
            )
        )


def _list_params(symbol: str, list_client_order_id: str | None, endpoint: str) -> Params:
    """What every order list starts with: ``symbol`` and the optional ``listClientOrderId``."""
    params: Params = {"symbol": _symbol(symbol, endpoint)}
    if list_client_order_id is not None:
        params["listClientOrderId"] = _client_id(
            "listClientOrderId", list_client_order_id, Market.SPOT, endpoint
        )
    return params


def oco_params(
    symbol: str,
    side: str,
    quantity: Num,
    above: Leg,
    below: Leg,
    *,
    list_client_order_id: str | None = None,
    new_order_resp_type: str | None = None,
    self_trade_prevention_mode: str | None = None,
) -> Params:
    """``POST /api/v3/orderList/oco`` params (§6.2).

    Leg types in STOP_LOSS, STOP_LOSS_LIMIT, LIMIT_MAKER, TAKE_PROFIT, TAKE_PROFIT_LIMIT
    (-1158); one leg on the take-profit side (LIMIT_MAKER/TAKE_PROFIT*, both: -1168) and one
    stop loss (neither: -1158); a SELL has the take profit above and the stop below (-1197), a
    BUY the mirror (-1198); their prices in that order (-1165/-1166). An iceberg leg needs GTC
    (-1160). Where each leg stands against the last price only the exchange can judge.
    """
    endpoint = "/api/v3/orderList/oco"
    params = _list_params(symbol, list_client_order_id, endpoint)
    params["side"] = _enum("side", side, SIDES, endpoint, -1117)
    if quantity is None:
        raise _mandatory("quantity", endpoint)
    params["quantity"] = decimal_text("quantity", quantity, endpoint)
    _oco_legs(params, side, above, below, endpoint)
    _list_options(params, endpoint, new_order_resp_type, self_trade_prevention_mode)
    return params


def _working_leg(working: Leg, endpoint: str) -> Params:
    if not working.type:
        raise _mandatory("workingType", endpoint)
    if working.type not in OTO_WORKING_TYPES:
        raise _error(
            -1158, f"Order type not supported as the working order: 'workingType'={working.type}.", endpoint
        )
    return _spot_leg(
        "working",
        endpoint,
        side=working.side,
        quantity=working.quantity,
        client_order_id_name="workingClientOrderId",
        **_leg_args(working),
    )


def oto_params(
    symbol: str,
    working: Leg,
    pending: Leg,
    *,
    list_client_order_id: str | None = None,
    new_order_resp_type: str | None = None,
    self_trade_prevention_mode: str | None = None,
) -> Params:
    """``POST /api/v3/orderList/oto`` params (§6.2): a working LIMIT or LIMIT_MAKER order and
    a pending order of any type (with its own side and quantity, no ``quoteOrderQty``) placed
    once the working one has fully filled. Each leg follows its type's rules (§6.1)."""
    endpoint = "/api/v3/orderList/oto"
    params = _list_params(symbol, list_client_order_id, endpoint)
    params.update(_working_leg(working, endpoint))
    if not pending.type:
        raise _mandatory("pendingType", endpoint)
    params.update(
        _spot_leg(
            "pending",
            endpoint,
            side=pending.side,
            quantity=pending.quantity,
            client_order_id_name="pendingClientOrderId",
            **_leg_args(pending),
        )
    )
    _list_options(params, endpoint, new_order_resp_type, self_trade_prevention_mode)
    return params


def otoco_params(
    symbol: str,
    working: Leg,
    pending_side: str,
    pending_quantity: Num,
    pending_above: Leg,
    pending_below: Leg,
    *,
    list_client_order_id: str | None = None,
    new_order_resp_type: str | None = None,
    self_trade_prevention_mode: str | None = None,
) -> Params:
    """``POST /api/v3/orderList/otoco`` params (§6.2): a working order as in OTO, then an OCO
    pair (``pendingAbove*``/``pendingBelow*``, one side and quantity) under the OCO rules."""
    endpoint = "/api/v3/orderList/otoco"
    params = _list_params(symbol, list_client_order_id, endpoint)
    params.update(_working_leg(working, endpoint))
    params["pendingSide"] = _enum("pendingSide", pending_side, SIDES, endpoint, -1117)
    if pending_quantity is None:
        raise _mandatory("pendingQuantity", endpoint)
    params["pendingQuantity"] = decimal_text("pendingQuantity", pending_quantity, endpoint)
    _oco_legs(params, pending_side, pending_above, pending_below, endpoint, prefix="pending")
    _list_options(params, endpoint, new_order_resp_type, self_trade_prevention_mode)
    return params


def order_ref(
    symbol: str,
    order_id: int | str | None,
    orig_client_order_id: str | None,
    endpoint: str,
    method: str,
    *,
    id_name: str = "orderId",
    client_id_name: str = "origClientOrderId",
) -> Params:
    """``symbol`` plus the order's ID and/or client ID; neither is -1102 (since 2025-04)."""
    params: Params = {"symbol": _symbol(symbol, endpoint, method)}
    if order_id is None and not orig_client_order_id:
        raise _either(id_name, client_id_name, endpoint, method)
    if order_id is not None:
        params[id_name] = _int_text(id_name, order_id, endpoint)
    if orig_client_order_id:
        params[client_id_name] = orig_client_order_id
    return params


def cancel_order_params(
    symbol: str,
    *,
    order_id: int | str | None = None,
    orig_client_order_id: str | None = None,
    new_client_order_id: str | None = None,
    cancel_restrictions: str | None = None,
) -> Params:
    """``DELETE /api/v3/order`` params (§6.1): the order by ``orderId`` and/or
    ``origClientOrderId`` (neither: -1102); ``newClientOrderId`` labels the cancel itself;
    ``cancelRestrictions`` ONLY_NEW or ONLY_PARTIALLY_FILLED (-1145 otherwise)."""
    params = order_ref(symbol, order_id, orig_client_order_id, SPOT_ORDER, "DELETE")
    if new_client_order_id is not None:
        params["newClientOrderId"] = _client_id(
            "newClientOrderId", new_client_order_id, Market.SPOT, SPOT_ORDER
        )
    if cancel_restrictions is not None:
        params["cancelRestrictions"] = _enum(
            "cancelRestrictions", cancel_restrictions, CANCEL_RESTRICTIONS, SPOT_ORDER, -1145
        )
    return params


def cancel_replace_params(
    new_order: Params,
    cancel_replace_mode: str | None,
    *,
    cancel_order_id: int | str | None = None,
    cancel_orig_client_order_id: str | None = None,
    cancel_new_client_order_id: str | None = None,
    cancel_restrictions: str | None = None,
    order_rate_limit_exceeded_mode: str | None = None,
) -> Params:
    """``POST /api/v3/order/cancelReplace`` params (§6.1): ``cancelReplaceMode`` is mandatory
    (STOP_ON_FAILURE or ALLOW_FAILURE), the order to cancel by ``cancelOrderId`` and/or
    ``cancelOrigClientOrderId``, and the new order's params (built by ``spot_order``)."""
    endpoint = "/api/v3/order/cancelReplace"
    if cancel_replace_mode is None:
        raise _mandatory("cancelReplaceMode", endpoint)
    mode = _enum("cancelReplaceMode", cancel_replace_mode, CANCEL_REPLACE_MODES, endpoint)
    if cancel_order_id is None and not cancel_orig_client_order_id:
        raise _either("cancelOrderId", "cancelOrigClientOrderId", endpoint)
    params: Params = {"symbol": new_order["symbol"], "side": new_order["side"], "type": new_order["type"]}
    params["cancelReplaceMode"] = mode
    if cancel_order_id is not None:
        params["cancelOrderId"] = _int_text("cancelOrderId", cancel_order_id, endpoint)
    if cancel_orig_client_order_id:
        params["cancelOrigClientOrderId"] = cancel_orig_client_order_id
    if cancel_new_client_order_id is not None:
        params["cancelNewClientOrderId"] = _client_id(
            "cancelNewClientOrderId", cancel_new_client_order_id, Market.SPOT, endpoint
        )
    if cancel_restrictions is not None:
        params["cancelRestrictions"] = _enum(
            "cancelRestrictions", cancel_restrictions, CANCEL_RESTRICTIONS, endpoint, -1145
        )
    if order_rate_limit_exceeded_mode is not None:
        params["orderRateLimitExceededMode"] = _enum(
            "orderRateLimitExceededMode", order_rate_limit_exceeded_mode, RATE_LIMIT_EXCEEDED_MODES, endpoint
        )
    params.update((k, v) for k, v in new_order.items() if k not in params)
    return params


def amend_keep_priority_params(
    symbol: str,
    new_qty: Num,
    *,
    order_id: int | str | None = None,
    orig_client_order_id: str | None = None,
    new_client_order_id: str | None = None,
) -> Params:
    """``PUT /api/v3/order/amend/keepPriority`` params (§6.1): a smaller ``newQty`` (> 0) for
    the order named by ``orderId`` and/or ``origClientOrderId``; it keeps its queue place."""
    endpoint = "/api/v3/order/amend/keepPriority"
    params = order_ref(symbol, order_id, orig_client_order_id, endpoint, "PUT")
    if new_client_order_id is not None:
        params["newClientOrderId"] = _client_id(
            "newClientOrderId", new_client_order_id, Market.SPOT, endpoint
        )
    if new_qty is None:
        raise _mandatory("newQty", endpoint, "PUT")
    text = decimal_text("newQty", new_qty, endpoint)
    if Decimal(text) <= 0:
        raise _error(
            -1130, f"Data sent for parameter 'newQty' is not valid: {text} (must be > 0).", endpoint, "PUT"
        )
    params["newQty"] = text
    return params


def cancel_order_list_params(
    symbol: str,
    *,
    order_list_id: int | str | None = None,
    list_client_order_id: str | None = None,
    new_client_order_id: str | None = None,
) -> Params:
    """``DELETE /api/v3/orderList`` params: ``orderListId`` or ``listClientOrderId``."""
    endpoint = "/api/v3/orderList"
    params = order_ref(
        symbol,
        order_list_id,
        list_client_order_id,
        endpoint,
        "DELETE",
        id_name="orderListId",
        client_id_name="listClientOrderId",
    )
    if new_client_order_id is not None:
        params["newClientOrderId"] = _client_id(
            "newClientOrderId", new_client_order_id, Market.SPOT, endpoint
        )
    return params


# ------------------------------------------------------------------------------------ futures


def _futures_common(
    params: Params,
    endpoint: str,
    *,
    position_side: str | None,
    reduce_only: bool | str | None,
    new_order_resp_type: str | None,
    self_trade_prevention_mode: str | None,
) -> None:
    if position_side is not None:
        params["positionSide"] = _enum("positionSide", position_side, POSITION_SIDES, endpoint)
    if reduce_only is not None:
        text = _bool_text("reduceOnly", reduce_only, endpoint)
        # Hedge mode (LONG/SHORT) takes no reduceOnly: the position side says it all.
        if params.get("positionSide") in ("LONG", "SHORT"):
            raise _not_required("reduceOnly", endpoint)
        params["reduceOnly"] = text
    if new_order_resp_type is not None:
        params["newOrderRespType"] = _enum(
            "newOrderRespType", new_order_resp_type, FUTURES_RESP_TYPES, endpoint, -1136
        )
    if self_trade_prevention_mode is not None:
        params["selfTradePreventionMode"] = _enum(
            "selfTradePreventionMode", self_trade_prevention_mode, FUTURES_STP_MODES, endpoint
        )


def _futures_time_in_force(
    params: Params,
    endpoint: str,
    time_in_force: str | None,
    good_till_date: int | str | None,
    now_ms: int | None,
) -> None:
    if time_in_force is not None:
        params["timeInForce"] = _enum("timeInForce", time_in_force, FUTURES_TIME_IN_FORCE, endpoint, -1115)
    if time_in_force == "GTD":
        if good_till_date is None:
            raise _mandatory("goodTillDate", endpoint)
        text = _int_text("goodTillDate", good_till_date, endpoint)
        gtd = int(text)
        too_soon = now_ms is not None and gtd <= now_ms + GTD_MIN_AHEAD_MS
        if too_soon or gtd >= GTD_MAX_MS:
            raise _error(
                -1102,
                "The goodTillDate timestamp must be greater than the current time plus 600 seconds "
                f"and smaller than {GTD_MAX_MS} (got {gtd}).",
                endpoint,
            )
        # The exchange keeps second precision: send what it will use, so queries compare equal.
        params["goodTillDate"] = str(gtd - gtd % 1000)
    elif good_till_date is not None:
        raise _not_required("goodTillDate", endpoint)


def _price_or_match(price: Num | None, price_match: str | None, endpoint: str, method: str = "POST") -> None:
    """A futures limit price is ``price`` or ``priceMatch`` (the exchange picks the price),
    exactly one of them."""
    if price is not None and price_match is not None:
        raise _bad_combo("'priceMatch' cannot be sent together with 'price'.", endpoint, method)
    if price is None and price_match is None:
        raise _mandatory("price", endpoint, method)


def _refuse_limit_fields(
    endpoint: str, *, price: Num | None, time_in_force: str | None, price_match: str | None
) -> None:
    """A futures type that is not a limit takes no price, timeInForce or priceMatch (-1106)."""
    for name, value in (("price", price), ("timeInForce", time_in_force), ("priceMatch", price_match)):
        if value is not None:
            raise _not_required(name, endpoint)


def _positive(name: str, value: Num, endpoint: str, code: int, what: str) -> str:
    text = decimal_text(name, value, endpoint)
    if Decimal(text) <= 0:
        raise _error(code, f"{what} less than or equal to zero ('{name}'={text}).", endpoint)
    return text


def futures_order(
    symbol: str,
    side: str,
    type: str,
    *,
    quantity: Num | None = None,
    price: Num | None = None,
    time_in_force: str | None = None,
    position_side: str | None = None,
    reduce_only: bool | str | None = None,
    new_client_order_id: str | None = None,
    new_order_resp_type: str | None = None,
    price_match: str | None = None,
    self_trade_prevention_mode: str | None = None,
    good_till_date: int | str | None = None,
    now_ms: int | None = None,
    endpoint: str = FUTURES_ORDER,
) -> Params:
    """``POST /fapi/v1/order`` params (§6.3): LIMIT and MARKET only (the conditional types
    moved to the algo endpoint: -4120, use ``futures_conditional``).

    LIMIT needs ``timeInForce`` (GTC, IOC, FOK, GTX, GTD, RPI), ``quantity`` and ``price`` or
    ``priceMatch`` (never both); MARKET needs ``quantity`` and takes neither price nor
    ``timeInForce``; there is no ``quoteOrderQty``. GTD needs ``goodTillDate`` (ms, more than
    600 s ahead of ``now_ms`` when given; sent at second precision). ``reduceOnly`` travels as
    ``"true"``/``"false"`` and is refused with ``positionSide`` LONG/SHORT (Hedge mode).
    """
    if not isinstance(type, str) or not type:
        raise _mandatory("type", endpoint)
    if type in FUTURES_ALGO_TYPES:
        raise _error(
            -4120,
            f"Order type {type} not supported for this endpoint. "
            "Please use the Algo Order API endpoints instead.",
            endpoint,
        )
    if type not in FUTURES_ORDER_TYPES:
        raise _error(-1116, f"Invalid orderType: {type!r}.", endpoint)
    params: Params = {"symbol": _symbol(symbol, endpoint)}
    params["side"] = _enum("side", side, SIDES, endpoint, -1117)
    params["type"] = type
    if quantity is None:
        raise _mandatory("quantity", endpoint)
    qty = _positive("quantity", quantity, endpoint, -4003, "Quantity")
    if type == "LIMIT":
        if time_in_force is None:
            raise _mandatory("timeInForce", endpoint)
        _price_or_match(price, price_match, endpoint)
    else:
        _refuse_limit_fields(endpoint, price=price, time_in_force=time_in_force, price_match=price_match)
    _futures_time_in_force(params, endpoint, time_in_force, good_till_date, now_ms)
    params["quantity"] = qty
    if price is not None:
        params["price"] = _positive("price", price, endpoint, -4001, "Price")
    if price_match is not None:
        params["priceMatch"] = _enum("priceMatch", price_match, PRICE_MATCH, endpoint)
    if new_client_order_id is not None:
        params["newClientOrderId"] = _client_id(
            "newClientOrderId", new_client_order_id, Market.USDM, endpoint
        )
    _futures_common(
        params,
        endpoint,
        position_side=position_side,
        reduce_only=reduce_only,
        new_order_resp_type=new_order_resp_type,
        self_trade_prevention_mode=self_trade_prevention_mode,
    )
    return params


def futures_conditional(
    symbol: str,
    side: str,
    type: str,
    *,
    quantity: Num | None = None,
    price: Num | None = None,
    trigger_price: Num | None = None,
    working_type: str | None = None,
    price_protect: bool | str | None = None,
    close_position: bool | str | None = None,
    reduce_only: bool | str | None = None,
    activate_price: Num | None = None,
    callback_rate: Num | None = None,
    time_in_force: str | None = None,
    position_side: str | None = None,
    client_algo_id: str | None = None,
    price_match: str | None = None,
    good_till_date: int | str | None = None,
    self_trade_prevention_mode: str | None = None,
    new_order_resp_type: str | None = None,
    now_ms: int | None = None,
) -> Params:
    """``POST /fapi/v1/algoOrder`` params with ``algoType=CONDITIONAL`` (§6.3).

    STOP and TAKE_PROFIT: ``quantity``, ``price`` (or ``priceMatch``) and ``triggerPrice``
    (``timeInForce`` optional, GTC by default);
    STOP_MARKET and TAKE_PROFIT_MARKET: ``triggerPrice`` and ``quantity``, or
    ``closePosition=true`` instead (never with ``quantity`` or ``reduceOnly``);
    TRAILING_STOP_MARKET: ``quantity`` and ``callbackRate`` (0.1..10, 1 = 1 %), optional
    ``activatePrice``, no ``triggerPrice``. ``workingType``: MARK_PRICE or CONTRACT_PRICE;
    ``priceProtect`` and ``closePosition`` travel as ``"true"``/``"false"``.
    """
    endpoint = FUTURES_ALGO
    if not isinstance(type, str) or not type:
        raise _mandatory("type", endpoint)
    if type not in FUTURES_ALGO_TYPES:
        raise _error(-1116, f"Invalid orderType for a conditional algo order: {type!r}.", endpoint)
    params: Params = {"algoType": "CONDITIONAL", "symbol": _symbol(symbol, endpoint)}
    params["side"] = _enum("side", side, SIDES, endpoint, -1117)
    params["type"] = type
    closing = close_position is not None and _bool_text("closePosition", close_position, endpoint) == "true"
    limit_type = type in ("STOP", "TAKE_PROFIT")
    trailing = type == "TRAILING_STOP_MARKET"

    if close_position is not None:
        if type not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
            raise _not_required("closePosition", endpoint)
        # Closing the whole position leaves nothing for a quantity or reduceOnly to say.
        if closing and quantity is not None:
            raise _not_required("quantity", endpoint)
        if closing and reduce_only is not None:
            raise _not_required("reduceOnly", endpoint)
    if quantity is None and not closing:
        raise _mandatory("quantity", endpoint)

    if trailing:
        if trigger_price is not None:
            raise _not_required("triggerPrice", endpoint)
        if callback_rate is None:
            raise _mandatory("callbackRate", endpoint)
    else:
        if trigger_price is None:
            raise _mandatory("triggerPrice", endpoint)
        for name, value in (("callbackRate", callback_rate), ("activatePrice", activate_price)):
            if value is not None:
                raise _not_required(name, endpoint)

    if limit_type:
        _price_or_match(price, price_match, endpoint)
    else:
        _refuse_limit_fields(endpoint, price=price, time_in_force=time_in_force, price_match=price_match)

    _futures_time_in_force(params, endpoint, time_in_force, good_till_date, now_ms)
    if quantity is not None:
        params["quantity"] = _positive("quantity", quantity, endpoint, -4003, "Quantity")
    if price is not None:
        params["price"] = _positive("price", price, endpoint, -4001, "Price")
    if trigger_price is not None:
        params["triggerPrice"] = _positive("triggerPrice", trigger_price, endpoint, -4006, "Trigger price")
    if price_match is not None:
        params["priceMatch"] = _enum("priceMatch", price_match, PRICE_MATCH, endpoint)
    if working_type is not None:
        params["workingType"] = _enum("workingType", working_type, WORKING_TYPES, endpoint)
    if price_protect is not None:
        params["priceProtect"] = _bool_text("priceProtect", price_protect, endpoint)
    if close_position is not None:
        params["closePosition"] = "true" if closing else "false"
    if activate_price is not None:
        params["activatePrice"] = _positive(
            "activatePrice", activate_price, endpoint, -4001, "Activate price"
        )
    if callback_rate is not None:
        text = decimal_text("callbackRate", callback_rate, endpoint)
        if not CALLBACK_RATE_MIN <= Decimal(text) <= CALLBACK_RATE_MAX:
            raise _error(
                -1130,
                f"Data sent for parameter 'callbackRate' is not valid: {text} "
                f"(must be {CALLBACK_RATE_MIN}..{CALLBACK_RATE_MAX}, 1 = 1%).",
                endpoint,
            )
        params["callbackRate"] = text
    if client_algo_id is not None:
        params["clientAlgoId"] = _client_id("clientAlgoId", client_algo_id, Market.USDM, endpoint)
    _futures_common(
        params,
        endpoint,
        position_side=position_side,
        reduce_only=reduce_only,
        new_order_resp_type=new_order_resp_type,
        self_trade_prevention_mode=self_trade_prevention_mode,
    )
    return params


def futures_modify(
    symbol: str,
    side: str,
    quantity: Num | None,
    price: Num | None,
    *,
    order_id: int | str | None = None,
    orig_client_order_id: str | None = None,
    price_match: str | None = None,
) -> Params:
    """``PUT /fapi/v1/order`` params (§6.3): LIMIT orders only; ``side``, ``quantity`` and
    ``price`` are all required (``priceMatch`` may stand in for ``price``, never beside it).
    The order loses its queue place and is cancelled if the new quantity is not above what has
    already been executed."""
    endpoint = FUTURES_ORDER
    params = order_ref(symbol, order_id, orig_client_order_id, endpoint, "PUT")
    params["side"] = _enum("side", side, SIDES, endpoint, -1117)
    if quantity is None:
        raise _mandatory("quantity", endpoint, "PUT")
    params["quantity"] = _positive("quantity", quantity, endpoint, -4003, "Quantity")
    _price_or_match(price, price_match, endpoint, "PUT")
    if price is not None:
        params["price"] = _positive("price", price, endpoint, -4001, "Price")
    if price_match is not None:
        params["priceMatch"] = _enum("priceMatch", price_match, PRICE_MATCH, endpoint)
    return params


def futures_batch_params(orders: Sequence[Params]) -> dict[str, object]:
    """``POST /fapi/v1/batchOrders`` params: 1..5 orders built by ``futures_order`` (each a
    LIMIT or MARKET order), sent as one JSON list in ``batchOrders``. The exchange processes
    them concurrently, with no guaranteed order; answers come back in request order."""
    endpoint = "/fapi/v1/batchOrders"
    if not orders:
        raise _mandatory("batchOrders", endpoint)
    if len(orders) > MAX_BATCH_ORDERS:
        raise _error(
            -1130,
            f"Data sent for parameter 'batchOrders' is not valid: "
            f"{len(orders)} orders (max {MAX_BATCH_ORDERS}).",
            endpoint,
        )
    for order in orders:
        if order.get("type") not in FUTURES_ORDER_TYPES:
            raise _error(-1116, f"Invalid orderType in batchOrders: {order.get('type')!r}.", endpoint)
    return {"batchOrders": [dict(order) for order in orders]}


# ------------------------------------------------------------------------------------ filters


def _dec(params: Mapping[str, str], name: str) -> Decimal | None:
    value = params.get(name)
    return None if value is None else Decimal(value)


def filter_args(params: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """A built order (or one leg of an order list, by ``prefix``) as the keyword arguments of
    ``SymbolRules.check_order``. Order-list legs share the list's side and quantity."""

    def w(name: str) -> str:
        return _wire(prefix, name)

    side = params.get(w("side")) or params.get("pendingSide" if prefix.startswith("pending") else "side")
    quantity = _dec(params, w("quantity"))
    if quantity is None:
        shared = "pendingQuantity" if prefix.startswith("pending") else "quantity"
        quantity = _dec(params, shared)
    trailing = params.get(w("trailingDelta"))
    stop = _dec(params, w("stopPrice"))
    if stop is None and "triggerPrice" in params and not prefix:
        stop = _dec(params, "triggerPrice")  # futures algo orders trigger at triggerPrice
    return {
        "side": side,
        "type": params[w("type")],
        "price": _dec(params, w("price")),
        "quantity": quantity,
        "quote_order_qty": _dec(params, w("quoteOrderQty")),
        "stop_price": stop,
        "iceberg_qty": _dec(params, w("icebergQty")),
        "trailing_delta": None if trailing is None else int(trailing),
        "reduce_only": params.get("reduceOnly") == "true",
        "close_position": params.get("closePosition") == "true",
    }


# ------------------------------------------------------------------------------------ placement


@dataclass(frozen=True)
class ReconcilePolicy:
    """How an order whose placement outcome is unknown is settled (§10.4).

    ``query_backoff_s``/``query_backoff_max_s``: the first pause and the cap between queries
    while the exchange cannot answer (network errors, 5xx, busy). ``give_up_after_s``: how long
    to keep trying before raising the ``UnknownOutcome`` (the order may exist: the caller must
    then settle it from the user-data stream). ``clock_margin_ms``: added to
    ``timestamp + recvWindow`` before a resend, for the skew between our estimate of the
    server clock and the server's. ``max_resends``: resends of the same client order ID after
    the exchange has confirmed the order does not exist.
    """

    query_backoff_s: float = 0.2
    query_backoff_max_s: float = 5.0
    give_up_after_s: float = 120.0
    clock_margin_ms: int = 1000
    max_resends: int = 3


_RETRYABLE: Final = (NetworkError, UnknownOutcome, ServerBusy)


def _no_such_order(exc: BinanceError) -> bool:
    return isinstance(exc, NoSuchOrder)


async def place_with_reconciliation(
    send: Callable[[], Awaitable[T]],
    query: Callable[[], Awaitable[T]],
    *,
    client_order_id: str,
    now_ms: Callable[[], float],
    recv_window_ms: float,
    policy: ReconcilePolicy,
    not_found: Callable[[BinanceError], bool] | None = None,
    on_reconciled: Callable[[T], T] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Send an order once; if its outcome is unknown, find out before sending it again.

    The recipe (§10.4): the order carries our client order ID, so after an unknown outcome we
    query by that ID, retrying with backoff while the exchange cannot answer. Found: that is
    the answer (``on_reconciled`` marks it). Not found (-2013): the request may still be in
    flight inside the exchange, so we wait until its ``timestamp + recvWindow`` (+ margin) has
    passed on the server clock; the exchange refuses a request older than that before it
    reaches the matching engine, so a "not found" from a query *started* after that instant is
    final, and only then is the order sent again, with the same client order ID (a duplicate
    would be refused while the first is open). It is never sent twice otherwise.

    ``not_found`` says which query error means "the exchange does not have it" (default:
    ``NoSuchOrder``, -2013); any other error that is not a transient one is raised.
    """
    absent = not_found if not_found is not None else _no_such_order
    resends = 0
    while True:
        try:
            return await send()
        except UnknownOutcome as exc:
            # Every timestamp the client may have signed this attempt with is <= now.
            deadline = now_ms() + recv_window_ms + policy.clock_margin_ms
            log.warning(
                "order %s: outcome unknown (%s); reconciling by client order ID", client_order_id, exc.msg
            )
            first_error = exc
        found = await _settle(query, client_order_id, deadline, now_ms, policy, absent, sleep, first_error)
        if found is not None:
            log.warning("order %s: found on the exchange after an unknown outcome", client_order_id)
            return on_reconciled(found) if on_reconciled is not None else found
        resends += 1
        if resends > policy.max_resends:
            raise first_error
        log.warning(
            "order %s: confirmed absent after timestamp + recvWindow; resending with the same ID",
            client_order_id,
        )


async def _settle(
    query: Callable[[], Awaitable[T]],
    client_order_id: str,
    deadline_ms: float,
    now_ms: Callable[[], float],
    policy: ReconcilePolicy,
    not_found: Callable[[BinanceError], bool],
    sleep: Callable[[float], Awaitable[None]],
    first_error: UnknownOutcome,
) -> T | None:
    """The order as the exchange holds it, or None once it is certain the exchange never will."""
    give_up = time.monotonic() + policy.give_up_after_s
    backoff = policy.query_backoff_s
    while True:
        started = now_ms()
        try:
            return await query()
        except BinanceError as exc:
            if not_found(exc):
                if started >= deadline_ms:
                    return None
                # Possibly still in flight: ask again once it could no longer be accepted.
                await sleep(max(0.0, (deadline_ms - now_ms()) / 1000.0) + 0.001)
                continue
            if not isinstance(exc, _RETRYABLE):
                raise
            if time.monotonic() + backoff > give_up:
                log.error("order %s: could not reconcile (%s); giving up", client_order_id, exc.msg)
                raise first_error from exc
            log.info("order %s: reconciliation query failed (%s); retrying", client_order_id, exc.msg)
            await sleep(backoff)
            backoff = min(backoff * 2, policy.query_backoff_max_s)


# ------------------------------------------------------------------------------------ shared plumbing


class TradingBase:
    """What ``SpotTrading`` and ``FuturesTrading`` share: the tracker hook, the local filter
    check against exchangeInfo (loaded on first use), client order IDs and the placement path
    with reconciliation."""

    _order_path: str = ""  # the market's order endpoint, named in local refusals

    def __init__(
        self,
        client: RestClient,
        *,
        tracker: ResponseSink | None = None,
        check: bool = True,
        reconcile: ReconcilePolicy | None = None,
        id_prefix: str = "tb",
    ) -> None:
        self.client = client
        self.tracker = tracker
        self.check = check
        self.reconcile = reconcile if reconcile is not None else ReconcilePolicy()
        self.id_prefix = id_prefix
        new_client_order_id(id_prefix)  # refuse a bad prefix now, not at the first order
        self._rules_lock: asyncio.Lock | None = None  # created on the loop that first needs it

    def new_id(self) -> str:
        """A fresh client order ID with this object's prefix."""
        return new_client_order_id(self.id_prefix)

    def _give_id(self, options: dict[str, Any], name: str = "new_client_order_id") -> None:
        """Generate the order's client ID (``options[name]``) when the caller gave none: it is
        what lets an unknown outcome be reconciled without placing the order twice."""
        if options.get(name) is None:
            options[name] = self.new_id()

    def _feed(self, obj: Any) -> None:
        """Hand an answer to the tracker; a tracker failure never fails the trade."""
        if self.tracker is None:
            return
        try:
            self.tracker.on_response(obj)
        except Exception:
            log.exception("order tracker failed on %s", type(obj).__name__)

    def _feed_all(self, items: Sequence[Any]) -> None:
        for item in items:
            self._feed(item)

    async def _get(self, path: str, params: Mapping[str, object] | None, type: type[T]) -> T:
        return await self.client.request_typed("GET", path, params, signed=True, type=type)

    async def _tracked(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None,
        type: type[T],
        *,
        client_order_id: str | None = None,
    ) -> T:
        """A signed request about orders that exist already (query, cancel, amend): its answer,
        one order or a list of them, goes to the tracker too."""
        result = await self.client.request_typed(
            method, path, params, signed=True, client_order_id=client_order_id, type=type
        )
        if isinstance(result, list):
            self._feed_all(result)
        else:
            self._feed(result)
        return result

    @staticmethod
    def _history(
        symbol: str,
        order_id: int | None,
        start_time: int | None,
        end_time: int | None,
        limit: int | None,
        *,
        from_id: int | None = None,
    ) -> dict[str, object]:
        """The filters of the order and trade history queries (a None filter is not sent)."""
        return {
            "symbol": symbol,
            "orderId": order_id,
            "startTime": start_time,
            "endTime": end_time,
            "fromId": from_id,
            "limit": limit,
        }

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        """The symbol's trading rules, loading exchangeInfo on first use (and once more for a
        symbol the loaded rules do not know, e.g. listed since). -1121 for an unknown symbol."""
        rules = self.client.rules
        if rules is None or symbol not in rules:
            if self._rules_lock is None:
                self._rules_lock = asyncio.Lock()
            async with self._rules_lock:  # concurrent first orders load exchangeInfo once
                rules = self.client.rules
                if rules is None or symbol not in rules:
                    await self.client.exchange_info()
                    rules = self.client.rules
        if rules is None or symbol not in rules:
            raise RequestError("Invalid symbol.", code=-1121, method="POST", endpoint=self._order_path)
        return rules[symbol]

    async def _check_filters(
        self,
        params: Params,
        prefixes: Sequence[str],
        endpoint: str,
        check: bool | None,
        client_id: str | None,
        reference_price: Num | None = None,
        method: str = "POST",
    ) -> None:
        """``SymbolRules.check_order`` on the order (each leg of a list), unless checks are off.

        ``reference_price`` (spot: the reference or average price; futures: the mark price)
        enables the checks that compare with the market: PERCENT_PRICE and the notional of a
        MARKET order. Without it only the exchange can judge those."""
        if not (self.check if check is None else check):
            return
        rules = await self.symbol_rules(params["symbol"])
        ref = None
        if reference_price is not None:
            ref = Decimal(decimal_text("reference_price", reference_price, endpoint))
        for prefix in prefixes:
            try:
                rules.check_order(**filter_args(params, prefix), reference_price=ref)
            except BinanceError as exc:
                # The rules know the order, not the request: name the request it refused.
                exc.method, exc.endpoint, exc.client_order_id = method, endpoint, client_id
                raise

    async def _name_lot_filter(self, refused: FilterFailure, params: Mapping[str, object]) -> None:
        """A futures quantity code (-4003/-4004/-4005/-4023) names no filter: the order's type
        tells whether LOT_SIZE or MARKET_LOT_SIZE judged it (``futures_lot_filter``), so the
        exchange's refusal carries the name a local check gives."""
        if refused.local or not self.client.market.is_futures or refused.code not in _FUTURES_QTY_CODES:
            return
        symbol, order_type = params.get("symbol"), params.get("type")
        if not isinstance(symbol, str) or not isinstance(order_type, str):
            return
        try:
            rules = await self.symbol_rules(symbol)
        except BinanceError:
            return  # no rules to tell: the code's own name stays
        refused.filter = rules.futures_lot_filter(order_type)

    def _recv_window_ms(self) -> float:
        return float(Decimal(self.client.recv_window))

    async def _place(
        self,
        method: str,
        path: str,
        params: Mapping[str, object],
        type: type[T],
        *,
        client_id: str,
        query: Callable[[], Awaitable[T]],
        reconciled: Callable[[T], T] | None = None,
        not_found: Callable[[BinanceError], bool] | None = None,
    ) -> T:
        """Send once; reconcile an unknown outcome by ``query`` (see
        ``place_with_reconciliation``); hand the answer to the tracker."""

        async def send() -> T:
            try:
                return await self.client.request_typed(
                    method, path, params, signed=True, client_order_id=client_id, type=type
                )
            except FilterFailure as refused:
                await self._name_lot_filter(refused, params)
                raise

        result = await place_with_reconciliation(
            send,
            query,
            client_order_id=client_id,
            now_ms=self.client.clock.now_ms,
            recv_window_ms=self._recv_window_ms(),
            policy=self.reconcile,
            on_reconciled=reconciled,
            not_found=not_found,
        )
        self._feed(result)
        return result


def reconciled_as(cls: type[T]) -> Callable[[Any], T]:
    """Copy a decoded answer into ``cls``, a subclass that adds ``reconciled = True``."""

    def convert(obj: Any) -> T:
        return cls(**msgspec.structs.asdict(obj))

    return convert


def is_reconciled(obj: object) -> bool:
    """Whether an answer was recovered by reconciliation (the placement's own answer was lost)."""
    return bool(getattr(obj, "reconciled", False))
