"""The ``tickbook`` command line: ``tickbook replay ...``, ``tickbook sim ...``, ``tickbook watch ...``,
``tickbook demo``, ``tickbook journal ...`` (more: record, bench).

Exit status: 0 success; 1 ``--strict`` and something went wrong (a gap, a
crossed book, a bookTicker mismatch, an error, a book not in sync at the end);
2 bad arguments or unreadable input (a one-line message, no traceback);
130 interrupted (the summary so far is printed first).

``tickbook sim`` serves until SIGINT/SIGTERM (or the end of the recording with
``--exit-after-replay``) and then exits 0; 1 if its pacing loop failed; 2 bad
arguments, unreadable or unservable recordings, a port that cannot be bound.

``tickbook watch`` runs until ``--duration`` or SIGINT/SIGTERM and exits 0; 1 when the feed
cannot start (dead server, unknown symbol: a one-line message), or with ``--strict`` when a
book is not in sync at the end (or differs from the local exchange's, with
``--verify-against-sim``); 2 bad arguments; 130 interrupted (the summary is printed first).
``tickbook demo`` exits 0 when every book is synced and equal to the exchange's, 1 otherwise.
``tickbook journal`` exits 0 (also when nothing matches); 2 bad arguments, or a file that is
missing or not a journal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

import tickbook
from tickbook._types import Market
from tickbook.recording import RecordingError, SnapshotFile, parse_snapshot_arg, time_to_ns
from tickbook.replay import Replay

__all__ = ["build_parser", "main", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments or input files: reported as ``tickbook <command>: error: ...``, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="tickbook",
        description="Exact, validated local Binance order books.",
    )
    parser.add_argument("--version", action="version", version=f"tickbook {tickbook.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    replay = commands.add_parser(
        "replay",
        help="replay recorded market data through the engine and check the books",
        description=(
            "Replay recorded Binance market data (timestamped lines '<time> <json>', or plain JSONL "
            "with separate snapshot files; gzip or plain) through decode -> sync -> book, one book "
            "per symbol, and report what happened. Several files are one continuous recording."
        ),
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="recording files, in order")
    replay.add_argument(
        "--snapshot",
        action="append",
        default=[],
        metavar="[SYMBOL=]FILE",
        help="a REST depth snapshot in its own file (repeatable); without SYMBOL= the symbol is "
        "read from the file name",
    )
    replay.add_argument(
        "--market",
        choices=[m.value for m in Market],
        help="market of the recording (default: inferred from the first depth message)",
    )
    replay.add_argument(
        "--check-bookticker",
        action="store_true",
        help="compare the book's best bid/ask with every bookTicker at the same update ID",
    )
    replay.add_argument(
        "--drop-depth",
        type=_positive_int,
        metavar="N",
        help="drop the N-th depth message of each symbol (1-based) to show gap detection",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    replay.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 on any gap, crossed book, bookTicker mismatch, error or unsynced book",
    )
    replay.add_argument(
        "--show-bbo",
        action="store_true",
        help="print every best bid/ask change as it happens (to stderr with --json)",
    )
    replay.add_argument(
        "--impl",
        choices=["c", "py"],
        help="book implementation: the Cython core or the pure-Python reference "
        f"(default: tickbook.OrderBook, here {tickbook.IMPLEMENTATION!r})",
    )
    replay.set_defaults(handler=_cmd_replay)
    _add_sim_parser(commands)
    _add_watch_parser(commands)
    _add_demo_parser(commands)
    _add_journal_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also for ``--help`` and usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and bad arguments
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        print(f"tickbook {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`tickbook replay --show-bbo ... | head`): stop quietly, and
        # point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def run() -> NoReturn:
    """Console-script style entry point: ``sys.exit(main())``."""
    sys.exit(main())


# ------------------------------------------------------------------- replay


def _load_impl(name: str | None) -> type:
    if name is None:
        return tickbook.OrderBook
    if name == "py":
        from tickbook._book_py import OrderBook as PyOrderBook

        return PyOrderBook
    try:
        from tickbook._book import OrderBook as COrderBook
    except ImportError as exc:
        raise UsageError(f"the Cython core is not built here ({exc}); use --impl py") from None
    return COrderBook


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"is a directory, not a recording: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {path}: permission denied")


def _format_time(value: int | None) -> str:
    if value is None:
        return ""
    seconds, nanos = divmod(time_to_ns(value), 1_000_000_000)
    try:
        stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{value} "
    return f"{stamp}.{nanos // 1000:06d} "


def _bbo_printer(replay: Replay, out: TextIO) -> Callable[[Any], None]:
    """The ``on_bbo`` callback of ``--show-bbo``: one line per best bid/ask change."""

    def show(book: Any) -> None:
        bid = book.best_bid_str()
        ask = book.best_ask_str()
        left = f"{bid[1]} @ {bid[0]}" if bid is not None else "-"
        right = f"{ask[0]} @ {ask[1]}" if ask is not None else "-"
        spread_ticks = book.spread_ticks()
        spread = f"  spread {book.price_str(spread_ticks)}" if spread_ticks is not None else ""
        sync = "" if book.synced else f"  [{book.state.name}]"
        out.write(f"{_format_time(replay.time)}{book.symbol:<10} {left:>24} | {right:<24}{spread}{sync}\n")

    return show


def _state_printer(replay: Replay, out: TextIO) -> Callable[[Any], None]:
    """The ``on_state`` callback of ``--show-bbo``: one line per sync-state change."""

    def show(book: Any) -> None:
        why = f" ({book.reason_detail})" if book.reason_detail else ""
        out.write(
            f"{_format_time(replay.time)}{book.symbol:<10} now {book.state.name}"
            f" at update {book.last_update_id}{why}\n"
        )

    return show


def _load_recording_args(files: list[str], snapshot_args: list[str]) -> list[SnapshotFile]:
    """Check the recording files are readable and load the ``--snapshot [SYMBOL=]FILE`` ones."""
    for path in files:
        _check_readable(path)
    snapshots: list[SnapshotFile] = []
    for text in snapshot_args:
        symbol, path = parse_snapshot_arg(text)
        _check_readable(path)
        try:
            snapshots.append(SnapshotFile.load(path, symbol))
        except RecordingError as exc:
            raise UsageError(str(exc)) from None
    return snapshots


def _cmd_replay(args: argparse.Namespace) -> int:
    impl = _load_impl(args.impl)
    snapshots = _load_recording_args(args.files, args.snapshot)

    replay = Replay(
        market=args.market,
        impl=impl,
        snapshots=snapshots,
        drop_depth=args.drop_depth,
        check_bookticker=args.check_bookticker,
    )
    if args.show_bbo:
        out = sys.stderr if args.json else sys.stdout
        replay.on_bbo = _bbo_printer(replay, out)
        replay.on_state = _state_printer(replay, out)

    status = EXIT_OK
    try:
        summary = replay.run_files(args.files)
    except KeyboardInterrupt:
        summary = replay.summary()
        summary["interrupted"] = True
        status = EXIT_INTERRUPTED
    summary["files"] = list(args.files)
    summary["snapshot_files"] = [s.path for s in snapshots]
    summary["check_bookticker"] = bool(args.check_bookticker)
    summary["drop_depth"] = args.drop_depth

    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        _print_summary(summary, sys.stdout)
    sys.stdout.flush()
    if status == EXIT_OK and args.strict and not summary["ok"]:
        status = EXIT_FAILED
    return status


def _n(value: int) -> str:
    return f"{value:,}"


def _print_summary(s: dict[str, Any], out: TextIO) -> None:
    """A readable summary: one header line, one table row per symbol, then what went wrong."""
    files = s["files"]
    out.write(
        f"replayed {len(files)} file{'s' if len(files) != 1 else ''}: {_n(s['records'])} records "
        f"({_n(s['depth_messages'])} depth, {_n(s['book_tickers'])} bookTicker, "
        f"{_n(s['snapshots'])} snapshot, {_n(s['other'])} other); "
        f"market {s['market'] or '?'}, book {s['impl']}\n"
    )
    headers = [
        "symbol",
        "depth",
        "applied",
        "stale",
        "gaps",
        "resyncs",
        "crossed",
        "errors",
        "bookTicker ok/bad",
        "best bid",
        "best ask",
        "levels",
        "state",
    ]
    rows = [headers]
    for symbol, e in s["symbols"].items():
        bid = f"{e['best_bid'][1]} @ {e['best_bid'][0]}" if e["best_bid"] else "-"
        ask = f"{e['best_ask'][0]} @ {e['best_ask'][1]}" if e["best_ask"] else "-"
        checked = (
            f"{_n(e['bookticker_matches'])}/{_n(e['bookticker_mismatches'])}"
            if s["check_bookticker"]
            else "-"
        )
        gaps = _n(e["gaps"]) + (f" (at {', '.join(map(str, e['gap_at'][:3]))})" if e["gap_at"] else "")
        state = e["state"] if e["reason"] == "NONE" else f"{e['state']} ({e['reason']})"
        rows.append(
            [
                symbol,
                _n(e["depth_messages"]),
                _n(e["applied"]),
                _n(e["stale"]),
                gaps,
                _n(e["resyncs"]),
                _n(e["crossed"]),
                _n(e["errors"]),
                checked,
                bid,
                ask,
                f"{_n(e['bid_levels'])}/{_n(e['ask_levels'])}",
                state,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    left = {0, 10, 12}  # text columns (and the ask, read from its price); the rest right-aligned
    for row in rows:
        cells = [
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")
    if not s["symbols"]:
        out.write("(no depth messages)\n")
    rate = s["messages_per_second"]
    out.write(f"elapsed {s['elapsed_seconds']:.3f} s, {rate:,.0f} depth messages/s\n")
    if s.get("drop_depth"):
        out.write(f"dropped depth message {s['drop_depth']} of each symbol (--drop-depth)\n")
    for sample in s["error_samples"]:
        out.write(f"error: {sample}\n")
    for m in s["bookticker_mismatch_samples"][:5]:
        out.write(
            f"bookTicker mismatch {m['symbol']} u={m['u']}: book {m['book_bid']} | {m['book_ask']}, "
            f"ticker {m['ticker_bid']} | {m['ticker_ask']}\n"
        )
    if s.get("interrupted"):
        out.write("interrupted: the summary covers the records replayed so far\n")
    if s["problems"]:
        out.write("problems: " + "; ".join(s["problems"]) + "\n")
    else:
        out.write(
            "ok: no gap, no crossed book, no error"
            + (", no bookTicker mismatch" if s["check_bookticker"] else "")
            + "\n"
        )


# ---------------------------------------------------------------------- sim


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value}")
    return value


def _add_sim_parser(commands: Any) -> None:
    sim = commands.add_parser(
        "sim",
        help="run a local Binance-compatible exchange (REST + WebSocket) on 127.0.0.1",
        description=(
            "Serve a recording (--replay) or a seeded random-walk market (--generate) on loopback "
            "with Binance's REST paths and WebSocket streams, its limits, signatures and errors, and "
            "faults on demand. Several markets at once: recordings of different markets (the market "
            "of each file is inferred; the files of one market are one recording, in order) or "
            "MARKET:SYMBOL items; one REST server serves every market (their paths differ), each "
            "market has its own WebSocket server and port. The first line on stdout is one JSON "
            'object: {"rest": URL, "ws": URL, "market": ..., "symbols": [...], "markets": {MARKET: '
            '{"rest": URL, "ws": URL, "symbols": [...]}, ...}} (rest/ws/market/symbols: the first '
            "market's). Stops on SIGINT/SIGTERM, or by itself after the recording(s) with "
            "--exit-after-replay."
        ),
    )
    what = sim.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="recording files, in order; files of different markets are served side by side",
    )
    what.add_argument(
        "--generate",
        nargs="+",
        metavar="[MARKET:]SYMBOL",
        help="generate a market for these symbols: SYMBOL (on --market, default spot) or "
        "MARKET:SYMBOL (e.g. usdm:BTCUSDT coinm:BTCUSD_PERP)",
    )
    sim.add_argument(
        "--snapshot",
        action="append",
        default=[],
        metavar="[SYMBOL=]FILE",
        help="a REST depth snapshot in its own file, for a recording without inline ones (repeatable; "
        "recordings of one market only)",
    )
    sim.add_argument(
        "--market",
        choices=[m.value for m in Market],
        help="market of every --replay file (default: inferred per file) and of the --generate "
        "symbols given without MARKET: (default spot)",
    )
    pace = sim.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="X times the recorded pace (default 1)",
    )
    pace.add_argument("--max-speed", action="store_true", help="as fast as the clients read")
    sim.add_argument("--port", type=_port, default=0, metavar="N", help="REST port (default 0: a free one)")
    sim.add_argument(
        "--ws-port",
        type=_ws_port,
        action="append",
        default=[],
        metavar="[MARKET:]N",
        help="WebSocket port of the (first) market, or of MARKET (repeatable; default 0: a free one)",
    )
    sim.add_argument(
        "--faults",
        metavar="SPEC",
        help="faults to inject, comma-separated: drop@N, dup@N, reorder@N, delay@N:S, stall@N:S, "
        "close@N, disconnect@N, malformed@N, unknown@N, stale-snapshot[@N], slow-snapshot[@N]:S, "
        "http@N:STATUS, skew:MS, lost-response@N[:timeout=S|:reset|:503] (the N-th order "
        "placement is executed but its answer is lost)",
    )
    sim.add_argument("--scenario", metavar="FILE", help="a scenario file of faults (JSON or TOML)")
    sim.add_argument(
        "--lifetime",
        type=_positive_float,
        metavar="S",
        help="maximum WebSocket connection lifetime in seconds",
    )
    sim.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="API_KEY:SECRET|API_KEY:@PEMFILE",
        help="an API key the signed endpoints accept: an HMAC secret, or a file with an RSA or Ed25519 "
        "public key (PEM); repeatable",
    )
    sim.add_argument(
        "--weight-limit",
        type=_positive_int,
        metavar="N",
        help="REQUEST_WEIGHT per minute to enforce (default: the market's documented limit)",
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed of --generate (default 0)")
    sim.add_argument(
        "--events",
        type=_positive_int,
        metavar="N",
        help="with --generate: stop each market after N depth events (all its symbols together)",
    )
    sim.add_argument(
        "--wait-for-client",
        action="store_true",
        help="hold the replay until the first client request or WebSocket connection (each market "
        "waits for its own)",
    )
    sim.add_argument(
        "--exit-after-replay",
        action="store_true",
        help="exit (status 0) once the recording (or --events) is fully served, on every market",
    )
    sim.set_defaults(handler=_cmd_sim)


def _ws_port(text: str) -> tuple[Market | None, int]:
    """``--ws-port [MARKET:]N``."""
    market: Market | None = None
    name, sep, number = text.rpartition(":")
    if sep:
        try:
            market = Market.parse(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return market, _port(number)


def _generate_item(item: str, default: Market) -> tuple[Market, str]:
    """``--generate [MARKET:]SYMBOL``."""
    name, sep, symbol = item.rpartition(":")
    if not sep:
        return default, item
    try:
        return Market.parse(name), symbol
    except ValueError as exc:
        raise UsageError(f"--generate {item}: {exc}") from None


def _file_market(path: str) -> Market | None:
    """The market of a recording file, from its first depth message (None: none found)."""
    from tickbook.decode import DecodeError, infer_market
    from tickbook.recording import read_records

    try:
        for record in read_records([path]):
            data = record.data
            if (data.startswith(b'{"stream":') or data.startswith(b'{"e":')) and (
                b'"e":"depthUpdate"' in data
            ):
                return infer_market(data)
    except (RecordingError, DecodeError):
        pass  # loading the recording reports it
    return None


def _replay_groups(paths: Sequence[str], market: str | None) -> list[list[str]]:
    """The ``--replay`` files grouped by market (first appearance first, files in order).

    With ``--market`` every file is of that market. A file without a depth message joins the
    market of the file before it (the first such files: the next known market).
    """
    if market is not None:
        return [list(paths)]
    known = [_file_market(p) for p in paths]
    if all(m is None for m in known):
        return [list(paths)]  # the recording's own loading says what is wrong
    current = next(m for m in known if m is not None)
    groups: dict[Market, list[str]] = {}
    for path, found in zip(paths, known, strict=True):
        current = found if found is not None else current
        groups.setdefault(current, []).append(path)
    return list(groups.values())


def _sim_sources(args: argparse.Namespace) -> list[Any]:
    """The market sources the arguments ask for, one per market (the first market first); bad
    input becomes a ``UsageError``."""
    from tickbook.sim.market import GeneratedMarket, MarketError, RecordedMarket

    if args.generate:
        if args.snapshot:
            raise UsageError("--snapshot goes with --replay, not --generate")
        default = Market.parse(args.market) if args.market else Market.SPOT
        symbols: dict[Market, list[str]] = {}
        for item in args.generate:
            market, name = _generate_item(item, default)
            symbols.setdefault(market, []).append(name)
        try:
            return [
                GeneratedMarket(names, market, args.seed, max_events=args.events)
                for market, names in symbols.items()
            ]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.events is not None:
        raise UsageError("--events goes with --generate")
    snapshots = _load_recording_args(args.replay, args.snapshot)
    groups = _replay_groups(args.replay, args.market)
    if snapshots and len(groups) > 1:
        raise UsageError("--snapshot goes with recordings of one market; these files are of several")
    try:
        return [RecordedMarket.from_files(files, args.market, snapshots) for files in groups]
    except (MarketError, RecordingError) as exc:
        raise UsageError(str(exc)) from None


def _sim_exchange(args: argparse.Namespace, sources: list[Any]) -> Any:
    from tickbook.signing import KeyLoadError, KeyRegistry
    from tickbook.sim.exchange import Venue
    from tickbook.sim.faults import Fault, FaultPlan, load_scenario, parse_faults

    faults: list[Fault] = []
    try:
        if args.faults:
            faults.extend(parse_faults(args.faults))
        if args.scenario:
            _check_readable(args.scenario)
            faults.extend(load_scenario(args.scenario))
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    registry = KeyRegistry()
    for spec in args.key:
        try:
            registry.register(spec)
        except KeyLoadError as exc:
            raise UsageError(f"--key {spec.partition(':')[0]}:...: {exc}") from None
    served = [source.market for source in sources]
    ws_ports: dict[Market, int] = {}
    for market, port in args.ws_port:
        market = market if market is not None else served[0]
        if market not in served:
            raise UsageError(f"--ws-port {market.value}:{port}: market {market.value} is not served")
        if market in ws_ports:
            raise UsageError(f"--ws-port given twice for {market.value}")
        ws_ports[market] = port
    # Each market counts its own faults (per symbol, per REST request): one plan each.
    plans = {market: FaultPlan(faults) if faults else None for market in served}
    venue = Venue.from_sources(
        sources,
        faults=plans,
        keys=registry,
        speed=None if args.max_speed else args.speed,
        lifetime=args.lifetime,
        rest_port=args.port,
        ws_ports=ws_ports,
        weight_limit=args.weight_limit,
        wait_for_client=args.wait_for_client,
    )
    registry.clock = lambda: venue.exchange().now_ms() * 1000  # the exchange clock, skew included
    return venue


def _cmd_sim(args: argparse.Namespace) -> int:
    venue = _sim_exchange(args, _sim_sources(args))
    import asyncio
    import signal

    from tickbook.sim.exchange import new_event_loop

    async def serve() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await venue.start()
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1: {exc.strerror or exc}") from None
        try:
            sys.stdout.write(json.dumps(venue.urls()) + "\n")
            sys.stdout.flush()
            waits = [asyncio.ensure_future(stop.wait())]
            if args.exit_after_replay:
                waits.append(asyncio.ensure_future(venue.wait_finished()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        finally:
            await venue.stop()
        summary = {
            "stopped": "signal" if stop.is_set() else "replay finished",
            "steps": venue.steps,
            "events": venue.events,
            "faults": len(venue.fault_log),
            "violations": venue.violations,
        }
        print(f"tickbook sim: {json.dumps(summary)}", file=sys.stderr)
        return EXIT_FAILED if venue.error is not None else EXIT_OK

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(serve())


# -------------------------------------------------------------------- watch


def _add_watch_parser(commands: Any) -> None:
    watch = commands.add_parser(
        "watch",
        help="follow live order books over the exchange's WebSockets and show them",
        description=(
            "Keep local books of SYMBOLs in sync (tickbook.feed.DepthFeed) and show them: on a terminal "
            "a ladder per symbol redrawn a few times a second; otherwise one plain line per symbol every "
            "second. Binance's production hosts by default; --url and --stream-url point it at any other "
            "host speaking the protocol (the local exchange, `tickbook sim`). Stops after --duration "
            "seconds or on Ctrl-C, then prints a summary (--json: exactly one JSON object on stdout, the "
            "live view on stderr)."
        ),
    )
    watch.add_argument("symbols", nargs="+", metavar="SYMBOL", help="symbols to follow, e.g. BTCUSDT ETHUSDT")
    watch.add_argument(
        "--market", choices=[m.value for m in Market], default="spot", help="market (default spot)"
    )
    watch.add_argument(
        "--url", metavar="REST_BASE", help="REST base URL, e.g. http://127.0.0.1:PORT (with --stream-url)"
    )
    watch.add_argument(
        "--stream-url", metavar="WS_BASE", help="WebSocket base URL, e.g. ws://127.0.0.1:PORT (with --url)"
    )
    watch.add_argument("--testnet", action="store_true", help="Binance's testnet hosts instead of production")
    watch.add_argument(
        "--depth", type=_positive_int, default=5, metavar="N", help="levels shown per side (default 5)"
    )
    watch.add_argument(
        "--duration",
        type=_positive_float,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    watch.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    watch.add_argument("-q", "--quiet", action="store_true", help="no live view, only the summary")
    watch.add_argument(
        "--speed",
        default="100ms",
        metavar="SPEED",
        help="depth stream cadence: spot 100ms|1000ms, futures 100ms|250ms|500ms, or 'default' for the "
        "market's own (default 100ms)",
    )
    watch.add_argument(
        "--snapshot-limit",
        type=_positive_int,
        metavar="N",
        help="levels of the REST depth snapshot (default: the market's maximum)",
    )
    watch.add_argument(
        "--checksum-depth",
        type=_positive_int,
        default=20,
        metavar="N",
        help="levels per side in the summary's checksum (default 20, as /sim/truth's)",
    )
    watch.add_argument(
        "--verify-against-sim",
        action="store_true",
        help="at the end, compare every book with the local exchange's true book (GET /sim/truth) at the "
        "same update ID",
    )
    watch.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 if a book is not in sync at the end (or differs from the exchange's)",
    )
    watch.add_argument(
        "--impl",
        choices=["c", "py"],
        help="book and router implementation: the Cython core or the pure-Python reference "
        f"(default: {tickbook.IMPLEMENTATION!r})",
    )
    watch.set_defaults(handler=_cmd_watch)


def _cmd_watch(args: argparse.Namespace) -> int:
    from tickbook.watch import WatchError, WatchOptions, normalise_symbols, run_watch

    if (args.url is None) != (args.stream_url is None):
        given, missing = ("--url", "--stream-url") if args.url is not None else ("--stream-url", "--url")
        raise UsageError(f"{given} needs {missing} too: give both (the local exchange's URLs), or neither")
    try:
        options = WatchOptions(
            symbols=normalise_symbols(args.symbols),
            market=Market.parse(args.market),
            rest_url=args.url,
            stream_url=args.stream_url,
            testnet=args.testnet,
            depth=args.depth,
            duration=args.duration,
            speed=None if args.speed in ("default", "") else args.speed,
            snapshot_limit=args.snapshot_limit,
            checksum_depth=args.checksum_depth,
            implementation=args.impl,
            verify=args.verify_against_sim,
        )
        return run_watch(options, json_out=args.json, quiet=args.quiet, strict=args.strict)
    except ValueError as exc:  # options the feed refuses: a bad URL, speed or snapshot limit
        raise UsageError(str(exc)) from None
    except WatchError as exc:
        print(f"tickbook watch: {exc}", file=sys.stderr)
        return EXIT_FAILED


# --------------------------------------------------------------------- demo


def _add_demo_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="watch a real recorded market served by the local exchange, and check the books",
        description=(
            "Start the local exchange (`tickbook sim`, a subprocess on 127.0.0.1) replaying the real "
            "cryptofeed recording of Binance spot BTCUSDT, ETHUSDT and DOTUSDT (2021-04-04, 91 s) with "
            "its REST snapshots, run `tickbook watch` against it for --duration seconds, compare every "
            "book with the exchange's true book (/sim/truth) and stop the exchange. Exit status 0 when "
            "every book is synced and equal to the exchange's."
        ),
    )
    demo.add_argument(
        "--duration", type=_positive_float, default=8.0, metavar="S", help="seconds to watch (default 8)"
    )
    demo.add_argument(
        "--replay-speed",
        type=_positive_float,
        default=15.0,
        metavar="X",
        help="X times the recorded pace (default 15: the 91 s recording in about 6 s)",
    )
    demo.add_argument(
        "--depth", type=_positive_int, default=5, metavar="N", help="levels shown per side (default 5)"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    demo.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from tickbook.watch import DemoOptions, WatchError, run_demo

    options = DemoOptions(duration=args.duration, replay_speed=args.replay_speed, depth=args.depth)
    try:
        return run_demo(options, json_out=args.json)
    except WatchError as exc:
        print(f"tickbook demo: {exc}", file=sys.stderr)
        return EXIT_FAILED


# ------------------------------------------------------------------ journal

_RELATIVE_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _when_ms(text: str, *, now_ms: int | None = None) -> int:
    """``--since``/``--until``: epoch time (s, ms, µs or ns, told apart by size), an ISO 8601
    date or date-time (UTC unless it carries an offset), or a duration ago (``90s``, ``15m``,
    ``2h``, ``7d``)."""
    text = text.strip()
    if text.isdigit():
        return time_to_ns(int(text)) // 1_000_000
    match = _RELATIVE_RE.fullmatch(text)
    if match:
        now = now_ms if now_ms is not None else int(dt.datetime.now(tz=dt.UTC).timestamp() * 1000)
        return now - int(float(match[1]) * _UNIT_MS[match[2]])
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected epoch time, an ISO date-time or a duration ago like 15m, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _add_journal_parser(commands: Any) -> None:
    journal = commands.add_parser(
        "journal",
        help="list or summarise an audit journal of REST requests (tickbook.trading.Journal)",
        description=(
            "Read a journal written by the REST client (an SQLite file; secrets were redacted before "
            "they were written). Without --stats: the matching entries, oldest first, one line each "
            "(time, market, method, endpoint, HTTP status, weight used, latency, client order ID, error, "
            "parameters). With --stats: requests, errors and latency percentiles per endpoint, and error "
            "counts by code and endpoint. The file is opened read-only: a client may be writing it."
        ),
    )
    journal.add_argument("path", metavar="PATH", help="the journal file")
    journal.add_argument("--endpoint", metavar="PATH", help="only this endpoint, e.g. /api/v3/order")
    journal.add_argument("--order-id", metavar="ID", help="only requests carrying this client order ID")
    journal.add_argument("--errors", action="store_true", help="only failed requests")
    journal.add_argument(
        "--since",
        type=_when_ms,
        metavar="WHEN",
        help="only entries at or after WHEN: epoch time (s or ms), an ISO date-time (UTC unless it has an "
        "offset) or a duration ago (90s, 15m, 2h, 7d)",
    )
    journal.add_argument(
        "--until", type=_when_ms, metavar="WHEN", help="only entries before WHEN (as --since)"
    )
    journal.add_argument(
        "--limit",
        type=_non_negative_int,
        default=100,
        metavar="N",
        help="the most recent N matching entries (default 100; 0: all)",
    )
    journal.add_argument(
        "-v", "--verbose", action="store_true", help="also print each entry's (redacted) response"
    )
    journal.add_argument(
        "--stats",
        action="store_true",
        help="per-endpoint counts, error counts by code and endpoint, latency percentiles (with --since "
        "and --until only)",
    )
    journal.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    journal.set_defaults(handler=_cmd_journal)


def _format_ms(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    seconds, millis = divmod(ts_ms, 1000)
    try:
        stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ts_ms)
    return f"{stamp}.{millis:03d}"


def _error_name(code: int) -> str:
    try:
        from tickbook.trading.errors import ERROR_NAMES
    except ImportError:  # pragma: no cover - the errors module ships with the journal
        return ""
    return ERROR_NAMES.get(code, "")


def _cmd_journal(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tickbook.trading.journal import Journal, JournalError

    if args.stats and (args.endpoint is not None or args.order_id is not None or args.errors):
        raise UsageError("--stats summarises every endpoint: use it with --since/--until only")
    try:
        journal = Journal(args.path, readonly=True)
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    with journal:
        if args.stats:
            stats = journal.stats(since_ms=args.since, until_ms=args.until)
            if args.json:
                sys.stdout.write(json.dumps({"journal": args.path, **stats}) + "\n")
            else:
                _print_journal_stats(args.path, stats, sys.stdout)
            return EXIT_OK
        found = journal.entries(
            endpoint=args.endpoint,
            client_order_id=args.order_id,
            errors_only=args.errors,
            since_ms=args.since,
            until_ms=args.until,
            limit=args.limit or None,
        )
        if args.json:
            rows = [asdict(entry) for entry in found]
            if not args.verbose:
                for row in rows:
                    row.pop("response")
            sys.stdout.write(json.dumps({"journal": args.path, "entries": rows}) + "\n")
            return EXIT_OK
        for entry in found:
            error = ""
            if entry.error_code is not None or entry.error_msg is not None:
                code = "" if entry.error_code is None else f"{entry.error_code} "
                error = f"  error {code}{entry.error_msg or ''}".rstrip()
            sys.stdout.write(
                f"{_format_ms(entry.ts_ms)}  {entry.market:<5} {entry.method:<6} {entry.endpoint}"
                f"  {entry.status if entry.status is not None else '-'}"
                f"  w={entry.weight_used if entry.weight_used is not None else '-'}"
                f"  {entry.latency_ms:.1f} ms"
                + (f"  id={entry.client_order_id}" if entry.client_order_id else "")
                + error
                + (f"  {entry.params}" if entry.params else "")
                + "\n"
            )
            if args.verbose and entry.response is not None:
                sys.stdout.write(f"    -> {entry.response}\n")
        if not found:
            sys.stdout.write("(no matching entries)\n")
        elif args.limit and len(found) == args.limit:
            sys.stdout.write(f"(showing the most recent {args.limit}; --limit 0 for all)\n")
    return EXIT_OK


def _print_journal_stats(path: str, s: dict[str, Any], out: TextIO) -> None:
    out.write(
        f"journal {path}: {_n(s['entries'])} entries"
        + (f", {_format_ms(s['first_ts_ms'])} to {_format_ms(s['last_ts_ms'])} UTC" if s["entries"] else "")
        + "\n"
    )
    if not s["entries"]:
        return
    headers = ["endpoint", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    rows = [headers]
    for name, e in s["endpoints"].items():
        lat = e["latency_ms"]
        rows.append(
            [name, _n(e["requests"]), _n(e["errors"])]
            + [f"{lat[q]:.1f}" for q in ("p50", "p90", "p99", "max")]
        )
    lat = s["latency_ms"]
    errors = sum(e["errors"] for e in s["endpoints"].values())
    rows.append(
        ["(all)", _n(s["entries"]), _n(errors)] + [f"{lat[q]:.1f}" for q in ("p50", "p90", "p99", "max")]
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for row in rows:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")
    if s["errors"]:
        out.write("errors by code and endpoint:\n")
        for e in s["errors"]:
            name = _error_name(e["code"])
            out.write(
                f"  {e['code']:>6}  {e['endpoint']}  {_n(e['count'])}"
                + (f"  ({name})" if name else "")
                + "\n"
            )
    else:
        out.write("no error codes\n")
