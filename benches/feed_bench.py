"""The live feed on loopback: tickbook's ``DepthFeed`` against readers built on ``websockets``
and on aiohttp, side by side in one run, on the real spot BTCUSDT recording.

    python benches/feed_bench.py [--quick] [--reps N] [--out BENCHMARKS.md] [--save-json FILE]

Measured, for every client in its own fresh process:

* maximum sustained messages/s into a synced book: the server sends as fast as TCP lets it
  (backpressure), from a point where the client is synced; from the server's first send to
  the client's callback for the last message;
* latency at paced rates (``--rates``, default 1k, 10k and 100k messages/s, one message per
  send, ``1 / rate`` apart and never closer): from the server's send to the client's
  ``on_bbo`` entry (one clock, CLOCK_MONOTONIC, shared by the two processes: the same
  instrument for every client), and in-process, from the frame's arrival in the client's
  receive path to ``on_bbo`` entry;
* at the end of every run the client's top 20 levels per side and its update ID must equal
  the truth, else the run fails: a fast wrong client is not a result.

tickbook's feed runs three ways: as it comes (``tickbook-c``: the event loop sleeps in
``epoll_wait`` between messages), with ``busy_poll=True`` (``tickbook-c-busy``: the loop never
sleeps, and the hot path is warmed up after 100 µs without a message) and with busy polling
alone (``tickbook-c-busy-nowarm``: ``busy_poll_warm_up=None``); for each, the CPU time the
client process spent from its book's sync to the last message is reported as a share of one
core.

The server (``feed_bench.py serve``, started by this script) runs in its own process, so the
client has a core to itself on a 2-core machine. It is not ``tickbook sim``: the exchange
paces by recorded time, and exact message rates with one frame per send need a sender that
does nothing else. It serves the recording's messages byte for byte (then a short synthetic
tail that walks the book back to its starting state, so the recording can repeat for as long
as a run needs, with the update IDs moved on each time), the REST snapshot and exchangeInfo.

With ``--out FILE`` the report replaces the block between ``<!-- feed -->`` and
``<!-- /feed -->`` in FILE (``benches/report.py`` keeps that block when it rewrites
BENCHMARKS.md). Internal subcommands: ``serve`` and ``client`` (see ``--help`` of each).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import numpy as np
from sortedcontainers import SortedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _pipelines as pl

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- feed -->"
END = "<!-- /feed -->"
SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
PREFIX = 64  # events sent before the measured part: the client syncs on them
SNAPSHOT_AT = 31  # the REST snapshot is the book after this event (bridged by the next one)
RESET_LEVELS = 40  # levels per message of the synthetic tail that resets the book
TOP = 20  # levels per side compared with the truth
SECONDS = {1000: 3.0, 10_000: 2.0, 100_000: 1.5}  # length of a paced run per rate
QUICK_SECONDS = {1000: 1.0, 10_000: 1.0, 100_000: 0.5}
GRACE = 0.1  # seconds between the snapshot being served and the measured part
IDLE_FRAMES = 1500  # frames per pass of the router-alone idle test (read_memory)
IDLE_WARMUP = 100  # the first ones are not counted
ID_RE = re.compile(rb'"U":(\d+),"u":(\d+)')
BUSY = "tickbook-c-busy"
BUSY_NOWARM = "tickbook-c-busy-nowarm"
TICKBOOK = ("tickbook-c", BUSY, BUSY_NOWARM, "tickbook-py")
PEERS = ("aiohttp", "websockets")
RAW = ("picows-recv", "aiohttp-recv", "websockets-recv")
MEMORY = "tickbook-c-memory"
FLOORS = (MEMORY, *RAW)  # rows that show where the time goes: no socket, or no decode and no book
LABELS = {
    "tickbook-c": "tickbook `DepthFeed` (Cython router + core)",
    BUSY: "tickbook `DepthFeed(busy_poll=True)` (the same; the event loop never sleeps, hot path warmed up)",
    BUSY_NOWARM: "tickbook `DepthFeed(busy_poll=True, busy_poll_warm_up=None)` (busy polling alone)",
    "tickbook-py": "tickbook `DepthFeed`, pure-Python router + reference book",
    "aiohttp": "aiohttp `ws_connect` + msgspec + SortedDict[float]",
    "websockets": "`websockets` + msgspec + SortedDict[float]",
    MEMORY: "tickbook's Cython router fed the same frames from memory (no socket, no picows)",
    "picows-recv": "picows on uvloop, receive only (no decode, no book)",
    "aiohttp-recv": "aiohttp, receive only",
    "websockets-recv": "`websockets`, receive only",
}

clock = time.perf_counter_ns  # CLOCK_MONOTONIC on Linux: one clock for every process


# ==================================================================================== stream


class _Truth:
    """A book of exact strings, keyed by float price for order: the oracle of every run."""

    def __init__(self, bids: dict[str, str], asks: dict[str, str]) -> None:
        self.bids = SortedDict({float(p): (p, q) for p, q in bids.items()})
        self.asks = SortedDict({float(p): (p, q) for p, q in asks.items()})

    def apply(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if float(q):
                    side[float(p)] = (p, q)
                else:
                    side.pop(float(p), None)
        if self.bids and self.asks:
            assert self.bids.peekitem(-1)[0] < self.asks.peekitem(0)[0], "the stream crossed the book"

    def state(self) -> tuple[dict[str, str], dict[str, str]]:
        return dict(self.bids.values()), dict(self.asks.values())

    def top(self, n: int = TOP) -> dict[str, list[tuple[str, str]]]:
        return {
            "bids": [self.bids[k] for k in reversed(self.bids.keys()[-n:])],
            "asks": [self.asks[k] for k in self.asks.keys()[:n]],
        }


def _payload(event_time: int, first: int, final: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    data = {"e": "depthUpdate", "E": event_time, "s": SYMBOL, "U": first, "u": final, "b": bids, "a": asks}
    return msgspec.json.encode({"stream": STREAM, "data": data})


def ws_frame(payload: bytes) -> bytes:
    """A server-to-client text frame (unmasked)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


@dataclass
class LoopStream:
    """One loop of the stream: the recording's depth messages as recorded, then a synthetic
    tail that sets the book back to the recording's starting state. Loop ``k`` is loop 0
    with every update ID moved on by ``k * span``, so the loops chain without a gap and the
    book after global event ``g`` is the book after loop event ``g % size``."""

    payloads: list[bytes]
    levels: list[list[list[list[str]]]]  # per loop event: [bids, asks] of [price, qty]
    first: list[int]
    final: list[int]
    real: int  # the recorded messages at the start of a loop
    span: int
    initial: tuple[dict[str, str], dict[str, str]]
    snapshot: bytes  # REST body: the book after event SNAPSHOT_AT
    best_bid: list[tuple[str, str]]  # after each loop event
    event_time: int
    level_counts: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.payloads)

    def ids(self, g: int) -> tuple[int, int]:
        k, j = divmod(g, self.size)
        return self.first[j] + k * self.span, self.final[j] + k * self.span

    def closing_id(self, events: int) -> int:
        """The update ID of the closing event sent after ``events`` events."""
        return self.ids(events - 1)[1] + 1

    def closing(self, events: int) -> bytes:
        """An event that changes the best bid's quantity: every client's callback sees the end."""
        price, qty = self.best_bid[(events - 1) % self.size]
        new = f"{Decimal(qty) + Decimal('0.00001'):.8f}"
        uid = self.closing_id(events)
        return _payload(self.event_time, uid, uid, [[price, new]], [])

    def truth(self, events: int) -> dict[str, Any]:
        """Top levels after ``events`` events and the closing one."""
        book = _Truth(*self.initial)
        for j in range(((events - 1) % self.size) + 1):
            book.apply(*self.levels[j])
        price, qty = self.best_bid[(events - 1) % self.size]
        book.apply([[price, f"{Decimal(qty) + Decimal('0.00001'):.8f}"]], [])
        return {"last_update_id": self.closing_id(events), **book.top()}

    def index_of(self, ids: np.ndarray) -> np.ndarray:
        """Global event index of each final update ID (-1 where none)."""
        final = np.asarray(self.final, dtype=np.int64)
        k = (ids - final[0]) // self.span
        local = ids - k * self.span
        j = np.clip(np.searchsorted(final, local), 0, self.size - 1)
        return np.where(final[j] == local, k * self.size + j, -1)


def build_stream() -> LoopStream:
    ds = pl.load("spot")
    snap = msgspec.json.decode(ds.snapshot)
    initial = (
        {p: q for p, q in snap["bids"] if Decimal(q)},
        {p: q for p, q in snap["asks"] if Decimal(q)},
    )
    truth = _Truth(*initial)
    payloads: list[bytes] = []
    levels: list[list[list[list[str]]]] = []
    first: list[int] = []
    final: list[int] = []
    event_time = 0
    for raw in ds.messages:
        ev = msgspec.json.decode(raw)["data"]
        payloads.append(raw)
        levels.append([ev["b"], ev["a"]])
        first.append(ev["U"])
        final.append(ev["u"])
        event_time = ev["E"]
        truth.apply(ev["b"], ev["a"])
    real = len(payloads)
    # The tail. Side by side: set the start's levels, then delete the rest. The side whose new
    # levels cannot cross the other side's current ones goes first (asks, when the end's best
    # bid is below the start's best ask: the price fell); the second side then meets exactly
    # the start's levels. No book on the way is crossed or has an empty side.
    end = truth.state()
    first_side = 1 if max(map(float, end[0])) < min(map(float, initial[1])) else 0
    ops: list[tuple[int, str, str]] = []
    for side in (first_side, 1 - first_side):
        ops += [(side, p, q) for p, q in initial[side].items() if end[side].get(p) != q]
        ops += [(side, p, "0.00000000") for p in end[side] if p not in initial[side]]
    uid = final[-1] + 1
    for start in range(0, len(ops), RESET_LEVELS):
        chunk = ops[start : start + RESET_LEVELS]
        b = [[p, q] for side, p, q in chunk if side == 0]
        a = [[p, q] for side, p, q in chunk if side == 1]
        payloads.append(_payload(event_time, uid, uid, b, a))
        levels.append([b, a])
        first.append(uid)
        final.append(uid)
        uid += 1
    span = uid - first[0]
    # Replay one loop from the start: it must come back to the start exactly.
    book = _Truth(*initial)
    best_bid: list[tuple[str, str]] = []
    snapshot = b""
    for j, (b, a) in enumerate(levels):
        book.apply(b, a)
        best_bid.append(book.bids.peekitem(-1)[1])
        if j == SNAPSHOT_AT:
            bids, asks = book.top(1 << 30)["bids"], book.top(1 << 30)["asks"]
            snapshot = msgspec.json.encode({"lastUpdateId": final[j], "bids": bids, "asks": asks})
    assert book.state() == initial, "the tail does not reset the book"
    return LoopStream(
        payloads=payloads,
        levels=levels,
        first=first,
        final=final,
        real=real,
        span=span,
        initial=initial,
        snapshot=snapshot,
        best_bid=best_bid,
        event_time=event_time,
        level_counts=[len(b) + len(a) for b, a in levels],
    )


def encode_frames(stream: LoopStream, events: int) -> tuple[bytearray, np.ndarray]:
    """Frames of global events 0..events-1 in one buffer, and their offsets (events + 1)."""
    template = bytearray()
    offsets = [0]
    patches: list[tuple[int, int]] = []  # (position of the digits in the template, loop-0 ID)
    for j, payload in enumerate(stream.payloads):
        frame = ws_frame(payload)
        m = ID_RE.search(payload)
        assert m is not None
        assert (int(m[1]), int(m[2])) == (stream.first[j], stream.final[j])
        base = len(template) + len(frame) - len(payload)
        patches += [(base + m.start(1), stream.first[j]), (base + m.start(2), stream.final[j])]
        template += frame
        offsets.append(len(template))
    loops = math.ceil(events / stream.size)
    width = len(str(stream.final[0]))
    assert len(str(stream.final[-1] + loops * stream.span)) == width, "IDs would change width"
    size = len(template)
    buf = bytearray(size * loops)
    for k in range(loops):
        at = k * size
        buf[at : at + size] = template
        if k:
            shift = k * stream.span
            for pos, uid in patches:
                buf[at + pos : at + pos + width] = b"%d" % (uid + shift)
    local = np.asarray(offsets[:-1], dtype=np.int64)
    starts = (np.arange(loops, dtype=np.int64)[:, None] * size + local[None, :]).ravel()[:events]
    end = starts[-1] + (offsets[(events - 1) % stream.size + 1] - offsets[(events - 1) % stream.size])
    return buf, np.append(starts, end)


# ==================================================================================== server


EXCHANGE_INFO = msgspec.json.encode(
    {
        "timezone": "UTC",
        "serverTime": 0,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": SYMBOL,
                "status": "TRADING",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                ],
            }
        ],
    }
)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class BenchServer:
    """WebSocket and REST on 127.0.0.1, one thread per connection, blocking sockets.

    Stream URL ``ws://HOST:PORT/run/ID/MODE/RATE/COUNT`` (``/stream?streams=...`` appended by
    the client): ``MODE`` ``book`` waits for the REST snapshot of run ``ID`` before the
    measured part, ``raw`` does not; ``RATE`` 0 sends as fast as TCP allows, else that many
    messages/s, one per send; ``COUNT`` the measured events (then the closing one). REST base
    ``http://HOST:PORT/run/ID``: ``/api/v3/depth``, ``/api/v3/exchangeInfo``; ``GET
    /bench/run/ID`` reports a run (its send times in WORKDIR/ID.sends.npy when paced).
    """

    def __init__(self, stream: LoopStream, events: int, workdir: Path) -> None:
        self.stream = stream
        self.workdir = workdir
        self.buf, offsets = encode_frames(stream, events)
        self.offsets: list[int] = offsets.tolist()  # plain ints: cheaper in the paced loop
        self.view = memoryview(self.buf)
        self.events = events
        self.lock = threading.Lock()
        self.served: dict[str, threading.Event] = {}
        self.runs: dict[str, dict[str, Any]] = {}

    def served_event(self, rid: str) -> threading.Event:
        with self.lock:
            return self.served.setdefault(rid, threading.Event())

    # ---------------------------------------------------------------------- websocket

    def serve_ws(self, sock: socket.socket) -> None:
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=self._ws_connection, args=(conn,), daemon=True).start()

    def _ws_connection(self, conn: socket.socket) -> None:
        rid = "?"
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            target = urlsplit(head[0].split(" ")[1])
            headers = {
                k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if ":" in h)
            }
            parts = target.path.strip("/").split("/")
            if len(parts) != 6 or parts[0] != "run" or parts[5] != "stream" or STREAM not in target.query:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            rid, mode, rate, count = parts[1], parts[2], float(parts[3]), int(parts[4])
            accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + WS_GUID).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self._stream(conn, rid, mode, rate, count)
            self._await_close(conn)
        except (OSError, ValueError, KeyError) as exc:
            with self.lock:
                self.runs.setdefault(rid, {})["error"] = repr(exc)
        finally:
            conn.close()

    def _stream(self, conn: socket.socket, rid: str, mode: str, rate: float, count: int) -> None:
        events = PREFIX + count
        if events > self.events:
            raise ValueError(f"run {rid}: {events} events asked, {self.events} built")
        offsets, view = self.offsets, self.view
        closing = ws_frame(self.stream.closing(events))
        time.sleep(0.05)  # a handshake and the first frames never share a read (see _feed_peers)
        conn.sendall(view[: offsets[PREFIX]])
        if mode == "book" and not self.served_event(rid).wait(30):
            raise ValueError(f"run {rid}: no snapshot request")
        time.sleep(GRACE)
        info: dict[str, Any] = {"rate": rate, "count": count + 1, "events": events}
        if rate <= 0:
            t0 = clock()
            conn.sendall(view[offsets[PREFIX] : offsets[events]])
            conn.sendall(closing)
            info |= {"t_start_ns": t0, "t_sent_ns": clock()}
        else:
            info |= self._paced(conn, rid, rate, events, closing)
        with self.lock:
            self.runs[rid] = info | {"done": True}

    def _paced(
        self, conn: socket.socket, rid: str, rate: float, events: int, closing: bytes
    ) -> dict[str, Any]:
        """One message per send, ``1 / rate`` apart, never closer: after a stall (this process
        descheduled, or a send blocked by a reader that is behind) the sender goes on at the
        rate from where it is, it does not burst to catch up with the schedule. The achieved
        rate says how much a run lost that way."""
        offsets, view, send = self.offsets, self.view, conn.sendall
        n = events - PREFIX + 1
        period = 1e9 / rate
        stamps = [0] * n
        due = float(clock() + 1_000_000)
        for i in range(n):
            now = clock()
            if due - now > 600_000:  # time.sleep overshoots by 70-300 µs here
                time.sleep((due - now - 400_000) / 1e9)
            while now < due:
                now = clock()
            stamps[i] = now
            if i < n - 1:
                send(view[offsets[PREFIX + i] : offsets[PREFIX + i + 1]])
            else:
                send(closing)
            due = max(due, now) + period
        path = self.workdir / f"{rid}.sends.npy"
        sent = np.asarray(stamps, dtype=np.int64)
        np.save(path, sent)
        gaps = np.diff(sent) - period
        return {
            "t_start_ns": stamps[0],
            "t_sent_ns": clock(),
            "sends": str(path),
            "achieved": (n - 1) / max(1, int(stamps[-1] - stamps[0])) * 1e9,
            "late_p99_us": float(np.percentile(gaps, 99)) / 1e3,  # sends later than 1 / rate after the last
            "stall_max_us": float(gaps.max()) / 1e3,
        }

    @staticmethod
    def _await_close(conn: socket.socket) -> None:
        """Read the client's frames until its close (answered) or EOF."""
        conn.settimeout(30)
        pending = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
            while len(pending) >= 2:
                short = pending[1] & 0x7F
                size = 2 + (2 if short == 126 else 8 if short == 127 else 0) + (4 if pending[1] & 0x80 else 0)
                if len(pending) < size:
                    break
                length = (
                    int.from_bytes(pending[2:4], "big")
                    if short == 126
                    else int.from_bytes(pending[2:10], "big")
                    if short == 127
                    else short
                )
                if len(pending) < size + length:
                    break
                if pending[0] & 0x0F == 0x8:
                    conn.sendall(b"\x88\x02\x03\xe8")
                    return
                pending = pending[size + length :]

    # --------------------------------------------------------------------------- REST

    def rest_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path).path.strip("/").split("/")
                body: bytes | None = None
                if len(parts) == 5 and parts[0] == "run" and parts[2:4] == ["api", "v3"]:
                    if parts[4] == "depth":
                        body = server.stream.snapshot
                        server.served_event(parts[1]).set()
                    elif parts[4] == "exchangeInfo":
                        body = EXCHANGE_INFO
                elif len(parts) == 3 and parts[:2] == ["bench", "run"]:
                    with server.lock:
                        run = server.runs.get(parts[2])
                    body = msgspec.json.encode(run or {"done": False})
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="feed_bench.py serve", description="the loopback exchange")
    parser.add_argument("--events", type=int, required=True, help="events to build (prefix + measured)")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cpu", type=int, help="run on this CPU only")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    server = BenchServer(build_stream(), args.events, args.workdir)
    ws_sock = socket.create_server(("127.0.0.1", 0))
    rest = ThreadingHTTPServer(("127.0.0.1", 0), server.rest_handler())
    rest.daemon_threads = True
    threading.Thread(target=server.serve_ws, args=(ws_sock,), daemon=True).start()
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    print(json.dumps({"ws": ws_sock.getsockname()[1], "rest": rest.server_address[1]}), flush=True)
    sys.stdin.read()  # runs until the parent closes our stdin
    return 0


# ==================================================================================== clients


async def read_tickbook(cfg: dict[str, Any]) -> dict[str, Any]:
    """tickbook's ``DepthFeed`` with an ``on_bbo`` callback that reads the best bid and ask;
    ``tickbook-c-busy`` with ``busy_poll=True``, ``tickbook-c-busy-nowarm`` also with
    ``busy_poll_warm_up=None``. Also the process's CPU time from the book's sync to the last
    callback, over the wall time between them (1.0: one whole core)."""
    from _feed_peers import Samples
    from tickbook.feed import DepthFeed, StateEvent, StateKind
    from tickbook.feed import connection as feed_connection

    samples = Samples() if cfg["latency"] else None
    frame_at = [0]
    if samples is not None:
        # The issue's instrument: a timestamp at the entry of picows' frame callback.
        base = feed_connection._Listener

        class TimedListener(base):  # type: ignore[misc, valid-type]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                frame_at[0] = clock()
                base.on_ws_frame(self, transport, frame)

        feed_connection._Listener = TimedListener  # type: ignore[misc]

    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    final_u: int = cfg["final_u"]

    latest: list[Any] = [None, None]  # what a strategy reads: (price, qty) of the best bid and ask

    if samples is not None:
        ids, arrived, called = samples.ids.append, samples.arrived.append, samples.called.append

        def on_bbo(book: Any) -> None:
            t = clock()
            called(t)
            arrived(frame_at[0])
            uid = book.last_update_id
            ids(uid)
            latest[0] = book.best_bid()
            latest[1] = book.best_ask()
            if uid == final_u and not done.done():
                done.set_result(t)
    else:

        def on_bbo(book: Any) -> None:
            latest[0] = book.best_bid()
            latest[1] = book.best_ask()
            if book.last_update_id == final_u and not done.done():
                done.set_result(clock())

    feed = DepthFeed(
        "spot",
        [cfg["symbol"]],
        rest_url=cfg["rest_url"],
        stream_url=cfg["stream_url"],
        implementation="py" if cfg["client"] == "tickbook-py" else "c",
        busy_poll=cfg["client"] in (BUSY, BUSY_NOWARM),
        busy_poll_warm_up=None if cfg["client"] == BUSY_NOWARM else 100e-6,
    )
    feed.on_bbo(on_bbo)
    synced_at: list[int] = []  # wall clock, process CPU time (ns)

    def on_state(event: StateEvent) -> None:
        if event.kind is StateKind.SYNCED and not synced_at:
            synced_at.extend((clock(), time.process_time_ns()))

    feed.on_state(on_state)
    async with feed:
        t_end = await done
        cpu_end = time.process_time_ns()
        stats = feed.stats()
        book = feed.book(cfg["symbol"])
        top = {"bids": book.bids_str(TOP), "asks": book.asks_str(TOP)}
        synced, last = book.synced, book.last_update_id
    sym = stats["symbols"][cfg["symbol"]]
    return {
        "client": cfg["client"],
        "t_end_ns": t_end,
        "synced": synced,
        "last_update_id": last,
        "applied": sym["applied"],
        "book": top,
        "samples": [list(r) for r in samples.rows()] if samples is not None else None,
        "router_callback_latency_ns": sym["callback_latency_ns"],
        "cpu_share": (cpu_end - synced_at[1]) / max(1, t_end - synced_at[0]) if synced_at else None,
        "warm_ups": feed._warm_up.runs if feed._warm_up is not None else 0,
        "problems": {k: sym[k] for k in ("gaps", "resyncs", "reconnects", "bad_messages", "callback_errors")},
        "errors": list(feed.errors),
    }


class _Hooks:
    """The feed's side of the router, for a router used alone: counts what it is told."""

    def __init__(self) -> None:
        self.problems: dict[str, int] = {"gaps": 0, "bad_messages": 0, "callback_errors": 0, "unrouted": 0}

    def router_flags(self, slot: Any, flags: int) -> None:
        self.problems["gaps"] += 1

    def router_state(self, slot: Any) -> None:
        pass

    def router_bad(self, slot: Any, exc: BaseException, payload: bytes) -> None:
        self.problems["bad_messages"] += 1

    def router_callback_error(self, slot: Any, callback: object, exc: BaseException) -> None:
        self.problems["callback_errors"] += 1

    def router_unrouted(self, router: Any, name: bytes | None, payload: bytes) -> None:
        self.problems["unrouted"] += 1

    def router_handover(self, slot: Any, router: Any) -> None:
        pass


def _memory_router(stream: LoopStream, symbol: str, hooks: _Hooks) -> tuple[Any, Any]:
    """A router and its book, synced from the server's snapshot, with the benchmark's on_bbo."""
    from tickbook._book import OrderBook
    from tickbook._router import DepthSlot, Router

    book = OrderBook(symbol, "spot")
    slot = DepthSlot(book, STREAM, hooks)
    router = Router(hooks, False)
    router.add(slot)
    snap = msgspec.json.decode(stream.snapshot)
    book.apply_snapshot(snap["lastUpdateId"], snap["bids"], snap["asks"])
    latest: list[Any] = [None, None]

    def on_bbo(book: Any) -> None:
        latest[0] = book.best_bid()
        latest[1] = book.best_ask()

    slot.set_callbacks((on_bbo,), ())
    return router, book


async def read_memory(cfg: dict[str, Any]) -> dict[str, Any]:
    """tickbook's Cython router alone: the frames a network client gets after the snapshot,
    fed from memory, with the same ``on_bbo`` callback (where the feed's time goes).

    Then the first ``IDLE_FRAMES`` of them again, timing each ``feed`` call (frame in,
    callbacks returned): back to back, with a 1 ms sleep between frames (what a reader at
    1k messages/s does), and with a 1 ms busy-wait instead of the sleep."""
    stream = build_stream()
    events = cfg["frames"] - 1
    buf, offsets = encode_frames(stream, events)
    view = memoryview(buf)
    frames = []
    for g in range(SNAPSHOT_AT + 1, events):
        frame = view[offsets[g] : offsets[g + 1]]
        short = frame[1] & 0x7F
        frames.append(frame[2 + (2 if short == 126 else 8 if short == 127 else 0) :])
    frames.append(memoryview(stream.closing(events)))
    hooks = _Hooks()
    router, book = _memory_router(stream, cfg["symbol"], hooks)
    feed = router.feed
    t0 = clock()
    for frame in frames:
        feed(frame, True)
    t1 = clock()
    out = {
        "client": cfg["client"],
        "msgs_per_s": len(frames) / (t1 - t0) * 1e9,
        "synced": book.synced,
        "last_update_id": book.last_update_id,
        "book": {"bids": book.bids_str(TOP), "asks": book.asks_str(TOP)},
        "problems": hooks.problems,
    }
    counts = np.asarray(stream.level_counts)
    local = (np.arange(IDLE_FRAMES) + SNAPSHOT_AT + 1) % stream.size
    median = statistics.median(stream.level_counts[: stream.real])
    mid = (local < stream.real) & (abs(counts[local] - median) <= 0.2 * median)
    idle: dict[str, Any] = {}
    for mode in ("back_to_back", "sleep_1ms", "spin_1ms"):
        router, book = _memory_router(stream, cfg["symbol"], hooks)
        feed = router.feed
        took = np.zeros(IDLE_FRAMES, dtype=np.int64)
        for i, frame in enumerate(frames[:IDLE_FRAMES]):
            if mode == "sleep_1ms":
                time.sleep(0.001)
            elif mode == "spin_1ms":
                until = clock() + 1_000_000
                while clock() < until:
                    pass
            start = clock()
            feed(frame, True)
            took[i] = clock() - start
        counted = np.arange(IDLE_FRAMES) >= IDLE_WARMUP
        idle[mode] = {"all": _pcts(took[counted]), "median_size": _pcts(took[counted & mid])}
    out["idle"] = idle
    return out


def client_main(argv: list[str]) -> int:
    import uvloop

    cfg = json.loads(argv[0])
    if cfg.get("cpu") is not None:
        os.sched_setaffinity(0, {cfg["cpu"]})
    if cfg["client"] in TICKBOOK:
        coro = read_tickbook(cfg)
    elif cfg["client"] == MEMORY:
        coro = read_memory(cfg)
    else:
        from _feed_peers import READERS

        coro = READERS[cfg["client"]](cfg)

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, cfg["timeout"])

    collections: dict[int, list[int]] = {}  # generation -> [count, total ns, max ns]
    started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = clock()
        else:
            took = clock() - started[0]
            entry = collections.setdefault(info["generation"], [0, 0, 0])
            entry[0] += 1
            entry[1] += took
            entry[2] = max(entry[2], took)

    gc.callbacks.append(on_gc)
    out = uvloop.run(bounded())
    gc.callbacks.remove(on_gc)
    out["gc"] = {str(k): v for k, v in sorted(collections.items())}
    Path(cfg["out"]).write_bytes(msgspec.json.encode(out))
    return 0


# ============================================================================= orchestration


@dataclass
class Plan:
    reps: int
    rates: list[int]
    clients: list[str]
    raw: bool
    fast_count: int  # measured messages of a maximum-speed run, tickbook-c and receive-only
    slow_count: int  # the same for the slower clients
    seconds: dict[int, float]  # duration of a paced run per rate
    headroom: float = 1.25  # a paced rate is run only under max sustained / headroom
    pin: bool = False  # server on CPU 0, clients on CPU 1

    def count(self, client: str, rate: int) -> int:
        if rate:
            return max(500, int(rate * self.seconds.get(rate, 1.0)))
        return self.fast_count if client in ("tickbook-c", BUSY, BUSY_NOWARM, *FLOORS) else self.slow_count

    def max_events(self) -> int:
        return PREFIX + max([self.fast_count, self.slow_count] + [self.count("", r) for r in self.rates])


class Orchestrator:
    def __init__(
        self,
        plan: Plan,
        stream: LoopStream,
        workdir: Path,
        verbose: bool = True,
        wrap: list[str] | None = None,
    ) -> None:
        self.wrap = wrap or []
        self.plan = plan
        self.stream = stream
        self.workdir = workdir
        self.verbose = verbose
        self.runs = 0
        self.server: subprocess.Popen[str] | None = None
        self.ports: dict[str, int] = {}
        self._truth: dict[int, dict[str, Any]] = {}

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        cmd = [sys.executable, __file__, "serve", "--events", str(self.plan.max_events())]
        cmd += ["--workdir", str(self.workdir)] + (["--cpu", "0"] if self.plan.pin else [])
        self.server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert self.server.stdout is not None
            line = self.server.stdout.readline()
            if not line:
                raise RuntimeError("the benchmark server did not start")
            self.ports = json.loads(line)
            yield
        finally:
            assert self.server.stdin is not None
            self.server.stdin.close()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def truth(self, events: int) -> dict[str, Any]:
        if events not in self._truth:
            self._truth[events] = self.stream.truth(events)
        return self._truth[events]

    def run(self, client: str, rate: int) -> dict[str, Any]:
        self.runs += 1
        rid = f"r{self.runs}"
        count = self.plan.count(client, rate)
        events = PREFIX + count
        raw = client in RAW
        mode = "raw" if raw else "book"
        latency = rate > 0
        timeout = 60 + 3 * count / max(rate, 5_000)
        out_path = self.workdir / f"{rid}.json"
        cfg: dict[str, Any] = {
            "client": client,
            "symbol": SYMBOL,
            "stream": STREAM,
            "rest_url": f"http://127.0.0.1:{self.ports['rest']}/run/{rid}",
            "stream_url": f"ws://127.0.0.1:{self.ports['ws']}/run/{rid}/{mode}/{rate}/{count}",
            "final_u": self.stream.closing_id(events),
            "frames": events + 1,
            "latency": latency,
            "timeout": timeout,
            "out": str(out_path),
            "cpu": 1 if self.plan.pin else None,
        }
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
        command = [sys.executable, __file__, "client", json.dumps(cfg)]
        started = time.monotonic()
        out: dict[str, Any] = {"client": client, "rate": rate, "count": count + 1, "run": rid}
        try:
            proc = subprocess.run(
                [*(w.replace("{run}", f"{client}-{rate}-{rid}") for w in self.wrap), *command],
                capture_output=True,
                text=True,
                timeout=timeout + 30,
                env=env,
            )
        except subprocess.TimeoutExpired:
            out["error"] = f"no answer in {timeout + 30:.0f} s"
            self._say(f"{client:16} rate {rate:>7}: FAILED {out['error']}")
            return out
        if proc.returncode != 0:
            out["error"] = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            self._say(f"{client:16} rate {rate:>7}: FAILED {out['error']}\n{proc.stderr[-2000:]}")
            return out
        res = msgspec.json.decode(out_path.read_bytes())
        server = self._server_run(rid) if client != MEMORY else {}
        if client != MEMORY and "t_start_ns" not in server:
            out["error"] = f"server: {server.get('error', 'no record of the run')}"
            self._say(f"{client:16} rate {rate:>7}: FAILED {out['error']}")
            return out
        out["wall_s"] = time.monotonic() - started
        out["problems"] = res.get("problems", {})
        out["gc"] = res.get("gc", {})
        if res.get("cpu_share") is not None:
            out["cpu_share"] = res["cpu_share"]
            out["warm_ups"] = res.get("warm_ups", 0)
        if not raw:
            wrong = self._check(client, res, events)
            if wrong:
                out["error"] = f"wrong book: {wrong}"
                self._say(f"{client:16} rate {rate:>7}: WRONG BOOK {wrong}")
                return out
            out["correct"] = True
        if client == MEMORY:
            out["msgs_per_s"] = res["msgs_per_s"]
            out["idle"] = res["idle"]
            self._say(f"{client:16} max speed: {out['msgs_per_s']:>12,.0f} msgs/s (from memory)")
        elif rate == 0:
            out["msgs_per_s"] = (count + 1) / (res["t_end_ns"] - server["t_start_ns"]) * 1e9
            self._say(f"{client:16} max speed: {out['msgs_per_s']:>12,.0f} msgs/s ({count + 1:,} messages)")
        else:
            out |= self._latency(res, server, events)
            out["router"] = res.get("router_callback_latency_ns")
            wire, inproc = out["wire"]["all"], out["inproc"]["all"]
            self._say(
                f"{client:16} rate {rate:>7}: achieved {out['achieved']:>9,.0f}/s, send->on_bbo p50 "
                f"{wire['p50']:8.1f} µs p99 {wire['p99']:9.1f} µs; in-process p50 {inproc['p50']:6.1f} µs "
                f"p99 {inproc['p99']:7.1f} µs"
                + (f", CPU {out['cpu_share']:.0%}" if "cpu_share" in out else "")
                + ("" if out["kept_up"] else " (fell behind)")
            )
        return out

    def _say(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def _server_run(self, rid: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.ports['rest']}/bench/run/{rid}"
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(url, timeout=10) as r:
                run: dict[str, Any] = json.loads(r.read())
            if run.get("done") or "error" in run or time.monotonic() > deadline:
                return run
            time.sleep(0.01)

    def _check(self, client: str, res: dict[str, Any], events: int) -> str:
        """'' when the client's book equals the truth, else what differs."""
        want = self.truth(events)
        if not res.get("synced"):
            return "not synced"
        if res["last_update_id"] != want["last_update_id"]:
            return f"update ID {res['last_update_id']} != {want['last_update_id']}"
        for side in ("bids", "asks"):
            got, exp = res["book"][side], want[side]
            if len(got) != len(exp):
                return f"{side}: {len(got)} levels, want {len(exp)}"
            for (gp, gq), (ep, eq) in zip(got, exp, strict=True):
                if client.startswith("tickbook"):
                    same = Decimal(gp) == Decimal(ep) and Decimal(gq) == Decimal(eq)
                else:
                    same = gp == float(ep) and gq == float(eq)
                if not same:
                    return f"{side}: {gp} {gq} != {ep} {eq}"
        return ""

    def _latency(self, res: dict[str, Any], server: dict[str, Any], events: int) -> dict[str, Any]:
        ids, arrived, called = (np.asarray(r, dtype=np.int64) for r in res["samples"])
        stream = self.stream
        closing = stream.closing_id(events)
        g = np.where(ids == closing, events, stream.index_of(ids))
        keep = (g >= PREFIX) & (g <= events)
        g, arrived, called = g[keep], arrived[keep], called[keep]
        sends = np.load(server["sends"])
        wire = called - sends[g - PREFIX]
        inproc = called - arrived
        # A reader that cannot keep up falls further behind all run long: compare the first
        # and the last tenth of the run.
        order = np.argsort(g, kind="stable")
        tenth = max(1, len(order) // 10)
        early = float(np.median(wire[order[:tenth]]))
        late = float(np.median(wire[order[-tenth:]]))
        counts = np.asarray(stream.level_counts)
        j = g % stream.size
        median = statistics.median(stream.level_counts[: stream.real])
        band = (round(median * 0.8), round(median * 1.2))
        mid = (g < events) & (j < stream.real) & (counts[j] >= band[0]) & (counts[j] <= band[1])
        tenths = [float(np.median(wire[part])) / 1e3 for part in np.array_split(order, 10) if len(part)]
        return {
            "wire_by_tenth_us": tenths,
            "achieved": server["achieved"],
            "late_p99_us": server["late_p99_us"],
            "stall_max_us": server["stall_max_us"],
            "callbacks": int(keep.sum()),
            "kept_up": late <= max(3 * early, early + 500_000),
            "drift_us": (late - early) / 1e3,
            "band": list(band),
            "wire": {"all": _pcts(wire), "median_size": _pcts(wire[mid])},
            "inproc": {"all": _pcts(inproc), "median_size": _pcts(inproc[mid])},
        }


def _pcts(ns: np.ndarray) -> dict[str, float]:
    if not len(ns):
        return {"n": 0, "p50": math.nan, "p99": math.nan, "p999": math.nan, "max": math.nan}
    us = ns / 1e3
    return {
        "n": len(us),
        "p50": float(np.percentile(us, 50)),
        "p99": float(np.percentile(us, 99)),
        "p999": float(np.percentile(us, 99.9)),
        "max": float(us.max()),
    }


def measure(plan: Plan, verbose: bool = True, wrap: list[str] | None = None) -> dict[str, Any]:
    stream = build_stream()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="feed-bench-") as tmp:
        orch = Orchestrator(plan, stream, Path(tmp), verbose, wrap)
        with orch.serving():
            clients = plan.clients + (list(FLOORS) if plan.raw else [])
            for _ in range(plan.reps):
                for client in clients:
                    results.append(orch.run(client, 0))
            best = {c: _median([r.get("msgs_per_s") for r in results if r["client"] == c]) for c in clients}
            skipped: dict[int, list[str]] = {}
            for rate in plan.rates:
                able = [c for c in plan.clients if best.get(c, 0) >= plan.headroom * rate]
                skipped[rate] = [c for c in plan.clients if c not in able]
                for _ in range(plan.reps):
                    for client in able:
                        results.append(orch.run(client, rate))
    median = statistics.median(stream.level_counts[: stream.real])
    return {
        "results": results,
        "skipped": {str(k): v for k, v in skipped.items()},
        "plan": {
            "reps": plan.reps,
            "rates": plan.rates,
            "counts": {c: plan.count(c, 0) + 1 for c in plan.clients + (list(FLOORS) if plan.raw else [])},
            "seconds": plan.seconds,
            "headroom": plan.headroom,
            "pin": plan.pin,
        },
        "stream": {
            "real": stream.real,
            "tail": stream.size - stream.real,
            "median_levels": median,
            "mean_bytes": statistics.mean(len(p) for p in stream.payloads[: stream.real]),
            "median_bytes": statistics.median(len(p) for p in stream.payloads[: stream.real]),
            "snapshot_levels": [len(stream.initial[0]), len(stream.initial[1])],
        },
        "machine": machine(),
    }


def _median(values: list[Any]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else math.nan


def machine() -> dict[str, Any]:
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {"python": platform.python_version()}
    for dist in ("tickbook", "picows", "uvloop", "aiohttp", "websockets", "msgspec", "sortedcontainers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    tree = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
        if head.returncode == 0:
            changed = " + uncommitted changes in src/" if dirty.stdout else ""
            tree = f"commit {head.stdout.strip()}{changed}"
    return {
        "tree": tree,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "loadavg_end": list(os.getloadavg()),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": versions,
    }


# ==================================================================================== report


def _fmt(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def render(data: dict[str, Any], command: str) -> str:
    results = data["results"]
    plan = data["plan"]
    st = data["stream"]
    reps = plan["reps"]
    m = data["machine"]

    def rows(client: str, rate: int) -> list[dict[str, Any]]:
        return [r for r in results if r["client"] == client and r["rate"] == rate]

    def ok(client: str, rate: int) -> list[dict[str, Any]]:
        return [r for r in rows(client, rate) if "error" not in r]

    tp = {c: _median([r.get("msgs_per_s") for r in ok(c, 0)]) for c in plan["counts"]}
    lines = [
        BEGIN,
        "## Live feed on loopback: tickbook vs readers built on `websockets` and aiohttp",
        "",
        "Written by `benches/feed_bench.py`; reproduce with",
        f"`{command}` (`make bench-feed`; `make bench-feed FEED_ARGS=--quick`: one run each, shorter runs).",
        "",
        f"{m['cpu']}, {m['cores']} logical cores shared with other tenants, Linux {m['kernel']}; "
        f"run {m['when']} on {m.get('tree', 'an unknown tree')}, load average at the end "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_end'])}. "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ".",
        "",
        f"**Data**: the real spot BTCUSDT recording of 2024-08-08 ({st['real']:,} depth messages, "
        f"{st['median_levels']:.0f} levels and {st['median_bytes']:,.0f} bytes per message median, "
        f"{st['mean_bytes']:,.0f} bytes mean), served byte for byte by a server in its own process "
        f"on 127.0.0.1; each pass over it ends with {st['tail']} synthetic messages of up to "
        f"{RESET_LEVELS} levels that set the book back to its starting state, so the recording repeats "
        "(update IDs moved on each pass) for as long as a run needs. Before the measured part the "
        f"server sends {PREFIX} messages and waits for the client's REST snapshot (the book after "
        f"message {SNAPSHOT_AT + 1}, {sum(st['snapshot_levels']):,}+ levels), so every client syncs "
        "by the documented procedure and is synced when the clock starts; a last message changes the "
        "best bid so every client's callback sees the end.",
        "",
        "**Clients**, each run in its own fresh process on uvloop, GC on (the default), every run "
        f"checked at the end: top {TOP} levels per side and update ID equal to the truth (an "
        "independent replay of the same stream in exact strings), or the run fails.",
        "",
    ]
    for c in plan["counts"]:
        lines.append(f"- `{c}`: {LABELS[c]}")
    lines += [
        "",
        "tickbook's callback reads `best_bid()` and `best_ask()` (floats); the peers read the best "
        "bid and ask of their book after every message (as a bot does) and call their callback when "
        "either changed; see `benches/_feed_peers.py`.",
        "",
        (
            f"Every number is the median of {reps} runs per client, clients alternating within each round."
            if reps > 1
            else "One run per client (`--quick`): no medians."
        )
        + " Two shared cores: "
        + (
            "server pinned to CPU 0, client to CPU 1"
            if plan.get("pin")
            else "server on one, client on the other (not pinned: the scheduler places them)"
        )
        + ", and other tenants' work lands on both, so single numbers move by tens of percent "
        "between runs; ratios within one run are steadier.",
        "",
        "### Maximum sustained messages/s into a synced book",
        "",
        "The server sends as fast as TCP takes it (the client's reading is the backpressure); "
        "from the server's first send of the measured part to the client's callback for the last "
        "message.",
        "",
        "| client | messages / s | tickbook-c is | messages per run | runs ok | runs (msgs/s) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    base = tp.get("tickbook-c", math.nan)
    for c in plan["counts"]:
        each = ", ".join(_fmt(r.get("msgs_per_s", math.nan), 0) for r in rows(c, 0))
        n_ok = len(ok(c, 0))
        times = _ratio(base, tp[c])
        vs = "1x" if c == "tickbook-c" else (f"{times:.2f}x" if not math.isnan(times) else "n/a")
        lines.append(
            f"| {LABELS[c]} | {_fmt(tp[c], 0)} | {vs} | {plan['counts'][c]:,} | {n_ok}/{len(rows(c, 0))} | "
            f"{each} |"
        )
    lines += [
        "",
        "*tickbook-c is*: tickbook-c's messages/s over the row's (above 1: tickbook-c is faster). "
        "The last rows say where the time goes: tickbook's router alone, without the socket, and "
        "each library receiving the same frames without decoding them or keeping a book.",
        "",
        "### Latency at paced rates",
        "",
        "One message per send, `1 / rate` apart and never closer: the sender spins on the clock, "
        "and after a stall (the sender descheduled, or its send blocked by a reader that is behind) "
        "it goes on at the rate without a catch-up burst; *achieved* is the rate it kept. "
        f"Percentiles over every `on_bbo` call of the measured part (the best bid or ask changed: "
        f"{_bbo_share(results):.0f}% of messages), in µs; *median-size*: messages of {_band(results)} "
        f"levels (the median {st['median_levels']:.0f} ± 20%), recorded ones only. "
        + (
            f"A rate is run only for clients whose maximum above is at least {plan['headroom']:g}x it."
            if plan["headroom"]
            else "Every client runs at every rate."
        ),
        "",
        "*send → on_bbo*: from the server's send to the entry of the client's callback, one "
        "clock (CLOCK_MONOTONIC) in both processes: kernel, wake-up, library, decode, book; the "
        "same instrument for every client.",
        "",
        "*kept up*: no: the reader fell behind, its latency grew all run long (median of the last "
        "tenth of the run over 3x that of the first tenth and 0.5 ms more): it cannot sustain the "
        "rate, and its percentiles measure the length of the run.",
        "",
        "*client CPU*: tickbook's clients only: the CPU time of the client process from its book's "
        "sync to the last callback, over the wall time between the two (100%: one whole core).",
        "",
        "| rate / s | client | achieved / s | kept up | callbacks | p50 | p99 | p99.9 | max "
        "| median-size p50 | p99 | client CPU |",
        "| ---: | --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in plan["rates"]:
        for c in [c for c in plan["counts"] if c not in FLOORS]:
            lines.append(_lat_row(rate, c, ok(c, rate), "wire", data["skipped"].get(str(rate), []), tp[c]))
    lines += [
        "",
        "*in-process*: from the frame's arrival in the client's receive path to `on_bbo` entry. "
        "tickbook: the entry of picows' frame callback (`on_ws_frame`, wrapped for the benchmark) "
        "to the entry of `on_bbo`: the issue's definition. Peers: neither library has a per-frame "
        "hook, so the arrival is the socket read (`data_received`) that completed the frame; the "
        "interval includes the library's frame parsing and its hand-off to the reading task. When "
        "one read carries several frames (at high rates), tickbook's later frames start their "
        "clock after the earlier ones are done and the peers' do not: compare *send → on_bbo* "
        "there.",
        "",
        "| rate / s | client | callbacks | p50 | p99 | p99.9 | max | median-size p50 | p99 | p99.9 |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in plan["rates"]:
        for c in [c for c in plan["counts"] if c not in FLOORS]:
            lines.append(
                _lat_row(rate, c, ok(c, rate), "inproc", data["skipped"].get(str(rate), []), tp[c], True)
            )
    lines += [
        "",
        "tickbook's router also keeps a histogram of every applied message, frame entry to "
        "callbacks returned (`feed.stats()[...]['callback_latency_ns']`, buckets within 6.25%), µs:",
        "",
        "| rate / s | client | messages | p50 | p99 | p99.9 | max |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in plan["rates"]:
        for c in [c for c in TICKBOOK if c in plan["counts"]]:
            rs = [r for r in ok(c, rate) if r.get("router")]
            if not rs:
                continue
            hist = {k: _median([r["router"][k] for r in rs]) for k in ("count", "p50", "p99", "p999", "max")}
            lines.append(
                f"| {rate:,} | {c} | {hist['count']:,.0f} | {hist['p50'] / 1e3:,.1f} | "
                f"{hist['p99'] / 1e3:,.1f} | {hist['p999'] / 1e3:,.1f} | {hist['max'] / 1e3:,.1f} |"
            )
    idle_runs = [r for r in ok(MEMORY, 0) if r.get("idle")]
    if idle_runs:
        lines += [
            "",
            "Where the in-process time goes at low rates: the same router alone, frames from memory "
            f"({IDLE_FRAMES:,} of them, the first {IDLE_WARMUP} not counted), each `feed` call timed "
            "(frame in, callbacks returned), µs. Between two frames the reader sleeps 1 ms (as at "
            "1k messages/s), or busy-waits 1 ms, or goes straight on:",
            "",
            "| between frames | p50 | p99 | median-size p50 | p99 |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        names = {
            "back_to_back": "nothing (back to back)",
            "sleep_1ms": "`time.sleep(0.001)`",
            "spin_1ms": "1 ms busy-wait",
        }
        for mode, name in names.items():

            def idle(part: str, pct: str, mode: str = mode) -> str:
                return _fmt(_median([r["idle"][mode][part][pct] for r in idle_runs]))

            lines.append(
                f"| {name} | {idle('all', 'p50')} | {idle('all', 'p99')} | {idle('median_size', 'p50')} | "
                f"{idle('median_size', 'p99')} |"
            )
    all_modes = (
        ("tickbook-c", "default"),
        (BUSY, "`busy_poll=True`"),
        (BUSY_NOWARM, "`busy_poll=True, busy_poll_warm_up=None`"),
    )
    shown = [(c, name) for c, name in all_modes if any(ok(c, rate) for rate in plan["rates"])]
    if len(shown) > 1:
        lines += [
            "",
            "Keeping the reader hot: with `busy_poll=True` (`tickbook-c-busy`) the feed's event loop "
            "never sleeps in `epoll_wait`, so the CPU never goes idle between two messages, and after "
            "100 µs without a message the hot path runs once on a made-up frame for a private book "
            "(`busy_poll_warm_up`); `tickbook-c-busy-nowarm` busy-polls without that warm-up. Same "
            "run, in-process (frame callback entry to `on_bbo` entry), median-size messages, µs, "
            "and the client's CPU (100%: one whole core):",
            "",
            "| rate / s | mode | p50 | p99 | p99.9 | client CPU | warm-ups / run |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for rate in plan["rates"]:
            for c, name in shown:
                rs = ok(c, rate)
                if not rs:
                    continue
                pcts = [
                    _fmt(_median([r["inproc"]["median_size"][k] for r in rs])) for k in ("p50", "p99", "p999")
                ]
                warm = _fmt(_median([r.get("warm_ups") for r in rs]), 0) if c == BUSY else "-"
                lines.append(f"| {rate:,} | {name} | {' | '.join(pcts)} | {_cpu(rs)} | {warm} |")
    modes = [(c, name) for c, name in all_modes[:2] if c in plan["counts"]]
    lines += ["", "### Targets", "", "From the issue, medians of this run.", ""]
    lines += ["| target | measured | goal | status |", "| --- | ---: | --- | --- |"]
    for peer, goal in (("websockets", 5.0), ("aiohttp", 2.0)):
        r = _ratio(base, tp.get(peer, math.nan))
        status = "n/a" if math.isnan(r) else ("**met**" if r >= goal else "**not met**")
        lines.append(
            f"| messages/s into synced books, tickbook-c vs the {peer} reader | "
            f"{_fmt(r, 2)}{'' if math.isnan(r) else 'x'} | "
            f">= {goal:g}x | {status} |"
        )
    verdicts: dict[tuple[str, int], bool] = {}
    for rate in plan["rates"]:
        for c, name in modes:
            rs = ok(c, rate)
            if not rs:
                continue
            met = True
            for key, goal in (("p50", 5.0), ("p99", 20.0)):
                v = _median([r["inproc"]["median_size"][key] for r in rs])
                status = "n/a" if math.isnan(v) else ("**met**" if v <= goal else "**not met**")
                met = met and v <= goal
                lines.append(
                    f"| frame callback entry -> on_bbo entry, median-size messages, {key}, {rate:,}/s, "
                    f"{name} (client CPU {_cpu(rs)}) | {_fmt(v, 2)} µs | <= {goal:g} µs | {status} |"
                )
            verdicts[c, rate] = met
    if len(modes) == 2:
        lines.append("")
        for rate in plan["rates"]:
            if (BUSY, rate) not in verdicts:
                continue
            both = [name for c, name in modes if verdicts.get((c, rate))]
            lines.append(
                f"- {rate:,}/s: the 5 / 20 µs latency target is "
                + (f"met by {' and '.join(both)}" if both else "met by neither mode")
                + f" (client CPU: default {_cpu(ok('tickbook-c', rate))}, `busy_poll=True` "
                f"{_cpu(ok(BUSY, rate))})."
            )
    troubled = [r for r in results if "error" not in r and any(r.get("problems", {}).values())]
    if troubled:
        lines += ["", "Runs whose client reported problems on the way (their books were right at the end):"]
        lines.append("")
        lines += [
            f"- {r['client']} at rate {r['rate']}: "
            + ", ".join(f"{k} {v}" for k, v in r["problems"].items() if v)
            for r in troubled
        ]
    failed = [r for r in results if "error" in r]
    if failed:
        lines += ["", "Failed runs (not in the medians):", ""]
        lines += [f"- {r['client']} at rate {r['rate']}: {r['error']}" for r in failed]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _bbo_share(results: list[dict[str, Any]]) -> float:
    rs = [r for r in results if r["rate"] and "callbacks" in r and r["client"] == "tickbook-c"]
    if not rs:
        rs = [r for r in results if r["rate"] and "callbacks" in r]
    return 100 * statistics.median(r["callbacks"] / r["count"] for r in rs) if rs else 0.0


def _band(results: list[dict[str, Any]]) -> str:
    for r in results:
        if "band" in r:
            return f"{r['band'][0]}-{r['band'][1]}"
    return "?"


def _lat_row(
    rate: int,
    client: str,
    rs: list[dict[str, Any]],
    key: str,
    skipped: list[str],
    best: float,
    deep: bool = False,
) -> str:
    width = 10 if deep else 12
    if client in skipped:
        cells = [f"{rate:,}", client, f"not run: max sustained {_fmt(best, 0)}/s"]
    elif not rs:
        cells = [f"{rate:,}", client, "failed"]
    else:

        def med(part: str, pct: str) -> str:
            return _fmt(_median([r[key][part][pct] for r in rs]))

        n = f"{_median([r['callbacks'] for r in rs]):,.0f}"
        pcts = [med("all", "p50"), med("all", "p99"), med("all", "p999"), med("all", "max")]
        if deep:
            cells = [f"{rate:,}", client, n, *pcts]
            cells += [med("median_size", "p50"), med("median_size", "p99"), med("median_size", "p999")]
        else:
            kept = sum(bool(r["kept_up"]) for r in rs)
            up = "yes" if kept == len(rs) else "no" if not kept else f"{kept}/{len(rs)} runs"
            achieved = f"{_median([r['achieved'] for r in rs]):,.0f}"
            cells = [f"{rate:,}", client, achieved, up, n, *pcts]
            cells += [med("median_size", "p50"), med("median_size", "p99"), _cpu(rs)]
    cells += [""] * (width - len(cells))
    return "| " + " | ".join(cells) + " |"


def _cpu(rs: list[dict[str, Any]]) -> str:
    """Median client CPU share of the runs, as a percentage of one core."""
    share = _median([r.get("cpu_share") for r in rs])
    return "n/a" if math.isnan(share) else f"{100 * share:.0f}%"


def write_block(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        return serve_main(argv[1:])
    if argv and argv[0] == "client":
        return client_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run each, shorter runs (about a minute)")
    parser.add_argument("--reps", type=int, help="runs per client and measurement (default 3, quick 1)")
    parser.add_argument("--rates", default="1000,10000,100000", help="paced rates, messages/s")
    parser.add_argument("--clients", default=",".join(TICKBOOK + PEERS), help="clients to run")
    parser.add_argument(
        "--no-floors", action="store_true", help="skip the rows without socket or without decode and book"
    )
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, clients on CPU 1")
    parser.add_argument(
        "--headroom",
        type=float,
        default=1.25,
        help="run a paced rate only for clients whose max sustained is this many times it (0: all)",
    )
    parser.add_argument("--out", type=Path, help="replace the feed block in this markdown file")
    parser.add_argument("--save-json", type=Path, help="write every run's numbers here")
    parser.add_argument("--json", type=Path, help="render from a file written by --save-json (no runs)")
    parser.add_argument(
        "--wrap",
        help="prefix of every client command, {run} = client-rate-id "
        "(e.g. 'py-spy record --native -f raw -o /tmp/{run}.txt --')",
    )
    parser.add_argument(
        "--fast-count", type=int, help="messages of a max-speed run for tickbook-c and receive-only"
    )
    parser.add_argument("--slow-count", type=int, help="messages of a max-speed run for the other clients")
    args = parser.parse_args(argv)
    if args.json is not None:
        data = json.loads(args.json.read_text())
    else:
        quick = args.quick
        plan = Plan(
            reps=args.reps or (1 if quick else 3),
            rates=[int(r) for r in args.rates.split(",") if r.strip()],
            clients=[c.strip() for c in args.clients.split(",") if c.strip()],
            raw=not args.no_floors,
            pin=args.pin,
            headroom=args.headroom,
            fast_count=args.fast_count or (100_000 if quick else 250_000),
            slow_count=args.slow_count or (10_000 if quick else 30_000),
            seconds=QUICK_SECONDS if quick else SECONDS,
        )
        unknown = set(plan.clients) - set(TICKBOOK + PEERS)
        if unknown:
            parser.error(f"unknown clients {sorted(unknown)}; choose from {TICKBOOK + PEERS}")
        started = time.monotonic()
        data = measure(plan, wrap=shlex.split(args.wrap) if args.wrap else None)
        python = os.path.relpath(sys.executable, ROOT) if sys.prefix.startswith(str(ROOT)) else sys.executable
        shown = [a for a in argv if not a.startswith("--save-json")]
        if args.save_json is not None and str(args.save_json) in shown:  # "--save-json FILE": drop FILE
            shown.remove(str(args.save_json))
        data["command"] = " ".join([python, "benches/feed_bench.py", *shown])
        data["seconds"] = time.monotonic() - started
        print(f"measured in {data['seconds']:.0f} s", file=sys.stderr)
        if args.save_json is not None:
            args.save_json.parent.mkdir(parents=True, exist_ok=True)
            args.save_json.write_text(json.dumps(data))
    block = render(data, data.get("command", "benches/feed_bench.py"))
    print(block)
    if args.out is not None:
        write_block(args.out, block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
