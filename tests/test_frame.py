"""``OrderBook.apply_frame``: one depth message applied exactly as received, on both books.

``apply_frame(frame)`` must give the result of ``apply_event(decode_depth_message(frame))``:
the same flags, the same book and the same errors, with the book unchanged on error. On the
Cython core the exchange's exact layout takes a C pass (``_scan_only`` tells whether a frame
does) and everything else the msgspec path; the tests here check both paths against each
other and against the pure-Python reference (decode + ``apply_event``):

* the real spot and USD-M BTCUSDT recordings, every message through the C pass, and the
  multi-symbol cryptofeed recordings (each symbol's book sees every symbol's frames);
* real messages re-serialised in other layouts (bare, reordered, whitespace, escapes, extra
  keys, ...): the same result, and the C pass declines exactly the layouts its rules exclude;
* generated streams (valid, stale, duplicate and gapped IDs, malformed numbers and envelopes,
  random layouts and buffer types) fed to the core and to the reference side by side, and
  generated number texts at every scale (the C pass's decimal scan against the exact parser);
* bad input, frames before the snapshot, buffer types and buffer ownership, COIN-M's ``ps``.

Expected values are the other path's (``apply_event`` on the msgspec decode), the stdlib
``json`` reading of the same bytes, hand-worked ticks, or ``data/real/PROVENANCE.md``.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _helpers import STEP, TICK, dump, lv, snap
from tickbook._types import (
    Applied,
    BookError,
    DecimalError,
    LevelsFormatError,
    OutOfSyncReason,
    SnapshotResult,
    SyncState,
)
from tickbook.decode import (
    DecodeError,
    combined_depth_decoder,
    combined_futures_depth_decoder,
    decode_depth_message,
    decode_snapshot,
)

MakeBook = Callable[..., Any]
ROOT = Path(__file__).resolve().parent.parent
DERIVED = ROOT / "data" / "real" / "derived"
PAYLOADS = ROOT / "data" / "real" / "payloads"
CRYPTOFEED_DIR = ROOT / "data" / "real" / "cryptofeed"

A = Applied.APPLIED
BBO = Applied.APPLIED | Applied.BBO_CHANGED

# The exchange's key order per market (the layout of every recorded message).
KEYS = {
    "spot": ["e", "E", "s", "U", "u", "b", "a"],
    "usdm": ["e", "E", "T", "s", "U", "u", "pu", "b", "a"],
    "coinm": ["e", "E", "T", "s", "ps", "U", "u", "pu", "b", "a"],
}
SYMBOLS = {"spot": "BTCUSDT", "usdm": "BTCUSDT", "coinm": "BTCUSD_PERP"}
STREAMS = {"spot": "btcusdt@depth@100ms", "usdm": "btcusdt@depth@0ms", "coinm": "btcusd_perp@depth@0ms"}

Frame = bytes | bytearray | memoryview | str
Items = list[tuple[str, bytes]]  # (key, JSON text of the value), in order, duplicates allowed


# =========================================================================== helpers


def jtext(value: Any) -> bytes:
    """Compact JSON text of a value (non-ASCII kept as UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def obj(items: Items, ws: bytes = b"") -> bytes:
    """JSON object text from (key, value text) pairs, with ``ws`` around every token."""
    members = [jtext(k) + ws + b":" + ws + v for k, v in items]
    return b"{" + ws + (ws + b"," + ws).join(members) + ws + b"}"


def levels_text(pairs: Any, ws: bytes = b"") -> bytes:
    """``[["p","q"],...]`` with ``ws`` around every token inside the array."""
    inner = (ws + b"," + ws).join(
        b"[" + ws + jtext(p) + ws + b"," + ws + jtext(q) + ws + b"]" for p, q in pairs
    )
    return b"[" + ws + inner + ws + b"]"


def event_items(
    market: str,
    U: int,
    u: int,
    bids: Any = (),
    asks: Any = (),
    *,
    pu: int | None = None,
    E: int = 1723161256299,
    symbol: str | None = None,
    ps: str | None = "BTCUSD",
) -> Items:
    """The items of a depth event in the exchange's key order."""
    values: dict[str, bytes] = {
        "e": b'"depthUpdate"',
        "E": jtext(E),
        "T": jtext(E - 1),
        "s": jtext(symbol or SYMBOLS[market]),
        "ps": jtext(ps),
        "U": jtext(U),
        "u": jtext(u),
        "pu": jtext(U - 1 if pu is None else pu),
        "b": levels_text(bids),
        "a": levels_text(asks),
    }
    return [(k, values[k]) for k in KEYS[market] if not (k == "ps" and ps is None)]


def frame(
    market: str, U: int, u: int, bids: Any = (), asks: Any = (), *, bare: bool = False, **kw: Any
) -> bytes:
    """A depth message exactly as the exchange lays it out (combined stream unless ``bare``)."""
    event = obj(event_items(market, U, u, bids, asks, **kw))
    return event if bare else obj([("stream", jtext(STREAMS[market])), ("data", event)])


def is_core(book: Any) -> bool:
    """The Cython core (the only book with a C frame pass)."""
    return type(book).__module__ == "tickbook._book"


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """("ok", int result) or ("raise", exception type); anything not a ValueError propagates."""
    try:
        result = fn(*args)
    except ValueError as exc:  # DecodeError and BookError (DecimalError, LevelsFormatError)
        return "raise", type(exc)
    return "ok", None if result is None else int(result)


def state(book: Any) -> dict[str, Any]:
    """The book's observable state without the wall clock."""
    return dump(book, with_time=False)


def fresh(make_book: MakeBook, market: str = "spot") -> Any:
    return make_book(SYMBOLS[market], market, tick_size=TICK, step_size=STEP)


def synced(make_book: MakeBook, market: str = "spot") -> Any:
    """The standard book (BIDS/ASKS) at snapshot 100, bridged by a frame: SYNCED at 101."""
    book = fresh(make_book, market)
    snap(book, 100)
    assert book.apply_frame(frame(market, 100, 101, pu=99)) == A
    book._check()
    assert book.synced
    return book


def decoder(market: str) -> Any:
    return combined_depth_decoder if market == "spot" else combined_futures_depth_decoder


# =========================================================================== 1. real recordings


@functools.cache
def recording(market: str) -> tuple[list[bytes], bytes]:
    """The raw messages of a derived recording (one per line) and its raw REST snapshot."""
    with gzip.open(DERIVED / f"binance_{market}_btcusdt_20240808_depth.jsonl.gz", "rb") as fh:
        lines = [line.rstrip(b"\r\n") for line in fh if line.strip()]
    snapshot = (DERIVED / f"binance_{market}_btcusdt_20240808_snapshot.json").read_bytes().strip()
    return lines, snapshot


def load_snapshot(book: Any, market: str) -> int:
    body = decode_snapshot(recording(market)[1], market)
    return int(book.apply_snapshot(body.lastUpdateId, body.bids, body.asks))


@dataclass(frozen=True)
class Final:
    """The final book of a recording, as data/real/PROVENANCE.md gives it."""

    messages: int
    stale: int  # the events before the first applied one
    bid: tuple[str, str]
    ask: tuple[str, str]
    levels: tuple[int, int]


FINAL = {
    "spot": Final(6495, 2, ("61602.01", "1.67177"), ("61602.02", "2.66795"), (1971, 2962)),
    "usdm": Final(6551, 4, ("61659.7", "1.486"), ("61659.8", "0.981"), (5018, 4578)),
}
BEFORE_SNAPSHOT = 5  # messages fed before the snapshot (the bridging event arrived before it)


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_real_recording_frames_match_decoded_events(book_cls: type, market: str) -> None:
    messages, _ = recording(market)
    expected = FINAL[market]
    assert len(messages) == expected.messages
    by_frame, by_event = book_cls("BTCUSDT", market), book_cls("BTCUSDT", market)
    futures = market != "spot"
    accepted = 0
    for i, raw in enumerate(messages):
        if i == BEFORE_SNAPSHOT:
            assert load_snapshot(by_frame, market) == load_snapshot(by_event, market) == SnapshotResult.SYNCED
        event = decoder(market).decode(raw).data
        if is_core(by_frame):
            scanned = by_frame._scan_only(raw)
            if i < BEFORE_SNAPSHOT:
                assert scanned is None, i  # no scales yet: the general path buffers
            else:
                levels = (len(msgspec.json.decode(event.b)), len(msgspec.json.decode(event.a)))
                assert scanned == (event.U, event.u, event.pu if futures else None, event.E, *levels), i
                accepted += 1
        flags = by_frame.apply_frame(raw)
        assert flags == by_event.apply_event(event), i
        if i < BEFORE_SNAPSHOT:
            assert flags == Applied.BUFFERED, i
        if i % 200 == 0:
            by_frame._check()
            by_event._check()
            assert state(by_frame) == state(by_event), i
    by_frame._check()
    by_event._check()
    assert state(by_frame) == state(by_event)
    for n in (1, 10, 500, 10**6):
        assert by_frame.checksum(n) == by_event.checksum(n), n
    if is_core(by_frame):
        assert accepted == len(messages) - BEFORE_SNAPSHOT  # the C pass took every message
    # ground truth (PROVENANCE.md), not only agreement
    assert by_frame.state == SyncState.SYNCED
    assert by_frame.best_bid_str() == expected.bid
    assert by_frame.best_ask_str() == expected.ask
    assert (by_frame.bid_count, by_frame.ask_count) == expected.levels
    stats = by_frame.stats()
    assert stats["stale"] == expected.stale
    assert stats["applied"] == expected.messages - expected.stale
    assert stats["gaps"] == stats["no_bridge"] == stats["crossed"] == stats["bad_buffered"] == 0
    assert by_frame.last_update_id == json.loads(messages[-1])["data"]["u"]


# The cryptofeed recordings: several symbols on one connection (PROVENANCE.md: the snapshots
# arrived before the bridging events; the first applied event's index per symbol).
CRYPTOFEED = {
    "spot": ("binance_spot_20210404", {"BTCUSDT": 10, "ETHUSDT": 13, "DOTUSDT": 9}),
    "usdm": ("binance_usdm_20210722", {"SUSHIUSDT": 3, "AKROUSDT": 1, "CTKUSDT": 5, "KEEPUSDT": 3}),
}


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_multi_symbol_recording_frames(book_cls: type, market: str) -> None:
    """Every depth message of a multi-symbol connection goes to every symbol's book: its own
    symbol's frames take the C pass and match apply_event; the others raise BookError."""
    name, first_applied = CRYPTOFEED[market]
    lines = (CRYPTOFEED_DIR / f"{name}.ws.jsonl").read_bytes().splitlines()
    messages = [line for line in lines if b"@depth@" in line[:40]]
    books: dict[str, tuple[Any, Any]] = {}
    for symbol in first_applied:
        body = decode_snapshot((CRYPTOFEED_DIR / f"{name}_{symbol}_snapshot.json").read_bytes(), market)
        books[symbol] = (book_cls(symbol, market), book_cls(symbol, market))
        for book in books[symbol]:
            assert book.apply_snapshot(body.lastUpdateId, body.bids, body.asks) == SnapshotResult.BRIDGING
    seen = dict.fromkeys(first_applied, 0)
    for i, raw in enumerate(messages):
        event = decoder(market).decode(raw).data
        seen[event.s] += 1
        for symbol, (by_frame, by_event) in books.items():
            if is_core(by_frame):
                assert (by_frame._scan_only(raw) is not None) == (symbol == event.s), (i, symbol)
            if symbol == event.s:
                assert by_frame.apply_frame(raw) == by_event.apply_event(event), (i, symbol)
            else:
                with pytest.raises(BookError, match=event.s):
                    by_frame.apply_frame(raw)
    assert sum(seen.values()) == len(messages)
    for symbol, (by_frame, by_event) in books.items():
        by_frame._check()
        by_event._check()
        assert state(by_frame) == state(by_event), symbol
        assert by_frame.state == SyncState.SYNCED, symbol
        stats = by_frame.stats()
        assert stats["stale"] == first_applied[symbol], symbol
        assert stats["applied"] == seen[symbol] - first_applied[symbol], symbol
        assert stats["gaps"] == stats["no_bridge"] == stats["crossed"] == 0, symbol


# =========================================================================== 2. layout variants


def layout_variants(raw: bytes, market: str) -> list[tuple[str, bytes, bool]]:
    """(name, frame, C pass accepts it) for one real combined-stream message.

    Every variant means the same event as ``raw`` to msgspec; the flag says whether the C
    pass's rules (docs/book.md, ``apply_frame``) accept the layout.
    """
    msg = json.loads(raw)
    stream, ev = msg["stream"], msg["data"]
    items: Items = [(k, jtext(v)) for k, v in ev.items()]
    assert obj([("stream", jtext(stream)), ("data", obj(items))]) == raw  # the builder is exact

    def wrap(event: bytes) -> bytes:
        return obj([("stream", jtext(stream)), ("data", event)])

    def with_value(key: str, value: bytes) -> Items:
        return [(k, value if k == key else v) for k, v in items]

    keys = [k for k, _ in items]
    swapped = ["a" if k == "b" else "b" if k == "a" else k for k in keys]  # a before b
    reversed_b_first = ["a" if k == "b" else "b" if k == "a" else k for k in reversed(keys)]
    by_key = dict(items)
    levels_ws = [(k, levels_text(ev[k], b" \n\t") if k in ("b", "a") else v) for k, v in items]
    i_e = keys.index("E")
    duplicated_e = [*items[: i_e + 1], items[i_e], *items[i_e + 1 :]]
    extra_for_market: list[tuple[str, bytes, bool]] = []
    if market == "spot":
        extra_for_market += [
            ("pu on a spot frame", wrap(obj([*items[:-2], ("pu", jtext(ev["U"] - 1)), *items[-2:]])), False),
            ("T on a spot frame", wrap(obj([*items[:2], ("T", jtext(ev["E"])), *items[2:]])), False),
        ]
    else:
        extra_for_market += [
            ("ps on a USD-M frame", wrap(obj([*items[:4], ("ps", b'"BTCUSDT"'), *items[4:]])), False)
        ]
    return [
        ("canonical", raw, True),
        ("bare event", obj(items), True),
        ("keys reversed, b still before a", wrap(obj([(k, by_key[k]) for k in reversed_b_first])), True),
        ("bare, keys reversed, b before a", obj([(k, by_key[k]) for k in reversed_b_first]), True),
        ("whitespace inside the level arrays only", wrap(obj(levels_ws)), False),
        ("E = 0", wrap(obj(with_value("E", b"0"))), True),
        ("a before b", wrap(obj([(k, by_key[k]) for k in swapped])), False),
        ("data before stream", obj([("data", obj(items)), ("stream", jtext(stream))]), False),
        ("whitespace between tokens", json.dumps(msg).encode(), False),
        ("indented", json.dumps(msg, indent=2).encode(), False),
        ("bare, whitespace between tokens", json.dumps(ev).encode(), False),
        ("leading space", b" " + raw, False),
        ("trailing newline", raw + b"\n", False),
        ("escaped char in the stream name", raw.replace(b"@depth", b"\\u0040depth", 1), False),
        ("escaped slash in the stream name", raw.replace(b"@depth", b"\\/depth", 1), False),
        ("non-ASCII stream name", obj([("stream", jtext(stream + "é")), ("data", obj(items))]), False),
        ("escaped char in the symbol", wrap(obj(with_value("s", b'"\\u0042TCUSDT"'))), False),
        ("escaped char in e", wrap(obj(with_value("e", b'"depth\\u0055pdate"'))), False),
        ("unknown key in the event", wrap(obj([*items[:3], ("x", b'{"k":[1,2]}'), *items[3:]])), False),
        (
            "unknown key in the envelope",
            obj([("stream", jtext(stream)), ("data", obj(items)), ("id", b"7")]),
            False,
        ),
        ("E written twice", wrap(obj(duplicated_e)), False),
        ("E of 19 digits", wrap(obj(with_value("E", jtext(10**18 + ev["E"])))), False),
        *extra_for_market,
    ]


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_layout_variants_give_the_same_result(book_cls: type, market: str) -> None:
    messages, _ = recording(market)
    book = book_cls("BTCUSDT", market)
    picked = {BEFORE_SNAPSHOT, BEFORE_SNAPSHOT + 1, 40, 41}  # bridging, first synced, later ones
    checked = 0
    for i, raw in enumerate(messages[: max(picked) + 1]):
        if i == BEFORE_SNAPSHOT:
            load_snapshot(book, market)
        if i in picked:
            reference = book.copy()
            assert state(reference) == state(book)
            expected_flags = reference.apply_frame(raw)
            reference._check()
            assert expected_flags & A, i
            canonical_scan = book._scan_only(raw) if is_core(book) else None
            for name, variant, c_pass in layout_variants(raw, market):
                where = f"message {i}, {name}: {variant[:120]!r}"
                if is_core(book):
                    scanned = book._scan_only(variant)
                    if c_pass:
                        assert canonical_scan is not None
                        E = json.loads(variant).get("data", json.loads(variant))["E"]
                        assert scanned == (*canonical_scan[:3], E, *canonical_scan[4:]), where
                    else:
                        assert scanned is None, where
                twin = book.copy()
                assert twin.apply_frame(variant) == expected_flags, where
                twin._check()
                assert state(twin) == state(reference), where
                checked += 1
        book.apply_frame(raw)
    assert checked >= 4 * 20


# =========================================================================== 3. generated streams

FIXED: dict[str, Any] = {"tick_size": TICK, "step_size": STEP}
PRICE_SCALE, QTY_SCALE = 2, 3  # the scales of generated numbers (TICK and STEP)
BID_GRID = list(range(9500, 10001, 50))  # 95.00 .. 100.00
ASK_GRID = list(range(10050, 10551, 50))  # 100.50 .. 105.50
FAR_BIDS = list(range(8000, 9500, 250))
FAR_ASKS = list(range(10600, 12001, 350))
WS = [b" ", b"\n", b"\t", b"\r\n", b"  "]
# Malformed number texts: each makes the C pass decline and the general path raise DecimalError.
BAD_NUMBERS = ["1e5", "-1", "1.2.3", "", "1.", ".5", " 1", "1,5", "+1", "0x1A", "NaN", "１00"]
BAD_NUMBERS += ["99999999999999999999", "100.0001", "100.00001"]
# Levels in a shape the general path rejects (LevelsFormatError).
BAD_LEVELS = [b'[100.5,"1.000"]', b'["100.50","1.000","7"]', b'["100.50"]', b"null", b"[]"]
# Valid levels in another writing: (JSON text, its (price, qty), whether the C scan reads it).
ODD_LEVELS = [
    (b'["\\u0031\\u0030\\u0030.50","1.000"]', ("100.50", "1.000"), False),  # escaped digits
    (b'["100\\u002e50","1.000"]', ("100.50", "1.000"), False),  # an escaped point
    (b'[ "100.50" ,\t"1.000"\n]', ("100.50", "1.000"), False),  # whitespace inside a level
]
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def fast_number(text: str, scale: int) -> bool:
    """Whether the C scan reads this number itself: digits[.digits], no non-zero digit past the
    scale, integer digits + scale <= 18 (anything else goes to the exact parser)."""
    m = _DECIMAL.fullmatch(text)
    if m is None:
        return False
    frac = m.group(2) or ""
    return not frac[scale:].strip("0") and len(m.group(1)) + scale <= 18


@dataclass(frozen=True)
class FrameOp:
    raw: bytes
    form: str  # bytes, bytearray, memoryview, slice, str
    c_layout: bool  # the C pass's rules accept the layout, envelope and level shapes
    scan: tuple[int, int, int | None, int, int, int]  # (U, u, pu, E, bid levels, ask levels) as written
    numbers: tuple[tuple[str, str], ...]  # (price, qty) of every level


@dataclass(frozen=True)
class SnapOp:
    lid: int
    bids: bytes
    asks: bytes


@dataclass(frozen=True)
class Invalidate:
    pass


Op = FrameOp | SnapOp | Invalidate


@dataclass(frozen=True)
class Stream:
    market: str
    fixed: bool
    max_depth: int
    buffer_limit: int
    ops: list[Op]


def as_form(raw: bytes, form: str) -> Frame:
    if form == "bytearray":
        return bytearray(raw)
    if form == "memoryview":
        return memoryview(raw)
    if form == "slice":
        return memoryview(b'{"x":' + raw + b"}   ")[5:-4]
    if form == "str":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:  # a frame cut inside a character
            return raw
    return raw


def number_text(draw: Any, ticks: int, scale: int, fixed: bool) -> str:
    """``ticks`` at ``scale`` as text: fixed scales write all their decimals and up to two
    trailing zeros more; inferred scales write anything from the fewest decimals needed."""
    whole, frac = divmod(ticks, 10**scale)
    digits = str(frac).rjust(scale, "0").rstrip("0")
    written = draw(st.integers(scale if fixed else len(digits), scale + 2))
    frac_text = digits.ljust(written, "0")
    leading_zero = draw(st.integers(0, 30)) == 0  # "0100.00": still a plain decimal
    whole_text = ("0" if leading_zero else "") + str(whole)
    return f"{whole_text}.{frac_text}" if frac_text else whole_text


@st.composite
def side_levels(draw: Any, side: str, fixed: bool, snapshot: bool = False) -> list[tuple[str, str]]:
    near, far, other = (BID_GRID, FAR_BIDS, ASK_GRID) if side == "bid" else (ASK_GRID, FAR_ASKS, BID_GRID)
    prices: list[int] = []
    for _ in range(draw(st.integers(0, 5 if snapshot else 4))):
        price = draw(st.sampled_from(far if draw(st.integers(0, 4)) == 0 else near))
        if not (snapshot and price in prices):
            prices.append(price)
    if not snapshot and draw(st.integers(0, 29)) == 0:
        prices.append(draw(st.sampled_from(other)))  # on the other side of the book: may cross
    out = []
    for price in prices:
        zero = not snapshot and draw(st.integers(0, 3)) == 0  # a delete (maybe of an absent level)
        qty = 0 if zero else draw(st.integers(1, 5000))
        out.append((number_text(draw, price, PRICE_SCALE, fixed), number_text(draw, qty, QTY_SCALE, fixed)))
    return out


# Other writings of the same event: valid JSON, the same values, but outside the C pass's rules.
EXTRAS = {
    "spot": ["pu on spot", "T on spot"],
    "usdm": ["ps on usdm"],
    "coinm": ["ps null"],
}
EXTRAS_ANY = [
    "unknown key",
    "unknown envelope key",
    "escaped stream",
    "non-ASCII stream",
    "escaped symbol",
    "escaped e",
    "E of 19 digits",
    "duplicated key",
]
# Faults of the envelope: malformed (DecodeError), invalid (BookError) or, for a wrong "e" and a
# key given twice with another value, valid JSON the general path reads its own way.
FAULTS = [
    "truncated",
    "wrong e",
    "leading zero id",
    "negative id",
    "float id",
    "string id",
    "id beyond int64",
    "duplicated key, other value",
    "other symbol",
    "lower-case symbol",
    "missing key",
    "null value",
    "trailing garbage",
    "json array",
]


@st.composite
def frame_ops(draw: Any, market: str, fixed: bool, U: int, u: int, pu: int, dirty: bool) -> FrameOp:
    """One depth frame in a random writing. A ``dirty`` frame also carries one fault: a
    malformed number, a level of the wrong shape or a broken envelope (see FAULTS)."""
    futures = market != "spot"
    E = draw(st.sampled_from([0, 1]) | st.integers(10**12, 10**13))
    bids = draw(side_levels("bid", fixed))
    asks = draw(side_levels("ask", fixed))
    texts = {"b": [levels_text([p])[1:-1] for p in bids], "a": [levels_text([p])[1:-1] for p in asks]}
    problem = draw(st.sampled_from(["number", "level", "envelope", "envelope"])) if dirty else "none"
    if not bids and not asks and problem in ("number", "level"):
        bids.append(("99.00", "1.000"))
        texts["b"].append(levels_text([bids[0]])[1:-1])
    c_levels = True
    if bids or asks:
        side = "a" if asks and (not bids or draw(st.booleans())) else "b"
        j = draw(st.integers(0, len(texts[side]) - 1))
        pairs = bids if side == "b" else asks
        p, q = pairs[j]
        if problem == "number":
            pairs[j] = (
                (draw(st.sampled_from(BAD_NUMBERS)), q)
                if draw(st.booleans())
                else (p, draw(st.sampled_from(BAD_NUMBERS)))
            )
            texts[side][j] = levels_text([pairs[j]])[1:-1]
        elif problem == "level":
            texts[side][j] = draw(st.sampled_from(BAD_LEVELS))
            c_levels = False
        elif draw(st.integers(0, 9)) == 0:  # the same level, written otherwise
            text, pairs[j], c_reads = draw(st.sampled_from(ODD_LEVELS))
            texts[side][j] = text
            c_levels = c_levels and c_reads
    ws_mode = draw(st.sampled_from(["none"] * 8 + ["levels"] * 2 + ["tokens", "lead", "trail"]))
    ws = draw(st.sampled_from(WS))
    level_ws = ws if ws_mode in ("levels", "tokens") else b""

    def side_text(key: str) -> bytes:
        return b"[" + level_ws + (level_ws + b"," + level_ws).join(texts[key]) + level_ws + b"]"

    symbol = SYMBOLS[market]
    values: dict[str, bytes] = {
        "e": b'"depthUpdate"',
        "E": jtext(E),
        "T": jtext(max(E - 3, 0)),
        "s": jtext(symbol),
        "ps": b'"BTCUSD"',
        "U": jtext(U),
        "u": jtext(u),
        "pu": jtext(pu),
        "b": side_text("b"),
        "a": side_text("a"),
    }
    keys = list(KEYS[market])
    if market == "coinm" and draw(st.booleans()):
        keys.remove("ps")  # optional on COIN-M
    if draw(st.integers(0, 3)) == 0:
        keys = list(draw(st.permutations(keys)))
    wrap = draw(st.sampled_from(["combined"] * 4 + ["bare"] * 2 + ["data first"]))
    c_layout = c_levels and keys.index("b") < keys.index("a") and ws_mode == "none"
    c_layout = c_layout and wrap != "data first"
    stream = jtext(STREAMS[market])
    envelope_extra: Items = []
    items: Items = [(k, values[k]) for k in keys]
    id_keys = ["U", "u", "E", *(["pu", "T"] if futures else [])]

    extra = draw(st.sampled_from(EXTRAS_ANY + EXTRAS[market])) if draw(st.integers(0, 4)) == 0 else "none"
    if wrap == "bare" and extra in ("unknown envelope key", "escaped stream", "non-ASCII stream"):
        extra = "none"  # no envelope to change
    if extra != "none":
        c_layout = False
    if extra == "unknown key":
        items.insert(
            draw(st.integers(0, len(items))), (draw(st.sampled_from(["x", "id", "B"])), b'[1,{"k":null}]')
        )
    elif extra == "unknown envelope key":
        envelope_extra = [("id", b"7")]
    elif extra == "escaped stream":
        stream = stream.replace(b"@", b"\\u0040", 1)
    elif extra == "non-ASCII stream":
        stream = jtext(STREAMS[market] + "ü")
    elif extra == "escaped symbol":
        items = [
            (k, b'"\\u00%x%s"' % (ord(symbol[0]), symbol[1:].encode()) if k == "s" else v) for k, v in items
        ]
    elif extra == "escaped e":
        items = [(k, b'"depth\\u0055pdate"' if k == "e" else v) for k, v in items]
    elif extra == "E of 19 digits":
        E = 10**18 + E
        items = [(k, jtext(E) if k == "E" else v) for k, v in items]
    elif extra == "duplicated key":  # the same value twice: msgspec keeps the last
        items.insert(draw(st.integers(0, len(items))), draw(st.sampled_from(items)))
    elif extra == "pu on spot":
        items.insert(draw(st.integers(0, len(items))), ("pu", jtext(U - 1)))
    elif extra == "T on spot":
        items.insert(draw(st.integers(0, len(items))), ("T", jtext(E)))
    elif extra == "ps on usdm":
        items.insert(draw(st.integers(0, len(items))), ("ps", b'"BTCUSDT"'))
    elif extra == "ps null":
        items = [(k, v) for k, v in items if k != "ps"] + [("ps", b"null")]

    fault = draw(st.sampled_from(FAULTS)) if problem == "envelope" else "none"
    if fault != "none":
        c_layout = False
    if fault == "wrong e":
        e = draw(st.sampled_from(["trade", "depthUpdat", "DEPTHUPDATE"]))
        items = [(k, jtext(e) if k == "e" else v) for k, v in items]
    elif fault in ("leading zero id", "negative id", "float id", "string id", "id beyond int64"):
        target = draw(st.sampled_from(id_keys))
        mutations: dict[str, Callable[[bytes], bytes]] = {
            "leading zero id": lambda v: b"0" + v,
            "negative id": lambda v: b"-" + v,
            "float id": lambda v: v + b".0",
            "string id": lambda v: b'"' + v + b'"',
            "id beyond int64": lambda v: jtext(2**63 + int(v)),
        }
        items = [(k, mutations[fault](v) if k == target else v) for k, v in items]
    elif fault == "duplicated key, other value":
        key = draw(st.sampled_from([k for k, _ in items if k in id_keys]))
        value = jtext(int(dict(items)[key]) + draw(st.integers(1, 3)))
        items.insert(draw(st.integers(0, len(items))), (key, value))
    elif fault in ("other symbol", "lower-case symbol"):
        other = "ETHUSDT" if fault == "other symbol" else symbol.lower()
        items = [(k, jtext(other) if k == "s" else v) for k, v in items]
    elif fault == "missing key":
        drop = draw(st.sampled_from([k for k, _ in items if k in KEYS[market] and k != "ps"]))
        items = [(k, v) for k, v in items if k != drop]
    elif fault == "null value":
        target = draw(st.sampled_from(["s", "U", "b", *(["pu"] if futures else [])]))
        items = [(k, b"null" if k == target else v) for k, v in items]

    event = obj(items, ws if ws_mode == "tokens" else b"")
    if wrap == "bare":
        raw = event
    else:
        parts: Items = [("stream", stream), ("data", event)]
        if wrap == "data first":
            parts.reverse()
        raw = obj(parts + envelope_extra, ws if ws_mode == "tokens" else b"")
    if ws_mode == "lead":
        raw = ws + raw
    elif ws_mode == "trail":
        raw = raw + ws
    if fault == "truncated":
        core = raw.rstrip()
        raw = core[: draw(st.integers(1, len(core) - 1))]
    elif fault == "trailing garbage":
        raw = raw + draw(st.sampled_from([b"x", b"}", b",", b"{}"]))
    elif fault == "json array":
        raw = b"[" + raw + b"]"
    form = draw(st.sampled_from(["bytes"] * 4 + ["bytearray", "memoryview", "slice", "str"]))
    scan = (U, u, pu if futures else None, E, len(bids), len(asks))
    return FrameOp(raw, form, c_layout, scan, (*bids, *asks))


@st.composite
def streams(draw: Any, market: str) -> Stream:
    """A snapshot + depth stream: valid continuity with stale, duplicate, gapped and reordered
    IDs, U > u, faulty frames, snapshots (bridging or not) and invalidations; every frame in a
    random writing (``frame_ops``). A faulty frame does not use up its IDs, so the stream goes
    on in sequence after it (it is rejected, or applied as the general path reads it)."""
    futures = market != "spot"
    fixed = draw(st.booleans())
    last_u = draw(st.integers(10, 10**15))
    sent: list[FrameOp] = []
    ops: list[Op] = []
    anchor: tuple[int, int] | None = None  # the IDs of the first frame the book likely buffers

    def next_ids(commit: bool = True) -> tuple[int, int, int]:
        nonlocal last_u
        jump = draw(st.integers(0, 20)) if futures and draw(st.booleans()) else 0
        U = last_u + 1 + jump
        u = U + draw(st.integers(0, 3))
        pu = last_u
        if commit:
            last_u = u
        return U, u, pu

    def send(ids: tuple[int, int, int], dirty: bool = False) -> None:
        nonlocal anchor
        op = draw(frame_ops(market, fixed, *ids, dirty))
        if anchor is None and not dirty and ids[0] <= ids[1]:
            anchor = ids[:2]
        sent.append(op)
        ops.append(op)

    kinds = (
        ["next"] * 12 + ["dirty"] * 3 + ["snap"] * 3 + ["gap", "dup", "old", "swap", "bad ids", "invalidate"]
    )
    first_snapshot = draw(st.integers(0, 5))  # most streams get a snapshot early
    for i in range(draw(st.integers(1, 24))):
        kind = "snap" if i == first_snapshot else draw(st.sampled_from(kinds))
        if kind == "snap":
            # Mostly an ID the first buffered frame bridges ("anchor") or one the next frame will
            # ("ahead"); else around a recent frame or the latest ID (often no bridge, or stale).
            mode = draw(st.sampled_from(["anchor"] * 3 + ["ahead"] * 3 + ["recent", "latest"]))
            recent = [op.scan[:2] for op in sent[-3:] if op.scan[0] <= op.scan[1]]
            bridge = None
            if mode == "anchor" and anchor is None:
                mode = "ahead"
            if mode == "ahead":
                bridge = next_ids()
                U, u = bridge[:2]
            elif mode == "anchor" and anchor is not None:
                U, u = anchor
            elif mode == "recent" and recent:
                U, u = draw(st.sampled_from(recent))
            else:
                U = u = last_u + draw(st.integers(-2, 3))
            lid = draw(st.integers(U, u) if futures else st.integers(U - 1, u))
            if mode != "ahead":
                lid += draw(st.sampled_from([0] * 6 + [-2, -1, 1, 2]))
            bids = draw(side_levels("bid", fixed, snapshot=True))
            asks = draw(side_levels("ask", fixed, snapshot=True))
            if bids and draw(st.integers(0, 12)) == 0:
                asks.append((bids[0][0], "1"))  # a crossed snapshot: BookError
            ops.append(SnapOp(max(lid, 0), lv(*bids), lv(*asks)))
            anchor = None
            if bridge is not None:
                send(bridge)
        elif kind == "invalidate":
            ops.append(Invalidate())
            anchor = None
        elif kind == "dup" and sent:
            ops.append(draw(st.sampled_from(sent)))
        elif kind == "old" and sent:
            U, u, pu = draw(st.sampled_from([op.scan[:3] for op in sent]))
            U = max(U - draw(st.integers(0, 2)), 0)
            send((U, U + draw(st.integers(0, max(u - U, 0))), pu if pu is not None else U - 1))
        elif kind == "gap":
            pu = last_u + 1 + draw(st.integers(0, 3))
            U = last_u + 2 + draw(st.integers(0, 3))
            u = U + draw(st.integers(0, 3))
            last_u = u
            anchor = None
            send((U, u, pu))
        elif kind == "bad ids":
            send((last_u + 5, last_u + 3, last_u))  # U > u: BookError
        elif kind == "swap":
            first, second = next_ids(), next_ids()
            anchor = None  # the second one first: a gap, and the buffer restarts with it
            send(second)
            send(first)
        elif kind == "dirty":
            send(next_ids(commit=False), dirty=True)
        else:
            send(next_ids())
    return Stream(market, fixed, draw(st.sampled_from([0, 0, 3])), draw(st.sampled_from([3, 1000])), ops)


def expected_scan(op: FrameOp, core: Any) -> tuple[int, int, int | None, int, int, int] | None:
    """What ``_scan_only`` must return for this frame on this book."""
    pscale, qscale = core.price_scale, core.qty_scale
    if pscale is None or qscale is None or not op.c_layout:
        return None
    if op.scan[0] > op.scan[1]:  # U > u: the general path words the error
        return None
    if not all(fast_number(p, pscale) and fast_number(q, qscale) for p, q in op.numbers):
        return None
    return op.scan


def run_stream(stream: Stream, classes: tuple[type, type]) -> None:
    """The core's apply_frame, the core's apply_event on the msgspec decode, and the reference's
    apply_frame, side by side: the same outcome and the same book after every step."""
    core_cls, ref_cls = classes
    kw: dict[str, Any] = {"max_depth": stream.max_depth, "buffer_limit": stream.buffer_limit}
    if stream.fixed:
        kw.update(FIXED)
    symbol = SYMBOLS[stream.market]
    core, general, ref = (cls(symbol, stream.market, **kw) for cls in (core_cls, core_cls, ref_cls))
    books = (core, general, ref)
    for step, op in enumerate(stream.ops):
        where = f"step {step}: {op!r}"
        if isinstance(op, FrameOp):
            data = as_form(op.raw, op.form)
            want = expected_scan(op, core)
            assert core._scan_only(data) == want, where  # the C pass takes exactly these

            def via_decode(book: Any, data: Frame = data) -> int:
                return int(book.apply_event(decode_depth_message(data, stream.market)))

            results = [
                outcome(core.apply_frame, data),
                outcome(via_decode, general),
                outcome(ref.apply_frame, data),
            ]
            if results[0][0] == "raise":
                assert results[0][1] in (DecodeError, BookError, DecimalError, LevelsFormatError), where
        elif isinstance(op, SnapOp):
            results = [outcome(book.apply_snapshot, op.lid, op.bids, op.asks) for book in books]
        else:
            for book in books:
                book.invalidate("reconnect")
            results = [("ok", None)] * 3
        assert results[0] == results[1] == results[2], where
        for book in books:
            book._check()
        core_state = dump(core, with_time=False, with_detail=False)
        assert core_state == dump(general, with_time=False, with_detail=False), where
        assert core_state == dump(ref, with_time=False, with_detail=False), where
        assert core.reason_detail == general.reason_detail, where


# Enough examples to reach every layout, extra and fault (more under the ``soak`` profile).
EXAMPLES = max(200, settings().max_examples)


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_generated_frames_core_and_reference_agree(
    both_book_classes: tuple[type, type], market: str, data: st.DataObject
) -> None:
    run_stream(data.draw(streams(market), label="stream"), both_book_classes)


# Characters next to the digits in byte value ("/" 0x2F, ":" 0x3A), signs, exponents, spaces,
# Arabic-Indic and fullwidth digits, and a few JSON specials (escaped in the frame).
ODD_CHARS = '/:.-+eE ,\u0660１\u00ba"\\\t'


@st.composite
def number_texts(draw: Any, scale: int) -> str:
    """Decimal-looking texts for a scale: mostly plain decimals that fit (integer digits +
    scale <= 18, decimals up to the scale plus trailing zeros), else too long, too precise, or
    with one odd character put in or swapped for a digit."""
    fits = draw(st.integers(0, 5)) > 0
    whole = draw(st.text("0123456789", min_size=1, max_size=max(1, 18 - scale) if fits else 21))
    frac = draw(st.text("0123456789", max_size=scale if fits else scale + 3))
    frac += "0" * draw(st.sampled_from([0, 0, 1, 4, 9]))
    text = f"{whole}.{frac}" if frac or draw(st.integers(0, 9)) == 0 else whole
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(text)))
        odd = draw(st.sampled_from(ODD_CHARS))
        text = text[:at] + odd + text[at + draw(st.integers(0, 1)) :]
    return text


@st.composite
def number_cases(draw: Any) -> tuple[int, int, list[tuple[str, str]]]:
    """(price scale, qty scale, levels)."""
    pscale, qscale = draw(st.integers(0, 17)), draw(st.integers(0, 17))
    pairs = draw(st.lists(st.tuples(number_texts(pscale), number_texts(qscale)), min_size=1, max_size=3))
    return pscale, qscale, pairs


def step_text(scale: int) -> str:
    return "1" if scale == 0 else "0." + "0" * (scale - 1) + "1"


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=number_cases(), side=st.sampled_from(["b", "a"]))
def test_number_texts_core_and_reference_agree(
    both_book_classes: tuple[type, type], case: tuple[int, int, list[tuple[str, str]]], side: str
) -> None:
    """Every price/qty text, at every scale: the C pass reads exactly the plain decimals that fit
    (``fast_number``), to the exact ticks; the result equals the reference's in every case."""
    pscale, qscale, pairs = case
    kw = {"tick_size": step_text(pscale), "step_size": step_text(qscale)}
    core, ref = (cls("BTCUSDT", "spot", **kw) for cls in both_book_classes)
    for book in (core, ref):
        assert book.apply_snapshot(100, b"[]", b"[]") == SnapshotResult.BRIDGING
    raw = frame("spot", 101, 101, pairs if side == "b" else [], pairs if side == "a" else [])
    fast = all(fast_number(p, pscale) and fast_number(q, qscale) for p, q in pairs)
    assert (core._scan_only(raw) is not None) == fast, raw
    got = outcome(core.apply_frame, raw)
    assert got == outcome(ref.apply_frame, raw), raw
    core._check()
    ref._check()
    assert dump(core, with_time=False, with_detail=False) == dump(ref, with_time=False, with_detail=False)
    if fast:  # exact ticks, worked out with Decimal (the last repeat of a price wins)
        levels: dict[int, int] = {}
        for p, q in pairs:
            levels[int(Decimal(p).scaleb(pscale))] = int(Decimal(q).scaleb(qscale))
        expected = sorted(((k, v) for k, v in levels.items() if v), reverse=side == "b")
        assert (core.bids_ticks() if side == "b" else core.asks_ticks()) == expected
        assert got == ("ok", int(BBO if expected else A))


def test_scan_expectations_match_the_c_pass() -> None:
    """The generator's model of the C pass (``fast_number``, ``BAD_LEVELS``, ``ODD_LEVELS``)
    against the C pass itself on hand-written frames, so that the property test's
    ``_scan_only`` expectations mean something."""
    from tickbook._book import OrderBook as Core

    book = Core("BTCUSDT", "spot", **FIXED)
    assert book._scan_only(frame("spot", 11, 12, [("99.50", "1.000")])) == (11, 12, None, 1723161256299, 1, 0)
    for bad in BAD_NUMBERS:
        for pair in ((bad, "1.000"), ("99.50", bad)):
            assert book._scan_only(frame("spot", 11, 12, [pair])) is None, pair
        assert not fast_number(bad, PRICE_SCALE), bad
        assert not fast_number(bad, QTY_SCALE), bad
    for text in ("99.50", "099.5", "99.5000", "0.01", "7"):
        assert fast_number(text, PRICE_SCALE)
        assert book._scan_only(frame("spot", 11, 12, [(text, "1.000")])) is not None, text
    big = frame("spot", 11, 12, [], [("1000000000000000", "1")])  # 16 integer digits + scale 2
    assert fast_number("1000000000000000", PRICE_SCALE)
    assert book._scan_only(big) is not None
    assert not fast_number("10000000000000000", PRICE_SCALE)  # 17 + 2
    assert book._scan_only(big.replace(b"1000000000000000", b"10000000000000000")) is None
    one_level = frame("spot", 11, 12, [("99.00", "1.000")])
    for level in BAD_LEVELS:
        assert book._scan_only(one_level.replace(b'["99.00","1.000"]', level)) is None, level
    for level, _, c_reads in ODD_LEVELS:
        scanned = book._scan_only(one_level.replace(b'["99.00","1.000"]', level))
        assert (scanned is not None) == c_reads, level
    assert Core("BTCUSDT", "spot")._scan_only(one_level) is None  # no scales yet


# =========================================================================== 4. bad input


MALFORMED_FRAMES = [
    pytest.param(b"", id="empty"),
    pytest.param("", id="empty-str"),
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'[{"e":"depthUpdate"}]', id="array-of-event"),
    pytest.param(b"null", id="null"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'"depthUpdate"', id="string"),
    pytest.param(b'{"stream":"btcusdt@depth@100ms","data":[]}', id="data-array"),
    pytest.param(b'{"stream":"btcusdt@depth@100ms"}', id="no-data"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
]


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("raw", MALFORMED_FRAMES)
def test_malformed_frame_raises_decode_error(make_book: MakeBook, market: str, raw: Frame) -> None:
    for book in (fresh(make_book, market), synced(make_book, market)):
        before = dump(book)
        with pytest.raises(DecodeError):
            book.apply_frame(raw)
        book._check()
        assert dump(book) == before


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_truncated_and_garbled_frames_raise_decode_error(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    good = frame(market, 102, 102, [("99.00", "7.000")], pu=101)
    bad_frames = [good[:n] for n in (1, 11, 30, len(good) // 2, len(good) - 2, len(good) - 1)]
    bad_frames += [good + b"x", good + b"}", b"[" + good + b"]", good.replace(b'"U":102', b'"U":0102')]
    bad_frames += [good.replace(b'"U":102', b'"U":102.0'), good.replace(b'"u":102', b'"u":"102"')]
    for raw in bad_frames:
        before = dump(book)
        with pytest.raises(DecodeError):
            book.apply_frame(raw)
        book._check()
        assert dump(book) == before, raw
    assert book.apply_frame(good) == A  # the next valid frame still applies
    book._check()
    assert book.qty_at_ticks(9900) == 7000
    assert book.last_update_id == 102


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("symbol", ["ETHUSDT", "btcusdt", "BTCUSDT ", "BTCUSD_PERP"])
def test_frame_for_another_symbol_raises_book_error(make_book: MakeBook, market: str, symbol: str) -> None:
    for book in (fresh(make_book, market), synced(make_book, market)):
        before = dump(book)
        for bare in (False, True):
            raw = frame(market, 102, 102, [("99.00", "1.000")], pu=101, symbol=symbol, bare=bare)
            if is_core(book):
                assert book._scan_only(raw) is None
            with pytest.raises(BookError, match=re.escape(repr(symbol))):
                book.apply_frame(raw)
            book._check()
            assert dump(book) == before
    assert book.apply_frame(frame(market, 102, 102, [("99.00", "1.000")], pu=101)) == A


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("bad", ["1e5", "-1", "1.2.3", "", "100.0001", "１00.00", "99999999999999999999"])
@pytest.mark.parametrize("where", ["bid price", "ask qty"])
def test_malformed_number_raises_like_apply_event(
    make_book: MakeBook, market: str, bad: str, where: str
) -> None:
    book = synced(make_book, market)
    bids = [("99.00", "2.000"), (bad, "1.000") if where == "bid price" else ("98.00", "1.000")]
    asks = [("101.00", "0"), ("102.00", bad) if where == "ask qty" else ("102.00", "1.000")]
    raw = frame(market, 102, 102, bids, asks, pu=101)
    if is_core(book):
        assert book._scan_only(raw) is None  # the C pass declines: the general path words the error
    twin = book.copy()
    with pytest.raises(BookError) as by_event:
        twin.apply_event(decode_depth_message(raw, market))
    assert by_event.type is DecimalError
    before = dump(book)
    with pytest.raises(DecimalError):
        book.apply_frame(raw)
    book._check()
    assert dump(book) == before  # the first, good levels were not applied either
    assert book.apply_frame(frame(market, 102, 102, [("99.00", "2.000")], pu=101)) == A
    book._check()
    assert book.bids_ticks() == [(10000, 1000), (9950, 2000), (9900, 2000)]


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_wrong_level_shape_raises_like_apply_event(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    good = frame(market, 102, 102, [("99.00", "2.000")], pu=101)
    for shape in (b'[[99.0,"1"]]', b'[["99.00"]]', b'[["99.00","1","2"]]', b'{"99.00":"1"}', b'"99"'):
        raw = good.replace(b'"b":[["99.00","2.000"]]', b'"b":' + shape)
        assert raw != good
        twin = book.copy()
        with pytest.raises(BookError) as by_event:
            twin.apply_event(decode_depth_message(raw, market))
        before = dump(book)
        with pytest.raises(by_event.type):
            book.apply_frame(raw)
        assert by_event.type is LevelsFormatError, shape
        book._check()
        assert dump(book) == before
    assert book.apply_frame(good) == A


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_bad_ids_raise_and_change_nothing(make_book: MakeBook, market: str) -> None:
    book = synced(make_book, market)
    raws = [
        frame(market, 105, 103, pu=101),  # U > u
        frame(market, 102, 102, pu=101).replace(b'"U":102', b'"U":-102'),
        frame(market, 102, 102, pu=101).replace(b'"u":102', b'"u":%d' % 2**63),
    ]
    if market != "spot":
        raws.append(frame(market, 102, 102, pu=101).replace(b'"pu":101', b'"pu":-1'))
    for raw in raws:
        if is_core(book):
            assert book._scan_only(raw) is None
        before = dump(book)
        with pytest.raises(BookError):
            book.apply_frame(raw)
        book._check()
        assert dump(book) == before, raw


# =========================================================================== 5. before the snapshot


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("scales", ["inferred", "fixed"])
def test_frames_before_the_snapshot_are_buffered_then_bridge(
    make_book: MakeBook, market: str, scales: str
) -> None:
    kw = FIXED if scales == "fixed" else {}
    book = make_book("BTCUSDT", market, **kw)
    by_event = make_book("BTCUSDT", market, **kw)
    raws = [
        frame(market, 95, 99, [("99.00", "9.000")], pu=90),  # stale at the replay
        frame(market, 100, 101, [("99.50", "5.000")], [("100.50", "0")], pu=99),  # bridges snapshot 100
        frame(market, 102, 103, [("100.25", "1.500")], [("101.00", "0.250")], pu=101, bare=True),
    ]
    for i, raw in enumerate(raws):
        if is_core(book):
            scanned = book._scan_only(raw)
            # unknown scales: the C pass declines; known: it reads the frame (and buffers a copy)
            assert (scanned is None) == (scales == "inferred")
        assert book.apply_frame(raw) == Applied.BUFFERED
        assert by_event.apply_event(decode_depth_message(raw, market)) == Applied.BUFFERED
        book._check()
        assert book.buffered == i + 1
        assert book.first_buffered_id == 95
        assert book.state == SyncState.WAITING_FOR_SNAPSHOT
        assert state(book) == state(by_event)
    assert snap(book, 100) == snap(by_event, 100) == SnapshotResult.SYNCED
    assert state(book) == state(by_event)
    assert book.bids_ticks() == [(10025, 1500), (10000, 1000), (9950, 5000), (9900, 3000)]
    assert book.asks_ticks() == [(10100, 250), (10200, 500)]
    assert book.last_update_id == 103
    stats = book.stats()
    assert (stats["buffered"], stats["stale"], stats["applied"]) == (3, 1, 2)
    assert book.apply_frame(frame(market, 104, 104, [("100.25", "0")], pu=103)) == BBO
    book._check()
    assert book.best_bid_ticks() == (10000, 1000)


# =========================================================================== 6. buffer types


def frame_forms(raw: bytes) -> dict[str, Frame]:
    big = bytearray(b"\x00garbage" + raw + b"more garbage")
    return {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "memoryview of a bytearray": memoryview(bytearray(raw)),
        "memoryview slice": memoryview(big)[8 : 8 + len(raw)],
        "str": raw.decode(),
    }


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_every_buffer_type_gives_the_same_result(make_book: MakeBook, market: str) -> None:
    base = synced(make_book, market)
    raws = [
        frame(market, 102, 103, [("100.25", "1.500"), ("99.00", "0")], [("100.50", "2.000")], pu=101),
        frame(market, 102, 103, [("100.25", "1.500")], pu=101, bare=True),
        frame(market, 90, 91, [("99.75", "1.000")], pu=89),  # stale
        frame(market, 120, 121, [("99.75", "1.000")], pu=119),  # a gap
    ]
    raws.append(json.dumps(json.loads(raws[0])).encode())  # whitespace: the general path
    for raw in raws:
        reference = base.copy()
        expected = reference.apply_frame(raw)
        for name, data in frame_forms(raw).items():
            if is_core(base):
                assert (base._scan_only(data) is None) == (base._scan_only(raw) is None), name
            twin = base.copy()
            assert twin.apply_frame(data) == expected, (name, raw)
            twin._check()
            assert state(twin) == state(reference), (name, raw)


def overwrite(buf: bytearray, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) in place, as a reused receive buffer would."""
    assert len(old) == len(new)
    at = buf.index(old)
    buf[at : at + len(old)] = new


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("when", ["before the snapshot", "before the snapshot, fixed scales", "after a gap"])
@pytest.mark.parametrize("form", ["bytearray", "memoryview slice"])
def test_kept_frames_are_copied(make_book: MakeBook, market: str, when: str, form: str) -> None:
    """A frame the book keeps for later (buffered or gapped) must not alias the caller's buffer."""
    if when == "after a gap":
        book = synced(make_book, market)
        U, u = 110, 111
        expected_flags = Applied.GAP
    else:
        book = make_book("BTCUSDT", market, **(FIXED if "fixed" in when else {}))
        U, u = 100, 101
        expected_flags = Applied.BUFFERED
    raw = frame(market, U, u, [("99.50", "5.000")], [("101.00", "0.750")], pu=U - 5)
    if form == "bytearray":
        buf = bytearray(raw)
        data: Frame = buf
    else:  # a view of part of a larger receive buffer
        buf = bytearray(b"#" * 7 + raw + b"#" * 3)
        data = memoryview(buf)[7 : 7 + len(raw)]
    assert book.apply_frame(data) == expected_flags
    book._check()
    overwrite(buf, b'"99.50","5.000"', b'"98.25","6.000"')
    overwrite(buf, b'"101.00","0.750"', b'"101.00","0.000"')
    lid = U - 1 if market == "spot" else U  # a snapshot the kept event bridges
    assert snap(book, lid) == SnapshotResult.SYNCED
    assert book.last_update_id == u
    assert book.stats()["bad_buffered"] == 0
    assert book.bids_ticks() == [(10000, 1000), (9950, 5000), (9900, 3000)]  # the frame as it was
    assert book.asks_ticks() == [(10050, 1500), (10100, 750), (10200, 500)]


# =========================================================================== 7. COIN-M


def coinm_samples() -> list[bytes]:
    lines = (PAYLOADS / "ws_samples_coinm.jsonl").read_bytes().splitlines()
    return [line for line in lines if b'"e":"depthUpdate"' in line]


def without_ps(raw: bytes) -> bytes:
    out = re.sub(rb',"ps":"[A-Z_]*"', b"", raw, count=1)
    assert out != raw
    return out


def test_coinm_frames_with_ps_take_the_c_pass(make_book: MakeBook) -> None:
    samples = coinm_samples()
    assert len(samples) == 3
    assert all(b'"ps":"BTCUSD"' in raw for raw in samples)
    first = json.loads(samples[0])["data"]
    kw = {"tick_size": "0.1", "step_size": "1"}
    book = make_book("BTCUSD_PERP", "coinm", **kw)
    by_event = make_book("BTCUSD_PERP", "coinm", **kw)
    bare = make_book("BTCUSD_PERP", "coinm", **kw)
    for b in (book, by_event, bare):
        assert b.apply_snapshot(first["U"], b"[]", b"[]") == SnapshotResult.BRIDGING
    for i, raw in enumerate(samples):
        ev = json.loads(raw)["data"]
        if is_core(book):
            expected_scan = (ev["U"], ev["u"], ev["pu"], ev["E"], len(ev["b"]), len(ev["a"]))
            assert book._scan_only(raw) == expected_scan, i
            assert book._scan_only(without_ps(raw)) == expected_scan, i  # ps is optional
            bare_raw = obj([(k, jtext(v)) for k, v in ev.items()])
            assert book._scan_only(bare_raw) == expected_scan, i
            assert book._scan_only(raw.replace(b'"ps":"BTCUSD"', b'"ps":"BTC\\u0055SD"')) is None
            assert book._scan_only(raw.replace(b'"ps":"BTCUSD"', b'"ps":null')) is None
        flags = book.apply_frame(raw)
        assert flags == by_event.apply_event(decode_depth_message(raw, "coinm")), i
        assert flags == bare.apply_frame(obj([(k, jtext(v)) for k, v in ev.items()])), i
        assert flags & A, i
        for b in (book, by_event, bare):
            b._check()
        assert state(book) == state(by_event) == state(bare), i
    assert book.synced
    assert book.last_update_id == json.loads(samples[-1])["data"]["u"]
    assert book.bid_count > 0
    assert book.ask_count > 0


def test_ps_on_a_usdm_book_is_declined_but_applied_alike(make_book: MakeBook) -> None:
    samples = coinm_samples()
    first = json.loads(samples[0])["data"]
    kw = {"tick_size": "0.1", "step_size": "1"}
    with_ps = make_book("BTCUSD_PERP", "usdm", **kw)  # USD-M events carry no ps
    plain = make_book("BTCUSD_PERP", "usdm", **kw)
    for b in (with_ps, plain):
        b.apply_snapshot(first["U"], b"[]", b"[]")
    for i, raw in enumerate(samples):
        if is_core(with_ps):
            assert with_ps._scan_only(raw) is None, i
            assert with_ps._scan_only(without_ps(raw)) is not None, i
        assert with_ps.apply_frame(raw) == plain.apply_frame(without_ps(raw)), i
        with_ps._check()
        assert state(with_ps) == state(plain), i
    assert with_ps.synced
    assert with_ps.stats()["applied"] == 3


def test_ps_on_a_spot_book_is_declined_but_applied_alike(make_book: MakeBook) -> None:
    book = synced(make_book, "spot")
    canonical = frame("spot", 102, 102, [("99.00", "4.000")])
    with_ps = canonical.replace(b'"s":"BTCUSDT",', b'"s":"BTCUSDT","ps":"BTCUSD",')
    if is_core(book):
        assert book._scan_only(canonical) is not None
        assert book._scan_only(with_ps) is None
    twin = book.copy()
    assert book.apply_frame(with_ps) == twin.apply_frame(canonical) == A
    book._check()
    assert state(book) == state(twin)
    assert book.reason == OutOfSyncReason.NONE
