"""The examples run as documented, against the local exchange serving real recorded data.

``examples/trading/spot_roundtrip.py`` is the README's trading example: it must work with
nothing but the exchange's URLs and a key, and its result must agree with what the exchange
itself holds (the order states, the balances moved by the fill, no secret in the journal).
"""

from __future__ import annotations

import importlib.util
import io
import json
import sqlite3
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from types import ModuleType

from tickbook.signing import HmacKey
from tickbook.sim.market import RecordedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, exchange

__all__ = ["exchange"]  # the fixture, imported so pytest finds it in this module

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "data/real/hftbacktest/spot/btcusdt_20240808.gz"
KEY = HmacKey("example-key", "example-secret-do-not-log")
START_USDT = Decimal("10000")


def _load(relative: str) -> ModuleType:
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spot_roundtrip_example(exchange, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ex: ExchangeHandle = exchange(
        lambda: RecordedMarket.from_files([RECORDING]),
        keys=[KEY],
        speed=1.0,
        balances={"BTC": "0", "USDT": str(START_USDT)},
    )
    urls = ex.urls()
    journal = tmp_path / "journal.sqlite"
    out = io.StringIO()
    with redirect_stdout(out):
        code = _load("examples/trading/spot_roundtrip.py").main(
            [
                "--rest", urls["rest"],
                "--ws-api", urls["ws"] + "/ws-api/v3",
                "--key", KEY.api_key,
                "--secret", "example-secret-do-not-log",
                "--journal", str(journal),
            ]
        )  # fmt: skip
    assert code == 0
    result = json.loads(out.getvalue())

    # The off-grid price never left the process; the exchange's filter has the same name.
    assert result["refused_locally"] == "PRICE_FILTER"
    assert result["resting"]["status"] == "CANCELED"
    assert result["cancel_status"] == "CANCELED"
    taken = result["taken"]
    assert taken["status"] in ("FILLED", "EXPIRED")
    executed = Decimal(taken["executed_qty"])
    assert executed > 0
    # 50 USDT bought BTC at the book's prices: never more than 50 spent, commission in BTC.
    avg = Decimal(taken["avg_price"])
    assert executed * avg <= Decimal(50)
    # The balances are the exchange's own account answer: the fill moved exactly this much.
    balances = {asset: Decimal(v) for asset, v in result["balances"].items()}
    assert balances["USDT"] == START_USDT - executed * avg
    assert balances["BTC"] == executed - (executed * Decimal("0.001")).quantize(Decimal("1E-8"), "ROUND_UP")
    # Every report the stream sent reached the tracker: placement, fill, cancel at least.
    assert result["execution_reports"] >= 3
    assert result["journal_entries"] >= 6
    assert result["journal_errors"] == 0

    # The journal on disk (and its write-ahead log) holds no secret and no API key.
    raw = journal.read_bytes() + (
        (tmp_path / "journal.sqlite-wal").read_bytes() if (tmp_path / "journal.sqlite-wal").exists() else b""
    )
    assert b"example-secret-do-not-log" not in raw
    assert KEY.api_key.encode() not in raw
    with sqlite3.connect(journal) as db:
        endpoints = {row[0] for row in db.execute("SELECT endpoint FROM entries")}
    assert {"/api/v3/exchangeInfo", "/api/v3/order", "/api/v3/account"} <= endpoints
