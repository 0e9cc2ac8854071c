"""Symbol filters (binance-spec §7) on real exchangeInfo answers: every filter's failure name and
code, the spot vs USD-M grid formulas, zero fields, rounding properties, exact arithmetic, and
clear errors for unusable exchangeInfo objects.

The recorded answers (spot 2021-10-12, USD-M and COIN-M 2021-07-22) predate NOTIONAL,
PERCENT_PRICE_BY_SIDE and TRAILING_DELTA; ``MODERN_SPOT`` is a symbol object written in the
spec's current shape for those filters.
"""

from __future__ import annotations

import ast
import copy
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickbook import Market
from tickbook.sim.market import GeneratedMarket
from tickbook.trading import filters as filters_module
from tickbook.trading.errors import FilterFailure, OrderRejected, RequestError, error_from_response
from tickbook.trading.filters import ExchangeInfoError, ExchangeRules, SymbolRules

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "real" / "payloads"
SPOT_FILE = PAYLOADS / "binance_spot_exchangeInfo_20211012.json"
USDM_FILE = PAYLOADS / "binance_usdm_exchangeInfo_20210722.json"
COINM_FILE = PAYLOADS / "binance_coinm_exchangeInfo_20210722.json"


@cache
def raw_info(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(path.read_bytes())
    return info


@cache
def rules_of(market: str) -> ExchangeRules:
    path = {"spot": SPOT_FILE, "usdm": USDM_FILE, "coinm": COINM_FILE}[market]
    return ExchangeRules.from_exchange_info(raw_info(path), market)


def raw_symbol(path: Path, symbol: str) -> dict[str, Any]:
    """A deep copy of one recorded symbol object, safe to modify."""
    return copy.deepcopy(next(s for s in raw_info(path)["symbols"] if s["symbol"] == symbol))


def set_filter(obj: dict[str, Any], filter_type: str, **fields: Any) -> dict[str, Any]:
    for f in obj["filters"]:
        if f["filterType"] == filter_type:
            f.update(fields)
            return obj
    obj["filters"].append({"filterType": filter_type, **fields})
    return obj


# Spot BTCUSDT in today's shape (spec §7): the filters the 2021 recording lacks.
MODERN_SPOT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "baseAssetPrecision": 8,
    "quoteAsset": "USDT",
    "quotePrecision": 8,
    "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT"],
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
         "tickSize": "0.01000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
         "stepSize": "0.00001000"},
        {"filterType": "ICEBERG_PARTS", "limit": 100},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "83.50000000",
         "stepSize": "0.00000000"},
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
         "minTrailingBelowDelta": 20, "maxTrailingBelowDelta": 1000},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
         "askMultiplierUp": "4", "askMultiplierDown": "0.5", "avgPriceMins": 5},
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ],
}  # fmt: skip


def modern() -> SymbolRules:
    return SymbolRules.from_exchange_info(MODERN_SPOT, Market.SPOT)


def refusal(rules: SymbolRules, **order: Any) -> FilterFailure:
    with pytest.raises(FilterFailure) as info:
        rules.check_order(**order)
    assert info.value.local
    assert info.value.status is None  # refused before sending: no HTTP status
    return info.value


# --------------------------------------------------------------------------------------------
# Loading real exchangeInfo


def test_real_exchange_info_loads_for_every_market() -> None:
    spot, usdm, coinm = rules_of("spot"), rules_of("usdm"), rules_of("coinm")
    assert (len(spot), len(usdm), len(coinm)) == (1695, 122, 36)
    assert (spot.market, usdm.market, coinm.market) == (Market.SPOT, Market.USDM, Market.COINM)
    assert spot.symbols[0] == "ETHBTC"
    assert spot.exchange_filters == []
    assert any(r["rateLimitType"] == "REQUEST_WEIGHT" for r in spot.rate_limits)
    assert spot.server_time == raw_info(SPOT_FILE)["serverTime"]


def test_symbol_fields_come_from_the_filters() -> None:
    btc = rules_of("spot")["BTCUSDT"]
    assert (btc.symbol, btc.status, btc.base_asset, btc.quote_asset) == ("BTCUSDT", "TRADING", "BTC", "USDT")
    assert btc.tick_size == Decimal("0.01")
    assert btc.step_size == Decimal("0.00001")
    assert (btc.min_price, btc.max_price) == (Decimal("0.01"), Decimal("1000000"))
    assert (btc.min_qty, btc.max_qty) == (Decimal("0.00001"), Decimal("9000"))
    assert (btc.base_asset_precision, btc.quote_asset_precision) == (8, 8)
    assert "MARKET" in btc.order_types
    assert btc.filters["MIN_NOTIONAL"]["minNotional"] == "10.00000000"  # raw objects kept as sent
    with pytest.raises(TypeError):
        btc.filters["X"] = {}  # type: ignore[index]

    fut = rules_of("usdm")["BTCUSDT"]
    assert (fut.min_price, fut.tick_size, fut.min_qty, fut.step_size) == (
        Decimal("556.72"),
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal("0.001"),
    )
    assert rules_of("coinm")["BTCUSD_PERP"].status == "TRADING"  # COIN-M writes contractStatus


def test_lookup_by_symbol() -> None:
    spot = rules_of("spot")
    assert "BTCUSDT" in spot
    assert "btcusdt" in spot
    assert spot["ethbtc"].symbol == "ETHBTC"
    assert "NOPE" not in spot
    assert 42 not in spot
    assert spot.get("NOPE") is None
    with pytest.raises(KeyError, match=r"'NOPEUSDT' is not in the spot exchangeInfo \(1695 symbols\)"):
        spot["NOPEUSDT"]


def test_from_json_takes_the_raw_body() -> None:
    rules = ExchangeRules.from_json(USDM_FILE.read_bytes(), "usdm")
    assert rules["ETHUSDT"].market is Market.USDM
    with pytest.raises(ExchangeInfoError, match="not JSON"):
        ExchangeRules.from_json(b"<html>", "spot")


# --------------------------------------------------------------------------------------------
# Spot filters on the real BTCUSDT (2021): name, field, code and message of each refusal

SPOT_BTC: dict[str, Any] = {"side": "BUY", "type": "LIMIT", "price": "61602.01", "quantity": "0.001"}

SPOT_CASES = [
    # PRICE_FILTER: tick, bounds, and the stop price under the same rule
    ({"price": "61602.015"}, "PRICE_FILTER", "price"),
    ({"price": "0.001"}, "PRICE_FILTER", "price"),
    ({"price": "1000000.01", "quantity": "0.00001"}, "PRICE_FILTER", "price"),
    ({"price": "0"}, "PRICE_FILTER", "price"),
    ({"type": "STOP_LOSS_LIMIT", "stop_price": "60000.001"}, "PRICE_FILTER", "stopPrice"),
    # LOT_SIZE: step, bounds, and the iceberg quantity
    ({"quantity": "0.000015"}, "LOT_SIZE", "quantity"),
    ({"quantity": "0.000001"}, "LOT_SIZE", "quantity"),
    ({"price": "10", "quantity": "9000.00001"}, "LOT_SIZE", "quantity"),
    ({"quantity": "1", "iceberg_qty": "0.100005"}, "LOT_SIZE", "icebergQty"),
    # MARKET_LOT_SIZE (maxQty 100.05381873) judges MARKET orders only
    (
        {"type": "MARKET", "price": None, "quantity": "100.06", "reference_price": "61602"},
        "MARKET_LOT_SIZE",
        "quantity",
    ),
    # MIN_NOTIONAL 10, applyToMarket: price * qty, or the reference price for MARKET
    ({"price": "9999", "quantity": "0.001"}, "MIN_NOTIONAL", None),
    (
        {"type": "MARKET", "price": None, "quantity": "0.0001", "reference_price": "61602"},
        "MIN_NOTIONAL",
        None,
    ),
    ({"type": "MARKET", "price": None, "quantity": None, "quote_order_qty": "9.99"}, "MIN_NOTIONAL", None),
    # PERCENT_PRICE 0.2 .. 5 around the reference price
    ({"price": "300000.01", "quantity": "0.001", "reference_price": "60000"}, "PERCENT_PRICE", "price"),
    ({"price": "11999.99", "quantity": "0.001", "reference_price": "60000"}, "PERCENT_PRICE", "price"),
    # ICEBERG_PARTS limit 10: ceil(1 / 0.09) = 12 parts
    ({"quantity": "1", "iceberg_qty": "0.09"}, "ICEBERG_PARTS", "icebergQty"),
]


@pytest.mark.parametrize(("change", "name", "field"), SPOT_CASES)
def test_spot_filter_failures(change: dict[str, Any], name: str, field: str | None) -> None:
    error = refusal(rules_of("spot")["BTCUSDT"], **{**SPOT_BTC, **change})
    assert (error.filter, error.field, error.code, error.msg) == (
        name,
        field,
        -1013,
        f"Filter failure: {name}",
    )


SPOT_PASSES = [
    {},
    {"price": "61602.01000000", "quantity": "0.00100000"},  # padded decimals are the same values
    {"price": "0.01", "quantity": "1000"},  # exactly the minimum price, notional exactly 10
    {"price": "1000000", "quantity": "0.00001"},  # exactly the maximum price, minimum quantity
    {"price": "300000", "quantity": "0.001", "reference_price": "60000"},  # exactly ref * 5
    {"price": "12000", "quantity": "0.001", "reference_price": "60000"},  # exactly ref * 0.2
    {"price": "300000.01", "quantity": "0.001"},  # no reference price: PERCENT_PRICE skipped
    {"quantity": "1", "iceberg_qty": "0.1"},  # exactly 10 parts
    {"quantity": "1", "iceberg_qty": "0"},  # icebergQty 0 is "not an iceberg"
    {"price": "10", "quantity": "101"},  # above MARKET_LOT_SIZE's max, but not a MARKET order
    {"type": "MARKET", "price": None, "quantity": "0.0001"},  # no reference: notional unknown
    {"type": "MARKET", "price": None, "quantity": None, "quote_order_qty": "10"},
    {"type": "STOP_LOSS_LIMIT", "stop_price": "60000.01"},
]


@pytest.mark.parametrize("change", SPOT_PASSES)
def test_spot_orders_that_pass(change: dict[str, Any]) -> None:
    rules_of("spot")["BTCUSDT"].check_order(**{**SPOT_BTC, **change})


def test_spot_zero_quantity_is_invalid_before_any_filter() -> None:
    error = refusal(rules_of("spot")["BTCUSDT"], **{**SPOT_BTC, "quantity": "0"})
    assert (error.code, error.msg, error.field) == (-1013, "Invalid quantity.", "quantity")


def test_spot_too_many_decimals_is_bad_precision() -> None:
    """More decimals than the asset precision (8) is -1111, before any filter (§7)."""
    btc = rules_of("spot")["BTCUSDT"]
    with pytest.raises(RequestError) as info:
        btc.check_order(**{**SPOT_BTC, "quantity": "0.000000001"})
    assert (info.value.code, info.value.msg) == (-1111, "Parameter 'quantity' has too much precision.")
    with pytest.raises(RequestError, match="'price' has too much precision"):
        btc.check_order(**{**SPOT_BTC, "price": "61602.000000001"})
    # Trailing zeros carry no precision; finer than the tick but within 8 decimals is the filter.
    btc.check_order(**{**SPOT_BTC, "price": "61602.0100000000000"})
    assert refusal(btc, **{**SPOT_BTC, "price": "61602.00000001"}).filter == "PRICE_FILTER"


def test_min_notional_without_apply_to_market_ignores_market_orders() -> None:
    obj = set_filter(raw_symbol(SPOT_FILE, "BTCUSDT"), "MIN_NOTIONAL", applyToMarket=False)
    rules = SymbolRules.from_exchange_info(obj, "spot")
    rules.check_order(side="SELL", type="MARKET", quantity="0.0001", reference_price="61602")
    assert refusal(rules, **{**SPOT_BTC, "price": "9999"}).filter == "MIN_NOTIONAL"


# --------------------------------------------------------------------------------------------
# Spot filters in today's shape: NOTIONAL, PERCENT_PRICE_BY_SIDE, TRAILING_DELTA

MODERN_CASES = [
    # NOTIONAL 5 .. 9,000,000; applyMinToMarket true, applyMaxToMarket false
    ({"price": "4999.99", "quantity": "0.001"}, "NOTIONAL", None),
    ({"price": "1000000", "quantity": "9.00001"}, "NOTIONAL", None),
    ({"type": "MARKET", "price": None, "quantity": "0.00001", "reference_price": "60000"}, "NOTIONAL", None),
    ({"type": "MARKET", "price": None, "quantity": None, "quote_order_qty": "4.99"}, "NOTIONAL", None),
    # PERCENT_PRICE_BY_SIDE: BUY 0.2 .. 5, SELL 0.5 .. 4
    ({"price": "300000.01", "reference_price": "60000"}, "PERCENT_PRICE_BY_SIDE", "price"),
    ({"price": "11999.99", "reference_price": "60000"}, "PERCENT_PRICE_BY_SIDE", "price"),
    ({"side": "SELL", "price": "240000.01", "reference_price": "60000"}, "PERCENT_PRICE_BY_SIDE", "price"),
    ({"side": "SELL", "price": "29999.99", "reference_price": "60000"}, "PERCENT_PRICE_BY_SIDE", "price"),
    # MARKET_LOT_SIZE max 83.5 (its zero step and min are disabled)
    ({"type": "MARKET", "price": None, "quantity": "83.50001"}, "MARKET_LOT_SIZE", "quantity"),
]


@pytest.mark.parametrize(("change", "name", "field"), MODERN_CASES)
def test_modern_spot_filter_failures(change: dict[str, Any], name: str, field: str | None) -> None:
    error = refusal(modern(), **{**SPOT_BTC, **change})
    assert (error.filter, error.field, error.code, error.msg) == (
        name,
        field,
        -1013,
        f"Filter failure: {name}",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"price": "5000", "quantity": "0.001"},  # notional exactly the minimum
        {"price": "1000000", "quantity": "9"},  # notional exactly the maximum
        # MARKET above maxNotional passes: applyMaxToMarket is false
        {"type": "MARKET", "price": None, "quantity": "83", "reference_price": "1000000"},
        {"price": "300000", "reference_price": "60000"},  # BUY exactly ref * 5
        {"side": "SELL", "price": "240000", "reference_price": "60000"},  # SELL exactly ref * 4
        {"side": "SELL", "price": "30000", "reference_price": "60000"},  # SELL exactly ref * 0.5
        {"type": "MARKET", "price": None, "quantity": "0.12345"},  # MARKET_LOT_SIZE step 0 adds no grid
        {"quantity": "1", "iceberg_qty": "0.01"},  # 100 parts: the 2026 limit
    ],
)
def test_modern_spot_orders_that_pass(change: dict[str, Any]) -> None:
    modern().check_order(**{**SPOT_BTC, **change})


# "Above" bounds (10..2000) apply to STOP_LOSS* BUY and TAKE_PROFIT* SELL; "below" (20..1000)
# to STOP_LOSS* SELL and TAKE_PROFIT* BUY (§7).
TRAILING = [
    ("STOP_LOSS", "BUY", "above"),
    ("STOP_LOSS_LIMIT", "BUY", "above"),
    ("TAKE_PROFIT", "SELL", "above"),
    ("TAKE_PROFIT_LIMIT", "SELL", "above"),
    ("STOP_LOSS", "SELL", "below"),
    ("STOP_LOSS_LIMIT", "SELL", "below"),
    ("TAKE_PROFIT", "BUY", "below"),
    ("TAKE_PROFIT_LIMIT", "BUY", "below"),
]


@pytest.mark.parametrize(("order_type", "side", "bounds"), TRAILING)
def test_trailing_delta_bounds_per_side_and_type(order_type: str, side: str, bounds: str) -> None:
    rules = modern()
    low, high = (10, 2000) if bounds == "above" else (20, 1000)
    order: dict[str, Any] = {"side": side, "type": order_type, "quantity": "0.001"}
    if order_type.endswith("_LIMIT"):
        order["price"] = "60000"
    else:
        order["reference_price"] = "60000"
    for delta in (low, high):
        rules.check_order(**order, trailing_delta=delta)
    for delta in (low - 1, high + 1, 0):
        error = refusal(rules, **order, trailing_delta=delta)
        assert (error.filter, error.field, error.code) == ("TRAILING_DELTA", "trailingDelta", -1013)
        assert error.msg == "Filter failure: TRAILING_DELTA"


# --------------------------------------------------------------------------------------------
# USD-M filters on the real BTCUSDT perpetual (2021): the per-rule futures codes

FUT_BTC: dict[str, Any] = {"side": "BUY", "type": "LIMIT", "price": "30000.00", "quantity": "0.010"}

FUTURES_CASES = [
    ({"price": "0"}, "PRICE_FILTER", "price", -4001, "Price less than 0."),
    ({"price": "1000000.01"}, "PRICE_FILTER", "price", -4002, "Price greater than max price."),
    ({"price": "556.71", "quantity": "1"}, "PRICE_FILTER", "price", -4013, "Price less than min price."),
    ({"price": "30000.001"}, "PRICE_FILTER", "price", -4014, "Price not increased by tick size."),
    ({"quantity": "0"}, "LOT_SIZE", "quantity", -4003, "Quantity less than zero."),
    (
        {"price": "600000", "quantity": "0.0001"},
        "LOT_SIZE",
        "quantity",
        -4004,
        "Quantity less than min quantity.",
    ),
    ({"quantity": "1000.001"}, "LOT_SIZE", "quantity", -4005, "Quantity greater than max quantity."),
    ({"quantity": "0.0105"}, "LOT_SIZE", "quantity", -4023, "Qty not increased by step size."),
    (
        {"price": "4000.00", "quantity": "0.001"},
        "MIN_NOTIONAL",
        None,
        -4164,
        "Order's notional must be no smaller than 5 (unless you choose reduce only).",
    ),
    (
        {"price": "34500.01", "reference_price": "30000"},
        "PERCENT_PRICE",
        "price",
        -4016,
        "Price is higher than mark price multiplier cap.",
    ),
    (
        {"side": "SELL", "price": "25499.99", "reference_price": "30000"},
        "PERCENT_PRICE",
        "price",
        -4024,
        "Price is lower than mark price multiplier floor.",
    ),
    (
        {"type": "STOP_MARKET", "price": None, "stop_price": "0"},
        "PRICE_FILTER",
        "triggerPrice",
        -4006,
        "Stop price less than zero.",
    ),
    (
        {"type": "STOP_MARKET", "price": None, "stop_price": "1000001"},
        "PRICE_FILTER",
        "triggerPrice",
        -4007,
        "Stop price greater than max price.",
    ),
    (
        {"type": "STOP", "stop_price": "29000.005"},
        "PRICE_FILTER",
        "triggerPrice",
        -4014,
        "Price not increased by tick size.",
    ),
    (
        {"type": "MARKET", "price": None, "quantity": "0.001", "reference_price": "4000"},
        "MIN_NOTIONAL",
        None,
        -4164,
        "Order's notional must be no smaller than 5 (unless you choose reduce only).",
    ),
]


@pytest.mark.parametrize(("change", "name", "field", "code", "msg"), FUTURES_CASES)
def test_futures_filter_failures(
    change: dict[str, Any], name: str, field: str | None, code: int, msg: str
) -> None:
    error = refusal(rules_of("usdm")["BTCUSDT"], **{**FUT_BTC, **change})
    assert (error.filter, error.field, error.code, error.msg) == (name, field, code, msg)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"price": "556.72", "quantity": "0.009"},  # minimum price; notional 5.01048
        {"price": "34500", "reference_price": "30000"},  # BUY exactly mark * 1.15
        {"side": "SELL", "price": "25500", "reference_price": "30000"},  # SELL exactly mark * 0.85
        {"price": "10000", "reference_price": "30000"},  # BUY far below the mark: no floor for BUY
        {"side": "SELL", "price": "90000", "reference_price": "30000"},  # SELL far above: no cap
        {"quantity": "0.001", "reduce_only": True},  # below 5 USDT but reduce-only: exempt
        {
            "type": "STOP_MARKET",
            "price": None,
            "quantity": None,
            "stop_price": "29000",
            "close_position": True,
        },
        {"type": "MARKET", "price": None, "quantity": "0.001"},  # no mark price: notional unknown
    ],
)
def test_futures_orders_that_pass(change: dict[str, Any]) -> None:
    rules_of("usdm")["BTCUSDT"].check_order(**{**FUT_BTC, **change})


def test_futures_market_orders_take_market_lot_size() -> None:
    """Real BCHUSDT: LOT_SIZE maxQty 10000, MARKET_LOT_SIZE maxQty 1000."""
    bch = rules_of("usdm")["BCHUSDT"]
    bch.check_order(side="BUY", type="LIMIT", price="500.00", quantity="5000")
    error = refusal(bch, side="BUY", type="MARKET", quantity="5000")
    assert (error.filter, error.code) == ("MARKET_LOT_SIZE", -4005)
    error = refusal(bch, side="SELL", type="STOP_MARKET", quantity="5000", stop_price="400")
    assert error.filter == "MARKET_LOT_SIZE"


def test_futures_min_notional_quotes_the_symbol_value() -> None:
    obj = set_filter(raw_symbol(USDM_FILE, "BTCUSDT"), "MIN_NOTIONAL", notional="100")
    rules = SymbolRules.from_exchange_info(obj, "usdm")
    rules.check_order(**FUT_BTC)  # 300 USDT
    error = refusal(rules, **{**FUT_BTC, "quantity": "0.003"})  # 90 USDT
    assert error.msg == "Order's notional must be no smaller than 100 (unless you choose reduce only)."
    # A conditional market order is valued at its trigger price.
    error = refusal(rules, side="SELL", type="STOP_MARKET", quantity="0.003", stop_price="30000")
    assert error.code == -4164
    rules.check_order(side="SELL", type="STOP_MARKET", quantity="0.003", stop_price="40000")


def test_coinm_symbols_use_the_futures_rules() -> None:
    perp = rules_of("coinm")["BTCUSD_PERP"]  # minPrice 1000, tick 0.1, step 1
    perp.check_order(side="BUY", type="LIMIT", price="30000.1", quantity="3")
    assert refusal(perp, side="BUY", type="LIMIT", price="30000.15", quantity="3").code == -4014
    assert refusal(perp, side="BUY", type="LIMIT", price="30000", quantity="1.5").code == -4023


# --------------------------------------------------------------------------------------------
# Spot vs futures grid formulas (§7): counted from 0 on spot, from the minimum on futures


def off_grid_minimum(*, price: bool = True, qty: bool = True) -> dict[str, Any]:
    """Real USD-M BTCUSDT with minPrice (tick 0.01) and/or minQty (step 0.001) moved off the grid."""
    obj = raw_symbol(USDM_FILE, "BTCUSDT")
    if price:
        set_filter(obj, "PRICE_FILTER", minPrice="0.005")
    if qty:
        set_filter(obj, "LOT_SIZE", minQty="0.0005")
        set_filter(obj, "MARKET_LOT_SIZE", minQty="0.0005")
    obj["filters"] = [f for f in obj["filters"] if f["filterType"] != "MIN_NOTIONAL"]
    return obj


@pytest.mark.parametrize(
    ("moved", "price", "quantity", "spot_ok", "futures_ok"),
    [
        ("price", "30000.015", "0.010", False, True),  # (p - 0.005) % 0.01 == 0, p % 0.01 != 0
        ("price", "30000.01", "0.010", True, False),  # the reverse
        ("qty", "30000.01", "0.0105", False, True),  # (q - 0.0005) % 0.001 == 0, q % 0.001 != 0
        ("qty", "30000.01", "0.011", True, False),  # the reverse
    ],
)
def test_the_same_filter_judged_by_spot_and_futures_formulas(
    moved: str, price: str, quantity: str, spot_ok: bool, futures_ok: bool
) -> None:
    obj = off_grid_minimum(price=moved == "price", qty=moved == "qty")
    for market, ok in (("spot", spot_ok), ("usdm", futures_ok)):
        rules = SymbolRules.from_exchange_info(obj, market)
        order: dict[str, Any] = {"side": "BUY", "type": "LIMIT", "price": price, "quantity": quantity}
        if ok:
            rules.check_order(**order)
            continue
        error = refusal(rules, **order)
        expected = {
            ("spot", "price"): ("PRICE_FILTER", -1013),
            ("spot", "qty"): ("LOT_SIZE", -1013),
            ("usdm", "price"): ("PRICE_FILTER", -4014),
            ("usdm", "qty"): ("LOT_SIZE", -4023),
        }[market, moved]
        assert (error.filter, error.code) == expected


def test_rounding_follows_the_market_formula() -> None:
    obj = off_grid_minimum()
    spot = SymbolRules.from_exchange_info(obj, "spot")
    fut = SymbolRules.from_exchange_info(obj, "usdm")
    assert spot.round_price("30000.013") == Decimal("30000.01")
    assert fut.round_price("30000.013") == Decimal("30000.015")
    assert spot.round_qty("0.0107") == Decimal("0.010")
    assert fut.round_qty("0.0107") == Decimal("0.0105")


# --------------------------------------------------------------------------------------------
# Zero fields disable their part (§7)


def test_zero_fields_disable_that_part_of_the_filter() -> None:
    obj = raw_symbol(SPOT_FILE, "BTCUSDT")
    set_filter(obj, "PRICE_FILTER", minPrice="0", maxPrice="0", tickSize="0")
    set_filter(obj, "LOT_SIZE", minQty="0.00001000", maxQty="0", stepSize="0")
    set_filter(obj, "PERCENT_PRICE", multiplierUp="0", multiplierDown="0")
    rules = SymbolRules.from_exchange_info(obj, "spot")
    assert rules.tick_size == 0
    rules.check_order(side="BUY", type="LIMIT", price="12345678.12345678", quantity="0.12345678")
    rules.check_order(
        side="BUY", type="LIMIT", price="0.00000001", quantity="99999999999", reference_price="1"
    )
    assert rules.round_price("1.23456789") == Decimal("1.23456789")  # no grid to round to
    # The non-zero minimum still holds.
    assert refusal(rules, side="BUY", type="LIMIT", price="100000", quantity="0.000001").filter == "LOT_SIZE"


# --------------------------------------------------------------------------------------------
# Rounding


def test_round_price_modes() -> None:
    btc = rules_of("spot")["BTCUSDT"]
    assert btc.round_price("61602.014") == Decimal("61602.01")
    assert btc.round_price("61602.015") == Decimal("61602.02")  # half-way rounds up
    assert btc.round_price("61602.011", mode="up") == Decimal("61602.02")
    assert btc.round_price("61602.019", mode="down") == Decimal("61602.01")
    assert btc.round_price(Decimal("61602.01000000"), mode="up") == Decimal("61602.01")
    assert str(btc.round_price("61602.019", mode="down")) == "61602.01"  # the tick's decimals
    assert btc.round_price(61602) == Decimal("61602")
    with pytest.raises(ValueError, match="rounding mode"):
        btc.round_price("1", mode="sideways")  # type: ignore[arg-type]


def test_round_qty_defaults_down_and_uses_both_market_grids() -> None:
    btc = rules_of("spot")["BTCUSDT"]
    assert btc.round_qty("0.123456789") == Decimal("0.12345")
    assert btc.round_qty("0.123455", mode="nearest") == Decimal("0.12346")
    obj = set_filter(raw_symbol(SPOT_FILE, "BTCUSDT"), "MARKET_LOT_SIZE", stepSize="0.00002500", minQty="0")
    both = SymbolRules.from_exchange_info(obj, "spot")
    q = both.round_qty("0.12347", market_order=True)  # multiple of 0.00001 and of 0.000025
    assert q == Decimal("0.12345")
    both.check_order(side="BUY", type="MARKET", quantity=q)
    assert both.round_qty("0.12347") == Decimal("0.12347")  # a LIMIT order: LOT_SIZE alone


def test_rounding_does_not_clamp_into_the_bounds() -> None:
    btc = rules_of("spot")["BTCUSDT"]
    low = btc.round_qty("0.000001")
    assert low == 0  # on the grid, still below minQty: check_order refuses it
    assert refusal(btc, side="BUY", type="LIMIT", price="61602", quantity="0.000005").filter == "LOT_SIZE"
    high = btc.round_price("2000000.004")
    assert high == Decimal("2000000")
    assert refusal(btc, side="BUY", type="LIMIT", price=high, quantity="0.001").filter == "PRICE_FILTER"


def test_futures_rounding_below_the_minimum_uses_the_floor() -> None:
    fut = SymbolRules.from_exchange_info(off_grid_minimum(), "usdm")
    assert fut.round_price("0.001", mode="down") == Decimal("-0.005")
    assert fut.round_price("0.001", mode="up") == Decimal("0.005")


def grids(market: str) -> list[SymbolRules]:
    return [rules_of(market)[s] for s in rules_of(market).symbols if rules_of(market)[s].tick_size]


price_text = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("100000"), places=8)
modes = st.sampled_from(["down", "up", "nearest"])


@given(rules=st.sampled_from(grids("spot") + grids("usdm") + grids("coinm")), value=price_text, mode=modes)
def test_rounded_prices_are_on_the_grid(rules: SymbolRules, value: Decimal, mode: Any) -> None:
    rounded = rules.round_price(value, mode=mode)
    base = rules.min_price if rules.market.is_futures else Decimal(0)
    assert (rounded - base) % rules.tick_size == 0
    down = rules.round_price(value, mode="down")
    up = rules.round_price(value, mode="up")
    assert down <= value <= up
    assert up - down in (0, rules.tick_size)
    nearest = rules.round_price(value, mode="nearest")
    assert abs(nearest - value) <= rules.tick_size / 2
    if nearest != value and abs(nearest - value) == rules.tick_size / 2:
        assert nearest == up  # half-way goes up
    # Within the bounds, the rounded price passes PRICE_FILTER's check.
    in_bounds = rounded >= rules.min_price and (not rules.max_price or rounded <= rules.max_price)
    if in_bounds and rounded > 0:
        rules.check_order(
            side="BUY", type="STOP_LOSS" if not rules.market.is_futures else "STOP", stop_price=rounded
        )


def lot_rules(rules: SymbolRules, market_order: bool) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(min, max, step) of every lot filter that judges the order, read from the raw filters."""
    names = ["LOT_SIZE"]
    if market_order:
        has_market = "MARKET_LOT_SIZE" in rules.filters
        names = ["MARKET_LOT_SIZE"] if rules.market.is_futures and has_market else [*names, "MARKET_LOT_SIZE"]
    out = []
    for name in names:
        if name in rules.filters:
            f = rules.filters[name]
            out.append((Decimal(f["minQty"]), Decimal(f["maxQty"]), Decimal(f["stepSize"])))
    return out


@given(
    rules=st.sampled_from(grids("spot") + grids("usdm") + grids("coinm")),
    value=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("10000"), places=8),
    mode=modes,
    market_order=st.booleans(),
)
def test_rounded_quantities_are_on_the_grid(
    rules: SymbolRules, value: Decimal, mode: Any, market_order: bool
) -> None:
    rounded = rules.round_qty(value, mode=mode, market_order=market_order)
    judged = lot_rules(rules, market_order)
    for low, _, step in judged:
        base = low if rules.market.is_futures else Decimal(0)
        if step:
            assert (rounded - base) % step == 0
    if mode == "down":
        assert rounded <= value
    elif mode == "up":
        assert rounded >= value
    # Within every bound, the rounded quantity passes the lot filters.
    if rounded > 0 and all(low <= rounded and (not high or rounded <= high) for low, high, _ in judged):
        rules.check_order(side="BUY", type="MARKET" if market_order else "LIMIT", quantity=rounded)


# --------------------------------------------------------------------------------------------
# Exact arithmetic only


def test_floats_are_refused() -> None:
    btc = rules_of("spot")["BTCUSDT"]
    with pytest.raises(TypeError, match="not float"):
        btc.check_order(side="BUY", type="LIMIT", price=61602.01, quantity="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not float"):
        btc.round_price(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a finite number"):
        btc.round_qty("NaN")
    with pytest.raises(ValueError, match="not a decimal number"):
        btc.check_order(side="BUY", type="LIMIT", price="abc", quantity="1")
    with pytest.raises(ValueError, match="side must be BUY or SELL"):
        btc.check_order(side="HOLD", type="LIMIT", price="1", quantity="1")


def test_long_decimals_stay_exact() -> None:
    """Values beyond the 28 digits of Decimal's default context are compared exactly."""
    obj = raw_symbol(USDM_FILE, "BTCUSDT")
    set_filter(obj, "PRICE_FILTER", minPrice="0.000000000000000000000000000001", maxPrice="0",
               tickSize="0.000000000000000000000000000001")  # fmt: skip
    obj["filters"] = [f for f in obj["filters"] if f["filterType"] != "MIN_NOTIONAL"]
    rules = SymbolRules.from_exchange_info(obj, "usdm")
    price = "123456789.000000000000000000000000000003"
    rules.check_order(side="BUY", type="LIMIT", price=price, quantity="1")
    assert rules.round_price(price) == Decimal(price)
    finer = "123456789.0000000000000000000000000000035"
    assert refusal(rules, side="BUY", type="LIMIT", price=finer, quantity="1").code == -4014


# --------------------------------------------------------------------------------------------
# Local and remote refusals agree


@pytest.mark.parametrize(
    ("market", "symbol", "order"),
    [
        ("spot", "BTCUSDT", {**SPOT_BTC, "price": "61602.015"}),
        ("spot", "BTCUSDT", {**SPOT_BTC, "quantity": "0.000015"}),
        ("spot", "BTCUSDT", {**SPOT_BTC, "price": "9999"}),
        ("usdm", "BTCUSDT", {**FUT_BTC, "price": "30000.001"}),
        ("usdm", "BTCUSDT", {**FUT_BTC, "quantity": "0.0105"}),
        ("usdm", "BTCUSDT", {**FUT_BTC, "price": "4000", "quantity": "0.001"}),
        ("usdm", "BTCUSDT", {**FUT_BTC, "price": "34500.01", "reference_price": "30000"}),
    ],
)
def test_the_exchange_answer_decodes_to_the_same_refusal(
    market: str, symbol: str, order: dict[str, Any]
) -> None:
    local = refusal(rules_of(market)[symbol], **order)
    body = json.dumps({"code": local.code, "msg": local.msg}).encode()
    remote = error_from_response(
        400, body, method="POST", endpoint="/api/v3/order", client_order_id=None, market=Market(market)
    )
    assert isinstance(remote, FilterFailure)
    assert (remote.code, remote.msg, remote.filter, remote.local) == (
        local.code,
        local.msg,
        local.filter,
        False,
    )
    assert isinstance(local, OrderRejected)
    assert "(refused locally)" in str(local)


# Every futures refusal of filters.py, with the order that triggers it. BCHUSDT's
# MARKET_LOT_SIZE (maxQty 1000) is tighter than its LOT_SIZE (10000), so a market order meets
# it first; the quantity codes are the same for both filters.
FUTURES_TABLE: list[tuple[str, dict[str, Any], str, int]] = [
    ("BTCUSDT", {**FUT_BTC, **cast(dict[str, Any], change)}, name, code)
    for change, name, _field, code, _msg in FUTURES_CASES
] + [
    ("BTCUSDT", {**FUT_BTC, "stop_price": "556.70", "type": "STOP"}, "PRICE_FILTER", -4013),
    ("BCHUSDT", {"side": "BUY", "type": "MARKET", "quantity": "0"}, "MARKET_LOT_SIZE", -4003),
    ("BCHUSDT", {"side": "BUY", "type": "MARKET", "quantity": "5000"}, "MARKET_LOT_SIZE", -4005),
    ("BCHUSDT", {"side": "BUY", "type": "MARKET", "quantity": "1.0005"}, "MARKET_LOT_SIZE", -4023),
    (
        "BCHUSDT",
        {"side": "SELL", "type": "TAKE_PROFIT_MARKET", "quantity": "5000", "stop_price": "400"},
        "MARKET_LOT_SIZE",
        -4005,
    ),
    ("BCHUSDT", {"side": "BUY", "type": "LIMIT", "price": "500.00", "quantity": "10001"}, "LOT_SIZE", -4005),
]


def futures_codes_in_filters_py() -> set[int]:
    """The code argument of every ``_fail_futures(...)`` call in filters.py's source."""
    codes = set()
    for node in ast.walk(ast.parse(Path(filters_module.__file__).read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "_fail_futures":
            code = ast.literal_eval(node.args[2])
            assert isinstance(code, int)
            codes.add(code)
    return codes


def test_the_futures_table_covers_every_code_filters_py_raises() -> None:
    raised = futures_codes_in_filters_py()
    assert {-4001, -4006, -4007, -4164} <= raised  # the scan found the calls
    assert raised == {code for _, _, _, code in FUTURES_TABLE}


@pytest.mark.parametrize(("symbol", "order", "name", "code"), FUTURES_TABLE)
def test_every_futures_refusal_decodes_from_the_exchange_answer_to_the_same_filter(
    symbol: str, order: dict[str, Any], name: str, code: int
) -> None:
    """The exchange's answer (code and message) decodes to a FilterFailure of the same filter.
    The quantity codes do not tell LOT_SIZE from MARKET_LOT_SIZE: the decoder says LOT_SIZE
    and ``futures_lot_filter`` (which the trading layer applies to its refusals) names the
    one the order's type is judged by."""
    rules = rules_of("usdm")[symbol]
    local = refusal(rules, **order)
    assert (local.filter, local.code) == (name, code)
    body = json.dumps({"code": local.code, "msg": local.msg}).encode()
    remote = error_from_response(
        400, body, method="POST", endpoint="/fapi/v1/order", client_order_id=None, market=Market.USDM
    )
    assert isinstance(remote, FilterFailure)
    assert (remote.code, remote.msg, remote.status, remote.local) == (local.code, local.msg, 400, False)
    if code in (-4003, -4004, -4005, -4023):
        assert remote.filter == "LOT_SIZE"
        assert rules.futures_lot_filter(order["type"]) == name
    else:
        assert remote.filter == name


@pytest.mark.parametrize(
    ("market", "symbol"), [("spot", "FOOUSDT"), ("usdm", "FOOUSDT"), ("coinm", "FOOUSD_PERP")]
)
def test_the_local_exchange_synthetic_symbols_load_and_accept_its_book(
    market: str, symbol: str, tmp_path: Path
) -> None:
    source = GeneratedMarket([symbol], market, levels=20, payloads_dir=tmp_path)
    rules = ExchangeRules.from_json(source.exchange_info(), market)[symbol]
    best_bid = source.truth(symbol).best_bid_str()
    assert best_bid is not None
    price, qty = best_bid
    rules.check_order(side="BUY", type="LIMIT", price=price, quantity=rules.round_qty(qty))
    assert rules.round_price(price) == Decimal(price)


# --------------------------------------------------------------------------------------------
# Unusable exchangeInfo objects say what is wrong


def broken(mutate: Any) -> dict[str, Any]:
    obj = raw_symbol(SPOT_FILE, "BTCUSDT")
    mutate(obj)
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (broken(lambda o: o.pop("symbol")), "without a 'symbol' name"),
        (broken(lambda o: o.pop("status")), "BTCUSDT: no 'status'"),
        (broken(lambda o: o.pop("filters")), "BTCUSDT: 'filters' is None, expected a list"),
        (broken(lambda o: o.pop("baseAsset")), "BTCUSDT: field 'baseAsset'"),
        (
            broken(lambda o: o["filters"][0].pop("tickSize")),
            "BTCUSDT: filter PRICE_FILTER field 'tickSize' is missing",
        ),
        (
            broken(lambda o: o["filters"][2].update(stepSize="0.0.1")),
            "BTCUSDT: filter LOT_SIZE field 'stepSize' is '0.0.1', not a decimal number",
        ),
        (
            broken(lambda o: o["filters"][2].update(minQty="-1")),
            "BTCUSDT: filter LOT_SIZE field 'minQty' is '-1': must be a finite value >= 0",
        ),
        (broken(lambda o: o["filters"][2].update(minQty="10000")), "LOT_SIZE has minQty 10000 > maxQty 9000"),
        (
            broken(lambda o: o["filters"][2].update(maxQty=1.5)),
            "field 'maxQty' is 1.5, expected a decimal string",
        ),
        (broken(lambda o: o["filters"][3].update(applyToMarket="yes")), "'applyToMarket' is 'yes'"),
        (broken(lambda o: o["filters"][4].update(limit="ten")), "ICEBERG_PARTS field 'limit' is 'ten'"),
        (broken(lambda o: o["filters"].append(dict(o["filters"][0]))), "filter PRICE_FILTER appears twice"),
        (broken(lambda o: o["filters"].append({"minQty": "1"})), "a filter has no 'filterType'"),
        (broken(lambda o: o.update(baseAssetPrecision="8")), "'baseAssetPrecision' is '8'"),
        ("BTCUSDT", "must be a JSON object"),
    ],
)
def test_bad_symbol_objects_give_clear_errors(obj: Any, message: str) -> None:
    with pytest.raises(ExchangeInfoError, match=message.replace("(", r"\(").replace(".", r"\.")):
        SymbolRules.from_exchange_info(obj, "spot")


def test_bad_exchange_info_objects_give_clear_errors() -> None:
    with pytest.raises(ExchangeInfoError, match="spot exchangeInfo has no 'symbols' list"):
        ExchangeRules.from_exchange_info({"timezone": "UTC"}, "spot")
    with pytest.raises(ExchangeInfoError, match="must be a JSON object"):
        ExchangeRules.from_exchange_info([], "spot")  # type: ignore[arg-type]
    obj = raw_symbol(SPOT_FILE, "BTCUSDT")
    with pytest.raises(ExchangeInfoError, match="lists BTCUSDT twice"):
        ExchangeRules.from_exchange_info({"symbols": [obj, obj]}, "spot")
    with pytest.raises(ExchangeInfoError, match="'rateLimits' is 5"):
        ExchangeRules.from_exchange_info({"symbols": [], "rateLimits": 5}, "spot")
    with pytest.raises(ValueError, match="unknown market"):
        ExchangeRules.from_exchange_info({"symbols": []}, "options")
