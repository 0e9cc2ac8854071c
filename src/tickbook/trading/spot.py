"""Spot trading: orders, order lists and the account, over a ``RestClient`` (binance-spec §6).

``SpotTrading(client)`` places every spot order type, queries, cancels, replaces and amends
orders, places OCO/OTO/OTOCO order lists and reads the account, decoding every answer into
the Structs of ``tickbook.trading.models`` (exact ``Decimal`` values).

Every placement follows the same path:

1. the parameters are built and their mandatory-parameter rules checked locally
   (``tickbook.trading.orders``): a bad order raises ``RequestError`` with the exchange's code
   and nothing is sent;
2. a client order ID is generated when none is given (``tickbook.trading.ids``): it is what
   makes an unknown outcome recoverable;
3. the symbol's filters are checked locally (``SymbolRules.check_order``, exchangeInfo loaded
   on first use): a failure raises ``FilterFailure(local=True)`` naming the filter, with the
   code the exchange would answer. ``check=False`` (per call, or for the whole object) skips
   this step and lets the exchange judge;
4. the request is sent once. When its outcome is unknown (5xx, timeout after sending, -1006,
   -1007: ``UnknownOutcome``) the order is reconciled (§10.4): queried by its client order ID,
   with backoff while the exchange cannot answer; found, it is returned as a
   ``ReconciledSpotOrder`` (``reconciled`` is true); not found, it is resent with the same ID
   only after ``timestamp + recvWindow`` has passed and a query started after that instant
   still finds nothing. It is never placed twice.

An optional ``tracker`` (any object with ``on_response(obj)``, such as
``tickbook.trading.tracker.OrderTracker``) receives every decoded order answer once, as
returned: placements, queries, cancels, order lists (with their order reports), replaces
(both halves inside) and amendments; for a partly failed replace, the half that succeeded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from tickbook.trading.errors import CancelReplacePartial
from tickbook.trading.models import (
    AmendKeepPriorityResponse,
    ApiMessage,
    CancelReplaceResponse,
    MyTrade,
    OrderList,
    OrderRateLimit,
    SpotAccount,
    SpotOrder,
    TestOrderCommission,
    decode_cancel_all,
)
from tickbook.trading.orders import (
    Leg,
    Num,
    Params,
    TradingBase,
    _either,
    _mandatory,
    amend_keep_priority_params,
    cancel_order_list_params,
    cancel_order_params,
    cancel_replace_params,
    is_reconciled,
    oco_params,
    order_ref,
    oto_params,
    otoco_params,
    place_with_reconciliation,
    reconciled_as,
    spot_order,
)

__all__ = [
    "ReconciledCancelReplace",
    "ReconciledOrderList",
    "ReconciledSpotOrder",
    "SpotTrading",
    "is_reconciled",
]

log = logging.getLogger("tickbook.trading")


ORDER: Final = "/api/v3/order"
ORDER_TEST: Final = "/api/v3/order/test"
OPEN_ORDERS: Final = "/api/v3/openOrders"
ALL_ORDERS: Final = "/api/v3/allOrders"
CANCEL_REPLACE: Final = "/api/v3/order/cancelReplace"
AMEND: Final = "/api/v3/order/amend/keepPriority"
ORDER_LIST: Final = "/api/v3/orderList"
OPEN_ORDER_LISTS: Final = "/api/v3/openOrderList"
ACCOUNT: Final = "/api/v3/account"
MY_TRADES: Final = "/api/v3/myTrades"
RATE_LIMIT_ORDER: Final = "/api/v3/rateLimit/order"


class ReconciledSpotOrder(SpotOrder, frozen=True):
    """An order whose placement answer was lost, as a query by client order ID found it.

    The fields are those of ``GET /api/v3/order`` (no ``fills``: read them with ``my_trades``).
    """

    reconciled: bool = True


class ReconciledOrderList(OrderList, frozen=True):
    """An order list whose placement answer was lost, as ``GET /api/v3/orderList`` found it."""

    reconciled: bool = True


class ReconciledCancelReplace(CancelReplaceResponse, frozen=True, gc=True):
    """A cancelReplace whose answer was lost, rebuilt from queries of both orders: the
    halves are the ``GET /api/v3/order`` answers of the order to cancel and the new order."""

    reconciled: bool = True


class SpotTrading(TradingBase):
    """Spot orders and account over ``client`` (a spot ``RestClient`` with a key).

    ``tracker``: receives every decoded order answer (``on_response``). ``check``: check the
    symbol's filters locally before sending (default; exchangeInfo is loaded on first use).
    ``reconcile``: the policy for unknown outcomes. ``id_prefix``: the prefix of generated
    client order IDs (at most 16 of ``[A-Za-z0-9_-]``).
    """

    _order_path = ORDER

    # ------------------------------------------------------------------ placing orders

    async def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        check: bool | None = None,
        reference_price: Num | None = None,
        **options: Any,
    ) -> SpotOrder:
        """``POST /api/v3/order``: any spot order type; ``options`` are ``spot_order``'s
        keyword arguments (``quantity``, ``price``, ``time_in_force``, ``stop_price``,
        ``trailing_delta``, ``iceberg_qty``, ``new_client_order_id``, ``new_order_resp_type``,
        ``self_trade_prevention_mode``, ``strategy_id``, ``strategy_type``, ``peg_*``...).

        ``check``: check the filters locally (default: the object's ``check``);
        ``reference_price``: the symbol's reference (or average) price, which lets the local
        check judge PERCENT_PRICE and a MARKET order's notional as the exchange does."""
        self._give_id(options)
        params = spot_order(symbol, side, type, **options)
        client_id = params["newClientOrderId"]
        await self._check_filters(params, ("",), ORDER, check, client_id, reference_price)

        async def query() -> SpotOrder:
            return await self._get(ORDER, {"symbol": symbol, "origClientOrderId": client_id}, SpotOrder)

        return await self._place(
            "POST",
            ORDER,
            params,
            SpotOrder,
            client_id=client_id,
            query=query,
            reconciled=reconciled_as(ReconciledSpotOrder),
        )

    async def limit(
        self, symbol: str, side: str, quantity: Num, price: Num, *, time_in_force: str = "GTC", **options: Any
    ) -> SpotOrder:
        """A LIMIT order (GTC unless told otherwise)."""
        return await self.place_order(
            symbol, side, "LIMIT", quantity=quantity, price=price, time_in_force=time_in_force, **options
        )

    async def market(
        self,
        symbol: str,
        side: str,
        quantity: Num | None = None,
        *,
        quote_order_qty: Num | None = None,
        **options: Any,
    ) -> SpotOrder:
        """A MARKET order by base ``quantity`` or by ``quote_order_qty`` (exactly one)."""
        return await self.place_order(
            symbol, side, "MARKET", quantity=quantity, quote_order_qty=quote_order_qty, **options
        )

    async def stop_loss(
        self,
        symbol: str,
        side: str,
        quantity: Num,
        *,
        stop_price: Num | None = None,
        trailing_delta: int | None = None,
        **options: Any,
    ) -> SpotOrder:
        """A STOP_LOSS order (a MARKET order once triggered): ``stop_price`` and/or
        ``trailing_delta`` (BIPS)."""
        return await self.place_order(
            symbol,
            side,
            "STOP_LOSS",
            quantity=quantity,
            stop_price=stop_price,
            trailing_delta=trailing_delta,
            **options,
        )

    async def stop_loss_limit(
        self,
        symbol: str,
        side: str,
        quantity: Num,
        price: Num,
        *,
        stop_price: Num | None = None,
        trailing_delta: int | None = None,
        time_in_force: str = "GTC",
        **options: Any,
    ) -> SpotOrder:
        """A STOP_LOSS_LIMIT order (a LIMIT order at ``price`` once triggered)."""
        return await self.place_order(
            symbol,
            side,
            "STOP_LOSS_LIMIT",
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            trailing_delta=trailing_delta,
            time_in_force=time_in_force,
            **options,
        )

    async def take_profit(
        self,
        symbol: str,
        side: str,
        quantity: Num,
        *,
        stop_price: Num | None = None,
        trailing_delta: int | None = None,
        **options: Any,
    ) -> SpotOrder:
        """A TAKE_PROFIT order (a MARKET order once triggered)."""
        return await self.place_order(
            symbol,
            side,
            "TAKE_PROFIT",
            quantity=quantity,
            stop_price=stop_price,
            trailing_delta=trailing_delta,
            **options,
        )

    async def take_profit_limit(
        self,
        symbol: str,
        side: str,
        quantity: Num,
        price: Num,
        *,
        stop_price: Num | None = None,
        trailing_delta: int | None = None,
        time_in_force: str = "GTC",
        **options: Any,
    ) -> SpotOrder:
        """A TAKE_PROFIT_LIMIT order (a LIMIT order at ``price`` once triggered)."""
        return await self.place_order(
            symbol,
            side,
            "TAKE_PROFIT_LIMIT",
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            trailing_delta=trailing_delta,
            time_in_force=time_in_force,
            **options,
        )

    async def limit_maker(
        self, symbol: str, side: str, quantity: Num, price: Num, **options: Any
    ) -> SpotOrder:
        """A LIMIT_MAKER (post-only) order: refused if it would take."""
        return await self.place_order(symbol, side, "LIMIT_MAKER", quantity=quantity, price=price, **options)

    async def test_order(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        compute_commission_rates: bool = False,
        check: bool | None = None,
        **options: Any,
    ) -> TestOrderCommission | None:
        """``POST /api/v3/order/test``: validated by the exchange, never matched. Returns the
        commission rates with ``compute_commission_rates`` (weight 20), else None."""
        params = spot_order(symbol, side, type, endpoint=ORDER_TEST, **options)
        await self._check_filters(params, ("",), ORDER_TEST, check, params.get("newClientOrderId"))
        if compute_commission_rates:
            params["computeCommissionRates"] = "true"
            return await self.client.request_typed(
                "POST", ORDER_TEST, params, signed=True, type=TestOrderCommission
            )
        await self.client.request("POST", ORDER_TEST, params, signed=True)
        return None

    # ------------------------------------------------------------------ orders: query, cancel, amend

    async def query_order(
        self, symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None
    ) -> SpotOrder:
        """``GET /api/v3/order`` by ``order_id`` and/or ``orig_client_order_id``."""
        params = order_ref(symbol, order_id, orig_client_order_id, ORDER, "GET")
        return await self._tracked("GET", ORDER, params, SpotOrder)

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
        cancel_restrictions: str | None = None,
    ) -> SpotOrder:
        """``DELETE /api/v3/order`` (by ``order_id`` alone is fastest). Cancelling one leg of
        an order list cancels the whole list. ``cancel_restrictions``: ONLY_NEW or
        ONLY_PARTIALLY_FILLED (-2011 when the order is in another state)."""
        params = cancel_order_params(
            symbol,
            order_id=order_id,
            orig_client_order_id=orig_client_order_id,
            new_client_order_id=new_client_order_id,
            cancel_restrictions=cancel_restrictions,
        )
        return await self._tracked("DELETE", ORDER, params, SpotOrder, client_order_id=orig_client_order_id)

    async def cancel_all(self, symbol: str) -> list[SpotOrder | OrderList]:
        """``DELETE /api/v3/openOrders``: every open order of ``symbol``, order lists included
        (each canceled list appears once, as an ``OrderList``)."""
        if not symbol:
            raise _mandatory("symbol", OPEN_ORDERS, "DELETE")
        body = await self.client.request("DELETE", OPEN_ORDERS, {"symbol": symbol}, signed=True)
        canceled = decode_cancel_all(body)
        self._feed_all(canceled)
        return canceled

    async def cancel_replace(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        cancel_replace_mode: str,
        cancel_order_id: int | None = None,
        cancel_orig_client_order_id: str | None = None,
        cancel_new_client_order_id: str | None = None,
        cancel_restrictions: str | None = None,
        order_rate_limit_exceeded_mode: str | None = None,
        check: bool | None = None,
        **options: Any,
    ) -> CancelReplaceResponse:
        """``POST /api/v3/order/cancelReplace``: cancel one order and place another (§6.1).

        ``cancel_replace_mode`` is mandatory: STOP_ON_FAILURE (no new order if the cancel
        fails) or ALLOW_FAILURE. ``options`` describe the new order as for ``place_order``.
        When one half succeeded and the other failed (HTTP 409, -2021) this raises
        ``CancelReplacePartial`` whose ``cancel_response``/``new_order_response`` are decoded:
        a ``SpotOrder`` for a half that succeeded, an ``ApiMessage`` (code, msg) for one that
        failed, None for one not attempted (the raw object stays in ``data``).
        """
        self._give_id(options)
        new_order = spot_order(symbol, side, type, endpoint=CANCEL_REPLACE, **options)
        params = cancel_replace_params(
            new_order,
            cancel_replace_mode,
            cancel_order_id=cancel_order_id,
            cancel_orig_client_order_id=cancel_orig_client_order_id,
            cancel_new_client_order_id=cancel_new_client_order_id,
            cancel_restrictions=cancel_restrictions,
            order_rate_limit_exceeded_mode=order_rate_limit_exceeded_mode,
        )
        client_id = params["newClientOrderId"]
        await self._check_filters(params, ("",), CANCEL_REPLACE, check, client_id)

        async def query() -> CancelReplaceResponse:
            # Found the new order: both halves ran (the new one is only attempted after the
            # cancel, or regardless under ALLOW_FAILURE); read the old one's state too.
            new = await self.client.request_json(
                "GET", ORDER, {"symbol": symbol, "origClientOrderId": client_id}, signed=True
            )
            old_ref = order_ref(symbol, cancel_order_id, cancel_orig_client_order_id, ORDER, "GET")
            old = await self.client.request_json("GET", ORDER, old_ref, signed=True)
            canceled = old.get("status") == "CANCELED"
            return ReconciledCancelReplace(
                cancel_result="SUCCESS" if canceled else "FAILURE",
                new_order_result="SUCCESS",
                cancel_response=old,
                new_order_response=new,
            )

        try:
            result = await place_with_reconciliation(
                lambda: self.client.request_typed(
                    "POST",
                    CANCEL_REPLACE,
                    params,
                    signed=True,
                    client_order_id=client_id,
                    type=CancelReplaceResponse,
                ),
                query,
                client_order_id=client_id,
                now_ms=self.client.clock.now_ms,
                recv_window_ms=self._recv_window_ms(),
                policy=self.reconcile,
            )
        except CancelReplacePartial as exc:
            exc.cancel_response = self._half(exc.cancel_response)
            exc.new_order_response = self._half(exc.new_order_response)
            for half in (exc.cancel_response, exc.new_order_response):
                if isinstance(half, SpotOrder):
                    self._feed(half)
            raise
        self._feed(result)
        return result

    @staticmethod
    def _half(raw: Any) -> SpotOrder | ApiMessage | None:
        """One half of a cancelReplace answer: the order, the error, or None (not attempted)."""
        if not isinstance(raw, Mapping):
            return None
        try:
            if "orderId" in raw:
                return msgspec.convert(dict(raw), SpotOrder)
            if "code" in raw:
                return msgspec.convert(dict(raw), ApiMessage)
        except msgspec.ValidationError:
            log.warning("cancelReplace: undecodable half %r", raw)
        return None

    async def amend_keep_priority(
        self,
        symbol: str,
        new_qty: Num,
        *,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> AmendKeepPriorityResponse:
        """``PUT /api/v3/order/amend/keepPriority``: reduce an open order's quantity to
        ``new_qty`` keeping its place in the queue (at most 10 amends per order, -2038).

        Not reconciled: on ``UnknownOutcome``, query the order to see whether its quantity
        changed (sending the same ``new_qty`` again is harmless but counts as an amend)."""
        params = amend_keep_priority_params(
            symbol,
            new_qty,
            order_id=order_id,
            orig_client_order_id=orig_client_order_id,
            new_client_order_id=new_client_order_id,
        )
        return await self._tracked(
            "PUT", AMEND, params, AmendKeepPriorityResponse, client_order_id=orig_client_order_id
        )

    # ------------------------------------------------------------------ order lists

    def _list_ids(
        self, list_client_order_id: str | None, legs: Mapping[str, Leg]
    ) -> tuple[str, dict[str, Leg]]:
        """The list's client ID and its legs, each given a client order ID when it has none."""
        list_id = list_client_order_id or self.new_id()
        named = {
            prefix: leg if leg.client_order_id else _with_id(leg, self.new_id())
            for prefix, leg in legs.items()
        }
        return list_id, named

    async def _place_list(
        self, path: str, params: Params, prefixes: Sequence[str], check: bool | None
    ) -> OrderList:
        list_id = params["listClientOrderId"]
        await self._check_filters(params, prefixes, path, check, list_id)

        async def query() -> OrderList:
            return await self._get(ORDER_LIST, {"origClientOrderId": list_id}, OrderList)

        return await self._place(
            "POST",
            path,
            params,
            OrderList,
            client_id=list_id,
            query=query,
            reconciled=reconciled_as(ReconciledOrderList),
        )

    async def oco(
        self,
        symbol: str,
        side: str,
        quantity: Num,
        above: Leg,
        below: Leg,
        *,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        check: bool | None = None,
    ) -> OrderList:
        """``POST /api/v3/orderList/oco``: two orders, one cancels the other (§6.2).

        A SELL has its take-profit leg (LIMIT_MAKER, TAKE_PROFIT, TAKE_PROFIT_LIMIT) above and
        its stop loss below; a BUY the mirror. Example (sell 1 at 110 or stop out at 90)::

            await spot.oco("BTCUSDT", "SELL", "1",
                           above=Leg("LIMIT_MAKER", price="110"),
                           below=Leg("STOP_LOSS_LIMIT", stop_price="90", price="89.9", time_in_force="GTC"))
        """
        list_id, legs = self._list_ids(list_client_order_id, {"above": above, "below": below})
        params = oco_params(
            symbol,
            side,
            quantity,
            legs["above"],
            legs["below"],
            list_client_order_id=list_id,
            new_order_resp_type=new_order_resp_type,
            self_trade_prevention_mode=self_trade_prevention_mode,
        )
        return await self._place_list("/api/v3/orderList/oco", params, ("above", "below"), check)

    async def oto(
        self,
        symbol: str,
        working: Leg,
        pending: Leg,
        *,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        check: bool | None = None,
    ) -> OrderList:
        """``POST /api/v3/orderList/oto``: a working LIMIT/LIMIT_MAKER order (``side`` and
        ``quantity`` on the leg) that places the pending order once fully filled."""
        list_id, legs = self._list_ids(list_client_order_id, {"working": working, "pending": pending})
        params = oto_params(
            symbol,
            legs["working"],
            legs["pending"],
            list_client_order_id=list_id,
            new_order_resp_type=new_order_resp_type,
            self_trade_prevention_mode=self_trade_prevention_mode,
        )
        return await self._place_list("/api/v3/orderList/oto", params, ("working", "pending"), check)

    async def otoco(
        self,
        symbol: str,
        working: Leg,
        pending_side: str,
        pending_quantity: Num,
        pending_above: Leg,
        pending_below: Leg,
        *,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        check: bool | None = None,
    ) -> OrderList:
        """``POST /api/v3/orderList/otoco``: a working order that places an OCO pair
        (``pending_above``/``pending_below``, under the OCO rules) once fully filled."""
        list_id, legs = self._list_ids(
            list_client_order_id,
            {"working": working, "pendingAbove": pending_above, "pendingBelow": pending_below},
        )
        params = otoco_params(
            symbol,
            legs["working"],
            pending_side,
            pending_quantity,
            legs["pendingAbove"],
            legs["pendingBelow"],
            list_client_order_id=list_id,
            new_order_resp_type=new_order_resp_type,
            self_trade_prevention_mode=self_trade_prevention_mode,
        )
        return await self._place_list(
            "/api/v3/orderList/otoco", params, ("working", "pendingAbove", "pendingBelow"), check
        )

    async def cancel_order_list(
        self,
        symbol: str,
        *,
        order_list_id: int | None = None,
        list_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> OrderList:
        """``DELETE /api/v3/orderList``: cancel every leg of the list."""
        params = cancel_order_list_params(
            symbol,
            order_list_id=order_list_id,
            list_client_order_id=list_client_order_id,
            new_client_order_id=new_client_order_id,
        )
        return await self._tracked(
            "DELETE", ORDER_LIST, params, OrderList, client_order_id=list_client_order_id
        )

    async def query_order_list(
        self, *, order_list_id: int | None = None, orig_client_order_id: str | None = None
    ) -> OrderList:
        """``GET /api/v3/orderList`` by ``orderListId`` or the list's client ID
        (``origClientOrderId``)."""
        if order_list_id is None and not orig_client_order_id:
            raise _either("orderListId", "origClientOrderId", ORDER_LIST, "GET")
        params: dict[str, object] = {"orderListId": order_list_id, "origClientOrderId": orig_client_order_id}
        return await self._tracked("GET", ORDER_LIST, params, OrderList)

    async def open_order_lists(self) -> list[OrderList]:
        """``GET /api/v3/openOrderList``."""
        return await self._get(OPEN_ORDER_LISTS, None, list[OrderList])

    # ------------------------------------------------------------------ orders and account

    async def open_orders(self, symbol: str | None = None) -> list[SpotOrder]:
        """``GET /api/v3/openOrders`` for ``symbol`` (weight 6), or every symbol (weight 80)."""
        params = {"symbol": symbol} if symbol else None
        return await self._tracked("GET", OPEN_ORDERS, params, list[SpotOrder])

    async def all_orders(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[SpotOrder]:
        """``GET /api/v3/allOrders``: the symbol's orders, open and closed (window <= 24 h,
        ``limit`` <= 1000); from ``order_id`` on when given."""
        params = self._history(symbol, order_id, start_time, end_time, limit)
        return await self._get(ALL_ORDERS, params, list[SpotOrder])

    async def account(self, *, omit_zero_balances: bool = False) -> SpotAccount:
        """``GET /api/v3/account``: balances (``free``/``locked``), commissions, permissions."""
        params = {"omitZeroBalances": "true"} if omit_zero_balances else None
        return await self._get(ACCOUNT, params, SpotAccount)

    async def my_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int | None = None,
    ) -> list[MyTrade]:
        """``GET /api/v3/myTrades``: the account's trades on ``symbol`` (weight 5 with
        ``order_id``, else 20)."""
        params = self._history(symbol, order_id, start_time, end_time, limit, from_id=from_id)
        return await self._get(MY_TRADES, params, list[MyTrade])

    async def order_rate_limits(self) -> list[OrderRateLimit]:
        """``GET /api/v3/rateLimit/order``: the unfilled order counts per ORDERS window."""
        return await self._get(RATE_LIMIT_ORDER, None, list[OrderRateLimit])


def _with_id(leg: Leg, client_order_id: str) -> Leg:
    return dataclasses.replace(leg, client_order_id=client_order_id)
