"""``tickbook watch``: a live view of ``DepthFeed`` books; ``tickbook demo``: the same view
against the local exchange replaying a real recording, checked against its true books.

The feed keeps the books; this module only looks at them a few times a second (never per
message) and, at the end, sums up: one JSON object (``--json``) or a table. Where the server
is the local exchange, ``verify_against_sim`` compares each book with the exchange's
``/sim/truth`` at the same update ID (checksum of the top N levels, the core's definition).

Two latencies are reported per symbol, both from the feed's histograms:

- ``receive_to_callback`` ("recv→callback"): from the moment the frame was read off the
  socket to the end of the book's callbacks (decode, validate, apply, ``on_bbo``). The
  view registers a trivial ``on_bbo`` callback, so the figure includes one Python call.
- ``event_to_receive`` ("event→recv"): the exchange's event time ``E`` to the receive wall
  clock. Against Binance this is network delay plus clock skew; against the local
  exchange replaying a recording it compares the recording's old timestamps with now, and
  means nothing (the view says so).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final, Protocol, TextIO

import aiohttp

from tickbook._types import Market
from tickbook.feed import DepthFeed, FeedError, StateEvent

__all__ = [
    "DEMO_SYMBOLS",
    "DemoOptions",
    "LadderView",
    "LineView",
    "NullView",
    "WatchError",
    "WatchOptions",
    "format_ns",
    "make_feed",
    "print_summary",
    "run_demo",
    "run_watch",
    "verify_against_sim",
    "watch",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130

LADDER_INTERVAL: Final = 0.25  # seconds between two redraws of the terminal view
LINE_INTERVAL: Final = 1.0  # seconds between two rounds of plain lines
RATE_WINDOW: Final = 2.0  # messages/s is measured over about this many seconds
VERIFY_TIMEOUT: Final = 3.0  # per symbol: how long to wait for the book and the truth to line up
OLD_EVENT_NS: Final = 86_400 * 10**9  # event→recv beyond a day: the events are a recording's
_SYMBOL: Final = re.compile(r"[A-Z0-9_]{1,40}", re.ASCII)


class WatchError(Exception):
    """The watch cannot run (dead server, unknown symbol, ...): one line, exit status 1."""


@dataclasses.dataclass(frozen=True, slots=True)
class WatchOptions:
    """What ``tickbook watch`` was asked for (validated by ``make_feed`` / the CLI)."""

    symbols: tuple[str, ...]
    market: Market = Market.SPOT
    rest_url: str | None = None  # with stream_url: any host (the local exchange)
    stream_url: str | None = None
    testnet: bool = False
    depth: int = 5  # levels shown per side
    duration: float | None = None  # seconds; None: until interrupted
    speed: str | None = "100ms"  # depth stream cadence; None: the market's default
    snapshot_limit: int | None = None
    checksum_depth: int = 20
    implementation: str | None = None  # "c" / "py"; None: tickbook's default
    verify: bool = False  # compare with the local exchange's /sim/truth at the end


def normalise_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    """Upper-cased, de-duplicated, checked symbol names (``ValueError`` for a malformed one)."""
    out: list[str] = []
    for text in symbols:
        symbol = text.strip().upper()
        if not _SYMBOL.fullmatch(symbol):
            raise ValueError(f"{text!r} is not a symbol name (letters, digits and '_', e.g. BTCUSDT)")
        if symbol not in out:
            out.append(symbol)
    if not out:
        raise ValueError("give at least one symbol")
    return tuple(out)


def make_feed(options: WatchOptions) -> DepthFeed:
    """The ``DepthFeed`` the options describe (``ValueError`` for options it refuses)."""
    if (options.rest_url is None) != (options.stream_url is None):
        raise ValueError("--url and --stream-url go together: give both, or neither")
    if options.testnet and options.rest_url is not None:
        raise ValueError("--testnet picks Binance's testnet hosts; it does not go with --url/--stream-url")
    if options.verify and options.rest_url is None:
        raise ValueError("--verify-against-sim needs the local exchange's --url and --stream-url")
    if options.speed is not None:
        from tickbook.streams import validate_stream_name

        try:
            validate_stream_name(options.market, f"{options.symbols[0].lower()}@depth@{options.speed}")
        except ValueError as exc:
            _, _, why = str(exc).partition(": ")
            why = (why or str(exc)).replace("or none", "or 'default'")
            raise ValueError(f"--speed {options.speed}: {why}") from None
    if options.snapshot_limit is not None:
        from tickbook.limits import FUTURES_DEPTH_LIMITS, depth_limit

        try:
            depth_limit(options.market, options.snapshot_limit)
        except ValueError:
            allowed = ", ".join(map(str, FUTURES_DEPTH_LIMITS))
            raise ValueError(
                f"--snapshot-limit {options.snapshot_limit}: {options.market.value} serves {allowed}"
            ) from None
    for flag, url, schemes in (
        ("--url", options.rest_url, ("http://", "https://")),
        ("--stream-url", options.stream_url, ("ws://", "wss://")),
    ):
        if url is not None and not url.startswith(schemes):
            raise ValueError(f"{flag} {url!r} must start with {' or '.join(schemes)}")
    try:
        return _new_feed(options)
    except ImportError as exc:  # implementation="c" where the extension is not built
        raise ValueError(f"the Cython core is not built here ({exc}); use --impl py") from None


def _new_feed(options: WatchOptions) -> DepthFeed:
    if options.rest_url is not None and options.stream_url is not None:
        return DepthFeed(
            options.market,
            options.symbols,
            rest_url=options.rest_url,
            stream_url=options.stream_url,
            speed=options.speed,
            depth_limit=options.snapshot_limit,
            implementation=options.implementation,
        )
    return DepthFeed(
        options.market,
        options.symbols,
        environment="testnet" if options.testnet else "production",
        speed=options.speed,
        depth_limit=options.snapshot_limit,
        implementation=options.implementation,
    )


# ------------------------------------------------------------------------------ formatting


def format_ns(ns: int | None) -> str:
    """A duration in ns, readably: ``850 ns``, ``5.4 µs``, ``12 ms``, ``3.2 s``, ``2.5 d``."""
    if ns is None:
        return "-"
    if ns < 1_000:
        return f"{ns} ns"
    for unit, size in (("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        value = ns / size
        if value < 1_000 or (unit == "s" and value < 86_400):
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{ns / 86_400e9:,.1f} d"


def format_event_latency(summary: dict[str, Any]) -> str:
    """event→recv p50 for display: beyond a day the event times are a recording's (the
    histogram also stops resolving there), so only that is said."""
    if not summary["count"]:
        return "-"
    if summary["p50"] > OLD_EVENT_NS:
        return "> 1 d"
    return format_ns(summary["p50"])


def _level(level: Sequence[str] | None, price_first: bool) -> str:
    if not level:
        return "-"
    price, qty = level[0], level[1]
    return f"{price} @ {qty}" if price_first else f"{qty} @ {price}"


def _state_label(entry: dict[str, Any]) -> str:
    state = str(entry["state"])
    reason = str(entry.get("reason", "none"))
    return state if reason in ("none", "") else f"{state}({reason})"


class _Rates:
    """Messages per second per symbol over the last ``RATE_WINDOW`` seconds (counted from
    ``start``, when there were none)."""

    def __init__(self, start: float) -> None:
        self._start = start
        self._seen: dict[str, collections.deque[tuple[float, int]]] = {}

    def update(self, symbol: str, now: float, messages: int) -> float:
        history = self._seen.setdefault(symbol, collections.deque([(self._start, 0)]))
        history.append((now, messages))
        while len(history) > 2 and now - history[1][0] >= RATE_WINDOW:
            history.popleft()
        then, before = history[0]
        return (messages - before) / (now - then) if now > then else 0.0


class _Problems(logging.Handler):
    """Collects the feed's warnings (connect failures, refused snapshots, ...) for the view,
    instead of letting Python's last-resort handler print them through the ladder."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.recent: collections.deque[str] = collections.deque(maxlen=20)
        self.count = 0
        self.unseen: collections.deque[str] = collections.deque(maxlen=100)

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            text = record.getMessage().replace("\n", " ")
            self.recent.append(text)
            self.unseen.append(text)
            self.count += 1


@dataclasses.dataclass(slots=True)
class Frame:
    """What a view shows at one moment: the feed's stats, read once."""

    elapsed: float
    stats: dict[str, Any]
    rates: dict[str, float]
    feed: DepthFeed
    events: list[StateEvent]  # state changes since the previous frame
    problems: list[str]  # feed warnings since the previous frame
    recent_problems: list[str]


class View(Protocol):
    interval: float | None

    def start(self, options: WatchOptions, feed: DepthFeed) -> None: ...
    def show(self, frame: Frame) -> None: ...
    def finish(self) -> None: ...


class NullView:
    """No live output (``--quiet``, or ``--json`` without a place to draw)."""

    interval: float | None = None

    def start(self, options: WatchOptions, feed: DepthFeed) -> None:
        pass

    def show(self, frame: Frame) -> None:
        pass

    def finish(self) -> None:
        pass


class LineView:
    """Plain lines, one per symbol, once a second (output that is not a terminal)."""

    interval: float | None = LINE_INTERVAL

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.arrow = _arrow(out)

    def start(self, options: WatchOptions, feed: DepthFeed) -> None:
        self.out.write(
            f"watching {', '.join(options.symbols)} on {feed.market.value} "
            f"({feed.endpoints.rest}, {feed.endpoints.stream})\n"
        )
        self.out.flush()

    def show(self, frame: Frame) -> None:
        write = self.out.write
        for event in frame.events:
            detail = f": {event.detail}" if event.detail else ""
            write(f"{event.symbol} {event.kind.value} at u={event.last_update_id}{detail}\n")
        for text in frame.problems:
            write(f"feed: {text}\n")
        for symbol, s in frame.stats["symbols"].items():
            write(line_of(symbol, s, frame.rates.get(symbol, 0.0), frame.elapsed, self.arrow) + "\n")
        self.out.flush()

    def finish(self) -> None:
        self.out.flush()


def line_of(symbol: str, s: dict[str, Any], rate: float, elapsed: float, arrow: str = "->") -> str:
    """``BTCUSDT synced u=... bid 61685.99 x 1.0087 ask 61686 x 2.29327 msgs=... rate=.../s ...``."""
    cb = s["callback_latency_ns"]
    bid = " x ".join(s["best_bid"]) if s["best_bid"] else "-"
    ask = " x ".join(s["best_ask"]) if s["best_ask"] else "-"
    p50 = format_ns(cb["p50"] if cb["count"] else None).replace(" ", "")
    p99 = format_ns(cb["p99"] if cb["count"] else None).replace(" ", "")
    if arrow != "→":
        p50, p99 = p50.replace("µ", "u"), p99.replace("µ", "u")
    return (
        f"{symbol} {_state_label(s)} u={s['last_update_id']} bid {bid} ask {ask} "
        f"msgs={s['messages']} rate={rate:.0f}/s gaps={s['gaps']} resyncs={s['resyncs']} "
        f"reconnects={s['reconnects']} recv{arrow}callback p50={p50} p99={p99} t={elapsed:.1f}s"
    )


_RESET: Final = "\x1b[0m"
_STYLES: Final = {
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "green": "\x1b[32m",
    "red": "\x1b[31m",
    "yellow": "\x1b[33m",
    "cyan": "\x1b[36m",
}
Segment = tuple[str, str]  # (text, style name or "")


class LadderView:
    """The terminal view: every symbol's ladder, redrawn in place a few times a second with
    plain ANSI (cursor home, clear to end of line / screen); no curses."""

    interval: float | None = LADDER_INTERVAL

    def __init__(self, out: TextIO, depth: int, *, color: bool = True) -> None:
        self.out = out
        self.depth = depth
        self.color = color
        self.arrow = _arrow(out)
        self.title = ""
        self.last_event: dict[str, StateEvent] = {}
        self._widths: dict[str, list[int]] = {}
        self._started = False

    def start(self, options: WatchOptions, feed: DepthFeed) -> None:
        self.title = f"tickbook watch  {feed.market.value}  {feed.endpoints.rest}"
        self.out.write("\x1b[?25l\x1b[2J\x1b[H")  # hide the cursor, clear the screen
        self._started = True
        self.out.flush()

    def show(self, frame: Frame) -> None:
        for event in frame.events:
            self.last_event[event.symbol] = event
        width, height = _terminal_size(self.out)
        lines = self.render(frame, height)
        if len(lines) > height - 1:
            hidden = len(lines) - (height - 2)
            lines = [*lines[: height - 2], [(f"... {hidden} more lines: enlarge the terminal", "dim")]]
        text = "".join(self._fit(line, width) + "\x1b[K\n" for line in lines)
        self.out.write("\x1b[H" + text + "\x1b[J")
        self.out.flush()

    def finish(self) -> None:
        if self._started:
            self.out.write("\x1b[?25h")  # the last frame stays on screen; the cursor is back
            self.out.flush()

    def render(self, frame: Frame, height: int = 1000) -> list[list[Segment]]:
        """The frame as lines of styled segments (plain text if joined without styles). Fewer
        levels are shown when all the symbols would not fit in ``height`` lines."""
        arrow = self.arrow
        symbols = frame.stats["symbols"]
        problems = frame.recent_problems[-3:]
        room = (height - 2 - len(problems)) // max(len(symbols), 1) - 4  # 4 lines besides the levels
        depth = max(1, min(self.depth, room))
        lines: list[list[Segment]] = [
            [(self.title, "bold"), (f"  {frame.elapsed:6.1f} s  (Ctrl-C stops)", "dim")],
        ]
        for symbol, s in symbols.items():
            book = frame.feed.book(symbol)
            state = _state_label(s)
            style = "green" if s["synced"] else ("red" if s["state"] == "out_of_sync" else "yellow")
            lines.append(
                [
                    (f"{symbol:<10} ", "bold"),
                    (f"{state:<8}", style),
                    (
                        f" u={s['last_update_id']}  {frame.rates.get(symbol, 0.0):,.0f} msg/s  "
                        f"gaps {s['gaps']}  resyncs {s['resyncs']}  reconnects {s['reconnects']}",
                        "",
                    ),
                ]
            )
            cb, ev = s["callback_latency_ns"], s["event_latency_ns"]
            old = " (replay)" if ev["count"] and ev["p50"] > OLD_EVENT_NS else ""
            lines.append(
                [
                    (f"  {s['messages']:,} msgs", ""),
                    (
                        f"  recv{arrow}callback p50 {format_ns(cb['p50'] if cb['count'] else None)}  "
                        f"p99 {format_ns(cb['p99'] if cb['count'] else None)}",
                        "cyan",
                    ),
                    (f"  event{arrow}recv {format_event_latency(ev)}{old}", "dim"),
                ]
            )
            event = self.last_event.get(symbol)
            if not s["synced"] and event is not None and event.detail:
                lines.append([(f"  {event.kind.value}: {event.detail}", style)])
            spread = ""
            spread_ticks = book.spread_ticks()
            if spread_ticks is not None:
                spread = f"   spread {book.price_str(spread_ticks)}"
                mid = book.mid()
                if mid:
                    spread += f" ({book.spread() / mid * 1e4:.3g} bps)"
            widths = self._widths.setdefault(symbol, [7, 3, 3, 7])
            lines.extend(_ladder_rows(book.bids_str(depth), book.asks_str(depth), depth, widths, spread))
        for text in problems:
            lines.append([(f"feed: {text}", "yellow")])
        return lines

    def _fit(self, segments: list[Segment], width: int) -> str:
        out: list[str] = []
        room = max(width - 1, 10)
        for text, style in segments:
            if room <= 0:
                break
            piece = text[:room]
            room -= len(piece)
            out.append(f"{_STYLES[style]}{piece}{_RESET}" if style and self.color else piece)
        return "".join(out)


def _ladder_rows(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], depth: int, widths: list[int], note: str = ""
) -> list[list[Segment]]:
    """``qty  bid | ask  qty`` rows, best first, aligned on the prices. ``widths`` (bid qty,
    bid, ask, ask qty) only grow, so the columns do not jump from one frame to the next."""
    for i, values in enumerate(
        ([q for _, q in bids], [p for p, _ in bids], [p for p, _ in asks], [q for _, q in asks])
    ):
        widths[i] = max([widths[i], *map(len, values)])
    bid_q, bid_p, ask_p, ask_q = widths
    rows: list[list[Segment]] = [
        [
            (f"  {'bid qty':>{bid_q}}  {'bid':>{bid_p}} | {'ask':<{ask_p}}  {'ask qty':>{ask_q}}", "dim"),
            (note, ""),
        ]
    ]
    for i in range(depth):
        bid = f"{bids[i][1]:>{bid_q}}  {bids[i][0]:>{bid_p}}" if i < len(bids) else " " * (bid_q + bid_p + 2)
        ask = f"{asks[i][0]:<{ask_p}}  {asks[i][1]:>{ask_q}}" if i < len(asks) else ""
        rows.append([("  ", ""), (bid, "green"), (" | ", "dim"), (ask, "red")])
    return rows


def _arrow(out: TextIO) -> str:
    """The arrow of "recv→callback", or "->" where the output cannot encode it."""
    try:
        "→µ".encode(out.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "→"


def _terminal_size(out: TextIO) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(out.fileno())
    except (OSError, ValueError, AttributeError):
        return 100, 40
    return size.columns or 100, size.lines or 40


def pick_view(out: TextIO, depth: int, *, quiet: bool = False) -> View:
    """The ladder on a terminal (``TERM`` other than dumb), plain lines otherwise."""
    if quiet:
        return NullView()
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and os.environ.get("TERM", "") != "dumb":
        return LadderView(out, depth, color="NO_COLOR" not in os.environ)
    return LineView(out)


# ------------------------------------------------------------------------------ the run


async def watch(
    options: WatchOptions,
    view: View,
    stop: asyncio.Event | None = None,
    *,
    feed: DepthFeed | None = None,
) -> dict[str, Any]:
    """Run the feed for ``options.duration`` seconds (or until ``stop`` is set), showing it on
    ``view``; returns the summary (``summary["interrupted"]``: stopped by ``stop``).

    Raises ``WatchError`` when the feed cannot start (dead server, unknown symbol).
    """
    feed = feed if feed is not None else make_feed(options)
    stop = stop if stop is not None else asyncio.Event()
    problems = _Problems()
    feed_log = logging.getLogger("tickbook")  # the feed, its connections, snapshots and budget
    feed_log.addHandler(problems)
    events: collections.deque[StateEvent] = collections.deque(maxlen=1000)
    feed.on_state(events.append)
    bbo_seen = dict.fromkeys(options.symbols, 0)

    def on_bbo(book: Any) -> None:  # a real (if tiny) callback, so recv→callback includes one
        bbo_seen[book.symbol] += 1

    feed.on_bbo(on_bbo)
    started = time.monotonic()
    deadline = started + options.duration if options.duration is not None else None
    try:
        await _start(feed, stop, options)
        if stop.is_set():
            await feed.stop()
            return {**summarise(feed, options, time.monotonic() - started), "interrupted": True}
        view.start(options, feed)
        rates = _Rates(started)
        try:
            while True:
                now = time.monotonic()
                wait = view.interval if view.interval is not None else 3600.0
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if wait > 0 and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                now = time.monotonic()
                done = stop.is_set() or (deadline is not None and now >= deadline)
                if view.interval is not None:
                    stats = feed.stats()
                    frame = Frame(
                        elapsed=now - started,
                        stats=stats,
                        rates={
                            sym: rates.update(sym, now, s["messages"]) for sym, s in stats["symbols"].items()
                        },
                        feed=feed,
                        events=list(events),
                        problems=list(problems.unseen),
                        recent_problems=list(problems.recent),
                    )
                    events.clear()
                    problems.unseen.clear()
                    view.show(frame)
                if done:
                    break
        finally:
            view.finish()
        elapsed = time.monotonic() - started
        verified = None
        if options.verify and not stop.is_set():
            assert options.rest_url is not None
            verified = await verify_against_sim(feed, options.rest_url, options.checksum_depth)
    finally:
        await feed.stop()  # idempotent: books stay readable
        feed_log.removeHandler(problems)
    summary = summarise(feed, options, elapsed)
    summary["interrupted"] = stop.is_set()
    summary["problems"] = {"count": problems.count, "recent": list(problems.recent)}
    if verified is not None:
        summary["verify"] = verified
    return summary


async def _start(feed: DepthFeed, stop: asyncio.Event, options: WatchOptions) -> None:
    """``feed.start()``, given up if ``stop`` is set meanwhile; failures become ``WatchError``."""
    starting = asyncio.ensure_future(feed.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        return
    exc = starting.exception()
    if exc is None:
        return
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FeedError):
        if "-1121" in text or "Invalid symbol" in text:
            text += (
                f" (is every symbol listed on {feed.market.value}? asked for {', '.join(options.symbols)})"
            )
        raise WatchError(text) from exc
    raise WatchError(f"cannot start the feed on {feed.endpoints.rest}: {type(exc).__name__}: {text}") from exc


def summarise(feed: DepthFeed, options: WatchOptions, elapsed: float) -> dict[str, Any]:
    """The end-of-run summary (the ``--json`` object without ``verify``/``problems``)."""
    stats = feed.stats()
    symbols: dict[str, Any] = {}
    for symbol, s in stats["symbols"].items():
        book = feed.book(symbol)
        symbols[symbol] = {
            "state": s["state"],
            "reason": s["reason"],
            "synced": s["synced"],
            "last_update_id": s["last_update_id"],
            "best_bid": s["best_bid"],
            "best_ask": s["best_ask"],
            "checksum": book.checksum(options.checksum_depth) if book.price_scale is not None else None,
            "checksum_depth": options.checksum_depth,
            "messages": s["messages"],
            "messages_per_s": round(s["messages"] / elapsed, 3) if elapsed > 0 else 0.0,
            "applied": s["applied"],
            "bbo_changes": s["bbo_changes"],
            "gaps": s["gaps"],
            "resyncs": s["resyncs"],
            "reconnects": s["reconnects"],
            "snapshots": s["snapshots"],
            "bad_messages": s["bad_messages"],
            "callback_errors": s["callback_errors"],
            "latency_ns": {
                "event_to_receive": s["event_latency_ns"],
                "receive_to_callback": s["callback_latency_ns"],
            },
        }
    totals = dict(stats["totals"])
    totals["messages"] = sum(e["messages"] for e in symbols.values())
    totals["symbols"] = len(symbols)
    totals["synced"] = sum(1 for e in symbols.values() if e["synced"])
    return {
        "market": feed.market.value,
        "duration_s": round(elapsed, 3),
        "rest_url": feed.endpoints.rest,
        "stream_url": feed.endpoints.stream,
        "speed": options.speed,
        "implementation": feed.implementation,
        "symbols": symbols,
        "totals": totals,
    }


async def verify_against_sim(
    feed: DepthFeed, rest_url: str, depth: int = 20, *, timeout: float = VERIFY_TIMEOUT
) -> dict[str, dict[str, Any]]:
    """Compare every book with the local exchange's ``/sim/truth`` at the same update ID.

    The truth moves while a replay runs, so each symbol is polled (for up to ``timeout``
    seconds, the feed still running) until the book's update ID equals the truth's; then
    the checksums of the top ``depth`` levels must be equal. Per symbol: ``match`` (True,
    False, or None when the IDs never lined up), both IDs and checksums, and ``detail``.
    """
    url = rest_url.rstrip("/") + "/sim/truth"
    results: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for symbol in feed.symbols:
            book = feed.book(symbol)
            give_up = time.monotonic() + timeout
            while True:
                truth = await _truth(session, url, symbol, feed.market.value, depth)
                book_id = book.last_update_id
                if book_id == truth["lastUpdateId"] or time.monotonic() >= give_up:
                    break
                await asyncio.sleep(0.02)
            checksum = book.checksum(depth) if book.price_scale is not None else None
            entry: dict[str, Any] = {
                "match": None,
                "synced": book.synced,
                "book_update_id": book_id,
                "exchange_update_id": truth["lastUpdateId"],
                "book_checksum": checksum,
                "exchange_checksum": truth["checksum"],
                "depth": depth,
            }
            if book_id != truth["lastUpdateId"]:
                entry["detail"] = (
                    f"not compared: the book is at u={book_id}, the exchange at u={truth['lastUpdateId']} "
                    f"(still replaying, or the book is behind)"
                )
            else:
                entry["match"] = checksum == truth["checksum"]
                entry["detail"] = (
                    "top levels equal"
                    if entry["match"]
                    else _first_difference(book.bids_str(depth), book.asks_str(depth), truth)
                )
            results[symbol] = entry
    return results


async def _truth(
    session: aiohttp.ClientSession, url: str, symbol: str, market: str, depth: int
) -> dict[str, Any]:
    params = {"symbol": symbol, "limit": str(depth), "market": market}
    try:
        async with session.get(url, params=params) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise WatchError(f"cannot read the true book from {url}: {' '.join(str(exc).split())}") from exc
    if response.status == 404:
        raise WatchError(
            f"{url} does not exist: --verify-against-sim needs the local exchange (tickbook sim)"
        )
    if response.status != 200:
        raise WatchError(
            f"{url}?symbol={symbol}: HTTP {response.status}: {body[:200].decode(errors='replace')}"
        )
    try:
        truth: dict[str, Any] = json.loads(body)
        int(truth["lastUpdateId"])
        int(truth["checksum"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WatchError(f"{url}?symbol={symbol}: not a true-book answer: {body[:200]!r}") from exc
    return truth


def _first_difference(bids: list[tuple[str, str]], asks: list[tuple[str, str]], truth: dict[str, Any]) -> str:
    for side, mine, theirs in (("bid", bids, truth["bids"]), ("ask", asks, truth["asks"])):
        for i in range(max(len(mine), len(theirs))):
            a = list(mine[i]) if i < len(mine) else None
            b = list(theirs[i]) if i < len(theirs) else None
            if a != b:
                return f"{side} level {i + 1}: book {a}, exchange {b}"
    return "checksums differ but the levels are equal (checksum definitions differ?)"


# ------------------------------------------------------------------------------ output


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    """The summary as a table, one row per symbol, then the comparison with the exchange."""
    arrow = _arrow(out)
    out.write(
        f"watched {summary['market']} for {summary['duration_s']:.1f} s "
        f"({summary['rest_url']}, {summary['stream_url']}, depth stream @{summary['speed'] or 'default'})\n"
    )
    depth = next((e["checksum_depth"] for e in summary["symbols"].values()), 20)
    headers = [
        "symbol",
        "state",
        "last update",
        "best bid",
        "best ask",
        f"checksum@{depth}",
        "msgs",
        "msgs/s",
        "gaps/resyncs/reconn",
        f"recv{arrow}callback p50/p99",
        f"event{arrow}recv p50",
    ]
    rows = [headers]
    old_events = False
    for symbol, e in summary["symbols"].items():
        cb = e["latency_ns"]["receive_to_callback"]
        ev = e["latency_ns"]["event_to_receive"]
        old_events = old_events or (ev["count"] > 0 and ev["p50"] > OLD_EVENT_NS)
        rows.append(
            [
                symbol,
                _state_label(e),
                str(e["last_update_id"]),
                _level(e["best_bid"], False),
                _level(e["best_ask"], True),
                "-" if e["checksum"] is None else str(e["checksum"]),
                f"{e['messages']:,}",
                f"{e['messages_per_s']:,.0f}",
                f"{e['gaps']}/{e['resyncs']}/{e['reconnects']}",
                f"{format_ns(cb['p50'])} / {format_ns(cb['p99'])}" if cb["count"] else "-",
                format_event_latency(ev),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    left = {0, 1, 4}
    for row in rows:
        cells = [
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")
    t = summary["totals"]
    out.write(
        f"{t['synced']}/{t['symbols']} books synced; {t['messages']:,} messages, {t['gaps']} gaps, "
        f"{t['resyncs']} resyncs, {t['reconnects']} reconnects, {t['bad_messages']} bad messages\n"
    )
    out.write(
        f"recv{arrow}callback: socket read to the end of the book's callbacks (decode, validate, apply, "
        f"on_bbo), this process's clock\n"
    )
    if old_events:
        out.write(
            f"event{arrow}recv: the exchange's event time E to now; these events carry times far in the "
            f"past (a replay), so it is not a latency here\n"
        )
    problems = summary.get("problems", {})
    if problems.get("count"):
        out.write(f"feed warnings: {problems['count']}, last: {problems['recent'][-1]}\n")
    verified = summary.get("verify")
    if verified:
        out.write(f"compared with the exchange's true books (/sim/truth, top {depth} levels):\n")
        width = max(len(symbol) for symbol in verified)
        for symbol, v in verified.items():
            if v["match"] is True:
                text = f"equal at u={v['book_update_id']}: checksum {v['book_checksum']} on both sides"
            elif v["match"] is False:
                text = (
                    f"DIFFERENT at u={v['book_update_id']}: checksum {v['book_checksum']}, "
                    f"exchange {v['exchange_checksum']}; {v['detail']}"
                )
            else:
                text = v["detail"]
            synced = "" if v["synced"] else " (book not synced)"
            out.write(f"  {symbol:<{width}}  {text}{synced}\n")
    if summary.get("interrupted"):
        out.write("interrupted\n")


def succeeded(summary: dict[str, Any]) -> bool:
    """Every book synced at the end, and every comparison with the exchange (if any) matched."""
    if not all(e["synced"] for e in summary["symbols"].values()):
        return False
    return all(v["match"] is True for v in summary.get("verify", {}).values())


# ------------------------------------------------------------------------------ entries


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - no uvloop on this platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _install_stop(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` (a second SIGINT interrupts the way Python does)."""
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        stop.set()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGINT)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, request_stop)


def run_watch(
    options: WatchOptions,
    *,
    json_out: bool = False,
    quiet: bool = False,
    strict: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``tickbook watch``: the view, then the summary; the exit status.

    ``ValueError`` for options the feed refuses (the CLI's usage error); ``WatchError`` when
    the feed cannot start (the CLI's one-line error, status 1).
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    feed = make_feed(options)
    view = pick_view(err if json_out else out, options.depth, quiet=quiet)

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        _install_stop(stop)
        return await watch(options, view, stop, feed=feed)

    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        summary = runner.run(main())
    if json_out:
        out.write(json.dumps(summary) + "\n")
    else:
        print_summary(summary, out)
    out.flush()
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    if strict and not succeeded(summary):
        return EXIT_FAILED
    return EXIT_OK


# ------------------------------------------------------------------------------ the demo

DEMO_SYMBOLS: Final = ("BTCUSDT", "ETHUSDT", "DOTUSDT")
DEMO_RECORDING: Final = "binance_spot_20210404.ws.jsonl"  # cryptofeed, 91 s, spot, 3 symbols
DEMO_RECORDED_SECONDS: Final = 91.0


@dataclasses.dataclass(frozen=True, slots=True)
class DemoOptions:
    duration: float = 8.0
    replay_speed: float = 15.0  # times the recorded pace: 91 s of recording in about 6 s
    depth: int = 5
    checksum_depth: int = 20
    data_dir: Path | None = None  # the cryptofeed recordings; default: the repository's


def demo_data_dir() -> Path:
    """``data/real/cryptofeed`` of the repository this package runs from (or of the cwd)."""
    here = Path(__file__).resolve().parents[2] / "data/real/cryptofeed"
    for candidate in (here, Path.cwd() / "data/real/cryptofeed"):
        if (candidate / DEMO_RECORDING).is_file():
            return candidate
    return here


def sim_command(options: DemoOptions) -> list[str]:
    """The ``tickbook sim`` command line serving the demo recording (and its snapshots)."""
    data = options.data_dir if options.data_dir is not None else demo_data_dir()
    recording = data / DEMO_RECORDING
    if not recording.is_file():
        raise WatchError(f"the demo recording is not here: {recording} (run the demo from a clone)")
    stem = DEMO_RECORDING.removesuffix(".ws.jsonl")
    command = [sys.executable, "-m", "tickbook", "sim", "--replay", str(recording)]
    for symbol in DEMO_SYMBOLS:
        command += ["--snapshot", f"{symbol}={data / f'{stem}_{symbol}_snapshot.json'}"]
    command += ["--speed", f"{options.replay_speed:g}", "--wait-for-client", "--port", "0"]
    return command


def _die_with_parent_hook() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` giving the exchange SIGTERM if the demo dies without stopping it
    (``prctl(PR_SET_PDEATHSIG)``, looked up here so the child only makes the call)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - an unusual libc
        return None
    sigterm = int(signal.SIGTERM)

    def hook() -> None:  # pragma: no cover - runs in the child, between fork and exec
        prctl(1, sigterm)  # 1: PR_SET_PDEATHSIG

    return hook


async def _start_sim(
    command: list[str], log_file: IO[bytes]
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Start ``tickbook sim`` and read its first line (its URLs)."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log_file,
        preexec_fn=_die_with_parent_hook(),
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
    except TimeoutError:
        line = b""
    try:
        urls: dict[str, Any] = json.loads(line)
        if not (isinstance(urls["rest"], str) and isinstance(urls["ws"], str)):
            raise TypeError("no URLs")
    except (ValueError, KeyError, TypeError):
        await _stop_sim(proc)
        log_file.seek(0)
        why = " ".join(log_file.read().decode(errors="replace").split())[-300:]
        raise WatchError(f"the local exchange did not start: {why or 'no output'}") from None
    return proc, urls


async def _stop_sim(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def run_demo(
    options: DemoOptions, *, json_out: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``tickbook demo``: the local exchange replays a real 2021 recording of BTCUSDT, ETHUSDT
    and DOTUSDT at ``replay_speed`` x; ``tickbook watch`` follows it for ``duration`` s; every
    book is then compared with the exchange's true book. 0 when all are synced and equal."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    command = sim_command(options)
    say = err if json_out else out

    async def main() -> tuple[dict[str, Any], str]:
        stop = asyncio.Event()
        _install_stop(stop)
        with tempfile.TemporaryFile() as log_file:
            proc, urls = await _start_sim(command, log_file)
            try:
                say.write(
                    f"local exchange: {urls['rest']} {urls['ws']} replaying {DEMO_RECORDING} "
                    f"({', '.join(DEMO_SYMBOLS)}, {DEMO_RECORDED_SECONDS:.0f} s recorded on 2021-04-04) "
                    f"at {options.replay_speed:g}x\n"
                    f"tickbook watch {' '.join(DEMO_SYMBOLS)} --url {urls['rest']} --stream-url {urls['ws']} "
                    f"--duration {options.duration:g} --verify-against-sim\n"
                )
                say.flush()
                watch_options = WatchOptions(
                    symbols=DEMO_SYMBOLS,
                    market=Market.SPOT,
                    rest_url=urls["rest"],
                    stream_url=urls["ws"],
                    depth=options.depth,
                    duration=options.duration,
                    checksum_depth=options.checksum_depth,
                    verify=True,
                )
                view = pick_view(say, options.depth)
                summary = await watch(watch_options, view, stop)
            finally:
                await _stop_sim(proc)
            log_file.seek(0)
            sim_log = log_file.read().decode(errors="replace")
        return summary, sim_log

    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        summary, sim_log = runner.run(main())
    sim_summary = next(
        (
            line.removeprefix("tickbook sim: ")
            for line in sim_log.splitlines()
            if line.startswith("tickbook sim: ")
        ),
        None,
    )
    if sim_summary is not None:
        with contextlib.suppress(ValueError):
            summary["exchange"] = json.loads(sim_summary)
    if json_out:
        out.write(json.dumps(summary) + "\n")
    else:
        print_summary(summary, out)
        exchange = summary.get("exchange")
        if isinstance(exchange, dict):
            out.write(f"local exchange: served {exchange.get('events', '?')} events, stopped\n")
        ok = succeeded(summary)
        out.write(
            "demo ok: every book synced and equal to the exchange's\n"
            if ok
            else "demo FAILED: a book is not synced or differs from the exchange's (see above)\n"
        )
    out.flush()
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_OK if succeeded(summary) else EXIT_FAILED
