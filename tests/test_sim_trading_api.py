"""The local exchange's trading I/O: REST order routes, the WebSocket API, user-data streams,
listenKeys and the ``lost-response`` fault (``tickbook.sim.rest``, ``tickbook.sim.wsapi``).

Each test starts an exchange in a background thread (``tickbook.sim.pytest_plugin``) and talks
to it over loopback with aiohttp, signing with ``tickbook.signing`` as a client would.
Expected values come from the spec (``shared/binance-spec.md`` §4 signing, §5 limits, §8 user
data, §9 WebSocket API, §10 codes), not from the code under test.

The generated markets start at 60000 (tick 0.01); the default account holds 1 BTC and 10000
USDT, so 0.001 BTC orders fit every filter.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tickbook.signing import Ed25519Key, HmacKey, SigningKey, sign_rest, sign_ws
from tickbook.sim.faults import Fault, FaultPlan, is_order_placement, load_scenario, parse_faults
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange
from tickbook.trading.errors import BinanceError, FilterFailure, RequestError
from tickbook.trading.filters import ExchangeRules
from tickbook.trading.ids import check_client_order_id
from tickbook.trading.orders import Leg, futures_order, oco_params, spot_order

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]

HMAC = HmacKey("hmac-key", "hmac-secret")
SYMBOL = "BTCUSDT"
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
LOST = "Unknown error, please check your request or try again later."


@pytest.fixture(scope="module")
def ed_key() -> Ed25519Key:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Ed25519Key("ed-key", pem)


def generated(market: str = "spot") -> Callable[[], GeneratedMarket]:
    return lambda: GeneratedMarket([SYMBOL], market, seed=7, levels=300)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def run(test: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout)

    asyncio.run(bounded())


def best(ex: ExchangeHandle, side: str, market: str = "spot") -> str:
    """The true book's best bid or ask price text (the replay is held, so it stays put)."""
    return str(ex.truth(SYMBOL, 1, market=market)[side][0][0])


def limit_order(price: str, client_id: str, side: str = "BUY") -> dict[str, object]:
    return {
        "symbol": SYMBOL,
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": price,
        "newClientOrderId": client_id,
        "timestamp": now_ms(),
    }


class Rest:
    """Signed REST calls against the exchange: the raw status, headers and JSON body."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: SigningKey = HMAC) -> None:
        self.session = session
        self.base = base
        self.key = key

    async def call(
        self,
        method: str,
        path: str,
        query: dict[str, object] | None = None,
        body: dict[str, object] | None = None,
        *,
        key: SigningKey | None = None,
        api_key: str | None = "",
        timeout: float = 10.0,
    ) -> tuple[int, Any, Any]:
        signer = key or self.key
        signed = sign_rest(signer, query, body)
        headers = {} if api_key is None else {"X-MBX-APIKEY": api_key or signer.api_key}
        data = None
        if signed.body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = signed.body.encode()
        url = f"{self.base}{path}?{signed.query_string}" if signed.query_string else self.base + path
        async with self.session.request(
            method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            return r.status, r.headers, await r.json(content_type=None)

    async def unsigned(self, method: str, path: str, api_key: str | None) -> tuple[int, Any]:
        headers = {} if api_key is None else {"X-MBX-APIKEY": api_key}
        async with self.session.request(method, self.base + path, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def order(self, client_id: str, path: str = "/api/v3/order") -> tuple[int, Any]:
        status, _, body = await self.call(
            "GET", path, {"symbol": SYMBOL, "origClientOrderId": client_id, "timestamp": now_ms()}
        )
        return status, body


class WsApi:
    """A WebSocket API client: requests by id, events (``subscriptionId`` frames) kept aside."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = 0
        self.events: list[dict[str, Any]] = []
        self.others: list[dict[str, Any]] = []

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        return data

    async def request(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self.ids += 1
        rid = self.ids
        message: dict[str, Any] = {"id": rid, "method": method, **extra}
        if params is not None:
            message["params"] = params
        await self.ws.send_json(message)
        while True:
            data = await self.receive()
            if data.get("id") == rid and "status" in data:
                return data
            self.keep(data)

    def keep(self, data: dict[str, Any]) -> None:
        (self.events if "subscriptionId" in data else self.others).append(data)

    async def event(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The first event (the whole frame) matching ``pred``, already received or coming."""
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.events:
                if pred(frame):
                    self.events.remove(frame)
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event in {timeout} s; got {self.events}")
            try:
                self.keep(await self.receive(timeout=left))
            except TimeoutError:
                continue


def kind(name: str, **fields: object) -> Callable[[dict[str, Any]], bool]:
    """An event predicate: the wrapped (spot) or bare (futures) event ``e == name`` with fields."""

    def pred(frame: dict[str, Any]) -> bool:
        event = frame.get("event", frame)
        return bool(event.get("e") == name and all(event.get(k) == v for k, v in fields.items()))

    return pred


# ------------------------------------------------------------------------------------ REST


def test_rest_order_round_trip_with_order_count_headers(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            bid = best(ex, "bids")
            # Everything in the form body (signature last, §4.2), the key in the header.
            status, headers, body = await rest.call("POST", "/api/v3/order", None, limit_order(bid, "rt-1"))
            assert status == 200, body
            assert body["clientOrderId"] == "rt-1"
            assert (body["status"], body["side"], body["type"]) == ("NEW", "BUY", "LIMIT")
            assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
            assert headers["X-MBX-ORDER-COUNT-1D"] == "1"
            assert int(headers["X-MBX-USED-WEIGHT-1M"]) >= 1
            status, found = await rest.order("rt-1")
            assert status == 200
            assert (found["orderId"], found["status"]) == (body["orderId"], "NEW")
            status, _, gone = await rest.call(
                "DELETE",
                "/api/v3/order",
                {"symbol": SYMBOL, "origClientOrderId": "rt-1", "timestamp": now_ms()},
            )
            assert (status, gone["status"], gone["origClientOrderId"]) == (200, "CANCELED", "rt-1")
            status, found = await rest.order("rt-1")
            assert (status, found["status"]) == (200, "CANCELED")
            status, found = await rest.order("never-placed")
            assert (status, found["code"]) == (400, -2013)

    run(main)


def test_query_and_body_are_merged_and_the_query_wins(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            params = limit_order(best(ex, "bids"), "merge-1")
            query = {k: params[k] for k in ("symbol", "side", "type")}
            body = {k: v for k, v in params.items() if k not in query}
            body["side"] = "SELL"  # also in the query: the query's BUY wins (§4.2)
            status, _, order = await rest.call("POST", "/api/v3/order", query, body)
            assert status == 200, order
            assert (order["side"], order["clientOrderId"], order["origQty"]) == (
                "BUY",
                "merge-1",
                "0.00100000",
            )

    run(main)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [("bad_signature", 400, -1022), ("unknown_key", 401, -2015), ("no_key", 401, -2014), ("old", 400, -1021)],
)
def test_rest_auth_failures_place_nothing(exchange: Start, case: str, status: int, code: int) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            params = limit_order(best(ex, "bids"), "auth-1")
            signer: SigningKey = HMAC
            if case == "bad_signature":
                signer = HmacKey(HMAC.api_key, "not-the-secret")
            elif case == "unknown_key":
                signer = HmacKey("someone-else", "hmac-secret")
            elif case == "old":
                params["timestamp"] = now_ms() - 60_000  # outside the default 5000 ms window
            api_key = None if case == "no_key" else signer.api_key
            got, _, body = await rest.call("POST", "/api/v3/order", params, key=signer, api_key=api_key)
            assert (got, body["code"]) == (status, code)
            status_, found = await rest.order("auth-1")
            assert (status_, found["code"]) == (400, -2013)  # nothing was placed

    run(main)


def test_the_clock_skew_fault_applies_to_order_timestamps(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC], faults="skew:-20000")

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            params = limit_order(best(ex, "bids"), "skew-1")  # the client's clock: 20 s ahead
            status, _, body = await rest.call("POST", "/api/v3/order", params)
            assert (status, body["code"]) == (400, -1021)
            async with session.get(ex.rest_url + "/api/v3/time") as r:
                params["timestamp"] = (await r.json())["serverTime"]
            status, _, body = await rest.call("POST", "/api/v3/order", params)
            assert status == 200, body

    run(main)


# ------------------------------------------------------------------------------------ WebSocket API


def test_ws_api_ed25519_logon_subscribe_and_trade(exchange: Start, ed_key: Ed25519Key) -> None:
    ex = exchange(generated(), hold=True, keys=[ed_key, HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
            api = WsApi(ws)
            r = await api.request("userDataStream.subscribe")  # no logon yet
            assert (r["status"], r["error"]["code"]) == (401, -2015)
            # Logon needs an Ed25519 key: an HMAC signature never verifies (-1022).
            r = await api.request("session.logon", sign_ws(HMAC, {"timestamp": now_ms()}))
            assert (r["status"], r["error"]["code"]) == (400, -1022)
            r = await api.request("session.logon", sign_ws(ed_key, {"timestamp": now_ms()}))
            assert r["status"] == 200, r
            assert r["result"]["apiKey"] == ed_key.api_key
            assert r["result"]["userDataStream"] is False
            weight = [x for x in r["rateLimits"] if x["rateLimitType"] == "REQUEST_WEIGHT"]
            assert weight[0]["limit"] == 6000
            # connect 2 + subscribe 2 + two logons 2 each (§5.3): the IP's weight, as REST counts it
            assert weight[0]["count"] == 8
            r = await api.request("userDataStream.subscribe")
            assert r["result"] == {"subscriptionId": 0}
            r = await api.request("userDataStream.subscribe")
            assert (r["status"], r["error"]["code"]) == (400, -2035)  # one per account
            assert (await api.request("session.status"))["result"]["userDataStream"] is True
            assert (await api.request("session.subscriptions"))["result"] == [{"subscriptionId": 0}]
            # Logged on: a SIGNED method needs only its timestamp.
            r = await api.request("order.place", limit_order(best(ex, "asks"), "ws-1"))
            assert r["status"] == 200, r
            assert (r["result"]["clientOrderId"], r["result"]["status"]) == ("ws-1", "FILLED")
            counts = {x["interval"]: x["count"] for x in r["rateLimits"] if x["rateLimitType"] == "ORDERS"}
            assert set(counts) == {"SECOND", "DAY"}
            report = await api.event(kind("executionReport", c="ws-1", x="TRADE"))
            assert report["subscriptionId"] == 0
            assert report["event"]["X"] == "FILLED"
            await api.event(kind("outboundAccountPosition"))
            # A request may still bring its own key and signature (another account: no event here).
            r = await api.request(
                "order.status",
                sign_ws(HMAC, {"symbol": SYMBOL, "origClientOrderId": "ws-1", "timestamp": now_ms()}),
            )
            assert (r["status"], r["error"]["code"]) == (400, -2013)
            # A stale timestamp is refused even on a logged-on session.
            r = await api.request(
                "order.status", {"symbol": SYMBOL, "orderId": 1, "timestamp": now_ms() - 60_000}
            )
            assert (r["status"], r["error"]["code"]) == (400, -1021)
            # Logout ends the logon's subscription with eventStreamTerminated.
            r = await api.request("session.logout")
            assert r["result"]["apiKey"] is None
            ended = await api.event(kind("eventStreamTerminated"))
            assert ended["subscriptionId"] == 0
            r = await api.request("order.status", {"symbol": SYMBOL, "orderId": 1, "timestamp": now_ms()})
            assert (r["status"], r["error"]) == (400, {"code": -1102, "msg": MANDATORY.format("apiKey")})

    run(main)


def test_ws_api_session_revoked_when_its_key_goes(exchange: Start, ed_key: Ed25519Key) -> None:
    ex = exchange(generated(), hold=True, keys=[ed_key])

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
            api = WsApi(ws)
            assert (await api.request("session.logon", sign_ws(ed_key, {"timestamp": now_ms()})))[
                "status"
            ] == 200
            assert (await api.request("userDataStream.subscribe"))["status"] == 200
            ex.call(lambda e: e.keys.remove(ed_key.api_key))
            r = await api.request("session.status")
            assert r["result"]["apiKey"] is None  # answered after the revocation, without a key
            assert api.others[0] == {
                "id": None,
                "status": 401,
                "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
            }
            await api.event(kind("eventStreamTerminated"), timeout=1)

    run(main)


def test_ws_api_subscribe_signature_hmac_events_and_unsubscribe(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
            api = WsApi(ws)
            bad = sign_ws(HmacKey(HMAC.api_key, "wrong"), {"timestamp": now_ms()})
            r = await api.request("userDataStream.subscribe.signature", bad)
            assert (r["status"], r["error"]["code"]) == (400, -1022)
            r = await api.request(
                "userDataStream.subscribe.signature", sign_ws(HMAC, {"timestamp": now_ms()})
            )
            assert r["status"] == 200, r
            sid = r["result"]["subscriptionId"]
            # An order placed over REST: its events reach the subscription on the WebSocket API.
            rest = Rest(session, ex.rest_url)
            status, _, body = await rest.call("POST", "/api/v3/order", limit_order(best(ex, "bids"), "ev-1"))
            assert status == 200, body
            new = await api.event(kind("executionReport", c="ev-1", x="NEW"))
            assert new["subscriptionId"] == sid
            status, _, body = await rest.call(
                "POST",
                "/api/v3/order",
                {
                    "symbol": SYMBOL,
                    "side": "SELL",
                    "type": "MARKET",
                    "quantity": "0.001",
                    "timestamp": now_ms(),
                },
            )
            assert (status, body["status"]) == (200, "FILLED")
            fill = await api.event(kind("executionReport", x="TRADE", S="SELL"))
            assert fill["event"]["X"] == "FILLED"
            await api.event(kind("outboundAccountPosition"))
            # Unsubscribe names the subscription; the stream ends with eventStreamTerminated.
            r = await api.request("userDataStream.unsubscribe", {"subscriptionId": sid + 1})
            assert (r["status"], r["error"]["code"]) == (400, -2036)
            r = await api.request("userDataStream.unsubscribe", {"subscriptionId": sid})
            assert (r["status"], r["result"]) == (200, {})
            ended = await api.event(kind("eventStreamTerminated"), timeout=1)
            assert ended["subscriptionId"] == sid
            r = await api.request("userDataStream.unsubscribe")
            assert (r["status"], r["error"]["code"]) == (400, -2036)  # nothing left to end
            # No more events for that account on this connection.
            status, _, _ = await rest.call("POST", "/api/v3/order", limit_order(best(ex, "bids"), "ev-2"))
            assert status == 200
            assert (await api.request("ping"))["result"] == {}
            assert not [e for e in api.events if e["event"].get("c") == "ev-2"]
            # A new subscription gets a new id; unsubscribe without an id ends them all.
            r = await api.request(
                "userDataStream.subscribe.signature", sign_ws(HMAC, {"timestamp": now_ms()})
            )
            assert r["result"]["subscriptionId"] == sid + 1
            r = await api.request("userDataStream.unsubscribe")
            assert r["result"] == {}
            await api.event(kind("eventStreamTerminated"), timeout=1)

    run(main)


def test_events_arrive_when_a_resting_order_fills_in_the_replay(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC], speed=None)

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
            api = WsApi(ws)
            r = await api.request(
                "userDataStream.subscribe.signature", sign_ws(HMAC, {"timestamp": now_ms()})
            )
            assert r["status"] == 200
            rest = Rest(session, ex.rest_url)
            status, _, body = await rest.call(
                "POST", "/api/v3/order", limit_order(best(ex, "bids"), "rest-1")
            )
            assert (status, body["status"]) == (200, "NEW")
            await api.event(kind("executionReport", c="rest-1", x="NEW"))
            ex.resume()  # the market moves: trades through the order's price fill it
            fill = await api.event(kind("executionReport", c="rest-1", x="TRADE"), timeout=25)
            assert fill["event"]["L"] == body["price"]  # filled at its own price: it was the maker
            assert fill["event"]["m"] is True

    run(main, timeout=40)


def test_ws_api_requests_errors_and_rate_limits(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ex.ws_url + "/ws-api/v3?returnRateLimits=false") as ws:
                api = WsApi(ws)
                r = await api.request("time")
                assert "rateLimits" not in r
                assert abs(r["result"]["serverTime"] - now_ms()) < 5000
                r = await api.request("ping", {"returnRateLimits": True})  # per request
                assert r["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
                await ws.send_str("{not json")
                r = await api.receive()
                assert (r["id"], r["status"], r["error"]["code"]) == (None, 400, -1135)
                r = await api.request("no.such.method")
                assert (r["status"], r["error"]["code"]) == (400, -1020)
                order = limit_order(best(ex, "bids"), "e-1")
                r = await api.request("order.place", order)  # not logged on, no key
                assert r["error"] == {"code": -1102, "msg": MANDATORY.format("apiKey")}
                r = await api.request("order.place", {**order, "apiKey": HMAC.api_key})
                assert r["error"] == {"code": -1102, "msg": MANDATORY.format("signature")}
                # returnRateLimits is a param like the others: signed, and it overrides the URL's.
                signed = sign_ws(HMAC, {**order, "returnRateLimits": True})
                r = await api.request("order.place", {**signed, "quantity": "0.002"})  # tampered
                assert r["error"]["code"] == -1022
                r = await api.request("v3/order.place", signed)  # a version prefix is accepted
                assert r["status"] == 200, r
                assert r["result"]["clientOrderId"] == "e-1"
                kinds = [x["rateLimitType"] for x in r["rateLimits"]]
                assert kinds == ["ORDERS", "ORDERS", "REQUEST_WEIGHT"]
            # REST and the WebSocket API share the IP's weight (§5.1).
            rest = Rest(session, ex.rest_url)
            _, headers, _ = await rest.call(
                "GET", "/api/v3/openOrders", {"symbol": SYMBOL, "timestamp": now_ms()}
            )
            used = int(headers["X-MBX-USED-WEIGHT-1M"])
            async with session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
                r = await WsApi(ws).request("ping")
                weight = r["rateLimits"][0]
                assert weight["count"] == used + 2 + 1  # a connection costs 2, ping 1

    run(main)


def test_ws_api_weight_limit_and_ban(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC], weight_limit=6, ban_tolerance=0)

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
            api = WsApi(ws)
            for _ in range(4):  # 2 (connect) + 4 x 1 = 6: at the limit, still allowed
                assert (await api.request("ping"))["status"] == 200
            r = await api.request("ping")
            assert (r["status"], r["error"]["code"]) == (429, -1003)
            assert r["error"]["data"]["retryAfter"] > now_ms() - 5000
            r = await api.request("ping")
            assert (r["status"], r["error"]["code"]) == (418, -1003)
            closing = await ws.receive(timeout=5)
            assert closing.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            )
        assert ex.violations()["rest"] == {"request_weight": 1, "ip_banned": 1}

    run(main)


def test_ws_api_server_shutdown_notice_and_lifetime(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, lifetime=0.6)

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
            first = json.loads((await ws.receive(timeout=5)).data)
            assert first["event"]["e"] == "serverShutdown"
            closing = await ws.receive(timeout=5)
            assert closing.type == aiohttp.WSMsgType.CLOSE

    run(main)


# ------------------------------------------------------------------------------------ USD-M


def test_usdm_ws_fapi_order_and_listen_key_methods(exchange: Start) -> None:
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(ex.ws_url + "/ws-fapi/v1") as ws:
            api = WsApi(ws)
            r = await api.request("userDataStream.start", {"apiKey": HMAC.api_key})
            key = r["result"]["listenKey"]
            assert r["rateLimits"][0]["count"] == 5 + 1  # handshake 5 (§3), listenKey 1
            assert (await api.request("userDataStream.ping", {"apiKey": HMAC.api_key}))["result"] == {
                "listenKey": key
            }
            params = {
                "symbol": SYMBOL,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": best(ex, "bids", "usdm"),
                "newClientOrderId": "f-1",
                "timestamp": now_ms(),
            }
            r = await api.request("order.place", sign_ws(HMAC, params))
            assert r["status"] == 200, r
            assert (r["result"]["clientOrderId"], r["result"]["status"]) == ("f-1", "NEW")
            assert (await api.request("userDataStream.stop", {"apiKey": HMAC.api_key}))["result"] == {}
            r = await api.request("userDataStream.ping", {"apiKey": HMAC.api_key})
            assert (r["status"], r["error"]["code"]) == (400, -1125)

    run(main)


def test_listen_key_create_extend_stream_and_expire(exchange: Start) -> None:
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            path = "/fapi/v1/listenKey"
            assert await rest.unsigned("POST", path, None) == (
                401,
                {"code": -2014, "msg": "API-key format invalid."},
            )
            status, body = await rest.unsigned("POST", path, "unknown")
            assert (status, body["code"]) == (401, -2015)
            status, body = await rest.unsigned("PUT", path, HMAC.api_key)
            assert (status, body) == (400, {"code": -1125, "msg": "This listenKey does not exist."})
            status, created = await rest.unsigned("POST", path, HMAC.api_key)  # API key only, no signature
            assert status == 200
            key = created["listenKey"]
            assert len(key) == 64
            assert await rest.unsigned("POST", path, HMAC.api_key) == (
                200,
                {"listenKey": key},
            )  # the same one
            assert await rest.unsigned("PUT", path, HMAC.api_key) == (200, {"listenKey": key})
            async with session.ws_connect(f"{ex.ws_url}/private/ws/{key}") as stream:
                params = {
                    "symbol": SYMBOL,
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.001",
                    "price": best(ex, "bids", "usdm"),
                    "newClientOrderId": "lk-1",
                    "timestamp": now_ms(),
                }
                status, _, order = await rest.call("POST", "/fapi/v1/order", params)
                assert status == 200, order
                update = json.loads((await stream.receive(timeout=5)).data)
                assert update["e"] == "ORDER_TRADE_UPDATE"  # futures events come unwrapped
                assert (update["o"]["c"], update["o"]["x"]) == ("lk-1", "NEW")
                # Shorten the validity, extend once more: the key now expires within a second.
                ex.call(lambda e: setattr(e.private_api, "listen_key_validity_ms", 300))
                assert await rest.unsigned("PUT", path, HMAC.api_key) == (200, {"listenKey": key})
                expired = json.loads((await stream.receive(timeout=5)).data)
                assert expired["e"] == "listenKeyExpired"
                assert expired["listenKey"] == key
                status, body = await rest.unsigned("PUT", path, HMAC.api_key)
                assert (status, body["code"]) == (400, -1125)
                params["newClientOrderId"], params["timestamp"] = "lk-2", now_ms()
                status, _, _ = await rest.call("POST", "/fapi/v1/order", params)
                assert status == 200
                with pytest.raises(TimeoutError):  # the expired key's stream says nothing more
                    await stream.receive(timeout=0.5)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{ex.ws_url}/private/ws/{key}")
            assert refused.value.status == 400
            # A new key; /ws/<listenKey> and the query form work too, and DELETE closes the stream.
            ex.call(lambda e: setattr(e.private_api, "listen_key_validity_ms", 3_600_000))
            status, created = await rest.unsigned("POST", path, HMAC.api_key)
            assert created["listenKey"] != key
            key = created["listenKey"]
            async with session.ws_connect(f"{ex.ws_url}/ws/{key}") as stream:
                params["newClientOrderId"], params["timestamp"] = "lk-3", now_ms()
                status, _, _ = await rest.call("POST", "/fapi/v1/order", params)
                update = json.loads((await stream.receive(timeout=5)).data)
                assert update["o"]["c"] == "lk-3"
            url = f"{ex.ws_url}/private/ws?listenKey={key}&events=ACCOUNT_UPDATE"
            async with session.ws_connect(url) as stream:
                params["newClientOrderId"], params["timestamp"] = "lk-4", now_ms()
                status, _, _ = await rest.call("POST", "/fapi/v1/order", params)
                with pytest.raises(TimeoutError):  # ORDER_TRADE_UPDATE is filtered out
                    await stream.receive(timeout=0.5)
                assert await rest.unsigned("DELETE", path, HMAC.api_key) == (200, {})
                closing = await stream.receive(timeout=5)
                assert closing.type == aiohttp.WSMsgType.CLOSE

    run(main)


# ------------------------------------------------------------------------------------ refusals sent raw


# §6.1: timeInForce belongs to LIMIT, STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT only; the spot
# exchange answers -1106 "Parameter 'timeInForce' sent when not required." for the others,
# LIMIT_MAKER included (reported by client libraries hit by it, for MARKET, STOP_LOSS and
# LIMIT_MAKER orders); USD-M MARKET orders likewise.
SPOT_NO_TIF = [
    ("MARKET", {"quantity": "0.001"}),
    ("STOP_LOSS", {"quantity": "0.001", "stopPrice": "{low}"}),
    ("TAKE_PROFIT", {"quantity": "0.001", "stopPrice": "{high}"}),
    ("LIMIT_MAKER", {"quantity": "0.001", "price": "{low}"}),
]


@pytest.mark.parametrize(("order_type", "fields"), SPOT_NO_TIF)
def test_time_in_force_sent_raw_where_not_allowed_is_minus_1106(
    exchange: Start, order_type: str, fields: dict[str, str]
) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])
    bid = Decimal(best(ex, "bids"))
    prices = {"low": str(bid - 1000), "high": str(bid - 1000)}  # SELL stop below, BUY TP below
    side = "BUY" if order_type in ("MARKET", "TAKE_PROFIT", "LIMIT_MAKER") else "SELL"
    order = {k: v.format(**prices) for k, v in fields.items()}
    msg = "Parameter 'timeInForce' sent when not required."

    # The builder refuses the same order before sending, with the same code and message.
    with pytest.raises(RequestError) as local:
        spot_order(
            SYMBOL,
            side,
            order_type,
            quantity=order["quantity"],
            price=order.get("price"),
            stop_price=order.get("stopPrice"),
            time_in_force="GTC",
        )
    assert (local.value.code, local.value.msg, local.value.status) == (-1106, msg, None)

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            base = {"symbol": SYMBOL, "side": side, "type": order_type, **order}
            params: dict[str, object]
            for tif in ("GTC", "IOC"):
                params = {**base, "timeInForce": tif, "newClientOrderId": f"tif-{tif}", "timestamp": now_ms()}
                status, _, body = await rest.call("POST", "/api/v3/order", None, params)
                assert (status, body) == (400, {"code": -1106, "msg": msg})
                status, found = await rest.order(f"tif-{tif}")
                assert (status, found["code"]) == (400, -2013)  # nothing was placed
            # the test endpoint validates the same way
            params = {**base, "timeInForce": "GTC", "timestamp": now_ms()}
            status, _, body = await rest.call("POST", "/api/v3/order/test", None, params)
            assert (status, body) == (400, {"code": -1106, "msg": msg})
            # without it the same order is accepted
            status, _, body = await rest.call(
                "POST", "/api/v3/order", None, {**base, "newClientOrderId": "tif-none", "timestamp": now_ms()}
            )
            assert (status, body["clientOrderId"]) == (200, "tif-none"), body

    run(main)


def test_time_in_force_on_an_oco_limit_maker_leg_and_a_futures_market_order(exchange: Start) -> None:
    spot = exchange(generated(), hold=True, keys=[HMAC])
    usdm = exchange(generated("usdm"), hold=True, keys=[HMAC])
    bid = Decimal(best(spot, "bids"))
    # the builders refuse both before sending, with the code and message checked below
    with pytest.raises(RequestError) as leg:
        oco_params(
            SYMBOL,
            "SELL",
            "0.001",
            Leg("LIMIT_MAKER", price=bid + 1000, time_in_force="GTC"),
            Leg("STOP_LOSS", stop_price=bid - 1000),
        )
    with pytest.raises(RequestError) as fut:
        futures_order(SYMBOL, "BUY", "MARKET", quantity="0.001", time_in_force="GTC")
    assert (leg.value.code, leg.value.msg) == (-1106, "Parameter 'aboveTimeInForce' sent when not required.")
    assert (fut.value.code, fut.value.msg) == (-1106, "Parameter 'timeInForce' sent when not required.")

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, spot.rest_url)
            oco = {
                "symbol": SYMBOL,
                "side": "SELL",
                "quantity": "0.001",
                "aboveType": "LIMIT_MAKER",
                "abovePrice": str(bid + 1000),
                "aboveTimeInForce": "GTC",
                "belowType": "STOP_LOSS",
                "belowStopPrice": str(bid - 1000),
                "timestamp": now_ms(),
            }
            status, _, body = await rest.call("POST", "/api/v3/orderList/oco", None, oco)
            assert (status, body) == (
                400,
                {"code": -1106, "msg": "Parameter 'aboveTimeInForce' sent when not required."},
            )
            del oco["aboveTimeInForce"]
            oco["timestamp"] = now_ms()
            status, _, body = await rest.call("POST", "/api/v3/orderList/oco", None, oco)
            assert status == 200, body

            rest = Rest(session, usdm.rest_url)
            market = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.001"}
            status, _, body = await rest.call(
                "POST", "/fapi/v1/order", None, {**market, "timeInForce": "GTC", "timestamp": now_ms()}
            )
            assert (status, body) == (
                400,
                {"code": -1106, "msg": "Parameter 'timeInForce' sent when not required."},
            )
            status, _, body = await rest.call(
                "POST", "/fapi/v1/order", None, {**market, "timestamp": now_ms()}
            )
            assert status == 200, body

    run(main)


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_local_refusals_sent_raw_are_http_400_with_the_same_code_and_message(
    exchange: Start, market: str
) -> None:
    """A filter failure or an illegal client order ID is refused locally with no HTTP status;
    the exchange answers the same order with 400 and the same code and message."""
    ex = exchange(generated(market), hold=True, keys=[HMAC])
    prefix = "/api/v3" if market == "spot" else "/fapi/v1"
    bid = Decimal(best(ex, "bids", market))

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{ex.rest_url}{prefix}/exchangeInfo") as r:
                rules = ExchangeRules.from_exchange_info(await r.json(), market)[SYMBOL]
            rest = Rest(session, ex.rest_url)
            off_tick = bid - 100 + rules.tick_size / 10
            order = {
                "symbol": SYMBOL,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": str(off_tick),
            }
            with pytest.raises(FilterFailure) as filtered:
                rules.check_order(side="BUY", type="LIMIT", price=off_tick, quantity="0.001")
            long_id = "x" * 37
            with pytest.raises(RequestError) as illegal:
                check_client_order_id(long_id, market)
            cases: list[tuple[dict[str, object], BinanceError]] = [
                ({**order, "newClientOrderId": "raw-tick"}, filtered.value),
                ({**order, "price": str(bid - 100), "newClientOrderId": long_id}, illegal.value),
            ]
            for params, local in cases:
                assert local.status is None  # refused before sending
                status, _, body = await rest.call(
                    "POST", f"{prefix}/order", None, {**params, "timestamp": now_ms()}
                )
                assert (status, body) == (400, {"code": local.code, "msg": local.msg})
            assert filtered.value.code == (-1013 if market == "spot" else -4014)
            assert illegal.value.code == (-1100 if market == "spot" else -4015)

    run(main)


# ------------------------------------------------------------------------------------ lost-response


@pytest.mark.parametrize("mode", ["timeout=1.5", "reset", "503"])
def test_lost_response_rest_executes_the_order(exchange: Start, mode: str) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC], faults=f"lost-response@2:{mode}")

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            bid = best(ex, "bids")
            status, _, _ = await rest.call("POST", "/api/v3/order", limit_order(bid, "lost-1"))
            assert status == 200  # the first placement is answered
            try:
                status, _, body = await rest.call(
                    "POST", "/api/v3/order", limit_order(bid, "lost-2"), timeout=0.5
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome: Any = type(exc)
            else:
                outcome = (status, body)
            if mode == "503":
                assert outcome == (503, {"code": -1000, "msg": LOST})
            elif mode == "reset":
                assert issubclass(outcome, aiohttp.ClientError)
            else:
                assert outcome is TimeoutError
            # The outcome was unknown to the client, but the order exists.
            status, found = await rest.order("lost-2")
            assert (status, found["status"]) == (200, "NEW")
            status, _, _ = await rest.call("POST", "/api/v3/order", limit_order(bid, "lost-3"))
            assert status == 200  # only the second one was lost

    run(main)
    entries = [e for e in ex.fault_log() if e["kind"] == "lost-response"]
    assert len(entries) == 1
    assert (entries[0]["at"], entries[0]["endpoint"], entries[0]["mode"]) == (
        2,
        "POST /api/v3/order",
        mode.partition("=")[0],
    )


def test_lost_response_timeout_answers_late(exchange: Start) -> None:
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC], faults="lost-response@1:timeout=0.4")

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            rest = Rest(session, ex.rest_url)
            params = {
                "symbol": SYMBOL,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": best(ex, "bids", "usdm"),
                "newClientOrderId": "late-1",
                "timestamp": now_ms(),
            }
            started = time.monotonic()
            status, _, body = await rest.call("POST", "/fapi/v1/order", params)
            assert time.monotonic() - started >= 0.4
            assert (status, body["clientOrderId"]) == (200, "late-1")

    run(main)


@pytest.mark.parametrize("mode", ["reset", "503", "timeout=1"])
def test_lost_response_ws_api(exchange: Start, mode: str) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC], faults=f"lost-response@1:{mode}")

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ex.ws_url + "/ws-api/v3") as ws:
                await ws.send_json(
                    {
                        "id": 7,
                        "method": "order.place",
                        "params": sign_ws(HMAC, limit_order(best(ex, "bids"), "wl-1")),
                    }
                )
                msg = await ws.receive(timeout=5)
                if mode == "reset":  # the whole session is gone, nothing answered
                    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                elif mode == "503":
                    r = json.loads(msg.data)
                    assert (r["id"], r["status"], r["error"]) == (7, 503, {"code": -1000, "msg": LOST})
                else:
                    assert json.loads(msg.data)["status"] == 200  # a second late
            status, found = await Rest(session, ex.rest_url).order("wl-1")
            assert (status, found["status"]) == (200, "NEW")

    run(main)
    assert [e["endpoint"] for e in ex.fault_log() if e["kind"] == "lost-response"] == ["POST /api/v3/order"]


# ------------------------------------------------------------------------------------ the fault's spec


def test_lost_response_spec_round_trip_and_errors(tmp_path: Any) -> None:
    faults = parse_faults("lost-response@3, lost-response@1:timeout=2.5, lost-response@2:503:count=2")
    assert faults == [
        Fault("lost-response", 3, mode="reset"),  # reset is the default
        Fault("lost-response", 1, seconds=2.5, mode="timeout"),
        Fault("lost-response", 2, count=2, mode="503"),
    ]
    assert [f.token() for f in faults] == [
        "lost-response@3:reset",
        "lost-response@1:timeout=2.5",
        "lost-response@2:503:count=2",
    ]
    assert parse_faults(",".join(f.token() for f in faults)) == faults
    for bad in (
        "lost-response",
        "lost-response@1:slow",
        "lost-response@1:reset:503",
        "lost-response@1:conn=2",
        "BTCUSDT:lost-response@1",
    ):
        with pytest.raises(ValueError, match="bad fault"):
            parse_faults(bad)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[[fault]]\nkind = "lost-response"\nat = 4\nmode = "timeout"\nseconds = 1\n'
        '[[fault]]\nkind = "lost-response"\nat = 5\nstatus = 503\n'
    )
    assert load_scenario(scenario) == [
        Fault("lost-response", 4, seconds=1.0, mode="timeout"),
        Fault("lost-response", 5, mode="503"),
    ]
    plan = FaultPlan(parse_faults("lost-response@2"), clock=lambda: 1.0)
    assert plan.on_order_placement("POST /api/v3/order") is None
    assert plan.on_order_placement("POST /fapi/v1/algoOrder") == Fault("lost-response", 2, mode="reset")
    assert plan.log == [
        {
            "kind": "lost-response",
            "symbol": None,
            "at": 2,
            "time": 1.0,
            "mode": "reset",
            "endpoint": "POST /fapi/v1/algoOrder",
        }
    ]
    assert is_order_placement("post", "/api/v3/orderList/otoco")
    assert not is_order_placement("POST", "/api/v3/order/test")
    assert not is_order_placement("GET", "/api/v3/order")
