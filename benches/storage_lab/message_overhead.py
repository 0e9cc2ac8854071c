"""What the core's end to end costs beyond its parse-only floor when a message has no levels.

    python benches/storage_lab/message_overhead.py [ROUNDS]

The floor target compares the core's end to end (``apply_frame`` + both best reads per
message) with its parse-only pass (``_scan_only``). Their difference is the book work plus
whatever the full path does per message besides parsing: the sync gate, the best-level
change detection, the two reads. This measures that per-message part alone, on spot
messages of the recording's exact layout with empty ``b`` and ``a`` arrays and consecutive
update IDs (every one applied), both passes interleaved round by round; what is left of the
difference on the real stream is then the side updates, per level.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _pipelines
from tickbook import OrderBook
from tickbook import decode as tb_decode

MESSAGES = 6000


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 21
    ds = _pipelines.load("spot")
    snap = tb_decode.decode_snapshot(ds.snapshot, ds.market)
    first = snap.lastUpdateId + 1
    frames = [
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":%d,"s":"BTCUSDT",'
        b'"U":%d,"u":%d,"b":[],"a":[]}}' % (1723075200000 + 100 * i, first + i, first + i)
        for i in range(MESSAGES)
    ]

    def fresh() -> OrderBook:
        book = OrderBook(ds.symbol, ds.market)
        book.apply_snapshot(snap.lastUpdateId, snap.bids, snap.asks)
        return book

    def full() -> float:
        book = fresh()
        apply, best_bid, best_ask = book.apply_frame, book.best_bid_ticks, book.best_ask_ticks
        t0 = time.perf_counter_ns()
        for frame in frames:
            apply(frame)
            best_bid()
            best_ask()
        ns = (time.perf_counter_ns() - t0) / MESSAGES
        if not book.synced or book.stats()["applied"] != MESSAGES:
            raise SystemExit(f"not every message was applied: {book.stats()}")
        return ns

    def floor() -> float:
        book = fresh()
        scan = book._scan_only
        if scan(frames[0]) is None:
            raise SystemExit("the frames do not take the core's C frame scan")
        t0 = time.perf_counter_ns()
        for frame in frames:
            scan(frame)
        return (time.perf_counter_ns() - t0) / MESSAGES

    times: dict[str, list[float]] = {"end to end": [], "floor": []}
    gc.disable()
    for r in range(rounds):
        passes = [("end to end", full), ("floor", floor)]
        for name, run in passes if r % 2 else passes[::-1]:
            times[name].append(run())
    gc.enable()
    med = {name: statistics.median(v) for name, v in times.items()}
    print(
        f"spot, messages without levels, median of {rounds} rounds: end to end "
        f"{med['end to end']:.0f} ns/msg, floor {med['floor']:.0f} ns/msg, "
        f"difference {med['end to end'] - med['floor']:+.0f} ns/msg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
