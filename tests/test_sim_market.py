"""The local exchange's market sources (``tickbook.sim.market``) on real recordings and generated markets.

What matters is what a client sees: the depth events served are the recorded bytes from the
bridging event on, and a client that follows the documented sync procedure against
``snapshot()`` plus the events that follow ends with exactly the server's truth, whenever it
joins. Expected values come from ``data/real/PROVENANCE.md`` and from the recorded exchange
payloads (bookTicker oracle, exchangeInfo), never from an earlier run of this code.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import tickbook
from tickbook import Applied, Market, SnapshotResult, SyncState
from tickbook._book_py import OrderBook as PyOrderBook
from tickbook.decode import FuturesDepthUpdate, decode_book_ticker, decode_depth, decode_snapshot
from tickbook.sim.market import (
    DerivedStreams,
    Event,
    GeneratedMarket,
    MarketError,
    MarketSource,
    RecordedMarket,
)

ROOT = Path(__file__).parent.parent
REAL = ROOT / "data" / "real"
DERIVED = REAL / "derived"
CF = REAL / "cryptofeed"
HFT = REAL / "hftbacktest"
PAYLOADS = REAL / "payloads"

SPOT_HEAD = DERIVED / "binance_spot_btcusdt_20240808_depth_head1000.jsonl"
SPOT_SNAP = DERIVED / "binance_spot_btcusdt_20240808_snapshot.json"
USDM_DEPTH = DERIVED / "binance_usdm_btcusdt_20240808_depth.jsonl.gz"
USDM_SNAP = DERIVED / "binance_usdm_btcusdt_20240808_snapshot.json"
FULL = 10**6  # a snapshot limit above any book here: the whole truth


def spot_head() -> RecordedMarket:
    return RecordedMarket.from_files([SPOT_HEAD], snapshots=[SPOT_SNAP])


def lines(path: Path) -> list[bytes]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return [line.rstrip(b"\r\n") for line in f if line.strip()]


def data_slice(line: bytes) -> bytes:
    """The bare payload of a recorded combined message, cut out by hand (independent of the code)."""
    start = line.index(b',"data":') + len(b',"data":')
    assert line.endswith(b"}")
    return line[start:-1]


def run(source: MarketSource) -> Iterator[list[Event]]:
    while source.next_time_ms() is not None:
        yield source.step()


class Client:
    """A client following the documented procedure: buffer from subscription, then a snapshot."""

    def __init__(self, symbol: str, market: Market, impl: type = tickbook.OrderBook) -> None:
        self.market = market
        self.book: Any = impl(symbol, market)
        self.symbol = symbol

    def on_depth(self, payload: bytes) -> None:
        flags = self.book.apply_event(decode_depth(payload, self.market))
        assert not flags & (Applied.GAP | Applied.CROSSED), (self.book.reason, self.book.reason_detail)

    def on_snapshot(self, body: bytes, limit: int) -> None:
        snap = decode_snapshot(body, self.market)
        result = self.book.apply_snapshot(snap.lastUpdateId, snap.bids, snap.asks, limit=limit)
        assert result is not SnapshotResult.STALE
        assert self.book.state in (SyncState.BRIDGING, SyncState.SYNCED), self.book.reason_detail


def assert_same_book(client: Any, truth: Any, *, complete_only: bool = False) -> None:
    """Equal to the truth: update ID, checksum and every level (or every level the client knows
    to be complete, for a client whose snapshot was cut at a limit)."""
    assert client.synced
    assert client.last_update_id == truth.last_update_id
    assert client.checksum(50) == truth.checksum(50)
    if complete_only:
        floor, ceiling = client.bid_floor, client.ask_ceiling
        lo = floor if floor is not None else 0
        hi = ceiling if ceiling is not None else 2**63
        assert [lv for lv in client.bids_ticks() if lv[0] >= lo] == [
            lv for lv in truth.bids_ticks() if lv[0] >= lo
        ]
        assert [lv for lv in client.asks_ticks() if lv[0] <= hi] == [
            lv for lv in truth.asks_ticks() if lv[0] <= hi
        ]
    else:
        assert client.bids_ticks() == truth.bids_ticks()
        assert client.asks_ticks() == truth.asks_ticks()
    client._check()


def follow(
    source: Any, symbol: str, plan: list[tuple[int, int, int]], impl: type = tickbook.OrderBook
) -> int:
    """One pass over ``source`` with one client per ``(subscribe_step, snapshot_step, limit)``.

    A client buffers depth events from its subscription step on, asks for the snapshot after
    that many steps, and must equal the truth at every later step it is checked and at the end.
    Returns the number of steps run.
    """
    market = source.market
    clients: list[tuple[int, int, int, Client]] = [
        (sub, snap, lim, Client(symbol, market, impl)) for sub, snap, lim in plan
    ]
    truth = source.truth(symbol)
    n = 0
    while source.next_time_ms() is not None:
        for _, snap, limit, client in clients:
            if n == snap:
                client.on_snapshot(source.snapshot(symbol, limit), limit)
        events = source.step()
        n += 1
        for event in events:
            if event.kind == "depth" and event.symbol == symbol:
                for sub, _, _, client in clients:
                    if n > sub:
                        client.on_depth(event.payload)
        if n % 97 == 0:
            for _, snap, limit, client in clients:
                if n > snap:
                    assert_same_book(client.book, truth, complete_only=limit < FULL)
    for _, _, limit, client in clients:
        assert_same_book(client.book, truth, complete_only=limit < FULL)
    return n


# ------------------------------------------------------------------ recorded: what is served


def test_interfaces() -> None:
    market = spot_head()
    source: MarketSource = market
    assert isinstance(source, DerivedStreams)
    assert source.market is Market.SPOT
    assert source.symbols == ["BTCUSDT"]
    event = source.step()[0]
    with pytest.raises(AttributeError):
        event.kind = "x"  # type: ignore[misc]  # frozen


def test_spot_served_depth_starts_at_the_bridge_byte_for_byte() -> None:
    """PROVENANCE: spot BTCUSDT 2024 first applied event idx 2 (U=...208 u=...224 straddles 50093239218)."""
    market = spot_head()
    recorded = [data_slice(line) for line in lines(SPOT_HEAD)]
    truth = market.truth("BTCUSDT")
    assert truth.last_update_id == 50093239218
    assert truth.state is SyncState.BRIDGING
    served: list[Event] = []
    for events in run(market):
        for event in events:
            assert event.kind == "depth"
            assert event.stream == "btcusdt@depth"
            served.append(event)
        assert truth.synced
        assert truth.last_update_id == events[-1].final_id
    assert [e.payload for e in served] == recorded[2:]  # bytes exactly as recorded
    first = json.loads(served[0].payload)
    assert (first["U"], first["u"]) == (50093239208, 50093239224)
    assert [e.time_ms for e in served] == [json.loads(p)["E"] for p in recorded[2:]]
    assert truth.last_update_id == 50093285515  # PROVENANCE: head1000 slice ends at u 50093285515
    assert truth.best_bid_str() == ("61780", "1.57605")
    assert truth.best_ask_str() == ("61780.01", "2.76428")
    assert market.step() == []
    assert market.next_time_ms() is None


def test_timestamped_recording_with_inline_snapshot_and_trades() -> None:
    """The hftbacktest originals (two day files = one recording): truth ends as PROVENANCE says."""
    files = [HFT / "spot" / "btcusdt_20240808.gz", HFT / "spot" / "btcusdt_20240809.gz"]
    market = RecordedMarket.from_files(files)
    recorded_trades = {
        data_slice(line.split(b" ", 1)[1]) for f in files for line in lines(f) if b"@trade" in line[:60]
    }
    kinds: dict[str, int] = {}
    last_time = 0
    for events in run(market):
        assert len({e.time_ms for e in events}) == 1
        assert events[0].time_ms >= last_time
        last_time = events[0].time_ms
        for event in events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
            if event.kind == "trade":
                assert event.payload in recorded_trades
                assert event.stream == "btcusdt@trade"
    assert kinds["depth"] == 6495 - 2  # PROVENANCE: 6,495 depth messages, the first 2 stale
    assert "bookTicker" not in kinds  # recorded tickers are replaced by derived ones
    assert 19_000 < kinds["trade"] <= 9_757 + 10_147
    truth = market.truth("BTCUSDT")
    assert truth.last_update_id == 50093696318
    assert truth.best_bid_str() == ("61602.01", "1.67177")
    assert truth.best_ask_str() == ("61602.02", "2.66795")
    assert (truth.bid_count, truth.ask_count) == (1971, 2962)


@pytest.mark.parametrize("impl", [tickbook.OrderBook, PyOrderBook], ids=["core", "py"])
def test_spot_client_joining_at_any_point_ends_equal_to_the_truth(impl: type) -> None:
    market = spot_head()
    plan = [(0, 0, FULL), (0, 1, FULL), (3, 3, FULL), (10, 17, FULL), (400, 400, FULL), (700, 760, 1000)]
    plan += [(k, k + 2, FULL) for k in range(50, 998, 137)]
    assert follow(market, "BTCUSDT", plan, impl) == 998


def test_usdm_client_joining_at_any_point_ends_equal_to_the_truth() -> None:
    market = RecordedMarket.from_files([USDM_DEPTH], snapshots=[USDM_SNAP])
    assert market.market is Market.USDM
    # snapshot before any event buffered (empty buffer), after buffering, late joiners, a cut snapshot
    plan = [
        (0, 0, FULL),
        (5, 5, FULL),
        (5, 9, FULL),
        (100, 100, 1000),
        (2500, 2501, FULL),
        (6000, 6000, FULL),
    ]
    assert follow(market, "BTCUSDT", plan) > 6000


def test_futures_snapshot_is_bridged_by_the_next_event() -> None:
    """The futures snapshot's lastUpdateId is the next event's U: U <= lastUpdateId <= u holds."""
    market = RecordedMarket.from_files([USDM_DEPTH], snapshots=[USDM_SNAP])
    for _ in range(20):
        market.step()
    body = decode_snapshot(market.snapshot("BTCUSDT", 5), Market.USDM)
    truth_id = market.truth("BTCUSDT").last_update_id
    assert body.lastUpdateId > truth_id  # futures IDs jump: the next U is above the last u
    following = next(e for e in market.step() if e.kind == "depth")
    ev = decode_depth(following.payload, Market.USDM)
    assert isinstance(ev, FuturesDepthUpdate)
    assert ev.U == body.lastUpdateId <= ev.u
    assert ev.pu == truth_id


def test_multi_symbol_recording_each_truth_tracked() -> None:
    """cryptofeed spot 2021-04-04: three symbols, separate snapshot files attributed by name."""
    snaps = [CF / f"binance_spot_20210404_{s}_snapshot.json" for s in ("BTCUSDT", "ETHUSDT", "DOTUSDT")]
    market = RecordedMarket.from_files(CF / "binance_spot_20210404.ws.jsonl", snapshots=snaps)
    assert sorted(market.symbols) == ["BTCUSDT", "DOTUSDT", "ETHUSDT"]
    clients = {s: Client(s, Market.SPOT) for s in market.symbols}
    for symbol, client in clients.items():
        client.on_snapshot(market.snapshot(symbol, FULL), FULL)
    depth = {s: 0 for s in market.symbols}
    streams = set()
    for events in run(market):
        for event in events:
            streams.add(event.stream)
            if event.kind == "depth":
                depth[event.symbol] += 1
                clients[event.symbol].on_depth(event.payload)
    # PROVENANCE: 899 / 909 / 880 depth messages, first applied at idx 10 / 13 / 9
    assert depth == {"BTCUSDT": 899 - 10, "ETHUSDT": 909 - 13, "DOTUSDT": 880 - 9}
    assert "btcusdt@aggTrade" in streams
    assert "ethusdt@kline_1m" in streams
    for symbol, client in clients.items():
        assert_same_book(client.book, market.truth(symbol))


def test_usdm_boundary_cases_of_cryptofeed() -> None:
    """USD-M 2021: bridges with U == lastUpdateId (SUSHI) and u == lastUpdateId (AKRO, CTK, KEEP)."""
    symbols = ("SUSHIUSDT", "AKROUSDT", "CTKUSDT", "KEEPUSDT")
    snaps = [CF / f"binance_usdm_20210722_{s}_snapshot.json" for s in symbols]
    market = RecordedMarket.from_files([CF / "binance_usdm_20210722.ws.jsonl"], snapshots=snaps)
    first: dict[str, Any] = {}
    for events in run(market):
        for event in events:
            if event.kind == "depth" and event.symbol not in first:
                first[event.symbol] = decode_depth(event.payload, Market.USDM)
    lids = {s: json.loads(p.read_bytes())["lastUpdateId"] for s, p in zip(symbols, snaps, strict=True)}
    assert first["SUSHIUSDT"].U == lids["SUSHIUSDT"]
    for s in ("AKROUSDT", "CTKUSDT", "KEEPUSDT"):
        assert first[s].u == lids[s]


# ------------------------------------------------------------------ recorded: derived streams


def oracle(path: Path) -> dict[int, bytes]:
    """The exchange's own bookTicker payloads keyed by u (PROVENANCE: an exact top-of-book oracle)."""
    return {json.loads(data_slice(line))["u"]: data_slice(line) for line in lines(path)}


def test_spot_derived_book_ticker_equals_the_exchanges_byte_for_byte() -> None:
    market = spot_head()
    truth_oracle = oracle(DERIVED / "binance_spot_btcusdt_20240808_bookTicker_at_depth_u.jsonl")
    matched = 0
    for _ in run(market):
        u = market.truth("BTCUSDT").last_update_id
        if u in truth_oracle:
            assert market.derived("BTCUSDT", "bookTicker") == truth_oracle[u]  # same text, same decimals
            matched += 1
    assert matched > 100


def test_usdm_derived_book_ticker_matches_the_exchanges_fields() -> None:
    market = RecordedMarket.from_files([USDM_DEPTH], snapshots=[USDM_SNAP])
    truth_oracle = oracle(DERIVED / "binance_usdm_btcusdt_20240808_bookTicker_at_depth_u.jsonl")
    matched = 0
    for _ in run(market):
        u = market.truth("BTCUSDT").last_update_id
        if u in truth_oracle:
            ours = json.loads(market.derived("BTCUSDT", "bookTicker"))
            real = json.loads(truth_oracle[u])
            assert list(ours) == list(real)  # key order as the exchange sends it
            assert {k: ours[k] for k in "eusbBaA"} == {k: real[k] for k in "eusbBaA"}
            matched += 1
    assert matched >= 600  # PROVENANCE: 629 oracle lines


def test_subscribed_derived_events_follow_their_depth_event() -> None:
    market = spot_head()
    market.set_derived(["btcusdt@bookTicker", "btcusdt@depth5@100ms", "ethusdt@depth5", "btcusdt@trade"])
    client = Client("BTCUSDT", Market.SPOT)
    client.on_snapshot(market.snapshot("BTCUSDT", FULL), FULL)
    tickers = partials = 0
    previous_top = None
    for events in run(market):
        for event in events:
            if event.kind == "depth":
                client.on_depth(event.payload)
                continue
            book = client.book
            if event.kind == "bookTicker":
                tickers += 1
                t = decode_book_ticker(event.payload, Market.SPOT)
                assert t.u == book.last_update_id
                assert (book.parse_price(t.b), book.parse_qty(t.B)) == book.best_bid_ticks()
                assert (book.parse_price(t.a), book.parse_qty(t.A)) == book.best_ask_ticks()
                assert (t.b, t.B, t.a, t.A) != previous_top  # only when the best bid/ask changed
                previous_top = (t.b, t.B, t.a, t.A)
            else:
                assert event.kind == "depth5"
                assert event.stream == "btcusdt@depth5"
                partials += 1
                body = json.loads(event.payload)
                assert list(body) == ["lastUpdateId", "bids", "asks"]
                assert body["lastUpdateId"] == book.last_update_id
                assert [[book.parse_price(p), book.parse_qty(q)] for p, q in body["bids"]] == [
                    list(lv) for lv in book.bids_ticks(5)
                ]
                assert all(len(p.split(".")[1]) == 8 for p, _ in body["asks"])
    assert partials == 998
    assert 100 < tickers < 998
    market.set_derived([])
    assert market._derived_on is False


def test_futures_partial_depth_has_the_diff_shape() -> None:
    market = RecordedMarket.from_files([USDM_DEPTH], snapshots=[USDM_SNAP])
    market.set_derived(["btcusdt@depth20"])
    events = market.step()
    depth, partial = events[0], events[1]
    body = json.loads(partial.payload)
    ev = json.loads(depth.payload)
    assert list(body) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
    assert [body[k] for k in ("e", "E", "T", "s", "U", "u", "pu")] == [
        ev[k] for k in ("e", "E", "T", "s", "U", "u", "pu")
    ]
    truth = market.truth("BTCUSDT")
    assert [[truth.parse_price(p), truth.parse_qty(q)] for p, q in body["a"]] == [
        list(a) for a in truth.asks_ticks(20)
    ]
    with pytest.raises(ValueError, match="unknown derived"):
        market.derived("BTCUSDT", "kline")
    with pytest.raises(KeyError):
        market.derived("ETHUSDT", "bookTicker")


def test_snapshot_body_shape_and_formatting() -> None:
    spot = spot_head()
    body = json.loads(spot.snapshot("BTCUSDT", 3))
    assert list(body) == ["lastUpdateId", "bids", "asks"]
    recorded = json.loads(SPOT_SNAP.read_bytes())
    assert body["bids"] == recorded["bids"][:3]
    assert body["asks"] == recorded["asks"][:3]
    usdm = RecordedMarket.from_files([USDM_DEPTH], snapshots=[USDM_SNAP])
    body = json.loads(usdm.snapshot("BTCUSDT", 1000))
    assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
    recorded = json.loads(USDM_SNAP.read_bytes())
    assert body["bids"] == recorded["bids"]
    assert body["asks"] == recorded["asks"]
    with pytest.raises(ValueError, match="positive"):
        spot.snapshot("BTCUSDT", 0)


def test_stale_snapshot_is_older_than_the_stream() -> None:
    market = spot_head()
    for _ in range(200):
        market.step()
    client = tickbook.OrderBook("BTCUSDT", "spot")
    nxt = market.step()[0]
    client.apply_event(decode_depth(nxt.payload))  # subscribed: one event buffered
    stale = decode_snapshot(market.stale_snapshot("BTCUSDT", 1000))
    assert stale.lastUpdateId < market.truth("BTCUSDT").last_update_id - 1
    assert client.apply_snapshot(stale.lastUpdateId, stale.bids, stale.asks) is SnapshotResult.STALE


# ------------------------------------------------------------------ recorded: errors


def test_unsyncable_recording_is_an_error_at_load(tmp_path: Path) -> None:
    gap = tmp_path / "gap.jsonl"
    kept = lines(SPOT_HEAD)
    gap.write_bytes(b"\n".join(kept[:10] + kept[11:]) + b"\n")
    with pytest.raises(MarketError, match=r"BTCUSDT.*depth message 11 .*GAP"):
        RecordedMarket.from_files([gap], snapshots=[SPOT_SNAP])
    with pytest.raises(MarketError, match="no depth snapshot"):
        RecordedMarket.from_files([SPOT_HEAD])
    late = tmp_path / "late.jsonl"  # the snapshot is older than the stream: no event bridges it
    late.write_bytes(b"\n".join(kept[20:]) + b"\n")
    with pytest.raises(MarketError, match=r"cannot be synced.*NO_BRIDGE"):
        RecordedMarket.from_files([late], snapshots=[SPOT_SNAP])
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b'{"result":null,"id":1}\n')
    with pytest.raises(MarketError, match="no depth events"):
        RecordedMarket.from_files([empty], snapshots=[SPOT_SNAP])


# ------------------------------------------------------------------ exchangeInfo


def recorded_symbol(file: str, symbol: str) -> dict[str, Any]:
    info = json.loads((PAYLOADS / file).read_bytes())
    return next(s for s in info["symbols"] if s["symbol"] == symbol)


def test_exchange_info_keeps_real_filters() -> None:
    market = RecordedMarket.from_files([SPOT_HEAD], snapshots=[SPOT_SNAP], clock_ms=lambda: 1_700_000_000_123)
    info = json.loads(market.exchange_info())
    assert info["serverTime"] == 1_700_000_000_123
    assert info["timezone"] == "UTC"
    assert info["symbols"] == [recorded_symbol("binance_spot_exchangeInfo_20211012.json", "BTCUSDT")]
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    weight = next(r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT")
    assert weight == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }

    symbols = ("SUSHIUSDT", "AKROUSDT", "CTKUSDT", "KEEPUSDT")
    usdm = RecordedMarket.from_files(
        [CF / "binance_usdm_20210722.ws.jsonl"],
        snapshots=[CF / f"binance_usdm_20210722_{s}_snapshot.json" for s in symbols],
    )
    info = json.loads(usdm.exchange_info())
    assert info["futuresType"] == "U_MARGINED"
    assert "assets" in info
    assert [s["symbol"] for s in info["symbols"]] == usdm.symbols
    for entry in info["symbols"]:
        assert entry == recorded_symbol("binance_usdm_exchangeInfo_20210722.json", entry["symbol"])
    weight = next(r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT")
    assert weight["limit"] == 2400


def test_exchange_info_synthesises_absent_symbols_from_the_data(tmp_path: Path) -> None:
    """No recorded payloads at all: tick and step come out of the data (gcd of the snapshot levels)."""
    spot = RecordedMarket.from_files([SPOT_HEAD], snapshots=[SPOT_SNAP], payloads_dir=tmp_path)
    entry = json.loads(spot.exchange_info())["symbols"][0]
    filters = {f["filterType"]: f for f in entry["filters"]}
    assert entry["symbol"] == "BTCUSDT"
    assert (entry["baseAsset"], entry["quoteAsset"]) == ("BTC", "USDT")
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"  # the real tick (8 decimals written)
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    usdm = RecordedMarket.from_files([USDM_DEPTH], snapshots=[USDM_SNAP], payloads_dir=tmp_path)
    entry = json.loads(usdm.exchange_info())["symbols"][0]
    filters = {f["filterType"]: f for f in entry["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.1"  # BTCUSDT perpetual's tick in 2024
    assert entry["pricePrecision"] == 2
    assert entry["quantityPrecision"] == 3


# ------------------------------------------------------------------ generated market


def depth_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "depth"]


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_generated_is_deterministic_per_seed(market: str) -> None:
    symbols = ["BTCUSD_PERP"] if market == "coinm" else ["BTCUSDT", "ETHUSDT"]

    def payloads(seed: int) -> list[bytes]:
        source = GeneratedMarket(symbols, market, seed=seed, max_events=300)
        out = [e.payload for events in run(source) for e in events]
        out.append(source.snapshot(symbols[0], 100))
        return out

    first = payloads(7)
    assert first == payloads(7)
    assert first != payloads(8)
    alone = GeneratedMarket([symbols[0]], market, seed=7, max_events=50)
    together = GeneratedMarket(symbols, market, seed=7, max_events=100)
    mine = [e.payload for evs in run(together) for e in depth_events(evs) if e.symbol == symbols[0]]
    assert [e.payload for evs in run(alone) for e in depth_events(evs)] == mine[:50]


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_generated_wire_shape_ids_and_depth(market: str) -> None:
    symbol = "BTCUSD_PERP" if market == "coinm" else "BTCUSDT"
    source = GeneratedMarket([symbol], market, seed=3, max_events=3000)
    truth = source.truth(symbol)
    assert truth.bid_count >= 1000
    assert truth.ask_count >= 1000
    m = Market.parse(market)
    prev_u = truth.last_update_id
    contiguous = deletes = 0
    sizes = []
    kinds: dict[str, int] = {}
    for events in run(source):
        for event in events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
            body = json.loads(event.payload)
            if event.kind != "depth":
                assert body["e"] == event.kind
                assert body["s"] == symbol
                continue
            keys = ["e", "E", "s", "U", "u", "b", "a"]
            if m.is_futures:
                keys = ["e", "E", "T", "s", *(["ps"] if m is Market.COINM else []), "U", "u", "pu", "b", "a"]
            assert list(body) == keys
            if m.is_futures and kinds["depth"] > 1:
                assert body["pu"] == prev_u  # the futures chain
                contiguous += body["U"] == prev_u + 1
            elif m is Market.SPOT and kinds["depth"] > 1:
                assert body["U"] == prev_u + 1
            sizes.append(len(body["b"]) + len(body["a"]))
            deletes += sum(1 for _, q in body["b"] + body["a"] if float(q) == 0)
            prev_u = body["u"]
            assert event.final_id == body["u"]
        best_bid, best_ask = truth.best_bid_ticks(), truth.best_ask_ticks()
        assert best_bid is not None
        assert best_ask is not None
        assert best_bid[0] < best_ask[0]
    truth._check()
    assert truth.synced
    assert truth.last_update_id == prev_u
    assert kinds["depth"] == 3000
    assert kinds["trade"] == kinds["aggTrade"] > 500
    if m.is_futures:
        assert contiguous < 0.1 * 3000  # non-contiguous like the real futures feed
    sizes.sort()
    assert 5 <= sizes[len(sizes) // 2] <= 50
    assert sizes[0] >= 1
    assert sizes[-1] <= 300
    assert deletes > 0.1 * sum(sizes)


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_generated_client_tracks_the_truth(market: str) -> None:
    symbol = "BTCUSD_PERP" if market == "coinm" else "BTCUSDT"
    source = GeneratedMarket(
        [symbol, "XYZUSDT" if market != "coinm" else "ETHUSD_PERP"], market, seed=11, max_events=2400
    )
    plan = [(0, 0, FULL), (0, 5, FULL), (40, 40, FULL), (300, 377, 500), (900, 903, FULL)]
    follow(source, symbol, plan)


def test_generated_deletes_absent_levels_and_never_crosses() -> None:
    source = GeneratedMarket(["BTCUSDT"], "spot", seed=5, max_events=1500)
    shadow = PyOrderBook("BTCUSDT", "spot")  # an independent book: which deletes hit absent levels
    snap = decode_snapshot(source.snapshot("BTCUSDT", FULL))
    shadow.apply_snapshot(snap.lastUpdateId, snap.bids, snap.asks)
    absent = far = 0
    for events in run(source):
        for event in depth_events(events):
            body = json.loads(event.payload)
            best = shadow.best_bid_ticks()
            assert best is not None
            for p, q in body["b"] + body["a"]:
                if q == "0.00000000" and shadow.qty_at(p) == 0:
                    absent += 1
                if abs(shadow.parse_price(p) - best[0]) > 500 * 10**6:  # more than 500 ticks of 0.01 away
                    far += 1
            assert shadow.apply_event(decode_depth(event.payload)) & Applied.APPLIED
    assert absent > 100
    assert far > 100
    assert_same_book(shadow, source.truth("BTCUSDT"))


def test_generated_pregenerate_and_derived() -> None:
    a = GeneratedMarket(["BTCUSDT"], "usdm", seed=2, max_events=500)
    b = GeneratedMarket(["BTCUSDT"], "usdm", seed=2, max_events=500)
    assert b.pregenerate(10_000) == 500
    assert b.truth("BTCUSDT").last_update_id == a.truth("BTCUSDT").last_update_id  # not served yet
    a.set_derived(["btcusdt@bookTicker", "btcusdt@depth10"])
    b.set_derived(["btcusdt@bookTicker", "btcusdt@depth10"])
    sa = [[e.payload for e in evs] for evs in run(a)]
    sb = [[e.payload for e in evs] for evs in run(b)]
    assert sa == sb
    assert len(sa) == 500
    kinds = [e.kind for e in GeneratedMarket(["BTCUSDT"], "usdm", seed=2, max_events=5).step()]
    assert kinds[-1] == "depth"
    info = json.loads(a.exchange_info())
    assert info["symbols"] == [recorded_symbol("binance_usdm_exchangeInfo_20210722.json", "BTCUSDT")]
    fake = json.loads(GeneratedMarket(["QQQUSDT"], "spot").exchange_info())["symbols"][0]
    assert fake["filters"][0]["tickSize"] == "0.01000000"


def test_generated_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        GeneratedMarket([], "spot")
    with pytest.raises(ValueError, match="unknown market"):
        GeneratedMarket(["BTCUSDT"], "margin")
    with pytest.raises(ValueError, match="levels"):
        GeneratedMarket(["BTCUSDT"], "spot", levels=0)


def test_event_payloads_are_valid_json_everywhere() -> None:
    decoder = msgspec.json.Decoder()
    for source in (spot_head(), GeneratedMarket(["BTCUSDT"], "coinm", seed=1, max_events=100)):
        symbol = source.symbols[0]
        source.set_derived([f"{symbol.lower()}@bookTicker", f"{symbol.lower()}@depth5"])
        for events in run(source):
            for event in events:
                decoder.decode(event.payload)
        decoder.decode(source.exchange_info())
