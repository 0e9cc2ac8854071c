"""Several markets in one process (``tickbook.sim.exchange.Venue``, the fixture, ``tickbook sim``).

One REST server routes every market (``/api/v3``, ``/fapi``, ``/dapi``), each charged against
its own weight counters; each market has its own WebSocket server (spot's and COIN-M's stream
paths are the same). The central test serves the real spot recording (two files, one
recording) and the real USD-M recording together and syncs one ``tickbook.OrderBook`` per
market through the documented procedure, concurrently, over each market's WebSocket URL; both
books must end equal to their truths.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from _helpers import assert_sim_usage_error, cli_env
from _sim_client import follow_procedure
from tickbook.sim.exchange import Exchange, Venue, new_event_loop
from tickbook.sim.faults import FaultPlan
from tickbook.sim.market import GeneratedMarket, RecordedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data/real/hftbacktest"
SPOT = [REAL / "spot/btcusdt_20240808.gz", REAL / "spot/btcusdt_20240809.gz"]
USDM = [REAL / "usdm/btcusdt_20240808.gz"]
SPOT_HEAD = ROOT / "data/real/derived/binance_spot_btcusdt_20240808_depth_head1000.jsonl"
SPOT_SNAP = ROOT / "data/real/derived/binance_spot_btcusdt_20240808_snapshot.json"
STREAM = "btcusdt@depth@100ms"
DEPTH = {
    "spot": "/api/v3/depth?symbol=BTCUSDT&limit=5000",
    "usdm": "/fapi/v1/depth?symbol=BTCUSDT&limit=1000",
}
DEPTH_WEIGHT = {"spot": 250, "usdm": 20}  # limit 5000 on spot, 1000 on USD-M


def both() -> list[Callable[[], RecordedMarket]]:
    return [lambda: RecordedMarket.from_files(SPOT), lambda: RecordedMarket.from_files(USDM)]


def run(coro: Any, timeout: float = 20.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(bounded())


def get(url: str) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body of a GET (errors included), without any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_one_rest_port_routes_every_market_with_its_own_weight(exchange: Start) -> None:
    ex = exchange(both(), hold=True, weight_limit=300)
    assert list(ex.markets) == ["spot", "usdm"]
    rest = ex.rest_url
    assert ex.markets["spot"]["rest"] == ex.markets["usdm"]["rest"] == rest
    assert ex.ws_urls["spot"] != ex.ws_urls["usdm"]  # one WebSocket server per market
    assert (ex.market, ex.ws_url) == ("spot", ex.ws_urls["spot"])  # the first market's
    assert ex.urls()["markets"] == ex.markets

    status, headers, snap = get(rest + DEPTH["spot"])
    assert status == 200
    assert headers["X-MBX-USED-WEIGHT-1M"] == headers["X-MBX-USED-WEIGHT"] == "250"
    assert snap["lastUpdateId"] == ex.truth("BTCUSDT", market="spot")["lastUpdateId"]
    status, headers, snap = get(rest + DEPTH["usdm"])
    assert status == 200
    assert headers["X-MBX-USED-WEIGHT-1M"] == "20"  # USD-M's own counter, not spot's 250 + 20
    assert "X-MBX-USED-WEIGHT" not in headers  # futures send only the interval header
    truth = ex.truth("BTCUSDT", market="usdm")
    assert Decimal(snap["bids"][0][0]) == Decimal(truth["bids"][0][0])
    assert truth["market"] == "usdm"

    # Spot goes over its limit; USD-M, charged separately, still answers.
    status, headers, body = get(rest + DEPTH["spot"])
    assert (status, body["code"]) == (429, -1003)
    assert "Retry-After" in headers
    status, headers, _ = get(rest + "/fapi/v1/ping")
    assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, "21")
    assert get(rest + "/fapi/v1/time")[0] == 200

    # Control endpoints cover both markets.
    status, _, body = get(rest + "/sim/truth?symbol=BTCUSDT")
    assert (status, body["code"]) == (400, -1102)  # on both markets: which one?
    assert "spot, usdm" in body["msg"]
    for market in ("spot", "usdm"):
        status, _, body = get(rest + f"/sim/truth?symbol=BTCUSDT&market={market}&limit=5")
        assert status == 200
        assert body == ex.truth("BTCUSDT", 5, market=market)
    assert get(rest + "/sim/truth?symbol=BTCUSDT&market=coinm")[0] == 400
    assert get(rest + "/sim/truth?symbol=ETHUSDT&market=spot")[0] == 400
    assert get(rest + "/sim/faults")[2] == []
    violations = get(rest + "/sim/violations")[2]
    assert violations == ex.violations()
    assert violations["rest"] == {"request_weight": 1}
    assert violations["markets"]["spot"]["rest"] == {"request_weight": 1}
    assert violations["markets"]["usdm"] == {"rest": {}, "ws": {}}
    with pytest.raises(LookupError, match="spot, usdm"):
        ex.truth("BTCUSDT")


async def sync_book(ex: ExchangeHandle, session: aiohttp.ClientSession, market: str) -> tuple[Any, int]:
    """The documented procedure on ``market``'s own WebSocket URL and the shared REST URL; the
    snapshot is the market's first request, so it carries that market's own weight only."""

    def own_weight(response: aiohttp.ClientResponse) -> None:
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == str(DEPTH_WEIGHT[market])

    book, snapshot_id, _ = await follow_procedure(
        session,
        market=market,
        ws_url=ex.ws_urls[market],
        rest_url=ex.rest_url,
        stream=STREAM,
        wait_paused=lambda: ex.wait_paused(market=market),
        resume=lambda: ex.resume(market=market),
        finished=lambda: ex.is_finished(market),
        truth_id=lambda: int(ex.truth("BTCUSDT", market=market)["lastUpdateId"]),
        check_snapshot=own_weight,
    )
    return book, snapshot_id


def test_clients_sync_spot_and_usdm_books_from_one_process(exchange: Start) -> None:
    ex = exchange(both(), speed=None, wait_for_client=True)
    ex.pause(at_step=500)  # each market's replay, counted in its own steps

    async def clients() -> list[tuple[Any, int]]:
        async with aiohttp.ClientSession() as session:
            return list(await asyncio.gather(sync_book(ex, session, "spot"), sync_book(ex, session, "usdm")))

    results = run(clients(), timeout=30)
    assert ex.wait_finished(10)
    for market, (book, snapshot_id) in zip(("spot", "usdm"), results, strict=True):
        status, _, truth = get(f"{ex.rest_url}/sim/truth?symbol=BTCUSDT&market={market}&limit=20")
        assert status == 200
        assert truth["market"] == market
        assert book.synced, book.reason_detail
        assert book.last_update_id == truth["lastUpdateId"]
        assert book.checksum(20) == truth["checksum"]
        assert [list(x) for x in book.bids_str(20)] == truth["bids"]
        assert [list(x) for x in book.asks_str(20)] == truth["asks"]
        assert snapshot_id < truth["lastUpdateId"]  # the snapshot was taken mid-replay
        stats = book.stats()
        assert stats["applied"] > 1000
        assert stats["stale"] > 0
    assert ex.fault_log() == []
    assert ex.violations()["rest"] == {}


def test_overlapping_stream_paths_and_faults_per_market() -> None:
    """Spot and COIN-M both serve ``/ws/...``: each on its own port. A fault spec applies to
    each market separately, and the log says which market each fault hit."""

    async def main() -> None:
        venue = Venue.from_sources(
            [
                GeneratedMarket(["BTCUSDT"], "spot", seed=4, max_events=200),
                GeneratedMarket(["BTCUSD_PERP"], "coinm", seed=4, max_events=200),
            ],
            speed=None,
            faults="drop@5",
            wait_for_client=True,
        )
        async with venue, aiohttp.ClientSession() as session:
            assert venue.urls()["market"] == "spot"
            rest = venue.rest_url
            for market, symbol in (("spot", "BTCUSDT"), ("coinm", "BTCUSD_PERP")):
                url = f"{venue.exchange(market).ws_url}/ws/{symbol.lower()}@depth"
                async with session.ws_connect(url) as ws:
                    data = json.loads((await ws.receive(timeout=10)).data)
                assert data["s"] == symbol
                assert ("ps" in data) == (market == "coinm")
                async with session.get(f"{rest}/sim/truth?symbol={symbol}") as r:  # unambiguous
                    assert (r.status, (await r.json())["market"]) == (200, market)
            async with session.get(rest + "/dapi/v1/ping") as r:
                assert r.status == 200
                assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
            async with session.get(rest + "/api/v3/ping") as r:
                assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
            assert await venue.wait_finished(10)
            assert venue.finished
            hits = {(e["market"], e["symbol"], e["kind"], e["at"]) for e in venue.fault_log}
            assert hits == {("spot", "BTCUSDT", "drop", 5), ("coinm", "BTCUSD_PERP", "drop", 5)}
            async with session.get(rest + "/sim/faults") as r:
                assert await r.json() == json.loads(json.dumps(venue.fault_log))
            assert venue.truth("BTCUSD_PERP").synced
            assert venue.steps == sum(ex.steps for ex in venue.exchanges.values())
        with pytest.raises(RuntimeError):
            _ = venue.rest_url  # stopped

    run(main())


def test_venue_rejects_what_it_cannot_serve() -> None:
    spot = GeneratedMarket(["BTCUSDT"], "spot")
    with pytest.raises(ValueError, match="one source per market"):
        Venue.from_sources([spot, GeneratedMarket(["ETHUSDT"], "spot")])
    with pytest.raises(ValueError, match="FaultPlan"):
        Venue.from_sources([spot, GeneratedMarket(["BTCUSDT"], "usdm")], faults=FaultPlan.from_spec("drop@3"))
    with pytest.raises(TypeError, match="ws_ports"):
        Venue.from_sources([spot], ws_port=0)
    with pytest.raises(ValueError, match="at least one"):
        Venue([])
    with pytest.raises(LookupError):
        Venue([Exchange(spot)]).exchange("coinm")


# ------------------------------------------------------------------------------------ the CLI


def test_cli_serves_spot_and_usdm_recordings_together() -> None:
    cmd = [sys.executable, "-m", "tickbook", "sim", "--replay", *map(str, SPOT + USDM), "--max-speed"]
    cmd += ["--exit-after-replay", "--wait-for-client"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()) as proc:
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            assert set(first) == {"rest", "ws", "market", "symbols", "markets"}
            assert (first["market"], first["symbols"]) == ("spot", ["BTCUSDT"])  # the first market
            markets = first["markets"]
            assert list(markets) == ["spot", "usdm"]
            assert markets["spot"]["ws"] == first["ws"]
            assert markets["spot"]["rest"] == markets["usdm"]["rest"] == first["rest"]
            assert markets["usdm"]["ws"] != first["ws"]
            assert markets["usdm"]["symbols"] == ["BTCUSDT"]

            async def client() -> None:
                async with aiohttp.ClientSession() as session:
                    for market, ping in (("spot", "/api/v3/ping"), ("usdm", "/fapi/v1/ping")):
                        async with session.get(first["rest"] + ping) as r:
                            assert r.status == 200
                            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"  # each market's own
                        url = f"{markets[market]['ws']}/ws/btcusdt@depth"
                        async with session.ws_connect(url, max_msg_size=0) as ws:
                            data = json.loads((await ws.receive(timeout=10)).data)
                        assert data["e"] == "depthUpdate"
                        assert ("pu" in data) == (market == "usdm")

            run(client())
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, err
    assert "replay finished" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generate", "bogus:BTCUSDT"], "unknown market"),
        (["--generate", "BTCUSDT", "--ws-port", "usdm:9"], "not served"),
        (["--replay", str(SPOT_HEAD), str(USDM[0]), "--snapshot", str(SPOT_SNAP)], "one market"),
    ],
)
def test_cli_multi_market_usage_errors(args: list[str], message: str) -> None:
    assert_sim_usage_error(args, message)
