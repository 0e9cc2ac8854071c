"""Rate limits: endpoint weights straight from the spec's tables (§1.3, §2.2, §5.3), default
and exchangeInfo limits, fixed windows that reset on the boundary, 429 then 418 with the
right Retry-After, and the usage headers both ways. Time is always passed in: no sleeping."""

from __future__ import annotations

import itertools
import json

import pytest

from tickbook import Market
from tickbook.limits import (
    DepthLimitError,
    Interval,
    MarketLimits,
    OrderCount,
    RateGuard,
    RateLimit,
    RateLimitType,
    UnknownEndpoint,
    WeightWindow,
    ban_duration_ms,
    default_limits,
    depth_limit,
    depth_weight,
    interval_ms,
    order_count,
    order_count_header,
    parse_usage_headers,
    usage_headers,
    used_weight_header,
    weight,
    ws_weight,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: on a minute and a day boundary
MINUTE = 60_000
DAY = 86_400_000

SYMBOLS_21 = json.dumps([f"S{i}USDT" for i in range(21)], separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Weights


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        ("GET", "/api/v3/ping", None, 1),
        ("GET", "/api/v3/time", None, 1),
        ("GET", "/api/v3/exchangeInfo", {"symbol": "BTCUSDT"}, 20),
        ("GET", "/api/v3/depth", {"symbol": "BTCUSDT"}, 5),  # default limit 100
        ("GET", "/api/v3/depth", {"limit": "1"}, 5),
        ("GET", "/api/v3/depth", {"limit": "100"}, 5),
        ("GET", "/api/v3/depth", {"limit": "101"}, 25),
        ("GET", "/api/v3/depth", {"limit": "500"}, 25),
        ("GET", "/api/v3/depth", {"limit": 501}, 50),
        ("GET", "/api/v3/depth", {"limit": 1000}, 50),
        ("GET", "/api/v3/depth", {"limit": 1001}, 250),
        ("GET", "/api/v3/depth", {"limit": 5000}, 250),
        ("GET", "/api/v3/depth", {"limit": 9999}, 250),  # served as 5000
        ("GET", "/api/v3/trades", None, 25),
        ("GET", "/api/v3/historicalTrades", None, 25),
        ("GET", "/api/v3/aggTrades", None, 4),
        ("GET", "/api/v3/klines", {"limit": 1000}, 2),
        ("GET", "/api/v3/uiKlines", None, 2),
        ("GET", "/api/v3/avgPrice", None, 2),
        ("GET", "/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
        ("GET", "/api/v3/ticker/24hr", {"symbols": '["A","B"]'}, 2),
        ("GET", "/api/v3/ticker/24hr", {"symbols": [f"S{i}" for i in range(20)]}, 2),
        ("GET", "/api/v3/ticker/24hr", {"symbols": SYMBOLS_21}, 40),
        ("GET", "/api/v3/ticker/24hr", {"symbols": [f"S{i}" for i in range(100)]}, 40),
        ("GET", "/api/v3/ticker/24hr", {"symbols": [f"S{i}" for i in range(101)]}, 80),
        ("GET", "/api/v3/ticker/24hr", None, 80),
        ("GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
        ("GET", "/api/v3/ticker/price", {"symbols": '["A","B"]'}, 4),
        ("GET", "/api/v3/ticker/price", None, 4),
        ("GET", "/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
        ("GET", "/api/v3/ticker/bookTicker", None, 4),
        ("GET", "/api/v3/ticker", {"symbol": "BTCUSDT"}, 4),
        ("GET", "/api/v3/ticker", {"symbols": [f"S{i}" for i in range(10)]}, 40),
        ("GET", "/api/v3/ticker", {"symbols": [f"S{i}" for i in range(50)]}, 200),
        ("GET", "/api/v3/ticker", {"symbols": [f"S{i}" for i in range(80)]}, 200),
        ("GET", "/api/v3/ticker/tradingDay", {"symbols": '["A","B","C"]'}, 12),
        ("POST", "/api/v3/order", {"symbol": "BTCUSDT"}, 1),
        ("POST", "/api/v3/order/test", None, 1),
        ("POST", "/api/v3/order/test", {"computeCommissionRates": "true"}, 20),
        ("POST", "/api/v3/order/test", {"computeCommissionRates": True}, 20),
        ("DELETE", "/api/v3/order", None, 1),
        ("DELETE", "/api/v3/openOrders", None, 1),
        ("POST", "/api/v3/order/cancelReplace", None, 1),
        ("PUT", "/api/v3/order/amend/keepPriority", None, 4),
        # not in the spec's §5.3 table: 4 per Binance's "Query Order Amendments" page
        ("GET", "/api/v3/order/amendments", {"symbol": "BTCUSDT", "orderId": "5"}, 4),
        ("POST", "/api/v3/orderList/oco", None, 1),
        ("POST", "/api/v3/orderList/otoco", None, 1),
        ("DELETE", "/api/v3/orderList", None, 1),
        ("GET", "/api/v3/order", None, 4),
        ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, 6),
        ("GET", "/api/v3/openOrders", None, 80),
        ("GET", "/api/v3/allOrders", None, 20),
        ("GET", "/api/v3/orderList", None, 4),
        ("GET", "/api/v3/allOrderList", None, 20),
        ("GET", "/api/v3/openOrderList", None, 6),
        ("GET", "/api/v3/account", None, 20),
        ("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}, 20),
        ("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": "5"}, 5),
        ("GET", "/api/v3/rateLimit/order", None, 40),
        ("GET", "/api/v3/account/commission", None, 20),
        ("GET", "/api/v3/myFilters", None, 40),
    ],
)
def test_spot_weights(method: str, path: str, params: dict[str, object] | None, expected: int) -> None:
    assert weight(Market.SPOT, method, path, params) == expected


def test_spot_successful_orders_and_cancels_cost_nothing() -> None:
    for method, path in [
        ("POST", "/api/v3/order"),
        ("DELETE", "/api/v3/order"),
        ("DELETE", "/api/v3/openOrders"),
        ("POST", "/api/v3/order/cancelReplace"),
        ("POST", "/api/v3/orderList/oco"),
        ("POST", "/api/v3/orderList/opoco"),
        ("DELETE", "/api/v3/orderList"),
    ]:
        assert weight("spot", method, path, succeeded=True) == 0
        assert weight("spot", method, path) == 1  # a failure pays the documented weight
    assert weight("spot", "PUT", "/api/v3/order/amend/keepPriority", succeeded=True) == 4
    assert weight("spot", "GET", "/api/v3/order/amendments", succeeded=True) == 4  # a query: never free
    assert weight("spot", "GET", "/api/v3/account", succeeded=True) == 20
    assert weight("usdm", "DELETE", "/fapi/v1/order", succeeded=True) == 1


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        ("GET", "/fapi/v1/ping", None, 1),
        ("GET", "/fapi/v1/time", None, 1),
        ("GET", "/fapi/v1/exchangeInfo", None, 1),
        ("GET", "/fapi/v1/depth", None, 10),  # default 500
        ("GET", "/fapi/v1/depth", {"limit": "5"}, 2),
        ("GET", "/fapi/v1/depth", {"limit": "10"}, 2),
        ("GET", "/fapi/v1/depth", {"limit": "20"}, 2),
        ("GET", "/fapi/v1/depth", {"limit": "50"}, 2),
        ("GET", "/fapi/v1/depth", {"limit": "100"}, 5),
        ("GET", "/fapi/v1/depth", {"limit": "500"}, 10),
        ("GET", "/fapi/v1/depth", {"limit": "1000"}, 20),
        ("GET", "/fapi/v1/depth", {"limit": "7"}, 10),  # refused (-4021), charged as the default
        ("GET", "/fapi/v1/trades", None, 5),
        ("GET", "/fapi/v1/historicalTrades", None, 20),
        ("GET", "/fapi/v1/aggTrades", None, 20),
        ("GET", "/fapi/v1/klines", {"limit": "1"}, 1),
        ("GET", "/fapi/v1/klines", {"limit": "99"}, 1),
        ("GET", "/fapi/v1/klines", {"limit": "100"}, 2),
        ("GET", "/fapi/v1/klines", {"limit": "499"}, 2),
        ("GET", "/fapi/v1/klines", {"limit": "500"}, 5),
        ("GET", "/fapi/v1/klines", {"limit": "1000"}, 5),
        ("GET", "/fapi/v1/klines", {"limit": "1001"}, 10),
        ("GET", "/fapi/v1/klines", {"limit": "1500"}, 10),
        ("GET", "/fapi/v1/klines", None, 5),
        ("GET", "/fapi/v1/markPriceKlines", {"limit": "100"}, 2),
        ("GET", "/fapi/v1/continuousKlines", {"limit": "1200"}, 10),
        ("GET", "/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}, 1),
        ("GET", "/fapi/v1/ticker/24hr", None, 40),
        ("GET", "/fapi/v1/ticker/price", {"symbol": "BTCUSDT"}, 1),
        ("GET", "/fapi/v2/ticker/price", None, 2),
        ("GET", "/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
        ("GET", "/fapi/v1/ticker/bookTicker", None, 5),
        ("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, 1),
        ("GET", "/fapi/v1/premiumIndex", None, 10),
        ("POST", "/fapi/v1/order", None, 0),
        ("PUT", "/fapi/v1/order", None, 0),
        ("POST", "/fapi/v1/batchOrders", None, 5),
        ("PUT", "/fapi/v1/batchOrders", None, 5),
        ("DELETE", "/fapi/v1/order", None, 1),
        ("DELETE", "/fapi/v1/allOpenOrders", None, 1),
        ("DELETE", "/fapi/v1/batchOrders", None, 1),
        ("GET", "/fapi/v1/order", None, 1),
        ("GET", "/fapi/v1/openOrder", None, 1),
        ("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, 1),
        ("GET", "/fapi/v1/openOrders", None, 40),
        ("GET", "/fapi/v1/allOrders", None, 5),
        ("GET", "/fapi/v1/userTrades", None, 5),
        ("POST", "/fapi/v1/algoOrder", None, 0),
        ("DELETE", "/fapi/v1/algoOrder", None, 1),
        ("GET", "/fapi/v1/openAlgoOrders", None, 40),
        ("GET", "/fapi/v1/allAlgoOrders", None, 5),
        ("GET", "/fapi/v2/account", None, 10),
        ("GET", "/fapi/v3/account", None, 5),
        ("GET", "/fapi/v2/positionRisk", None, 10),
        ("POST", "/fapi/v1/leverage", None, 1),
        ("GET", "/fapi/v1/positionSide/dual", None, 30),
        ("GET", "/fapi/v1/income", None, 30),
        ("GET", "/fapi/v1/commissionRate", None, 20),
        ("GET", "/fapi/v1/rateLimit/order", None, 1),
        ("POST", "/fapi/v1/listenKey", None, 1),
        ("PUT", "/fapi/v1/listenKey", None, 1),
    ],
)
def test_usdm_weights(method: str, path: str, params: dict[str, object] | None, expected: int) -> None:
    assert weight(Market.USDM, method, path, params) == expected


def test_coinm_weights() -> None:
    for limit, expected in [(5, 2), (50, 2), (100, 5), (500, 10), (1000, 20), (None, 10)]:
        params = None if limit is None else {"limit": limit}
        assert weight("coinm", "GET", "/dapi/v1/depth", params) == expected
    assert weight("coinm", "GET", "/dapi/v1/exchangeInfo") == 1
    assert weight("coinm", "GET", "/dapi/v1/ticker/bookTicker") == 5
    assert weight("coinm", "GET", "/dapi/v1/account") == 5
    with pytest.raises(UnknownEndpoint):
        weight("coinm", "GET", "/fapi/v1/depth")


def test_paths_are_normalized_and_unknown_ones_raise() -> None:
    assert weight("spot", "get", "/api/v3/depth/?limit=5000") == 5  # params come separately
    assert weight("spot", "GET", "/api/v3/exchangeInfo/") == 20
    with pytest.raises(UnknownEndpoint):
        weight("spot", "GET", "/api/v3/nothing")
    with pytest.raises(UnknownEndpoint):
        weight("spot", "POST", "/api/v3/depth")
    with pytest.raises(ValueError, match="unknown market"):
        weight("options", "GET", "/api/v3/ping")


def test_depth_limits() -> None:
    assert depth_limit("spot") == 100
    assert depth_limit("spot", "1") == 1
    assert depth_limit("spot", 6000) == 5000
    with pytest.raises(DepthLimitError) as info:
        depth_limit("spot", 0)
    assert info.value.code == -1130
    with pytest.raises(DepthLimitError) as info:
        depth_limit("spot", "ten")
    assert info.value.code == -1100
    assert depth_limit("usdm") == 500
    for allowed in (5, 10, 20, 50, 100, 500, 1000):
        assert depth_limit("usdm", str(allowed)) == allowed
        assert depth_limit("coinm", allowed) == allowed
    for refused in (1, 7, 200, 1001, 5000, "x"):
        with pytest.raises(DepthLimitError) as info:
            depth_limit("usdm", refused)
        assert (info.value.code, info.value.msg) == (-4021, "Invalid depth limit.")
    assert depth_weight("spot", 1001) == 250
    assert depth_weight("spot", 0) == 5


def test_ws_api_weights() -> None:
    assert ws_weight("spot", "connect") == 2
    assert ws_weight("spot", "session.logon") == 2
    assert ws_weight("spot", "userDataStream.subscribe.signature") == 2
    assert ws_weight("spot", "depth", {"limit": 1000}) == 50
    assert ws_weight("spot", "ticker.24hr") == 80
    assert ws_weight("spot", "ticker.book", {"symbol": "BTCUSDT"}) == 2
    assert ws_weight("spot", "order.place") == 1
    assert ws_weight("spot", "v3/order.place", succeeded=True) == 0
    assert ws_weight("spot", "account.rateLimits.orders") == 40
    assert ws_weight("usdm", "connect") == 5
    assert ws_weight("usdm", "order.place") == 0
    assert ws_weight("spot", "order.amendments", {"symbol": "BTCUSDT", "orderId": 5}) == 4
    with pytest.raises(UnknownEndpoint):
        ws_weight("spot", "myPreventedMatches")  # listed in §9, weight not documented here
    with pytest.raises(UnknownEndpoint):
        ws_weight("usdm", "depth")


def test_order_counts() -> None:
    assert order_count("spot", "POST", "/api/v3/order") == OrderCount(1, 1)
    assert order_count("spot", "POST", "/api/v3/order/cancelReplace") == OrderCount(1, 1)
    assert order_count("spot", "POST", "/api/v3/orderList/oco") == OrderCount(2, 2)
    assert order_count("spot", "POST", "/api/v3/orderList/otoco") == OrderCount(3, 3)
    assert order_count("spot", "POST", "/api/v3/orderList/opoco") == OrderCount(3, 3)
    assert order_count("spot", "PUT", "/api/v3/order/amend/keepPriority") == OrderCount(0, 0)
    assert order_count("spot", "GET", "/api/v3/order") == OrderCount(0, 0)
    assert order_count("spot", "GET", "/api/v3/order/amendments") == OrderCount(0, 0)
    assert order_count("usdm", "POST", "/fapi/v1/order") == OrderCount(1, 1)
    assert order_count("usdm", "PUT", "/fapi/v1/order") == OrderCount(1, 1)
    assert order_count("usdm", "POST", "/fapi/v1/batchOrders") == OrderCount(5, 1)
    assert order_count("coinm", "POST", "/dapi/v1/order") == OrderCount(1, 1)
    assert order_count("usdm", "DELETE", "/fapi/v1/order") == OrderCount(0, 0)


# --------------------------------------------------------------------------------------------
# Limits


def test_default_limits() -> None:
    spot = default_limits("spot")
    assert [(rl.label, rl.limit) for rl in spot.of(RateLimitType.REQUEST_WEIGHT)] == [("1M", 6000)]
    assert [(rl.label, rl.limit) for rl in spot.of(RateLimitType.ORDERS)] == [("10S", 50), ("1D", 160_000)]
    assert [(rl.label, rl.limit) for rl in spot.of(RateLimitType.RAW_REQUESTS)] == [("5M", 300_000)]
    usdm = default_limits(Market.USDM)
    assert [(rl.label, rl.limit) for rl in usdm.of(RateLimitType.REQUEST_WEIGHT)] == [("1M", 2400)]
    assert [(rl.label, rl.limit) for rl in usdm.of(RateLimitType.ORDERS)] == [("10S", 300), ("1M", 1200)]
    assert usdm.of(RateLimitType.RAW_REQUESTS) == ()


def test_limits_from_exchange_info() -> None:
    rate_limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000, "count": 3},
    ]
    limits = default_limits("spot").with_exchange_info(rate_limits)
    assert [rl.limit for rl in limits.of(RateLimitType.REQUEST_WEIGHT)] == [1200]
    assert [rl.limit for rl in limits.of(RateLimitType.RAW_REQUESTS)] == [61000]
    assert [rl.limit for rl in limits.of(RateLimitType.ORDERS)] == [50, 160_000]  # not listed: kept
    first = RateLimit.from_json(rate_limits[0])
    assert first == RateLimit(RateLimitType.REQUEST_WEIGHT, Interval.MINUTE, 1, 1200)
    assert first.to_json() == rate_limits[0]
    assert first.interval_ms == MINUTE
    for bad in (
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "WEEK", "intervalNum": 1, "limit": 1},
        {"rateLimitType": "NOPE", "interval": "MINUTE", "intervalNum": 1, "limit": 1},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": "1", "limit": 1},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "limit": 1},
    ):
        with pytest.raises(ValueError, match="not a rateLimits entry"):
            RateLimit.from_json(bad)


def test_interval_labels() -> None:
    assert interval_ms("1M") == MINUTE
    assert interval_ms("10s") == 10_000
    assert interval_ms("1D") == DAY
    assert interval_ms("2H") == 7_200_000
    with pytest.raises(ValueError, match="not an interval label"):
        interval_ms("1W")


# --------------------------------------------------------------------------------------------
# Windows


WEIGHT_1M = RateLimit(RateLimitType.REQUEST_WEIGHT, Interval.MINUTE, 1, 100)


def test_window_resets_on_the_minute() -> None:
    window = WeightWindow(WEIGHT_1M)
    assert window.charge("1.2.3.4", 30, T0 + 10_000) == 30
    assert window.charge("1.2.3.4", 50, T0 + 59_999) == 80  # same window: the total, not a slide
    assert window.charge("5.6.7.8", 5, T0 + 59_999) == 5  # per key
    assert window.used("1.2.3.4", T0 + 59_999) == 80
    assert window.used("1.2.3.4", T0 + MINUTE) == 0  # the boundary resets it
    assert window.charge("1.2.3.4", 1, T0 + MINUTE) == 1
    assert window.window_end(WEIGHT_1M, T0 + 59_999) == T0 + MINUTE
    assert window.window_end(WEIGHT_1M, T0 + MINUTE) == T0 + 2 * MINUTE


def test_would_exceed_and_wait() -> None:
    window = WeightWindow(WEIGHT_1M)
    window.charge("ip", 90, T0 + 45_000)
    assert window.would_exceed("ip", 10, T0 + 45_000) is None  # reaching the limit is fine
    assert window.would_exceed("ip", 11, T0 + 45_000) == WEIGHT_1M
    assert window.wait_ms("ip", 10, T0 + 45_000) == 0
    assert window.wait_ms("ip", 11, T0 + 45_000) == 15_000
    assert window.would_exceed("ip", 11, T0 + MINUTE) is None
    assert window.retry_after_s(WEIGHT_1M, T0 + 45_200) == 15  # 14.8 s rounds up
    assert window.retry_after_s(WEIGHT_1M, T0 + 59_999) == 1


def test_multi_interval_order_window_and_refunds() -> None:
    limits = default_limits("spot").of(RateLimitType.ORDERS)  # 50 / 10 s, 160000 / day
    window = WeightWindow(limits)
    for i in range(50):
        window.charge("account", 1, T0 + i)
    assert window.would_exceed("account", 1, T0 + 9_999) == limits[0]
    assert window.used("account", T0 + 10_000) == 0  # the 10 s window reset
    assert window.usage("account", T0 + 10_000) == {limits[0]: 0, limits[1]: 50}  # the day did not
    window.charge("account", -3, T0 + 10_000)  # fills give budget back
    assert window.usage("account", T0 + 10_000) == {limits[0]: 0, limits[1]: 47}
    assert window.usage("account", T0 + DAY) == {limits[0]: 0, limits[1]: 0}  # 00:00 UTC
    headers = usage_headers(window, "account", T0 + 10_000)
    assert headers == {"X-MBX-ORDER-COUNT-10S": "0", "X-MBX-ORDER-COUNT-1D": "47"}


def test_sync_and_prune() -> None:
    window = WeightWindow(WEIGHT_1M)
    window.sync("ip", WEIGHT_1M, 77, T0 + 5_000)  # the server said 77 in this minute
    assert window.used("ip", T0 + 6_000) == 77
    window.charge("other", 1, T0 + 6_000)
    assert len(window) == 2
    window.prune(T0 + 59_999)
    assert len(window) == 2
    window.prune(T0 + MINUTE)
    assert len(window) == 0
    with pytest.raises(ValueError, match="at least one limit"):
        WeightWindow([])


# --------------------------------------------------------------------------------------------
# 429 and 418


def small_guard(market: str = "spot", limit: int = 100, tolerance: int = 2) -> RateGuard:
    limits = default_limits(market).with_exchange_info(
        [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit}]
    )
    return RateGuard(limits, tolerance=tolerance)


def test_429_with_retry_after_until_the_window_resets() -> None:
    guard = small_guard()
    ok = guard.admit("ip", 100, T0 + 40_000)
    assert ok.ok
    assert ok.status == 200
    assert ok.headers == {"X-MBX-USED-WEIGHT-1M": "100"}
    assert ok.body() == b""
    limited = guard.admit("ip", 1, T0 + 45_200)
    assert (limited.status, limited.code, limited.retry_after_s) == (429, -1003, 15)
    assert limited.headers == {"X-MBX-USED-WEIGHT-1M": "101", "Retry-After": "15"}
    assert limited.msg == (
        "Too much request weight used; current limit is 100 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )
    assert json.loads(limited.body()) == {"code": -1003, "msg": limited.msg}
    assert guard.admit("other-ip", 1, T0 + 45_200).ok  # limits are per IP
    # A client that honours Retry-After is served in the next window, and never banned.
    again = guard.admit("ip", 5, T0 + 45_200 + 15_000)
    assert again.ok
    assert again.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    assert guard.banned_until("ip", T0 + 61_000) is None
    assert guard.throttled == 1


def test_418_after_ignoring_429_and_escalating_bans() -> None:
    guard = small_guard(tolerance=2)
    guard.admit("ip", 100, T0)
    assert guard.admit("ip", 1, T0 + 30_000).status == 429  # over the limit
    assert guard.admit("ip", 1, T0 + 31_000).status == 429  # strike 1 (in flight, tolerated)
    assert guard.admit("ip", 1, T0 + 32_000).status == 429  # strike 2
    banned = guard.admit("ip", 1, T0 + 33_000)  # strike 3: banned
    assert (banned.status, banned.code) == (418, -1003)
    assert banned.banned_until_ms == T0 + 33_000 + 120_000  # first ban: 2 minutes
    assert banned.retry_after_s == 120
    assert banned.headers["Retry-After"] == "120"
    assert banned.msg == (
        f"Way too much request weight used; IP banned until {T0 + 153_000}. "
        "Please use WebSocket Streams for live updates to avoid bans."
    )
    assert guard.banned_until("ip", T0 + 100_000) == T0 + 153_000
    # Still banned: 418 with the remaining time, nothing charged, the ban not extended.
    during = guard.admit("ip", 1, T0 + 100_000)
    assert (during.status, during.retry_after_s, during.banned_until_ms) == (418, 53, T0 + 153_000)
    assert during.headers["X-MBX-USED-WEIGHT-1M"] == "0"
    # After the ban: served again.
    assert guard.admit("ip", 1, T0 + 153_000).ok
    assert guard.banned_until("ip", T0 + 153_000) is None
    # A second offense doubles the ban.
    guard.admit("ip", 100, T0 + 180_000)
    for i in range(3):
        assert guard.admit("ip", 1, T0 + 181_000 + i).status == 429
    second = guard.admit("ip", 1, T0 + 182_000)
    assert second.status == 418
    assert second.banned_until_ms == T0 + 182_000 + 240_000
    assert guard.bans == 2


def test_ban_durations_scale_from_two_minutes_to_three_days() -> None:
    durations = [ban_duration_ms(n) for n in range(1, 16)]
    assert durations[0] == 2 * MINUTE
    assert durations[1] == 4 * MINUTE
    assert all(a <= b for a, b in itertools.pairwise(durations))
    assert durations[11] == 4096 * MINUTE
    assert durations[12] == durations[-1] == 3 * DAY
    assert ban_duration_ms(1000) == 3 * DAY
    with pytest.raises(ValueError, match="start at 1"):
        ban_duration_ms(0)


def test_offenses_are_forgiven_after_a_quiet_day() -> None:
    guard = small_guard()
    assert guard.ban("ip", T0) == T0 + 2 * MINUTE
    assert guard.ban("ip", T0 + 3 * MINUTE) == T0 + 3 * MINUTE + 4 * MINUTE
    later = T0 + 7 * MINUTE + DAY + 1
    assert guard.ban("ip", later) == later + 2 * MINUTE
    assert guard.ban("ip2", T0, duration_ms=5_000) == T0 + 5_000  # fault injection


def test_futures_messages_and_raw_request_limit() -> None:
    guard = small_guard("usdm", limit=10, tolerance=0)
    guard.admit("ip", 10, T0)
    limited = guard.admit("ip", 1, T0 + 1)
    assert limited.msg == (
        "Too many requests; current limit is 10 requests per minute. "
        "Please use the websocket for live updates to avoid polling the API."
    )
    banned = guard.admit("ip", 1, T0 + 2)  # tolerance 0: the first strike bans
    assert banned.status == 418
    assert banned.msg is not None
    assert banned.msg.startswith("Way too many requests; IP banned until")
    raw = RateGuard(
        default_limits("spot").with_exchange_info(
            [{"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 3}]
        )
    )
    for i in range(3):
        assert raw.admit("ip", 1, T0 + i).ok
    limited = raw.admit("ip", 1, T0 + 3)
    assert limited.status == 429
    assert limited.retry_after_s == 300  # the 5-minute window
    assert limited.msg is not None
    assert "3 requests per 5 MINUTE" in limited.msg


def test_guard_reads_an_injected_clock_and_prunes() -> None:
    now = [T0]
    guard = RateGuard(default_limits("spot"), clock=lambda: now[0])
    assert guard.admit("ip", 6000).ok
    assert guard.admit("ip", 1).status == 429
    assert guard.headers("ip") == {"X-MBX-USED-WEIGHT-1M": "6001"}
    now[0] = T0 + 5 * MINUTE
    guard.prune()
    assert guard.headers("ip") == {"X-MBX-USED-WEIGHT-1M": "0"}
    assert len(guard.weights) == 0
    with pytest.raises(ValueError, match="REQUEST_WEIGHT"):
        RateGuard(MarketLimits(Market.SPOT, ()))


# --------------------------------------------------------------------------------------------
# Headers


def test_header_names() -> None:
    spot = default_limits("spot")
    assert [used_weight_header(rl) for rl in spot.of(RateLimitType.REQUEST_WEIGHT)] == [
        "X-MBX-USED-WEIGHT-1M"
    ]
    assert [order_count_header(rl) for rl in spot.of(RateLimitType.ORDERS)] == [
        "X-MBX-ORDER-COUNT-10S",
        "X-MBX-ORDER-COUNT-1D",
    ]
    usdm = default_limits("usdm")
    assert [used_weight_header(rl) for rl in usdm.of(RateLimitType.REQUEST_WEIGHT)] == [
        "X-MBX-USED-WEIGHT-1M"
    ]
    assert [order_count_header(rl) for rl in usdm.of(RateLimitType.ORDERS)] == [
        "X-MBX-ORDER-COUNT-10S",
        "X-MBX-ORDER-COUNT-1M",
    ]


def test_header_round_trip() -> None:
    guard = small_guard()
    guard.admit("ip", 100, T0)
    decision = guard.admit("ip", 7, T0 + 50_000)
    orders = WeightWindow(default_limits("usdm").of(RateLimitType.ORDERS))
    orders.charge("account", 4, T0 + 50_000)
    headers = {**decision.headers, **usage_headers(orders, "account", T0 + 50_000)}
    usage = parse_usage_headers(headers)
    assert usage.used_weight == {"1M": 107}
    assert usage.order_count == {"10S": 4, "1M": 4}
    assert usage.retry_after_s == 10
    # HTTP/2 lower-cases header names; junk values are ignored.
    lowered = parse_usage_headers(
        [
            ("x-mbx-used-weight-1m", "42"),
            ("x-mbx-order-count-1d", "9"),
            ("x-mbx-used-weight-1m-extra", "1"),
            ("x-mbx-order-count-10s", "many"),
            ("retry-after", "-1"),
            ("content-type", "application/json"),
        ]
    )
    assert (lowered.used_weight, lowered.order_count, lowered.retry_after_s) == ({"1M": 42}, {"1D": 9}, None)
    # The client mirrors the server's count from the header.
    mirror = WeightWindow(default_limits("spot").of(RateLimitType.REQUEST_WEIGHT))
    limit = mirror.limits[0]
    mirror.sync("me", limit, usage.used_weight[limit.label], T0 + 50_000)
    assert mirror.would_exceed("me", 5894, T0 + 50_000) == limit
    assert mirror.would_exceed("me", 5893, T0 + 50_000) is None
