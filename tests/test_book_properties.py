"""Property tests: generated snapshot + diff streams, fed to the books and to a tiny model.

Two kinds of generated input:

* ``scenarios``: a stream with valid continuity plus injected faults (stale, duplicate,
  gapped and reordered events, zero-quantity deletes of absent levels, levels beyond the
  snapshot, malformed numbers, crossing updates, wrong symbols, bad IDs, invalidations,
  copies, stale and crossed snapshots). The same operations go to the book(s) and to
  ``Model``, an independent reading of ``docs/book.md`` written for this file (a dict per
  side; it does not use ``tickbook._rules``, ``_decimal`` or ``_analytics``), so a
  misunderstanding shared by both books still shows. After EVERY step: the same return value
  or exception class, state, reason, IDs, counters, buffer, floors, scales, full depth as
  ticks and checksum, and ``_check()`` passes. ``test_core_and_reference_agree`` also runs
  the two implementations side by side and compares every query, floats included; its
  ``_on_corners`` twin feeds input the docs leave open and compares the two books only.
* ``clean_streams``: an exchange simulated with a true book; its events, a snapshot of a
  past state, and the check that the local book equals the exchange's book after every
  event and that ``BBO_CHANGED`` is set exactly when the true top of book changed.

Reproducible: the default hypothesis profile (``ci``, see conftest.py) is derandomized.
Shrunk failures found while writing these are kept as ``@example``s.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from _helpers import STATS_KEYS, dump, fmt
from tickbook._types import (
    Applied,
    BookError,
    DecimalError,
    OutOfSyncReason,
    SnapshotResult,
    SyncState,
)

SYMBOL = "BTCUSDT"
TRUE_PRICE_SCALE = 2  # generated prices are multiples of 0.01
TRUE_QTY_SCALE = 3  # generated quantities are multiples of 0.001
FIXED = {"tick_size": "0.01000000", "step_size": "0.00100000"}
INT64_MAX = 2**63 - 1
UNKNOWN = object()

# =========================================================================== the model


def model_parse(text: str, scale: int) -> int:
    m = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?", text, re.ASCII)
    if m is None:
        raise DecimalError(f"malformed {text!r}")
    whole, frac = m.group(1), m.group(2) or ""
    if frac[scale:].strip("0"):
        raise DecimalError(f"too many decimals {text!r}")
    value = int(whole) * 10**scale + int(frac[:scale].ljust(scale, "0") or "0")
    if value > INT64_MAX:
        raise DecimalError(f"overflow {text!r}")
    return value


def written_decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


Pairs = tuple[tuple[str, str], ...]


@dataclass
class Ev:
    U: int
    u: int
    pu: int | None
    bids: Pairs
    asks: Pairs


@dataclass
class Model:
    futures: bool
    price_scale: int | None
    qty_scale: int | None
    max_depth: int
    buffer_limit: int
    state: SyncState = SyncState.WAITING_FOR_SNAPSHOT
    reason: OutOfSyncReason = OutOfSyncReason.NOT_STARTED
    last_update_id: int = -1
    since_id: Any = -1
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    buffer: list[Ev] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATS_KEYS, 0))
    floor: int | None = None
    ceiling: int | None = None

    # --- helpers
    def set_state(self, state: SyncState, reason: OutOfSyncReason) -> None:
        # A "change" to the same state (a snapshot while bridging) may or may not restamp:
        # the docs do not say, so the model stops checking until the next real change.
        self.since_id = self.last_update_id if state != self.state else UNKNOWN
        self.state, self.reason = state, reason

    def keep(self, ev: Ev) -> None:
        self.buffer.append(ev)
        self.stats["buffered"] += 1
        if len(self.buffer) > self.buffer_limit:
            del self.buffer[0]
            self.stats["buffer_dropped"] += 1

    def restart_buffer(self, ev: Ev) -> None:
        self.buffer = [ev]
        self.stats["buffered"] += 1

    def top(self) -> tuple[Any, Any]:
        bid = max(self.bids) if self.bids else None
        ask = min(self.asks) if self.asks else None
        return (
            None if bid is None else (bid, self.bids[bid]),
            None if ask is None else (ask, self.asks[ask]),
        )

    def cap(self) -> None:
        if self.max_depth <= 0:
            return
        if len(self.bids) > self.max_depth:
            removed = sorted(self.bids, reverse=True)[self.max_depth :]
            for p in removed:
                del self.bids[p]
            self.floor = max(removed[0] + 1, self.floor if self.floor is not None else removed[0] + 1)
        if len(self.asks) > self.max_depth:
            removed = sorted(self.asks)[self.max_depth :]
            for p in removed:
                del self.asks[p]
            self.ceiling = min(removed[0] - 1, self.ceiling if self.ceiling is not None else removed[0] - 1)

    def verdict(self, U: int, u: int, pu: int | None) -> str:
        lid = self.last_update_id
        if not self.futures:
            if self.state == SyncState.BRIDGING:
                return "stale" if u <= lid else "no_bridge" if U > lid + 1 else "apply"
            return "stale" if u < lid else "gap" if U > lid + 1 else "apply"
        if self.state == SyncState.BRIDGING:
            return "stale" if u < lid else "no_bridge" if U > lid else "apply"
        return "apply" if pu == lid else "stale" if u <= lid else "gap"

    # --- the API
    def apply_diff(self, ev: Ev) -> int:
        if self.futures and ev.pu is None:
            raise BookError("futures need pu")
        if ev.U > ev.u:
            raise BookError("U > u")
        if self.state in (SyncState.WAITING_FOR_SNAPSHOT, SyncState.OUT_OF_SYNC):
            self.keep(ev)
            return Applied.BUFFERED
        verdict = self.verdict(ev.U, ev.u, ev.pu)
        if verdict == "stale":
            self.stats["stale"] += 1
            return Applied.STALE
        if verdict in ("gap", "no_bridge"):
            reason = OutOfSyncReason.GAP if verdict == "gap" else OutOfSyncReason.NO_BRIDGE
            self.set_state(SyncState.OUT_OF_SYNC, reason)
            self.stats["gaps" if verdict == "gap" else "no_bridge"] += 1
            self.restart_buffer(ev)
            return Applied.GAP
        assert self.price_scale is not None
        assert self.qty_scale is not None
        changes = [
            (side, model_parse(p, self.price_scale), model_parse(q, self.qty_scale))
            for side, pairs in ((self.bids, ev.bids), (self.asks, ev.asks))
            for p, q in pairs
        ]
        before = self.top()
        undo = []
        for side, price, qty in changes:
            undo.append((side, price, side.get(price)))
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
        if self.bids and self.asks and max(self.bids) >= min(self.asks):
            for side, price, old in reversed(undo):
                if old is None:
                    side.pop(price, None)
                else:
                    side[price] = old
            self.set_state(SyncState.OUT_OF_SYNC, OutOfSyncReason.CROSSED)
            self.stats["crossed"] += 1
            self.restart_buffer(ev)
            return Applied.CROSSED
        self.last_update_id = ev.u
        if self.state == SyncState.BRIDGING:
            self.set_state(SyncState.SYNCED, OutOfSyncReason.NONE)
        self.cap()
        self.stats["applied"] += 1
        if self.top() != before:
            self.stats["bbo_changes"] += 1
            return Applied.APPLIED | Applied.BBO_CHANGED
        return Applied.APPLIED

    def apply_snapshot(self, lid: int, bids: Pairs, asks: Pairs, limit: int | None) -> int:
        if self.buffer:
            first_U = self.buffer[0].U
            if first_U > (lid if self.futures else lid + 1):
                self.stats["stale_snapshots"] += 1
                return SnapshotResult.STALE
        price_scale, qty_scale = self.price_scale, self.qty_scale
        if price_scale is None or qty_scale is None:
            pairs = [*bids, *asks, *(pair for ev in self.buffer for pair in (*ev.bids, *ev.asks))]
            price_scale = max((written_decimals(p) for p, _ in pairs), default=8)
            qty_scale = max((written_decimals(q) for _, q in pairs), default=8)
        new_bids = {model_parse(p, price_scale): model_parse(q, qty_scale) for p, q in bids}
        new_asks = {model_parse(p, price_scale): model_parse(q, qty_scale) for p, q in asks}
        new_bids = {p: q for p, q in new_bids.items() if q}
        new_asks = {p: q for p, q in new_asks.items() if q}
        if new_bids and new_asks and max(new_bids) >= min(new_asks):
            raise BookError("crossed snapshot")
        self.price_scale, self.qty_scale = price_scale, qty_scale
        self.bids, self.asks = new_bids, new_asks
        self.last_update_id = lid
        self.stats["snapshots"] += 1
        self.set_state(SyncState.BRIDGING, OutOfSyncReason.NONE)
        complete_bids = limit is not None and len(bids) < limit
        complete_asks = limit is not None and len(asks) < limit
        self.floor = None if complete_bids or not new_bids else min(new_bids)
        self.ceiling = None if complete_asks or not new_asks else max(new_asks)
        self.cap()
        replay, self.buffer = self.buffer, []
        for ev in replay:
            try:
                self.apply_diff(ev)
            except DecimalError:
                self.stats["bad_buffered"] += 1
        return SnapshotResult(int(self.state))

    def invalidate(self) -> None:
        self.buffer = []
        if self.state in (SyncState.BRIDGING, SyncState.SYNCED):
            self.set_state(SyncState.OUT_OF_SYNC, OutOfSyncReason.INVALIDATED)

    def checksum(self, n: int) -> int:
        assert self.price_scale is not None
        assert self.qty_scale is not None
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        text = "|".join(f"{fmt(p, self.price_scale)}:{fmt(q, self.qty_scale)}" for p, q in bids + asks)
        return zlib.crc32(text.encode("ascii"))


# =========================================================================== operations

# ("diff", U, u, pu, bids, asks, form_bids, form_asks, via_event)
# ("snap", lid, bids, asks, limit, form)
# ("invalidate", detail) | ("copy",) | ("badsym", U, u, pu)
Op = tuple[Any, ...]
FORMS = ["bytes", "str", "list", "raw", "bytearray", "memoryview", "tuple_bytes"]
BAD_TEXT = ["1.2.3", "-1", "", "1e3", " 1", "99999999999999999999", "0.00001", "1,5"]


def render(pairs: Pairs, form: str) -> Any:
    data = json.dumps([list(p) for p in pairs]).encode()
    if form == "bytes":
        return data
    if form == "str":
        return data.decode()
    if form == "raw":
        return msgspec.Raw(data)
    if form == "bytearray":
        return bytearray(data)
    if form == "memoryview":
        return memoryview(data)
    if form == "broken":
        return data[:-1]  # a truncated frame
    if form == "tuple_bytes":
        return tuple((p.encode(), q.encode()) for p, q in pairs)
    return [tuple(p) for p in pairs]


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", int(fn(*args))
    except BookError as exc:  # anything else is a bug and propagates
        return "raise", type(exc)


def run_op(book: Any, op: Op) -> tuple[str, Any]:
    kind = op[0]
    if kind == "diff":
        _, U, u, pu, bids, asks, form_b, form_a, via_event = op
        b, a = render(bids, form_b), render(asks, form_a)
        if via_event:
            ev = SimpleNamespace(e="depthUpdate", s=SYMBOL, U=U, u=u, b=b, a=a)
            if pu is not None:
                ev.pu = pu
            return outcome(book.apply_event, ev)
        return outcome(book.apply_diff, U, u, b, a, pu)
    if kind == "snap":
        _, lid, bids, asks, limit, form = op
        return outcome(lambda: book.apply_snapshot(lid, render(bids, form), render(asks, form), limit=limit))
    if kind == "badsym":
        _, U, u, pu = op
        ev = SimpleNamespace(s="ETHUSDT", U=U, u=u, pu=pu, b=b"[]", a=b"[]")
        return outcome(book.apply_event, ev)
    if kind == "invalidate":
        book.invalidate(op[1])
        return "ok", None
    assert kind == "copy"
    return "ok", None


def run_model(model: Model, op: Op) -> tuple[str, Any]:
    kind = op[0]
    try:
        if kind == "diff":
            _, U, u, pu, bids, asks, *_ = op
            return "ok", int(model.apply_diff(Ev(U, u, pu, bids, asks)))
        if kind == "snap":
            _, lid, bids, asks, limit, _ = op
            return "ok", int(model.apply_snapshot(lid, bids, asks, limit))
        if kind == "badsym":
            raise BookError("wrong symbol")
        if kind == "invalidate":
            model.invalidate()
        return "ok", None
    except BookError as exc:
        return "raise", type(exc)


def check_against_model(book: Any, model: Model, where: str) -> None:
    book._check()
    assert book.state == model.state, where
    assert book.reason == model.reason, where
    assert book.synced == (model.state == SyncState.SYNCED), where
    if model.reason == OutOfSyncReason.NONE:
        assert book.reason_detail == "", where
    elif model.reason in (OutOfSyncReason.GAP, OutOfSyncReason.NO_BRIDGE, OutOfSyncReason.CROSSED):
        assert book.reason_detail, where
    assert book.last_update_id == model.last_update_id, where
    if model.since_id is not UNKNOWN:
        assert book.state_since_update_id == model.since_id, where
    assert book.stats() == model.stats, where
    assert book.bids_ticks() == sorted(model.bids.items(), reverse=True), where
    assert book.asks_ticks() == sorted(model.asks.items()), where
    assert (book.bid_count, book.ask_count) == (len(model.bids), len(model.asks)), where
    assert book.buffered == len(model.buffer), where
    assert book.first_buffered_id == (model.buffer[0].U if model.buffer else -1), where
    assert (book.bid_floor, book.ask_ceiling) == (model.floor, model.ceiling), where
    assert (book.price_scale, book.qty_scale) == (model.price_scale, model.qty_scale), where
    top_bid, top_ask = model.top()
    assert book.best_bid_ticks() == top_bid, where
    assert book.best_ask_ticks() == top_ask, where
    if model.price_scale is not None:
        assert book.checksum(3) == model.checksum(3), where
        assert book.checksum(10_000) == model.checksum(10_000), where


def queries(book: Any) -> dict[str, Any]:
    """Every query, floats included, for a C-versus-Python comparison."""
    out: dict[str, Any] = {
        "reason_detail_empty": book.reason_detail == "",
        "state_since_update_id": book.state_since_update_id,
        "memory_positive": book.memory_bytes() >= 0,
    }
    if book.price_scale is None:
        return out
    out.update(
        best=(book.best_bid(), book.best_ask(), book.best_bid_str(), book.best_ask_str()),
        spread=(book.spread(), book.spread_ticks()),
        mid=book.mid(),
        microprice=book.microprice(),
        depth=(book.depth_within_bps(25), book.depth_within_bps_ticks("2.5")),
        fills=(book.fill("buy", qty="0.5"), book.fill("sell", notional=150.25), book.fill("buy", qty=10**6)),
        lists=(book.bids(4), book.asks(), book.bids_str(), book.asks_str(2)),
        arrays=(book.bids_array().tolist(), book.asks_ticks_array(3).tolist()),
        checksums=(book.checksum(1), book.checksum(5)),
    )
    top = book.best_ask_ticks()
    if top is not None:
        out["qty_at"] = (book.qty_at(book.price_str(top[0])), book.qty_at_ticks(top[0]), book.qty_at_ticks(1))
    return out


def run(scenario: Scenario, classes: list[type]) -> None:
    s = scenario
    kw: dict[str, Any] = {"max_depth": s.max_depth, "buffer_limit": s.buffer_limit}
    if s.fixed:
        kw.update(FIXED)
    books = [cls(SYMBOL, s.market, **kw) for cls in classes]
    futures = s.market != "spot"
    model = Model(
        futures,
        TRUE_PRICE_SCALE if s.fixed else None,
        TRUE_QTY_SCALE if s.fixed else None,
        s.max_depth,
        s.buffer_limit,
    )
    for book in books:
        check_against_model(book, model, "new book")
    for step, op in enumerate(s.ops):
        where = f"step {step}: {op!r}"
        expected = run_model(model, op)
        for i, book in enumerate(books):
            got = run_op(book, op)
            assert got == expected, where
            if op[0] == "copy":
                books[i] = book.copy()
        for book in books:
            check_against_model(book, model, where)
        if len(books) == 2:
            c, py = books
            assert queries(c) == queries(py), where


def run_pair(scenario: Scenario, classes: tuple[type, type]) -> None:
    """C and Python side by side, no model: the same outcomes, state and queries at every step."""
    s = scenario
    kw: dict[str, Any] = {"max_depth": s.max_depth, "buffer_limit": s.buffer_limit}
    if s.fixed:
        kw.update(FIXED)
    books = [cls(SYMBOL, s.market, **kw) for cls in classes]
    for step, op in enumerate(s.ops):
        where = f"step {step}: {op!r}"
        c_result, py_result = (run_op(book, op) for book in books)
        assert c_result == py_result, where
        if op[0] == "copy":
            books = [book.copy() for book in books]
        for book in books:
            book._check()
        c, py = books
        assert dump(c, with_time=False, with_detail=False) == dump(py, with_time=False, with_detail=False), (
            where
        )
        assert queries(c) == queries(py), where


# =========================================================================== generators


@dataclass
class Scenario:
    market: str
    fixed: bool
    max_depth: int
    buffer_limit: int
    ops: list[Op]


def price_text(draw: Any, ticks: int, scale: int, fixed: bool) -> str:
    """Decimal text of ``ticks`` at ``scale``, written with 0-2 extra trailing zeros (fixed scales),
    or with any number of decimals from the fewest needed up to scale + 2 (inferred scales)."""
    whole, frac = divmod(ticks, 10**scale)
    digits = str(frac).rjust(scale, "0").rstrip("0")
    low = len(digits) if not fixed else scale
    written = draw(st.integers(low, scale + 2))
    frac_text = digits.ljust(written, "0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


BID_GRID = list(range(9500, 10001, 50))  # 95.00 .. 100.00
ASK_GRID = list(range(10050, 10551, 50))  # 100.50 .. 105.50
FAR_BIDS = list(range(8000, 9500, 250))  # beyond a typical snapshot
FAR_ASKS = list(range(10600, 12001, 350))


@st.composite
def level_pairs(draw: Any, side: str, fixed: bool, snapshot: bool = False, corners: bool = False) -> Pairs:
    near, far, other = (BID_GRID, FAR_BIDS, ASK_GRID) if side == "bid" else (ASK_GRID, FAR_ASKS, BID_GRID)
    n = draw(st.integers(0, 6 if snapshot else 4))
    prices: list[int] = []
    for _ in range(n):
        pool = draw(st.sampled_from(["near"] * 4 + ["far"]))
        price = draw(st.sampled_from(far if pool == "far" else near))
        if snapshot and price in prices and not corners:
            continue  # snapshots: distinct prices (repeats only in the C-versus-Python corners)
        prices.append(price)
    if not snapshot and draw(st.integers(0, 24)) == 0:
        prices.append(draw(st.sampled_from(other)))  # a level on the wrong side of the book: may cross
    pairs = []
    for price in prices:
        # zero quantities: deletes in events; in snapshots only among the corners
        zero = draw(st.integers(0, 3)) == 0 if not snapshot else corners and draw(st.integers(0, 5)) == 0
        qty = 0 if zero else draw(st.integers(1, 5000))
        pairs.append(
            (price_text(draw, price, TRUE_PRICE_SCALE, fixed), price_text(draw, qty, TRUE_QTY_SCALE, fixed))
        )
    return tuple(pairs)


@st.composite
def scenarios(draw: Any, market: str, corners: bool = False) -> Scenario:
    """A stream with faults. ``corners=True`` adds input whose handling the docs leave open
    (repeated and zero levels in snapshots, broken JSON in buffered events, malformed numbers
    with inferred scales, IDs outside int64): only the two implementations are compared then."""
    futures = market != "spot"
    if futures:
        market = draw(st.sampled_from(["usdm", "coinm"]))
    fixed = draw(st.booleans())
    max_depth = draw(st.sampled_from([0, 0, 2, 4]))
    buffer_limit = draw(st.sampled_from([2, 5, 1000, 1000]))
    last_u = draw(st.integers(10, 10**9))
    events: list[Op] = []  # every diff op generated so far (for duplicates)
    ops: list[Op] = []
    # The generator steers with its own Model instance: it only decides what to generate next
    # (snapshots when the book needs one, at IDs that can bridge its buffer); every check is
    # made later, against a fresh Model, in run().
    steer = Model(futures, TRUE_PRICE_SCALE if fixed else None, TRUE_QTY_SCALE if fixed else None,
                  max_depth, buffer_limit)  # fmt: skip

    def diff_op(U: int, u: int, pu: int | None) -> Op:
        bids = draw(level_pairs("bid", fixed))
        asks = draw(level_pairs("ask", fixed))
        if (fixed or corners) and draw(st.integers(0, 14)) == 0:  # a malformed number in the LAST level
            bad = draw(st.sampled_from(BAD_TEXT))
            in_price = draw(st.booleans())
            if asks or not bids:
                p, q = asks[-1] if asks else ("100.50", "1.000")
                asks = (*asks[:-1], (bad, q) if in_price else (p, bad))
            else:
                p, q = bids[-1]
                bids = (*bids[:-1], (bad, q) if in_price else (p, bad))
        forms = st.sampled_from([*FORMS, "broken"] if corners else FORMS)
        op = ("diff", U, u, pu, bids, asks, draw(forms), draw(forms), draw(st.integers(0, 4)) == 0)
        events.append(op)
        return op

    def next_ids() -> tuple[int, int, int]:
        nonlocal last_u
        jump = draw(st.integers(0, 25)) if futures and draw(st.booleans()) else 0
        U = last_u + 1 + jump
        u = U + draw(st.integers(0, 3))
        pu, last_u = last_u, u
        return U, u, pu

    n = draw(st.integers(1, 40))
    done = 0
    faults = ["gap", "dup", "old", "swap", "invalidate", "copy", "badsym", "bad_ids"]
    kinds_in_sync = ["next"] * 20 + ["snap"] + faults
    kinds_out_of_sync = ["next"] * 6 + ["snap"] * 5 + faults
    for _ in range(n):
        waiting = steer.state in (SyncState.WAITING_FOR_SNAPSHOT, SyncState.OUT_OF_SYNC)
        kind = draw(st.sampled_from(kinds_out_of_sync if waiting else kinds_in_sync))
        if kind == "next":
            ops.append(diff_op(*next_ids()))
        elif kind == "gap":
            pu = last_u + 1 + draw(st.integers(0, 3))
            U = last_u + 2 + draw(st.integers(0, 3))
            u = U + draw(st.integers(0, 3))
            last_u = u
            ops.append(diff_op(U, u, pu))
        elif kind == "dup" and events:
            ops.append(draw(st.sampled_from(events)))
        elif kind == "old" and events:
            _, U, u, pu, *_ = draw(st.sampled_from(events))
            U -= draw(st.integers(0, 2))
            ops.append(diff_op(U, u - draw(st.integers(0, u - U)), pu))
        elif kind == "swap":
            first, second = diff_op(*next_ids()), diff_op(*next_ids())
            ops += [second, first]
        elif kind == "snap":
            # Mostly an ID the first buffered event can bridge (as a well-timed REST snapshot);
            # else near the latest events, anywhere, or around the latest ID. Plus some noise.
            anchor = draw(st.sampled_from(["buffer"] * 4 + ["latest", "any", "last_u"]))
            buffered = [(ev.U, ev.u) for ev in steer.buffer]
            pools = {
                "buffer": buffered[:2],
                "latest": [op[1:3] for op in events[-3:]],
                "any": [op[1:3] for op in events],
            }
            pool = pools.get(anchor)
            if pool:
                U, u = draw(st.sampled_from(pool))
                lid = draw(st.integers(U, u) if futures else st.integers(U - 1, u))
                lid += draw(st.sampled_from([0] * 6 + [-2, -1, 1, 2]))
            else:
                lid = last_u + draw(st.integers(-3, 2))
            bids = draw(level_pairs("bid", fixed, snapshot=True, corners=corners))
            asks = draw(level_pairs("ask", fixed, snapshot=True, corners=corners))
            if draw(st.integers(0, 12)) == 0 and bids:  # a crossed snapshot
                asks = (*asks, (bids[0][0], "1"))
            if (
                (fixed or corners) and asks and draw(st.integers(0, 15)) == 0
            ):  # a malformed number in the last level
                asks = (*asks[:-1], (asks[-1][0], draw(st.sampled_from(BAD_TEXT))))
            limit = draw(st.sampled_from([None, None, 1, 3, 6, 100]))
            ops.append(("snap", max(lid, 0), bids, asks, limit, draw(st.sampled_from(FORMS))))
        elif kind == "invalidate":
            ops.append(("invalidate", f"reconnect {draw(st.integers(0, 9))}"))
        elif kind == "copy":
            ops.append(("copy",))
        elif kind == "badsym":
            ops.append(("badsym", last_u + 1, last_u + 1, last_u))
        elif kind == "bad_ids":
            if corners and draw(st.booleans()):
                U = draw(st.sampled_from([-1, -(2**63), 2**63, 2**64 + 5]))
                ops.append(("diff", U, max(U, last_u), last_u, (), (), "bytes", "bytes", False))
            elif futures and draw(st.booleans()):
                ops.append(("diff", last_u + 1, last_u + 2, None, (), (), "bytes", "bytes", False))
            else:
                ops.append(("diff", last_u + 5, last_u + 3, last_u, (), (), "bytes", "bytes", False))
        for op in ops[done:]:
            run_model(steer, op)
        done = len(ops)
    return Scenario(market, fixed, max_depth, buffer_limit, ops)


# =========================================================================== the tests

# Hand-picked scenarios that reach the corners directly (more are added as shrunk failures).
GAP_DURING_REPLAY = Scenario(
    "spot", True, 0, 1000,
    [  # a gap while replaying the buffer; the rest of the buffer is kept for the next snapshot
        ("diff", 10, 11, None, (("99.00", "1.000"),), (), "bytes", "bytes", False),
        ("diff", 13, 14, None, (("99.00", "2.000"),), (), "bytes", "bytes", False),
        ("diff", 15, 15, None, (("99.00", "3.000"),), (), "bytes", "bytes", False),
        ("snap", 10, (("98.00", "1.000"),), (("101.00", "1.000"),), None, "bytes"),
        ("snap", 14, (("98.00", "1.000"),), (("101.00", "1.000"),), None, "bytes"),
    ],
)  # fmt: skip
INFERRED_SCALES = Scenario(
    "spot", False, 0, 1000,
    [  # the buffer widens the inferred scales; a later event writes more decimals than they allow
        ("diff", 3, 4, None, (("99.125", "1"),), (), "bytes", "bytes", False),
        ("snap", 3, (("99.5", "1.25"),), (("100", "2"),), None, "bytes"),
        ("diff", 5, 5, None, (("99.1255", "1"),), (), "bytes", "bytes", False),
        ("diff", 5, 5, None, (("99.12500", "1.500"),), (), "bytes", "bytes", False),
    ],
)  # fmt: skip
FUTURES_CORNERS = Scenario(
    "usdm", True, 2, 2,
    [  # a crossing bridge event, a stale snapshot, a re-snapshot, a bridge, then its duplicate
        ("diff", 5, 9, 4, (), (("98.00", "1"),), "list", "raw", True),
        ("snap", 7, (("99.00", "1.000"), ("98.50", "1.000"), ("97.00", "2")), (("100.00", "1"),), 3, "str"),
        ("snap", 4, (), (), None, "bytes"),
        ("snap", 10, (("99.00", "1.000"),), (("100.00", "1"),), None, "bytes"),
        ("diff", 9, 12, 8, (("99.50", "0"),), (), "bytes", "bytes", False),
        ("diff", 9, 12, 8, (("99.50", "0"),), (), "bytes", "bytes", False),
    ],
)  # fmt: skip


@given(scenario=scenarios("spot"))
@example(scenario=GAP_DURING_REPLAY)
@example(scenario=INFERRED_SCALES)
def test_spot_matches_model(book_cls: type, scenario: Scenario) -> None:
    run(scenario, [book_cls])


@given(scenario=scenarios("futures"))
@example(scenario=FUTURES_CORNERS)
def test_futures_matches_model(book_cls: type, scenario: Scenario) -> None:
    run(scenario, [book_cls])


@given(scenario=st.one_of(scenarios("spot"), scenarios("futures")))
@example(scenario=GAP_DURING_REPLAY)
@example(scenario=INFERRED_SCALES)
@example(scenario=FUTURES_CORNERS)
def test_core_and_reference_agree(both_book_classes: tuple[type, type], scenario: Scenario) -> None:
    run(scenario, list(both_book_classes))


# Shrunk failure (soak run): with inferred scales, a buffered event whose asks are broken JSON
# but whose bids are fine. The C core counted the bids' decimals (scales 1/2), the reference
# ignored the whole event (8/8). docs/book.md does not say which; the two must agree.
BROKEN_SIDE_IN_BUFFER = Scenario(
    "usdm", False, 0, 1000,
    [
        ("diff", 12, 13, 11, (("100.5", "1.25"),), (("1", "1"),), "bytes", "broken", False),
        ("snap", 12, (), (), None, "bytes"),
    ],
)  # fmt: skip


@given(scenario=st.one_of(scenarios("spot", corners=True), scenarios("futures", corners=True)))
@example(scenario=BROKEN_SIDE_IN_BUFFER)
def test_core_and_reference_agree_on_corners(
    both_book_classes: tuple[type, type], scenario: Scenario
) -> None:
    run_pair(scenario, both_book_classes)


# =========================================================================== ground truth


@dataclass
class Exchange:
    """The exchange side: a true book and the events that describe its changes."""

    bids: dict[int, int]
    asks: dict[int, int]
    last_u: int

    def top(self) -> tuple[Any, Any]:
        bid = max(self.bids) if self.bids else None
        ask = min(self.asks) if self.asks else None
        return (
            None if bid is None else (bid, self.bids[bid]),
            None if ask is None else (ask, self.asks[ask]),
        )

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


@st.composite
def clean_streams(draw: Any, futures: bool) -> tuple[Any, ...]:
    """(events, snapshot index j, snapshot lid, snapshot levels, truths after each event, tops before)."""
    start = draw(st.integers(1, 10**12))
    ex = Exchange({}, {}, start)
    for grid, side in ((BID_GRID + FAR_BIDS, ex.bids), (ASK_GRID + FAR_ASKS, ex.asks)):
        for price in draw(st.lists(st.sampled_from(grid), max_size=8, unique=True)):
            side[price] = draw(st.integers(1, 5000))
    initial = ex.levels()
    n = draw(st.integers(1, 25))
    events, truths, tops_before = [], [], []
    for _ in range(n):
        jump = draw(st.integers(0, 30)) if futures else 0
        U = ex.last_u + 1 + jump
        u = U + draw(st.integers(0, 5))
        pu, ex.last_u = ex.last_u, u
        bids, asks = [], []
        tops_before.append(ex.top())
        for grid, side, out in ((BID_GRID + FAR_BIDS, ex.bids, bids), (ASK_GRID + FAR_ASKS, ex.asks, asks)):
            for price in draw(st.lists(st.sampled_from(grid), max_size=5)):
                qty = draw(st.sampled_from([0, 0, 1, 7, 250, 1000, 4999]))
                out.append((fmt(price, 2), fmt(qty, 3)))
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)  # absent deletes happen (and are normal)
        events.append((U, u, pu, bids, asks))
        truths.append(ex.levels())
    # the snapshot shows the book after event j; spot: lid = u_j; futures: any id in [U_j, u_j]
    j = draw(st.integers(-1 if not futures else 0, n - 1))
    if j == -1:
        lid, snapshot = start, initial
    else:
        U_j, u_j = events[j][0], events[j][1]
        lid = draw(st.integers(U_j, u_j)) if futures else u_j
        snapshot = truths[j]
    received_before = draw(st.integers(j + 1, n))  # events that arrive before the snapshot
    return events, j, lid, snapshot, truths, tops_before, received_before


@pytest.mark.parametrize("market", ["spot", "usdm"])
@given(data=st.data())
def test_clean_stream_tracks_the_exchange(book_cls: type, market: str, data: st.DataObject) -> None:
    futures = market != "spot"
    events, j, lid, (snap_bids, snap_asks), truths, tops_before, received_before = data.draw(
        clean_streams(futures)
    )
    book = book_cls(SYMBOL, market, **FIXED)

    def send(i: int) -> int:
        U, u, pu, bids, asks = events[i]
        result = book.apply_diff(U, u, json.dumps(bids).encode(), json.dumps(asks).encode(), pu)
        book._check()
        return result

    for i in range(received_before):
        assert send(i) == Applied.BUFFERED
    levels = ([(fmt(p, 2), fmt(q, 3)) for p, q in snap_bids], [(fmt(p, 2), fmt(q, 3)) for p, q in snap_asks])
    result = book.apply_snapshot(lid, json.dumps(levels[0]), json.dumps(levels[1]))
    book._check()
    # replayed: spot, the events after j (u_j == lid is stale); futures, event j itself too
    replayed_any = futures or received_before > j + 1
    assert result == (SnapshotResult.SYNCED if replayed_any else SnapshotResult.BRIDGING)
    # after the replay the book is the exchange's book after the last event received
    truth = truths[received_before - 1] if received_before else (snap_bids, snap_asks)
    assert (book.bids_ticks(), book.asks_ticks()) == truth
    for i in range(received_before, len(events)):
        result = send(i)
        assert result & Applied.APPLIED
        assert bool(result & Applied.BBO_CHANGED) == (tops_before[i] != _top(truths[i]))
        assert (book.bids_ticks(), book.asks_ticks()) == truths[i]
        assert book.synced
        assert book.last_update_id == events[i][1]
    if len(events) > j + 1 or futures:
        assert book.synced
    assert book.stats()["gaps"] == 0
    assert book.stats()["no_bridge"] == 0


def _top(levels: tuple[list[tuple[int, int]], list[tuple[int, int]]]) -> tuple[Any, Any]:
    bids, asks = levels
    return (bids[0] if bids else None, asks[0] if asks else None)
