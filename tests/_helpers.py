"""Helpers shared by the book tests: input builders and a full dump of a book's state.

Nothing here uses ``tickbook`` code to compute an expected value: canonical decimal text and
ticks are derived independently (``fmt``/``ticks``), so a test cannot agree with the code under
test only because both call the same function.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

# The implementations the parametrized tests run: the Cython core ("c") and the pure-Python
# reference ("py"). The core-only passes of the Makefile (the pages layout pass, and the
# debug profile's pass) leave out "py": the pure-Python code is the same whatever the
# core's storage or build profile, and the first pass of `make test` already ran it.
CORE_ONLY_ENV = "TICKBOOK_TEST_CORE_ONLY"
IMPLEMENTATIONS = ["c"] if os.environ.get(CORE_ONLY_ENV) or os.environ.get("TICKBOOK_LAYOUT") else ["c", "py"]

# A standard book used by many tests: tick size 0.01 (price scale 2), step 0.001 (qty scale 3).
TICK = "0.01000000"
STEP = "0.00100000"
BIDS = [("100.00", "1.000"), ("99.50", "2.000"), ("99.00", "3.000")]
ASKS = [("100.50", "1.500"), ("101.00", "2.500"), ("102.00", "0.500")]
BIDS_TICKS = [(10000, 1000), (9950, 2000), (9900, 3000)]
ASKS_TICKS = [(10050, 1500), (10100, 2500), (10200, 500)]

STATS_KEYS = {
    "applied",
    "bbo_changes",
    "stale",
    "buffered",
    "gaps",
    "no_bridge",
    "crossed",
    "snapshots",
    "stale_snapshots",
    "buffer_dropped",
    "bad_buffered",
}

_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def lv(*pairs: tuple[str, str]) -> bytes:
    """JSON bytes of ``[["price","qty"], ...]`` as the exchange sends it."""
    return json.dumps([list(p) for p in pairs], separators=(",", ":")).encode()


def ticks(text: str, scale: int) -> int:
    """Independent decimal text -> ticks (only for well-formed test inputs)."""
    assert _NUMBER.fullmatch(text), text
    value = Decimal(text) * (10**scale)
    assert value == value.to_integral_value(), (text, scale)
    return int(value)


def fmt(ticks_: int, scale: int) -> str:
    """Independent ticks -> canonical decimal text (no exponent, no trailing zeros or point)."""
    text = format(Decimal(ticks_).scaleb(-scale), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def dump(book: Any, *, with_time: bool = True, with_detail: bool = True) -> dict[str, Any]:
    """Every observable piece of a book's state, for before/after and C-vs-Python comparisons.

    ``with_time=False`` leaves out ``state_since_ns`` (two books never share a clock reading);
    ``with_detail=False`` leaves out ``reason_detail`` (free text, worded per implementation).
    """
    out: dict[str, Any] = {
        "symbol": book.symbol,
        "market": book.market,
        "state": book.state,
        "synced": book.synced,
        "reason": book.reason,
        "state_since_update_id": book.state_since_update_id,
        "last_update_id": book.last_update_id,
        "price_scale": book.price_scale,
        "qty_scale": book.qty_scale,
        "max_depth": book.max_depth,
        "bid_count": book.bid_count,
        "ask_count": book.ask_count,
        "buffered": book.buffered,
        "first_buffered_id": book.first_buffered_id,
        "bid_floor": book.bid_floor,
        "ask_ceiling": book.ask_ceiling,
        "stats": book.stats(),
        "bids": book.bids_ticks(),
        "asks": book.asks_ticks(),
        "best_bid": book.best_bid_ticks(),
        "best_ask": book.best_ask_ticks(),
    }
    if with_detail:
        out["reason_detail"] = book.reason_detail
    if with_time:
        out["state_since_ns"] = book.state_since_ns
    if book.price_scale is not None and book.qty_scale is not None:
        out["bids_str"] = book.bids_str()
        out["asks_str"] = book.asks_str()
    return out


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters that changed, and by how much."""
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def diff(book: Any, U: int, u: int, bids: Any = b"[]", asks: Any = b"[]", pu: int | None = None) -> Any:
    """``apply_diff`` followed by the invariant check."""
    result = book.apply_diff(U, u, bids, asks, pu)
    book._check()
    return result


def snap(book: Any, last_update_id: int, bids: Any = None, asks: Any = None, limit: int | None = None) -> Any:
    """``apply_snapshot`` (the standard book by default) followed by the invariant check."""
    result = book.apply_snapshot(
        last_update_id, lv(*BIDS) if bids is None else bids, lv(*ASKS) if asks is None else asks, limit=limit
    )
    book._check()
    return result


ROOT = Path(__file__).resolve().parent.parent


def cli_env() -> dict[str, str]:
    """The environment for running ``python -m tickbook`` from the source tree in a subprocess."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }


def assert_sim_usage_error(args: list[str], message: str) -> None:
    """``tickbook sim ARGS`` stops with exit status 2 and a one-line message, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "tickbook", "sim", *args],
        capture_output=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert done.stdout == b""
