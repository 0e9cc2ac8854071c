"""Decoder tests on real exchange payloads (``data/real/payloads/ws_samples_*.jsonl``).

Expected values come from the stdlib ``json`` module reading the same bytes, never from
tickbook code, so a decoder bug cannot agree with itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tickbook import Market
from tickbook.decode import (
    BOOK_TICKER,
    DEPTH,
    OTHER,
    SNAPSHOT,
    BookTicker,
    CombinedDepthTyped,
    CombinedFuturesDepthTyped,
    DecodeError,
    DepthSnapshot,
    DepthSnapshotTyped,
    DepthUpdate,
    DepthUpdateTyped,
    FuturesBookTicker,
    FuturesDepthSnapshot,
    FuturesDepthSnapshotTyped,
    FuturesDepthUpdate,
    FuturesDepthUpdateTyped,
    StreamDecoder,
    combined_depth_typed_decoder,
    combined_futures_depth_typed_decoder,
    decode_book_ticker,
    decode_depth,
    decode_snapshot,
    depth_snapshot_typed_decoder,
    depth_update_typed_decoder,
    futures_depth_snapshot_typed_decoder,
    futures_depth_update_typed_decoder,
    infer_market,
    stream_kind,
)

REAL = Path(__file__).parent.parent / "data" / "real"
PAYLOADS = REAL / "payloads"
DERIVED = REAL / "derived"
MARKETS = ["spot", "usdm", "coinm"]


def samples(market: str) -> list[bytes]:
    """The raw lines of ``ws_samples_<market>.jsonl`` (combined-stream messages)."""
    return (PAYLOADS / f"ws_samples_{market}.jsonl").read_bytes().splitlines()


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def expected_kind(stream: str) -> str:
    channel = stream.split("@", 1)[1]
    if channel == "depth" or channel.startswith("depth@"):
        return DEPTH
    if channel == "bookTicker":
        return BOOK_TICKER
    return OTHER


def check_depth(ev: Any, data: dict[str, Any], futures: bool) -> None:
    assert type(ev) is (FuturesDepthUpdate if futures else DepthUpdate)
    for key in ("e", "E", "s", "U", "u"):
        assert getattr(ev, key) == data[key], key
    assert isinstance(ev.b, msgspec.Raw)
    assert json.loads(bytes(ev.b)) == data["b"]
    assert json.loads(bytes(ev.a)) == data["a"]
    if isinstance(ev, FuturesDepthUpdate):
        assert ev.T == data["T"]
        assert ev.pu == data["pu"]
        assert ev.ps == data.get("ps")


def check_ticker(t: Any, data: dict[str, Any], futures: bool) -> None:
    assert type(t) is (FuturesBookTicker if futures else BookTicker)
    for key in ("u", "s", "b", "B", "a", "A"):
        assert getattr(t, key) == data[key], key
    if isinstance(t, FuturesBookTicker):
        assert (t.e, t.E, t.T) == (data["e"], data["E"], data["T"])


@pytest.mark.parametrize("market", MARKETS)
def test_every_sample_decodes_to_its_struct(market: str) -> None:
    decoder = StreamDecoder(market)
    futures = market != "spot"
    kinds = set()
    for line in samples(market):
        wire = json.loads(line)
        msg = decoder.decode(line)
        assert msg.stream == wire["stream"]
        assert msg.kind == expected_kind(wire["stream"])
        kinds.add(msg.kind)
        if msg.kind == DEPTH:
            check_depth(msg.data, wire["data"], futures)
        elif msg.kind == BOOK_TICKER:
            check_ticker(msg.data, wire["data"], futures)
        else:
            assert isinstance(msg.data, msgspec.Raw)
            assert json.loads(bytes(msg.data)) == wire["data"]
    assert kinds == {DEPTH, BOOK_TICKER, OTHER}


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_like_inputs_decode_alike(market: str, wrap: Any) -> None:
    """memoryview / bytearray input (a socket buffer) gives the same result as bytes."""
    decoder = StreamDecoder(market)
    for line in samples(market):
        a = decoder.decode(line)
        b = decoder.decode(wrap(line))
        assert (a.kind, a.stream) == (b.kind, b.stream)
        if a.kind in (DEPTH, BOOK_TICKER):
            assert a.data == b.data or bytes(a.data.b) == bytes(b.data.b)


@pytest.mark.parametrize("market", MARKETS)
def test_market_is_inferred_from_the_first_depth_message(market: str) -> None:
    assert StreamDecoder().market is None
    decoder = StreamDecoder()
    futures = market != "spot"
    for line in samples(market):
        wire = json.loads(line)
        msg = decoder.decode(line)
        if msg.kind == DEPTH:
            check_depth(msg.data, wire["data"], futures)
            assert decoder.market is Market(market)
            assert infer_market(line) is Market(market)
            assert infer_market(compact(wire["data"])) is Market(market)  # bare event too
        elif msg.kind == BOOK_TICKER:  # decoded by its own shape even before the market is known
            check_ticker(msg.data, wire["data"], futures)
    assert decoder.market is Market(market)


def test_infer_market_from_the_symbol() -> None:
    coinm = json.loads(samples("coinm")[0])["data"]
    del coinm["ps"]
    assert coinm["s"] == "BTCUSD_PERP"
    assert infer_market(compact(coinm)) is Market.COINM
    coinm["s"] = "ETHUSD_240927"  # COIN-M delivery contract
    assert infer_market(compact(coinm)) is Market.COINM
    coinm["s"] = "BTCUSDT_240927"  # USD-M delivery contract
    assert infer_market(compact(coinm)) is Market.USDM


def test_bare_events_and_reordered_wrappers() -> None:
    """Bare events and a wrapper with its keys in another order take the general path."""
    for market in MARKETS:
        decoder = StreamDecoder(market)
        futures = market != "spot"
        for line in samples(market):
            wire = json.loads(line)
            bare = decoder.decode(compact(wire["data"]))
            reordered = decoder.decode(compact({"data": wire["data"], "stream": wire["stream"]}))
            assert reordered.stream == wire["stream"]
            assert reordered.kind == expected_kind(wire["stream"])
            assert bare.stream is None
            if reordered.kind == DEPTH:
                assert bare.kind == DEPTH
                check_depth(bare.data, wire["data"], futures)
                check_depth(reordered.data, wire["data"], futures)
            elif reordered.kind == BOOK_TICKER:
                assert bare.kind == BOOK_TICKER
                check_ticker(bare.data, wire["data"], futures)
                check_ticker(reordered.data, wire["data"], futures)
            else:
                assert bare.kind == OTHER


def test_rest_snapshots() -> None:
    spot = (DERIVED / "binance_spot_btcusdt_20240808_snapshot.json").read_bytes()
    usdm = (DERIVED / "binance_usdm_btcusdt_20240808_snapshot.json").read_bytes()
    for raw, market, cls in ((spot, "spot", DepthSnapshot), (usdm, "usdm", FuturesDepthSnapshot)):
        wire = json.loads(raw)
        for decoder in (StreamDecoder(market), StreamDecoder()):
            msg = decoder.decode(raw)
            assert msg.kind == SNAPSHOT
            assert msg.stream is None
            assert msg.data.lastUpdateId == wire["lastUpdateId"]
            assert json.loads(bytes(msg.data.bids)) == wire["bids"]
            assert json.loads(bytes(msg.data.asks)) == wire["asks"]
        snap = decode_snapshot(raw, market)
        assert isinstance(snap, cls)
        assert len(json.loads(bytes(snap.bids))) == 1000
    assert decode_snapshot(spot).lastUpdateId == 50093239218  # PROVENANCE.md
    futures = decode_snapshot(usdm, "usdm")
    assert isinstance(futures, FuturesDepthSnapshot)
    assert futures.lastUpdateId == 5123107852948
    assert (futures.E, futures.T) == (1723161256501, 1723161256493)


def test_single_type_helpers() -> None:
    spot = json.loads(samples("spot")[0])["data"]
    usdm = json.loads(samples("usdm")[0])["data"]
    check_depth(decode_depth(compact(spot)), spot, False)
    check_depth(decode_depth(compact(usdm), "usdm"), usdm, True)
    ticker = json.loads(samples("spot")[2])["data"]
    check_ticker(decode_book_ticker(compact(ticker)), ticker, False)
    with pytest.raises(DecodeError, match="missing required field"):  # a spot event is no futures event
        decode_depth(compact(spot), "usdm")


def test_typed_variants() -> None:
    for market, typed, combined in (
        ("spot", depth_update_typed_decoder, combined_depth_typed_decoder),
        ("usdm", futures_depth_update_typed_decoder, combined_futures_depth_typed_decoder),
        ("coinm", futures_depth_update_typed_decoder, combined_futures_depth_typed_decoder),
    ):
        for line in samples(market):
            wire = json.loads(line)
            if expected_kind(wire["stream"]) != DEPTH:
                continue
            whole = combined.decode(line)
            assert isinstance(whole, CombinedFuturesDepthTyped if market != "spot" else CombinedDepthTyped)
            ev = typed.decode(compact(wire["data"]))
            assert isinstance(ev, FuturesDepthUpdateTyped if market != "spot" else DepthUpdateTyped)
            assert whole.data == ev
            assert ev.b == [tuple(level) for level in wire["data"]["b"]]
            assert ev.a == [tuple(level) for level in wire["data"]["a"]]
    spot = (DERIVED / "binance_spot_btcusdt_20240808_snapshot.json").read_bytes()
    usdm = (DERIVED / "binance_usdm_btcusdt_20240808_snapshot.json").read_bytes()
    s = depth_snapshot_typed_decoder.decode(spot)
    assert isinstance(s, DepthSnapshotTyped)
    assert s.bids[0] == tuple(json.loads(spot)["bids"][0])
    f = futures_depth_snapshot_typed_decoder.decode(usdm)
    assert isinstance(f, FuturesDepthSnapshotTyped)
    assert f.asks[-1] == tuple(json.loads(usdm)["asks"][-1])


def test_structs_are_frozen() -> None:
    msg = StreamDecoder("spot").decode(samples("spot")[0])
    with pytest.raises(AttributeError):
        msg.data.u = 1


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"',  # truncated frame
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"}}}',  # trailing junk
        b'{"lastUpdateId":1,"bids":[["1","2"]],"asks":[]',
        b"\xff\xfe{}",
    ],
)
def test_malformed_json_raises_decode_error(raw: bytes) -> None:
    for decoder in (StreamDecoder("spot"), StreamDecoder("usdm"), StreamDecoder()):
        with pytest.raises(DecodeError) as info:
            decoder.decode(raw)
        assert isinstance(info.value, ValueError)
        assert info.value.preview == raw[:80]
        assert "malformed JSON" in str(info.value)


def test_decode_error_preview_is_short() -> None:
    big = samples("spot")[0][:-5] + b"x" * 5000
    with pytest.raises(DecodeError) as info:
        StreamDecoder("spot").decode(big)
    assert info.value.preview == big[:80] + b"..."
    assert len(str(info.value)) < 300


def test_known_kind_with_missing_fields_raises() -> None:
    line = json.loads(samples("spot")[0])
    del line["data"]["u"]
    with pytest.raises(DecodeError, match="`u`"):
        StreamDecoder("spot").decode(compact(line))
    usdm = json.loads(samples("usdm")[0])
    del usdm["data"]["pu"]
    with pytest.raises(DecodeError, match="pu"):
        StreamDecoder("usdm").decode(compact(usdm))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"e":"serverShutdown","E":1746057600000}',
        b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1746057600000}}',
        b'{"result":null,"id":1}',
        b'{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}',
        b'{"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}',
        b'{"stream":"btcusdt@somethingNew","data":[1,2,3]}',
        b'{"stream":5,"data":{}}',
        b'{"e":{"nested":true}}',
        b"[1,2,3]",
        b"42",
        b'"text"',
    ],
)
def test_unknown_messages_are_other(raw: bytes) -> None:
    for decoder in (StreamDecoder("spot"), StreamDecoder("coinm"), StreamDecoder()):
        msg = decoder.decode(raw)
        assert msg.kind == OTHER
        assert isinstance(msg.data, msgspec.Raw)
        json.loads(bytes(msg.data))  # the payload, still valid JSON


def test_stream_kind() -> None:
    assert stream_kind("btcusdt@depth") == DEPTH
    assert stream_kind("btcusdt@depth@100ms") == DEPTH
    assert stream_kind("btcusdt@depth@0ms") == DEPTH
    assert stream_kind("btcusd_perp@depth@500ms") == DEPTH
    assert stream_kind("btcusdt@depth5") == OTHER
    assert stream_kind("btcusdt@depth20@100ms") == OTHER
    assert stream_kind("btcusdt@rpiDepth@500ms") == OTHER
    assert stream_kind("btcusdt@bookTicker") == BOOK_TICKER
    assert stream_kind("!bookTicker") == BOOK_TICKER
    assert stream_kind("btcusdt@trade") == OTHER
    assert stream_kind("!serverShutdown") == OTHER


def test_json_whitespace_takes_the_general_path() -> None:
    """Pretty-printed or re-serialised JSON does not match the fast-path prefix but decodes the same."""
    for market in MARKETS:
        decoder = StreamDecoder(market)
        for line in samples(market):
            wire = json.loads(line)
            spaced = json.dumps(wire, indent=1).encode()
            a, b = decoder.decode(line), decoder.decode(spaced)
            assert (a.kind, a.stream) == (b.kind, b.stream)
            if a.kind in (DEPTH, BOOK_TICKER):
                for key in ("s", "u"):
                    assert getattr(a.data, key) == getattr(b.data, key)
            if a.kind == DEPTH:
                assert json.loads(bytes(b.data.b)) == wire["data"]["b"]
