"""The core's storage layouts (sorted blocks, pages indexed by price, tiers of the two) and
its choice.

A book's results never depend on the layout: every test here compares the core, in each
layout, with the pure-Python reference after every event (all levels as ticks, the
checksum, ``_check()``). What the layout itself must do is checked on the core through
``_layouts()`` and ``_tiers()``: "auto" takes pages for a dense snapshot and tiers for a
sparse one and moves from pages to tiers when the book spreads out; pages re-key themselves
for a finer price and fall back to blocks for prices too far apart; tiers keep a window
near the best key in their near tier (dense when busy, else pages), the rest in the far
one; when the touch leaves the window a dense one slides after it, anything else is rebuilt
around it (``_tier_slides()``, ``_tier_rebuilds()`` count both). The whole book
suite also runs with every side in pages (``TICKBOOK_LAYOUT=pages``, the second pass of
``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _helpers import STEP, TICK, fmt
from tickbook import _book
from tickbook._types import LAYOUT_ENV

LAYOUTS = ("auto", "blocks", "pages", "tiers")


@pytest.fixture
def window() -> Iterator[Any]:
    """``window(units, dense=0)`` sets the tiers' pages window and dense window (0: none) for
    the books built after it; both are restored after the test."""
    defaults = _book._tiers_window(), _book._tiers_dense_slots()

    def set_window(units: int, dense: int = 0) -> None:
        _book._tiers_window(units)
        _book._tiers_dense_slots(dense)

    yield set_window
    _book._tiers_window(defaults[0])
    _book._tiers_dense_slots(defaults[1])


def event(U: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> bytes:
    """A spot depth event with levels given as (price ticks at 0.01, quantity at 0.001)."""

    def side(levels: list[tuple[int, int]]) -> str:
        return ",".join(f'["{fmt(p, 2)}","{fmt(q, 3)}"]' for p, q in levels)

    return (
        f'{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{U},"u":{U},"b":[{side(bids)}],"a":[{side(asks)}]}}'
    ).encode()


def books(both_book_classes: tuple[type, type], **kw: Any) -> dict[str, Any]:
    """One core book per layout and the reference book (key "py"), same settings."""
    core, reference = both_book_classes
    made = {
        name: core("BTCUSDT", "spot", tick_size=TICK, step_size=STEP, layout=name, **kw) for name in LAYOUTS
    }
    made["py"] = reference("BTCUSDT", "spot", tick_size=TICK, step_size=STEP, **kw)
    return made


def snapshot(made: dict[str, Any], bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
    def text(levels: list[tuple[int, int]]) -> list[list[str]]:
        return [[fmt(p, 2), fmt(q, 3)] for p, q in levels]

    for book in made.values():
        book.apply_snapshot(1, text(bids), text(asks))


def apply_everywhere(made: dict[str, Any], frame: bytes) -> None:
    """Apply one frame to every book and check they all agree with the reference."""
    flags = {name: int(book.apply_frame(frame)) for name, book in made.items()}
    assert len(set(flags.values())) == 1, flags
    assert_same(made)


def assert_same(made: dict[str, Any]) -> None:
    ref = made["py"]
    want = (ref.bids_ticks(), ref.asks_ticks(), ref.checksum(25), ref.state, ref.last_update_id)
    for name in LAYOUTS:
        book = made[name]
        book._check()
        got = (book.bids_ticks(), book.asks_ticks(), book.checksum(25), book.state, book.last_update_id)
        assert got == want, name


def dense(best: int, n: int, step: int = 1) -> list[tuple[int, int]]:
    return [(best - i * step, 1000 + i) for i in range(n)]


# ------------------------------------------------------------------------ the name


def test_the_layout_name_is_checked(book_cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LAYOUT_ENV, raising=False)
    assert book_cls("BTCUSDT").layout == "auto"
    assert book_cls("BTCUSDT", layout="blocks").layout == "blocks"
    with pytest.raises(ValueError, match=r"layout must be one of auto, blocks, pages, tiers, got 'sorted'"):
        book_cls("BTCUSDT", layout="sorted")
    monkeypatch.setenv(LAYOUT_ENV, "pages")
    assert book_cls("BTCUSDT").layout == "pages"
    assert book_cls("BTCUSDT", layout="auto").layout == "auto"
    monkeypatch.setenv(LAYOUT_ENV, "tree")
    with pytest.raises(ValueError, match=r"\$TICKBOOK_LAYOUT must be one of .* got 'tree'"):
        book_cls("BTCUSDT")


# ------------------------------------------------------------------------ the choice


def test_auto_takes_pages_for_a_dense_snapshot(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 500), dense(10_000_01 + 499, 500)[::-1])
    assert made["auto"]._layouts() == ("pages", "pages")
    assert made["blocks"]._layouts() == ("blocks", "blocks")
    assert made["auto"].memory_bytes() <= 32 * 1000
    assert_same(made)


def test_auto_takes_tiers_for_a_sparse_snapshot(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    # one level every 40,000 ticks: each level would need a page of its own
    far = 40_001
    snapshot(made, dense(50_000_000, 100, step=far), dense(50_000_001 + far * 99, 100, step=far)[::-1])
    # the window of 32,768 ticks below the best holds the best level only: in pages
    assert made["auto"]._layouts() == ("tiers:pages", "tiers:pages")
    assert [(t["near_levels"], t["far_levels"]) for t in made["auto"]._tiers()] == [(1, 99), (1, 99)]
    assert made["pages"]._layouts() == ("pages", "pages")
    assert made["pages"].memory_bytes() > 2 * made["auto"].memory_bytes()
    assert_same(made)


def test_auto_moves_from_pages_to_tiers_when_the_book_spreads_out(
    both_book_classes: tuple[type, type],
) -> None:
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 200), [(10_000_01, 5)])
    assert made["auto"]._layouts() == ("pages", "tiers:pages")  # one ask alone does not fit 32 B
    U = 2
    # isolated far bids, one page each, until pages cost more than 48 bytes a level + 32 KiB
    while made["auto"]._layouts()[0] == "pages":
        assert U < 200, "auto never gave pages up"
        apply_everywhere(made, event(U, [(10_000_00 - 10_000 * U, 7)], []))
        U += 1
    assert made["pages"]._layouts() == ("pages", "pages")
    # 200 levels within 24,576 ticks of the best: a dense window, the isolated bids beyond
    assert made["auto"]._layouts()[0] == "tiers:dense"
    tiers = made["auto"]._tiers()[0]
    assert tiers["floor"] == 10_000_00 - 24_576
    inside = sum(1 for price, _ in made["py"].bids_ticks() if price >= tiers["floor"])
    assert (tiers["near_levels"], tiers["far_levels"]) == (inside, 200 + U - 2 - inside)
    assert inside == 201  # the dense levels and the isolated bid 20,000 ticks down
    # and the tiers carry on: updates, deletes, new levels near the touch
    apply_everywhere(
        made, event(U, [(10_000_00, 0), (9_999_99, 3), (10_000_00 - 10_000 * 3, 0)], [(10_000_02, 9)])
    )


# ------------------------------------------------------------------------ pages


def test_pages_rekey_for_a_finer_price(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 50, step=100), dense(10_001_00 + 49 * 100, 50, step=100)[::-1])
    assert made["pages"]._layouts() == ("pages", "pages")
    apply_everywhere(made, event(2, [(9_990_37, 0)], []))  # absent and finer: nothing to do
    apply_everywhere(made, event(3, [(9_990_37, 4), (9_990_50, 5)], [(10_001_25, 6)]))
    assert made["pages"]._layouts() == ("pages", "pages")
    apply_everywhere(made, event(4, [(9_990_37, 0), (10_000_00, 0)], [(10_001_00, 0)]))
    assert made["pages"].best_bid_ticks() == (9_999_00, 1001)
    assert made["pages"].qty_at_ticks(9_990_50) == made["py"].qty_at_ticks(9_990_50) == 5


def test_pages_fall_back_to_blocks_for_prices_too_far_apart(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    best = 10**12  # 10,000,000,000.00
    snapshot(made, dense(best, 20), dense(best + 20, 20)[::-1])
    # 2**16 pages of 4,096 ticks is the directory's reach; this bid is farther than that
    apply_everywhere(made, event(2, [(1, 3)], []))
    assert made["pages"]._layouts() == ("blocks", "pages")
    apply_everywhere(made, event(3, [(1, 0)], [(10**15, 2)]))
    assert made["pages"]._layouts() == ("blocks", "blocks")


def test_a_copy_of_pages_is_independent(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 300), dense(10_000_01 + 299, 300)[::-1])
    twin = made["pages"].copy()
    assert twin._layouts() == ("pages", "pages")
    assert twin.layout == "pages"
    assert twin.memory_bytes() == made["pages"].memory_bytes()
    apply_everywhere(made, event(2, [(10_000_00, 0), (9_999_50, 77)], [(10_000_05, 0)]))
    twin._check()
    assert twin.best_bid_ticks() == (10_000_00, 1000)
    assert twin.bids_ticks() != made["pages"].bids_ticks()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_depth_cap_trims_the_worst_level_in_every_layout(
    both_book_classes: tuple[type, type], layout: str
) -> None:
    made = books(both_book_classes, max_depth=100)
    snapshot(made, dense(10_000_00, 100), dense(10_000_01 + 99, 100)[::-1])
    # a delete below the floor, a delete and an update inside, an ask far beyond the ceiling
    apply_everywhere(made, event(2, [(9_998_00, 0), (9_999_95, 0), (10_000_00, 9)], [(10_050_00, 3)]))
    # a bid far below the floor, the best ask deleted
    apply_everywhere(made, event(3, [(9_000_00, 4)], [(10_000_01, 0)]))
    assert made[layout].bid_floor == made["py"].bid_floor
    assert made[layout].ask_ceiling == made["py"].ask_ceiling


# ------------------------------------------------------------------------ tiers


def test_tiers_keep_a_window_below_the_best_in_their_near_tier(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(100)
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 300), dense(10_000_01 + 299, 300)[::-1])
    bids, asks = made["tiers"]._tiers()
    assert bids["floor"] == 10_000_00 - 100
    assert asks["floor"] == -(10_000_01 + 100)
    assert (bids["near_levels"], bids["far_levels"]) == (101, 199)
    assert (asks["near_levels"], asks["far_levels"]) == (101, 199)
    assert made["tiers"]._layouts() == ("tiers:pages", "tiers:pages")
    # updates, deletes and inserts on both sides of each floor, and at it
    apply_everywhere(made, event(2, [(9_999_00, 1), (9_999_01, 0), (9_998_99, 0), (9_990_00, 5)], []))
    apply_everywhere(made, event(3, [(9_999_50, 0), (9_950_00, 0), (9_949_99, 8)], [(10_001_01, 0)]))
    assert made["tiers"].qty_at_ticks(9_999_00) == made["py"].qty_at_ticks(9_999_00) == 1


def test_tiers_rebuild_around_the_touch_when_it_leaves_the_window(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(100)
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 300), dense(20_000_00 + 299, 300)[::-1])
    rebuilds = _book._tier_rebuilds()
    # the touch moves up by more than the window: rebuilt around the new best
    apply_everywhere(made, event(2, [(10_000_50, 4)], []))
    assert _book._tier_rebuilds() == rebuilds
    apply_everywhere(made, event(3, [(10_001_01, 4)], []))
    assert _book._tier_rebuilds() == rebuilds + 1
    assert made["tiers"]._tiers()[0]["floor"] == 10_001_01 - 100
    # the touch falls below the floor + a quarter window (10_000_26): rebuilt around it
    apply_everywhere(made, event(4, [(10_001_01, 0)], []))  # best 10_000_50: inside
    assert _book._tier_rebuilds() == rebuilds + 1
    apply_everywhere(made, event(5, [(10_000_50, 0)], []))  # best 10_000_00: rebuilt
    assert _book._tier_rebuilds() == rebuilds + 2
    apply_everywhere(made, event(6, [(10_000_00 - i, 0) for i in range(30)], []))  # 9_999_70: inside
    assert _book._tier_rebuilds() == rebuilds + 2
    bids = made["tiers"]._tiers()[0]
    assert bids["floor"] == 10_000_00 - 100
    assert (bids["near_levels"], bids["far_levels"]) == (71, 199)
    # a side emptied and refilled: the first level centres the window again
    apply_everywhere(made, event(7, [], [(20_000_00 + i, 0) for i in range(300)]))
    apply_everywhere(made, event(8, [], [(15_000_00, 2), (15_000_01, 3)]))
    assert made["tiers"]._tiers()[1]["floor"] == -(15_000_00 + 100)


def test_tiers_rekey_their_near_pages_for_a_finer_price(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(1_000)
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 60, step=100), dense(10_001_00 + 59 * 100, 60, step=100)[::-1])
    apply_everywhere(made, event(2, [(9_999_37, 4), (9_000_03, 2)], [(10_001_25, 6)]))
    assert made["tiers"]._layouts() == ("tiers:pages", "tiers:pages")
    apply_everywhere(made, event(3, [(9_999_37, 0), (10_000_00, 0), (9_000_03, 0)], [(10_001_00, 0)]))


def test_a_copy_of_tiers_is_independent(both_book_classes: tuple[type, type], window: Any) -> None:
    window(50)
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 300), dense(10_000_01 + 299, 300)[::-1])
    twin = made["tiers"].copy()
    twin._check()
    assert twin._layouts() == ("tiers:pages", "tiers:pages")
    same = ("floor", "low", "high", "near_levels", "far_levels", "near_bytes")
    for got, want in zip(twin._tiers(), made["tiers"]._tiers(), strict=True):
        assert {k: got[k] for k in same} == {k: want[k] for k in same}
        assert got["far_bytes"] <= want["far_bytes"]  # a copy's blocks array has no spare slots
    apply_everywhere(made, event(2, [(10_000_00, 0), (9_998_00, 0)], [(10_000_05, 0)]))
    twin._check()
    assert twin.best_bid_ticks() == (10_000_00, 1000)
    assert twin.qty_at_ticks(9_998_00) == 1200  # in the far tier
    assert twin.bids_ticks() != made["tiers"].bids_ticks()


def test_a_busy_window_is_dense(both_book_classes: tuple[type, type], window: Any) -> None:
    window(32_768, dense=4096)
    made = books(both_book_classes, max_depth=3000)
    snapshot(made, dense(10_000_00, 4000), dense(10_000_01 + 3999, 4000)[::-1])
    assert made["tiers"]._layouts() == ("tiers:dense", "tiers:dense")
    bids = made["tiers"]._tiers()[0]
    # the best key at three quarters of the window: 3,072 units below it, 1,023 above
    assert (bids["floor"], bids["low"], bids["high"]) == (
        10_000_00 - 3072,
        10_000_00 - 2560,
        10_000_00 + 1023,
    )
    assert (bids["near_levels"], bids["far_levels"]) == (3000, 0)  # the depth cap kept 3,000
    assert bids["near_bytes"] == 4096 * 8 + 4096 // 8 + 4096 // 512
    # updates, deletes (the best, the lowest), inserts inside the window and below it
    apply_everywhere(made, event(2, [(10_000_00, 0), (9_999_98, 5), (9_997_00, 0), (9_990_00, 0)], []))
    apply_everywhere(made, event(3, [(9_997_01, 0), (10_000_00, 6), (9_996_90, 0)], [(10_000_01, 0)]))
    twin = made["tiers"].copy()
    twin._check()
    assert twin._layouts() == made["tiers"]._layouts()
    assert twin.bids_ticks() == made["tiers"].bids_ticks()
    apply_everywhere(made, event(4, [(9_999_99, 0)], []))
    assert twin.qty_at_ticks(9_999_99) == made["py"].qty_at_ticks(9_999_99) + 1001


def test_a_dense_window_gives_way_to_pages_and_returns(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(32_768, dense=4096)
    made = books(both_book_classes)
    # prices 100 ticks apart: the window's unit is 100 ticks, 409,600 ticks of window
    snapshot(made, dense(10_000_00, 400, step=100), dense(20_000_00 + 399 * 100, 400, step=100)[::-1])
    assert made["tiers"]._layouts() == ("tiers:dense", "tiers:dense")
    rebuilds = _book._tier_rebuilds()
    # a price between two units: the near tier becomes pages with the finer unit
    apply_everywhere(made, event(2, [(9_990_37, 4), (9_990_38, 0)], []))
    assert made["tiers"]._layouts() == ("tiers:pages", "tiers:dense")
    # a bid above the window's top: the touch left it, the side is rebuilt: dense, finer
    apply_everywhere(made, event(3, [(10_000_00 + 102_400, 3)], [(20_000_00, 0)]))
    assert _book._tier_rebuilds() == rebuilds + 1
    assert made["tiers"]._layouts() == ("tiers:pages", "tiers:dense")  # too few levels near it
    apply_everywhere(made, event(4, [(10_000_00 + 102_400, 0)], []))  # back down: rebuilt
    assert _book._tier_rebuilds() == rebuilds + 2
    assert made["tiers"]._layouts() == ("tiers:dense", "tiers:dense")
    assert made["tiers"]._tiers()[0]["floor"] == 10_000_00 - 3072  # unit 1 tick now


def test_a_dense_window_at_the_top_of_the_price_range(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(32_768, dense=4096)
    made = books(both_book_classes)
    top = 2**63 - 1  # the highest price in ticks: the window's top would lie beyond it
    snapshot(made, dense(top - 500, 300), [(top, 5)])
    assert made["tiers"]._layouts()[0] == "tiers:dense"
    assert made["tiers"]._tiers()[0]["high"] == top  # clamped, not wrapped
    rebuilds = _book._tier_rebuilds()
    apply_everywhere(made, event(2, [(top - 495, 2), (top - 500, 0)], []))
    assert _book._tier_rebuilds() == rebuilds


def slid_and_rebuilt() -> tuple[int, int]:
    return _book._tier_slides(), _book._tier_rebuilds()


def test_a_dense_window_slides_up_with_the_touch(both_book_classes: tuple[type, type], window: Any) -> None:
    window(32_768, dense=4096)
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 4000), dense(20_000_00 + 3999, 4000)[::-1])
    bids = made["tiers"]._tiers()[0]
    assert (bids["floor"], bids["high"]) == (10_000_00 - 3072, 10_000_00 + 1023)
    assert (bids["near_levels"], bids["far_levels"]) == (3073, 927)
    before = slid_and_rebuilt()
    # a bid 2,000 ticks up, past the window's top: the window slides up 2,048 slots (the
    # multiple of 64 that puts the bid at three quarters of it or just below) and the 2,048
    # levels below the new floor go to the far tier
    apply_everywhere(made, event(2, [(10_020_00, 5), (9_999_99, 0)], []))
    assert slid_and_rebuilt() == (before[0] + 1, before[1])
    bids = made["tiers"]._tiers()[0]
    floor = 10_000_00 - 3072 + 2048
    assert (bids["floor"], bids["low"], bids["high"]) == (floor, floor + 512, floor + 4095)
    assert (bids["near_levels"], bids["far_levels"]) == (3073 - 2048 + 1 - 1, 927 + 2048)
    assert made["tiers"]._layouts() == ("tiers:dense", "tiers:dense")
    # inserts and deletes on both sides of the new floor, and at it: no further move
    apply_everywhere(made, event(3, [(floor, 0), (floor - 1, 0), (floor + 1, 7), (floor - 500, 9)], []))
    assert slid_and_rebuilt() == (before[0] + 1, before[1])


def test_a_dense_window_slides_down_and_takes_levels_from_far(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(32_768, dense=4096)
    made = books(both_book_classes)
    # levels 3 ticks apart (and one off that grid, far down): the unit is one tick
    snapshot(made, [*dense(10_000_00, 3000, step=3), (1_000_01, 4)], dense(20_000_00 + 2999, 3000)[::-1])
    bids = made["tiers"]._tiers()[0]
    assert (bids["floor"], bids["near_levels"], bids["far_levels"]) == (10_000_00 - 3072, 1025, 1976)
    before = slid_and_rebuilt()
    # deleting the 900 best bids, best first: at the 854th the best (9_974_38) is below
    # floor + window / 8 (9_974_40), 510 slots up; the window slides down 2,624 slots to
    # put it at three quarters or just above, and far's bids now inside it move to near
    apply_everywhere(made, event(2, [(10_000_00 - 3 * i, 0) for i in range(900)], []))
    assert slid_and_rebuilt() == (before[0] + 1, before[1])
    floor = 10_000_00 - 3072 - 2624
    inside = sum(1 for price, _ in made["py"].bids_ticks() if price >= floor)
    assert inside == (10_000_00 - 3 * 900 - floor) // 3 + 1
    bids = made["tiers"]._tiers()[0]
    assert (bids["floor"], bids["near_levels"], bids["far_levels"]) == (floor, inside, 3001 - 900 - inside)
    # every near level but the best deleted: the touch stays; then the best: near is empty
    # and far's best (one tick below the floor) is the touch: the window slides down to it
    best = made["py"].best_bid_ticks()[0]
    rest = [(p, 0) for p, _ in made["py"].bids_ticks() if floor <= p < best]
    apply_everywhere(made, event(3, rest, []))
    assert slid_and_rebuilt() == (before[0] + 1, before[1])
    apply_everywhere(made, event(4, [(best, 0)], []))
    assert slid_and_rebuilt() == (before[0] + 2, before[1])
    assert made["py"].best_bid_ticks()[0] == floor - 1
    bids = made["tiers"]._tiers()[0]
    assert bids["floor"] == floor - 3136  # one slot below: 3,073 slots, rounded up to 64
    assert bids["near_levels"] == sum(1 for price, _ in made["py"].bids_ticks() if price >= bids["floor"])


def test_a_dense_window_is_rebuilt_when_it_cannot_slide(
    both_book_classes: tuple[type, type], window: Any
) -> None:
    window(32_768, dense=4096)
    made = books(both_book_classes)
    # 100 ticks apart: the unit is 100 ticks, the window 409,600 ticks from 6_928_00
    snapshot(made, dense(10_000_00, 400, step=100), dense(20_000_00 + 39_900, 400, step=100)[::-1])
    assert made["tiers"]._tiers()[0]["floor"] == 10_000_00 - 307_200
    before = slid_and_rebuilt()
    # a bid more than a window above the top: rebuilt around it (one level: near is pages)
    apply_everywhere(made, event(2, [(10_000_00 + 409_700, 5)], []))
    assert slid_and_rebuilt() == (before[0], before[1] + 1)
    assert made["tiers"]._layouts()[0] == "tiers:pages"
    apply_everywhere(made, event(3, [(10_000_00 + 409_700, 0)], []))  # deleted: rebuilt, dense
    assert slid_and_rebuilt() == (before[0], before[1] + 2)
    assert made["tiers"]._layouts()[0] == "tiers:dense"
    # a bid off the window's grid below its floor, in far; emptying near makes it the touch:
    # it cannot enter the window, so the side is rebuilt
    apply_everywhere(made, event(4, [(6_000_01, 3)], []))
    apply_everywhere(made, event(5, [(10_000_00 - 100 * i, 0) for i in range(400)], []))
    assert slid_and_rebuilt() == (before[0], before[1] + 3)
    assert made["tiers"].best_bid_ticks() == (6_000_01, 3)


# ------------------------------------------------------------------------ generated


TOUCH = 50_000_00  # bids below, asks above: generated events never cross


@st.composite
def updates(draw: st.DrawFn) -> list[tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """Events of levels near the touch, far out, and on coarse and fine price grids."""
    grid = draw(st.sampled_from([1, 5, 100, 10_000]))
    distance = st.one_of(
        st.integers(1, 300).map(lambda d: d * grid),  # near, on the event's grid
        st.integers(1, 300),  # near, finer than the grid (re-keys pages)
        st.integers(1, 10**6).map(lambda d: d * grid),  # far
        st.just(TOUCH - 1),  # the lowest bid possible
        st.integers(10**12, 10**15),  # asks beyond a page directory's reach
    )
    qty = st.one_of(st.just(0), st.integers(1, 10**6))
    out = []
    for _ in range(draw(st.integers(1, 25))):
        levels = st.lists(st.tuples(distance, qty), max_size=12)
        bids = [(TOUCH - min(d, TOUCH - 1), q) for d, q in draw(levels)]
        asks = [(TOUCH + d, q) for d, q in draw(levels)]
        out.append((bids, asks))
    return out


@given(
    snap_bids=st.integers(0, 400),
    snap_asks=st.integers(0, 400),
    step=st.sampled_from([1, 3, 37, 100]),
    gap=st.sampled_from([0, 3000]),
    stream=updates(),
    sweep=st.tuples(st.integers(0, 25), st.integers(0, 150)),
    tiers_window=st.sampled_from([8, 300, 32_768]),
    dense_slots=st.sampled_from([0, 4096]),
)
def test_every_layout_matches_the_reference(
    both_book_classes: tuple[type, type],
    snap_bids: int,
    snap_asks: int,
    step: int,
    gap: int,
    stream: Any,
    sweep: tuple[int, int],
    tiers_window: int,
    dense_slots: int,
) -> None:
    """``sweep`` (at, k): before the at-th event, one deleting the k best snapshot levels of
    each side, so that the touch moves down out of the tiers' window (small windows rebuild,
    dense ones slide down); ``gap`` ticks between the snapshot and the touch, so that the
    events' levels near it move the touch up (dense windows slide up)."""
    bids = dense(TOUCH - step - gap, snap_bids, step)
    asks = dense(TOUCH + gap + step * snap_asks, snap_asks, step)[::-1]
    at, k = sweep
    stream = list(stream)
    stream.insert(min(at, len(stream)), ([(p, 0) for p, _ in bids[:k]], [(p, 0) for p, _ in asks[:k]]))
    defaults = _book._tiers_window(), _book._tiers_dense_slots()
    _book._tiers_window(tiers_window)
    _book._tiers_dense_slots(dense_slots)
    try:
        made = books(both_book_classes)
        snapshot(made, bids, asks)
        assert_same(made)
        for U, (event_bids, event_asks) in enumerate(stream, start=2):
            apply_everywhere(made, event(U, event_bids, event_asks))
    finally:
        _book._tiers_window(defaults[0])
        _book._tiers_dense_slots(defaults[1])
