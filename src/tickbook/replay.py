"""Replay recorded market data through the engine's own path: decode -> sync -> book.

A replay is the strongest test the engine gets: real exchange traffic, in the
order it arrived, through the same decoder and the same book (with its sync
rules) as the live feed, and then checked against what the exchange itself
said the top of book was (``bookTicker``). Nothing here re-implements a sync
rule: every decision (stale, bridge, gap, crossed) is the book's.

Snapshots reach the books two ways:

* inline, in timestamped recordings, at the moment the REST response arrived:
  applied there, so events received before it are in the book's buffer and
  are replayed by ``apply_snapshot`` exactly as in a live run;
* from separate files (plain JSONL recordings): applied right before the first
  depth message of their symbol, so the book starts ``BRIDGING`` and drops the
  stale events itself until one straddles the snapshot.

Which symbol a snapshot belongs to is decided by the rules in
``tickbook.recording`` (explicit, file name, nearest update ID).

A recording cannot fetch a new snapshot: after a gap (or a snapshot too old to
bridge) the book stays ``OUT_OF_SYNC`` and buffers until the recording holds
another snapshot for it. That is what ``drop_depth`` demonstrates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import tickbook
from tickbook._types import Applied, Market, SnapshotResult
from tickbook.decode import BOOK_TICKER, DEPTH, SNAPSHOT, DecodeError, StreamDecoder
from tickbook.recording import (
    InlineSnapshotAttributor,
    Record,
    RecordingError,
    SnapshotFile,
    attribute_snapshot_file,
    read_records,
)

__all__ = ["Replay", "impl_name", "replay_files"]

Book = Any  # an OrderBook of either implementation (same API, see _book.pyi)
Top = tuple[tuple[int, int] | None, tuple[int, int] | None]  # (best bid, best ask) in ticks

_SAMPLES = 10  # error / mismatch details kept for the summary


def impl_name(impl: type) -> str:
    """``"c"`` for the Cython core, ``"py"`` for the reference book, else the class's dotted name."""
    module = getattr(impl, "__module__", "")
    if module == "tickbook._book":
        return "c"
    if module == "tickbook._book_py":
        return "py"
    return f"{module}.{getattr(impl, '__qualname__', impl.__name__)}"


def _top(book: Book) -> Top:
    return book.best_bid_ticks(), book.best_ask_ticks()


class _TopCheck:
    """Compare the replayed top of book with the exchange's bookTicker at the same update ID.

    A bookTicker's ``u`` is the book update ID it describes. When a depth event
    with that same ``u`` was applied (and the book is synced), the book's best
    bid and ask, price and quantity, must equal the ticker's. Tickers arrive
    before or after the depth event with their ``u``, so both sides wait:
    tickers by ``u`` until the event comes, the book's top at each applied
    ``u`` until a ticker asks for it. Both are bounded (``history``); a ticker
    whose ``u`` is below the last applied ``u`` without having matched can
    never match (events only move forward) and is discarded.

    Events applied inside ``apply_snapshot`` (the buffer replayed after a
    snapshot) are observed only at the end of that replay, at the book's
    ``last_update_id``; the tops between them are not visible from outside.
    """

    __slots__ = ("history", "matches", "mismatches", "pending", "seen")

    def __init__(self, history: int) -> None:
        self.history = history
        self.pending: dict[int, list[Any]] = {}  # u -> tickers waiting for the depth event with that u
        self.seen: dict[int, Top] = {}  # u -> the synced book's top right after applying it
        self.matches = 0
        self.mismatches = 0

    def on_applied(self, u: int, book: Book, samples: list[dict[str, Any]]) -> None:
        top = _top(book)
        seen = self.seen
        seen[u] = top
        if len(seen) > self.history:
            del seen[next(iter(seen))]
        pending = self.pending
        if pending:
            waiting = pending.pop(u, None)
            if waiting is not None:
                for ticker in waiting:
                    self._compare(ticker, top, book, samples)
            while pending:  # oldest first: drop tickers that this event has passed
                oldest = next(iter(pending))
                if oldest >= u:
                    break
                del pending[oldest]

    def on_ticker(self, ticker: Any, book: Book | None, samples: list[dict[str, Any]]) -> None:
        top = self.seen.get(ticker.u)
        if top is not None and book is not None:
            self._compare(ticker, top, book, samples)
            return
        waiting = self.pending.get(ticker.u)
        if waiting is None:
            if len(self.pending) >= self.history:
                del self.pending[next(iter(self.pending))]
            self.pending[ticker.u] = [ticker]
        else:
            waiting.append(ticker)

    def _compare(self, ticker: Any, top: Top, book: Book, samples: list[dict[str, Any]]) -> None:
        try:
            expected: Top = (
                (book.parse_price(ticker.b), book.parse_qty(ticker.B)),
                (book.parse_price(ticker.a), book.parse_qty(ticker.A)),
            )
        except ValueError:  # more decimals than the book's scale: cannot be equal
            expected = (None, None)
        if expected == top:
            self.matches += 1
            return
        self.mismatches += 1
        if len(samples) < _SAMPLES:

            def side(level: tuple[int, int] | None) -> list[str] | None:
                return None if level is None else [book.price_str(level[0]), book.qty_str(level[1])]

            samples.append(
                {
                    "symbol": ticker.s,
                    "u": ticker.u,
                    "book_bid": side(top[0]),
                    "book_ask": side(top[1]),
                    "ticker_bid": [ticker.b, ticker.B],
                    "ticker_ask": [ticker.a, ticker.A],
                }
            )


class _Symbol:
    """Per-symbol replay state: the book and what the replay counted around it."""

    __slots__ = (
        "book",
        "crossed_at",
        "depth_messages",
        "dropped",
        "errors",
        "gap_at",
        "has_snapshot",
        "state",
        "symbol",
    )

    def __init__(self, symbol: str, book: Book) -> None:
        self.symbol = symbol
        self.book = book
        self.depth_messages = 0  # depth messages of this symbol seen (dropped one included)
        self.dropped = 0  # dropped on purpose (drop_depth)
        self.errors = 0  # messages the book refused (bad numbers, bad levels, crossed snapshot)
        self.gap_at: list[int] = []  # depth message numbers (1-based) where a gap was detected
        self.crossed_at: list[int] = []  # depth message numbers whose update would have crossed the book
        self.has_snapshot = False  # a snapshot was given to this book (or is no longer looked for)
        self.state = book.state  # last state reported to on_state


class Replay:
    """Feed recorded messages through a decoder and one ``OrderBook`` per symbol.

    ``market``: spot / usdm / coinm, inferred from the first depth message when
    None. ``impl``: the ``OrderBook`` class (default ``tickbook.OrderBook``).
    ``snapshots``: separate snapshot files (JSONL recordings). ``drop_depth=N``
    drops the N-th depth message of every symbol (1-based), to show gap
    detection. ``check_bookticker`` compares the top of book with bookTicker
    messages at equal update IDs. ``on_bbo(book)`` is called whenever the best
    bid or ask (price or quantity) changed; ``self.time`` is then the receive
    time of the record being replayed. ``on_state(book)`` is called whenever a
    book's sync state changes (synced, out of sync with ``book.reason``, ...).
    ``book_options`` go to every book's
    constructor (``max_depth``, ``buffer_limit``, ...).

    Bad input never stops a replay: a message that does not decode, or that the
    book refuses, is counted (``errors``) and the replay goes on.
    """

    def __init__(
        self,
        *,
        market: Market | str | None = None,
        impl: type | None = None,
        snapshots: Sequence[SnapshotFile] = (),
        drop_depth: int | None = None,
        check_bookticker: bool = False,
        on_bbo: Callable[[Book], object] | None = None,
        on_state: Callable[[Book], object] | None = None,
        book_options: Mapping[str, Any] | None = None,
        history: int = 100_000,
    ) -> None:
        if drop_depth is not None and drop_depth < 1:
            raise ValueError(f"drop_depth counts from 1, got {drop_depth}")
        self.market: Market | None = Market.parse(market) if market is not None else None
        self.decoder = StreamDecoder(self.market)
        self.impl: type = impl if impl is not None else tickbook.OrderBook
        self.drop_depth = drop_depth
        self.check_bookticker = check_bookticker
        self.on_bbo = on_bbo
        self.on_state = on_state
        self.book_options = dict(book_options or {})
        self.history = history
        self.time: int | None = None  # receive time of the record being replayed
        self.record: Record | None = None  # the record being replayed, when run() reads records
        self.records = 0
        self.depth_messages = 0
        self.book_tickers = 0
        self.snapshots = 0  # snapshot messages / files seen (inline or separate)
        self.other = 0
        self.errors = 0  # errors not tied to a symbol: undecodable lines, unreadable files
        self.error_samples: list[str] = []
        self.mismatch_samples: list[dict[str, Any]] = []
        self.elapsed = 0.0
        self._symbols: dict[str, _Symbol] = {}
        self._checks: dict[str, _TopCheck] = {}
        self._files = list(snapshots)  # separate snapshot files not yet given to a book
        self._inline = InlineSnapshotAttributor()
        self._waiting: dict[str, list[tuple[Any, int | None]]] = {}  # symbol -> snapshots before its book
        self._unplaced: list[tuple[int, Any]] = []  # (lastUpdateId, snapshot) seen before any depth
        self._first_symbol: str | None = None

    # ------------------------------------------------------------------ access

    @property
    def books(self) -> dict[str, Book]:
        """The books, by symbol, in order of first appearance."""
        return {s: st.book for s, st in self._symbols.items()}

    # ----------------------------------------------------------------- feeding

    def run(self, records: Iterable[Record]) -> dict[str, Any]:
        """Replay every record, then return ``summary()``. Time spent here is ``elapsed_seconds``."""
        start = time.perf_counter()
        feed = self.feed
        try:
            for record in records:
                self.record = record
                feed(record.data, record.time, symbol=record.symbol, limit=record.limit)
        finally:
            self.elapsed += time.perf_counter() - start
        return self.summary()

    def run_files(self, paths: Iterable[str]) -> dict[str, Any]:
        """Replay files in order as one recording; an unreadable file is counted as an error."""
        return self.run(read_records(paths, on_error=self._recording_error))

    def feed(
        self,
        data: bytes | bytearray | memoryview,
        recv_time: int | None = None,
        *,
        symbol: str | None = None,
        limit: int | None = None,
    ) -> None:
        """Replay one raw message received at ``recv_time`` (the recorder's integer timestamp).

        ``symbol``/``limit`` describe a REST snapshot when the recording says
        which symbol and depth limit it was requested for.
        """
        self.records += 1
        self.time = recv_time
        try:
            msg = self.decoder.decode(data)
        except DecodeError as exc:
            self._error(None, exc)
            return
        kind = msg.kind
        if kind == DEPTH:
            self.depth_messages += 1
            self._on_depth(msg.data)
        elif kind == BOOK_TICKER:
            self.book_tickers += 1
            if self.check_bookticker:
                self._on_ticker(msg.data)
        elif kind == SNAPSHOT:
            self.snapshots += 1
            self._on_inline_snapshot(msg.data, symbol, limit)
        else:
            self.other += 1

    # ---------------------------------------------------------------- internals

    def _recording_error(self, exc: RecordingError) -> None:
        self._error(None, exc)

    def _error(self, st: _Symbol | None, exc: BaseException) -> None:
        if st is None:
            self.errors += 1
        else:
            st.errors += 1
        if len(self.error_samples) < _SAMPLES:
            rec = self.record
            at = f"{rec.source}:{rec.line}" if rec is not None and rec.source else f"record {self.records}"
            where = f" {st.symbol}" if st is not None else ""
            self.error_samples.append(f"{at}:{where} {type(exc).__name__}: {exc}")

    def _symbol(self, symbol: str) -> _Symbol:
        market = self.market if self.market is not None else self.decoder.market
        book = self.impl(symbol, market if market is not None else Market.SPOT, **self.book_options)
        st = self._symbols[symbol] = _Symbol(symbol, book)
        if self._first_symbol is None:
            self._first_symbol = symbol
        return st

    def _on_depth(self, ev: Any) -> None:
        symbol: str = ev.s
        st = self._symbols.get(symbol)
        if st is None:
            st = self._symbol(symbol)
        st.depth_messages += 1
        n = st.depth_messages
        self._inline.saw_depth(symbol, ev.u)
        if not st.has_snapshot:
            self._first_snapshot(st, ev.u)
        if n == self.drop_depth:
            st.dropped += 1
            return
        book = st.book
        try:
            result = book.apply_event(ev)
        except ValueError as exc:  # BookError, DecimalError, LevelsFormatError
            self._error(st, exc)
            return
        if result & Applied.APPLIED:
            if self.check_bookticker and book.synced:
                check = self._checks.get(symbol)
                if check is None:
                    check = self._checks[symbol] = _TopCheck(self.history)
                check.on_applied(ev.u, book, self.mismatch_samples)
            if result & Applied.BBO_CHANGED and self.on_bbo is not None:
                self._notify(st)
        elif result & Applied.GAP:
            st.gap_at.append(n)
        elif result & Applied.CROSSED:
            st.crossed_at.append(n)
        if self.on_state is not None and book.state is not st.state:
            self._notify_state(st)

    def _first_snapshot(self, st: _Symbol, u: int) -> None:
        """Before the first depth message of a symbol: give its book the snapshot waiting for it."""
        waiting = self._waiting.pop(st.symbol, None)
        if waiting:
            st.has_snapshot = True
            for snap, limit in waiting:
                self._apply_snapshot(st, snap, limit)
            return
        if self._files:
            i = attribute_snapshot_file(st.symbol, self._files, first_symbol=st.symbol == self._first_symbol)
            if i is not None:
                st.has_snapshot = True
                file = self._files.pop(i)
                self.snapshots += 1
                try:
                    msg = self.decoder.decode(file.data)
                except DecodeError as exc:
                    self._error(st, exc)
                    return
                if msg.kind != SNAPSHOT:
                    self._error(st, DecodeError(f"{file.path} is not a REST depth snapshot", file.data))
                    return
                self._apply_snapshot(st, msg.data, None)
                return
        if self._unplaced:
            st.has_snapshot = True
            i = InlineSnapshotAttributor.claim(self._unplaced, u)
            _, snap = self._unplaced.pop(i)
            self._apply_snapshot(st, snap, None)

    def _on_inline_snapshot(self, snap: Any, symbol: str | None, limit: int | None) -> None:
        if symbol is None:
            symbol = self._inline.attribute(snap.lastUpdateId)
            if symbol is None:  # no depth event yet: the first symbol without a snapshot takes it
                self._unplaced.append((snap.lastUpdateId, snap))
                return
        st = self._symbols.get(symbol)
        if st is None:  # named (cryptofeed URL) before its first depth message
            self._waiting.setdefault(symbol, []).append((snap, limit))
            return
        st.has_snapshot = True
        self._apply_snapshot(st, snap, limit)

    def _apply_snapshot(self, st: _Symbol, snap: Any, limit: int | None) -> None:
        book = st.book
        before = _top(book)
        gaps = book.stats()["gaps"]
        try:
            result = book.apply_snapshot(snap.lastUpdateId, snap.bids, snap.asks, limit=limit)
        except ValueError as exc:
            self._error(st, exc)
            return
        if result == SnapshotResult.STALE:
            return  # counted by the book (stale_snapshots); a recording cannot fetch another
        if book.stats()["gaps"] > gaps:  # found while replaying the buffer: placed at the snapshot
            st.gap_at.append(st.depth_messages)
        if self.check_bookticker and book.synced:
            check = self._checks.get(st.symbol)
            if check is None:
                check = self._checks[st.symbol] = _TopCheck(self.history)
            check.on_applied(book.last_update_id, book, self.mismatch_samples)
        if self.on_state is not None and book.state is not st.state:
            self._notify_state(st)
        if self.on_bbo is not None and _top(book) != before:
            self._notify(st)

    def _on_ticker(self, ticker: Any) -> None:
        symbol: str = ticker.s
        check = self._checks.get(symbol)
        if check is None:
            check = self._checks[symbol] = _TopCheck(self.history)
        st = self._symbols.get(symbol)
        check.on_ticker(ticker, st.book if st is not None else None, self.mismatch_samples)

    def _notify_state(self, st: _Symbol) -> None:
        assert self.on_state is not None
        st.state = st.book.state
        try:
            self.on_state(st.book)
        except Exception as exc:  # like on_bbo: counted, never stops the replay
            self._error(st, exc)

    def _notify(self, st: _Symbol) -> None:
        assert self.on_bbo is not None
        try:
            self.on_bbo(st.book)
        except Exception as exc:  # a callback that raises is counted; it never stops the replay
            self._error(st, exc)

    # ----------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        """Everything the replay counted, per symbol and in total, as plain JSON-able data.

        Per symbol, ``applied``/``stale``/``buffered``/``gaps``/``crossed``/
        ``bbo_changes`` are the book's own counters (they include the events
        replayed from its buffer at a snapshot); ``gap_at`` lists the 1-based
        depth message numbers where gaps were found (a gap found while
        replaying the buffer is placed at the last depth message before the
        snapshot); ``resyncs`` counts snapshots applied after the first.
        ``ok`` is False when anything went wrong: a bookTicker mismatch, a gap,
        a snapshot that could not be bridged, a crossed book, an error, a
        snapshot file that no symbol claimed, or a book not in sync at the end;
        ``problems`` says which.
        """
        symbols: dict[str, Any] = {}
        problems: list[str] = []
        errors = self.errors
        for symbol, st in self._symbols.items():
            book = st.book
            stats = book.stats()
            check = self._checks.get(symbol)
            bid = book.best_bid_str()
            ask = book.best_ask_str()
            entry = {
                "market": book.market.value,
                "depth_messages": st.depth_messages,
                "dropped": st.dropped,
                "applied": stats["applied"],
                "stale": stats["stale"],
                "buffered": stats["buffered"],
                "gaps": stats["gaps"],
                "gap_at": list(st.gap_at),
                "no_bridge": stats["no_bridge"],
                "resyncs": max(0, stats["snapshots"] - 1),
                "snapshots": stats["snapshots"],
                "stale_snapshots": stats["stale_snapshots"],
                "crossed": stats["crossed"],
                "crossed_at": list(st.crossed_at),
                "bbo_changes": stats["bbo_changes"],
                "errors": st.errors,
                "bookticker_matches": check.matches if check is not None else 0,
                "bookticker_mismatches": check.mismatches if check is not None else 0,
                "best_bid": list(bid) if bid is not None else None,
                "best_ask": list(ask) if ask is not None else None,
                "bid_levels": book.bid_count,
                "ask_levels": book.ask_count,
                "state": book.state.name,
                "reason": book.reason.name,
                "reason_detail": book.reason_detail,
                "last_update_id": book.last_update_id,
                "checksum": book.checksum(10),
            }
            symbols[symbol] = entry
            for key in ("bookticker_mismatches", "gaps", "no_bridge", "crossed", "errors"):
                if entry[key]:
                    problems.append(f"{symbol}: {key.replace('_', ' ')} {entry[key]}")
            if not book.synced:
                problems.append(f"{symbol}: not in sync at the end ({entry['state']}, {entry['reason']})")
        for check_symbol, check in self._checks.items():
            if check_symbol not in symbols and check.mismatches:
                problems.append(f"{check_symbol}: bookticker mismatches {check.mismatches}")
        unused = [f.path for f in self._files] + [f"inline snapshot {lid}" for lid, _ in self._unplaced]
        unused += [f"{s} snapshot (no depth message)" for s in self._waiting]
        if unused:
            errors += len(unused)
            problems.append("snapshot never used (no matching depth symbol): " + ", ".join(unused))
        if self.errors:
            problems.append(f"{self.errors} record(s) could not be read or decoded")
        depth = self.depth_messages
        return {
            "impl": impl_name(self.impl),
            "market": self.decoder.market.value if self.decoder.market is not None else None,
            "records": self.records,
            "depth_messages": depth,
            "book_tickers": self.book_tickers,
            "snapshots": self.snapshots,
            "other": self.other,
            "errors": errors,
            "error_samples": list(self.error_samples),
            "unused_snapshots": unused,
            "bookticker_mismatch_samples": list(self.mismatch_samples),
            "symbols": symbols,
            "elapsed_seconds": self.elapsed,
            "messages_per_second": depth / self.elapsed if self.elapsed > 0 else 0.0,
            "ok": not problems,
            "problems": problems,
        }


def replay_files(
    paths: Iterable[str],
    *,
    snapshots: Iterable[str | tuple[str | None, str]] = (),
    **options: Any,
) -> dict[str, Any]:
    """Replay recording files in order and return the summary (see ``Replay`` for the options).

    ``snapshots`` are separate snapshot files: a path, or ``(symbol, path)``.
    """
    files = []
    for item in snapshots:
        symbol, path = (None, item) if isinstance(item, str) else item
        files.append(SnapshotFile.load(path, symbol))
    return Replay(snapshots=files, **options).run_files(paths)
