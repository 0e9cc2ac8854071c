"""The exchange's other public market streams: typed payloads with exact decimals, and their names.

The book follows diff depth (``tickbook.decode``); everything else a user may subscribe to on
the same connections (trades, aggregate trades, klines, 24 h tickers, book tickers, partial
depth, futures mark price and liquidations) is decoded here into frozen msgspec Structs.

Field names are the exchange's own keys, so a Struct reads like the payload it decodes.
Prices, quantities, volumes and rates arrive as JSON strings and are typed
``decimal.Decimal``: msgspec builds each one from the text, so ``"61737.63000000"`` becomes
``Decimal("61737.63000000")`` with its trailing zeros and no binary rounding. No field is a
float. Keys the exchange adds later are ignored (msgspec skips unknown keys), so a new field
never breaks decoding; a documented key that is missing, or a value of the wrong JSON type,
raises ``msgspec.ValidationError``. Keys that current messages no longer carry (spot trade
buyer/seller order IDs, removed in 2024) or that only some markets send (COIN-M ``ps``) are
optional with a ``None`` default.

Unlike the book's depth Structs, nothing here holds ``msgspec.Raw``: a decoded message owns
its values and stays valid after the receive buffer it came from is reused.

Shapes differ by market, so a decoder is chosen per market and stream name, once per
subscription (``stream_decoder``), never guessed per message. The decoders are module-level
singletons. Structs are ``gc=False``: they hold only ints, strings, bools, Decimals, tuples,
lists of tuples and other such Structs, which can never form a reference cycle.
"""

# The exchange's keys "l" (low, last) and "O" (open time) are field names here on purpose.
# ruff: noqa: E741

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

import msgspec

from tickbook._types import Market

__all__ = [
    "AGG_TRADE",
    "BOOK_TICKER",
    "CHANNELS",
    "DEPTH",
    "DEPTH_N",
    "FORCE_ORDER",
    "KLINE",
    "MARK_PRICE",
    "MINI_TICKER",
    "OTHER",
    "TICKER",
    "TRADE",
    "AggTrade",
    "BookTicker",
    "Combined",
    "DecimalLevel",
    "ForceOrder",
    "FuturesAggTrade",
    "FuturesBookTicker",
    "FuturesMiniTicker",
    "FuturesPartialDepth",
    "FuturesTicker",
    "FuturesTrade",
    "Kline",
    "KlineEvent",
    "LiquidationOrder",
    "MarkPrice",
    "MiniTicker",
    "PartialDepth",
    "Ticker",
    "Trade",
    "stream_channel",
    "stream_decoder",
    "stream_symbol",
    "stream_type",
    "usdm_route",
    "validate_stream_name",
]

DecimalLevel = tuple[Decimal, Decimal]  # (price, quantity) of one book level

# ------------------------------------------------------------------------- trades


class Trade(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@trade``: one trade between a taker and a maker order."""

    e: str  # event type: "trade"
    E: int  # event time, ms since the epoch (µs with timeUnit=MICROSECOND)
    s: str  # symbol, upper case: "BTCUSDT"
    t: int  # trade ID
    p: Decimal  # price
    q: Decimal  # quantity, base asset
    T: int  # trade time, ms
    m: bool  # is the buyer the maker? (true: the taker sold)
    M: bool | None = None  # documented as "ignore"
    b: int | None = None  # buyer order ID: removed from the stream in 2024, None on current messages
    a: int | None = None  # seller order ID: removed likewise


class FuturesTrade(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@trade``, in the shape the recordings show (``X`` after ``q``)."""

    e: str  # event type: "trade"
    E: int  # event time, ms
    T: int  # trade time in the matching engine, ms
    s: str  # symbol: "BTCUSDT" (USD-M), "BTCUSD_PERP" (COIN-M)
    t: int  # trade ID
    p: Decimal  # price
    q: Decimal  # quantity: base asset (USD-M), contracts (COIN-M)
    m: bool  # is the buyer the maker?
    X: str | None = None  # trade type as sent: "MARKET" in every recorded message


class AggTrade(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@aggTrade``: fills of one taker order at one price, aggregated."""

    e: str  # event type: "aggTrade"
    E: int  # event time, ms
    s: str  # symbol
    a: int  # aggregate trade ID
    p: Decimal  # price
    q: Decimal  # quantity, base asset
    f: int  # first trade ID in the aggregate
    l: int  # last trade ID in the aggregate
    T: int  # trade time, ms
    m: bool  # is the buyer the maker?
    M: bool | None = None  # documented as "ignore"


class FuturesAggTrade(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@aggTrade``: no ``M``; USD-M adds ``nq`` (RPI orders excluded)."""

    e: str  # event type: "aggTrade"
    E: int  # event time, ms
    s: str  # symbol
    a: int  # aggregate trade ID
    p: Decimal  # price
    q: Decimal  # quantity of all the market trades (RPI orders included)
    f: int  # first trade ID in the aggregate
    l: int  # last trade ID in the aggregate
    T: int  # trade time, ms
    m: bool  # is the buyer the maker?
    nq: Decimal | None = None  # USD-M: quantity without the trades involving RPI orders


# ------------------------------------------------------------------------- klines


class Kline(msgspec.Struct, frozen=True, gc=False):
    """The ``k`` object of a kline event: one candlestick, still open unless ``x``."""

    t: int  # kline start time, ms
    T: int  # kline close time, ms
    s: str  # symbol
    i: str  # interval: "1m", "1h", "1M" ...
    f: int  # first trade ID (-1 when no trade yet)
    L: int  # last trade ID (-1 when no trade yet)
    o: Decimal  # open price
    c: Decimal  # close (latest) price
    h: Decimal  # high price
    l: Decimal  # low price
    v: Decimal  # volume: base asset (spot, USD-M), contracts (COIN-M)
    n: int  # number of trades
    x: bool  # is this kline closed?
    q: Decimal  # volume: quote asset (spot, USD-M), base asset (COIN-M)
    V: Decimal  # taker buy volume, same unit as v
    Q: Decimal  # taker buy volume, same unit as q
    B: str | None = None  # documented as "ignore"


class KlineEvent(msgspec.Struct, frozen=True, gc=False):
    """``<sym>@kline_<interval>``, the same shape on spot, USD-M and COIN-M."""

    e: str  # event type: "kline"
    E: int  # event time, ms
    s: str  # symbol
    k: Kline  # the candlestick


# ---------------------------------------------------------------------- 24 h tickers


class Ticker(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@ticker``: rolling 24 h statistics, with the best bid and ask."""

    e: str  # event type: "24hrTicker"
    E: int  # event time, ms
    s: str  # symbol
    p: Decimal  # price change
    P: Decimal  # price change, percent
    w: Decimal  # weighted average price
    x: Decimal  # price of the last trade before the 24 h window (first trade F - 1)
    c: Decimal  # last price
    Q: Decimal  # last quantity
    b: Decimal  # best bid price
    B: Decimal  # best bid quantity
    a: Decimal  # best ask price
    A: Decimal  # best ask quantity
    o: Decimal  # open price
    h: Decimal  # high price
    l: Decimal  # low price
    v: Decimal  # total traded base asset volume
    q: Decimal  # total traded quote asset volume
    O: int  # statistics open time, ms
    C: int  # statistics close time, ms
    F: int  # first trade ID (-1 when none)
    L: int  # last trade ID (-1 when none)
    n: int  # number of trades


class FuturesTicker(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@ticker``: no best bid/ask and no ``x``; COIN-M adds ``ps``."""

    e: str  # event type: "24hrTicker"
    E: int  # event time, ms
    s: str  # symbol
    p: Decimal  # price change
    P: Decimal  # price change, percent
    w: Decimal  # weighted average price
    c: Decimal  # last price
    Q: Decimal  # last quantity
    o: Decimal  # open price
    h: Decimal  # high price
    l: Decimal  # low price
    v: Decimal  # total traded volume: base asset (USD-M), contracts (COIN-M)
    q: Decimal  # total traded volume: quote asset (USD-M), base asset (COIN-M)
    O: int  # statistics open time, ms
    C: int  # statistics close time, ms
    F: int  # first trade ID
    L: int  # last trade ID
    n: int  # number of trades
    ps: str | None = None  # pair, COIN-M only: "BTCUSD"


class MiniTicker(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@miniTicker``: rolling 24 h open/high/low/close and volumes."""

    e: str  # event type: "24hrMiniTicker"
    E: int  # event time, ms
    s: str  # symbol
    c: Decimal  # close (last) price
    o: Decimal  # open price
    h: Decimal  # high price
    l: Decimal  # low price
    v: Decimal  # total traded base asset volume
    q: Decimal  # total traded quote asset volume


class FuturesMiniTicker(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@miniTicker``: the spot fields, plus ``ps`` on COIN-M."""

    e: str  # event type: "24hrMiniTicker"
    E: int  # event time, ms
    s: str  # symbol
    c: Decimal  # close (last) price
    o: Decimal  # open price
    h: Decimal  # high price
    l: Decimal  # low price
    v: Decimal  # total traded volume: base asset (USD-M), contracts (COIN-M)
    q: Decimal  # total traded volume: quote asset (USD-M), base asset (COIN-M)
    ps: str | None = None  # pair, COIN-M only


# ---------------------------------------------------------- best bid/ask, partial depth


class BookTicker(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@bookTicker`` with exact decimals. Spot has no ``e`` and no ``E``.

    Not ``tickbook.decode.BookTicker``: that one keeps the text, for the book's checks.
    """

    u: int  # order book update ID this best bid/ask is valid at
    s: str  # symbol
    b: Decimal  # best bid price
    B: Decimal  # best bid quantity
    a: Decimal  # best ask price
    A: Decimal  # best ask quantity


class FuturesBookTicker(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@bookTicker`` (and ``!bookTicker``) with exact decimals."""

    e: str  # event type: "bookTicker"
    u: int  # order book update ID this best bid/ask is valid at
    E: int  # event time, ms
    T: int  # transaction time, ms
    s: str  # symbol
    b: Decimal  # best bid price
    B: Decimal  # best bid quantity
    a: Decimal  # best ask price
    A: Decimal  # best ask quantity
    ps: str | None = None  # pair, COIN-M only


class PartialDepth(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@depth5/10/20[@100ms|@1000ms]``: a bare top-N picture, no symbol, no time."""

    lastUpdateId: int  # order book update ID the picture is valid at; wire name
    bids: list[DecimalLevel]  # (price, quantity), best (highest) first
    asks: list[DecimalLevel]  # (price, quantity), best (lowest) first


class FuturesPartialDepth(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@depth5/10/20[@100ms|@250ms|@500ms]``: the diff event's shape.

    ``b``/``a`` are the whole top N levels, not changes.
    """

    e: str  # event type: "depthUpdate"
    E: int  # event time, ms
    T: int  # transaction time, ms
    s: str  # symbol
    U: int  # first update ID covered
    u: int  # final update ID covered: the picture is valid at it
    pu: int  # final update ID of the previous message on this stream
    b: list[DecimalLevel]  # top bids (price, quantity), best first
    a: list[DecimalLevel]  # top asks (price, quantity), best first
    ps: str | None = None  # pair, COIN-M only


# ------------------------------------------------------------------- futures only


class MarkPrice(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@markPrice`` (every 3 s) and ``<sym>@markPrice@1s``.

    ``r`` stays text: delivery contracts have no funding and send ``""`` (with ``T`` 0);
    ``funding_rate`` reads it as a Decimal, None when empty.
    """

    e: str  # event type: "markPriceUpdate"
    E: int  # event time, ms
    s: str  # symbol
    p: Decimal  # mark price
    P: Decimal  # estimated settle price (meaningful in the hour before a settlement)
    r: str  # funding rate as sent: "0.00038167", "" for delivery contracts
    T: int  # next funding time, ms (0 for delivery contracts)
    i: Decimal | None = None  # index price
    ap: Decimal | None = None  # USD-M since 2026-03: moving average of the mark price

    @property
    def funding_rate(self) -> Decimal | None:
        """``r`` as an exact Decimal; None when the contract has no funding (``r`` empty)."""
        if not self.r:
            return None
        try:
            return Decimal(self.r)
        except InvalidOperation:
            raise ValueError(f"funding rate {self.r!r} of {self.s} is not a decimal") from None


class LiquidationOrder(msgspec.Struct, frozen=True, gc=False):
    """The ``o`` object of a ``forceOrder`` event: the liquidation order."""

    s: str  # symbol
    S: str  # side: "BUY" or "SELL"
    o: str  # order type: "LIMIT"
    f: str  # time in force: "IOC"
    q: Decimal  # original quantity
    p: Decimal  # price
    ap: Decimal  # average fill price
    X: str  # order status: "FILLED" ...
    l: Decimal  # last filled quantity
    z: Decimal  # accumulated filled quantity
    T: int  # order trade time, ms
    ps: str | None = None  # pair, COIN-M only


class ForceOrder(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@forceOrder``: the largest (USD-M) / latest (COIN-M) liquidation per second."""

    e: str  # event type: "forceOrder"
    E: int  # event time, ms
    o: LiquidationOrder  # the liquidation order


# ------------------------------------------------------------ combined-stream wrapper

P = TypeVar("P")


class Combined(msgspec.Struct, Generic[P], frozen=True, gc=False):
    """``/stream?streams=...`` message, wrapper and payload decoded in one pass."""

    # gc=False: P is one of this module's Structs (no cycles).
    stream: str  # stream name: "btcusdt@aggTrade"
    data: P  # the payload


# ---------------------------------------------------------------------- channels

TRADE: Final = "trade"
AGG_TRADE: Final = "aggTrade"
KLINE: Final = "kline"
TICKER: Final = "ticker"
MINI_TICKER: Final = "miniTicker"
BOOK_TICKER: Final = "bookTicker"
DEPTH_N: Final = "depthN"  # partial depth, depth5/10/20
DEPTH: Final = "depth"  # diff depth: the book's stream, not decoded here
MARK_PRICE: Final = "markPrice"
FORCE_ORDER: Final = "forceOrder"
OTHER: Final = "other"

CHANNELS: Final = (
    TRADE,
    AGG_TRADE,
    KLINE,
    TICKER,
    MINI_TICKER,
    BOOK_TICKER,
    DEPTH_N,
    DEPTH,
    MARK_PRICE,
    FORCE_ORDER,
    OTHER,
)

_PLAIN_CHANNELS: Final = frozenset((TRADE, AGG_TRADE, TICKER, MINI_TICKER, BOOK_TICKER, FORCE_ORDER))
_PARTIAL_BASES: Final = frozenset(("depth5", "depth10", "depth20"))
_SPEED_SHAPE: Final = re.compile(r"[0-9]+ms", re.ASCII)


def stream_channel(stream: str) -> str:
    """The channel of a stream name, one of ``CHANNELS``.

    ``btcusdt@kline_1m`` -> ``kline``; ``btcusdt@depth20@100ms`` -> ``depthN``;
    ``btcusdt@depth@100ms`` -> ``depth``; ``btcusdt@markPrice@1s`` -> ``markPrice``;
    ``!bookTicker`` (futures, every symbol) -> ``bookTicker``. Anything else, including
    streams this module has no Struct for (``avgPrice``, ``rpiDepth``, ``!ticker@arr``) and
    misspelt channels (Binance's names are case-sensitive), -> ``other``. Only the shape is
    read; ``validate_stream_name`` checks that the market serves the name.
    """
    if stream == "!bookTicker":
        return BOOK_TICKER
    symbol, at, channel = stream.partition("@")
    if not at or not symbol or symbol.startswith("!"):
        return OTHER
    base, at2, suffix = channel.partition("@")
    if at2 and (not suffix or "@" in suffix):
        return OTHER
    if base == "depth" or base in _PARTIAL_BASES:
        if at2 and _SPEED_SHAPE.fullmatch(suffix) is None:
            return OTHER
        return DEPTH if base == "depth" else DEPTH_N
    if base == MARK_PRICE:
        return MARK_PRICE if not at2 or suffix == "1s" else OTHER
    if at2:
        return OTHER
    if base.startswith("kline_") and len(base) > len("kline_"):
        return KLINE
    if base in _PLAIN_CHANNELS:
        return base
    return OTHER


def stream_symbol(stream: str) -> str:
    """Upper-case symbol of a stream name: ``btcusdt@trade`` -> ``BTCUSDT``.

    ``""`` for an all-symbol stream (``!bookTicker``, ``!miniTicker@arr``). For a continuous
    kline the part before ``@`` is a pair and contract type (``BTCUSDT_PERPETUAL``).
    """
    if stream.startswith("!"):
        return ""
    symbol, at, _ = stream.partition("@")
    if not at or not symbol:
        raise ValueError(f"stream name {stream!r} has no symbol: expected '<symbol>@<channel>'")
    return symbol.upper()


# ---------------------------------------------------------------------- decoders

_TYPES: Final[Mapping[tuple[Market, str], type[msgspec.Struct]]] = MappingProxyType(
    {
        (Market.SPOT, TRADE): Trade,
        (Market.SPOT, AGG_TRADE): AggTrade,
        (Market.SPOT, KLINE): KlineEvent,
        (Market.SPOT, TICKER): Ticker,
        (Market.SPOT, MINI_TICKER): MiniTicker,
        (Market.SPOT, BOOK_TICKER): BookTicker,
        (Market.SPOT, DEPTH_N): PartialDepth,
        **{
            (market, channel): type_
            for market in (Market.USDM, Market.COINM)
            for channel, type_ in (
                (TRADE, FuturesTrade),
                (AGG_TRADE, FuturesAggTrade),
                (KLINE, KlineEvent),
                (TICKER, FuturesTicker),
                (MINI_TICKER, FuturesMiniTicker),
                (BOOK_TICKER, FuturesBookTicker),
                (DEPTH_N, FuturesPartialDepth),
                (MARK_PRICE, MarkPrice),
                (FORCE_ORDER, ForceOrder),
            )
        },
    }
)


def _decoders(combined: bool) -> dict[tuple[Market, str], msgspec.json.Decoder[Any]]:
    """One Decoder per payload type (USD-M and COIN-M share theirs), keyed by market and channel."""
    wrapper: Any = Combined  # parameterised at run time: Combined[Trade], ...
    by_type: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {}
    table: dict[tuple[Market, str], msgspec.json.Decoder[Any]] = {}
    for key, type_ in _TYPES.items():
        decoder = by_type.get(type_)
        if decoder is None:
            decoder = by_type[type_] = msgspec.json.Decoder(wrapper[type_] if combined else type_)
        table[key] = decoder
    return table


_BARE_DECODERS: Final = _decoders(combined=False)
_COMBINED_DECODERS: Final = _decoders(combined=True)


def stream_type(market: Market | str, stream: str) -> type[msgspec.Struct] | None:
    """The Struct a stream's payloads decode into on ``market``; None when there is no decoder."""
    return _TYPES.get((Market.parse(market), stream_channel(stream)))


def stream_decoder(
    market: Market | str, stream: str, *, combined: bool = False
) -> msgspec.json.Decoder[Any] | None:
    """The reused Decoder for ``stream``'s payloads on ``market`` (``Market`` or its name).

    None for diff depth (the book's stream) and for channels without a Struct here
    (``stream_channel`` says ``other``, or e.g. ``markPrice`` on spot). The payload is the
    bare event; with ``combined=True`` the decoder takes the whole ``{"stream":...,
    "data":...}`` message instead and returns ``Combined`` (payload in ``.data``), one pass
    over the bytes. Decoders are module-level singletons: the same object on every call.
    Decoding raises ``msgspec.ValidationError`` for a missing or mistyped field and
    ``msgspec.DecodeError`` for malformed JSON.
    """
    table = _COMBINED_DECODERS if combined else _BARE_DECODERS
    return table.get((Market.parse(market), stream_channel(stream)))


# -------------------------------------------------------------- stream-name checks

_SYMBOL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*", re.ASCII)
_CHANNEL_CHARS: Final = re.compile(r"[A-Za-z0-9_@]+", re.ASCII)
_INTERVALS_FUTURES: Final = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
)  # fmt: skip
_INTERVALS: Final = {
    Market.SPOT: ("1s", *_INTERVALS_FUTURES),
    Market.USDM: _INTERVALS_FUTURES,
    Market.COINM: _INTERVALS_FUTURES,
}
_DEPTH_SPEEDS: Final = {
    Market.SPOT: ("100ms", "1000ms"),
    Market.USDM: ("100ms", "250ms", "500ms"),
    Market.COINM: ("100ms", "250ms", "500ms"),
}
# Channels without an argument or suffix, per market (what the local exchange serves too).
_SPOT_PLAIN: Final = ("bookTicker", "trade", "aggTrade", "miniTicker", "ticker", "avgPrice")
_FUTURES_PLAIN: Final = (
    "bookTicker",
    "trade",
    "aggTrade",
    "miniTicker",
    "ticker",
    "forceOrder",
    "compositeIndex",
    "assetIndex",
)
_PLAIN: Final = {Market.SPOT: _SPOT_PLAIN, Market.USDM: _FUTURES_PLAIN, Market.COINM: _FUTURES_PLAIN}
_SPOT_WINDOWS: Final = ("1h", "4h", "1d")  # spot ticker_<window>
_FUTURES_ALL_SYMBOLS: Final = (
    "!bookTicker",
    "!markPrice@arr",
    "!markPrice@arr@1s",
    "!miniTicker@arr",
    "!ticker@arr",
    "!forceOrder@arr",
    "!contractInfo",
    "!assetIndex@arr",
)
_ALL_SYMBOLS: Final = {
    Market.SPOT: (
        "!miniTicker@arr",
        "!ticker@arr",
        *(f"!ticker_{w}@arr" for w in _SPOT_WINDOWS),
    ),
    Market.USDM: _FUTURES_ALL_SYMBOLS,
    Market.COINM: _FUTURES_ALL_SYMBOLS,
}
# Every channel name of any market, lower-cased, for "did you mean" hints.
_KNOWN_NAMES: Final = {
    name.lower(): name
    for name in (
        *_SPOT_PLAIN,
        *_FUTURES_PLAIN,
        "depth",
        "depth5",
        "depth10",
        "depth20",
        "markPrice",
        "indexPrice",
        "rpiDepth",
        "kline",
        "continuousKline",
    )
}


def _listing(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


def _channel_problem(market: Market, channel: str) -> str | None:
    """Why ``channel`` (the part after the first ``@``) is not served on ``market``; None if it is."""
    futures = market.is_futures
    base, at, suffix = channel.partition("@")
    if at and not suffix:
        return f"channel {channel!r} ends with '@'"

    if base == "depth" or (base.startswith("depth") and base[5:].isdigit()):
        if base != "depth" and base not in _PARTIAL_BASES:
            return f"partial depth {base!r}: the levels must be 5, 10 or 20"
        speeds = _DEPTH_SPEEDS[market]
        if at and suffix not in speeds:
            allowed = _listing([f"@{s}" for s in speeds])
            return f"depth speed '@{suffix}' is not served on {market.value}; use one of {allowed} or none"
        return None

    if base in ("markPrice", "indexPrice"):
        if not futures:
            return f"{base!r} is a futures stream, not served on spot"
        if at and suffix != "1s":
            return f"{base} speed '@{suffix}' is not served; use '@1s' or none"
        return None

    if base == "rpiDepth":
        if not futures:
            return "'rpiDepth' is a futures stream, not served on spot"
        if suffix != "500ms":
            return "'rpiDepth' is served only as 'rpiDepth@500ms'"
        return None

    if at:
        return f"channel {base!r} takes no '@{suffix}' suffix on {market.value}"

    for prefix, allowed_args in (
        ("kline_", _INTERVALS[market]),
        ("continuousKline_", _INTERVALS_FUTURES if futures else ()),
        ("ticker_", () if futures else _SPOT_WINDOWS),
    ):
        if base.startswith(prefix):
            arg = base[len(prefix) :]
            if not allowed_args:
                return f"{prefix[:-1]!r} streams are not served on {market.value}"
            if arg not in allowed_args:
                what = "window" if prefix == "ticker_" else "interval"
                hint = ""
                if arg == "1s" and futures:
                    hint = " (1s klines are spot only)"
                elif arg.lower() != arg and arg.lower() in allowed_args:
                    hint = f" (case-sensitive: '1M' is a month, '1m' a minute; did you mean {arg.lower()!r}?)"
                valid = _listing(allowed_args)
                return f"{prefix[:-1]} {what} {arg!r} is not valid on {market.value}{hint}; valid: {valid}"
            return None

    if base in _PLAIN[market]:
        return None
    if base in _SPOT_PLAIN or base in _FUTURES_PLAIN or base in ("kline", "continuousKline", "ticker"):
        if base in ("kline", "continuousKline"):
            return f"{base!r} needs an interval: '{base}_<interval>', e.g. '{base}_1m'"
        return f"{base!r} is not served on {market.value}"
    spelled = _KNOWN_NAMES.get(base.split("_", 1)[0].lower())
    if spelled is not None:
        return f"unknown channel {base!r}: channel names are case-sensitive, did you mean {spelled!r}?"
    return f"unknown channel {base!r} on {market.value}"


def validate_stream_name(market: Market | str, stream: str) -> str:
    """Check that ``market`` serves ``stream`` and return its normalised name.

    The symbol is lower-cased (``BTCUSDT@bookTicker`` -> ``btcusdt@bookTicker``); the channel
    must be spelt as Binance spells it (``bookTicker``, ``aggTrade``, ``kline_1M`` is a month)
    and is kept as given. Checked per market: kline intervals (``1s`` on spot only), diff and
    partial depth speeds (spot ``100ms``/``1000ms``, futures ``100ms``/``250ms``/``500ms``),
    partial depth levels (5, 10, 20), futures-only and spot-only channels, and the
    all-symbol ``!...`` streams. This is the set the local exchange (``tickbook.sim``) serves.
    Names for which ``stream_decoder`` has no decoder (diff depth, ``avgPrice``, ...) are
    valid here all the same. Raises ``ValueError`` saying what is wrong.
    """
    m = Market.parse(market)
    if not isinstance(stream, str):
        raise ValueError(f"stream name must be a string, got {type(stream).__name__}")
    if not stream:
        raise _invalid(stream, "empty; expected '<symbol>@<channel>', e.g. 'btcusdt@trade'")
    if stream.startswith("!"):
        if stream in _ALL_SYMBOLS[m]:
            return stream
        hint = ""
        if stream == "!bookTicker":
            hint = " (spot removed it in 2022: subscribe to '<symbol>@bookTicker' instead)"
        valid = _listing(_ALL_SYMBOLS[m])
        raise _invalid(stream, f"not an all-symbol stream of {m.value}{hint}; valid: {valid}")
    symbol, at, channel = stream.partition("@")
    if not at:
        raise _invalid(stream, "no '@': expected '<symbol>@<channel>', e.g. 'btcusdt@trade'")
    if not symbol:
        raise _invalid(stream, "no symbol before '@'")
    if _SYMBOL.fullmatch(symbol) is None:
        raise _invalid(stream, f"symbol {symbol!r} may hold only ASCII letters, digits and '_'")
    if not channel:
        raise _invalid(stream, "no channel after '@'")
    if _CHANNEL_CHARS.fullmatch(channel) is None:
        hint = " ('/' joins names only in a URL: validate one name per call)" if "/" in channel else ""
        raise _invalid(stream, f"channel {channel!r} may hold only ASCII letters, digits, '_' and '@'{hint}")
    problem = _channel_problem(m, channel)
    if problem is not None:
        raise _invalid(stream, problem)
    return f"{symbol.lower()}@{channel}"


def _invalid(stream: str, problem: str) -> ValueError:
    return ValueError(f"invalid stream name {stream!r}: {problem}")


# ------------------------------------------------------------------------ routes

_PUBLIC_BASES: Final = frozenset(("depth", "depth5", "depth10", "depth20", "bookTicker", "rpiDepth"))


def usdm_route(stream: str) -> str:
    """The USD-M route that serves ``stream`` since 2026-04-23: ``/public`` or ``/market``.

    ``/public``: diff and partial depth, ``bookTicker``, ``!bookTicker``, ``rpiDepth``.
    ``/market``: everything else (trades, klines, tickers, mark price, liquidations, ...).
    An unrouted URL now serves only the ``/public`` streams.
    """
    if stream == "!bookTicker":
        return "/public"
    _, _, channel = stream.partition("@")
    base = channel.partition("@")[0]
    return "/public" if base in _PUBLIC_BASES else "/market"
