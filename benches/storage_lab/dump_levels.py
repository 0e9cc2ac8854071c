"""Write each recording's level stream as int64 words for the C replays in this folder.

    python benches/storage_lab/dump_levels.py OUT_DIR [spot usdm ...]

Layout of ``OUT_DIR/<dataset>.bin`` (native int64 words): the snapshot's bid and ask
counts, then (price, quantity) per snapshot level, bids then asks, best first; then the
number of messages, and per message its bid and ask counts followed by (price, quantity)
per level in the order the exchange sent them. Prices and quantities are the book's own
int64 ticks (``OrderBook.parse_price`` / ``parse_qty``). Only the messages the sync rule
applies are written (those after the snapshot), so every level is one side update.
"""

from __future__ import annotations

import array
import sys
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _pipelines
from tickbook import OrderBook
from tickbook import decode as tb_decode


def dump(key: str, out_dir: Path) -> Path:
    ds = _pipelines.load(key)
    snap = tb_decode.decode_snapshot(ds.snapshot, ds.market)
    book = OrderBook(ds.symbol, ds.market)
    book.apply_snapshot(snap.lastUpdateId, snap.bids, snap.asks)
    words = array.array("q")
    bids = msgspec.json.decode(snap.bids)
    asks = msgspec.json.decode(snap.asks)
    words.extend([len(bids), len(asks)])
    for price, qty in bids + asks:
        words.extend([book.parse_price(price), book.parse_qty(qty)])
    events = []
    for raw in ds.messages:
        msg = msgspec.json.decode(raw)
        event = msg.get("data", msg)
        if event["u"] > snap.lastUpdateId:
            events.append(event)
    words.append(len(events))
    for event in events:
        words.extend([len(event["b"]), len(event["a"])])
        for price, qty in event["b"] + event["a"]:
            words.extend([book.parse_price(price), book.parse_qty(qty)])
    path = out_dir / f"{key}.bin"
    path.write_bytes(words.tobytes())
    return path


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in argv[1:] or ["spot", "usdm"]:
        print(dump(key, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
