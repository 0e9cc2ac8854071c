"""The order tracker (``tickbook.trading.tracker``): answers and user-data events merged per order.

Events and answers are built as the exchange's wire JSON (field lists of spec sections 6 and
8, values of our own) and decoded by ``tickbook.trading.events`` / ``models``, so the tracker
is tested on exactly what the stream and the REST client hand it. Expected values are
written out or computed here from the fills, never read back from the tracker's own code.
"""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tickbook import Market
from tickbook.trading import models as md
from tickbook.trading.events import decode_user_event
from tickbook.trading.tracker import AlgoState, ListState, OrderState, OrderTracker

D = Decimal
T0 = 1_760_000_000_000


# --------------------------------------------------------------------------- wire builders


def execution_report(**over: Any) -> dict[str, Any]:
    """A spot ``executionReport`` (spec 8.1), NEW by default."""
    event = {
        "e": "executionReport",
        "E": T0 + 1,
        "s": "BTCUSDT",
        "c": "web_1",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1.00000000",
        "p": "100.00000000",
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": "NEW",
        "X": "NEW",
        "r": "NONE",
        "i": 42,
        "l": "0.00000000",
        "z": "0.00000000",
        "L": "0.00000000",
        "n": "0",
        "N": None,
        "T": T0,
        "t": -1,
        "I": 1,
        "w": True,
        "m": False,
        "M": False,
        "O": T0,
        "Z": "0.00000000",
        "Y": "0.00000000",
        "Q": "0.00000000",
        "W": T0,
        "V": "EXPIRE_MAKER",
    }
    event.update(over)
    return event


def spot_event(**over: Any) -> Any:
    frame = {"subscriptionId": 0, "event": execution_report(**over)}
    return decode_user_event(msgspec.json.encode(frame), Market.SPOT)


def futures_event(raw: dict[str, Any]) -> Any:
    return decode_user_event(msgspec.json.encode(raw), Market.USDM)


def order_trade_update(E: int, **order: Any) -> Any:
    o = {
        "s": "BTCUSDT",
        "c": "fut_1",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "3",
        "p": "100",
        "ap": "0",
        "sp": "0",
        "x": "NEW",
        "X": "NEW",
        "i": 7,
        "l": "0",
        "z": "0",
        "L": "0",
        "N": "USDT",
        "n": "0",
        "T": T0,
        "t": 0,
        "b": "0",
        "a": "0",
        "m": False,
        "R": False,
        "wt": "CONTRACT_PRICE",
        "ot": "LIMIT",
        "ps": "BOTH",
        "cp": False,
        "rp": "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "gtd": 0,
        "er": "0",
    }
    o.update(order)
    return futures_event({"e": "ORDER_TRADE_UPDATE", "E": E, "T": o["T"], "o": o})


def spot_order(**over: Any) -> md.SpotOrder:
    body = {"symbol": "BTCUSDT", "orderId": 42, "orderListId": -1, "clientOrderId": "web_1"}
    body.update(over)
    return md.decode(msgspec.json.encode(body), md.SpotOrder)


def futures_order(**over: Any) -> md.FuturesOrder:
    body = {
        "symbol": "BTCUSDT",
        "orderId": 7,
        "clientOrderId": "fut_1",
        "status": "NEW",
        "price": "100",
        "origQty": "3",
        "executedQty": "0",
        "type": "LIMIT",
        "side": "BUY",
        "timeInForce": "GTC",
        "positionSide": "BOTH",
        "updateTime": T0,
    }
    body.update(over)
    return md.decode(msgspec.json.encode(body), md.FuturesOrder)


def trade(
    n: int, qty: str, price: str, z: str, Z: str, status: str, t: int | None = None, **over: Any
) -> Any:
    """The ``n``-th TRADE executionReport of order 42 (transaction time T0 + n)."""
    fields = dict(
        E=T0 + n + 1,
        x="TRADE",
        X=status,
        l=qty,
        L=price,
        z=z,
        Z=Z,
        Y=str(D(qty) * D(price)),
        t=t if t is not None else 1000 + n,
        I=10 + n,
        T=T0 + n,
        n="0.0001",
        N="BNB",
        m=True,
        w=status != "FILLED",
    )
    fields.update(over)
    return spot_event(**fields)


# ---------------------------------------------------------------------------------- spot


def test_spot_lifecycle_partial_fills_exact_average() -> None:
    tracker = OrderTracker()
    seen: list[tuple[str | None, Decimal]] = []
    tracker.add_callback(lambda s: seen.append((s.status, s.executed_qty)))
    tracker.on_event(spot_event())
    fills = [("0.10000000", "100.01000000"), ("0.20000000", "100.02000000"), ("0.70000000", "99.99000000")]
    z = Z = D(0)
    for n, (qty, price) in enumerate(fills, start=1):
        z += D(qty)
        Z += D(qty) * D(price)
        status = "FILLED" if n == len(fills) else "PARTIALLY_FILLED"
        tracker.on_event(trade(n, qty, price, str(z), str(Z), status))
    state = tracker.get(42)
    assert state is not None
    assert state.status == "FILLED"
    assert state.is_final
    assert not state.is_open
    assert state.executed_qty == D("1") == state.orig_qty
    assert state.cum_quote == D("0.10000000") * D("100.01") + D("0.2") * D("100.02") + D("0.7") * D("99.99")
    assert state.cum_quote == D("99.998")
    # Z / z, exactly: no float anywhere.
    assert state.avg_price == D("99.998") / D("1")
    assert [(f.trade_id, f.qty, f.price, f.maker) for f in state.fills] == [
        (1001, D("0.1"), D("100.01"), True),
        (1002, D("0.2"), D("100.02"), True),
        (1003, D("0.7"), D("99.99"), True),
    ]
    assert state.fills[0].commission == D("0.0001")
    assert state.fills[0].commission_asset == "BNB"
    assert state.update_time == T0 + 3
    assert state.created_time == T0
    assert seen == [
        ("NEW", D(0)),
        ("PARTIALLY_FILLED", D("0.1")),
        ("PARTIALLY_FILLED", D("0.3")),
        ("FILLED", D("1")),
    ]
    assert tracker.open_orders() == []


def test_average_of_non_terminating_ratio_is_decimal_division() -> None:
    tracker = OrderTracker()
    tracker.on_event(trade(1, "3", "0.1", "3", "0.3", "PARTIALLY_FILLED"))
    tracker.on_event(trade(2, "0", "0", "3", "1", "PARTIALLY_FILLED", t=-1))
    state = tracker.get(42)
    assert state is not None
    assert state.avg_price == D(1) / D(3)
    assert isinstance(state.avg_price, Decimal)


def test_cancel_report_keeps_the_orders_own_client_id() -> None:
    """Spec 8.1: on CANCELED, ``c`` is the cancel request's id and ``C`` the order's."""
    tracker = OrderTracker()
    tracker.on_event(spot_event(c="my_order"))
    tracker.on_event(
        spot_event(c="cancel_req_9", C="my_order", x="CANCELED", X="CANCELED", T=T0 + 5, I=3, E=T0 + 6)
    )
    state = tracker.by_client_id("my_order")
    assert state is not None
    assert state.order_id == 42
    assert state.status == "CANCELED"
    assert state.client_order_id == "my_order"
    assert state.cancel_client_order_id == "cancel_req_9"
    assert tracker.by_client_id("cancel_req_9") is None


def test_cancel_report_seen_first_still_indexes_the_original_id() -> None:
    tracker = OrderTracker()
    tracker.on_event(spot_event(c="cxl", C="orig", x="CANCELED", X="CANCELED", T=T0 + 5, I=3))
    tracker.on_event(spot_event(c="orig"))  # the older NEW report, late
    state = tracker.by_client_id("orig")
    assert state is not None
    assert state.status == "CANCELED"
    assert state.cancel_client_order_id == "cxl"
    assert tracker.by_client_id("cxl") is None


def test_cancel_answer_uses_orig_client_order_id() -> None:
    """``DELETE /api/v3/order`` names the order in ``origClientOrderId`` (spec 6.1)."""
    tracker = OrderTracker()
    tracker.on_response(
        spot_order(
            clientOrderId="cancel_req",
            origClientOrderId="orig_id",
            status="CANCELED",
            executedQty="0.25000000",
            cummulativeQuoteQty="25.00000000",
            origQty="1.00000000",
            transactTime=T0 + 9,
        )
    )
    state = tracker.by_client_id("orig_id")
    assert state is not None
    assert state.cancel_client_order_id == "cancel_req"
    assert state.status == "CANCELED"
    assert state.avg_price == D(100)
    assert tracker.by_client_id("cancel_req") is None


def test_duplicate_events_change_nothing() -> None:
    tracker = OrderTracker()
    calls: list[OrderState] = []
    tracker.add_callback(calls.append)
    first = trade(1, "0.5", "100", "0.5", "50", "PARTIALLY_FILLED")
    assert tracker.apply(first)
    assert tracker.apply(first) == []
    assert tracker.apply(copy.deepcopy(first)) == []
    assert len(calls) == 1
    state = tracker.get(42)
    assert state is not None
    assert len(state.fills) == 1
    assert state.executed_qty == D("0.5")
    assert tracker.unchanged == 2


def test_older_event_after_newer_is_ignored() -> None:
    tracker = OrderTracker()
    tracker.on_event(trade(2, "0.5", "100", "1", "100", "FILLED"))
    tracker.on_event(trade(1, "0.5", "100", "0.5", "50", "PARTIALLY_FILLED"))
    tracker.on_event(spot_event())  # NEW, the oldest
    state = tracker.get(42)
    assert state is not None
    assert state.status == "FILLED"
    assert state.executed_qty == D(1)
    assert state.cum_quote == D(100)
    # The late reports still add their fill: fills are a set keyed by trade id.
    assert [f.trade_id for f in state.fills] == [1001, 1002]
    assert not state.is_working


def test_terminal_state_is_final_even_against_a_later_timestamp() -> None:
    tracker = OrderTracker()
    tracker.on_event(spot_event(x="CANCELED", X="CANCELED", T=T0 + 10, I=5))
    tracker.on_event(spot_event(x="NEW", X="NEW", T=T0 + 20, I=6))  # bogus: nothing follows a cancel
    state = tracker.get(42)
    assert state is not None
    assert state.status == "CANCELED"


def test_same_millisecond_ordered_by_status_then_quantity() -> None:
    tracker = OrderTracker()
    # A market order: NEW and its fills in one millisecond, delivered backwards.
    tracker.on_event(trade(0, "0.6", "100", "1", "100", "FILLED"))
    tracker.on_event(trade(0, "0.4", "100", "0.4", "40", "PARTIALLY_FILLED", t=999))
    tracker.on_event(spot_event(T=T0))
    state = tracker.get(42)
    assert state is not None
    assert state.status == "FILLED"
    assert state.executed_qty == D(1)


def test_events_before_the_answer() -> None:
    """The fill's report beats the placement answer; the ACK and RESULT change nothing back."""
    tracker = OrderTracker()
    tracker.on_event(spot_event())
    tracker.on_event(trade(1, "0.3", "100", "0.3", "30", "PARTIALLY_FILLED"))
    assert tracker.apply(spot_order(transactTime=T0)) == []  # ACK: nothing new
    tracker.on_response(
        spot_order(
            transactTime=T0,
            status="NEW",
            executedQty="0.00000000",
            cummulativeQuoteQty="0.00000000",
            origQty="1.00000000",
            price="100.00000000",
            type="LIMIT",
            side="BUY",
            timeInForce="GTC",
        )
    )
    state = tracker.get(42)
    assert state is not None
    assert state.status == "PARTIALLY_FILLED"
    assert state.executed_qty == D("0.3")
    assert state.cum_quote == D(30)


def test_answer_first_then_events() -> None:
    tracker = OrderTracker()
    changed = tracker.apply(spot_order(transactTime=T0))  # ACK
    assert [type(s) for s in changed] == [OrderState]
    state = tracker.get(42)
    assert state is not None
    assert state.as_dict()["status"] is None
    assert state.is_open
    assert tracker.open_orders() == [state]
    tracker.on_event(spot_event())
    tracker.on_event(trade(1, "1", "100", "1", "100", "FILLED"))
    assert state.status == "FILLED"
    assert tracker.open_orders() == []


def test_full_answer_fills_merge_with_report_fills() -> None:
    tracker = OrderTracker()
    full = spot_order(
        transactTime=T0,
        status="FILLED",
        type="MARKET",
        side="BUY",
        origQty="1.00000000",
        executedQty="1.00000000",
        cummulativeQuoteQty="100.50000000",
        fills=[
            {
                "price": "100.00000000",
                "qty": "0.5",
                "commission": "0.1",
                "commissionAsset": "USDT",
                "tradeId": 1,
            },
            {
                "price": "101.00000000",
                "qty": "0.5",
                "commission": "0.1",
                "commissionAsset": "USDT",
                "tradeId": 2,
            },
        ],
    )
    tracker.on_response(full)
    state = tracker.get(42)
    assert state is not None
    assert [f.time for f in state.fills] == [None, None]
    tracker.on_event(trade(0, "0.5", "100", "0.5", "50", "PARTIALLY_FILLED", t=1, o="MARKET"))
    tracker.on_event(trade(0, "0.5", "101", "1", "100.5", "FILLED", t=2, o="MARKET"))
    assert len(state.fills) == 2
    assert [f.time for f in state.fills] == [T0, T0]  # completed by the reports
    assert [f.commission for f in state.fills] == [D("0.1"), D("0.1")]  # kept from the answer
    assert state.avg_price == D("100.5")
    assert state.type == "MARKET"


def test_stale_query_answer_after_fill_is_ignored() -> None:
    tracker = OrderTracker()
    tracker.on_event(trade(3, "1", "100", "1", "100", "FILLED"))
    # A GET /api/v3/order sent before the fill, answered after it.
    tracker.on_response(
        spot_order(
            status="NEW", executedQty="0", cummulativeQuoteQty="0", updateTime=T0, time=T0, origQty="1"
        )
    )
    state = tracker.get(42)
    assert state is not None
    assert state.status == "FILLED"
    assert state.created_time == T0


def test_amend_keep_priority_answer_and_report_agree() -> None:
    tracker = OrderTracker()
    tracker.on_event(spot_event(q="2.00000000"))
    amend = md.decode(
        msgspec.json.encode(
            {
                "transactTime": T0 + 4,
                "executionId": 77,
                "amendedOrder": {
                    "symbol": "BTCUSDT",
                    "orderId": 42,
                    "orderListId": -1,
                    "origClientOrderId": "web_1",
                    "clientOrderId": "amend_req",
                    "price": "100.00000000",
                    "qty": "1.50000000",
                    "executedQty": "0.00000000",
                    "cumulativeQuoteQty": "0.00000000",
                    "status": "NEW",
                    "type": "LIMIT",
                    "side": "BUY",
                },
            }
        ),
        md.AmendKeepPriorityResponse,
    )
    tracker.on_response(amend)
    state = tracker.get(42)
    assert state is not None
    assert state.orig_qty == D("1.5")
    assert state.client_order_id == "web_1"
    assert tracker.apply(spot_event(x="REPLACED", q="1.50000000", T=T0 + 4, I=77)) == []


def test_cancel_replace_both_halves() -> None:
    tracker = OrderTracker()
    body = {
        "cancelResult": "SUCCESS",
        "newOrderResult": "SUCCESS",
        "cancelResponse": {
            "symbol": "BTCUSDT",
            "origClientOrderId": "old",
            "orderId": 42,
            "orderListId": -1,
            "clientOrderId": "cxl",
            "transactTime": T0 + 1,
            "price": "100",
            "origQty": "1",
            "executedQty": "0",
            "cummulativeQuoteQty": "0",
            "status": "CANCELED",
            "timeInForce": "GTC",
            "type": "LIMIT",
            "side": "BUY",
        },
        "newOrderResponse": {
            "symbol": "BTCUSDT",
            "orderId": 43,
            "orderListId": -1,
            "clientOrderId": "new",
            "transactTime": T0 + 1,
        },
    }
    tracker.on_response(md.decode(msgspec.json.encode(body), md.CancelReplaceResponse))
    old, new = tracker.by_client_id("old"), tracker.by_client_id("new")
    assert old is not None
    assert old.status == "CANCELED"
    assert old.order_id == 42
    assert new is not None
    assert new.order_id == 43
    assert new.is_open
    assert [s.order_id for s in tracker.open_orders()] == [43]


def test_client_id_reuse_prefers_the_open_order() -> None:
    tracker = OrderTracker()
    tracker.on_event(spot_event(i=1, c="again", x="CANCELED", X="CANCELED", T=T0 + 1, I=2))
    tracker.on_event(spot_event(i=2, c="again", T=T0 + 5, I=3))
    state = tracker.by_client_id("again")
    assert state is not None
    assert state.order_id == 2
    tracker.on_event(spot_event(i=2, c="x", C="again", x="CANCELED", X="CANCELED", T=T0 + 6, I=4))
    state = tracker.by_client_id("again")
    assert state is not None
    assert state.order_id == 2


def test_order_ids_repeat_across_symbols_and_markets() -> None:
    tracker = OrderTracker()
    tracker.on_event(spot_event(s="BTCUSDT", i=5))
    tracker.on_event(spot_event(s="ETHUSDT", i=5))
    tracker.on_event(order_trade_update(T0, i=5))
    with pytest.raises(LookupError):
        tracker.get(5)
    eth = tracker.get(5, symbol="ETHUSDT")
    assert eth is not None
    assert eth.symbol == "ETHUSDT"
    assert eth.market is Market.SPOT
    fut = tracker.get(5, market="usdm")
    assert fut is not None
    assert fut.market is Market.USDM
    assert tracker.get(5, "BTCUSDT", Market.SPOT) is not fut
    assert len(tracker.open_orders(symbol="BTCUSDT")) == 2
    assert len(tracker.open_orders(market="spot")) == 2
    assert tracker.get(999) is None


def test_callback_errors_are_counted_not_raised() -> None:
    tracker = OrderTracker()
    calls: list[int] = []

    def broken(state: OrderState) -> None:
        raise RuntimeError("boom")

    tracker.add_callback(broken)
    remove = tracker.add_callback(lambda s: calls.append(s.order_id))
    tracker.on_event(spot_event())
    assert tracker.callback_errors == 1
    assert calls == [42]
    remove()
    tracker.on_event(trade(1, "1", "100", "1", "100", "FILLED"))
    assert calls == [42]
    assert tracker.callback_errors == 2


def test_on_change_argument_and_ignored_events() -> None:
    calls: list[OrderState] = []
    tracker = OrderTracker(on_change=calls.append)
    balance = decode_user_event(
        msgspec.json.encode({"e": "outboundAccountPosition", "E": T0, "u": T0, "B": []}), Market.SPOT
    )
    assert tracker.apply(balance) == []
    tracker.on_event(spot_event())
    assert len(calls) == 1
    with pytest.raises(TypeError):
        tracker.on_response({"orderId": 1})


def test_forget_closed() -> None:
    tracker = OrderTracker()
    tracker.on_event(spot_event(i=1, c="a", x="CANCELED", X="CANCELED", T=T0 + 1, I=2))
    tracker.on_event(spot_event(i=2, c="b", T=T0 + 5, I=3))
    assert tracker.forget_closed(before_ms=T0) == 0
    assert tracker.forget_closed() == 1
    assert tracker.get(1) is None
    assert tracker.by_client_id("a") is None
    assert len(tracker) == 1
    assert [s.order_id for s in tracker] == [2]


# ------------------------------------------------------------------------------ order lists


def test_order_list_answer_and_list_status() -> None:
    tracker = OrderTracker()
    lists: list[ListState] = []
    tracker.add_list_callback(lists.append)
    leg = {"symbol": "BTCUSDT", "orderListId": 9, "transactTime": T0, "origQty": "1", "executedQty": "0"}
    answer = {
        "orderListId": 9,
        "contingencyType": "OCO",
        "listStatusType": "EXEC_STARTED",
        "listOrderStatus": "EXECUTING",
        "listClientOrderId": "list_1",
        "transactionTime": T0,
        "symbol": "BTCUSDT",
        "orders": [
            {"symbol": "BTCUSDT", "orderId": 10, "clientOrderId": "above"},
            {"symbol": "BTCUSDT", "orderId": 11, "clientOrderId": "below"},
        ],
        "orderReports": [
            {**leg, "orderId": 10, "clientOrderId": "above", "status": "NEW", "type": "LIMIT_MAKER"},
            {**leg, "orderId": 11, "clientOrderId": "below", "status": "NEW", "type": "STOP_LOSS"},
        ],
    }
    tracker.on_response(md.decode(msgspec.json.encode(answer), md.OrderList))
    state = tracker.order_list(9)
    assert state is not None
    assert state.order_ids == (10, 11)
    assert state.contingency_type == "OCO"
    above = tracker.by_client_id("above")
    assert above is not None
    assert above.order_list_id == 9
    assert above.type == "LIMIT_MAKER"

    def list_status(status_type: str, L: str, T: int, E: int) -> Any:
        raw = {
            "e": "listStatus",
            "E": E,
            "s": "BTCUSDT",
            "g": 9,
            "c": "OCO",
            "l": status_type,
            "L": L,
            "r": "NONE",
            "C": "list_1",
            "T": T,
            "O": [
                {"s": "BTCUSDT", "i": 10, "c": "above"},
                {"s": "BTCUSDT", "i": 11, "c": "below"},
            ],
        }
        return decode_user_event(msgspec.json.encode({"subscriptionId": 1, "event": raw}), Market.SPOT)

    tracker.on_event(list_status("ALL_DONE", "ALL_DONE", T0 + 3, T0 + 4))
    tracker.on_event(list_status("EXEC_STARTED", "EXECUTING", T0, T0 + 1))  # late, older
    assert state.list_order_status == "ALL_DONE"
    assert state.is_final
    assert lists[-1] is state
    assert len(lists) == 2


# ---------------------------------------------------------------------------------- USD-M


def test_futures_lifecycle_with_trade_lite_first() -> None:
    tracker = OrderTracker()
    tracker.on_response(futures_order())
    lite = futures_event(
        {
            "e": "TRADE_LITE",
            "E": T0 + 11,
            "T": T0 + 10,
            "s": "BTCUSDT",
            "q": "3",
            "p": "100",
            "m": True,
            "c": "fut_1",
            "S": "BUY",
            "L": "99.5",
            "l": "1",
            "t": 501,
            "i": 7,
        }
    )
    tracker.on_event(lite)
    state = tracker.get(7, market="usdm")
    assert state is not None
    assert state.status == "NEW"
    assert len(state.fills) == 1
    assert state.fills[0].commission is None
    tracker.on_event(
        order_trade_update(
            T0 + 12,
            x="TRADE",
            X="PARTIALLY_FILLED",
            l="1",
            L="99.5",
            z="1",
            ap="99.5",
            t=501,
            T=T0 + 10,
            n="0.02",
            m=True,
        )
    )
    assert len(state.fills) == 1
    assert state.fills[0].commission == D("0.02")
    tracker.on_event(
        order_trade_update(
            T0 + 21, x="TRADE", X="FILLED", l="2", L="100.25", z="3", ap="100", t=502, T=T0 + 20, n="0.04"
        )
    )
    assert state.status == "FILLED"
    assert state.executed_qty == D(3)
    assert state.avg_price == D(100)
    assert state.cum_quote == D("99.5") + D("200.5")
    # A late RESULT-style answer from before the fills changes nothing.
    assert tracker.apply(futures_order(status="NEW", updateTime=T0 + 1)) == []
    assert state.status == "FILLED"


def test_futures_answer_cum_quote_used_only_when_current() -> None:
    tracker = OrderTracker()
    tracker.on_response(
        futures_order(
            status="PARTIALLY_FILLED", executedQty="1", cumQuote="100", avgPrice="100", updateTime=T0 + 5
        )
    )
    state = tracker.get(7)
    assert state is not None
    assert state.cum_quote == D(100)
    assert state.avg_price == D(100)
    tracker.on_event(
        order_trade_update(T0 + 9, x="TRADE", X="FILLED", l="2", L="103", z="3", ap="102", t=9, T=T0 + 8)
    )
    # The answer's cumQuote is now stale and the fills cover only 2 of 3: unknown, but ap is current.
    assert state.as_dict()["cum_quote"] is None
    assert state.avg_price == D(102)


def test_algo_order_links_to_the_triggered_order() -> None:
    tracker = OrderTracker()
    algos: list[AlgoState] = []
    tracker.add_algo_callback(algos.append)
    answer = {
        "algoId": 2148719,
        "clientAlgoId": "algo_1",
        "algoType": "CONDITIONAL",
        "orderType": "STOP_MARKET",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "algoStatus": "NEW",
        "triggerPrice": "90",
        "price": "0",
        "actualOrderId": "",
        "createTime": T0,
        "updateTime": T0,
        "triggerTime": 0,
    }
    tracker.on_response(md.decode(msgspec.json.encode(answer), md.AlgoOrder))

    def algo_update(X: str, T: int, ai: str) -> Any:
        o = {
            "caid": "algo_1",
            "aid": 2148719,
            "at": "CONDITIONAL",
            "o": "STOP_MARKET",
            "s": "BTCUSDT",
            "S": "SELL",
            "ps": "BOTH",
            "f": "GTC",
            "q": "0.01",
            "X": X,
            "ai": ai,
            "ap": "0.00000",
            "aq": "0.00000",
            "act": "0",
            "tp": "90",
            "p": "0",
            "V": "EXPIRE_MAKER",
            "wt": "CONTRACT_PRICE",
            "pm": "NONE",
            "cp": False,
            "pP": False,
            "R": False,
            "tt": 0,
            "gtd": 0,
        }
        return futures_event({"e": "ALGO_UPDATE", "T": T, "E": T + 1, "o": o})

    # The triggered order's own event first, then the algo update that names it.
    tracker.on_event(order_trade_update(T0 + 30, i=8001, c="", o="MARKET", S="SELL", q="0.01", T=T0 + 29))
    tracker.on_event(algo_update("TRIGGERED", T0 + 28, "8001"))
    tracker.on_event(algo_update("NEW", T0, ""))  # late and old
    algo = tracker.algo(2148719)
    assert algo is not None
    assert algo.status == "TRIGGERED"
    assert algo.actual_order_id == 8001
    order = tracker.algo_order(2148719)
    assert order is not None
    assert order.order_id == 8001
    assert order.algo_id == 2148719
    assert algos[-1] is algo
    tracker.on_event(algo_update("FINISHED", T0 + 40, "8001"))
    assert algo.is_final
    # A later-created order for the same algo link appears with the link already set.
    tracker.on_event(algo_update("FINISHED", T0 + 40, "8001"))
    assert tracker.algo_order(2148719) is order


def test_algo_link_applies_when_the_order_arrives_later() -> None:
    tracker = OrderTracker()
    tracker.on_event(
        futures_event(
            {
                "e": "ALGO_UPDATE",
                "T": T0,
                "E": T0 + 1,
                "o": {"caid": "a", "aid": 5, "s": "BTCUSDT", "S": "BUY", "X": "TRIGGERED", "ai": "77"},
            }
        )
    )
    tracker.on_event(order_trade_update(T0 + 3, i=77))
    order = tracker.get(77)
    assert order is not None
    assert order.algo_id == 5


# ----------------------------------------------------- arrival order does not matter (hypothesis)


@st.composite
def spot_histories(draw: st.DrawFn) -> list[Any]:
    """Every update one spot order produces: its reports, its placement answer (ACK, RESULT or
    FULL), maybe a query answer, a cancel answer and duplicates."""
    n_fills = draw(st.integers(0, 4))
    immediate = draw(st.integers(0, n_fills))  # fills at placement time (same millisecond)
    qtys = [D(draw(st.integers(1, 9))) / 10 for _ in range(n_fills)]
    prices = [D(draw(st.integers(9_990, 10_010))) / 100 for _ in range(n_fills)]
    orig = sum(qtys, D(0)) + draw(st.sampled_from([D(0), D("0.5")]))
    ending = draw(st.sampled_from(["none", "cancel", "expire"]))
    if orig == sum(qtys, D(0)) and n_fills:
        ending = "filled"
    if orig == 0:
        orig = D(1)
    common = {"q": str(orig), "c": "own", "i": 42}
    updates: list[Any] = []
    execution_id = itertools.count(1)
    z = Z = D(0)
    snapshots: list[dict[str, Any]] = []  # state after each step, for query answers

    def snap(status: str, T: int) -> dict[str, Any]:
        return {
            "status": status,
            "executedQty": str(z),
            "cummulativeQuoteQty": str(Z),
            "origQty": str(orig),
            "price": "100",
            "type": "LIMIT",
            "side": "BUY",
            "timeInForce": "GTC",
            "updateTime": T,
            "time": T0,
        }

    updates.append(spot_event(**common, T=T0, I=next(execution_id)))
    snapshots.append(snap("NEW", T0))
    full_fills = []
    for n in range(n_fills):
        T = T0 if n < immediate else T0 + 1 + n
        z += qtys[n]
        Z += qtys[n] * prices[n]
        status = "FILLED" if ending == "filled" and n == n_fills - 1 else "PARTIALLY_FILLED"
        updates.append(
            spot_event(
                **common,
                x="TRADE",
                X=status,
                l=str(qtys[n]),
                L=str(prices[n]),
                z=str(z),
                Z=str(Z),
                t=500 + n,
                T=T,
                I=next(execution_id),
                n="0.001",
                N="BNB",
                m=n >= immediate,
            )
        )
        snapshots.append(snap(status, T))
        if n < immediate:
            full_fills.append(
                {
                    "price": str(prices[n]),
                    "qty": str(qtys[n]),
                    "commission": "0.001",
                    "commissionAsset": "BNB",
                    "tradeId": 500 + n,
                }
            )
    placement = draw(st.sampled_from(["ACK", "RESULT", "FULL"]))
    at_placement = snapshots[immediate]
    if placement == "ACK":
        updates.append(spot_order(clientOrderId="own", transactTime=T0))
    else:
        body = {k: v for k, v in at_placement.items() if k not in ("updateTime", "time")}
        if placement == "FULL":
            body["fills"] = full_fills
        updates.append(spot_order(clientOrderId="own", transactTime=T0, **body))
    if ending in ("cancel", "expire"):
        T = T0 + 100
        kind = "CANCELED" if ending == "cancel" else "EXPIRED"
        extra = {"c": "cxl", "C": "own"} if ending == "cancel" else {}
        updates.append(
            spot_event(**{**common, **extra}, x=kind, X=kind, z=str(z), Z=str(Z), T=T, I=next(execution_id))
        )
        snapshots.append(snap(kind, T))
        if ending == "cancel":
            body = {k: v for k, v in snapshots[-1].items() if k not in ("updateTime", "time")}
            updates.append(spot_order(clientOrderId="cxl", origClientOrderId="own", transactTime=T, **body))
    queried = draw(st.sampled_from(range(len(snapshots))))
    updates.append(spot_order(clientOrderId="own", **snapshots[queried]))
    duplicates = draw(st.lists(st.sampled_from(updates), max_size=3))
    return updates + duplicates


def _final_state(updates: list[Any]) -> dict[str, Any]:
    tracker = OrderTracker()
    for update in updates:
        if isinstance(update, md.SpotOrder | md.FuturesOrder):
            tracker.on_response(update)
        else:
            tracker.on_event(update)
    state = tracker.get(42) or tracker.get(7)
    assert state is not None
    return state.as_dict()


@given(spot_histories(), st.randoms(use_true_random=False))
def test_spot_final_state_independent_of_arrival_order(updates: list[Any], rnd: Any) -> None:
    expected = _final_state(updates)
    shuffled = list(updates)
    rnd.shuffle(shuffled)
    assert _final_state(shuffled) == expected
    assert _final_state(list(reversed(updates))) == expected
    # And the merged state is the true one: the fills add up to what the exchange reported.
    fills = expected["fills"]
    assert sum((f.qty for f in fills), D(0)) == expected["executed_qty"]
    assert expected["cum_quote"] == sum((f.price * f.qty for f in fills), D(0))
    assert expected["client_order_id"] == "own"
    if expected["executed_qty"]:
        assert expected["avg_price"] == expected["cum_quote"] / expected["executed_qty"]


@st.composite
def futures_histories(draw: st.DrawFn) -> list[Any]:
    n_fills = draw(st.integers(0, 4))
    qtys = [D(draw(st.integers(1, 5))) for _ in range(n_fills)]
    prices = [D(draw(st.integers(990, 1010))) / 10 for _ in range(n_fills)]
    orig = sum(qtys, D(0)) + draw(st.sampled_from([D(0), D(2)])) or D(1)
    cancel = orig != sum(qtys, D(0)) and draw(st.booleans())
    E = itertools.count(T0 + 1000)
    updates: list[Any] = [order_trade_update(next(E), q=str(orig), T=T0)]
    z = quote = D(0)
    answers = [futures_order(origQty=str(orig), updateTime=T0)]
    for n in range(n_fills):
        z += qtys[n]
        quote += qtys[n] * prices[n]
        status = "FILLED" if z == orig else "PARTIALLY_FILLED"
        T = T0 + 10 * (n + 1)
        fill = {"l": str(qtys[n]), "L": str(prices[n]), "t": 900 + n, "T": T}
        updates.append(
            futures_event(
                {
                    "e": "TRADE_LITE",
                    "E": next(E),
                    "T": T,
                    "s": "BTCUSDT",
                    "q": str(orig),
                    "p": "100",
                    "m": False,
                    "c": "fut_1",
                    "S": "BUY",
                    "L": str(prices[n]),
                    "l": str(qtys[n]),
                    "t": 900 + n,
                    "i": 7,
                }
            )
        )
        ap = str(quote / z)
        updates.append(
            order_trade_update(next(E), q=str(orig), x="TRADE", X=status, z=str(z), ap=ap, n="0.01", **fill)
        )
        answers.append(
            futures_order(origQty=str(orig), status=status, executedQty=str(z), avgPrice=ap, updateTime=T)
        )
    if cancel:
        T = T0 + 999
        updates.append(
            order_trade_update(
                next(E),
                q=str(orig),
                x="CANCELED",
                X="CANCELED",
                z=str(z),
                T=T,
                ap=str(quote / z) if z else "0",
            )
        )
        answers.append(
            futures_order(
                origQty=str(orig),
                status="CANCELED",
                executedQty=str(z),
                updateTime=T,
                avgPrice=str(quote / z) if z else "0",
            )
        )
    updates.append(draw(st.sampled_from(answers)))
    return updates + draw(st.lists(st.sampled_from(updates), max_size=3))


@given(futures_histories(), st.randoms(use_true_random=False))
@example(
    updates=[
        order_trade_update(
            T0 + 2, q="1", x="TRADE", X="FILLED", z="1", ap="100", l="1", L="100", t=5, T=T0 + 1
        ),
        futures_order(origQty="1", updateTime=T0),
    ],
    rnd=__import__("random").Random(0),
)
def test_futures_final_state_independent_of_arrival_order(updates: list[Any], rnd: Any) -> None:
    expected = _final_state(updates)
    shuffled = list(updates)
    rnd.shuffle(shuffled)
    assert _final_state(shuffled) == expected
    assert _final_state(list(reversed(updates))) == expected
    assert sum((f.qty for f in expected["fills"]), D(0)) == expected["executed_qty"]
