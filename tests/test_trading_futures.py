"""USD-M futures trading (tickbook.trading.futures) end to end against the local exchange.

The replay is held, so the true book stays where it starts (BTCUSDT around 60000); the
account's wallet holds 10000 USDT. BTCUSDT's exchangeInfo is the recorded one (spec §7 USD-M
formulas: PRICE_FILTER minPrice 556.72 tick 0.01 on ``(price - minPrice) % tick``, LOT_SIZE
min 0.001 step 0.001, MIN_NOTIONAL 5, PERCENT_PRICE 0.85..1.15 of the mark price). Expected
codes come from binance-spec §6.3, §7 and §10.3, not from the code under test.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from _trading_exchange import QTY, SYM, Start, run, start_held, top, trading_client
from tickbook.signing import HmacKey
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange
from tickbook.trading.errors import FilterFailure, OrderRejected, RequestError
from tickbook.trading.futures import (
    FuturesTrading,
    ReconciledAlgoOrder,
    ReconciledFuturesOrder,
    is_reconciled,
)
from tickbook.trading.models import ApiMessage, FuturesOrder
from tickbook.trading.orders import ReconcilePolicy
from tickbook.trading.tracker import OrderTracker

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

KEY = HmacKey("futures-trader", "futures-trader-secret")


def start(exchange: Start, **options: Any) -> ExchangeHandle:
    return start_held(exchange, "usdm", KEY, **options)


@asynccontextmanager
async def trading(
    ex: ExchangeHandle, *, local_clock: bool = False, **options: Any
) -> AsyncIterator[FuturesTrading]:
    """A client's FuturesTrading (``trading_client``)."""
    async with trading_client(ex, "usdm", KEY, FuturesTrading, local_clock=local_clock, **options) as pair:
        yield pair[1]


# ----------------------------------------------------------------------------------- orders


def test_limit_and_market_placed_queried_modified_canceled(exchange: Start) -> None:
    ex = start(exchange)
    bid, ask = top(ex)
    tracker = OrderTracker()

    async def test() -> None:
        async with trading(ex, tracker=tracker) as fut:
            order = await fut.limit(SYM, "BUY", QTY, bid - 100)
            assert (order.status, order.type, order.price) == ("NEW", "LIMIT", bid - 100)
            assert order.client_order_id.startswith("tb")
            found = await fut.query_order(SYM, orig_client_order_id=order.client_order_id)
            assert found.order_id == order.order_id

            # Modify: LIMIT only, quantity and price both given; the order keeps its id.
            modified = await fut.modify_order(SYM, "BUY", "0.002", bid - 90, order_id=order.order_id)
            assert (modified.order_id, modified.orig_qty, modified.price) == (
                order.order_id,
                Decimal("0.002"),
                bid - 90,
            )
            state = tracker.get(order.order_id, SYM, "usdm")
            assert state is not None
            assert (state.orig_qty, state.price) == (Decimal("0.002"), bid - 90)

            post_only = await fut.limit(SYM, "SELL", QTY, ask + 100, time_in_force="GTX")
            assert post_only.time_in_force == "GTX"

            assert {o.order_id for o in await fut.open_orders(SYM)} == {order.order_id, post_only.order_id}
            canceled = await fut.cancel_order(SYM, order_id=order.order_id)
            assert canceled.status == "CANCELED"
            state = tracker.get(order.order_id, SYM, "usdm")
            assert state is not None
            assert state.status == "CANCELED"

            filled = await fut.market(SYM, "BUY", "0.002", new_order_resp_type="RESULT")
            assert (filled.status, filled.executed_qty) == ("FILLED", Decimal("0.002"))

            every = await fut.all_orders(SYM)
            assert [o.order_id for o in every] == [order.order_id, post_only.order_id, filled.order_id]
            assert (await fut.cancel_all(SYM)).code == 200
            assert await fut.open_orders(SYM) == []

            with pytest.raises(RequestError) as algo_type:  # conditional types left this endpoint
                await fut.place_order(SYM, "SELL", "STOP_MARKET", quantity=QTY)
            assert algo_type.value.code == -4120
            with pytest.raises(OrderRejected) as sent_anyway:
                await fut.client.request(
                    "POST",
                    "/fapi/v1/order",
                    {"symbol": SYM, "side": "SELL", "type": "STOP_MARKET", "quantity": QTY, "stopPrice": "1"},
                    signed=True,
                )
            assert sent_anyway.value.code == -4120

    run(test)


def test_conditional_algo_orders(exchange: Start) -> None:
    ex = start(exchange)
    bid, ask = top(ex)

    async def test() -> None:
        async with trading(ex) as fut:
            await fut.market(SYM, "BUY", "0.003")  # a long position to protect
            stop = await fut.stop_market(
                SYM, "SELL", bid - 500, close_position=True, working_type="MARK_PRICE"
            )
            assert (stop.algo_type, stop.order_type, stop.algo_status) == (
                "CONDITIONAL",
                "STOP_MARKET",
                "NEW",
            )
            assert stop.trigger_price == bid - 500
            assert stop.close_position is True
            take = await fut.conditional(
                SYM,
                "SELL",
                "TAKE_PROFIT",
                quantity=QTY,
                price=ask + 500,
                trigger_price=ask + 490,
                time_in_force="GTC",
            )
            assert (take.order_type, take.price, take.trigger_price) == ("TAKE_PROFIT", ask + 500, ask + 490)
            tp_market = await fut.take_profit_market(SYM, "SELL", ask + 300, QTY, reduce_only=True)
            assert tp_market.order_type == "TAKE_PROFIT_MARKET"
            stop_limit = await fut.conditional(
                SYM, "SELL", "STOP", quantity=QTY, price=bid - 610, trigger_price=bid - 600
            )
            assert stop_limit.order_type == "STOP"
            trail = await fut.trailing_stop_market(SYM, "SELL", QTY, "1", activate_price=ask + 100)
            assert trail.order_type == "TRAILING_STOP_MARKET"
            assert trail.callback_rate == Decimal(1)

            found = await fut.query_algo_order(client_algo_id=take.client_algo_id)
            assert found.algo_id == take.algo_id
            open_ids = {a.algo_id for a in await fut.open_algo_orders(SYM)}
            assert open_ids == {
                stop.algo_id,
                take.algo_id,
                tp_market.algo_id,
                stop_limit.algo_id,
                trail.algo_id,
            }

            canceled = await fut.cancel_algo_order(algo_id=take.algo_id)
            assert (canceled.algo_id, canceled.client_algo_id) == (take.algo_id, take.client_algo_id)
            assert (await fut.query_algo_order(algo_id=take.algo_id)).algo_status == "CANCELED"
            assert (await fut.cancel_all_algo_orders(SYM)).code == 200
            assert await fut.open_algo_orders(SYM) == []

            with pytest.raises(OrderRejected) as wrong_side:  # a SELL stop above the market fires at once
                await fut.stop_market(SYM, "SELL", ask + 500, QTY)
            assert wrong_side.value.code == -2021

    run(test)


def test_batch_orders(exchange: Start) -> None:
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as fut:
            specs: list[dict[str, Any]] = [
                {
                    "symbol": SYM,
                    "side": "BUY",
                    "type": "LIMIT",
                    "quantity": QTY,
                    "price": bid - 200,
                    "time_in_force": "GTC",
                },
                # Off the 0.001 step: sent anyway, the exchange refuses this one alone.
                {
                    "symbol": SYM,
                    "side": "BUY",
                    "type": "LIMIT",
                    "quantity": "0.0015",
                    "price": bid - 201,
                    "time_in_force": "GTC",
                },
                {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": QTY},
            ]
            results = await fut.batch_orders(specs, check=False)
            assert [type(r) for r in results] == [FuturesOrder, ApiMessage, FuturesOrder]  # request order
            refused = results[1]
            assert isinstance(refused, ApiMessage)
            assert refused.code == -4023
            first = results[0]
            assert isinstance(first, FuturesOrder)
            assert first.status == "NEW"
            with pytest.raises(FilterFailure) as local:  # checked locally by default: nothing sent
                await fut.batch_orders(specs)
            assert (local.value.filter, local.value.code) == ("LOT_SIZE", -4023)
            with pytest.raises(RequestError) as too_many:
                await fut.batch_orders([specs[0]] * 6)
            assert too_many.value.code == -1130
            assert len(await fut.open_orders(SYM)) == 1

    run(test)


# ----------------------------------------------------------------------------------- refusals

FILTER_CASES = [
    # (filter, code, side, price relative to the bid, quantity, mark price needed?)
    ("PRICE_FILTER", -4014, "BUY", "-100.005", QTY, False),  # off the tick
    ("PRICE_FILTER", -4013, "BUY", "=500", QTY, False),  # below minPrice 556.72
    ("LOT_SIZE", -4023, "BUY", "-100", "0.0015", False),  # off the step
    ("LOT_SIZE", -4005, "BUY", "-100", "1001", False),  # above maxQty
    ("MIN_NOTIONAL", -4164, "BUY", "=1000", QTY, False),  # 1 USDT < 5
    ("PERCENT_PRICE", -4016, "BUY", "x1.2", QTY, True),  # above 1.15 x mark
    ("PERCENT_PRICE", -4024, "SELL", "x0.8", QTY, True),  # below 0.85 x mark
]


def _price(spec: str, bid: Decimal) -> Decimal:
    if spec.startswith("="):
        return Decimal(spec[1:])
    if spec.startswith("x"):
        return (bid * Decimal(spec[1:])).quantize(Decimal("0.01"))
    return bid + Decimal(spec)


@pytest.mark.parametrize(("name", "code", "side", "price", "qty", "needs_mark"), FILTER_CASES)
def test_filter_failures_local_and_remote(
    exchange: Start, name: str, code: int, side: str, price: str, qty: str, needs_mark: bool
) -> None:
    ex = start(exchange)
    bid, _ = top(ex)
    limit_price = _price(price, bid)

    async def test() -> None:
        async with trading(ex) as fut:
            with pytest.raises(FilterFailure) as local:
                await fut.limit(SYM, side, qty, limit_price, mark_price=bid if needs_mark else None)
            assert (local.value.filter, local.value.code, local.value.local) == (name, code, True)
            assert local.value.status is None
            with pytest.raises(FilterFailure) as remote:
                await fut.limit(SYM, side, qty, limit_price, check=False)
            assert (remote.value.filter, remote.value.code, remote.value.local) == (name, code, False)
            assert remote.value.status == 400
            assert await fut.all_orders(SYM) == []

    run(test)


def test_a_quantity_refusal_names_the_filter_the_order_type_is_judged_by(exchange: Start) -> None:
    """The futures quantity codes (-4023 here) name no filter; the exchange's refusal of a
    MARKET order is named MARKET_LOT_SIZE, as the local check names it, and a LIMIT order's
    LOT_SIZE (spec §7: market orders are judged by MARKET_LOT_SIZE)."""
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as fut:
            with pytest.raises(FilterFailure) as local:
                await fut.market(SYM, "BUY", "0.0015")
            with pytest.raises(FilterFailure) as remote:
                await fut.market(SYM, "BUY", "0.0015", check=False)
            assert (local.value.filter, local.value.code, local.value.local) == (
                "MARKET_LOT_SIZE",
                -4023,
                True,
            )
            assert (remote.value.filter, remote.value.code, remote.value.local) == (
                "MARKET_LOT_SIZE",
                -4023,
                False,
            )
            assert remote.value.msg == local.value.msg
            with pytest.raises(FilterFailure) as limit:
                await fut.limit(SYM, "BUY", "0.0015", bid - 100, check=False)
            assert (limit.value.filter, limit.value.code, limit.value.local) == ("LOT_SIZE", -4023, False)
            with pytest.raises(FilterFailure) as algo:
                await fut.stop_market(SYM, "SELL", bid - 1000, "0.0015", check=False)
            assert (algo.value.filter, algo.value.code, algo.value.local) == ("MARKET_LOT_SIZE", -4023, False)
            assert await fut.all_orders(SYM) == []

    run(test)


# ----------------------------------------------------------------------------------- account


def test_leverage_margin_type_positions_and_account(exchange: Start) -> None:
    ex = start(exchange)

    async def test() -> None:
        async with trading(ex) as fut:
            lev = await fut.set_leverage(SYM, 10)
            assert (lev.symbol, lev.leverage) == (SYM, 10)
            with pytest.raises(RequestError) as bad:
                await fut.set_leverage(SYM, 126)
            assert bad.value.code == -4028
            assert (await fut.set_margin_type(SYM, "ISOLATED")).code == 200
            with pytest.raises(RequestError):
                await fut.set_margin_type(SYM, "PARTIAL")
            assert await fut.position_risk(SYM) == []  # nothing held, nothing open

            filled = await fut.market(SYM, "BUY", "0.002")
            positions = await fut.position_risk(SYM)
            assert len(positions) == 1
            assert (positions[0].position_side, positions[0].position_amt) == ("BOTH", Decimal("0.002"))
            assert positions[0].entry_price > 0
            account = await fut.account()
            assert [p.position_amt for p in account.positions if p.symbol == SYM] == [Decimal("0.002")]
            usdt = account.asset("USDT")
            assert usdt is not None
            assert usdt.wallet_balance < Decimal(10000)  # the taker commission was paid
            assert any(b.asset == "USDT" for b in await fut.balance())
            limits = await fut.order_rate_limits()
            assert {x.interval for x in limits} == {"SECOND", "MINUTE"}
            assert filled.order_id > 0

    run(test)


# ----------------------------------------------------------------------------------- lost answers


@pytest.mark.parametrize("mode", ["503", "reset", "timeout=2"])
def test_lost_order_response_is_reconciled(exchange: Start, mode: str) -> None:
    ex = start(exchange, faults=f"lost-response@1:{mode}")

    async def test() -> None:
        async with trading(ex, timeout=1.0) as fut:
            order = await fut.market(SYM, "BUY", QTY)
            assert isinstance(order, ReconciledFuturesOrder)
            assert is_reconciled(order)
            assert order.status == "FILLED"
            same = [o for o in await fut.all_orders(SYM) if o.client_order_id == order.client_order_id]
            assert len(same) == 1
            positions = await fut.position_risk(SYM)
            assert [p.position_amt for p in positions] == [Decimal(QTY)]  # bought once

    run(test)


def test_lost_algo_response_is_reconciled(exchange: Start) -> None:
    ex = start(exchange, faults="lost-response@1:503")
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as fut:
            algo = await fut.stop_market(SYM, "SELL", bid - 500, QTY)
            assert isinstance(algo, ReconciledAlgoOrder)
            assert algo.algo_status == "NEW"
            assert [a.client_algo_id for a in await fut.open_algo_orders(SYM)] == [algo.client_algo_id]

    run(test)


def test_lost_batch_response_is_reconciled_order_by_order(exchange: Start) -> None:
    ex = start(exchange, faults="lost-response@1:503")
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as fut:
            specs: list[dict[str, Any]] = [
                {
                    "symbol": SYM,
                    "side": "BUY",
                    "type": "LIMIT",
                    "quantity": QTY,
                    "price": bid - 300,
                    "time_in_force": "GTC",
                },
                {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": QTY},
            ]
            results = await fut.batch_orders(specs)
            assert all(isinstance(r, ReconciledFuturesOrder) for r in results)
            every = await fut.all_orders(SYM)
            assert len(every) == 2  # each placed once
            assert {o.client_order_id for o in every} == {
                r.client_order_id for r in results if isinstance(r, FuturesOrder)
            }

    run(test)


def test_unapplied_modification_is_resent_after_the_window(exchange: Start) -> None:
    """A modification sets absolute values, so it is reconciled by reading the order back.
    Here the exchange fails it before executing (``http@3:500``: exchangeInfo, the placement,
    then the modification): the order keeps its old values through timestamp + recvWindow,
    then the same modification is sent again, once."""
    ex = start(exchange, faults="http@3:500")
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(
            ex, local_clock=True, recv_window_ms=500, reconcile=ReconcilePolicy(clock_margin_ms=200)
        ) as fut:
            order = await fut.limit(SYM, "BUY", QTY, bid - 100)
            started = time.monotonic()
            modified = await fut.modify_order(SYM, "BUY", "0.002", bid - 95, order_id=order.order_id)
            assert time.monotonic() - started >= 0.7
            assert (modified.order_id, modified.orig_qty, modified.price) == (
                order.order_id,
                Decimal("0.002"),
                bid - 95,
            )
            again = await fut.query_order(SYM, order_id=order.order_id)
            assert (again.orig_qty, again.price) == (Decimal("0.002"), bid - 95)
        assert [(f["kind"], f["status"]) for f in ex.fault_log()] == [("http", 500)]

    run(test)
