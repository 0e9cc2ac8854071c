"""The local exchange's private side: the WebSocket API, listenKeys and the user-data streams.

The trading engine (``tickbook.sim.trading``, ``exchange.trading``) has no transport of its own:
it lists its endpoints as ``(http_method, path, ws_method, handler)`` and publishes user-data
events to listeners. ``PrivateApi`` (one per exchange, ``exchange.private_api``) puts them on
the wire the way Binance does, next to the market streams on the WebSocket server's port
(``tickbook.sim.ws.WsServer`` asks it first for every handshake), while ``tickbook.sim.rest``
serves the same handlers over REST and the USD-M / COIN-M listenKey endpoints through it.

WebSocket API (binance-spec §9; spot ``/ws-api/v3``, USD-M ``/ws-fapi/v1``, COIN-M
``/ws-dapi/v1``):

* one JSON request per text frame, ``{"id", "method", "params"}`` (a ``v3/`` style version
  prefix on the method is accepted); one answer per request, ``{"id", "status", "result"}``
  or ``{"id", "status", "error": {"code", "msg"[, "data"]}}``, followed by ``rateLimits``
  (the IP's REQUEST_WEIGHT usage, and the account's ORDERS counts on order requests) unless
  ``returnRateLimits=false`` is in the URL or the request;
* weight is the REST weight of the same IP (shared with REST, ``tickbook.limits``): a
  connection costs 2 on spot and 5 on futures (§3), each method its REST twin's weight,
  ``session.*`` and ``userDataStream.*`` 2 on spot (§5.3); past the limit the answer is 429
  (418 when banned, after which the connection is closed) with ``error.data.retryAfter``, an
  epoch-ms time;
* signed methods carry ``apiKey``, ``timestamp`` and a ``signature`` over the alphabetically
  sorted params with raw values (§4.3, ``KeyRegistry.verify_ws``); ``session.logon``
  (Ed25519 keys only: another key type fails its signature check, -1022, as on Binance)
  authenticates the connection, after which signed methods need only ``timestamp``, and a
  request may still carry its own ``apiKey`` + ``signature``. A session whose key is removed
  from the registry is revoked on its next request (status 401, -2015, ``id`` null);
* ``ping``, ``time``, ``session.logon`` / ``status`` / ``logout`` / ``subscriptions``, and the
  engine's methods (``order.place``, ``order.status``, ...); on spot the user-data
  subscriptions of §8.1: ``userDataStream.subscribe`` (needs a logon),
  ``userDataStream.subscribe.signature`` (any key type, no logon), ``userDataStream.unsubscribe``
  (one ``subscriptionId`` or all, each ending with ``eventStreamTerminated``); one subscription
  per account per connection (-2035), -2036 for one that is not active, 65535 subscription IDs
  per connection (-2042). Events arrive as ``{"subscriptionId": N, "event": {...}}``. On
  futures, ``userDataStream.start`` / ``.ping`` / ``.stop`` manage the account's listenKey;
* the market-stream rules apply (ping every 20 s / 3 min, pong deadline, 24 h lifetime, spot's
  ``{"event":{"e":"serverShutdown"}}`` notice), except the inbound message limit: the WebSocket
  API is limited by request weight instead.

USD-M / COIN-M user-data streams (§8.2): ``POST /fapi/v1/listenKey`` (API key only) creates the
account's key or returns the existing one, extended; ``PUT`` extends it (-1125 when it has
expired), ``DELETE`` closes it and its streams. A key lives ``listen_key_validity_ms`` (60 min)
on the exchange clock; when it expires every stream on it receives ``listenKeyExpired`` and
then nothing more (the connection stays open, as on Binance). Streams connect to
``/private/ws/<listenKey>``, ``/private/ws?listenKey=K[&events=A/B]`` or ``/ws/<listenKey>``
and receive the events themselves (no wrapper). A handshake naming a key that does not exist
is refused with HTTP 400 and -1125 (a choice of this exchange: the client learns at once that
it must create a new key).

``lost-response`` faults (``tickbook.sim.faults``) apply to the order placements of both APIs:
the order is executed, then its answer is held, replaced by a 503, or the connection is reset.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from picows import WSCloseCode, WSListener, WSTransport, WSUpgradeResponseWithListener

from tickbook._types import Market
from tickbook.limits import (
    ORDER_COUNT_PREFIX,
    RateLimit,
    RateLimitType,
    UnknownEndpoint,
    weight,
    ws_weight,
)
from tickbook.signing import (
    FUTURES_RULES,
    SPOT_RULES,
    Accepted,
    KeyType,
    Rejected,
    _parse_recv_window,
    _parse_timestamp,
    check_timestamp,
    encode_value,
)
from tickbook.sim.faults import LOST_RESPONSE_MSG, Fault, is_order_placement
from tickbook.sim.rest import ApiError, ServerContext
from tickbook.sim.ws import WsServer, _Connection

__all__ = [
    "LISTEN_KEY_VALIDITY_MS",
    "WS_API_PATHS",
    "PrivateApi",
    "PrivateContext",
    "TradeRoute",
    "TradingEngineLike",
]

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, str], str], Any]
EventCallback = Callable[[dict[str, Any]], None]

WS_API_PATHS: Final = {Market.SPOT: "/ws-api/v3", Market.USDM: "/ws-fapi/v1", Market.COINM: "/ws-dapi/v1"}
LISTEN_KEY_VALIDITY_MS: Final = 60 * 60_000  # §8.2: a listenKey lives 60 min unless extended
# Per connection (§8.1): subscription IDs are never reused; after 65535 the client reconnects.
MAX_SUBSCRIPTION_IDS: Final = 65535
# Futures WS-API session methods have no documented weight (§5.3 lists spot's 2): spot's is used.
_SESSION_WEIGHT: Final = 2
_CONNECT_WEIGHT: Final = {Market.SPOT: 2, Market.USDM: 5, Market.COINM: 5}

_VERSION: Final = re.compile(r"^v[0-9]+/")
_LISTEN_KEY_TEXT: Final = re.compile(r"[A-Za-z0-9]{16,128}")
_KEY_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

_INVALID_KEY: Final = "Invalid API-key, IP, or permissions for action."
_NO_LISTEN_KEY: Final = "This listenKey does not exist."


class TradingEngineLike(Protocol):
    """What the private side needs from the trading engine (``tickbook.sim.trading``)."""

    def routes(self) -> Sequence[tuple[str, str, str, Handler]]: ...

    def add_listener(self, api_key: str, callback: EventCallback) -> Callable[[], None]: ...


class PrivateContext(ServerContext, Protocol):
    """What ``PrivateApi`` reads from its exchange (``Exchange`` implements it). The trading
    engine is the optional attribute ``trading``: without one only the session, listenKey and
    subscription machinery runs, and no event ever arrives."""

    @property
    def market(self) -> Market: ...


@dataclass(frozen=True, slots=True)
class TradeRoute:
    """One engine endpoint: REST ``http_method path`` and WebSocket API ``ws_method`` (may be
    empty: REST only), the handler both call, and whether it places orders (``lost-response``)."""

    http_method: str
    path: str
    ws_method: str
    handler: Handler
    placement: bool

    @property
    def endpoint(self) -> str:
        return f"{self.http_method} {self.path}"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error_body(code: int, msg: str) -> bytes:
    return _json({"code": code, "msg": msg})


async def _awaited(value: Any) -> Any:
    return await value


# ---------------------------------------------------------------------------------------------
# listenKeys and their streams


@dataclass(eq=False, slots=True)
class _ListenKey:
    key: str
    api_key: str
    expires_ms: int
    streams: list[_UserStream] = field(default_factory=list)
    unlisten: Callable[[], None] | None = None  # the engine listener while a stream is open


class _UserStream(_Connection):
    """A USD-M / COIN-M user-data stream: the events of one listenKey's account, unwrapped."""

    market_stream = False

    def __init__(
        self, server: WsServer, cid: int, api: PrivateApi, listen_key: str, events: frozenset[str] | None
    ) -> None:
        super().__init__(server, cid, "/private", False, [])
        self.api = api
        self.listen_key = listen_key
        self.events = events  # the ``events=A/B`` filter; None: every event

    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        self.api._stream_opened(self)

    def _forget(self, why: str) -> None:
        was_alive = self.alive
        super()._forget(why)
        if was_alive:
            self.api._stream_closed(self)

    def push(self, event: Mapping[str, Any], *, always: bool = False) -> None:
        if not self.alive:
            return
        if not always and self.events is not None and event.get("e") not in self.events:
            return
        self.hub._queue_message(self, _json(event))
        self.hub._flush_one(self)


# ---------------------------------------------------------------------------------------------
# WebSocket API sessions


@dataclass(frozen=True, slots=True)
class _Subscription:
    id: int
    api_key: str
    via_logon: bool  # made by userDataStream.subscribe: session.logout ends it
    unlisten: Callable[[], None]


class _Session(_Connection):
    """One WebSocket API connection: its logon, its user-data subscriptions, its requests."""

    market_stream = False
    inbound_limited = False  # request weight limits the WebSocket API, not a message rate

    def __init__(self, server: WsServer, cid: int, api: PrivateApi, *, return_rate_limits: bool) -> None:
        super().__init__(server, cid, "", False, [])
        self.api = api
        self.return_rate_limits = return_rate_limits
        self.ip = "127.0.0.1"
        self.connected_since = api.now_ms()
        self.session_key: str | None = None
        self.authorized_since: int | None = None
        self.subscriptions: dict[int, _Subscription] = {}
        self._next_subscription = 0
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        peer = transport.underlying_transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.ip = str(peer[0])
        api = self.api
        api.ctx.client_seen()
        api.sessions.add(self)
        decision = api.ctx.guard.admit(self.ip, _CONNECT_WEIGHT[api.market], api.now_ms())
        if not decision.ok:
            api.ctx.count_violation("ip_banned" if decision.status == 418 else "request_weight")
            self._send_error(None, decision.status, self._limit_error(decision.code, decision.msg, decision))
            self.close(WSCloseCode.POLICY_VIOLATION, "Too much request weight used", why="request_weight")

    def _forget(self, why: str) -> None:
        was_alive = self.alive
        super()._forget(why)
        if not was_alive:
            return
        self.api.sessions.discard(self)
        for sub in self.subscriptions.values():
            sub.unlisten()
        self.subscriptions.clear()
        for task in self._tasks:
            task.cancel()

    def send_server_shutdown(self) -> None:
        """Spot's WebSocket API notice (§3): ``{"event":{"e":"serverShutdown","E":...}}``."""
        if self.alive:
            self._send({"event": {"e": "serverShutdown", "E": self.api.now_ms()}})

    # -- output --------------------------------------------------------------------------------

    def _send(self, obj: Mapping[str, Any]) -> None:
        if not self.alive:
            return
        self.hub._queue_message(self, _json(obj))
        self.hub._flush_one(self)

    def _respond(
        self,
        rid: Any,
        status: int,
        *,
        result: Any = None,
        error: Mapping[str, Any] | None = None,
        rate_limits: bool,
        orders_of: str | None = None,
    ) -> None:
        message: dict[str, Any] = {"id": rid, "status": status}
        if error is None:
            message["result"] = result
        else:
            message["error"] = dict(error)
        if rate_limits:
            message["rateLimits"] = self.api.rate_limits(self.ip, orders_of)
        self._send(message)

    def _send_error(self, rid: Any, status: int, error: Mapping[str, Any]) -> None:
        self._respond(rid, status, error=error, rate_limits=self.return_rate_limits)

    def _limit_error(self, code: int | None, msg: str | None, decision: Any) -> dict[str, Any]:
        """A 429/418 error with ``data.retryAfter`` (epoch ms), as the WebSocket API sends it."""
        now = self.api.now_ms()
        until = decision.banned_until_ms
        if until is None:
            until = now + 1000 * (decision.retry_after_s or 1)
        return {"code": code, "msg": msg, "data": {"retryAfter": until}}

    def _event(self, subscription_id: int, event: Mapping[str, Any]) -> None:
        self._send({"subscriptionId": subscription_id, "event": event})

    # -- requests ------------------------------------------------------------------------------

    def _on_request(self, raw: bytes) -> None:
        rid: Any = None
        try:
            try:
                request = json.loads(raw)
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, -1135, "Invalid JSON request") from None
            if not isinstance(request, dict):
                raise ApiError(400, -1135, "Invalid JSON request")
            rid = request.get("id")
            if isinstance(rid, bool) or not (rid is None or isinstance(rid, int | str)):
                rid = None
                raise ApiError(400, -1102, _mandatory_text("id"))
            method = request.get("method")
            if not isinstance(method, str) or not method:
                raise ApiError(400, -1102, _mandatory_text("method"))
            params = request.get("params", {})
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ApiError(400, -1135, "Invalid JSON request")
        except ApiError as exc:
            self._send_error(rid, exc.status, exc.body)
            return
        self._run_method(rid, method, dict(params))

    def _run_method(self, rid: Any, method: str, params: dict[str, Any]) -> None:
        api = self.api
        rate_limits = self.return_rate_limits
        flag = params.get("returnRateLimits")  # signed like any param: removed only for the engine
        if flag is not None:
            rate_limits = flag is True or (isinstance(flag, str) and flag.lower() == "true")
        # A version prefix is part of some names (USD-M "v2/account.status" is the v3 REST
        # endpoint); elsewhere it only names the current version ("v3/order.place").
        routes = api.ws_routes()
        if method not in routes:
            method = _VERSION.sub("", method)
        route = routes.get(method)
        builtin = self._builtin(method)
        now = api.now_ms()
        decision = api.ctx.guard.admit(self.ip, api.method_weight(method, route, params), now)
        if not decision.ok:
            api.ctx.count_violation("ip_banned" if decision.status == 418 else "request_weight")
            error = self._limit_error(decision.code, decision.msg, decision)
            self._respond(rid, decision.status, error=error, rate_limits=rate_limits)
            if decision.status == 418:  # §5.2: a banned IP is also disconnected from the WS-API
                self.close(WSCloseCode.POLICY_VIOLATION, "IP banned", why="ip_banned")
            return
        if self.session_key is not None and self.session_key not in api.ctx.keys:
            self._revoke()  # then the request runs on a session without a key
        try:
            if builtin is not None:
                result = builtin(params)
            elif route is not None:
                self._trade(rid, route, params, rate_limits)
                return
            else:
                raise ApiError(400, -1020, "This operation is not supported.")
        except ApiError as exc:
            self._respond(rid, exc.status, error=exc.body, rate_limits=rate_limits)
            return
        self._respond(rid, 200, result=result, rate_limits=rate_limits)

    def _builtin(self, method: str) -> Callable[[dict[str, Any]], Any] | None:
        common: dict[str, Callable[[dict[str, Any]], Any]] = {
            "ping": self._m_ping,
            "time": self._m_time,
            "session.logon": self._m_logon,
            "session.status": self._m_status,
            "session.logout": self._m_logout,
        }
        if self.api.market is Market.SPOT:
            common.update(
                {
                    "session.subscriptions": self._m_subscriptions,
                    "userDataStream.subscribe": self._m_subscribe,
                    "userDataStream.subscribe.signature": self._m_subscribe_signature,
                    "userDataStream.unsubscribe": self._m_unsubscribe,
                }
            )
        else:
            common.update(
                {
                    "userDataStream.start": self._m_listen_key_start,
                    "userDataStream.ping": self._m_listen_key_ping,
                    "userDataStream.stop": self._m_listen_key_stop,
                }
            )
        return common.get(method)

    def _revoke(self) -> None:
        """The session's key is gone (§9): 401/-2015 with a null id, the logon is forgotten."""
        self._end_subscriptions(lambda sub: sub.via_logon)
        self.session_key = None
        self.authorized_since = None
        self._respond(None, 401, error={"code": -2015, "msg": _INVALID_KEY}, rate_limits=False)

    # -- authentication ------------------------------------------------------------------------

    def _verify(self, params: Mapping[str, Any], api_key: str | None = None) -> Accepted:
        rules = FUTURES_RULES if self.api.futures else SPOT_RULES
        verdict = self.api.ctx.keys.verify_ws(
            params, api_key=api_key, rules=rules, now_us=self.api.now_ms() * 1000
        )
        if isinstance(verdict, Rejected):
            raise ApiError(verdict.http_status, verdict.code, verdict.msg)
        return verdict

    def _authenticate(self, params: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        """The account and the text params of a SIGNED request (§9): its own ``apiKey`` and
        ``signature``, a ``signature`` made with the logged-on key, or, on a logged-on session,
        only a valid ``timestamp``."""
        if "signature" in params or "apiKey" in params:
            key = None if "apiKey" in params else self.session_key
            if key is None and "apiKey" not in params:
                raise ApiError(400, -1102, _mandatory_text("apiKey"))
            accepted = self._verify(params, key)
            text = {k: v for k, v in accepted.params.items() if k != "apiKey"}
            return accepted.api_key, text
        if self.session_key is None:
            raise ApiError(400, -1102, _mandatory_text("apiKey"))
        text = {k: encode_value(v) for k, v in params.items() if v is not None}
        rules = FUTURES_RULES if self.api.futures else SPOT_RULES
        timestamp = _parse_timestamp(text.get("timestamp", ""))
        if isinstance(timestamp, Rejected):
            raise ApiError(timestamp.http_status, timestamp.code, timestamp.msg)
        window = _parse_recv_window(text.get("recvWindow"), rules)
        if isinstance(window, Rejected):
            raise ApiError(window.http_status, window.code, window.msg)
        late = check_timestamp(timestamp, window, self.api.now_ms() * 1000, rules)
        if late is not None:
            raise ApiError(late.http_status, late.code, late.msg)
        return self.session_key, text

    def _account_key(self, params: Mapping[str, Any]) -> str:
        """The key of a USER_STREAM request (API key only): ``apiKey`` or the logged-on key."""
        key = params.get("apiKey", self.session_key)
        if not isinstance(key, str) or not key:
            raise ApiError(400, -1102, _mandatory_text("apiKey"))
        if key not in self.api.ctx.keys:
            raise ApiError(401, -2015, _INVALID_KEY)
        return key

    # -- methods -------------------------------------------------------------------------------

    def _m_ping(self, params: dict[str, Any]) -> Any:
        return {}

    def _m_time(self, params: dict[str, Any]) -> Any:
        return {"serverTime": self.api.now_ms()}

    def _status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiKey": self.session_key,
            "authorizedSince": self.authorized_since,
            "connectedSince": self.connected_since,
            "returnRateLimits": self.return_rate_limits,
            "serverTime": self.api.now_ms(),
        }
        if self.api.market is Market.SPOT:
            body["userDataStream"] = bool(self.subscriptions)
        return body

    def _m_logon(self, params: dict[str, Any]) -> Any:
        if "apiKey" not in params:
            raise ApiError(400, -1102, _mandatory_text("apiKey"))
        accepted = self._verify(params)
        if accepted.key_type is not KeyType.ED25519:
            # Binance checks a logon signature as Ed25519 only: an HMAC or RSA one never verifies.
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        if self.session_key != accepted.api_key:
            self.authorized_since = self.api.now_ms()
        self.session_key = accepted.api_key
        return self._status_body()

    def _m_status(self, params: dict[str, Any]) -> Any:
        return self._status_body()

    def _m_logout(self, params: dict[str, Any]) -> Any:
        self._end_subscriptions(lambda sub: sub.via_logon)
        self.session_key = None
        self.authorized_since = None
        return self._status_body()

    def _m_subscriptions(self, params: dict[str, Any]) -> Any:
        return [{"subscriptionId": sid} for sid in sorted(self.subscriptions)]

    def _m_subscribe(self, params: dict[str, Any]) -> Any:
        if self.session_key is None:
            raise ApiError(401, -2015, _INVALID_KEY)
        return {"subscriptionId": self._open_subscription(self.session_key, via_logon=True)}

    def _m_subscribe_signature(self, params: dict[str, Any]) -> Any:
        if "apiKey" not in params:
            raise ApiError(400, -1102, _mandatory_text("apiKey"))
        accepted = self._verify(params)
        return {"subscriptionId": self._open_subscription(accepted.api_key, via_logon=False)}

    def _open_subscription(self, api_key: str, *, via_logon: bool) -> int:
        if any(sub.api_key == api_key for sub in self.subscriptions.values()):
            raise ApiError(400, -2035, "User Data Stream subscription already active.")
        if self._next_subscription >= MAX_SUBSCRIPTION_IDS:
            raise ApiError(400, -2042, "Maximum subscription ID reached for this connection.")
        sid = self._next_subscription
        self._next_subscription += 1
        engine = self.api.engine
        unlisten: Callable[[], None] = _nothing
        if engine is not None:
            unlisten = engine.add_listener(api_key, lambda event: self._event(sid, event))
        self.subscriptions[sid] = _Subscription(sid, api_key, via_logon, unlisten)
        return sid

    def _m_unsubscribe(self, params: dict[str, Any]) -> Any:
        raw = params.get("subscriptionId")
        if raw is None:
            if not self.subscriptions:
                raise ApiError(400, -2036, "User Data Stream subscription not active.")
            self._end_subscriptions(lambda sub: True)
            return {}
        try:
            sid = int(raw)
        except (TypeError, ValueError):
            raise ApiError(400, -1100, _illegal_text("subscriptionId")) from None
        if isinstance(raw, bool) or sid not in self.subscriptions:
            raise ApiError(400, -2036, "User Data Stream subscription not active.")
        self._end_subscriptions(lambda sub: sub.id == sid)
        return {}

    def _end_subscriptions(self, which: Callable[[_Subscription], bool]) -> None:
        """End the chosen subscriptions: no more events, then ``eventStreamTerminated`` (§8.1)."""
        for sid in [sid for sid, sub in self.subscriptions.items() if which(sub)]:
            sub = self.subscriptions.pop(sid)
            sub.unlisten()
            self._event(sid, {"e": "eventStreamTerminated", "E": self.api.now_ms()})

    def _m_listen_key_start(self, params: dict[str, Any]) -> Any:
        return {"listenKey": self.api.open_listen_key(self._account_key(params))}

    def _m_listen_key_ping(self, params: dict[str, Any]) -> Any:
        return {"listenKey": self.api.keepalive_listen_key(self._account_key(params))}

    def _m_listen_key_stop(self, params: dict[str, Any]) -> Any:
        self.api.close_listen_key(self._account_key(params))
        return {}

    # -- the engine's methods ------------------------------------------------------------------

    def _trade(self, rid: Any, route: TradeRoute, params: dict[str, Any], rate_limits: bool) -> None:
        """Authenticate, run the engine's handler and answer, unless a ``lost-response``
        fault takes the answer (the order is executed all the same)."""
        api_key, text = self._authenticate(params)
        text.pop("returnRateLimits", None)
        orders_of = api_key if route.placement else None
        lost = self.api.lost_response(route) if route.placement else None
        try:
            outcome = route.handler(text, api_key)
        except ApiError as exc:
            self._answer(rid, exc.status, None, exc.body, rate_limits, orders_of, lost)
            return
        if not inspect.isawaitable(outcome):
            self._answer(rid, 200, outcome, None, rate_limits, orders_of, lost)
            return
        task: asyncio.Future[Any] = asyncio.ensure_future(_awaited(outcome))
        self._tasks.add(task)

        def done(fut: asyncio.Future[Any]) -> None:
            self._tasks.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if isinstance(exc, ApiError):
                self._answer(rid, exc.status, None, exc.body, rate_limits, orders_of, lost)
            elif exc is not None:
                log.error("WebSocket API handler %s failed", route.ws_method, exc_info=exc)
                error = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
                self._answer(rid, 500, None, error, rate_limits, orders_of, lost)
            else:
                self._answer(rid, 200, fut.result(), None, rate_limits, orders_of, lost)

        task.add_done_callback(done)

    def _answer(
        self,
        rid: Any,
        status: int,
        result: Any,
        error: Mapping[str, Any] | None,
        rate_limits: bool,
        orders_of: str | None,
        lost: Fault | None,
    ) -> None:
        def send() -> None:
            self._respond(
                rid, status, result=result, error=error, rate_limits=rate_limits, orders_of=orders_of
            )

        if lost is None:
            send()
        elif lost.mode == "timeout":
            assert self._loop is not None
            self._loop.call_later(lost.seconds or 0.0, send)
        elif lost.mode == "503":
            unknown = {"code": -1000, "msg": LOST_RESPONSE_MSG}
            self._respond(rid, 503, error=unknown, rate_limits=rate_limits, orders_of=orders_of)
        else:  # reset: the session dies with the answer unsent
            self.abort("fault_lost_response")


def _nothing() -> None:
    return None


def _mandatory_text(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


def _illegal_text(name: str) -> str:
    return f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."


# ---------------------------------------------------------------------------------------------
# The exchange's private side


class PrivateApi:
    """The private endpoints of one exchange (one market); see the module docstring.

    ``listen_key_validity_ms`` is how long a listenKey lives after its creation or last
    extension, on the exchange clock (tests shorten it to see ``listenKeyExpired``).
    """

    def __init__(self, ctx: PrivateContext, *, listen_key_validity_ms: int = LISTEN_KEY_VALIDITY_MS) -> None:
        if listen_key_validity_ms <= 0:
            raise ValueError(f"listen_key_validity_ms must be positive, got {listen_key_validity_ms}")
        self.ctx = ctx
        self.market: Market = ctx.market
        self.futures = self.market.is_futures
        self.listen_key_validity_ms = listen_key_validity_ms
        self.sessions: set[_Session] = set()
        self._routes: list[TradeRoute] | None = None
        self._by_ws: dict[str, TradeRoute] = {}
        self._listen_keys: dict[str, _ListenKey] = {}  # by key
        self._key_of: dict[str, str] = {}  # api key -> its listenKey
        self._timer: asyncio.TimerHandle | None = None
        self._ids = 0

    # -- the engine ----------------------------------------------------------------------------

    @property
    def engine(self) -> TradingEngineLike | None:
        engine: TradingEngineLike | None = getattr(self.ctx, "trading", None)
        return engine

    def trade_routes(self) -> list[TradeRoute]:
        """The engine's endpoints (read once; none without an engine)."""
        if self._routes is None:
            engine = self.engine
            routes = []
            for http_method, path, ws_method, handler in engine.routes() if engine is not None else ():
                method = http_method.upper()
                routes.append(TradeRoute(method, path, ws_method, handler, is_order_placement(method, path)))
            self._routes = routes
            self._by_ws = {route.ws_method: route for route in routes if route.ws_method}
        return self._routes

    def ws_routes(self) -> Mapping[str, TradeRoute]:
        """The engine's endpoints by WebSocket API method name."""
        self.trade_routes()
        return self._by_ws

    def now_ms(self) -> int:
        return self.ctx.now_ms()

    # -- shared by REST and the WebSocket API ------------------------------------------------

    def lost_response(self, route: TradeRoute) -> Fault | None:
        """The ``lost-response`` fault that takes this order placement's answer, if any."""
        plan = self.ctx.faults
        return plan.on_order_placement(route.endpoint) if plan is not None else None

    def method_weight(self, method: str, route: TradeRoute | None, params: Mapping[str, Any]) -> int:
        """A WebSocket API request's weight: its REST twin's (§5.3)."""
        text = {k: encode_value(v) for k, v in params.items() if v is not None and k != "signature"}
        if route is not None:
            try:
                return weight(self.market, route.http_method, route.path, text)
            except UnknownEndpoint:
                log.warning("no weight known for %s; charging 1", route.endpoint)
                return 1
        if method.startswith(("session.", "userDataStream.")):
            if not self.futures or method.startswith("session."):
                return _SESSION_WEIGHT
            return 1  # the listenKey REST endpoints it stands for
        try:
            return ws_weight(self.market, method, text)
        except UnknownEndpoint:
            return 1  # ping/time on futures (their REST twins weigh 1); unknown methods too

    def order_count_headers(self, api_key: str) -> dict[str, str]:
        """``X-MBX-ORDER-COUNT-10S`` etc. for an order response: the account's unfilled order
        counts, as the engine keeps them (none without an engine)."""
        headers = getattr(self.engine, "order_count_headers", None)
        return dict(headers(api_key)) if headers is not None else {}

    def order_usage(self, api_key: str) -> list[tuple[RateLimit, int]]:
        """The account's ORDERS counters with their limits (the WebSocket API's rateLimits)."""
        limits = {limit.label: limit for limit in self.ctx.guard.limits.of(RateLimitType.ORDERS)}
        out = []
        for name, value in self.order_count_headers(api_key).items():
            limit = limits.get(name.upper().removeprefix(ORDER_COUNT_PREFIX))
            if limit is not None and value.isdigit():
                out.append((limit, int(value)))
        return out

    def rate_limits(self, ip: str, orders_of: str | None = None) -> list[dict[str, Any]]:
        """The ``rateLimits`` array of a WebSocket API answer: the account's ORDERS counters
        (order requests only) and the IP's REQUEST_WEIGHT."""
        out: list[dict[str, Any]] = []
        if orders_of is not None:
            out += [{**limit.to_json(), "count": count} for limit, count in self.order_usage(orders_of)]
        guard = self.ctx.guard
        now = self.now_ms()
        for limit, used in guard.weights.usage(ip, now).items():
            if limit.kind is RateLimitType.REQUEST_WEIGHT:
                out.append({**limit.to_json(), "count": used})
        return out

    # -- listenKeys (USD-M / COIN-M) -----------------------------------------------------------

    def _new_key(self) -> str:
        while True:
            key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(64))
            if key not in self._listen_keys:
                return key

    def open_listen_key(self, api_key: str) -> str:
        """``POST listenKey``: the account's key, created or extended by the validity."""
        now = self.now_ms()
        self._expire(now)
        key = self._key_of.get(api_key)
        if key is not None:
            self._listen_keys[key].expires_ms = now + self.listen_key_validity_ms
            return key
        key = self._new_key()
        self._listen_keys[key] = _ListenKey(key, api_key, now + self.listen_key_validity_ms)
        self._key_of[api_key] = key
        self._schedule()
        return key

    def keepalive_listen_key(self, api_key: str) -> str:
        """``PUT listenKey``: extend the account's key; -1125 when it has none (expired)."""
        now = self.now_ms()
        self._expire(now)
        key = self._key_of.get(api_key)
        if key is None:
            raise ApiError(400, -1125, _NO_LISTEN_KEY)
        self._listen_keys[key].expires_ms = now + self.listen_key_validity_ms
        return key

    def close_listen_key(self, api_key: str) -> None:
        """``DELETE listenKey``: the key is gone and its streams are closed."""
        self._expire(self.now_ms())
        key = self._key_of.pop(api_key, None)
        if key is None:
            return
        entry = self._listen_keys.pop(key)
        self._unlisten(entry)
        for stream in list(entry.streams):
            stream.close(WSCloseCode.OK, "listenKey closed", why="listen_key_closed")

    def listen_key_owner(self, key: str) -> str | None:
        """The account of a live listenKey, None when it does not exist (any more)."""
        self._expire(self.now_ms())
        entry = self._listen_keys.get(key)
        return entry.api_key if entry is not None else None

    def _expire(self, now: int) -> None:
        """Expire every key whose validity is over: ``listenKeyExpired`` to its streams, after
        which they receive nothing (they stay open, as on Binance)."""
        for entry in [e for e in self._listen_keys.values() if e.expires_ms <= now]:
            del self._listen_keys[entry.key]
            if self._key_of.get(entry.api_key) == entry.key:
                del self._key_of[entry.api_key]
            self._unlisten(entry)
            event = {"e": "listenKeyExpired", "E": now, "listenKey": entry.key}
            for stream in list(entry.streams):
                stream.push(event, always=True)
            entry.streams.clear()

    def _schedule(self) -> None:
        """Check expiry periodically while keys exist (the exchange clock may be simulated,
        so a timer per key's deadline would not do)."""
        if self._timer is not None or not self._listen_keys:
            return
        interval = min(1.0, max(0.01, self.listen_key_validity_ms / 20_000))
        self._timer = asyncio.get_running_loop().call_later(interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._expire(self.now_ms())
        self._schedule()

    def _unlisten(self, entry: _ListenKey) -> None:
        if entry.unlisten is not None:
            entry.unlisten()
            entry.unlisten = None

    def _stream_opened(self, stream: _UserStream) -> None:
        entry = self._listen_keys.get(stream.listen_key)
        if entry is None:  # expired between the handshake and now: silent, like an expired key
            return
        entry.streams.append(stream)
        engine = self.engine
        if entry.unlisten is None and engine is not None:

            def fan_out(event: dict[str, Any], entry: _ListenKey = entry) -> None:
                for s in list(entry.streams):
                    s.push(event)

            entry.unlisten = engine.add_listener(entry.api_key, fan_out)

    def _stream_closed(self, stream: _UserStream) -> None:
        entry = self._listen_keys.get(stream.listen_key)
        if entry is None or stream not in entry.streams:
            return
        entry.streams.remove(stream)
        if not entry.streams:
            self._unlisten(entry)

    # -- handshakes (``tickbook.sim.ws.PrivateRoutes``) ----------------------------------------

    def route(self, server: WsServer, target: str) -> WSListener | WSUpgradeResponseWithListener | None:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        if path == WS_API_PATHS[self.market]:
            flag = query.get("returnRateLimits", ["true"])[-1].lower()
            self._ids += 1
            return _Session(server, self._ids, self, return_rate_limits=flag != "false")
        if not self.futures:
            return None
        key: str | None = None
        if path == "/private/ws":
            key = query.get("listenKey", [""])[-1]
        elif path.startswith("/private/ws/"):
            key = unquote(path[len("/private/ws/") :])
        elif path.startswith("/ws/"):
            name = unquote(path[len("/ws/") :])
            # A market stream name always has an "@" or a "!"; a listenKey never does.
            if not _LISTEN_KEY_TEXT.fullmatch(name):
                return None
            key = name
        else:
            return None
        if not key or self.listen_key_owner(key) is None:
            return server.reject(HTTPStatus.BAD_REQUEST, _error_body(-1125, _NO_LISTEN_KEY))
        events_text = query.get("events", [""])[-1]
        events = frozenset(e for e in events_text.split("/") if e) or None
        self._ids += 1
        return _UserStream(server, self._ids, self, key, events)

    def stop(self) -> None:
        """The exchange is stopping: no more expiry checks."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
