"""REST answer models: decoded from the exchange's documented example payloads.

The JSON literals below are the response examples of Binance's spot REST API and USD-M
futures API documentation (some trimmed to one or two entries), so the Structs are checked
against the shapes the exchange actually sends.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from tickbook.trading.errors import CancelReplacePartial, error_from_response
from tickbook.trading.models import (
    AggTrade,
    AlgoOrder,
    AmendKeepPriorityResponse,
    ApiMessage,
    AvgPrice,
    BookTicker,
    CancelReplaceResponse,
    FuturesAccount,
    FuturesBalance,
    FuturesOrder,
    FuturesTrade,
    Kline,
    LeverageResponse,
    ListenKey,
    MyTrade,
    OrderList,
    OrderRateLimit,
    PositionRisk,
    PriceTicker,
    ServerTime,
    SpotAccount,
    SpotOrder,
    TestOrderCommission,
    Ticker24h,
    Trade,
    decode,
    decode_batch_orders,
    decode_cancel_all,
    decode_klines,
)

# ============================================================================ market data


def test_server_time() -> None:
    assert decode(b'{"serverTime": 1499827319559}', ServerTime).server_time == 1499827319559


def test_spot_trades() -> None:
    body = b"""[{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
                 "time": 1499865549590, "isBuyerMaker": true, "isBestMatch": true}]"""
    (trade,) = decode(body, list[Trade])
    assert trade.id == 28457
    assert trade.price == Decimal("4.00000100")
    assert str(trade.price) == "4.00000100"  # the exchange's text, trailing zeros kept
    assert trade.quote_qty == Decimal("48.000012")
    assert trade.is_buyer_maker is True
    assert trade.is_best_match is True


def test_futures_trades() -> None:
    body = b"""[{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.00",
                 "time": 1499865549590, "isBuyerMaker": true, "isRPITrade": true}]"""
    (trade,) = decode(body, list[FuturesTrade])
    assert trade.quote_qty == Decimal("48.00")
    assert trade.is_rpi_trade is True
    (old,) = decode(body.replace(b', "isRPITrade": true', b""), list[FuturesTrade])
    assert old.is_rpi_trade is None
    assert trade.base_qty is None


def test_coinm_trades_carry_base_qty() -> None:
    # COIN-M /dapi/v1/trades (the documentation's example): qty in contracts, baseQty in BTC.
    body = b"""[{"id": 28457, "price": "9635.0", "qty": "1", "baseQty": "0.01037883",
                 "time": 1591250192508, "isBuyerMaker": true}]"""
    (trade,) = decode(body, list[FuturesTrade])
    assert (trade.id, trade.price, trade.qty) == (28457, Decimal("9635.0"), Decimal("1"))
    assert trade.base_qty == Decimal("0.01037883")
    assert trade.quote_qty is None
    assert (trade.time, trade.is_buyer_maker) == (1591250192508, True)


def test_agg_trades_spot_and_futures() -> None:
    spot = b"""[{"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
                 "T": 1498793709153, "m": true, "M": true}]"""
    (agg,) = decode(spot, list[AggTrade])
    assert (agg.agg_trade_id, agg.first_trade_id, agg.last_trade_id) == (26129, 27781, 27781)
    assert agg.price == Decimal("0.01633102")
    assert agg.qty == Decimal("4.70443515")
    assert agg.time == 1498793709153
    assert agg.is_buyer_maker is True
    assert agg.is_best_match is True
    futures = (
        b'[{"a": 26129, "p": "0.01633102", "q": "4.70443515", "nq": "4.5", '
        b'"f": 27781, "l": 27781, "T": 1, "m": true}]'
    )
    (fagg,) = decode(futures, list[AggTrade])
    assert fagg.is_best_match is None
    assert fagg.rpi_excluded_qty == Decimal("4.5")


def test_klines_from_arrays() -> None:
    body = b"""[[1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
                 "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397",
                 "28.46694368", "0"]]"""
    (kline,) = decode_klines(body)
    assert kline == Kline(
        open_time=1499040000000,
        open=Decimal("0.01634790"),
        high=Decimal("0.80000000"),
        low=Decimal("0.01575800"),
        close=Decimal("0.01577100"),
        volume=Decimal("148976.11427815"),
        close_time=1499644799999,
        quote_volume=Decimal("2434.19055334"),
        trades=308,
        taker_buy_base_volume=Decimal("1756.87402397"),
        taker_buy_quote_volume=Decimal("28.46694368"),
        ignore="0",
    )
    # A 13th element added later is ignored, like an unknown key.
    (longer,) = decode_klines(body.replace(b'"0"]]', b'"0", "new"]]'))
    assert longer == kline


def test_avg_price() -> None:
    avg = decode(b'{"mins": 5, "price": "9.35751834", "closeTime": 1694061154503}', AvgPrice)
    assert (avg.mins, avg.price, avg.close_time) == (5, Decimal("9.35751834"), 1694061154503)


SPOT_24H = b"""{
  "symbol": "BNBBTC", "priceChange": "-94.99999800", "priceChangePercent": "-95.960",
  "weightedAvgPrice": "0.29628482", "prevClosePrice": "0.10002000", "lastPrice": "4.00000200",
  "lastQty": "200.00000000", "bidPrice": "4.00000000", "bidQty": "100.00000000",
  "askPrice": "4.00000200", "askQty": "100.00000000", "openPrice": "99.00000000",
  "highPrice": "100.00000000", "lowPrice": "0.10000000", "volume": "8913.30000000",
  "quoteVolume": "15.30000000", "openTime": 1499783499040, "closeTime": 1499869899040,
  "firstId": 28385, "lastId": 28460, "count": 76
}"""


def test_ticker_24h_spot_and_futures() -> None:
    spot = decode(SPOT_24H, Ticker24h)
    assert spot.price_change == Decimal("-94.99999800")
    assert spot.price_change_percent == Decimal("-95.960")
    assert spot.bid_price == Decimal("4.00000000")
    assert spot.count == 76
    futures = decode(
        b"""{"symbol": "BTCUSDT", "priceChange": "-94.99999800", "priceChangePercent": "-95.960",
        "weightedAvgPrice": "0.29628482", "lastPrice": "4.00000200", "lastQty": "200.00000000",
        "openPrice": "99.00000000", "highPrice": "100.00000000", "lowPrice": "0.10000000",
        "volume": "8913.30000000", "quoteVolume": "15.30000000", "openTime": 1499783499040,
        "closeTime": 1499869899040, "firstId": 28385, "lastId": 28460, "count": 76}""",
        Ticker24h,
    )
    assert futures.bid_price is None
    assert futures.prev_close_price is None
    assert futures.last_price == Decimal("4.00000200")


def test_price_and_book_tickers() -> None:
    spot = decode(b'[{"symbol": "LTCBTC", "price": "4.00000200"}]', list[PriceTicker])
    assert spot[0].price == Decimal("4.00000200")
    assert spot[0].time is None
    fut = decode(b'{"symbol": "BTCUSDT", "price": "6000.01", "time": 1589437530011}', PriceTicker)
    assert fut.time == 1589437530011
    book = decode(
        b"""{"lastUpdateId": 1027024, "symbol": "BTCUSDT", "bidPrice": "4.00000000",
        "bidQty": "431.00000000", "askPrice": "4.00000200", "askQty": "9.00000000", "time": 1589437530011}""",
        BookTicker,
    )
    assert book.last_update_id == 1027024
    assert book.ask_price - book.bid_price == Decimal("0.00000200")


# ================================================================================== spot

FULL_ORDER = b"""{
  "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
  "transactTime": 1507725176595, "price": "0.00000000", "origQty": "10.00000000",
  "executedQty": "10.00000000", "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "39983.00000000",
  "status": "FILLED", "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
  "workingTime": 1507725176595, "selfTradePreventionMode": "NONE",
  "fills": [
    {"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000",
     "commissionAsset": "USDT", "tradeId": 56},
    {"price": "3999.00000000", "qty": "5.00000000", "commission": "19.99500000",
     "commissionAsset": "USDT", "tradeId": 57},
    {"price": "3998.00000000", "qty": "2.00000000", "commission": "7.99600000",
     "commissionAsset": "USDT", "tradeId": 58},
    {"price": "3997.00000000", "qty": "1.00000000", "commission": "3.99700000",
     "commissionAsset": "USDT", "tradeId": 59},
    {"price": "3995.00000000", "qty": "1.00000000", "commission": "3.99500000",
     "commissionAsset": "USDT", "tradeId": 60}
  ]
}"""


def test_spot_order_full() -> None:
    order = decode(FULL_ORDER, SpotOrder)
    assert order.order_id == 28
    assert order.client_order_id == "6gCrw2kRUAF9CvJDGP16IP"
    assert order.order_list_id == -1
    assert order.status == "FILLED"
    assert order.is_final
    assert len(order.fills) == 5
    assert sum(f.qty for f in order.fills) == order.executed_qty == Decimal("10")
    # Exact decimal arithmetic: the fills' notional equals the cumulative quote quantity.
    assert sum(f.price * f.qty for f in order.fills) == order.cummulative_quote_qty
    assert sum(f.commission for f in order.fills) == Decimal("39.98300000")
    assert order.average_price == Decimal("3998.3")
    assert order.fills[1].trade_id == 57
    assert order.stop_price is None  # conditional field absent


def test_spot_order_ack_and_result() -> None:
    ack = decode(
        b"""{"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1,
        "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP", "transactTime": 1507725176595}""",
        SpotOrder,
    )
    assert ack.status is None
    assert ack.fills == ()
    assert ack.average_price is None
    assert not ack.is_final
    result = decode(FULL_ORDER.split(b',\n  "fills"')[0] + b"}", SpotOrder)
    assert result.fills == ()
    assert result.executed_qty == Decimal("10.00000000")


def test_spot_order_query_with_conditional_fields() -> None:
    body = b"""{
      "symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1",
      "price": "0.1", "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0",
      "status": "NEW", "timeInForce": "GTC", "type": "STOP_LOSS_LIMIT", "side": "BUY",
      "stopPrice": "0.2", "icebergQty": "0.0", "time": 1499827319559, "updateTime": 1499827319559,
      "isWorking": true, "workingTime": 1499827319559, "origQuoteOrderQty": "0.000000",
      "selfTradePreventionMode": "NONE", "trailingDelta": 10, "trailingTime": -1,
      "strategyId": 37463720, "strategyType": 1000000, "pegPriceType": "PRIMARY_PEG",
      "pegOffsetType": "PRICE_LEVEL", "pegOffsetValue": 5, "peggedPrice": "87523.83710000",
      "expiryReason": "INSUFFICIENT_LIQUIDITY", "preventedMatchId": 0, "preventedQuantity": "1.200000",
      "usedSor": true, "workingFloor": "SOR", "someFieldAddedIn2027": {"nested": [1, 2]}
    }"""
    order = decode(body, SpotOrder)
    assert order.stop_price == Decimal("0.2")
    assert order.is_working is True
    assert order.time == 1499827319559
    assert order.trailing_delta == 10
    assert order.trailing_time == -1
    assert order.strategy_type == 1000000
    assert order.pegged_price == Decimal("87523.83710000")
    assert order.peg_offset_value == 5
    assert order.prevented_quantity == Decimal("1.200000")
    assert order.expiry_reason == "INSUFFICIENT_LIQUIDITY"
    assert order.used_sor is True
    assert order.average_price is None  # executed 0.0


def test_spot_cancel_response_ids() -> None:
    body = b"""{"symbol": "LTCBTC", "origClientOrderId": "myOrder1", "orderId": 4, "orderListId": -1,
      "clientOrderId": "cancelMyOrder1", "transactTime": 1684804350068, "price": "2.00000000",
      "origQty": "1.00000000", "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000",
      "cummulativeQuoteQty": "0.00000000", "status": "CANCELED", "timeInForce": "GTC",
      "type": "LIMIT", "side": "BUY", "selfTradePreventionMode": "NONE"}"""
    order = decode(body, SpotOrder)
    assert order.orig_client_order_id == "myOrder1"  # the canceled order
    assert order.client_order_id == "cancelMyOrder1"  # the cancel request
    assert order.is_final


def test_missing_required_field_is_an_error() -> None:
    with pytest.raises(msgspec.ValidationError, match="orderId"):
        decode(b'{"symbol": "BTCUSDT", "clientOrderId": "x"}', SpotOrder)
    with pytest.raises(msgspec.ValidationError, match="orderId"):
        decode(b'{"symbol": "BTCUSDT", "orderId": "1", "clientOrderId": "x"}', SpotOrder)
    with pytest.raises(msgspec.ValidationError, match="price"):
        decode(b'{"symbol": "BTCUSDT", "orderId": 1, "clientOrderId": "x", "price": "abc"}', SpotOrder)
    with pytest.raises(msgspec.DecodeError):
        decode(b"<html>", SpotOrder)


def test_json_numbers_also_decode_exactly() -> None:
    # Decimals are built from the number's text, never through a float.
    order = decode(b'{"symbol": "B", "orderId": 1, "clientOrderId": "x", "price": 0.1}', SpotOrder)
    assert order.price == Decimal("0.1")


def test_models_are_frozen() -> None:
    order = decode(FULL_ORDER, SpotOrder)
    with pytest.raises(AttributeError):
        order.status = "NEW"  # type: ignore[misc]


def test_plain_msgspec_decode_needs_no_hooks() -> None:
    order = msgspec.json.decode(FULL_ORDER, type=SpotOrder)
    assert order == decode(FULL_ORDER, SpotOrder)


CANCEL_REPLACE_OK = b"""{
  "cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
  "cancelResponse": {"symbol": "BTCUSDT", "origClientOrderId": "DnLo3vTAQcjha43lAZhZ0y", "orderId": 9,
    "orderListId": -1, "clientOrderId": "osxN3JXAtJvKvCqGeMWMVR", "transactTime": 1684804350068,
    "price": "0.01000000", "origQty": "0.000100", "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "0.00000000", "status": "CANCELED",
    "timeInForce": "GTC", "type": "LIMIT", "side": "SELL", "selfTradePreventionMode": "NONE"},
  "newOrderResponse": {"symbol": "BTCUSDT", "orderId": 10, "orderListId": -1,
    "clientOrderId": "wOceeeOzNORyLiQfw7jd8S", "transactTime": 1652928801803, "price": "0.02000000",
    "origQty": "0.040000", "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC", "type": "LIMIT",
    "side": "BUY", "workingTime": 1669277163808, "fills": [], "selfTradePreventionMode": "NONE"}
}"""


def test_cancel_replace_success() -> None:
    answer = decode(CANCEL_REPLACE_OK, CancelReplaceResponse)
    assert (answer.cancel_result, answer.new_order_result) == ("SUCCESS", "SUCCESS")
    canceled = answer.cancel_order
    placed = answer.new_order
    assert canceled is not None
    assert placed is not None
    assert canceled.order_id == 9
    assert canceled.orig_client_order_id == "DnLo3vTAQcjha43lAZhZ0y"
    assert placed.order_id == 10
    assert placed.orig_qty == Decimal("0.040000")
    assert answer.cancel_error is None
    assert answer.new_order_error is None


def test_cancel_replace_partial_from_the_409_body() -> None:
    body = b"""{
      "code": -2021, "msg": "Order cancel-replace partially failed.",
      "data": {"cancelResult": "FAILURE", "newOrderResult": "SUCCESS",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": {"symbol": "BTCUSDT", "orderId": 11, "orderListId": -1,
          "clientOrderId": "pfojJMg6IMNDKuJqDxvoxN", "transactTime": 1648540168818}}
    }"""
    exc = error_from_response(409, body, method="POST", endpoint="/api/v3/order/cancelReplace")
    assert isinstance(exc, CancelReplacePartial)
    answer = CancelReplaceResponse.from_data(exc.data)
    assert answer.cancel_result == "FAILURE"
    assert answer.cancel_order is None
    assert answer.cancel_error == ApiMessage(code=-2011, msg="Unknown order sent.")
    new = answer.new_order
    assert new is not None
    assert new.order_id == 11
    assert new.client_order_id == "pfojJMg6IMNDKuJqDxvoxN"


def test_cancel_replace_not_attempted() -> None:
    data = {
        "cancelResult": "FAILURE",
        "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": None,
    }
    answer = CancelReplaceResponse.from_data(data)
    assert answer.new_order is None
    assert answer.new_order_error is None
    assert answer.new_order_result == "NOT_ATTEMPTED"


OCO = b"""{
  "orderListId": 1, "contingencyType": "OCO", "listStatusType": "EXEC_STARTED",
  "listOrderStatus": "EXECUTING", "listClientOrderId": "lH1YDkuQKWiXVXHPSKYEIp",
  "transactionTime": 1710485608839, "symbol": "LTCBTC",
  "orders": [
    {"symbol": "LTCBTC", "orderId": 10, "clientOrderId": "44nZvqpemY7sVYgPYbvPih"},
    {"symbol": "LTCBTC", "orderId": 11, "clientOrderId": "NuMp0nVYnciDiFmVqfpBqK"}
  ],
  "orderReports": [
    {"symbol": "LTCBTC", "orderId": 10, "orderListId": 1, "clientOrderId": "44nZvqpemY7sVYgPYbvPih",
     "transactTime": 1710485608839, "price": "1.00000000", "origQty": "5.00000000",
     "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "0.00000000",
     "status": "NEW", "timeInForce": "GTC", "type": "STOP_LOSS_LIMIT", "side": "SELL",
     "stopPrice": "1.00000000", "workingTime": -1, "icebergQty": "1.00000000",
      "selfTradePreventionMode": "NONE"},
    {"symbol": "LTCBTC", "orderId": 11, "orderListId": 1, "clientOrderId": "NuMp0nVYnciDiFmVqfpBqK",
     "transactTime": 1710485608839, "price": "3.00000000", "origQty": "5.00000000",
     "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "0.00000000",
     "status": "NEW", "timeInForce": "GTC", "type": "LIMIT_MAKER", "side": "SELL",
     "workingTime": 1710485608839, "selfTradePreventionMode": "NONE"}
  ]
}"""


def test_order_list() -> None:
    oco = decode(OCO, OrderList)
    assert oco.contingency_type == "OCO"
    assert oco.list_status_type == "EXEC_STARTED"
    assert [leg.order_id for leg in oco.orders] == [10, 11]
    stop, maker = oco.order_reports
    assert stop.type == "STOP_LOSS_LIMIT"
    assert stop.stop_price == Decimal("1.00000000")
    assert stop.working_time == -1
    assert stop.iceberg_qty == Decimal("1.00000000")
    assert maker.type == "LIMIT_MAKER"
    assert maker.price == Decimal("3.00000000")
    # GET /api/v3/orderList has no orderReports.
    query = decode(OCO.split(b',\n  "orderReports"')[0] + b"}", OrderList)
    assert query.order_reports == ()


def test_cancel_all_mixes_orders_and_lists() -> None:
    body = b"""[
      {"symbol": "BTCUSDT", "origClientOrderId": "E6APeyTJvkMvLMYMqu1KQ4", "orderId": 11, "orderListId": -1,
       "clientOrderId": "pXLV6Hz6mprAcVYpVMTGgx", "transactTime": 1684804350068, "price": "0.089853",
       "origQty": "0.178622", "executedQty": "0.000000", "origQuoteOrderQty": "0.000000",
       "cummulativeQuoteQty": "0.000000", "status": "CANCELED", "timeInForce": "GTC", "type": "LIMIT",
       "side": "BUY", "selfTradePreventionMode": "NONE"},
      {"orderListId": 1929, "contingencyType": "OCO", "listStatusType": "ALL_DONE",
       "listOrderStatus": "ALL_DONE",
       "listClientOrderId": "2inzWQdDvZLHbbAmAozX2N", "transactionTime": 1585230948299, "symbol": "BTCUSDT",
       "orders": [{"symbol": "BTCUSDT", "orderId": 20, "clientOrderId": "CwOOIPHSmYywx6jZX77TdL"},
                  {"symbol": "BTCUSDT", "orderId": 21, "clientOrderId": "461cPg51vQjV3zIMOXNz39"}],
       "orderReports": [
         {"symbol": "BTCUSDT", "origClientOrderId": "CwOOIPHSmYywx6jZX77TdL", "orderId": 20,
          "orderListId": 1929,
          "clientOrderId": "pXLV6Hz6mprAcVYpVMTGgx", "transactTime": 1688005070874, "price": "0.668611",
          "origQty": "0.690354", "executedQty": "0.000000", "status": "CANCELED", "type": "STOP_LOSS_LIMIT",
          "side": "BUY", "stopPrice": "0.378131", "icebergQty": "0.017083"}]}
    ]"""
    order, order_list = decode_cancel_all(body)
    assert isinstance(order, SpotOrder)
    assert order.order_id == 11
    assert isinstance(order_list, OrderList)
    assert order_list.order_list_id == 1929
    assert order_list.order_reports[0].stop_price == Decimal("0.378131")


def test_test_order_commission() -> None:
    assert decode(b"{}", TestOrderCommission) == TestOrderCommission()
    body = b"""{
      "standardCommissionForOrder": {"maker": "0.00000112", "taker": "0.00000114"},
      "specialCommissionForOrder": {"maker": "0.05000000", "taker": "0.06000000"},
      "taxCommissionForOrder": {"maker": "0.00000112", "taker": "0.00000114"},
      "discount": {"enabledForAccount": true, "enabledForSymbol": true, "discountAsset": "BNB",
                   "discount": "0.25000000"}
    }"""
    rates = decode(body, TestOrderCommission)
    assert rates.standard_commission_for_order is not None
    assert rates.standard_commission_for_order.taker == Decimal("0.00000114")
    assert rates.special_commission_for_order is not None
    assert rates.special_commission_for_order.maker == Decimal("0.05000000")
    assert rates.discount is not None
    assert rates.discount.discount_asset == "BNB"
    assert rates.discount.discount == Decimal("0.25000000")


def test_spot_account() -> None:
    body = b"""{
      "makerCommission": 15, "takerCommission": 15, "buyerCommission": 0, "sellerCommission": 0,
      "commissionRates": {"maker": "0.00150000", "taker": "0.00150000", "buyer": "0.00000000",
       "seller": "0.00000000"},
      "canTrade": true, "canWithdraw": true, "canDeposit": true, "brokered": false,
      "requireSelfTradePrevention": false, "preventSor": false, "updateTime": 123456789,
      "accountType": "SPOT",
      "balances": [
        {"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
        {"asset": "LTC", "free": "4763368.68006011", "locked": "0.10000000"}
      ],
      "permissions": ["SPOT"], "uid": 354937868
    }"""
    account = decode(body, SpotAccount)
    assert account.commission_rates is not None
    assert account.commission_rates.maker == Decimal("0.00150000")
    assert account.can_trade is True
    assert account.permissions == ("SPOT",)
    assert account.uid == 354937868
    ltc = account.balance("LTC")
    assert ltc is not None
    assert ltc.total == Decimal("4763368.78006011")
    assert account.balance("ETH") is None


def test_my_trades() -> None:
    body = b"""[{"symbol": "BNBBTC", "id": 28457, "orderId": 100234, "orderListId": -1,
      "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012", "commission": "10.10000000",
      "commissionAsset": "BNB", "time": 1499865549590, "isBuyer": true, "isMaker": false,
       "isBestMatch": true}]"""
    (trade,) = decode(body, list[MyTrade])
    assert trade.order_id == 100234
    assert trade.price * trade.qty == trade.quote_qty
    assert trade.commission == Decimal("10.10000000")
    assert trade.is_buyer is True
    assert trade.is_maker is False


def test_order_rate_limits() -> None:
    body = b"""[
      {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50, "count": 0},
      {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000, "count": 0}
    ]"""
    limits = decode(body, list[OrderRateLimit])
    assert [(x.interval, x.interval_num, x.limit, x.count) for x in limits] == [
        ("SECOND", 10, 50, 0),
        ("DAY", 1, 160000, 0),
    ]


def test_amend_keep_priority() -> None:
    single = decode(
        b"""{"transactTime": 1741926410255, "executionId": 75, "amendedOrder": {
          "symbol": "BTCUSDT", "orderId": 33, "orderListId": -1,
           "origClientOrderId": "5xrgbMyg6z36NzBn2pbT8H",
          "clientOrderId": "PFaq6hIHxqFENGfdtn4J6Q", "price": "6.00000000", "qty": "5.00000000",
          "executedQty": "0.00000000", "preventedQty": "0.00000000", "quoteOrderQty": "0.00000000",
          "cumulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC", "type": "LIMIT",
          "side": "SELL", "workingTime": 1741926410242, "selfTradePreventionMode": "NONE"}}""",
        AmendKeepPriorityResponse,
    )
    assert single.execution_id == 75
    assert single.amended_order.qty == Decimal("5.00000000")
    assert single.amended_order.orig_client_order_id == "5xrgbMyg6z36NzBn2pbT8H"
    assert single.list_status is None
    in_list = decode(
        b"""{"transactTime": 1741669661670, "executionId": 22, "amendedOrder": {
          "symbol": "BTCUSDT", "orderId": 9, "orderListId": 1, "origClientOrderId": "W0fJ9fiLKHOJutovPK3oJp",
          "clientOrderId": "UQ1Np3bmQ71jJzsSDW9Vpi", "price": "0.00000000", "qty": "4.00000000",
          "executedQty": "0.00000000", "preventedQty": "0.00000000", "quoteOrderQty": "0.00000000",
          "cumulativeQuoteQty": "0.00000000", "status": "PENDING_NEW", "timeInForce": "GTC", "type": "MARKET",
          "side": "BUY", "selfTradePreventionMode": "NONE"},
          "listStatus": {"orderListId": 1, "contingencyType": "OTO", "listOrderStatus": "EXECUTING",
            "listClientOrderId": "AT7FTxZXylVSwRoZs52mt3", "symbol": "BTCUSDT",
            "orders": [{"symbol": "BTCUSDT", "orderId": 8, "clientOrderId": "GkwwHZUUbFtZOoH1YsZk9Q"},
                       {"symbol": "BTCUSDT", "orderId": 9, "clientOrderId": "UQ1Np3bmQ71jJzsSDW9Vpi"}]}}""",
        AmendKeepPriorityResponse,
    )
    assert in_list.list_status is not None
    assert in_list.list_status.contingency_type == "OTO"
    assert in_list.list_status.list_status_type is None
    assert in_list.amended_order.status == "PENDING_NEW"


# ========================================================================= USD-M futures

FUTURES_ORDER = b"""{
  "clientOrderId": "testOrder", "cumQty": "0", "cumQuote": "0", "executedQty": "0", "orderId": 22542179,
  "avgPrice": "0.00000", "origQty": "10", "price": "0", "reduceOnly": false, "side": "BUY",
  "positionSide": "SHORT", "status": "NEW", "stopPrice": "9300", "closePosition": false,
  "symbol": "BTCUSDT", "timeInForce": "GTD", "type": "TRAILING_STOP_MARKET",
  "origType": "TRAILING_STOP_MARKET", "activatePrice": "9020", "priceRate": "0.3",
  "updateTime": 1566818724722, "workingType": "CONTRACT_PRICE", "priceProtect": false,
  "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 1693207680000
}"""


def test_futures_order() -> None:
    order = decode(FUTURES_ORDER, FuturesOrder)
    assert order.order_id == 22542179
    assert order.client_order_id == "testOrder"
    assert order.avg_price == Decimal("0.00000")
    assert order.activate_price == Decimal("9020")
    assert order.price_rate == Decimal("0.3")
    assert order.good_till_date == 1693207680000
    assert order.reduce_only is False
    assert not order.is_final
    # The SDK drops avgPrice and cumQuote from place/cancel/modify answers: still decodes.
    trimmed = FUTURES_ORDER.replace(b'"cumQuote": "0", ', b"").replace(b'"avgPrice": "0.00000", ', b"")
    slim = decode(trimmed, FuturesOrder)
    assert slim.avg_price is None
    assert slim.cum_quote is None


def test_futures_batch_orders_mix_orders_and_errors() -> None:
    body = b"[" + FUTURES_ORDER + b', {"code": -2022, "msg": "ReduceOnly Order is rejected."}]'
    placed, failed = decode_batch_orders(body)
    assert isinstance(placed, FuturesOrder)
    assert placed.order_id == 22542179
    assert failed == ApiMessage(code=-2022, msg="ReduceOnly Order is rejected.")


def test_algo_order_placement_with_blank_values() -> None:
    body = b"""{"algoId": 2146760, "clientAlgoId": "6B2I9XVcJpCjqPAJ4YoFX7", "algoType": "CONDITIONAL",
      "orderType": "TAKE_PROFIT", "symbol": "BNBUSDT", "side": "SELL", "positionSide": "BOTH",
      "timeInForce": "GTC", "quantity": "0.01", "algoStatus": "NEW", "triggerPrice": "750.000",
      "price": "750.000", "icebergQuantity": null, "selfTradePreventionMode": "EXPIRE_MAKER",
      "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": false, "priceProtect": false,
      "reduceOnly": false, "activatePrice": "", "callbackRate": "", "createTime": 1750485492076,
      "updateTime": 1750485492076, "triggerTime": 0, "goodTillDate": 0}"""
    algo = decode(body, AlgoOrder)
    assert algo.algo_id == 2146760
    assert algo.trigger_price == Decimal("750.000")
    assert algo.quantity == Decimal("0.01")
    assert algo.iceberg_quantity is None
    assert algo.activate_price is None  # "" means not set
    assert algo.callback_rate is None
    assert algo.actual_order_id is None


def test_algo_order_query() -> None:
    body = b"""{"algoId": 2146760, "clientAlgoId": "6B2I9XVcJpCjqPAJ4YoFX7", "algoType": "CONDITIONAL",
      "orderType": "TRAILING_STOP_MARKET", "symbol": "BNBUSDT", "side": "SELL", "positionSide": "BOTH",
      "timeInForce": "GTC", "quantity": "0.01", "algoStatus": "TRIGGERED", "actualOrderId": "8886774",
      "actualPrice": "749.50000", "triggerPrice": "750.000", "price": "0", "icebergQuantity": null,
      "tpTriggerPrice": "0.000", "tpPrice": "0.000", "slTriggerPrice": "0.000", "slPrice": "0.000",
      "tpOrderType": "", "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": "CONTRACT_PRICE",
      "priceMatch": "NONE", "closePosition": false, "priceProtect": false, "reduceOnly": false,
      "activatePrice": "760.5", "callbackRate": "1.5", "createTime": 1750485492076,
      "updateTime": 1750514545091, "triggerTime": 1750514545000, "goodTillDate": 0}"""
    algo = decode(body, AlgoOrder)
    assert algo.actual_order_id == 8886774
    assert algo.actual_price == Decimal("749.50000")
    assert algo.activate_price == Decimal("760.5")
    assert algo.callback_rate == Decimal("1.5")
    assert algo.trigger_time == 1750514545000


def test_leverage() -> None:
    answer = decode(b'{"leverage": 21, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}', LeverageResponse)
    assert answer == LeverageResponse(leverage=21, max_notional_value=Decimal("1000000"), symbol="BTCUSDT")


def test_position_risk_v3() -> None:
    body = b"""[{"symbol": "ADAUSDT", "positionSide": "BOTH", "positionAmt": "30", "entryPrice": "0.385",
      "breakEvenPrice": "0.385077", "markPrice": "0.41047590", "unRealizedProfit": "0.76427700",
      "liquidationPrice": "0", "isolatedMargin": "0", "notional": "12.31427700", "marginAsset": "USDT",
      "isolatedWallet": "0", "initialMargin": "0.61571385", "maintMargin": "0.08004280",
      "positionInitialMargin": "0.61571385", "openOrderInitialMargin": "0", "adl": 2,
      "bidNotional": "0", "askNotional": "0", "updateTime": 1720736417660}]"""
    (pos,) = decode(body, list[PositionRisk])
    assert pos.position_amt == Decimal("30")
    assert pos.un_realized_profit == Decimal("0.76427700")
    # The exchange's numbers agree exactly: amount * (mark - entry) = unrealized PnL.
    assert pos.position_amt * (pos.mark_price - pos.entry_price) == pos.un_realized_profit
    assert pos.position_amt * pos.mark_price == pos.notional
    assert pos.adl == 2
    assert pos.margin_asset == "USDT"


def test_futures_account_v3() -> None:
    body = b"""{
      "totalInitialMargin": "0.00000000", "totalMaintMargin": "0.00000000",
      "totalWalletBalance": "103.12345678", "totalUnrealizedProfit": "0.00000000",
      "totalMarginBalance": "103.12345678", "totalPositionInitialMargin": "0.00000000",
      "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": "103.12345678",
      "totalCrossUnPnl": "0.00000000", "availableBalance": "103.12345678",
       "maxWithdrawAmount": "103.12345678",
      "assets": [{"asset": "USDT", "walletBalance": "23.72469206", "unrealizedProfit": "0.00000000",
        "marginBalance": "23.72469206", "maintMargin": "0.00000000", "initialMargin": "0.00000000",
        "positionInitialMargin": "0.00000000", "openOrderInitialMargin": "0.00000000",
        "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000", "availableBalance": "23.72469206",
        "maxWithdrawAmount": "23.72469206", "updateTime": 1625474304765}],
      "positions": [{"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "1.000",
        "unrealizedProfit": "0.00000000", "isolatedMargin": "0.00000000", "notional": "0",
        "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0", "updateTime": 0}]
    }"""
    account = decode(body, FuturesAccount)
    assert account.total_wallet_balance == Decimal("103.12345678")
    usdt = account.asset("USDT")
    assert usdt is not None
    assert usdt.available_balance == Decimal("23.72469206")
    assert account.asset("BTC") is None
    assert account.positions[0].position_amt == Decimal("1.000")


def test_futures_balance_v3() -> None:
    body = b"""[{"accountAlias": "SgsR", "asset": "USDT", "balance": "122607.35137903",
      "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000", "availableBalance": "23.72469206",
      "maxWithdrawAmount": "23.72469206", "marginAvailable": true, "updateTime": 1617939110373}]"""
    (balance,) = decode(body, list[FuturesBalance])
    assert balance.balance == Decimal("122607.35137903")
    assert balance.margin_available is True


def test_listen_key() -> None:
    key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
    assert decode(f'{{"listenKey": "{key}"}}'.encode(), ListenKey).listen_key == key


def test_margin_type_acknowledgement() -> None:
    assert decode(b'{"code": 200, "msg": "success"}', ApiMessage) == ApiMessage(code=200, msg="success")


def test_decoders_are_reused() -> None:
    first = decode(b'{"serverTime": 1}', ServerTime)
    second = decode(b'{"serverTime": 2}', ServerTime)
    assert (first.server_time, second.server_time) == (1, 2)
    from tickbook.trading import models

    assert ServerTime in models._DECODERS
