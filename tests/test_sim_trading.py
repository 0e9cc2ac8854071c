"""The local exchange's trading engine (tickbook.sim.trading), driven directly, no HTTP.

A small in-memory market source holds a true book the test writes level by level, so every
expected fill, price, commission and balance below is computed by hand from the spec
(binance-spec sections 5-8 and 10) and the engine's documented matching model: marketable
orders take the levels they cross at the levels' prices, resting orders fill when a replayed
trade goes through their price, stops trigger on the last trade price.

Book used by most tests (spot and futures alike)::

    asks 103.00 x 5 | 102.00 x 2 | 101.00 x 1
    bids 100.00 x 1 |  99.00 x 2 |  98.00 x 5

Accounts start with 1 BTC and 10000 USDT. Commission: spot 0.1 % maker and taker, in the
asset received; futures 0.02 % maker, 0.05 % taker, in USDT.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from tickbook import OrderBook
from tickbook._types import Market
from tickbook.sim.exchange import Exchange
from tickbook.sim.market import Event, GeneratedMarket
from tickbook.sim.rest import ApiError
from tickbook.sim.trading import TradingEngine

T0 = 1_750_000_000_000
KEY = "key-a"
OTHER = "key-b"
BIDS = [("100.00", "1"), ("99.00", "2"), ("98.00", "5")]
ASKS = [("101.00", "1"), ("102.00", "2"), ("103.00", "5")]

_FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
    {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
]


def _symbol(market: Market) -> dict[str, Any]:
    if market is Market.SPOT:
        return {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quoteAssetPrecision": 8,
            "orderTypes": sorted(
                [
                    "LIMIT",
                    "LIMIT_MAKER",
                    "MARKET",
                    "STOP_LOSS",
                    "STOP_LOSS_LIMIT",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_LIMIT",
                ]
            ),
            "filters": _FILTERS,
        }
    return {
        "symbol": "BTCUSDT",
        "pair": "BTCUSDT",
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "baseAsset": "BTC",
        "quoteAsset": "USDT",
        "marginAsset": "BTC" if market is Market.COINM else "USDT",
        "contractSize": 100,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "filters": _FILTERS,
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


class Source:
    """A one-symbol market source whose true book the test sets."""

    def __init__(self, market: Market, orders_per_10s: int = 50) -> None:
        self.market = market
        self.symbols = ["BTCUSDT"]
        self.book = OrderBook("BTCUSDT", market, tick_size="0.01", step_size="0.001")
        self.update_id = 1000
        self.book.apply_snapshot(self.update_id, [list(x) for x in BIDS], [list(x) for x in ASKS])
        self.orders_per_10s = orders_per_10s

    def exchange_info(self) -> bytes:
        long = ("DAY", 1, 160000) if self.market is Market.SPOT else ("MINUTE", 1, 1200)
        limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self.orders_per_10s,
            },
            {"rateLimitType": "ORDERS", "interval": long[0], "intervalNum": long[1], "limit": long[2]},
        ]
        info = {"timezone": "UTC", "serverTime": T0, "rateLimits": limits, "symbols": [_symbol(self.market)]}
        return json.dumps(info).encode()

    def truth(self, symbol: str) -> OrderBook:
        return self.book

    def snapshot(self, symbol: str, limit: int) -> bytes:  # pragma: no cover - not used here
        raise NotImplementedError

    def next_time_ms(self) -> int | None:  # pragma: no cover - not used here
        return None

    def step(self) -> list[Event]:  # pragma: no cover - not used here
        return []

    def move(self, bids: Sequence[tuple[str, str]] = (), asks: Sequence[tuple[str, str]] = ()) -> Event:
        """Change levels of the truth (qty "0" deletes); the depth event to hand the engine."""
        # Spot: U = previous u + 1. Futures: pu = previous u, and U <= u (the first event
        # after the snapshot straddles it).
        first = self.update_id if self.market.is_futures else self.update_id + 1
        pu = self.update_id if self.market.is_futures else None
        self.update_id += 1
        self.book.apply_diff(first, self.update_id, [list(x) for x in bids], [list(x) for x in asks], pu)
        return Event("BTCUSDT", "btcusdt@depth", "depth", b"{}", T0, self.update_id)


class Rig:
    """An engine, its source, a settable clock and every user-data event per key."""

    def __init__(self, market: Market = Market.SPOT, *, balances: Mapping[str, str] | None = None, **kw: Any):
        self.source = Source(market, **kw)
        self.now = T0
        self.balances = dict(balances or {"BTC": "1", "USDT": "10000"})
        self.engine = TradingEngine(
            market, self.source, now_ms=lambda: self.now, balances=lambda key: self.balances
        )
        self.events: dict[str, list[dict[str, Any]]] = {KEY: [], OTHER: []}
        self.engine.add_listener(KEY, self.events[KEY].append)
        self.engine.add_listener(OTHER, self.events[OTHER].append)
        self.handlers = {(m, p): h for m, p, _, h in self.engine.routes()}
        self.prefix = "/api/v3" if market is Market.SPOT else "/fapi/v1"

    def call(self, method: str, path: str, key: str = KEY, **params: Any) -> Any:
        full = path if path.startswith(("/api/", "/fapi/", "/dapi/")) else f"{self.prefix}{path}"
        return self.handlers[(method, full)]({k: str(v) for k, v in params.items()}, key)

    def refuse(self, method: str, path: str, key: str = KEY, **params: Any) -> ApiError:
        with pytest.raises(ApiError) as info:
            self.call(method, path, key, **params)
        return info.value

    def order(self, key: str = KEY, **params: Any) -> Any:
        return self.call("POST", "/order", key, symbol="BTCUSDT", **params)

    def refuse_order(self, key: str = KEY, **params: Any) -> ApiError:
        """An order the exchange must refuse: its error."""
        return self.refuse("POST", "/order", key, symbol="BTCUSDT", **params)

    def trade(self, price: str, qty: str, *, buyer_maker: bool = True, kind: str = "trade") -> None:
        m = "true" if buyer_maker else "false"
        payload = f'{{"e":"{kind}","E":{self.now},"s":"BTCUSDT","p":"{price}","q":"{qty}","m":{m}}}'
        self.engine.on_events([Event("BTCUSDT", f"btcusdt@{kind}", kind, payload.encode(), self.now, 0)])

    def depth(self, bids: Sequence[tuple[str, str]] = (), asks: Sequence[tuple[str, str]] = ()) -> None:
        self.engine.on_events([self.source.move(bids, asks)])

    def balance(self, asset: str, key: str = KEY) -> tuple[str, str]:
        for row in self.call("GET", "/account", key)["balances"]:
            if row["asset"] == asset:
                return row["free"], row["locked"]
        return "0.00000000", "0.00000000"

    def kinds(self, key: str = KEY) -> list[str]:
        """Event types, executionReports as ``ER:x:X``."""
        out = []
        for e in self.events[key]:
            if e["e"] == "executionReport":
                out.append(f"ER:{e['x']}:{e['X']}")
            elif e["e"] == "ORDER_TRADE_UPDATE":
                out.append(f"OTU:{e['o']['x']}:{e['o']['X']}")
            elif e["e"] == "ALGO_UPDATE":
                out.append(f"ALGO:{e['o']['X']}")
            elif e["e"] == "listStatus":
                out.append(f"LIST:{e['l']}")
            else:
                out.append(e["e"])
        return out

    def reports(self, key: str = KEY) -> list[dict[str, Any]]:
        return [e for e in self.events[key] if e["e"] == "executionReport"]

    def clear(self) -> None:
        for events in self.events.values():
            events.clear()


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.fixture
def frig() -> Rig:
    return Rig(Market.USDM)


def limit(rig: Rig, side: str, qty: str, price: str, tif: str = "GTC", **kw: Any) -> Any:
    return rig.order(side=side, type="LIMIT", timeInForce=tif, quantity=qty, price=price, **kw)


# ==================================================================================== spot


def test_routes_cover_every_spot_endpoint_with_ws_api_names() -> None:
    routes = {(m, p): ws for m, p, ws, _ in Rig().engine.routes()}
    expected = {
        ("POST", "/api/v3/order"): "order.place",
        ("POST", "/api/v3/order/test"): "order.test",
        ("GET", "/api/v3/order"): "order.status",
        ("DELETE", "/api/v3/order"): "order.cancel",
        ("POST", "/api/v3/order/cancelReplace"): "order.cancelReplace",
        ("PUT", "/api/v3/order/amend/keepPriority"): "order.amend.keepPriority",
        ("GET", "/api/v3/openOrders"): "openOrders.status",
        ("DELETE", "/api/v3/openOrders"): "openOrders.cancelAll",
        ("GET", "/api/v3/allOrders"): "allOrders",
        ("POST", "/api/v3/orderList/oco"): "orderList.place.oco",
        ("POST", "/api/v3/orderList/oto"): "orderList.place.oto",
        ("POST", "/api/v3/orderList/otoco"): "orderList.place.otoco",
        ("DELETE", "/api/v3/orderList"): "orderList.cancel",
        ("GET", "/api/v3/orderList"): "orderList.status",
        ("GET", "/api/v3/account"): "account.status",
        ("GET", "/api/v3/myTrades"): "myTrades",
        ("GET", "/api/v3/rateLimit/order"): "account.rateLimits.orders",
    }
    for key, ws in expected.items():
        assert routes[key] == ws


def test_market_buy_takes_the_crossed_levels_at_their_prices(rig: Rig) -> None:
    r = rig.order(side="BUY", type="MARKET", quantity="2", newClientOrderId="mkt-1")
    assert r["status"] == "FILLED"
    assert r["clientOrderId"] == "mkt-1"
    assert r["executedQty"] == "2.00000000"
    assert r["cummulativeQuoteQty"] == "203.00000000"  # 1 x 101 + 1 x 102
    assert r["transactTime"] == T0
    assert r["fills"] == [
        {
            "price": "101.00000000",
            "qty": "1.00000000",
            "commission": "0.00100000",
            "commissionAsset": "BTC",
            "tradeId": 1,
        },
        {
            "price": "102.00000000",
            "qty": "1.00000000",
            "commission": "0.00100000",
            "commissionAsset": "BTC",
            "tradeId": 2,
        },
    ]
    # 1 + 2 - 0.002 commission; 10000 - 203
    assert rig.balance("BTC") == ("2.99800000", "0.00000000")
    assert rig.balance("USDT") == ("9797.00000000", "0.00000000")
    assert rig.kinds() == [
        "ER:NEW:NEW",
        "ER:TRADE:PARTIALLY_FILLED",
        "ER:TRADE:FILLED",
        "outboundAccountPosition",
    ]
    position = rig.events[KEY][-1]
    assert position["B"] == [
        {"a": "BTC", "f": "2.99800000", "l": "0.00000000"},
        {"a": "USDT", "f": "9797.00000000", "l": "0.00000000"},
    ]
    trade = rig.reports()[1]
    assert (trade["l"], trade["L"], trade["n"], trade["N"], trade["t"], trade["m"]) == (
        "1.00000000",
        "101.00000000",
        "0.00100000",
        "BTC",
        1,
        False,
    )


def test_market_sell_pays_commission_in_quote(rig: Rig) -> None:
    r = rig.order(side="SELL", type="MARKET", quantity="0.5")
    assert r["fills"] == [
        {
            "price": "100.00000000",
            "qty": "0.50000000",
            "commission": "0.05000000",
            "commissionAsset": "USDT",
            "tradeId": 1,
        }
    ]
    assert rig.balance("BTC") == ("0.50000000", "0.00000000")
    assert rig.balance("USDT") == ("10049.95000000", "0.00000000")  # + 50 - 0.05


def test_market_buy_with_quote_order_qty_respects_the_lot_step(rig: Rig) -> None:
    r = rig.order(side="BUY", type="MARKET", quoteOrderQty="150")
    # 101 buys the whole first level; 49 left buys floor(49 / 102, step 0.001) = 0.480 at 102.
    assert [(f["price"], f["qty"]) for f in r["fills"]] == [
        ("101.00000000", "1.00000000"),
        ("102.00000000", "0.48000000"),
    ]
    assert r["origQuoteOrderQty"] == "150.00000000"
    assert r["cummulativeQuoteQty"] == "149.96000000"
    assert r["executedQty"] == r["origQty"] == "1.48000000"
    assert r["status"] == "FILLED"
    assert rig.balance("USDT") == ("9850.04000000", "0.00000000")


def test_market_sell_with_quote_order_qty(rig: Rig) -> None:
    r = rig.order(side="SELL", type="MARKET", quoteOrderQty="50")
    assert [(f["price"], f["qty"]) for f in r["fills"]] == [("100.00000000", "0.50000000")]
    assert r["status"] == "FILLED"


def test_market_order_out_of_liquidity_expires_with_what_it_got() -> None:
    rig = Rig(balances={"BTC": "1", "USDT": "100000"})
    r = rig.order(side="BUY", type="MARKET", quantity="10")
    assert r["status"] == "EXPIRED"
    assert r["executedQty"] == "8.00000000"  # the whole ask side: 1 + 2 + 5
    assert r["expiryReason"] == "INSUFFICIENT_LIQUIDITY"
    assert rig.kinds()[-2] == "ER:EXPIRED:EXPIRED"
    assert rig.reports()[-1]["eR"] == "INSUFFICIENT_LIQUIDITY"


def test_ioc_takes_what_crosses_and_expires_the_rest(rig: Rig) -> None:
    r = limit(rig, "BUY", "2", "101.50", "IOC")
    assert r["status"] == "EXPIRED"
    assert r["executedQty"] == "1.00000000"
    assert [f["price"] for f in r["fills"]] == ["101.00000000"]
    assert rig.balance("USDT") == ("9899.00000000", "0.00000000")  # the lock of the rest came back


def test_fok_fills_completely_or_not_at_all(rig: Rig) -> None:
    r = limit(rig, "BUY", "4", "102.00", "FOK")  # only 3 at or below 102
    assert (r["status"], r["executedQty"], r["fills"]) == ("EXPIRED", "0.00000000", [])
    assert rig.balance("USDT") == ("10000.00000000", "0.00000000")
    r = limit(rig, "BUY", "3", "102.00", "FOK")
    assert (r["status"], r["cummulativeQuoteQty"]) == ("FILLED", "305.00000000")


def test_gtc_limit_takes_then_rests_and_locks(rig: Rig) -> None:
    r = limit(rig, "BUY", "2", "101.00")
    assert (r["status"], r["executedQty"]) == ("PARTIALLY_FILLED", "1.00000000")
    assert rig.balance("USDT") == ("9798.00000000", "101.00000000")  # 101 spent, 101 locked
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert q["isWorking"] is True
    assert q["status"] == "PARTIALLY_FILLED"


def test_resting_order_fills_when_a_trade_goes_through_its_price(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.50")
    assert r["status"] == "NEW"
    assert rig.balance("USDT") == ("9900.50000000", "99.50000000")
    rig.clear()
    rig.trade("99.60", "5")  # above the bid: nothing
    rig.trade("99.40", "0.4")  # through it: 0.4 fills at the order's own price
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["status"], q["executedQty"], q["cummulativeQuoteQty"]) == (
        "PARTIALLY_FILLED",
        "0.40000000",
        "39.80000000",
    )
    report = rig.reports()[0]
    assert (report["x"], report["m"], report["L"], report["l"], report["n"]) == (
        "TRADE",
        True,
        "99.50000000",
        "0.40000000",
        "0.00040000",
    )
    rig.trade("99.00", "3")
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["status"], q["executedQty"]) == ("FILLED", "1.00000000")
    assert rig.balance("USDT") == ("9900.50000000", "0.00000000")
    assert rig.balance("BTC") == ("1.99900000", "0.00000000")  # 0.0004 + 0.0006 maker commission


def test_trades_at_the_price_first_eat_the_queue_ahead(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "100.00")  # 1 BTC of the true book rests ahead at 100
    rig.trade("100.00", "0.6")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["executedQty"] == "0.00000000"
    rig.trade("100.00", "0.6", buyer_maker=False)  # a buyer took an ask at 100: not our side
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["executedQty"] == "0.00000000"
    rig.trade("100.00", "0.6")  # 0.4 left of the queue, then 0.2 for us
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["executedQty"] == "0.20000000"


def test_one_trade_is_shared_by_our_orders_in_price_time_priority(rig: Rig) -> None:
    a = limit(rig, "BUY", "1", "99.50")
    b = limit(rig, "BUY", "1", "99.80")
    rig.trade("99.00", "1.5")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=b["orderId"])["executedQty"] == "1.00000000"
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=a["orderId"])["executedQty"] == "0.50000000"


def test_aggtrades_count_only_without_a_trade_stream(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.50")
    rig.trade("99.00", "0.3", kind="aggTrade")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["executedQty"] == "0.30000000"
    rig.trade("99.00", "0.1", kind="trade")
    rig.trade("99.00", "0.1", kind="aggTrade")  # the same fill again, aggregated: ignored now
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["executedQty"] == "0.40000000"


def test_without_trades_the_book_crossing_the_price_fills_it(rig: Rig) -> None:
    r = limit(rig, "SELL", "1", "101.50")
    rig.depth(asks=[("101.00", "0"), ("102.00", "0")])  # the asks above our price go
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["executedQty"] == "0.00000000"
    rig.depth(bids=[("101.60", "0.3")])  # a bid above our ask: 0.3 fills at 101.50
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["executedQty"], q["cummulativeQuoteQty"]) == ("0.30000000", "30.45000000")
    rig.depth(bids=[("101.60", "0"), ("101.50", "2")])
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert q["status"] == "FILLED"


def test_cancel_reports_the_cancel_id_in_c_and_the_order_id_in_C(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.00", newClientOrderId="mine")
    rig.clear()
    c = rig.call("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"], newClientOrderId="cxl-1")
    assert (c["status"], c["origClientOrderId"], c["clientOrderId"]) == ("CANCELED", "mine", "cxl-1")
    report = rig.reports()[0]
    assert (report["x"], report["X"], report["c"], report["C"]) == ("CANCELED", "CANCELED", "cxl-1", "mine")
    assert rig.balance("USDT") == ("10000.00000000", "0.00000000")
    q = rig.call("GET", "/order", symbol="BTCUSDT", origClientOrderId="mine")
    assert q["status"] == "CANCELED"


def test_order_lookup_rules(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.00", newClientOrderId="look")
    e = rig.refuse("GET", "/order", symbol="BTCUSDT")
    assert e.code == -1102
    e = rig.refuse("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"], origClientOrderId="other")
    assert (e.code, e.msg) == (-2013, "Order does not exist.")
    assert (
        rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"], origClientOrderId="look")["orderId"]
        == r["orderId"]
    )
    assert rig.refuse("GET", "/order", symbol="BTCUSDT", orderId=999).code == -2013
    assert (
        rig.refuse("GET", "/order", OTHER, symbol="BTCUSDT", orderId=r["orderId"]).code == -2013
    )  # not theirs
    e = rig.refuse("DELETE", "/order", symbol="BTCUSDT", orderId=999)
    assert (e.code, e.msg) == (-2011, "Unknown order sent.")
    rig.call("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (
        rig.refuse("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"]).code == -2011
    )  # already gone
    assert rig.refuse("GET", "/order", symbol="ETHUSDT", orderId=1).code == -1121


def test_cancel_restrictions(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.00")
    e = rig.refuse(
        "DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"], cancelRestrictions="ONLY_PARTIALLY_FILLED"
    )
    assert (e.code, e.msg) == (-2011, "Order was not canceled due to cancel restrictions.")
    assert (
        rig.refuse("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"], cancelRestrictions="X").code
        == -1145
    )
    c = rig.call("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"], cancelRestrictions="ONLY_NEW")
    assert c["status"] == "CANCELED"


def test_duplicate_client_id_refused_while_open_and_reusable_once_closed(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.00", newClientOrderId="dup")
    e = rig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="1",
        price="98.00",
        newClientOrderId="dup",
    )
    assert (e.status, e.code, e.msg) == (400, -2010, "Duplicate order sent.")
    assert limit(rig, "BUY", "0.1", "98.00", newClientOrderId="dup-other")["status"] == "NEW"
    # another account may use the same id
    assert (
        rig.order(
            OTHER,
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="1",
            price="98.00",
            newClientOrderId="dup",
        )["status"]
        == "NEW"
    )
    rig.call("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert limit(rig, "BUY", "1", "98.00", newClientOrderId="dup")["status"] == "NEW"
    # a filled order's id is free at once (spec 10.4: a blind resend executes again)
    rig.order(side="SELL", type="MARKET", quantity="0.1", newClientOrderId="fill-me")
    assert (
        rig.order(side="SELL", type="MARKET", quantity="0.1", newClientOrderId="fill-me")["status"]
        == "FILLED"
    )


def test_client_order_id_charset(rig: Rig) -> None:
    e = rig.refuse_order(
        side="BUY",
        type="MARKET",
        quantity="1",
        newClientOrderId="bad id!",
    )
    assert e.code == -1100
    e = rig.refuse_order(side="BUY", type="MARKET", quantity="1", newClientOrderId="x" * 37)
    assert e.code == -1100


def test_insufficient_balance(rig: Rig) -> None:
    msg = "Account has insufficient balance for requested action."
    e = rig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="102",
        price="99.00",
    )
    assert (e.code, e.msg) == (-2010, msg)
    e = rig.refuse_order(side="SELL", type="MARKET", quantity="1.5")
    assert (e.code, e.msg) == (-2010, msg)
    e = rig.refuse_order(side="BUY", type="MARKET", quoteOrderQty="10001")
    assert (e.code, e.msg) == (-2010, msg)
    limit(rig, "SELL", "0.8", "105.00")  # locks 0.8 BTC
    e = rig.refuse_order(
        side="SELL",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.3",
        price="105.00",
    )
    assert e.msg == msg
    assert rig.kinds().count("ER:NEW:NEW") == 1  # refusals leave no trace


def test_limit_maker(rig: Rig) -> None:
    e = rig.refuse_order(side="BUY", type="LIMIT_MAKER", quantity="1", price="101.00")
    assert (e.code, e.msg) == (-2010, "Order would immediately match and take.")
    r = rig.order(side="BUY", type="LIMIT_MAKER", quantity="1", price="100.50", newOrderRespType="RESULT")
    assert (r["status"], r["type"], r["timeInForce"]) == ("NEW", "LIMIT_MAKER", "GTC")


def test_filters_answer_with_the_exchange_code(rig: Rig) -> None:
    e = rig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="1",
        price="99.005",
    )
    assert (e.status, e.code, e.msg) == (400, -1013, "Filter failure: PRICE_FILTER")
    e = rig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="1.0005",
        price="99.00",
    )
    assert (e.code, e.msg) == (-1013, "Filter failure: LOT_SIZE")


def test_mandatory_and_malformed_parameters(rig: Rig) -> None:
    base = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1"}
    assert rig.refuse("POST", "/order", **base, type="LIMIT", timeInForce="GTC").code == -1102  # price
    assert rig.refuse("POST", "/order", **base, type="LIMIT", price="99").code == -1102  # timeInForce
    assert rig.refuse("POST", "/order", **base, type="LIMITED").code == -1116
    assert rig.refuse("POST", "/order", **{**base, "side": "HOLD"}, type="MARKET").code == -1117
    assert rig.refuse("POST", "/order", **base, type="LIMIT", timeInForce="GTX", price="99").code == -1115
    assert rig.refuse("POST", "/order", **base, type="MARKET", price="99").code == -1106
    assert rig.refuse("POST", "/order", **base, type="LIMIT", timeInForce="GTC", price="9x").code == -1100
    assert rig.refuse_order(side="BUY", type="MARKET").code == -1102
    assert rig.refuse("POST", "/order", **base, type="STOP_LOSS").code == -1102  # stopPrice
    assert rig.refuse("POST", "/order", side="BUY", type="MARKET", quantity="1").code == -1102  # symbol


def test_response_types_and_their_defaults(rig: Rig) -> None:
    full = limit(rig, "BUY", "0.1", "90.00")
    assert "fills" in full
    assert full["workingTime"] == T0
    ack = rig.order(
        side="SELL",
        type="STOP_LOSS_LIMIT",
        timeInForce="GTC",
        quantity="0.1",
        price="90.00",
        stopPrice="95.00",
    )
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = limit(rig, "BUY", "0.1", "90.00", newOrderRespType="RESULT")
    assert "fills" not in result
    assert result["status"] == "NEW"
    assert result["origQuoteOrderQty"] == "0.00000000"
    assert result["selfTradePreventionMode"] == "NONE"
    stop = rig.call("GET", "/order", symbol="BTCUSDT", orderId=ack["orderId"])
    assert (stop["isWorking"], stop["workingTime"], stop["stopPrice"]) == (False, -1, "95.00000000")


def test_test_order_validates_and_reports_commission(rig: Rig) -> None:
    assert rig.call("POST", "/order/test", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1") == {}
    rates = rig.call(
        "POST",
        "/order/test",
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="1",
        computeCommissionRates="true",
    )
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    assert set(rates) == {
        "standardCommissionForOrder",
        "specialCommissionForOrder",
        "taxCommissionForOrder",
        "discount",
    }
    assert (
        rig.refuse("POST", "/order/test", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="1").code
        == -1102
    )
    assert rig.events[KEY] == []
    assert rig.call("GET", "/openOrders", symbol="BTCUSDT") == []


def test_stop_that_would_trigger_immediately_is_refused(rig: Rig) -> None:
    rig.trade("100.50", "1")  # last price 100.50
    for side, otype, stop in (
        ("SELL", "STOP_LOSS", "101.00"),  # sells when last <= stop: already true
        ("BUY", "STOP_LOSS", "100.00"),  # buys when last >= stop
        ("SELL", "TAKE_PROFIT", "100.00"),
        ("BUY", "TAKE_PROFIT", "101.00"),
    ):
        e = rig.refuse_order(side=side, type=otype, quantity="0.1", stopPrice=stop)
        assert (e.code, e.msg) == (-2010, "Order would trigger immediately.")


def test_stop_loss_triggers_on_the_last_trade_and_takes_the_book(rig: Rig) -> None:
    rig.trade("100.50", "1")
    r = rig.order(side="SELL", type="STOP_LOSS", quantity="0.5", stopPrice="99.50", newOrderRespType="RESULT")
    assert (r["status"], r["stopPrice"]) == ("NEW", "99.50000000")
    assert rig.balance("BTC") == ("0.50000000", "0.50000000")
    rig.trade("99.60", "1")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "NEW"
    rig.trade("99.50", "1")  # last <= stop: a market sell into the bids
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["status"], q["cummulativeQuoteQty"], q["isWorking"]) == ("FILLED", "50.00000000", True)
    assert rig.balance("BTC") == ("0.50000000", "0.00000000")
    assert rig.balance("USDT") == ("10049.95000000", "0.00000000")


def test_stop_loss_limit_buy_becomes_a_limit_order(rig: Rig) -> None:
    rig.trade("100.50", "1")
    r = rig.order(
        side="BUY",
        type="STOP_LOSS_LIMIT",
        timeInForce="GTC",
        quantity="2",
        price="101.50",
        stopPrice="101.00",
    )
    assert rig.balance("USDT") == ("9797.00000000", "203.00000000")  # 2 x 101.50 locked
    rig.trade("101.00", "1", buyer_maker=False)
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["status"], q["executedQty"]) == ("PARTIALLY_FILLED", "1.00000000")  # the 101 ask taken
    assert rig.balance("USDT") == ("9797.50000000", "101.50000000")  # 0.50 better than the limit


def test_take_profit_sell_triggers_on_a_rise(rig: Rig) -> None:
    rig.trade("100.50", "1")
    r = rig.order(
        side="SELL",
        type="TAKE_PROFIT_LIMIT",
        timeInForce="GTC",
        quantity="0.5",
        price="100.00",
        stopPrice="102.00",
    )
    rig.trade("101.90", "1")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "NEW"
    rig.trade("102.00", "1")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "FILLED"


def test_trailing_stop_tracks_the_best_price_and_triggers_on_delta(rig: Rig) -> None:
    rig.trade("100.00", "1")
    r = rig.order(side="SELL", type="STOP_LOSS", quantity="0.1", trailingDelta="100")  # 1 %
    for price in ("101.00", "105.00", "104.00"):  # highest 105: triggers at <= 103.95
        rig.trade(price, "1")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "NEW"
    rig.trade("103.95", "1")
    q = rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["status"], q["trailingDelta"]) == ("FILLED", 100)


def test_trailing_take_profit_with_activation_price(rig: Rig) -> None:
    rig.trade("100.00", "1")
    r = rig.order(side="SELL", type="TAKE_PROFIT", quantity="0.1", stopPrice="102.00", trailingDelta="200")
    rig.trade("101.00", "1")
    rig.trade("99.00", "1")  # not activated yet: a fall does nothing
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "NEW"
    rig.trade("102.50", "1")  # activates, tracking from 102.50: triggers at <= 100.45
    rig.trade("101.00", "1")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "NEW"
    rig.trade("100.45", "1")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "FILLED"


def test_unfilled_order_count_limits_and_headers() -> None:
    rig = Rig(orders_per_10s=3)
    for _ in range(3):
        limit(rig, "BUY", "0.1", "90.00")
    assert rig.engine.order_count_headers(KEY) == {"X-MBX-ORDER-COUNT-10S": "3", "X-MBX-ORDER-COUNT-1D": "3"}
    e = rig.refuse_order(side="BUY", type="MARKET", quantity="0.1")
    assert (e.status, e.code) == (429, -1015)
    assert e.msg == "Too many new orders; current limit is 3 orders per 10 SECOND."
    assert e.headers["Retry-After"] == "10"  # T0 is on a 10 s boundary
    assert rig.engine.order_count_headers(OTHER)["X-MBX-ORDER-COUNT-10S"] == "0"  # per account
    rig.now += 10_000  # the 10 s window rolls over, the day does not
    assert rig.engine.order_count_headers(KEY) == {"X-MBX-ORDER-COUNT-10S": "0", "X-MBX-ORDER-COUNT-1D": "3"}
    rig.order(side="BUY", type="MARKET", quantity="0.1")  # +1, then its first fill gives 1 back
    assert rig.engine.order_count_headers(KEY) == {"X-MBX-ORDER-COUNT-10S": "0", "X-MBX-ORDER-COUNT-1D": "3"}
    limits = rig.call("GET", "/rateLimit/order")
    assert limits == [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 3, "count": 0},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000, "count": 3},
    ]


def test_open_orders_all_orders_my_trades_and_account(rig: Rig) -> None:
    a = limit(rig, "BUY", "1", "99.00")
    b = rig.order(side="BUY", type="MARKET", quantity="1.5")
    assert [o["orderId"] for o in rig.call("GET", "/openOrders", symbol="BTCUSDT")] == [a["orderId"]]
    assert [o["orderId"] for o in rig.call("GET", "/openOrders")] == [a["orderId"]]
    assert rig.call("GET", "/openOrders", OTHER) == []
    assert [o["status"] for o in rig.call("GET", "/allOrders", symbol="BTCUSDT")] == ["NEW", "FILLED"]
    trades = rig.call("GET", "/myTrades", symbol="BTCUSDT")
    assert [(t["price"], t["qty"], t["quoteQty"], t["isBuyer"], t["isMaker"]) for t in trades] == [
        ("101.00000000", "1.00000000", "101.00000000", True, False),
        ("102.00000000", "0.50000000", "51.00000000", True, False),
    ]
    assert trades[0]["orderId"] == b["orderId"]
    assert trades[0]["commissionAsset"] == "BTC"
    assert rig.call("GET", "/myTrades", symbol="BTCUSDT", orderId=a["orderId"]) == []
    account = rig.call("GET", "/account")
    assert (account["makerCommission"], account["takerCommission"], account["accountType"]) == (
        10,
        10,
        "SPOT",
    )
    assert account["commissionRates"]["taker"] == "0.00100000"
    rows = {r["asset"]: (r["free"], r["locked"]) for r in account["balances"]}
    # 10000 - 152 spent - 99 locked; 1 + 1.5 - 0.0015 commission
    assert rows == {"BTC": ("2.49850000", "0.00000000"), "USDT": ("9749.00000000", "99.00000000")}
    rig.balances["ETH"] = "0"
    fresh = Rig(balances={"BTC": "0", "USDT": "5"})
    assert [r["asset"] for r in fresh.call("GET", "/account", omitZeroBalances="true")["balances"]] == [
        "USDT"
    ]


def test_cancel_open_orders(rig: Rig) -> None:
    limit(rig, "BUY", "1", "99.00")
    limit(rig, "BUY", "1", "98.00")
    rig.order(OTHER, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="97.00")
    out = rig.call("DELETE", "/openOrders", symbol="BTCUSDT")
    assert [o["status"] for o in out] == ["CANCELED", "CANCELED"]
    assert rig.call("GET", "/openOrders", symbol="BTCUSDT") == []
    assert len(rig.call("GET", "/openOrders", OTHER, symbol="BTCUSDT")) == 1
    assert rig.balance("USDT") == ("10000.00000000", "0.00000000")


# ------------------------------------------------------------------------------ cancelReplace


def _replace_params(mode: str, **kw: Any) -> dict[str, Any]:
    """A cancelReplace whose new order is a BUY LIMIT of 1 at 98.00 (``kw`` overrides)."""
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1",
        "price": "98.00",
        "cancelReplaceMode": mode,
        **kw,
    }


def _replace(rig: Rig, mode: str, **kw: Any) -> Any:
    return rig.call("POST", "/order/cancelReplace", **_replace_params(mode, **kw))


def _refuse_replace(rig: Rig, mode: str, **kw: Any) -> ApiError:
    return rig.refuse("POST", "/order/cancelReplace", **_replace_params(mode, **kw))


def test_cancel_replace_success(rig: Rig) -> None:
    r = limit(rig, "BUY", "1", "99.00", newClientOrderId="old")
    out = _replace(
        rig,
        "STOP_ON_FAILURE",
        cancelOrderId=r["orderId"],
        newClientOrderId="new",
        cancelNewClientOrderId="cxl",
    )
    assert (out["cancelResult"], out["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert (out["cancelResponse"]["status"], out["cancelResponse"]["clientOrderId"]) == ("CANCELED", "cxl")
    assert out["cancelResponse"]["origClientOrderId"] == "old"
    assert (out["newOrderResponse"]["clientOrderId"], out["newOrderResponse"]["price"]) == (
        "new",
        "98.00000000",
    )
    assert rig.balance("USDT") == ("9902.00000000", "98.00000000")


def test_cancel_replace_stop_on_failure_does_not_attempt_the_new_order(rig: Rig) -> None:
    e = _refuse_replace(rig, "STOP_ON_FAILURE", cancelOrderId=12345)
    assert (e.status, e.code, e.msg) == (400, -2022, "Order cancel-replace failed.")
    assert e.body["data"] == {
        "cancelResult": "FAILURE",
        "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": None,
    }
    assert rig.call("GET", "/openOrders") == []


def test_cancel_replace_partial_success_is_409(rig: Rig) -> None:
    e = _refuse_replace(rig, "ALLOW_FAILURE", cancelOrderId=12345)
    assert (e.status, e.code, e.msg) == (409, -2021, "Order cancel-replace partially failed.")
    data = e.body["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert data["newOrderResponse"]["status"] == "NEW"
    r = limit(rig, "BUY", "1", "99.00")
    e = _refuse_replace(rig, "STOP_ON_FAILURE", quantity="1000", cancelOrderId=r["orderId"])
    assert (e.status, e.code) == (409, -2021)
    data = e.body["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert data["newOrderResponse"] == {
        "code": -2010,
        "msg": "Account has insufficient balance for requested action.",
    }
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "CANCELED"


def test_cancel_replace_both_failing_under_allow_failure(rig: Rig) -> None:
    e = _refuse_replace(rig, "ALLOW_FAILURE", quantity="1000", cancelOrderId=9)
    assert (e.status, e.code) == (400, -2022)
    assert (e.body["data"]["cancelResult"], e.body["data"]["newOrderResult"]) == ("FAILURE", "FAILURE")


def test_cancel_replace_requires_its_mode_and_a_cancel_target(rig: Rig) -> None:
    e = rig.refuse(
        "POST",
        "/order/cancelReplace",
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="1",
        cancelOrderId=1,
    )
    assert e.code == -1102
    e = rig.refuse(
        "POST",
        "/order/cancelReplace",
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="1",
        cancelReplaceMode="STOP_ON_FAILURE",
    )
    assert e.code == -1102


# ------------------------------------------------------------------------------ amend


def test_amend_keep_priority_reduces_the_quantity(rig: Rig) -> None:
    r = limit(rig, "BUY", "2", "99.00", newClientOrderId="amend-me")
    rig.clear()
    out = rig.call(
        "PUT",
        "/order/amend/keepPriority",
        symbol="BTCUSDT",
        orderId=r["orderId"],
        newQty="1.5",
        newClientOrderId="amended",
    )
    order = out["amendedOrder"]
    assert (order["qty"], order["origClientOrderId"], order["clientOrderId"], order["status"]) == (
        "1.50000000",
        "amend-me",
        "amended",
        "NEW",
    )
    assert out["executionId"] == rig.reports()[0]["I"]
    assert rig.reports()[0]["x"] == "REPLACED"
    assert rig.balance("USDT") == ("9851.50000000", "148.50000000")  # the lock of 0.5 came back
    assert rig.call("GET", "/order", symbol="BTCUSDT", origClientOrderId="amended")["origQty"] == "1.50000000"
    rows = rig.call("GET", "/order/amendments", symbol="BTCUSDT", orderId=r["orderId"])
    assert [(a["origQty"], a["newQty"]) for a in rows] == [("2.00000000", "1.50000000")]


def test_amend_limits(rig: Rig) -> None:
    r = limit(rig, "BUY", "2", "99.00")
    e = rig.refuse("PUT", "/order/amend/keepPriority", symbol="BTCUSDT", orderId=r["orderId"], newQty="2")
    assert e.code == -2038
    e = rig.refuse("PUT", "/order/amend/keepPriority", symbol="BTCUSDT", orderId=r["orderId"], newQty="3")
    assert e.code == -2038
    qty = Decimal(2)
    for _ in range(10):
        qty -= Decimal("0.1")
        rig.call("PUT", "/order/amend/keepPriority", symbol="BTCUSDT", orderId=r["orderId"], newQty=str(qty))
    e = rig.refuse("PUT", "/order/amend/keepPriority", symbol="BTCUSDT", orderId=r["orderId"], newQty="0.5")
    assert e.code == -2038  # MAX_NUM_ORDER_AMENDS: 10
    assert (
        rig.refuse("PUT", "/order/amend/keepPriority", symbol="BTCUSDT", orderId=999, newQty="1").code
        == -2013
    )


# ------------------------------------------------------------------------------ order lists


def _oco_sell(rig: Rig, **kw: Any) -> Any:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "0.5",
        "aboveType": "LIMIT_MAKER",
        "abovePrice": "105.00",
        "belowType": "STOP_LOSS_LIMIT",
        "belowPrice": "94.00",
        "belowStopPrice": "95.00",
        "belowTimeInForce": "GTC",
        "listClientOrderId": "oco-1",
        **kw,
    }
    return rig.call("POST", "/orderList/oco", **params)


def test_oco_places_two_legs_and_locks_once(rig: Rig) -> None:
    rig.trade("100.50", "1")
    out = _oco_sell(rig, aboveClientOrderId="up", belowClientOrderId="down")
    assert (out["contingencyType"], out["listStatusType"], out["listOrderStatus"]) == (
        "OCO",
        "EXEC_STARTED",
        "EXECUTING",
    )
    assert out["listClientOrderId"] == "oco-1"
    assert [o["clientOrderId"] for o in out["orders"]] == ["down", "up"]
    assert [r["type"] for r in out["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert all(r["orderListId"] == out["orderListId"] for r in out["orderReports"])
    assert rig.balance("BTC") == ("0.50000000", "0.50000000")  # 0.5 locked once for both legs
    assert rig.kinds() == ["ER:NEW:NEW", "ER:NEW:NEW", "LIST:EXEC_STARTED", "outboundAccountPosition"]
    assert rig.call("GET", "/orderList", orderListId=out["orderListId"])["listOrderStatus"] == "EXECUTING"
    assert len(rig.call("GET", "/openOrderList")) == 1


def test_oco_limit_leg_fill_expires_the_stop_leg(rig: Rig) -> None:
    rig.trade("100.50", "1")
    out = _oco_sell(rig)
    rig.clear()
    rig.trade("105.10", "2", buyer_maker=False)  # through the limit maker
    assert rig.kinds() == [
        "ER:TRADE:FILLED",
        "ER:EXPIRED:EXPIRED",
        "LIST:ALL_DONE",
        "outboundAccountPosition",
    ]
    assert rig.reports()[1]["eR"] == "OCO_TRIGGER"
    assert rig.balance("BTC") == ("0.50000000", "0.00000000")
    assert rig.balance("USDT") == ("10052.44750000", "0.00000000")  # 52.5 - 0.0525 commission
    status = rig.call("GET", "/orderList", origClientOrderId="oco-1")
    assert (status["listStatusType"], status["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert rig.call("GET", "/openOrderList") == []
    assert out["orderListId"] == status["orderListId"]


def test_oco_stop_leg_trigger_expires_the_limit_leg(rig: Rig) -> None:
    rig.trade("100.50", "1")
    _oco_sell(rig, belowType="STOP_LOSS", belowPrice="", belowTimeInForce="")
    rig.clear()
    rig.trade("94.90", "1")
    assert rig.kinds() == [
        "ER:EXPIRED:EXPIRED",
        "ER:TRADE:FILLED",
        "LIST:ALL_DONE",
        "outboundAccountPosition",
    ]
    assert rig.balance("BTC") == ("0.50000000", "0.00000000")


def test_oco_price_rules(rig: Rig) -> None:
    rig.trade("100.50", "1")
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.5",
            aboveType="LIMIT_MAKER",
            abovePrice="100.00",
            belowType="STOP_LOSS",
            belowStopPrice="95.00",
        ).code
        == -1166
    )
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.5",
            aboveType="LIMIT_MAKER",
            abovePrice="105.00",
            belowType="STOP_LOSS",
            belowStopPrice="101.00",
        ).code
        == -1197
    )
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="BUY",
            quantity="0.5",
            aboveType="STOP_LOSS",
            aboveStopPrice="100.00",
            belowType="LIMIT_MAKER",
            belowPrice="95.00",
        ).code
        == -1196
    )
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="BUY",
            quantity="0.5",
            aboveType="STOP_LOSS",
            aboveStopPrice="105.00",
            belowType="TAKE_PROFIT",
            belowStopPrice="101.00",
        ).code
        == -1198
    )
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.5",
            aboveType="LIMIT_MAKER",
            abovePrice="105.00",
            belowType="LIMIT_MAKER",
            belowPrice="95.00",
        ).code
        == -1168
    )
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.5",
            aboveType="MARKET",
            belowType="STOP_LOSS",
            belowStopPrice="95",
        ).code
        == -1158
    )
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.5",
            aboveType="LIMIT_MAKER",
            abovePrice="105.00",
            aboveIcebergQty="0.1",
            aboveTimeInForce="IOC",
            belowType="STOP_LOSS",
            belowStopPrice="95.00",
        ).code
        == -1160
    )
    buy = rig.call(
        "POST",
        "/orderList/oco",
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.5",
        aboveType="STOP_LOSS",
        aboveStopPrice="105.00",
        belowType="LIMIT_MAKER",
        belowPrice="95.00",
    )
    assert buy["listOrderStatus"] == "EXECUTING"
    assert rig.balance("USDT") == ("9947.50000000", "52.50000000")  # the dearer leg: 0.5 x 105


def test_cancel_a_leg_cancels_the_list(rig: Rig) -> None:
    rig.trade("100.50", "1")
    out = _oco_sell(rig)
    rig.clear()
    rig.call("DELETE", "/order", symbol="BTCUSDT", orderId=out["orders"][1]["orderId"])
    assert rig.kinds() == [
        "ER:CANCELED:CANCELED",
        "ER:CANCELED:CANCELED",
        "LIST:ALL_DONE",
        "outboundAccountPosition",
    ]
    assert rig.balance("BTC") == ("1.00000000", "0.00000000")
    e = rig.refuse("DELETE", "/orderList", symbol="BTCUSDT", orderListId=out["orderListId"])
    assert e.code == -2011


def test_delete_order_list(rig: Rig) -> None:
    rig.trade("100.50", "1")
    out = _oco_sell(rig)
    done = rig.call("DELETE", "/orderList", symbol="BTCUSDT", listClientOrderId="oco-1")
    assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in done["orderReports"]] == ["CANCELED", "CANCELED"]
    assert done["orderListId"] == out["orderListId"]
    assert rig.refuse("GET", "/orderList", orderListId=999).code == -2013
    assert rig.refuse("GET", "/orderList").code == -1102
    # the list client id is free again
    assert _oco_sell(rig)["listOrderStatus"] == "EXECUTING"
    assert (
        rig.refuse(
            "POST",
            "/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.1",
            aboveType="LIMIT_MAKER",
            abovePrice="105.00",
            belowType="STOP_LOSS",
            belowStopPrice="95.00",
            listClientOrderId="oco-1",
        ).msg
        == "Duplicate order sent."
    )


# The working leg of the OTO/OTOCO tests: a BUY LIMIT of 1 at 99.50, resting below the book.
_WORKING_BUY: dict[str, str] = {
    "workingType": "LIMIT",
    "workingSide": "BUY",
    "workingPrice": "99.50",
    "workingQuantity": "1",
    "workingTimeInForce": "GTC",
}


def test_oto_pending_leg_starts_when_the_working_leg_fills(rig: Rig) -> None:
    out = rig.call(
        "POST",
        "/orderList/oto",
        symbol="BTCUSDT",
        **_WORKING_BUY,
        pendingType="LIMIT_MAKER",
        pendingSide="SELL",
        pendingPrice="110.00",
        pendingQuantity="1",
    )
    assert out["contingencyType"] == "OTO"
    assert [r["status"] for r in out["orderReports"]] == ["NEW", "PENDING_NEW"]
    pending_id = out["orders"][1]["orderId"]
    assert rig.balance("BTC") == ("1.00000000", "0.00000000")  # the pending leg holds nothing yet
    rig.clear()
    rig.trade("99.00", "0.5")
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=pending_id)["status"] == "PENDING_NEW"
    rig.trade("99.00", "0.5")
    assert rig.kinds() == [
        "ER:TRADE:PARTIALLY_FILLED",
        "outboundAccountPosition",
        "ER:TRADE:FILLED",
        "ER:NEW:NEW",
        "outboundAccountPosition",
    ]
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=pending_id)["status"] == "NEW"
    assert rig.balance("BTC") == ("0.99900000", "1.00000000")
    rig.trade("110.50", "3", buyer_maker=False)
    assert rig.call("GET", "/order", symbol="BTCUSDT", orderId=pending_id)["status"] == "FILLED"
    assert rig.call("GET", "/orderList", orderListId=out["orderListId"])["listOrderStatus"] == "ALL_DONE"


def test_oto_cancel_of_the_working_leg_ends_the_list(rig: Rig) -> None:
    out = rig.call(
        "POST",
        "/orderList/oto",
        symbol="BTCUSDT",
        **_WORKING_BUY,
        pendingType="MARKET",
        pendingSide="SELL",
        pendingQuantity="1",
    )
    rig.call("DELETE", "/order", symbol="BTCUSDT", orderId=out["orders"][0]["orderId"])
    assert [o["status"] for o in rig.call("GET", "/allOrders", symbol="BTCUSDT")] == ["CANCELED", "CANCELED"]
    assert rig.call("GET", "/orderList", orderListId=out["orderListId"])["listOrderStatus"] == "ALL_DONE"
    e = rig.refuse(
        "POST",
        "/orderList/oto",
        symbol="BTCUSDT",
        workingType="MARKET",
        workingSide="BUY",
        workingQuantity="1",
        pendingType="MARKET",
        pendingSide="SELL",
        pendingQuantity="1",
    )
    assert e.code == -1158


def test_otoco_pending_pair_becomes_an_oco(rig: Rig) -> None:
    rig.trade("100.50", "1")
    out = rig.call(
        "POST",
        "/orderList/otoco",
        symbol="BTCUSDT",
        **_WORKING_BUY,
        pendingSide="SELL",
        pendingQuantity="1",
        pendingAboveType="LIMIT_MAKER",
        pendingAbovePrice="110.00",
        pendingBelowType="STOP_LOSS",
        pendingBelowStopPrice="90.00",
    )
    assert [r["status"] for r in out["orderReports"]] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
    assert rig.engine.order_count_headers(KEY)["X-MBX-ORDER-COUNT-10S"] == "3"
    rig.trade("99.00", "1")
    statuses = [o["status"] for o in rig.call("GET", "/allOrders", symbol="BTCUSDT")]
    assert statuses == ["FILLED", "NEW", "NEW"]
    assert rig.balance("BTC") == ("0.99900000", "1.00000000")
    rig.clear()
    rig.trade("89.00", "1")  # the stop leg triggers: a market sell into the 100 bid; the limit expires
    assert rig.kinds()[:2] == ["ER:EXPIRED:EXPIRED", "ER:TRADE:FILLED"]
    assert rig.call("GET", "/orderList", orderListId=out["orderListId"])["listOrderStatus"] == "ALL_DONE"


def test_every_spot_order_type_is_placed_queried_and_canceled(rig: Rig) -> None:
    rig.trade("100.50", "1")
    orders = [
        {"type": "LIMIT", "side": "BUY", "timeInForce": "GTC", "quantity": "0.1", "price": "95.00"},
        {
            "type": "LIMIT",
            "side": "SELL",
            "timeInForce": "GTC",
            "quantity": "0.1",
            "price": "105.00",
            "icebergQty": "0.05",
        },
        {"type": "LIMIT_MAKER", "side": "BUY", "quantity": "0.1", "price": "95.00"},
        {"type": "STOP_LOSS", "side": "SELL", "quantity": "0.1", "stopPrice": "95.00"},
        {
            "type": "STOP_LOSS_LIMIT",
            "side": "SELL",
            "timeInForce": "GTC",
            "quantity": "0.1",
            "price": "94.00",
            "stopPrice": "95.00",
        },
        {"type": "TAKE_PROFIT", "side": "SELL", "quantity": "0.1", "stopPrice": "105.00"},
        {
            "type": "TAKE_PROFIT_LIMIT",
            "side": "BUY",
            "timeInForce": "GTC",
            "quantity": "0.1",
            "price": "96.00",
            "stopPrice": "95.00",
        },
        {"type": "STOP_LOSS", "side": "BUY", "quantity": "0.1", "trailingDelta": "50"},
    ]
    for i, params in enumerate(orders):
        r = rig.order(**params, newClientOrderId=f"t{i}", newOrderRespType="RESULT")
        assert (r["status"], r["type"]) == ("NEW", params["type"]), params
        q = rig.call("GET", "/order", symbol="BTCUSDT", origClientOrderId=f"t{i}")
        assert (q["type"], q["side"], q["status"]) == (params["type"], params["side"], "NEW")
        if "icebergQty" in params:
            assert q["icebergQty"] == "0.05000000"
        c = rig.call("DELETE", "/order", symbol="BTCUSDT", origClientOrderId=f"t{i}")
        assert c["status"] == "CANCELED"
    assert rig.balance("BTC") == ("1.00000000", "0.00000000")
    assert rig.balance("USDT") == ("10000.00000000", "0.00000000")


def test_listener_unsubscribe_and_failing_listener(rig: Rig) -> None:
    seen: list[dict[str, Any]] = []
    stop = rig.engine.add_listener(KEY, seen.append)

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    rig.engine.add_listener(KEY, broken)
    limit(rig, "BUY", "0.1", "90.00")
    assert len(seen) == 2
    stop()
    limit(rig, "BUY", "0.1", "90.00")
    assert len(seen) == 2
    assert rig.kinds().count("ER:NEW:NEW") == 2  # the broken listener did not stop the others


# ==================================================================================== futures


def fo(rig: Rig, key: str = KEY, **params: Any) -> Any:
    return rig.call("POST", "/order", key, symbol="BTCUSDT", **params)


def test_routes_cover_the_usdm_endpoints() -> None:
    routes = {(m, p): ws for m, p, ws, _ in Rig(Market.USDM).engine.routes()}
    for key in [
        ("POST", "/fapi/v1/order"),
        ("PUT", "/fapi/v1/order"),
        ("DELETE", "/fapi/v1/order"),
        ("GET", "/fapi/v1/order"),
        ("POST", "/fapi/v1/batchOrders"),
        ("DELETE", "/fapi/v1/allOpenOrders"),
        ("GET", "/fapi/v1/openOrders"),
        ("POST", "/fapi/v1/algoOrder"),
        ("DELETE", "/fapi/v1/algoOrder"),
        ("GET", "/fapi/v1/algoOrder"),
        ("GET", "/fapi/v1/openAlgoOrders"),
        ("POST", "/fapi/v1/leverage"),
        ("POST", "/fapi/v1/marginType"),
        ("GET", "/fapi/v3/positionRisk"),
        ("GET", "/fapi/v2/positionRisk"),
        ("GET", "/fapi/v2/account"),
        ("GET", "/fapi/v3/account"),
    ]:
        assert key in routes
    assert routes[("POST", "/fapi/v1/order")] == "order.place"
    assert routes[("POST", "/fapi/v1/algoOrder")] == "algoOrder.place"
    coinm = {(m, p) for m, p, _, _ in Rig(Market.COINM).engine.routes()}
    assert ("POST", "/dapi/v1/order") in coinm
    assert ("GET", "/dapi/v1/account") in coinm


def test_futures_market_order_opens_a_position(frig: Rig) -> None:
    ack = fo(frig, side="BUY", type="MARKET", quantity="1.5", newClientOrderId="open")
    assert (ack["status"], ack["executedQty"], ack["clientOrderId"]) == (
        "NEW",
        "0.000",
        "open",
    )  # ACK: as accepted
    q = frig.call("GET", "/order", symbol="BTCUSDT", orderId=ack["orderId"])
    assert (q["status"], q["executedQty"], q["avgPrice"], q["cumQuote"]) == (
        "FILLED",
        "1.500",
        "101.33",
        "152",
    )
    # taker 0.05 %: 101 x 0.0005 + 51 x 0.0005
    risk = frig.call("GET", "/fapi/v3/positionRisk")
    assert len(risk) == 1
    p = risk[0]
    assert (p["positionAmt"], p["markPrice"], p["marginAsset"]) == ("1.500", "100.5", "USDT")
    assert Decimal(p["entryPrice"]) == Decimal("101.33333333")
    # uPnL = 1.5 x (100.5 - 152 / 1.5) = -1.25
    assert p["unRealizedProfit"] == "-1.25000000"
    account = frig.call("GET", "/fapi/v3/account")
    assert account["totalWalletBalance"] == "9999.92400000"  # 10000 - 0.0505 - 0.0255
    assert account["totalUnrealizedProfit"] == "-1.25000000"
    assert [a["asset"] for a in account["assets"]] == ["BTC", "USDT"]
    assert [pos["positionAmt"] for pos in account["positions"]] == ["1.500"]
    kinds = frig.kinds()
    assert kinds[:4] == ["OTU:NEW:NEW", "OTU:TRADE:PARTIALLY_FILLED", "TRADE_LITE", "ACCOUNT_UPDATE"]
    update = frig.events[KEY][3]["a"]
    assert update["m"] == "ORDER"
    assert update["P"][0]["pa"] == "1.000"
    assert update["P"][0]["ep"] == "101"
    assert update["B"][0]["a"] == "USDT"
    assert update["B"][0]["wb"] == "9999.94950000"
    lite = frig.events[KEY][2]
    assert (lite["L"], lite["l"], lite["c"], lite["m"]) == ("101.00", "1.000", "open", False)


def test_futures_closing_realizes_pnl(frig: Rig) -> None:
    fo(frig, side="BUY", type="MARKET", quantity="1")  # long 1 at 101
    frig.clear()
    r = fo(frig, side="SELL", type="MARKET", quantity="0.5", newOrderRespType="RESULT")
    assert (r["status"], r["avgPrice"]) == ("FILLED", "100.00")
    trade = frig.events[KEY][1]["o"]
    assert (trade["x"], trade["rp"], trade["n"], trade["N"]) == ("TRADE", "-0.5", "0.025", "USDT")
    risk = frig.call("GET", "/fapi/v3/positionRisk")[0]
    assert (risk["positionAmt"], risk["entryPrice"]) == ("0.500", "101")
    wallet = Decimal(frig.call("GET", "/fapi/v3/account")["totalWalletBalance"])
    assert wallet == Decimal(10000) - Decimal("0.0505") - Decimal("0.5") - Decimal("0.025")
    trades = frig.call("GET", "/userTrades", symbol="BTCUSDT")
    assert [t["realizedPnl"] for t in trades] == ["0", "-0.5"]
    # flip: sell 1 more closes 0.5 and opens a 0.5 short at 100
    fo(frig, side="SELL", type="MARKET", quantity="1")
    risk = frig.call("GET", "/fapi/v3/positionRisk")[0]
    assert (risk["positionAmt"], risk["entryPrice"]) == ("-0.500", "100")


def test_futures_limit_rests_and_fills_on_trades(frig: Rig) -> None:
    r = fo(frig, side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="101.50")
    assert r["status"] == "NEW"
    frig.trade("101.60", "0.4", buyer_maker=False)
    q = frig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (q["status"], q["executedQty"], q["avgPrice"]) == ("PARTIALLY_FILLED", "0.400", "101.50")
    maker = [e for e in frig.events[KEY] if e["e"] == "ORDER_TRADE_UPDATE"][-1]["o"]
    assert (maker["m"], maker["n"]) == (True, "0.00812")  # 0.02 % of 40.6
    risk = frig.call("GET", "/fapi/v2/positionRisk")
    assert (risk[0]["positionAmt"], risk[0]["leverage"], risk[0]["marginType"]) == ("-0.400", "20", "cross")
    assert [o["orderId"] for o in frig.call("GET", "/openOrders")] == [r["orderId"]]
    c = frig.call("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"])
    assert (c["status"], c["executedQty"]) == ("CANCELED", "0.400")
    assert frig.refuse("DELETE", "/order", symbol="BTCUSDT", orderId=r["orderId"]).code == -2011
    assert frig.refuse("GET", "/order", symbol="BTCUSDT", orderId=99).code == -2013


def test_futures_refusals(frig: Rig) -> None:
    e = frig.refuse_order(side="BUY", type="STOP_MARKET", quantity="1", stopPrice="110")
    assert e.code == -4120
    fo(frig, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="95.00", newClientOrderId="dup")
    e = frig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="1",
        price="95.00",
        newClientOrderId="dup",
    )
    assert (e.code, e.msg) == (-4116, "ClientOrderId is duplicated.")
    e = frig.refuse_order(side="SELL", type="MARKET", quantity="1", reduceOnly="true")
    assert (e.code, e.msg) == (-2022, "ReduceOnly Order is rejected.")
    e = frig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTX",
        quantity="1",
        price="101.00",
    )
    assert e.code == -5022
    e = frig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="1",
        price="95.00",
        positionSide="LONG",
    )
    assert e.code == -4061
    e = frig.refuse_order(side="BUY", type="MARKET", quantity="1", newClientOrderId="y" * 37)
    assert e.code == -4015
    assert frig.refuse_order(side="BUY", type="LIMIT", quantity="1", price="95").code == -1102


def test_futures_margin_check() -> None:
    rig = Rig(Market.USDM, balances={"USDT": "10"})
    # 20x leverage: 10 USDT carry 200 of notional at most
    e = rig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="3",
        price="99.00",
    )
    assert (e.code, e.msg) == (-2019, "Margin is insufficient.")
    assert (
        fo(rig, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="99.00")["status"] == "NEW"
    )
    rig.call("POST", "/leverage", symbol="BTCUSDT", leverage="2")
    e = rig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="1",
        price="99.00",
    )
    assert e.code == -2019


def test_futures_reduce_only_never_opens(frig: Rig) -> None:
    fo(frig, side="BUY", type="MARKET", quantity="0.5")
    r = fo(frig, side="SELL", type="MARKET", quantity="1", reduceOnly="true", newOrderRespType="RESULT")
    assert (r["status"], r["executedQty"], r["reduceOnly"]) == ("EXPIRED", "0.500", True)
    assert frig.call("GET", "/fapi/v3/positionRisk") == []


def test_futures_modify_and_batch(frig: Rig) -> None:
    r = fo(frig, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="95.00")
    m = frig.call(
        "PUT", "/order", symbol="BTCUSDT", orderId=r["orderId"], side="BUY", quantity="2", price="96.00"
    )
    assert (m["price"], m["origQty"], m["status"]) == ("96.00", "2.000", "NEW")
    assert frig.kinds()[-1] == "OTU:AMENDMENT:NEW"
    e = frig.refuse(
        "PUT", "/order", symbol="BTCUSDT", orderId=r["orderId"], side="BUY", quantity="2", price="96.00"
    )
    assert e.code == -5027
    m = frig.call(
        "PUT", "/order", symbol="BTCUSDT", orderId=r["orderId"], side="BUY", quantity="2", price="101.00"
    )
    assert (m["status"], m["executedQty"]) == ("PARTIALLY_FILLED", "1.000")  # now crosses: takes the 101 ask
    batch = json.dumps(
        [
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "1",
                "price": "90",
            },
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "1",
                "price": "9.005",
            },
            {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.5"},
        ]
    )
    out = frig.call("POST", "/batchOrders", batchOrders=batch)
    assert out[0]["status"] == "NEW"
    assert set(out[1]) == {"code", "msg"}
    assert out[1]["code"] < 0
    assert out[2]["side"] == "SELL"
    too_many = json.dumps([json.loads(batch)[0]] * 6)
    assert frig.refuse("POST", "/batchOrders", batchOrders=too_many).code == -1130
    assert frig.call("DELETE", "/allOpenOrders", symbol="BTCUSDT") == {
        "code": 200,
        "msg": "The operation of cancel all open order is done.",
    }
    assert frig.call("GET", "/openOrders", symbol="BTCUSDT") == []


def test_futures_leverage_and_margin_type(frig: Rig) -> None:
    assert frig.call("POST", "/leverage", symbol="BTCUSDT", leverage="10") == {
        "leverage": 10,
        "maxNotionalValue": "1000000000",
        "symbol": "BTCUSDT",
    }
    assert frig.refuse("POST", "/leverage", symbol="BTCUSDT", leverage="200").code == -4028
    assert frig.refuse("POST", "/marginType", symbol="BTCUSDT", marginType="CROSSED").code == -4046
    assert frig.call("POST", "/marginType", symbol="BTCUSDT", marginType="ISOLATED") == {
        "code": 200,
        "msg": "success",
    }
    fo(frig, side="BUY", type="MARKET", quantity="0.1")
    assert frig.refuse("POST", "/marginType", symbol="BTCUSDT", marginType="CROSSED").code == -4048
    assert frig.call("GET", "/fapi/v2/positionRisk")[0]["leverage"] == "10"


def test_futures_gtd_orders_expire_at_their_date(frig: Rig) -> None:
    e = frig.refuse_order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTD",
        quantity="1",
        price="95.00",
        goodTillDate=T0 + 60_000,
    )
    assert e.code == -1102  # at least 600 s ahead
    r = fo(
        frig,
        side="BUY",
        type="LIMIT",
        timeInForce="GTD",
        quantity="1",
        price="95.00",
        goodTillDate=T0 + 700_000,
    )
    assert r["goodTillDate"] == T0 + 700_000
    frig.now = T0 + 699_999
    frig.trade("99.00", "1")
    assert frig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "NEW"
    frig.now = T0 + 700_000
    frig.trade("99.00", "1")
    assert frig.call("GET", "/order", symbol="BTCUSDT", orderId=r["orderId"])["status"] == "EXPIRED"
    assert frig.kinds()[-1] == "OTU:EXPIRED:EXPIRED"


def test_leverage_change_is_an_account_config_update(frig: Rig) -> None:
    frig.call("POST", "/leverage", symbol="BTCUSDT", leverage="5")
    assert frig.events[KEY] == [
        {"e": "ACCOUNT_CONFIG_UPDATE", "E": T0, "T": T0, "ac": {"s": "BTCUSDT", "l": 5}},
    ]


def _algo(rig: Rig, **params: Any) -> Any:
    return rig.call("POST", "/algoOrder", symbol="BTCUSDT", algoType="CONDITIONAL", **params)


def _refuse_algo(rig: Rig, **params: Any) -> ApiError:
    return rig.refuse("POST", "/algoOrder", symbol="BTCUSDT", algoType="CONDITIONAL", **params)


def test_algo_stop_market_triggers_a_market_order(frig: Rig) -> None:
    fo(frig, side="BUY", type="MARKET", quantity="1")
    frig.trade("100.50", "1")
    frig.clear()
    a = _algo(frig, side="SELL", type="STOP_MARKET", quantity="1", triggerPrice="99.00", clientAlgoId="sl-1")
    assert (a["algoStatus"], a["orderType"], a["triggerPrice"], a["clientAlgoId"]) == (
        "NEW",
        "STOP_MARKET",
        "99.00",
        "sl-1",
    )
    assert [x["algoId"] for x in frig.call("GET", "/openAlgoOrders")] == [a["algoId"]]
    frig.trade("99.10", "1")
    assert frig.call("GET", "/algoOrder", algoId=a["algoId"])["algoStatus"] == "NEW"
    frig.trade("98.90", "1")
    kinds = frig.kinds()
    assert kinds[:5] == ["ALGO:NEW", "ALGO:TRIGGERING", "ALGO:TRIGGERED", "OTU:NEW:NEW", "OTU:TRADE:FILLED"]
    assert kinds[-1] == "ALGO:FINISHED"
    otu = [e["o"] for e in frig.events[KEY] if e["e"] == "ORDER_TRADE_UPDATE"][-1]
    assert (otu["o"], otu["ot"], otu["c"], otu["L"]) == ("MARKET", "STOP_MARKET", "sl-1", "100.00")
    done = frig.call("GET", "/algoOrder", clientAlgoId="sl-1")
    assert done["algoStatus"] == "FINISHED"
    assert done["actualOrderId"] != ""
    assert frig.call("GET", "/fapi/v3/positionRisk") == []
    assert frig.call("GET", "/openAlgoOrders") == []


def test_algo_trigger_rules_and_refusals(frig: Rig) -> None:
    frig.trade("100.50", "1")
    for side, otype, trigger in (
        ("BUY", "STOP_MARKET", "100.00"),
        ("SELL", "STOP_MARKET", "101.00"),
        ("BUY", "TAKE_PROFIT_MARKET", "101.00"),
        ("SELL", "TAKE_PROFIT_MARKET", "100.00"),
    ):
        e = _refuse_algo(
            frig,
            side=side,
            type=otype,
            quantity="1",
            triggerPrice=trigger,
        )
        assert (e.code, e.msg) == (-2021, "Order would immediately trigger.")
    e = _refuse_algo(
        frig,
        side="SELL",
        type="TRAILING_STOP_MARKET",
        quantity="1",
        callbackRate="1",
        activatePrice="99.00",
    )
    assert e.code == -2021
    assert (
        _refuse_algo(
            frig,
            side="SELL",
            type="STOP",
            quantity="1",
            triggerPrice="99.00",
        ).code
        == -1102
    )  # price
    assert (
        _refuse_algo(
            frig,
            side="SELL",
            type="TRAILING_STOP_MARKET",
            quantity="1",
            callbackRate="20",
        ).code
        == -1130
    )


def test_algo_take_profit_limit_rests_after_trigger(frig: Rig) -> None:
    frig.trade("100.50", "1")
    a = _algo(
        frig,
        side="BUY",
        type="TAKE_PROFIT",
        quantity="1",
        price="99.00",
        triggerPrice="100.00",
        timeInForce="GTC",
    )
    frig.trade("100.00", "1")
    status = frig.call("GET", "/algoOrder", algoId=a["algoId"])
    assert status["algoStatus"] == "TRIGGERED"
    order = frig.call("GET", "/order", symbol="BTCUSDT", orderId=int(status["actualOrderId"]))
    assert (order["type"], order["origType"], order["status"], order["price"]) == (
        "LIMIT",
        "TAKE_PROFIT",
        "NEW",
        "99.00",
    )
    frig.trade("98.00", "2")
    assert frig.call("GET", "/algoOrder", algoId=a["algoId"])["algoStatus"] == "FINISHED"


def test_algo_trailing_stop(frig: Rig) -> None:
    fo(frig, side="BUY", type="MARKET", quantity="1")
    frig.trade("100.50", "1")
    a = _algo(
        frig,
        side="SELL",
        type="TRAILING_STOP_MARKET",
        quantity="1",
        callbackRate="1",
        activatePrice="102.00",
        reduceOnly="true",
    )
    assert (a["activatePrice"], a["callbackRate"]) == ("102.00", "1")
    for price in ("99.00", "101.00", "103.00", "102.00"):  # activated at 103: triggers at <= 101.97
        frig.trade(price, "1")
    assert frig.call("GET", "/algoOrder", algoId=a["algoId"])["algoStatus"] == "NEW"
    frig.trade("101.97", "1")
    assert frig.call("GET", "/algoOrder", algoId=a["algoId"])["algoStatus"] == "FINISHED"
    assert frig.call("GET", "/fapi/v3/positionRisk") == []


def test_algo_close_position_and_mark_price(frig: Rig) -> None:
    fo(frig, side="SELL", type="MARKET", quantity="2")  # short 1 at 100, 1 at 99
    a = _algo(
        frig,
        side="BUY",
        type="STOP_MARKET",
        closePosition="true",
        triggerPrice="101.00",
        workingType="MARK_PRICE",
    )
    frig.trade("105.00", "1")  # the last price is not what this one watches
    assert frig.call("GET", "/algoOrder", algoId=a["algoId"])["algoStatus"] == "NEW"
    frig.depth(
        bids=[("100.00", "0"), ("99.00", "0"), ("101.50", "1")], asks=[("101.00", "0"), ("102.00", "0")]
    )
    # mid (101.50 + 103) / 2 >= 101: buys the whole short back
    assert frig.call("GET", "/algoOrder", algoId=a["algoId"])["algoStatus"] == "FINISHED"
    assert frig.call("GET", "/fapi/v3/positionRisk") == []


def test_algo_cancel(frig: Rig) -> None:
    frig.trade("100.50", "1")
    a = _algo(frig, side="SELL", type="STOP_MARKET", quantity="1", triggerPrice="90.00", clientAlgoId="c1")
    e = _refuse_algo(
        frig,
        side="SELL",
        type="STOP_MARKET",
        quantity="1",
        triggerPrice="90.00",
        clientAlgoId="c1",
    )
    assert e.code == -4116
    out = frig.call("DELETE", "/algoOrder", clientAlgoId="c1")
    assert out == {"algoId": a["algoId"], "clientAlgoId": "c1", "code": "200", "msg": "success"}
    assert frig.kinds()[-1] == "ALGO:CANCELED"
    assert frig.refuse("DELETE", "/algoOrder", algoId=a["algoId"]).code == -2011
    _algo(frig, side="SELL", type="STOP_MARKET", quantity="1", triggerPrice="90.00")
    frig.call("DELETE", "/algoOpenOrders", symbol="BTCUSDT")
    assert frig.call("GET", "/openAlgoOrders", symbol="BTCUSDT") == []
    assert frig.refuse("GET", "/algoOrder", algoId=999).code == -2013


def test_futures_order_count_headers() -> None:
    rig = Rig(Market.USDM, orders_per_10s=2)
    fo(rig, side="BUY", type="MARKET", quantity="0.1")
    fo(rig, side="BUY", type="MARKET", quantity="0.1")
    assert rig.engine.order_count_headers(KEY) == {"X-MBX-ORDER-COUNT-10S": "2", "X-MBX-ORDER-COUNT-1M": "2"}
    assert rig.refuse_order(side="BUY", type="MARKET", quantity="0.1").status == 429


def test_coinm_positions_are_inverse() -> None:
    rig = Rig(Market.COINM, balances={"BTC": "1"})
    rig.prefix = "/dapi/v1"
    rig.source.symbols = ["BTCUSDT"]
    fo(rig, side="BUY", type="MARKET", quantity="1")  # 1 contract of 100 USD at 101
    fo(rig, side="SELL", type="MARKET", quantity="1")  # closed at 100
    trades = rig.call("GET", "/dapi/v1/userTrades", symbol="BTCUSDT")
    realized = Decimal(trades[1]["realizedPnl"])
    assert realized == (Decimal(100) * (Decimal(1) / 101 - Decimal(1) / 100)).quantize(
        Decimal("1e-8"), "ROUND_DOWN"
    )
    assert trades[0]["commissionAsset"] == "BTC"


# ==================================================================================== the exchange


def test_the_exchange_feeds_its_replay_to_the_engine() -> None:
    """``Exchange`` owns a ``TradingEngine`` and hands it every published step: resting
    orders around the touch of a generated market fill from its replayed trades."""
    source = GeneratedMarket(["BTCUSDT"], "spot", seed=7, max_events=3000)
    ex = Exchange(source, speed=None, clock_ms=lambda: T0)
    engine = ex.trading
    assert isinstance(engine, TradingEngine)
    book = source.truth("BTCUSDT")
    bid, ask = book.best_bid_str(), book.best_ask_str()
    assert bid is not None
    assert ask is not None
    ids = []
    for side, price in (("BUY", bid[0]), ("SELL", ask[0])):
        out = engine.new_order(
            {
                "symbol": "BTCUSDT",
                "side": side,
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": price,
            },
            "anyone",
        )
        ids.append(out["orderId"])
    for _ in range(3000):
        if source.next_time_ms() is None:
            break
        ex._publish(source.step())
        statuses = [
            engine.query_order({"symbol": "BTCUSDT", "orderId": str(i)}, "anyone")["status"] for i in ids
        ]
        if "FILLED" in statuses:
            break
    assert "FILLED" in statuses
    assert engine.last_price("BTCUSDT") is not None
