"""Trading rules from exchangeInfo: validate orders and round prices and quantities.

The exchange refuses an order whose price, quantity or notional breaks one of the symbol's
filters (binance-spec §7). This module reads those filters once from an exchangeInfo answer
and applies them locally, with the exchange's own error codes and messages, so a bad order is
refused before it costs a request, and the local exchange (``tickbook.sim``) refuses with the
same answer the real one sends. All arithmetic is exact ``Decimal``; floats are refused.

Spot and USD-M use different formulas for the grid (§7):

* spot: ``price % tickSize == 0`` and ``qty % stepSize == 0`` (multiples counted from 0);
* futures: ``(price - minPrice) % tickSize == 0`` and ``(qty - minQty) % stepSize == 0``
  (multiples counted from the minimum).

Spot refusals are ``-1013 "Filter failure: <NAME>"``; futures refusals carry one code per
rule (§10.3 and the USD-M error-code list): ``-4001``/``-4002``/``-4013``/``-4014`` for the price,
``-4006``/``-4007`` for the trigger price, ``-4003``/``-4004``/``-4005``/``-4023`` for the
quantity, ``-4016``/``-4024`` for PERCENT_PRICE and ``-4164`` for MIN_NOTIONAL. COIN-M symbols
follow the futures rules. A refusal here is ``FilterFailure(local=True)`` with no HTTP status
(``status`` None: nothing was sent); the local exchange answers it with HTTP 400.

A field that is zero disables that part of its filter (§7): ``tickSize == 0`` means any price
is on the grid, ``maxQty == 0`` means no upper bound, and so on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from functools import cached_property
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn

import msgspec

from tickbook._types import Market
from tickbook.trading.errors import FilterFailure, RequestError

__all__ = [
    "ExchangeInfoError",
    "ExchangeRules",
    "RoundingMode",
    "SymbolRules",
]

RoundingMode = Literal["down", "up", "nearest"]

# Every operation either is exact or raises: a price that silently lost a digit would pass or
# fail a filter for the wrong reason. 100 digits hold any product of two exchange decimals.
_EXACT: Final = Context(prec=100, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])
_ZERO: Final = Decimal(0)

_SIDES: Final = frozenset({"BUY", "SELL"})
# Spot types that execute as a market order (immediately, or once triggered).
_SPOT_MARKET_TYPES: Final = frozenset({"MARKET", "STOP_LOSS", "TAKE_PROFIT"})
_SPOT_STOP_LOSS: Final = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})
_SPOT_TAKE_PROFIT: Final = frozenset({"TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
# Futures types that execute as a market order; they take MARKET_LOT_SIZE instead of LOT_SIZE.
_FUTURES_MARKET_TYPES: Final = frozenset(
    {"MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)


class ExchangeInfoError(ValueError):
    """An exchangeInfo object (or one symbol or filter in it) is not usable: says which and why."""


# ------------------------------------------------------------------ parsing


def _number(value: object, name: str) -> Decimal:
    """An order value as an exact Decimal; floats are refused because they are not exact."""
    if isinstance(value, bool | float):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name} {value!r} is not a decimal number") from None
    else:
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{name} {value!r} is not a finite number")
    return result


def _optional(value: object, name: str) -> Decimal | None:
    return None if value is None else _number(value, name)


def _decimals(value: Decimal) -> int:
    """Decimals the value needs (``"1.50"`` needs 1): trailing zeros carry no precision."""
    exponent = value.normalize(_EXACT).as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only reach here
    return max(0, -exponent)


def _mul(a: Decimal, b: Decimal) -> Decimal:
    return _EXACT.multiply(a, b)


def _sub(a: Decimal, b: Decimal) -> Decimal:
    return _EXACT.subtract(a, b)


def _on_grid(value: Decimal, base: Decimal, step: Decimal) -> bool:
    """``(value - base) % step == 0``; a zero step accepts everything (disabled)."""
    if step == 0:
        return True
    return _EXACT.remainder(_sub(value, base), step) == 0


def _exponent(value: Decimal) -> int:
    if value == 0:
        return 0
    exponent = value.normalize(_EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent


def _round_to_grid(value: Decimal, base: Decimal, step: Decimal, mode: str) -> Decimal:
    """The grid point ``base + k*step`` below, above or nearest to ``value``.

    ``nearest`` rounds a value exactly half-way up. The result is written with the grid's
    decimals (``61602.01``, not ``61602.01000000``): the exchange accepts either, and the short
    form is what a person expects to read in a log.
    """
    if mode not in ("down", "up", "nearest"):
        raise ValueError(f"rounding mode must be 'down', 'up' or 'nearest', not {mode!r}")
    if step == 0:
        return value
    offset = _sub(value, base)
    whole, rest = _EXACT.divmod(offset, step)
    if rest < 0:  # Decimal divmod truncates toward zero; the grid wants the floor
        whole = _EXACT.subtract(whole, Decimal(1))
        rest = _EXACT.add(rest, step)
    if rest != 0 and (mode == "up" or (mode == "nearest" and _mul(rest, Decimal(2)) >= step)):
        whole = _EXACT.add(whole, Decimal(1))
    result = _EXACT.add(base, _mul(whole, step))
    exponent = min(_exponent(step), _exponent(base), 0)
    return result.quantize(Decimal((0, (1,), exponent)), context=_EXACT)


def _lcm(a: Decimal, b: Decimal) -> Decimal:
    """Smallest positive common multiple of two positive decimals (both grids at once)."""
    scale = max(_decimals(a), _decimals(b))
    factor = _EXACT.power(Decimal(10), scale)
    ia, ib = int(_mul(a, factor)), int(_mul(b, factor))
    return _EXACT.divide(Decimal(math.lcm(ia, ib)), factor)


class _FilterReader:
    """Reads typed fields out of one raw filter object, with errors that say where."""

    def __init__(self, symbol: str, raw: Mapping[str, Any]) -> None:
        self.symbol = symbol
        self.raw = raw
        self.name = str(raw.get("filterType"))

    def _where(self, key: str) -> str:
        return f"{self.symbol}: filter {self.name} field {key!r}"

    def dec(self, key: str, *, required: bool = True) -> Decimal:
        if key not in self.raw:
            if not required:
                return _ZERO
            raise ExchangeInfoError(f"{self._where(key)} is missing")
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ExchangeInfoError(f"{self._where(key)} is {value!r}, expected a decimal string")
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ExchangeInfoError(f"{self._where(key)} is {value!r}, not a decimal number") from None
        if not result.is_finite() or result < 0:
            raise ExchangeInfoError(f"{self._where(key)} is {value!r}: must be a finite value >= 0")
        return result

    def integer(self, key: str, *, required: bool = True) -> int:
        if key not in self.raw:
            if not required:
                return 0
            raise ExchangeInfoError(f"{self._where(key)} is missing")
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ExchangeInfoError(f"{self._where(key)} is {value!r}, expected an integer")
        try:
            result = int(value)
        except ValueError:
            raise ExchangeInfoError(f"{self._where(key)} is {value!r}, not an integer") from None
        if result < 0:
            raise ExchangeInfoError(f"{self._where(key)} is {value!r}: must be >= 0")
        return result

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise ExchangeInfoError(f"{self._where(key)} is {value!r}, expected true or false")

    def bounds(self, low_key: str, high_key: str) -> tuple[Decimal, Decimal]:
        low, high = self.dec(low_key), self.dec(high_key)
        if high != 0 and low > high:
            raise ExchangeInfoError(
                f"{self.symbol}: filter {self.name} has {low_key} {low} > {high_key} {high}"
            )
        return low, high


# Parsed filters: one small record per filter type that check_order understands.


@dataclass(frozen=True, slots=True)
class _PriceFilter:
    min: Decimal
    max: Decimal
    tick: Decimal


@dataclass(frozen=True, slots=True)
class _LotFilter:
    name: str  # LOT_SIZE or MARKET_LOT_SIZE
    min: Decimal
    max: Decimal
    step: Decimal


@dataclass(frozen=True, slots=True)
class _PercentPrice:
    up: Decimal
    down: Decimal


@dataclass(frozen=True, slots=True)
class _PercentPriceBySide:
    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal


@dataclass(frozen=True, slots=True)
class _MinNotional:
    min: Decimal
    apply_to_market: bool
    text: str  # futures: the value as exchangeInfo writes it, quoted in the -4164 message


@dataclass(frozen=True, slots=True)
class _Notional:
    min: Decimal
    max: Decimal
    apply_min_to_market: bool
    apply_max_to_market: bool


@dataclass(frozen=True, slots=True)
class _IcebergParts:
    limit: int


@dataclass(frozen=True, slots=True)
class _TrailingDelta:
    min_above: int
    max_above: int
    min_below: int
    max_below: int


_Parsed = (
    _PriceFilter
    | _LotFilter
    | _PercentPrice
    | _PercentPriceBySide
    | _MinNotional
    | _Notional
    | _IcebergParts
    | _TrailingDelta
)


def _parse_filter(symbol: str, raw: Mapping[str, Any], futures: bool) -> _Parsed | None:
    """The checked form of one filter; None for the filters that need account state."""
    r = _FilterReader(symbol, raw)
    kind = r.name
    if kind == "PRICE_FILTER":
        low, high = r.bounds("minPrice", "maxPrice")
        return _PriceFilter(low, high, r.dec("tickSize"))
    if kind in ("LOT_SIZE", "MARKET_LOT_SIZE"):
        low, high = r.bounds("minQty", "maxQty")
        return _LotFilter(kind, low, high, r.dec("stepSize"))
    if kind == "PERCENT_PRICE":
        return _PercentPrice(r.dec("multiplierUp"), r.dec("multiplierDown"))
    if kind == "PERCENT_PRICE_BY_SIDE":
        return _PercentPriceBySide(
            r.dec("bidMultiplierUp"),
            r.dec("bidMultiplierDown"),
            r.dec("askMultiplierUp"),
            r.dec("askMultiplierDown"),
        )
    if kind == "MIN_NOTIONAL":
        if futures:  # USD-M writes {"notional": "5"} and has no market flag
            value = r.dec("notional")
            return _MinNotional(value, True, str(raw["notional"]))
        value = r.dec("minNotional")
        return _MinNotional(value, r.flag("applyToMarket", True), str(raw["minNotional"]))
    if kind == "NOTIONAL":
        low, high = r.bounds("minNotional", "maxNotional")
        return _Notional(low, high, r.flag("applyMinToMarket", True), r.flag("applyMaxToMarket", False))
    if kind == "ICEBERG_PARTS":
        return _IcebergParts(r.integer("limit"))
    if kind == "TRAILING_DELTA":
        return _TrailingDelta(
            r.integer("minTrailingAboveDelta"),
            r.integer("maxTrailingAboveDelta"),
            r.integer("minTrailingBelowDelta"),
            r.integer("maxTrailingBelowDelta"),
        )
    return None


# ------------------------------------------------------------------ one order


@dataclass(frozen=True, slots=True)
class _Order:
    side: str
    type: str
    price: Decimal | None
    quantity: Decimal | None
    quote_qty: Decimal | None
    stop: Decimal | None
    iceberg: Decimal | None
    trailing: int | None
    ref: Decimal | None
    reduce_only: bool
    close_position: bool


# ------------------------------------------------------------------ one symbol


def _text(obj: Mapping[str, Any], key: str, symbol: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ExchangeInfoError(f"{symbol}: field {key!r} is {value!r}, expected a non-empty string")
    return value


def _precision(obj: Mapping[str, Any], key: str, symbol: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExchangeInfoError(f"{symbol}: field {key!r} is {value!r}, expected an integer >= 0")
    return value


@dataclass(frozen=True)
class SymbolRules:
    """One symbol's trading rules from exchangeInfo, with exact Decimal values.

    ``tick_size``/``min_price``/``max_price`` come from PRICE_FILTER and ``step_size``/
    ``min_qty``/``max_qty`` from LOT_SIZE; a value of 0 means that part is disabled (or the
    filter is absent). ``filters`` keeps every raw filter object by ``filterType``.
    ``base_asset_precision``/``quote_asset_precision`` are the spot asset precisions that bound
    the decimals of a parameter (§7, ``-1111``); ``quotePrecision`` is deliberately not read
    (slated for removal).
    """

    symbol: str
    market: Market
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    filters: Mapping[str, Mapping[str, Any]]
    order_types: frozenset[str]
    base_asset_precision: int | None
    quote_asset_precision: int | None

    @classmethod
    def from_exchange_info(cls, symbol_obj: Mapping[str, Any], market: Market | str) -> SymbolRules:
        """Build from one element of exchangeInfo ``symbols``; raises ExchangeInfoError when unusable.

        COIN-M writes the status as ``contractStatus``; spot and USD-M as ``status``. Every
        filter ``check_order`` uses is parsed here, so a malformed one fails now and names the
        symbol, the filter and the field.
        """
        market = Market.parse(market)
        if not isinstance(symbol_obj, Mapping):
            raise ExchangeInfoError(f"a symbol object must be a JSON object, not {type(symbol_obj).__name__}")
        name = symbol_obj.get("symbol")
        if not isinstance(name, str) or not name:
            raise ExchangeInfoError(f"symbol object without a 'symbol' name: {_short(symbol_obj)}")
        status = symbol_obj.get("status", symbol_obj.get("contractStatus"))
        if not isinstance(status, str) or not status:
            raise ExchangeInfoError(f"{name}: no 'status' (or COIN-M 'contractStatus') field")
        raw_filters = symbol_obj.get("filters")
        if not isinstance(raw_filters, Sequence) or isinstance(raw_filters, str | bytes):
            raise ExchangeInfoError(f"{name}: 'filters' is {raw_filters!r}, expected a list")
        filters: dict[str, Mapping[str, Any]] = {}
        for raw in raw_filters:
            if not isinstance(raw, Mapping):
                raise ExchangeInfoError(f"{name}: a filter is {raw!r}, expected an object")
            kind = raw.get("filterType")
            if not isinstance(kind, str) or not kind:
                raise ExchangeInfoError(f"{name}: a filter has no 'filterType': {raw!r}")
            if kind in filters:
                raise ExchangeInfoError(f"{name}: filter {kind} appears twice")
            filters[kind] = MappingProxyType(dict(raw))
        order_types = symbol_obj.get("orderTypes", [])
        if not isinstance(order_types, Sequence) or not all(isinstance(t, str) for t in order_types):
            raise ExchangeInfoError(f"{name}: 'orderTypes' is {order_types!r}, expected a list of names")
        futures = market.is_futures
        price = filters.get("PRICE_FILTER")
        lot = filters.get("LOT_SIZE")
        price_rule = _parse_filter(name, price, futures) if price is not None else None
        lot_rule = _parse_filter(name, lot, futures) if lot is not None else None
        assert price_rule is None or isinstance(price_rule, _PriceFilter)
        assert lot_rule is None or isinstance(lot_rule, _LotFilter)
        rules = cls(
            symbol=name,
            market=market,
            status=status,
            base_asset=_text(symbol_obj, "baseAsset", name),
            quote_asset=_text(symbol_obj, "quoteAsset", name),
            tick_size=price_rule.tick if price_rule else _ZERO,
            step_size=lot_rule.step if lot_rule else _ZERO,
            min_price=price_rule.min if price_rule else _ZERO,
            max_price=price_rule.max if price_rule else _ZERO,
            min_qty=lot_rule.min if lot_rule else _ZERO,
            max_qty=lot_rule.max if lot_rule else _ZERO,
            filters=MappingProxyType(filters),
            order_types=frozenset(order_types),
            base_asset_precision=_precision(symbol_obj, "baseAssetPrecision", name),
            quote_asset_precision=_precision(symbol_obj, "quoteAssetPrecision", name),
        )
        _ = rules._checks  # parse every filter now, so a bad one fails at load time
        return rules

    @cached_property
    def _checks(self) -> tuple[_Parsed, ...]:
        """The checked filters, in exchangeInfo order: the first one that fails is reported."""
        out = []
        for raw in self.filters.values():
            parsed = _parse_filter(self.symbol, raw, self.market.is_futures)
            if parsed is not None:
                out.append(parsed)
        return tuple(out)

    def _lot(self, name: str) -> _LotFilter | None:
        for rule in self._checks:
            if isinstance(rule, _LotFilter) and rule.name == name:
                return rule
        return None

    def futures_lot_filter(self, order_type: str) -> str:
        """The filter that judges a futures order's quantity: ``MARKET_LOT_SIZE`` for the
        market-like types (MARKET, STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)
        when the symbol has one, ``LOT_SIZE`` otherwise.

        The futures quantity codes (-4003/-4004/-4005/-4023) do not say which of the two
        failed, so a refusal decoded from the exchange's answer is named with this."""
        if order_type.upper() in _FUTURES_MARKET_TYPES and self._lot("MARKET_LOT_SIZE") is not None:
            return "MARKET_LOT_SIZE"
        return "LOT_SIZE"

    # -------------------------------------------------------------- rounding

    def round_price(self, price: Decimal | str | int, *, mode: RoundingMode = "nearest") -> Decimal:
        """``price`` moved onto the PRICE_FILTER grid (§7).

        Spot: the nearest multiple of ``tickSize`` counted from 0. Futures: ``minPrice`` plus
        a multiple of ``tickSize``. ``mode`` picks the grid point below (``down``), above
        (``up``) or nearest (``nearest``, exactly half-way rounds up). A zero ``tickSize``
        returns the price unchanged.

        The result is NOT clamped into ``[minPrice, maxPrice]``: a price outside the bounds
        stays outside, and ``check_order`` still refuses it. Moving it silently to the bound
        would send an order at a price the caller never chose.
        """
        value = _number(price, "price")
        base = self.min_price if self.market.is_futures else _ZERO
        return _round_to_grid(value, base, self.tick_size, mode)

    def round_qty(
        self,
        qty: Decimal | str | int,
        *,
        mode: RoundingMode = "down",
        market_order: bool = False,
    ) -> Decimal:
        """``qty`` moved onto the lot grid (§7); rounds down by default, so it never grows.

        Spot: a multiple of LOT_SIZE ``stepSize`` from 0. A spot MARKET order must pass LOT_SIZE
        and MARKET_LOT_SIZE, so with ``market_order=True`` the grid is the common multiple of
        both non-zero steps. Futures: ``minQty`` plus a multiple of ``stepSize`` of LOT_SIZE,
        or of MARKET_LOT_SIZE with ``market_order=True`` when the symbol has one (futures
        market orders are checked against MARKET_LOT_SIZE only).

        The result is NOT clamped into ``[minQty, maxQty]``: an amount outside the bounds stays
        outside, and ``check_order`` still refuses it.
        """
        value = _number(qty, "quantity")
        lot = self._lot("LOT_SIZE")
        market_lot = self._lot("MARKET_LOT_SIZE")
        if self.market.is_futures:
            rule = market_lot if market_order and market_lot is not None else lot
            if rule is None:
                return value
            return _round_to_grid(value, rule.min, rule.step, mode)
        steps = [r.step for r in (lot, market_lot if market_order else None) if r is not None and r.step]
        step = steps[0] if len(steps) == 1 else _lcm(steps[0], steps[1]) if steps else _ZERO
        return _round_to_grid(value, _ZERO, step, mode)

    # -------------------------------------------------------------- validation

    def check_order(
        self,
        *,
        side: str,
        type: str,
        price: Decimal | str | int | None = None,
        quantity: Decimal | str | int | None = None,
        quote_order_qty: Decimal | str | int | None = None,
        stop_price: Decimal | str | int | None = None,
        iceberg_qty: Decimal | str | int | None = None,
        trailing_delta: int | str | None = None,
        reference_price: Decimal | str | int | None = None,
        reduce_only: bool = False,
        close_position: bool = False,
    ) -> None:
        """Refuse an order that breaks one of the symbol's filters, as the exchange would.

        Raises ``FilterFailure(local=True)`` naming the filter, with the exchange's code and
        message: spot ``-1013 "Filter failure: <NAME>"``, futures the per-rule codes (see the
        module docstring). Filters are tried in the order exchangeInfo lists them and the first
        failure is reported. A spot parameter with more decimals than the asset precision
        raises ``RequestError`` ``-1111`` first (§7 "Other spot rules"); decimals finer than the
        tick or step but within the asset precision fail PRICE_FILTER / LOT_SIZE, which is what
        the exchange reports.

        ``stop_price`` is spot ``stopPrice`` or futures ``triggerPrice``. ``reference_price`` is
        what the percent and market-notional rules compare with: spot, the symbol's reference
        price or average price (§7 ``ref``); futures, the mark price. When it is None those
        checks are skipped (PERCENT_PRICE, PERCENT_PRICE_BY_SIDE, and the notional of a market
        order with ``quantity``), since there is nothing to compare with.

        Covered: PRICE_FILTER (price and stop price), PERCENT_PRICE, PERCENT_PRICE_BY_SIDE,
        LOT_SIZE (quantity and iceberg quantity), MARKET_LOT_SIZE, MIN_NOTIONAL, NOTIONAL,
        ICEBERG_PARTS, TRAILING_DELTA; futures PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
        MIN_NOTIONAL (reduce-only and close-position orders exempt) and PERCENT_PRICE.

        Not covered, because they need state this object does not have: the open-order count
        filters (MAX_NUM_*, EXCHANGE_MAX_*), MAX_POSITION, MAX_ASSET, the quantity a
        ``quoteOrderQty`` MARKET order ends up with (the book decides it; its quantity checks
        are skipped here), the futures MARKET ``-4131`` band (the book decides it), and the
        symbol's status and allowed order types (refused as ``-2010``, not as filters).
        Mandatory parameters per type are the order builder's job.
        """
        side = side.upper()
        if side not in _SIDES:
            raise ValueError(f"side must be BUY or SELL, not {side!r}")
        trailing: int | None = None
        if trailing_delta is not None:
            if isinstance(trailing_delta, bool) or not isinstance(trailing_delta, int | str):
                raise TypeError(f"trailing_delta must be an int, not {trailing_delta.__class__.__name__}")
            trailing = int(trailing_delta)
        iceberg = _optional(iceberg_qty, "iceberg_qty")
        order = _Order(
            side=side,
            type=type.upper(),
            price=_optional(price, "price"),
            quantity=_optional(quantity, "quantity"),
            quote_qty=_optional(quote_order_qty, "quote_order_qty"),
            stop=_optional(stop_price, "stop_price"),
            iceberg=iceberg if iceberg else None,  # icebergQty=0 means "not an iceberg"
            trailing=trailing,
            ref=_optional(reference_price, "reference_price"),
            reduce_only=reduce_only,
            close_position=close_position,
        )
        if self.market.is_futures:
            self._check_futures(order)
        else:
            self._check_spot(order)

    # -------------------------------------------------------------- spot

    def _fail(self, name: str, field: str | None) -> NoReturn:
        raise FilterFailure(
            f"Filter failure: {name}", filter=name, field=field, local=True, code=-1013, status=None
        )

    def _check_spot(self, o: _Order) -> None:
        self._check_spot_precision(o)
        # The exchange answers a zero quantity with "Invalid quantity." before any filter.
        for value, field in ((o.quantity, "quantity"), (o.quote_qty, "quoteOrderQty")):
            if value is not None and value <= 0:
                raise FilterFailure(
                    "Invalid quantity.", filter="LOT_SIZE", field=field, local=True, code=-1013, status=None
                )
        for rule in self._checks:
            if isinstance(rule, _PriceFilter):
                self._spot_price_filter(rule, o)
            elif isinstance(rule, _LotFilter):
                self._spot_lot(rule, o)
            elif isinstance(rule, _PercentPrice):
                if o.price is not None and o.ref is not None:
                    self._percent(o.price, o.ref, rule.up, rule.down, "PERCENT_PRICE")
            elif isinstance(rule, _PercentPriceBySide):
                if o.price is not None and o.ref is not None:
                    up, down = (
                        (rule.bid_up, rule.bid_down) if o.side == "BUY" else (rule.ask_up, rule.ask_down)
                    )
                    self._percent(o.price, o.ref, up, down, "PERCENT_PRICE_BY_SIDE")
            elif isinstance(rule, _MinNotional):
                notional, is_market = self._spot_notional(o)
                applies = notional is not None and (rule.apply_to_market or not is_market)
                if applies and rule.min and notional is not None and notional < rule.min:
                    self._fail("MIN_NOTIONAL", None)
            elif isinstance(rule, _Notional):
                self._spot_notional_range(rule, o)
            elif isinstance(rule, _IcebergParts):
                if o.iceberg is not None and o.quantity is not None and rule.limit:
                    whole, rest = _EXACT.divmod(o.quantity, o.iceberg)
                    parts = int(whole) + (1 if rest else 0)  # ceil(quantity / icebergQty)
                    if parts > rule.limit:
                        self._fail("ICEBERG_PARTS", "icebergQty")
            elif isinstance(rule, _TrailingDelta):
                self._spot_trailing(rule, o)

    def _check_spot_precision(self, o: _Order) -> None:
        """``-1111``: more decimals than the asset allows (quantities: base, prices: quote)."""
        base, quote = self.base_asset_precision, self.quote_asset_precision
        for value, field, limit in (
            (o.quantity, "quantity", base),
            (o.iceberg, "icebergQty", base),
            (o.price, "price", quote),
            (o.stop, "stopPrice", quote),
            (o.quote_qty, "quoteOrderQty", quote),
        ):
            if value is not None and limit is not None and _decimals(value) > limit:
                raise RequestError(f"Parameter '{field}' has too much precision.", code=-1111)

    def _spot_price_filter(self, rule: _PriceFilter, o: _Order) -> None:
        for value, field in ((o.price, "price"), (o.stop, "stopPrice")):
            if value is None:
                continue
            if (
                value <= 0
                or (rule.min and value < rule.min)
                or (rule.max and value > rule.max)
                or not _on_grid(value, _ZERO, rule.tick)
            ):
                self._fail("PRICE_FILTER", field)

    def _spot_lot(self, rule: _LotFilter, o: _Order) -> None:
        if rule.name == "MARKET_LOT_SIZE":
            checked = [(o.quantity, "quantity")] if o.type == "MARKET" else []
        else:
            checked = [(o.quantity, "quantity"), (o.iceberg, "icebergQty")]
        for value, field in checked:
            if value is None:
                continue
            if (
                (rule.min and value < rule.min)
                or (rule.max and value > rule.max)
                or not _on_grid(value, _ZERO, rule.step)
            ):
                self._fail(rule.name, field)

    def _percent(self, price: Decimal, ref: Decimal, up: Decimal, down: Decimal, name: str) -> None:
        """``ref*down <= price <= ref*up``; a zero multiplier leaves that side open."""
        if (up and price > _mul(ref, up)) or price < _mul(ref, down):
            self._fail(name, "price")

    def _spot_notional_range(self, rule: _Notional, o: _Order) -> None:
        """``minNotional <= notional <= maxNotional``; market orders per the apply flags."""
        notional, is_market = self._spot_notional(o)
        if notional is None:
            return
        if rule.min and (rule.apply_min_to_market or not is_market) and notional < rule.min:
            self._fail("NOTIONAL", None)
        if rule.max and (rule.apply_max_to_market or not is_market) and notional > rule.max:
            self._fail("NOTIONAL", None)

    @staticmethod
    def _spot_notional(o: _Order) -> tuple[Decimal | None, bool]:
        """(notional, counts as a market order) for the notional filters; None when unknown.

        A limit price gives ``price * quantity``. A MARKET order with ``quoteOrderQty`` spends
        exactly that; with ``quantity`` it is valued at the reference price (§7 ``ref``). A
        STOP_LOSS/TAKE_PROFIT order has no price but will trade near its ``stopPrice``, which
        values it as a priced order; with a trailing delta only it is valued like a MARKET order.
        """
        if o.quantity is not None and o.price is not None:
            return _mul(o.price, o.quantity), False
        if o.type == "MARKET" and o.quote_qty is not None:
            return o.quote_qty, True
        if o.quantity is None:
            return None, False
        if o.type in _SPOT_MARKET_TYPES and o.type != "MARKET" and o.stop is not None:
            return _mul(o.stop, o.quantity), False
        if o.type in _SPOT_MARKET_TYPES and o.ref is not None:
            return _mul(o.ref, o.quantity), True
        return None, True

    def _spot_trailing(self, rule: _TrailingDelta, o: _Order) -> None:
        """Bounds on ``trailingDelta`` (BIPS). "Above" bounds apply to STOP_LOSS* BUY and
        TAKE_PROFIT* SELL (the trigger sits above the market); "below" bounds to the mirror."""
        if o.trailing is None:
            return
        stop_loss = o.type in _SPOT_STOP_LOSS
        if not stop_loss and o.type not in _SPOT_TAKE_PROFIT:
            return
        above = (stop_loss and o.side == "BUY") or (not stop_loss and o.side == "SELL")
        low, high = (rule.min_above, rule.max_above) if above else (rule.min_below, rule.max_below)
        if o.trailing <= 0 or (low and o.trailing < low) or (high and o.trailing > high):
            self._fail("TRAILING_DELTA", "trailingDelta")

    # -------------------------------------------------------------- futures

    def _fail_futures(self, name: str, field: str | None, code: int, msg: str) -> NoReturn:
        raise FilterFailure(msg, filter=name, field=field, local=True, code=code, status=None)

    def _check_futures(self, o: _Order) -> None:
        lot_filter = self.futures_lot_filter(o.type)
        market_like = o.type in _FUTURES_MARKET_TYPES
        for rule in self._checks:
            if isinstance(rule, _PriceFilter):
                self._futures_price(rule, o)
            elif isinstance(rule, _LotFilter):
                # A market order takes MARKET_LOT_SIZE when the symbol has one, others LOT_SIZE.
                if rule.name == lot_filter and o.quantity is not None:
                    self._futures_qty(rule, o.quantity)
            elif isinstance(rule, _MinNotional):
                self._futures_min_notional(rule, o, market_like)
            elif isinstance(rule, _PercentPrice):
                self._futures_percent(rule, o)

    def _futures_percent(self, rule: _PercentPrice, o: _Order) -> None:
        """Against the mark price (§7): BUY ``price <= mark*up``, SELL ``price >= mark*down``."""
        if o.price is None or o.ref is None:
            return
        if o.side == "BUY" and rule.up and o.price > _mul(o.ref, rule.up):
            msg = "Price is higher than mark price multiplier cap."
            self._fail_futures("PERCENT_PRICE", "price", -4016, msg)
        if o.side == "SELL" and o.price < _mul(o.ref, rule.down):
            msg = "Price is lower than mark price multiplier floor."
            self._fail_futures("PERCENT_PRICE", "price", -4024, msg)

    def _futures_price(self, rule: _PriceFilter, o: _Order) -> None:
        name = "PRICE_FILTER"
        if o.price is not None:
            p = o.price
            if p <= 0:
                self._fail_futures(name, "price", -4001, "Price less than 0.")
            if rule.max and p > rule.max:
                self._fail_futures(name, "price", -4002, "Price greater than max price.")
            if rule.min and p < rule.min:
                self._fail_futures(name, "price", -4013, "Price less than min price.")
            if not _on_grid(p, rule.min, rule.tick):
                self._fail_futures(name, "price", -4014, "Price not increased by tick size.")
        if o.stop is not None:
            s = o.stop
            if s <= 0:
                self._fail_futures(name, "triggerPrice", -4006, "Stop price less than zero.")
            if rule.max and s > rule.max:
                self._fail_futures(name, "triggerPrice", -4007, "Stop price greater than max price.")
            if rule.min and s < rule.min:
                self._fail_futures(name, "triggerPrice", -4013, "Price less than min price.")
            if not _on_grid(s, rule.min, rule.tick):
                self._fail_futures(name, "triggerPrice", -4014, "Price not increased by tick size.")

    def _futures_qty(self, rule: _LotFilter, q: Decimal) -> None:
        if q <= 0:
            self._fail_futures(rule.name, "quantity", -4003, "Quantity less than zero.")
        if rule.min and q < rule.min:
            self._fail_futures(rule.name, "quantity", -4004, "Quantity less than min quantity.")
        if rule.max and q > rule.max:
            self._fail_futures(rule.name, "quantity", -4005, "Quantity greater than max quantity.")
        if not _on_grid(q, rule.min, rule.step):
            self._fail_futures(rule.name, "quantity", -4023, "Qty not increased by step size.")

    def _futures_min_notional(self, rule: _MinNotional, o: _Order, market_like: bool) -> None:
        """``price * qty >= notional`` unless reduce-only / close-position (§7, -4164).

        A limit price values the order; a conditional market order is valued at its trigger
        price; a MARKET order at the mark price (``reference_price``), skipped without one.
        """
        if o.reduce_only or o.close_position or o.quantity is None or not rule.min:
            return
        if o.price is not None:
            value = o.price
        elif market_like and o.type != "MARKET" and o.stop is not None:
            value = o.stop
        elif o.ref is not None:
            value = o.ref
        else:
            return
        if _mul(value, o.quantity) < rule.min:
            self._fail_futures(
                "MIN_NOTIONAL",
                None,
                -4164,
                f"Order's notional must be no smaller than {rule.text} (unless you choose reduce only).",
            )


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 120 else text[:117] + "..."


# ------------------------------------------------------------------ one market


class ExchangeRules:
    """The exchangeInfo of one market: every symbol's rules, the rate limits, exchange filters.

    ``rules["BTCUSDT"]`` gives a ``SymbolRules``; an unknown symbol raises ``KeyError`` saying
    which market's exchangeInfo lacks it. Symbols are matched case-insensitively since the
    exchange names them in upper case.
    """

    def __init__(
        self,
        market: Market | str,
        symbols: Mapping[str, SymbolRules],
        *,
        rate_limits: Sequence[Mapping[str, Any]] = (),
        exchange_filters: Sequence[Mapping[str, Any]] = (),
        server_time: int | None = None,
    ) -> None:
        self.market = Market.parse(market)
        self._symbols = dict(symbols)
        self.rate_limits: list[dict[str, Any]] = [dict(r) for r in rate_limits]
        self.exchange_filters: list[dict[str, Any]] = [dict(f) for f in exchange_filters]
        self.server_time = server_time

    @classmethod
    def from_exchange_info(cls, info: Mapping[str, Any], market: Market | str) -> ExchangeRules:
        """Build from a decoded exchangeInfo answer; raises ExchangeInfoError when unusable."""
        market = Market.parse(market)
        if not isinstance(info, Mapping):
            raise ExchangeInfoError(f"exchangeInfo must be a JSON object, not {type(info).__name__}")
        symbols_raw = info.get("symbols")
        if not isinstance(symbols_raw, Sequence) or isinstance(symbols_raw, str | bytes):
            raise ExchangeInfoError(f"{market} exchangeInfo has no 'symbols' list (keys: {sorted(info)})")
        symbols: dict[str, SymbolRules] = {}
        for obj in symbols_raw:
            rules = SymbolRules.from_exchange_info(obj, market)
            if rules.symbol in symbols:
                raise ExchangeInfoError(f"{market} exchangeInfo lists {rules.symbol} twice")
            symbols[rules.symbol] = rules
        rate_limits = _object_list(info, "rateLimits", market)
        exchange_filters = _object_list(info, "exchangeFilters", market)
        server_time = info.get("serverTime")
        return cls(
            market,
            symbols,
            rate_limits=rate_limits,
            exchange_filters=exchange_filters,
            server_time=server_time if isinstance(server_time, int) else None,
        )

    @classmethod
    def from_json(cls, body: bytes | str, market: Market | str) -> ExchangeRules:
        """Build from the raw exchangeInfo body."""
        try:
            info = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise ExchangeInfoError(f"exchangeInfo body is not JSON: {exc}") from None
        return cls.from_exchange_info(info, market)

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def __getitem__(self, symbol: str) -> SymbolRules:
        try:
            return self._symbols[symbol]
        except KeyError:
            pass
        try:
            return self._symbols[symbol.upper()]
        except KeyError:
            raise KeyError(
                f"{symbol!r} is not in the {self.market} exchangeInfo ({len(self._symbols)} symbols); "
                "check the symbol or fetch exchangeInfo again"
            ) from None

    def get(self, symbol: str) -> SymbolRules | None:
        return self._symbols.get(symbol) or self._symbols.get(symbol.upper())

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and (symbol in self._symbols or symbol.upper() in self._symbols)

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols)

    def __len__(self) -> int:
        return len(self._symbols)

    def __repr__(self) -> str:
        return f"ExchangeRules(market={self.market.value!r}, symbols={len(self._symbols)})"


def _object_list(info: Mapping[str, Any], key: str, market: Market) -> list[Mapping[str, Any]]:
    value = info.get(key, [])
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ExchangeInfoError(f"{market} exchangeInfo {key!r} is {value!r}, expected a list")
    for item in value:
        if not isinstance(item, Mapping):
            raise ExchangeInfoError(f"{market} exchangeInfo {key!r} holds {item!r}, expected objects")
    return list(value)
