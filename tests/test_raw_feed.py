"""The book's C interface (``_book.pxd``), driven from Cython by ``tickbook._raw_feed``.

The same real events go through ``apply_diff_raw`` (raw JSON spans, from Cython) and
through ``OrderBook.apply_diff`` (from Python): every result flag, every best level read
through ``best_bid_c``/``best_ask_c`` and the final books must be identical, including the
gap a dropped event causes and the buffering before the snapshot.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tickbook import Applied, SyncState
from tickbook._book import OrderBook
from tickbook._raw_feed import apply_raw_events

DERIVED = Path(__file__).parent.parent / "data" / "real" / "derived"
RECORDINGS = {
    "spot": ("binance_spot_btcusdt_20240808_depth.jsonl.gz", "binance_spot_btcusdt_20240808_snapshot.json"),
    "usdm": ("binance_usdm_btcusdt_20240808_depth.jsonl.gz", "binance_usdm_btcusdt_20240808_snapshot.json"),
}


class _Event(msgspec.Struct):
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    pu: int = -1


class _Wrapped(msgspec.Struct):
    data: _Event


def raw_events(market: str, limit: int) -> list[tuple[int, int, int, bytes, bytes]]:
    lines = gzip.decompress((DERIVED / RECORDINGS[market][0]).read_bytes()).splitlines()[:limit]
    decoder = msgspec.json.Decoder(_Wrapped)
    return [(e.U, e.u, e.pu, bytes(e.b), bytes(e.a)) for e in (decoder.decode(line).data for line in lines)]


def snapshot(market: str) -> dict[str, Any]:
    return json.loads((DERIVED / RECORDINGS[market][1]).read_bytes())


def through_python(book: OrderBook, events: list[tuple[int, int, int, bytes, bytes]]) -> list[Any]:
    out = []
    for U, u, pu, bids, asks in events:
        flags = book.apply_diff(U, u, bids, asks, pu)
        out.append((flags, book.best_bid_ticks(), book.best_ask_ticks()))
    return out


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("drop", [None, 700])
def test_raw_c_path_matches_apply_diff(market: str, drop: int | None) -> None:
    events = raw_events(market, 1500)
    if drop is not None:
        del events[drop]
    snap = snapshot(market)
    books = [OrderBook("BTCUSDT", market), OrderBook("BTCUSDT", market)]
    # the first events arrive before the snapshot: buffered on both paths
    early = [
        apply_raw_events(books[0], events[:3]),
        through_python(books[1], events[:3]),
    ]
    assert early[0] == early[1]
    assert all(flags == Applied.BUFFERED for flags, _, _ in early[0])
    for book in books:
        book.apply_snapshot(snap["lastUpdateId"], snap["bids"], snap["asks"])
    results = [apply_raw_events(books[0], events[3:]), through_python(books[1], events[3:])]
    assert results[0] == results[1]
    c_book, py_book = books
    assert c_book.stats() == py_book.stats()
    assert c_book.bids_ticks() == py_book.bids_ticks()
    assert c_book.asks_ticks() == py_book.asks_ticks()
    assert c_book.last_update_id == py_book.last_update_id
    if drop is None:
        assert c_book.state is SyncState.SYNCED
        assert sum(1 for flags, _, _ in results[0] if flags & Applied.APPLIED) > 1000
    else:
        assert c_book.state is SyncState.OUT_OF_SYNC
        assert c_book.stats()["gaps"] == 1
        assert c_book.buffered == py_book.buffered > 0
    c_book._check()


def test_raw_c_path_rejects_bad_numbers_and_ids() -> None:
    book = OrderBook("BTCUSDT", "spot")
    book.apply_snapshot(10, [["100.00", "1"]], [["101.00", "1"]])
    before = (book.bids_ticks(), book.asks_ticks(), book.last_update_id, book.stats())
    with pytest.raises(ValueError, match="more than 2 decimals"):
        apply_raw_events(book, [(11, 11, -1, b'[["100.001","1"]]', b"[]")])
    with pytest.raises(ValueError, match="bad update IDs"):
        apply_raw_events(book, [(12, 11, -1, b"[]", b"[]")])
    assert (book.bids_ticks(), book.asks_ticks(), book.last_update_id, book.stats()) == before
