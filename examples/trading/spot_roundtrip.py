"""A spot trading round trip: rules, a resting order, a fill, a cancel, all seen three ways.

The order tracker is fed by the REST answers and by the user-data stream (WebSocket API),
every request goes into an SQLite journal with its secrets redacted, and a price off the tick
grid is refused locally with the filter's name before anything is sent.

Against the local exchange (``tickbook sim`` prints its URLs; start it with ``--key K:S``)::

    python examples/trading/spot_roundtrip.py --rest http://127.0.0.1:PORT \
        --ws-api ws://127.0.0.1:PORT/ws-api/v3 --key K --secret S

Against Binance's spot testnet the same script runs with ``--rest
https://testnet.binance.vision --ws-api wss://ws-api.testnet.binance.vision/ws-api/v3`` and a
testnet key: only the URLs differ. Nothing here reaches any other host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from tickbook.signing import HmacKey
from tickbook.trading import (
    FilterFailure,
    Journal,
    OrderTracker,
    RestClient,
    SpotTrading,
    SpotUserData,
)
from tickbook.trading.events import ExecutionReport


async def roundtrip(
    rest_url: str, ws_api_url: str, key: HmacKey, symbol: str, journal_path: Path
) -> dict[str, Any]:
    """Run the round trip; return what happened (the test of this example reads it)."""
    tracker = OrderTracker()
    reports: list[ExecutionReport] = []
    with Journal(journal_path) as journal:
        async with RestClient("spot", base_url=rest_url, key=key, journal=journal) as client:
            rules = (await client.exchange_info([symbol]))[symbol]
            trading = SpotTrading(client, tracker=tracker)
            book = await client.book_ticker(symbol)
            user_data = SpotUserData(
                key,
                ws_api_url,
                clock=client.clock,
                tracker=tracker,
                on_event=lambda e: reports.append(e) if isinstance(e, ExecutionReport) else None,
            )
            async with user_data:
                await user_data.wait_ready(10.0)

                # Refused here, with the exchange's own filter name: nothing is sent.
                below = rules.round_price(book.bid_price * Decimal("0.9"), mode="down")
                off_grid = below + rules.tick_size / 2
                try:
                    await trading.limit(symbol, "BUY", rules.min_qty, off_grid)
                    refused = None
                except FilterFailure as exc:
                    refused = exc.filter

                # A resting bid well below the market, then a marketable buy, then the cancel.
                quantity = rules.round_qty(Decimal(20) / below, mode="up")
                resting = await trading.limit(symbol, "BUY", quantity, below)
                taken = await trading.market(symbol, "BUY", quote_order_qty=Decimal(50))
                cancelled = await trading.cancel_order(symbol, order_id=resting.order_id)

                for _ in range(100):  # the stream's reports follow the REST answers
                    states = [tracker.get(o.order_id, symbol) for o in (resting, taken)]
                    if all(s is not None and s.is_final for s in states):
                        break
                    await asyncio.sleep(0.05)
            account = await trading.account(omit_zero_balances=True)

        resting_state = tracker.get(resting.order_id, symbol)
        taken_state = tracker.get(taken.order_id, symbol)
        assert resting_state is not None  # the tracker was fed by the answers above
        assert taken_state is not None
        return {
            "refused_locally": refused,
            "resting": {"status": resting_state.status, "price": str(resting_state.price)},
            "taken": {
                "status": taken_state.status,
                "executed_qty": str(taken_state.executed_qty),
                "avg_price": str(taken_state.avg_price),
            },
            "cancel_status": cancelled.status,
            "execution_reports": len(reports),
            "balances": {b.asset: str(b.free) for b in account.balances},
            "journal_entries": len(journal),
            "journal_errors": sum(journal.error_counts().values()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rest", required=True, help="REST base URL")
    parser.add_argument("--ws-api", required=True, help="spot WebSocket API URL")
    parser.add_argument("--key", required=True, help="API key")
    parser.add_argument("--secret", required=True, help="HMAC secret")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--journal", type=Path, help="SQLite journal (default: a temporary file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.journal or Path(tmp) / "journal.sqlite"
        key = HmacKey(args.key, args.secret)
        result = asyncio.run(roundtrip(args.rest, args.ws_api, key, args.symbol, path))
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
