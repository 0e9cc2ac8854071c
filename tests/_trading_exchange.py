"""Setup shared by the spot and USD-M trading tests that run against the local exchange.

Each test starts the exchange in a background thread (``tickbook.sim.pytest_plugin``) on a
generated BTCUSDT market (seed 7, 300 levels) with the replay held, so the true book stays
where it starts, and trades through a ``RestClient`` and the market's trading object.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar

from tickbook.signing import HmacKey
from tickbook.sim.market import GeneratedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle
from tickbook.trading.client import RestClient
from tickbook.trading.clock import ServerClock

T = TypeVar("T")

Start = Callable[..., ExchangeHandle]

SYM = "BTCUSDT"
QTY = "0.001"


def start_held(exchange: Start, market: str, key: HmacKey, **options: Any) -> ExchangeHandle:
    """An exchange serving ``market`` to ``key`` with its replay held (``options``: the
    exchange's own)."""
    generated = functools.partial(GeneratedMarket, [SYM], market, seed=7, levels=300)
    return exchange(generated, speed=None, keys=[key], hold=True, **options)


def top(ex: ExchangeHandle) -> tuple[Decimal, Decimal]:
    """The true book's best bid and ask."""
    book = ex.truth(SYM, 1)
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


async def _wall_ms() -> float:
    return time.time_ns() / 1e6  # the exchange runs on the wall clock: no /time requests needed


@asynccontextmanager
async def trading_client(
    ex: ExchangeHandle,
    market: str,
    key: HmacKey,
    make: Callable[..., T],
    *,
    local_clock: bool = False,
    **options: Any,
) -> AsyncIterator[tuple[RestClient, T]]:
    """A client of ``ex`` and ``make(client, **options)``, its trading object. ``timeout`` and
    ``recv_window_ms`` in ``options`` go to the client. ``local_clock``: a clock that never
    sends ``/time``, so the exchange's request numbers (``http@N``) are the test's requests
    only."""
    client_opts: dict[str, Any] = {k: options.pop(k) for k in ("timeout", "recv_window_ms") if k in options}
    if local_clock:
        client_opts["clock"] = ServerClock(_wall_ms, interval=None)
    async with RestClient(market, base_url=ex.rest_url, key=key, **client_opts) as client:
        yield client, make(client, **options)


def run(test: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    """Run an async test body, failing it after ``timeout`` seconds."""

    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout)

    asyncio.run(bounded())
