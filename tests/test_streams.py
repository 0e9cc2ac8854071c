"""Typed decoding of the non-depth market streams (``tickbook.streams``) and the stream-name helpers.

Payloads are real recordings where ``data/real`` has them (trades, aggregate trades, book
tickers, klines, USD-M mark price) and, for the shapes no recording holds (24 h tickers,
partial depth, liquidations, COIN-M variants), payloads written here from the field lists of
the exchange's documentation, with values of our own. Expected values come from the stdlib
``json`` module reading the same bytes and from the decimal text itself, never from
tickbook code.
"""

from __future__ import annotations

import gc
import gzip
import itertools
import json
import re
import typing
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tickbook import Market
from tickbook import streams as st
from tickbook.sim.market import GeneratedMarket, RecordedMarket
from tickbook.sim.ws import valid_stream
from tickbook.streams import (
    AggTrade,
    BookTicker,
    Combined,
    ForceOrder,
    FuturesAggTrade,
    FuturesBookTicker,
    FuturesMiniTicker,
    FuturesPartialDepth,
    FuturesTicker,
    FuturesTrade,
    Kline,
    KlineEvent,
    LiquidationOrder,
    MarkPrice,
    MiniTicker,
    PartialDepth,
    Ticker,
    Trade,
    stream_channel,
    stream_decoder,
    stream_symbol,
    stream_type,
    usdm_route,
    validate_stream_name,
)

REAL = Path(__file__).parent.parent / "data" / "real"
PAYLOADS = REAL / "payloads"
DERIVED = REAL / "derived"
HFT = REAL / "hftbacktest"
CF = REAL / "cryptofeed"

ALL_STRUCTS: tuple[type[msgspec.Struct], ...] = (
    Trade,
    FuturesTrade,
    AggTrade,
    FuturesAggTrade,
    Kline,
    KlineEvent,
    Ticker,
    FuturesTicker,
    MiniTicker,
    FuturesMiniTicker,
    BookTicker,
    FuturesBookTicker,
    PartialDepth,
    FuturesPartialDepth,
    MarkPrice,
    LiquidationOrder,
    ForceOrder,
)

# Text fields whose values happen to look like numbers: kept as sent, on purpose.
TEXT_FIELDS = {"Kline.B", "MarkPrice.r"}
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

# --------------------------------------------------------------------------- reading data


def message_lines(path: Path) -> Iterator[bytes]:
    """Combined-stream messages of a recording: JSONL, or ``<recv-time> <json>`` lines; gzip or not."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if line[:1].isdigit():  # hftbacktest: "<ns> <json>"
                line = line.partition(b" ")[2]
            if line.startswith(b'{"stream":'):
                yield line


def data_slice(line: bytes) -> bytes:
    """The bare payload of a combined message, cut out by hand (independent of the code)."""
    start = line.index(b',"data":') + len(b',"data":')
    assert line.endswith(b"}")
    return line[start:-1]


def stream_of(line: bytes) -> str:
    stream = json.loads(line)["stream"]
    assert isinstance(stream, str)
    return stream


def by_channel(path: Path, channel: str, limit: int | None = None) -> list[tuple[str, bytes, bytes]]:
    """``(stream, combined line, bare payload)`` of the messages of one channel base name."""
    out = []
    for line in message_lines(path):
        end = line.index(b'"', 11)
        name = line[11:end].decode()
        if name.partition("@")[2].partition("@")[0] != channel:
            continue
        out.append((name, line, data_slice(line)))
        if limit is not None and len(out) >= limit:
            break
    return out


# -------------------------------------------------------------------------- exact checks


def check_value(value: Any, want: Any, where: str, extra_ok: bool = False) -> None:
    assert not isinstance(value, float), where
    if isinstance(want, str) and NUMBER.fullmatch(want) and where not in TEXT_FIELDS:
        assert type(value) is Decimal, (where, value)
        assert format(value, "f") == want, (where, value, want)  # same digits, same exponent
    elif isinstance(want, dict):
        check_exact(value, want, extra_ok=extra_ok)
    elif isinstance(want, list):
        assert isinstance(value, list | tuple), where
        assert len(value) == len(want), where
        for i, (v, w) in enumerate(zip(value, want, strict=True)):
            check_value(v, w, f"{where}[{i}]", extra_ok)
    else:
        assert type(value) is type(want), (where, value, want)
        assert value == want, (where, value, want)


def check_exact(obj: Any, expected: dict[str, Any], *, extra_ok: bool = False) -> None:
    """Every field of ``obj`` equals the JSON value (Decimals to the digit); absent keys give the default.

    Unless ``extra_ok``, every key of the JSON must be a field: the Struct mirrors the wire.
    """
    assert isinstance(obj, msgspec.Struct)
    name = type(obj).__name__
    fields = msgspec.structs.fields(obj)
    if not extra_ok:
        assert set(expected) <= {f.encode_name for f in fields}, (name, set(expected))
    for f in fields:
        value = getattr(obj, f.name)
        if f.encode_name not in expected:
            assert not f.required, (name, f.name)
            assert f.default is None, (name, f.name)
            assert value is None, (name, f.name)
            continue
        check_value(value, expected[f.encode_name], f"{name}.{f.name}", extra_ok)


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode(market: str, stream: str, payload: bytes) -> Any:
    decoder = stream_decoder(market, stream)
    assert decoder is not None, (market, stream)
    return decoder.decode(payload)


# ---------------------------------------------------------- payloads from the documentation
#
# Keys and their JSON types follow the exchange's docs for each stream; the values are ours.

DOC_SPOT_TRADE_2023 = {  # before 2024 spot trades still carried the buyer/seller order IDs
    "e": "trade",
    "E": 1680000000123,
    "s": "ETHBTC",
    "t": 4100200,
    "p": "0.06512000",
    "q": "1.25000000",
    "b": 88001,
    "a": 88002,
    "T": 1680000000120,
    "m": False,
    "M": True,
}
DOC_SPOT_TICKER = {
    "e": "24hrTicker",
    "E": 1700000001000,
    "s": "ETHUSDT",
    "p": "-12.34000000",
    "P": "-0.617",
    "w": "1995.40120034",
    "x": "2000.01000000",
    "c": "1987.67000000",
    "Q": "0.04210000",
    "b": "1987.66000000",
    "B": "12.00830000",
    "a": "1987.67000000",
    "A": "3.50000000",
    "o": "2000.01000000",
    "h": "2011.00000000",
    "l": "1970.50000000",
    "v": "183321.80450000",
    "q": "365790123.12345678",
    "O": 1699913601000,
    "C": 1700000001000,
    "F": 1300000,
    "L": 1450000,
    "n": 150001,
}
DOC_SPOT_MINI_TICKER = {
    "e": "24hrMiniTicker",
    "E": 1700000001000,
    "s": "ETHUSDT",
    "c": "1987.67000000",
    "o": "2000.01000000",
    "h": "2011.00000000",
    "l": "1970.50000000",
    "v": "183321.80450000",
    "q": "365790123.12345678",
}
DOC_SPOT_DEPTH20 = {
    "lastUpdateId": 7012345678,
    "bids": [["1987.66000000", "12.00830000"], ["1987.65000000", "0.00100000"]],
    "asks": [["1987.67000000", "3.50000000"], ["1987.70000000", "0.20000000"]],
}
DOC_USDM_TICKER = {
    "e": "24hrTicker",
    "E": 1700000002000,
    "s": "BTCUSDT",
    "p": "310.20",
    "P": "0.847",
    "w": "36750.31",
    "c": "36931.50",
    "Q": "0.010",
    "o": "36621.30",
    "h": "37200.00",
    "l": "36300.10",
    "v": "251234.567",
    "q": "9233012345.12",
    "O": 1699915620000,
    "C": 1700000002000,
    "F": 4100000000,
    "L": 4102000000,
    "n": 2000001,
}
DOC_COINM_TICKER = {
    "e": "24hrTicker",
    "E": 1700000003000,
    "s": "BTCUSD_PERP",
    "p": "-21.3",
    "P": "-0.058",
    "w": "0.00271012",
    "c": "36905.1",
    "Q": "3",
    "o": "36926.4",
    "h": "37180.0",
    "l": "36310.2",
    "v": "4123456",
    "q": "11187.34520011",
    "O": 1699916580000,
    "C": 1700000003000,
    "F": 700000,
    "L": 790000,
    "n": 90001,
    "ps": "BTCUSD",
}
DOC_USDM_MINI_TICKER = {
    "e": "24hrMiniTicker",
    "E": 1700000002000,
    "s": "BTCUSDT",
    "c": "36931.50",
    "o": "36621.30",
    "h": "37200.00",
    "l": "36300.10",
    "v": "251234.567",
    "q": "9233012345.12",
}
DOC_COINM_MINI_TICKER = {**DOC_USDM_MINI_TICKER, "s": "BTCUSD_PERP", "ps": "BTCUSD", "v": "4123456"}
DOC_USDM_DEPTH5 = {
    "e": "depthUpdate",
    "E": 1700000002100,
    "T": 1700000002098,
    "s": "BTCUSDT",
    "U": 3900000001000,
    "u": 3900000001077,
    "pu": 3900000000990,
    "b": [["36931.40", "2.118"], ["36931.30", "0.004"], ["36931.00", "0.500"]],
    "a": [["36931.50", "0.010"], ["36932.00", "1.000"]],
}
DOC_COINM_DEPTH10 = {
    "e": "depthUpdate",
    "E": 1700000003100,
    "T": 1700000003091,
    "s": "BTCUSD_PERP",
    "ps": "BTCUSD",
    "U": 81000100,
    "u": 81000133,
    "pu": 81000090,
    "b": [["36905.0", "44"], ["36904.9", "2"]],
    "a": [["36905.1", "310"]],
}
DOC_USDM_AGG_TRADE = {  # with "nq" (2025: quantity without the RPI trades)
    "e": "aggTrade",
    "E": 1700000002200,
    "s": "BTCUSDT",
    "a": 1900000001,
    "p": "36931.50",
    "q": "0.250",
    "nq": "0.200",
    "f": 4102000001,
    "l": 4102000004,
    "T": 1700000002199,
    "m": True,
}
DOC_COINM_AGG_TRADE = {
    "e": "aggTrade",
    "E": 1700000003200,
    "a": 512345,
    "s": "BTCUSD_231229",
    "p": "37410.7",
    "q": "12",
    "f": 800100,
    "l": 800101,
    "T": 1700000003190,
    "m": False,
}
DOC_COINM_KLINE = {
    "e": "kline",
    "E": 1700000003300,
    "s": "BTCUSD_PERP",
    "k": {
        "t": 1700000000000,
        "T": 1700000059999,
        "s": "BTCUSD_PERP",
        "i": "1m",
        "f": 790000,
        "L": 790012,
        "o": "36900.0",
        "c": "36905.1",
        "h": "36910.4",
        "l": "36899.9",
        "v": "1500",
        "n": 13,
        "x": False,
        "q": "4.06523110",
        "V": "800",
        "Q": "2.16788001",
        "B": "0",
    },
}
DOC_USDM_MARK_PRICE = {  # with "ap" (2026-03: moving average of the mark price)
    "e": "markPriceUpdate",
    "E": 1700000004000,
    "s": "BTCUSDT",
    "p": "36929.11800000",
    "ap": "36928.90311111",
    "i": "36950.02512345",
    "P": "36941.77021212",
    "r": "0.00010000",
    "T": 1700006400000,
}
DOC_COINM_MARK_PRICE_DELIVERY = {  # a delivery contract: no funding, "r" empty and "T" 0
    "e": "markPriceUpdate",
    "E": 1700000005000,
    "s": "BTCUSD_231229",
    "p": "37410.21877001",
    "P": "37398.40000000",
    "i": "36951.01234500",
    "r": "",
    "T": 0,
}
DOC_USDM_FORCE_ORDER = {
    "e": "forceOrder",
    "E": 1700000006000,
    "o": {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.731",
        "p": "36700.10",
        "ap": "36755.82",
        "X": "FILLED",
        "l": "0.731",
        "z": "0.731",
        "T": 1700000005998,
    },
}
DOC_COINM_FORCE_ORDER = {
    "e": "forceOrder",
    "E": 1700000007000,
    "o": {
        "s": "BTCUSD_PERP",
        "ps": "BTCUSD",
        "S": "BUY",
        "o": "LIMIT",
        "f": "IOC",
        "q": "40",
        "p": "37100.0",
        "ap": "37051.3",
        "X": "FILLED",
        "l": "15",
        "z": "40",
        "T": 1700000006990,
    },
}

DOC_CASES: list[tuple[str, str, dict[str, Any], type]] = [
    ("spot", "ethbtc@trade", DOC_SPOT_TRADE_2023, Trade),
    ("spot", "ethusdt@ticker", DOC_SPOT_TICKER, Ticker),
    ("spot", "ethusdt@miniTicker", DOC_SPOT_MINI_TICKER, MiniTicker),
    ("spot", "ethusdt@depth20@100ms", DOC_SPOT_DEPTH20, PartialDepth),
    ("spot", "ethusdt@depth5", DOC_SPOT_DEPTH20, PartialDepth),
    ("usdm", "btcusdt@ticker", DOC_USDM_TICKER, FuturesTicker),
    ("usdm", "btcusdt@miniTicker", DOC_USDM_MINI_TICKER, FuturesMiniTicker),
    ("usdm", "btcusdt@depth5@500ms", DOC_USDM_DEPTH5, FuturesPartialDepth),
    ("usdm", "btcusdt@aggTrade", DOC_USDM_AGG_TRADE, FuturesAggTrade),
    ("usdm", "btcusdt@markPrice", DOC_USDM_MARK_PRICE, MarkPrice),
    ("usdm", "btcusdt@forceOrder", DOC_USDM_FORCE_ORDER, ForceOrder),
    ("coinm", "btcusd_perp@ticker", DOC_COINM_TICKER, FuturesTicker),
    ("coinm", "btcusd_perp@miniTicker", DOC_COINM_MINI_TICKER, FuturesMiniTicker),
    ("coinm", "btcusd_perp@depth10@100ms", DOC_COINM_DEPTH10, FuturesPartialDepth),
    ("coinm", "btcusd_231229@aggTrade", DOC_COINM_AGG_TRADE, FuturesAggTrade),
    ("coinm", "btcusd_perp@kline_1m", DOC_COINM_KLINE, KlineEvent),
    ("coinm", "btcusd_231229@markPrice@1s", DOC_COINM_MARK_PRICE_DELIVERY, MarkPrice),
    ("coinm", "btcusd_perp@forceOrder", DOC_COINM_FORCE_ORDER, ForceOrder),
]


def _sample_cases() -> list[tuple[str, str, dict[str, Any], type]]:
    """Every non-depth message of ``payloads/ws_samples_*.jsonl`` (real), with its expected type."""
    expected: dict[tuple[str, str], type] = {
        ("spot", "trade"): Trade,
        ("spot", "aggTrade"): AggTrade,
        ("spot", "kline_1m"): KlineEvent,
        ("spot", "bookTicker"): BookTicker,
        ("usdm", "trade"): FuturesTrade,
        ("usdm", "aggTrade"): FuturesAggTrade,
        ("usdm", "kline_1m"): KlineEvent,
        ("usdm", "bookTicker"): FuturesBookTicker,
        ("usdm", "markPrice@1s"): MarkPrice,
        ("coinm", "trade"): FuturesTrade,
        ("coinm", "bookTicker"): FuturesBookTicker,
    }
    cases: list[tuple[str, str, dict[str, Any], type]] = []
    for market in ("spot", "usdm", "coinm"):
        for line in message_lines(PAYLOADS / f"ws_samples_{market}.jsonl"):
            msg = json.loads(line)
            channel = msg["stream"].partition("@")[2]
            if channel.startswith("depth"):
                continue
            cases.append((market, msg["stream"], msg["data"], expected[market, channel]))
    return cases


SAMPLE_CASES = _sample_cases()
ALL_CASES = SAMPLE_CASES + DOC_CASES


def case_id(case: tuple[str, str, dict[str, Any], type]) -> str:
    return f"{case[0]}-{case[1]}"


# ------------------------------------------------------------------------- real payloads


def test_samples_cover_the_recorded_channels() -> None:
    kinds = Counter((market, type_.__name__) for market, _, _, type_ in SAMPLE_CASES)
    assert kinds == {
        ("spot", "Trade"): 3,
        ("spot", "AggTrade"): 6,
        ("spot", "KlineEvent"): 6,
        ("spot", "BookTicker"): 6,
        ("usdm", "FuturesTrade"): 6,
        ("usdm", "FuturesAggTrade"): 3,
        ("usdm", "KlineEvent"): 3,
        ("usdm", "FuturesBookTicker"): 9,
        ("usdm", "MarkPrice"): 3,
        ("coinm", "FuturesTrade"): 3,
        ("coinm", "FuturesBookTicker"): 3,
    }


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_decode_exact(case: tuple[str, str, dict[str, Any], type]) -> None:
    market, stream, data, type_ = case
    msg = decode(market, stream, compact(data))
    assert type(msg) is type_
    assert stream_type(market, stream) is type_
    check_exact(msg, data)


def test_known_real_values() -> None:
    """Spot values from ``ws_samples_spot.jsonl`` line 1-2, read off the file by eye."""
    ticker = decode(
        "spot",
        "btcusdt@bookTicker",
        b'{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000",'
        b'"a":"61837.64000000","A":"1.54698000"}',
    )
    assert ticker == BookTicker(
        u=50093239212,
        s="BTCUSDT",
        b=Decimal("61837.63000000"),
        B=Decimal("3.78826000"),
        a=Decimal("61837.64000000"),
        A=Decimal("1.54698000"),
    )
    assert str(ticker.b) == "61837.63000000"  # trailing zeros kept: the exchange's precision
    line = next(x for x in message_lines(PAYLOADS / "ws_samples_spot.jsonl") if b'"btcusdt@trade"' in x)
    trade = stream_decoder("spot", "btcusdt@trade", combined=True).decode(line)  # type: ignore[union-attr]
    assert trade == Combined(
        stream="btcusdt@trade",
        data=Trade(
            e="trade",
            E=1723161255343,
            s="BTCUSDT",
            t=3735683259,
            p=Decimal("61837.63000000"),
            q=Decimal("0.02000000"),
            T=1723161255342,
            m=True,
            M=True,
        ),
    )
    assert trade.data.b is None
    assert trade.data.a is None


def test_spot_trade_order_ids_optional() -> None:
    old = decode("spot", "ethbtc@trade", compact(DOC_SPOT_TRADE_2023))
    assert (old.b, old.a) == (88001, 88002)
    current = {k: v for k, v in DOC_SPOT_TRADE_2023.items() if k not in ("b", "a", "M")}
    new = decode("spot", "ethbtc@trade", compact(current))
    assert (new.b, new.a, new.M) == (None, None, None)
    assert new.p == Decimal("0.06512000")


def test_mark_price_funding_rate() -> None:
    perp = decode("usdm", "btcusdt@markPrice", compact(DOC_USDM_MARK_PRICE))
    assert perp.funding_rate == Decimal("0.00010000")
    assert perp.ap == Decimal("36928.90311111")
    delivery = decode("coinm", "btcusd_231229@markPrice@1s", compact(DOC_COINM_MARK_PRICE_DELIVERY))
    assert delivery.r == ""
    assert delivery.funding_rate is None
    assert delivery.T == 0
    assert delivery.ap is None
    real_data = next(data for _, _, data, type_ in SAMPLE_CASES if type_ is MarkPrice)
    real = decode("usdm", "btcusdt@markPrice@1s", compact(real_data))
    assert type(real) is MarkPrice
    assert real.funding_rate == Decimal("0.00002754")
    assert real.i == Decimal("28159.75642857")


# Recordings: (path, market, channel, expected type)
RECORDINGS = [
    (HFT / "spot" / "btcusdt_20240808.gz", "spot", "trade", Trade),
    (HFT / "spot" / "btcusdt_20240809.gz", "spot", "bookTicker", BookTicker),
    (HFT / "usdm" / "btcusdt_20240808.gz", "usdm", "trade", FuturesTrade),
    (HFT / "usdm" / "btcusdt_20240718.gz", "usdm", "bookTicker", FuturesBookTicker),
    (DERIVED / "binance_spot_btcusdt_20240808_bookTicker_at_depth_u.jsonl", "spot", "bookTicker", BookTicker),
    (
        DERIVED / "binance_usdm_btcusdt_20240808_bookTicker_at_depth_u.jsonl",
        "usdm",
        "bookTicker",
        FuturesBookTicker,
    ),
    (CF / "binance_spot_20210404.ws.jsonl", "spot", "aggTrade", AggTrade),
    (CF / "binance_spot_20210404.ws.jsonl", "spot", "kline_1m", KlineEvent),
    (CF / "binance_spot_20210814.ws.jsonl", "spot", "bookTicker", BookTicker),
    (CF / "binance_spot_20210814.ws.jsonl", "spot", "aggTrade", AggTrade),
    (CF / "binance_spot_20210814.ws.jsonl", "spot", "kline_1m", KlineEvent),
    (CF / "binance_usdm_20210722.ws.jsonl", "usdm", "bookTicker", FuturesBookTicker),
    (CF / "binance_usdm_20210722.ws.jsonl", "usdm", "aggTrade", FuturesAggTrade),
    (CF / "binance_usdm_20210722.ws.jsonl", "usdm", "kline_1m", KlineEvent),
]


@pytest.mark.parametrize(
    ("path", "market", "channel", "type_"),
    RECORDINGS,
    ids=[f"{p.name}-{c}" for p, _, c, _ in RECORDINGS],
)
def test_recordings_decode_exact(path: Path, market: str, channel: str, type_: type) -> None:
    """Every message of the channel decodes, bare and combined; exact field check on a spread sample."""
    messages = by_channel(path, channel)
    assert len(messages) > 10
    streams = {name for name, _, _ in messages}
    decoders = {name: stream_decoder(market, name) for name in streams}
    combined = {name: stream_decoder(market, name, combined=True) for name in streams}
    for i, (name, line, payload) in enumerate(messages):
        msg = decoders[name].decode(payload)  # type: ignore[union-attr]
        assert type(msg) is type_
        both = combined[name].decode(line)  # type: ignore[union-attr]
        assert both.stream == name
        assert both.data == msg
        if i < 300 or i % 25 == 0:
            check_exact(msg, json.loads(payload))


def test_recorded_sequences_are_consistent() -> None:
    """Decoded real trades are the exchange's: IDs climb by one, sizes positive, all Decimal."""
    messages = by_channel(HFT / "spot" / "btcusdt_20240808.gz", "trade")
    trades = [decode("spot", name, payload) for name, _, payload in messages]
    assert len(trades) == 9757  # PROVENANCE.md: 9,757 trades in this file
    assert all(b.t == a.t + 1 for a, b in itertools.pairwise(trades))
    assert all(t.q > 0 and t.p > 0 and t.b is None for t in trades)


# ---------------------------------------------------------------- types, no float anywhere


def _has_float(tp: Any) -> bool:
    if tp is float:
        return True
    return any(_has_float(arg) for arg in typing.get_args(tp))


@pytest.mark.parametrize("cls", ALL_STRUCTS, ids=lambda c: c.__name__)
def test_field_types(cls: type[msgspec.Struct]) -> None:
    hints = typing.get_type_hints(cls)
    assert hints, cls
    for name, tp in hints.items():
        assert not _has_float(tp), (cls.__name__, name, tp)
    # frozen and untracked by the garbage collector
    cfg = cls.__struct_config__
    assert cfg.frozen
    assert not cfg.gc


def test_price_fields_are_decimal() -> None:
    """The documented prices and quantities, field by field."""
    expected = {
        Trade: "pq",
        FuturesTrade: "pq",
        AggTrade: "pq",
        FuturesAggTrade: ["p", "q", "nq"],
        Kline: "ochlvqVQ",
        Ticker: "pPwxcQbBaAohlvq",
        FuturesTicker: "pPwcQohlvq",
        MiniTicker: "cohlvq",
        FuturesMiniTicker: "cohlvq",
        BookTicker: "bBaA",
        FuturesBookTicker: "bBaA",
        MarkPrice: ["p", "P", "i", "ap"],
        LiquidationOrder: ["q", "p", "ap", "l", "z"],
    }
    for cls, names in expected.items():
        hints = typing.get_type_hints(cls)
        for name in names:
            assert hints[name] in (Decimal, Decimal | None), (cls.__name__, name)
    level = tuple[Decimal, Decimal]
    assert typing.get_type_hints(PartialDepth)["bids"] == list[level]
    assert typing.get_type_hints(FuturesPartialDepth)["a"] == list[level]


def test_decoded_values_hold_no_float_and_are_untracked() -> None:
    for market, stream, data, _ in ALL_CASES:
        msg = decode(market, stream, compact(data))
        assert not gc.is_tracked(msg), stream
        for value in msgspec.structs.astuple(msg):
            assert not isinstance(value, float)
        with pytest.raises(AttributeError):
            msg.e = "x"  # frozen


def test_json_number_price_decodes_exactly() -> None:
    """A price sent as a JSON number (the exchange sends strings) still becomes an exact Decimal."""
    payload = b'{"u":1,"s":"X","b":0.1,"B":"1","a":1.10,"A":"2"}'
    msg = decode("spot", "x@bookTicker", payload)
    assert type(msg.b) is Decimal
    assert msg.b == Decimal("0.1")
    assert format(msg.a, "f") == "1.10"


# ---------------------------------------------------------- unknown, missing, mistyped


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_unknown_fields_ignored(case: tuple[str, str, dict[str, Any], type]) -> None:
    market, stream, data, _ = case
    plain = decode(market, stream, compact(data))
    extra: dict[str, Any] = {"zz": 1, "newField": {"nested": [1.5, "x", None]}, **data, "st": 1}
    for key in ("k", "o"):
        if isinstance(data.get(key), dict):
            extra[key] = {**data[key], "unknown": "1.5", "rpi": [["1", "2"]]}
    richer = decode(market, stream, compact(extra))
    assert richer == plain
    check_exact(richer, extra, extra_ok=True)


def _required(type_: type[msgspec.Struct]) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(type_) if f.required]


def _missing_cases() -> Iterator[tuple[str, str, dict[str, Any], str]]:
    for market, stream, data, type_ in DOC_CASES + SAMPLE_CASES[:1]:
        for name in _required(type_):
            yield market, stream, {k: v for k, v in data.items() if k != name}, name
        for key, inner in (("k", Kline), ("o", LiquidationOrder)):
            if isinstance(data.get(key), dict):
                for name in _required(inner):
                    nested = {k: v for k, v in data[key].items() if k != name}
                    yield market, stream, {**data, key: nested}, name


MISSING = list(_missing_cases())


@pytest.mark.parametrize(
    ("market", "stream", "data", "name"), MISSING, ids=[f"{m}-{s}-{n}" for m, s, _, n in MISSING]
)
def test_missing_required_field_raises(market: str, stream: str, data: dict[str, Any], name: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"missing required field `{name}`"):
        decode(market, stream, compact(data))


@pytest.mark.parametrize(
    ("market", "stream", "change"),
    [
        ("spot", "btcusdt@bookTicker", {"b": ""}),  # empty price
        ("spot", "btcusdt@bookTicker", {"b": "abc"}),
        ("spot", "btcusdt@bookTicker", {"b": None}),
        ("spot", "btcusdt@bookTicker", {"u": "50093239212"}),  # an int as text
        ("spot", "btcusdt@bookTicker", {"u": 1.5}),
        ("usdm", "btcusdt@trade", {"m": 1}),  # a bool as int
        ("usdm", "btcusdt@trade", {"m": "true"}),
        ("usdm", "btcusdt@trade", {"t": 5266583935.0}),
        ("usdm", "btcusdt@depth5@500ms", {"b": [["1", "2", "3"]]}),  # a level of three
        ("usdm", "btcusdt@depth5@500ms", {"b": [["1"]]}),
        ("usdm", "btcusdt@depth5@500ms", {"a": [["1", ""]]}),
        ("usdm", "btcusdt@markPrice", {"p": ""}),  # only r may be empty
        ("coinm", "btcusd_perp@kline_1m", {"k": {"t": 1}}),
        ("coinm", "btcusd_perp@kline_1m", {"k": None}),
    ],
)
def test_mistyped_field_raises(market: str, stream: str, change: dict[str, Any]) -> None:
    base = {
        "btcusdt@bookTicker": SAMPLE_CASES[0][2],
        "btcusdt@trade": next(c[2] for c in SAMPLE_CASES if c[0] == "usdm" and c[1] == "btcusdt@trade"),
        "btcusdt@depth5@500ms": DOC_USDM_DEPTH5,
        "btcusdt@markPrice": DOC_USDM_MARK_PRICE,
        "btcusd_perp@kline_1m": DOC_COINM_KLINE,
    }[stream]
    with pytest.raises(msgspec.ValidationError):
        decode(market, stream, compact({**base, **change}))


def test_malformed_json_raises() -> None:
    with pytest.raises(msgspec.DecodeError, match="truncated"):
        decode("spot", "btcusdt@trade", b'{"e":"trade","E":1,')


def test_market_matters() -> None:
    """A spot bookTicker lacks the futures keys: the futures decoder refuses it, and vice versa."""
    spot_payload = compact(SAMPLE_CASES[0][2])
    with pytest.raises(msgspec.ValidationError, match="missing required field `e`"):
        decode("usdm", "btcusdt@bookTicker", spot_payload)
    # a futures ticker lacks the spot-only best bid/ask: the spot decoder refuses it
    with pytest.raises(msgspec.ValidationError, match="missing required field"):
        decode("spot", "btcusdt@ticker", compact(DOC_USDM_TICKER))
    # spot partial depth is not the futures shape
    with pytest.raises(msgspec.ValidationError, match="missing required field"):
        decode("usdm", "btcusdt@depth20", compact(DOC_SPOT_DEPTH20))


# ------------------------------------------------------------------ channel and decoders

CHANNEL_TABLE = [
    ("btcusdt@kline_1m", "kline"),
    ("btcusdt@kline_1M", "kline"),
    ("btcusdt@depth20@100ms", "depthN"),
    ("btcusdt@depth5", "depthN"),
    ("btcusdt@depth10@500ms", "depthN"),
    ("btcusdt@depth@100ms", "depth"),
    ("btcusdt@depth", "depth"),
    ("btcusdt@depth@0ms", "depth"),  # the recordings' futures name
    ("btcusdt@bookTicker", "bookTicker"),
    ("!bookTicker", "bookTicker"),
    ("btcusdt@aggTrade", "aggTrade"),
    ("btcusdt@trade", "trade"),
    ("btcusdt@ticker", "ticker"),
    ("btcusdt@miniTicker", "miniTicker"),
    ("btcusdt@markPrice", "markPrice"),
    ("btcusdt@markPrice@1s", "markPrice"),
    ("btcusd_perp@forceOrder", "forceOrder"),
    ("BTCUSDT@trade", "trade"),  # the symbol's case does not matter here
    # other
    ("btcusdt@avgPrice", "other"),
    ("btcusdt@ticker_1h", "other"),
    ("btcusdt@rpiDepth@500ms", "other"),
    ("btcusdt_perpetual@continuousKline_1m", "other"),
    ("btcusdt@indexPrice", "other"),
    ("!ticker@arr", "other"),
    ("!markPrice@arr@1s", "other"),
    ("btcusdt@bookticker", "other"),  # channel names are case-sensitive
    ("btcusdt@Trade", "other"),
    ("btcusdt@kline_", "other"),
    ("btcusdt@kline", "other"),
    ("btcusdt@depth@", "other"),
    ("btcusdt@depth@fast", "other"),
    ("btcusdt@depth15x", "other"),
    ("btcusdt@markPrice@3s", "other"),
    ("btcusdt@trade@100ms", "other"),
    ("btcusdt@depth20@100ms@x", "other"),
    ("btcusdt", "other"),
    ("@trade", "other"),
    ("", "other"),
]


@pytest.mark.parametrize(("stream", "channel"), CHANNEL_TABLE)
def test_stream_channel(stream: str, channel: str) -> None:
    assert stream_channel(stream) == channel
    assert channel in st.CHANNELS


DECODER_TABLE = [
    ("spot", "btcusdt@trade", Trade),
    ("spot", "btcusdt@aggTrade", AggTrade),
    ("spot", "btcusdt@kline_1s", KlineEvent),
    ("spot", "btcusdt@ticker", Ticker),
    ("spot", "btcusdt@miniTicker", MiniTicker),
    ("spot", "btcusdt@bookTicker", BookTicker),
    ("spot", "btcusdt@depth20@100ms", PartialDepth),
    ("spot", "btcusdt@depth", None),
    ("spot", "btcusdt@depth@100ms", None),
    ("spot", "btcusdt@markPrice", None),  # futures only
    ("spot", "btcusdt@forceOrder", None),
    ("spot", "btcusdt@avgPrice", None),
    ("spot", "nonsense", None),
    ("usdm", "btcusdt@trade", FuturesTrade),
    ("usdm", "btcusdt@aggTrade", FuturesAggTrade),
    ("usdm", "btcusdt@kline_4h", KlineEvent),
    ("usdm", "btcusdt@ticker", FuturesTicker),
    ("usdm", "btcusdt@miniTicker", FuturesMiniTicker),
    ("usdm", "btcusdt@bookTicker", FuturesBookTicker),
    ("usdm", "!bookTicker", FuturesBookTicker),
    ("usdm", "btcusdt@depth5@500ms", FuturesPartialDepth),
    ("usdm", "btcusdt@markPrice@1s", MarkPrice),
    ("usdm", "btcusdt@forceOrder", ForceOrder),
    ("usdm", "btcusdt@depth@500ms", None),
    ("usdm", "btcusdt@rpiDepth@500ms", None),
    ("coinm", "btcusd_perp@trade", FuturesTrade),
    ("coinm", "btcusd_perp@aggTrade", FuturesAggTrade),
    ("coinm", "btcusd_perp@kline_1M", KlineEvent),
    ("coinm", "btcusd_perp@ticker", FuturesTicker),
    ("coinm", "btcusd_perp@miniTicker", FuturesMiniTicker),
    ("coinm", "btcusd_perp@bookTicker", FuturesBookTicker),
    ("coinm", "btcusd_perp@depth10", FuturesPartialDepth),
    ("coinm", "btcusd_perp@markPrice", MarkPrice),
    ("coinm", "btcusd_perp@forceOrder", ForceOrder),
    ("coinm", "btcusd_perp@depth", None),
    ("coinm", "btcusd_perp@indexPrice", None),
]


@pytest.mark.parametrize(("market", "stream", "type_"), DECODER_TABLE)
def test_stream_decoder_table(market: str, stream: str, type_: type | None) -> None:
    decoder = stream_decoder(market, stream)
    wrapped = stream_decoder(market, stream, combined=True)
    assert stream_type(market, stream) is type_
    if type_ is None:
        assert decoder is None
        assert wrapped is None
        return
    assert isinstance(decoder, msgspec.json.Decoder)
    assert decoder.type is type_
    assert isinstance(wrapped, msgspec.json.Decoder)
    assert wrapped.type == Combined[type_]  # type: ignore[valid-type]
    # the same module-level objects on every call, whatever form the market is given in
    for again in (market, Market.parse(market), market.upper()):
        assert stream_decoder(again, stream) is decoder
        assert stream_decoder(again, stream, combined=True) is wrapped
    # and shared across stream names and symbols of the same channel
    other = "ethusdt@" + stream.partition("@")[2] if not stream.startswith("!") else stream
    assert stream_decoder(market, other) is decoder


def test_decoders_are_singletons() -> None:
    seen: dict[type, msgspec.json.Decoder[Any]] = {}
    for market, stream, type_ in DECODER_TABLE:
        decoder = stream_decoder(market, stream)
        if type_ is None:
            continue
        assert decoder is not None
        assert seen.setdefault(type_, decoder) is decoder  # USD-M and COIN-M share one per type
    assert len(seen) == len({t for _, _, t in DECODER_TABLE if t is not None})
    assert stream_decoder("usdm", "btcusdt@trade") is stream_decoder("coinm", "btcusd_perp@trade")
    assert stream_decoder("spot", "btcusdt@kline_1m") is stream_decoder("usdm", "btcusdt@kline_1m")


def test_unknown_market_raises() -> None:
    with pytest.raises(ValueError, match="unknown market"):
        stream_decoder("margin", "btcusdt@trade")
    with pytest.raises(ValueError, match="unknown market"):
        validate_stream_name("options", "btcusdt@trade")


def test_combined_decoder_one_pass() -> None:
    line = next(x for x in message_lines(PAYLOADS / "ws_samples_usdm.jsonl") if b'"btcusdt@bookTicker"' in x)
    wrapped = stream_decoder("usdm", "btcusdt@bookTicker", combined=True)
    assert wrapped is not None
    msg = wrapped.decode(line)
    assert msg.stream == "btcusdt@bookTicker"
    assert msg.data == decode("usdm", "btcusdt@bookTicker", data_slice(line))
    assert msg.data.b == Decimal("61800.20")
    assert not gc.is_tracked(msg)
    with pytest.raises(msgspec.ValidationError, match="missing required field `data`"):
        wrapped.decode(b'{"stream":"btcusdt@bookTicker"}')
    # a memoryview works, and the result owns its values (nothing points into the buffer)
    buf = bytearray(line)
    again = wrapped.decode(memoryview(buf))
    buf[:] = b" " * len(buf)
    assert again == msg


# --------------------------------------------------------------------- stream symbol


@pytest.mark.parametrize(
    ("stream", "symbol"),
    [
        ("btcusdt@trade", "BTCUSDT"),
        ("BTCUSDT@trade", "BTCUSDT"),
        ("btcusd_perp@depth20@100ms", "BTCUSD_PERP"),
        ("ethbtc@kline_1M", "ETHBTC"),
        ("!bookTicker", ""),
        ("!miniTicker@arr", ""),
    ],
)
def test_stream_symbol(stream: str, symbol: str) -> None:
    assert stream_symbol(stream) == symbol


@pytest.mark.parametrize("stream", ["btcusdt", "@trade", ""])
def test_stream_symbol_malformed(stream: str) -> None:
    with pytest.raises(ValueError, match="has no symbol"):
        stream_symbol(stream)


# --------------------------------------------------------------------- name validation

VALID = [
    ("spot", "btcusdt@trade", "btcusdt@trade"),
    ("spot", "BTCUSDT@bookTicker", "btcusdt@bookTicker"),
    ("spot", "BtcUsdt@aggTrade", "btcusdt@aggTrade"),
    ("spot", "btcusdt@kline_1s", "btcusdt@kline_1s"),
    ("spot", "btcusdt@kline_1M", "btcusdt@kline_1M"),
    ("spot", "btcusdt@kline_1m", "btcusdt@kline_1m"),
    ("spot", "btcusdt@depth", "btcusdt@depth"),
    ("spot", "btcusdt@depth@100ms", "btcusdt@depth@100ms"),
    ("spot", "btcusdt@depth@1000ms", "btcusdt@depth@1000ms"),
    ("spot", "BTCUSDT@depth20@1000ms", "btcusdt@depth20@1000ms"),
    ("spot", "btcusdt@depth5@100ms", "btcusdt@depth5@100ms"),
    ("spot", "btcusdt@ticker", "btcusdt@ticker"),
    ("spot", "btcusdt@miniTicker", "btcusdt@miniTicker"),
    ("spot", "btcusdt@ticker_4h", "btcusdt@ticker_4h"),
    ("spot", "btcusdt@avgPrice", "btcusdt@avgPrice"),
    ("spot", "!ticker@arr", "!ticker@arr"),
    ("spot", "!ticker_1d@arr", "!ticker_1d@arr"),
    ("usdm", "BTCUSDT@depth@250ms", "btcusdt@depth@250ms"),
    ("usdm", "btcusdt@depth@500ms", "btcusdt@depth@500ms"),
    ("usdm", "btcusdt@depth10@250ms", "btcusdt@depth10@250ms"),
    ("usdm", "btcusdt@markPrice@1s", "btcusdt@markPrice@1s"),
    ("usdm", "btcusdt@markPrice", "btcusdt@markPrice"),
    ("usdm", "btcusdt@forceOrder", "btcusdt@forceOrder"),
    ("usdm", "btcusdt@kline_12h", "btcusdt@kline_12h"),
    ("usdm", "btcusdt@rpiDepth@500ms", "btcusdt@rpiDepth@500ms"),
    ("usdm", "btcusdt_perpetual@continuousKline_1m", "btcusdt_perpetual@continuousKline_1m"),
    ("usdm", "BTCUSDT_240927@bookTicker", "btcusdt_240927@bookTicker"),
    ("usdm", "!bookTicker", "!bookTicker"),
    ("usdm", "!markPrice@arr@1s", "!markPrice@arr@1s"),
    ("coinm", "BTCUSD_PERP@depth20@100ms", "btcusd_perp@depth20@100ms"),
    ("coinm", "btcusd_perp@indexPrice@1s", "btcusd_perp@indexPrice@1s"),
    ("coinm", "btcusd_perp@trade", "btcusd_perp@trade"),
    ("coinm", "!forceOrder@arr", "!forceOrder@arr"),
]


@pytest.mark.parametrize(("market", "stream", "normal"), VALID)
def test_validate_stream_name_valid(market: str, stream: str, normal: str) -> None:
    assert validate_stream_name(market, stream) == normal
    assert validate_stream_name(Market.parse(market), normal) == normal  # idempotent
    routes = ("/public", "/market") if market == "usdm" else ("",)
    assert any(valid_stream(market, normal, r) for r in routes)  # the local exchange agrees


INVALID = [
    ("spot", "btcusdt@kline_1H", "case-sensitive.*'1h'"),
    ("usdm", "btcusdt@kline_1s", "1s klines are spot only"),
    ("coinm", "btcusd_perp@kline_2d", "interval '2d' is not valid"),
    ("spot", "btcusdt@kline", "needs an interval"),
    ("spot", "btcusdt@kline_", "interval '' is not valid"),
    ("spot", "btcusdt@depth@250ms", "depth speed '@250ms' is not served on spot"),
    ("spot", "btcusdt@depth20@500ms", "not served on spot; use one of @100ms, @1000ms"),
    ("usdm", "btcusdt@depth@1000ms", "not served on usdm; use one of @100ms, @250ms, @500ms"),
    ("usdm", "btcusdt@depth@0ms", "depth speed '@0ms'"),  # the recorder's name; not documented
    ("usdm", "btcusdt@depth15", "levels must be 5, 10 or 20"),
    ("spot", "btcusdt@depth100", "levels must be 5, 10 or 20"),
    ("spot", "btcusdt@bookticker", "case-sensitive, did you mean 'bookTicker'"),
    ("usdm", "btcusdt@AGGTRADE", "did you mean 'aggTrade'"),
    ("spot", "btcusdt@miniticker", "did you mean 'miniTicker'"),
    ("spot", "btcusdt@markPrice", "futures stream, not served on spot"),
    ("spot", "btcusdt@forceOrder", "'forceOrder' is not served on spot"),
    ("usdm", "btcusdt@avgPrice", "'avgPrice' is not served on usdm"),
    ("usdm", "btcusdt@ticker_1h", "'ticker' streams are not served on usdm"),
    ("spot", "btcusdt@ticker_2h", "window '2h' is not valid"),
    ("usdm", "btcusdt@markPrice@3s", "use '@1s' or none"),
    ("usdm", "btcusdt@rpiDepth", "only as 'rpiDepth@500ms'"),
    ("spot", "btcusdt@rpiDepth@500ms", "futures stream"),
    ("spot", "btcusdt@trade@100ms", "takes no '@100ms' suffix"),
    ("spot", "btcusdt@depth@", "ends with '@'"),
    ("spot", "btcusdt@foo", "unknown channel 'foo' on spot"),
    ("spot", "!bookTicker", "spot removed it in 2022"),
    ("usdm", "!ticker_1h@arr", "not an all-symbol stream of usdm"),
    ("spot", "btcusdt", "no '@'"),
    ("spot", "@trade", "no symbol before '@'"),
    ("spot", "btcusdt@", "no channel after '@'"),
    ("spot", "", "empty; expected"),
    ("spot", "btc usdt@trade", "ASCII letters, digits and '_'"),
    ("spot", " btcusdt@trade", "ASCII letters"),
    ("spot", "btc-usdt@trade", "ASCII letters"),
    ("spot", "_btcusdt@trade", "ASCII letters"),
    ("spot", "\u212aavausdt@trade", "ASCII letters"),  # Kelvin sign: lower() would make it "k"
    ("spot", "btcusdt@trade/ethusdt@trade", "one name per call"),
    ("spot", "btcusdt@trade ", "only ASCII letters, digits, '_' and '@'"),
    ("spot", "btcusdt@tr\u00e4de", "only ASCII letters"),
    ("usdm", "btcusdt@kline_1m@1s", "takes no '@1s' suffix"),
]


@pytest.mark.parametrize(("market", "stream", "message"), INVALID)
def test_validate_stream_name_invalid(market: str, stream: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        validate_stream_name(market, stream)
    assert repr(stream) in str(info.value)  # the message names the stream
    routes = ("/public", "/market") if market == "usdm" else ("",)
    assert not any(valid_stream(market, stream, r) for r in routes)  # the local exchange refuses too


def test_validate_stream_name_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        validate_stream_name("spot", b"btcusdt@trade")  # type: ignore[arg-type]


def _corpus() -> list[str]:
    """Many names, valid and not, built from every channel spelling, speed and interval variant."""
    bases = [
        "trade", "aggTrade", "bookTicker", "ticker", "miniTicker", "avgPrice", "forceOrder",
        "compositeIndex", "assetIndex", "markPrice", "indexPrice", "rpiDepth", "depth", "depth5",
        "depth10", "depth20", "depth15", "depth0", "bookticker", "Trade", "kline", "ticker_1h",
        "ticker_4h", "ticker_1d", "ticker_1w", "blockTrade",
    ]  # fmt: skip
    bases += [f"kline_{i}" for i in ("1s", "1m", "1M", "3m", "2h", "12h", "1w", "1y", "1H", "")]
    bases += [f"continuousKline_{i}" for i in ("1m", "1s", "1d")]
    suffixes = ["", "@100ms", "@250ms", "@500ms", "@1000ms", "@0ms", "@1s", "@3s", "@"]
    names = [f"{sym}@{b}{s}" for sym in ("btcusdt", "btcusd_perp") for b in bases for s in suffixes]
    names += [
        "!bookTicker", "!ticker@arr", "!miniTicker@arr", "!markPrice@arr", "!markPrice@arr@1s",
        "!forceOrder@arr", "!contractInfo", "!assetIndex@arr", "!ticker_1h@arr", "!ticker_4h@arr",
        "!ticker_1d@arr", "!kline@arr", "btcusdt", "@trade", "btc-usdt@trade", "_x@trade",
    ]  # fmt: skip
    return names


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_validate_agrees_with_the_local_exchange(market: str) -> None:
    """Over a corpus of names: accepted here exactly when ``tickbook.sim.ws.valid_stream`` accepts
    it on some route of the market; for USD-M, on the route ``usdm_route`` names."""
    routes = ("/public", "/market") if market == "usdm" else ("",)
    accepted = 0
    for name in _corpus():
        sim_ok = any(valid_stream(market, name, r) for r in routes)
        try:
            normal = validate_stream_name(market, name)
        except ValueError:
            assert not sim_ok, name
            continue
        accepted += 1
        assert normal == name, name  # the corpus is already lower-case
        assert sim_ok, name
        if market == "usdm":
            route = usdm_route(name)
            assert valid_stream(market, name, route), (name, route)
            other = "/market" if route == "/public" else "/public"
            assert not valid_stream(market, name, other), (name, other)
            assert valid_stream(market, name, "") == (route == "/public"), name  # unrouted: /public only
    assert accepted > 40


# ---------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    ("stream", "route"),
    [
        ("btcusdt@depth", "/public"),
        ("btcusdt@depth@100ms", "/public"),
        ("btcusdt@depth@500ms", "/public"),
        ("btcusdt@depth5", "/public"),
        ("btcusdt@depth20@100ms", "/public"),
        ("btcusdt@bookTicker", "/public"),
        ("!bookTicker", "/public"),
        ("btcusdt@rpiDepth@500ms", "/public"),
        ("btcusdt@aggTrade", "/market"),
        ("btcusdt@trade", "/market"),
        ("btcusdt@markPrice", "/market"),
        ("btcusdt@markPrice@1s", "/market"),
        ("btcusdt@kline_1m", "/market"),
        ("btcusdt_perpetual@continuousKline_1m", "/market"),
        ("btcusdt@ticker", "/market"),
        ("btcusdt@miniTicker", "/market"),
        ("btcusdt@forceOrder", "/market"),
        ("btcusdt@compositeIndex", "/market"),
        ("!markPrice@arr@1s", "/market"),
        ("!miniTicker@arr", "/market"),
        ("!forceOrder@arr", "/market"),
        ("!contractInfo", "/market"),
        ("BTCUSDT@depth", "/public"),
    ],
)
def test_usdm_route(stream: str, route: str) -> None:
    assert usdm_route(stream) == route


# ------------------------------------------------- the local exchange's served payloads


def _check_levels(decoded: list[tuple[Decimal, Decimal]], truth: list[tuple[str, str]]) -> None:
    assert [(p, q) for p, q in decoded] == [(Decimal(p), Decimal(q)) for p, q in truth]


@pytest.mark.parametrize(
    ("market", "symbol"), [("spot", "BTCUSDT"), ("usdm", "BTCUSDT"), ("coinm", "BTCUSD_PERP")]
)
def test_generated_market_streams(market: str, symbol: str) -> None:
    """Every bookTicker, depthN, trade and aggTrade the generated market serves decodes exactly."""
    lower = symbol.lower()
    speed = "@100ms" if market == "spot" else "@500ms"
    source = GeneratedMarket([symbol], market, seed=11, levels=80, max_events=60)
    source.set_derived([f"{lower}@bookTicker", f"{lower}@depth20", f"{lower}@depth5{speed}"])
    kinds: Counter[str] = Counter()
    while source.next_time_ms() is not None:
        for event in source.step():
            if event.kind == "depth":
                assert stream_decoder(market, event.stream) is None  # the book's stream
                continue
            name = validate_stream_name(market, event.stream)
            assert name == event.stream
            msg = decode(market, name, event.payload)
            assert type(msg) is stream_type(market, name)
            check_exact(msg, json.loads(event.payload))
            kinds[event.kind] += 1
        truth = source.truth(symbol)
        depth = decode(market, f"{lower}@depth20", source.derived(symbol, "depth20"))
        bids, asks = (depth.bids, depth.asks) if market == "spot" else (depth.b, depth.a)
        _check_levels(bids, truth.bids_str(20))
        _check_levels(asks, truth.asks_str(20))
        ticker = decode(market, f"{lower}@bookTicker", source.derived(symbol, "bookTicker"))
        best_bid, best_ask = truth.best_bid_str(), truth.best_ask_str()
        assert best_bid is not None
        assert best_ask is not None
        assert (ticker.b, ticker.B) == (Decimal(best_bid[0]), Decimal(best_bid[1]))
        assert (ticker.a, ticker.A) == (Decimal(best_ask[0]), Decimal(best_ask[1]))
        assert ticker.u == truth.last_update_id
    assert set(kinds) == {"bookTicker", "depth20", "depth5", "trade", "aggTrade"}, kinds
    if market == "coinm":
        assert depth.ps == "BTCUSD"
        assert ticker.ps == "BTCUSD"


@pytest.mark.parametrize(
    ("paths", "snapshots", "market"),
    [
        (
            [DERIVED / "binance_spot_btcusdt_20240808_depth_head1000.jsonl"],
            [DERIVED / "binance_spot_btcusdt_20240808_snapshot.json"],
            "spot",
        ),
        ([HFT / "usdm" / "btcusdt_20240718.gz"], [], "usdm"),
    ],
    ids=["spot", "usdm"],
)
def test_recorded_market_streams(paths: list[Path], snapshots: list[Path], market: str) -> None:
    """The recorded market's derived bookTicker / depth20 and its recorded trades decode exactly."""
    source = RecordedMarket.from_files(paths, market, snapshots=snapshots)
    source.set_derived(["btcusdt@bookTicker", "btcusdt@depth20@100ms"])
    kinds: Counter[str] = Counter()
    for _ in range(400):
        if source.next_time_ms() is None:
            break
        for event in source.step():
            if event.kind == "depth":
                continue
            msg = decode(market, validate_stream_name(market, event.stream), event.payload)
            check_exact(msg, json.loads(event.payload))
            kinds[event.kind] += 1
            if event.kind == "depth20":
                truth = source.truth("BTCUSDT")
                bids = msg.bids if market == "spot" else msg.b
                _check_levels(bids, truth.bids_str(20))
    assert kinds["bookTicker"] > 10, kinds
    assert kinds["depth20"] > 100, kinds
    if market == "usdm":
        assert kinds["trade"] > 10  # recorded trades, served as recorded
