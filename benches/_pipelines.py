"""The datasets and the competing pipelines the benchmarks time.

Every pipeline does the same work on the same data, so the times compare. Each competitor's
loop is written out in full, the way its users would write it, even where two loops differ
only in the decoder: a shared helper would add a call per message to the competitors and
distort the comparison.


* start from the same REST snapshot (loaded in an untimed setup, each pipeline with its own
  decoder and book);
* take every depth message of the recording that the sync rule applies, in order (the stale
  ones before the snapshot are dropped once, here, for every pipeline alike);
* for each message: decode it, check the update-ID continuity rule, apply every level
  (quantity 0 deletes, a delete of an absent level is silent), then read the best bid and
  the best ask, as a bot does after every message;
* at the end every pipeline must hold the same best bid and ask (price and quantity) as an
  independent replay in ``Decimal`` (``expected_bbo``): the benchmarks assert it once per
  pipeline, outside the timed region.

Three kinds of pass over a dataset (one pass is one benchmark round):

* ``end_to_end``: raw bytes -> decode -> validate -> apply -> best bid/ask read (the core:
  ``OrderBook.apply_frame`` on the raw bytes, its C scan of the exchange's exact layout);
* ``apply_only``: the same, from events decoded before the pass (the tickbook books get the
  msgspec Structs with raw level spans, since parsing those is part of their apply; the
  Python-dict books get the levels already converted to their key type);
* ``decode_only``: the decoders alone (see ``DECODERS``).

Plus the parse-only floors (``FLOORS``): ``floor`` is ``OrderBook._scan_only``, the frame
scan of ``apply_frame`` alone (envelope, update IDs, every price and quantity parsed to
int64, no book work); ``floor-msgspec`` is the msgspec path's floor: msgspec decode with
raw level spans and ``OrderBook._parse_only`` (the same level scan and int64 conversion as
``apply_event``, with no book work).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import gzip
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from sortedcontainers import SortedDict

from tickbook import decode as tb_decode
from tickbook._book_py import OrderBook as RefBook
from tickbook._rules import Verdict, classify

try:
    from tickbook._book import OrderBook as CoreBook
except ImportError:  # pragma: no cover - the benchmarks need the built core
    CoreBook = None

try:
    import orjson
except ImportError:  # pragma: no cover - optional bench dependency
    orjson = None

try:
    import order_book
except ImportError:  # pragma: no cover - optional bench dependency
    order_book = None

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "data" / "real" / "derived"

Bbo = tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]


class SyncBroken(AssertionError):
    """A pipeline saw an event that breaks the continuity rule (never on the benchmark data)."""


# ---------------------------------------------------------------------------- datasets


@dataclass(frozen=True, eq=False)  # hashed by identity: one instance per loaded dataset
class Dataset:
    """One recording, ready to replay: the snapshot and the messages the sync rule applies."""

    key: str  # "spot", "usdm", "generated"
    title: str  # for the tables
    market: str  # "spot" or "usdm"
    symbol: str
    snapshot: bytes  # the raw REST body
    messages: list[bytes]  # raw combined-stream messages the sync rule applies, in order
    dropped: int  # messages of the recording dropped by the sync rule (stale)
    levels: int  # levels over all of ``messages``
    median_levels: float  # levels per message, median
    snapshot_levels: tuple[int, int]  # bids, asks in the snapshot
    level_counts: list[int]  # levels of each message
    tick: str  # price tick of the symbol (for the dataset profile only)
    prefix_of: str | None = None  # the dataset this one is the first messages of

    @property
    def futures(self) -> bool:
        return self.market != "spot"

    def prefix(self, n: int) -> Dataset:
        """The first ``n`` messages (for the slowest pipelines on the large generated stream)."""
        if n >= len(self.messages):
            return self
        return _prefix(self, n)

    def info(self) -> dict[str, Any]:
        """What the report needs to turn a pass time into ns per message and per level."""
        return {
            "dataset": self.key,
            "dataset_title": self.title,
            "messages": len(self.messages),
            "levels": self.levels,
            "median_levels": self.median_levels,
            "dropped": self.dropped,
            "snapshot_levels": list(self.snapshot_levels),
            "prefix_of": self.prefix_of,
        }


@functools.cache
def _prefix(ds: Dataset, n: int) -> Dataset:
    counts = ds.level_counts[:n]
    return dataclasses.replace(
        ds,
        title=f"{ds.title}, first {n:,} messages",
        messages=ds.messages[:n],
        levels=sum(counts),
        median_levels=float(statistics.median(counts)),
        level_counts=counts,
        prefix_of=ds.key,
    )


#: On the large generated stream these pipelines run on its first PREFIX messages only: a
#: full pass of them would take most of a minute. The generated book keeps its size, so the
#: cost per message of a prefix stands for the whole stream (the tables mark these rows).
SLOW = frozenset({"tutorial", "order-book"})
PREFIX = 2_000


def for_pipeline(ds: Dataset, key: str) -> Dataset:
    """The dataset a pipeline runs on: ``ds``, or its prefix for the slow ones on ``generated``."""
    if ds.key == "generated" and key in SLOW:
        return ds.prefix(PREFIX)
    return ds


class _Ids(msgspec.Struct, gc=False):
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    s: str
    pu: int = -1


class _Wrapped(msgspec.Struct, gc=False):
    data: _Ids


_IDS = msgspec.json.Decoder(_Wrapped)
_LEVELS = msgspec.json.Decoder(list[tuple[str, str]])


def _prepare(
    key: str, title: str, market: str, tick: str, snapshot: bytes, lines: Iterable[bytes]
) -> Dataset:
    futures = market != "spot"
    book_id = msgspec.json.decode(snapshot, type=dict[str, Any])["lastUpdateId"]
    kept: list[bytes] = []
    dropped = 0
    per: list[int] = []
    symbol = ""
    for raw in lines:
        raw = raw.rstrip(b"\r\n")
        if not raw:
            continue
        ev = _IDS.decode(raw).data
        verdict = classify(ev.U, ev.u, ev.pu, book_id, not kept, futures)
        if verdict == Verdict.STALE:
            dropped += 1
            continue
        if verdict != Verdict.APPLY:
            raise SyncBroken(f"{key}: {verdict.name} at U={ev.U} u={ev.u}: the data cannot be replayed")
        book_id = ev.u
        symbol = ev.s
        kept.append(raw)
        per.append(len(_LEVELS.decode(ev.b)) + len(_LEVELS.decode(ev.a)))
    snap = msgspec.json.decode(snapshot, type=dict[str, Any])
    return Dataset(
        key=key,
        title=title,
        market=market,
        symbol=symbol,
        snapshot=snapshot,
        messages=kept,
        dropped=dropped,
        levels=sum(per),
        median_levels=float(statistics.median(per)),
        snapshot_levels=(len(snap["bids"]), len(snap["asks"])),
        level_counts=per,
        tick=tick,
    )


def _real(market: str) -> Dataset:
    stem = f"binance_{market}_btcusdt_20240808"
    snapshot = (REAL / f"{stem}_snapshot.json").read_bytes().strip()
    with gzip.open(REAL / f"{stem}_depth.jsonl.gz", "rb") as f:
        lines = f.read().splitlines()
    title = {"spot": "real spot BTCUSDT 2024-08-08", "usdm": "real USD-M BTCUSDT 2024-08-08"}[market]
    tick = {"spot": "0.01", "usdm": "0.10"}[market]  # exchangeInfo PRICE_FILTER of BTCUSDT
    return _prepare(market, title, market, tick, snapshot, lines)


@functools.cache
def load(
    key: str, seed: int | None = None, messages: int | None = None, levels: int | None = None
) -> Dataset:
    """``spot`` / ``usdm`` (the real recordings) or ``generated`` (benches/generate.py)."""
    if key in ("spot", "usdm"):
        return _real(key)
    if key != "generated":
        raise ValueError(f"unknown dataset {key!r}")
    import generate

    seed = generate.DEFAULT_SEED if seed is None else seed
    messages = generate.DEFAULT_MESSAGES if messages is None else messages
    levels = generate.DEFAULT_LEVELS if levels is None else levels
    stream = generate.generate(seed, messages, levels)
    title = f"generated spot-like, seed {seed}, {messages:,} messages, {levels:,} levels/side"
    return _prepare("generated", title, "spot", "0.01", stream.snapshot, stream.messages)


def profile(ds: Dataset) -> dict[str, float]:
    """Where a dataset's updates land: distance (ticks) and rank (levels) from the best price
    on their side, just before the message, and the share of deletes of absent levels."""
    tick = Decimal(ds.tick)
    snap = json.loads(ds.snapshot)
    bids = SortedDict({int(Decimal(p) / tick): 0 for p, q in snap["bids"] if Decimal(q)})
    asks = SortedDict({int(Decimal(p) / tick): 0 for p, q in snap["asks"] if Decimal(q)})
    dist: list[int] = []
    rank: list[int] = []
    absent = 0
    for raw in ds.messages:
        ev = json.loads(raw)["data"]
        best_bid, best_ask = bids.peekitem(-1)[0], asks.peekitem(0)[0]
        changes = []
        for is_bid, levels in ((True, ev["b"]), (False, ev["a"])):
            for p, q in levels:
                t = int(Decimal(p) / tick)
                side = bids if is_bid else asks
                if is_bid:
                    dist.append(best_bid - t)
                    rank.append(len(bids) - bids.bisect_right(t))
                else:
                    dist.append(t - best_ask)
                    rank.append(asks.bisect_left(t))
                zero = not Decimal(q)
                absent += zero and t not in side
                changes.append((side, t, zero))
        for side, t, zero in changes:
            if zero:
                side.pop(t, None)
            else:
                side[t] = 0
    n = len(dist)
    return {
        "near": sum(d <= 5 for d in dist) / n,
        "far": sum(d > 50 for d in dist) / n,
        "median_ticks": statistics.median(dist),
        "median_rank": statistics.median(rank),
        "absent_deletes": absent / n,
    }


@functools.cache
def expected_bbo(ds: Dataset) -> Bbo:
    """Best bid and ask after the replay, computed independently: plain dicts of ``Decimal``."""
    snap = json.loads(ds.snapshot)
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"] if Decimal(q)}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"] if Decimal(q)}
    for raw in ds.messages:
        ev = json.loads(raw)["data"]
        for side, levels in ((bids, ev["b"]), (asks, ev["a"])):
            for p, q in levels:
                if Decimal(q):
                    side[Decimal(p)] = Decimal(q)
                else:
                    side.pop(Decimal(p), None)
    bid = max(bids)
    ask = min(asks)
    assert bid < ask, "the replayed book is crossed"
    return (bid, bids[bid]), (ask, asks[ask])


def _dec(x: Any) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def _pair(pair: Any) -> tuple[Decimal, Decimal]:
    return _dec(pair[0]), _dec(pair[1])


# ---------------------------------------------------------------------------- decoders


def _combined_typed(ds: Dataset) -> msgspec.json.Decoder[Any]:
    return (
        tb_decode.combined_futures_depth_typed_decoder
        if ds.futures
        else tb_decode.combined_depth_typed_decoder
    )


def _combined_raw(ds: Dataset) -> msgspec.json.Decoder[Any]:
    return tb_decode.combined_futures_depth_decoder if ds.futures else tb_decode.combined_depth_decoder


def _decode_json(ds: Dataset) -> Callable[[], None]:
    msgs, loads = ds.messages, json.loads

    def run() -> None:
        for raw in msgs:
            loads(raw)["data"]

    return run


def _decode_orjson(ds: Dataset) -> Callable[[], None]:
    msgs, loads = ds.messages, orjson.loads

    def run() -> None:
        for raw in msgs:
            loads(raw)["data"]

    return run


def _decode_msgspec(dec: msgspec.json.Decoder[Any], ds: Dataset) -> Callable[[], None]:
    msgs, decode = ds.messages, dec.decode

    def run() -> None:
        for raw in msgs:
            _ = decode(raw).data

    return run


#: decode-only variants: key -> (label, factory of the pass); each decodes every message to its event
DECODERS: dict[str, tuple[str, Callable[[Dataset], Callable[[], None]]]] = {
    "json": ("json (stdlib) -> dicts", _decode_json),
    "orjson": ("orjson -> dicts", _decode_orjson),
    "msgspec-typed": ("msgspec Struct, levels as str", lambda ds: _decode_msgspec(_combined_typed(ds), ds)),
    "msgspec-raw": ("msgspec Struct, levels as Raw spans", lambda ds: _decode_msgspec(_combined_raw(ds), ds)),
}


def decoder_available(key: str) -> bool:
    return key != "orjson" or orjson is not None


# --------------------------------------------------------------------------- pipelines


class Pipeline:
    """One competitor. ``setup()`` builds a fresh book from the snapshot (untimed); the pass
    methods replay every message once; ``bbo()`` reads the final best bid and ask."""

    key = ""
    label = ""
    needs: str | None = None  # optional module this pipeline needs ("orjson", "order_book")
    end_to_end_ok = True
    apply_only_ok = True
    apply_label = ""  # the apply-only row's label, if its pass is not what ``label`` says

    @classmethod
    def apply_only_label(cls) -> str:
        return cls.apply_label or cls.label

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    @classmethod
    def available(cls) -> bool:
        return cls.needs is None or sys.modules.get(cls.needs) is not None

    def setup(self) -> None:
        raise NotImplementedError

    def predecode(self) -> list[Any]:
        """The events the apply-only pass consumes (built once, untimed)."""
        raise NotImplementedError

    def end_to_end(self) -> None:
        raise NotImplementedError

    def apply_only(self, events: list[Any]) -> None:
        raise NotImplementedError

    def bbo(self) -> Bbo:
        raise NotImplementedError


class _TickbookBook(Pipeline):
    """tickbook's books: msgspec Struct with raw level spans -> apply_event -> best_*_ticks.

    Validation is inside ``apply_event`` (the sync rule of the market); after a pass the
    benchmark checks that every event was applied and the book is still synced."""

    cls: Any = None
    decoder = staticmethod(_combined_raw)

    def setup(self) -> None:
        ds = self.ds
        snap = tb_decode.decode_snapshot(ds.snapshot, ds.market)
        self.book = self.cls(ds.symbol, ds.market)
        self.book.apply_snapshot(snap.lastUpdateId, snap.bids, snap.asks)

    def predecode(self) -> list[Any]:
        decode = self.decoder(self.ds).decode
        return [decode(raw).data for raw in self.ds.messages]

    def end_to_end(self) -> None:
        decode = self.decoder(self.ds).decode
        book = self.book
        apply, best_bid, best_ask = book.apply_event, book.best_bid_ticks, book.best_ask_ticks
        for raw in self.ds.messages:
            apply(decode(raw).data)
            best_bid()
            best_ask()

    def apply_only(self, events: list[Any]) -> None:
        book = self.book
        apply, best_bid, best_ask = book.apply_event, book.best_bid_ticks, book.best_ask_ticks
        for ev in events:
            apply(ev)
            best_bid()
            best_ask()

    def check(self) -> None:
        """Every message applied, the book synced (outside the timed region)."""
        stats = self.book.stats()
        assert self.book.synced, f"{self.key}: book not synced: {self.book.reason_detail}"
        assert stats["applied"] == len(self.ds.messages), f"{self.key}: {stats}"

    def bbo(self) -> Bbo:
        self.check()
        return _pair(self.book.best_bid_str()), _pair(self.book.best_ask_str())


class TickbookCore(_TickbookBook):
    """The core as the feed drives it: ``apply_frame`` on the raw bytes of each message (its C
    scan of the exchange's exact layout; msgspec + ``apply_event`` for any other layout).

    Its apply-only pass is the inherited one: ``apply_event`` on pre-decoded msgspec Raw
    events (the book work, level parsing included)."""

    key = "tickbook"
    label = "tickbook core (apply_frame: C frame scan)"
    apply_label = "tickbook core (apply_event on msgspec Raw events)"
    cls = CoreBook

    @classmethod
    def available(cls) -> bool:
        return CoreBook is not None

    def end_to_end(self) -> None:
        book = self.book
        apply, best_bid, best_ask = book.apply_frame, book.best_bid_ticks, book.best_ask_ticks
        for raw in self.ds.messages:
            apply(raw)
            best_bid()
            best_ask()


class TickbookCoreMsgspec(_TickbookBook):
    """The core's previous end-to-end path: msgspec combined Raw decode -> ``apply_event``."""

    key = "tickbook-msgspec"
    label = "tickbook core, msgspec Raw decode + apply_event"
    cls = CoreBook
    apply_only_ok = False  # the apply-only row of the core is the same work

    @classmethod
    def available(cls) -> bool:
        return CoreBook is not None


class TickbookCoreTyped(_TickbookBook):
    key = "tickbook-typed"
    label = "tickbook core, fed msgspec str levels"
    cls = CoreBook
    decoder = staticmethod(_combined_typed)
    apply_only_ok = False  # the apply-only row of the core is the Raw one

    @classmethod
    def available(cls) -> bool:
        return CoreBook is not None


class TickbookReference(_TickbookBook):
    key = "reference"
    label = "tickbook reference (pure Python)"
    cls = RefBook


class _FloatBook(Pipeline):
    """Books keyed by Python numbers, fed by a typed decoder. Subclasses fill in the loop."""

    # the continuity rule a careful bot checks itself (the stale events were dropped already):
    # spot: U <= previous u + 1; futures: pu == previous u (or, for the bridge, U <= id <= u)

    def _last_id(self) -> int:
        return int(json.loads(self.ds.snapshot)["lastUpdateId"])

    def _fail(self, ev: Any) -> None:
        raise SyncBroken(f"{self.key}: continuity broken at U={ev.U} u={ev.u}")

    def predecode(self) -> list[Any]:
        """(U, u, pu, bids, asks) with the levels converted to this book's (key, value) type."""
        decode = _combined_typed(self.ds).decode
        conv = self.convert
        out = []
        for raw in self.ds.messages:
            ev = decode(raw).data
            pu = ev.pu if self.ds.futures else -1
            out.append(
                (ev.U, ev.u, pu, [(conv(p), conv(q)) for p, q in ev.b], [(conv(p), conv(q)) for p, q in ev.a])
            )
        return out

    convert: Callable[[str], Any] = float


class SortedDictFloat(_FloatBook):
    key = "sorteddict-float"
    label = "msgspec typed + SortedDict[float]"
    convert = float

    def setup(self) -> None:
        snap = tb_decode.depth_snapshot_typed_decoder.decode(self.ds.snapshot)
        self.last = snap.lastUpdateId
        conv = self.convert
        self.bids = SortedDict({conv(p): conv(q) for p, q in snap.bids if conv(q)})
        self.asks = SortedDict({conv(p): conv(q) for p, q in snap.asks if conv(q)})

    def end_to_end(self) -> None:
        decode = _combined_typed(self.ds).decode
        futures = self.ds.futures
        conv = self.convert
        bids, asks, last = self.bids, self.asks, self.last
        bid_top, ask_top = bids.peekitem, asks.peekitem
        for raw in self.ds.messages:
            ev = decode(raw).data
            if futures:
                if ev.pu != last and not ev.U <= last <= ev.u:
                    self._fail(ev)
            elif ev.U > last + 1:
                self._fail(ev)
            last = ev.u
            for p, q in ev.b:
                qty = conv(q)
                if qty:
                    bids[conv(p)] = qty
                else:
                    bids.pop(conv(p), None)
            for p, q in ev.a:
                qty = conv(q)
                if qty:
                    asks[conv(p)] = qty
                else:
                    asks.pop(conv(p), None)
            bid_top(-1)
            ask_top(0)
        self.last = last

    def apply_only(self, events: list[Any]) -> None:
        futures = self.ds.futures
        bids, asks, last = self.bids, self.asks, self.last
        bid_top, ask_top = bids.peekitem, asks.peekitem
        for U, u, pu, b, a in events:
            if futures:
                if pu != last and not U <= last <= u:
                    raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            elif U > last + 1:
                raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            last = u
            for p, qty in b:
                if qty:
                    bids[p] = qty
                else:
                    bids.pop(p, None)
            for p, qty in a:
                if qty:
                    asks[p] = qty
                else:
                    asks.pop(p, None)
            bid_top(-1)
            ask_top(0)
        self.last = last

    def bbo(self) -> Bbo:
        return _pair(self.bids.peekitem(-1)), _pair(self.asks.peekitem(0))


class SortedDictDecimal(SortedDictFloat):
    key = "sorteddict-decimal"
    label = "msgspec typed + SortedDict[Decimal]"
    convert = Decimal


class OrjsonSortedDict(SortedDictFloat):
    key = "orjson-sorteddict"
    label = "orjson + SortedDict[float]"
    needs = "orjson"
    apply_only_ok = False  # same book as sorteddict-float: only the decoder differs

    def end_to_end(self) -> None:
        loads = orjson.loads
        futures = self.ds.futures
        bids, asks, last = self.bids, self.asks, self.last
        bid_top, ask_top = bids.peekitem, asks.peekitem
        for raw in self.ds.messages:
            ev = loads(raw)["data"]
            U = ev["U"]
            if futures:
                if ev["pu"] != last and not U <= last <= ev["u"]:
                    raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            elif U > last + 1:
                raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            last = ev["u"]
            for p, q in ev["b"]:
                qty = float(q)
                if qty:
                    bids[float(p)] = qty
                else:
                    bids.pop(float(p), None)
            for p, q in ev["a"]:
                qty = float(q)
                if qty:
                    asks[float(p)] = qty
                else:
                    asks.pop(float(p), None)
            bid_top(-1)
            ask_top(0)
        self.last = last


class BmosconOrderBook(_FloatBook):
    """bmoscon's C order book (PyPI ``order-book``): a sorted dict per side, keyed by float.

    Its sides keep their keys unordered and sort them on the first read after a change, so
    reading the best level after every message (``bids.index(0)``) pays a sort each time."""

    key = "order-book"
    label = "msgspec typed + bmoscon order-book"
    needs = "order_book"
    read_every_message = True

    def setup(self) -> None:
        snap = tb_decode.depth_snapshot_typed_decoder.decode(self.ds.snapshot)
        self.last = snap.lastUpdateId
        self.book = order_book.OrderBook()
        for side, levels in ((self.book.bids, snap.bids), (self.book.asks, snap.asks)):
            for p, q in levels:
                if float(q):
                    side[float(p)] = float(q)

    def end_to_end(self) -> None:
        decode = _combined_typed(self.ds).decode
        futures = self.ds.futures
        bids, asks, last = self.book.bids, self.book.asks, self.last
        bid_top, ask_top = bids.index, asks.index
        for raw in self.ds.messages:
            ev = decode(raw).data
            if futures:
                if ev.pu != last and not ev.U <= last <= ev.u:
                    self._fail(ev)
            elif ev.U > last + 1:
                self._fail(ev)
            last = ev.u
            for p, q in ev.b:
                qty = float(q)
                price = float(p)
                if qty:
                    bids[price] = qty
                elif price in bids:
                    del bids[price]
            for p, q in ev.a:
                qty = float(q)
                price = float(p)
                if qty:
                    asks[price] = qty
                elif price in asks:
                    del asks[price]
            bid_top(0)
            ask_top(0)
        self.last = last

    def apply_only(self, events: list[Any]) -> None:
        futures = self.ds.futures
        read = self.read_every_message
        bids, asks, last = self.book.bids, self.book.asks, self.last
        bid_top, ask_top = bids.index, asks.index
        for U, u, pu, b, a in events:
            if futures:
                if pu != last and not U <= last <= u:
                    raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            elif U > last + 1:
                raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            last = u
            for p, qty in b:
                if qty:
                    bids[p] = qty
                elif p in bids:
                    del bids[p]
            for p, qty in a:
                if qty:
                    asks[p] = qty
                elif p in asks:
                    del asks[p]
            if read:
                bid_top(0)
                ask_top(0)
        self.last = last

    def bbo(self) -> Bbo:
        return _pair(self.book.bids.index(0)), _pair(self.book.asks.index(0))


class BmosconNoRead(BmosconOrderBook):
    """Not what a bot does: for the apply-only table, to show where order-book's time goes."""

    key = "order-book-noread"
    label = "bmoscon order-book, best read only at the end"
    end_to_end_ok = False
    read_every_message = False


class TutorialDict(_FloatBook):
    """What common tutorials do: json.loads, a dict per side keyed by float, sorted on each read."""

    key = "tutorial"
    label = "json + dict per side, sorted on read (tutorial)"

    def setup(self) -> None:
        snap = json.loads(self.ds.snapshot)
        self.last = snap["lastUpdateId"]
        self.bids = {float(p): float(q) for p, q in snap["bids"] if float(q)}
        self.asks = {float(p): float(q) for p, q in snap["asks"] if float(q)}

    def end_to_end(self) -> None:
        loads = json.loads
        futures = self.ds.futures
        bids, asks, last = self.bids, self.asks, self.last
        for raw in self.ds.messages:
            ev = loads(raw)["data"]
            U = ev["U"]
            if futures:
                if ev["pu"] != last and not U <= last <= ev["u"]:
                    raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            elif U > last + 1:
                raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            last = ev["u"]
            for p, q in ev["b"]:
                qty = float(q)
                if qty:
                    bids[float(p)] = qty
                else:
                    bids.pop(float(p), None)
            for p, q in ev["a"]:
                qty = float(q)
                if qty:
                    asks[float(p)] = qty
                else:
                    asks.pop(float(p), None)
            sorted(bids.items(), reverse=True)[0]
            sorted(asks.items())[0]
        self.last = last

    def apply_only(self, events: list[Any]) -> None:
        futures = self.ds.futures
        bids, asks, last = self.bids, self.asks, self.last
        for U, u, pu, b, a in events:
            if futures:
                if pu != last and not U <= last <= u:
                    raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            elif U > last + 1:
                raise SyncBroken(f"{self.key}: continuity broken at U={U}")
            last = u
            for p, qty in b:
                if qty:
                    bids[p] = qty
                else:
                    bids.pop(p, None)
            for p, qty in a:
                if qty:
                    asks[p] = qty
                else:
                    asks.pop(p, None)
            sorted(bids.items(), reverse=True)[0]
            sorted(asks.items())[0]
        self.last = last

    def bbo(self) -> Bbo:
        return _pair(max(self.bids.items())), _pair(min(self.asks.items()))


PIPELINES: list[type[Pipeline]] = [
    TickbookCore,
    TickbookCoreMsgspec,
    TickbookCoreTyped,
    TickbookReference,
    SortedDictFloat,
    SortedDictDecimal,
    OrjsonSortedDict,
    BmosconOrderBook,
    BmosconNoRead,
    TutorialDict,
]
BY_KEY = {p.key: p for p in PIPELINES}


class FloorMismatch(AssertionError):
    """A recorded message does not take the core's C frame scan (the floor would be wrong)."""


class _Floor:
    """A parse-only floor: the parsing the core does on a message, with no book work.

    ``apply_only`` (both floors): ``OrderBook._parse_only(b, a)`` of the pre-decoded Raw
    spans, the parsing inside the core's apply-only pass."""

    key = ""
    label = ""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        core = TickbookCore(ds)
        core.setup()  # sets the scales; the floors leave the book as it is
        self.book = core.book

    def end_to_end(self) -> None:
        raise NotImplementedError

    def apply_only(self, events: list[Any]) -> None:
        parse = self.book._parse_only
        for ev in events:
            parse(ev.b, ev.a)


class Floor(_Floor):
    """The floor of the core's end to end: ``OrderBook._scan_only(raw)``, the C frame scan of
    ``apply_frame`` alone (envelope, symbol, update IDs, every price and quantity to int64).

    Built only if every message of the dataset takes the C path (``_scan_only`` returns a
    tuple, with the update IDs msgspec reads): checked here, outside the timed region."""

    key = "floor"
    label = "floor: C frame scan only (`_scan_only`)"

    def __init__(self, ds: Dataset) -> None:
        super().__init__(ds)
        self.verify()

    def verify(self) -> None:
        """Every message takes the C path and the scan sees all its levels (and, on the first
        and last message, the update IDs msgspec reads); raise ``FloorMismatch`` otherwise."""
        ds, scan = self.ds, self.book._scan_only
        scans = [scan(raw) for raw in ds.messages]
        missed = [i for i, got in enumerate(scans) if got is None]
        if missed:
            raise FloorMismatch(
                f"{ds.key}: _scan_only returned None (not the exact layout: the core falls back "
                f"to msgspec) for {len(missed):,} of {len(ds.messages):,} messages, first at "
                f"index {missed[0]}: {ds.messages[missed[0]][:200]!r}"
            )
        for i, (got, n) in enumerate(zip(scans, ds.level_counts, strict=True)):
            if got[4] + got[5] != n:
                raise FloorMismatch(f"{ds.key}: _scan_only saw {got[4]} + {got[5]} levels at {i}, not {n}")
        for i in (0, len(ds.messages) - 1):
            got, ev = scans[i], _IDS.decode(ds.messages[i]).data
            if (got[0], got[1]) != (ev.U, ev.u):
                raise FloorMismatch(
                    f"{ds.key}: _scan_only read U, u = {got[:2]} at {i}, msgspec {ev.U}, {ev.u}"
                )

    def end_to_end(self) -> None:
        scan = self.book._scan_only
        for raw in self.ds.messages:
            scan(raw)


class FloorMsgspec(_Floor):
    """The msgspec path's floor: msgspec Raw decode + ``OrderBook._parse_only(b, a)``, no book."""

    key = "floor-msgspec"
    label = "floor: msgspec Raw decode + _parse_only"

    def end_to_end(self) -> None:
        decode = _combined_raw(self.ds).decode
        parse = self.book._parse_only
        for raw in self.ds.messages:
            ev = decode(raw).data
            parse(ev.b, ev.a)


#: the floors, by key: ``floor`` runs end to end and apply only, ``floor-msgspec`` end to end
FLOORS: dict[str, type[_Floor]] = {Floor.key: Floor, FloorMsgspec.key: FloorMsgspec}


# ------------------------------------------------------------------------------ memory


def _traced(build: Callable[[], Any]) -> tuple[Any, int]:
    """Build an object and return it with the bytes Python allocated for it (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        obj = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return obj, after - before


def synthetic_levels(per_side: int, seed: int = 7) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A book of ``per_side`` levels per side, spot BTCUSDT-like text (for the memory table)."""
    import random

    rng = random.Random(seed)
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []
    price = 6_180_000
    for _ in range(per_side):
        bids.append((f"{price // 100}.{price % 100:02d}000000", f"0.{rng.randint(1, 99_999):05d}000"))
        price -= rng.randint(1, 7)
    price = 6_180_001
    for _ in range(per_side):
        asks.append((f"{price // 100}.{price % 100:02d}000000", f"0.{rng.randint(1, 99_999):05d}000"))
        price += rng.randint(1, 7)
    return bids, asks


#: The memory table's row of the core as built by default (``layout="auto"``): the target row.
CORE_MEMORY_LABEL = "tickbook core, `memory_bytes()`"


def _books_from(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], market: str
) -> list[tuple[str, Any]]:
    """(label, bytes) per book holding exactly these levels."""
    rows: list[tuple[str, Any]] = []
    blob_b = json.dumps(bids).encode()
    blob_a = json.dumps(asks).encode()
    if CoreBook is not None:
        core = CoreBook("BTCUSDT", market)
        core.apply_snapshot(1, blob_b, blob_a)
        rows.append((CORE_MEMORY_LABEL, core.memory_bytes()))
        lean = CoreBook("BTCUSDT", market, layout="blocks")
        lean.apply_snapshot(1, blob_b, blob_a)
        rows.append(('tickbook core, `layout="blocks"`, `memory_bytes()`', lean.memory_bytes()))
    ref = RefBook("BTCUSDT", market)
    ref.apply_snapshot(1, blob_b, blob_a)
    rows.append(("tickbook reference, `memory_bytes()` (getsizeof estimate)", ref.memory_bytes()))
    _, traced = _traced(lambda: _rebuild_ref(blob_b, blob_a, market))
    rows.append(("tickbook reference, tracemalloc", traced))
    for label, conv in (
        ("SortedDict[float] per side, tracemalloc", float),
        ("SortedDict[Decimal], tracemalloc", Decimal),
    ):
        _, traced = _traced(lambda conv=conv: _sorted_dicts(bids, asks, conv))
        rows.append((label, traced))
    _, traced = _traced(
        lambda: ({float(p): float(q) for p, q in bids}, {float(p): float(q) for p, q in asks})
    )
    rows.append(("dict[float, float] per side (tutorial), tracemalloc", traced))
    if order_book is not None:
        _, traced = _traced(lambda: _bmoscon(bids, asks))
        rows.append(("bmoscon order-book, tracemalloc (its Python objects)", traced))
    return rows


def _bmoscon(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Any:
    book = order_book.OrderBook()
    for side, levels in ((book.bids, bids), (book.asks, asks)):
        for p, q in levels:
            side[float(p)] = float(q)
    book.bids.index(0)  # sorted once, as after a read: the key cache is part of its memory
    book.asks.index(0)
    return book


def _rebuild_ref(blob_b: bytes, blob_a: bytes, market: str) -> Any:
    ref = RefBook("BTCUSDT", market)
    ref.apply_snapshot(1, blob_b, blob_a)
    return ref


def _sorted_dicts(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], conv: Callable[[str], Any]
) -> Any:
    return SortedDict({conv(p): conv(q) for p, q in bids}), SortedDict({conv(p): conv(q) for p, q in asks})


def _replayed(ds: Dataset) -> tuple[Any, Any]:
    """The core and the reference book after the whole replay (their real state, not rebuilt)."""
    books = []
    for cls in (TickbookCore, TickbookReference):
        if not cls.available():
            books.append(None)
            continue
        p = cls(ds)
        p.setup()
        p.end_to_end()
        p.check()
        books.append(p.book)
    return books[0], books[1]


def memory_table(datasets: list[Dataset], per_side: int = 5_000) -> list[dict[str, Any]]:
    """Rows: case, book, levels, bytes, bytes per level, and whether the row is a target row.

    Per dataset, the books after the whole replay: the core's own ``memory_bytes()`` of the
    replayed book (its real state after all the churn), then every book built fresh with the
    same final levels. Then a synthetic book of ``per_side`` levels per side, built fresh."""
    rows: list[dict[str, Any]] = []

    def add(case: str, label: str, n: int, size: int, target: bool = False) -> None:
        rows.append(
            {"case": case, "book": label, "levels": n, "bytes": size, "per_level": size / n, "target": target}
        )

    for ds in datasets:
        core, ref = _replayed(ds)
        b, a = ref.bids_str(), ref.asks_str()
        n = len(b) + len(a)
        case = f"{ds.key}: book after the replay"
        if core is not None:
            add(case, "tickbook core, `memory_bytes()` of the replayed book", n, core.memory_bytes(), True)
        for label, size in _books_from(b, a, ds.market):
            add(case, label + " (built fresh)", n, size)
    b, a = synthetic_levels(per_side)
    for label, size in _books_from(b, a, "spot"):
        add(f"{per_side:,} levels per side", label, len(b) + len(a), size, label == CORE_MEMORY_LABEL)
    return rows


# ----------------------------------------------------------------------------- helpers


def time_pass(fn: Callable[[], None]) -> float:
    """One pass with the GC off, in seconds (for calibration and the quick CLI)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


def core_build() -> dict[str, Any]:
    """Which build of the core was measured: its file, size, modification time and a hash."""
    import hashlib

    if CoreBook is None:
        return {"built": False}
    path = Path(sys.modules[CoreBook.__module__].__file__ or "")
    stat = path.stat()
    return {
        "built": True,
        "file": path.name,
        "bytes": stat.st_size,
        "mtime": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stat.st_mtime)),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
    }


def versions() -> dict[str, str]:
    """Versions of Python and of every competitor and decoder."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in (
        "tickbook",
        "msgspec",
        "orjson",
        "sortedcontainers",
        "order-book",
        "pytest-benchmark",
        "Cython",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
            if dist == "tickbook":  # run from the source tree (PYTHONPATH=src), not installed
                import tickbook

                out[dist] = f"{tickbook.__version__} (source tree)"
    return out
