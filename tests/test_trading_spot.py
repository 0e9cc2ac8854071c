"""Spot trading (tickbook.trading.spot) end to end against the local exchange.

Each test starts an exchange in a background thread (``tickbook.sim.pytest_plugin``) with the
replay held, so the true book stays where it starts (BTCUSDT around 60000, tick 0.01) and
resting orders only fill when a test crosses the book. The account holds 1 BTC and 10000
USDT. BTCUSDT's exchangeInfo is the recorded one (spec §7 filters: PRICE_FILTER tick 0.01,
PERCENT_PRICE 0.2..5, LOT_SIZE step 0.00001, MIN_NOTIONAL 10, ICEBERG_PARTS 10,
MARKET_LOT_SIZE max 100.05381873). Expected codes and behaviour come from binance-spec §6, §7
and §10, not from the code under test.
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
from tickbook.trading.client import RestClient
from tickbook.trading.errors import (
    CancelReplacePartial,
    FilterFailure,
    NoSuchOrder,
    OrderRejected,
    RequestError,
)
from tickbook.trading.models import ApiMessage, OrderList, SpotOrder
from tickbook.trading.orders import Leg, ReconcilePolicy
from tickbook.trading.spot import ReconciledSpotOrder, SpotTrading, is_reconciled
from tickbook.trading.tracker import OrderTracker

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

KEY = HmacKey("spot-trader", "spot-trader-secret")


def start(exchange: Start, **options: Any) -> ExchangeHandle:
    return start_held(exchange, "spot", KEY, **options)


@asynccontextmanager
async def trading(
    ex: ExchangeHandle, *, local_clock: bool = False, **options: Any
) -> AsyncIterator[tuple[RestClient, SpotTrading]]:
    """A client and its SpotTrading (``trading_client``)."""
    async with trading_client(ex, "spot", KEY, SpotTrading, local_clock=local_clock, **options) as pair:
        yield pair


class Recorder:
    """A tracker that only records what it is fed (the hook is any object with on_response)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_response(self, obj: Any) -> None:
        self.seen.append(obj)


# ----------------------------------------------------------------------------------- order types


def test_every_order_type_placed_queried_and_canceled(exchange: Start) -> None:
    ex = start(exchange)
    bid, ask = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            resting: list[tuple[str, SpotOrder]] = [
                ("LIMIT", await spot.limit(SYM, "BUY", QTY, bid - 100)),
                ("LIMIT_MAKER", await spot.limit_maker(SYM, "SELL", QTY, ask + 100)),
                # SELL stops sit below the market, SELL take-profits above (§6.1 trigger rules).
                ("STOP_LOSS", await spot.stop_loss(SYM, "SELL", QTY, stop_price=bid - 50)),
                (
                    "STOP_LOSS_LIMIT",
                    await spot.stop_loss_limit(SYM, "SELL", QTY, bid - 60, stop_price=bid - 50),
                ),
                ("TAKE_PROFIT", await spot.take_profit(SYM, "SELL", QTY, stop_price=ask + 50)),
                (
                    "TAKE_PROFIT_LIMIT",
                    await spot.take_profit_limit(SYM, "SELL", QTY, ask + 60, stop_price=ask + 50),
                ),
                ("STOP_LOSS", await spot.stop_loss(SYM, "SELL", QTY, trailing_delta=100)),  # 1 % trailing
                ("LIMIT", await spot.limit(SYM, "BUY", "0.005", bid - 10, iceberg_qty="0.001")),
            ]
            for order_type, placed in resting:
                assert placed.client_order_id.startswith("tb")  # generated: every order can be reconciled
                found = await spot.query_order(SYM, orig_client_order_id=placed.client_order_id)
                assert (found.order_id, found.type, found.status) == (placed.order_id, order_type, "NEW")
                canceled = await spot.cancel_order(SYM, order_id=placed.order_id)
                assert canceled.status == "CANCELED"
                assert canceled.orig_client_order_id == placed.client_order_id
            iceberg = await spot.query_order(SYM, order_id=resting[-1][1].order_id)
            assert iceberg.iceberg_qty == Decimal("0.001")
            trailing = await spot.query_order(SYM, order_id=resting[-2][1].order_id)
            assert trailing.trailing_delta == 100

            # MARKET by quantity and by quote amount fill against the book at once (FULL answer).
            by_qty = await spot.market(SYM, "BUY", QTY)
            assert (by_qty.status, by_qty.executed_qty) == ("FILLED", Decimal(QTY))
            assert by_qty.fills
            assert sum(f.qty for f in by_qty.fills) == Decimal(QTY)
            assert all(f.price >= ask for f in by_qty.fills)
            by_quote = await spot.market(SYM, "BUY", quote_order_qty="100")
            assert by_quote.status == "FILLED"
            assert by_quote.cummulative_quote_qty is not None
            assert by_quote.cummulative_quote_qty <= 100
            assert by_quote.orig_quote_order_qty == Decimal(100)

            # What was canceled is no longer open; the fills left the account richer in BTC.
            assert await spot.open_orders(SYM) == []
            account = await spot.account()
            btc = next(b for b in account.balances if b.asset == "BTC")
            assert btc.free > Decimal(1)

    run(test)


def test_test_order_with_and_without_commission_rates(exchange: Start) -> None:
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            kwargs: dict[str, Any] = {"quantity": QTY, "price": bid - 10, "time_in_force": "GTC"}
            assert await spot.test_order(SYM, "BUY", "LIMIT", **kwargs) is None
            rates = await spot.test_order(SYM, "BUY", "LIMIT", compute_commission_rates=True, **kwargs)
            assert rates is not None
            assert rates.standard_commission_for_order is not None
            assert rates.standard_commission_for_order.taker == Decimal("0.001")
            assert await spot.open_orders(SYM) == []  # a test order never reaches the book

    run(test)


# ----------------------------------------------------------------------------------- refusals


def test_mandatory_params_refused_locally_as_the_exchange_would(exchange: Start) -> None:
    """The builder's refusal and the exchange's, for the same request, carry the same code."""
    ex = start(exchange)
    bid, _ = top(ex)
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"type": "LIMIT", "quantity": QTY, "price": str(bid)},
            {"type": "LIMIT", "quantity": QTY, "price": bid},
        ),
        (
            {"type": "LIMIT", "quantity": QTY, "timeInForce": "GTC"},
            {"type": "LIMIT", "quantity": QTY, "time_in_force": "GTC"},
        ),
        (
            {"type": "MARKET", "quantity": QTY, "quoteOrderQty": "10"},
            {"type": "MARKET", "quantity": QTY, "quote_order_qty": "10"},
        ),
        (
            {"type": "MARKET", "quantity": QTY, "price": str(bid)},
            {"type": "MARKET", "quantity": QTY, "price": bid},
        ),
        ({"type": "STOP", "quantity": QTY}, {"type": "STOP", "quantity": QTY}),
        (
            {"type": "MARKET", "quantity": QTY, "strategyType": "5"},
            {"type": "MARKET", "quantity": QTY, "strategy_type": 5},
        ),
    ]

    async def test() -> None:
        async with trading(ex) as (client, spot):
            for raw, kwargs in cases:
                kwargs = dict(kwargs)
                order_type = kwargs.pop("type")
                with pytest.raises(RequestError) as local:
                    await spot.place_order(SYM, "BUY", order_type, **kwargs)
                assert local.value.status is None  # refused here
                with pytest.raises(RequestError) as remote:
                    await client.request(
                        "POST", "/api/v3/order", {"symbol": SYM, "side": "BUY", **raw}, signed=True
                    )
                assert remote.value.status == 400
                assert local.value.code == remote.value.code, (raw, local.value, remote.value)
            assert await spot.open_orders(SYM) == []

    run(test)


FILTER_CASES = [
    # (filter, order: (side, type, kwargs) with prices relative to the bid, reference price?)
    ("PRICE_FILTER", ("BUY", "LIMIT", {"quantity": QTY, "price": "-100.005"}), False),  # off the 0.01 tick
    ("PRICE_FILTER", ("BUY", "LIMIT", {"quantity": QTY, "price": "x2000000"}), False),  # above maxPrice
    ("LOT_SIZE", ("BUY", "LIMIT", {"quantity": "0.000015", "price": "-100"}), False),  # off the step
    ("LOT_SIZE", ("BUY", "LIMIT", {"quantity": "9001", "price": "-100"}), False),  # above maxQty
    ("MIN_NOTIONAL", ("BUY", "LIMIT", {"quantity": "0.0001", "price": "-100"}), False),  # 6 USDT < 10
    ("MARKET_LOT_SIZE", ("SELL", "MARKET", {"quantity": "101"}), False),  # above 100.05381873
    (
        "ICEBERG_PARTS",
        ("BUY", "LIMIT", {"quantity": "0.011", "price": "-100", "iceberg_qty": "0.001"}),
        False,
    ),
    ("PERCENT_PRICE", ("BUY", "LIMIT", {"quantity": QTY, "price": "x0.1"}), True),  # below 0.2 x ref
    ("PERCENT_PRICE", ("SELL", "LIMIT", {"quantity": QTY, "price": "x6"}), True),  # above 5 x ref
]


def _price(spec: str, bid: Decimal) -> Decimal:
    if spec.startswith("x"):
        return (bid * Decimal(spec[1:])).quantize(Decimal("0.01"))
    return bid + Decimal(spec)


@pytest.mark.parametrize(("name", "order", "needs_ref"), FILTER_CASES)
def test_filter_failures_local_and_remote(
    exchange: Start, name: str, order: tuple[str, str, dict[str, Any]], needs_ref: bool
) -> None:
    ex = start(exchange)
    bid, _ = top(ex)
    side, order_type, spec = order
    kwargs = dict(spec)
    if "price" in kwargs:
        kwargs["price"] = _price(kwargs["price"], bid)
    if order_type == "LIMIT":
        kwargs["time_in_force"] = "GTC"

    async def test() -> None:
        async with trading(ex) as (_, spot):
            # Refused locally, naming the filter, with the code the exchange answers.
            with pytest.raises(FilterFailure) as local:
                await spot.place_order(
                    SYM, side, order_type, reference_price=bid if needs_ref else None, **kwargs
                )
            assert (local.value.filter, local.value.code, local.value.local) == (name, -1013, True)
            assert local.value.endpoint == "/api/v3/order"
            assert local.value.client_order_id is not None
            # Sent anyway: the exchange refuses it the same way.
            with pytest.raises(FilterFailure) as remote:
                await spot.place_order(SYM, side, order_type, check=False, **kwargs)
            assert (remote.value.filter, remote.value.code, remote.value.local) == (name, -1013, False)
            assert remote.value.status == 400
            assert remote.value.msg == f"Filter failure: {name}"
            assert await spot.all_orders(SYM) == []  # neither reached the book

    run(test)


def test_too_much_precision_and_unknown_symbol(exchange: Start) -> None:
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            with pytest.raises(RequestError) as precise:  # 9 decimals > the asset's 8 (§7)
                await spot.limit(SYM, "BUY", "0.000010001", bid - 100)
            assert precise.value.code == -1111
            with pytest.raises(RequestError) as unknown:
                await spot.limit("NOPEUSDT", "BUY", QTY, "1")
            assert unknown.value.code == -1121

    run(test)


# ----------------------------------------------------------------------------------- replace, amend


def test_cancel_replace_full_partial_and_failed(exchange: Start) -> None:
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            old = await spot.limit(SYM, "BUY", QTY, bid - 100)
            done = await spot.cancel_replace(
                SYM,
                "BUY",
                "LIMIT",
                cancel_replace_mode="STOP_ON_FAILURE",
                cancel_orig_client_order_id=old.client_order_id,
                quantity=QTY,
                price=bid - 90,
                time_in_force="GTC",
            )
            assert (done.cancel_result, done.new_order_result) == ("SUCCESS", "SUCCESS")
            assert done.cancel_order is not None
            assert done.cancel_order.status == "CANCELED"
            assert done.new_order is not None
            assert done.new_order.price == bid - 90
            assert [o.order_id for o in await spot.open_orders(SYM)] == [done.new_order.order_id]

            # ALLOW_FAILURE on an order that does not exist: the new order is placed anyway,
            # the cancel fails: HTTP 409 / -2021 with both halves decoded.
            with pytest.raises(CancelReplacePartial) as partial:
                await spot.cancel_replace(
                    SYM,
                    "BUY",
                    "LIMIT",
                    cancel_replace_mode="ALLOW_FAILURE",
                    cancel_order_id=987654,
                    quantity=QTY,
                    price=bid - 80,
                    time_in_force="GTC",
                )
            err = partial.value
            assert (err.status, err.code) == (409, -2021)
            assert (err.cancel_result, err.new_order_result) == ("FAILURE", "SUCCESS")
            assert isinstance(err.cancel_response, ApiMessage)
            assert err.cancel_response.code == -2011
            assert isinstance(err.new_order_response, SpotOrder)
            assert err.new_order_response.status == "NEW"
            assert len(await spot.open_orders(SYM)) == 2

            # STOP_ON_FAILURE on an unknown order: nothing happens (-2022, both failed).
            with pytest.raises(OrderRejected) as failed:
                await spot.cancel_replace(
                    SYM,
                    "BUY",
                    "LIMIT",
                    cancel_replace_mode="STOP_ON_FAILURE",
                    cancel_order_id=987654,
                    quantity=QTY,
                    price=bid - 70,
                    time_in_force="GTC",
                )
            assert failed.value.code == -2022
            assert len(await spot.open_orders(SYM)) == 2

            with pytest.raises(RequestError) as no_mode:
                await spot.cancel_replace(
                    SYM,
                    "BUY",
                    "LIMIT",
                    cancel_replace_mode=None,  # type: ignore[arg-type]
                    cancel_order_id=1,
                    quantity=QTY,
                    price=bid,
                    time_in_force="GTC",
                )
            assert no_mode.value.code == -1102

    run(test)


def test_amend_keep_priority(exchange: Start) -> None:
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            order = await spot.limit(SYM, "BUY", "0.003", bid - 100)
            amended = await spot.amend_keep_priority(SYM, "0.002", orig_client_order_id=order.client_order_id)
            assert amended.amended_order.order_id == order.order_id
            assert amended.amended_order.qty == Decimal("0.002")
            again = await spot.query_order(SYM, order_id=order.order_id)
            assert (again.orig_qty, again.status) == (Decimal("0.002"), "NEW")
            with pytest.raises(NoSuchOrder):
                await spot.amend_keep_priority(SYM, "0.001", order_id=424242)

    run(test)


# ----------------------------------------------------------------------------------- order lists


def test_oco_oto_otoco(exchange: Start) -> None:
    ex = start(exchange)
    bid, ask = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            oco = await spot.oco(
                SYM,
                "SELL",
                QTY,
                above=Leg("LIMIT_MAKER", price=ask + 100),
                below=Leg("STOP_LOSS_LIMIT", price=bid - 110, stop_price=bid - 100, time_in_force="GTC"),
            )
            assert (oco.contingency_type, oco.list_order_status) == ("OCO", "EXECUTING")
            assert len(oco.orders) == 2
            assert all(leg.client_order_id.startswith("tb") for leg in oco.orders)  # legs named too
            assert {r.type for r in oco.order_reports} == {"LIMIT_MAKER", "STOP_LOSS_LIMIT"}
            assert (
                await spot.query_order_list(order_list_id=oco.order_list_id)
            ).list_order_status == "EXECUTING"
            by_client_id = await spot.query_order_list(orig_client_order_id=oco.list_client_order_id)
            assert by_client_id.order_list_id == oco.order_list_id

            oto = await spot.oto(
                SYM,
                working=Leg("LIMIT", side="BUY", quantity=QTY, price=bid - 20, time_in_force="GTC"),
                pending=Leg("LIMIT_MAKER", side="SELL", quantity=QTY, price=ask + 20),
            )
            assert oto.contingency_type == "OTO"
            statuses = {r.side: r.status for r in oto.order_reports}
            assert statuses == {"BUY": "NEW", "SELL": "PENDING_NEW"}  # pending until the working fills

            otoco = await spot.otoco(
                SYM,
                working=Leg("LIMIT", side="BUY", quantity=QTY, price=bid - 30, time_in_force="GTC"),
                pending_side="SELL",
                pending_quantity=QTY,
                pending_above=Leg("LIMIT_MAKER", price=ask + 200),
                pending_below=Leg("STOP_LOSS", stop_price=bid - 200),
            )
            assert (otoco.contingency_type, len(otoco.orders)) == ("OTOCO", 3)

            # The OCO's two legs are open; the OTO and OTOCO working orders too.
            open_ids = {o.order_id for o in await spot.open_orders(SYM)}
            assert {leg.order_id for leg in oco.orders} <= open_ids
            assert {o.order_id for o in oto.order_reports if o.status == "NEW"} <= open_ids

            done = await spot.cancel_order_list(SYM, list_client_order_id=oco.list_client_order_id)
            assert done.list_order_status == "ALL_DONE"
            assert {r.status for r in done.order_reports} == {"CANCELED"}
            # Cancelling one leg of a list cancels the whole list (§6.2).
            await spot.cancel_order(SYM, order_id=oto.orders[0].order_id)
            assert (
                await spot.query_order_list(order_list_id=oto.order_list_id)
            ).list_order_status == "ALL_DONE"

            canceled = await spot.cancel_all(SYM)
            assert [type(c) for c in canceled] == [OrderList]  # the OTOCO, as one list
            assert await spot.open_orders(SYM) == []

            with pytest.raises(RequestError) as bad:  # a SELL OCO's stop must be below
                await spot.oco(
                    SYM,
                    "SELL",
                    QTY,
                    above=Leg("STOP_LOSS", stop_price=ask + 10),
                    below=Leg("LIMIT_MAKER", price=bid - 10),
                )
            assert bad.value.code == -1168 or bad.value.code == -1197

    run(test)


# ----------------------------------------------------------------------------------- reads


def test_open_all_orders_account_trades_and_rate_limits(exchange: Start) -> None:
    ex = start(exchange)
    bid, _ = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            a = await spot.limit(SYM, "BUY", QTY, bid - 100)
            b = await spot.limit(SYM, "BUY", QTY, bid - 101)
            m = await spot.market(SYM, "BUY", QTY)
            assert {o.order_id for o in await spot.open_orders(SYM)} == {a.order_id, b.order_id}
            assert {o.order_id for o in await spot.open_orders()} == {a.order_id, b.order_id}
            every = await spot.all_orders(SYM)
            assert [o.order_id for o in every] == [a.order_id, b.order_id, m.order_id]
            assert [o.order_id for o in await spot.all_orders(SYM, order_id=b.order_id)] == [
                b.order_id,
                m.order_id,
            ]

            trades = await spot.my_trades(SYM)
            assert {t.order_id for t in trades} == {m.order_id}
            assert sum(t.qty for t in trades) == Decimal(QTY)
            assert all(t.is_buyer and not t.is_maker for t in trades)
            assert [t.order_id for t in await spot.my_trades(SYM, order_id=m.order_id)] == [m.order_id] * len(
                trades
            )

            account = await spot.account()
            usdt = next(x for x in account.balances if x.asset == "USDT")
            # Two resting BUYs lock price x qty of USDT each (§6.1 / the exchange's model).
            assert usdt.locked == (bid - 100) * Decimal(QTY) + (bid - 101) * Decimal(QTY)

            # Three new orders; the market order's fill gave one back (§5.1 unfilled count).
            limits = await spot.order_rate_limits()
            assert {(x.rate_limit_type, x.interval) for x in limits} == {
                ("ORDERS", "SECOND"),
                ("ORDERS", "DAY"),
            }
            assert all(x.count == 2 for x in limits)

    run(test)


def test_tracker_is_fed_every_answer(exchange: Start) -> None:
    ex = start(exchange)
    bid, ask = top(ex)
    recorder = Recorder()
    tracker = OrderTracker()

    class Both:
        def on_response(self, obj: Any) -> None:
            recorder.on_response(obj)
            tracker.on_response(obj)

    async def test() -> None:
        async with trading(ex, tracker=Both()) as (_, spot):
            order = await spot.limit(SYM, "BUY", QTY, bid - 100)
            state = tracker.get(order.order_id, SYM, "spot")
            assert state is not None
            assert state.status == "NEW"
            await spot.cancel_order(SYM, order_id=order.order_id)
            state = tracker.get(order.order_id, SYM, "spot")
            assert state is not None
            assert state.status == "CANCELED"
            filled = await spot.market(SYM, "BUY", QTY)
            state = tracker.by_client_id(filled.client_order_id, SYM, "spot")
            assert state is not None
            assert state.status == "FILLED"
            assert state.executed_qty == Decimal(QTY)
            oco = await spot.oco(
                SYM,
                "SELL",
                QTY,
                above=Leg("LIMIT_MAKER", price=ask + 100),
                below=Leg("STOP_LOSS", stop_price=bid - 100),
            )
            assert all(tracker.get(leg.order_id, SYM, "spot") is not None for leg in oco.orders)
            await spot.open_orders(SYM)
        kinds = [type(x).__name__ for x in recorder.seen]
        assert kinds[:3] == ["SpotOrder", "SpotOrder", "SpotOrder"]  # place, cancel, market
        assert "OrderList" in kinds

    run(test)


# ----------------------------------------------------------------------------------- lost answers


@pytest.mark.parametrize("mode", ["503", "reset", "timeout=2"])
def test_lost_response_is_reconciled_without_a_duplicate(exchange: Start, mode: str) -> None:
    """The placement executes but its answer is lost (a 503, a reset connection, an answer
    held past the client's timeout): the order is found by its client ID and not placed again
    (§10.4). A MARKET order is the dangerous case: it fills at once, so a blind resend with the
    same ID would execute a second time."""
    ex = start(exchange, faults=f"lost-response@1:{mode}")

    async def test() -> None:
        async with trading(ex, timeout=1.0) as (_, spot):
            order = await spot.market(SYM, "BUY", QTY)
            assert isinstance(order, ReconciledSpotOrder)
            assert is_reconciled(order)
            assert (order.status, order.executed_qty) == ("FILLED", Decimal(QTY))
            same = [o for o in await spot.all_orders(SYM) if o.client_order_id == order.client_order_id]
            assert len(same) == 1
            trades = await spot.my_trades(SYM)
            assert sum(t.qty for t in trades) == Decimal(QTY)  # bought once
        log = ex.fault_log()
        assert [(f["kind"], f["endpoint"]) for f in log] == [("lost-response", "POST /api/v3/order")]

    run(test)


def test_unexecuted_order_is_resent_once_the_window_has_passed(exchange: Start) -> None:
    """A 500 before the engine (``http@2:500``: exchangeInfo is request 1, the order 2) leaves
    the outcome unknown but nothing executed: the query says -2013, the order is sent again
    with the same client ID only after timestamp + recvWindow, and exists once."""
    ex = start(exchange, faults="http@2:500")
    policy = ReconcilePolicy(clock_margin_ms=200)

    async def test() -> None:
        async with trading(ex, local_clock=True, recv_window_ms=500, reconcile=policy) as (_, spot):
            started = time.monotonic()
            order = await spot.limit(SYM, "BUY", QTY, top(ex)[0] - 100, new_client_order_id="resend-me")
            elapsed = time.monotonic() - started
            assert not is_reconciled(order)  # the resend's own answer
            assert order.client_order_id == "resend-me"
            assert elapsed >= 0.7  # recvWindow 500 ms + margin 200 ms waited out before the resend
            assert [o.client_order_id for o in await spot.all_orders(SYM)] == ["resend-me"]
        assert [f["kind"] for f in ex.fault_log()] == ["http"]

    run(test)


def test_lost_order_list_is_reconciled(exchange: Start) -> None:
    ex = start(exchange, faults="lost-response@1:503")
    bid, ask = top(ex)

    async def test() -> None:
        async with trading(ex) as (_, spot):
            oco = await spot.oco(
                SYM,
                "SELL",
                QTY,
                above=Leg("LIMIT_MAKER", price=ask + 100),
                below=Leg("STOP_LOSS", stop_price=bid - 100),
            )
            assert is_reconciled(oco)
            assert oco.contingency_type == "OCO"
            assert len(oco.orders) == 2
            assert len(await spot.open_orders(SYM)) == 2  # one list, placed once

    run(test)


def test_unexecuted_cancel_replace_is_resent_once(exchange: Start) -> None:
    """cancelReplace failed before execution (``http@3:500``: exchangeInfo, the placement, then
    the replace): the new order is not found, the window passes, the same request (same new
    client ID) is sent again and both halves happen once."""
    ex = start(exchange, faults="http@3:500")
    bid, _ = top(ex)
    policy = ReconcilePolicy(clock_margin_ms=200)

    async def test() -> None:
        async with trading(ex, local_clock=True, recv_window_ms=500, reconcile=policy) as (_, spot):
            old = await spot.limit(SYM, "BUY", QTY, bid - 100)
            done = await spot.cancel_replace(
                SYM,
                "BUY",
                "LIMIT",
                cancel_replace_mode="STOP_ON_FAILURE",
                cancel_order_id=old.order_id,
                new_client_order_id="replacement",
                quantity=QTY,
                price=bid - 90,
                time_in_force="GTC",
            )
            assert (done.cancel_result, done.new_order_result) == ("SUCCESS", "SUCCESS")
            assert [o.client_order_id for o in await spot.open_orders(SYM)] == ["replacement"]
            assert [o.client_order_id for o in await spot.all_orders(SYM)] == [
                old.client_order_id,
                "replacement",
            ]
        assert [(f["kind"], f["status"]) for f in ex.fault_log()] == [("http", 500)]

    run(test)
