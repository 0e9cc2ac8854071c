"""The local exchange's trade-derived market data (aggTrades, klines, avgPrice, ticker/24hr,
ticker/price, historicalTrades) end to end through ``RestClient``.

The exchange is paused, its kept trades are read back through ``GET /trades`` (limit 1000:
every kept trade), and each answer is compared with an independent computation from those
trades, in exact Decimals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tickbook.signing import HmacKey
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange
from tickbook.trading.client import RestClient
from tickbook.trading.errors import BinanceError

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

Start = Callable[..., ExchangeHandle]
SYMBOL = "BTCUSDT"
API_KEY, SECRET = "marketdatakey", "marketdatasecret"
PREFIX = {"spot": "/api/v3", "usdm": "/fapi/v1"}
MINUTE = 60_000


def _paused(exchange: Start, market: str) -> ExchangeHandle:
    ex = exchange(
        lambda: GeneratedMarket([SYMBOL], market, seed=11, levels=60),
        speed=None,
        weight_limit=100_000,
        keys=[f"{API_KEY}:{SECRET}"],
    )
    for _ in range(100):  # until enough trades were replayed
        if len(ex.exchange.recent_trades(SYMBOL)) >= 200:
            break
        time.sleep(0.05)
    ex.pause()
    ex.wait_paused()
    return ex


def _rounded(value: Decimal, market: str) -> Decimal:
    """What the wire can carry: spot writes 8 decimals, futures the exact value."""
    return value.quantize(Decimal("1e-8")) if market == "spot" else value


async def _code(coro: Any) -> int | None:
    with pytest.raises(BinanceError) as info:
        await coro
    return info.value.code


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_trade_derived_market_data(exchange: Start, market: str) -> None:
    ex = _paused(exchange, market)

    async def main() -> None:
        async with RestClient(market, base_url=ex.rest_url, key=HmacKey(API_KEY, SECRET)) as client:
            trades = await client.trades(SYMBOL, limit=1000)
            assert len(trades) >= 50
            ids = [t.id for t in trades]
            assert ids == sorted(ids)

            # historicalTrades: the same trades, from an id on
            history = await client.historical_trades(SYMBOL, limit=20, from_id=trades[10].id)
            assert [t.id for t in history] == ids[10:30]
            assert [t.price for t in history] == [t.price for t in trades[10:30]]

            # aggTrades: runs of consecutive trades at one price and side
            groups: list[list[Any]] = []
            for t in trades:
                if (
                    groups
                    and groups[-1][-1].price == t.price
                    and groups[-1][-1].is_buyer_maker == t.is_buyer_maker
                ):
                    groups[-1].append(t)
                else:
                    groups.append([t])
            aggs = await client.agg_trades(SYMBOL, limit=1000)
            assert len(aggs) == len(groups) < len(trades)  # some trades did aggregate
            for agg, group in zip(aggs, groups, strict=True):
                assert (agg.first_trade_id, agg.last_trade_id) == (group[0].id, group[-1].id)
                assert agg.price == group[0].price
                assert agg.qty == sum((t.qty for t in group), Decimal(0))
                assert agg.time == group[0].time
                assert agg.is_buyer_maker == group[0].is_buyer_maker
                assert (agg.is_best_match is not None) == (market == "spot")
            assert await client.agg_trades(SYMBOL, limit=3) == aggs[-3:]
            assert await client.agg_trades(SYMBOL, from_id=aggs[5].agg_trade_id, limit=4) == aggs[5:9]
            window = await client.agg_trades(SYMBOL, start_time=aggs[2].time, end_time=aggs[8].time)
            assert window == [a for a in aggs if aggs[2].time <= a.time <= aggs[8].time]

            # klines: 1m OHLCV buckets of the trade times
            buckets: dict[int, list[Any]] = {}
            for t in trades:
                buckets.setdefault(t.time // MINUTE * MINUTE, []).append(t)
            klines = await client.klines(SYMBOL, "1m", limit=1000)
            assert [k.open_time for k in klines] == sorted(buckets)
            for k in klines:
                group = buckets[k.open_time]
                assert k.close_time == k.open_time + MINUTE - 1
                assert (k.open, k.close) == (group[0].price, group[-1].price)
                assert k.high == max(t.price for t in group)
                assert k.low == min(t.price for t in group)
                assert k.volume == sum((t.qty for t in group), Decimal(0))
                assert k.quote_volume == _rounded(sum((t.price * t.qty for t in group), Decimal(0)), market)
                assert k.trades == len(group)
                buys = [t for t in group if not t.is_buyer_maker]
                assert k.taker_buy_base_volume == sum((t.qty for t in buys), Decimal(0))
                assert k.taker_buy_quote_volume == _rounded(
                    sum((t.price * t.qty for t in buys), Decimal(0)), market
                )
            if len(klines) > 1:
                assert await client.klines(SYMBOL, "1m", limit=1) == klines[-1:]
                assert (
                    await client.klines(SYMBOL, "1m", start_time=klines[0].open_time + 1, limit=1)
                    == klines[1:2]
                )
                assert await client.klines(SYMBOL, "1m", end_time=klines[0].open_time) == klines[:1]
            months: dict[int, int] = {}  # calendar-month candles: open time -> trades
            for t in trades:
                when = datetime.fromtimestamp(t.time // 1000, tz=UTC)
                start = int(datetime(when.year, when.month, 1, tzinfo=UTC).timestamp()) * 1000
                months[start] = months.get(start, 0) + 1
            monthly = await client.klines(SYMBOL, "1M")
            assert [(k.open_time, k.trades) for k in monthly] == sorted(months.items())

            # ticker/24hr and ticker/price: the last 24 hours of trades
            last = trades[-1]
            day = [t for t in trades if t.time > last.time - 86_400_000]
            stats = await client.ticker_24h(SYMBOL)
            assert stats.symbol == SYMBOL
            assert stats.last_price == last.price
            assert stats.last_qty == last.qty
            assert stats.open_price == day[0].price
            assert stats.high_price == max(t.price for t in day)
            assert stats.low_price == min(t.price for t in day)
            assert stats.volume == sum((t.qty for t in day), Decimal(0))
            assert stats.quote_volume == _rounded(sum((t.price * t.qty for t in day), Decimal(0)), market)
            assert stats.price_change == last.price - day[0].price
            assert (stats.first_id, stats.last_id, stats.count) == (day[0].id, last.id, len(day))
            assert (stats.open_time, stats.close_time) == (day[0].time, last.time)
            vwap = sum((t.price * t.qty for t in day), Decimal(0)) / sum((t.qty for t in day), Decimal(0))
            assert stats.weighted_avg_price == _rounded(vwap, market)
            assert (stats.bid_price is not None) == (market == "spot")
            assert await client.ticker_24h() == [stats]
            price = await client.ticker_price(SYMBOL)
            assert (price.symbol, price.price) == (SYMBOL, last.price)
            assert (price.time == last.time) if market == "usdm" else price.time is None
            assert await client.ticker_price() == [price]

            # avgPrice (spot): VWAP of the last 5 minutes of trades
            if market == "spot":
                recent = [t for t in trades if t.time > last.time - 5 * MINUTE]
                expected = sum((t.price * t.qty for t in recent), Decimal(0)) / sum(
                    (t.qty for t in recent), Decimal(0)
                )
                avg = await client.avg_price(SYMBOL)
                assert (avg.mins, avg.close_time) == (5, last.time)
                assert avg.price == expected.quantize(Decimal("1e-8"))

    asyncio.run(main())
    ex.resume()


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_trade_derived_market_data_refuses_bad_parameters(exchange: Start, market: str) -> None:
    ex = _paused(exchange, market)
    p = PREFIX[market]

    async def main() -> None:
        async with RestClient(market, base_url=ex.rest_url) as client:
            assert await _code(client.klines(SYMBOL, "2m")) == -1120
            if market == "usdm":  # 1s candles are spot's only
                assert await _code(client.klines(SYMBOL, "1s")) == -1120
            else:
                assert await client.klines(SYMBOL, "1s", limit=5)
            assert await _code(client.request("GET", f"{p}/klines", {"symbol": SYMBOL})) == -1102
            assert await _code(client.klines("NOPE", "1m")) == -1121
            assert await _code(client.agg_trades("NOPE")) == -1121
            assert await _code(client.ticker_24h("NOPE")) == -1121
            assert await _code(client.ticker_price("NOPE")) == -1121
            assert await _code(client.request("GET", f"{p}/aggTrades", {})) == -1102
            bad_limit = {"symbol": SYMBOL, "limit": "x"}
            assert await _code(client.request("GET", f"{p}/aggTrades", bad_limit)) == -1100
            bad_start = {"symbol": SYMBOL, "interval": "1m", "startTime": "soon"}
            assert await _code(client.request("GET", f"{p}/klines", bad_start)) == -1100
            if market == "spot":
                assert await _code(client.avg_price("NOPE")) == -1121
                bad_zone = {"symbol": SYMBOL, "interval": "1h", "timeZone": "+15:00"}
                assert await _code(client.request("GET", f"{p}/klines", bad_zone)) == -1100
                assert (
                    await _code(client.request("GET", f"{p}/ticker/24hr", {"symbol": SYMBOL, "type": "X"}))
                    == -1100
                )
            else:  # futures historicalTrades is MARKET_DATA: the API key header is required
                assert (
                    await _code(client.request("GET", f"{p}/historicalTrades", {"symbol": SYMBOL})) == -2014
                )

    asyncio.run(main())
    ex.resume()


def test_coinm_ticker_counts_turnover_in_the_base_coin(exchange: Start) -> None:
    """COIN-M's 24 h ticker has ``pair`` and ``baseVolume`` (contracts valued in the coin)
    where the other markets have ``quoteVolume``; the client decodes either."""
    symbol = "BTCUSD_PERP"
    ex = exchange(lambda: GeneratedMarket([symbol], "coinm", seed=11, levels=60), speed=None)
    for _ in range(100):  # until enough trades were replayed
        if len(ex.exchange.recent_trades(symbol)) >= 50:
            break
        time.sleep(0.05)
    ex.pause()
    ex.wait_paused()

    async def main() -> None:
        async with RestClient("coinm", base_url=ex.rest_url) as client:
            trades = await client.trades(symbol, limit=1000)
            last = trades[-1]
            day = [t for t in trades if t.time > last.time - 86_400_000]
            stats = await client.ticker_24h(symbol)
            assert (stats.symbol, stats.pair) == (symbol, "BTCUSD")
            assert stats.quote_volume is None
            assert stats.volume == sum((t.qty for t in day), Decimal(0))
            info = await client.request_json("GET", "/dapi/v1/exchangeInfo")
            (entry,) = [s for s in info["symbols"] if s["symbol"] == symbol]
            contract_size = Decimal(str(entry["contractSize"]))
            # each contract is worth contractSize USD: in the coin, qty x size / price (the
            # trades' own baseQty are rounded to 8 decimals, the ticker sums the exact values)
            exact = sum((t.qty * contract_size / t.price for t in day), Decimal(0))
            assert stats.base_volume is not None
            assert abs(stats.base_volume - exact) < Decimal("1e-20")
            assert stats.last_price == last.price

    asyncio.run(main())
