"""The local exchange's REST API (aiohttp): market data, the signed account, limits, errors, control.

Paths are Binance's, per market: spot ``/api/v3/...``, USD-M ``/fapi/v1/...`` (account
``/fapi/v2/account``), COIN-M ``/dapi/v1/...``. Every answer is computed from the market
source at the moment of the request, so a depth snapshot is the true book at that instant
with the truth's ``lastUpdateId``: a client that follows the documented sync procedure
bridges it with the next stream event.

The exchange's rules are enforced as the real one enforces them, because a client that only
ever meets a lenient server learns nothing about its own limit handling:

* every request is charged its documented weight (``tickbook.limits.weight``) per IP before
  anything else; past the limit the answer is 429 with ``Retry-After`` and -1003, and an IP
  that keeps sending while throttled is banned with 418 for an escalating time
  (``tickbook.limits.RateGuard``); every response carries ``X-MBX-USED-WEIGHT-1M``;
* signed endpoints authenticate through ``tickbook.signing.KeyRegistry`` on the bytes that
  arrived (percent-encoded query + body), with -2014/-2015/-1102/-1022/-1021 as Binance
  answers them;
* bad parameters get the exchange's codes (-1121 invalid symbol, -4021 futures depth limit,
  -1100/-1102 malformed or missing), always as ``{"code":..,"msg":".."}`` with the exchange's
  HTTP status.

Trade-derived market data is computed from the replayed trades the exchange keeps
(``RestContext.recent_trades``: the last 1000 ``trade`` events per symbol, oldest first) at the
moment of the request; nothing older than that window exists for the local exchange:

* ``historicalTrades`` (futures: API key header required, MARKET_DATA) is ``trades`` from
  ``fromId`` on (default the most recent ``limit``);
* ``aggTrades``: runs of consecutive trades at the same price and side (``m``), the run's
  first trade id serving as its aggregate id ``a`` (stable while the window slides; the
  oldest run may have lost its first trades); ``fromId`` wins over ``startTime``/``endTime``
  (both inclusive, on ``T``), which take the first ``limit``, no parameter the last;
* ``klines``: OHLCV of the trades in each interval bucket (epoch-aligned; weeks open on
  Monday, ``1M`` on the calendar month; spot's ``timeZone`` shifts the boundaries), only
  buckets with trades, taker buy volume from the trades whose buyer was the taker; buckets
  open at or after ``startTime`` and at or before ``endTime``, the first ``limit`` with
  ``startTime``, else the last;
* ``avgPrice`` (spot): the volume-weighted price of the trades within 5 minutes (``mins``)
  of the last trade, whose time is ``closeTime``;
* ``ticker/24hr``: the trades within 24 hours of the last one (open, high, low, last,
  volume, quote volume or COIN-M base volume, VWAP, count, first/last id); spot adds the true
  book's best bid and ask and ``prevClosePrice`` 0 (the replay has no earlier day);
  ``ticker/price``: the last trade's price (futures add its time; USD-M also at
  ``/fapi/v2``). Without trades the prices are 0 and the ids -1.

Derived amounts are written with 8 decimals on spot and exactly on futures; prices are the
traded texts. Bad parameters: -1121 symbol, -1120 interval, -1102 missing, -1100 malformed.

Faults come from the exchange's fault plan: ``http@N:STATUS`` (the N-th REST request fails
with that status and the exchange's body for it), ``stale-snapshot`` (the next depth answer
is older than the stream), ``slow-snapshot:S`` (the next depth answer is held S seconds after
it was taken) and ``skew:MS`` (the server clock, as ``/time`` and the timestamp check see
it). Each injected fault is logged through the exchange.

Trading (``exchange.private_api``, ``tickbook.sim.wsapi.PrivateApi``, over the exchange's
``trading`` engine): every endpoint the engine lists is served at its path. Signed ones
authenticate as above; the handler gets the merged parameters (query and form body, the
query's value winning on a duplicate, spec §4.2) and the API key, and answers JSON, its
refusals being ``ApiError`` (a 409 partial success carries its full body). Order responses
carry the account's ``X-MBX-ORDER-COUNT-*`` headers. USD-M and COIN-M also serve
``POST``/``PUT``/``DELETE /fapi/v1/listenKey`` (``/dapi/v1/listenKey``): API key only, no
signature (§4.1 USER_STREAM). The ``lost-response`` fault executes an order placement and
then holds its answer, answers 503 instead, or resets the connection.

Control endpoints (not charged, not faulted): ``GET /sim/truth``, ``GET /sim/faults``,
``GET /sim/violations``.

Several markets on one server (``build_multi_app``, what ``tickbook.sim.exchange.Venue``
serves): their REST paths never overlap (``/api/``, ``/fapi/``, ``/dapi/``), so one app mounts
every market's routes and a dispatching middleware hands each request to its market's
handlers by path prefix, where it is charged against that market's own weight counters and
fault plan, as on Binance's separate API hosts. The control endpoints answer for all markets:
``/sim/truth`` takes ``market=`` (needed only when a symbol is served on several markets).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from tickbook._types import Market
from tickbook.limits import DepthLimitError, RateGuard, UnknownEndpoint, depth_limit, order_count, weight
from tickbook.signing import FUTURES_RULES, SPOT_RULES, Accepted, KeyRegistry
from tickbook.sim.faults import LOST_RESPONSE_MSG, Fault, FaultPlan, http_error_body
from tickbook.sim.market import DerivedStreams, MarketSource

if TYPE_CHECKING:
    from tickbook.sim.wsapi import PrivateApi, TradeRoute

__all__ = [
    "DEFAULT_BALANCES",
    "ApiError",
    "ControlContext",
    "RestContext",
    "ServerContext",
    "build_app",
    "build_multi_app",
    "market_paths",
    "truth_summary",
]

# The prefix of the public market-data endpoints and the signed account path, per market.
_PREFIX: Final = {Market.SPOT: "/api/v3", Market.USDM: "/fapi/v1", Market.COINM: "/dapi/v1"}
# The first path segment every REST path of a market starts with (how requests are routed
# when one app serves several markets).
_ROOT: Final = {Market.SPOT: "/api/", Market.USDM: "/fapi/", Market.COINM: "/dapi/"}
_ACCOUNT: Final = {
    Market.SPOT: "/api/v3/account",
    Market.USDM: "/fapi/v2/account",
    Market.COINM: "/dapi/v1/account",
}

# What an account holds when nothing else is configured: enough to look like a funded
# test account on every market (COIN-M margins in coins, USD-M in USDT).
DEFAULT_BALANCES: Final[Mapping[str, str]] = {"BTC": "1.00000000", "USDT": "10000.00000000"}

_SPOT_SYMBOL: Final = re.compile(r"[A-Z0-9\-_.]{1,20}")
_FUTURES_SYMBOL: Final = re.compile(r"[A-Za-z0-9\-_.]{1,40}")
_LIMIT_TEXT: Final = re.compile(r"[0-9]{1,9}")
_SYMBOL_STATUSES: Final = ("TRADING", "HALT", "BREAK")
_SYMBOLS_LEGAL: Final = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


class ApiError(Exception):
    """An answer with the exchange's JSON error body: raised anywhere in a handler.

    ``body`` replaces the default ``{"code":..,"msg":..}`` when the exchange says more, as a
    partly successful spot cancelReplace does (409, -2021, with ``data`` holding both halves,
    binance-spec §5.2); the WebSocket API sends the same object as its ``error``.
    """

    def __init__(
        self,
        status: int,
        code: int,
        msg: str,
        headers: Mapping[str, str] | None = None,
        *,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = dict(headers or {})
        self.body: dict[str, Any] = dict(body) if body is not None else {"code": code, "msg": msg}

    def response(self) -> web.Response:
        body = json.dumps(self.body, separators=(",", ":"))
        return web.Response(
            status=self.status,
            text=body,
            content_type="application/json",
            charset="UTF-8",
            headers=self.headers,
        )


class ServerContext(Protocol):
    """What every server of the exchange (REST, the WebSocket API) reads from it: the API
    keys, the IP limits, the fault plan, the server clock and the violation counters."""

    @property
    def keys(self) -> KeyRegistry: ...
    @property
    def guard(self) -> RateGuard: ...
    @property
    def faults(self) -> FaultPlan | None: ...

    def now_ms(self) -> int:
        """The server clock (wall clock plus any injected skew), epoch milliseconds."""

    def client_seen(self) -> None: ...
    def count_violation(self, kind: str) -> None: ...


class RestContext(ServerContext, Protocol):
    """What the REST app needs from the exchange that hosts it (``Exchange`` implements it)."""

    @property
    def source(self) -> MarketSource: ...
    @property
    def fault_log(self) -> list[dict[str, Any]]: ...
    @property
    def violations(self) -> dict[str, dict[str, int]]: ...

    def recent_trades(self, symbol: str) -> Sequence[bytes]: ...
    def balances(self, api_key: str) -> Mapping[str, str]: ...


class ControlContext(Protocol):
    """What ``/sim/faults`` and ``/sim/violations`` report: one exchange (a ``RestContext``
    is one) or every market of a venue."""

    @property
    def fault_log(self) -> list[dict[str, Any]]: ...
    @property
    def violations(self) -> Mapping[str, Any]: ...


def market_paths(market: Market) -> dict[str, str]:
    """The served paths of ``market`` by short name (``ping``, ``depth``, ``account``, ...)."""
    p = _PREFIX[market]
    paths = {name: f"{p}/{name}" for name in ("ping", "time", "exchangeInfo", "depth", "trades")}
    for name in ("historicalTrades", "aggTrades", "klines"):
        paths[name] = f"{p}/{name}"
    if market is Market.SPOT:
        paths["avgPrice"] = f"{p}/avgPrice"
    paths["bookTicker"] = f"{p}/ticker/bookTicker"
    paths["ticker24h"] = f"{p}/ticker/24hr"
    paths["tickerPrice"] = f"{p}/ticker/price"
    paths["account"] = _ACCOUNT[market]
    return paths


# ------------------------------------------------------------------------------------ helpers


def _json_response(body: bytes | str | Any) -> web.Response:
    if isinstance(body, bytes):
        return web.Response(body=body, content_type="application/json", charset="UTF-8")
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return web.Response(text=text, content_type="application/json", charset="UTF-8")


def _params(request: web.Request) -> dict[str, str]:
    """Decoded query parameters; a name given twice is the exchange's -1101."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
        if name in params:
            raise ApiError(400, -1101, f"Duplicate values for parameter '{name}'.")
        params[name] = value
    return params


def _illegal(name: str, legal: str) -> ApiError:
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def _mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _pad(text: str, decimals: int) -> str:
    """Canonical decimal text written with exactly ``decimals`` fraction digits (the wire form)."""
    whole, _, frac = text.partition(".")
    if decimals <= 0:
        return whole
    return f"{whole}.{(frac + '0' * decimals)[:decimals]}"


def _decimal_text(value: Decimal, decimals: int | None) -> str:
    """``value`` rounded to ``decimals`` places (spot writes 8), or exact and canonical (None)."""
    if decimals is not None:
        return f"{value.quantize(Decimal(1).scaleb(-decimals)):f}"
    return f"{value.normalize():f}"


# ------------------------------------------------------------------------------------ trade-derived data

_AVG_PRICE_MINS: Final = 5
_MINUTE: Final = 60_000
_DAY: Final = 1_440 * _MINUTE
_INTERVAL_MS: Final[Mapping[str, int]] = {
    "1s": 1_000,
    **{f"{n}m": n * _MINUTE for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": n * 60 * _MINUTE for n in (1, 2, 4, 6, 8, 12)},
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
    "1M": 31 * _DAY,  # calendar months: only its presence matters (_bucket_open)
}
_WEEK_ORIGIN: Final = 4 * _DAY  # 1970-01-05, a Monday: weekly candles open on Mondays
_TIME_ZONE: Final = re.compile(r"([+-]?)([0-9]{1,2})(?::([0-9]{2}))?")
_LONG_TEXT: Final = re.compile(r"-?[0-9]{1,19}")


class _Trade(NamedTuple):
    """One kept replayed trade: wire texts for prices written back as traded, Decimals for sums."""

    id: int
    price_text: str
    qty_text: str
    price: Decimal
    qty: Decimal
    time: int
    maker: bool  # buyer is maker: the taker sold


def _long(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _LONG_TEXT.fullmatch(raw):
        raise _illegal(name, "^-?[0-9]{1,19}$")
    return int(raw)


def _time_zone_ms(text: str | None) -> int:
    """Spot klines' ``timeZone`` (``[-12:00, +14:00]``, hours or hours:minutes) in ms."""
    if text is None or text == "":
        return 0
    match = _TIME_ZONE.fullmatch(text)
    if match is None:
        raise _illegal("timeZone", "[-12:00, +14:00]")
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    minutes = -minutes if match.group(1) == "-" else minutes
    if not -12 * 60 <= minutes <= 14 * 60:
        raise _illegal("timeZone", "[-12:00, +14:00]")
    return minutes * _MINUTE


def _bucket_open(t: int, interval: str, shift: int) -> int:
    """The open time of the ``interval`` candle holding ``t`` (epoch ms), boundaries in the
    time zone ``shift`` ms east of UTC."""
    local = t + shift
    if interval == "1M":
        day = datetime.fromtimestamp(local // 1000, tz=UTC)
        first = datetime(day.year, day.month, 1, tzinfo=UTC)
        return int(first.timestamp()) * 1000 - shift
    size = _INTERVAL_MS[interval]
    origin = _WEEK_ORIGIN if interval == "1w" else 0
    return (local - origin) // size * size + origin - shift


def _bucket_close(open_time: int, interval: str, shift: int) -> int:
    """The last millisecond of the candle opening at ``open_time``."""
    if interval == "1M":
        start = datetime.fromtimestamp((open_time + shift) // 1000, tz=UTC)
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000 - shift - 1
    return open_time + _INTERVAL_MS[interval] - 1


def _aggregate(trades: Sequence[_Trade]) -> list[list[_Trade]]:
    """Runs of consecutive trades at the same price and side: the aggregate trades."""
    groups: list[list[_Trade]] = []
    for trade in trades:
        last = groups[-1][-1] if groups else None
        if last is not None and last.price == trade.price and last.maker == trade.maker:
            groups[-1].append(trade)
        else:
            groups.append([trade])
    return groups


def _max_text(trades: Sequence[_Trade], pick: Callable[..., _Trade]) -> str:
    """The traded price text of the highest (``max``) or lowest (``min``) trade."""
    return pick(trades, key=lambda t: t.price).price_text


def _vwap(trades: Sequence[_Trade]) -> Decimal:
    """Volume-weighted average price: sum(price * qty) / sum(qty); 0 without trades."""
    volume = sum((t.qty for t in trades), Decimal(0))
    if not volume:
        return Decimal(0)
    return sum((t.price * t.qty for t in trades), Decimal(0)) / volume


# ------------------------------------------------------------------------------------ the app


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Api:
    """Handlers bound to one exchange context (one market). One instance per market and app."""

    def __init__(self, ctx: RestContext, *, rate_limit_override: int | None) -> None:
        self.ctx = ctx
        self.source = ctx.source
        self.market: Market = ctx.source.market
        self.futures = self.market.is_futures
        self.root: str = _ROOT[self.market]
        self.paths = market_paths(self.market)
        self.auth_rules = FUTURES_RULES if self.futures else SPOT_RULES
        self.requests = 0  # REST requests seen (control endpoints excluded): the N of http@N
        self.rate_limit_override = rate_limit_override
        self._info_meta: dict[str, dict[str, Any]] | None = None
        # The exchange's trading side, when it has one (``Exchange.private_api``).
        self.private: PrivateApi | None = getattr(ctx, "private_api", None)

    # ------------------------------------------------------------------ middleware

    async def gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Charge, admit (429/418), inject ``http@N`` faults, run the handler, add the headers.

        Weight is charged even when the request then fails (the exchange charges failed
        requests too); a refused ``limit`` is charged as the default one. Control endpoints
        (``/sim/...``) never get here (``_Router.dispatch``).
        """
        path = request.path
        self.ctx.client_seen()
        self.requests += 1
        n = self.requests
        ip = request.remote or "127.0.0.1"
        now = self.ctx.now_ms()
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if request.method != "GET" and request.content_type == "application/x-www-form-urlencoded":
            # Weights that depend on a parameter (order/test's computeCommissionRates) read it
            # wherever it was sent; the query's value wins, as in the handler (§4.2).
            body = (await request.read()).decode("utf-8", "replace")
            for name, value in parse_qsl(body, keep_blank_values=True):
                params.setdefault(name, value)
        try:
            cost = weight(self.market, request.method, path, params)
        except UnknownEndpoint:
            cost = 1  # an unknown path still costs the exchange a look; 404 below
        decision = self.ctx.guard.admit(ip, cost, now)
        headers = self._weight_headers(decision.headers)
        if not decision.ok:
            self.ctx.count_violation("ip_banned" if decision.status == 418 else "request_weight")
            return web.Response(
                status=decision.status, body=decision.body(), content_type="application/json", headers=headers
            )
        faults = self.ctx.faults
        status = faults.on_rest_request(n) if faults is not None else None
        response: web.StreamResponse
        try:
            if status is not None:
                raise self._fault_error(status, now, faults.retry_after if faults is not None else None)
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:  # 404 / 405 from the router
            exc.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    def _weight_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        out = dict(headers)
        if not self.futures:  # spot also sends the legacy, interval-less header
            for name, value in headers.items():
                if name.upper().startswith("X-MBX-USED-WEIGHT-"):
                    out.setdefault("X-MBX-USED-WEIGHT", value)
                    break
        return out

    def _fault_error(self, status: int, now: int, retry_after: int | None = None) -> ApiError:
        """An injected ``http@N:STATUS``: the exchange's body for it, ``Retry-After`` on 418/429
        (the fault's ``retry=`` seconds when given, else the exchange's own)."""
        body = json.loads(http_error_body(status, now_ms=now))
        headers: dict[str, str] = {}
        if retry_after is not None and status in (418, 429):
            headers["Retry-After"] = str(retry_after)
        elif status == 429:
            headers["Retry-After"] = str(max(1, 60 - (now // 1000) % 60))  # the minute's end
        elif status == 418:
            headers["Retry-After"] = "120"  # http_error_body bans until now + 2 minutes
        return ApiError(status, int(body["code"]), str(body["msg"]), headers)

    # ------------------------------------------------------------------ symbols

    def _symbol(self, params: Mapping[str, str], *, required: bool = True) -> str | None:
        text = params.get("symbol")
        if text is None or text == "":
            if required:
                raise _mandatory("symbol")
            return None
        if self.futures:
            if not _FUTURES_SYMBOL.fullmatch(text):
                raise ApiError(400, -1121, "Invalid symbol.")
            text = text.upper()
        elif not _SPOT_SYMBOL.fullmatch(text):
            raise _illegal("symbol", "^[A-Z0-9-_.]{1,20}$")
        if text not in self.source.symbols:
            raise ApiError(400, -1121, "Invalid symbol.")
        return text

    def _symbols(self, params: Mapping[str, str]) -> list[str] | None:
        """The ``symbols=["A","B"]`` parameter (spot), validated; None when absent."""
        raw = params.get("symbols")
        if raw is None:
            return None
        if "symbol" in params:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
        if not isinstance(names, list) or not names or not all(isinstance(s, str) for s in names):
            raise _illegal("symbols", _SYMBOLS_LEGAL)
        if len(set(names)) != len(names):
            raise ApiError(400, -1151, "Symbol is present multiple times in the list.")
        for name in names:
            self._symbol({"symbol": name})
        return list(names)

    # ------------------------------------------------------------------ public endpoints

    async def ping(self, request: web.Request) -> web.Response:
        _params(request)
        return _json_response(b"{}")

    async def time(self, request: web.Request) -> web.Response:
        _params(request)
        now = self.ctx.now_ms()
        unit = request.headers.get("X-MBX-TIME-UNIT", "").upper()
        if unit == "MICROSECOND" and not self.futures:
            return _json_response(f'{{"serverTime":{now * 1000}}}')
        return _json_response(f'{{"serverTime":{now}}}')

    async def exchange_info(self, request: web.Request) -> web.Response:
        params = _params(request)
        wanted: list[str] | None = None
        if not self.futures:
            one = self._symbol(params, required=False)
            wanted = [one] if one is not None else self._symbols(params)
        body = self.source.exchange_info()
        if wanted is None and self.rate_limit_override is None:
            return _json_response(body)
        info = json.loads(body)
        if wanted is not None:
            info["symbols"] = [s for s in info.get("symbols", []) if s.get("symbol") in wanted]
        if self.rate_limit_override is not None:
            for entry in info.get("rateLimits", []):
                if entry.get("rateLimitType") == "REQUEST_WEIGHT":
                    entry["limit"] = self.rate_limit_override
        return _json_response(info)

    async def depth(self, request: web.Request) -> web.Response:
        params = _params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        raw_limit = params.get("limit")
        if raw_limit == "":
            raise _mandatory("limit")
        if raw_limit is not None and not self.futures and not _LIMIT_TEXT.fullmatch(raw_limit):
            raise _illegal("limit", "^[0-9]{1,9}$")
        try:
            limit = depth_limit(self.market, raw_limit)
        except DepthLimitError as exc:
            raise ApiError(400, exc.code, exc.msg) from None
        status = params.get("symbolStatus")
        if status is not None and not self.futures:
            if status not in _SYMBOL_STATUSES:
                raise ApiError(400, -1122, "Invalid symbolStatus.")
            if status != "TRADING":
                raise ApiError(400, -1220, "The symbol's status does not match the requested symbolStatus.")
        faults = self.ctx.faults
        action = faults.on_snapshot(symbol) if faults is not None else None
        if action is not None and action.stale and isinstance(self.source, DerivedStreams):
            body = self.source.stale_snapshot(symbol, limit)
        else:
            body = self.source.snapshot(symbol, limit)
        if action is not None and action.delay > 0:
            # Taken now, delivered late: the stream moves on meanwhile, as behind a slow gateway.
            await asyncio.sleep(action.delay)
        return _json_response(body)

    def _ticker_of(self, symbol: str) -> dict[str, Any]:
        """REST bookTicker of one symbol from the truth, in the market's shape and formatting."""
        if isinstance(self.source, DerivedStreams):
            wire = json.loads(self.source.derived(symbol, "bookTicker"))
            bid, bid_qty, ask, ask_qty = wire["b"], wire["B"], wire["a"], wire["A"]
            u = int(wire["u"])
            t = int(wire.get("T", self.ctx.now_ms()))
        else:
            book = self.source.truth(symbol)
            decimals = 8 if not self.futures else None
            best_bid = book.best_bid_str() or ("0", "0")
            best_ask = book.best_ask_str() or ("0", "0")
            pd = decimals if decimals is not None else (book.price_scale or 0)
            qd = decimals if decimals is not None else (book.qty_scale or 0)
            bid, bid_qty = _pad(best_bid[0], pd), _pad(best_bid[1], qd)
            ask, ask_qty = _pad(best_ask[0], pd), _pad(best_ask[1], qd)
            u = book.last_update_id
            t = self.ctx.now_ms()
        if not self.futures:
            return {"symbol": symbol, "bidPrice": bid, "bidQty": bid_qty, "askPrice": ask, "askQty": ask_qty}
        out: dict[str, Any] = {"lastUpdateId": u, "symbol": symbol}
        if self.market is Market.COINM:
            out["pair"] = self._meta(symbol).get("pair", symbol.split("_", 1)[0])
        out.update(bidPrice=bid, bidQty=bid_qty, askPrice=ask, askQty=ask_qty, time=t)
        return out

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = _params(request)
        one = self._symbol(params, required=False)
        if one is not None:
            ticker: Any = self._ticker_of(one)
            return _json_response([ticker] if self.market is Market.COINM else ticker)
        names = self._symbols(params) if not self.futures else None
        if self.futures and "pair" in params:  # COIN-M's pair filter
            names = [s for s in self.source.symbols if self._meta(s).get("pair") == params["pair"]]
        return _json_response([self._ticker_of(s) for s in (names or self.source.symbols)])

    def _meta(self, symbol: str) -> dict[str, Any]:
        """exchangeInfo's object of ``symbol`` (for COIN-M ``pair`` and ``contractSize``)."""
        if self._info_meta is None:
            info = json.loads(self.source.exchange_info())
            self._info_meta = {
                str(s.get("symbol")): s for s in info.get("symbols", []) if isinstance(s, dict)
            }
        return self._info_meta.get(symbol, {})

    async def trades(self, request: web.Request) -> web.Response:
        params = _params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        raw = params.get("limit")
        limit = 500
        if raw is not None:
            if not _LIMIT_TEXT.fullmatch(raw):
                raise _illegal("limit", "^[0-9]{1,9}$")
            limit = max(1, min(int(raw), 1000))
        recent = list(self.ctx.recent_trades(symbol))[-limit:]
        return _json_response([self._rest_trade(symbol, json.loads(payload)) for payload in recent])

    def _contract_size(self, symbol: str) -> Decimal:
        """A COIN-M contract's value: 100 USD (BTC) or 10 USD (the rest) when exchangeInfo is silent."""
        default_size = 100 if symbol.startswith("BTC") else 10
        return Decimal(str(self._meta(symbol).get("contractSize", default_size)))

    def _rest_trade(self, symbol: str, wire: Mapping[str, Any]) -> dict[str, Any]:
        """A ``trade`` stream event as the REST ``trades`` endpoint writes it."""
        price, qty = str(wire.get("p", "0")), str(wire.get("q", "0"))
        out: dict[str, Any] = {"id": wire.get("t", 0), "price": price, "qty": qty}
        try:
            p, q = Decimal(price), Decimal(qty)
        except InvalidOperation:
            p = q = Decimal(0)
        if self.market is Market.COINM:
            size = self._contract_size(symbol)
            out["baseQty"] = _decimal_text(q * size / p, 8) if p else "0"
        else:
            out["quoteQty"] = _decimal_text(p * q, 8 if not self.futures else None)
        out["time"] = wire.get("T", wire.get("E", 0))
        out["isBuyerMaker"] = bool(wire.get("m", False))
        if not self.futures:
            out["isBestMatch"] = bool(wire.get("M", True))
        return out

    # ------------------------------------------------------------------ trade-derived market data

    def _trade_rows(self, symbol: str) -> list[_Trade]:
        """The kept replayed trades of ``symbol``, oldest first, parsed."""
        rows: list[_Trade] = []
        for payload in self.ctx.recent_trades(symbol):
            wire = json.loads(payload)
            try:
                rows.append(
                    _Trade(
                        int(wire.get("t", 0)),
                        str(wire["p"]),
                        str(wire["q"]),
                        Decimal(str(wire["p"])),
                        Decimal(str(wire["q"])),
                        int(wire.get("T", wire.get("E", 0))),
                        bool(wire.get("m", False)),
                    )
                )
            except (KeyError, InvalidOperation, TypeError, ValueError):
                continue
        return rows

    def _num(self, value: Decimal) -> str:
        """A derived amount on the wire: spot writes 8 decimals, futures exact text."""
        return _decimal_text(value, 8 if not self.futures else None)

    def _limit(self, params: Mapping[str, str], default: int, maximum: int) -> int:
        raw = params.get("limit")
        if raw is None:
            return default
        if not _LIMIT_TEXT.fullmatch(raw):
            raise _illegal("limit", "^[0-9]{1,9}$")
        return max(1, min(int(raw), maximum))

    async def historical_trades(self, request: web.Request) -> web.Response:
        params = _params(request)
        if self.futures:
            self._api_key_only(request)  # MARKET_DATA: the key header, no signature
        symbol = self._symbol(params)
        assert symbol is not None
        limit = self._limit(params, 100 if self.futures else 500, 500 if self.futures else 1000)
        from_id = _long(params, "fromId")
        recent = [json.loads(p) for p in self.ctx.recent_trades(symbol)]
        if from_id is None:
            chosen = recent[-limit:]
        else:
            chosen = [w for w in recent if int(w.get("t", 0)) >= from_id][:limit]
        return _json_response([self._rest_trade(symbol, wire) for wire in chosen])

    async def agg_trades(self, request: web.Request) -> web.Response:
        params = _params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        limit = self._limit(params, 500, 1000)
        from_id, start, end = (_long(params, name) for name in ("fromId", "startTime", "endTime"))
        aggs: list[dict[str, Any]] = []
        for group in _aggregate(self._trade_rows(symbol)):
            first = group[0]
            agg: dict[str, Any] = {
                "a": first.id,
                "p": first.price_text,
                "q": self._num(sum((t.qty for t in group), Decimal(0))),
                "f": first.id,
                "l": group[-1].id,
                "T": first.time,
                "m": first.maker,
            }
            if not self.futures:
                agg["M"] = True
            aggs.append(agg)
        if from_id is not None:
            aggs = [a for a in aggs if a["a"] >= from_id][:limit]
        elif start is not None or end is not None:
            lo, hi = start if start is not None else 0, end if end is not None else 2**63
            aggs = [a for a in aggs if lo <= a["T"] <= hi][:limit]
        else:
            aggs = aggs[-limit:]
        return _json_response(aggs)

    async def klines(self, request: web.Request) -> web.Response:
        params = _params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        interval = params.get("interval")
        if not interval:
            raise _mandatory("interval")
        if interval not in _INTERVAL_MS or (interval == "1s" and self.futures):
            raise ApiError(400, -1120, "Invalid interval.")
        limit = self._limit(params, 500, 1500 if self.futures else 1000)
        start, end = _long(params, "startTime"), _long(params, "endTime")
        shift = _time_zone_ms(params.get("timeZone")) if not self.futures else 0
        buckets: dict[int, list[_Trade]] = {}
        for trade in self._trade_rows(symbol):
            buckets.setdefault(_bucket_open(trade.time, interval, shift), []).append(trade)
        rows: list[list[Any]] = []
        for open_time, group in sorted(buckets.items()):
            if (start is not None and open_time < start) or (end is not None and open_time > end):
                continue
            taker_buys = [t for t in group if not t.maker]
            rows.append(
                [
                    open_time,
                    group[0].price_text,
                    _max_text(group, max),
                    _max_text(group, min),
                    group[-1].price_text,
                    self._num(sum((t.qty for t in group), Decimal(0))),
                    _bucket_close(open_time, interval, shift),
                    self._num(sum((t.price * t.qty for t in group), Decimal(0))),
                    len(group),
                    self._num(sum((t.qty for t in taker_buys), Decimal(0))),
                    self._num(sum((t.price * t.qty for t in taker_buys), Decimal(0))),
                    "0",
                ]
            )
        rows = rows[:limit] if start is not None else rows[-limit:]
        return _json_response(rows)

    async def avg_price(self, request: web.Request) -> web.Response:
        params = _params(request)
        symbol = self._symbol(params)
        assert symbol is not None
        trades = self._trade_rows(symbol)
        close = trades[-1].time if trades else self.ctx.now_ms()
        window = [t for t in trades if t.time > close - _AVG_PRICE_MINS * 60_000]
        price = _vwap(window)
        return _json_response({"mins": _AVG_PRICE_MINS, "price": _decimal_text(price, 8), "closeTime": close})

    def _ticker_symbols(self, params: Mapping[str, str]) -> tuple[list[str], bool]:
        """The symbols a ticker request asks for, and whether it named exactly one."""
        one = self._symbol(params, required=False)
        if one is not None:
            return [one], True
        names = self._symbols(params) if not self.futures else None
        if self.futures and "pair" in params:  # COIN-M's pair filter
            names = [s for s in self.source.symbols if self._meta(s).get("pair") == params["pair"]]
        return list(names if names is not None else self.source.symbols), False

    def _answer(self, items: list[dict[str, Any]], single: bool) -> web.Response:
        # COIN-M answers a list even for one symbol (its pair may hold several contracts).
        return _json_response(items[0] if single and self.market is not Market.COINM else items)

    async def ticker_24h(self, request: web.Request) -> web.Response:
        params = _params(request)
        kind = params.get("type", "FULL") if not self.futures else "FULL"
        if kind not in ("FULL", "MINI"):
            raise _illegal("type", "^(FULL|MINI)$")
        names, single = self._ticker_symbols(params)
        return self._answer([self._stats_of(s, mini=kind == "MINI") for s in names], single)

    def _stats_of(self, symbol: str, *, mini: bool) -> dict[str, Any]:
        """24-hour statistics of ``symbol``: the kept trades of the 24 hours up to the last one."""
        trades = self._trade_rows(symbol)
        close = trades[-1].time if trades else self.ctx.now_ms()
        trades = [t for t in trades if t.time > close - 86_400_000]
        zero = self._num(Decimal(0))
        first, last = (trades[0], trades[-1]) if trades else (None, None)
        open_p = first.price if first is not None else Decimal(0)
        last_p = last.price if last is not None else Decimal(0)
        out: dict[str, Any] = {"symbol": symbol}
        if self.market is Market.COINM:
            out["pair"] = self._meta(symbol).get("pair", symbol.split("_", 1)[0])
        if not mini:
            change = last_p - open_p
            percent = (change / open_p * 100) if open_p else Decimal(0)
            out["priceChange"] = self._num(change)
            out["priceChangePercent"] = f"{percent.quantize(Decimal('0.001')):f}"
            out["weightedAvgPrice"] = self._num(_vwap(trades))
            if not self.futures:
                out["prevClosePrice"] = zero  # the replay has no earlier day
        out["lastPrice"] = last.price_text if last is not None else zero
        if not mini:
            out["lastQty"] = last.qty_text if last is not None else zero
            if not self.futures:
                book = self._ticker_of(symbol)
                out.update({k: book[k] for k in ("bidPrice", "bidQty", "askPrice", "askQty")})
        out["openPrice"] = first.price_text if first is not None else zero
        out["highPrice"] = _max_text(trades, max) if trades else zero
        out["lowPrice"] = _max_text(trades, min) if trades else zero
        volume = sum((t.qty for t in trades), Decimal(0))
        out["volume"] = self._num(volume)
        if self.market is Market.COINM:
            size = self._contract_size(symbol)
            out["baseVolume"] = self._num(sum((t.qty * size / t.price for t in trades), Decimal(0)))
        else:
            out["quoteVolume"] = self._num(sum((t.price * t.qty for t in trades), Decimal(0)))
        out["openTime"] = first.time if first is not None else close - 86_400_000
        out["closeTime"] = close
        out["firstId"] = first.id if first is not None else -1
        out["lastId"] = last.id if last is not None else -1
        out["count"] = len(trades)
        return out

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = _params(request)
        names, single = self._ticker_symbols(params)
        items: list[dict[str, Any]] = []
        for symbol in names:
            trades = self._trade_rows(symbol)
            item: dict[str, Any] = {"symbol": symbol}
            if self.market is Market.COINM:
                item["ps"] = self._meta(symbol).get("pair", symbol.split("_", 1)[0])
            item["price"] = trades[-1].price_text if trades else self._num(Decimal(0))
            if self.futures:
                item["time"] = trades[-1].time if trades else self.ctx.now_ms()
            items.append(item)
        return self._answer(items, single)

    # ------------------------------------------------------------------ signed endpoints

    async def _authenticate(self, request: web.Request) -> Accepted:
        body = await request.read()
        verdict = self.ctx.keys.verify_rest(
            request.headers.get("X-MBX-APIKEY"),
            request.rel_url.raw_query_string,
            body,
            rules=self.auth_rules,
            now_us=self.ctx.now_ms() * 1000,
        )
        if isinstance(verdict, Accepted):
            return verdict
        # Binance answers both API-key errors with 401 Unauthorized (-2014 included).
        status = 401 if verdict.code in (-2014, -2015) else verdict.http_status
        raise ApiError(status, verdict.code, verdict.msg)

    def trading_handler(self, route: TradeRoute) -> _Handler:
        """The aiohttp handler of one engine endpoint: authenticate, call, answer (§4, §6)."""
        affects_orders = route.placement or order_count(self.market, route.http_method, route.path) != (0, 0)

        async def serve(request: web.Request) -> web.StreamResponse:
            auth = await self._authenticate(request)
            private = self.private
            assert private is not None
            lost = private.lost_response(route) if route.placement else None
            response: web.Response
            try:
                result = route.handler(auth.params, auth.api_key)
                if inspect.isawaitable(result):
                    result = await result
                response = _json_response(result)
            except ApiError as exc:
                response = exc.response()
            if affects_orders:
                response.headers.update(private.order_count_headers(auth.api_key))
            if lost is not None:
                return await _lose(request, lost, response)
            return response

        return serve

    def _api_key_only(self, request: web.Request) -> str:
        """The account of a USER_STREAM request (API key header only, no signature, §4.1)."""
        api_key = request.headers.get("X-MBX-APIKEY")
        if not api_key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if api_key not in self.ctx.keys:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        return api_key

    async def listen_key(self, request: web.Request) -> web.Response:
        """``POST`` (create, or return and extend), ``PUT`` (extend; -1125 when expired),
        ``DELETE`` (close) the account's listenKey (§8.2)."""
        private = self.private
        assert private is not None
        api_key = self._api_key_only(request)
        if request.method == "POST":
            return _json_response({"listenKey": private.open_listen_key(api_key)})
        if request.method == "PUT":
            return _json_response({"listenKey": private.keepalive_listen_key(api_key)})
        private.close_listen_key(api_key)
        return _json_response(b"{}")

    async def account(self, request: web.Request) -> web.Response:
        auth = await self._authenticate(request)
        balances = self.ctx.balances(auth.api_key)
        now = self.ctx.now_ms()
        if self.market is Market.SPOT:
            omit = auth.params.get("omitZeroBalances", "false").lower() == "true"
            return _json_response(_spot_account(balances, now, omit_zero=omit))
        if self.market is Market.USDM:
            return _json_response(_usdm_account(balances, now))
        return _json_response(_coinm_account(balances, now))


async def _lose(request: web.Request, fault: Fault, response: web.Response) -> web.Response:
    """Lose an executed order placement's answer as ``fault`` says (``tickbook.sim.faults``)."""
    if fault.mode == "timeout":
        await asyncio.sleep(fault.seconds or 0.0)  # the client has usually given up by now
        return response
    if fault.mode == "503":
        return ApiError(503, -1000, LOST_RESPONSE_MSG).response()
    # reset: the TCP connection is aborted; what aiohttp then writes goes nowhere.
    if request.transport is not None:
        request.transport.abort()
    return response


def truth_summary(source: MarketSource, symbol: str, limit: int) -> dict[str, Any]:
    """``/sim/truth``'s body: what a test compares a client's book with.

    Strings are the book's canonical decimals (no trailing zeros), as ``OrderBook.bids_str``
    gives them on the client side, so the comparison is exact and independent of wire padding.
    """
    book = source.truth(symbol)
    return {
        "symbol": symbol,
        "market": source.market.value,
        "lastUpdateId": book.last_update_id,
        "limit": limit,
        "checksum": book.checksum(limit),
        "bids": [list(level) for level in book.bids_str(limit)],
        "asks": [list(level) for level in book.asks_str(limit)],
        "bidLevels": book.bid_count,
        "askLevels": book.ask_count,
    }


# ------------------------------------------------------------------------------------ accounts


# The spot commission the account endpoint reports without a trading engine: 0.1 %
# (makerCommission/takerCommission 10).
_SPOT_COMMISSION: Final = Decimal("0.001")
# The account-wide fields of a futures account answer (with or without a trading engine): no
# fee tier, single-asset margin, every permission. COIN-M's answer has only some of them.
_FUTURES_ACCOUNT_FLAGS: Final[Mapping[str, Any]] = {
    "feeTier": 0,
    "feeBurn": False,
    "canTrade": True,
    "canDeposit": True,
    "canWithdraw": True,
    "updateTime": 0,
    "multiAssetsMargin": False,
    "tradeGroupId": -1,
}
_COINM_ACCOUNT_FLAGS: Final = ("canDeposit", "canTrade", "canWithdraw", "feeTier", "updateTime")


def spot_account_body(
    balances: list[dict[str, str]], update_time: int, maker: Decimal, taker: Decimal
) -> dict[str, Any]:
    """``GET /api/v3/account``'s answer around its ``balances`` rows (asset, free, locked) and
    the maker/taker commission rates (``makerCommission`` counts them in basis points). Served
    here from the configured balances, and by the trading engine from its accounts."""
    return {
        "makerCommission": int(maker * 10_000),
        "takerCommission": int(taker * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": _pad(_canonical(str(maker)), 8),
            "taker": _pad(_canonical(str(taker)), 8),
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": update_time,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 100000001,
    }


def futures_account_body(
    assets: list[dict[str, Any]], positions: list[dict[str, Any]], totals: Mapping[str, str], *, inverse: bool
) -> dict[str, Any]:
    """A futures account answer around its ``assets`` and ``positions``: USD-M's
    (``/fapi/v2/account``) with the account-wide flags and the USD ``totals``, COIN-M's
    (``/dapi/v1/account``, ``inverse``) with the few flags it has and no totals."""
    if inverse:
        flags = {k: _FUTURES_ACCOUNT_FLAGS[k] for k in _COINM_ACCOUNT_FLAGS}
        return {"assets": assets, "positions": positions, **flags}
    return {**_FUTURES_ACCOUNT_FLAGS, **totals, "assets": assets, "positions": positions}


def _spot_account(balances: Mapping[str, str], now: int, *, omit_zero: bool) -> dict[str, Any]:
    rows = [
        {"asset": asset, "free": _pad(_canonical(free), 8), "locked": "0.00000000"}
        for asset, free in balances.items()
        if not (omit_zero and Decimal(free) == 0)
    ]
    return spot_account_body(rows, now, _SPOT_COMMISSION, _SPOT_COMMISSION)


def _canonical(text: str) -> str:
    """Configured amount text (``"10000"``, ``"1.5"``) as canonical decimal text."""
    return f"{Decimal(text).normalize():f}"


def _usdm_account(balances: Mapping[str, str], now: int) -> dict[str, Any]:
    assets = []
    total = Decimal(0)
    for asset, amount in balances.items():
        value = _pad(_canonical(amount), 8)
        if asset in ("USDT", "USDC", "FDUSD", "BNFCR"):
            total += Decimal(amount)
        assets.append(
            {
                "asset": asset,
                "walletBalance": value,
                "unrealizedProfit": "0.00000000",
                "marginBalance": value,
                "maintMargin": "0.00000000",
                "initialMargin": "0.00000000",
                "positionInitialMargin": "0.00000000",
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": value,
                "crossUnPnl": "0.00000000",
                "availableBalance": value,
                "maxWithdrawAmount": value,
                "marginAvailable": True,
                "updateTime": now,
            }
        )
    t = _pad(_canonical(str(total)), 8)
    totals = {
        "totalInitialMargin": "0.00000000",
        "totalMaintMargin": "0.00000000",
        "totalWalletBalance": t,
        "totalUnrealizedProfit": "0.00000000",
        "totalMarginBalance": t,
        "totalPositionInitialMargin": "0.00000000",
        "totalOpenOrderInitialMargin": "0.00000000",
        "totalCrossWalletBalance": t,
        "totalCrossUnPnl": "0.00000000",
        "availableBalance": t,
        "maxWithdrawAmount": t,
    }
    return futures_account_body(assets, [], totals, inverse=False)


def _coinm_account(balances: Mapping[str, str], now: int) -> dict[str, Any]:
    assets = []
    for asset, amount in balances.items():
        value = _pad(_canonical(amount), 8)
        assets.append(
            {
                "asset": asset,
                "walletBalance": value,
                "unrealizedProfit": "0.00000000",
                "marginBalance": value,
                "maintMargin": "0.00000000",
                "initialMargin": "0.00000000",
                "positionInitialMargin": "0.00000000",
                "openOrderInitialMargin": "0.00000000",
                "maxWithdrawAmount": value,
                "crossWalletBalance": value,
                "crossUnPnl": "0.00000000",
                "availableBalance": value,
                "updateTime": now,
            }
        )
    return futures_account_body(assets, [], {}, inverse=True)


# ------------------------------------------------------------------------------------ factory


class _Router:
    """The app's middleware and control endpoints: requests go to their market's ``_Api``."""

    def __init__(self, apis: Sequence[_Api], control: ControlContext) -> None:
        self.apis = list(apis)
        self.control = control

    def api_for(self, path: str) -> _Api:
        """The market whose paths ``path`` is under; the first market for any other path
        (charged and answered 404 there, as a one-market server does)."""
        for api in self.apis:
            if path.startswith(api.root):
                return api
        return self.apis[0]

    @web.middleware
    async def dispatch(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith("/sim/"):  # control: not charged, not faulted
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
        return await self.api_for(request.path).gate(request, handler)

    # ------------------------------------------------------------------ control endpoints

    def _truth_api(self, symbol_text: str | None, market_text: str | None) -> tuple[_Api, str]:
        """The market and symbol ``/sim/truth`` asks for (``market`` only needed when the
        symbol is served on several markets; no symbol: the market's first one)."""
        apis = self.apis
        if market_text:
            try:
                market = Market.parse(market_text)
            except ValueError:
                raise _illegal("market", "spot|usdm|coinm") from None
            apis = [api for api in apis if api.market is market]
            if not apis:
                raise ApiError(400, -1121, f"Market '{market.value}' is not served.")
        if not symbol_text:
            first = apis[0]
            return first, first.source.symbols[0] if first.source.symbols else ""
        symbol = symbol_text.upper()
        holders = [api for api in apis if symbol in api.source.symbols]
        if not holders:
            raise ApiError(400, -1121, "Invalid symbol.")
        if len(holders) > 1:
            served = ", ".join(api.market.value for api in holders)
            raise ApiError(
                400, -1102, f"Mandatory parameter 'market' was not sent: {symbol} is served on {served}."
            )
        return holders[0], symbol

    async def sim_truth(self, request: web.Request) -> web.Response:
        """The true book: top ``limit`` levels as exact canonical strings, ID and checksum."""
        api, symbol = self._truth_api(request.query.get("symbol"), request.query.get("market"))
        if symbol not in api.source.symbols:
            raise ApiError(400, -1121, "Invalid symbol.")
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'.") from None
        return _json_response(truth_summary(api.source, symbol, max(1, limit)))

    async def sim_faults(self, request: web.Request) -> web.Response:
        return _json_response(list(self.control.fault_log))

    async def sim_violations(self, request: web.Request) -> web.Response:
        return _json_response(dict(self.control.violations))


def build_app(ctx: RestContext, *, rate_limit_override: int | None = None) -> web.Application:
    """The aiohttp application serving ``ctx.source``'s market with Binance's paths.

    ``rate_limit_override`` is the REQUEST_WEIGHT limit the guard enforces when it differs
    from the documented one, so ``exchangeInfo`` reports what is actually enforced.
    """
    return build_multi_app([(ctx, rate_limit_override)], control=ctx)


def build_multi_app(
    markets: Sequence[tuple[RestContext, int | None]], *, control: ControlContext
) -> web.Application:
    """One aiohttp application serving several markets: ``(context, rate_limit_override)``
    per market (at most one context per market: their paths are the market's), each charged
    against its own context's guard. ``control`` answers ``/sim/faults`` and
    ``/sim/violations`` (the whole venue); ``/sim/truth`` looks the symbol up in every market.
    """
    if not markets:
        raise ValueError("build_multi_app needs at least one market")
    apis = [_Api(ctx, rate_limit_override=override) for ctx, override in markets]
    seen = [api.market for api in apis]
    if len(set(seen)) != len(seen):
        raise ValueError(f"one context per market, got {', '.join(m.value for m in seen)}")
    router = _Router(apis, control)
    app = web.Application(middlewares=[router.dispatch])
    for api in apis:
        paths = api.paths
        routes = api.private.trade_routes() if api.private is not None else []
        served = {(route.http_method, route.path) for route in routes}
        for route in routes:
            app.router.add_route(route.http_method, route.path, api.trading_handler(route))
        app.router.add_get(paths["ping"], api.ping)
        app.router.add_get(paths["time"], api.time)
        app.router.add_get(paths["exchangeInfo"], api.exchange_info)
        app.router.add_get(paths["depth"], api.depth)
        app.router.add_get(paths["bookTicker"], api.book_ticker)
        app.router.add_get(paths["trades"], api.trades)
        app.router.add_get(paths["historicalTrades"], api.historical_trades)
        app.router.add_get(paths["aggTrades"], api.agg_trades)
        app.router.add_get(paths["klines"], api.klines)
        app.router.add_get(paths["ticker24h"], api.ticker_24h)
        app.router.add_get(paths["tickerPrice"], api.ticker_price)
        if "avgPrice" in paths:
            app.router.add_get(paths["avgPrice"], api.avg_price)
        if api.market is Market.USDM:  # v2 is the current version of the same answer
            app.router.add_get("/fapi/v2/ticker/price", api.ticker_price)
        if ("GET", paths["account"]) not in served:  # the engine's account knows open orders
            app.router.add_get(paths["account"], api.account)
        if api.private is not None and api.futures:
            listen_key = f"{api.root}v1/listenKey"
            for method in ("POST", "PUT", "DELETE"):
                if (method, listen_key) not in served:
                    app.router.add_route(method, listen_key, api.listen_key)
    app.router.add_get("/sim/truth", router.sim_truth)
    app.router.add_get("/sim/faults", router.sim_faults)
    app.router.add_get("/sim/violations", router.sim_violations)
    return app
