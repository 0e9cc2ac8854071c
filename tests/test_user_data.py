"""User-data streams (``tickbook.trading.user_data``) against the local exchange.

Spot: the WebSocket API subscription (``userDataStream.subscribe.signature``, or
``session.logon`` + ``userDataStream.subscribe`` with an Ed25519 key), resubscription when the
subscription ends, reconnection when the server drops the connection, the move to a new
connection on ``serverShutdown`` and at the connection lifetime, and the typed errors of a bad
key or signature. USD-M: the listenKey stream, its keepalive, its re-creation after expiry or
-1125, the move at the lifetime and the key's deletion on close. In every case orders are
placed through the signed REST client and the events must reach the order tracker.

Each test starts an exchange in a background thread (``tickbook.sim.pytest_plugin``) with the
replay held (the book stays put), and runs its client on a uvloop loop of its own. Expected
values come from the spec (``shared/binance-spec.md`` §3, §8, §9) and from the REST answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tickbook import Market
from tickbook.signing import Ed25519Key, HmacKey
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange
from tickbook.trading.client import RestClient
from tickbook.trading.errors import AuthenticationError, RequestError
from tickbook.trading.events import (
    AlgoUpdate,
    EventStreamTerminated,
    ExecutionReport,
    ListenKeyExpired,
    OrderTradeUpdate,
    OutboundAccountPosition,
    TradeLite,
)
from tickbook.trading.futures import FuturesTrading
from tickbook.trading.spot import SpotTrading
from tickbook.trading.tracker import OrderTracker
from tickbook.trading.user_data import (
    Event,
    EventIterator,
    FuturesUserData,
    SpotUserData,
    StreamState,
    StreamStatus,
    futures_stream_base,
    spot_ws_api_url,
)

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]

API_KEY = "userdata-key"
HMAC = HmacKey(API_KEY, "userdata-secret")
SYMBOL = "BTCUSDT"
WAIT = 10.0


@pytest.fixture(scope="module")
def ed_key() -> Ed25519Key:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Ed25519Key("userdata-ed-key", pem)


def generated(market: str = "spot") -> Callable[[], GeneratedMarket]:
    return lambda: GeneratedMarket([SYMBOL], market, seed=11, levels=300)


def run(test: Callable[[], Awaitable[None]], timeout: float = 40.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(bounded())


def spot_url(ex: ExchangeHandle) -> str:
    return f"{ex.ws_url}/ws-api/v3"


async def next_event(events: EventIterator, match: Callable[[Event], bool], timeout: float = WAIT) -> Any:
    """The first event ``match`` accepts (the others are skipped)."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if match(event):
                return event
    raise AssertionError("the stream ended before the event arrived")


def report(client_id: str, execution: str) -> Callable[[Event], bool]:
    """An executionReport of the order ``client_id`` (its own id, per spec 8.1) of one type."""
    return lambda e: (
        isinstance(e, ExecutionReport) and e.order_client_id == client_id and e.execution_type == execution
    )


def futures_update(client_id: str, status: str) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, OrderTradeUpdate)
        and e.order.client_order_id == client_id
        and e.order.order_status == status
    )


class Statuses:
    """Collects status callbacks; ``wait(state)`` until one of that state (after ``since``)."""

    def __init__(self) -> None:
        self.seen: list[StreamStatus] = []
        self._changed = asyncio.Event()

    def __call__(self, status: StreamStatus) -> None:
        self.seen.append(status)
        self._changed.set()

    def count(self, state: StreamState) -> int:
        return sum(1 for s in self.seen if s.state is state)

    async def wait(self, state: StreamState, count: int = 1, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while self.count(state) < count:
                self._changed.clear()
                await self._changed.wait()


def on_sessions(action: Callable[[Any], None]) -> Callable[[Any], None]:
    """``action(session)`` for every WebSocket API connection of an exchange (run on its loop)."""

    def each(exchange: Any) -> None:
        for session in list(exchange.private_api.sessions):
            action(session)

    return each


def low_price(ex: ExchangeHandle, market: str = "spot") -> str:
    """A BUY price well under the best bid (it rests) that the price filters still accept."""
    bid = Decimal(str(ex.truth(SYMBOL, 1, market=market)["bids"][0][0]))
    return str((bid * Decimal("0.9")).quantize(Decimal("0.01")))


# -------------------------------------------------------------------------- configuration


def test_urls_and_configuration() -> None:
    assert spot_ws_api_url() == "wss://ws-api.binance.com:443/ws-api/v3"
    assert spot_ws_api_url("testnet") == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    assert spot_ws_api_url("demo") == "wss://demo-ws-api.binance.com/ws-api/v3"
    with pytest.raises(ValueError, match="unknown environment"):
        spot_ws_api_url("staging")
    assert SpotUserData(HMAC).url == "wss://ws-api.binance.com:443/ws-api/v3"
    assert SpotUserData(HMAC, environment="testnet").url == spot_ws_api_url("testnet")
    # session.logon verifies Ed25519 signatures only (§9): refused before connecting.
    with pytest.raises(ValueError, match="Ed25519"):
        SpotUserData(HMAC, logon=True)
    with pytest.raises(ValueError, match="ws://"):
        SpotUserData(HMAC, "http://127.0.0.1:1/ws-api/v3")

    usdm = RestClient("usdm", key=HMAC)
    assert futures_stream_base(usdm) == "wss://fstream.binance.com"
    stream = FuturesUserData(usdm)
    assert (stream.stream_base, stream.route, stream.path) == (
        "wss://fstream.binance.com",
        "/private/ws",  # §3: USD-M user data lives on the /private route
        "/fapi/v1/listenKey",
    )
    assert futures_stream_base(RestClient("usdm", environment="testnet")) == "wss://fstream.binancefuture.com"
    coinm = FuturesUserData(RestClient("coinm", key=HMAC))
    assert (coinm.route, coinm.path) == ("/ws", "/dapi/v1/listenKey")
    with pytest.raises(ValueError, match="stream_base_url"):
        FuturesUserData(RestClient("usdm", base_url="http://127.0.0.1:1"))
    with pytest.raises(ValueError, match="SpotUserData"):
        FuturesUserData(RestClient("spot"), "ws://127.0.0.1:1")


def test_frames_deduplicated_and_callback_errors_contained() -> None:
    """Copies of one event (two connections overlapping) are delivered once; a failing
    callback is counted and the other consumers still get the event."""

    class Link:
        subscription_id = 3
        resubscribing = False

        def on_answer(self, frame: Any) -> bool:
            return False

        def signal(self, reason: str) -> None:
            raise AssertionError(reason)

    async def main() -> None:
        tracker = OrderTracker()
        stream = SpotUserData(HMAC, "ws://127.0.0.1:1/ws-api/v3", tracker=tracker)
        got: list[Event] = []

        def broken(event: Event) -> None:
            raise RuntimeError("callback bug")

        stream.add_callback(broken)
        stream.add_callback(got.append)
        events = stream.iterate()
        event = {
            "e": "executionReport", "E": 2, "s": SYMBOL, "c": "a", "S": "BUY", "o": "LIMIT", "f": "GTC",
            "q": "1", "p": "1", "x": "NEW", "X": "NEW", "i": 9, "l": "0", "z": "0", "L": "0", "T": 1,
            "I": 1, "Z": "0",
        }  # fmt: skip
        link: Any = Link()
        for sub in (3, 4):  # the same event on two subscriptions (connections)
            stream._on_frame(link, msgspec.json.encode({"subscriptionId": sub, "event": event}))
        stream._on_frame(link, b"not json")
        stream._on_frame(link, msgspec.json.encode({"subscriptionId": 3, "event": {"e": "executionReport"}}))
        assert len(got) == 1
        assert (stream.duplicates, stream.callback_errors, stream.decode_errors) == (1, 1, 2)
        assert events.pending() == 1
        state = tracker.get(9)
        assert state is not None
        assert state.status == "NEW"
        await stream.close()
        assert [e async for e in events] == got  # the iterator ends with the stream

    run(main)


# -------------------------------------------------------------------------------- spot


def test_spot_events_update_the_tracker(exchange: Start) -> None:
    """Orders placed over signed REST; their executionReports arrive over the WebSocket API
    subscription and merge with the REST answers in one tracker (cancel-id rule included)."""
    ex = exchange(generated(), hold=True, keys=[HMAC])
    price = low_price(ex)

    async def main() -> None:
        tracker = OrderTracker()
        statuses = Statuses()
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC) as client:
            stream = SpotUserData(HMAC, spot_url(ex), clock=client.clock, tracker=tracker, on_status=statuses)
            async with stream:
                assert stream.subscribed
                assert stream.subscription_id == 0
                assert [s.state for s in statuses.seen] == [StreamState.SUBSCRIBED]
                events = stream.iterate()
                trading = SpotTrading(client, tracker=tracker)
                placed = await trading.limit(SYMBOL, "BUY", "0.001", price, new_client_order_id="ud-rest-1")
                new = await next_event(events, report("ud-rest-1", "NEW"))
                assert new.order_id == placed.order_id
                state = tracker.by_client_id("ud-rest-1")
                assert state is not None
                assert state.status == "NEW"
                assert state.price == Decimal(price)

                await trading.cancel_order(
                    SYMBOL, order_id=placed.order_id, new_client_order_id="ud-cancel-1"
                )
                canceled = await next_event(events, report("ud-rest-1", "CANCELED"))
                # §8.1: c is the cancel request's id, C the order's own.
                assert (canceled.client_order_id, canceled.orig_client_order_id) == (
                    "ud-cancel-1",
                    "ud-rest-1",
                )
                assert state.status == "CANCELED"
                assert state.cancel_client_order_id == "ud-cancel-1"
                assert tracker.by_client_id("ud-cancel-1") is None

                filled = await trading.market(SYMBOL, "BUY", "0.002", new_client_order_id="ud-mkt-1")
                await next_event(events, report("ud-mkt-1", "TRADE"))
                await next_event(events, lambda e: isinstance(e, OutboundAccountPosition))
                market_state = tracker.get(filled.order_id, SYMBOL, Market.SPOT)
                assert market_state is not None
                assert market_state.status == "FILLED"
                assert market_state.executed_qty == Decimal("0.002")
                # The FULL answer's fills and the reports' fills are the same trades.
                assert [f.trade_id for f in market_state.fills] == [f.trade_id for f in filled.fills]
                assert all(f.time is not None for f in market_state.fills)
                assert filled.cummulative_quote_qty is not None
                assert market_state.cum_quote == filled.cummulative_quote_qty
                assert market_state.avg_price == filled.cummulative_quote_qty / Decimal("0.002")
                assert tracker.open_orders() == []
                assert stream.stats()["decode_errors"] == 0

    run(main)


def test_spot_logon_subscription_with_ed25519(exchange: Start, ed_key: Ed25519Key) -> None:
    ex = exchange(generated(), hold=True, keys=[ed_key])

    async def main() -> None:
        async with RestClient("spot", base_url=ex.rest_url, key=ed_key) as client:
            stream = SpotUserData(ed_key, spot_url(ex), logon=True, clock=client.clock)
            async with stream:
                assert stream.subscription_id is not None
                events = stream.iterate()
                await SpotTrading(client).market(SYMBOL, "SELL", "0.001", new_client_order_id="ud-ed-1")
                trade = await next_event(events, report("ud-ed-1", "TRADE"))
                assert trade.order_status == "FILLED"

    run(main)


def test_spot_bad_key_or_signature_is_final(exchange: Start) -> None:
    """-2015 (unknown key) and -1022 (wrong secret) cannot be fixed by retrying: ``start``
    raises the typed error at once, and so do the iterators."""
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        for key, code in ((HmacKey("nobody-key", "x"), -2015), (HmacKey(API_KEY, "wrong-secret"), -1022)):
            statuses = Statuses()
            stream = SpotUserData(key, spot_url(ex), on_status=statuses, backoff=0.05)
            events = stream.iterate()
            with pytest.raises(AuthenticationError) as info:
                await stream.start()
            assert info.value.code == code
            assert info.value.endpoint == "userDataStream.subscribe.signature"
            assert stream.connects == 0
            assert [s.state for s in statuses.seen] == [StreamState.FAILED]
            with pytest.raises(AuthenticationError):
                await events.__anext__()
            with pytest.raises(AuthenticationError):
                await stream.wait_closed()
            await stream.close()

    run(main)


def test_spot_revoked_session_key_is_final(exchange: Start, ed_key: Ed25519Key) -> None:
    """§9: once the logged-on key is revoked, the next request is answered 401/-2015 with a
    null id; the stream stops with that error instead of retrying."""
    ex = exchange(generated(), hold=True, keys=[ed_key])

    async def main() -> None:
        statuses = Statuses()
        stream = SpotUserData(ed_key, spot_url(ex), logon=True, on_status=statuses)
        async with stream:
            ex.call(lambda e: e.keys.remove(ed_key.api_key))
            # Ending the subscription makes the stream log on again: the revocation answers.
            ex.call(on_sessions(lambda s: s._end_subscriptions(lambda sub: True)))
            with pytest.raises(AuthenticationError) as info:
                await stream.wait_closed()
            assert info.value.code == -2015
            assert info.value.status == 401
            assert statuses.seen[-1].state is StreamState.FAILED

    run(main)


def test_spot_answers_pings_and_detects_a_silent_server(exchange: Start) -> None:
    """Pings every 50 ms with a 300 ms pong deadline: the connection stays up (aiohttp echoes
    each ping). A server that goes silent for longer than ``idle_timeout`` is taken for dead
    and replaced."""
    ex = exchange(generated(), hold=True, keys=[HMAC], ws_rules={"ping_interval": 0.05, "pong_timeout": 0.3})

    async def main() -> None:
        statuses = Statuses()
        async with SpotUserData(HMAC, spot_url(ex), on_status=statuses, idle_timeout=0.5) as stream:
            await asyncio.sleep(1.5)
            assert statuses.count(StreamState.DISCONNECTED) == 0
            assert stream.connects == 1
            assert ex.violations()["ws"].get("pong_timeout", 0) == 0

    run(main)
    quiet = exchange(generated(), hold=True, keys=[HMAC], ws_rules={"ping_interval": 3600.0})

    async def silent() -> None:
        statuses = Statuses()
        async with SpotUserData(HMAC, spot_url(quiet), on_status=statuses, idle_timeout=0.3, backoff=0.05):
            await statuses.wait(StreamState.RESUBSCRIBED)
            dropped = [s for s in statuses.seen if s.state is StreamState.DISCONNECTED]
            assert "nothing received" in dropped[0].detail

    run(silent)


def test_spot_reconnects_and_resubscribes_after_a_drop(exchange: Start) -> None:
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        tracker = OrderTracker()
        statuses = Statuses()
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC) as client:
            stream = SpotUserData(
                HMAC, spot_url(ex), clock=client.clock, tracker=tracker, on_status=statuses, backoff=0.05
            )
            async with stream:
                events = stream.iterate()
                # The server resets every WebSocket API connection (a crash, a network cut).
                ex.call(on_sessions(lambda s: s.abort("test")))
                await statuses.wait(StreamState.RESUBSCRIBED)
                dropped = [s for s in statuses.seen if s.state is StreamState.DISCONNECTED]
                assert len(dropped) == 1
                assert dropped[0].gap
                assert statuses.seen[-1].gap  # events may have been missed: reconcile
                assert (stream.connects, stream.reconnects) == (2, 1)
                assert ex.call(lambda e: len(e.private_api.sessions)) == 1
                await SpotTrading(client, tracker=tracker).market(
                    SYMBOL, "BUY", "0.001", new_client_order_id="ud-after-drop"
                )
                await next_event(events, report("ud-after-drop", "TRADE"))
                state = tracker.by_client_id("ud-after-drop")
                assert state is not None
                assert state.status == "FILLED"

    run(main)


def test_spot_resubscribes_when_the_subscription_ends(exchange: Start) -> None:
    """``eventStreamTerminated`` for our subscription: subscribe again on the same connection."""
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        statuses = Statuses()
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC) as client:
            stream = SpotUserData(HMAC, spot_url(ex), clock=client.clock, on_status=statuses)
            async with stream:
                events = stream.iterate()
                first = stream.subscription_id
                ex.call(on_sessions(lambda s: s._end_subscriptions(lambda sub: True)))
                ended = await next_event(events, lambda e: isinstance(e, EventStreamTerminated))
                assert ended.event_time is not None
                await statuses.wait(StreamState.RESUBSCRIBED)
                assert stream.subscription_id not in (None, first)
                assert stream.connects == 1  # the same connection
                await SpotTrading(client).market(SYMBOL, "BUY", "0.001", new_client_order_id="ud-resub")
                await next_event(events, report("ud-resub", "TRADE"))

    run(main)


def test_spot_subscription_already_active_is_recovered(exchange: Start) -> None:
    """-2035 (one subscription per account per connection, §8.1) is a typed error; the
    stream recovers from it by ending the connection's subscriptions and subscribing again."""
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC) as client:
            stream = SpotUserData(HMAC, spot_url(ex), clock=client.clock)
            async with stream:
                link = stream._link
                assert link is not None
                with pytest.raises(RequestError) as info:
                    await link.request("userDataStream.subscribe.signature", stream._signed(), Market.SPOT)
                assert info.value.code == -2035
                before = stream.subscription_id
                await stream._subscribe(link)
                assert stream.subscription_id not in (None, before)
                events = stream.iterate()
                await SpotTrading(client).market(SYMBOL, "BUY", "0.001", new_client_order_id="ud-2035")
                await next_event(events, report("ud-2035", "TRADE"))
                await asyncio.sleep(0.2)
                assert stream.connects == 1

    run(main)


def test_spot_moves_connection_on_server_shutdown(exchange: Start) -> None:
    """``serverShutdown`` (§3): a new connection is subscribed before the old one goes; no
    event is lost or delivered twice, and no gap is reported."""
    ex = exchange(generated(), hold=True, keys=[HMAC])

    async def main() -> None:
        statuses = Statuses()
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC) as client:
            stream = SpotUserData(HMAC, spot_url(ex), clock=client.clock, on_status=statuses)
            async with stream:
                events = stream.iterate()
                ex.call(on_sessions(lambda s: s.send_server_shutdown()))
                await statuses.wait(StreamState.RESUBSCRIBED)
                assert stream.rotations == 1
                assert statuses.count(StreamState.DISCONNECTED) == 0
                assert not statuses.seen[-1].gap
                await SpotTrading(client).market(SYMBOL, "BUY", "0.001", new_client_order_id="ud-shutdown")
                await next_event(events, report("ud-shutdown", "TRADE"))
                await asyncio.sleep(0.3)
                assert ex.call(lambda e: len(e.private_api.sessions)) == 1
                seen: list[Event] = []
                while events.pending():
                    seen.append(await events.__anext__())
                assert not [e for e in seen if report("ud-shutdown", "TRADE")(e)]  # delivered once

    run(main)


def test_spot_moves_connection_before_the_lifetime_cut(exchange: Start) -> None:
    """A short connection lifetime on the exchange (its ``serverShutdown`` comes half-way)
    and one on the client: both move to a fresh connection without a gap."""
    ex = exchange(generated(), hold=True, keys=[HMAC], lifetime=1.2)

    async def main() -> None:
        statuses = Statuses()
        async with RestClient("spot", base_url=ex.rest_url, key=HMAC) as client:
            stream = SpotUserData(HMAC, spot_url(ex), clock=client.clock, on_status=statuses)
            async with stream:
                await statuses.wait(StreamState.RESUBSCRIBED, count=2)
                assert stream.rotations >= 2
                assert statuses.count(StreamState.DISCONNECTED) == 0
                events = stream.iterate()
                await SpotTrading(client).market(SYMBOL, "BUY", "0.001", new_client_order_id="ud-lifetime")
                await next_event(events, report("ud-lifetime", "TRADE"))

            own = Statuses()
            stream = SpotUserData(HMAC, spot_url(ex), clock=client.clock, on_status=own, lifetime=0.3)
            async with stream:
                await own.wait(StreamState.RESUBSCRIBED, count=2)
                assert own.count(StreamState.DISCONNECTED) == 0

    run(main)


# ------------------------------------------------------------------------------- USD-M


class Clock:
    """The exchange's clock, which a test can move forward (listenKey validity, §8.2)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def test_futures_events_update_the_tracker(exchange: Start) -> None:
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        tracker = OrderTracker()
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC) as client:
            stream = FuturesUserData(client, ex.ws_url, tracker=tracker)
            async with stream:
                key = stream.listen_key
                assert key is not None
                assert ex.call(lambda e: e.private_api.listen_key_owner(key)) == API_KEY
                events = stream.iterate()
                trading = FuturesTrading(client, tracker=tracker)
                placed = await trading.market(SYMBOL, "BUY", "0.010", new_client_order_id="ud-fut-1")
                filled = await next_event(events, futures_update("ud-fut-1", "FILLED"))
                lite = await next_event(events, lambda e: isinstance(e, TradeLite))
                assert lite.trade_id == filled.order.trade_id
                state = tracker.get(placed.order_id, SYMBOL, Market.USDM)
                assert state is not None
                assert state.status == "FILLED"
                assert state.executed_qty == Decimal("0.010")
                assert state.avg_price == filled.order.average_price
                assert [f.trade_id for f in state.fills] == [filled.order.trade_id]
                assert state.cum_quote == filled.order.last_price * Decimal("0.010")

                algo = await trading.stop_market(SYMBOL, "SELL", "30000", "0.010", client_algo_id="ud-algo-1")
                update = await next_event(events, lambda e: isinstance(e, AlgoUpdate))
                assert update.order.algo_id == algo.algo_id
                algo_state = tracker.algo(algo.algo_id)
                assert algo_state is not None
                assert algo_state.status == "NEW"
                assert algo_state.client_algo_id == "ud-algo-1"

    run(main)


def test_futures_stream_shares_the_clients_session(exchange: Start) -> None:
    """The listenKey stream connects through the client's pooled session (no session of its
    own), lives longer than the client's request timeout, and closing it leaves the client
    working; a session given to the stream is used instead and not closed either."""
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC, timeout=0.5) as client:
            session = client.session
            stream = FuturesUserData(client, ex.ws_url)
            await stream.start()
            assert stream._http() is session
            events = stream.iterate()
            await asyncio.sleep(0.8)  # past the client's whole-request timeout
            await FuturesTrading(client).market(SYMBOL, "BUY", "0.010", new_client_order_id="ud-shared")
            await next_event(events, futures_update("ud-shared", "FILLED"))
            assert (stream.connects, stream.reconnects) == (1, 0)
            await stream.close()
            assert not session.closed
            assert client.session is session
            await client.ping()

            async with aiohttp.ClientSession() as own:
                given = FuturesUserData(client, ex.ws_url, session=own)
                async with given:
                    assert given._http() is own
                    assert given.subscribed
                assert not own.closed

    run(main)


def test_futures_unknown_key_is_final(exchange: Start) -> None:
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        async with RestClient("usdm", base_url=ex.rest_url, key=HmacKey("nobody-key", "x")) as client:
            stream = FuturesUserData(client, ex.ws_url, backoff=0.05)
            with pytest.raises(AuthenticationError) as info:
                await stream.start()
            assert info.value.endpoint == "/fapi/v1/listenKey"
            assert stream.connects == 0
            await stream.close()

    run(main)


def test_futures_keepalive_extends_the_key(exchange: Start) -> None:
    """With a PUT every 0.2 s, 40 min jumps of the exchange clock never reach the key's
    60 min validity: same key throughout, no renewal."""
    clock = Clock()
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC], clock_ms=clock)

    async def main() -> None:
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC) as client:
            stream = FuturesUserData(client, ex.ws_url, keepalive=0.2)
            async with stream:
                key = stream.listen_key
                assert key is not None
                for _ in range(3):
                    await asyncio.sleep(0.6)
                    clock.offset_ms += 40 * 60_000
                await asyncio.sleep(1.5)  # past the exchange's expiry check
                assert stream.keepalives >= 6
                assert stream.renewals == 0
                assert stream.listen_key == key
                assert ex.call(lambda e: e.private_api.listen_key_owner(key)) == API_KEY

    run(main)


def test_futures_listen_key_expiry_makes_a_new_key(exchange: Start) -> None:
    """No keepalive in time: the key expires (``listenKeyExpired``), a new key is created, the
    stream reconnects on it and events flow again."""
    clock = Clock()
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC], clock_ms=clock)

    async def main() -> None:
        statuses = Statuses()
        tracker = OrderTracker()
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC) as client:
            stream = FuturesUserData(client, ex.ws_url, keepalive=3600, tracker=tracker, on_status=statuses)
            async with stream:
                events = stream.iterate()
                old = stream.listen_key
                clock.offset_ms += 61 * 60_000
                expired = await next_event(events, lambda e: isinstance(e, ListenKeyExpired))
                assert expired.listen_key == old
                await statuses.wait(StreamState.RESUBSCRIBED)
                assert stream.renewals == 1
                assert stream.listen_key not in (None, old)
                placed = await FuturesTrading(client, tracker=tracker).market(
                    SYMBOL, "BUY", "0.010", new_client_order_id="ud-renewed"
                )
                await next_event(events, futures_update("ud-renewed", "FILLED"))
                state = tracker.get(placed.order_id)
                assert state is not None
                assert state.status == "FILLED"

    run(main)


def test_futures_keepalive_minus_1125_makes_a_new_key(exchange: Start) -> None:
    """The exchange forgets the key without a ``listenKeyExpired`` (its internals are reached
    for that): the next PUT answers -1125 and the stream moves to a new key."""
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    def forget(e: Any) -> None:
        api = e.private_api
        key = api._key_of.pop(API_KEY)
        api._unlisten(api._listen_keys.pop(key))

    async def main() -> None:
        statuses = Statuses()
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC) as client:
            stream = FuturesUserData(client, ex.ws_url, keepalive=0.2, on_status=statuses)
            async with stream:
                events = stream.iterate()
                old = stream.listen_key
                ex.call(forget)
                await statuses.wait(StreamState.RESUBSCRIBED)
                assert stream.renewals == 1
                assert stream.listen_key not in (None, old)
                await FuturesTrading(client).market(SYMBOL, "SELL", "0.010", new_client_order_id="ud-1125")
                await next_event(events, futures_update("ud-1125", "FILLED"))

    run(main)


def test_futures_moves_at_lifetime_and_close_deletes_the_key(exchange: Start) -> None:
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        statuses = Statuses()
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC) as client:
            stream = FuturesUserData(client, ex.ws_url, lifetime=0.4, on_status=statuses)
            await stream.start()
            key = stream.listen_key
            assert key is not None
            await statuses.wait(StreamState.RESUBSCRIBED, count=2)
            assert stream.rotations >= 2
            assert statuses.count(StreamState.DISCONNECTED) == 0
            current = stream.listen_key
            assert current == key  # the same key, extended by each POST
            events = stream.iterate()
            await FuturesTrading(client).market(SYMBOL, "BUY", "0.010", new_client_order_id="ud-rotate")
            await next_event(events, futures_update("ud-rotate", "FILLED"))
            await stream.close()
            assert stream.stats()["events"] > 0
            assert stream.listen_key is None  # deleted with the stream
            assert ex.call(lambda e: e.private_api.listen_key_owner(key)) is None
            rest = [e async for e in events]  # closed: the iterator ends after what it holds
            assert not [e for e in rest if futures_update("ud-rotate", "FILLED")(e)]  # delivered once
            assert statuses.seen[-1].state is StreamState.CLOSED

    run(main)


def test_futures_reconnects_when_the_server_closes_the_stream(exchange: Start) -> None:
    """The key is deleted on the exchange side (its streams are closed): the stream
    reconnects with a fresh key and reports the gap."""
    ex = exchange(generated("usdm"), hold=True, keys=[HMAC])

    async def main() -> None:
        statuses = Statuses()
        async with RestClient("usdm", base_url=ex.rest_url, key=HMAC) as client:
            stream = FuturesUserData(client, ex.ws_url, on_status=statuses, backoff=0.05)
            async with stream:
                events = stream.iterate()
                ex.call(lambda e: e.private_api.close_listen_key(API_KEY))
                await statuses.wait(StreamState.RESUBSCRIBED)
                assert statuses.seen[-1].gap
                assert stream.reconnects == 1
                await FuturesTrading(client).market(SYMBOL, "BUY", "0.010", new_client_order_id="ud-reopen")
                await next_event(events, futures_update("ud-reopen", "FILLED"))

    run(main)
