"""Bad input never corrupts a book: each case raises a clear error and leaves the book as it was.

Run on both implementations. "Unchanged" is checked with a full dump of the observable state
(levels, IDs, sync state, reason, counters, buffer, scales and the state-change clock).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from _helpers import ASKS, BIDS, STEP, TICK, diff, dump, lv, snap
from tickbook._types import Applied, BookError, DecimalError, LevelsFormatError, SnapshotResult, SyncState

MakeBook = Callable[..., Any]


def synced(make_book: MakeBook, market: str = "spot") -> Any:
    book = make_book(market=market, tick_size=TICK, step_size=STEP)
    snap(book, 100)
    diff(book, 100, 101, pu=99)  # bridges both rules: spot U <= 101 < u, futures U <= 100 <= u
    assert book.synced
    return book


def next_ids(book: Any) -> tuple[int, int, int]:
    """(U, u, pu) of an event the book would apply in its state (-1s while it buffers)."""
    lid = book.last_update_id
    if book.state == SyncState.BRIDGING:
        return lid, lid + 1, lid - 1
    if book.state == SyncState.SYNCED:
        return lid + 1, lid + 1, lid
    return 200, 201, 199


def books(make_book: MakeBook, market: str = "spot") -> list[Any]:
    """A book in each state that parses events: bridging and synced (and a waiting one)."""
    waiting = make_book(market=market, tick_size=TICK, step_size=STEP)
    diff(waiting, 90, 95, pu=80)
    bridging = make_book(market=market, tick_size=TICK, step_size=STEP)
    snap(bridging, 100)
    return [waiting, bridging, synced(make_book, market)]


# =========================================================================== malformed levels

MALFORMED_JSON = [
    b'[["100.00","1.0',  # truncated frame
    b'[["100.00","1.000"],',
    b'[["100.00","1.000"]]]',
    b"\x00\x01\x02",
    b"\xff\xfe[]",
    b"[" * 100_000,  # absurdly deep nesting
    b"null",
    b"true",
    b'"100.00"',
    b"{}",
    b'[{"p":"100.00","q":"1"}]',
    b'[["100.00",["1"]]]',
    b'[[1e5,"1"]]',
]


@pytest.mark.parametrize("data", MALFORMED_JSON, ids=range(len(MALFORMED_JSON)))
def test_malformed_json_levels(make_book: MakeBook, data: bytes) -> None:
    for book in books(make_book)[1:]:
        before = dump(book)
        with pytest.raises(LevelsFormatError):
            book.apply_diff(*next_ids(book)[:2], lv(("99.00", "1")), data)
        book._check()
        with pytest.raises(LevelsFormatError):
            book.apply_snapshot(500, lv(*BIDS), data)
        book._check()
        assert dump(book) == before


@pytest.mark.parametrize("levels", [None, 5, 1.5, {"100.00": "1"}, object(), [None], ["ab"], [b"ab"]])
def test_levels_of_the_wrong_type(make_book: MakeBook, levels: Any) -> None:
    book = synced(make_book)
    before = dump(book)
    with pytest.raises(LevelsFormatError):
        book.apply_diff(102, 102, levels, b"[]")
    book._check()
    with pytest.raises(LevelsFormatError):
        book.apply_snapshot(500, b"[]", levels)
    book._check()
    assert dump(book) == before


def test_malformed_events_are_buffered_unparsed_while_waiting(make_book: MakeBook) -> None:
    book = make_book(tick_size=TICK, step_size=STEP)
    for data in MALFORMED_JSON:
        assert diff(book, 200, 201, data, data) == Applied.BUFFERED
    assert book.buffered == len(MALFORMED_JSON)
    assert book.bid_count == 0


# =========================================================================== wrong symbol


class Event:
    def __init__(self, s: Any, U: int = 102, u: int = 102, pu: int | None = 101) -> None:
        self.e = "depthUpdate"
        self.s = s
        self.U = U
        self.u = u
        self.pu = pu
        self.b = lv(("99.00", "1"))
        self.a = b"[]"


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("symbol", ["ETHUSDT", "", "BTCUSDT ", "BTCUSDTX"])
def test_wrong_symbol(make_book: MakeBook, market: str, symbol: str) -> None:
    for book in books(make_book, market):
        before = dump(book)
        with pytest.raises(BookError) as info:
            book.apply_event(Event(symbol))
        book._check()
        if symbol:
            assert symbol.strip() in str(info.value)
        assert dump(book) == before
    book = synced(make_book, market)
    assert book.apply_event(Event("BTCUSDT")) == Applied.APPLIED


# =========================================================================== absurd numbers

ABSURD = [
    "1" + "0" * 30,  # huge
    "123456789012345678901234567890",  # 30 digits
    "-5.00",  # negative
    "-0",
    "0.0000000000000000001",  # 19 decimals, a non-zero digit past every scale
    "1.0000000000000000001",
    "9223372036854775808",  # INT64_MAX + 1 even at scale 0
    "NaN",
    "Infinity",
    "1e400",
    "0x1p3",
    "１",
]


@pytest.mark.parametrize("text", ABSURD)
@pytest.mark.parametrize("where", ["price", "qty"])
def test_absurd_numbers_in_an_event(make_book: MakeBook, text: str, where: str) -> None:
    pair = (text, "1") if where == "price" else ("99.00", text)
    for book in books(make_book)[1:]:
        before = dump(book)
        with pytest.raises(DecimalError) as info:
            book.apply_diff(*next_ids(book)[:2], lv(("99.50", "4"), pair), b"[]")
        book._check()
        assert text in str(info.value)
        assert dump(book) == before


@pytest.mark.parametrize("text", ABSURD)
@pytest.mark.parametrize("inferred", [False, True])
def test_absurd_numbers_in_a_snapshot(make_book: MakeBook, text: str, inferred: bool) -> None:
    book = make_book() if inferred else make_book(tick_size=TICK, step_size=STEP)
    before = dump(book)
    with pytest.raises(DecimalError):
        book.apply_snapshot(100, lv(*BIDS), lv(*ASKS, ("103.00", text)))
    book._check()
    with pytest.raises(DecimalError):
        book.apply_snapshot(100, lv(*BIDS, (text, "1")), lv(*ASKS))
    book._check()
    assert dump(book) == before
    assert book.state == SyncState.WAITING_FOR_SNAPSHOT


def test_absurd_number_in_a_buffered_event_is_counted(make_book: MakeBook) -> None:
    book = make_book(tick_size=TICK, step_size=STEP)
    diff(book, 101, 101, lv(("99.00", "1" + "0" * 30)))
    assert snap(book, 100) == SnapshotResult.BRIDGING
    assert book.stats()["bad_buffered"] == 1
    assert book.last_update_id == 100
    assert book.qty_at_ticks(9900) == 3000


@pytest.mark.parametrize("text", ["0", "0.00000000", "-0.01", "abc", "", "1e-2", "0.0000000000000000001"])
def test_absurd_tick_size(book_cls: type, text: str) -> None:
    with pytest.raises(DecimalError):
        book_cls("BTCUSDT", "spot", tick_size=text, step_size=STEP)
    with pytest.raises(DecimalError):
        book_cls("BTCUSDT", "spot", tick_size=TICK, step_size=text)


def test_unknown_market(book_cls: type) -> None:
    with pytest.raises(ValueError, match="margin"):
        book_cls("BTCUSDT", "margin")


# =========================================================================== absurd sizes


def test_event_with_100k_levels(make_book: MakeBook) -> None:
    book = make_book(tick_size=TICK, step_size=STEP)
    snap(book, 100, b"[]", b"[]")
    n = 50_000
    bids = json.dumps([[f"{t // 100}.{t % 100:02d}", "1.5"] for t in range(1, n + 1)]).encode()
    asks = json.dumps([[f"{t // 100}.{t % 100:02d}", "2"] for t in range(n + 1, 2 * n + 1)]).encode()
    assert diff(book, 101, 101, bids, asks) == Applied.APPLIED | Applied.BBO_CHANGED
    assert (book.bid_count, book.ask_count) == (n, n)
    assert book.best_bid_ticks() == (n, 1500)
    assert book.best_ask_ticks() == (n + 1, 2000)
    assert book.bids_ticks()[-1] == (1, 1500)
    assert book.checksum(2) == zlib.crc32(b"500:1.5|499.99:1.5|500.01:2|500.02:2")
    assert book.depth_within_bps_ticks(10000) == (n * 1500, n * 2000)
    # and all of it deleted again in one event
    deletes = json.dumps([[f"{t // 100}.{t % 100:02d}", "0"] for t in range(1, 2 * n + 1)]).encode()
    assert diff(book, 102, 102, deletes, b"[]") == Applied.APPLIED | Applied.BBO_CHANGED
    assert (book.bid_count, book.ask_count) == (0, n)
    assert diff(book, 103, 103, b"[]", deletes) == Applied.APPLIED | Applied.BBO_CHANGED
    assert (book.bid_count, book.ask_count) == (0, 0)


def test_snapshot_with_100k_levels_and_a_depth_cap(make_book: MakeBook) -> None:
    book = make_book(tick_size=TICK, step_size=STEP, max_depth=100)
    n = 100_000
    bids = [(f"{t // 100}.{t % 100:02d}", "1") for t in range(n, 0, -1)]
    assert snap(book, 100, bids, b"[]") == SnapshotResult.BRIDGING
    assert book.bid_count == 100
    assert book.bids_ticks()[-1] == (n - 99, 1000)
    assert book.bid_floor == n - 99  # the best trimmed bid was n - 100 ticks


def test_empty_event(make_book: MakeBook) -> None:
    book = synced(make_book)
    before = dump(book)
    assert diff(book, 102, 102, b"[]", b"[]") == Applied.APPLIED
    assert diff(book, 103, 105, [], "[]") == Applied.APPLIED
    assert book.last_update_id == 105
    after = dump(book)
    assert (after["bids"], after["asks"]) == (before["bids"], before["asks"])
    assert after["stats"]["applied"] == before["stats"]["applied"] + 2
    assert after["stats"]["bbo_changes"] == before["stats"]["bbo_changes"]


# =========================================================================== wrong types for IDs

BAD_IDS: list[Any] = ["102", b"102", 102.0, 102.5, None, [102]]


@pytest.mark.parametrize(
    ("market", "position"),
    # spot ignores pu, so only futures check its type
    [("spot", "U"), ("spot", "u"), ("usdm", "U"), ("usdm", "u"), ("usdm", "pu")],
)
@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
def test_wrong_id_types_in_apply_diff(make_book: MakeBook, market: str, bad: Any, position: str) -> None:
    for book in books(make_book, market):
        U, u, pu = next_ids(book)
        ids: dict[str, Any] = {"U": U, "u": u, "pu": pu}
        ids[position] = bad
        before = dump(book)
        with pytest.raises((TypeError, ValueError)):
            book.apply_diff(ids["U"], ids["u"], lv(("99.00", "1")), b"[]", ids["pu"])
        book._check()
        assert dump(book) == before


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
def test_wrong_id_types_in_apply_event(make_book: MakeBook, bad: Any) -> None:
    for book in books(make_book):
        before = dump(book)
        _, u, pu = next_ids(book)
        with pytest.raises((TypeError, ValueError)):
            book.apply_event(Event("BTCUSDT", U=bad, u=u, pu=pu))
        book._check()
        assert dump(book) == before


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
def test_wrong_id_types_in_apply_snapshot(make_book: MakeBook, bad: Any) -> None:
    for book in books(make_book):
        before = dump(book)
        with pytest.raises((TypeError, ValueError)):
            book.apply_snapshot(bad, lv(*BIDS), lv(*ASKS))
        book._check()
        assert dump(book) == before
