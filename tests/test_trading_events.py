"""User-data events: spot WebSocket API frames and USD-M listenKey stream events.

Payloads follow the examples of Binance's user-data stream documentation (spot and USD-M),
plus one USD-M frame as it was received live, with the extra keys current servers send.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tickbook._types import Market
from tickbook.trading.events import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    BalanceUpdate,
    EventStreamTerminated,
    ExecutionReport,
    ExternalLockUpdate,
    ListenKeyExpired,
    ListStatus,
    MarginCall,
    OrderTradeUpdate,
    OutboundAccountPosition,
    ServerShutdown,
    TradeLite,
    UnknownEvent,
    decode_spot_frame,
    decode_user_event,
)


def frame(event: dict[str, Any], subscription_id: int = 0) -> bytes:
    return json.dumps({"subscriptionId": subscription_id, "event": event}).encode()


NEW_REPORT: dict[str, Any] = {
    "e": "executionReport",
    "E": 1499405658658,
    "s": "ETHBTC",
    "c": "mUvoqJxFIILMdfAW5iGSOW",
    "S": "BUY",
    "o": "LIMIT",
    "f": "GTC",
    "q": "1.00000000",
    "p": "0.10264410",
    "P": "0.00000000",
    "F": "0.00000000",
    "g": -1,
    "C": "",
    "x": "NEW",
    "X": "NEW",
    "r": "NONE",
    "i": 4293153,
    "l": "0.00000000",
    "z": "0.00000000",
    "L": "0.00000000",
    "n": "0",
    "N": None,
    "T": 1499405658657,
    "t": -1,
    "v": 3,
    "I": 8641984,
    "w": True,
    "m": False,
    "M": False,
    "O": 1499405658657,
    "Z": "0.00000000",
    "Y": "0.00000000",
    "Q": "0.00000000",
    "W": 1499405658657,
    "V": "NONE",
}


# ================================================================================== spot


def test_execution_report_new() -> None:
    event = decode_user_event(frame(NEW_REPORT))
    assert isinstance(event, ExecutionReport)
    assert event.event_type == "executionReport"
    assert event.symbol == "ETHBTC"
    assert event.order_id == 4293153
    assert event.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"
    assert event.order_client_id == "mUvoqJxFIILMdfAW5iGSOW"  # "C" is empty on a NEW
    assert event.price == Decimal("0.10264410")
    assert str(event.quantity) == "1.00000000"
    assert event.commission_asset is None
    assert event.order_list_id == -1
    assert event.trade_id == -1
    assert event.is_working is True
    assert event.working_time == 1499405658657
    assert event.self_trade_prevention_mode == "NONE"
    assert event.average_price is None
    assert not event.is_trade


def test_execution_report_cancel_ids() -> None:
    # Spec 8.1: on a cancel, "c" is the cancel request's id and "C" the order's.
    cancel = dict(
        NEW_REPORT, c="cancelMyOrder1", C="mUvoqJxFIILMdfAW5iGSOW", x="CANCELED", X="CANCELED", w=False
    )
    event = decode_user_event(frame(cancel))
    assert isinstance(event, ExecutionReport)
    assert event.client_order_id == "cancelMyOrder1"
    assert event.orig_client_order_id == "mUvoqJxFIILMdfAW5iGSOW"
    assert event.order_client_id == "mUvoqJxFIILMdfAW5iGSOW"
    # A cancel the exchange made (no cancel request): "C" empty, "c" is still the order's.
    expired = dict(NEW_REPORT, C="", x="CANCELED", X="CANCELED")
    event = decode_user_event(frame(expired))
    assert isinstance(event, ExecutionReport)
    assert event.order_client_id == "mUvoqJxFIILMdfAW5iGSOW"
    # Older payloads sent null for "C".
    legacy = dict(NEW_REPORT, C=None, x="CANCELED", X="CANCELED")
    event = decode_user_event(frame(legacy))
    assert isinstance(event, ExecutionReport)
    assert event.order_client_id == "mUvoqJxFIILMdfAW5iGSOW"
    # Only a CANCELED execution uses "C".
    other = dict(NEW_REPORT, C="something-else", x="TRADE", X="PARTIALLY_FILLED")
    event = decode_user_event(frame(other))
    assert isinstance(event, ExecutionReport)
    assert event.order_client_id == "mUvoqJxFIILMdfAW5iGSOW"


def test_execution_report_fill_exact_decimals() -> None:
    fill = dict(
        NEW_REPORT,
        x="TRADE",
        X="PARTIALLY_FILLED",
        l="0.40000000",
        z="0.40000000",
        L="0.10264410",
        n="0.00000041",
        N="BNB",
        t=12345,
        m=True,
        Z="0.04105764",
        Y="0.04105764",
    )
    event = decode_user_event(frame(fill))
    assert isinstance(event, ExecutionReport)
    assert event.is_trade
    assert event.last_qty * event.last_price == event.last_quote_qty
    assert event.average_price == Decimal("0.1026441")
    assert event.commission == Decimal("0.00000041")
    assert event.commission_asset == "BNB"
    assert event.trade_id == 12345
    assert event.is_maker is True


def test_execution_report_conditional_fields_and_unknown_keys() -> None:
    report = dict(
        NEW_REPORT,
        o="STOP_LOSS_LIMIT",
        d=100,
        D=1668680518494,
        j=1,
        J=1000000,
        gP="PRIMARY_PEG",
        gOT="PRICE_LEVEL",
        gOV=5,
        gp="87523.83710000",
        eR="INSUFFICIENT_LIQUIDITY",
        A="3.000000",
        B="3.000000",
        u=1,
        U=37,
        Cs="BTCUSDT",
        pl="2.123456",
        pL="0.10000001",
        pY="0.21234562",
        uS=True,
        k="SOR",
        b="ONE_PARTY_TRADE_REPORT",
        a=1234,
        someKeyAddedLater={"x": [1]},
    )
    event = decode_user_event(frame(report))
    assert isinstance(event, ExecutionReport)
    assert event.trailing_delta == 100
    assert event.trailing_time == 1668680518494
    assert event.strategy_type == 1000000
    assert event.pegged_price == Decimal("87523.83710000")
    assert event.peg_offset_value == 5
    assert event.expiry_reason == "INSUFFICIENT_LIQUIDITY"
    assert event.prevented_quantity == Decimal("3.000000")
    assert event.counter_order_id == 37
    assert event.counter_symbol == "BTCUSDT"
    assert event.prevented_execution_price == Decimal("0.10000001")
    assert event.used_sor is True
    assert event.working_floor == "SOR"
    assert event.allocation_id == 1234


def test_spot_account_events() -> None:
    position = decode_user_event(
        frame(
            {
                "e": "outboundAccountPosition",
                "E": 1564034571105,
                "u": 1564034571073,
                "B": [
                    {"a": "ETH", "f": "10000.000000", "l": "0.000000"},
                    {"a": "BTC", "f": "1.5", "l": "0.25"},
                ],
            }
        )
    )
    assert isinstance(position, OutboundAccountPosition)
    assert position.last_update_time == 1564034571073
    assert [(b.asset, b.free, b.locked) for b in position.balances] == [
        ("ETH", Decimal("10000.000000"), Decimal("0.000000")),
        ("BTC", Decimal("1.5"), Decimal("0.25")),
    ]
    balance = decode_user_event(
        frame({"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100.00000000", "T": 1573200697068})
    )
    assert isinstance(balance, BalanceUpdate)
    assert balance.delta == Decimal("100.00000000")
    assert balance.clear_time == 1573200697068
    lock = decode_user_event(
        frame(
            {
                "e": "externalLockUpdate",
                "E": 1581557507324,
                "a": "NEO",
                "d": "10.00000000",
                "T": 1581557507268,
            }
        )
    )
    assert isinstance(lock, ExternalLockUpdate)
    assert (lock.asset, lock.delta, lock.transaction_time) == ("NEO", Decimal("10.00000000"), 1581557507268)


def test_list_status() -> None:
    event = decode_user_event(
        frame(
            {
                "e": "listStatus",
                "E": 1564035303637,
                "s": "ETHBTC",
                "g": 2,
                "c": "OCO",
                "l": "EXEC_STARTED",
                "L": "EXECUTING",
                "r": "NONE",
                "C": "F4QN4G8DlFATFlIUQ0cjdD",
                "T": 1564035303625,
                "O": [
                    {"s": "ETHBTC", "i": 17, "c": "AJYsMjErWJesZvqlJCTUgL"},
                    {"s": "ETHBTC", "i": 18, "c": "bfYPSQdLoqAAVlsPy2g0ew"},
                ],
            }
        )
    )
    assert isinstance(event, ListStatus)
    assert event.order_list_id == 2
    assert event.contingency_type == "OCO"
    assert event.list_status_type == "EXEC_STARTED"
    assert event.list_order_status == "EXECUTING"
    assert event.list_client_order_id == "F4QN4G8DlFATFlIUQ0cjdD"
    assert [(o.order_id, o.client_order_id) for o in event.orders] == [
        (17, "AJYsMjErWJesZvqlJCTUgL"),
        (18, "bfYPSQdLoqAAVlsPy2g0ew"),
    ]


def test_stream_control_events_with_and_without_subscription_id() -> None:
    sub_id, terminated = decode_spot_frame(frame({"e": "eventStreamTerminated", "E": 1728973001334}, 3))
    assert sub_id == 3
    assert isinstance(terminated, EventStreamTerminated)
    assert terminated.event_time == 1728973001334
    sub_id, shutdown = decode_spot_frame(b'{"event": {"e": "serverShutdown", "E": 1770123456789}}')
    assert sub_id is None
    assert isinstance(shutdown, ServerShutdown)
    assert shutdown.event_time == 1770123456789


def test_spot_bare_events_and_mappings() -> None:
    # The local exchange hands events over as wire dicts, not wrapped in a frame.
    from_dict = decode_user_event(NEW_REPORT, Market.SPOT)
    assert isinstance(from_dict, ExecutionReport)
    from_bare_bytes = decode_user_event(json.dumps(NEW_REPORT).encode(), "spot")
    assert from_bare_bytes == from_dict
    from_frame_dict = decode_spot_frame({"subscriptionId": 9, "event": NEW_REPORT})
    assert from_frame_dict == (9, from_dict)
    assert decode_spot_frame(json.dumps({"subscriptionId": 9, "event": NEW_REPORT})) == (9, from_dict)


def test_unknown_spot_event_is_kept() -> None:
    raw = {"e": "somethingNew", "E": 1, "x": {"nested": True}}
    sub_id, event = decode_spot_frame(frame(raw, 5))
    assert sub_id == 5
    assert event == UnknownEvent("somethingNew", raw)
    assert decode_user_event(raw) == UnknownEvent("somethingNew", raw)
    assert decode_user_event(json.dumps(raw)) == UnknownEvent("somethingNew", raw)
    no_type = decode_user_event(frame({"E": 1}))
    assert no_type == UnknownEvent("", {"E": 1})


def test_malformed_known_event_is_an_error() -> None:
    broken = dict(NEW_REPORT)
    del broken["i"]  # orderId
    with pytest.raises(msgspec.ValidationError, match="`i`"):
        decode_user_event(frame(broken))
    with pytest.raises(msgspec.ValidationError):
        decode_user_event(dict(NEW_REPORT, q="not a number"))
    with pytest.raises(msgspec.DecodeError):
        decode_user_event(b"{not json")


# ================================================================================= USD-M

ORDER_TRADE_UPDATE: dict[str, Any] = {
    "e": "ORDER_TRADE_UPDATE",
    "E": 1568879465651,
    "T": 1568879465650,
    "o": {
        "s": "BTCUSDT",
        "c": "TEST",
        "S": "SELL",
        "o": "TRAILING_STOP_MARKET",
        "f": "GTC",
        "q": "0.001",
        "p": "0",
        "ap": "0",
        "sp": "7103.04",
        "x": "NEW",
        "X": "NEW",
        "i": 8886774,
        "l": "0",
        "z": "0",
        "L": "0",
        "N": "USDT",
        "n": "0",
        "T": 1568879465650,
        "t": 0,
        "b": "0",
        "a": "9.91",
        "m": False,
        "R": False,
        "wt": "CONTRACT_PRICE",
        "ot": "TRAILING_STOP_MARKET",
        "ps": "LONG",
        "cp": False,
        "AP": "7476.89",
        "cr": "5.0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "rp": "0",
        "V": "EXPIRE_TAKER",
        "pm": "OPPONENT",
        "gtd": 0,
        "er": "0",
    },
}


def test_order_trade_update() -> None:
    event = decode_user_event(json.dumps(ORDER_TRADE_UPDATE).encode(), Market.USDM)
    assert isinstance(event, OrderTradeUpdate)
    assert event.event_type == "ORDER_TRADE_UPDATE"
    assert (event.event_time, event.transaction_time) == (1568879465651, 1568879465650)
    order = event.order
    assert order.order_id == 8886774
    assert order.client_order_id == "TEST"
    assert order.original_order_type == "TRAILING_STOP_MARKET"
    assert order.stop_price == Decimal("7103.04")
    assert order.activation_price == Decimal("7476.89")
    assert order.callback_rate == Decimal("5.0")
    assert order.asks_notional == Decimal("9.91")
    assert order.position_side == "LONG"
    assert order.expiry_reason == "0"
    assert order.price_match == "OPPONENT"
    assert not order.is_liquidation


def test_order_trade_update_as_received_live() -> None:
    raw = (
        b'{"e":"ORDER_TRADE_UPDATE","T":1753672801773,"E":1753672801777,"o":{"s":"BTCUSDT",'
        b'"c":"O-20250728-032001-LIVE-000-7","S":"SELL","o":"LIMIT","f":"GTC","q":"0.046",'
        b'"p":"119394.4","ap":"0","sp":"0","x":"NEW","X":"NEW","i":5487238883,"l":"0","z":"0",'
        b'"L":"0","n":"0","N":"USDT","T":1753672801773,"t":0,"b":"0","a":"53414.6697","m":false,'
        b'"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0","pP":false,'
        b'"si":0,"ss":0,"V":"EXPIRE_MAKER","pm":"NONE","gtd":0}}'
    )
    event = decode_user_event(raw, "usdm")
    assert isinstance(event, OrderTradeUpdate)
    assert event.order.price * event.order.quantity == Decimal("5492.1424")
    assert event.order.asks_notional == Decimal("53414.6697")
    assert event.order.expiry_reason is None  # sent from 2025-10-23 on


def test_liquidation_order_is_flagged() -> None:
    data = json.loads(json.dumps(ORDER_TRADE_UPDATE))
    data["o"]["c"] = "autoclose-1568879465650"
    event = decode_user_event(data, Market.USDM)
    assert isinstance(event, OrderTradeUpdate)
    assert event.order.is_liquidation


def test_account_update() -> None:
    event = decode_user_event(
        {
            "e": "ACCOUNT_UPDATE",
            "E": 1564745798939,
            "T": 1564745798938,
            "a": {
                "m": "ORDER",
                "B": [
                    {"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"},
                    {"a": "BUSD", "wb": "1.00000000", "cw": "0.00000000", "bc": "-49.12345678"},
                ],
                "P": [
                    {
                        "s": "BTCUSDT",
                        "pa": "0",
                        "ep": "0.00000",
                        "bep": "0",
                        "cr": "200",
                        "up": "0",
                        "mt": "isolated",
                        "iw": "0.00000000",
                        "ps": "BOTH",
                    },
                    {
                        "s": "BTCUSDT",
                        "pa": "20",
                        "ep": "6563.66500",
                        "bep": "6563.6",
                        "cr": "0",
                        "up": "2850.21200",
                        "mt": "isolated",
                        "iw": "13200.70726908",
                        "ps": "LONG",
                    },
                ],
            },
        },
        Market.USDM,
    )
    assert isinstance(event, AccountUpdate)
    assert event.data.reason == "ORDER"
    assert event.data.balances[0].wallet_balance == Decimal("122624.12345678")
    assert event.data.balances[1].balance_change == Decimal("-49.12345678")
    long = event.data.positions[1]
    assert long.position_side == "LONG"
    assert long.position_amount == Decimal("20")
    assert long.unrealized_pnl == Decimal("2850.21200")
    assert long.isolated_wallet == Decimal("13200.70726908")


def test_funding_fee_account_update_without_positions() -> None:
    event = decode_user_event(
        b'{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"FUNDING_FEE","B":[{"a":"USDT","wb":"10.5","cw":"10.5"}]}}',
        Market.USDM,
    )
    assert isinstance(event, AccountUpdate)
    assert event.data.positions == ()
    assert event.data.balances[0].balance_change is None


ALGO_UPDATE: dict[str, Any] = {
    "e": "ALGO_UPDATE",
    "T": 1750515742297,
    "E": 1750515742303,
    "o": {
        "caid": "Q5xaq5EGKgXXa0fD7fs0Ip",
        "aid": 2148719,
        "at": "CONDITIONAL",
        "o": "TAKE_PROFIT",
        "s": "BNBUSDT",
        "S": "SELL",
        "ps": "BOTH",
        "f": "GTC",
        "q": "0.01",
        "X": "CANCELED",
        "ai": "",
        "ap": "0.00000",
        "aq": "0.00000",
        "act": "0",
        "tp": "750",
        "p": "750",
        "V": "EXPIRE_MAKER",
        "wt": "CONTRACT_PRICE",
        "pm": "NONE",
        "cp": False,
        "pP": False,
        "R": False,
        "tt": 0,
        "gtd": 0,
        "rm": "Reduce Only reject",
    },
}


def test_algo_update() -> None:
    event = decode_user_event(json.dumps(ALGO_UPDATE), Market.USDM)
    assert isinstance(event, AlgoUpdate)
    order = event.order
    assert order.algo_id == 2148719
    assert order.client_algo_id == "Q5xaq5EGKgXXa0fD7fs0Ip"
    assert order.algo_status == "CANCELED"
    assert order.trigger_price == Decimal("750")
    assert order.actual_order_id is None  # "" before triggering
    assert order.actual_avg_price == Decimal("0.00000")
    assert order.fail_reason == "Reduce Only reject"
    triggered = json.loads(json.dumps(ALGO_UPDATE))
    triggered["o"].update({"X": "TRIGGERED", "ai": "8886774", "ap": "750.10", "aq": "0.01", "act": "LIMIT"})
    event = decode_user_event(triggered, Market.USDM)
    assert isinstance(event, AlgoUpdate)
    assert event.order.actual_order_id == 8886774
    assert event.order.actual_qty == Decimal("0.01")


def test_trade_lite() -> None:
    event = decode_user_event(
        b'{"e":"TRADE_LITE","E":1721895408092,"T":1721895408214,"s":"BTCUSDT","q":"0.001","p":"0",'
        b'"m":false,"c":"z8hcUoOsqEdKMeKPSABslD","S":"BUY","L":"64089.20","l":"0.040","t":109100866,"i":8886774}',
        Market.USDM,
    )
    assert isinstance(event, TradeLite)
    assert event.last_price == Decimal("64089.20")
    assert event.last_qty == Decimal("0.040")
    assert event.order_id == 8886774
    assert event.client_order_id == "z8hcUoOsqEdKMeKPSABslD"


def test_margin_call() -> None:
    event = decode_user_event(
        {
            "e": "MARGIN_CALL",
            "E": 1587727187525,
            "cw": "3.16812045",
            "p": [
                {
                    "s": "ETHUSDT",
                    "ps": "LONG",
                    "pa": "1.327",
                    "mt": "CROSSED",
                    "iw": "0",
                    "mp": "187.17127",
                    "up": "-1.166074",
                    "mm": "1.614445",
                }
            ],
        },
        Market.USDM,
    )
    assert isinstance(event, MarginCall)
    assert event.cross_wallet_balance == Decimal("3.16812045")
    assert event.positions[0].maintenance_margin == Decimal("1.614445")


def test_listen_key_expired_both_time_forms() -> None:
    key = "OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8"
    now = decode_user_event({"e": "listenKeyExpired", "E": 1699596037418, "listenKey": key}, Market.USDM)
    assert isinstance(now, ListenKeyExpired)
    assert now.listen_key == key
    assert now.event_time_ms == 1699596037418
    old = decode_user_event(b'{"e":"listenKeyExpired","E":"1576653824250"}', Market.USDM)
    assert isinstance(old, ListenKeyExpired)
    assert old.event_time_ms == 1576653824250


def test_account_config_update() -> None:
    leverage = decode_user_event(
        b'{"e":"ACCOUNT_CONFIG_UPDATE","E":1611646737479,"T":1611646737476,"ac":{"s":"BTCUSDT","l":25}}',
        Market.USDM,
    )
    assert isinstance(leverage, AccountConfigUpdate)
    assert leverage.leverage is not None
    assert (leverage.leverage.symbol, leverage.leverage.leverage) == ("BTCUSDT", 25)
    assert leverage.multi_assets is None
    mode = decode_user_event(
        b'{"e":"ACCOUNT_CONFIG_UPDATE","E":1611646737479,"T":1611646737476,"ai":{"j":true}}', Market.USDM
    )
    assert isinstance(mode, AccountConfigUpdate)
    assert mode.multi_assets is not None
    assert mode.multi_assets.multi_assets_mode is True


def test_combined_stream_wrapper() -> None:
    wrapped = {"stream": "listenKeyXYZ", "data": ORDER_TRADE_UPDATE}
    from_bytes = decode_user_event(json.dumps(wrapped).encode(), Market.USDM)
    from_dict = decode_user_event(wrapped, Market.USDM)
    assert isinstance(from_bytes, OrderTradeUpdate)
    assert from_bytes == from_dict == decode_user_event(ORDER_TRADE_UPDATE, Market.USDM)


def test_unknown_futures_events_are_kept() -> None:
    grid = {"e": "GRID_UPDATE", "T": 1669262908216, "E": 1669262908218, "gu": {"si": 176057, "st": "GRID"}}
    assert decode_user_event(json.dumps(grid), Market.USDM) == UnknownEvent("GRID_UPDATE", grid)
    assert decode_user_event(grid, Market.USDM) == UnknownEvent("GRID_UPDATE", grid)
    combined = json.dumps({"stream": "k", "data": grid})
    assert decode_user_event(combined, Market.USDM) == UnknownEvent("GRID_UPDATE", grid)
    assert decode_user_event(grid, Market.COINM) == UnknownEvent("GRID_UPDATE", grid)


def test_malformed_futures_event_is_an_error() -> None:
    broken = json.loads(json.dumps(ORDER_TRADE_UPDATE))
    del broken["o"]["i"]
    with pytest.raises(msgspec.ValidationError):
        decode_user_event(broken, Market.USDM)
    with pytest.raises(msgspec.ValidationError):
        decode_user_event(json.dumps(broken).encode(), Market.USDM)


def test_spot_events_are_not_futures_events() -> None:
    # A spot event on a futures stream is unknown there, not silently misread.
    event = decode_user_event(NEW_REPORT, Market.USDM)
    assert isinstance(event, UnknownEvent)
    assert event.event_type == "executionReport"


def test_events_are_frozen() -> None:
    event = decode_user_event(NEW_REPORT)
    assert isinstance(event, ExecutionReport)
    with pytest.raises(AttributeError):
        event.order_id = 1  # type: ignore[misc]
