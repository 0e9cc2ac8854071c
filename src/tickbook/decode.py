"""Wire decoding: msgspec Structs that mirror Binance's JSON, one reused Decoder per type.

Field names are the exchange's own one-letter keys, so a Struct reads like the
payload it decodes and nothing is renamed on the hot path. The level arrays
(``b``/``a`` on events, ``bids``/``asks`` on snapshots) are ``msgspec.Raw``:
the raw JSON array text, taken zero-copy from the input. Building one Python
string per price and quantity is most of the cost of a typed decode, and the
book parses the raw spans in C instead. The ``*Typed`` variants decode the
levels into ``list[tuple[str, str]]``; they exist for the benchmarks and for
callers that want plain Python values.

A ``msgspec.Raw`` references the buffer it was decoded from. Decoding a
``memoryview`` over a buffer that is later reused (a socket receive buffer)
leaves the Raw fields pointing at the new contents: hand such a message to the
book before the buffer is reused, or decode from ``bytes``.

Market matters: futures depth events carry ``pu`` (the previous event's final
ID, the only valid continuity check there) and spot events do not. The spot
Struct would silently accept a futures event (unknown keys are ignored), so the
decoder is chosen per market, never guessed per message; ``infer_market`` reads
the market from the first depth message when the caller does not know it.

Structs are ``frozen`` (a decoded message is a fact, not a buffer to edit) and
``gc=False``: they hold only ints, strings, Raw spans and lists of string
tuples, which can never form a reference cycle, so the garbage collector has
no reason to track them (that saves time per message and keeps GC pauses short).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tickbook._types import Market

__all__ = [
    "BOOK_TICKER",
    "DEPTH",
    "OTHER",
    "SNAPSHOT",
    "BookTicker",
    "CombinedBookTicker",
    "CombinedDepth",
    "CombinedDepthTyped",
    "CombinedFuturesBookTicker",
    "CombinedFuturesDepth",
    "CombinedFuturesDepthTyped",
    "CombinedRaw",
    "DecodeError",
    "Decoded",
    "DepthSnapshot",
    "DepthSnapshotTyped",
    "DepthUpdate",
    "DepthUpdateTyped",
    "FuturesBookTicker",
    "FuturesDepthSnapshot",
    "FuturesDepthSnapshotTyped",
    "FuturesDepthUpdate",
    "FuturesDepthUpdateTyped",
    "StreamDecoder",
    "decode_book_ticker",
    "decode_depth",
    "decode_depth_message",
    "decode_snapshot",
    "infer_market",
    "stream_kind",
]

Level = tuple[str, str]

# --------------------------------------------------------------------------- spot


class DepthUpdate(msgspec.Struct, frozen=True, gc=False):
    """Spot diff-depth event (``<sym>@depth`` / ``<sym>@depth@100ms``). No ``pu``, no ``T``."""

    e: str  # event type: "depthUpdate"
    E: int  # event time, ms since the epoch (µs with timeUnit=MICROSECOND)
    s: str  # symbol, upper case: "BTCUSDT"
    U: int  # first update ID in event
    u: int  # final update ID in event
    b: msgspec.Raw  # bids to update: raw JSON [["price","qty"],...], qty is absolute, "0" deletes
    a: msgspec.Raw  # asks to update: same shape as b


class DepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    """Spot REST ``GET /api/v3/depth`` body (also the shape of a spot partial-depth stream)."""

    lastUpdateId: int  # update ID the snapshot is valid at; wire name
    bids: msgspec.Raw  # raw JSON [["price","qty"],...], best (highest) first
    asks: msgspec.Raw  # raw JSON [["price","qty"],...], best (lowest) first


class BookTicker(msgspec.Struct, frozen=True, gc=False):
    """Spot ``<sym>@bookTicker``. Spot has no ``e`` and no ``E``."""

    u: int  # order book update ID this best bid/ask is valid at
    s: str  # symbol
    b: str  # best bid price
    B: str  # best bid quantity
    a: str  # best ask price
    A: str  # best ask quantity


# ------------------------------------------------------------------------ futures


class FuturesDepthUpdate(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M diff-depth event. Continuity is ``pu == previous u``, never ``U``."""

    e: str  # event type: "depthUpdate"
    E: int  # event time (message generated), ms
    T: int  # transaction time in the matching engine, ms
    s: str  # symbol: "BTCUSDT" (USD-M), "BTCUSD_PERP" (COIN-M)
    U: int  # first update ID in event
    u: int  # final update ID in event
    pu: int  # final update ID of the previous event on this stream
    b: msgspec.Raw  # bids to update: raw JSON [["price","qty"],...]
    a: msgspec.Raw  # asks to update: raw JSON [["price","qty"],...]
    ps: str | None = None  # pair, COIN-M only: "BTCUSD"


class FuturesDepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    """USD-M ``GET /fapi/v1/depth`` / COIN-M ``GET /dapi/v1/depth`` body."""

    lastUpdateId: int  # update ID the snapshot is valid at; wire name
    E: int  # message output time, ms
    T: int  # transaction time, ms
    bids: msgspec.Raw  # raw JSON [["price","qty"],...], best first
    asks: msgspec.Raw  # raw JSON [["price","qty"],...], best first


class FuturesBookTicker(msgspec.Struct, frozen=True, gc=False):
    """USD-M / COIN-M ``<sym>@bookTicker`` (has ``e``, ``E`` and ``T``, unlike spot)."""

    e: str  # event type: "bookTicker"
    u: int  # order book update ID this best bid/ask is valid at
    E: int  # event time, ms
    T: int  # transaction time, ms
    s: str  # symbol
    b: str  # best bid price
    B: str  # best bid quantity
    a: str  # best ask price
    A: str  # best ask quantity
    ps: str | None = None  # pair, COIN-M only


# -------------------------------------------------------- typed levels (benchmarks)


class DepthUpdateTyped(msgspec.Struct, frozen=True, gc=False):
    """``DepthUpdate`` with the levels decoded into Python strings (the slower, general way)."""

    e: str  # event type: "depthUpdate"
    E: int  # event time, ms
    s: str  # symbol
    U: int  # first update ID in event
    u: int  # final update ID in event
    b: list[Level]  # bids to update: (price, qty) text pairs
    a: list[Level]  # asks to update: (price, qty) text pairs


class FuturesDepthUpdateTyped(msgspec.Struct, frozen=True, gc=False):
    """``FuturesDepthUpdate`` with the levels decoded into Python strings."""

    e: str  # event type: "depthUpdate"
    E: int  # event time, ms
    T: int  # transaction time, ms
    s: str  # symbol
    U: int  # first update ID in event
    u: int  # final update ID in event
    pu: int  # final update ID of the previous event
    b: list[Level]  # bids to update: (price, qty) text pairs
    a: list[Level]  # asks to update: (price, qty) text pairs
    ps: str | None = None  # pair, COIN-M only


class DepthSnapshotTyped(msgspec.Struct, frozen=True, gc=False):
    """``DepthSnapshot`` with the levels decoded into Python strings."""

    lastUpdateId: int  # update ID the snapshot is valid at; wire name
    bids: list[Level]  # (price, qty) text pairs, best first
    asks: list[Level]  # (price, qty) text pairs, best first


class FuturesDepthSnapshotTyped(msgspec.Struct, frozen=True, gc=False):
    """``FuturesDepthSnapshot`` with the levels decoded into Python strings."""

    lastUpdateId: int  # update ID the snapshot is valid at; wire name
    E: int  # message output time, ms
    T: int  # transaction time, ms
    bids: list[Level]  # (price, qty) text pairs, best first
    asks: list[Level]  # (price, qty) text pairs, best first


# ------------------------------------------------------- combined-stream wrappers
#
# Decoding the wrapper and its payload in one pass (a Struct per payload kind)
# costs one parse of the message; decoding {stream, data: Raw} first and the
# payload second would walk the payload twice.


class CombinedRaw(msgspec.Struct, frozen=True, gc=False):
    """``/stream?streams=...`` wrapper with the payload left undecoded."""

    stream: str  # stream name: "btcusdt@depth@100ms"
    data: msgspec.Raw  # the raw payload JSON


class CombinedDepth(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a spot depth event."""

    stream: str  # stream name: "btcusdt@depth@100ms"
    data: DepthUpdate  # the event


class CombinedFuturesDepth(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a futures depth event."""

    stream: str  # stream name: "btcusdt@depth@0ms"
    data: FuturesDepthUpdate  # the event


class CombinedBookTicker(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a spot bookTicker."""

    stream: str  # stream name: "btcusdt@bookTicker"
    data: BookTicker  # the ticker


class CombinedFuturesBookTicker(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a futures bookTicker."""

    stream: str  # stream name: "btcusdt@bookTicker"
    data: FuturesBookTicker  # the ticker


class CombinedDepthTyped(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a spot depth event with typed levels (benchmarks)."""

    stream: str  # stream name
    data: DepthUpdateTyped  # the event


class CombinedFuturesDepthTyped(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a futures depth event with typed levels (benchmarks)."""

    stream: str  # stream name
    data: FuturesDepthUpdateTyped  # the event


class _Probe(msgspec.Struct, frozen=True, gc=False):
    """Just enough of any message to tell what it is.

    Every field is ``Raw`` so that no valid JSON object can fail validation
    here: an unexpected type in an unknown message makes it "other", not an
    error. An absent key leaves an empty Raw (msgspec cannot decode into
    ``Raw | None``). Unknown keys are skipped by the parser without building values.
    """

    stream: msgspec.Raw = msgspec.Raw()  # combined-stream name (JSON text)
    data: msgspec.Raw = msgspec.Raw()  # combined-stream payload
    e: msgspec.Raw = msgspec.Raw()  # event type (JSON text)
    lastUpdateId: msgspec.Raw = msgspec.Raw()  # present on REST snapshots; wire name
    u: msgspec.Raw = msgspec.Raw()  # present on depth events and book tickers
    B: msgspec.Raw = msgspec.Raw()  # best bid qty: with A, marks a spot bookTicker
    A: msgspec.Raw = msgspec.Raw()  # best ask qty


class _MarketProbe(msgspec.Struct, frozen=True, gc=False):
    """The fields ``infer_market`` looks at, from a bare depth event."""

    s: str | None = None  # symbol
    pu: int | None = None  # futures only
    ps: str | None = None  # COIN-M only


class _CombinedMarketProbe(msgspec.Struct, frozen=True, gc=False):
    data: _MarketProbe | None = None  # payload of a combined-stream message


# ------------------------------------------------------------------ decoders

depth_update_decoder: Final = msgspec.json.Decoder(DepthUpdate)
futures_depth_update_decoder: Final = msgspec.json.Decoder(FuturesDepthUpdate)
depth_snapshot_decoder: Final = msgspec.json.Decoder(DepthSnapshot)
futures_depth_snapshot_decoder: Final = msgspec.json.Decoder(FuturesDepthSnapshot)
book_ticker_decoder: Final = msgspec.json.Decoder(BookTicker)
futures_book_ticker_decoder: Final = msgspec.json.Decoder(FuturesBookTicker)
combined_raw_decoder: Final = msgspec.json.Decoder(CombinedRaw)
combined_depth_decoder: Final = msgspec.json.Decoder(CombinedDepth)
combined_futures_depth_decoder: Final = msgspec.json.Decoder(CombinedFuturesDepth)
combined_book_ticker_decoder: Final = msgspec.json.Decoder(CombinedBookTicker)
combined_futures_book_ticker_decoder: Final = msgspec.json.Decoder(CombinedFuturesBookTicker)
depth_update_typed_decoder: Final = msgspec.json.Decoder(DepthUpdateTyped)
futures_depth_update_typed_decoder: Final = msgspec.json.Decoder(FuturesDepthUpdateTyped)
depth_snapshot_typed_decoder: Final = msgspec.json.Decoder(DepthSnapshotTyped)
futures_depth_snapshot_typed_decoder: Final = msgspec.json.Decoder(FuturesDepthSnapshotTyped)
combined_depth_typed_decoder: Final = msgspec.json.Decoder(CombinedDepthTyped)
combined_futures_depth_typed_decoder: Final = msgspec.json.Decoder(CombinedFuturesDepthTyped)
_probe_decoder: Final = msgspec.json.Decoder(_Probe)
_market_probe_decoder: Final = msgspec.json.Decoder(_MarketProbe)
_combined_market_probe_decoder: Final = msgspec.json.Decoder(_CombinedMarketProbe)
_any_decoder: Final = msgspec.json.Decoder()

Buffer = bytes | bytearray | memoryview

# ------------------------------------------------------------------- errors

_PREVIEW = 80


class DecodeError(ValueError):
    """A message that cannot be decoded: malformed JSON, or a known kind with the wrong shape.

    ``preview`` holds the first bytes of the input so a log line shows what
    arrived without dumping a 30 kB message.
    """

    def __init__(self, detail: str, data: Buffer | msgspec.Raw | str) -> None:
        raw = data.encode() if isinstance(data, str) else bytes(memoryview(data)[: _PREVIEW + 1])
        self.detail = detail
        self.preview = raw[:_PREVIEW] + (b"..." if len(raw) > _PREVIEW else b"")
        super().__init__(f"{detail}: {self.preview!r}")


def _fail(what: str, exc: msgspec.DecodeError, data: Buffer | msgspec.Raw) -> DecodeError:
    kind = "invalid " + what if isinstance(exc, msgspec.ValidationError) else "malformed JSON"
    return DecodeError(f"{kind} ({exc})", data)


# ---------------------------------------------------------- single-type helpers


def decode_depth(data: Buffer, market: Market | str = Market.SPOT) -> DepthUpdate | FuturesDepthUpdate:
    """Decode one bare depth event with the decoder of ``market``."""
    futures = Market.parse(market).is_futures
    try:
        if futures:
            return futures_depth_update_decoder.decode(data)
        return depth_update_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _fail("depthUpdate", exc, data) from None


def decode_depth_message(
    data: Buffer | str, market: Market | str = Market.SPOT
) -> DepthUpdate | FuturesDepthUpdate:
    """Decode one depth message as received: a combined-stream message (its ``data``) or a bare event.

    The general path of ``OrderBook.apply_frame``: any key order and any
    whitespace, with the Structs of ``market``.
    """
    futures = Market.parse(market).is_futures
    head = data[:32].encode() if isinstance(data, str) else bytes(memoryview(data)[:32])
    try:
        if b"".join(head.split()).startswith((b'{"stream"', b'{"data"')):
            combined = combined_futures_depth_decoder if futures else combined_depth_decoder
            return combined.decode(data).data
        return (futures_depth_update_decoder if futures else depth_update_decoder).decode(data)
    except msgspec.DecodeError as exc:
        raise _fail("depthUpdate", exc, data.encode() if isinstance(data, str) else data) from None


def decode_snapshot(
    data: Buffer, market: Market | str | None = Market.SPOT
) -> DepthSnapshot | FuturesDepthSnapshot:
    """Decode a REST depth snapshot body. ``market=None`` reads only the fields all markets share."""
    futures = market is not None and Market.parse(market).is_futures
    try:
        if futures:
            return futures_depth_snapshot_decoder.decode(data)
        return depth_snapshot_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _fail("depth snapshot", exc, data) from None


def decode_book_ticker(data: Buffer, market: Market | str = Market.SPOT) -> BookTicker | FuturesBookTicker:
    """Decode one bare bookTicker with the decoder of ``market``."""
    futures = Market.parse(market).is_futures
    try:
        if futures:
            return futures_book_ticker_decoder.decode(data)
        return book_ticker_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _fail("bookTicker", exc, data) from None


def infer_market(data: Buffer | msgspec.Raw) -> Market:
    """The market of a depth message (bare or combined), from its fields.

    Spot when there is no ``pu``; COIN-M when ``ps`` is present or the symbol is
    a COIN-M contract (``BTCUSD_PERP``, ``ETHUSD_240927``: the pair before the
    underscore ends in ``USD``; USD-M delivery contracts look like
    ``BTCUSDT_240927``); USD-M otherwise.
    """
    try:
        if bytes(memoryview(data)[:10]) == b'{"stream":':
            wrapped = _combined_market_probe_decoder.decode(data)
            probe = wrapped.data if wrapped.data is not None else _MarketProbe()
        else:
            probe = _market_probe_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _fail("depth message", exc, data) from None
    if probe.pu is None:
        return Market.SPOT
    symbol = probe.s or ""
    if probe.ps is not None or ("_" in symbol and symbol.split("_", 1)[0].endswith("USD")):
        return Market.COINM
    return Market.USDM


# ----------------------------------------------------------------- dispatch

DEPTH: Final = "depth"  # a diff-depth event: data is DepthUpdate / FuturesDepthUpdate
BOOK_TICKER: Final = "bookTicker"  # data is BookTicker / FuturesBookTicker
SNAPSHOT: Final = "snapshot"  # a bare REST depth snapshot: data is DepthSnapshot / FuturesDepthSnapshot
OTHER: Final = "other"  # anything else: data is the raw payload (msgspec.Raw)


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """One decoded message: what it is, the stream it came on, and the decoded payload.

    ``stream`` is None for bare (non-combined) messages. For kind ``other``
    ``data`` is the undecoded payload (``msgspec.Raw``): the caller decides
    whether it cares (trades, klines, subscription replies, ...).
    """

    # gc=False: only this module builds these, around its own Structs or Raw spans (no cycles).
    kind: str  # DEPTH, BOOK_TICKER, SNAPSHOT or OTHER
    stream: str | None  # combined-stream name, None for a bare message
    data: Any  # the decoded Struct, or msgspec.Raw for OTHER


def stream_kind(stream: str) -> str:
    """Kind of message a combined stream carries, from its name.

    ``<sym>@depth`` and ``<sym>@depth@<speed>`` are diff depth; partial depth
    (``@depth5``, ``@depth20@100ms``) and ``@rpiDepth`` are not (they are
    top-N pictures, not diffs) and come out as ``other``.
    """
    _, _, channel = stream.partition("@")
    if channel == "depth" or channel.startswith("depth@"):
        return DEPTH
    if channel == "bookTicker" or stream == "!bookTicker":
        return BOOK_TICKER
    return OTHER


_STREAM_PREFIX: Final = b'{"stream":"'
_BARE_DEPTH_PREFIX: Final = b'{"e":"depthUpdate"'
_BARE_SNAPSHOT_PREFIX: Final = b'{"lastUpdateId":'
_HEAD = 160  # stream names are short; this many leading bytes always hold the name


class StreamDecoder:
    """Decode raw messages of one connection (or one recording) and say what each one is.

    Fast path: a combined-stream message laid out as Binance sends it,
    ``{"stream":"<name>","data":{...}}``, has its stream name read from the
    leading bytes (no JSON parse) and is then decoded once, wrapper and
    payload together, with the Struct for that stream's kind. Anything else
    (keys in another order, a bare event, a REST snapshot, a control reply)
    goes through a general path that probes the top-level keys first.

    ``market`` picks the depth and bookTicker decoders. When it is None the
    first depth message fixes it (``infer_market``); book tickers seen before
    that are decoded by their own shape (futures ones carry ``e``).

    Unknown event types come back as kind ``other``; malformed JSON, and known
    kinds with missing or mistyped fields, raise ``DecodeError``.
    """

    __slots__ = ("_depth", "_depth_combined", "_kinds", "_snapshot", "_ticker", "_ticker_combined", "market")

    def __init__(self, market: Market | str | None = None) -> None:
        self.market: Market | None = None
        self._kinds: dict[bytes, str] = {}
        self._set_market(Market.parse(market) if market is not None else None)

    def _set_market(self, market: Market | None) -> None:
        self.market = market
        futures = market is not None and market.is_futures
        self._depth: msgspec.json.Decoder[Any] = (
            futures_depth_update_decoder if futures else depth_update_decoder
        )
        self._depth_combined: msgspec.json.Decoder[Any] = (
            combined_futures_depth_decoder if futures else combined_depth_decoder
        )
        self._snapshot: msgspec.json.Decoder[Any] = (
            futures_depth_snapshot_decoder if futures else depth_snapshot_decoder
        )
        self._ticker: msgspec.json.Decoder[Any] = (
            futures_book_ticker_decoder if futures else book_ticker_decoder
        )
        self._ticker_combined: msgspec.json.Decoder[Any] = (
            combined_futures_book_ticker_decoder if futures else combined_book_ticker_decoder
        )

    def decode(self, data: Buffer) -> Decoded:
        """Decode one raw message (``bytes``, ``bytearray`` or ``memoryview``)."""
        head = data if isinstance(data, bytes) else bytes(data[:_HEAD])
        if head.startswith(_STREAM_PREFIX):
            end = head.find(b'"', 11, _HEAD)
            if end > 0:
                name = head[11:end]
                kind = self._kinds.get(name)
                if kind is None:
                    if len(self._kinds) > 4096:  # names come from the peer: keep the cache bounded
                        self._kinds.clear()
                    kind = self._kinds[name] = stream_kind(name.decode("ascii", "replace"))
                if kind == DEPTH and self.market is not None:
                    try:
                        c = self._depth_combined.decode(data)
                        return Decoded(DEPTH, c.stream, c.data)
                    except msgspec.DecodeError:
                        pass  # the general path says precisely what is wrong
                elif kind == BOOK_TICKER and self.market is not None:
                    try:
                        t = self._ticker_combined.decode(data)
                        return Decoded(BOOK_TICKER, t.stream, t.data)
                    except msgspec.DecodeError:
                        pass
                elif kind == OTHER:
                    try:
                        o = combined_raw_decoder.decode(data)
                        return Decoded(OTHER, o.stream, o.data)
                    except msgspec.DecodeError:
                        pass
        elif head.startswith(_BARE_DEPTH_PREFIX) and self.market is not None:
            try:
                return Decoded(DEPTH, None, self._depth.decode(data))
            except msgspec.DecodeError:
                pass
        elif head.startswith(_BARE_SNAPSHOT_PREFIX):
            try:
                return Decoded(SNAPSHOT, None, self._snapshot.decode(data))
            except msgspec.DecodeError:
                pass
        return self._general(data)

    def _general(self, data: Buffer) -> Decoded:
        """Probe the top-level keys, then decode the payload by what it turned out to be."""
        try:
            probe = _probe_decoder.decode(data)
        except msgspec.ValidationError:
            # Valid JSON so far but not an object (or an odd key type): "other" if
            # the whole text parses, otherwise the input is malformed.
            try:
                _any_decoder.decode(data)
            except msgspec.DecodeError as exc:
                raise _fail("message", exc, data) from None
            return Decoded(OTHER, None, msgspec.Raw(bytes(data)))
        except msgspec.DecodeError as exc:
            raise _fail("message", exc, data) from None

        if probe.stream:
            try:
                stream = msgspec.json.decode(probe.stream, type=str)
            except msgspec.DecodeError:
                return Decoded(OTHER, None, msgspec.Raw(bytes(data)))
            if not probe.data:
                return Decoded(OTHER, stream, msgspec.Raw(bytes(data)))
            kind = stream_kind(stream)
            if kind == DEPTH:
                return Decoded(DEPTH, stream, self._decode_depth(probe.data))
            if kind == BOOK_TICKER:
                return Decoded(BOOK_TICKER, stream, self._decode_ticker(probe.data, None))
            return Decoded(OTHER, stream, probe.data)

        event = bytes(probe.e)
        if event == b'"depthUpdate"':
            return Decoded(DEPTH, None, self._decode_depth(data))
        if event == b'"bookTicker"':
            return Decoded(BOOK_TICKER, None, self._decode_ticker(data, True))
        if not event and probe.lastUpdateId:
            try:
                return Decoded(SNAPSHOT, None, self._snapshot.decode(data))
            except msgspec.DecodeError as exc:
                raise _fail("depth snapshot", exc, data) from None
        if not event and probe.u and probe.B and probe.A:
            return Decoded(BOOK_TICKER, None, self._decode_ticker(data, False))
        return Decoded(OTHER, None, msgspec.Raw(bytes(data)))

    def _decode_depth(self, data: Buffer | msgspec.Raw) -> Any:
        if self.market is None:
            self._set_market(infer_market(data))
        try:
            return self._depth.decode(data)
        except msgspec.DecodeError as exc:
            raise _fail(f"{self.market.value if self.market else ''} depthUpdate", exc, _buf(data)) from None

    def _decode_ticker(self, data: Buffer | msgspec.Raw, futures: bool | None) -> Any:
        if self.market is not None:
            decoder = self._ticker
        else:
            if futures is None:  # only the payload tells: futures tickers carry "e"
                futures = b'"e":"bookTicker"' in _buf(data)
            decoder = futures_book_ticker_decoder if futures else book_ticker_decoder
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise _fail("bookTicker", exc, _buf(data)) from None


def _buf(data: Buffer | msgspec.Raw) -> bytes:
    return bytes(data)
