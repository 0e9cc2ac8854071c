"""The local exchange's WebSocket server (tickbook.sim.ws) over real loopback sockets.

Every test runs a uvloop loop of its own (``_run``) with a hard timeout, starts a ``WsServer``
on a free 127.0.0.1 port and talks to it with picows's client. Rules are shrunk per test
(ping every 50 ms, a lifetime of 0.3 s, ...) so each limit acts within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import uvloop
from picows import WSCloseCode, WSFrame, WSHandshakeError, WSListener, WSMsgType, WSTransport, ws_connect

from tickbook._types import Market
from tickbook.sim.faults import FaultPlan
from tickbook.sim.ws import (
    FaultAction,
    FaultActionLike,
    StreamHub,
    WsRules,
    WsServer,
    measure_throughput_stats,
    valid_stream,
)

# Generous rules for tests that are not about a limit: many requests per second, no pings.
RELAXED: dict[str, Any] = {"inbound_limit": 1000, "ping_interval": 3600.0, "pong_timeout": 3600.0}


def _run(test: Callable[[], Awaitable[None]], timeout: float = 10.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(bounded())


class Client(WSListener):
    """Collects text frames; answers pings only when ``pong`` is set; records the close."""

    def __init__(self, pong: bool = True) -> None:
        super().__init__()
        self.pong = pong
        self.texts: asyncio.Queue[bytes] = asyncio.Queue()
        self.received: list[bytes] = []
        self.arrivals: list[float] = []
        self.pings = 0
        self.close_code: WSCloseCode | None = None
        self.close_reason = ""
        self.gone = asyncio.Event()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            data = frame.get_payload_as_bytes()
            self.received.append(data)
            self.arrivals.append(time.monotonic())
            self.texts.put_nowait(data)
        elif frame.msg_type == WSMsgType.PING:
            self.pings += 1
            if self.pong:
                transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            self.close_reason = frame.get_close_reason()
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.gone.set()

    async def next(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.texts.get(), timeout)

    async def request(self, transport: WSTransport, req: Any) -> Any:
        transport.send(WSMsgType.TEXT, req if isinstance(req, bytes | str) else json.dumps(req))
        return json.loads(await self.next())


@contextlib.asynccontextmanager
async def serve(
    market: Market | str = Market.SPOT, hub: StreamHub | None = None, **rules: Any
) -> AsyncIterator[tuple[StreamHub, WsServer]]:
    hub = hub if hub is not None else StreamHub()
    server = WsServer(hub, market, WsRules.for_market(market, **rules))
    await server.start()
    try:
        yield hub, server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def connect(url: str, *, pong: bool = True) -> AsyncIterator[tuple[WSTransport, Client]]:
    transport, client = await ws_connect(lambda: Client(pong), url, enable_auto_pong=False)
    assert isinstance(client, Client)
    try:
        yield transport, client
    finally:
        transport.disconnect()
        await asyncio.wait_for(transport.wait_disconnected(), 2)


async def _subscribed(hub: StreamHub, stream: str, n: int = 1) -> None:
    while hub.subscribers(stream) < n:
        await asyncio.sleep(0.001)


async def _status(url: str) -> int:
    """The HTTP status of a refused handshake (101 if it was accepted)."""
    try:
        async with connect(url):
            return 101
    except WSHandshakeError as exc:
        response = exc.response
    assert response is not None
    return int(response.status)


# ---------------------------------------------------------------------------------------------
# live subscriptions and properties


def test_subscribe_list_unsubscribe() -> None:
    async def main() -> None:
        async with serve(**RELAXED) as (hub, server), connect(server.url + "/ws") as (tr, cl):
            reply = await cl.request(
                tr, {"method": "SUBSCRIBE", "params": ["btcusdt@depth", "ethusdt@bookTicker"], "id": 1}
            )
            assert reply == {"result": None, "id": 1}
            assert hub.subscribers("btcusdt@depth") == 1
            reply = await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert reply == {"result": ["btcusdt@depth", "ethusdt@bookTicker"], "id": 3}
            reply = await cl.request(tr, {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 312})
            assert reply == {"result": None, "id": 312}
            assert hub.subscribers("btcusdt@depth") == 0
            reply = await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": "abc-12"})
            assert reply == {"result": ["ethusdt@bookTicker"], "id": "abc-12"}
            # spot takes a null or a missing id
            assert await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": None}) == {
                "result": ["ethusdt@bookTicker"],
                "id": None,
            }
            assert (await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS"}))["id"] is None
            assert server.violations == {}

    _run(main)


def test_properties() -> None:
    async def main() -> None:
        async with serve(**RELAXED) as (_hub, server):
            async with connect(server.url + "/ws/btcusdt@depth") as (tr, cl):
                get = {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}
                assert await cl.request(tr, get) == {"result": False, "id": 2}
                assert await cl.request(
                    tr, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}
                ) == {"result": None, "id": 5}
                assert await cl.request(tr, get) == {"result": True, "id": 2}
            async with connect(server.url + "/stream?streams=btcusdt@depth") as (tr, cl):
                assert await cl.request(tr, {"method": "GET_PROPERTY", "params": ["combined"], "id": 7}) == {
                    "result": True,
                    "id": 7,
                }

    _run(main)


_ORDER = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
SPOT_ERRORS = [
    ('{"method":"SET_PROPERTY","params":["foo",true],"id":5}', 0, "Unknown property", 5),
    ('{"method":"GET_PROPERTY","params":["foo"],"id":6}', 0, "Unknown property", 6),
    (
        '{"method":"SET_PROPERTY","params":["combined","yes"],"id":5}',
        1,
        "Invalid value type: expected Boolean",
        5,
    ),
    ('{"method":"SET_PROPERTY","params":["combined"],"id":5}', 1, "Invalid value type: expected Boolean", 5),
    (
        '{"method":"SET_PROPERTY","params":[5,true],"id":5}',
        2,
        "Invalid request: property name must be a string",
        5,
    ),
    ('{"method":"GET_PROPERTY","params":[],"id":5}', 2, "Invalid request: property name must be a string", 5),
    (
        '{"method":"SET_PROPERTY","params":["combined",true,1],"id":5}',
        2,
        "Invalid request: too many parameters",
        5,
    ),
    (
        '{"method":"GET_PROPERTY","params":["combined",1],"id":5}',
        2,
        "Invalid request: too many parameters",
        5,
    ),
    ('{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":5}', 2, "Invalid request: too many parameters", 5),
    (
        '{"method":"LIST_SUBSCRIPTIONS","id":1.5}',
        2,
        "Invalid request: request ID must be an unsigned integer",
        None,
    ),
    (
        '{"method":"LIST_SUBSCRIPTIONS","id":true}',
        2,
        "Invalid request: request ID must be an unsigned integer",
        None,
    ),
    (
        '{"method":"LIST_SUBSCRIPTIONS","id":"%s"}' % ("a" * 37),
        2,
        "Invalid request: request ID must be an unsigned integer",
        None,
    ),
    (
        '{"method":"LIST_SUBSCRIPTIONS","id":9223372036854775808}',
        2,
        "Invalid request: request ID must be an unsigned integer",
        None,
    ),
    (
        '{"method":"SUBSCRIBEX","params":[],"id":1}',
        2,
        f"Invalid request: unknown variant `SUBSCRIBEX`, expected one of {_ORDER} at line 1 column 22",
        1,
    ),
    (
        '{"params":["btcusdt@depth"],"id":4}',
        2,
        "Invalid request: missing field `method` at line 1 column 35",
        4,
    ),
    ('{"method":"SUBSCRIBE","params":["BTCUSDT@depth"],"id":8}', 2, "Invalid request: invalid stream", 8),
    (
        '{"method":"SUBSCRIBE","params":["btcusdt@depth@250ms"],"id":8}',
        2,
        "Invalid request: invalid stream",
        8,
    ),
    ('{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":8}', 2, "Invalid request: invalid stream", 8),
    ('{"method":"UNSUBSCRIBE","params":[1],"id":8}', 2, "Invalid request: invalid stream", 8),
    ("xyz", 3, "Invalid JSON: expected value at line 1 column 1", None),
    ('{"method":\n  }', 3, "Invalid JSON: expected value at line 2 column 3", None),
]


@pytest.mark.parametrize(("text", "code", "msg", "rid"), SPOT_ERRORS)
def test_spot_error_replies(text: str, code: int, msg: str, rid: Any) -> None:
    async def main() -> None:
        async with serve(**RELAXED) as (_hub, server), connect(server.url + "/ws") as (tr, cl):
            assert await cl.request(tr, text) == {"error": {"code": code, "msg": msg}, "id": rid}
            assert server.violations == {"request_error": 1}
            # the connection stays usable after an error
            assert await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}

    _run(main)


def test_futures_ids_are_unsigned_ints() -> None:
    bad = "Invalid request: request ID must be an unsigned integer"

    async def main() -> None:
        async with (
            serve(Market.USDM, **RELAXED) as (_hub, server),
            connect(server.url + "/public/ws") as (tr, cl),
        ):
            for rid in ("abc", -1, None, 1 << 64):
                reply = await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": rid})
                assert reply == {"error": {"code": 2, "msg": bad}, "id": None}
            assert (await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS"}))["error"]["msg"] == bad
            assert await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": (1 << 64) - 1}) == {
                "result": [],
                "id": (1 << 64) - 1,
            }

    _run(main)


# ---------------------------------------------------------------------------------------------
# paths and framing


def test_combined_and_raw_framing() -> None:
    small = b'{"e":"depthUpdate","u":1}'
    medium = b'{"e":"depthUpdate","pad":"' + b"x" * 300 + b'"}'  # 16-bit length
    large = b'{"e":"depthUpdate","pad":"' + b"y" * 70_000 + b'"}'  # 64-bit length

    async def main() -> None:
        async with (
            serve(**RELAXED) as (hub, server),
            connect(server.url + "/stream?streams=btcusdt@depth/ethusdt@depth") as (_trc, comb),
            connect(server.url + "/ws/btcusdt@depth") as (trr, raw),
        ):
            await _subscribed(hub, "btcusdt@depth", 2)
            for payload in (small, medium, large):
                hub.publish("btcusdt@depth", payload)
            hub.publish("ethusdt@depth", small)
            hub.flush()
            for payload in (small, medium, large):
                assert await raw.next() == payload
                assert await comb.next() == b'{"stream":"btcusdt@depth","data":' + payload + b"}"
            assert await comb.next() == b'{"stream":"ethusdt@depth","data":' + small + b"}"
            assert json.loads(b'{"stream":"btcusdt@depth","data":' + medium + b"}")["data"]["pad"]
            # raw -> combined on request
            await raw.request(trr, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 1})
            hub.publish("btcusdt@depth", small)
            assert await raw.next() == b'{"stream":"btcusdt@depth","data":' + small + b"}"
            assert raw.texts.empty()

    _run(main)


def test_paths_per_market() -> None:
    async def main() -> None:
        async with serve(Market.SPOT, **RELAXED) as (_h, spot):
            assert await _status(spot.url + "/ws/btcusdt@depth@100ms") == 101
            assert await _status(spot.url + "/ws/btcusdt@depth/ethusdt@bookTicker") == 101
            assert await _status(spot.url + "/stream?streams=btcusdt%40depth5%40100ms/btcusdt@trade") == 101
            assert await _status(spot.url + "/stream") == 101
            assert await _status(spot.url + "/ws/BTCUSDT@depth") == 400
            assert await _status(spot.url + "/ws/btcusdt@depth@500ms") == 400
            assert await _status(spot.url + "/public/ws/btcusdt@depth") == 404
            assert await _status(spot.url + "/api/v3/depth") == 404
        async with serve(Market.USDM, **RELAXED) as (_h, usdm):
            assert await _status(usdm.url + "/public/ws/btcusdt@depth@250ms") == 101
            assert await _status(usdm.url + "/public/stream?streams=btcusdt@depth/!bookTicker") == 101
            assert (
                await _status(usdm.url + "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s")
                == 101
            )
            assert await _status(usdm.url + "/market/ws/btcusdt@kline_1m") == 101
            assert await _status(usdm.url + "/ws/btcusdt@depth") == 101  # unrouted: public streams only
            assert await _status(usdm.url + "/ws/btcusdt@markPrice") == 400
            assert await _status(usdm.url + "/public/ws/btcusdt@aggTrade") == 400
            assert await _status(usdm.url + "/market/ws/btcusdt@depth") == 400
            assert await _status(usdm.url + "/private/ws/listenkey") == 404
            async with connect(usdm.url + "/market/ws") as (tr, cl):
                reply = await cl.request(tr, {"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1})
                assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 1}
        async with serve(Market.COINM, **RELAXED) as (_h, coinm):
            assert await _status(coinm.url + "/ws/btcusd_perp@depth@500ms") == 101
            assert await _status(coinm.url + "/stream?streams=btcusd_perp@depth/btcusd_perp@markPrice") == 101
            assert await _status(coinm.url + "/public/ws/btcusd_perp@depth") == 404

    _run(main)


def test_valid_stream_shapes() -> None:
    assert valid_stream("spot", "btcusdt@depth")
    assert valid_stream("spot", "btcusdt@depth20@100ms")
    assert valid_stream("spot", "!ticker@arr")
    assert not valid_stream("spot", "!bookTicker")  # removed from spot in 2022
    assert not valid_stream("spot", "btcusdt@depth15")
    assert valid_stream("usdm", "btcusdt@rpiDepth@500ms", "/public")
    assert valid_stream("usdm", "btcusdt_perpetual@continuousKline_1m", "/market")
    assert not valid_stream("usdm", "btcusdt@kline_1s", "/market")
    assert not valid_stream("usdm", "btcusdt@depth", "/private")


def test_burst_is_complete_in_order_and_batched() -> None:
    n = 100_000

    async def main() -> None:
        async with serve(**RELAXED) as (hub, server), connect(server.url + "/ws/btcusdt@depth") as (_tr, cl):
            await _subscribed(hub, "btcusdt@depth")
            writes0 = hub.writes
            for i in range(n):
                hub.publish("btcusdt@depth", b'{"u":%d}' % i)
                if i % 5000 == 4999:
                    hub.flush()
                    await asyncio.sleep(0)
            hub.flush()
            deadline = time.monotonic() + 8
            while len(cl.received) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert cl.received == [b'{"u":%d}' % i for i in range(n)]
            writes = hub.writes - writes0
            assert writes <= 40, writes  # 20 flushes, not 100 000 sends
            assert hub.frames >= n

    _run(main)


def test_publish_many_frames_once_in_order() -> None:
    async def main() -> None:
        async with (
            serve(**RELAXED) as (hub, server),
            connect(server.url + "/ws/btcusdt@depth") as (_t1, raw),
            connect(server.url + "/stream?streams=btcusdt@depth") as (_t2, comb),
        ):
            await _subscribed(hub, "btcusdt@depth", 2)
            hub.publish("btcusdt@depth", b'{"u":0}')
            hub.publish_many(
                "btcusdt@depth", [b'{"u":%d}' % i for i in range(1, 1000)] + [b"[" + b" " * 300 + b"]"]
            )
            hub.publish("btcusdt@depth", b'{"u":1000}')
            hub.flush()
            big = b"[" + b" " * 300 + b"]"  # a 16-bit length inside the block
            while len(raw.received) < 1002 or len(comb.received) < 1002:
                await asyncio.sleep(0.01)
            assert raw.received == [b'{"u":%d}' % i for i in range(1000)] + [big, b'{"u":1000}']
            assert [json.loads(m)["data"] for m in comb.received] == [{"u": i} for i in range(1000)] + [
                [],
                {"u": 1000},
            ]
            assert comb.received[-1] == b'{"stream":"btcusdt@depth","data":{"u":1000}}'
            assert hub.frames == 2 * 1002

    _run(main)


def test_client_close_and_server_stop() -> None:
    async def main() -> None:
        async with serve(**RELAXED) as (_hub, server):
            async with connect(server.url + "/ws") as (tr, cl):
                tr.send_close(WSCloseCode.OK)
                await asyncio.wait_for(cl.gone.wait(), 2)
                assert cl.close_code == WSCloseCode.OK  # the server answered the close
            async with connect(server.url + "/stream") as (_tr, cl):
                await server.stop()
                notice = json.loads(await cl.next())
                assert notice["stream"] == "!serverShutdown"
                await asyncio.wait_for(cl.gone.wait(), 2)
                assert cl.close_code == WSCloseCode.GOING_AWAY
            assert server.closes == {"client": 1, "server_stop": 1}

    _run(main)


def test_flush_is_scheduled_by_publish() -> None:
    async def main() -> None:
        async with serve(**RELAXED) as (hub, server), connect(server.url + "/ws/btcusdt@depth") as (_tr, cl):
            await _subscribed(hub, "btcusdt@depth")
            hub.publish("btcusdt@depth", b"{}")  # no explicit flush
            assert await cl.next() == b"{}"

    _run(main)


# ---------------------------------------------------------------------------------------------
# limits


def test_inbound_message_limit_closes() -> None:
    async def main() -> None:
        async with serve(Market.SPOT, ping_interval=3600.0) as (_hub, server):
            async with connect(server.url + "/ws") as (tr, cl):
                for i in range(6):
                    tr.send(WSMsgType.TEXT, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                await asyncio.wait_for(cl.gone.wait(), 2)
                assert [json.loads(m)["id"] for m in cl.received] == [0, 1, 2, 3, 4]
                assert cl.close_code == WSCloseCode.POLICY_VIOLATION
                assert cl.close_reason == "Too many requests"
            async with connect(server.url + "/ws") as (tr, cl):  # pings count too
                for _ in range(6):
                    tr.send_ping(b"")
                await asyncio.wait_for(cl.gone.wait(), 2)
            assert server.violations == {"inbound_rate": 2}
            # a futures connection may send 10 per second
        async with (
            serve(Market.USDM, ping_interval=3600.0) as (_hub, server),
            connect(server.url + "/public/ws") as (tr, cl),
        ):
            for i in range(10):
                tr.send(WSMsgType.TEXT, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            for _ in range(10):
                await cl.next()
            assert not cl.gone.is_set()
            assert server.violations == {}

    _run(main)


def test_server_pings_and_pong_deadline() -> None:
    rules: dict[str, Any] = {"ping_interval": 0.05, "pong_timeout": 0.2, "inbound_limit": 1000}

    async def main() -> None:
        async with serve(**rules) as (_hub, server):
            async with connect(server.url + "/ws", pong=True) as (_tr, cl):
                await asyncio.sleep(0.5)
                assert cl.pings >= 5
                assert not cl.gone.is_set()
            assert server.violations == {}
            async with connect(server.url + "/ws", pong=False) as (_tr, cl):
                t0 = time.monotonic()
                await asyncio.wait_for(cl.gone.wait(), 2)
                assert 0.2 <= time.monotonic() - t0 < 1.0
                assert cl.pings >= 1
                assert cl.close_code == WSCloseCode.POLICY_VIOLATION
            assert server.violations == {"pong_timeout": 1}

    _run(main)


def test_unsolicited_pongs_do_not_keep_alive() -> None:
    async def main() -> None:
        async with (
            serve(ping_interval=0.05, pong_timeout=0.2, inbound_limit=1000) as (_hub, server),
            connect(server.url + "/ws", pong=False) as (tr, cl),
        ):
            for _ in range(10):
                tr.send_pong(b"")
                await asyncio.sleep(0.04)
            await asyncio.wait_for(cl.gone.wait(), 2)
            assert server.violations == {"pong_timeout": 1}

    _run(main)


def test_lifetime_sends_server_shutdown_then_closes() -> None:
    async def main() -> None:
        async with serve(lifetime=0.3, shutdown_notice=0.1, **RELAXED) as (_hub, server):
            async with connect(server.url + "/ws/btcusdt@depth") as (_tr, raw):
                notice = json.loads(await raw.next(1.0))
                assert notice.keys() == {"e", "E"}
                assert notice["e"] == "serverShutdown"
                assert abs(notice["E"] - time.time() * 1000) < 5000
                await asyncio.wait_for(raw.gone.wait(), 1.0)
                assert raw.close_code == WSCloseCode.GOING_AWAY
            async with connect(server.url + "/stream?streams=btcusdt@depth") as (_tr, comb):
                wrapped = json.loads(await comb.next(1.0))
                assert wrapped["stream"] == "!serverShutdown"
                assert wrapped["data"]["e"] == "serverShutdown"
                await asyncio.wait_for(comb.gone.wait(), 1.0)
            assert server.closes["lifetime"] == 2
            assert server.violations == {}
        # futures document no notice: just the close
        async with (
            serve(Market.USDM, lifetime=0.2, **RELAXED) as (_hub, server),
            connect(server.url + "/public/ws/btcusdt@depth") as (_tr, fut),
        ):
            await asyncio.wait_for(fut.gone.wait(), 1.0)
            assert fut.received == []
            assert fut.close_code == WSCloseCode.GOING_AWAY

    _run(main)


def test_too_many_streams() -> None:
    async def main() -> None:
        async with serve(max_streams=3, **RELAXED) as (_hub, server):
            four = "/".join(f"s{i}usdt@depth" for i in range(4))
            assert await _status(server.url + "/stream?streams=" + four) == 400
            three = four.rsplit("/", 1)[0]
            assert await _status(server.url + "/ws/" + three) == 101
            async with connect(server.url + "/ws/a1usdt@depth/a2usdt@depth") as (tr, cl):
                ok = await cl.request(
                    tr, {"method": "SUBSCRIBE", "params": ["a2usdt@depth", "a3usdt@depth"], "id": 1}
                )
                assert ok == {"result": None, "id": 1}  # a2 again is no new stream
                reply = await cl.request(tr, {"method": "SUBSCRIBE", "params": ["a4usdt@depth"], "id": 2})
                assert reply["error"]["code"] == 2
                assert "too many streams" in reply["error"]["msg"]
                assert reply["id"] == 2
                listed = await cl.request(tr, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
                assert listed["result"] == ["a1usdt@depth", "a2usdt@depth", "a3usdt@depth"]
            assert server.violations["too_many_streams"] == 2

    _run(main)


def test_connection_attempts_limit_gives_429() -> None:
    async def main() -> None:
        async with serve(attempts_limit=3, attempts_window=60.0, **RELAXED) as (_hub, server):
            for _ in range(3):
                assert await _status(server.url + "/ws") == 101
            with pytest.raises(WSHandshakeError) as refused:
                async with connect(server.url + "/ws"):
                    pass
            response = refused.value.response
            assert response is not None
            assert int(response.status) == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert server.violations == {"connection_attempts": 1}

    _run(main)


async def _flood_until(hub: StreamHub, stop: Callable[[], bool], payload: bytes, rounds: int = 400) -> bool:
    """Publish batches of ``payload`` on btcusdt@depth until ``stop()``; whether it happened."""
    for _ in range(rounds):
        for _ in range(100):
            hub.publish("btcusdt@depth", payload)
        hub.flush()
        await asyncio.sleep(0)
        if stop():
            return True
    return False


def test_client_that_stops_reading_congests_then_is_dropped() -> None:
    payload = b'{"pad":"' + b"z" * 1000 + b'"}'

    async def main() -> None:
        async with serve(write_high_water=64 << 10, **RELAXED) as (hub, server):
            async with connect(server.url + "/ws/btcusdt@depth") as (tr, cl):
                await _subscribed(hub, "btcusdt@depth")
                tr.underlying_transport.pause_reading()  # the client stops reading
                assert await _flood_until(hub, lambda: hub.congested, payload)
                t0 = time.monotonic()
                await hub.drain(max_wait=0.2)  # a max-speed loop gives up on it
                assert 0.15 < time.monotonic() - t0 < 1.0
                assert not hub.congested
                assert hub.subscribers("btcusdt@depth") == 0
                tr.underlying_transport.resume_reading()
                await asyncio.wait_for(cl.gone.wait(), 2)
                assert cl.close_code is None  # aborted, no close frame
            assert server.violations == {"slow_consumer": 1}
            assert server.closes["slow_consumer"] == 1

    _run(main)


def test_unbounded_buffer_is_dropped_at_write() -> None:
    payload = b'{"pad":"' + b"z" * 1000 + b'"}'

    async def main() -> None:
        async with (
            serve(write_high_water=64 << 10, max_write_buffer=2 << 20, **RELAXED) as (hub, server),
            connect(server.url + "/ws/btcusdt@depth") as (tr, cl),
        ):
            await _subscribed(hub, "btcusdt@depth")
            tr.underlying_transport.pause_reading()
            # a loop that ignores `congested` (real-time pace) overfills the buffer: dropped
            assert await _flood_until(hub, lambda: hub.subscribers("btcusdt@depth") == 0, payload)
            assert server.violations == {"slow_consumer": 1}
            assert not hub.congested
            await asyncio.wait_for(hub.drain(), 1)
            tr.underlying_transport.resume_reading()
            await asyncio.wait_for(cl.gone.wait(), 2)

    _run(main)


# ---------------------------------------------------------------------------------------------
# faults


@dataclass
class Plan:
    """A FaultHook stub: actions for given event numbers of any symbol."""

    at: dict[int, Sequence[FaultActionLike]]

    def on_depth_event(self, symbol: str, n: int) -> Sequence[FaultActionLike]:
        assert symbol == "BTCUSDT"
        return self.at.get(n, ())


def _u(frame: bytes) -> int:
    return int(json.loads(frame)["u"])


async def _faulted(
    actions: Sequence[FaultActionLike], *, settle: float = 0.3, n: int = 8, path: str = "/ws/btcusdt@depth"
) -> tuple[Client, StreamHub]:
    hub = StreamHub(Plan({3: actions}))
    async with serve(hub=hub, **RELAXED) as (_hub, server), connect(server.url + path) as (_tr, cl):
        await _subscribed(hub, "btcusdt@depth")
        for i in range(1, n + 1):
            hub.publish("btcusdt@depth", b'{"u":%d}' % i)
            hub.publish("btcusdt@bookTicker", b'{"u":%d,"bt":1}' % i)  # not a depth stream: never faulted
        hub.flush()
        await asyncio.sleep(settle)
    return cl, hub


def test_fault_drop_dup_reorder() -> None:
    async def main() -> None:
        cl, hub = await _faulted([FaultAction("drop")], settle=0.1)
        assert [_u(m) for m in cl.received] == [1, 2, 4, 5, 6, 7, 8]
        assert hub.faults_applied == {"drop": 1}
        cl, _ = await _faulted([FaultAction("duplicate")], settle=0.1)
        assert [_u(m) for m in cl.received] == [1, 2, 3, 3, 4, 5, 6, 7, 8]
        cl, _ = await _faulted([FaultAction("reorder")], settle=0.1)
        assert [_u(m) for m in cl.received] == [1, 2, 4, 3, 5, 6, 7, 8]

    _run(main)


def test_fault_delay_and_stall() -> None:
    async def main() -> None:
        cl, _ = await _faulted([FaultAction("delay", 0.15)])
        assert [_u(m) for m in cl.received] == [1, 2, 4, 5, 6, 7, 8, 3]
        assert cl.arrivals[-1] - cl.arrivals[0] >= 0.1
        cl, _ = await _faulted([FaultAction("stall", 0.15)])
        assert [_u(m) for m in cl.received] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert cl.arrivals[2] - cl.arrivals[1] >= 0.1  # the connection stayed open, silent

    _run(main)


def test_stall_with_a_long_queue_congests_until_it_ends() -> None:
    async def main() -> None:
        hub = StreamHub(Plan({3: [FaultAction("stall", 0.3)]}))
        async with (
            serve(hub=hub, **RELAXED) as (_h, server),
            connect(server.url + "/ws/btcusdt@depth") as (_tr, cl),
        ):
            await _subscribed(hub, "btcusdt@depth")
            t0 = time.monotonic()
            sent = 0
            while not hub.congested:  # a max-speed loop: publish until told to wait
                for _ in range(1000):
                    sent += 1
                    hub.publish("btcusdt@depth", b'{"u":%d}' % sent)
                hub.flush()
                await asyncio.sleep(0)
            await hub.drain()
            assert time.monotonic() - t0 >= 0.25
            while len(cl.received) < sent:
                await asyncio.sleep(0.01)
            assert [_u(m) for m in cl.received] == list(range(1, sent + 1))
            assert cl.arrivals[2] - cl.arrivals[1] >= 0.25

    _run(main)


def test_fault_close_and_disconnect() -> None:
    async def main() -> None:
        cl, hub = await _faulted([FaultAction("close")], settle=0.2)
        assert [_u(m) for m in cl.received] == [1, 2, 3]
        assert cl.close_code == WSCloseCode.OK
        assert cl.gone.is_set()
        assert hub.violations == {}
        cl, _ = await _faulted([FaultAction("disconnect")], settle=0.2)
        assert [_u(m) for m in cl.received] == [1, 2, 3]
        assert cl.gone.is_set()
        assert cl.close_code is None  # reset, no close frame

    _run(main)


def test_fault_malformed_and_unknown() -> None:
    async def main() -> None:
        cl, _ = await _faulted([FaultAction("malformed")], settle=0.1)
        assert len(cl.received) == 9
        with pytest.raises(json.JSONDecodeError):
            json.loads(cl.received[2])
        assert [_u(m) for m in cl.received[:2] + cl.received[3:]] == [1, 2, 3, 4, 5, 6, 7, 8]
        cl, _ = await _faulted([FaultAction("unknown")], settle=0.1, path="/stream?streams=btcusdt@depth")
        extra = json.loads(cl.received[2])
        assert extra["stream"] == "btcusdt@depth"
        assert extra["data"]["e"] == "simUnknownEvent"
        assert [json.loads(m)["data"].get("u") for m in cl.received] == [1, 2, None, 3, 4, 5, 6, 7, 8]

    _run(main)


def test_fault_observer_and_counting_per_stream() -> None:
    seen: list[tuple[str, str, int, int]] = []

    async def main() -> None:
        hub = StreamHub(Plan({2: [FaultAction("drop")]}), fault_observer=lambda *a: seen.append(a))
        async with (
            serve(hub=hub, **RELAXED) as (_h, server),
            connect(server.url + "/ws/btcusdt@depth/btcusdt@depth@100ms") as (_tr, cl),
        ):
            await _subscribed(hub, "btcusdt@depth@100ms")
            for i in range(1, 4):
                hub.publish("btcusdt@depth", b'{"u":%d}' % i)
                hub.publish("btcusdt@depth@100ms", b'{"u":%d}' % (i + 100))
            hub.flush()
            await asyncio.sleep(0.1)
            assert [_u(m) for m in cl.received] == [1, 101, 3, 103]
        assert seen == [("drop", "BTCUSDT", 2, 1), ("drop", "BTCUSDT", 2, 1)]

    _run(main)


def test_fault_aimed_at_one_connection() -> None:
    seen: list[tuple[str, str, int, int]] = []
    plan = FaultPlan.from_spec("drop@3:conn=2", clock=lambda: 1.0)

    async def main() -> None:
        hub = StreamHub(plan, fault_observer=lambda *a: seen.append(a))
        path = "/ws/btcusdt@depth"
        async with serve(hub=hub, **RELAXED) as (_h, server), connect(server.url + path) as (_t1, first):
            await _subscribed(hub, "btcusdt@depth", 1)
            async with connect(server.url + path) as (_t2, second):
                await _subscribed(hub, "btcusdt@depth", 2)
                assert sorted(conn.number for conn in hub._conns) == [1, 2]
                for i in range(1, 6):
                    hub.publish("btcusdt@depth", b'{"u":%d}' % i)
                hub.flush()
                while len(first.received) < 5 or len(second.received) < 4:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
                assert [_u(m) for m in first.received] == [1, 2, 3, 4, 5]
                assert [_u(m) for m in second.received] == [1, 2, 4, 5]
        assert hub.faults_applied == {"drop": 1}
        assert seen == [("drop", "BTCUSDT", 3, 1)]
        assert plan.log == [{"kind": "drop", "symbol": "BTCUSDT", "at": 3, "time": 1.0, "conn": 2}]

    _run(main)


def test_connections_are_numbered_in_acceptance_order() -> None:
    async def main() -> None:
        hub = StreamHub(Plan({2: [FaultAction("drop", connection=1)]}))
        async with serve(hub=hub, **RELAXED) as (_h, server):
            async with connect(server.url + "/ws/btcusdt@depth") as (_t1, gone):
                await _subscribed(hub, "btcusdt@depth", 1)
            while hub.connection_count:
                await asyncio.sleep(0.001)
            # connection 1 left: a new one is number 2 (numbers are never reused), so no drop
            async with connect(server.url + "/ws/btcusdt@depth") as (_t2, cl):
                await _subscribed(hub, "btcusdt@depth", 1)
                assert [conn.number for conn in hub._conns] == [2]
                for i in range(1, 4):
                    hub.publish("btcusdt@depth", b'{"u":%d}' % i)
                hub.flush()
                while len(cl.received) < 3:
                    await asyncio.sleep(0.01)
                assert [_u(m) for m in cl.received] == [1, 2, 3]
            assert gone.received == []

    _run(main)


# ---------------------------------------------------------------------------------------------
# throughput (measured, never asserted on speed)


def test_measure_throughput_runs() -> None:
    stats = measure_throughput_stats(20_000, step=1000)
    assert stats["msgs_per_s"] > 0
    assert stats["writes"] < 20_000
