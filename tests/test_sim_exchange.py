"""The local exchange end to end (tickbook.sim.exchange, the fixture, ``tickbook sim``).

The central test replays a real recording at maximum speed and runs a client through the
documented sync procedure (subscribe, buffer, fetch the REST snapshot, bridge, apply), the way
a user's bot would, over loopback; at the end the client's book must equal the exchange's true
book exactly. The client is deliberately simple (aiohttp's WebSocket client, ``json``), so a
failure points at the server, not at a clever client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import tickbook
from _helpers import assert_sim_usage_error, cli_env
from _sim_client import follow_procedure
from tickbook._types import OutOfSyncReason, SyncState
from tickbook.sim.exchange import Exchange, new_event_loop
from tickbook.sim.market import GeneratedMarket, RecordedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]

ROOT = Path(__file__).resolve().parents[1]
SPOT = [ROOT / "data/real/hftbacktest/spot/btcusdt_20240808.gz"]
USDM = [ROOT / "data/real/hftbacktest/usdm/btcusdt_20240718.gz"]
HEAD1000 = ROOT / "data/real/derived/binance_spot_btcusdt_20240808_depth_head1000.jsonl"  # no snapshot
STREAM = {"spot": "btcusdt@depth@100ms", "usdm": "btcusdt@depth@100ms"}


def run(coro: Any, timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(bounded())


def apply(book: Any, data: dict[str, Any]) -> int:
    flags: int = book.apply_diff(data["U"], data["u"], data["b"], data["a"], data.get("pu"))
    return flags


async def sync_client(ex: ExchangeHandle, market: str, stream: str | None = None) -> tuple[Any, int, int]:
    """The documented procedure against one market's exchange (see ``_sim_client``)."""
    async with aiohttp.ClientSession() as session:
        return await follow_procedure(
            session,
            market=market,
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            stream=stream or STREAM[market],
            wait_paused=ex.wait_paused,
            resume=ex.resume,
            finished=lambda: ex.finished,
            truth_id=lambda: int(ex.truth("BTCUSDT")["lastUpdateId"]),
        )


@pytest.mark.parametrize(
    ("market", "files", "stream", "at_least"),
    [
        ("spot", SPOT, "btcusdt@depth@100ms", 3000),  # the recording's own cadence
        ("spot", SPOT, "btcusdt@depth", 300),  # 1000 ms windows merged from the @100ms events (345 s)
        ("usdm", USDM, "btcusdt@depth@100ms", 1000),  # 100 ms windows merged from @0ms events
    ],
)
def test_client_following_the_procedure_ends_with_the_true_book(
    exchange: Start, market: str, files: list[Path], stream: str, at_least: int
) -> None:
    ex = exchange(lambda: RecordedMarket.from_files(files), speed=None, wait_for_client=True)
    ex.pause(at_step=500)
    book, snapshot_id, received = run(sync_client(ex, market, stream))
    assert ex.wait_finished(10)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"{ex.rest_url}/sim/truth?symbol=BTCUSDT&limit=20", timeout=10
    ) as response:
        truth = json.loads(response.read())
    assert book.synced, book.reason_detail
    assert book.last_update_id == truth["lastUpdateId"]
    assert book.checksum(20) == truth["checksum"]
    assert [list(x) for x in book.bids_str(20)] == truth["bids"]
    assert [list(x) for x in book.asks_str(20)] == truth["asks"]
    assert snapshot_id < truth["lastUpdateId"]  # the snapshot was taken mid-replay ...
    stats = book.stats()
    assert stats["applied"] > received // 2  # ... and most of the recording was applied after it
    assert stats["stale"] > 0  # buffered events the snapshot already covered were dropped
    assert received >= at_least
    assert ex.fault_log() == []
    assert ex.violations() == {"rest": {}, "ws": {}}


def test_dropped_event_is_a_gap_the_client_sees(exchange: Start) -> None:
    # Held until the snapshot is in: a replay already running could pass event 40 before a
    # slow snapshot is taken, and a drop behind the snapshot is no gap at all.
    ex = exchange(lambda: RecordedMarket.from_files(SPOT), speed=None, hold=True, faults="drop@40")

    async def client() -> Any:
        book = tickbook.OrderBook("BTCUSDT", "spot")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{ex.ws_url}/ws/btcusdt@depth", max_msg_size=0) as ws,
        ):
            async with session.get(f"{ex.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5000") as r:
                snap = await r.json()
            book.apply_snapshot(snap["lastUpdateId"], snap["bids"], snap["asks"], limit=5000)
            await asyncio.to_thread(ex.resume)
            while book.state is not SyncState.OUT_OF_SYNC:
                msg = await ws.receive(timeout=10)
                apply(book, json.loads(msg.data))
        return book

    book = run(client())
    assert book.reason is OutOfSyncReason.GAP
    assert [(e["kind"], e["symbol"], e["at"]) for e in ex.fault_log()] == [("drop", "BTCUSDT", 40)]


def test_derived_streams_follow_the_truth(exchange: Start) -> None:
    ex = exchange(lambda: GeneratedMarket(["BTCUSDT"], "usdm", seed=3), speed=None, wait_for_client=True)
    streams = ["btcusdt@bookTicker", "btcusdt@depth5@100ms", "btcusdt@depth@250ms"]

    async def client() -> dict[str, list[dict[str, Any]]]:
        seen: dict[str, list[dict[str, Any]]] = {s: [] for s in streams}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{ex.ws_url}/stream?streams={'/'.join(streams)}") as ws,
        ):
            while min(len(v) for v in seen.values()) < 20:
                msg = json.loads((await ws.receive(timeout=10)).data)
                seen[msg["stream"]].append(msg["data"])
        return seen

    seen = run(client())
    ticker = seen["btcusdt@bookTicker"][-1]
    assert list(ticker) == ["e", "u", "s", "b", "B", "a", "A", "T", "E"]  # USD-M key order
    partial = seen["btcusdt@depth5@100ms"][-1]
    assert partial["e"] == "depthUpdate"
    assert (len(partial["b"]), len(partial["a"])) == (5, 5)
    diffs = seen["btcusdt@depth@250ms"]
    assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(diffs))  # continuous


def test_recorded_pace(exchange: Start) -> None:
    """At speed 1 a generated spot market emits one depth event per 100 ms of wall time."""
    ex = exchange(lambda: GeneratedMarket(["BTCUSDT"], "spot", seed=1), speed=1.0, wait_for_client=True)

    async def client() -> list[float]:
        arrivals: list[float] = []
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{ex.ws_url}/ws/btcusdt@depth@100ms") as ws,
        ):
            end = time.monotonic() + 0.6
            with contextlib.suppress(TimeoutError):
                while (left := end - time.monotonic()) > 0:
                    await ws.receive(timeout=left)
                    arrivals.append(time.monotonic())
        return arrivals

    arrivals = run(client())
    assert 3 <= len(arrivals) <= 9  # ~6 in 0.6 s; at maximum speed it would be thousands


def test_exchange_lifecycle_in_one_loop() -> None:
    async def main() -> None:
        source = GeneratedMarket(["BTCUSDT"], "spot", seed=2, max_events=200)
        async with Exchange(source, speed=None) as ex:
            assert ex.rest_url.startswith("http://127.0.0.1:")
            assert ex.ws_url.startswith("ws://127.0.0.1:")
            assert await ex.wait_finished(10)
            assert ex.steps > 0
            assert ex.truth("BTCUSDT").synced
            await ex.stop()  # twice is fine
        # A task running an exchange can be cancelled: it stops cleanly.
        started = asyncio.Event()

        async def serve() -> None:
            async with Exchange(GeneratedMarket(["ETHUSDT"], "spot", seed=2), speed=None):
                started.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(serve())
        await started.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run(main())


# ------------------------------------------------------------------------------------ the CLI


def _ping(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/api/v3/ping", timeout=10) as response:
        return json.loads(response.read())


def test_cli_serves_then_exits_after_the_replay() -> None:
    cmd = [sys.executable, "-m", "tickbook", "sim", "--replay", str(SPOT[0]), "--max-speed"]
    cmd += ["--exit-after-replay", "--port", "0", "--wait-for-client"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()) as proc:
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            assert set(first) == {"rest", "ws", "market", "symbols", "markets"}
            assert (first["market"], first["symbols"]) == ("spot", ["BTCUSDT"])
            assert first["markets"] == {
                "spot": {"rest": first["rest"], "ws": first["ws"], "symbols": ["BTCUSDT"]}
            }
            assert first["ws"].startswith("ws://127.0.0.1:")
            assert _ping(first["rest"]) == {}  # the first request also starts the replay
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, err
    assert "replay finished" in err


def test_cli_stops_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "tickbook", "sim", "--generate", "BTCUSDT", "--market", "coinm"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()) as proc:
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            assert first["market"] == "coinm"
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay", "/nonexistent/file.gz"], "no such file"),
        (["--generate", "BTCUSDT", "--faults", "bogus@3"], "bad fault"),
        (["--generate", "BTCUSDT", "--key", "justakey"], "API_KEY:SECRET"),
        (["--generate", "BTCUSDT", "--speed", "0"], "positive"),
        (["--generate", "BTCUSDT", "--speed", "2", "--max-speed"], "not allowed with"),
        (["--replay", str(HEAD1000)], "no depth snapshot"),
        (["--generate", "BTCUSDT", "--port", "70000"], "port"),
        ([], "required"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    assert_sim_usage_error(args, message)
