"""Order parameter builders (tickbook.trading.orders): no network.

Each rule is binance-spec §6 (mandatory parameters per type, order lists, USD-M orders and
algo orders) and the codes are §10.2 (-1102 mandatory, -1106 not required, -1128 bad
combination, -1115/-1116/-1117 enums, the OCO codes -1158..-1199). Expected values are written
out here from the spec, not derived from the code under test.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from tickbook.trading.errors import NetworkError, NoSuchOrder, OrderRejected, RequestError, UnknownOutcome
from tickbook.trading.orders import (
    Leg,
    ReconcilePolicy,
    amend_keep_priority_params,
    cancel_order_list_params,
    cancel_order_params,
    cancel_replace_params,
    decimal_text,
    filter_args,
    futures_batch_params,
    futures_conditional,
    futures_modify,
    futures_order,
    oco_params,
    order_ref,
    oto_params,
    otoco_params,
    place_with_reconciliation,
    spot_order,
)

SYM = "BTCUSDT"
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
NOT_REQUIRED = "Parameter '{}' sent when not required."


def refused(code: int, fn: Any, *args: Any, **kwargs: Any) -> RequestError:
    with pytest.raises(RequestError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    assert info.value.status is None  # refused locally: nothing was sent
    return info.value


# ----------------------------------------------------------------------------------- numbers


def test_decimal_text_is_exact_and_refuses_floats() -> None:
    assert decimal_text("price", Decimal("60000.10")) == "60000.10"  # trailing zeros kept
    assert decimal_text("price", Decimal("1E-8")) == "0.00000001"  # never an exponent
    assert decimal_text("price", Decimal("1E+3")) == "1000"
    assert decimal_text("quantity", 3) == "3"
    assert decimal_text("quantity", "0.00100000") == "0.00100000"
    with pytest.raises(TypeError, match="float"):
        decimal_text("price", 0.1)
    with pytest.raises(TypeError):
        decimal_text("price", True)
    for bad in ("-1", "1e5", " 1", "1.", ".5", "abc", Decimal("NaN"), Decimal("-0.5"), Decimal("Infinity")):
        err = refused(-1100, decimal_text, "price", bad)
        assert err.msg.startswith("Illegal characters found in parameter 'price'")


def test_floats_are_refused_by_every_builder() -> None:
    with pytest.raises(TypeError):
        spot_order(SYM, "BUY", "LIMIT", quantity=0.5, price="1", time_in_force="GTC")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        futures_order(SYM, "BUY", "MARKET", quantity=0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        spot_order(SYM, "SELL", "STOP_LOSS", quantity="1", trailing_delta=1.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- spot types


def test_limit_params_in_documented_order() -> None:
    params = spot_order(
        SYM,
        "BUY",
        "LIMIT",
        price=Decimal("60000.10"),
        quantity="0.001",
        time_in_force="GTC",
        new_client_order_id="my-id_1",
        new_order_resp_type="FULL",
        self_trade_prevention_mode="EXPIRE_MAKER",
        strategy_id=7,
        strategy_type=1_000_000,
    )
    assert params == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "60000.10",
        "newClientOrderId": "my-id_1",
        "strategyId": "7",
        "strategyType": "1000000",
        "newOrderRespType": "FULL",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    assert list(params) == list(params.keys())  # a plain dict of text, in that order
    assert all(isinstance(v, str) for v in params.values())


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"type": "MARKET", "quantity": "1"}, {"quantity": "1"}),
        ({"type": "MARKET", "quote_order_qty": "25.5"}, {"quoteOrderQty": "25.5"}),
        ({"type": "STOP_LOSS", "quantity": "1", "stop_price": "90"}, {"stopPrice": "90"}),
        ({"type": "STOP_LOSS", "quantity": "1", "trailing_delta": 100}, {"trailingDelta": "100"}),
        (
            {
                "type": "STOP_LOSS_LIMIT",
                "quantity": "1",
                "price": "89",
                "stop_price": "90",
                "time_in_force": "GTC",
            },
            {"price": "89", "stopPrice": "90", "timeInForce": "GTC"},
        ),
        (
            {"type": "TAKE_PROFIT", "quantity": "1", "stop_price": "110", "trailing_delta": "250"},
            {"trailingDelta": "250"},
        ),
        (
            {
                "type": "TAKE_PROFIT_LIMIT",
                "quantity": "1",
                "price": "111",
                "trailing_delta": 50,
                "time_in_force": "IOC",
            },
            {"price": "111", "trailingDelta": "50"},
        ),
        ({"type": "LIMIT_MAKER", "quantity": "1", "price": "99"}, {"price": "99"}),
        (
            {"type": "LIMIT", "quantity": "1", "price": "99", "time_in_force": "GTC", "iceberg_qty": "0.1"},
            {"icebergQty": "0.1"},
        ),
        (
            {"type": "LIMIT_MAKER", "quantity": "1", "price": "99", "iceberg_qty": "0.1"},
            {"icebergQty": "0.1"},
        ),
        (
            # Pegged: price becomes optional (§6.1, since 2025-08-28).
            {
                "type": "LIMIT",
                "quantity": "1",
                "time_in_force": "GTC",
                "peg_price_type": "PRIMARY_PEG",
                "peg_offset_value": 3,
                "peg_offset_type": "PRICE_LEVEL",
            },
            {"pegPriceType": "PRIMARY_PEG", "pegOffsetValue": "3", "pegOffsetType": "PRICE_LEVEL"},
        ),
    ],
)
def test_every_spot_type_with_its_mandatory_params(kwargs: dict[str, Any], expected: dict[str, str]) -> None:
    params = spot_order(SYM, "SELL", **kwargs)
    assert params["type"] == kwargs["type"]
    assert {k: params[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("kwargs", "code", "msg"),
    [
        ({"type": "LIMIT", "quantity": "1", "price": "1"}, -1102, MANDATORY.format("timeInForce")),
        ({"type": "LIMIT", "price": "1", "time_in_force": "GTC"}, -1102, MANDATORY.format("quantity")),
        ({"type": "LIMIT", "quantity": "1", "time_in_force": "GTC"}, -1102, MANDATORY.format("price")),
        (
            {"type": "MARKET"},
            -1102,
            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        ),
        ({"type": "MARKET", "quantity": "1", "quote_order_qty": "10"}, -1128, None),
        ({"type": "MARKET", "quantity": "1", "price": "1"}, -1106, NOT_REQUIRED.format("price")),
        (
            {"type": "MARKET", "quantity": "1", "time_in_force": "GTC"},
            -1106,
            NOT_REQUIRED.format("timeInForce"),
        ),
        (
            {"type": "LIMIT", "quantity": "1", "price": "1", "time_in_force": "GTC", "quote_order_qty": "1"},
            -1106,
            None,
        ),
        (
            {"type": "STOP_LOSS", "quantity": "1"},
            -1102,
            "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
        ),
        (
            {"type": "STOP_LOSS", "quantity": "1", "stop_price": "1", "price": "1"},
            -1106,
            NOT_REQUIRED.format("price"),
        ),
        ({"type": "TAKE_PROFIT_LIMIT", "quantity": "1", "price": "1", "stop_price": "2"}, -1102, None),
        ({"type": "LIMIT_MAKER", "quantity": "1", "price": "1", "time_in_force": "GTC"}, -1106, None),
        ({"type": "LIMIT_MAKER", "quantity": "1"}, -1102, MANDATORY.format("price")),
        (
            {"type": "LIMIT", "quantity": "1", "price": "1", "time_in_force": "GTC", "stop_price": "1"},
            -1106,
            None,
        ),
        (
            {"type": "MARKET", "quantity": "1", "trailing_delta": 10},
            -1106,
            NOT_REQUIRED.format("trailingDelta"),
        ),
        # Iceberg: only the resting types, and only GTC (§6.1).
        ({"type": "MARKET", "quantity": "1", "iceberg_qty": "0.1"}, -1106, NOT_REQUIRED.format("icebergQty")),
        (
            {"type": "LIMIT", "quantity": "1", "price": "1", "time_in_force": "IOC", "iceberg_qty": "0.1"},
            -1013,
            None,
        ),
        # Enums.
        ({"type": "LIMIT", "quantity": "1", "price": "1", "time_in_force": "GTD"}, -1115, None),
        ({"type": "STOP", "quantity": "1"}, -1116, None),
        ({"type": "", "quantity": "1"}, -1102, MANDATORY.format("type")),
        ({"type": "MARKET", "quantity": "1", "new_order_resp_type": "FAST"}, -1130, None),
        ({"type": "MARKET", "quantity": "1", "self_trade_prevention_mode": "CANCEL_ALL"}, -1130, None),
        ({"type": "MARKET", "quantity": "1", "strategy_type": 999_999}, -1134, None),
        ({"type": "MARKET", "quantity": "1", "new_client_order_id": "has space"}, -1100, None),
        ({"type": "MARKET", "quantity": "1", "new_client_order_id": "x" * 37}, -1100, None),
        # Pegs: on the limit types, with a valid type and both offset fields.
        ({"type": "MARKET", "quantity": "1", "peg_price_type": "PRIMARY_PEG"}, -1106, None),
        ({"type": "LIMIT_MAKER", "quantity": "1", "peg_price_type": "MID_PEG"}, -1210, None),
        (
            {
                "type": "LIMIT_MAKER",
                "quantity": "1",
                "peg_price_type": "MARKET_PEG",
                "peg_offset_value": 1,
                "peg_offset_type": "BPS",
            },
            -1211,
            None,
        ),
        (
            {"type": "LIMIT_MAKER", "quantity": "1", "peg_price_type": "MARKET_PEG", "peg_offset_value": 1},
            -1102,
            None,
        ),
        (
            {"type": "LIMIT_MAKER", "quantity": "1", "price": "1", "peg_offset_type": "PRICE_LEVEL"},
            -1106,
            None,
        ),
        (
            {
                "type": "LIMIT_MAKER",
                "quantity": "1",
                "peg_price_type": "MARKET_PEG",
                "peg_offset_value": 101,
                "peg_offset_type": "PRICE_LEVEL",
            },
            -1130,
            None,
        ),
        ({"type": "STOP_LOSS", "quantity": "1", "trailing_delta": 0}, -1130, None),
        ({"type": "STOP_LOSS", "quantity": "1", "trailing_delta": "1.5"}, -1100, None),
    ],
)
def test_spot_refusals(kwargs: dict[str, Any], code: int, msg: str | None) -> None:
    err = refused(code, spot_order, SYM, "BUY", **kwargs)
    assert err.endpoint == "/api/v3/order"
    if msg is not None:
        assert err.msg == msg


def test_side_and_symbol() -> None:
    refused(-1117, spot_order, SYM, "buy", "MARKET", quantity="1")  # the exchange is case-sensitive
    assert refused(-1102, spot_order, "", "BUY", "MARKET", quantity="1").msg == MANDATORY.format("symbol")


def test_test_order_endpoint_is_named() -> None:
    err = refused(-1102, spot_order, SYM, "BUY", "LIMIT", quantity="1", endpoint="/api/v3/order/test")
    assert err.endpoint == "/api/v3/order/test"


# ----------------------------------------------------------------------------------- cancels, amends


def test_order_ref_needs_an_id() -> None:
    err = refused(-1102, order_ref, SYM, None, None, "/api/v3/order", "DELETE")
    assert err.msg == "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!"
    assert err.method == "DELETE"
    assert order_ref(SYM, 12, None, "/api/v3/order", "GET") == {"symbol": SYM, "orderId": "12"}
    assert order_ref(SYM, 12, "c1", "/api/v3/order", "GET") == {
        "symbol": SYM,
        "orderId": "12",
        "origClientOrderId": "c1",
    }


def test_cancel_order_params() -> None:
    assert cancel_order_params(
        SYM, order_id=5, cancel_restrictions="ONLY_NEW", new_client_order_id="c-1"
    ) == {
        "symbol": SYM,
        "orderId": "5",
        "newClientOrderId": "c-1",
        "cancelRestrictions": "ONLY_NEW",
    }
    refused(-1102, cancel_order_params, SYM)
    refused(-1145, cancel_order_params, SYM, order_id=5, cancel_restrictions="ONLY_FILLED")
    refused(-1100, cancel_order_params, SYM, order_id=5, new_client_order_id="no spaces")


def test_cancel_replace_params() -> None:
    new = spot_order(
        SYM, "BUY", "LIMIT", quantity="1", price="99", time_in_force="GTC", new_client_order_id="n1"
    )
    params = cancel_replace_params(
        new, "STOP_ON_FAILURE", cancel_orig_client_order_id="old", cancel_restrictions="ONLY_NEW"
    )
    assert params == {
        "symbol": SYM,
        "side": "BUY",
        "type": "LIMIT",
        "cancelReplaceMode": "STOP_ON_FAILURE",
        "cancelOrigClientOrderId": "old",
        "cancelRestrictions": "ONLY_NEW",
        "timeInForce": "GTC",
        "quantity": "1",
        "price": "99",
        "newClientOrderId": "n1",
    }
    assert refused(-1102, cancel_replace_params, new, None, cancel_order_id=1).msg == MANDATORY.format(
        "cancelReplaceMode"
    )
    refused(-1130, cancel_replace_params, new, "ALWAYS", cancel_order_id=1)
    err = refused(-1102, cancel_replace_params, new, "ALLOW_FAILURE")
    assert "'cancelOrderId' or 'cancelOrigClientOrderId'" in err.msg
    refused(
        -1145, cancel_replace_params, new, "ALLOW_FAILURE", cancel_order_id=1, cancel_restrictions="NEVER"
    )
    refused(
        -1130,
        cancel_replace_params,
        new,
        "ALLOW_FAILURE",
        cancel_order_id=1,
        order_rate_limit_exceeded_mode="X",
    )
    with_mode = cancel_replace_params(
        new, "ALLOW_FAILURE", cancel_order_id=5, order_rate_limit_exceeded_mode="CANCEL_ONLY"
    )
    assert with_mode["orderRateLimitExceededMode"] == "CANCEL_ONLY"
    assert with_mode["cancelOrderId"] == "5"


def test_amend_keep_priority_params() -> None:
    assert amend_keep_priority_params(SYM, "0.5", order_id=3) == {
        "symbol": SYM,
        "orderId": "3",
        "newQty": "0.5",
    }
    refused(-1102, amend_keep_priority_params, SYM, "0.5")
    refused(-1130, amend_keep_priority_params, SYM, "0", order_id=3)


def test_cancel_order_list_params() -> None:
    assert cancel_order_list_params(SYM, list_client_order_id="L1") == {
        "symbol": SYM,
        "listClientOrderId": "L1",
    }
    err = refused(-1102, cancel_order_list_params, SYM)
    assert "'orderListId' or 'listClientOrderId'" in err.msg


# ----------------------------------------------------------------------------------- order lists

TP = Leg("LIMIT_MAKER", price="110")
SL = Leg("STOP_LOSS_LIMIT", price="89", stop_price="90", time_in_force="GTC")


def test_oco_sell_and_buy() -> None:
    sell = oco_params(SYM, "SELL", "1", above=TP, below=SL, list_client_order_id="list-1")
    assert sell == {
        "symbol": SYM,
        "listClientOrderId": "list-1",
        "side": "SELL",
        "quantity": "1",
        "aboveType": "LIMIT_MAKER",
        "abovePrice": "110",
        "belowType": "STOP_LOSS_LIMIT",
        "belowTimeInForce": "GTC",
        "belowPrice": "89",
        "belowStopPrice": "90",
    }
    buy = oco_params(
        SYM,
        "BUY",
        "1",
        above=Leg("STOP_LOSS", stop_price="110", client_order_id="a1"),
        below=Leg("TAKE_PROFIT_LIMIT", price="90", stop_price="91", time_in_force="GTC", iceberg_qty="0.2"),
        new_order_resp_type="FULL",
    )
    assert buy["aboveClientOrderId"] == "a1"
    assert buy["belowIcebergQty"] == "0.2"
    assert buy["newOrderRespType"] == "FULL"
    # A trailing stop has no price to compare: the exchange alone can judge it.
    trailing = oco_params(SYM, "SELL", "1", above=TP, below=Leg("STOP_LOSS", trailing_delta=100))
    assert trailing["belowTrailingDelta"] == "100"


@pytest.mark.parametrize(
    ("side", "above", "below", "code"),
    [
        ("SELL", Leg("LIMIT", price="110", time_in_force="GTC"), SL, -1158),  # LIMIT is no OCO leg type
        ("SELL", TP, Leg("LIMIT_MAKER", price="90"), -1168),  # both on the take-profit side
        ("BUY", Leg("TAKE_PROFIT", stop_price="110"), Leg("TAKE_PROFIT", stop_price="90"), -1168),
        (
            "BUY",
            Leg("STOP_LOSS", stop_price="110"),
            Leg("STOP_LOSS", stop_price="90"),
            -1158,
        ),  # no take profit
        ("SELL", SL, Leg("TAKE_PROFIT", stop_price="80"), -1197),  # SELL: the stop must be below
        ("BUY", TP, Leg("STOP_LOSS", stop_price="120"), -1198),  # BUY: the take profit must be below
        ("SELL", Leg("LIMIT_MAKER", price="85"), SL, -1166),  # SELL: limit above the stop
        ("SELL", Leg("TAKE_PROFIT", stop_price="90"), Leg("STOP_LOSS", stop_price="90"), -1166),
        (
            "BUY",
            Leg("STOP_LOSS", stop_price="100"),
            Leg("TAKE_PROFIT_LIMIT", price="101", stop_price="99", time_in_force="GTC"),
            -1165,
        ),
        (
            "SELL",
            TP,
            Leg("STOP_LOSS_LIMIT", price="89", stop_price="90", time_in_force="IOC", iceberg_qty="0.1"),
            -1160,
        ),
        ("SELL", TP, Leg("STOP_LOSS_LIMIT", price="89", stop_price="90"), -1102),  # its TIF
        ("SELL", Leg("LIMIT_MAKER"), SL, -1102),  # its price
        ("SELL", Leg("LIMIT_MAKER", price="110", side="SELL"), SL, -1106),  # the list has the side
        ("SELL", Leg("LIMIT_MAKER", price="110", quantity="1"), SL, -1106),  # ... and the quantity
        ("SELL", Leg(""), SL, -1102),
    ],
)
def test_oco_refusals(side: str, above: Leg, below: Leg, code: int) -> None:
    err = refused(code, oco_params, SYM, side, "1", above, below)
    assert err.endpoint == "/api/v3/orderList/oco"


def test_oto_and_otoco() -> None:
    working = Leg("LIMIT", side="BUY", quantity="1", price="100", time_in_force="GTC", client_order_id="w1")
    pending = Leg("LIMIT_MAKER", side="SELL", quantity="1", price="120")
    assert oto_params(SYM, working, pending) == {
        "symbol": SYM,
        "workingSide": "BUY",
        "workingType": "LIMIT",
        "workingTimeInForce": "GTC",
        "workingQuantity": "1",
        "workingPrice": "100",
        "workingClientOrderId": "w1",
        "pendingSide": "SELL",
        "pendingType": "LIMIT_MAKER",
        "pendingQuantity": "1",
        "pendingPrice": "120",
    }
    market_pending = oto_params(SYM, working, Leg("MARKET", side="SELL", quantity="1"))
    assert market_pending["pendingType"] == "MARKET"
    refused(-1158, oto_params, SYM, Leg("MARKET", side="BUY", quantity="1"), pending)
    refused(-1102, oto_params, SYM, Leg("LIMIT", side="BUY", price="1", time_in_force="GTC"), pending)
    assert refused(-1102, oto_params, SYM, working, Leg("LIMIT_MAKER", quantity="1", price="1")).msg == (
        MANDATORY.format("pendingSide")
    )
    err = refused(-1102, oto_params, SYM, working, Leg("STOP_LOSS", side="SELL", quantity="1"))
    assert "'pendingStopPrice' or 'pendingTrailingDelta'" in err.msg

    params = otoco_params(SYM, working, "SELL", "1", TP, Leg("STOP_LOSS", stop_price="90"))
    assert params == {
        "symbol": SYM,
        "workingSide": "BUY",
        "workingType": "LIMIT",
        "workingTimeInForce": "GTC",
        "workingQuantity": "1",
        "workingPrice": "100",
        "workingClientOrderId": "w1",
        "pendingSide": "SELL",
        "pendingQuantity": "1",
        "pendingAboveType": "LIMIT_MAKER",
        "pendingAbovePrice": "110",
        "pendingBelowType": "STOP_LOSS",
        "pendingBelowStopPrice": "90",
    }
    refused(-1197, otoco_params, SYM, working, "SELL", "1", SL, Leg("TAKE_PROFIT", stop_price="80"))
    err = refused(-1102, otoco_params, SYM, working, "SELL", "1", Leg("LIMIT_MAKER"), SL)
    assert err.msg == MANDATORY.format("pendingAbovePrice")


# ----------------------------------------------------------------------------------- futures


def test_futures_limit_and_market() -> None:
    params = futures_order(
        SYM,
        "BUY",
        "LIMIT",
        quantity="0.010",
        price="60000.1",
        time_in_force="GTX",
        position_side="BOTH",
        reduce_only=False,
        new_client_order_id="f-1",
        new_order_resp_type="RESULT",
        self_trade_prevention_mode="EXPIRE_TAKER",
    )
    assert params["reduceOnly"] == "false"
    assert params["timeInForce"] == "GTX"
    assert params["price"] == "60000.1"
    assert params["newOrderRespType"] == "RESULT"
    market = futures_order(SYM, "SELL", "MARKET", quantity="1", reduce_only=True)
    assert market == {"symbol": SYM, "side": "SELL", "type": "MARKET", "quantity": "1", "reduceOnly": "true"}
    matched = futures_order(SYM, "BUY", "LIMIT", quantity="1", price_match="OPPONENT_5", time_in_force="GTC")
    assert matched["priceMatch"] == "OPPONENT_5"
    assert "price" not in matched


def test_futures_gtd() -> None:
    now = 1_750_000_000_000
    params = futures_order(
        SYM,
        "BUY",
        "LIMIT",
        quantity="1",
        price="1",
        time_in_force="GTD",
        good_till_date=now + 700_123,
        now_ms=now,
    )
    assert params["goodTillDate"] == str(now + 700_000)  # second precision
    refused(-1102, futures_order, SYM, "BUY", "LIMIT", quantity="1", price="1", time_in_force="GTD")
    refused(
        -1102,
        futures_order,
        SYM,
        "BUY",
        "LIMIT",
        quantity="1",
        price="1",
        time_in_force="GTD",
        good_till_date=now + 600_000,
        now_ms=now,
    )
    refused(
        -1106,
        futures_order,
        SYM,
        "BUY",
        "LIMIT",
        quantity="1",
        price="1",
        time_in_force="GTC",
        good_till_date=now,
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "code"),
    [
        (("BUY", "STOP_MARKET"), {"quantity": "1"}, -4120),  # moved to the algo endpoint
        (("BUY", "TRAILING_STOP_MARKET"), {"quantity": "1"}, -4120),
        (("BUY", "LIMIT_MAKER"), {"quantity": "1"}, -1116),
        (("BUY", "LIMIT"), {"quantity": "1", "price": "1"}, -1102),  # timeInForce
        (("BUY", "LIMIT"), {"quantity": "1", "time_in_force": "GTC"}, -1102),  # price
        (("BUY", "LIMIT"), {"price": "1", "time_in_force": "GTC"}, -1102),  # quantity
        (
            ("BUY", "LIMIT"),
            {"quantity": "1", "price": "1", "price_match": "QUEUE", "time_in_force": "GTC"},
            -1128,
        ),
        (("BUY", "MARKET"), {"quantity": "1", "price": "1"}, -1106),
        (("BUY", "MARKET"), {"quantity": "1", "time_in_force": "GTC"}, -1106),
        (("BUY", "MARKET"), {"quantity": "1", "price_match": "QUEUE"}, -1106),
        (("BUY", "MARKET"), {"quantity": "0"}, -4003),
        (("BUY", "LIMIT"), {"quantity": "1", "price": "0", "time_in_force": "GTC"}, -4001),
        (("BUY", "LIMIT"), {"quantity": "1", "price": "1", "time_in_force": "GTE_GTC"}, -1115),
        (
            ("BUY", "MARKET"),
            {"quantity": "1", "position_side": "LONG", "reduce_only": True},
            -1106,
        ),  # hedge mode
        (("BUY", "MARKET"), {"quantity": "1", "position_side": "UP"}, -1130),
        (("BUY", "MARKET"), {"quantity": "1", "reduce_only": "yes"}, -1130),
        (("BUY", "MARKET"), {"quantity": "1", "new_order_resp_type": "FULL"}, -1136),  # futures: ACK/RESULT
        (("BUY", "MARKET"), {"quantity": "1", "self_trade_prevention_mode": "DECREMENT"}, -1130),
        (("BUY", "LIMIT"), {"quantity": "1", "price_match": "OPPONENT_10", "time_in_force": "GTC"}, -1130),
        (("HOLD", "MARKET"), {"quantity": "1"}, -1117),
        (("BUY", "MARKET"), {"quantity": "1", "new_client_order_id": "y" * 37}, -4015),
    ],
)
def test_futures_refusals(args: tuple[str, str], kwargs: dict[str, Any], code: int) -> None:
    err = refused(code, futures_order, SYM, *args, **kwargs)
    assert err.endpoint == "/fapi/v1/order"


def test_futures_conditional() -> None:
    stop = futures_conditional(
        SYM,
        "SELL",
        "STOP_MARKET",
        trigger_price="58000",
        close_position=True,
        working_type="MARK_PRICE",
        price_protect=True,
        client_algo_id="algo-1",
    )
    assert stop == {
        "algoType": "CONDITIONAL",
        "symbol": SYM,
        "side": "SELL",
        "type": "STOP_MARKET",
        "triggerPrice": "58000",
        "workingType": "MARK_PRICE",
        "priceProtect": "true",
        "closePosition": "true",
        "clientAlgoId": "algo-1",
    }
    limit = futures_conditional(
        SYM, "BUY", "TAKE_PROFIT", quantity="1", price="59000", trigger_price="59010", time_in_force="GTC"
    )
    assert (limit["type"], limit["price"], limit["triggerPrice"], limit["timeInForce"]) == (
        "TAKE_PROFIT",
        "59000",
        "59010",
        "GTC",
    )
    trailing = futures_conditional(
        SYM, "SELL", "TRAILING_STOP_MARKET", quantity="1", callback_rate="0.1", activate_price="61000"
    )
    assert (trailing["callbackRate"], trailing["activatePrice"]) == ("0.1", "61000")
    assert "triggerPrice" not in trailing
    assert (
        futures_conditional(SYM, "SELL", "TRAILING_STOP_MARKET", quantity="1", callback_rate=10)[
            "callbackRate"
        ]
        == "10"
    )


@pytest.mark.parametrize(
    ("type", "kwargs", "code"),
    [
        ("LIMIT", {"quantity": "1", "trigger_price": "1"}, -1116),  # plain orders go to /fapi/v1/order
        ("STOP_MARKET", {"quantity": "1"}, -1102),  # triggerPrice
        ("STOP_MARKET", {"trigger_price": "1"}, -1102),  # quantity (or closePosition)
        ("STOP_MARKET", {"quantity": "1", "trigger_price": "1", "close_position": True}, -1106),
        ("STOP_MARKET", {"trigger_price": "1", "close_position": True, "reduce_only": True}, -1106),
        ("STOP", {"quantity": "1", "price": "1", "trigger_price": "1", "close_position": True}, -1106),
        ("TRAILING_STOP_MARKET", {"quantity": "1", "close_position": True, "callback_rate": "1"}, -1106),
        ("STOP", {"quantity": "1", "trigger_price": "1", "time_in_force": "GTC"}, -1102),  # price
        ("STOP_MARKET", {"quantity": "1", "trigger_price": "1", "price": "1"}, -1106),
        ("TRAILING_STOP_MARKET", {"quantity": "1"}, -1102),  # callbackRate
        ("TRAILING_STOP_MARKET", {"quantity": "1", "callback_rate": "0.09"}, -1130),
        ("TRAILING_STOP_MARKET", {"quantity": "1", "callback_rate": "10.1"}, -1130),
        ("TRAILING_STOP_MARKET", {"quantity": "1", "callback_rate": "1", "trigger_price": "1"}, -1106),
        ("STOP_MARKET", {"quantity": "1", "trigger_price": "1", "callback_rate": "1"}, -1106),
        ("STOP_MARKET", {"quantity": "1", "trigger_price": "1", "working_type": "LAST_PRICE"}, -1130),
        ("STOP_MARKET", {"quantity": "1", "trigger_price": "0"}, -4006),
    ],
)
def test_futures_conditional_refusals(type: str, kwargs: dict[str, Any], code: int) -> None:
    err = refused(code, futures_conditional, SYM, "SELL", type, **kwargs)
    assert err.endpoint == "/fapi/v1/algoOrder"


def test_futures_modify_and_batch() -> None:
    assert futures_modify(SYM, "BUY", "2", "100", order_id=9) == {
        "symbol": SYM,
        "orderId": "9",
        "side": "BUY",
        "quantity": "2",
        "price": "100",
    }
    refused(-1102, futures_modify, SYM, "BUY", None, "100", order_id=9)
    refused(-1102, futures_modify, SYM, "BUY", "1", None, order_id=9)
    refused(-1102, futures_modify, SYM, "BUY", "1", "100")
    refused(-1128, futures_modify, SYM, "BUY", "1", "100", order_id=9, price_match="QUEUE")

    one = futures_order(SYM, "BUY", "MARKET", quantity="1", new_client_order_id="b1")
    batch = futures_batch_params([one] * 5)
    assert batch == {"batchOrders": [one] * 5}
    refused(-1130, futures_batch_params, [one] * 6)
    refused(-1102, futures_batch_params, [])
    refused(-1116, futures_batch_params, [{**one, "type": "STOP_MARKET"}])


# ----------------------------------------------------------------------------------- filter_args


def test_filter_args_for_orders_and_legs() -> None:
    params = spot_order(
        SYM,
        "BUY",
        "STOP_LOSS_LIMIT",
        quantity="1",
        price="89",
        stop_price="90",
        time_in_force="GTC",
        iceberg_qty="0.5",
    )
    args = filter_args(params)
    assert args == {
        "side": "BUY",
        "type": "STOP_LOSS_LIMIT",
        "price": Decimal("89"),
        "quantity": Decimal("1"),
        "quote_order_qty": None,
        "stop_price": Decimal("90"),
        "iceberg_qty": Decimal("0.5"),
        "trailing_delta": None,
        "reduce_only": False,
        "close_position": False,
    }
    oco = oco_params(SYM, "SELL", "2", above=TP, below=Leg("STOP_LOSS", trailing_delta=100))
    below = filter_args(oco, "below")
    assert (below["side"], below["type"], below["quantity"], below["trailing_delta"]) == (
        "SELL",
        "STOP_LOSS",
        2,
        100,
    )
    working = Leg("LIMIT", side="BUY", quantity="1", price="100", time_in_force="GTC")
    otoco = otoco_params(SYM, working, "SELL", "3", TP, SL)
    above = filter_args(otoco, "pendingAbove")
    assert (above["side"], above["quantity"], above["price"]) == ("SELL", 3, Decimal("110"))
    assert filter_args(otoco, "working")["side"] == "BUY"
    algo = futures_conditional(SYM, "SELL", "STOP_MARKET", trigger_price="58000", close_position=True)
    assert filter_args(algo)["stop_price"] == Decimal("58000")
    assert filter_args(algo)["close_position"] is True


# ----------------------------------------------------------------------------------- reconciliation


class FakeExchange:
    """An exchange seen through send/query callables, with a controllable clock (ms)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.orders: dict[str, str] = {}
        self.sends = 0
        self.queries = 0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds * 1000


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_reconcile_finds_the_order_and_never_resends() -> None:
    ex = FakeExchange()

    async def send() -> str:
        ex.sends += 1
        ex.orders["c1"] = "placed"  # executed, but the answer is lost
        raise UnknownOutcome("timeout", endpoint="/api/v3/order")

    async def query() -> str:
        ex.queries += 1
        if ex.queries < 3:
            raise NetworkError("unreachable")  # retried with backoff
        return ex.orders["c1"]

    result = run(
        place_with_reconciliation(
            send,
            query,
            client_order_id="c1",
            now_ms=lambda: ex.now,
            recv_window_ms=5000,
            policy=ReconcilePolicy(),
            on_reconciled=lambda order: order + " (reconciled)",
            sleep=ex.sleep,
        )
    )
    assert result == "placed (reconciled)"
    assert ex.sends == 1
    assert ex.sleeps == [0.2, 0.4]  # the backoff doubles


def test_reconcile_resends_only_after_the_window_has_passed() -> None:
    ex = FakeExchange()
    sent_at: list[float] = []

    async def send() -> str:
        ex.sends += 1
        sent_at.append(ex.now)
        if ex.sends == 1:
            raise UnknownOutcome("lost before reaching the engine")  # never executed
        ex.orders["c1"] = "placed"
        return "placed"

    query_times: list[float] = []

    async def query() -> str:
        query_times.append(ex.now)
        if "c1" not in ex.orders:
            raise NoSuchOrder("Order does not exist.", code=-2013)
        return ex.orders["c1"]

    policy = ReconcilePolicy(clock_margin_ms=1000)
    result = run(
        place_with_reconciliation(
            send,
            query,
            client_order_id="c1",
            now_ms=lambda: ex.now,
            recv_window_ms=5000,
            policy=policy,
            sleep=ex.sleep,
        )
    )
    assert result == "placed"
    assert ex.sends == 2
    # The first "not found" came inside the window: wait, ask again, and only then resend.
    assert len(query_times) == 2
    assert query_times[1] >= sent_at[0] + 5000 + 1000
    assert sent_at[1] >= query_times[1]


def test_reconcile_gives_up_on_other_errors_and_after_max_resends() -> None:
    ex = FakeExchange()

    async def send() -> str:
        ex.sends += 1
        raise UnknownOutcome("503")

    async def rejected_query() -> str:
        raise OrderRejected("rejected", code=-2010)

    with pytest.raises(OrderRejected):
        run(
            place_with_reconciliation(
                send,
                rejected_query,
                client_order_id="c",
                now_ms=lambda: ex.now,
                recv_window_ms=5000,
                policy=ReconcilePolicy(),
                sleep=ex.sleep,
            )
        )
    assert ex.sends == 1

    async def absent() -> str:
        raise NoSuchOrder("Order does not exist.", code=-2013)

    ex.sends = 0
    with pytest.raises(UnknownOutcome):
        run(
            place_with_reconciliation(
                send,
                absent,
                client_order_id="c",
                now_ms=lambda: ex.now,
                recv_window_ms=5000,
                policy=ReconcilePolicy(max_resends=2),
                sleep=ex.sleep,
            )
        )
    assert ex.sends == 3  # the first send and two resends, each after a confirmed absence

    async def unreachable() -> str:
        raise NetworkError("down")

    ex.sends = 0
    with pytest.raises(UnknownOutcome):
        run(
            place_with_reconciliation(
                send,
                unreachable,
                client_order_id="c",
                now_ms=lambda: ex.now,
                recv_window_ms=5000,
                policy=ReconcilePolicy(give_up_after_s=0.0),
                sleep=ex.sleep,
            )
        )
    assert ex.sends == 1
