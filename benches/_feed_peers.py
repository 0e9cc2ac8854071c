"""The competitors of tickbook's live feed in ``benches/feed_bench.py``: the same job done
with the ``websockets`` library and with aiohttp's WebSocket client.

Each reader does what tickbook's ``DepthFeed`` does for one symbol, the way a careful user of
that library would write it, with the best parts available to them:

* the documented spot procedure: open the combined stream, buffer its events, fetch the REST
  snapshot (aiohttp, concurrently), drop the buffered events it covers, check that the first
  kept event bridges it (``U <= lastUpdateId + 1 <= u``), then check continuity on every
  event (``U <= previous u + 1``, a gap is an error here: the benchmark data has none);
* msgspec decoding into a Struct with typed levels, decoded straight to floats by msgspec
  (``strict=False`` converts the exchange's decimal strings in C: about three times as fast
  as decoding strings and calling ``float()`` on them, measured on the recording);
* the fastest Python book of ``benches/_pipelines.py``: a ``sortedcontainers.SortedDict`` per
  side keyed by float price;
* the best bid and ask read after every message, and an ``on_bbo`` callback when either
  (price or quantity) changed;
* both on uvloop, text frames taken as bytes (no UTF-8 decoding), no compression.

The message loop is written out in full in each reader (as in ``_pipelines``: a shared
helper would add a call per message); only the slow sync phase is shared.

Latency instrumentation (``latency=True`` only, never in throughput runs): neither library
exposes a per-frame hook, so each reader stamps every socket read (``data_received``) and a
small frame-boundary tracker (``FrameClock``) gives each complete frame the time of the read
that completed it. The reader's ``on_bbo`` stamps its entry; the pair goes to ``Samples``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from array import array
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
from sortedcontainers import SortedDict

__all__ = ["READERS", "FrameClock", "Samples", "SyncBroken"]

clock: Callable[[], int] = time.perf_counter_ns  # CLOCK_MONOTONIC: shared with the server process


class SyncBroken(RuntimeError):
    """The stream broke the documented rules (never on the benchmark data)."""


# ------------------------------------------------------------------------------ wire types


class Depth(msgspec.Struct, gc=False):
    e: str
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]


class Combined(msgspec.Struct, gc=False):
    stream: str
    data: Depth


class Snapshot(msgspec.Struct, gc=False):
    lastUpdateId: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


# strict=False: msgspec turns "61837.63000000" into 61837.63 itself.
DECODER = msgspec.json.Decoder(Combined, strict=False)
SNAPSHOT_DECODER = msgspec.json.Decoder(Snapshot, strict=False)


# --------------------------------------------------------------------- instrumentation


class FrameClock:
    """Per-frame arrival times from socket reads: ``feed(data, t)`` after each read, then
    ``stamps.popleft()`` once per message. Server frames only (unmasked)."""

    def __init__(self) -> None:
        self.stamps: collections.deque[int] = collections.deque()
        self._rest = 0  # payload bytes still to come in the current frame
        self._head = b""  # a frame header split across two reads

    def feed(self, data: bytes, t: int) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._rest:
                take = min(self._rest, n - pos)
                self._rest -= take
                pos += take
                if not self._rest:
                    self.stamps.append(t)
                continue
            old = len(self._head)
            head = self._head + data[pos : pos + 14 - old]
            if len(head) < 2:
                self._head = head
                return
            short = head[1] & 0x7F
            size = 2 + (2 if short == 126 else 8 if short == 127 else 0) + (4 if head[1] & 0x80 else 0)
            if len(head) < size:
                self._head = head
                return
            if short == 126:
                length = int.from_bytes(head[2:4], "big")
            elif short == 127:
                length = int.from_bytes(head[2:10], "big")
            else:
                length = short
            pos += size - old
            self._head = b""
            self._rest = length
            if not length:
                self.stamps.append(t)


class Samples:
    """Latency samples: update ID, arrival, callback entry (ns, CLOCK_MONOTONIC)."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.arrived = array("q")
        self.called = array("q")

    def rows(self) -> list[array[int]]:
        return [self.ids, self.arrived, self.called]


# ------------------------------------------------------------------------ shared parts


async def fetch_snapshot(session: aiohttp.ClientSession, rest_url: str, symbol: str) -> Snapshot:
    async with session.get(f"{rest_url}/api/v3/depth", params={"symbol": symbol, "limit": "5000"}) as r:
        body = await r.read()
        if r.status != 200:
            raise SyncBroken(f"snapshot: HTTP {r.status}: {body[:200]!r}")
    return SNAPSHOT_DECODER.decode(body)


class Syncer:
    """The slow phase: buffer until the snapshot is in, then bridge. ``offer(ev)`` returns
    the book (bids, asks, last update ID) once synced, None before."""

    def __init__(self, snapshot: asyncio.Task[Snapshot]) -> None:
        self.snapshot = snapshot
        self.buffer: list[Depth] = []
        self.bids: Any = None
        self.asks: Any = None
        self.last = 0

    def offer(self, ev: Depth) -> tuple[Any, Any, int] | None:
        if self.bids is None:
            self.buffer.append(ev)
            if not self.snapshot.done():
                return None
            snap = self.snapshot.result()
            self.bids = SortedDict({p: q for p, q in snap.bids if q})
            self.asks = SortedDict({p: q for p, q in snap.asks if q})
            self.last = snap.lastUpdateId
            pending, self.buffer = self.buffer, []
        else:
            pending = [ev]
        bids, asks = self.bids, self.asks
        applied = False
        for e in pending:
            if e.u <= self.last:
                continue  # covered by the snapshot
            if e.U > self.last + 1:  # the bridge, then continuity: the same test on spot
                raise SyncBroken(f"no bridge or gap: book at {self.last}, event U={e.U} u={e.u}")
            self.last = e.u
            for p, q in e.b:
                if q:
                    bids[p] = q
                else:
                    bids.pop(p, None)
            for p, q in e.a:
                if q:
                    asks[p] = q
                else:
                    asks.pop(p, None)
            applied = True
        # Synced once an event past the snapshot is applied.
        return (bids, asks, self.last) if applied else None


def top_levels(bids: Any, asks: Any, n: int = 20) -> dict[str, list[list[float]]]:
    return {
        "bids": [[p, bids[p]] for p in reversed(bids.keys()[-n:])],
        "asks": [[p, asks[p]] for p in asks.keys()[:n]],
    }


def result(
    name: str, t_end: int, last: int, bids: Any, asks: Any, applied: int, samples: Samples | None
) -> dict[str, Any]:
    return {
        "client": name,
        "t_end_ns": t_end,
        "synced": True,
        "last_update_id": last,
        "applied": applied,
        "book": top_levels(bids, asks),
        "samples": [list(r) for r in samples.rows()] if samples is not None else None,
    }


# ---------------------------------------------------------------------- websockets


async def read_websockets(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``websockets`` (asyncio API) reader."""
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.protocol import State

    final_u: int = cfg["final_u"]
    samples = Samples() if cfg["latency"] else None
    frames = FrameClock()

    class TimedConnection(ClientConnection):
        def data_received(self, data: bytes) -> None:
            t = clock()
            was_open = self.protocol.state is State.OPEN  # the handshake's reply is no frame
            super().data_received(data)
            if was_open:
                frames.feed(data, t)

    latest: list[Any] = [None, None]

    def on_bbo(top: tuple[tuple[float, float], tuple[float, float]]) -> None:
        if samples is not None:
            samples.called.append(clock())
        latest[0], latest[1] = top  # what a strategy reads: (price, qty) of the best bid and ask

    async with (
        aiohttp.ClientSession() as session,
        connect(
            cfg["stream_url"] + "/stream?streams=" + cfg["stream"],
            compression=None,
            create_connection=TimedConnection if samples is not None else None,
        ) as ws,
    ):
        sync = Syncer(asyncio.ensure_future(fetch_snapshot(session, cfg["rest_url"], cfg["symbol"])))
        recv = ws.recv
        decode = DECODER.decode
        stamps = frames.stamps
        book = None
        while book is None:
            raw = await recv(decode=False)
            if samples is not None:
                stamps.popleft()
            book = sync.offer(decode(raw).data)
        bids, asks, last = book
        bid_top, ask_top = bids.peekitem, asks.peekitem
        prev = (bid_top(-1), ask_top(0))
        applied = 0
        arrived = 0
        while True:
            raw = await recv(decode=False)
            if samples is not None:
                arrived = stamps.popleft()
            ev = decode(raw).data
            if ev.u <= last:
                continue  # a duplicate
            if ev.U > last + 1:
                raise SyncBroken(f"gap: book at {last}, event U={ev.U}")
            last = ev.u
            for p, q in ev.b:
                if q:
                    bids[p] = q
                else:
                    bids.pop(p, None)
            for p, q in ev.a:
                if q:
                    asks[p] = q
                else:
                    asks.pop(p, None)
            applied += 1
            top = (bid_top(-1), ask_top(0))
            if top != prev:
                prev = top
                if samples is not None:
                    samples.ids.append(last)
                    samples.arrived.append(arrived)
                on_bbo(top)
            if last == final_u:
                t_end = clock()
                break
        out = result("websockets", t_end, last, bids, asks, applied, samples)
        ws.close_timeout = 1
    return out


# ------------------------------------------------------------------------- aiohttp


async def read_aiohttp(cfg: dict[str, Any]) -> dict[str, Any]:
    """The aiohttp ``ws_connect`` reader."""
    from aiohttp.client_proto import ResponseHandler

    final_u: int = cfg["final_u"]
    samples = Samples() if cfg["latency"] else None
    frames = FrameClock()
    target: list[Any] = []

    if samples is not None:
        original = ResponseHandler.data_received

        def data_received(self: ResponseHandler, data: bytes) -> None:
            t = clock()
            original(self, data)
            if target and self is target[0]:
                frames.feed(data, t)

        ResponseHandler.data_received = data_received  # type: ignore[method-assign]

    latest: list[Any] = [None, None]

    def on_bbo(top: tuple[tuple[float, float], tuple[float, float]]) -> None:
        if samples is not None:
            samples.called.append(clock())
        latest[0], latest[1] = top  # what a strategy reads: (price, qty) of the best bid and ask

    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            cfg["stream_url"] + "/stream?streams=" + cfg["stream"], decode_text=False, compress=0
        )
        # The server waits 50 ms after the handshake before its first frame, so the frame
        # tracker starts on a frame boundary.
        conn = ws._response.connection
        if conn is not None:
            target.append(conn.protocol)
        sync = Syncer(asyncio.ensure_future(fetch_snapshot(session, cfg["rest_url"], cfg["symbol"])))
        receive = ws.receive
        text = aiohttp.WSMsgType.TEXT
        decode = DECODER.decode
        stamps = frames.stamps
        book = None
        while book is None:
            msg = await receive()
            if msg.type is not text:
                raise SyncBroken(f"unexpected {msg.type!r}: {msg.data!r}")
            if samples is not None:
                stamps.popleft()
            book = sync.offer(decode(msg.data).data)
        bids, asks, last = book
        bid_top, ask_top = bids.peekitem, asks.peekitem
        prev = (bid_top(-1), ask_top(0))
        applied = 0
        arrived = 0
        while True:
            msg = await receive()
            if msg.type is not text:
                raise SyncBroken(f"unexpected {msg.type!r}: {msg.data!r}")
            if samples is not None:
                arrived = stamps.popleft()
            ev = decode(msg.data).data
            if ev.u <= last:
                continue  # a duplicate
            if ev.U > last + 1:
                raise SyncBroken(f"gap: book at {last}, event U={ev.U}")
            last = ev.u
            for p, q in ev.b:
                if q:
                    bids[p] = q
                else:
                    bids.pop(p, None)
            for p, q in ev.a:
                if q:
                    asks[p] = q
                else:
                    asks.pop(p, None)
            applied += 1
            top = (bid_top(-1), ask_top(0))
            if top != prev:
                prev = top
                if samples is not None:
                    samples.ids.append(last)
                    samples.arrived.append(arrived)
                on_bbo(top)
            if last == final_u:
                t_end = clock()
                break
        out = result("aiohttp", t_end, last, bids, asks, applied, samples)
        await asyncio.wait_for(ws.close(), 1)
    return out


# ------------------------------------------------------- transport only (no decode, no book)


async def count_websockets(cfg: dict[str, Any]) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    total: int = cfg["frames"]
    async with connect(cfg["stream_url"] + "/stream?streams=" + cfg["stream"], compression=None) as ws:
        recv = ws.recv
        for _ in range(total):
            await recv(decode=False)
        t_end = clock()
        ws.close_timeout = 1
    return {"client": "websockets-recv", "t_end_ns": t_end, "frames": total}


async def count_aiohttp(cfg: dict[str, Any]) -> dict[str, Any]:
    total: int = cfg["frames"]
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            cfg["stream_url"] + "/stream?streams=" + cfg["stream"], decode_text=False, compress=0
        )
        receive = ws.receive
        for _ in range(total):
            await receive()
        t_end = clock()
        await asyncio.wait_for(ws.close(), 1)
    return {"client": "aiohttp-recv", "t_end_ns": t_end, "frames": total}


async def count_picows(cfg: dict[str, Any]) -> dict[str, Any]:
    from picows import WSFrame, WSListener, WSTransport, ws_connect

    total: int = cfg["frames"]
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Counter(WSListener):
        seen = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            self.seen += 1
            if self.seen == total:
                done.set_result(clock())

    transport, _ = await ws_connect(Counter, cfg["stream_url"] + "/stream?streams=" + cfg["stream"])
    t_end = await done
    transport.disconnect()
    return {"client": "picows-recv", "t_end_ns": t_end, "frames": total}


READERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "websockets": read_websockets,
    "aiohttp": read_aiohttp,
    "websockets-recv": count_websockets,
    "aiohttp-recv": count_aiohttp,
    "picows-recv": count_picows,
}
