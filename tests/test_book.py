"""Example-based tests of every rule and query of ``docs/book.md``, on both implementations.

Every test takes ``make_book``/``book_cls`` and so runs on the Cython core (``c``) and on the
pure-Python reference (``py``). ``book._check()`` runs after every mutation (``diff``/``snap``
do it; the raising paths call it explicitly). Expected values are worked out by hand.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
import pytest

from _helpers import (
    ASKS,
    ASKS_TICKS,
    BIDS,
    BIDS_TICKS,
    STATS_KEYS,
    STEP,
    TICK,
    diff,
    dump,
    lv,
    snap,
    stats_delta,
)
from tickbook._types import (
    Applied,
    BookError,
    DecimalError,
    LevelsFormatError,
    Market,
    OutOfSyncReason,
    SnapshotResult,
    SyncState,
)

MakeBook = Callable[..., Any]
A = Applied.APPLIED
BBO = Applied.APPLIED | Applied.BBO_CHANGED
FUTURES = ["usdm", "coinm"]


def fresh(make_book: MakeBook, market: str = "spot", **kw: Any) -> Any:
    return make_book(market=market, tick_size=TICK, step_size=STEP, **kw)


def synced(make_book: MakeBook, market: str = "spot", **kw: Any) -> Any:
    """The standard book (BIDS/ASKS), snapshot 100, bridged by an empty event: SYNCED at 101."""
    book = fresh(make_book, market, **kw)
    assert snap(book, 100) == SnapshotResult.BRIDGING
    if market == "spot":
        assert diff(book, 101, 101) == A
    else:
        assert diff(book, 95, 101, pu=94) == A
    assert book.state == SyncState.SYNCED
    assert book.last_update_id == 101
    return book


def levels(book: Any) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return book.bids_ticks(), book.asks_ticks()


# =========================================================================== construction


def test_new_book(make_book: MakeBook) -> None:
    book = make_book("ETHBTC", "spot")
    book._check()
    assert book.symbol == "ETHBTC"
    assert book.market is Market.SPOT
    assert book.state == SyncState.WAITING_FOR_SNAPSHOT
    assert book.reason == OutOfSyncReason.NOT_STARTED
    assert book.synced is False
    assert book.last_update_id == -1
    assert book.state_since_update_id == -1
    assert book.price_scale is None
    assert book.qty_scale is None
    assert (book.bid_count, book.ask_count, book.buffered, book.first_buffered_id) == (0, 0, 0, -1)
    assert book.bid_floor is None
    assert book.ask_ceiling is None
    assert book.stats() == dict.fromkeys(STATS_KEYS, 0)
    assert book.best_bid() is None
    assert book.best_ask_ticks() is None
    assert book.best_bid_str() is None
    assert book.bids() == []
    assert book.asks_ticks() == []
    assert book.spread() is None
    assert book.spread_ticks() is None
    assert book.mid() is None
    assert book.microprice() is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [("spot", Market.SPOT), ("usdm", Market.USDM), ("coinm", Market.COINM), (Market.USDM, Market.USDM)],
)
def test_market_argument(make_book: MakeBook, given: Any, expected: Market) -> None:
    book = make_book("BTCUSDT", given)
    assert book.market is expected


def test_tick_and_step_fix_the_scales(make_book: MakeBook) -> None:
    book = make_book(tick_size="0.10000000", step_size="0.00000100", max_depth=7)
    assert (book.price_scale, book.qty_scale, book.max_depth) == (1, 6, 7)
    book._check()


def test_return_types(make_book: MakeBook) -> None:
    book = fresh(make_book)
    # Applied bits are plain ints: testing them in a hot loop costs no enum construction
    assert type(diff(book, 99, 99)) is int
    result = snap(book, 100)
    assert isinstance(result, SnapshotResult)
    assert isinstance(book.state, SyncState)
    assert isinstance(book.reason, OutOfSyncReason)
    assert type(diff(book, 101, 101)) is int
    assert isinstance(book.stats()["applied"], int)


# =========================================================================== spot sync


def test_snapshot_without_buffer_is_bridging(make_book: MakeBook) -> None:
    book = fresh(make_book)
    t0 = time.time_ns()
    assert snap(book, 100) == SnapshotResult.BRIDGING
    t1 = time.time_ns()
    assert book.state == SyncState.BRIDGING
    assert book.reason == OutOfSyncReason.NONE
    assert book.reason_detail == ""
    assert not book.synced
    assert book.last_update_id == 100
    assert book.state_since_update_id == 100
    assert t0 <= book.state_since_ns <= t1
    assert levels(book) == (BIDS_TICKS, ASKS_TICKS)
    assert book.stats()["snapshots"] == 1


def test_spot_bridging_stale_event(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 100)
    before = dump(book)
    # u == lastUpdateId: already contained in the snapshot (spot drops u <= lastUpdateId).
    assert diff(book, 95, 100, lv(("100.00", "9"))) == Applied.STALE
    after = dump(book)
    assert stats_delta(before.pop("stats"), after.pop("stats")) == {"stale": 1}
    assert after == before


def test_spot_bridging_no_bridge(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 5000)
    before = levels(book)
    assert diff(book, 5002, 5009, lv(("100.00", "9"))) == Applied.GAP
    assert book.state == SyncState.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.NO_BRIDGE
    assert "5002" in book.reason_detail
    assert "5000" in book.reason_detail or "5001" in book.reason_detail  # the id, or the bound id + 1
    assert levels(book) == before
    assert book.last_update_id == 5000
    assert book.state_since_update_id == 5000
    assert (book.buffered, book.first_buffered_id) == (1, 5002)
    assert {k: v for k, v in book.stats().items() if v} == {"snapshots": 1, "no_bridge": 1, "buffered": 1}


@pytest.mark.parametrize(
    ("U", "u"),
    [(101, 101), (101, 108), (97, 101), (90, 150)],  # U == u == id + 1 (BADGERBTC); U == id + 1; straddling
)
def test_spot_bridging_event_applies(make_book: MakeBook, U: int, u: int) -> None:
    book = fresh(make_book)
    snap(book, 100)
    t0 = time.time_ns()
    assert diff(book, U, u, lv(("99.50", "7"))) == A
    t1 = time.time_ns()
    assert book.state == SyncState.SYNCED
    assert book.synced
    assert book.reason == OutOfSyncReason.NONE
    assert book.reason_detail == ""
    assert book.last_update_id == u
    assert book.state_since_update_id == u
    assert t0 <= book.state_since_ns <= t1
    assert book.bids_ticks() == [(10000, 1000), (9950, 7000), (9900, 3000)]


def test_spot_synced_continuity(make_book: MakeBook) -> None:
    book = synced(make_book)
    assert diff(book, 102, 104, lv(("99.00", "4"))) == A
    assert diff(book, 105, 105) == A
    assert book.last_update_id == 105
    # u < book id: stale, ignored even though it carries data
    assert diff(book, 100, 104, lv(("99.00", "8"))) == Applied.STALE
    # u == book id and U <= id + 1: applied again (quantities are absolute)
    assert diff(book, 104, 105, lv(("99.00", "5"))) == A
    assert book.bids_ticks()[2] == (9900, 5000)
    assert book.last_update_id == 105
    stats = book.stats()
    assert (stats["applied"], stats["stale"]) == (4, 1)  # the bridge, 2 events, the re-apply; 1 stale


def test_spot_gap(make_book: MakeBook) -> None:
    book = synced(make_book)
    diff(book, 102, 7000)
    before = levels(book)
    assert diff(book, 7002, 7005, lv(("100.00", "9"))) == Applied.GAP
    assert book.state == SyncState.OUT_OF_SYNC
    assert not book.synced
    assert book.reason == OutOfSyncReason.GAP
    assert "7002" in book.reason_detail
    assert "7000" in book.reason_detail or "7001" in book.reason_detail  # the id, or the bound id + 1
    assert book.state_since_update_id == 7000
    assert book.last_update_id == 7000
    assert levels(book) == before  # the last good book stays readable
    assert (book.buffered, book.first_buffered_id) == (1, 7002)
    assert book.stats()["gaps"] == 1
    assert book.stats()["buffered"] == 1
    # from now on every event is buffered, unparsed
    assert diff(book, 7006, 7006, lv(("1.2.3", "1"))) == Applied.BUFFERED
    assert (book.buffered, book.first_buffered_id) == (2, 7002)
    assert book.stats()["buffered"] == 2
    assert levels(book) == before
    assert book.best_bid_ticks() == BIDS_TICKS[0]


def test_waiting_buffers_every_event(make_book: MakeBook) -> None:
    book = fresh(make_book)
    for i, U in enumerate((50, 60, 10)):  # no order or continuity check while waiting
        assert diff(book, U, U + 5, b"not json at all") == Applied.BUFFERED
        assert book.buffered == i + 1
    assert book.first_buffered_id == 50
    assert book.state == SyncState.WAITING_FOR_SNAPSHOT
    assert book.stats()["buffered"] == 3
    assert (book.bid_count, book.ask_count, book.last_update_id) == (0, 0, -1)


def test_snapshot_replays_the_buffer(make_book: MakeBook) -> None:
    book = fresh(make_book)
    events = [
        (90, 95, lv(("100.00", "11"))),  # u <= 100: stale, must not be applied
        (96, 100, lv(("99.50", "12"))),  # u == 100: stale
        (101, 103, lv(("99.00", "13"))),  # bridges (U == lastUpdateId + 1)
        (104, 104, lv(("98.00", "14"))),  # continues
    ]
    for U, u, bids in events:
        assert diff(book, U, u, bids) == Applied.BUFFERED
    assert snap(book, 100) == SnapshotResult.SYNCED
    assert book.state == SyncState.SYNCED
    assert book.last_update_id == 104
    assert book.bids_ticks() == [(10000, 1000), (9950, 2000), (9900, 13000), (9800, 14000)]
    assert (book.buffered, book.first_buffered_id) == (0, -1)
    # neither applied event touched the best levels: no bbo_changes
    assert {k: v for k, v in book.stats().items() if v} == {
        "buffered": 4,
        "snapshots": 1,
        "stale": 2,
        "applied": 2,
    }


def test_snapshot_replay_only_stale_events_is_bridging(make_book: MakeBook) -> None:
    book = fresh(make_book)
    diff(book, 90, 95)
    diff(book, 96, 99)
    assert snap(book, 100) == SnapshotResult.BRIDGING
    assert book.state == SyncState.BRIDGING
    assert book.stats()["stale"] == 2
    assert book.buffered == 0


def test_snapshot_replay_no_bridge(make_book: MakeBook) -> None:
    book = fresh(make_book)
    diff(book, 95, 99)  # stale once the snapshot is at 100, and keeps the snapshot from being STALE
    diff(book, 103, 105)  # 101..102 missing
    assert snap(book, 100) == SnapshotResult.OUT_OF_SYNC
    assert book.state == SyncState.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.NO_BRIDGE
    assert (book.buffered, book.first_buffered_id) == (1, 103)
    assert levels(book) == (BIDS_TICKS, ASKS_TICKS)
    assert book.last_update_id == 100
    assert book.stats()["no_bridge"] == 1


def test_snapshot_replay_gap_keeps_the_rest_buffered_then_resync(make_book: MakeBook) -> None:
    book = fresh(make_book)
    diff(book, 99, 101, lv(("99.00", "5")))
    diff(book, 103, 104, lv(("99.00", "6")))  # 102 missing
    diff(book, 105, 105, lv(("99.00", "7")))
    assert snap(book, 100) == SnapshotResult.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.GAP
    assert book.last_update_id == 101
    assert book.bids_ticks()[2] == (9900, 5000)
    assert (book.buffered, book.first_buffered_id) == (2, 103)
    assert book.stats()["gaps"] == 1
    # resync: a new snapshot at 104 drops the first buffered event (u <= 104) and bridges with 105
    assert snap(book, 104) == SnapshotResult.SYNCED
    assert book.last_update_id == 105
    assert book.bids_ticks()[2] == (9900, 7000)
    assert book.stats()["stale"] == 1
    assert book.stats()["snapshots"] == 2
    assert book.reason == OutOfSyncReason.NONE
    assert book.reason_detail == ""


def test_replayed_event_with_bad_numbers_is_skipped_and_counted(make_book: MakeBook) -> None:
    book = fresh(make_book)
    assert diff(book, 101, 101, lv(("99.00", "5"))) == Applied.BUFFERED
    assert diff(book, 102, 102, lv(("99.00", "1.2.3"))) == Applied.BUFFERED  # not parsed yet
    assert diff(book, 103, 103, lv(("99.00", "7"))) == Applied.BUFFERED
    # 101 bridges; 102 does not parse and is skipped; 103 then no longer continues the book
    assert snap(book, 100) == SnapshotResult.OUT_OF_SYNC
    assert book.stats()["bad_buffered"] == 1
    assert book.stats()["gaps"] == 1
    assert book.last_update_id == 101
    assert book.bids_ticks()[2] == (9900, 5000)
    assert (book.buffered, book.first_buffered_id) == (1, 103)


def test_buffered_bytes_are_copied(make_book: MakeBook) -> None:
    book = fresh(make_book)
    data = bytearray(lv(("99.00", "5")))
    view = memoryview(bytearray(lv(("101.00", "6"))))
    assert diff(book, 101, 101, data, view) == Applied.BUFFERED
    data[3] = ord("1")  # the caller reuses its buffers: "99.00" becomes "19.00"
    view[3] = ord("9")  # and "101.00" becomes "901.00"
    assert snap(book, 100) == SnapshotResult.SYNCED
    assert book.qty_at_ticks(9900) == 5000
    assert book.qty_at_ticks(10100) == 6000
    assert book.qty_at_ticks(1900) == 0
    assert book.qty_at_ticks(90100) == 0


@pytest.mark.parametrize("market", ["spot", *FUTURES])
def test_stale_snapshot_changes_nothing(make_book: MakeBook, market: str) -> None:
    book = make_book(market=market)  # scales inferred: a stale snapshot must not settle them
    diff(book, 200, 210, lv(("5.5", "1")), pu=190)
    before = dump(book)
    assert snap(book, 150) == SnapshotResult.STALE
    after = dump(book)
    assert stats_delta(before.pop("stats"), after.pop("stats")) == {"stale_snapshots": 1}
    assert after == before
    assert book.price_scale is None


def test_stale_snapshot_keeps_the_last_good_book(make_book: MakeBook) -> None:
    book = synced(make_book)
    diff(book, 105, 106, lv(("99.50", "5")))  # gap: out of sync, buffered from 105
    before = dump(book)
    assert snap(book, 103, lv(("1.00", "1")), lv(("2.00", "1"))) == SnapshotResult.STALE
    after = dump(book)
    assert stats_delta(before.pop("stats"), after.pop("stats")) == {"stale_snapshots": 1}
    assert after == before


def test_spot_snapshot_exactly_adjacent_to_the_stream_is_not_stale(make_book: MakeBook) -> None:
    book = fresh(make_book)
    diff(book, 200, 201)
    assert snap(book, 199) == SnapshotResult.SYNCED
    assert book.last_update_id == 201


@pytest.mark.parametrize("market", FUTURES)
def test_futures_snapshot_staleness_boundary(make_book: MakeBook, market: str) -> None:
    book = fresh(make_book, market)
    diff(book, 200, 230, pu=180)
    assert snap(book, 199) == SnapshotResult.STALE  # futures need U <= lastUpdateId
    assert snap(book, 200) == SnapshotResult.SYNCED  # U == lastUpdateId (SUSHI)
    assert book.last_update_id == 230


def test_buffer_limit_drops_the_oldest(make_book: MakeBook) -> None:
    book = fresh(make_book, buffer_limit=3)
    for U, qty in ((10, "1"), (20, "2"), (30, "3"), (40, "4"), (50, "5")):
        diff(book, U, U + 9, lv(("99.00", qty)))
    assert (book.buffered, book.first_buffered_id) == (3, 30)
    assert book.stats()["buffer_dropped"] == 2
    assert book.stats()["buffered"] == 5
    assert snap(book, 29) == SnapshotResult.SYNCED  # 30..39 bridges 29 + 1
    assert book.last_update_id == 59
    assert book.bids_ticks()[2] == (9900, 5000)
    assert book.stats()["applied"] == 3


def test_invalidate_from_synced(make_book: MakeBook) -> None:
    book = synced(make_book)
    before = levels(book)
    t0 = time.time_ns()
    book.invalidate("reconnect after ping timeout")
    book._check()
    assert book.state == SyncState.OUT_OF_SYNC
    assert not book.synced
    assert book.reason == OutOfSyncReason.INVALIDATED
    assert "reconnect after ping timeout" in book.reason_detail
    assert book.state_since_update_id == 101
    assert book.state_since_ns >= t0
    assert levels(book) == before
    assert book.buffered == 0
    assert diff(book, 102, 102) == Applied.BUFFERED


def test_invalidate_from_bridging(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 100)
    book.invalidate()
    book._check()
    assert book.state == SyncState.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.INVALIDATED


def test_invalidate_while_waiting_only_clears_the_buffer(make_book: MakeBook) -> None:
    book = fresh(make_book)
    diff(book, 10, 11)
    diff(book, 12, 13)
    book.invalidate("x")
    book._check()
    assert book.state == SyncState.WAITING_FOR_SNAPSHOT
    assert book.reason == OutOfSyncReason.NOT_STARTED
    assert (book.buffered, book.first_buffered_id) == (0, -1)


def test_invalidate_while_out_of_sync_keeps_the_reason(make_book: MakeBook) -> None:
    book = synced(make_book)
    diff(book, 200, 201)  # gap
    diff(book, 202, 203)
    assert book.buffered == 2
    book.invalidate("again")
    book._check()
    assert book.state == SyncState.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.GAP
    assert (book.buffered, book.first_buffered_id) == (0, -1)


def test_snapshot_while_synced_reloads(make_book: MakeBook) -> None:
    book = synced(make_book)
    assert snap(book, 500, lv(("10.00", "1")), lv(("11.00", "2"))) == SnapshotResult.BRIDGING
    assert levels(book) == ([(1000, 1000)], [(1100, 2000)])
    assert book.last_update_id == 500
    assert book.state == SyncState.BRIDGING
    assert book.stats()["snapshots"] == 2


@pytest.mark.parametrize("market", ["spot", *FUTURES])
def test_bad_ids_raise_and_change_nothing(make_book: MakeBook, market: str) -> None:
    for book in (fresh(make_book, market), synced(make_book, market)):
        before = dump(book)
        with pytest.raises(BookError):
            book.apply_diff(110, 109, b"[]", b"[]", 101)  # U > u
        book._check()
        assert dump(book) == before


# =========================================================================== futures sync


@pytest.mark.parametrize("market", FUTURES)
def test_futures_require_pu(make_book: MakeBook, market: str) -> None:
    for book in (fresh(make_book, market), synced(make_book, market)):
        before = dump(book)
        with pytest.raises(BookError):
            book.apply_diff(102, 103, b"[]", b"[]")
        book._check()
        assert dump(book) == before


def test_spot_ignores_pu(make_book: MakeBook) -> None:
    book = synced(make_book)
    assert diff(book, 102, 103, lv(("99.00", "1")), pu=777) == A
    assert diff(book, 104, 104, pu=None) == A
    assert book.last_update_id == 104


@pytest.mark.parametrize("market", FUTURES)
@pytest.mark.parametrize(
    ("U", "u", "expected"),
    [
        (90, 99, Applied.STALE),  # u < lastUpdateId (strictly)
        (95, 100, A),  # u == lastUpdateId is kept (AKRO, CTK, KEEP)
        (100, 130, A),  # U == lastUpdateId (SUSHI)
        (80, 120, A),
        (101, 130, Applied.GAP),  # U > lastUpdateId: no bridge (spot would accept U == id + 1)
    ],
)
def test_futures_bridging(make_book: MakeBook, market: str, U: int, u: int, expected: Applied) -> None:
    book = fresh(make_book, market)
    snap(book, 100)
    assert diff(book, U, u, lv(("99.00", "5")), pu=U - 7) == expected
    if expected == A:
        assert book.state == SyncState.SYNCED
        assert book.last_update_id == u
        assert book.qty_at_ticks(9900) == 5000
    elif expected == Applied.GAP:
        assert book.state == SyncState.OUT_OF_SYNC
        assert book.reason == OutOfSyncReason.NO_BRIDGE
        assert "101" in book.reason_detail
        assert "100" in book.reason_detail
        assert book.qty_at_ticks(9900) == 3000
    else:
        assert book.state == SyncState.BRIDGING
        assert book.stats()["stale"] == 1


@pytest.mark.parametrize("market", FUTURES)
def test_futures_non_contiguous_ids_with_matching_pu_apply(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    assert diff(book, 124, 140, lv(("99.00", "5")), pu=101) == A  # U jumps to prev u + 23
    assert diff(book, 170, 170, lv(("99.00", "6")), pu=140) == A
    assert book.last_update_id == 170
    assert book.synced
    assert book.qty_at_ticks(9900) == 6000


@pytest.mark.parametrize("market", FUTURES)
def test_futures_contiguous_U_with_wrong_pu_is_a_gap(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    diff(book, 150, 3000, pu=101)
    before = levels(book)
    assert diff(book, 3001, 3010, lv(("99.00", "5")), pu=2996) == Applied.GAP
    assert book.state == SyncState.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.GAP
    assert "2996" in book.reason_detail
    assert "3000" in book.reason_detail
    assert levels(book) == before
    assert (book.buffered, book.first_buffered_id) == (1, 3001)


@pytest.mark.parametrize("market", FUTURES)
def test_futures_duplicate_delivery_is_stale(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    diff(book, 110, 120, lv(("99.00", "5")), pu=101)
    assert diff(book, 110, 120, lv(("99.00", "9")), pu=101) == Applied.STALE  # the same event again
    assert diff(book, 102, 105, lv(("99.00", "9")), pu=50) == Applied.STALE
    assert book.qty_at_ticks(9900) == 5000
    assert book.synced
    assert book.stats()["stale"] == 2


@pytest.mark.parametrize("market", FUTURES)
def test_futures_replay(make_book: MakeBook, market: str) -> None:
    book = fresh(make_book, market)
    diff(book, 80, 90, pu=70)  # u < 100: stale
    diff(book, 91, 100, lv(("99.00", "4")), pu=90)  # u == lastUpdateId: bridges
    diff(book, 117, 130, lv(("99.00", "5")), pu=100)  # non-contiguous U, pu chains
    assert snap(book, 100) == SnapshotResult.SYNCED
    assert book.last_update_id == 130
    assert book.qty_at_ticks(9900) == 5000
    assert book.stats()["stale"] == 1
    assert book.stats()["applied"] == 2


# =========================================================================== atomicity


BAD_NUMBERS = ["1.2.3", "-1", "1e3", "", "1.0001", "99999999999999999999"]  # bad as a price and as a qty


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_bad_number_in_last_level_changes_nothing(make_book: MakeBook, bad: str, market: str) -> None:
    book = synced(make_book, market)
    bids = lv(("100.00", "5"), ("99.50", "0"), ("97.00", "1"))
    asks = lv(("100.50", "0"), ("101.00", "7"), ("102.00", bad))
    before = dump(book)
    with pytest.raises(DecimalError):
        book.apply_diff(102, 102, bids, asks, 101)
    book._check()
    assert dump(book) == before


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_bad_price_in_last_bid_changes_nothing_while_bridging(make_book: MakeBook, bad: str) -> None:
    book = fresh(make_book)
    snap(book, 100)
    before = dump(book)
    with pytest.raises(DecimalError):
        book.apply_diff(101, 101, lv(("100.00", "5"), (bad, "1")), b"[]")
    book._check()
    assert dump(book) == before


def test_bad_shape_in_asks_changes_nothing(make_book: MakeBook) -> None:
    book = synced(make_book)
    before = dump(book)
    with pytest.raises(LevelsFormatError):
        book.apply_diff(102, 102, lv(("100.00", "5")), b'[["101.00","1"],["102.00",1]]')
    book._check()
    assert dump(book) == before


@pytest.mark.parametrize("inferred", [False, True])
def test_bad_snapshot_changes_nothing(make_book: MakeBook, inferred: bool) -> None:
    book = make_book() if inferred else fresh(make_book)
    diff(book, 99, 101)
    before = dump(book)
    with pytest.raises(DecimalError):
        book.apply_snapshot(100, lv(*BIDS), lv(*ASKS, ("103.00", "1.2.3")))
    book._check()
    assert dump(book) == before
    with pytest.raises(LevelsFormatError):
        book.apply_snapshot(100, lv(*BIDS), b'[["103.00"]]')
    book._check()
    assert dump(book) == before
    if inferred:
        assert book.price_scale is None
        assert book.qty_scale is None


def test_crossed_snapshot_raises_and_changes_nothing(make_book: MakeBook) -> None:
    book = synced(make_book)
    before = dump(book)
    for bids, asks in (
        (lv(("101.00", "1")), lv(("100.00", "1"))),
        (lv(("100.00", "1")), lv(("100.00", "2"))),
    ):
        with pytest.raises(BookError):
            book.apply_snapshot(300, bids, asks)
        book._check()
        assert dump(book) == before


# =========================================================================== crossing


def test_crossed_update_is_rolled_back(make_book: MakeBook) -> None:
    book = synced(make_book)
    diff(book, 102, 4000)
    before = dump(book)
    # deletes the best ask, so the new bid at 101.00 meets the ask at 101.00: locked = crossed
    result = diff(book, 4001, 4003, lv(("101.00", "3"), ("99.50", "0")), lv(("100.50", "0")))
    assert result == Applied.CROSSED
    assert book.state == SyncState.OUT_OF_SYNC
    assert book.reason == OutOfSyncReason.CROSSED
    assert "4001" in book.reason_detail or "4003" in book.reason_detail
    assert levels(book) == (before["bids"], before["asks"])
    assert book.last_update_id == 4000
    assert book.state_since_update_id == 4000
    assert (book.buffered, book.first_buffered_id) == (1, 4001)
    assert stats_delta(before["stats"], book.stats()) == {"crossed": 1, "buffered": 1}
    assert diff(book, 4004, 4004) == Applied.BUFFERED


def test_crossed_update_with_a_repeated_price_is_rolled_back(make_book: MakeBook) -> None:
    book = synced(make_book)
    before = levels(book)
    bids = lv(("99.50", "5"), ("99.50", "7"), ("99.50", "0"), ("99.50", "8"), ("103.00", "1"))
    assert diff(book, 102, 102, bids) == Applied.CROSSED
    assert levels(book) == before


def test_crossed_while_bridging(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 100)
    assert diff(book, 101, 101, b"[]", lv(("99.00", "1"))) == Applied.CROSSED
    assert book.reason == OutOfSyncReason.CROSSED
    assert levels(book) == (BIDS_TICKS, ASKS_TICKS)
    assert book.last_update_id == 100


def test_one_sided_book_never_crosses(make_book: MakeBook) -> None:
    book = synced(make_book)
    # empty the asks and put a bid above where they were: no ask, so nothing to cross
    asks = lv(("100.50", "0"), ("101.00", "0"), ("102.00", "0"))
    assert diff(book, 102, 102, lv(("105.00", "1")), asks) == BBO
    assert book.ask_count == 0
    assert book.best_bid_ticks() == (10500, 1000)
    assert book.synced


# =========================================================================== levels


def test_zero_quantity_delete(make_book: MakeBook) -> None:
    book = synced(make_book)
    assert diff(book, 102, 102, lv(("99.50", "0"))) == A
    assert book.bids_ticks() == [(10000, 1000), (9900, 3000)]
    assert diff(book, 103, 103, lv(("99.50", "0.000"), ("50.00", "0")), lv(("150.00", "0"))) == A  # absent
    assert levels(book) == ([(10000, 1000), (9900, 3000)], ASKS_TICKS)
    assert book.last_update_id == 103
    assert book.synced


def test_repeated_price_in_one_event_last_wins(make_book: MakeBook) -> None:
    book = synced(make_book)
    diff(book, 102, 102, lv(("99.50", "5"), ("99.50", "7")))
    assert book.qty_at_ticks(9950) == 7000
    diff(book, 103, 103, lv(("99.50", "5"), ("99.50", "0")))
    assert book.qty_at_ticks(9950) == 0
    diff(book, 104, 104, lv(("98.00", "0"), ("98.00", "4")))
    assert book.qty_at_ticks(9800) == 4000


def test_snapshot_skips_zero_quantities_and_last_repeat_wins(make_book: MakeBook) -> None:
    book = fresh(make_book)
    bids = lv(("100.00", "1"), ("99.70", "0"), ("99.50", "2"), ("99.50", "6"), ("99.00", "3"))
    asks = lv(("100.50", "1"), ("100.70", "0.000"), ("101.00", "5"), ("101.00", "4"))
    snap(book, 100, bids, asks)
    assert levels(book) == ([(10000, 1000), (9950, 6000), (9900, 3000)], [(10050, 1000), (10100, 4000)])


def test_levels_beyond_the_snapshot(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 100, limit=3)
    assert (book.bid_floor, book.ask_ceiling) == (9900, 10200)
    diff(book, 101, 101, lv(("50.00", "1")), lv(("200.00", "2")))
    assert book.bids_ticks()[-1] == (5000, 1000)
    assert book.asks_ticks()[-1] == (20000, 2000)
    assert (book.bid_count, book.ask_count) == (4, 4)
    assert (book.bid_floor, book.ask_ceiling) == (9900, 10200)  # still unknown beyond the snapshot


@pytest.mark.parametrize(
    ("limit", "n_bids", "n_asks", "floor", "ceiling"),
    [
        (None, 3, 3, 9900, 10200),  # no limit: the worst snapshot levels
        (3, 3, 3, 9900, 10200),  # as many levels as the limit: maybe more beyond
        (4, 3, 3, None, None),  # fewer levels than the limit: the sides are complete
        (3, 3, 2, 9900, None),
        (None, 0, 3, None, 10200),  # an empty side has no floor
        (None, 1, 0, 10000, None),
    ],
)
def test_floor_and_ceiling(
    make_book: MakeBook, limit: int | None, n_bids: int, n_asks: int, floor: int | None, ceiling: int | None
) -> None:
    book = fresh(make_book)
    snap(book, 100, lv(*BIDS[:n_bids]), lv(*ASKS[:n_asks]), limit=limit)
    assert (book.bid_floor, book.ask_ceiling) == (floor, ceiling)


def test_max_depth_trims_and_moves_the_floor(make_book: MakeBook) -> None:
    book = fresh(make_book, max_depth=2)
    snap(book, 100)
    assert levels(book) == (BIDS_TICKS[:2], ASKS_TICKS[:2])
    assert book.bid_floor == 9901  # 99.00 trimmed: max(lowest snapshot bid 9900, 9900 + 1)
    assert book.ask_ceiling == 10199  # 102.00 trimmed
    diff(book, 101, 101, lv(("98.00", "1")))  # a worse bid: trimmed at once, floor stays
    assert book.bids_ticks() == BIDS_TICKS[:2]
    assert book.bid_floor == 9901
    diff(book, 102, 102, lv(("100.20", "1")))  # a better bid pushes out 99.50
    assert book.bids_ticks() == [(10020, 1000), (10000, 1000)]
    assert book.bid_floor == 9951
    diff(book, 103, 103, b"[]", lv(("100.50", "0")))  # one ask left: nothing to trim
    assert book.asks_ticks() == [(10100, 2500)]
    assert book.ask_ceiling == 10199
    diff(book, 104, 104, b"[]", lv(("100.30", "1"), ("100.40", "1")))  # pushes out 101.00
    assert book.asks_ticks() == [(10030, 1000), (10040, 1000)]
    assert book.ask_ceiling == 10099


def test_max_depth_with_a_complete_snapshot(make_book: MakeBook) -> None:
    book = fresh(make_book, max_depth=2)
    snap(book, 100, limit=100)  # complete sides (no floor), then trimmed: the trim sets the floor
    assert (book.bid_floor, book.ask_ceiling) == (9901, 10199)
    assert (book.bid_count, book.ask_count) == (2, 2)


# =========================================================================== BBO_CHANGED


@pytest.mark.parametrize(
    ("bids", "asks", "expected"),
    [
        ([("100.00", "1.5")], [], BBO),  # only the quantity of the best bid changed
        ([], [("100.50", "1.499")], BBO),  # only the quantity of the best ask changed
        ([("99.00", "9")], [("102.00", "9")], A),  # deep changes only
        ([("100.00", "1.000")], [("100.50", "1.5")], A),  # best levels set to what they were
        ([("100.10", "1")], [], BBO),  # a better bid
        ([], [("100.50", "0")], BBO),  # best ask deleted
        ([("100.00", "0"), ("100.00", "1")], [], A),  # deleted and restored in one event
        ([("50.00", "0")], [("150.00", "0")], A),  # absent levels deleted
        ([], [], A),  # an empty event
        ([("99.60", "4")], [("100.40", "0")], A),  # a bid below the best; an absent ask deleted
    ],
)
def test_bbo_changed(make_book: MakeBook, bids: list[Any], asks: list[Any], expected: Applied) -> None:
    book = synced(make_book)
    before = book.stats()["bbo_changes"]
    assert diff(book, 102, 102, lv(*bids), lv(*asks)) == expected
    assert book.stats()["bbo_changes"] - before == (1 if expected & Applied.BBO_CHANGED else 0)


def test_bbo_changed_when_a_side_empties_and_fills(make_book: MakeBook) -> None:
    book = synced(make_book)
    assert diff(book, 102, 102, b"[]", lv(("100.50", "0"), ("101.00", "0"), ("102.00", "0"))) == BBO
    assert book.best_ask() is None
    assert diff(book, 103, 103, b"[]", lv(("103.00", "1"))) == BBO
    assert book.best_ask_ticks() == (10300, 1000)
    assert diff(book, 104, 104, b"[]", lv(("104.00", "1"))) == A


def test_first_event_after_empty_snapshot(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 100, b"[]", b"[]")
    assert diff(book, 101, 101, lv(("1.00", "1"))) == BBO
    assert book.stats()["bbo_changes"] == 1


# =========================================================================== queries

QBIDS = [("99.9", "1"), ("99.8", "2"), ("99.0", "3")]
QASKS = [("100.1", "3"), ("100.2", "2"), ("101.0", "1")]


@pytest.fixture
def qbook(make_book: MakeBook) -> Any:
    book = fresh(make_book)
    snap(book, 100, lv(*QBIDS), lv(*QASKS))
    return book


def test_best(qbook: Any) -> None:
    assert qbook.best_bid() == (99.9, 1.0)
    assert qbook.best_ask() == (100.1, 3.0)
    assert qbook.best_bid_ticks() == (9990, 1000)
    assert qbook.best_ask_ticks() == (10010, 3000)
    assert qbook.best_bid_str() == ("99.9", "1")
    assert qbook.best_ask_str() == ("100.1", "3")
    for pair in (qbook.best_bid(), qbook.best_ask_ticks(), qbook.best_bid_str()):
        assert isinstance(pair, tuple)
    assert type(qbook.best_bid()[0]) is float
    assert type(qbook.best_bid_ticks()[0]) is int


def test_spread_mid_microprice(qbook: Any) -> None:
    assert qbook.spread_ticks() == 20
    assert qbook.spread() == 0.2  # 20 / 100: one rounding
    assert qbook.mid() == 100.0
    # (99.9 * 3 + 100.1 * 1) / (1 + 3) = 399.8 / 4
    assert qbook.microprice() == float(Fraction(3998, 40))
    assert qbook.microprice() == 99.95


def test_one_sided_queries(make_book: MakeBook) -> None:
    book = fresh(make_book)
    snap(book, 100, lv(*QBIDS), b"[]")
    assert book.best_ask() is None
    assert book.best_ask_ticks() is None
    assert book.best_ask_str() is None
    assert book.spread() is None
    assert book.spread_ticks() is None
    assert book.mid() is None
    assert book.microprice() is None
    assert book.depth_within_bps(10) is None
    assert book.depth_within_bps_ticks(10) is None
    assert book.fill("buy", qty=1) is None
    assert book.fill("sell", qty=1) is not None
    assert book.checksum(2) == zlib.crc32(b"99.9:1|99.8:2")
    assert book.asks_array().shape == (0, 2)


def test_depth_lists(qbook: Any) -> None:
    assert qbook.bids() == [(99.9, 1.0), (99.8, 2.0), (99.0, 3.0)]
    assert qbook.asks() == [(100.1, 3.0), (100.2, 2.0), (101.0, 1.0)]
    assert qbook.bids_ticks() == [(9990, 1000), (9980, 2000), (9900, 3000)]
    assert qbook.asks_str() == [("100.1", "3"), ("100.2", "2"), ("101", "1")]
    assert qbook.bids_str(2) == [("99.9", "1"), ("99.8", "2")]
    assert qbook.asks(1) == [(100.1, 3.0)]
    assert qbook.asks_ticks(0) == []
    assert qbook.bids(None) == qbook.bids(3) == qbook.bids(1000)


@pytest.mark.parametrize(
    "method",
    [
        "bids",
        "asks",
        "bids_ticks",
        "asks_ticks",
        "bids_str",
        "asks_str",
        "bids_array",
        "asks_array",
        "bids_ticks_array",
        "asks_ticks_array",
    ],
)
def test_negative_n_raises(qbook: Any, method: str) -> None:
    with pytest.raises(ValueError, match="-1"):
        getattr(qbook, method)(-1)


def test_arrays(qbook: Any) -> None:
    bids = qbook.bids_array()
    assert bids.dtype == np.float64
    assert bids.shape == (3, 2)
    assert bids.tolist() == [[99.9, 1.0], [99.8, 2.0], [99.0, 3.0]]
    asks = qbook.asks_array(2)
    assert asks.dtype == np.float64
    assert asks.shape == (2, 2)
    assert asks.tolist() == [[100.1, 3.0], [100.2, 2.0]]
    ticks = qbook.bids_ticks_array()
    assert ticks.dtype == np.int64
    assert ticks.shape == (3, 2)
    assert ticks.tolist() == [[9990, 1000], [9980, 2000], [9900, 3000]]
    assert qbook.asks_ticks_array(10).tolist() == [[10010, 3000], [10020, 2000], [10100, 1000]]
    empty = qbook.asks_ticks_array(0)
    assert empty.dtype == np.int64
    assert empty.shape == (0, 2)
    assert qbook.bids_array(0).shape == (0, 2)


def test_arrays_of_an_empty_book(make_book: MakeBook) -> None:
    book = fresh(make_book)
    for arr, dtype in ((book.bids_array(), np.float64), (book.asks_ticks_array(), np.int64)):
        assert arr.shape == (0, 2)
        assert arr.dtype == dtype


def test_arrays_are_independent_of_the_book(qbook: Any) -> None:
    arr = qbook.bids_ticks_array()
    diff(qbook, 101, 101, lv(("99.9", "0")))
    assert arr.tolist()[0] == [9990, 1000]


def test_qty_at(qbook: Any) -> None:
    assert qbook.qty_at("99.8") == 2.0  # bid side
    assert qbook.qty_at("100.2") == 2.0  # ask side
    assert qbook.qty_at(b"101.0") == 1.0
    assert qbook.qty_at("99.80000000") == 2.0
    assert qbook.qty_at("100") == 0.0  # no level there
    assert qbook.qty_at_ticks(9980) == 2000
    assert qbook.qty_at_ticks(10100) == 1000
    assert qbook.qty_at_ticks(12345) == 0
    with pytest.raises(DecimalError):
        qbook.qty_at("99.805")


def test_qty_at_needs_the_scales(make_book: MakeBook) -> None:
    book = make_book()
    with pytest.raises(BookError):
        book.qty_at("1")


@pytest.mark.parametrize(
    ("bps", "expected"),
    [
        (0, (0, 0)),  # mid is 100.0 exactly; nothing rests there
        (10, (1000, 3000)),  # [99.9, 100.1]: bounds included
        ("10", (1000, 3000)),
        (10.0, (1000, 3000)),
        (19.99, (1000, 3000)),
        (20, (3000, 5000)),  # [99.8, 100.2]
        (100, (6000, 6000)),  # [99.0, 101.0]
        (10000, (6000, 6000)),
    ],
)
def test_depth_within_bps(qbook: Any, bps: Any, expected: tuple[int, int]) -> None:
    assert qbook.depth_within_bps_ticks(bps) == expected
    assert qbook.depth_within_bps(bps) == (expected[0] / 1000, expected[1] / 1000)


def test_depth_within_negative_bps_raises(qbook: Any) -> None:
    with pytest.raises(ValueError, match="-1"):
        qbook.depth_within_bps(-1)
    with pytest.raises(ValueError, match="-1"):
        qbook.depth_within_bps_ticks("-1")


def _fill(
    avg: Fraction, worst: Fraction, qty: Fraction, notional: Fraction, complete: bool
) -> tuple[Any, ...]:
    return (float(avg), float(worst), float(qty), float(notional), complete)


@pytest.mark.parametrize(
    ("side", "kw", "expected"),
    [
        # 3 @ 100.1 + 1 @ 100.2
        (
            "buy",
            {"qty": 4},
            _fill(Fraction("400.5") / 4, Fraction("100.2"), Fraction(4), Fraction("400.5"), True),
        ),
        (
            "buy",
            {"qty": "4"},
            _fill(Fraction("400.5") / 4, Fraction("100.2"), Fraction(4), Fraction("400.5"), True),
        ),
        # everything: 300.3 + 200.4 + 101 = 601.7 for 6, short of 10
        (
            "buy",
            {"qty": 10.0},
            _fill(Fraction("601.7") / 6, Fraction(101), Fraction(6), Fraction("601.7"), False),
        ),
        # 300.3 at 100.1, then exactly 2 at 100.2 for the remaining 200.4
        (
            "buy",
            {"notional": "500.7"},
            _fill(Fraction("100.14"), Fraction("100.2"), Fraction(5), Fraction("500.7"), True),
        ),
        # 1 @ 99.9 + 0.5 @ 99.8
        (
            "sell",
            {"qty": 1.5},
            _fill(
                Fraction("149.8") / Fraction("1.5"),
                Fraction("99.8"),
                Fraction("1.5"),
                Fraction("149.8"),
                True,
            ),
        ),
        # 10 quote at 99.9: 10 / 99.9 base
        (
            "sell",
            {"notional": 10},
            _fill(Fraction("99.9"), Fraction("99.9"), Fraction(10) / Fraction("99.9"), Fraction(10), True),
        ),
        # everything: 99.9 + 199.6 + 297 = 596.5 quote for 6 base, short of the request
        (
            "sell",
            {"notional": 10**6},
            _fill(Fraction("596.5") / 6, Fraction(99), Fraction(6), Fraction("596.5"), False),
        ),
    ],
)
def test_fill(qbook: Any, side: str, kw: dict[str, Any], expected: tuple[Any, ...]) -> None:
    fill = qbook.fill(side, **kw)
    assert tuple(fill) == expected
    assert (
        fill.avg_price,
        fill.worst_price,
        fill.filled_qty,
        fill.filled_notional,
        fill.complete,
    ) == expected


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({}, "qty"),
        ({"qty": 1, "notional": 1}, "qty"),
        ({"qty": 0}, "0"),
        ({"qty": -1}, "-1"),
        ({"notional": "0"}, "0"),
    ],
)
def test_fill_bad_amounts(qbook: Any, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qbook.fill("buy", **kw)


def test_fill_bad_side(qbook: Any) -> None:
    with pytest.raises(ValueError, match="hold"):
        qbook.fill("hold", qty=1)


def test_checksum(qbook: Any) -> None:
    # canonical decimals: "99.0" is written "99" and "101.0" "101"
    assert qbook.checksum(1) == zlib.crc32(b"99.9:1|100.1:3")
    assert qbook.checksum(2) == zlib.crc32(b"99.9:1|99.8:2|100.1:3|100.2:2")
    everything = zlib.crc32(b"99.9:1|99.8:2|99:3|100.1:3|100.2:2|101:1")
    assert qbook.checksum(3) == everything
    assert qbook.checksum(50) == everything
    assert qbook.checksum(0) == zlib.crc32(b"")


def test_checksum_standard_book(make_book: MakeBook) -> None:
    book = synced(make_book)
    text = "100:1|99.5:2|99:3|100.5:1.5|101:2.5|102:0.5"
    assert book.checksum(3) == zlib.crc32(text.encode("ascii"))


# =========================================================================== copy, stats


def test_copy_is_independent(make_book: MakeBook) -> None:
    book = synced(make_book, max_depth=5)
    copy = book.copy()
    copy._check()
    assert type(copy) is type(book)
    assert dump(copy) == dump(book)
    diff(book, 102, 102, lv(("100.00", "9")))
    assert copy.best_bid_ticks() == (10000, 1000)
    assert copy.last_update_id == 101
    assert copy.stats()["applied"] == 1
    diff(copy, 102, 102, b"[]", lv(("100.50", "0")))
    assert book.best_ask_ticks() == (10050, 1500)
    assert book.best_bid_ticks() == (10000, 9000)


def test_copy_carries_the_buffer(make_book: MakeBook) -> None:
    book = fresh(make_book)
    diff(book, 101, 102, lv(("99.00", "5")))
    copy = book.copy()
    assert dump(copy) == dump(book)
    assert snap(copy, 100) == SnapshotResult.SYNCED
    assert book.buffered == 1
    assert book.state == SyncState.WAITING_FOR_SNAPSHOT
    assert snap(book, 100) == SnapshotResult.SYNCED
    assert dump(copy, with_time=False) == dump(book, with_time=False)


def test_stats_keys(make_book: MakeBook) -> None:
    book = synced(make_book)
    stats = book.stats()
    assert set(stats) == STATS_KEYS
    assert all(type(v) is int for v in stats.values())
    stats["applied"] = 999  # a fresh dict each time
    assert book.stats()["applied"] == 1


def test_memory_bytes(make_book: MakeBook) -> None:
    book = fresh(make_book)
    empty = book.memory_bytes()
    assert isinstance(empty, int)
    assert empty >= 0
    snap(book, 100, lv(*[(f"{50 + i}.00", "1") for i in range(40)]), lv(("200.00", "1")))
    assert book.memory_bytes() > empty


# =========================================================================== levels input

PAIRS = [("100.00", "1.000"), ("99.50", "2")]
PAIRS_TICKS = [(10000, 1000), (9950, 2000)]
GOOD_FORMS: dict[str, Any] = {
    "bytes": b'[["100.00","1.000"],["99.50","2"]]',
    "bytearray": bytearray(b'[["100.00","1.000"],["99.50","2"]]'),
    "memoryview": memoryview(b'[["100.00","1.000"],["99.50","2"]]'),
    "str": '[["100.00","1.000"],["99.50","2"]]',
    "whitespace": ' [ [ "100.00" , "1.000" ] ,\n\t[ "99.50", "2" ] ] ',
    "raw": msgspec.Raw(b'[["100.00","1.000"],["99.50","2"]]'),
    "list_of_lists": [["100.00", "1.000"], ["99.50", "2"]],
    "list_of_tuples": [("100.00", "1.000"), ("99.50", "2")],
    "tuple_of_tuples": (("100.00", "1.000"), ("99.50", "2")),
    "bytes_items": [(b"100.00", b"1.000"), (b"99.50", b"2")],
    "mixed_items": [("100.00", b"1.000"), [bytearray(b"99.50"), "2"]],
}
BAD_FORMS: dict[str, Any] = {
    "json_numbers": b'[[100.00,"1.000"]]',
    "json_number_qty": b'[["100.00",1]]',
    "json_null": b'[["100.00",null]]',
    "three_items": b'[["100.00","1.000","x"]]',
    "one_item": b'[["100.00"]]',
    "nested_too_deep": b'[[["100.00","1.000"]]]',
    "flat": b'["100.00","1.000"]',
    "object": b'{"100.00":"1.000"}',
    "invalid_json": b'[["100.00","1.000"]',
    "not_json": b"hello",
    "empty_text": b"",
    "trailing_garbage": b'[["100.00","1.000"]] x',
    "str_numbers": "[[100, 1]]",
    "list_three_items": [("100.00", "1.000", "x")],
    "list_one_item": [("100.00",)],
    "list_int_item": [(100, "1.000")],
    "list_none_item": [("100.00", None)],
    "list_float_item": [("100.00", 1.0)],
    "list_nested": [[("100.00", "1.000")]],
}


@pytest.mark.parametrize("form", list(GOOD_FORMS))
def test_levels_forms_accepted(make_book: MakeBook, form: str) -> None:
    data = GOOD_FORMS[form]
    book = fresh(make_book)
    snap(book, 100, data, lv(("101.00", "1")))
    assert book.bids_ticks() == PAIRS_TICKS
    event = fresh(make_book)
    snap(event, 100, b"[]", lv(("101.00", "1")))
    assert diff(event, 101, 101, data, b"[]") == BBO
    assert event.bids_ticks() == PAIRS_TICKS
    buffered = fresh(make_book)
    diff(buffered, 101, 101, data, b"[]")
    snap(buffered, 100, b"[]", lv(("101.00", "1")))
    assert buffered.bids_ticks() == PAIRS_TICKS


def test_levels_forms_accepted_on_the_ask_side(make_book: MakeBook) -> None:
    for form, data in GOOD_FORMS.items():
        book = fresh(make_book)
        snap(book, 100, lv(("1.00", "1")), b"[]")
        assert diff(book, 101, 101, b"[]", data) == BBO, form
        assert book.asks_ticks() == [(9950, 2000), (10000, 1000)], form


@pytest.mark.parametrize("form", list(BAD_FORMS))
def test_levels_forms_rejected(make_book: MakeBook, form: str) -> None:
    data = BAD_FORMS[form]
    book = synced(make_book)
    before = dump(book)
    with pytest.raises(LevelsFormatError):
        book.apply_diff(102, 102, data, b"[]")
    book._check()
    with pytest.raises(LevelsFormatError):
        book.apply_diff(102, 102, b"[]", data)
    book._check()
    with pytest.raises(LevelsFormatError):
        book.apply_snapshot(300, data, b"[]")
    book._check()
    assert dump(book) == before


def test_empty_levels(make_book: MakeBook) -> None:
    book = fresh(make_book)
    for empty in (b"[]", "[]", [], (), bytearray(b"[ ]"), msgspec.Raw(b"[]")):
        snap(book, 100, lv(*BIDS), empty)
        assert book.ask_count == 0


# =========================================================================== apply_event


def test_apply_event_spot(make_book: MakeBook) -> None:
    book = synced(make_book)
    ev = SimpleNamespace(
        e="depthUpdate", s="BTCUSDT", U=102, u=103, b=msgspec.Raw(lv(("99.00", "8"))), a=b"[]"
    )
    assert book.apply_event(ev) == A  # spot events have no pu attribute
    book._check()
    assert book.qty_at_ticks(9900) == 8000
    assert book.last_update_id == 103


@pytest.mark.parametrize("market", FUTURES)
def test_apply_event_futures(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    ev = SimpleNamespace(s="BTCUSDT", U=130, u=140, pu=101, b=[("99.00", "8")], a=[])
    assert book.apply_event(ev) == A
    book._check()
    gap = SimpleNamespace(s="BTCUSDT", U=141, u=150, pu=139, b=[], a=[])
    assert book.apply_event(gap) == Applied.GAP
    book._check()
    assert book.reason == OutOfSyncReason.GAP


@pytest.mark.parametrize("market", FUTURES)
def test_apply_event_futures_without_pu(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    before = dump(book)
    with pytest.raises(BookError):
        book.apply_event(SimpleNamespace(s="BTCUSDT", U=102, u=103, pu=None, b=[], a=[]))
    book._check()
    assert dump(book) == before


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_apply_event_wrong_symbol(make_book: MakeBook, market: str) -> None:
    for book in (fresh(make_book, market), synced(make_book, market)):
        before = dump(book)
        ev = SimpleNamespace(s="ETHUSDT", U=102, u=102, pu=101, b=lv(("99.00", "1")), a=b"[]")
        with pytest.raises(BookError, match="ETHUSDT"):
            book.apply_event(ev)
        book._check()
        assert dump(book) == before


# =========================================================================== scales


def test_scales_inferred_from_the_snapshot(make_book: MakeBook) -> None:
    book = make_book()
    snap(book, 100, lv(("100.5", "1.50000000"), ("99", "2")), lv(("100.75", "1")))
    assert (book.price_scale, book.qty_scale) == (2, 8)
    assert book.bids_ticks() == [(10050, 150000000), (9900, 200000000)]


def test_scales_inferred_with_the_buffer(make_book: MakeBook) -> None:
    book = make_book()
    diff(book, 90, 95, lv(("100.125", "1")))  # stale at replay, but its decimals still count
    diff(book, 101, 101, b"[]", lv(("100.6", "0.0001")))
    assert snap(book, 100, lv(("100.5", "1.5")), lv(("100.75", "1"))) == SnapshotResult.SYNCED
    assert (book.price_scale, book.qty_scale) == (3, 4)
    assert book.asks_ticks() == [(100600, 1), (100750, 10000)]


def test_scales_default_to_8_without_levels(make_book: MakeBook) -> None:
    book = make_book()
    snap(book, 100, b"[]", b"[]")
    assert (book.price_scale, book.qty_scale) == (8, 8)


def test_scales_are_settled_once(make_book: MakeBook) -> None:
    book = make_book()
    snap(book, 100, lv(("100.5", "1")), b"[]")
    assert (book.price_scale, book.qty_scale) == (1, 0)
    with pytest.raises(DecimalError):  # a later snapshot cannot widen them
        book.apply_snapshot(200, lv(("100.55", "1")), b"[]")
    book._check()
    assert book.last_update_id == 100
