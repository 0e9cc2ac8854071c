"""Market sources of the local exchange: a recorded or a generated market and its true books.

A source owns, per symbol, the *truth*: a ``tickbook.OrderBook`` (the Cython core
when built) that is always ``SYNCED`` and has applied every depth event served
so far. Everything the exchange says about the book comes from it: REST depth
snapshots, ``@bookTicker`` and ``@depth5/10/20`` payloads. A client that
follows the documented sync procedure against these payloads can therefore end
with exactly the truth, and a test can check that it does.

``RecordedMarket`` serves real recordings: the depth events are the recorded
payload bytes, untouched (a re-serialised event could differ from what Binance
sent: key order, number formatting), starting at the event that bridges the
recording's snapshot. ``GeneratedMarket`` serves a seeded random walk in the
market's exact wire shape, for runs longer or faster than any recording.

Cost model. The exchange loop calls ``step()`` once per exchange time, maybe
millions of times, so a step does the least it can: recorded events are built
once at load (``step()`` hands out pre-built ``Event`` objects and applies the
depth events to the truth), and derived payloads are built only for streams
someone asked for (``set_derived``) or on demand (``derived``). See docs/sim.md,
"Derived streams".
"""

from __future__ import annotations

import heapq
import math
import os
import random
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol, runtime_checkable

import msgspec

from tickbook import OrderBook
from tickbook._types import Applied, Market
from tickbook.decode import (
    DecodeError,
    combined_raw_decoder,
    decode_snapshot,
    depth_update_decoder,
    futures_depth_update_decoder,
    infer_market,
)
from tickbook.recording import (
    InlineSnapshotAttributor,
    PathLike,
    SnapshotFile,
    attribute_snapshot_file,
    read_records,
)

__all__ = [
    "DERIVED_KINDS",
    "PAYLOADS_DIR",
    "RATE_LIMITS",
    "DerivedStreams",
    "Event",
    "GeneratedMarket",
    "MarketError",
    "MarketSource",
    "RecordedMarket",
]

# Where the recorded exchangeInfo payloads live (a source checkout; absent from an installed wheel,
# in which case every symbol's filters are synthesised, as for symbols the payloads do not list).
PAYLOADS_DIR: Final = Path(__file__).resolve().parents[3] / "data" / "real" / "payloads"

_EXCHANGE_INFO_FILES: Final = {
    Market.SPOT: "binance_spot_exchangeInfo_20211012.json",
    Market.USDM: "binance_usdm_exchangeInfo_20210722.json",
    Market.COINM: "binance_coinm_exchangeInfo_20210722.json",
}

# Current limits (binance-spec §5.1). The recorded exchangeInfo files are from 2021 and carry the
# limits of their day (spot REQUEST_WEIGHT 1200), so rateLimits are always replaced by these.
# Spot RAW_REQUESTS: 300000 per 5 MINUTE is the CHANGELOG value from 2026-04-02 (the reference
# page still says 61000). COIN-M is not in the spec: its recorded values are the best we know.
RATE_LIMITS: Final[dict[Market, tuple[tuple[str, str, int, int], ...]]] = {
    Market.SPOT: (
        ("REQUEST_WEIGHT", "MINUTE", 1, 6000),
        ("ORDERS", "SECOND", 10, 50),
        ("ORDERS", "DAY", 1, 160000),
        ("RAW_REQUESTS", "MINUTE", 5, 300000),
    ),
    Market.USDM: (
        ("REQUEST_WEIGHT", "MINUTE", 1, 2400),
        ("ORDERS", "MINUTE", 1, 1200),
        ("ORDERS", "SECOND", 10, 300),
    ),
    Market.COINM: (
        ("REQUEST_WEIGHT", "MINUTE", 1, 2400),
        ("ORDERS", "MINUTE", 1, 1200),
    ),
}

DERIVED_KINDS: Final = ("bookTicker", "depth5", "depth10", "depth20")

# A stale snapshot (fault injection) is the truth as it was between this many and twice this many
# depth events ago: old enough that the stream has moved past it, recent enough to look plausible.
STALE_LAG: Final = 64


class MarketError(ValueError):
    """A recording that cannot be served (no snapshot, a gap, a crossed book) or a bad request."""


# ------------------------------------------------------------------ interfaces


@dataclass(frozen=True, slots=True)
class Event:
    """One message the exchange publishes, ready to send.

    ``payload`` is the bare event JSON exactly as the exchange sends it (the
    hub adds the combined-stream wrapper when a connection wants it).
    """

    symbol: str  # "BTCUSDT"
    stream: str  # stream name suffix as subscribed, lower-case symbol: "btcusdt@depth"
    kind: str  # "depth" | "bookTicker" | "trade" | "aggTrade" | "depth5" | "depth10" | "depth20" | ...
    payload: bytes  # the bare event JSON exactly as the exchange sends it (no wrapper)
    time_ms: int  # exchange event time, for pacing
    final_id: int  # u of a depth event (0 otherwise): the truth is at this ID after it


class MarketSource(Protocol):
    """What the exchange needs from a market (docs/sim.md, "Interfaces between them")."""

    market: Market
    symbols: list[str]

    def exchange_info(self) -> bytes: ...  # REST exchangeInfo body for these symbols
    def truth(self, symbol: str) -> OrderBook: ...  # the true book, always SYNCED
    def snapshot(self, symbol: str, limit: int) -> bytes: ...  # REST depth body from the truth now
    def next_time_ms(self) -> int | None: ...  # time of the next event, None when finished
    def step(self) -> list[Event]: ...  # the next events (one exchange time), truth advanced


@runtime_checkable
class DerivedStreams(Protocol):
    """Optional extras both sources implement (``isinstance(source, DerivedStreams)``).

    ``set_derived`` names the derived streams that have subscribers; ``step()``
    then emits their events right after each depth event of the symbol.
    ``derived`` builds one derived payload from the truth now, for a caller
    that paces partial depth itself. ``stale_snapshot`` is a REST depth body
    older than the stream (the ``stale-snapshot`` fault).
    """

    def set_derived(self, streams: Iterable[str]) -> None: ...
    def derived(self, symbol: str, kind: str) -> bytes: ...
    def stale_snapshot(self, symbol: str, limit: int) -> bytes: ...


# ------------------------------------------------------------------ formatting


def _fmt(units: int, decimals: int) -> str:
    """Integer units of ``10**-decimals`` as the exchange writes them: exactly ``decimals`` decimals.

    Binance pads to the symbol's precision (spot "61602.01000000", USD-M
    "61659.70"); canonical text ("61602.01") would be a different payload.
    """
    if decimals == 0:
        return str(units)
    text = str(units)
    if len(text) <= decimals:
        text = "0" * (decimals + 1 - len(text)) + text
    return text[:-decimals] + "." + text[-decimals:]


def _decimals(text: str) -> int:
    """Number of decimals written in ``text`` (trailing zeros count)."""
    _, _, frac = text.partition(".")
    return len(frac)


def _units(text: str, decimals: int) -> int:
    """Exact integer units of ``10**-decimals`` of a plain decimal string."""
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    return int(whole or "0") * int(10**decimals) + int((frac + "0" * decimals)[:decimals] or "0")


def _trim(text: str) -> str:
    """Decimal text without trailing zeros (``"0.01000000"`` -> ``"0.01"``), for futures filters."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _pair(symbol: str) -> str:
    """COIN-M pair of a contract: ``BTCUSD_PERP`` -> ``BTCUSD``."""
    return symbol.split("_", 1)[0]


# ------------------------------------------------------------ recorded exchangeInfo


class _SymbolFilters(msgspec.Struct, frozen=True):
    """The parts of a recorded exchangeInfo symbol the sources use."""

    symbol: str
    filters: list[dict[str, Any]] = []
    pricePrecision: int | None = None
    quantityPrecision: int | None = None


@dataclass(frozen=True)
class _RecordedInfo:
    top: dict[str, msgspec.Raw]  # top-level fields in the recorded order
    symbols: dict[str, bytes]  # symbol -> its recorded JSON object, byte for byte
    filters: dict[str, _SymbolFilters]


@cache
def _recorded_info(market: Market, directory: str) -> _RecordedInfo | None:
    """The recorded exchangeInfo of ``market``, or None when the payload file is not there."""
    path = Path(directory) / _EXCHANGE_INFO_FILES[market]
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    top = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    symbols: dict[str, bytes] = {}
    filters: dict[str, _SymbolFilters] = {}
    for item in msgspec.json.decode(top.get("symbols", msgspec.Raw(b"[]")), type=list[msgspec.Raw]):
        info = msgspec.json.decode(item, type=_SymbolFilters)
        symbols[info.symbol] = bytes(item)
        filters[info.symbol] = info
    return _RecordedInfo(top, symbols, filters)


def _filter_value(info: _SymbolFilters, filter_type: str, key: str) -> str | None:
    for f in info.filters:
        if f.get("filterType") == filter_type:
            value = f.get(key)
            return str(value) if value is not None else None
    return None


_QUOTES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL")


def _split_assets(symbol: str) -> tuple[str, str]:
    """Best guess at (base, quote) of a symbol the recorded exchangeInfo does not list."""
    pair = _pair(symbol)
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    return pair, "USDT"


# ------------------------------------------------------------------ per-symbol state


class _Symbol:
    """One symbol's truth and the stream position the payloads are built from."""

    __slots__ = (
        "E",
        "T",
        "U",
        "count",
        "derived",
        "initial",
        "lower",
        "mid",
        "next_U",
        "old",
        "pair",
        "price_dec",
        "price_mul",
        "pu",
        "qty_dec",
        "qty_mul",
        "step",
        "symbol",
        "tick",
        "truth",
        "u",
    )

    def __init__(self, symbol: str, truth: OrderBook, time_ms: int, time_t: int) -> None:
        self.symbol = symbol
        self.lower = symbol.lower()
        self.pair = _pair(symbol)
        self.truth = truth
        # The payload decimals: the number written by the exchange. For a recording the truth's
        # inferred scales are exactly that (trailing zeros count); a generated market may write
        # more decimals than its book scale, hence the multipliers (book ticks -> written units).
        self.price_dec = truth.price_scale or 0
        self.qty_dec = truth.qty_scale or 0
        self.price_mul = 1
        self.qty_mul = 1
        self.tick: str | None = None  # PRICE_FILTER tickSize, when the source knows it
        self.step: str | None = None  # LOT_SIZE stepSize
        lid = truth.last_update_id
        self.E = time_ms  # event time of the last applied depth event (or the snapshot)
        self.T = time_t  # futures transaction time of the same
        self.U = lid
        self.u = lid
        self.pu = lid
        self.next_U: int | None = None  # U of the next depth event, when known (futures snapshots)
        self.count = 0  # depth events applied
        self.derived: tuple[str, ...] = ()  # derived kinds emitted by step() after each depth event
        self.initial = truth.copy()
        self.old = self.initial  # truth STALE_LAG..2*STALE_LAG depth events ago (or the initial)
        self.mid = self.initial

    def applied(self, E: int, T: int, U: int, u: int, pu: int) -> None:
        self.E = E
        self.T = T
        self.U = U
        self.u = u
        self.pu = pu
        self.count += 1
        if self.count % STALE_LAG == 0:
            self.old = self.mid
            self.mid = self.truth.copy()

    def levels(self, levels: list[tuple[int, int]]) -> str:
        """JSON text of ``[["price","qty"],...]`` in the exchange's formatting."""
        pd, qd, pm, qm = self.price_dec, self.qty_dec, self.price_mul, self.qty_mul
        return "[" + ",".join([f'["{_fmt(p * pm, pd)}","{_fmt(q * qm, qd)}"]' for p, q in levels]) + "]"


# ------------------------------------------------------------------ common source code


class _Source:
    """What both sources share: payloads from the truth, snapshots, exchangeInfo, derived streams."""

    market: Market
    symbols: list[str]

    def __init__(
        self,
        market: Market,
        *,
        clock_ms: Callable[[], int] | None = None,
        payloads_dir: PathLike | None = None,
    ) -> None:
        self.market = market
        self.symbols = []
        self._futures = market.is_futures
        self._coinm = market is Market.COINM
        self._by_symbol: dict[str, _Symbol] = {}
        self._by_lower: dict[str, _Symbol] = {}
        self._derived_on = False
        self._clock_ms = clock_ms if clock_ms is not None else _wall_ms
        self._payloads_dir = os.fspath(payloads_dir) if payloads_dir is not None else str(PAYLOADS_DIR)
        self._info_parts: tuple[bytes, bytes] | None = None
        self.now_ms = 0  # exchange time of the last step (or of the start)

    # -------------------------------------------------------------- registry

    def _add(self, st: _Symbol) -> None:
        self._by_symbol[st.symbol] = st
        self._by_lower[st.lower] = st
        self.symbols.append(st.symbol)

    def _get(self, symbol: str) -> _Symbol:
        st = self._by_symbol.get(symbol) or self._by_symbol.get(symbol.upper())
        if st is None:
            raise KeyError(f"unknown symbol {symbol!r}; this market serves {', '.join(self.symbols)}")
        return st

    # ----------------------------------------------------------------- truth

    def truth(self, symbol: str) -> OrderBook:
        """The true book of ``symbol``: SYNCED, at the ``u`` of the last depth event served."""
        return self._get(symbol).truth

    def snapshot(self, symbol: str, limit: int) -> bytes:
        """REST depth body from the truth now: top ``limit`` levels per side, exchange formatting.

        ``lastUpdateId`` is the truth's update ID, with one futures refinement:
        when the next depth event is known, a futures snapshot says
        ``lastUpdateId`` = that event's ``U``. Futures IDs are not contiguous
        (the next ``U`` is above the last ``u``), so the truth's own ID would
        satisfy no later event's ``U <= lastUpdateId <= u``: a client whose
        buffer did not hold the last event would get no bridge. On the real
        exchange a snapshot's ID falls inside the next event's range. Here the
        body is the book at every ID from the last ``u`` to the next ``U - 1``
        (no update in between touches this stream); calling it ``U`` makes the
        next event bridge it (``U == lastUpdateId``, the SUSHIUSDT boundary case
        of the real data), and as quantities are absolute, applying that event
        gives exactly the truth after it.
        """
        st = self._get(symbol)
        truth = st.truth
        lid = truth.last_update_id
        if self._futures and st.next_U is not None and st.next_U > lid:
            lid = st.next_U
        return self._depth_body(st, truth, lid, limit)

    def stale_snapshot(self, symbol: str, limit: int) -> bytes:
        """A REST depth body older than the stream: the truth ``STALE_LAG`` to ``2*STALE_LAG``
        depth events ago (the initial book until then). Once any depth event has been served its
        ``lastUpdateId`` is below the stream, so a client that checks finds it stale."""
        st = self._get(symbol)
        return self._depth_body(st, st.old, st.old.last_update_id, limit)

    def _depth_body(self, st: _Symbol, book: OrderBook, lid: int, limit: int) -> bytes:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        bids = st.levels(book.bids_ticks(limit))
        asks = st.levels(book.asks_ticks(limit))
        if self._futures:
            return (
                f'{{"lastUpdateId":{lid},"E":{max(st.E, self.now_ms)},"T":{st.T},'
                f'"bids":{bids},"asks":{asks}}}'
            ).encode()
        return f'{{"lastUpdateId":{lid},"bids":{bids},"asks":{asks}}}'.encode()

    # ------------------------------------------------------------ derived streams

    def set_derived(self, streams: Iterable[str]) -> None:
        """Say which derived streams have subscribers: ``step()`` emits exactly those.

        Names as subscribed: ``btcusdt@bookTicker``, ``btcusdt@depth20``,
        ``btcusdt@depth5@100ms`` (a speed suffix is accepted and ignored: the
        payload is emitted after every depth event; a hub that wants the
        100 ms / 1000 ms cadence can call ``derived`` on its own timer instead).
        Names of other streams, or of symbols not served, are ignored. Each
        call replaces the previous set.
        """
        wanted: dict[str, list[str]] = {}
        for name in streams:
            lower, _, channel = name.partition("@")
            st = self._by_lower.get(lower.lower())
            if st is None:
                continue
            kind = channel.split("@", 1)[0]
            if kind in DERIVED_KINDS and kind not in wanted.setdefault(st.symbol, []):
                wanted[st.symbol].append(kind)
        for st in self._by_symbol.values():
            kinds = wanted.get(st.symbol, [])
            st.derived = tuple(k for k in DERIVED_KINDS if k in kinds)
        self._derived_on = any(st.derived for st in self._by_symbol.values())

    def derived(self, symbol: str, kind: str) -> bytes:
        """The ``kind`` payload (``bookTicker``, ``depth5``, ``depth10``, ``depth20``) from the truth now."""
        st = self._get(symbol)
        if kind == "bookTicker":
            return self._book_ticker(st)
        if kind.startswith("depth") and kind[5:].isdigit() and int(kind[5:]) > 0:
            return self._partial_depth(st, int(kind[5:]))
        raise ValueError(f"unknown derived stream kind {kind!r}; expected one of {', '.join(DERIVED_KINDS)}")

    def _emit_derived(self, st: _Symbol, flags: int, out: list[Event]) -> None:
        """Append the subscribed derived events of ``st`` after one of its depth events."""
        for kind in st.derived:
            if kind == "bookTicker":
                if flags & Applied.BBO_CHANGED:
                    out.append(
                        Event(st.symbol, st.lower + "@bookTicker", kind, self._book_ticker(st), st.E, 0)
                    )
            else:
                payload = self._partial_depth(st, int(kind[5:]))
                out.append(Event(st.symbol, st.lower + "@" + kind, kind, payload, st.E, 0))

    def _book_ticker(self, st: _Symbol) -> bytes:
        """``@bookTicker`` from the truth, in the key order the exchange sends (real recordings).

        Spot ``{u,s,b,B,a,A}``; USD-M ``{e,u,s,b,B,a,A,T,E}``; COIN-M
        ``{u,e,s,ps,b,B,a,A,T,E}`` (an empty side is written as zeros).
        """
        truth = st.truth
        bid = truth.best_bid_ticks() or (0, 0)
        ask = truth.best_ask_ticks() or (0, 0)
        pd, qd, pm, qm = st.price_dec, st.qty_dec, st.price_mul, st.qty_mul
        b, bq = _fmt(bid[0] * pm, pd), _fmt(bid[1] * qm, qd)
        a, aq = _fmt(ask[0] * pm, pd), _fmt(ask[1] * qm, qd)
        u = truth.last_update_id
        if not self._futures:
            return f'{{"u":{u},"s":"{st.symbol}","b":"{b}","B":"{bq}","a":"{a}","A":"{aq}"}}'.encode()
        if self._coinm:
            return (
                f'{{"u":{u},"e":"bookTicker","s":"{st.symbol}","ps":"{st.pair}","b":"{b}","B":"{bq}",'
                f'"a":"{a}","A":"{aq}","T":{st.T},"E":{st.E}}}'
            ).encode()
        return (
            f'{{"e":"bookTicker","u":{u},"s":"{st.symbol}","b":"{b}","B":"{bq}","a":"{a}","A":"{aq}",'
            f'"T":{st.T},"E":{st.E}}}'
        ).encode()

    def _partial_depth(self, st: _Symbol, n: int) -> bytes:
        """``@depthN`` from the truth: spot ``{lastUpdateId,bids,asks}``; futures the diff shape
        with the IDs of the last depth event (``U``, ``u``, ``pu``), as the exchange sends it."""
        truth = st.truth
        bids = st.levels(truth.bids_ticks(n))
        asks = st.levels(truth.asks_ticks(n))
        if not self._futures:
            return f'{{"lastUpdateId":{truth.last_update_id},"bids":{bids},"asks":{asks}}}'.encode()
        ps = f',"ps":"{st.pair}"' if self._coinm else ""
        return (
            f'{{"e":"depthUpdate","E":{st.E},"T":{st.T},"s":"{st.symbol}"{ps},"U":{st.U},"u":{st.u},'
            f'"pu":{st.pu},"b":{bids},"a":{asks}}}'
        ).encode()

    # -------------------------------------------------------------- exchangeInfo

    def exchange_info(self) -> bytes:
        """REST exchangeInfo body for the served symbols.

        Symbols present in the recorded payloads (``data/real/payloads``,
        spot 2021-10-12, USD-M and COIN-M 2021-07-22) keep their recorded
        object byte for byte, real filter values included. Symbols absent
        there get a synthesised object whose PRICE_FILTER ``tickSize`` and
        LOT_SIZE ``stepSize`` come from the data (``_synthetic_filters``);
        nothing else in it is real. ``serverTime`` is the wall clock now;
        ``rateLimits`` are today's (``RATE_LIMITS``, binance-spec §5), not the
        recorded ones. Other top-level fields (``timezone``, ``futuresType``,
        ``assets``, ``exchangeFilters``) are kept as recorded.
        """
        if self._info_parts is None:
            self._info_parts = self._build_info()
        head, tail = self._info_parts
        return head + str(self._clock_ms()).encode() + tail

    def _build_info(self) -> tuple[bytes, bytes]:
        recorded = _recorded_info(self.market, self._payloads_dir)
        limits = ",".join(
            f'{{"rateLimitType":"{t}","interval":"{i}","intervalNum":{n},"limit":{lim}}}'
            for t, i, n, lim in RATE_LIMITS[self.market]
        )
        symbols = []
        for symbol in self.symbols:
            if recorded is not None and symbol in recorded.symbols:
                symbols.append(recorded.symbols[symbol])
            else:
                symbols.append(self._synthetic_symbol(self._by_symbol[symbol]))
        symbols_json = b"[" + b",".join(symbols) + b"]"
        if recorded is not None:
            keys = list(recorded.top)
        else:
            keys = ["timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"]
        for i, key in enumerate(("timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols")):
            if key not in keys:
                keys.insert(min(i, len(keys)), key)
        head: list[bytes] = []
        tail: list[bytes] = []
        part = head
        for key in keys:
            if key == "serverTime":
                part.append(b'"serverTime":')
                part = tail
                continue
            if key == "rateLimits":
                value = f"[{limits}]".encode()
            elif key == "symbols":
                value = symbols_json
            elif recorded is not None and key in recorded.top:
                value = bytes(recorded.top[key])
            elif key == "timezone":
                value = b'"UTC"'
            else:
                value = b"[]"
            part.append(f'"{key}":'.encode() + value)
        # head ends with '"serverTime":' and is joined to the fields before it with commas.
        head_bytes = b"{" + b",".join(head)
        tail_bytes = (b"," + b",".join(tail) if tail else b"") + b"}"
        return head_bytes, tail_bytes

    def _synthetic_filters(self, st: _Symbol) -> tuple[str, str]:
        """(tickSize, stepSize) for a symbol the recorded exchangeInfo does not list.

        A source that knows them (a generated market) says so in ``st.tick`` /
        ``st.step``. Otherwise they come from the recording: the greatest
        common divisor of the prices (quantities) of the initial snapshot when
        it has at least 100 levels (every observed price is then on the grid,
        and a real tick is coarser than the written decimals, BTCUSDT 0.01
        against 8 written), else one unit of the last written decimal.
        """
        if st.tick is not None and st.step is not None:
            return st.tick, st.step
        book = st.initial
        levels = book.bids_ticks() + book.asks_ticks()
        price_g = qty_g = 1
        if len(levels) >= 100:
            price_g = qty_g = 0
            for p, q in levels:
                price_g = math.gcd(price_g, p)
                qty_g = math.gcd(qty_g, q)
        pdec = st.truth.price_scale or 0
        qdec = st.truth.qty_scale or 0
        return _fmt(max(price_g, 1), pdec), _fmt(max(qty_g, 1), qdec)

    def _synthetic_symbol(self, st: _Symbol) -> bytes:
        """A plausible exchangeInfo symbol object; only the tick and step sizes carry information."""
        tick, step = self._synthetic_filters(st)
        base, quote = _split_assets(st.symbol)
        if not self._futures:
            tick8 = _fmt(_units(tick, 8), 8)
            step8 = _fmt(_units(step, 8), 8)
            obj: dict[str, Any] = {
                "symbol": st.symbol,
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": tick8,
                        "maxPrice": "1000000.00000000",
                        "tickSize": tick8,
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": step8,
                        "maxQty": "9000000.00000000",
                        "stepSize": step8,
                    },
                ],
                "permissions": ["SPOT"],
            }
        else:
            tick_t, step_t = _trim(tick), _trim(step)
            obj = {
                "symbol": st.symbol,
                "pair": st.pair,
                "contractType": "PERPETUAL",
                "status" if not self._coinm else "contractStatus": "TRADING",
                "baseAsset": base,
                "quoteAsset": quote,
                "marginAsset": base if self._coinm else quote,
                "pricePrecision": st.price_dec,
                "quantityPrecision": st.qty_dec,
                "filters": [
                    {
                        "minPrice": tick_t,
                        "maxPrice": "1000000",
                        "filterType": "PRICE_FILTER",
                        "tickSize": tick_t,
                    },
                    {"stepSize": step_t, "filterType": "LOT_SIZE", "maxQty": "1000000", "minQty": step_t},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
        return msgspec.json.encode(obj)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------ recorded market


class _EventProbe(msgspec.Struct, frozen=True, gc=False):
    """Time and symbol of any recorded event payload."""

    E: int | None = None
    s: str | None = None
    e: str | None = None


class _SnapshotTimes(msgspec.Struct, frozen=True, gc=False):
    E: int | None = None
    T: int | None = None


_event_probe: Final = msgspec.json.Decoder(_EventProbe)
_snapshot_times: Final = msgspec.json.Decoder(_SnapshotTimes)

SnapshotArg = PathLike | tuple[str | None, PathLike] | SnapshotFile


def _stream_channel(stream: str) -> tuple[str, str]:
    """``"btcusdt@depth@100ms"`` -> (``"btcusdt"``, kind) with kind ``depth``, ``partial``,
    ``bookTicker`` or the channel's name (``trade``, ``aggTrade``, ``kline``, ``markPrice``...)."""
    lower, _, channel = stream.partition("@")
    if channel == "depth" or channel.startswith("depth@"):
        return lower, "depth"
    base = channel.split("@", 1)[0]
    if base.startswith("depth") and base[5:].isdigit():
        return lower, "partial"
    if base == "bookTicker":
        return lower, "bookTicker"
    return lower, base.split("_", 1)[0]


class RecordedMarket(_Source):
    """A recording served as a market: real depth events byte for byte, the truth advanced by each.

    Build it with ``from_files``. What is served, per symbol:

    * ``depth`` events: the recorded ``data`` payloads, sliced out of the
      combined message without re-serialising, from the event that bridges
      the recording's snapshot on (the ones the snapshot already covers are
      not served). Stream name ``<sym>@depth`` whatever speed was recorded.
    * recorded trades, aggTrades and other channels (klines, markPrice) as
      recorded, from the symbol's first served depth event on;
    * ``bookTicker`` and ``depth5/10/20``: derived from the truth (the
      recorded ones are not served: a recorded ticker can disagree with the
      truth at the moment it is served, a derived one cannot).

    Events are ordered by exchange time ``E`` (stable: equal times keep the
    recorded order) and grouped by it: one ``step()`` returns every event of
    one millisecond.
    """

    def __init__(self, market: Market, **options: Any) -> None:
        super().__init__(market, **options)
        self._events: list[Event] = []
        self._applies: list[tuple[_Symbol, Any] | None] = []
        self._starts: list[int] = [0]
        self._group = 0
        self._next_u_lists: dict[str, list[int]] = {}
        self.skipped_stale: dict[str, int] = {}  # duplicate/stale depth events after the bridge, not served
        self.sources: list[str] = []
        # Speed suffix of each symbol's recorded diff-depth stream ("@100ms", "@0ms", "" ...): the
        # exchange merges these events for the slower stream names (tickbook.sim.speeds).
        self.depth_speeds: dict[str, str] = {}

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_files(
        cls,
        paths: PathLike | Iterable[PathLike],
        market: Market | str | None = None,
        snapshots: Iterable[SnapshotArg] = (),
        **options: Any,
    ) -> RecordedMarket:
        """Load one recording (several files in order are one recording) with one or more symbols.

        ``paths``: timestamped-lines files (snapshots inline), plain JSONL,
        cryptofeed raw files; gzip allowed (``tickbook.recording``).
        ``snapshots``: separate REST snapshot files, as paths, ``(symbol,
        path)`` pairs or ``SnapshotFile``; attributed by the rules of
        ``tickbook.recording``. ``market`` is inferred from the first depth
        event when None. ``options``: ``clock_ms`` (wall clock for
        ``serverTime``), ``payloads_dir`` (recorded exchangeInfo files).

        Each symbol's truth starts from its snapshot (several inline
        snapshots: the first that the events bridge) and the whole recording
        is checked at load on a scratch copy: a symbol without a usable
        snapshot, a gap or a crossed book raise ``MarketError`` here, never
        in the middle of a run.
        """
        path_list = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        files = [_snapshot_file(s) for s in snapshots]
        self = cls(Market.parse(market) if market is not None else Market.SPOT, **options)
        self.sources = [os.fspath(p) for p in path_list]
        self._load(path_list, files, market is not None)
        return self

    def _load(self, paths: list[PathLike], files: list[SnapshotFile], market_given: bool) -> None:
        market: Market | None = self.market if market_given else None
        depth: dict[str, list[tuple[int, Any, bytes]]] = {}  # symbol -> (seq, decoded event, payload)
        others: list[tuple[int, int, str, str, str, bytes]] = []  # (E, seq, symbol, stream, kind, payload)
        inline: dict[str, list[tuple[Any, int | None, Any]]] = {}  # symbol -> (snapshot, limit, times)
        attributor = InlineSnapshotAttributor()
        unplaced: list[tuple[int, object]] = []
        order: list[str] = []  # depth symbols by first appearance
        decoder: Any = None
        seq = 0
        for record in read_records(paths):
            seq += 1
            data = record.data
            where = f"{record.source}:{record.line}"
            if data.startswith(b'{"stream":'):
                try:
                    wrapped = combined_raw_decoder.decode(data)
                except msgspec.DecodeError as exc:
                    raise MarketError(f"{where}: malformed message ({exc})") from None
                stream_name: str = wrapped.stream
                lower, kind = _stream_channel(stream_name)
                payload = bytes(wrapped.data)
                if kind == "depth":
                    self.depth_speeds.setdefault(lower.upper(), stream_name[len(lower) + len("@depth") :])
            elif data.startswith(b'{"e":"depthUpdate"'):  # a bare event (a /ws/ raw-stream recording)
                payload = data
                kind = "depth"
                lower = stream_name = ""
            elif data.startswith(b'{"lastUpdateId"'):  # a REST snapshot body, inline
                try:
                    snap = decode_snapshot(data, None)
                except DecodeError as exc:
                    raise MarketError(f"{where}: {exc}") from None
                target = record.symbol or attributor.attribute(snap.lastUpdateId)
                item = (snap, record.limit, _snapshot_times.decode(data))
                if target is None:
                    unplaced.append((snap.lastUpdateId, item))
                else:
                    inline.setdefault(target, []).append(item)
                continue
            else:
                if data.startswith(b'{"e":"trade"') or data.startswith(b'{"e":"aggTrade"'):
                    payload = data
                    probe = _event_probe.decode(payload)
                    if probe.E is not None and probe.s is not None and probe.e is not None:
                        others.append(
                            (probe.E, seq, probe.s, f"{probe.s.lower()}@{probe.e}", probe.e, payload)
                        )
                continue  # subscription replies, unknown lines: nothing to serve
            if kind == "depth":
                if decoder is None:
                    if market is None:
                        try:
                            market = infer_market(payload)
                        except DecodeError as exc:
                            raise MarketError(f"{where}: {exc}") from None
                        self._set_market(market)
                    decoder = futures_depth_update_decoder if market.is_futures else depth_update_decoder
                try:
                    ev = decoder.decode(payload)
                except msgspec.DecodeError as exc:
                    raise MarketError(f"{where}: bad {self.market.value} depth event ({exc})") from None
                symbol = ev.s
                events = depth.get(symbol)
                if events is None:
                    events = depth[symbol] = []
                    order.append(symbol)
                    if unplaced:  # snapshots seen before any depth event: the nearest one is this symbol's
                        i = InlineSnapshotAttributor.claim(unplaced, ev.u)
                        claimed: Any = unplaced.pop(i)[1]
                        inline.setdefault(symbol, []).insert(0, claimed)
                attributor.saw_depth(symbol, ev.u)
                events.append((seq, ev, payload))
            elif kind in ("partial", "bookTicker"):
                continue  # derived from the truth instead
            else:
                probe = _event_probe.decode(payload)
                if probe.E is None:
                    continue
                symbol = probe.s or lower.upper()
                others.append((probe.E, seq, symbol, stream_name, kind, payload))
        if not depth:
            raise MarketError(f"no depth events in {', '.join(self.sources) or 'the recording'}")
        items: list[tuple[int, int, Event, tuple[_Symbol, Any] | None]] = []
        first_time: dict[str, int] = {}
        for symbol in order:
            candidates = list(inline.get(symbol, []))
            if files:
                which = attribute_snapshot_file(symbol, files, first_symbol=symbol == order[0])
                if which is not None:
                    f = files.pop(which)
                    try:
                        snap = decode_snapshot(f.data, None)
                    except DecodeError as exc:
                        raise MarketError(f"{f.path}: {exc}") from None
                    candidates.append((snap, None, _snapshot_times.decode(f.data)))
            st, served, stale = self._sync(symbol, depth[symbol], candidates)
            self._add(st)
            self.skipped_stale[symbol] = stale
            us: list[int] = []
            for seq_, ev, payload in served:
                us.append(ev.U)
                stream = st.lower + "@depth"
                items.append((ev.E, seq_, Event(symbol, stream, "depth", payload, ev.E, ev.u), (st, ev)))
            self._next_u_lists[symbol] = us
            st.next_U = us[0]
            first_time[symbol] = served[0][1].E
        for E, seq_, symbol, stream, kind, payload in others:
            start = first_time.get(symbol)
            if start is not None and E >= start:
                items.append((E, seq_, Event(symbol, stream, kind, payload, E, 0), None))
        items.sort(key=lambda it: (it[0], it[1]))
        timeline = self._events
        applies = self._applies
        starts = self._starts
        last = -1
        for E, _, event, apply in items:
            if timeline and E != last:
                starts.append(len(timeline))
            last = E
            timeline.append(event)
            applies.append(apply)
        starts.append(len(timeline))
        self.now_ms = items[0][0] if items else 0

    def _set_market(self, market: Market) -> None:
        self.market = market
        self._futures = market.is_futures
        self._coinm = market is Market.COINM

    def _sync(
        self, symbol: str, events: list[tuple[int, Any, bytes]], candidates: list[tuple[Any, int | None, Any]]
    ) -> tuple[_Symbol, list[tuple[int, Any, bytes]], int]:
        """The truth of ``symbol`` from the first snapshot its events bridge, and the events to serve."""
        if not candidates:
            raise MarketError(
                f"{symbol}: no depth snapshot in the recording (inline) or given (snapshots=...); "
                "a recording can only be served from a snapshot"
            )
        problems = []
        for snap, limit, times in candidates:
            lid = snap.lastUpdateId
            book = OrderBook(symbol, self.market)
            try:
                book.apply_snapshot(lid, snap.bids, snap.asks, limit=limit)
            except ValueError as exc:
                problems.append(f"snapshot {lid}: {exc}")
                continue
            scratch = book.copy()
            served: list[tuple[int, Any, bytes]] = []
            stale = 0
            problem = None
            for n, item in enumerate(events, 1):
                try:
                    flags = scratch.apply_event(item[1])
                except ValueError as exc:
                    problem = f"depth message {n} (u={item[1].u}): {exc}"
                    break
                if flags & Applied.APPLIED:
                    served.append(item)
                elif flags & Applied.STALE:
                    if served:
                        stale += 1
                else:
                    what = "crossed the book" if flags & Applied.CROSSED else "broke continuity"
                    problem = (
                        f"depth message {n} (U={item[1].U}, u={item[1].u}) {what}: "
                        f"{scratch.reason.name} {scratch.reason_detail}"
                    )
                    break
            if problem is None and not served:
                problem = "no depth event after it (the snapshot is newer than the whole recording)"
            if problem is not None:
                problems.append(f"snapshot {lid}: {problem}")
                continue
            first = served[0][1]
            E = times.E if times.E is not None else first.E
            T = times.T if times.T is not None else getattr(first, "T", E)
            return _Symbol(symbol, book, E, T), served, stale
        raise MarketError(f"{symbol}: the recording cannot be synced: " + "; ".join(problems))

    # ---------------------------------------------------------------- running

    def next_time_ms(self) -> int | None:
        """Exchange time of the next step, None when the recording is finished."""
        g = self._group
        if g + 1 >= len(self._starts):
            return None
        return self._events[self._starts[g]].time_ms

    def step(self) -> list[Event]:
        """The events of the next exchange millisecond (empty when finished), truth advanced.

        Depth events are applied to their truth in order; any derived events
        asked for with ``set_derived`` follow the depth event they describe.
        """
        g = self._group
        starts = self._starts
        if g + 1 >= len(starts):
            return []
        self._group = g + 1
        s, e = starts[g], starts[g + 1]
        events = self._events[s:e]
        applies = self._applies
        derived_on = self._derived_on
        out: list[Event] = [] if derived_on else events
        nexts = self._next_u_lists
        for j in range(s, e):
            apply = applies[j]
            if apply is not None:
                st, ev = apply
                flags = st.truth.apply_event(ev)
                if not flags & Applied.APPLIED:  # checked at load: only a bug gets here
                    raise MarketError(
                        f"{st.symbol}: the truth did not apply u={ev.u}: {st.truth.reason.name} "
                        f"{st.truth.reason_detail}"
                    )
                st.applied(ev.E, getattr(ev, "T", ev.E), ev.U, ev.u, getattr(ev, "pu", st.u))
                us = nexts[st.symbol]
                st.next_U = us[st.count] if st.count < len(us) else None
                if derived_on:
                    out.append(events[j - s])
                    if st.derived:
                        self._emit_derived(st, flags, out)
            elif derived_on:
                out.append(events[j - s])
        self.now_ms = events[0].time_ms
        return out

    @property
    def remaining(self) -> int:
        """Steps (exchange milliseconds) left."""
        return len(self._starts) - 1 - self._group


def _snapshot_file(arg: SnapshotArg) -> SnapshotFile:
    if isinstance(arg, SnapshotFile):
        return arg
    if isinstance(arg, tuple):
        symbol, path = arg
        return SnapshotFile.load(path, symbol)
    return SnapshotFile.load(arg)


# ------------------------------------------------------------------ generated market


_DEFAULT_FILTERS: Final = {  # (tickSize, stepSize) when neither the caller nor the payloads say
    Market.SPOT: ("0.01", "0.00001"),
    Market.USDM: ("0.01", "0.001"),
    Market.COINM: ("0.1", "1"),
}


def _start_price(symbol: str) -> Decimal:
    """A plausible, deterministic start price per symbol."""
    base = _split_assets(symbol)[0]
    known = {"BTC": "60000", "ETH": "3000", "BNB": "500", "SOL": "150"}
    if base in known:
        return Decimal(known[base])
    return Decimal(zlib.crc32(symbol.encode()) % 990 + 10)


class _Gen:
    """Generator state of one symbol.

    The generator walks its own ``model`` book, not the truth: events can be
    generated ahead of time (``GeneratedMarket.pregenerate``) and the truth
    applies each one only when ``step()`` serves it, exactly as a recorded
    event. ``pending`` holds the ``U`` of generated events not served yet.
    """

    __slots__ = (
        "agg_id",
        "count",
        "mean_qty",
        "model",
        "next_U",
        "pending",
        "pmul",
        "qmul",
        "rng",
        "st",
        "trade_id",
        "u",
    )

    def __init__(
        self, st: _Symbol, rng: random.Random, pmul: int, qmul: int, mean_qty: int, next_U: int
    ) -> None:
        self.st = st
        self.model = st.truth.copy()
        self.rng = rng
        self.pmul = pmul  # written price units per tick
        self.qmul = qmul  # written quantity units per step
        self.mean_qty = mean_qty  # median level size, in steps
        self.u = st.truth.last_update_id  # u of the last generated event
        self.next_U = next_U  # U of the next generated event
        self.count = 0  # events generated
        self.pending: deque[int] = deque()
        self.trade_id = rng.randrange(10**8, 10**9)
        self.agg_id = rng.randrange(10**7, 10**8)

    def qty(self) -> int:
        return max(1, int(self.mean_qty * self.rng.lognormvariate(0.0, 1.1)))


class _Pending(NamedTuple):
    """One generated depth event waiting to be served: what the truth must apply."""

    gen: _Gen
    E: int
    T: int
    U: int
    u: int
    pu: int
    bids: str
    asks: str


class GeneratedMarket(_Source):
    """A seeded random-walk market in the exact wire shape of ``market``: deterministic per seed.

    Per symbol it starts from a book of ``levels`` (default 1,000) price
    levels per side, about 3 in 4 ticks occupied near the touch, and every
    ``interval_ms`` (spot 100, the ``@100ms`` cadence; futures 50 on average,
    jittered like ``@0ms``) emits one depth event:

    * 5-50 level updates (rarely up to 300), most within a few dozen ticks of
      the touch, 15 % anywhere up to 3,000 ticks away; a third of the updates
      of existing levels delete them, and one in eight updates of an absent
      level is a delete of that absent level (normal on Binance);
    * often a trade first (``trade`` and ``aggTrade`` events) that takes part
      or all of the best level, so the price walks;
    * never crossed: every update is placed around a split price chosen inside
      the current spread (bids at or below it, asks above it);
    * update IDs as the market has them: spot ``U = previous u + 1``; futures
      ``pu = previous u`` and ``U`` mostly jumping ahead (non-contiguous, as in
      the real futures feed), ``E`` and ``T``.

    ``tick_size``/``step_size`` default to the symbol's real filters when the
    recorded exchangeInfo lists it (``_DEFAULT_FILTERS`` otherwise); spot
    payloads are written with 8 decimals, futures with the symbol's
    precision. ``max_events`` ends the market after that many depth events
    (all symbols together); None runs forever. Each symbol has its own random
    stream (seeded from ``seed``, the market and its name), so adding a
    symbol does not change the others.

    Generating costs tens of microseconds per event (Python random numbers);
    a benchmark that must not measure it calls ``pregenerate(n)`` first, and
    ``step()`` then only hands out ready events and applies them to the truth.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        market: Market | str = Market.SPOT,
        seed: int = 0,
        *,
        levels: int = 1000,
        start_ms: int = 1_700_000_000_000,
        interval_ms: int | None = None,
        trades: bool = True,
        trade_probability: float = 0.35,
        max_events: int | None = None,
        tick_size: str | None = None,
        step_size: str | None = None,
        prices: dict[str, str] | None = None,
        clock_ms: Callable[[], int] | None = None,
        payloads_dir: PathLike | None = None,
    ) -> None:
        super().__init__(Market.parse(market), clock_ms=clock_ms, payloads_dir=payloads_dir)
        if not symbols:
            raise ValueError("GeneratedMarket needs at least one symbol")
        if levels < 1:
            raise ValueError(f"levels must be positive, got {levels}")
        self.seed = seed
        self.levels = levels
        self.trades = trades
        self.trade_probability = trade_probability
        self.max_events = max_events
        self.events_generated = 0  # depth events generated (served or pending)
        self._interval = interval_ms if interval_ms is not None else (50 if self._futures else 100)
        if self._interval < 1:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self._gens: list[_Gen] = []
        self._heap: list[tuple[int, int]] = []  # (next time, index into _gens)
        self._queue: deque[tuple[int, list[Event], list[_Pending]]] = deque()  # generated, not served
        self.now_ms = start_ms
        recorded = _recorded_info(self.market, self._payloads_dir)
        for i, symbol in enumerate(dict.fromkeys(s.upper() for s in symbols)):
            info = recorded.filters.get(symbol) if recorded is not None else None
            gen = self._new_symbol(symbol, info, seed, tick_size, step_size, (prices or {}).get(symbol))
            self._gens.append(gen)
            heapq.heappush(self._heap, (start_ms + gen.rng.randrange(self._interval), i))

    def _new_symbol(
        self,
        symbol: str,
        info: _SymbolFilters | None,
        seed: int,
        tick_size: str | None,
        step_size: str | None,
        price: str | None,
    ) -> _Gen:
        tick, step = _DEFAULT_FILTERS[self.market]
        price_prec = qty_prec = None
        if info is not None:
            tick = _trim(_filter_value(info, "PRICE_FILTER", "tickSize") or tick)
            step = _trim(_filter_value(info, "LOT_SIZE", "stepSize") or step)
            price_prec, qty_prec = info.pricePrecision, info.quantityPrecision
        tick = _trim(tick_size) if tick_size is not None else tick
        step = _trim(step_size) if step_size is not None else step
        if self._futures:
            pdec = max(price_prec if price_prec is not None else 0, _decimals(tick))
            qdec = max(qty_prec if qty_prec is not None else 0, _decimals(step))
        else:
            pdec = qdec = 8  # spot writes every price and quantity with 8 decimals
        pmul = _units(tick, pdec)
        qmul = _units(step, qdec)
        if pmul <= 0 or qmul <= 0:
            raise ValueError(f"{symbol}: tick size {tick!r} and step size {step!r} must be positive")
        rng = random.Random(f"tickbook-sim:{seed}:{self.market.value}:{symbol}")
        start = Decimal(price) if price is not None else _start_price(symbol)
        # At least 4 ticks of room per level below the touch, so the bid side fits above zero.
        grid = max(int(start / Decimal(tick)), 4 * self.levels + 100)
        mean_qty = 50 if self._coinm else max(1, int(Decimal(2000) / (start * Decimal(step))))
        sides: list[list[tuple[int, int]]] = [[], []]
        for side, first, direction in ((sides[0], grid, -1), (sides[1], grid + 1, 1)):
            d = 0
            while len(side) < self.levels:
                if d == 0 or rng.random() < 0.75:
                    side.append((first + direction * d, max(1, int(mean_qty * rng.lognormvariate(0.0, 1.1)))))
                d += 1
        lid = rng.randrange(10**9, 10**10) if not self._futures else rng.randrange(10**12, 10**13)

        def text(levels: list[tuple[int, int]]) -> str:
            return (
                "["
                + ",".join(f'["{_fmt(p * pmul, pdec)}","{_fmt(q * qmul, qdec)}"]' for p, q in levels)
                + "]"
            )

        truth = OrderBook(symbol, self.market)
        truth.apply_snapshot(lid, text(sides[0]), text(sides[1]))
        st = _Symbol(symbol, truth, self.now_ms, self.now_ms)
        st.price_dec, st.qty_dec = pdec, qdec  # the truth's inferred scales: written units are ticks
        st.tick, st.step = tick, step
        # The first futures event straddles the snapshot (U <= lastUpdateId <= u), like real data.
        next_U = lid + 1 if not self._futures else lid - rng.randrange(0, 50)
        st.next_U = next_U
        self._add(st)
        return _Gen(st, rng, pmul, qmul, mean_qty, next_U)

    # ---------------------------------------------------------------- running

    def _exhausted(self) -> bool:
        return self.max_events is not None and self.events_generated >= self.max_events

    def next_time_ms(self) -> int | None:
        """Exchange time of the next step, None once ``max_events`` have been served."""
        if self._queue:
            return self._queue[0][0]
        if self._exhausted():
            return None
        return self._heap[0][0]

    def pregenerate(self, steps: int) -> int:
        """Generate up to ``steps`` more steps now, to be served later by ``step()``; returns how many.

        Memory grows with what is kept (about 1 kB per depth event): for
        runs of a few million events, not for endless ones.
        """
        n = 0
        while n < steps and self._generate_step():
            n += 1
        return n

    def step(self) -> list[Event]:
        """The events of the next exchange time (one depth event per symbol due), truth advanced."""
        if not self._queue and not self._generate_step():
            return []
        t, events, pendings = self._queue.popleft()
        derived_on = self._derived_on
        out: list[Event] = [] if derived_on else events
        j = 0
        for p in pendings:
            st = p.gen.st
            flags = st.truth.apply_diff(p.U, p.u, p.bids, p.asks, p.pu if self._futures else None)
            if not flags & Applied.APPLIED:  # the generator's invariants make this impossible
                raise MarketError(
                    f"{st.symbol}: generated event u={p.u} not applied: {st.truth.reason_detail}"
                )
            st.applied(p.E, p.T, p.U, p.u, p.pu)
            pending = p.gen.pending
            pending.popleft()
            st.next_U = pending[0] if pending else p.gen.next_U
            if derived_on:
                while True:  # copy the events up to this depth event, then its derived ones
                    ev = events[j]
                    j += 1
                    out.append(ev)
                    if ev.kind == "depth" and ev.final_id == p.u and ev.symbol == st.symbol:
                        break
                if st.derived:
                    self._emit_derived(st, flags, out)
        if derived_on:
            out.extend(events[j:])
        self.now_ms = t
        return out

    def _generate_step(self) -> bool:
        """Generate the events of the next exchange time into the queue; False when finished."""
        if self._exhausted():
            return False
        heap = self._heap
        t = heap[0][0]
        events: list[Event] = []
        pendings: list[_Pending] = []
        while heap and heap[0][0] == t and not self._exhausted():
            _, i = heapq.heappop(heap)
            gen = self._gens[i]
            pendings.append(self._generate(gen, t, events))
            self.events_generated += 1
            if self._futures:
                nxt = t + max(1, int(gen.rng.expovariate(1.0 / self._interval)))
            else:
                nxt = t + self._interval
            heapq.heappush(heap, (nxt, i))
        self._queue.append((t, events, pendings))
        return True

    def _generate(self, gen: _Gen, t: int, out: list[Event]) -> _Pending:
        """One depth event of ``gen``'s symbol at time ``t`` (trades first), applied to its model."""
        st = gen.st
        rng = gen.rng
        model = gen.model
        pm, qm, pdec, qdec = gen.pmul, gen.qmul, st.price_dec, st.qty_dec
        futures = self._futures
        bb = model.best_bid_ticks()
        ba = model.best_ask_ticks()
        best_bid = bb[0] // pm if bb is not None else None
        best_ask = ba[0] // pm if ba is not None else None
        if best_bid is None and best_ask is None:
            best_bid, best_ask = 4 * self.levels + 100, 4 * self.levels + 101
        elif best_bid is None:
            assert best_ask is not None
            best_bid = max(1, best_ask - 1)
        elif best_ask is None:
            best_ask = best_bid + 1
        T = t - rng.randrange(0, 6) if futures else t
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        if rng.random() < self.trade_probability:
            # A taker order: usually part or all of the best level, now and then a sweep through
            # several levels (that is what moves the price more than a tick).
            buy = rng.random() < 0.5
            sweep = rng.randrange(2, 12) if rng.random() < 0.05 else 1
            taken = model.asks_ticks(sweep) if buy else model.bids_ticks(sweep)
            side = asks if buy else bids
            for k, (price, qty) in enumerate(taken):
                lq = qty // qm
                take = lq
                if k == len(taken) - 1 and rng.random() >= 0.35:
                    take = min(lq, max(1, int(lq * rng.random())))
                side[price // pm] = lq - take
                if self.trades:
                    self._trade(gen, t, T, _fmt(price, pdec), _fmt(take * qm, qdec), not buy, out)
        # Split price X inside the spread: bids go at or below X, asks above it, so never crossed.
        X = best_bid if best_ask - best_bid <= 1 else rng.randrange(best_bid, best_ask)
        n = 5 + int(rng.expovariate(1.0 / 9.0))
        if n > 50:
            n = 50
        if rng.random() < 0.01:
            n = rng.randrange(50, 300)
        qty_at = model.qty_at_ticks
        random_ = rng.random
        for _ in range(n):
            r = random_()
            d = int(rng.expovariate(0.08)) if r < 0.85 else rng.randrange(3000)
            if r < 0.425 or 0.85 <= r < 0.925:  # half of the near and half of the far updates are bids
                g = X - d
                if g < 1:
                    continue
                side = bids
            else:
                g = X + 1 + d
                side = asks
            if qty_at(g * pm):
                side[g] = 0 if random_() < 0.33 else gen.qty()
            else:
                side[g] = gen.qty() if random_() < 0.88 else 0
        self._trim_far(gen, X, bids, asks)
        if not bids and not asks:
            asks[X + 1] = gen.qty()
        b_json = (
            "["
            + ",".join(
                [
                    f'["{_fmt(g * pm, pdec)}","{_fmt(q * qm, qdec)}"]'
                    for g, q in sorted(bids.items(), reverse=True)
                ]
            )
            + "]"
        )
        a_json = (
            "["
            + ",".join([f'["{_fmt(g * pm, pdec)}","{_fmt(q * qm, qdec)}"]' for g, q in sorted(asks.items())])
            + "]"
        )
        U = gen.next_U
        u = max(U, gen.u) + len(bids) + len(asks) - 1 + rng.randrange(0, 8)
        if futures:
            pu = gen.u if gen.count else U - 1 - rng.randrange(0, 40)
            ps = f',"ps":"{st.pair}"' if self._coinm else ""
            payload = (
                f'{{"e":"depthUpdate","E":{t},"T":{T},"s":"{st.symbol}"{ps},"U":{U},"u":{u},"pu":{pu},'
                f'"b":{b_json},"a":{a_json}}}'
            )
            flags = model.apply_diff(U, u, b_json, a_json, pu)
            # Real futures IDs jump ahead between events (1-5 % contiguous).
            gen.next_U = u + 1 if rng.random() < 0.03 else u + 1 + rng.randrange(1, 400)
        else:
            pu = gen.u
            payload = (
                f'{{"e":"depthUpdate","E":{t},"s":"{st.symbol}","U":{U},"u":{u},"b":{b_json},"a":{a_json}}}'
            )
            flags = model.apply_diff(U, u, b_json, a_json)
            gen.next_U = u + 1
        if not flags & Applied.APPLIED:  # the generator's invariants make this impossible
            raise MarketError(f"{st.symbol}: generated event u={u} not applied: {model.reason_detail}")
        gen.u = u
        gen.count += 1
        gen.pending.append(U)
        out.append(Event(st.symbol, st.lower + "@depth", "depth", payload.encode(), t, u))
        return _Pending(gen, t, T, U, u, pu, b_json, a_json)

    def _trim_far(self, gen: _Gen, X: int, bids: dict[int, int], asks: dict[int, int]) -> None:
        """Every 64th event, delete up to 20 levels lying more than 3,000 ticks from the touch.

        As the price walks, levels left far behind would otherwise pile up for
        ever (the random updates reach 3,000 ticks out); the real book sheds
        them the same way, with deletes far out. Listing a side costs tens of
        microseconds, hence only now and then.
        """
        if gen.count % 64 != 63:
            return
        model = gen.model
        limit = self.levels
        pm = gen.pmul
        if model.bid_count > limit:
            for p, _ in reversed(model.bids_ticks()[-20:]):
                if p // pm >= X - 3000:
                    break
                bids[p // pm] = 0
        if model.ask_count > limit:
            for p, _ in reversed(model.asks_ticks()[-20:]):
                if p // pm <= X + 3000:
                    break
                asks[p // pm] = 0

    def _trade(
        self, gen: _Gen, t: int, T: int, price: str, qty: str, maker_buyer: bool, out: list[Event]
    ) -> None:
        """``trade`` and ``aggTrade`` events for one taker order, in the market's shape."""
        st = gen.st
        gen.trade_id += 1
        gen.agg_id += 1
        tid, aid = gen.trade_id, gen.agg_id
        m = "true" if maker_buyer else "false"
        s = st.symbol
        if self._futures:
            trade = (
                f'{{"e":"trade","E":{t},"T":{T},"s":"{s}","t":{tid},"p":"{price}","q":"{qty}",'
                f'"X":"MARKET","m":{m}}}'
            )
            agg = (
                f'{{"e":"aggTrade","E":{t},"a":{aid},"s":"{s}","p":"{price}","q":"{qty}","f":{tid},"l":{tid},'
                f'"T":{T},"m":{m}}}'
            )
        else:
            tt = t - 1
            trade = (
                f'{{"e":"trade","E":{t},"s":"{s}","t":{tid},"p":"{price}","q":"{qty}","T":{tt},'
                f'"m":{m},"M":true}}'
            )
            agg = (
                f'{{"e":"aggTrade","E":{t},"s":"{s}","a":{aid},"p":"{price}","q":"{qty}","f":{tid},"l":{tid},'
                f'"T":{tt},"m":{m},"M":true}}'
            )
        out.append(Event(s, st.lower + "@trade", "trade", trade.encode(), t, 0))
        out.append(Event(s, st.lower + "@aggTrade", "aggTrade", agg.encode(), t, 0))
