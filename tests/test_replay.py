"""Replays of the real recordings through decode -> sync -> book, checked against PROVENANCE.md.

Every expected number below is copied from ``data/real/PROVENANCE.md`` (its validation table
and its "facts an engine should expect"), not from an earlier run of this code. Each replay
runs on both book implementations (ids ``c`` and ``py``); the ``c`` variant imports the
extension inside the test, so it errors (never skips) where the extension is not built.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from _helpers import IMPLEMENTATIONS
from tickbook.cli import main
from tickbook.recording import RecordingWriter, SnapshotFile
from tickbook.replay import Replay, replay_files

ROOT = Path(__file__).parent.parent
REAL = ROOT / "data" / "real"
HFT = REAL / "hftbacktest"
DERIVED = REAL / "derived"
CF = REAL / "cryptofeed"
IMPLS = [pytest.param(name, id=name) for name in IMPLEMENTATIONS]


def load_impl(name: str) -> type:
    """The OrderBook class, imported here so that a missing extension fails only the c tests."""
    if name == "c":
        from tickbook._book import OrderBook as COrderBook

        return COrderBook
    from tickbook._book_py import OrderBook as PyOrderBook

    return PyOrderBook


def canon(text: str) -> str:
    """PROVENANCE.md writes prices as the exchange does ("61780.00"); the book answers canonically."""
    value = Decimal(text)
    return format(value.normalize(), "f") if value != value.to_integral() else str(int(value))


@dataclass(frozen=True)
class Expect:
    """One row of the PROVENANCE.md validation table."""

    depth: int  # depth msgs
    first_applied: int  # "first applied event idx" (0-based): the events before it are stale
    matches: int | None = None  # bookTicker check: matches (mismatches are always 0)
    bid: tuple[str, str] | None = None  # final best bid (price, qty), from "Final replayed books"
    ask: tuple[str, str] | None = None
    last_u: int | None = None
    levels: tuple[int, int] | None = None  # final (bids, asks), from "The book grows past ..."


@dataclass(frozen=True)
class Dataset:
    files: list[Path]
    symbols: dict[str, Expect]
    snapshots: list[Path] = field(default_factory=list)


# spot BTCUSDT 2024-08-08/09 and USD-M BTCUSDT 2024-08-08: the originals and their derived files
SPOT_BTC = Expect(
    6495,
    2,
    1072,
    bid=("61602.01", "1.67177"),
    ask=("61602.02", "2.66795"),
    last_u=50093696318,
    levels=(1971, 2962),
)
USDM_BTC = Expect(6551, 4, 629, bid=("61659.7", "1.486"), ask=("61659.8", "0.981"), levels=(5018, 4578))

DATASETS: dict[str, Dataset] = {
    # timestamped lines, snapshot inline, both days as one continuous recording
    "hft-spot": Dataset(
        [HFT / "spot" / "btcusdt_20240808.gz", HFT / "spot" / "btcusdt_20240809.gz"],
        {"BTCUSDT": SPOT_BTC},
    ),
    "hft-usdm-0808": Dataset(
        [HFT / "usdm" / "btcusdt_20240808.gz"],
        {"BTCUSDT": USDM_BTC},
    ),
    "hft-usdm-0718": Dataset(
        [HFT / "usdm" / "btcusdt_20240718.gz", HFT / "usdm" / "btcusdt_20240719.gz"],
        {"BTCUSDT": Expect(9022, 5, 625, bid=("63867.4", "0.002"), ask=("63867.5", "5.045"))},
    ),
    # plain JSONL + separate snapshot file (the derived extractions)
    "derived-spot": Dataset(
        [
            DERIVED / "binance_spot_btcusdt_20240808_depth.jsonl.gz",
            DERIVED / "binance_spot_btcusdt_20240808_bookTicker_at_depth_u.jsonl",
        ],
        {"BTCUSDT": SPOT_BTC},
        [DERIVED / "binance_spot_btcusdt_20240808_snapshot.json"],
    ),
    "derived-usdm": Dataset(
        [
            DERIVED / "binance_usdm_btcusdt_20240808_depth.jsonl.gz",
            DERIVED / "binance_usdm_btcusdt_20240808_bookTicker_at_depth_u.jsonl",
        ],
        {"BTCUSDT": USDM_BTC},
        [DERIVED / "binance_usdm_btcusdt_20240808_snapshot.json"],
    ),
    "head1000": Dataset(
        [DERIVED / "binance_spot_btcusdt_20240808_depth_head1000.jsonl"],
        {
            "BTCUSDT": Expect(
                1000, 2, bid=("61780.00", "1.57605"), ask=("61780.01", "2.76428"), last_u=50093285515
            )
        },
        [DERIVED / "binance_spot_btcusdt_20240808_snapshot.json"],
    ),
    # cryptofeed 2021 multi-symbol sets: JSONL + one snapshot file per symbol
    "cf-spot-0404": Dataset(
        [CF / "binance_spot_20210404.ws.jsonl"],
        {"BTCUSDT": Expect(899, 10), "ETHUSDT": Expect(909, 13), "DOTUSDT": Expect(880, 9)},
        sorted(CF.glob("binance_spot_20210404_*_snapshot.json")),
    ),
    "cf-spot-0814": Dataset(
        [CF / "binance_spot_20210814.ws.jsonl"],
        {
            "FTMUSDT": Expect(229, 7, 34),
            "XMRBTC": Expect(138, 1, 16),
            "SXPBTC": Expect(101, 7, 13),
            "BADGERBTC": Expect(78, 3, 33),
        },
        sorted(CF.glob("binance_spot_20210814_*_snapshot.json")),
    ),
    "cf-usdm-0722": Dataset(
        [CF / "binance_usdm_20210722.ws.jsonl"],
        {
            "SUSHIUSDT": Expect(255, 3, 12),
            "AKROUSDT": Expect(189, 1, 7),
            "CTKUSDT": Expect(185, 5, 18),
            "KEEPUSDT": Expect(135, 3, 13),
        },
        sorted(CF.glob("binance_usdm_20210722_*_snapshot.json")),
    ),
}


@functools.cache
def replayed(dataset: str, impl: str, drop_depth: int | None = None) -> dict[str, Any]:
    """One replay per (dataset, implementation, drop), shared by the tests that read it."""
    ds = DATASETS[dataset]
    return replay_files(
        [str(p) for p in ds.files],
        snapshots=[str(p) for p in ds.snapshots],
        impl=load_impl(impl),
        check_bookticker=True,
        drop_depth=drop_depth,
    )


def test_data_is_in_the_repository() -> None:
    for ds in DATASETS.values():
        for path in [*ds.files, *ds.snapshots]:
            assert path.is_file(), f"missing {path} (data/real/ is part of the repository)"
    assert len(DATASETS["cf-spot-0404"].snapshots) == 3
    assert len(DATASETS["cf-spot-0814"].snapshots) == 4
    assert len(DATASETS["cf-usdm-0722"].snapshots) == 4


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_replay_matches_provenance(dataset: str, impl: str) -> None:
    s = replayed(dataset, impl)
    assert s["impl"] == impl
    assert s["errors"] == 0, s["error_samples"]
    assert s["unused_snapshots"] == []
    assert s["ok"], s["problems"]
    expected = DATASETS[dataset].symbols
    assert set(s["symbols"]) == set(expected)
    assert s["depth_messages"] == sum(e.depth for e in expected.values())
    for symbol, e in expected.items():
        got = s["symbols"][symbol]
        assert got["depth_messages"] == e.depth
        assert got["gaps"] == 0
        assert got["gap_at"] == []
        assert got["no_bridge"] == 0
        assert got["crossed"] == 0
        assert got["errors"] == 0
        assert got["snapshots"] == 1  # "snapshot syncs: yes"
        assert got["resyncs"] == 0
        assert got["state"] == "SYNCED"
        assert got["reason"] == "NONE"
        # "first applied event idx N": the N events before it are stale, every later one applies
        assert got["stale"] == e.first_applied
        assert got["applied"] == e.depth - e.first_applied
        assert got["bookticker_mismatches"] == 0
        assert got["bookticker_matches"] == (e.matches or 0)
        if e.bid is not None:
            assert got["best_bid"] == [canon(e.bid[0]), canon(e.bid[1])]
        if e.ask is not None:
            assert got["best_ask"] == [canon(e.ask[0]), canon(e.ask[1])]
        if e.last_u is not None:
            assert got["last_update_id"] == e.last_u
        if e.levels is not None:
            assert (got["bid_levels"], got["ask_levels"]) == e.levels
    assert s["elapsed_seconds"] > 0
    assert s["messages_per_second"] == pytest.approx(s["depth_messages"] / s["elapsed_seconds"])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("original", "derived"), [("hft-spot", "derived-spot"), ("hft-usdm-0808", "derived-usdm")]
)
def test_derived_files_replay_like_their_originals(original: str, derived: str, impl: str) -> None:
    """PROVENANCE.md: derived files give results identical to their originals."""
    a = replayed(original, impl)["symbols"]["BTCUSDT"]
    b = replayed(derived, impl)["symbols"]["BTCUSDT"]
    same = ["depth_messages", "applied", "stale", "best_bid", "best_ask", "bid_levels", "ask_levels"]
    same += ["last_update_id", "checksum", "bookticker_matches", "bbo_changes"]
    assert {k: a[k] for k in same} == {k: b[k] for k in same}
    # Inline, the events received before the snapshot were buffered; with a separate file, none.
    assert a["buffered"] > 0
    assert b["buffered"] == 0


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_both_implementations_agree(dataset: str) -> None:
    def strip(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k not in ("impl", "elapsed_seconds", "messages_per_second")}

    assert strip(replayed(dataset, "c")) == strip(replayed(dataset, "py"))


def nth_depth_u(paths: list[Path], n: int) -> int:
    """``u`` of the n-th (1-based) depth message, read with the stdlib (independent of tickbook)."""
    seen = 0
    for path in paths:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            for line in f:
                start = line.index(b"{")
                obj = json.loads(line[start:])
                if "@depth" in obj.get("stream", ""):
                    seen += 1
                    if seen == n:
                        return int(obj["data"]["u"])
    raise AssertionError("not enough depth messages")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dataset", ["hft-spot", "derived-usdm"])
def test_drop_depth_500_is_one_gap_at_the_next_message(dataset: str, impl: str) -> None:
    """Dropping depth message 500 (1-based) makes message 501 the gap: spot sees ``U > book id + 1``,
    futures ``pu != book id``. PROVENANCE.md says "at index 500", counting from 0. The recording has
    no second snapshot, so the book stays out of sync, at the last event before the drop."""
    s = replayed(dataset, impl, 500)
    got = s["symbols"]["BTCUSDT"]
    first_applied = DATASETS[dataset].symbols["BTCUSDT"].first_applied
    assert got["dropped"] == 1
    assert got["gaps"] == 1
    assert got["gap_at"] == [501]
    assert got["state"] == "OUT_OF_SYNC"
    assert got["reason"] == "GAP"
    assert got["applied"] == 499 - first_applied
    assert got["last_update_id"] == nth_depth_u(DATASETS[dataset].files, 499)
    assert got["crossed"] == 0
    assert got["errors"] == 0
    assert not s["ok"]
    assert "BTCUSDT: gaps 1" in s["problems"]


@pytest.mark.parametrize("impl", IMPLS)
def test_on_state_reports_sync_then_the_gap(impl: str) -> None:
    """The demo's sync events: SYNCED when the snapshot is bridged, then OUT_OF_SYNC (GAP)
    at the message after the dropped one, each reported once."""
    events: list[tuple[str, str, int]] = []
    replay = Replay(
        impl=load_impl(impl),
        drop_depth=500,
        on_state=lambda book: events.append((book.state.name, book.reason.name, book.last_update_id)),
    )
    files = DATASETS["hft-spot"].files
    replay.run_files([str(f) for f in files])
    assert [(state, reason) for state, reason, _ in events] == [("SYNCED", "NONE"), ("OUT_OF_SYNC", "GAP")]
    assert events[1][2] == nth_depth_u(files, 499)  # the book stopped at the last event before the drop


@pytest.mark.parametrize("impl", IMPLS)
def test_drop_depth_in_every_symbol(impl: str) -> None:
    s = replayed("cf-usdm-0722", impl, 100)
    for got in s["symbols"].values():
        assert got["gap_at"] == [101]
        assert got["state"] == "OUT_OF_SYNC"


def derived_lines(name: str) -> list[bytes]:
    path = DERIVED / name
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.splitlines()


HEAD = "binance_spot_btcusdt_20240808_depth_head1000.jsonl"
SPOT_SNAPSHOT = "binance_spot_btcusdt_20240808_snapshot.json"


def check_head1000(got: dict[str, Any]) -> None:
    assert got["best_bid"] == ["61780", "1.57605"]
    assert got["best_ask"] == ["61780.01", "2.76428"]
    assert got["last_update_id"] == 50093285515
    assert got["state"] == "SYNCED"


@pytest.mark.parametrize("impl", IMPLS)
def test_writer_round_trip_replays(tmp_path: Path, impl: str) -> None:
    """What tickbook records (timestamped lines, snapshot inline) it replays to the same book."""
    lines = derived_lines(HEAD)
    snapshot = (DERIVED / SPOT_SNAPSHOT).read_bytes().strip()
    path = tmp_path / "recorded.gz"
    with RecordingWriter(path) as w:
        for i, line in enumerate(lines):
            w.write(line, 1_000 + i)
            if i == 2:  # where the REST response arrived in the original recording
                w.write_snapshot(snapshot, 1_000 + i)
    s = Replay(impl=load_impl(impl)).run_files([str(path)])
    got = s["symbols"]["BTCUSDT"]
    check_head1000(got)
    assert (got["buffered"], got["stale"], got["applied"]) == (3, 2, 998)


@pytest.mark.parametrize("impl", IMPLS)
def test_inline_snapshot_before_any_depth_message(tmp_path: Path, impl: str) -> None:
    path = tmp_path / "snapshot-first.jsonl"
    path.write_bytes((DERIVED / SPOT_SNAPSHOT).read_bytes().strip() + b"\n" + b"\n".join(derived_lines(HEAD)))
    s = Replay(impl=load_impl(impl)).run_files([str(path)])
    check_head1000(s["symbols"]["BTCUSDT"])
    assert s["ok"], s["problems"]


@pytest.mark.parametrize("impl", IMPLS)
def test_inline_snapshots_of_several_symbols(tmp_path: Path, impl: str) -> None:
    """Each snapshot goes inline after the first depth message that reaches its lastUpdateId;
    the replay has to attribute them by update ID and end exactly as with named files."""
    snaps = {
        p.name.split("_")[3]: (p.read_bytes().strip(), json.loads(p.read_bytes())["lastUpdateId"])
        for p in DATASETS["cf-spot-0404"].snapshots
    }
    out = []
    for line in (CF / "binance_spot_20210404.ws.jsonl").read_bytes().splitlines():
        out.append(line)
        obj = json.loads(line)
        symbol = obj["data"].get("s")
        if "@depth" in obj["stream"] and symbol in snaps and obj["data"]["u"] >= snaps[symbol][1]:
            out.append(snaps.pop(symbol)[0])
    assert not snaps
    path = tmp_path / "inline.jsonl"
    path.write_bytes(b"\n".join(out))
    inline = Replay(impl=load_impl(impl)).run_files([str(path)])
    named = replayed("cf-spot-0404", impl)
    assert inline["ok"], inline["problems"]
    for symbol, got in named["symbols"].items():
        assert inline["symbols"][symbol]["checksum"] == got["checksum"]
        assert inline["symbols"][symbol]["last_update_id"] == got["last_update_id"]


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_records_are_counted_and_the_replay_goes_on(tmp_path: Path, impl: str) -> None:
    lines = derived_lines(HEAD)
    bad_event = json.loads(lines[500])
    bad_event["data"]["b"] = [["not-a-price", "1"]]  # same IDs as the next event: refused, book unchanged
    out = [
        *lines[:500],
        b"garbage",
        b'{"stream":"btcusdt@depth@100ms","data":{"e":',
        json.dumps(bad_event).encode(),
    ]
    out += [b'{"stream":"btcusdt@kline_1m","data":{"e":"kline"}}', *lines[500:]]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(out))
    s = Replay(impl=load_impl(impl), snapshots=[SnapshotFile.load(DERIVED / SPOT_SNAPSHOT)]).run_files(
        [str(path)]
    )
    got = s["symbols"]["BTCUSDT"]
    check_head1000(got)
    assert s["errors"] == 2  # the two lines that do not decode
    assert got["errors"] == 1  # the event the book refused
    assert got["gaps"] == 0
    assert s["other"] == 1
    assert len(s["error_samples"]) == 3
    assert "bad.jsonl:501" in s["error_samples"][0]
    assert not s["ok"]


@pytest.mark.parametrize("impl", IMPLS)
def test_bookticker_mismatch_is_reported(tmp_path: Path, impl: str) -> None:
    lines = derived_lines(HEAD)
    last = json.loads(lines[-1])["data"]
    wrong = {"u": last["u"], "s": "BTCUSDT", "b": "61780.00", "B": "9.99", "a": "61780.01", "A": "2.76428"}
    right = {**wrong, "B": "1.57605000"}  # exchange text, trailing zeros and all
    ticker = b'{"stream":"btcusdt@bookTicker","data":%s}'
    path = tmp_path / "tickers.jsonl"
    # one ticker before its depth event (kept pending), one after it (compared with the kept top)
    path.write_bytes(
        b"\n".join([*lines[:-1], ticker % json.dumps(wrong).encode(), lines[-1]])
        + b"\n"
        + ticker % json.dumps(right).encode()
    )
    replay = Replay(
        impl=load_impl(impl), check_bookticker=True, snapshots=[SnapshotFile.load(DERIVED / SPOT_SNAPSHOT)]
    )
    s = replay.run_files([str(path)])
    got = s["symbols"]["BTCUSDT"]
    assert (got["bookticker_matches"], got["bookticker_mismatches"]) == (1, 1)
    assert s["bookticker_mismatch_samples"] == [
        {
            "symbol": "BTCUSDT",
            "u": last["u"],
            "book_bid": ["61780", "1.57605"],
            "book_ask": ["61780.01", "2.76428"],
            "ticker_bid": ["61780.00", "9.99"],
            "ticker_ask": ["61780.01", "2.76428"],
        }
    ]
    assert not s["ok"]


@pytest.mark.parametrize("impl", IMPLS)
def test_on_bbo_callback(impl: str) -> None:
    calls: list[tuple[int | None, tuple[str, str] | None]] = []
    replay: Replay

    def on_bbo(book: Any) -> None:
        calls.append((replay.time, book.best_bid_str()))

    replay = Replay(impl=load_impl(impl), on_bbo=on_bbo)
    s = replay.run_files([str(p) for p in DATASETS["hft-spot"].files])
    got = s["symbols"]["BTCUSDT"]
    # Every BBO change of an applied event. The first top of book comes from the snapshot and the
    # bridging event replayed from the buffer with it (one BBO change): one call for both.
    assert len(calls) == got["bbo_changes"]
    assert calls[0][0] == 1723161254206652067  # receive time of the inline snapshot line
    assert calls[-1][1] == ("61602.01", "1.67177")


@pytest.mark.parametrize("impl", IMPLS)
def test_a_raising_callback_is_counted(impl: str) -> None:
    def boom(book: Any) -> None:
        raise RuntimeError("callback bug")

    replay = Replay(impl=load_impl(impl), on_bbo=boom, snapshots=[SnapshotFile.load(DERIVED / SPOT_SNAPSHOT)])
    s = replay.run_files([str(DERIVED / HEAD)])
    got = s["symbols"]["BTCUSDT"]
    check_head1000(got)
    assert got["errors"] == got["bbo_changes"] + 1
    assert "RuntimeError: callback bug" in s["error_samples"][0]


def test_market_can_be_given() -> None:
    s = replay_files(
        [str(DERIVED / HEAD)], snapshots=[("BTCUSDT", str(DERIVED / SPOT_SNAPSHOT))], market="spot"
    )
    assert s["market"] == "spot"
    check_head1000(s["symbols"]["BTCUSDT"])
    with pytest.raises(ValueError, match="drop_depth"):
        Replay(drop_depth=0)


def test_unused_snapshot_file_is_an_error() -> None:
    s = replay_files(
        [str(DERIVED / HEAD)],
        snapshots=[str(DERIVED / SPOT_SNAPSHOT), ("ETHUSDT", str(DERIVED / SPOT_SNAPSHOT))],
    )
    assert s["unused_snapshots"] == [str(DERIVED / SPOT_SNAPSHOT)]
    assert s["errors"] == 1
    assert not s["ok"]


# ------------------------------------------------------------------------------ CLI

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


HEAD_ARGS = [str(DERIVED / HEAD), "--snapshot", str(DERIVED / SPOT_SNAPSHOT)]


@pytest.mark.parametrize("impl", IMPLS)
def test_cli_json(cli: Run, impl: str) -> None:
    code, out, err = cli("replay", *HEAD_ARGS, "--json", "--impl", impl, "--strict", "--check-bookticker")
    assert code == 0, err
    s = json.loads(out)
    assert s["impl"] == impl
    assert s["ok"] is True
    assert s["files"] == [str(DERIVED / HEAD)]
    assert s["snapshot_files"] == [str(DERIVED / SPOT_SNAPSHOT)]
    assert {"elapsed_seconds", "messages_per_second", "symbols", "errors", "problems"} <= set(s)
    got = s["symbols"]["BTCUSDT"]
    keys = {
        "market",
        "depth_messages",
        "applied",
        "stale",
        "buffered",
        "gaps",
        "gap_at",
        "resyncs",
        "crossed",
    }
    keys |= {"errors", "bookticker_matches", "bookticker_mismatches", "best_bid", "best_ask", "bid_levels"}
    keys |= {"ask_levels", "state", "reason", "last_update_id", "checksum"}
    assert keys <= set(got)
    check_head1000(got)


@pytest.mark.parametrize("impl", IMPLS)
def test_cli_table_and_strict(cli: Run, impl: str) -> None:
    code, out, _ = cli("replay", *HEAD_ARGS, "--impl", impl, "--drop-depth", "500")
    assert code == 0  # problems are reported, but only --strict fails on them
    assert "BTCUSDT" in out
    assert "1 (at 501)" in out
    assert "problems: BTCUSDT: gaps 1" in out
    code, _, _ = cli("replay", *HEAD_ARGS, "--impl", impl, "--drop-depth", "500", "--strict")
    assert code == 1
    code, out, _ = cli("replay", *HEAD_ARGS, "--impl", impl, "--strict")
    assert code == 0
    assert "ok: no gap" in out


def test_cli_show_bbo(cli: Run) -> None:
    code, out, err = cli("replay", *(str(p) for p in DATASETS["hft-spot"].files), "--show-bbo", "--json")
    assert code == 0
    s = json.loads(out)  # with --json the BBO lines go to stderr, stdout stays one JSON object
    changes = s["symbols"]["BTCUSDT"]["bbo_changes"]  # the snapshot and the bridging event: one line
    lines = err.splitlines()
    sync_events = [line for line in lines if " now " in line]
    assert len(sync_events) == 1
    assert "now SYNCED at update 50093239224" in sync_events[0]
    assert len(lines) == changes + len(sync_events)
    code, out, _ = cli("replay", *(str(p) for p in DATASETS["hft-spot"].files), "--show-bbo")
    assert code == 0
    bbo = [line for line in out.splitlines() if " | " in line]
    assert len(bbo) == changes
    assert bbo[0].startswith("2024-08-08 23:54:14.206652 BTCUSDT")
    assert "3.78826 @ 61837.63 | 61837.64 @ 1.6052" in bbo[0]
    assert bbo[-1].split()[-2:] == ["spread", "0.01"]
    assert "1.67177 @ 61602.01 | 61602.02 @ 2.66795" in bbo[-1]


def test_cli_snapshot_with_symbol(cli: Run) -> None:
    code, out, _ = cli(
        "replay", str(DERIVED / HEAD), "--snapshot", f"BTCUSDT={DERIVED / SPOT_SNAPSHOT}", "--json"
    )
    assert code == 0
    check_head1000(json.loads(out)["symbols"]["BTCUSDT"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "/nonexistent/rec.gz"], "no such file: /nonexistent/rec.gz"),
        (["replay", str(DERIVED / HEAD), "--snapshot", "BTCUSDT=/nonexistent/s.json"], "no such file"),
        (["replay", str(DERIVED)], "is a directory"),
        (["replay", str(DERIVED / HEAD), "--drop-depth", "0"], "positive integer"),
        (["replay", str(DERIVED / HEAD), "--market", "margin"], "invalid choice"),
        (["replay"], "required"),
        ([], "required"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_cli_usage_errors(cli: Run, args: list[str], message: str) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


def test_python_dash_m(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "tickbook", "replay", *HEAD_ARGS, "--json", "--strict"]
    done = subprocess.run(cmd, capture_output=True, env=env, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    check_head1000(json.loads(done.stdout)["symbols"]["BTCUSDT"])
    missing = subprocess.run(
        [sys.executable, "-m", "tickbook", "replay", str(tmp_path / "missing.gz")],
        capture_output=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert missing.returncode == 2
    assert b"no such file" in missing.stderr
    assert b"Traceback" not in missing.stderr


def test_cli_help(cli: Run) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    assert "replay" in out
    code, out, _ = cli("replay", "--help")
    assert code == 0
    for option in ("--snapshot", "--market", "--check-bookticker", "--drop-depth", "--json", "--strict"):
        assert option in out
    assert "--show-bbo" in out
    assert "--impl" in out
