"""The exchange's rate limits: endpoint weights, fixed-window counters, 429/418 decisions.

Shared by the local exchange (which enforces the limits) and the REST client (which must
stay under them), so both sides charge the same weight for the same request and read the
same headers. Every number comes from ``../shared/binance-spec.md`` §1.3, §2.2 and §5; where
the spec gives none, the choice is marked ``ASSUMPTION`` and explained.

How Binance counts (§5.1): limits are per IP for weight and raw requests, per account for
unfilled orders; each limit is a *fixed* window aligned to the clock (a 1-minute window
resets at :00 of every minute, 10 seconds at :00, :10, ..., 1 day at 00:00 UTC), and the
``X-MBX-USED-WEIGHT-1M`` header reports the total of the current window. Past the limit the
exchange answers 429 with ``Retry-After`` (seconds); an IP that keeps sending after a 429 is
banned with 418, for 2 minutes up to 3 days for repeat offenders.

All times here are integer milliseconds since the epoch, passed explicitly (or read from an
injected clock), so tests never sleep.
"""

from __future__ import annotations

import enum
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple, TypeAlias

from tickbook._types import Market

__all__ = [
    "BAN_MAX_MS",
    "BAN_MIN_MS",
    "DEFAULT_LIMITS",
    "FUTURES_DEPTH_LIMITS",
    "SPOT_CONNECTION_ATTEMPTS",
    "SPOT_DEPTH_MAX",
    "WS_CONNECT",
    "Decision",
    "DepthLimitError",
    "HeaderUsage",
    "Interval",
    "MarketLimits",
    "OrderCount",
    "RateGuard",
    "RateLimit",
    "RateLimitType",
    "UnknownEndpoint",
    "WeightWindow",
    "ban_duration_ms",
    "default_limits",
    "depth_limit",
    "depth_weight",
    "interval_ms",
    "order_count",
    "order_count_header",
    "parse_usage_headers",
    "system_clock_ms",
    "usage_headers",
    "used_weight_header",
    "weight",
    "ws_weight",
]


def system_clock_ms() -> int:
    """Wall-clock milliseconds since the epoch: the default clock of ``RateGuard``."""
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------------------------
# Limit definitions (the exchangeInfo ``rateLimits`` entries)


class RateLimitType(enum.StrEnum):
    REQUEST_WEIGHT = "REQUEST_WEIGHT"
    ORDERS = "ORDERS"
    RAW_REQUESTS = "RAW_REQUESTS"
    CONNECTIONS = "CONNECTIONS"


class Interval(enum.StrEnum):
    SECOND = "SECOND"
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"

    @property
    def letter(self) -> str:
        """The header suffix letter: S, M, H, D."""
        return self.value[0]

    @property
    def ms(self) -> int:
        return _UNIT_MS[self.value[0]]


_UNIT_MS: Final = {"S": 1000, "M": 60_000, "H": 3_600_000, "D": 86_400_000}


def interval_ms(label: str) -> int:
    """Milliseconds of a header interval label such as ``1M``, ``10S``, ``1D``."""
    match = re.fullmatch(r"([0-9]+)([SMHD])", label.upper())
    if match is None:
        raise ValueError(f"not an interval label: {label!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One limit as exchangeInfo lists it: ``{rateLimitType, interval, intervalNum, limit}``."""

    kind: RateLimitType
    interval: Interval
    interval_num: int
    limit: int

    @property
    def interval_ms(self) -> int:
        return self.interval_num * self.interval.ms

    @property
    def label(self) -> str:
        """``1M``, ``10S``, ``1D``: the suffix of the usage headers."""
        return f"{self.interval_num}{self.interval.letter}"

    def to_json(self) -> dict[str, object]:
        return {
            "rateLimitType": self.kind.value,
            "interval": self.interval.value,
            "intervalNum": self.interval_num,
            "limit": self.limit,
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, object]) -> RateLimit:
        """Parse one exchangeInfo ``rateLimits`` entry (extra keys such as ``count`` ignored)."""
        try:
            num, limit = entry["intervalNum"], entry["limit"]
            if not isinstance(num, int) or not isinstance(limit, int) or num <= 0 or limit < 0:
                raise ValueError
            return cls(
                RateLimitType(str(entry["rateLimitType"])), Interval(str(entry["interval"])), num, limit
            )
        except (KeyError, ValueError):
            raise ValueError(f"not a rateLimits entry: {dict(entry)!r}") from None


def _rl(kind: RateLimitType, interval: Interval, num: int, limit: int) -> RateLimit:
    return RateLimit(kind, interval, num, limit)


_W, _O, _R = RateLimitType.REQUEST_WEIGHT, RateLimitType.ORDERS, RateLimitType.RAW_REQUESTS
_S, _M, _D = Interval.SECOND, Interval.MINUTE, Interval.DAY

# Spot (§5.1): 6000 weight/min; RAW_REQUESTS is 61000 per 5 min on the reference pages but
# 300000 per 5 min in the CHANGELOG from 2026-04-02, the newer source wins; ORDERS are the
# docs' example values (50/10 s, 160000/day): real ones come from exchangeInfo.
# USD-M (§5.1): 2400 weight/min, ORDERS 300/10 s and 1200/min.
# COIN-M: ASSUMPTION, the spec gives no values; the USD-M ones are used.
DEFAULT_LIMITS: Final[Mapping[Market, tuple[RateLimit, ...]]] = {
    Market.SPOT: (
        _rl(_W, _M, 1, 6000),
        _rl(_O, _S, 10, 50),
        _rl(_O, _D, 1, 160_000),
        _rl(_R, _M, 5, 300_000),
    ),
    Market.USDM: (_rl(_W, _M, 1, 2400), _rl(_O, _S, 10, 300), _rl(_O, _M, 1, 1200)),
    Market.COINM: (_rl(_W, _M, 1, 2400), _rl(_O, _S, 10, 300), _rl(_O, _M, 1, 1200)),
}
# Spot WebSocket streams and WS-API: 300 connection attempts per 5 minutes per IP (§3).
SPOT_CONNECTION_ATTEMPTS: Final = _rl(RateLimitType.CONNECTIONS, _M, 5, 300)


@dataclass(frozen=True, slots=True)
class MarketLimits:
    """The limits in force on one market: the defaults, or what exchangeInfo says."""

    market: Market
    rate_limits: tuple[RateLimit, ...]

    def of(self, kind: RateLimitType) -> tuple[RateLimit, ...]:
        return tuple(rl for rl in self.rate_limits if rl.kind is kind)

    def with_exchange_info(self, rate_limits: Iterable[Mapping[str, object]]) -> MarketLimits:
        """Replace, type by type, the limits an exchangeInfo ``rateLimits`` array lists.

        exchangeInfo is authoritative for every type it mentions (its intervals replace
        ours wholesale); a type it omits keeps its current values.
        """
        parsed = [RateLimit.from_json(entry) for entry in rate_limits]
        given = {rl.kind for rl in parsed}
        kept = [rl for rl in self.rate_limits if rl.kind not in given]
        return MarketLimits(self.market, tuple(kept + parsed))


def default_limits(market: Market | str) -> MarketLimits:
    market = Market.parse(market)
    return MarketLimits(market, DEFAULT_LIMITS[market])


# --------------------------------------------------------------------------------------------
# Depth limits


SPOT_DEPTH_DEFAULT: Final = 100
SPOT_DEPTH_MAX: Final = 5000
FUTURES_DEPTH_LIMITS: Final = (5, 10, 20, 50, 100, 500, 1000)
FUTURES_DEPTH_DEFAULT: Final = 500


class DepthLimitError(ValueError):
    """A depth ``limit`` the market refuses, with the exchange's code and message."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def depth_limit(market: Market | str, limit: object = None) -> int:
    """The number of levels a depth request returns, or ``DepthLimitError``.

    Spot: default 100, anything above 5000 is served as 5000 (§1.3); below 1 is refused
    with -1130 (ASSUMPTION: the spec does not say, -1130 is the generic invalid value).
    Futures: only 5, 10, 20, 50, 100, 500 (default), 1000; anything else is -4021 (§2.2).
    """
    market = Market.parse(market)
    if limit is None:
        return SPOT_DEPTH_DEFAULT if market is Market.SPOT else FUTURES_DEPTH_DEFAULT
    value = _as_int(limit)
    if market is Market.SPOT:
        if value is None:
            raise DepthLimitError(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]+$'."
            )
        if value < 1:
            raise DepthLimitError(-1130, "Data sent for parameter 'limit' is not valid.")
        return min(value, SPOT_DEPTH_MAX)
    if value not in FUTURES_DEPTH_LIMITS:
        raise DepthLimitError(-4021, "Invalid depth limit.")
    return value


def depth_weight(market: Market | str, limit: object = None) -> int:
    """Weight of a depth request (§1.3, §2.2). A refused limit is charged as the default
    one: the exchange charges failed requests too, and the request never picked a tier."""
    market = Market.parse(market)
    try:
        levels = depth_limit(market, limit)
    except DepthLimitError:
        levels = depth_limit(market, None)
    if market is Market.SPOT:
        if levels <= 100:
            return 5
        if levels <= 500:
            return 25
        if levels <= 1000:
            return 50
        return 250
    if levels <= 50:
        return 2
    if levels <= 100:
        return 5
    if levels <= 500:
        return 10
    return 20


# --------------------------------------------------------------------------------------------
# Endpoint weights

Params: TypeAlias = Mapping[str, object]
_Rule: TypeAlias = int | Callable[[Params], int]


class UnknownEndpoint(KeyError):
    """No weight is known for this endpoint (not in the spec's tables)."""


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        return int(value)
    return None


def _has(params: Params, name: str) -> bool:
    value = params.get(name)
    return value is not None and value != ""


def _symbol_count(params: Params) -> int | None:
    """How many symbols a request names: 1 for ``symbol``, the array length for
    ``symbols`` (a list, or its JSON text as sent), ``None`` for neither."""
    if _has(params, "symbol"):
        return 1
    symbols = params.get("symbols")
    if symbols is None or symbols == "":
        return None
    if isinstance(symbols, str):
        try:
            symbols = json.loads(symbols)
        except ValueError:
            return None
    return len(symbols) if isinstance(symbols, list | tuple) else None


def _spot_ticker_24hr(params: Params) -> int:
    n = _symbol_count(params)
    if n is None or n > 100:
        return 80
    return 2 if n <= 20 else 40


def _one_or_all(one: int, other: int) -> Callable[[Params], int]:
    """Weight ``one`` with a single ``symbol``, ``other`` with ``symbols`` or none."""
    return lambda params: one if _has(params, "symbol") else other


def _spot_rolling_ticker(params: Params) -> int:
    # 4 per symbol, capped at 200 (reached above 50 symbols). ASSUMPTION: no symbol at all
    # (the exchange refuses it with -1102) is charged as one symbol.
    return min(4 * max(_symbol_count(params) or 1, 1), 200)


def _spot_order_test(params: Params) -> int:
    return 20 if str(params.get("computeCommissionRates", "")).lower() == "true" else 1


def _spot_my_trades(params: Params) -> int:
    return 5 if _has(params, "orderId") else 20


def _futures_klines(params: Params) -> int:
    # By limit: [1,100) 1; [100,500) 2; [500,1000] 5; above 1000: 10. ASSUMPTION: default
    # limit 500 (the futures docs' default, not in the spec).
    limit = _as_int(params.get("limit"))
    limit = 500 if limit is None else limit
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def _depth(market: Market) -> Callable[[Params], int]:
    return lambda params: depth_weight(market, params.get("limit"))


_SPOT: Final[dict[tuple[str, str], _Rule]] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): _depth(Market.SPOT),
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/historicalTrades"): 25,
    ("GET", "/api/v3/aggTrades"): 4,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2,
    ("GET", "/api/v3/avgPrice"): 2,
    ("GET", "/api/v3/ticker/24hr"): _spot_ticker_24hr,
    ("GET", "/api/v3/ticker/price"): _one_or_all(2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): _one_or_all(2, 4),
    ("GET", "/api/v3/ticker"): _spot_rolling_ticker,
    ("GET", "/api/v3/ticker/tradingDay"): _spot_rolling_ticker,
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): _spot_order_test,
    ("DELETE", "/api/v3/order"): 1,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("PUT", "/api/v3/order/amend/keepPriority"): 4,
    # Not in the spec's table (§5.3); 4 is the weight Binance's page for "Query Order
    # Amendments" documents (WS-API ``order.amendments`` likewise).
    ("GET", "/api/v3/order/amendments"): 4,
    ("POST", "/api/v3/orderList/oco"): 1,
    ("POST", "/api/v3/orderList/oto"): 1,
    ("POST", "/api/v3/orderList/otoco"): 1,
    ("POST", "/api/v3/orderList/opo"): 1,
    ("POST", "/api/v3/orderList/opoco"): 1,
    ("DELETE", "/api/v3/orderList"): 1,
    # ASSUMPTION: SOR placement is listed among the 0-on-success requests (§5.2) but has no
    # row of its own; charged like an order placement.
    ("POST", "/api/v3/sor/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("GET", "/api/v3/openOrders"): _one_or_all(6, 80),
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/orderList"): 4,
    ("GET", "/api/v3/allOrderList"): 20,
    ("GET", "/api/v3/openOrderList"): 6,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): _spot_my_trades,
    ("GET", "/api/v3/rateLimit/order"): 40,
    ("GET", "/api/v3/account/commission"): 20,
    ("GET", "/api/v3/myFilters"): 40,
}

# Spot requests that cost 0 when they succeed (CHANGELOG 2026-03-27, from 2026-04-02).
# ``amend/keepPriority`` is free only when the amendment expires the order, which the
# request alone does not tell; it is charged its full 4.
_SPOT_FREE_ON_SUCCESS: Final = frozenset(
    {
        ("POST", "/api/v3/order"),
        ("DELETE", "/api/v3/order"),
        ("DELETE", "/api/v3/openOrders"),
        ("POST", "/api/v3/order/cancelReplace"),
        ("POST", "/api/v3/orderList/oco"),
        ("POST", "/api/v3/orderList/oto"),
        ("POST", "/api/v3/orderList/otoco"),
        ("POST", "/api/v3/orderList/opo"),
        ("POST", "/api/v3/orderList/opoco"),
        ("DELETE", "/api/v3/orderList"),
        ("POST", "/api/v3/sor/order"),
    }
)


def _futures_table(prefix: str, market: Market) -> dict[tuple[str, str], _Rule]:
    """USD-M weights (§5.3) under ``/fapi``; COIN-M reuses them under ``/dapi``.

    For COIN-M the spec only confirms depth (§2.2: same limits and weights): the rest is
    an ASSUMPTION that the same path costs the same on both futures markets.
    """
    p = prefix
    table: dict[tuple[str, str], _Rule] = {
        ("GET", f"{p}/v1/ping"): 1,
        ("GET", f"{p}/v1/time"): 1,
        ("GET", f"{p}/v1/exchangeInfo"): 1,
        ("GET", f"{p}/v1/depth"): _depth(market),
        ("GET", f"{p}/v1/trades"): 5,
        ("GET", f"{p}/v1/historicalTrades"): 20,
        ("GET", f"{p}/v1/aggTrades"): 20,
        ("GET", f"{p}/v1/ticker/24hr"): _one_or_all(1, 40),
        ("GET", f"{p}/v1/ticker/price"): _one_or_all(1, 2),
        ("GET", f"{p}/v2/ticker/price"): _one_or_all(1, 2),
        ("GET", f"{p}/v1/ticker/bookTicker"): _one_or_all(2, 5),
        ("GET", f"{p}/v1/premiumIndex"): _one_or_all(1, 10),
        ("POST", f"{p}/v1/order"): 0,
        ("PUT", f"{p}/v1/order"): 0,
        ("POST", f"{p}/v1/batchOrders"): 5,
        ("PUT", f"{p}/v1/batchOrders"): 5,
        ("DELETE", f"{p}/v1/order"): 1,
        ("DELETE", f"{p}/v1/allOpenOrders"): 1,
        ("DELETE", f"{p}/v1/batchOrders"): 1,
        ("GET", f"{p}/v1/order"): 1,
        ("GET", f"{p}/v1/openOrder"): 1,
        ("GET", f"{p}/v1/openOrders"): _one_or_all(1, 40),
        ("GET", f"{p}/v1/allOrders"): 5,
        ("GET", f"{p}/v1/userTrades"): 5,
        ("POST", f"{p}/v1/algoOrder"): 0,
        ("DELETE", f"{p}/v1/algoOrder"): 1,
        ("DELETE", f"{p}/v1/algoOpenOrders"): 1,
        ("GET", f"{p}/v1/algoOrder"): 1,
        ("GET", f"{p}/v1/openAlgoOrders"): _one_or_all(1, 40),
        ("GET", f"{p}/v1/allAlgoOrders"): 5,
        # The reference page says 5; the 2024-08-07 changelog announced 10 for the v2
        # endpoints and the spec says to budget 10: v2 is charged 10, v3 the page's 5.
        ("GET", f"{p}/v2/account"): 10,
        ("GET", f"{p}/v3/account"): 5,
        ("GET", f"{p}/v2/balance"): 10,
        ("GET", f"{p}/v3/balance"): 5,
        ("GET", f"{p}/v2/positionRisk"): 10,
        ("GET", f"{p}/v3/positionRisk"): 5,
        ("POST", f"{p}/v1/leverage"): 1,
        ("POST", f"{p}/v1/marginType"): 1,
        ("POST", f"{p}/v1/positionSide/dual"): 1,
        ("GET", f"{p}/v1/positionSide/dual"): 30,
        ("GET", f"{p}/v1/income"): 30,
        ("GET", f"{p}/v1/commissionRate"): 20,
        ("GET", f"{p}/v1/rateLimit/order"): 1,
        ("POST", f"{p}/v1/listenKey"): 1,
        ("PUT", f"{p}/v1/listenKey"): 1,
        ("DELETE", f"{p}/v1/listenKey"): 1,
    }
    for kline in ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines", "continuousKlines"):
        table[("GET", f"{p}/v1/{kline}")] = _futures_klines
    if market is Market.COINM:
        # COIN-M has account, balance and positionRisk on v1 only; same ASSUMPTION as above.
        for name in ("account", "balance", "positionRisk"):
            table[("GET", f"{p}/v1/{name}")] = 5
    return table


_TABLES: Final[Mapping[Market, Mapping[tuple[str, str], _Rule]]] = {
    Market.SPOT: _SPOT,
    Market.USDM: _futures_table("/fapi", Market.USDM),
    Market.COINM: _futures_table("/dapi", Market.COINM),
}


def _normalize_path(path: str) -> str:
    path = path.split("?", 1)[0]
    return path.rstrip("/") or "/"


def weight(
    market: Market | str,
    method: str,
    path: str,
    params: Params | None = None,
    *,
    succeeded: bool = False,
) -> int:
    """The IP weight of one REST request, parameters considered (§5.3).

    ``succeeded=True`` applies the spot rule that successful order placements and cancels
    cost 0; leave it False to budget ahead of sending (a failure pays the full weight).
    Raises ``UnknownEndpoint`` for an endpoint the tables do not list.
    """
    market = Market.parse(market)
    key = (method.upper(), _normalize_path(path))
    rule = _TABLES[market].get(key)
    if rule is None:
        raise UnknownEndpoint(f"no weight known for {key[0]} {key[1]} on {market.value}")
    if succeeded and market is Market.SPOT and key in _SPOT_FREE_ON_SUCCESS:
        return 0
    return rule if isinstance(rule, int) else rule(params or {})


# WebSocket API methods map onto the REST endpoint whose weight they share (§5.3: "WS-API
# methods cost the same"). Only spot's method list is in the spec (§9).
_SPOT_WS_METHODS: Final = {
    "ping": ("GET", "/api/v3/ping"),
    "time": ("GET", "/api/v3/time"),
    "exchangeInfo": ("GET", "/api/v3/exchangeInfo"),
    "depth": ("GET", "/api/v3/depth"),
    "trades.recent": ("GET", "/api/v3/trades"),
    "trades.historical": ("GET", "/api/v3/historicalTrades"),
    "trades.aggregate": ("GET", "/api/v3/aggTrades"),
    "klines": ("GET", "/api/v3/klines"),
    "uiKlines": ("GET", "/api/v3/uiKlines"),
    "avgPrice": ("GET", "/api/v3/avgPrice"),
    "ticker.24hr": ("GET", "/api/v3/ticker/24hr"),
    "ticker.tradingDay": ("GET", "/api/v3/ticker/tradingDay"),
    "ticker": ("GET", "/api/v3/ticker"),
    "ticker.price": ("GET", "/api/v3/ticker/price"),
    "ticker.book": ("GET", "/api/v3/ticker/bookTicker"),
    "order.place": ("POST", "/api/v3/order"),
    "order.test": ("POST", "/api/v3/order/test"),
    "order.status": ("GET", "/api/v3/order"),
    "order.cancel": ("DELETE", "/api/v3/order"),
    "order.cancelReplace": ("POST", "/api/v3/order/cancelReplace"),
    "order.amend.keepPriority": ("PUT", "/api/v3/order/amend/keepPriority"),
    "order.amendments": ("GET", "/api/v3/order/amendments"),
    "openOrders.status": ("GET", "/api/v3/openOrders"),
    "openOrders.cancelAll": ("DELETE", "/api/v3/openOrders"),
    "orderList.place.oco": ("POST", "/api/v3/orderList/oco"),
    "orderList.place.oto": ("POST", "/api/v3/orderList/oto"),
    "orderList.place.otoco": ("POST", "/api/v3/orderList/otoco"),
    "orderList.place.opo": ("POST", "/api/v3/orderList/opo"),
    "orderList.place.opoco": ("POST", "/api/v3/orderList/opoco"),
    "orderList.status": ("GET", "/api/v3/orderList"),
    "orderList.cancel": ("DELETE", "/api/v3/orderList"),
    "openOrderLists.status": ("GET", "/api/v3/openOrderList"),
    "allOrders": ("GET", "/api/v3/allOrders"),
    "allOrderLists": ("GET", "/api/v3/allOrderList"),
    "myTrades": ("GET", "/api/v3/myTrades"),
    "myFilters": ("GET", "/api/v3/myFilters"),
    "account.status": ("GET", "/api/v3/account"),
    "account.rateLimits.orders": ("GET", "/api/v3/rateLimit/order"),
    "account.commission": ("GET", "/api/v3/account/commission"),
    "sor.order.place": ("POST", "/api/v3/sor/order"),
}

WS_CONNECT: Final = "connect"  # pseudo-method: the cost of opening a WS-API connection


def ws_weight(
    market: Market | str, method: str, params: Params | None = None, *, succeeded: bool = False
) -> int:
    """The weight of a WebSocket API request, or of ``WS_CONNECT`` (a new connection).

    Spot: connect, ``session.*`` and ``userDataStream.*`` cost 2; the rest as their REST
    twin. USD-M/COIN-M: the handshake costs 5 and ``order.place`` 0 (§5.3); other futures
    methods are not in the spec and raise ``UnknownEndpoint``.
    """
    market = Market.parse(market)
    method = method.removeprefix("v3/").removeprefix("v1/")
    if market is Market.SPOT:
        if method == WS_CONNECT or method.startswith(("session.", "userDataStream.")):
            return 2
        route = _SPOT_WS_METHODS.get(method)
        if route is not None:
            return weight(market, route[0], route[1], params, succeeded=succeeded)
    elif method == WS_CONNECT:
        return 5
    elif method == "order.place":
        return 0
    raise UnknownEndpoint(f"no weight known for WebSocket API method {method!r} on {market.value}")


class OrderCount(NamedTuple):
    """What a request adds to the ORDERS counters: ``short`` to the 10-second window,
    ``long`` to the longer ones (spot: the day; futures: the minute)."""

    short: int
    long: int


_SPOT_ORDER_COUNTS: Final = {
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,  # even when the new order is NOT_ATTEMPTED
    ("POST", "/api/v3/orderList/oco"): 2,
    ("POST", "/api/v3/orderList/oto"): 2,
    ("POST", "/api/v3/orderList/otoco"): 3,
    ("POST", "/api/v3/orderList/opo"): 2,
    ("POST", "/api/v3/orderList/opoco"): 3,
    ("POST", "/api/v3/sor/order"): 1,  # ASSUMPTION: one new order, like POST /order
}


def order_count(market: Market | str, method: str, path: str) -> OrderCount:
    """The unfilled-order count a request adds (§5.3), ``(0, 0)`` for anything else.

    Spot: +1 per order to every ORDERS interval (an OCO places 2, an OTOCO 3); fills give
    some back, which the order book side accounts for. USD-M/COIN-M: an order or modify is
    1 and 1; a batch is 5 on the 10-second count and 1 on the minute. ASSUMPTIONS: a batch
    modify (PUT batchOrders) counts like a batch placement, and algo (conditional) orders,
    which wait in the algo service rather than the book, count nothing.
    """
    market = Market.parse(market)
    key = (method.upper(), _normalize_path(path))
    if market is Market.SPOT:
        n = _SPOT_ORDER_COUNTS.get(key, 0)
        return OrderCount(n, n)
    prefix = "/fapi" if market is Market.USDM else "/dapi"
    if key in {("POST", f"{prefix}/v1/order"), ("PUT", f"{prefix}/v1/order")}:
        return OrderCount(1, 1)
    if key in {("POST", f"{prefix}/v1/batchOrders"), ("PUT", f"{prefix}/v1/batchOrders")}:
        return OrderCount(5, 1)
    return OrderCount(0, 0)


# --------------------------------------------------------------------------------------------
# Fixed-window counters


class WeightWindow:
    """Fixed-window counters keyed by ``(key, interval)``, as the exchange keeps them.

    One instance holds the intervals of one limit type (REQUEST_WEIGHT: 1 minute; ORDERS:
    10 seconds and 1 day; ...). Windows are aligned to the epoch, so a 1-minute window
    resets exactly on the minute and the count a header reports is the current window's
    total, not a sliding sum. The key is an IP for weight and raw requests, an account for
    orders. The client uses the same class to mirror the server's count.
    """

    def __init__(self, limits: RateLimit | Iterable[RateLimit]) -> None:
        self.limits: tuple[RateLimit, ...] = (limits,) if isinstance(limits, RateLimit) else tuple(limits)
        if not self.limits:
            raise ValueError("a WeightWindow needs at least one limit")
        # (key, interval_ms) -> [window start, total in that window]
        self._counts: dict[tuple[str, int], list[int]] = {}

    @staticmethod
    def window_start(limit: RateLimit, now_ms: int) -> int:
        return now_ms - now_ms % limit.interval_ms

    @classmethod
    def window_end(cls, limit: RateLimit, now_ms: int) -> int:
        """When the window containing ``now_ms`` ends and the count starts again from 0."""
        return cls.window_start(limit, now_ms) + limit.interval_ms

    @classmethod
    def retry_after_s(cls, limit: RateLimit, now_ms: int) -> int:
        """Whole seconds until the window resets: the ``Retry-After`` value (rounded up,
        so a client that waits exactly that long lands in the new window)."""
        return max(1, math.ceil((cls.window_end(limit, now_ms) - now_ms) / 1000))

    def _used(self, key: str, limit: RateLimit, now_ms: int) -> int:
        entry = self._counts.get((key, limit.interval_ms))
        if entry is None or entry[0] != self.window_start(limit, now_ms):
            return 0
        return entry[1]

    def used(self, key: str, now_ms: int, limit: RateLimit | None = None) -> int:
        """The current window's total for ``key`` (the first limit's window by default)."""
        return self._used(key, self.limits[0] if limit is None else limit, now_ms)

    def usage(self, key: str, now_ms: int) -> dict[RateLimit, int]:
        return {limit: self._used(key, limit, now_ms) for limit in self.limits}

    def charge(self, key: str, amount: int, now_ms: int) -> int:
        """Add ``amount`` to every interval; returns the first limit's window total after it.

        A negative amount gives budget back (spot orders that fill), never below zero.
        """
        for limit in self.limits:
            start = self.window_start(limit, now_ms)
            entry = self._counts.get((key, limit.interval_ms))
            if entry is None or entry[0] != start:
                entry = self._counts[(key, limit.interval_ms)] = [start, 0]
            entry[1] = max(0, entry[1] + amount)
        return self.used(key, now_ms)

    def would_exceed(self, key: str, amount: int, now_ms: int) -> RateLimit | None:
        """The first limit that charging ``amount`` now would break, else ``None``. A total
        equal to the limit is still within it; the client waits when this is not None."""
        for limit in self.limits:
            if self._used(key, limit, now_ms) + amount > limit.limit:
                return limit
        return None

    def exceeded(self, key: str, now_ms: int) -> RateLimit | None:
        """The first limit whose current total is above its value, else ``None``."""
        for limit in self.limits:
            if self._used(key, limit, now_ms) > limit.limit:
                return limit
        return None

    def wait_ms(self, key: str, amount: int, now_ms: int) -> int:
        """How long a client must wait before ``amount`` fits (0 when it fits now). When
        it can never fit (``amount`` above the limit), the wait for an empty window."""
        wait = 0
        for limit in self.limits:
            if self._used(key, limit, now_ms) + amount > limit.limit:
                wait = max(wait, self.window_end(limit, now_ms) - now_ms)
        return wait

    def sync(self, key: str, limit: RateLimit, used: int, now_ms: int) -> None:
        """Set the current window's total from a server report (a usage header), so the
        client's mirror follows the server's count rather than drifting from it."""
        self._counts[(key, limit.interval_ms)] = [self.window_start(limit, now_ms), max(0, used)]

    def prune(self, now_ms: int) -> None:
        """Forget the counts of windows that are over (long-running servers call this)."""
        stale = [k for k, (start, _) in self._counts.items() if start + k[1] <= now_ms - now_ms % k[1]]
        for k in stale:
            del self._counts[k]

    def __len__(self) -> int:
        return len(self._counts)


# --------------------------------------------------------------------------------------------
# Headers


USED_WEIGHT_PREFIX: Final = "X-MBX-USED-WEIGHT-"
ORDER_COUNT_PREFIX: Final = "X-MBX-ORDER-COUNT-"


def used_weight_header(limit: RateLimit) -> str:
    """``X-MBX-USED-WEIGHT-1M`` for the spot and futures 1-minute weight limit."""
    return USED_WEIGHT_PREFIX + limit.label


def order_count_header(limit: RateLimit) -> str:
    """``X-MBX-ORDER-COUNT-10S`` / ``-1D`` (spot), ``-10S`` / ``-1M`` (futures)."""
    return ORDER_COUNT_PREFIX + limit.label


def usage_headers(window: WeightWindow, key: str, now_ms: int) -> dict[str, str]:
    """The usage headers for one counter: weight headers for REQUEST_WEIGHT windows, order
    count headers for ORDERS windows (RAW_REQUESTS has no header)."""
    headers: dict[str, str] = {}
    for limit, used in window.usage(key, now_ms).items():
        if limit.kind is RateLimitType.REQUEST_WEIGHT:
            headers[used_weight_header(limit)] = str(used)
        elif limit.kind is RateLimitType.ORDERS:
            headers[order_count_header(limit)] = str(used)
    return headers


@dataclass(frozen=True, slots=True)
class HeaderUsage:
    """What a response's headers say about the budget: used weight and order counts by
    interval label (``"1M"``, ``"10S"``, ``"1D"``), and ``Retry-After`` in seconds."""

    used_weight: dict[str, int] = field(default_factory=dict)
    order_count: dict[str, int] = field(default_factory=dict)
    retry_after_s: int | None = None


_USAGE_RE: Final = re.compile(r"X-MBX-(USED-WEIGHT|ORDER-COUNT)-([0-9]+[SMHD])")


def parse_usage_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> HeaderUsage:
    """Read the usage headers of a response, whatever their case (HTTP/2 lower-cases
    them). Malformed values are skipped rather than trusted. Accepts any mapping (an
    aiohttp ``CIMultiDictProxy`` included) or a list of pairs."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    weights: dict[str, int] = {}
    orders: dict[str, int] = {}
    retry_after: int | None = None
    for name, value in pairs:
        upper = name.upper()
        count = _as_int(value)
        if count is None or count < 0:
            continue
        if upper == "RETRY-AFTER":
            retry_after = count
            continue
        match = _USAGE_RE.fullmatch(upper)
        if match is None:
            continue
        (weights if match.group(1) == "USED-WEIGHT" else orders)[match.group(2)] = count
    return HeaderUsage(weights, orders, retry_after)


# --------------------------------------------------------------------------------------------
# The server's decision: allow, 429, or 418


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``RateGuard.admit``: ``status`` 200 (go ahead), 429 or 418, with the
    error code and message to send, ``Retry-After`` seconds and the headers to attach."""

    status: int
    headers: dict[str, str]
    code: int | None = None
    msg: str | None = None
    retry_after_s: int | None = None
    banned_until_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def body(self) -> bytes:
        """The exchange's JSON error body (empty for an allowed request)."""
        if self.code is None:
            return b""
        return json.dumps({"code": self.code, "msg": self.msg}, separators=(",", ":")).encode()


@dataclass(slots=True)
class _IpState:
    throttled_until: int = 0  # end of the window that produced the last 429
    strikes: int = 0  # requests sent while throttled
    banned_until: int = 0
    offenses: int = 0  # bans so far, for the escalation
    last_ban_end: int = 0


BAN_MIN_MS: Final = 2 * 60_000
BAN_MAX_MS: Final = 3 * 86_400_000


def ban_duration_ms(offense: int, *, base_ms: int = BAN_MIN_MS, max_ms: int = BAN_MAX_MS) -> int:
    """Length of the ``offense``-th ban (1-based): 2 minutes, doubling, capped at 3 days.
    The spec says only "2 minutes to 3 days for repeat offenders"; doubling is our scale:
    2 m, 4 m, 8 m, ... 2048 m (about 34 h), then 3 days from the 13th ban on."""
    if offense < 1:
        raise ValueError("offense numbers start at 1")
    return min(base_ms << min(offense - 1, 40), max_ms)


class RateGuard:
    """The exchange's per-IP admission: charge the weight, answer 429 past the limit, and
    ban (418) an IP that keeps sending while throttled.

    Rules (the spec gives the behaviour, not the thresholds, so these are choices):

    * a request is charged before the check, and refused with 429/-1003 when the window
      total goes *above* the limit (reaching it exactly is allowed); ``Retry-After`` is
      the seconds until that window resets;
    * after a 429 the IP is throttled until that window ends; each further request in the
      meantime is a strike and gets another 429, and the strike after ``tolerance``
      strikes earns a 418 ban (tolerance 2 leaves room for requests already in flight);
    * bans last ``ban_duration_ms(n)`` for the n-th offense; a banned IP gets 418 with
      ``Retry-After`` until ``banned_until`` and is not charged; offenses are forgotten
      ``forgive_after_ms`` after the last ban ended.
    """

    def __init__(
        self,
        limits: MarketLimits,
        *,
        tolerance: int = 2,
        ban_base_ms: int = BAN_MIN_MS,
        ban_max_ms: int = BAN_MAX_MS,
        forgive_after_ms: int = 86_400_000,
        clock: Callable[[], int] = system_clock_ms,
    ) -> None:
        self.limits = limits
        self.market = limits.market
        weight_limits = limits.of(RateLimitType.REQUEST_WEIGHT)
        raw_limits = limits.of(RateLimitType.RAW_REQUESTS)
        if not weight_limits:
            raise ValueError("no REQUEST_WEIGHT limit to enforce")
        self.weights = WeightWindow(weight_limits)
        self.raw: WeightWindow | None = WeightWindow(raw_limits) if raw_limits else None
        self.tolerance = tolerance
        self.ban_base_ms = ban_base_ms
        self.ban_max_ms = ban_max_ms
        self.forgive_after_ms = forgive_after_ms
        self.clock = clock
        self._ips: dict[str, _IpState] = {}
        self.throttled = 0  # 429s answered, for tests and the exchange's stats
        self.bans = 0  # 418 bans imposed

    def _now(self, now_ms: int | None) -> int:
        return self.clock() if now_ms is None else now_ms

    def headers(self, ip: str, now_ms: int | None = None) -> dict[str, str]:
        """``X-MBX-USED-WEIGHT-1M`` (and any other weight interval) for this IP now."""
        return usage_headers(self.weights, ip, self._now(now_ms))

    def banned_until(self, ip: str, now_ms: int | None = None) -> int | None:
        """When the IP's ban ends (epoch ms), or ``None`` when it is not banned."""
        state = self._ips.get(ip)
        if state is None or state.banned_until <= self._now(now_ms):
            return None
        return state.banned_until

    def ban(self, ip: str, now_ms: int | None = None, duration_ms: int | None = None) -> int:
        """Ban an IP now, as the next escalation step or for ``duration_ms`` (fault
        injection uses this); returns when the ban ends."""
        now = self._now(now_ms)
        state = self._ips.setdefault(ip, _IpState())
        if state.offenses and now - state.last_ban_end > self.forgive_after_ms:
            state.offenses = 0
        state.offenses += 1
        if duration_ms is None:
            duration_ms = ban_duration_ms(state.offenses, base_ms=self.ban_base_ms, max_ms=self.ban_max_ms)
        state.banned_until = state.last_ban_end = now + duration_ms
        state.throttled_until = state.strikes = 0
        self.bans += 1
        return state.banned_until

    def _ban_decision(self, ip: str, state: _IpState, now: int) -> Decision:
        retry = max(1, math.ceil((state.banned_until - now) / 1000))
        headers = self.headers(ip, now)
        headers["Retry-After"] = str(retry)
        if self.market is Market.SPOT:
            msg = (
                f"Way too much request weight used; IP banned until {state.banned_until}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            msg = (
                f"Way too many requests; IP banned until {state.banned_until}. "
                "Please use the websocket for live updates to avoid bans."
            )
        return Decision(418, headers, -1003, msg, retry, state.banned_until)

    def _throttle_message(self, limit: RateLimit) -> str:
        per = f"{limit.interval_num} {limit.interval.value}"
        if self.market is not Market.SPOT:
            unit = limit.interval.value.lower() if limit.interval_num == 1 else per
            return (
                f"Too many requests; current limit is {limit.limit} requests per {unit}. "
                "Please use the websocket for live updates to avoid polling the API."
            )
        if limit.kind is RateLimitType.RAW_REQUESTS:
            return (
                f"Too many requests; current limit is {limit.limit} requests per {per}. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
        return (
            f"Too much request weight used; current limit is {limit.limit} request weight per {per}. "
            "Please use WebSocket Streams for live updates to avoid polling the API."
        )

    def admit(self, ip: str, request_weight: int, now_ms: int | None = None) -> Decision:
        """Decide one request from ``ip`` costing ``request_weight``."""
        now = self._now(now_ms)
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _IpState()
        if state.banned_until > now:
            return self._ban_decision(ip, state, now)
        if state.throttled_until > now:
            state.strikes += 1
            if state.strikes > self.tolerance:
                self.ban(ip, now)
                return self._ban_decision(ip, state, now)
        else:
            state.throttled_until = state.strikes = 0
        over: RateLimit | None = None
        if self.raw is not None:
            self.raw.charge(ip, 1, now)
            over = self.raw.exceeded(ip, now)
        self.weights.charge(ip, request_weight, now)
        over = self.weights.exceeded(ip, now) or over
        headers = self.headers(ip, now)
        if over is None and state.throttled_until == 0:
            return Decision(200, headers)
        if over is None:  # throttled by an earlier window that has not ended yet
            limit = self.limits.of(RateLimitType.REQUEST_WEIGHT)[0]
            retry = max(1, math.ceil((state.throttled_until - now) / 1000))
        else:
            limit = over
            window = self.raw if over.kind is RateLimitType.RAW_REQUESTS and self.raw else self.weights
            state.throttled_until = max(state.throttled_until, window.window_end(over, now))
            retry = max(1, math.ceil((state.throttled_until - now) / 1000))
        self.throttled += 1
        headers["Retry-After"] = str(retry)
        return Decision(429, headers, -1003, self._throttle_message(limit), retry)

    def prune(self, now_ms: int | None = None) -> None:
        """Drop expired windows and IP states with nothing left to remember."""
        now = self._now(now_ms)
        self.weights.prune(now)
        if self.raw is not None:
            self.raw.prune(now)
        for ip in [ip for ip, s in self._ips.items() if self._forgettable(s, now)]:
            del self._ips[ip]

    def _forgettable(self, state: _IpState, now: int) -> bool:
        quiet = state.banned_until <= now and state.throttled_until <= now
        return quiet and (state.offenses == 0 or now - state.last_ban_end > self.forgive_after_ms)
