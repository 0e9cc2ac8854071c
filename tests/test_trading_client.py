"""``tickbook.trading.client.RestClient`` over real loopback HTTP.

Two kinds of server:

* the local exchange (``tickbook.sim``), which enforces what Binance enforces: weights with
  429/418, signatures of all three key types, the timestamp window, its clock skew fault;
* a scripted server (``Stub``, below) for Binance's documented market-data examples (so
  decoding is checked against the wire as published; the local exchange's trade-derived
  answers are tested in ``test_sim_market_data.py``) and for transport failures the local
  exchange cannot produce on demand (timeouts, 5xx, order-count headers).

Expected values come from the spec (``shared/binance-spec.md`` §4 signing vectors, §5 weights
and limits, §10 retry rules), not from the code under test.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tickbook.budget import OrderBudget, OrderLimitExceeded, RequestBudget
from tickbook.decode import DepthSnapshotTyped, FuturesDepthSnapshotTyped
from tickbook.feed.endpoints import rest_base_url
from tickbook.feed.feed import DepthFeed
from tickbook.limits import Interval, OrderCount, RateLimit, RateLimitType
from tickbook.signing import Ed25519Key, HmacKey, RsaKey, SigningKey, sign_ws
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange
from tickbook.trading.client import RestClient, parse_recv_window
from tickbook.trading.clock import ServerClock
from tickbook.trading.errors import (
    AuthenticationError,
    FilterFailure,
    IpBanned,
    NetworkError,
    RateLimited,
    RequestError,
    ServerBusy,
    UnknownOutcome,
)
from tickbook.trading.journal import Journal

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]

API_KEY, SECRET = "tickbookTestKey01", "tickbookTestSecret01"
HMAC = HmacKey(API_KEY, SECRET)
SYMBOL = "BTCUSDT"
ACCOUNT = {"spot": "/api/v3/account", "usdm": "/fapi/v2/account"}

# binance-spec §4.2 vectors: secrets, payloads and signatures from the documentation.
SPOT_DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SPOT_DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
SPOT_DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
FULLWIDTH = "\uff11\uff12\uff13\uff14\uff15\uff16"  # the doc's non-ASCII symbol: fullwidth digits 1-6
SPOT_DOC_SIGNATURE_NON_ASCII = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
FUTURES_DOC_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
FUTURES_DOC_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
FUTURES_DOC_PAYLOAD = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
FUTURES_DOC_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
# §4.3 (WebSocket API): sorted params, raw values.
WS_DOC_PAYLOAD_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(main())


def generated(market: str) -> Callable[[], GeneratedMarket]:
    return lambda: GeneratedMarket([SYMBOL], market, seed=11, levels=60)


def fixed_clock(epoch_ms: int) -> ServerClock:
    """A clock that reads ``epoch_ms`` forever and counts as synced (offset 0)."""
    clock = ServerClock(wall_ms=lambda: float(epoch_ms), interval=None)
    clock.add_sample(float(epoch_ms), float(epoch_ms), float(epoch_ms))
    return clock


# ------------------------------------------------------------------------------------ the stub


class Hit:
    """One request the stub received, as it arrived on the wire."""

    def __init__(self, method: str, path: str, query: str, body: bytes, headers: Any, at: float) -> None:
        self.method = method
        self.path = path
        self.query = query  # raw, still percent-encoded
        self.body = body.decode()
        self.headers = headers
        self.at = at  # time.time() on arrival

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


Answer = tuple[int, Any, dict[str, str], float]  # status, JSON body (or bytes), headers, delay s
Script = Callable[[Hit], Answer]


def answer(
    status: int = 200, body: Any = None, headers: dict[str, str] | None = None, delay: float = 0.0
) -> Answer:
    return status, {} if body is None else body, headers or {}, delay


class Stub:
    """A scripted Binance stand-in on 127.0.0.1: ``routes[(method, path)]`` is a list of
    answers (the last one repeats) or a function of the ``Hit``. ``/time`` answers the wall
    clock unless scripted. Every request is kept in ``hits``."""

    def __init__(self, routes: dict[tuple[str, str], list[Answer] | Script] | None = None) -> None:
        self.routes = dict(routes or {})
        self.hits: list[Hit] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def hits_of(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        hit = Hit(
            request.method,
            request.path,
            request.rel_url.raw_query_string,
            await request.read(),
            request.headers,
            time.time(),
        )
        self.hits.append(hit)
        route = self.routes.get((request.method, request.path))
        if route is None and request.path.endswith("/time"):
            return web.json_response({"serverTime": time.time_ns() // 1_000_000})
        if route is None:
            return web.json_response({"code": -1099, "msg": "Not found"}, status=404)
        if callable(route):
            status, body, headers, delay = route(hit)
        else:
            status, body, headers, delay = route.pop(0) if len(route) > 1 else route[0]
        if delay:
            await asyncio.sleep(delay)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(status=status, body=data, headers=headers, content_type="application/json")

    async def __aenter__(self) -> Stub:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------------------------ configuration


def test_base_urls_per_market_and_environment() -> None:
    assert RestClient("spot").base_url == "https://api.binance.com"
    assert RestClient("spot", environment="testnet").base_url == "https://testnet.binance.vision"
    assert RestClient("spot", environment="demo").base_url == "https://demo-api.binance.com"
    assert RestClient("usdm").base_url == "https://fapi.binance.com"
    assert RestClient("usdm", environment="testnet").base_url == "https://demo-fapi.binance.com"
    assert RestClient("usdm", environment="demo").base_url == "https://demo-fapi.binance.com"
    assert RestClient("coinm").base_url == "https://dapi.binance.com"
    assert RestClient("coinm", environment="testnet").base_url == "https://testnet.binancefuture.com"
    assert RestClient("spot", base_url="http://127.0.0.1:8080/").base_url == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="no demo"):
        rest_base_url("coinm", "demo")
    with pytest.raises(ValueError, match="unknown environment"):
        RestClient("spot", environment="staging")
    with pytest.raises(ValueError, match="http"):
        RestClient("spot", base_url="ftp://example")


def test_recv_window_validation() -> None:
    assert parse_recv_window(5000) == "5000"
    assert parse_recv_window("6000.346") == "6000.346"  # microsecond precision, §4.4
    assert parse_recv_window(Decimal("6000.300")) == "6000.3"
    assert parse_recv_window(2500.5) == "2500.5"
    assert parse_recv_window(60000) == "60000"
    assert parse_recv_window(90000, "usdm") == "90000"  # futures states no maximum
    for bad in (0, -5, "6000.0001", 60000.001, "abc", "NaN", True):
        with pytest.raises(ValueError, match="recvWindow"):
            parse_recv_window(bad)
    with pytest.raises(ValueError, match="60000"):
        RestClient("spot", recv_window_ms=60001)
    with pytest.raises(ValueError, match="time_unit"):
        RestClient("spot", time_unit="NANOSECOND")


def test_shared_budgets_must_be_the_same_markets() -> None:
    with pytest.raises(ValueError, match="spot"):
        RestClient("usdm", budget=RequestBudget("spot"))
    with pytest.raises(ValueError, match="spot"):
        RestClient("usdm", order_budget=OrderBudget("spot"))
    with pytest.raises(ValueError, match="spot"):
        DepthFeed("usdm", [SYMBOL], budget=RequestBudget("spot"))
    shared = RequestBudget("usdm")
    client = RestClient("usdm", budget=shared)
    feed = DepthFeed("usdm", [SYMBOL], budget=client.budget)
    assert feed.budget is shared


def test_keys_from_the_environment_and_from_files(tmp_path: Path) -> None:
    env = {"TB_API_KEY": API_KEY, "TB_API_SECRET": SECRET}
    client = RestClient.from_env("spot", prefix="TB", environ=env)
    assert isinstance(client.key, HmacKey)
    assert client.key.api_key == API_KEY
    assert SECRET not in repr(client)
    assert SECRET not in repr(client.key)
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "ed25519.pem"
    path.write_bytes(pem)
    client = RestClient.from_key_file("usdm", API_KEY, path)
    assert isinstance(client.key, Ed25519Key)
    assert "PRIVATE" not in repr(client)


# ------------------------------------------------------------------------------------ signing


@pytest.mark.parametrize(
    ("market", "path", "params", "secret", "payload", "signature"),
    [
        (
            "spot",
            "/api/v3/order",
            {
                "symbol": "LTCBTC",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": 1,
                "price": "0.1",
            },
            SPOT_DOC_SECRET,
            SPOT_DOC_PAYLOAD,
            SPOT_DOC_SIGNATURE,
        ),
        (
            "spot",
            "/api/v3/order",
            {
                "symbol": FULLWIDTH,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": 1,
                "price": "0.1",
            },
            SPOT_DOC_SECRET,
            SPOT_DOC_PAYLOAD.replace("LTCBTC", quote(FULLWIDTH)),
            SPOT_DOC_SIGNATURE_NON_ASCII,
        ),
        (
            "usdm",
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": 1,
                "price": Decimal("9000"),
                "timeInForce": "GTC",
            },
            FUTURES_DOC_SECRET,
            FUTURES_DOC_PAYLOAD,
            FUTURES_DOC_SIGNATURE,
        ),
    ],
    ids=["spot", "spot-non-ascii", "usdm"],
)
def test_documented_signature_vectors_through_the_client(
    market: str, path: str, params: dict[str, object], secret: str, payload: str, signature: str
) -> None:
    """The documented payload, built by the client from plain parameters and its clock, is
    sent byte for byte in the form body with the documented signature as the last field."""
    timestamp = int(payload.rsplit("timestamp=", 1)[1])
    key = HmacKey(SPOT_DOC_KEY if market == "spot" else FUTURES_DOC_KEY, secret)

    async def main() -> Hit:
        async with Stub({("POST", path): [answer(200, {"orderId": 1})]}) as stub:
            async with RestClient(market, base_url=stub.url, key=key, clock=fixed_clock(timestamp)) as client:
                await client.request("POST", path, params, signed=True)
            return stub.hits_of(path)[0]

    hit = run(main)
    assert hit.query == ""
    assert hit.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert hit.body == f"{payload}&signature={signature}"
    assert hit.headers["X-MBX-APIKEY"] == key.api_key


def test_websocket_vector_with_a_key_loaded_like_the_clients() -> None:
    """§4.3: the WebSocket API signs sorted raw params; the key the client loads signs it."""
    key = RestClient.from_env(
        "spot", environ={"BINANCE_API_KEY": SPOT_DOC_KEY, "BINANCE_API_SECRET": SPOT_DOC_SECRET}
    ).key
    assert key is not None
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
    }
    assert sign_ws(key, params)["signature"] == WS_DOC_PAYLOAD_SIGNATURE


def test_get_and_delete_sign_the_query_with_recv_window_and_time_unit() -> None:
    key = HmacKey(API_KEY, SECRET)

    async def main() -> list[Hit]:
        async with Stub(
            {("GET", "/api/v3/openOrders"): [answer(200, [])], ("DELETE", "/api/v3/order"): [answer()]}
        ) as stub:
            async with RestClient(
                "spot",
                base_url=stub.url,
                key=key,
                clock=fixed_clock(1_700_000_000_000),
                recv_window_ms="6000.346",
                time_unit="microsecond",
            ) as client:
                await client.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True)
                await client.request(
                    "DELETE",
                    "/api/v3/order",
                    {"symbol": "BTCUSDT", "orderId": 7},
                    signed=True,
                    recv_window=3000,
                )
            return stub.hits

    get, delete = run(main)
    assert get.body == delete.body == ""
    head, _, sig = get.query.rpartition("&signature=")
    assert head == "symbol=BTCUSDT&recvWindow=6000.346&timestamp=1700000000000"
    assert sig == HMAC.sign(head)
    assert get.headers["X-MBX-TIME-UNIT"] == "MICROSECOND"
    assert delete.params["recvWindow"] == "3000"
    assert delete.query.endswith("&signature=" + HMAC.sign(delete.query.rpartition("&signature=")[0]))


def test_signed_requests_are_accepted_with_every_key_type(exchange: Start) -> None:
    rsa_key = RsaKey(
        "tickbookRsaKey01",
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    ed_key = Ed25519Key(
        "tickbookEdKey01",
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    keys: list[SigningKey] = [HMAC, rsa_key, ed_key]
    ex = exchange(
        [generated("spot"), generated("usdm")], speed=None, keys=[f"{API_KEY}:{SECRET}", rsa_key, ed_key]
    )

    async def main() -> None:
        for market in ("spot", "usdm"):
            for key in keys:
                async with RestClient(market, base_url=ex.rest_url, key=key) as client:
                    account = await client.request_json("GET", ACCOUNT[market], signed=True)
                    assert "balances" in account if market == "spot" else "assets" in account
                    assert client.clock.synced  # synced before the first signed request
        wrong = HmacKey(API_KEY, "not-the-secret")
        async with RestClient("spot", base_url=ex.rest_url, key=wrong) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.request("GET", ACCOUNT["spot"], signed=True)
            assert caught.value.code == -1022
            assert (caught.value.method, caught.value.endpoint) == ("GET", "/api/v3/account")
        async with RestClient("spot", base_url=ex.rest_url) as client:
            with pytest.raises(AuthenticationError, match="API key"):
                await client.request("GET", ACCOUNT["spot"], signed=True)

    run(main)


# ------------------------------------------------------------------------------------ time


def test_clock_skew_is_recovered_by_a_resync(exchange: Start, tmp_path: Path) -> None:
    """The exchange's clock runs 10 s ahead (skew fault). A client whose clock was synced
    before the step is refused with -1021, resyncs, signs again and succeeds, once."""
    ex = exchange(generated("spot"), speed=None, keys=[f"{API_KEY}:{SECRET}"], faults="skew:10000")
    journal = Journal(tmp_path / "journal.sqlite")

    async def main() -> None:
        clock = ServerClock(interval=None)
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC, journal=journal, clock=clock) as client:
            clock.sampler = client._sample_server_time
            now = time.time_ns() / 1e6
            clock.add_sample(now, now, now)  # "synced" at offset 0: the server has stepped since
            await client.request("GET", ACCOUNT["spot"], signed=True)
            assert clock.offset_ms == pytest.approx(10_000, abs=250)
            statuses = [(e.endpoint, e.status, e.error_code) for e in journal.entries()]
            assert statuses[0] == ("/api/v3/account", 400, -1021)
            assert statuses[-1] == ("/api/v3/account", 200, None)
            assert [s[0] for s in statuses[1:-1]] == ["/api/v3/time"] * clock.rounds
            # A fresh client syncs before its first signed request and never sees -1021.
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC, journal=journal) as client:
            before = len(journal.entries())
            await client.request("GET", ACCOUNT["spot"], signed=True)
            assert client.clock.running  # resyncs in the background while open
            assert all(e.error_code is None for e in journal.entries()[before:])
        assert not client.clock.running

    run(main)
    journal.close()


def test_timestamp_error_is_retried_only_once(tmp_path: Path) -> None:
    refused = answer(400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})

    async def main() -> None:
        async with (
            Stub({("GET", "/api/v3/account"): [refused]}) as stub,
            RestClient("spot", base_url=stub.url, key=HMAC) as client,
        ):
            with pytest.raises(AuthenticationError) as caught:
                await client.request("GET", "/api/v3/account", signed=True)
            assert caught.value.code == -1021
            assert len(stub.hits_of("/api/v3/account")) == 2  # once more, after the resync

    run(main)


# ------------------------------------------------------------------------------------ limits


class FastTime:
    """Wall and monotonic clocks running ``speed`` times faster than real time, shared by the
    exchange and the client's budget, so minute windows pass in seconds while both sides
    still agree on where each window starts and ends.

    Every real pause stretches by ``speed`` too: at 60x, a stall of the process of under a
    second (a full collection of the suite's heap, say) can hold requests charged early in
    one window until the next, where the exchange counts them on top of that window's own.
    The budget's boundary guard covers network latency, not that; so these tests run at 30x
    with the collector paused (``run_quietly``)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = time.monotonic()
        self.base_ms = time.time_ns() // 1_000_000

    def mono(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    def wall_ms(self) -> int:
        return self.base_ms + int((time.monotonic() - self.t0) * self.speed * 1000)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


def run_quietly(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """``run`` with the cyclic collector paused and the existing heap frozen out of it."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return run(main)
    finally:
        gc.enable()
        gc.unfreeze()


def test_a_burst_stays_under_the_weight_limit_and_takes_the_windows_it_needs(exchange: Start) -> None:
    fast = FastTime(speed=30.0)  # one 1-minute window per 2 real seconds
    ex = exchange(generated("spot"), speed=None, weight_limit=60, clock_ms=fast.wall_ms)
    budget = RequestBudget(
        "spot", clock=fast.mono, wall_ms=fast.wall_ms, sleep=fast.sleep, boundary_guard=10.0
    )

    async def main() -> tuple[float, dict[str, int]]:
        async with RestClient("spot", base_url=ex.rest_url, budget=budget) as client:
            await client.exchange_info()  # weight 20; its rateLimits say 60/minute
            assert [rl.limit for rl in budget.limits] == [60]
            started = fast.mono()
            await asyncio.gather(*(client.ping() for _ in range(300)))
            return fast.mono() - started, budget.used

    elapsed, _ = run_quietly(main)
    assert ex.violations()["rest"].get("request_weight", 0) == 0
    assert ex.violations()["rest"].get("ip_banned", 0) == 0
    # 0.9 x 60 = 54 per window: 34 pings fit next to exchangeInfo, then 4 full windows of 54,
    # the last 50 in a sixth: 5 rollovers, so more than 4 and at most 5 windows (+ slack).
    assert 4 * 60 - 1 < elapsed < 6.5 * 60, elapsed
    assert budget.throttled_429 == 0


def test_a_feed_and_a_client_sharing_one_budget_never_exceed_the_limit(exchange: Start) -> None:
    """A DepthFeed syncing many books and a RestClient's burst spend one RequestBudget: their
    sum is more than one window allows, yet the exchange counts no violation and every book
    syncs (§5.1: the weight limit is per IP, whoever sends)."""
    symbols = [f"S{i:02d}USDT" for i in range(16)]
    fast = FastTime(speed=30.0)  # one 1-minute window per 2 real seconds
    ex = exchange(
        lambda: GeneratedMarket(symbols, "spot", seed=5, levels=40),
        speed=None,
        weight_limit=120,
        clock_ms=fast.wall_ms,
    )
    budget = RequestBudget(
        "spot", clock=fast.mono, wall_ms=fast.wall_ms, sleep=fast.sleep, boundary_guard=10.0
    )

    async def main() -> float:
        async with RestClient("spot", base_url=ex.rest_url, budget=budget) as client:
            await client.exchange_info()  # 20; its rateLimits say 120/minute
            assert [rl.limit for rl in budget.limits] == [120]
            feed = DepthFeed(
                "spot",
                symbols,
                rest_url=ex.rest_url,
                stream_url=ex.ws_url,
                depth_limit=100,  # weight 5 per snapshot
                budget=budget,
            )
            started = fast.mono()
            async with feed:
                assert feed.budget is budget
                # the burst races the feed's exchangeInfo (20) and 16 snapshots (80)
                burst: list[Coroutine[Any, Any, object]] = [
                    client.depth(symbols[i % len(symbols)], limit=100) for i in range(12)
                ]
                burst += [client.ping() for _ in range(40)]
                answers = await asyncio.gather(*burst)
                assert all(a is None or isinstance(a, DepthSnapshotTyped) for a in answers)
                await feed.wait_synced(timeout=30.0)
                assert all(feed.book(s).synced for s in symbols)
            return fast.mono() - started

    elapsed = run_quietly(main)
    # 20 + 20 + 16 x 5 + 12 x 5 + 40 = 220 > 108 (0.9 x 120) a window: at least one rollover.
    assert elapsed > 60.0 - 10.0, elapsed
    violations = ex.violations()
    assert violations["rest"].get("request_weight", 0) == 0, violations
    assert violations["rest"].get("ip_banned", 0) == 0, violations
    assert budget.throttled_429 == 0


def test_429_pauses_every_request_until_retry_after(exchange: Start) -> None:
    ex = exchange(generated("spot"), speed=None, faults="http@3:429:retry=1")

    async def main() -> None:
        async with RestClient("spot", base_url=ex.rest_url) as client:
            await client.ping()
            await client.ping()
            with pytest.raises(RateLimited) as caught:
                await client.ping()
            assert caught.value.retry_after == 1.0
            assert caught.value.status == 429
            assert caught.value.code == -1003
            assert (caught.value.method, caught.value.endpoint) == ("GET", "/api/v3/ping")
            started = time.monotonic()
            await asyncio.gather(client.ping(), client.server_time())  # both wait, then go
            assert time.monotonic() - started >= 0.9
            assert client.budget.throttled_429 == 1

    run(main)


def test_418_refuses_every_request_without_sending_until_the_ban_ends(exchange: Start) -> None:
    ex = exchange(generated("spot"), speed=None, faults="http@2:418:retry=2")

    async def main() -> None:
        async with RestClient("spot", base_url=ex.rest_url) as client:
            await client.ping()
            with pytest.raises(IpBanned) as caught:
                await client.ping()
            assert caught.value.status == 418
            assert caught.value.until_ms is not None
            sent = client.requests
            started = time.monotonic()
            for call in (client.ping, client.server_time, client.exchange_info):
                with pytest.raises(IpBanned, match="not sent") as refused:
                    await call()
                assert refused.value.retry_after is not None
                assert 0 < refused.value.retry_after <= 2
                assert refused.value.until_ms is not None
            assert client.requests == sent  # nothing left the client
            assert time.monotonic() - started < 0.5  # at once, no waiting
            await asyncio.sleep(2.05)
            await client.ping()  # the ban is over

    run(main)


def test_order_counts_are_tracked_and_held_or_refused_at_the_limit() -> None:
    """ORDERS limits from exchangeInfo (3 per second, 5 per day, as the stand-in declares them):
    the 4th order waits for the next second, the 6th is refused without being sent."""
    placed: list[float] = []

    def place(hit: Hit) -> Answer:
        placed.append(hit.at)
        second = sum(1 for t in placed if int(t) == int(hit.at))
        headers = {"X-MBX-ORDER-COUNT-1S": str(second), "X-MBX-ORDER-COUNT-1D": str(len(placed))}
        return answer(
            200, {"symbol": "BTCUSDT", "orderId": len(placed), "clientOrderId": f"c{len(placed)}"}, headers
        )

    info = {
        "timezone": "UTC",
        "serverTime": 0,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 3},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 5},
        ],
        "exchangeFilters": [],
        "symbols": [],
    }
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}

    async def main() -> None:
        routes: dict[tuple[str, str], list[Answer] | Script] = {
            ("GET", "/api/v3/exchangeInfo"): [answer(200, info)],
            ("POST", "/api/v3/order"): place,
        }
        async with Stub(routes) as stub, RestClient("spot", base_url=stub.url, key=HMAC) as client:
            await client.exchange_info()
            assert [rl.label for rl in client.orders.limits] == ["1S", "1D"]
            await client.request("GET", "/api/v3/time")  # line up with the start of a second
            await asyncio.sleep(1 - time.time() % 1 + 0.02)
            for _ in range(4):
                await client.request("POST", "/api/v3/order", order, signed=True)
            assert client.order_counts == {"1S": 1, "1D": 4}
            assert int(placed[3]) > int(placed[0]) == int(placed[2])  # held into the next second
            assert client.orders.waits == 1
            await client.request("POST", "/api/v3/order", order, signed=True, client_order_id="c5")
            with pytest.raises(RateLimited, match="not sent") as caught:
                await client.request("POST", "/api/v3/order", order, signed=True, client_order_id="c6")
            assert caught.value.code == -1015
            assert caught.value.status is None
            assert caught.value.client_order_id == "c6"
            assert caught.value.retry_after is not None
            assert caught.value.retry_after > 60
            assert len(placed) == 5
            await client.request("GET", "/api/v3/time")  # other requests are not held

    run(main)


def test_an_exchange_order_limit_refusal_holds_later_orders() -> None:
    refusal = answer(
        429,
        {"code": -1015, "msg": "Too many new orders; current limit is 50 orders per 10 SECOND."},
        {"Retry-After": "1"},
    )

    async def main() -> None:
        route: list[Answer] = [refusal, answer(200, {"orderId": 2})]
        async with (
            Stub({("POST", "/api/v3/order"): route}) as stub,
            RestClient("spot", base_url=stub.url, key=HMAC) as client,
        ):
            with pytest.raises(RateLimited) as caught:
                await client.request("POST", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True)
            assert caught.value.code == -1015
            assert caught.value.retry_after == 1.0
            started = time.monotonic()
            await client.request("POST", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True)
            assert time.monotonic() - started >= 0.9

    run(main)


class SteppedTime:
    """Wall and monotonic clocks that move only when something sleeps (by the slept amount)."""

    def __init__(self, wall_ms: int) -> None:
        self.now_ms = wall_ms
        self.slept: list[float] = []

    def wall(self) -> int:
        return self.now_ms

    def mono(self) -> float:
        return self.now_ms / 1000

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_ms += round(seconds * 1000)


def order_limits(*spec: tuple[str, int, int]) -> list[RateLimit]:
    return [RateLimit(RateLimitType.ORDERS, Interval(i), n, limit) for i, n, limit in spec]


def test_order_budget_follows_the_reported_counts() -> None:
    """The headers are the exchange's count: they replace the mirror, downwards too (spot fills
    give budget back, §5.1); a request without a report stays counted; requests in flight
    count until they are settled."""
    t = SteppedTime(1_750_000_000_000)  # on a 10-second boundary
    budget = OrderBudget(
        "spot", order_limits(("SECOND", 10, 5), ("DAY", 1, 100)), wall_ms=t.wall, clock=t.mono, sleep=t.sleep
    )

    async def main() -> None:
        await budget.acquire(1)
        await budget.acquire(1)
        assert budget.counts == {"10S": 2, "1D": 2}  # both in flight
        budget.settle(1, {"X-MBX-ORDER-COUNT-10S": "1", "X-MBX-ORDER-COUNT-1D": "41"})
        assert budget.counts == {"10S": 2, "1D": 42}  # the report, plus the one in flight
        budget.settle(1, None)  # its answer was lost: it may have placed an order
        assert budget.counts == {"10S": 2, "1D": 42}
        t.now_ms += 3000
        budget.observe({"x-mbx-order-count-10s": "0", "x-mbx-order-count-1d": "30"})  # fills gave back
        assert budget.counts == {"10S": 0, "1D": 30}
        await budget.acquire(3)
        budget.release(3)  # never sent (connection refused): nothing counted
        assert budget.counts == {"10S": 0, "1D": 30}

    run(main)


def test_order_budget_holds_for_a_short_window_and_refuses_a_long_one() -> None:
    t = SteppedTime(1_749_999_964_000)  # 4 s into a minute, and into a 10-second window
    budget = OrderBudget(
        "usdm",
        order_limits(("SECOND", 10, 10), ("MINUTE", 1, 12)),
        wall_ms=t.wall,
        clock=t.mono,
        sleep=t.sleep,
    )

    async def main() -> None:
        batch = OrderCount(5, 1)  # a futures batch: 5 on 10 s, 1 on the minute (§5.3)
        for _ in range(2):
            await budget.acquire(batch)
            budget.settle(batch)  # answered without headers: counted as sent
        assert budget.counts == {"10S": 10, "1M": 2}
        await budget.acquire(OrderCount(1, 1))  # held until the 10-second window resets
        assert t.slept == [pytest.approx(6.001)]
        assert budget.counts == {"10S": 1, "1M": 3}
        budget.settle(OrderCount(1, 1), {"X-MBX-ORDER-COUNT-10S": "1", "X-MBX-ORDER-COUNT-1M": "3"})
        for _ in range(9):
            await budget.acquire(OrderCount(1, 1))
            budget.settle(OrderCount(1, 1))
        assert budget.counts == {"10S": 10, "1M": 12}
        with pytest.raises(OrderLimitExceeded) as caught:
            await budget.acquire(OrderCount(1, 1))  # the minute is full for another 50 s
        assert caught.value.limit.label == "1M"
        assert caught.value.retry_after == pytest.approx(50.0, abs=0.01)
        assert budget.refused == 1
        with pytest.raises(ValueError, match="never fit"):
            await budget.acquire(OrderCount(11, 1))

    run(main)


def test_order_budget_takes_exchange_info_limits_and_ignores_other_requests() -> None:
    budget = OrderBudget("spot")
    assert [rl.label for rl in budget.limits] == ["10S", "1D"]  # the documented defaults
    budget.configure(
        [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        ]
    )
    assert [(rl.label, rl.limit) for rl in budget.limits] == [("10S", 100), ("1D", 200000)]
    run(lambda: budget.acquire(OrderCount(0, 0)))  # nothing to count: never waits
    assert budget.counts == {"10S": 0, "1D": 0}


# ------------------------------------------------------------------------------------ failures


def test_a_dead_server_is_a_network_error_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def main() -> None:
        async with RestClient("spot", base_url=url, max_attempts=3, backoff=0.05) as client:
            started = time.monotonic()
            with pytest.raises(NetworkError) as caught:
                await client.request(
                    "POST", "/api/v3/order", {"symbol": "BTCUSDT"}, client_order_id="x1", weight=1
                )
            assert time.monotonic() - started < 2.0
            assert client.requests == 3  # nothing was sent: safe to try again, even a POST
            error = caught.value
            assert (error.method, error.endpoint, error.client_order_id) == ("POST", "/api/v3/order", "x1")
            assert error.status is None

    run(main)


def test_get_retries_unknown_outcomes_and_post_never_does() -> None:
    unknown = answer(503, {"code": -1000, "msg": "An unknown error occurred while processing the request."})

    async def main() -> None:
        routes: dict[tuple[str, str], list[Answer] | Script] = {
            ("GET", "/api/v3/openOrders"): [unknown, unknown, answer(200, [])],
            ("POST", "/api/v3/order"): [unknown, answer(200, {"orderId": 1})],
        }
        async with (
            Stub(routes) as stub,
            RestClient("spot", base_url=stub.url, key=HMAC, backoff=0.01) as client,
        ):
            assert await client.request_json("GET", "/api/v3/openOrders", signed=True) == []
            assert len(stub.hits_of("/api/v3/openOrders")) == 3
            with pytest.raises(UnknownOutcome) as caught:
                await client.request(
                    "POST", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True, client_order_id="o1"
                )
            assert len(stub.hits_of("/api/v3/order")) == 1  # never sent twice
            assert caught.value.client_order_id == "o1"
            assert caught.value.status == 503

    run(main)


def test_definite_failures_are_retried_for_any_method() -> None:
    busy = answer(
        503,
        {
            "code": -1008,
            "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
        },
    )

    async def main() -> None:
        route: list[Answer] = [busy, busy, answer(200, {"orderId": 1})]
        async with Stub({("POST", "/fapi/v1/order"): route}) as stub:
            async with RestClient("usdm", base_url=stub.url, key=HMAC, backoff=0.01) as client:
                await client.request("POST", "/fapi/v1/order", {"symbol": "BTCUSDT"}, signed=True)
                assert len(stub.hits_of("/fapi/v1/order")) == 3
                assert client.retries == 2
            route[:] = [busy]
            async with RestClient(
                "usdm", base_url=stub.url, key=HMAC, backoff=0.01, max_attempts=2
            ) as client:
                with pytest.raises(ServerBusy):
                    await client.request("POST", "/fapi/v1/order", {"symbol": "BTCUSDT"}, signed=True)

    run(main)


def test_a_timeout_after_sending_is_an_unknown_outcome() -> None:
    slow = answer(200, {}, delay=1.0)

    async def main() -> None:
        routes: dict[tuple[str, str], list[Answer] | Script] = {
            ("POST", "/api/v3/order"): [slow],
            ("GET", "/api/v3/order"): [slow],
        }
        async with (
            Stub(routes) as stub,
            RestClient("spot", base_url=stub.url, key=HMAC, timeout=0.2, backoff=0.01) as client,
        ):
            with pytest.raises(UnknownOutcome, match="after sending"):
                await client.request("POST", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True)
            assert len(stub.hits_of("/api/v3/order")) == 1
            with pytest.raises(UnknownOutcome):
                await client.request("GET", "/api/v3/order", {"symbol": "BTCUSDT"}, signed=True)
            assert len([h for h in stub.hits_of("/api/v3/order") if h.method == "GET"]) == 3

    run(main)


def test_every_attempt_is_journaled_with_secrets_redacted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    refused = answer(400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"})

    async def main() -> None:
        routes: dict[tuple[str, str], list[Answer] | Script] = {
            ("POST", "/api/v3/order"): [refused],
            ("GET", "/api/v3/account"): [answer(200, {"balances": []}, {"X-MBX-USED-WEIGHT-1M": "21"})],
        }
        async with (
            Stub(routes) as stub,
            RestClient("spot", base_url=stub.url, key=HMAC, journal=journal) as client,
        ):
            await client.request("GET", "/api/v3/account", signed=True)
            with pytest.raises(FilterFailure):
                await client.request(
                    "POST",
                    "/api/v3/order",
                    {"symbol": "BTCUSDT", "price": "1"},
                    signed=True,
                    client_order_id="j1",
                )

    run(main)
    entries = journal.entries()
    by_endpoint = {e.endpoint: e for e in entries}
    account, order = by_endpoint["/api/v3/account"], by_endpoint["/api/v3/order"]
    assert (account.status, account.weight_used, account.error_code) == (200, 21, None)
    assert "signature=REDACTED" in account.params
    assert "timestamp=" in account.params
    assert (order.status, order.error_code, order.client_order_id) == (400, -1013, "j1")
    assert order.error_msg == "Filter failure: PRICE_FILTER"
    assert "symbol=BTCUSDT&price=1" in order.params
    assert "signature=REDACTED" in order.params
    assert all(e.latency_ms > 0 for e in entries)
    assert journal.entries(errors_only=True) == [order]
    journal.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in raw
    assert HMAC.sign(b"x")[:16].encode() not in raw


def test_journal_records_transport_failures(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    url = f"http://127.0.0.1:{free_port()}"

    async def main() -> None:
        async with RestClient("spot", base_url=url, journal=journal, max_attempts=2, backoff=0.01) as client:
            with pytest.raises(NetworkError):
                await client.ping()

    run(main)
    entries = journal.entries()
    assert len(entries) == 2
    assert all(e.status is None and e.error_msg and "not sent" in e.error_msg for e in entries)
    journal.close()


# ------------------------------------------------------------------------------------ market data


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_market_data_from_the_local_exchange(exchange: Start, market: str) -> None:
    ex = exchange(generated(market), speed=None, weight_limit=1000)
    time.sleep(0.3)  # let trades happen

    async def main() -> None:
        async with RestClient(market, base_url=ex.rest_url) as client:
            await client.ping()
            server = await client.server_time()
            assert abs(server.server_time - time.time() * 1000) < 5000
            rules = await client.exchange_info()
            assert client.rules is rules
            assert SYMBOL in rules
            assert rules[SYMBOL].tick_size > 0
            assert [rl.limit for rl in client.budget.limits] == [1000]  # exchangeInfo's value

            ex.pause()
            ex.wait_paused()
            for _ in range(50):  # a batch in progress may still land: take a quiet moment
                truth = ex.truth(SYMBOL, 5)
                book = await client.depth(SYMBOL, limit=5 if market == "usdm" else 20)
                ticker = await client.book_ticker(SYMBOL)
                if ex.truth(SYMBOL, 5)["lastUpdateId"] == truth["lastUpdateId"]:
                    break
                await asyncio.sleep(0.02)
            assert isinstance(book, FuturesDepthSnapshotTyped if market == "usdm" else DepthSnapshotTyped)
            # (futures snapshot IDs may lie between the stream's non-contiguous event IDs)
            assert book.lastUpdateId >= truth["lastUpdateId"]
            assert (book.lastUpdateId == truth["lastUpdateId"]) or market == "usdm"
            assert [[Decimal(p), Decimal(q)] for p, q in book.bids[:5]] == [
                [Decimal(p), Decimal(q)] for p, q in truth["bids"]
            ]
            assert ticker.symbol == SYMBOL
            assert ticker.bid_price == Decimal(truth["bids"][0][0])
            assert ticker.ask_price == Decimal(truth["asks"][0][0])
            assert isinstance(ticker.bid_qty, Decimal)
            assert (ticker.last_update_id is not None) == (market == "usdm")
            ex.resume()

            trades = await client.trades(SYMBOL, limit=10)
            assert trades
            assert len(trades) <= 10
            for trade in trades:
                assert isinstance(trade.price, Decimal)
                assert trade.price > 0
                assert trade.quote_qty == pytest.approx(trade.price * trade.qty, rel=Decimal("1e-6"))

    run(main)


def test_coinm_trades_from_the_local_exchange(exchange: Start) -> None:
    """COIN-M trades carry ``baseQty`` (the value in the base asset: qty contracts of
    ``contractSize`` USD at ``price``) where USD-M carries ``quoteQty``."""
    symbol = "BTCUSD_PERP"
    ex = exchange(lambda: GeneratedMarket([symbol], "coinm", seed=11, levels=60), speed=None)
    time.sleep(0.3)  # let trades happen

    async def main() -> None:
        async with RestClient("coinm", base_url=ex.rest_url) as client:
            info = await client.request_json("GET", "/dapi/v1/exchangeInfo")
            (entry,) = [s for s in info["symbols"] if s["symbol"] == symbol]
            contract_size = Decimal(str(entry["contractSize"]))
            trades = await client.trades(symbol, limit=20)
            assert 0 < len(trades) <= 20
            assert client.budget.used["1M"] >= 1 + 5  # exchangeInfo 1 + trades 5
            for trade in trades:
                assert isinstance(trade.qty, Decimal)
                assert trade.qty == trade.qty.to_integral_value()  # whole contracts
                assert trade.quote_qty is None
                assert trade.base_qty is not None
                expected = trade.qty * contract_size / trade.price
                assert abs(trade.base_qty - expected) <= Decimal("1e-8")
            assert [t.id for t in trades] == sorted(t.id for t in trades)

    run(main)


SPOT_KLINE = [
    1499040000000,
    "0.01634790",
    "0.80000000",
    "0.01575800",
    "0.01577100",
    "148976.11427815",
    1499644799999,
    "2434.19055334",
    308,
    "1756.87402397",
    "28.46694368",
    "0",
]
SPOT_TICKER_24H = {
    "symbol": "BNBBTC",
    "priceChange": "-94.99999800",
    "priceChangePercent": "-95.960",
    "weightedAvgPrice": "0.29628482",
    "prevClosePrice": "0.10002000",
    "lastPrice": "4.00000200",
    "lastQty": "200.00000000",
    "bidPrice": "4.00000000",
    "bidQty": "100.00000000",
    "askPrice": "4.00000200",
    "askQty": "100.00000000",
    "openPrice": "99.00000000",
    "highPrice": "100.00000000",
    "lowPrice": "0.10000000",
    "volume": "8913.30000000",
    "quoteVolume": "15.30000000",
    "openTime": 1499783499040,
    "closeTime": 1499869899040,
    "firstId": 28385,
    "lastId": 28460,
    "count": 76,
}
FUTURES_TICKER_24H = {k: v for k, v in SPOT_TICKER_24H.items() if not k.startswith(("bid", "ask", "prev"))}
AGG_TRADE = {
    "a": 26129,
    "p": "0.01633102",
    "q": "4.70443515",
    "f": 27781,
    "l": 27781,
    "T": 1498793709153,
    "m": True,
}
HISTORICAL = {
    "id": 28457,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "time": 1499865549590,
    "isBuyerMaker": True,
}


@pytest.fixture
def documented() -> dict[tuple[str, str], list[Answer] | Script]:
    """The documentation's example answers, on both markets' paths."""
    return {
        ("GET", "/api/v3/klines"): [answer(200, [SPOT_KLINE])],
        ("GET", "/fapi/v1/klines"): [answer(200, [SPOT_KLINE])],
        ("GET", "/api/v3/aggTrades"): [answer(200, [{**AGG_TRADE, "M": True}])],
        ("GET", "/fapi/v1/aggTrades"): [answer(200, [AGG_TRADE])],
        ("GET", "/api/v3/avgPrice"): [
            answer(200, {"mins": 5, "price": "9.35751834", "closeTime": 1694061154503})
        ],
        ("GET", "/api/v3/ticker/24hr"): lambda hit: answer(
            200,
            SPOT_TICKER_24H
            if "symbol" in hit.params
            else [SPOT_TICKER_24H, {**SPOT_TICKER_24H, "symbol": "LTCBTC"}],
        ),
        ("GET", "/fapi/v1/ticker/24hr"): [answer(200, FUTURES_TICKER_24H)],
        ("GET", "/api/v3/ticker/price"): lambda hit: answer(
            200,
            {"symbol": "LTCBTC", "price": "4.00000200"}
            if "symbol" in hit.params
            else [{"symbol": "LTCBTC", "price": "4.00000200"}],
        ),
        ("GET", "/fapi/v2/ticker/price"): [
            answer(200, {"symbol": "BTCUSDT", "price": "6000.01", "time": 1589437530011})
        ],
        ("GET", "/api/v3/historicalTrades"): [answer(200, [{**HISTORICAL, "isBestMatch": True}])],
        ("GET", "/fapi/v1/historicalTrades"): [answer(200, [{**HISTORICAL, "quoteQty": "48.00"}])],
    }


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_market_data_decodes_the_documented_answers_exactly(
    market: str, documented: dict[tuple[str, str], list[Answer] | Script]
) -> None:
    futures = market == "usdm"

    async def main() -> Stub:
        async with Stub(documented) as stub:
            async with RestClient(market, base_url=stub.url, key=HMAC) as client:
                (kline,) = await client.klines("btcusdt", "1d", start_time=1499040000000, limit=1)
                assert kline.open_time == 1499040000000
                assert kline.close_time == 1499644799999
                assert (kline.open, kline.high, kline.low, kline.close) == (
                    Decimal("0.01634790"),
                    Decimal("0.80000000"),
                    Decimal("0.01575800"),
                    Decimal("0.01577100"),
                )
                assert kline.volume == Decimal("148976.11427815")
                assert kline.trades == 308
                assert kline.taker_buy_quote_volume == Decimal("28.46694368")

                (agg,) = await client.agg_trades("BTCUSDT", from_id=26129, limit=1)
                assert (agg.agg_trade_id, agg.price, agg.qty) == (
                    26129,
                    Decimal("0.01633102"),
                    Decimal("4.70443515"),
                )
                assert agg.is_buyer_maker is True
                assert agg.is_best_match is (None if futures else True)

                ticker = await client.ticker_24h("BTCUSDT")
                assert ticker.price_change_percent == Decimal("-95.960")
                assert ticker.last_price == Decimal("4.00000200")
                assert ticker.count == 76
                assert ticker.bid_price == (None if futures else Decimal("4.00000000"))

                price = await client.ticker_price("BTCUSDT")
                assert price.price == (Decimal("6000.01") if futures else Decimal("4.00000200"))

                (old,) = await client.historical_trades("BTCUSDT", limit=1, from_id=28457)
                assert (old.id, old.price, old.qty) == (28457, Decimal("4.00000100"), Decimal("12.00000000"))

                if futures:
                    with pytest.raises(RequestError, match="spot only"):
                        await client.avg_price("BTCUSDT")
                    with pytest.raises(RequestError, match="symbols list"):
                        await client.ticker_24h(symbols=["BTCUSDT"])
                else:
                    avg = await client.avg_price("BTCUSDT")
                    assert (avg.mins, avg.price, avg.close_time) == (5, Decimal("9.35751834"), 1694061154503)
                    many = await client.ticker_24h(symbols=["BNBBTC", "LTCBTC"])
                    assert [t.symbol for t in many] == ["BNBBTC", "LTCBTC"]
                    assert [p.symbol for p in await client.ticker_price()] == ["LTCBTC"]
            return stub

    stub = run(main)
    prefix = "/fapi/v1" if futures else "/api/v3"
    (klines,) = stub.hits_of(f"{prefix}/klines")
    assert klines.params == {
        "symbol": "BTCUSDT",
        "interval": "1d",
        "startTime": "1499040000000",
        "limit": "1",
    }
    (historical,) = stub.hits_of(f"{prefix}/historicalTrades")
    # futures historicalTrades is MARKET_DATA: the key header, never a signature (§4.1)
    assert ("X-MBX-APIKEY" in historical.headers) == futures
    assert "signature" not in historical.params
    assert "timestamp" not in historical.params
    assert all("X-MBX-APIKEY" not in h.headers for h in stub.hits if not h.path.endswith("historicalTrades"))
    if not futures:
        (many,) = [h for h in stub.hits_of("/api/v3/ticker/24hr") if "symbols" in h.params]
        assert many.query == "symbols=" + quote('["BNBBTC","LTCBTC"]', safe="")


def test_a_feed_spends_the_clients_budget(exchange: Start) -> None:
    ex = exchange(generated("spot"), speed=None)

    async def main() -> None:
        async with RestClient("spot", base_url=ex.rest_url) as client:
            await client.ping()
            feed = DepthFeed(
                "spot", [SYMBOL], rest_url=ex.rest_url, stream_url=ex.ws_url, budget=client.budget
            )
            async with feed:
                for _ in range(500):
                    if feed.book(SYMBOL).synced:
                        break
                    await asyncio.sleep(0.01)
                assert feed.book(SYMBOL).synced
            # ping 1 + exchangeInfo 20 + a 5000-level snapshot 250, all on one count
            assert client.budget.used["1M"] >= 1 + 20 + 250

    run(main)


def test_closing_the_client_closes_its_session_but_not_a_given_one() -> None:
    async def main() -> None:
        async with Stub() as stub:
            client = RestClient("spot", base_url=stub.url)
            await client.request("GET", "/api/v3/time")
            session = client.session
            await client.close()
            assert session.closed
            with pytest.raises(RuntimeError, match="closed"):
                await client.request("GET", "/api/v3/time")
            async with aiohttp.ClientSession() as own:
                async with RestClient("spot", base_url=stub.url, session=own) as client:
                    await client.request("GET", "/api/v3/time")
                assert not own.closed

    run(main)


def test_other_requests_on_the_clients_session_work(exchange: Start) -> None:
    """``client.session`` is public: a WebSocket or a plain request of the caller's on it
    passes through the client's send-tracing hook untouched, and a timeout shorter than the
    WebSocket's life does not cut it."""
    ex = exchange(generated("spot"), speed=1.0)

    async def main() -> None:
        async with RestClient("spot", base_url=ex.rest_url, timeout=0.5) as client:
            session = client.session
            async with session.ws_connect(f"{ex.ws_url}/ws/btcusdt@depth@100ms") as ws:
                started = time.monotonic()
                frames = []
                while time.monotonic() - started < 1.2:  # longer than the client's timeout
                    message = await ws.receive(timeout=1.0)
                    assert message.type is aiohttp.WSMsgType.TEXT
                    frames.append(json.loads(message.data))
                assert not ws.closed
            assert len(frames) >= 5
            assert all(frame["s"] == SYMBOL for frame in frames)
            async with session.get(f"{ex.rest_url}/api/v3/time") as response:
                assert response.status == 200
                assert abs((await response.json())["serverTime"] - time.time() * 1000) < 5000
            # a caller's own trace context is theirs: not marked, not required
            mine = {"tag": "caller"}
            async with session.get(f"{ex.rest_url}/api/v3/ping", trace_request_ctx=mine) as response:
                assert response.status == 200
            assert mine == {"tag": "caller"}
            # and the client's own requests still go through the same session
            await client.ping()
            assert client.session is session

    run(main)
