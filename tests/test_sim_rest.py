"""The local exchange's REST API (tickbook.sim.rest) over real loopback HTTP.

Each test starts an exchange in a background thread (``tickbook.sim.pytest_plugin``) and talks
to it with plain ``urllib``, as any client would. Expected values come from the spec
(``shared/binance-spec.md`` §1.3, §2.2, §4, §5, §10), not from the code under test: weights,
codes, messages and the documented signature vectors are written out here.

The server clock is injected (``clock_ms``), so rate-limit windows never roll over in the
middle of a test and the documented signature vectors (timestamps from 2017 and 2020) verify.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import tickbook
from tickbook.signing import Ed25519Key, HmacKey, RsaKey, SigningKey, sign_rest
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange, run_exchange

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]

NOW = 1_750_000_000_000  # a fixed server time for tests that count weight
SYMBOL = {"spot": "BTCUSDT", "usdm": "BTCUSDT", "coinm": "BTCUSD_PERP"}
PREFIX = {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}
ACCOUNT = {"spot": "/api/v3/account", "usdm": "/fapi/v2/account", "coinm": "/dapi/v1/account"}

# binance-spec §4.2 vectors.
SPOT_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
SPOT_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
FULLWIDTH = "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"  # fullwidth digits 1-6, encoded
SPOT_QUERY_NON_ASCII = SPOT_QUERY.replace("LTCBTC", FULLWIDTH)
SPOT_SIGNATURE_NON_ASCII = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
FUTURES_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
FUTURES_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
FUTURES_QUERY = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
FUTURES_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"

MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


class Reply:
    """One HTTP answer: status, headers (case-insensitive lookups) and the JSON body."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = body
        self.json: Any = json.loads(body) if body else None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    @property
    def weight(self) -> int:
        return int(self.header("X-MBX-USED-WEIGHT-1M") or -1)


def get(base: str, path: str, headers: dict[str, str] | None = None) -> Reply:
    request = urllib.request.Request(base + path, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as err:
        with err:
            return Reply(err.code, err.headers, err.read())


def generated(market: str, *symbols: str) -> Callable[[], GeneratedMarket]:
    names = symbols or (SYMBOL[market],)
    return lambda: GeneratedMarket(list(names), market, seed=7, levels=300)


def fixed(ms: int) -> Callable[[], int]:
    return lambda: ms


# ------------------------------------------------------------------------------------ market data


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_public_endpoints_shapes_weights_and_headers(exchange: Start, market: str) -> None:
    ex = exchange(generated(market), speed=20.0, clock_ms=fixed(NOW))
    base, p, sym = ex.rest_url, PREFIX[market], SYMBOL[market]
    futures = market != "spot"
    used = 0

    def charged(reply: Reply, cost: int) -> None:
        nonlocal used
        used += cost
        assert reply.weight == used, (reply.status, reply.json)
        legacy = reply.header("X-MBX-USED-WEIGHT")
        assert legacy == (None if futures else str(used))  # spot also sends the interval-less header

    r = get(base, f"{p}/ping")
    assert (r.status, r.json) == (200, {})
    charged(r, 1)
    assert (r.header("Content-Type") or "").startswith("application/json")
    r = get(base, f"{p}/time")
    assert r.json == {"serverTime": NOW}
    charged(r, 1)

    r = get(base, f"{p}/exchangeInfo")
    assert r.status == 200
    assert sym in [s["symbol"] for s in r.json["symbols"]]
    limits = {(x["rateLimitType"], x["interval"], x["intervalNum"]): x["limit"] for x in r.json["rateLimits"]}
    assert limits[("REQUEST_WEIGHT", "MINUTE", 1)] == (2400 if futures else 6000)
    charged(r, 1 if futures else 20)

    time.sleep(0.3)  # let a few events (and trades) through
    ex.pause()
    levels = ex.truth(sym, 1)["bidLevels"]
    r = get(base, f"{p}/depth?symbol={sym}")
    assert r.status == 200
    assert set(r.json) == (
        {"lastUpdateId", "E", "T", "bids", "asks"} if futures else {"lastUpdateId", "bids", "asks"}
    )
    assert len(r.json["bids"]) == min(levels, 500 if futures else 100)  # the default limits
    bid_prices = [float(px) for px, _ in r.json["bids"]]
    assert bid_prices == sorted(bid_prices, reverse=True)
    assert float(r.json["bids"][0][0]) < float(r.json["asks"][0][0])
    charged(r, 10 if futures else 5)

    r = get(base, f"{p}/depth?symbol={sym}&limit=1000")
    assert r.status == 200
    charged(r, 20 if futures else 50)

    r = get(base, f"{p}/ticker/bookTicker?symbol={sym}")
    assert r.status == 200
    ticker = r.json[0] if market == "coinm" else r.json  # COIN-M always answers a list
    keys = {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    if futures:
        keys |= {"lastUpdateId", "time"} | ({"pair"} if market == "coinm" else set())
    assert set(ticker) == keys
    assert ticker["symbol"] == sym
    assert float(ticker["bidPrice"]) < float(ticker["askPrice"])
    if market == "spot":
        assert len(ticker["bidPrice"].split(".")[1]) == 8  # spot writes 8 decimals
    charged(r, 2)
    r = get(base, f"{p}/ticker/bookTicker")
    assert [t["symbol"] for t in r.json] == [sym]
    charged(r, 5 if futures else 4)

    r = get(base, f"{p}/trades?symbol={sym}&limit=3")
    assert r.status == 200
    assert 1 <= len(r.json) <= 3
    trade_keys = {"id", "price", "qty", "time", "isBuyerMaker"}
    trade_keys |= {"baseQty"} if market == "coinm" else {"quoteQty"}
    trade_keys |= set() if futures else {"isBestMatch"}
    assert set(r.json[0]) == trade_keys
    charged(r, 5 if futures else 25)


@pytest.mark.parametrize(
    ("market", "query", "status", "code", "msg"),
    [
        ("spot", "symbol=NOPE", 400, -1121, "Invalid symbol."),
        ("spot", "", 400, -1102, MANDATORY.format("symbol")),
        ("spot", "symbol=btcusdt", 400, -1100, None),  # spot symbols are upper case
        ("spot", "symbol=BTCUSDT&limit=abc", 400, -1100, None),
        ("spot", "symbol=BTCUSDT&limit=0", 400, -1130, None),
        ("spot", "symbol=BTCUSDT&symbolStatus=HALT", 400, -1220, None),
        ("spot", "symbol=BTCUSDT&symbolStatus=NOPE", 400, -1122, None),
        ("spot", "symbol=BTCUSDT&symbol=BTCUSDT", 400, -1101, None),
        ("usdm", "symbol=NOPE", 400, -1121, "Invalid symbol."),
        ("usdm", "symbol=BTCUSDT&limit=7", 400, -4021, "Invalid depth limit."),
        ("usdm", "symbol=BTCUSDT&limit=5000", 400, -4021, "Invalid depth limit."),
        ("coinm", "symbol=BTCUSD_PERP&limit=200", 400, -4021, "Invalid depth limit."),
    ],
)
def test_depth_errors(
    exchange: Start, market: str, query: str, status: int, code: int, msg: str | None
) -> None:
    ex = exchange(generated(market), hold=True)
    r = get(ex.rest_url, f"{PREFIX[market]}/depth?{query}")
    assert r.status == status
    assert r.json["code"] == code
    assert set(r.json) == {"code", "msg"}
    if msg is not None:
        assert r.json["msg"] == msg
    assert r.weight > 0  # failed requests are charged too


def test_spot_depth_limits_clamp_and_weigh(exchange: Start) -> None:
    ex = exchange(generated("spot"), hold=True, clock_ms=fixed(NOW))
    expected = [("5", 5, 5), ("100", 100, 5), ("101", 101, 25), ("500", 300, 25), ("5000", 300, 250)]
    used = 0
    for limit, levels, weight in [*expected, ("6000", 300, 250)]:  # above 5000 is served as 5000
        r = get(ex.rest_url, f"/api/v3/depth?symbol=BTCUSDT&limit={limit}")
        used += weight
        assert r.status == 200
        assert (len(r.json["bids"]), r.weight) == (levels, used), limit


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_depth_is_the_truth_at_the_moment(exchange: Start, market: str) -> None:
    """A snapshot is the true book when it is taken: same levels, same ID, same checksum."""
    ex = exchange(generated(market), speed=None)
    time.sleep(0.1)
    ex.pause()
    sym = SYMBOL[market]
    r = get(ex.rest_url, f"{PREFIX[market]}/depth?symbol={sym}&limit=20")
    truth = get(ex.rest_url, f"/sim/truth?symbol={sym}&limit=20").json
    assert truth == ex.truth(sym, 20)
    book = tickbook.OrderBook(sym, market)
    book.apply_snapshot(r.json["lastUpdateId"], r.json["bids"], r.json["asks"], limit=20)
    assert [list(x) for x in book.bids_str(20)] == truth["bids"]
    assert [list(x) for x in book.asks_str(20)] == truth["asks"]
    assert book.checksum(20) == truth["checksum"]
    if market == "spot":
        assert r.json["lastUpdateId"] == truth["lastUpdateId"]
    else:  # futures: the next event's U (docs/sim.md): at or above the truth's u
        assert r.json["lastUpdateId"] >= truth["lastUpdateId"]
    assert truth["lastUpdateId"] > 0
    assert truth["bidLevels"] >= 20


def test_exchange_info_symbol_filter_and_shrunk_limit(exchange: Start) -> None:
    ex = exchange(generated("spot", "BTCUSDT", "ETHUSDT"), hold=True, weight_limit=500)
    r = get(ex.rest_url, "/api/v3/exchangeInfo?symbol=ETHUSDT")
    assert [s["symbol"] for s in r.json["symbols"]] == ["ETHUSDT"]
    limits = [x for x in r.json["rateLimits"] if x["rateLimitType"] == "REQUEST_WEIGHT"]
    assert limits[0]["limit"] == 500  # what is enforced is what exchangeInfo says
    r = get(ex.rest_url, "/api/v3/exchangeInfo?symbols=" + quote('["ETHUSDT","BTCUSDT"]'))
    assert sorted(s["symbol"] for s in r.json["symbols"]) == ["BTCUSDT", "ETHUSDT"]
    r = get(ex.rest_url, "/api/v3/exchangeInfo?symbol=NOPE")
    assert (r.status, r.json["code"]) == (400, -1121)


# ------------------------------------------------------------------------------------ limits


def test_429_then_418_with_escalating_bans(exchange: Start) -> None:
    clock = [NOW - NOW % 60_000 + 1_000]  # one second into a minute window
    ex = exchange(generated("spot"), hold=True, weight_limit=10, clock_ms=lambda: clock[0])
    for i in range(1, 11):
        r = get(ex.rest_url, "/api/v3/ping")
        assert (r.status, r.weight) == (200, i)
    r = get(ex.rest_url, "/api/v3/ping")
    assert r.status == 429
    assert r.json["code"] == -1003
    assert r.json["msg"].startswith(
        "Too much request weight used; current limit is 10 request weight per 1 MINUTE"
    )
    assert r.header("Retry-After") == "59"  # seconds until the window resets
    for _ in range(2):  # the tolerated strikes while throttled: still 429
        assert get(ex.rest_url, "/api/v3/ping").status == 429
    r = get(ex.rest_url, "/api/v3/ping")  # kept going: banned
    assert r.status == 418
    assert r.json["code"] == -1003
    assert f"IP banned until {clock[0] + 120_000}" in r.json["msg"]
    assert r.header("Retry-After") == "120"  # the first ban: 2 minutes
    r = get(ex.rest_url, "/api/v3/depth?symbol=BTCUSDT")
    assert r.status == 418  # every endpoint, while banned
    assert ex.violations()["rest"] == {"request_weight": 3, "ip_banned": 2}

    clock[0] += 121_000  # the ban is over, and the window is new
    assert get(ex.rest_url, "/api/v3/ping").status == 200
    statuses = [get(ex.rest_url, "/api/v3/ping").status for _ in range(13)]
    assert statuses[-4:] == [429, 429, 429, 418]
    r = get(ex.rest_url, "/api/v3/ping")
    assert r.header("Retry-After") == "240"  # the second ban is longer


def test_control_endpoints_are_free(exchange: Start) -> None:
    ex = exchange(generated("spot"), hold=True, weight_limit=1)
    for _ in range(5):
        assert get(ex.rest_url, "/sim/truth?symbol=BTCUSDT&limit=5").status == 200
        assert get(ex.rest_url, "/sim/faults").json == []
    assert get(ex.rest_url, "/sim/violations").json == {"rest": {}, "ws": {}}
    assert get(ex.rest_url, "/api/v3/ping").status == 200  # the only charged request so far
    r = get(ex.rest_url, "/sim/truth?symbol=NOPE")
    assert (r.status, r.json["code"]) == (400, -1121)


# ------------------------------------------------------------------------------------ signed


def signed_get(base: str, path: str, query: str, api_key: str | None) -> Reply:
    headers = {"X-MBX-APIKEY": api_key} if api_key is not None else {}
    return get(base, f"{path}?{query}", headers)


def test_spot_hmac_vectors(exchange: Start) -> None:
    ex = exchange(
        generated("spot"),
        hold=True,
        keys=[f"{SPOT_KEY}:{SPOT_SECRET}"],
        clock_ms=fixed(1499827319559 + 200),
        balances={"BTC": "0.5", "USDT": "1234.5", "ETH": "0"},
    )
    r = signed_get(ex.rest_url, "/api/v3/account", f"{SPOT_QUERY}&signature={SPOT_SIGNATURE}", SPOT_KEY)
    assert r.status == 200, r.json
    assert r.weight == 20
    assert r.json["accountType"] == "SPOT"
    balances = {b["asset"]: (b["free"], b["locked"]) for b in r.json["balances"]}
    assert balances == {
        "BTC": ("0.50000000", "0.00000000"),
        "USDT": ("1234.50000000", "0.00000000"),
        "ETH": ("0.00000000", "0.00000000"),
    }
    # The signature is case-insensitive hex.
    r = signed_get(
        ex.rest_url, "/api/v3/account", f"{SPOT_QUERY}&signature={SPOT_SIGNATURE.upper()}", SPOT_KEY
    )
    assert r.status == 200
    # Non-ASCII parameters: the signature is over the percent-encoded text as sent ...
    query = f"{SPOT_QUERY_NON_ASCII}&signature={SPOT_SIGNATURE_NON_ASCII}"
    assert signed_get(ex.rest_url, "/api/v3/account", query, SPOT_KEY).status == 200
    # ... and one over the decoded text is refused since 2026-01-15 (spec §4.2).
    decoded = SPOT_QUERY.replace("LTCBTC", "１２３４５６")
    raw_sig = hmac.new(SPOT_SECRET.encode(), decoded.encode(), hashlib.sha256).hexdigest()
    r = signed_get(ex.rest_url, "/api/v3/account", f"{SPOT_QUERY_NON_ASCII}&signature={raw_sig}", SPOT_KEY)
    assert (r.status, r.json) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    # omitZeroBalances drops the empty ones (and is part of what is signed).
    query = "omitZeroBalances=true&timestamp=1499827319600"
    sig = HmacKey(SPOT_KEY, SPOT_SECRET).sign(query)
    r = signed_get(ex.rest_url, "/api/v3/account", f"{query}&signature={sig}", SPOT_KEY)
    assert [b["asset"] for b in r.json["balances"]] == ["BTC", "USDT"]


def test_futures_hmac_vector(exchange: Start) -> None:
    ex = exchange(
        generated("usdm"),
        hold=True,
        keys=[f"{FUTURES_KEY}:{FUTURES_SECRET}"],
        clock_ms=fixed(1591702613943 + 10),
    )
    r = signed_get(
        ex.rest_url, "/fapi/v2/account", f"{FUTURES_QUERY}&signature={FUTURES_SIGNATURE}", FUTURES_KEY
    )
    assert r.status == 200, r.json
    assert r.weight == 10
    assert {"totalWalletBalance", "availableBalance", "assets", "positions"} <= set(r.json)
    assert {a["asset"] for a in r.json["assets"]} == {"BTC", "USDT"}
    # Futures wants the signature last: anywhere else, it does not verify.
    moved = f"signature={FUTURES_SIGNATURE}&{FUTURES_QUERY}"
    assert signed_get(ex.rest_url, "/fapi/v2/account", moved, FUTURES_KEY).json["code"] == -1022


@pytest.mark.parametrize(
    ("case", "status", "code", "msg"),
    [
        ("old", 400, -1021, "Timestamp for this request is outside of the recvWindow."),
        ("ahead", 400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."),
        ("unknown_key", 401, -2015, "Invalid API-key, IP, or permissions for action."),
        ("no_key", 401, -2014, "API-key format invalid."),
        ("bad_signature", 400, -1022, "Signature for this request is not valid."),
        ("no_signature", 400, -1102, MANDATORY.format("signature")),
        ("no_timestamp", 400, -1102, MANDATORY.format("timestamp")),
    ],
)
@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_signed_rejections(exchange: Start, market: str, case: str, status: int, code: int, msg: str) -> None:
    key = HmacKey("testkey", "testsecret")
    ex = exchange(generated(market), hold=True, keys=[key], clock_ms=fixed(NOW))
    stamp = {"old": NOW - 5001, "ahead": NOW + 1000}.get(case, NOW - 10)
    params: dict[str, object] = {"timestamp": stamp}
    if case == "no_timestamp":
        params = {"recvWindow": 5000}
    signer: SigningKey = HmacKey("otherkey", "testsecret") if case == "unknown_key" else key
    query = sign_rest(signer, params).query_string
    if case == "bad_signature":
        query = query[:-1] + ("0" if query[-1] != "0" else "1")
    if case == "no_signature":
        query = query.split("&signature=")[0]
    api_key = None if case == "no_key" else signer.api_key
    r = signed_get(ex.rest_url, ACCOUNT[market], query, api_key)
    assert (r.status, r.json) == (status, {"code": code, "msg": msg})
    # The same request, fresh and signed by the registered key, passes.
    good = sign_rest(key, {"timestamp": NOW - 10}).query_string
    assert signed_get(ex.rest_url, ACCOUNT[market], good, key.api_key).status == 200


@pytest.fixture(scope="module")
def asymmetric_keys() -> dict[str, SigningKey]:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"rsa": RsaKey("rsa-key", rsa_pem), "ed25519": Ed25519Key("ed-key", ed_pem)}


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_rsa_and_ed25519_signatures(
    tmp_path: Path, asymmetric_keys: dict[str, SigningKey], kind: str, market: str
) -> None:
    key = asymmetric_keys[kind]
    assert isinstance(key, RsaKey | Ed25519Key)
    pem = tmp_path / f"{kind}.pem"
    pem.write_bytes(key.public_key_pem())
    # Registered the CLI way: API_KEY:@PEMFILE, the public half only.
    with run_exchange(generated(market), hold=True, keys=[f"{key.api_key}:@{pem}"]) as ex:
        now = int(time.time() * 1000)
        signed = sign_rest(key, {"recvWindow": 10000, "timestamp": now})
        assert "%" in signed.query_string or "+" not in signed.signature  # base64 is percent-encoded
        r = signed_get(ex.rest_url, ACCOUNT[market], signed.query_string, key.api_key)
        assert r.status == 200, r.json
        tampered = signed.query_string.replace("recvWindow=10000", "recvWindow=9999")
        r = signed_get(ex.rest_url, ACCOUNT[market], tampered, key.api_key)
        assert (r.status, r.json["code"]) == (400, -1022)


# ------------------------------------------------------------------------------------ faults


def test_http_faults_and_clock_skew(exchange: Start) -> None:
    ex = exchange(
        generated("spot"),
        hold=True,
        faults="http@2:503,http@3:429,http@4:418,skew:-3000",
        clock_ms=fixed(NOW),
    )
    assert get(ex.rest_url, "/api/v3/ping").status == 200
    r = get(ex.rest_url, "/api/v3/ping")
    assert (r.status, r.json["code"]) == (503, -1008)
    assert r.weight == 2  # charged like any request
    r = get(ex.rest_url, "/api/v3/ping")
    assert (r.status, r.json["code"]) == (429, -1003)
    assert r.header("Retry-After") is not None
    r = get(ex.rest_url, "/api/v3/time")
    assert (r.status, r.json["code"], r.header("Retry-After")) == (418, -1003, "120")
    assert get(ex.rest_url, "/api/v3/time").json == {"serverTime": NOW - 3000}
    log = ex.fault_log()
    assert [(e["kind"], e["at"], e.get("status")) for e in log if e["kind"] == "http"] == [
        ("http", 2, 503),
        ("http", 3, 429),
        ("http", 4, 418),
    ]
    assert [e["ms"] for e in log if e["kind"] == "skew"] == [-3000]
    assert get(ex.rest_url, "/sim/faults").json == json.loads(json.dumps(log))


def test_skew_applies_to_the_timestamp_check(exchange: Start) -> None:
    key = HmacKey("k", "s")
    ex = exchange(generated("spot"), hold=True, keys=[key], faults="skew:10000", clock_ms=fixed(NOW))
    query = sign_rest(key, {"timestamp": NOW}).query_string  # the client's clock is 10 s behind
    r = signed_get(ex.rest_url, "/api/v3/account", query, "k")
    assert (r.status, r.json["code"]) == (400, -1021)
    server = get(ex.rest_url, "/api/v3/time").json["serverTime"]
    query = sign_rest(key, {"timestamp": server}).query_string  # synced to /time: accepted
    assert signed_get(ex.rest_url, "/api/v3/account", query, "k").status == 200


def test_stale_and_slow_snapshots(exchange: Start) -> None:
    ex = exchange(generated("spot"), speed=None, faults="stale-snapshot@2,slow-snapshot@3:0.3")
    deadline = time.monotonic() + 5
    while ex.truth("BTCUSDT", 1)["lastUpdateId"] < 0 or ex.call(lambda e: e.steps) < 300:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    ex.pause()
    first = get(ex.rest_url, "/api/v3/depth?symbol=BTCUSDT&limit=5").json
    stale = get(ex.rest_url, "/api/v3/depth?symbol=BTCUSDT&limit=5").json
    assert first["lastUpdateId"] == ex.truth("BTCUSDT", 5)["lastUpdateId"]
    assert stale["lastUpdateId"] < first["lastUpdateId"]  # older than the stream
    started = time.monotonic()
    slow = get(ex.rest_url, "/api/v3/depth?symbol=BTCUSDT&limit=5").json
    assert time.monotonic() - started >= 0.3
    assert slow["lastUpdateId"] == first["lastUpdateId"]
    kinds = [(e["kind"], e["symbol"], e["at"]) for e in ex.fault_log()]
    assert kinds == [("stale-snapshot", "BTCUSDT", 2), ("slow-snapshot", "BTCUSDT", 3)]
