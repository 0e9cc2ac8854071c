"""Slower diff-depth streams merged from recorded events (tickbook.sim.speeds).

A client that follows the documented procedure on the merged stream must end with exactly
the book built from every raw event, on both implementations, for spot and USD-M.
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tickbook import Applied, Market
from tickbook.sim.speeds import DepthMerger, period_ms

DERIVED = Path(__file__).parent.parent / "data" / "real" / "derived"

RECORDINGS = {
    "spot": ("binance_spot_btcusdt_20240808_depth.jsonl.gz", "binance_spot_btcusdt_20240808_snapshot.json"),
    "usdm": ("binance_usdm_btcusdt_20240808_depth.jsonl.gz", "binance_usdm_btcusdt_20240808_snapshot.json"),
}


class _Wrapped(msgspec.Struct):
    stream: str
    data: msgspec.Raw


def payloads(market: str) -> list[bytes]:
    """The bare event payloads of a recording, byte for byte."""
    lines = gzip.decompress((DERIVED / RECORDINGS[market][0]).read_bytes()).splitlines()
    decoder = msgspec.json.Decoder(_Wrapped)
    return [bytes(decoder.decode(line).data) for line in lines]


def feed(book_cls: type, market: str, events: list[bytes]) -> Any:
    snapshot = json.loads((DERIVED / RECORDINGS[market][1]).read_bytes())
    book = book_cls("BTCUSDT", market)
    book.apply_snapshot(snapshot["lastUpdateId"], snapshot["bids"], snapshot["asks"])
    for payload in events:
        ev = json.loads(payload)
        result = book.apply_diff(ev["U"], ev["u"], ev["b"], ev["a"], ev.get("pu"))
        assert not result & (Applied.GAP | Applied.CROSSED), (ev["U"], ev["u"], book.reason_detail)
    return book


def merged(events: list[bytes], period: int) -> list[bytes]:
    merger = DepthMerger(period)
    out = [m for m in map(merger.add, events) if m is not None]
    last = merger.flush()
    assert last is not None
    return [*out, last]


@pytest.mark.parametrize(("market", "suffix"), [("spot", ""), ("usdm", ""), ("usdm", "@500ms")])
def test_merged_stream_tracks_the_raw_book(book_cls: type, market: str, suffix: str) -> None:
    raw = payloads(market)
    slow = merged(raw, period_ms(Market(market), suffix))
    assert len(slow) < len(raw) / 2  # windows really merge (spot: 10 x 100 ms per second)
    full = feed(book_cls, market, raw)
    book = feed(book_cls, market, slow)
    assert book.synced
    assert book.last_update_id == full.last_update_id
    assert book.bids_ticks() == full.bids_ticks()
    assert book.asks_ticks() == full.asks_ticks()
    book._check()


def test_merged_event_shape_and_ids() -> None:
    raw = payloads("usdm")[:40]
    out = merged(raw, 250)
    events = [json.loads(p) for p in out]
    first_raw = json.loads(raw[0])
    assert list(events[0]) == list(first_raw)  # the wire's key order
    assert events[0]["U"] == first_raw["U"]
    assert events[0]["pu"] == first_raw["pu"]
    for prev, ev in itertools.pairwise(events):
        assert ev["pu"] == prev["u"]  # the futures continuity rule holds on the merged stream
        assert ev["E"] // 250 > prev["E"] // 250
        prices = [float(p) for p, _ in ev["b"]]
        assert prices == sorted(prices, reverse=True)
        prices = [float(p) for p, _ in ev["a"]]
        assert prices == sorted(prices)


def test_last_quantity_of_a_window_wins() -> None:
    def event(E: int, U: int, u: int, bids: list[list[str]]) -> bytes:
        return json.dumps({"e": "depthUpdate", "E": E, "s": "X", "U": U, "u": u, "b": bids, "a": []}).encode()

    merger = DepthMerger(1000)
    assert merger.add(event(1000, 1, 2, [["10.0", "1"], ["9.5", "2"]])) is None
    assert merger.add(event(1100, 3, 4, [["10.0", "0"], ["11.0", "3"]])) is None
    out = merger.add(event(2000, 5, 5, [["9.0", "1"]]))
    assert out is not None
    assert json.loads(out) == {
        "e": "depthUpdate",
        "E": 1100,
        "s": "X",
        "U": 1,
        "u": 4,
        "b": [["11.0", "3"], ["10.0", "0"], ["9.5", "2"]],
        "a": [],
    }
    assert json.loads(merger.flush() or b"null")["U"] == 5
    assert merger.flush() is None


def test_period_table() -> None:
    assert period_ms(Market.SPOT, "") == 1000
    assert period_ms(Market.SPOT, "@100ms") == 100
    assert period_ms(Market.USDM, "") == 250
    with pytest.raises(KeyError):
        period_ms(Market.SPOT, "@250ms")
    with pytest.raises(ValueError, match="positive period"):
        DepthMerger(0)
