"""USD-M futures trading: orders, conditional (algo) orders, positions and account (binance-spec §6.3).

``FuturesTrading(client)`` (a USD-M ``RestClient``) places LIMIT and MARKET orders on
``/fapi/v1/order`` and the conditional types on the Algo Service (``/fapi/v1/algoOrder``,
``algoType=CONDITIONAL``: STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET and
TRAILING_STOP_MARKET, triggered at ``triggerPrice``; since 2025-12-09 the order endpoint
refuses them with -4120), modifies, batches and cancels orders, and sets leverage and margin
type; answers are decoded into ``tickbook.trading.models`` Structs with exact decimals.

Placement works as on spot (see ``tickbook.trading.spot``): parameters checked locally
(``tickbook.trading.orders``), a client order ID generated when missing (``clientAlgoId`` for
algo orders), the symbol's filters checked with the futures formulas
(``SymbolRules.check_order``; ``check=False`` skips it), one send, and on an unknown outcome
(5xx "Unknown error", 408, timeout after sending) a reconciliation by client ID before
anything is sent again (§10.4): found, the answer is a ``ReconciledFuturesOrder`` /
``ReconciledAlgoOrder``; resent with the same ID only once the exchange has said -2013 to a
query started after ``timestamp + recvWindow``. The futures 503 answers that are definite
failures ("Service Unavailable.", -1008 throttling) are retried by the client itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec

from tickbook.trading.errors import BinanceError, OrderRejected, RequestError, UnknownOutcome
from tickbook.trading.models import (
    AlgoOrder,
    ApiMessage,
    FuturesAccount,
    FuturesBalance,
    FuturesOrder,
    LeverageResponse,
    OrderRateLimit,
    PositionRisk,
    decode_batch_orders,
)
from tickbook.trading.orders import (
    FUTURES_ALGO,
    FUTURES_ORDER,
    Num,
    Params,
    TradingBase,
    _either,
    _error,
    futures_batch_params,
    futures_conditional,
    futures_modify,
    futures_order,
    is_reconciled,
    order_ref,
    place_with_reconciliation,
    reconciled_as,
)

__all__ = [
    "AlgoCancel",
    "FuturesTrading",
    "ReconciledAlgoOrder",
    "ReconciledFuturesOrder",
    "is_reconciled",
]

log = logging.getLogger("tickbook.trading")


BATCH_ORDERS: Final = "/fapi/v1/batchOrders"
ALL_OPEN_ORDERS: Final = "/fapi/v1/allOpenOrders"
OPEN_ORDERS: Final = "/fapi/v1/openOrders"
ALL_ORDERS: Final = "/fapi/v1/allOrders"
OPEN_ALGO_ORDERS: Final = "/fapi/v1/openAlgoOrders"
ALGO_OPEN_ORDERS: Final = "/fapi/v1/algoOpenOrders"
LEVERAGE: Final = "/fapi/v1/leverage"
MARGIN_TYPE: Final = "/fapi/v1/marginType"
POSITION_RISK: Final = "/fapi/v3/positionRisk"
ACCOUNT: Final = "/fapi/v3/account"
BALANCE: Final = "/fapi/v3/balance"
RATE_LIMIT_ORDER: Final = "/fapi/v1/rateLimit/order"

MAX_LEVERAGE: Final = 125
MARGIN_TYPES: Final = frozenset({"ISOLATED", "CROSSED"})


class ReconciledFuturesOrder(FuturesOrder, frozen=True):
    """An order whose placement answer was lost, as ``GET /fapi/v1/order`` found it."""

    reconciled: bool = True


class ReconciledAlgoOrder(AlgoOrder, frozen=True):
    """An algo order whose placement answer was lost, as ``GET /fapi/v1/algoOrder`` found it."""

    reconciled: bool = True


class AlgoCancel(msgspec.Struct, frozen=True, rename="camel"):
    """``DELETE /fapi/v1/algoOrder``: which algo order was canceled, and the status message."""

    algo_id: int
    client_algo_id: str
    code: int | str | None = None  # "200" on success
    msg: str | None = None


class _NotApplied(BinanceError):
    """A modification not (yet) visible on the order: reconciliation keeps looking."""


def _same(value: Decimal | None, text: str | None) -> bool:
    """Whether the order shows the value we sent (``None`` sent: nothing to compare)."""
    return text is None or (value is not None and value == Decimal(text))


class FuturesTrading(TradingBase):
    """USD-M orders, positions and account over ``client`` (a USD-M ``RestClient`` with a key).

    ``tracker``, ``check``, ``reconcile`` and ``id_prefix`` as for ``SpotTrading``.
    """

    _order_path = FUTURES_ORDER

    def _now_ms(self) -> int:
        return int(self.client.clock.now_ms())

    # ------------------------------------------------------------------ orders

    def _build(self, symbol: str, side: str, type: str, options: dict[str, Any]) -> Params:
        self._give_id(options)
        options.setdefault("now_ms", self._now_ms())
        return futures_order(symbol, side, type, **options)

    def _query_by_client_id(self, symbol: str, client_id: str) -> Callable[[], Awaitable[FuturesOrder]]:
        async def query() -> FuturesOrder:
            return await self._get(
                FUTURES_ORDER, {"symbol": symbol, "origClientOrderId": client_id}, FuturesOrder
            )

        return query

    async def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        check: bool | None = None,
        mark_price: Num | None = None,
        **options: Any,
    ) -> FuturesOrder:
        """``POST /fapi/v1/order``: LIMIT or MARKET; ``options`` are ``futures_order``'s
        keyword arguments (``quantity``, ``price``, ``time_in_force``, ``position_side``,
        ``reduce_only``, ``price_match``, ``good_till_date``, ``new_client_order_id``,
        ``new_order_resp_type``, ``self_trade_prevention_mode``).

        ``check``: check the filters locally; ``mark_price`` lets that check judge
        PERCENT_PRICE and a MARKET order's notional, which compare with the mark price."""
        params = self._build(symbol, side, type, options)
        client_id = params["newClientOrderId"]
        await self._check_filters(params, ("",), FUTURES_ORDER, check, client_id, mark_price)
        return await self._place(
            "POST",
            FUTURES_ORDER,
            params,
            FuturesOrder,
            client_id=client_id,
            query=self._query_by_client_id(symbol, client_id),
            reconciled=reconciled_as(ReconciledFuturesOrder),
        )

    async def limit(
        self, symbol: str, side: str, quantity: Num, price: Num, *, time_in_force: str = "GTC", **options: Any
    ) -> FuturesOrder:
        """A LIMIT order (GTC unless told otherwise; GTX is post-only, GTD needs
        ``good_till_date``)."""
        return await self.place_order(
            symbol, side, "LIMIT", quantity=quantity, price=price, time_in_force=time_in_force, **options
        )

    async def market(self, symbol: str, side: str, quantity: Num, **options: Any) -> FuturesOrder:
        """A MARKET order (by quantity: USD-M has no ``quoteOrderQty``)."""
        return await self.place_order(symbol, side, "MARKET", quantity=quantity, **options)

    async def conditional(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        check: bool | None = None,
        mark_price: Num | None = None,
        **options: Any,
    ) -> AlgoOrder:
        """``POST /fapi/v1/algoOrder`` with ``algoType=CONDITIONAL``: STOP, STOP_MARKET,
        TAKE_PROFIT, TAKE_PROFIT_MARKET or TRAILING_STOP_MARKET; ``options`` are
        ``futures_conditional``'s (``trigger_price``, ``quantity``, ``price``,
        ``close_position``, ``working_type``, ``price_protect``, ``callback_rate``,
        ``activate_price``, ``client_algo_id``...). Untriggered algo orders cannot be modified."""
        self._give_id(options, "client_algo_id")
        options.setdefault("now_ms", self._now_ms())
        params = futures_conditional(symbol, side, type, **options)
        client_id = params["clientAlgoId"]
        await self._check_filters(params, ("",), FUTURES_ALGO, check, client_id, mark_price)

        async def query() -> AlgoOrder:
            return await self._get(FUTURES_ALGO, {"clientAlgoId": client_id}, AlgoOrder)

        return await self._place(
            "POST",
            FUTURES_ALGO,
            params,
            AlgoOrder,
            client_id=client_id,
            query=query,
            reconciled=reconciled_as(ReconciledAlgoOrder),
        )

    async def stop_market(
        self, symbol: str, side: str, trigger_price: Num, quantity: Num | None = None, **options: Any
    ) -> AlgoOrder:
        """A STOP_MARKET algo order (``close_position=True`` instead of a quantity closes the
        whole position)."""
        return await self.conditional(
            symbol, side, "STOP_MARKET", trigger_price=trigger_price, quantity=quantity, **options
        )

    async def take_profit_market(
        self, symbol: str, side: str, trigger_price: Num, quantity: Num | None = None, **options: Any
    ) -> AlgoOrder:
        """A TAKE_PROFIT_MARKET algo order."""
        return await self.conditional(
            symbol, side, "TAKE_PROFIT_MARKET", trigger_price=trigger_price, quantity=quantity, **options
        )

    async def trailing_stop_market(
        self, symbol: str, side: str, quantity: Num, callback_rate: Num, **options: Any
    ) -> AlgoOrder:
        """A TRAILING_STOP_MARKET algo order (``callback_rate`` 0.1..10 percent;
        ``activate_price`` optional)."""
        return await self.conditional(
            symbol, side, "TRAILING_STOP_MARKET", quantity=quantity, callback_rate=callback_rate, **options
        )

    async def modify_order(
        self,
        symbol: str,
        side: str,
        quantity: Num,
        price: Num | None,
        *,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        price_match: str | None = None,
        check: bool | None = None,
    ) -> FuturesOrder:
        """``PUT /fapi/v1/order``: a new ``quantity`` and ``price`` for an open LIMIT order
        (both required; the order goes to the back of the queue).

        An unknown outcome is reconciled by reading the order back: once it shows the new
        price and quantity that is the answer; if it still does not after ``timestamp +
        recvWindow``, the same modification is sent again (a modification sets absolute values,
        so a second copy changes nothing more)."""
        params = futures_modify(
            symbol,
            side,
            quantity,
            price,
            order_id=order_id,
            orig_client_order_id=orig_client_order_id,
            price_match=price_match,
        )
        label = orig_client_order_id or str(order_id)
        await self._check_filters(
            {**params, "type": "LIMIT"}, ("",), FUTURES_ORDER, check, label, method="PUT"
        )
        ref = order_ref(symbol, order_id, orig_client_order_id, FUTURES_ORDER, "GET")

        async def query() -> FuturesOrder:
            order = await self._get(FUTURES_ORDER, ref, FuturesOrder)
            if order.status in ("NEW", "PARTIALLY_FILLED") and not (
                _same(order.orig_qty, params["quantity"]) and _same(order.price, params.get("price"))
            ):
                raise _NotApplied("the order does not show the modification yet")
            return order

        return await self._place(
            "PUT",
            FUTURES_ORDER,
            params,
            FuturesOrder,
            client_id=label,
            query=query,
            reconciled=reconciled_as(ReconciledFuturesOrder),
            not_found=lambda exc: isinstance(exc, _NotApplied),
        )

    async def batch_orders(
        self, orders: Sequence[Mapping[str, Any]], *, check: bool | None = None
    ) -> list[FuturesOrder | ApiMessage]:
        """``POST /fapi/v1/batchOrders``: up to 5 LIMIT/MARKET orders, each given as the
        keyword arguments of ``place_order`` (``{"symbol": ..., "side": ..., "type": ...,
        "quantity": ...}``). The exchange processes them concurrently; the answers come back
        in request order, a refused order as an ``ApiMessage`` (code, msg) in its place.

        On an unknown outcome each order is reconciled on its own by its client order ID;
        one confirmed absent is placed again alone (``POST /fapi/v1/order``, same ID)."""
        built: list[Params] = []
        for spec in orders:
            options = dict(spec)
            symbol, side, type = options.pop("symbol"), options.pop("side"), options.pop("type")
            params = self._build(symbol, side, type, options)
            await self._check_filters(params, ("",), BATCH_ORDERS, check, params["newClientOrderId"])
            built.append(params)
        body_params = futures_batch_params(built)
        try:
            body = await self.client.request("POST", BATCH_ORDERS, body_params, signed=True)
        except UnknownOutcome as lost:
            log.warning("batchOrders: outcome unknown (%s); reconciling each order", lost.msg)
            results: list[FuturesOrder | ApiMessage] = list(
                await asyncio.gather(*(self._reconcile_one(params, lost) for params in built))
            )
        else:
            results = decode_batch_orders(body)
        self._feed_all([r for r in results if isinstance(r, FuturesOrder)])
        return results

    async def _reconcile_one(self, params: Params, lost: UnknownOutcome) -> FuturesOrder | ApiMessage:
        """One order of a batch whose answer was lost: found, or placed again alone. A resend
        the exchange refuses takes the refusal's place in the answer, as in a batch answer; an
        order that stays unknown raises ``UnknownOutcome``."""
        client_id = params["newClientOrderId"]
        first = True

        async def send() -> FuturesOrder:
            nonlocal first
            if first:  # the batch itself was the first send
                first = False
                raise lost
            return await self.client.request_typed(
                "POST", FUTURES_ORDER, params, signed=True, client_order_id=client_id, type=FuturesOrder
            )

        try:
            return await place_with_reconciliation(
                send,
                self._query_by_client_id(params["symbol"], client_id),
                client_order_id=client_id,
                now_ms=self.client.clock.now_ms,
                recv_window_ms=self._recv_window_ms(),
                policy=self.reconcile,
                on_reconciled=reconciled_as(ReconciledFuturesOrder),
            )
        except (OrderRejected, RequestError) as refused:
            return ApiMessage(code=refused.code if refused.code is not None else 0, msg=refused.msg)

    async def query_order(
        self, symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None
    ) -> FuturesOrder:
        """``GET /fapi/v1/order``."""
        params = order_ref(symbol, order_id, orig_client_order_id, FUTURES_ORDER, "GET")
        return await self._tracked("GET", FUTURES_ORDER, params, FuturesOrder)

    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None
    ) -> FuturesOrder:
        """``DELETE /fapi/v1/order``."""
        params = order_ref(symbol, order_id, orig_client_order_id, FUTURES_ORDER, "DELETE")
        return await self._tracked(
            "DELETE", FUTURES_ORDER, params, FuturesOrder, client_order_id=orig_client_order_id
        )

    async def cancel_all(self, symbol: str) -> ApiMessage:
        """``DELETE /fapi/v1/allOpenOrders``: every open order of ``symbol``."""
        return await self.client.request_typed(
            "DELETE", ALL_OPEN_ORDERS, {"symbol": symbol}, signed=True, type=ApiMessage
        )

    async def open_orders(self, symbol: str | None = None) -> list[FuturesOrder]:
        """``GET /fapi/v1/openOrders`` for ``symbol`` (weight 1) or all symbols (weight 40)."""
        params = {"symbol": symbol} if symbol else None
        return await self._tracked("GET", OPEN_ORDERS, params, list[FuturesOrder])

    async def all_orders(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[FuturesOrder]:
        """``GET /fapi/v1/allOrders``."""
        params = self._history(symbol, order_id, start_time, end_time, limit)
        return await self._get(ALL_ORDERS, params, list[FuturesOrder])

    # ------------------------------------------------------------------ algo orders

    @staticmethod
    def _algo_ref(algo_id: int | None, client_algo_id: str | None, method: str) -> dict[str, object]:
        if algo_id is None and not client_algo_id:
            raise _either("algoId", "clientAlgoId", FUTURES_ALGO, method)
        return {"algoId": algo_id, "clientAlgoId": client_algo_id}

    async def query_algo_order(
        self, *, algo_id: int | None = None, client_algo_id: str | None = None
    ) -> AlgoOrder:
        """``GET /fapi/v1/algoOrder`` by ``algoId`` or ``clientAlgoId``."""
        return await self._tracked(
            "GET", FUTURES_ALGO, self._algo_ref(algo_id, client_algo_id, "GET"), AlgoOrder
        )

    async def cancel_algo_order(
        self, *, algo_id: int | None = None, client_algo_id: str | None = None
    ) -> AlgoCancel:
        """``DELETE /fapi/v1/algoOrder``."""
        params = self._algo_ref(algo_id, client_algo_id, "DELETE")
        return await self.client.request_typed(
            "DELETE", FUTURES_ALGO, params, signed=True, client_order_id=client_algo_id, type=AlgoCancel
        )

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        """``GET /fapi/v1/openAlgoOrders``."""
        params = {"symbol": symbol} if symbol else None
        return await self._tracked("GET", OPEN_ALGO_ORDERS, params, list[AlgoOrder])

    async def cancel_all_algo_orders(self, symbol: str) -> ApiMessage:
        """``DELETE /fapi/v1/algoOpenOrders``: every open algo order of ``symbol``."""
        return await self.client.request_typed(
            "DELETE", ALGO_OPEN_ORDERS, {"symbol": symbol}, signed=True, type=ApiMessage
        )

    # ------------------------------------------------------------------ positions and account

    async def set_leverage(self, symbol: str, leverage: int) -> LeverageResponse:
        """``POST /fapi/v1/leverage``: 1..125 (the symbol's brackets may allow less: -4028)."""
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= MAX_LEVERAGE:
            raise _error(-4028, f"Leverage {leverage!r} is not valid (1..{MAX_LEVERAGE}).", LEVERAGE)
        return await self.client.request_typed(
            "POST", LEVERAGE, {"symbol": symbol, "leverage": leverage}, signed=True, type=LeverageResponse
        )

    async def set_margin_type(self, symbol: str, margin_type: str) -> ApiMessage:
        """``POST /fapi/v1/marginType``: ISOLATED or CROSSED. Setting the type the symbol
        already has raises the exchange's -4046 "No need to change margin type."."""
        if margin_type not in MARGIN_TYPES:
            msg = f"Data sent for parameter 'marginType' is not valid: {margin_type!r} (ISOLATED or CROSSED)."
            raise _error(-1130, msg, MARGIN_TYPE)
        return await self.client.request_typed(
            "POST", MARGIN_TYPE, {"symbol": symbol, "marginType": margin_type}, signed=True, type=ApiMessage
        )

    async def position_risk(self, symbol: str | None = None) -> list[PositionRisk]:
        """``GET /fapi/v3/positionRisk``: symbols with a position or open orders."""
        return await self._get(POSITION_RISK, {"symbol": symbol} if symbol else None, list[PositionRisk])

    async def account(self) -> FuturesAccount:
        """``GET /fapi/v3/account``."""
        return await self._get(ACCOUNT, None, FuturesAccount)

    async def balance(self) -> list[FuturesBalance]:
        """``GET /fapi/v3/balance``."""
        return await self._get(BALANCE, None, list[FuturesBalance])

    async def order_rate_limits(self) -> list[OrderRateLimit]:
        """``GET /fapi/v1/rateLimit/order``."""
        return await self._get(RATE_LIMIT_ORDER, None, list[OrderRateLimit])
