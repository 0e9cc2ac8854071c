"""A client of the local exchange that follows Binance's documented sync procedure.

Shared by the exchange tests (one market, or several served by one process). The replay
is expected to pause itself at a known step before the client connects, so the snapshot
lands in the middle of it whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

import tickbook
from tickbook._types import Applied

SNAPSHOT_LIMIT = {"spot": 5000, "usdm": 1000}
DEPTH_PATH = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}


async def follow_procedure(
    session: aiohttp.ClientSession,
    *,
    market: str,
    ws_url: str,
    rest_url: str,
    stream: str,
    wait_paused: Callable[[], object],
    resume: Callable[[], object],
    finished: Callable[[], bool],
    truth_id: Callable[[], int],
    check_snapshot: Callable[[aiohttp.ClientResponse], None] | None = None,
) -> tuple[Any, int, int]:
    """Subscribe, buffer, fetch the snapshot while the replay is paused, resume, buffer events
    newer than the snapshot too, and only then apply it: the book must drop the stale
    buffered events, bridge and replay the newer ones; then apply until the book reaches the
    truth's last ID. Returns the book, the snapshot's lastUpdateId and the events received.
    """
    loop = asyncio.get_running_loop()
    book = tickbook.OrderBook("BTCUSDT", market)
    snap: dict[str, Any] | None = None
    applied_snapshot = False
    newer = received = 0  # newer: buffered events past the snapshot

    async def final_id() -> int | None:
        """The truth's last ID once the replay is over (None before)."""
        if not await loop.run_in_executor(None, finished):
            return None
        return await loop.run_in_executor(None, truth_id)

    async with session.ws_connect(f"{ws_url}/stream?streams={stream}", max_msg_size=0) as ws:
        final: int | None = None
        while final is None or book.last_update_id < final:
            try:
                msg = await ws.receive(timeout=0.5)
            except TimeoutError:
                final = await final_id()
                continue
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            wrapped = json.loads(msg.data)
            assert wrapped["stream"] == stream
            data = wrapped["data"]
            assert ("pu" in data) == (market == "usdm")  # this market's events, not another's
            flags = book.apply_diff(data["U"], data["u"], data["b"], data["a"], data.get("pu"))
            received += 1
            assert not flags & (Applied.GAP | Applied.CROSSED), book.reason_detail
            if snap is None:
                assert flags & Applied.BUFFERED
                await loop.run_in_executor(None, wait_paused)
                path = f"{DEPTH_PATH[market]}?symbol=BTCUSDT&limit={SNAPSHOT_LIMIT[market]}"
                async with session.get(rest_url + path) as response:
                    assert response.status == 200
                    if check_snapshot is not None:
                        check_snapshot(response)
                    snap = await response.json()
                await loop.run_in_executor(None, resume)
            elif not applied_snapshot:
                newer += data["u"] > snap["lastUpdateId"]
                if newer == 20:
                    book.apply_snapshot(
                        snap["lastUpdateId"], snap["bids"], snap["asks"], limit=SNAPSHOT_LIMIT[market]
                    )
                    applied_snapshot = True
                    assert book.synced, book.reason_detail
            elif final is None and received % 512 == 0:
                final = await final_id()
    assert snap is not None
    return book, int(snap["lastUpdateId"]), received
