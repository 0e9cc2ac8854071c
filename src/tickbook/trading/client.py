"""The REST client: one pooled aiohttp session, signing, weights, order counts, errors, retries.

Everything the exchange asks of a REST client happens in ``RestClient.request``, so no
endpoint method can forget a rule:

* **where** (binance-spec §11): the market's base URL in production, testnet or demo
  (``tickbook.feed.endpoints.rest_base_url``), or any ``base_url`` (the local exchange);
* **who** (§4.1-4.2): ``X-MBX-APIKEY`` on signed and API-key-only requests (USD-M listenKey,
  futures ``historicalTrades``); signed requests get ``recvWindow`` and a ``timestamp`` from
  the ``ServerClock``, are percent-encoded once and signed over exactly those bytes with the
  signature last (``tickbook.signing.sign_rest``); GET and DELETE carry their parameters in
  the query, POST and PUT in a form body;
* **how much** (§5): every request is charged its documented weight on the shared
  ``RequestBudget`` before it leaves (``tickbook.limits.weight``) and every answer's headers go
  back to it, so the mirror never lets a 429 happen; order requests are also counted on the
  ``OrderBudget`` (``X-MBX-ORDER-COUNT-*``), which holds them for a short window or refuses
  them with ``RateLimited`` when a long one is full; a 429 pauses every request until
  ``Retry-After`` and raises ``RateLimited``; after a 418 every request raises ``IpBanned`` at
  once, without being sent, until the ban ends (§5.2: sending while banned prolongs bans);
* **what went wrong** (§10): answers are classified by ``tickbook.trading.errors``; transport
  failures are ``NetworkError`` when nothing was sent (refused, DNS, connect timeout) and
  ``UnknownOutcome`` once the request may have reached the exchange (a timeout or a dropped
  connection after sending);
* **retries only where the outcome is known** (§10.4): anything that was not executed
  (``NetworkError``, ``ServerBusy``) is retried with backoff; GET and DELETE are also retried
  on unknown outcomes (5xx, timeouts), as the official SDK does; a POST or PUT with an
  unknown outcome is raised as ``UnknownOutcome`` for the caller to reconcile, never sent
  twice. -1021 (timestamp outside recvWindow) was refused before execution: the clock is
  resynced and the request signed again with a fresh timestamp, once;
* **what happened**: with a ``Journal`` every attempt is recorded (parameters and answer
  redacted, latency, error code), failures included. Secrets and signatures never reach a
  log line or an exception.

The market-data methods (``depth``, ``klines``, ...) decode into the Structs of
``tickbook.trading.models`` with exact decimals.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, cast, overload

import aiohttp
import msgspec
from yarl import URL

from tickbook._types import Market
from tickbook.budget import OrderBudget, OrderLimitExceeded, RequestBudget
from tickbook.decode import DepthSnapshotTyped, FuturesDepthSnapshotTyped
from tickbook.feed.endpoints import Environment, rest_base_url
from tickbook.limits import OrderCount, UnknownEndpoint, order_count, parse_usage_headers, weight
from tickbook.signing import SigningKey, key_from_env, key_from_file, rest_payload, sign_rest
from tickbook.trading import models
from tickbook.trading.clock import ServerClock
from tickbook.trading.errors import (
    AuthenticationError,
    BinanceError,
    IpBanned,
    NetworkError,
    RateLimited,
    RequestError,
    ServerBusy,
    TimestampError,
    UnknownOutcome,
    error_from_response,
)
from tickbook.trading.journal import JournalEntry, redact_params, redact_response

if TYPE_CHECKING:
    import os

    from tickbook.trading.filters import ExchangeRules
    from tickbook.trading.journal import Journal

__all__ = ["PREFIXES", "RestClient", "parse_recv_window"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# The REST path prefix of each market's v1/v3 endpoints.
PREFIXES: Final = {Market.SPOT: "/api/v3", Market.USDM: "/fapi/v1", Market.COINM: "/dapi/v1"}

# Spot caps recvWindow at 60000 ms (§4.4); futures states no maximum.
SPOT_MAX_RECV_WINDOW: Final = Decimal(60000)
TIME_UNITS: Final = ("MILLISECOND", "MICROSECOND")
_RETRY_SAFE_METHODS: Final = frozenset({"GET", "DELETE"})
_FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}


def parse_recv_window(value: int | float | str | Decimal, market: Market | str = Market.SPOT) -> str:
    """A ``recvWindow`` as the text to send, validated (binance-spec §4.4).

    Milliseconds, with up to 3 decimals (microseconds, ``"6000.346"``, accepted since
    2025-08-28); positive; at most 60000 on spot (futures documents no maximum). Floats are
    taken by their shortest repr, never their binary expansion.
    """
    if isinstance(value, bool):
        raise ValueError("recvWindow must be a number of milliseconds, not a bool")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"recvWindow {value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"recvWindow must be positive, got {value!r}")
    exponent = number.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -3:
        raise ValueError(f"recvWindow takes at most 3 decimals (microseconds), got {value!r}")
    if Market.parse(market) is Market.SPOT and number > SPOT_MAX_RECV_WINDOW:
        raise ValueError(f"recvWindow is at most 60000 ms on spot, got {value!r}")
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


class _ServerTime(msgspec.Struct):
    serverTime: int  # ms, or µs under X-MBX-TIME-UNIT: MICROSECOND (spot)


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2*base, 4*base, ... capped (§10.4: 200 -> 400 -> 800 ms)."""
    return float(min(cap, base * 2.0 ** (attempt - 1)))


class _SendMark:
    """Whether one of ``RestClient``'s own requests got as far as its headers being written."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


async def _mark_sent(session: aiohttp.ClientSession, ctx: SimpleNamespace, params: object) -> None:
    """Trace hook: the request line and headers are written, so from here on the exchange may
    act on the request (a failure is an unknown outcome, not a network error).

    The session is public (``RestClient.session``): other requests on it (a WebSocket
    connect, a plain GET) carry no mark, or a ``trace_request_ctx`` of their own, and are
    left alone."""
    mark = ctx.trace_request_ctx
    if isinstance(mark, _SendMark):
        mark.sent = True


class RestClient:
    """Binance REST for one market (``"spot"``, ``"usdm"``, ``"coinm"``).

    Where: ``environment`` (``"production"``, ``"testnet"``, ``"demo"``) or ``base_url`` (any
    host speaking the protocol: the local exchange). ``key``: a ``tickbook.signing`` key for
    signed and API-key-only requests (``RestClient.from_env`` / ``from_key_file`` load one).
    ``session``: an aiohttp session to use (not closed here); default one pooled session,
    created at the first request and closed by ``close()`` / ``async with``. ``budget``: the
    market host's ``RequestBudget`` to share (a ``DepthFeed`` can take the same one);
    ``order_budget``: the account's ``OrderBudget``; ``journal``: records every request.

    ``recv_window_ms``: default ``recvWindow`` (ms, up to 3 decimals; spot max 60000);
    ``time_unit``: ``"MILLISECOND"``/``"MICROSECOND"`` sent as ``X-MBX-TIME-UNIT``;
    ``timeout``: seconds for a whole request, ``connect_timeout`` for the connection alone;
    ``max_attempts``: tries of a retryable request, with ``backoff`` seconds doubling up to
    ``backoff_cap``; ``clock``: a ``ServerClock`` to use (default one sampling this client's
    ``/time`` every ``clock_interval`` seconds while the client is open).
    """

    def __init__(
        self,
        market: Market | str = Market.SPOT,
        *,
        environment: Environment | str = Environment.PRODUCTION,
        base_url: str | None = None,
        key: SigningKey | None = None,
        session: aiohttp.ClientSession | None = None,
        budget: RequestBudget | None = None,
        order_budget: OrderBudget | None = None,
        journal: Journal | None = None,
        recv_window_ms: int | float | str | Decimal = 5000,
        time_unit: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 3,
        backoff: float = 0.2,
        backoff_cap: float = 2.0,
        clock: ServerClock | None = None,
        clock_interval: float | None = 60.0,
    ) -> None:
        self.market: Market = Market.parse(market)
        if base_url is not None:
            if not base_url.startswith(("http://", "https://")):
                raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
            self.base_url = base_url.rstrip("/")
        else:
            self.base_url = rest_base_url(self.market, environment)
        self.key = key
        self.recv_window = parse_recv_window(recv_window_ms, self.market)
        if time_unit is not None and time_unit.upper() not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
        self.time_unit = time_unit.upper() if time_unit is not None else None
        if not timeout > 0 or not connect_timeout > 0:
            raise ValueError("timeouts must be positive")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        for name, shared in (("budget", budget), ("order_budget", order_budget)):
            if shared is not None and shared.market is not self.market:
                raise ValueError(f"the {name} is {shared.market.value}'s, not {self.market.value}'s")
        self.budget: RequestBudget = budget if budget is not None else RequestBudget(self.market)
        self.orders: OrderBudget = order_budget if order_budget is not None else OrderBudget(self.market)
        self.journal = journal
        self.clock: ServerClock = (
            clock if clock is not None else ServerClock(self._sample_server_time, interval=clock_interval)
        )
        self.rules: ExchangeRules | None = None
        self._session = session
        self._own_session = session is None
        self._closed = False
        self.prefix = PREFIXES[self.market]
        self.requests = 0  # attempts sent (or tried)
        self.retries = 0
        self.journal_errors = 0

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_env(
        cls,
        market: Market | str = Market.SPOT,
        *,
        prefix: str = "BINANCE",
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Self:
        """A client whose key comes from the environment (``tickbook.signing.key_from_env``:
        ``{prefix}_API_KEY`` plus a secret, a PEM or a PEM file)."""
        return cls(market, key=key_from_env(prefix, environ), **options)

    @classmethod
    def from_key_file(
        cls,
        market: Market | str,
        api_key: str,
        path: str | os.PathLike[str],
        *,
        password: str | bytes | None = None,
        **options: Any,
    ) -> Self:
        """A client whose secret (an HMAC secret or a PEM private key) sits in a file."""
        return cls(market, key=key_from_file(api_key, path, password=password), **options)

    # ------------------------------------------------------------------ lifecycle

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session (created on first use, on the running loop)."""
        if self._session is None or (self._own_session and self._session.closed):
            trace = aiohttp.TraceConfig(trace_config_ctx_factory=SimpleNamespace)
            trace.on_request_headers_sent.append(_mark_sent)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout),
                trace_configs=[trace],
                trust_env=False,  # never route signed requests through an ambient proxy
            )
            self._closed = False
        return self._session

    async def __aenter__(self) -> Self:
        _ = self.session
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the clock's resyncs and close the session if this client created it."""
        self._closed = True
        await self.clock.stop()
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    @property
    def order_counts(self) -> dict[str, int]:
        """The account's unfilled-order count per ORDERS interval (``{"10S": 3, "1D": 40}``),
        as the last ``X-MBX-ORDER-COUNT-*`` headers reported plus requests in flight."""
        return self.orders.counts

    def __repr__(self) -> str:
        key = "" if self.key is None else f", key={self.key!r}"
        return f"RestClient({self.market.value}, {self.base_url}{key})"

    # ------------------------------------------------------------------ the request path

    def _weight(self, method: str, path: str, params: Mapping[str, object] | None) -> int:
        try:
            return weight(self.market, method, path, params)
        except UnknownEndpoint:
            # Not in the documented tables: charge 1 rather than refuse; the used-weight
            # header corrects the mirror with the answer. Pass weight= to be exact.
            log.warning("no documented weight for %s %s: charging 1", method, path)
            return 1

    def _check_ban(self, method: str, path: str, client_order_id: str | None) -> None:
        """Refuse locally while banned: a request sent during a 418 ban prolongs it (§5.2)."""
        remaining = self.budget.ban_remaining
        if remaining > 0:
            until = time.time_ns() // 1_000_000 + math.ceil(remaining * 1000)
            raise IpBanned(
                f"IP banned for another {remaining:.1f} s (until {until}); request not sent",
                until_ms=until,
                retry_after=remaining,
                status=None,
                method=method,
                endpoint=path,
                client_order_id=client_order_id,
            )

    def _encode(
        self, method: str, params: Mapping[str, object] | None, *, signed: bool, recv_window: str | None
    ) -> tuple[str, str]:
        """The query string and form body to send (percent-encoded once; signed requests
        signed over exactly these bytes, with ``signature`` last)."""
        values: dict[str, object] = {k: v for k, v in (params or {}).items() if v is not None}
        in_query = method in _RETRY_SAFE_METHODS
        if not signed:
            query, body, _ = rest_payload(values, None) if in_query else rest_payload(None, values)
            return query, body
        assert self.key is not None
        values.pop("signature", None)
        values["recvWindow"] = recv_window or self.recv_window
        values["timestamp"] = self.clock.now_ms()
        signed_rest = sign_rest(self.key, values, None) if in_query else sign_rest(self.key, None, values)
        return signed_rest.query_string, signed_rest.body

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        signed: bool = False,
        api_key_only: bool = False,
        client_order_id: str | None = None,
        idempotent: bool | None = None,
        weight: int | None = None,
        recv_window: int | float | str | Decimal | None = None,
    ) -> bytes:
        """Send one request and return the raw body of its 2xx answer; raise a
        ``tickbook.trading.errors.BinanceError`` subclass otherwise.

        ``signed``: add ``recvWindow``/``timestamp`` and sign (SIGNED endpoints);
        ``api_key_only``: send ``X-MBX-APIKEY`` without signing (USD-M listenKey, futures
        ``historicalTrades``). ``client_order_id`` is carried by every error and journal
        entry. ``idempotent``: whether an unknown outcome may be retried (default: GET and
        DELETE). ``weight`` overrides the documented weight; ``recv_window`` the client's.
        """
        method = method.upper()
        if (signed or api_key_only) and self.key is None:
            raise AuthenticationError(
                "this request needs an API key and the client has none",
                method=method,
                endpoint=path,
                client_order_id=client_order_id,
            )
        if self._closed and self._own_session:
            raise RuntimeError("the client is closed")
        retry_unknown = idempotent if idempotent is not None else method in _RETRY_SAFE_METHODS
        window = parse_recv_window(recv_window, self.market) if recv_window is not None else None
        cost = weight if weight is not None else self._weight(method, path, params)
        orders = order_count(self.market, method, path)
        resynced = False
        attempt = 0
        while True:
            attempt += 1
            if signed and not self.clock.synced:
                await self._sync_clock(reset=False)
            try:
                return await self._attempt(
                    method,
                    path,
                    params,
                    signed=signed,
                    api_key=signed or api_key_only,
                    client_order_id=client_order_id,
                    cost=cost,
                    orders=orders,
                    recv_window=window,
                )
            except TimestampError:
                # Refused before execution (§4.4): resync, sign again with a fresh timestamp.
                if not signed or resynced:
                    raise
                resynced = True
                attempt -= 1  # the resync retry is not one of the transport attempts
                log.warning("%s %s: -1021, resyncing the server clock and retrying once", method, path)
                await self._sync_clock(reset=True)
            except (NetworkError, ServerBusy, UnknownOutcome) as exc:
                executed_maybe = isinstance(exc, UnknownOutcome)
                if attempt >= self.max_attempts or (executed_maybe and not retry_unknown):
                    raise
                delay = _backoff(attempt, self.backoff, self.backoff_cap)
                self.retries += 1
                log.info("%s %s: %s; retry %d in %.2f s", method, path, type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)

    async def _sync_clock(self, *, reset: bool) -> None:
        await self.clock.sync(reset=reset)
        if not self._closed:
            self.clock.start()

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None,
        *,
        signed: bool,
        api_key: bool,
        client_order_id: str | None,
        cost: int,
        orders: OrderCount,
        recv_window: str | None,
    ) -> bytes:
        self._check_ban(method, path, client_order_id)
        counted = bool(orders.short or orders.long)
        if counted:
            try:
                await self.orders.acquire(orders)
            except OrderLimitExceeded as exc:
                raise RateLimited(
                    f"not sent: {exc}",
                    retry_after=exc.retry_after,
                    code=-1015,
                    method=method,
                    endpoint=path,
                    client_order_id=client_order_id,
                ) from None
        answer_headers: Mapping[str, str] | None = None
        left = False  # whether the request may have reached the exchange
        try:
            await self.budget.acquire(cost)
            self._check_ban(method, path, client_order_id)  # a ban may have come while waiting
            query, body = self._encode(method, params, signed=signed, recv_window=recv_window)
            left = True
            answer_headers, data, error = await self._send(
                method, path, query, body, api_key=api_key, client_order_id=client_order_id
            )
        except NetworkError:
            left = False  # refused before sending: no order can have been placed
            raise
        finally:
            if counted and left:
                self.orders.settle(orders, answer_headers)
            elif counted:
                self.orders.release(orders)
        if error is None:
            return data
        if isinstance(error, RateLimited) and error.code == -1015 and error.retry_after:
            self.orders.pause(error.retry_after)  # the account's order count is full
        raise error

    async def _send(
        self, method: str, path: str, query: str, body: str, *, api_key: bool, client_order_id: str | None
    ) -> tuple[Mapping[str, str], bytes, BinanceError | None]:
        """One HTTP exchange: the answer's headers, body and classified error (None for a
        2xx); a transport failure is raised. Budget, journal and log see every outcome."""
        headers: dict[str, str] = {}
        if api_key:
            assert self.key is not None
            headers["X-MBX-APIKEY"] = self.key.api_key
        if self.time_unit is not None:
            headers["X-MBX-TIME-UNIT"] = self.time_unit
        if body:
            headers.update(_FORM)
        # encoded=True: the bytes signed are the bytes sent, yarl must not re-quote them.
        url = URL(f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}", encoded=True)
        sent_text = f"{query}&{body}" if query and body else query or body
        trace = _SendMark()
        session = self.session
        started = time.perf_counter()
        ts_ms = time.time_ns() // 1_000_000
        self.requests += 1
        try:
            async with session.request(
                method, url, data=body.encode() if body else None, headers=headers, trace_request_ctx=trace
            ) as response:
                data = await response.read()
                status, answer_headers = response.status, response.headers
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            latency = (time.perf_counter() - started) * 1000
            error = self._transport_error(exc, trace.sent, method, path, client_order_id)
            log.info("%s %s failed after %.1f ms: %s", method, path, latency, error.msg)
            self._record(ts_ms, method, path, sent_text, None, None, latency, error, client_order_id, None)
            raise error from None
        latency = (time.perf_counter() - started) * 1000
        self.budget.observe(status, answer_headers)
        failure = None
        if not 200 <= status < 300:
            failure = error_from_response(
                status,
                data,
                method=method,
                endpoint=path,
                client_order_id=client_order_id,
                headers=answer_headers,
                market=self.market,
            )
            log.info("%s %s -> HTTP %d %s in %.1f ms", method, path, status, failure.code, latency)
        else:
            log.debug("%s %s -> HTTP %d in %.1f ms", method, path, status, latency)
        self._record(
            ts_ms, method, path, sent_text, status, answer_headers, latency, failure, client_order_id, data
        )
        return answer_headers, data, failure

    def _transport_error(
        self, exc: BaseException, sent: bool, method: str, path: str, client_order_id: str | None
    ) -> BinanceError:
        """NetworkError when the request certainly never left (refused, DNS, connect
        timeout, or our own session saw no header sent); UnknownOutcome otherwise."""
        # aiohttp may quote the URL (query, signature included) in its messages: redacted.
        detail = redact_params(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__
        common: dict[str, Any] = {"method": method, "endpoint": path, "client_order_id": client_order_id}
        not_sent = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError) or (
            self._own_session and not sent
        )
        if not_sent:
            return NetworkError(f"request not sent: {detail}", **common)
        if isinstance(exc, TimeoutError):
            return UnknownOutcome(f"no answer within {self.timeout:g} s after sending: {detail}", **common)
        return UnknownOutcome(f"connection lost after sending: {detail}", **common)

    def _record(
        self,
        ts_ms: int,
        method: str,
        path: str,
        sent_text: str,
        status: int | None,
        headers: Mapping[str, str] | None,
        latency_ms: float,
        error: BinanceError | None,
        client_order_id: str | None,
        body: bytes | None,
    ) -> None:
        journal = self.journal
        if journal is None:
            return
        used = parse_usage_headers(headers).used_weight if headers is not None else {}
        entry = JournalEntry(
            ts_ms=ts_ms,
            market=self.market.value,
            method=method,
            endpoint=path,
            params=redact_params(sent_text),
            status=status,
            weight_used=used.get("1M", next(iter(used.values()), None)),
            latency_ms=round(latency_ms, 3),
            error_code=error.code if error is not None else None,
            error_msg=error.msg if error is not None else None,
            client_order_id=client_order_id,
            response=redact_response(body) if body is not None else None,
        )
        try:
            journal.record(entry)
        except Exception:  # the audit trail failing must not turn a done request into an error
            self.journal_errors += 1
            log.exception("journal: could not record %s %s", method, path)

    # ------------------------------------------------------------------ decoded requests

    async def request_json(
        self, method: str, path: str, params: Mapping[str, object] | None = None, **options: Any
    ) -> Any:
        """``request`` with the answer decoded as JSON (numbers as the exchange sent them:
        decimals come as strings and stay strings)."""
        return msgspec.json.decode(await self.request(method, path, params, **options))

    async def request_typed(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        type: type[T],
        **options: Any,
    ) -> T:
        """``request`` with the answer decoded into ``type`` (a msgspec Struct, a list of
        them...). An answer that does not fit is a ``BinanceError`` naming the request."""
        body = await self.request(method, path, params, **options)
        try:
            return msgspec.json.decode(body, type=type)
        except msgspec.DecodeError as exc:
            raise BinanceError(
                f"unexpected answer shape: {exc}",
                status=200,
                method=method,
                endpoint=path,
                client_order_id=options.get("client_order_id"),
            ) from None

    async def _sample_server_time(self) -> int:
        """The clock's sampler: one ``GET /time`` through the budget, like any request."""
        body = await self.request("GET", f"{self.prefix}/time")
        return msgspec.json.decode(body, type=_ServerTime).serverTime

    # ------------------------------------------------------------------ market data

    def _path(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def _spot_only(self, name: str) -> None:
        if self.market is not Market.SPOT:
            raise RequestError(
                f"{name} exists on spot only (no {self.market.value} endpoint)",
                method="GET",
                endpoint=self._path(name),
            )

    def _symbols_param(self, name: str, symbols: Sequence[str] | None) -> list[str] | None:
        """Spot's ``symbols=["A","B"]`` parameter (futures has none: one symbol or all)."""
        if symbols is None:
            return None
        if self.market is not Market.SPOT:
            raise RequestError(
                f"{self.market.value} {name} takes one symbol or none, not a symbols list",
                method="GET",
                endpoint=self._path(name),
            )
        return [s.upper() for s in symbols]

    async def ping(self) -> None:
        """``GET /ping`` (weight 1): the REST API answers."""
        await self.request("GET", self._path("ping"))

    async def server_time(self) -> models.ServerTime:
        """``GET /time`` (weight 1). The clock does not use this answer: ``clock.sync()``
        takes RTT-compensated samples."""
        return await self.request_typed("GET", self._path("time"), type=models.ServerTime)

    async def exchange_info(self, symbols: Sequence[str] | None = None, **params: object) -> ExchangeRules:
        """``GET /exchangeInfo`` (spot 20, futures 1): the market's trading rules.

        Sets ``self.rules`` (``tickbook.trading.filters.ExchangeRules``) and configures the
        weight and order-count budgets from its ``rateLimits`` (the live values win over the
        documented ones, §5.1). Spot takes ``symbols`` (and ``permissions``, ``symbolStatus``,
        ... as keyword parameters); the rules then cover those symbols only.
        """
        from tickbook.trading.filters import ExchangeRules

        query: dict[str, object] = dict(params)
        names = self._symbols_param("exchangeInfo", symbols)
        if names is not None:
            query["symbols"] = names
        info = await self.request_json("GET", self._path("exchangeInfo"), query)
        rate_limits = info.get("rateLimits") if isinstance(info, dict) else None
        if rate_limits:
            self.budget.configure(rate_limits)
            self.orders.configure(rate_limits)
        self.rules = ExchangeRules.from_exchange_info(info, self.market)
        return self.rules

    async def depth(
        self, symbol: str, limit: int | None = None
    ) -> DepthSnapshotTyped | FuturesDepthSnapshotTyped:
        """``GET /depth``: the order book snapshot (weight by ``limit``, §1.3/§2.2), levels as
        exact decimal strings, as the book and the feed take them."""
        kind: type[DepthSnapshotTyped | FuturesDepthSnapshotTyped] = (
            FuturesDepthSnapshotTyped if self.market.is_futures else DepthSnapshotTyped
        )
        params = {"symbol": symbol.upper(), "limit": limit}
        return await self.request_typed("GET", self._path("depth"), params, type=kind)

    async def trades(
        self, symbol: str, limit: int | None = None
    ) -> list[models.Trade] | list[models.FuturesTrade]:
        """``GET /trades``: recent trades (spot 25, futures 5), newest last."""
        params = {"symbol": symbol.upper(), "limit": limit}
        if self.market.is_futures:
            return await self.request_typed(
                "GET", self._path("trades"), params, type=list[models.FuturesTrade]
            )
        return await self.request_typed("GET", self._path("trades"), params, type=list[models.Trade])

    async def historical_trades(
        self, symbol: str, limit: int | None = None, from_id: int | None = None
    ) -> list[models.Trade] | list[models.FuturesTrade]:
        """``GET /historicalTrades``: older trades from ``from_id`` (spot 25, security NONE;
        futures 20, MARKET_DATA: the API key header is required, no signature, §4.1)."""
        params = {"symbol": symbol.upper(), "limit": limit, "fromId": from_id}
        path = self._path("historicalTrades")
        if self.market.is_futures:
            return await self.request_typed(
                "GET", path, params, type=list[models.FuturesTrade], api_key_only=True
            )
        return await self.request_typed("GET", path, params, type=list[models.Trade])

    async def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[models.AggTrade]:
        """``GET /aggTrades`` (spot 4, futures 20): compressed trades."""
        params = {
            "symbol": symbol.upper(),
            "fromId": from_id,
            "startTime": start_time,
            "endTime": end_time,
            "limit": limit,
        }
        return await self.request_typed("GET", self._path("aggTrades"), params, type=list[models.AggTrade])

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
        time_zone: str | None = None,
    ) -> list[models.Kline]:
        """``GET /klines`` (spot 2; futures 1-10 by ``limit``): candles, oldest first.
        ``time_zone`` (spot only) shifts the interval boundaries."""
        if time_zone is not None:
            self._spot_only("klines timeZone")
        params = {
            "symbol": symbol.upper(),
            "interval": interval,
            "startTime": start_time,
            "endTime": end_time,
            "limit": limit,
            "timeZone": time_zone,
        }
        return await self.request_typed("GET", self._path("klines"), params, type=list[models.Kline])

    async def avg_price(self, symbol: str) -> models.AvgPrice:
        """``GET /api/v3/avgPrice`` (spot only, weight 2): the average price over ``mins``."""
        self._spot_only("avgPrice")
        return await self.request_typed(
            "GET", self._path("avgPrice"), {"symbol": symbol.upper()}, type=models.AvgPrice
        )

    @overload
    async def ticker_24h(self, symbol: str) -> models.Ticker24h: ...
    @overload
    async def ticker_24h(
        self, symbol: None = None, *, symbols: Sequence[str] | None = None
    ) -> list[models.Ticker24h]: ...
    async def ticker_24h(
        self, symbol: str | None = None, *, symbols: Sequence[str] | None = None
    ) -> models.Ticker24h | list[models.Ticker24h]:
        """``GET /ticker/24hr``: one symbol's 24-hour statistics, or a list (``symbols``, spot
        only, or every symbol: weight 80 on spot, 40 on futures)."""
        return await self._ticker("ticker/24hr", models.Ticker24h, symbol, symbols)

    @overload
    async def ticker_price(self, symbol: str) -> models.PriceTicker: ...
    @overload
    async def ticker_price(
        self, symbol: None = None, *, symbols: Sequence[str] | None = None
    ) -> list[models.PriceTicker]: ...
    async def ticker_price(
        self, symbol: str | None = None, *, symbols: Sequence[str] | None = None
    ) -> models.PriceTicker | list[models.PriceTicker]:
        """``GET /ticker/price`` (USD-M: ``/fapi/v2/ticker/price``): the last price of one
        symbol, or a list."""
        return await self._ticker("ticker/price", models.PriceTicker, symbol, symbols)

    @overload
    async def book_ticker(self, symbol: str) -> models.BookTicker: ...
    @overload
    async def book_ticker(
        self, symbol: None = None, *, symbols: Sequence[str] | None = None
    ) -> list[models.BookTicker]: ...
    async def book_ticker(
        self, symbol: str | None = None, *, symbols: Sequence[str] | None = None
    ) -> models.BookTicker | list[models.BookTicker]:
        """``GET /ticker/bookTicker``: the best bid and ask of one symbol, or a list."""
        return await self._ticker("ticker/bookTicker", models.BookTicker, symbol, symbols)

    async def _ticker(
        self, name: str, kind: type[T], symbol: str | None, symbols: Sequence[str] | None
    ) -> T | list[T]:
        if symbol is not None and symbols is not None:
            raise RequestError(
                "give symbol or symbols, not both", code=-1128, method="GET", endpoint=self._path(name)
            )
        path = self._path(name)
        if name == "ticker/price" and self.market is Market.USDM:
            path = "/fapi/v2/ticker/price"  # v1 is the legacy version of the same answer
        names = self._symbols_param(name, symbols)
        if symbol is None:
            params = {"symbols": names} if names is not None else None
            many: Any = await self.request_typed("GET", path, params, type=list[kind])  # type: ignore[valid-type]
            return cast("list[T]", many)
        body = await self.request("GET", path, {"symbol": symbol.upper()})
        # COIN-M answers a list even for one symbol (its pair may hold several contracts).
        answer: Any = msgspec.json.decode(body, type=kind | list[kind])  # type: ignore[valid-type]
        if isinstance(answer, list):
            if not answer:
                raise BinanceError(f"empty answer for {symbol}", status=200, method="GET", endpoint=path)
            return cast(T, answer[0])
        return cast(T, answer)
