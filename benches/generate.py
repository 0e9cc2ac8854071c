"""A seeded generator of a realistic spot diff-depth stream, larger than the real recordings.

The model, per message:

* the mid is a random walk in ticks (mostly small steps, now and then a jump); when it moves,
  the levels it crosses are deleted in that message, so the book never crosses;
* every other level touched is drawn by its distance from the touch: most within a few ticks
  (exponential, mean ``NEAR_MEAN`` ticks), a tail (``FAR_SHARE`` of the draws) log-uniform
  from ``FAR_MIN`` out to ``FAR_MAX`` ticks. This stream is touch-heavy on purpose (about a
  third of its levels within 5 ticks of the touch, median rank 5 from the best); the real
  spot recording spreads its updates through the book (median 2,600 ticks and rank 87 from
  the best), so the two regimes complement each other;
* a touched level that exists is deleted or given a new quantity; one that does not exist is
  added, or deleted anyway (Binance sends deletes of levels a local book never had). The
  add/delete odds follow the book size, so adds and deletes balance and the book stays near
  its starting depth;
* 20 to 50 levels per message, bids then asks, each side sorted best first, no price twice.

The output has the wire shape of Binance spot BTCUSDT (``{"stream":...,"data":{...}}`` lines,
8-decimal price and quantity text, a REST snapshot body whose ``lastUpdateId`` the first
message straddles), so every pipeline in the benchmarks reads it exactly like the recordings.

As a script: ``python benches/generate.py [SEED] [MESSAGES] [--levels N] [--out DIR]`` prints
the seed, the size and a summary, and with ``--out`` writes ``generated_snapshot.json`` and
``generated_depth.jsonl.gz`` there.
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from sortedcontainers import SortedList

DEFAULT_SEED = 20240808
DEFAULT_MESSAGES = 20_000
DEFAULT_LEVELS = 5_000  # per side, in the snapshot

SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
START_MID = 6_180_000  # ticks of 0.01: 61,800.00
QTY_STEP = 1_000  # quantities are multiples of 0.00001 written with 8 decimals (units of 1e-8)
NEAR_MEAN = 6.0  # mean distance from the touch of a near level, ticks
FAR_SHARE = 0.28  # share of the draws in the far tail
FAR_MIN, FAR_MAX = 50, 60_000  # the far tail, ticks from the touch
GAP_MEAN = 4.0  # mean price gap between snapshot levels, ticks
DELETE_ABSENT = 0.04  # share of draws on an absent level sent as a delete (a no-op)


@dataclass(frozen=True)
class Stream:
    """A generated recording: the REST snapshot body and the raw messages, in order."""

    seed: int
    snapshot: bytes
    messages: list[bytes]


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def _qty(units: int) -> str:
    return f"{units // 100_000_000}.{units % 100_000_000:08d}"


def _levels(pairs: list[tuple[int, int]]) -> str:
    return "[" + ",".join(f'["{_price(p)}","{_qty(q)}"]' for p, q in pairs) + "]"


class _Model:
    def __init__(self, rng: random.Random, levels: int) -> None:
        self.rng = rng
        self.target = levels
        self.mid = START_MID  # bids are <= mid, asks >= mid + 1
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid_keys: SortedList = SortedList()
        self.ask_keys: SortedList = SortedList()
        price = self.mid
        for _ in range(levels):
            self._set(True, price, self._new_qty())
            price -= 1 + int(rng.expovariate(1.0 / (GAP_MEAN - 1.0)))
        price = self.mid + 1
        for _ in range(levels):
            self._set(False, price, self._new_qty())
            price += 1 + int(rng.expovariate(1.0 / (GAP_MEAN - 1.0)))

    def _new_qty(self) -> int:
        units = max(1, int(self.rng.lognormvariate(4.0, 2.0)))  # median 0.00055 BTC, long tail
        return min(units, 50_000_000) * QTY_STEP

    def _set(self, bid: bool, price: int, qty: int) -> None:
        side, keys = (self.bids, self.bid_keys) if bid else (self.asks, self.ask_keys)
        if qty:
            if price not in side:
                keys.add(price)
            side[price] = qty
        elif price in side:
            del side[price]
            keys.remove(price)

    def _distance(self) -> int:
        rng = self.rng
        if rng.random() < FAR_SHARE:
            return int(math.exp(rng.uniform(math.log(FAR_MIN), math.log(FAR_MAX))))
        return int(rng.expovariate(1.0 / NEAR_MEAN))

    def message(self) -> tuple[dict[int, int], dict[int, int]]:
        """One event's changes: (bids, asks), each price -> new quantity (0 deletes)."""
        rng = self.rng
        out_b: dict[int, int] = {}
        out_a: dict[int, int] = {}
        step = round(rng.gauss(0.0, 2.0)) if rng.random() < 0.97 else round(rng.gauss(0.0, 40.0))
        self.mid += step
        # levels the move crossed are deleted first: the book never crosses
        if step > 0:
            for p in list(self.ask_keys.irange(maximum=self.mid)):
                out_a[p] = 0
                self._set(False, p, 0)
        elif step < 0:
            for p in list(self.bid_keys.irange(minimum=self.mid + 1)):
                out_b[p] = 0
                self._set(True, p, 0)
        count = rng.randint(20, 50)
        while len(out_b) + len(out_a) < count:
            bid = rng.random() < 0.5
            side, out = (self.bids, out_b) if bid else (self.asks, out_a)
            d = self._distance()
            price = self.mid - d if bid else self.mid + 1 + d
            if price in out or price <= 0:
                continue
            # the add odds follow the side's size, so adds and deletes balance around the target
            p_add = min(0.9, max(0.1, 0.5 + 4.0 * (self.target - len(side)) / self.target))
            if price in side:
                qty = 0 if rng.random() < 1.0 - p_add else self._new_qty()
            elif rng.random() < DELETE_ABSENT:
                qty = 0  # a delete of a level this book never had
            elif rng.random() < p_add:
                qty = self._new_qty()
            else:
                continue
            out[price] = qty
            self._set(bid, price, qty)
        return out_b, out_a


def generate(
    seed: int = DEFAULT_SEED, messages: int = DEFAULT_MESSAGES, levels: int = DEFAULT_LEVELS
) -> Stream:
    """The snapshot and ``messages`` depth messages of one seeded run (deterministic)."""
    rng = random.Random(seed)
    model = _Model(rng, levels)
    last_update_id = 40_000_000_000
    snapshot = (
        f'{{"lastUpdateId":{last_update_id},'
        f'"bids":{_levels([(p, model.bids[p]) for p in reversed(model.bid_keys)])},'
        f'"asks":{_levels([(p, model.asks[p]) for p in model.ask_keys])}}}'
    ).encode()
    out: list[bytes] = []
    first = last_update_id - 3  # the first message straddles the snapshot, like the real ones
    event_ms = 1_723_161_255_208
    for _ in range(messages):
        bids, asks = model.message()
        final = first + rng.randint(len(bids) + len(asks), 3 * (len(bids) + len(asks)))
        b = _levels(sorted(bids.items(), reverse=True))
        a = _levels(sorted(asks.items()))
        out.append(
            (
                f'{{"stream":"{STREAM}","data":{{"e":"depthUpdate","E":{event_ms},"s":"{SYMBOL}",'
                f'"U":{first},"u":{final},"b":{b},"a":{a}}}}}'
            ).encode()
        )
        first = final + 1
        event_ms += 100
    return Stream(seed, snapshot, out)


def summary(stream: Stream) -> str:
    """Counts a reader checks the stream against: messages, levels per message, bytes."""
    per = [m.count(b'["') for m in stream.messages]  # each level is one ["price","qty"]
    return (
        f"messages {len(stream.messages)}, levels per message median {statistics.median(per):g} "
        f"mean {statistics.fmean(per):.1f}, snapshot {len(stream.snapshot)} bytes, "
        f"stream {sum(map(len, stream.messages))} bytes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seed", nargs="?", type=int, default=DEFAULT_SEED)
    parser.add_argument("messages", nargs="?", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--levels", type=int, default=DEFAULT_LEVELS, help="snapshot levels per side")
    parser.add_argument("--out", type=Path, help="write generated_snapshot.json and generated_depth.jsonl.gz")
    args = parser.parse_args(argv)
    print(f"seed {args.seed}, messages {args.messages}, snapshot levels per side {args.levels}")
    stream = generate(args.seed, args.messages, args.levels)
    print(summary(stream))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "generated_snapshot.json").write_bytes(stream.snapshot)
        with gzip.open(args.out / "generated_depth.jsonl.gz", "wb") as f:
            f.writelines(m + b"\n" for m in stream.messages)
        print(f"wrote {args.out}/generated_snapshot.json and generated_depth.jsonl.gz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
