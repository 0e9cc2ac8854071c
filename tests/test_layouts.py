"""The core's two storage layouts (sorted blocks, pages indexed by price) and its choice.

A book's results never depend on the layout: every test here compares the core, in each
layout, with the pure-Python reference after every event (all levels as ticks, the
checksum, ``_check()``). What the layout itself must do is checked on the core through
``_layouts()``: "auto" takes pages for a dense snapshot and blocks for a sparse one and gives
pages up when the book spreads out; pages re-key themselves for a finer price and fall
back to blocks for prices too far apart. The whole book suite also runs with every side
in pages (``TICKBOOK_LAYOUT=pages``, the second pass of ``make test``).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _helpers import STEP, TICK, fmt
from tickbook._types import LAYOUT_ENV

LAYOUTS = ("auto", "blocks", "pages")


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
    with pytest.raises(ValueError, match=r"layout must be one of auto, blocks, pages, got 'sorted'"):
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


def test_auto_takes_blocks_for_a_sparse_snapshot(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    # one level every 40,000 ticks: each level would need a page of its own
    far = 40_001
    snapshot(made, dense(50_000_000, 100, step=far), dense(50_000_001 + far * 99, 100, step=far)[::-1])
    assert made["auto"]._layouts() == ("blocks", "blocks")
    assert made["pages"]._layouts() == ("pages", "pages")
    assert made["pages"].memory_bytes() > made["blocks"].memory_bytes()
    assert_same(made)


def test_auto_gives_up_pages_when_the_book_spreads_out(both_book_classes: tuple[type, type]) -> None:
    made = books(both_book_classes)
    snapshot(made, dense(10_000_00, 200), [(10_000_01, 5)])
    assert made["auto"]._layouts() == ("pages", "blocks")  # one ask alone does not fit 32 B
    U = 2
    # isolated far bids, one page each, until pages cost more than 48 bytes a level + 32 KiB
    while made["auto"]._layouts()[0] == "pages":
        assert U < 200, "auto never gave pages up"
        apply_everywhere(made, event(U, [(10_000_00 - 10_000 * U, 7)], []))
        U += 1
    assert made["pages"]._layouts() == ("pages", "pages")
    # and the blocks carry on: updates, deletes, new levels near the touch
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
    step=st.sampled_from([1, 3, 100]),
    stream=updates(),
)
def test_every_layout_matches_the_reference(
    both_book_classes: tuple[type, type], snap_bids: int, snap_asks: int, step: int, stream: Any
) -> None:
    made = books(both_book_classes)
    snapshot(
        made, dense(TOUCH - step, snap_bids, step), dense(TOUCH + step * snap_asks, snap_asks, step)[::-1]
    )
    assert_same(made)
    for U, (bids, asks) in enumerate(stream, start=2):
        apply_everywhere(made, event(U, bids, asks))
