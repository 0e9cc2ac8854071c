"""``tickbook watch`` and ``tickbook demo`` end to end, against the local exchange on 127.0.0.1.

The command runs as a subprocess (the way a user runs it) against an exchange in this
process's thread (``run_exchange``), so the test can read the exchange's true books and
compare them with what the command printed. Markets are short: a generated one with
``max_events`` or a 30 s recording replayed fast, so the replay is over before the watch ends
and the final books must equal the truth exactly.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from _helpers import cli_env
from tickbook.sim.market import GeneratedMarket, RecordedMarket
from tickbook.sim.pytest_plugin import ExchangeHandle, run_exchange
from tickbook.watch import _ladder_rows, format_event_latency, format_ns, line_of, normalise_symbols

ROOT = Path(__file__).resolve().parents[1]
CF = ROOT / "data/real/cryptofeed"
USDM_SYMBOLS = ["SUSHIUSDT", "AKROUSDT", "CTKUSDT", "KEEPUSDT"]
LINE = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+) synced u=\d+ bid [0-9.]+ x [0-9.]+ ask [0-9.]+ x [0-9.]+ msgs=\d+ rate=\d+/s "
    r"gaps=0 resyncs=0 reconnects=0 ",
    re.MULTILINE,
)


def tickbook(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickbook", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
        check=False,
    )


def urls(ex: ExchangeHandle, market: str = "spot") -> list[str]:
    return ["--url", ex.rest_url, "--stream-url", ex.ws_urls[market]]


def generated() -> GeneratedMarket:
    # 100 depth events per symbol, one every 100 ms of exchange time: 1 s at speed 10.
    return GeneratedMarket(["BTCUSDT", "ETHUSDT"], "spot", seed=7, max_events=200)


def usdm_recording() -> RecordedMarket:
    # cryptofeed USD-M 2021-07-22: 30 s, four symbols, one snapshot file each.
    snapshots = [(s, CF / f"binance_usdm_20210722_{s}_snapshot.json") for s in USDM_SYMBOLS]
    return RecordedMarket.from_files([CF / "binance_usdm_20210722.ws.jsonl"], None, snapshots)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def assert_equal_to_truth(ex: ExchangeHandle, summary: dict[str, Any], market: str | None = None) -> None:
    assert ex.wait_finished(10.0), "the replay should be over before the watch ended"
    for symbol, entry in summary["symbols"].items():
        truth = ex.truth(symbol, 20, market=market)
        assert entry["synced"], (symbol, entry["state"], entry["reason"])
        assert entry["state"] == "synced"
        assert entry["last_update_id"] == truth["lastUpdateId"], symbol
        assert entry["checksum_depth"] == 20
        assert entry["checksum"] == truth["checksum"], symbol
        assert entry["best_bid"] == truth["bids"][0]
        assert entry["best_ask"] == truth["asks"][0]


# ----------------------------------------------------------------------------- the command


def test_json_summary_equals_the_exchange_truth() -> None:
    with run_exchange(generated, speed=10.0, wait_for_client=True) as ex:
        done = tickbook("watch", "BTCUSDT", "ethusdt", *urls(ex), "--duration", "3.5", "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)  # exactly one JSON object: nothing else on stdout
        assert done.stdout.count("\n") == 1
        assert summary["market"] == "spot"
        assert 3.5 <= summary["duration_s"] < 10
        assert list(summary["symbols"]) == ["BTCUSDT", "ETHUSDT"]
        assert_equal_to_truth(ex, summary)
    for entry in summary["symbols"].values():
        assert entry["messages"] > 0
        assert entry["gaps"] == entry["resyncs"] == entry["reconnects"] == 0
        latency = entry["latency_ns"]
        assert set(latency) == {"event_to_receive", "receive_to_callback"}
        assert latency["receive_to_callback"]["count"] > 0
        assert 0 < latency["receive_to_callback"]["p50"] <= latency["receive_to_callback"]["p99"]
        assert set(latency["event_to_receive"]) >= {"count", "p50", "p99", "p999", "max"}
    assert summary["totals"]["synced"] == summary["totals"]["symbols"] == 2
    # The live lines went to stderr (not a terminal: plain lines, once a second).
    seen = {m["symbol"] for m in LINE.finditer(done.stderr)}
    assert seen == {"BTCUSDT", "ETHUSDT"}, done.stderr
    assert "Traceback" not in done.stderr


def test_a_dropped_event_is_a_gap_then_a_resync() -> None:
    with run_exchange(generated, speed=10.0, wait_for_client=True, faults="drop@40") as ex:
        done = tickbook("watch", "BTCUSDT", "ETHUSDT", *urls(ex), "--duration", "3", "--json", "--strict")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert_equal_to_truth(ex, summary)
        dropped = {entry["symbol"] for entry in ex.fault_log() if entry["kind"] == "drop"}
    assert dropped == {"BTCUSDT", "ETHUSDT"}
    for symbol, entry in summary["symbols"].items():
        assert entry["gaps"] == 1, symbol
        assert entry["resyncs"] == 1, symbol
        assert entry["snapshots"] == 2, symbol
    assert summary["totals"]["gaps"] == summary["totals"]["resyncs"] == 2
    # The state changes were shown as they happened (plain lines on stderr).
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert re.search(rf"^{symbol} out_of_sync at u=\d+: ", done.stderr, re.M), done.stderr
        assert re.search(rf"^{symbol} resyncing at u=\d+", done.stderr, re.M), done.stderr


def test_plain_lines_and_verification_on_usdm_recording() -> None:
    with run_exchange(usdm_recording, speed=15.0, wait_for_client=True) as ex:
        args = ["watch", *USDM_SYMBOLS, "--market", "usdm", *urls(ex, "usdm"), "--duration", "4"]
        done = tickbook(*args, "--verify-against-sim", "--strict", "--depth", "3")
        assert done.returncode == 0, done.stdout + done.stderr
        assert ex.wait_finished(5.0)
        truths = {s: ex.truth(s, 20) for s in USDM_SYMBOLS}
    out = done.stdout
    assert out.startswith("watching SUSHIUSDT, AKROUSDT, CTKUSDT, KEEPUSDT on usdm")
    assert {m["symbol"] for m in LINE.finditer(out)} == set(USDM_SYMBOLS)
    assert "4/4 books synced" in out
    for symbol, truth in truths.items():
        # The summary table row and the comparison with /sim/truth, at the final update ID.
        assert re.search(rf"^{symbol} +synced +{truth['lastUpdateId']} .* {truth['checksum']} ", out, re.M), (
            out
        )
        verified = (
            f"  {symbol} +equal at u={truth['lastUpdateId']}: checksum {truth['checksum']} on both sides$"
        )
        assert re.search(verified, out, re.M), out


def test_strict_fails_when_a_book_never_syncs() -> None:
    # REST answers, the WebSocket port is dead: the book stays unsynced, the view says why.
    with run_exchange(generated, speed=10.0) as ex:
        stream = f"ws://127.0.0.1:{free_port()}"
        done = tickbook("watch", "BTCUSDT", "--url", ex.rest_url, "--stream-url", stream, "--duration", "1.5")
        strict = tickbook(
            "watch",
            "BTCUSDT",
            "--url",
            ex.rest_url,
            "--stream-url",
            stream,
            "--duration",
            "1.5",
            "--strict",
            "--json",
        )
    assert done.returncode == 0, done.stderr
    assert "BTCUSDT waiting_for_snapshot(not_started) u=-1 bid - ask - msgs=0" in done.stdout
    assert "feed: connection #1: connect failed" in done.stdout
    assert "0/1 books synced" in done.stdout
    assert strict.returncode == 1, strict.stderr
    assert json.loads(strict.stdout)["symbols"]["BTCUSDT"]["synced"] is False


def test_sigint_stops_cleanly_with_the_summary() -> None:
    with run_exchange(lambda: GeneratedMarket(["BTCUSDT"], "spot", seed=1), speed=1.0) as ex:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickbook", "watch", "BTCUSDT", *urls(ex), "--json", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        try:
            time.sleep(2.5)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert err == ""  # --quiet: no live view
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert summary["symbols"]["BTCUSDT"]["synced"] is True
    assert summary["symbols"]["BTCUSDT"]["messages"] > 0


def test_terminal_view_redraws_a_ladder_in_place() -> None:
    with run_exchange(generated, speed=10.0, wait_for_client=True) as ex:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickbook", "watch", "BTCUSDT", "ETHUSDT", *urls(ex), "--duration", "2"],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env={**cli_env(), "TERM": "xterm"},
        )
        os.close(slave)
        data = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                data += chunk
            elif proc.poll() is not None:
                break
        os.close(master)
        proc.wait(timeout=10)
    text = data.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    frames = text.split("\x1b[H")
    assert len(frames) >= 5  # several redraws (4 a second), not one line per message
    assert "\x1b[?25l" in text
    assert "\x1b[?25h" in text
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frames[-1])
    assert re.search(r"^BTCUSDT +synced +u=\d+ +\d+ msg/s +gaps 0 +resyncs 0 +reconnects 0", last, re.M), last
    assert "recv→callback p50" in last
    assert "event→recv" in last
    assert len(re.findall(r"bid qty +bid \| ask +ask qty", last)) == 2
    assert len(re.findall(r"^ +[0-9.]+ +[0-9.]+ \| [0-9.]+ +[0-9.]+", last, re.M)) == 2 * 5
    assert "2/2 books synced" in last


# ------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://127.0.0.1:9"], "--url needs --stream-url too"),
        (["--stream-url", "ws://127.0.0.1:9"], "--stream-url needs --url too"),
        (["--market", "options"], "argument --market: invalid choice: 'options'"),
        (
            ["--speed", "250ms", "--url", "http://127.0.0.1:9", "--stream-url", "ws://127.0.0.1:9"],
            "--speed 250ms",
        ),
        (["--url", "127.0.0.1:9", "--stream-url", "ws://127.0.0.1:9"], "must start with http:// or https://"),
        (["--testnet", "--url", "http://127.0.0.1:9", "--stream-url", "ws://127.0.0.1:9"], "--testnet"),
        (["--duration", "0"], "argument --duration: expected a positive number"),
        (["--verify-against-sim"], "--verify-against-sim needs the local exchange"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = tickbook("watch", "BTCUSDT", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "tickbook watch: error: " in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unknown_symbol_exits_1_with_one_line() -> None:
    with run_exchange(generated, speed=10.0) as ex:
        done = tickbook("watch", "BTCUSDT", "NOSUCHCOIN", *urls(ex), "--duration", "2", "--json")
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tickbook watch: exchangeInfo from http://127.0.0.1:")
    assert "Invalid symbol" in lines[0]
    assert "NOSUCHCOIN" in lines[0]


def test_dead_server_exits_1_quickly() -> None:
    port = free_port()
    started = time.monotonic()
    done = tickbook(
        "watch",
        "BTCUSDT",
        "--url",
        f"http://127.0.0.1:{port}",
        "--stream-url",
        f"ws://127.0.0.1:{port}",
        timeout=30,
    )
    assert time.monotonic() - started < 20
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"tickbook watch: exchangeInfo from http://127.0.0.1:{port}/api/v3/exchangeInfo: "
    )
    assert "Cannot connect" in lines[0]


# ---------------------------------------------------------------------------------- demo


def test_demo_checks_every_book_and_stops_the_exchange() -> None:
    done = tickbook("demo", "--duration", "3", "--replay-speed", "40", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    found = re.search(
        r"^local exchange: (http://127\.0\.0\.1:(\d+)) ws://127\.0\.0\.1:\d+ replaying ", out, re.M
    )
    assert found, out
    assert "3/3 books synced" in out
    for symbol in ("BTCUSDT", "ETHUSDT", "DOTUSDT"):
        assert re.search(rf"^  {symbol}  equal at u=\d+: checksum \d+ on both sides$", out, re.M), out
    assert out.rstrip().endswith("demo ok: every book synced and equal to the exchange's")
    # The exchange subprocess is gone: its port refuses connections.
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", int(found[2])))


# ----------------------------------------------------------------------------- the pieces


def test_formatting_helpers() -> None:
    assert format_ns(None) == "-"
    assert format_ns(850) == "850 ns"
    assert format_ns(5_375) == "5.38 µs"
    assert format_ns(153_600) == "154 µs"
    assert format_ns(12_000_000) == "12 ms"
    assert format_ns(3_200_000_000) == "3.2 s"
    assert format_ns(2 * 86_400 * 10**9) == "2.0 d"
    assert format_event_latency({"count": 0, "p50": 0}) == "-"
    assert format_event_latency({"count": 5, "p50": 2_500_000}) == "2.5 ms"
    assert format_event_latency({"count": 5, "p50": 562949953421311}) == "> 1 d"
    assert normalise_symbols(["btcusdt", "BTCUSDT", " ethusdt", "BTCUSD_PERP"]) == (
        "BTCUSDT",
        "ETHUSDT",
        "BTCUSD_PERP",
    )
    with pytest.raises(ValueError, match="not a symbol name"):
        normalise_symbols(["BTC/USDT"])


def test_line_and_ladder_rows() -> None:
    entry = {
        "state": "out_of_sync",
        "reason": "gap",
        "last_update_id": 42,
        "best_bid": ["61685.99", "1.0087"],
        "best_ask": ["61686", "2.29327"],
        "messages": 1200,
        "gaps": 1,
        "resyncs": 1,
        "reconnects": 0,
        "callback_latency_ns": {"count": 3, "p50": 5_000, "p99": 20_000},
    }
    assert line_of("BTCUSDT", entry, 99.6, 3.04) == (
        "BTCUSDT out_of_sync(gap) u=42 bid 61685.99 x 1.0087 ask 61686 x 2.29327 msgs=1200 rate=100/s "
        "gaps=1 resyncs=1 reconnects=0 recv->callback p50=5us p99=20us t=3.0s"
    )
    widths = [7, 3, 3, 7]
    rows = _ladder_rows([("100.5", "1"), ("100", "12.25")], [("101", "3")], 3, widths, "   spread 0.5")
    plain = ["".join(text for text, _ in row) for row in rows]
    assert plain == [
        "  bid qty    bid | ask  ask qty   spread 0.5",
        "        1  100.5 | 101        3",
        "    12.25    100 | ",
        "                 | ",
    ]
    assert widths == [7, 5, 3, 7]  # remembered: columns only grow
