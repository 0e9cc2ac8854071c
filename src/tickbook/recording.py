"""Reading and writing recorded market data.

Formats read (detected per line, so files may even be mixed):

* **timestamped lines** (tickbook's own recording format, the one hftbacktest's
  collector writes): ``<receive-time> <raw JSON>`` per line. The time is an
  integer as the recorder wrote it (nanoseconds in the 2024 hftbacktest files,
  microseconds in its 2023 files). The JSON is a combined-stream message, or a
  bare REST depth snapshot written inline at the moment the response arrived.
* **plain JSONL**: one raw message per line (combined-stream wrapper), no time.
  Snapshots then come from separate one-line files (``SnapshotFile``).
* **cryptofeed raw recorder** lines: ``<unix-seconds>: <raw JSON>``, and REST
  lines ``<url> -> <unix-seconds>: <body>`` whose URL names the symbol and the
  ``limit``; the ``wss://... <-> ...`` header and ``configuration:`` lines are
  skipped. Times are converted to integer nanoseconds.

Any file may be gzip-compressed; gzip is detected by its magic bytes, not the
name. Several files given in order are one continuous recording (a recorder
that rotates files per day continues the same connection across them).
Records are produced lazily, line by line: a day of depth data never has to
fit in memory.

Snapshot symbol attribution. A REST depth snapshot carries no symbol, so a
replay has to be told or has to work out which book it belongs to:

1. an explicit ``SYMBOL=FILE`` (``--snapshot BTCUSDT=snap.json``) wins;
2. otherwise a separate snapshot file belongs to the depth symbol named in its
   file name (any ``_``/``-``/``.``-separated token, case-insensitive:
   ``binance_spot_20210404_BTCUSDT_snapshot.json``, ``..._btcusdt_20240808_snapshot.json``);
   a single snapshot file whose name names no symbol goes to the first depth
   symbol of the recording;
3. an inline snapshot (a bare body between stream messages) goes to the only
   depth symbol seen so far in the recording; with several, to the symbol
   whose most recent depth event's ``u`` is nearest the snapshot's
   ``lastUpdateId`` (a snapshot is taken from the live book, so its ID sits
   next to that symbol's current stream position; IDs of different symbols
   are unrelated counters and are, in practice, far apart). An inline
   snapshot seen before any depth event waits for the first depth event of a
   symbol that has no snapshot yet (``InlineSnapshotAttributor``).
   A cryptofeed REST line names its symbol in the URL, which is used as is.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "InlineSnapshotAttributor",
    "Record",
    "RecordingError",
    "RecordingWriter",
    "SnapshotFile",
    "attribute_snapshot_file",
    "iter_lines",
    "open_binary",
    "parse_line",
    "parse_snapshot_arg",
    "read_records",
    "time_to_ns",
]

GZIP_MAGIC = b"\x1f\x8b"

PathLike = str | os.PathLike[str]


class RecordingError(OSError):
    """A recording file that cannot be read (missing, unreadable, or a corrupt gzip stream)."""


class Record(NamedTuple):
    """One recorded message."""

    time: int | None  # receive time as the recorder wrote it; None in plain JSONL
    data: bytes  # the raw JSON message, exactly as received
    source: str = ""  # file it came from
    line: int = 0  # 1-based line number in that file
    symbol: str | None = None  # symbol a REST snapshot was requested for, when the line says so
    limit: int | None = None  # the ``limit`` that snapshot was requested with, when known


def open_binary(path: PathLike) -> io.BufferedIOBase:
    """Open a file for reading bytes, transparently gunzipping it if it starts with the gzip magic."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
        if magic == GZIP_MAGIC:
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise RecordingError(f"cannot open {os.fspath(path)}: {exc.strerror or exc}") from None


def iter_lines(path: PathLike) -> Iterator[bytes]:
    """The non-empty lines of a (possibly gzipped) file, without line endings, read lazily.

    A gzip stream cut short (a recorder killed mid-write) ends the iteration
    with ``RecordingError`` after every complete line has been yielded.
    """
    with open_binary(path) as stream:
        try:
            for line in stream:
                line = line.rstrip(b"\r\n")
                if line:
                    yield line
        except (EOFError, OSError) as exc:  # gzip.BadGzipFile is an OSError
            raise RecordingError(f"{os.fspath(path)}: corrupt or truncated data ({exc})") from None


_URL_TIME = re.compile(rb"^(\S+) -> ([0-9]+(?:\.[0-9]*)?): ")


def _seconds_to_ns(text: bytes) -> int:
    """Exact integer nanoseconds from decimal seconds text (no float rounding)."""
    whole, _, frac = text.partition(b".")
    return int(whole) * 1_000_000_000 + int((frac + b"000000000")[:9])


def parse_line(line: bytes) -> tuple[int | None, bytes, str | None, int | None] | None:
    """Split one recording line into (time, JSON, snapshot symbol, snapshot limit).

    Returns None for lines that carry no message (cryptofeed's header and
    configuration lines). A line that fits no known format is returned whole
    as the message, so the decoder reports it as malformed rather than it
    vanishing silently.
    """
    first = line[:1]
    if first == b"{" or first == b"[":
        return None, line, None, None
    if first.isdigit():
        sp = line.find(b" ")
        if sp > 0:
            stamp = line[:sp]
            if stamp.isdigit():
                return int(stamp), line[sp + 1 :], None, None
            if stamp.endswith(b":"):  # cryptofeed: "<seconds>: <json>"
                try:
                    return _seconds_to_ns(stamp[:-1]), line[sp + 1 :], None, None
                except ValueError:
                    pass
        return None, line, None, None
    if line.startswith(b"configuration:") or (line.startswith(b"ws") and b" <-> " in line):
        return None
    m = _URL_TIME.match(line)
    if m:  # cryptofeed REST line: "<url> -> <seconds>: <body>"
        query = urllib.parse.urlsplit(m.group(1).decode("ascii", "replace")).query
        params = urllib.parse.parse_qs(query)
        symbol = params.get("symbol", [None])[0]
        limit_text = params.get("limit", [""])[0]
        limit = int(limit_text) if limit_text.isdigit() else None
        return _seconds_to_ns(m.group(2)), line[m.end() :], symbol.upper() if symbol else None, limit
    return None, line, None, None


def read_records(
    paths: Iterable[PathLike], *, on_error: Callable[[RecordingError], None] | None = None
) -> Iterator[Record]:
    """Records of several files, in order, as one continuous recording.

    ``on_error`` receives a file that cannot be read (or is cut short) and the
    reading goes on with the next file; without it the error is raised.
    """
    for path in paths:
        source = os.fspath(path)
        n = 0
        try:
            for n, line in enumerate(iter_lines(path), 1):
                parsed = parse_line(line)
                if parsed is not None:
                    t, data, symbol, limit = parsed
                    yield Record(t, data, source, n, symbol, limit)
        except RecordingError as exc:
            if on_error is None:
                raise
            on_error(exc)


def time_to_ns(value: int) -> int:
    """A recorder's integer timestamp in nanoseconds, guessing the unit from its size.

    Recorders write s, ms, µs or ns since the epoch; any current date is
    ~1.7e9 s, so the number of digits tells the unit.
    """
    if value >= 10**17:
        return value
    if value >= 10**14:
        return value * 1_000
    if value >= 10**11:
        return value * 1_000_000
    return value * 1_000_000_000


# ------------------------------------------------------------- snapshot files

_SYMBOL_ARG = re.compile(r"^([A-Za-z0-9_]+)=(.+)$")


def parse_snapshot_arg(text: str) -> tuple[str | None, str]:
    """``"BTCUSDT=snap.json"`` -> ``("BTCUSDT", "snap.json")``; ``"snap.json"`` -> ``(None, "snap.json")``.

    A path that itself contains ``=`` and exists is taken whole.
    """
    m = _SYMBOL_ARG.match(text)
    if m is None or os.path.exists(text):
        return None, text
    return m.group(1).upper(), m.group(2)


@dataclass(frozen=True)
class SnapshotFile:
    """A REST depth snapshot stored in its own file (the raw one-line body)."""

    path: str  # where it came from
    data: bytes  # the raw JSON body
    symbol: str | None = None  # given explicitly (``SYMBOL=FILE``); None: attribute by name

    @classmethod
    def load(cls, path: PathLike, symbol: str | None = None) -> SnapshotFile:
        """Read a snapshot file (gzip allowed); the body is the whole file, surrounding whitespace removed."""
        lines = list(iter_lines(path))
        return cls(os.fspath(path), b"".join(lines).strip(), symbol.upper() if symbol else None)

    def name_tokens(self) -> set[str]:
        """Upper-cased tokens of the file name, the candidate symbols it names."""
        stem = Path(self.path).name
        return {t.upper() for t in re.split(r"[_\-.\s]+", stem) if t}


def attribute_snapshot_file(symbol: str, files: Sequence[SnapshotFile], *, first_symbol: bool) -> int | None:
    """Index in ``files`` of the snapshot for depth symbol ``symbol``, or None.

    Rules 1 and 2 of the module docstring: an explicit symbol, then a name
    token equal to the symbol, then (only for the first depth symbol of the
    recording, ``first_symbol``) the only snapshot file if it was given alone,
    without a symbol, and its name names nothing else.
    """
    symbol = symbol.upper()
    for i, f in enumerate(files):
        if f.symbol == symbol:
            return i
    for i, f in enumerate(files):
        if f.symbol is None and symbol in f.name_tokens():
            return i
    if first_symbol and len(files) == 1 and files[0].symbol is None:
        return 0
    return None


class InlineSnapshotAttributor:
    """Works out the symbol of inline snapshots (rule 3 of the module docstring).

    Feed it every depth event (``saw_depth``) and ask it about every inline
    snapshot (``attribute``). A snapshot that arrives before any depth event
    cannot be placed yet: ``attribute`` returns None and the caller keeps it
    until ``claim`` hands it to the first depth symbol that has no snapshot.
    """

    def __init__(self) -> None:
        self.last_u: dict[str, int] = {}  # symbol -> u of its most recent depth event, in arrival order

    def saw_depth(self, symbol: str, u: int) -> None:
        """Remember the newest stream position of ``symbol``."""
        self.last_u[symbol] = u

    def attribute(self, last_update_id: int) -> str | None:
        """The symbol an inline snapshot with this ``lastUpdateId`` belongs to, or None if none seen yet."""
        if not self.last_u:
            return None
        if len(self.last_u) == 1:
            return next(iter(self.last_u))
        # Nearest stream position; on a tie the symbol seen most recently.
        best: str | None = None
        best_distance = -1
        for symbol, u in self.last_u.items():
            distance = abs(last_update_id - u)
            if best is None or distance <= best_distance:
                best, best_distance = symbol, distance
        return best

    @staticmethod
    def claim(pending: list[tuple[int, object]], u: int) -> int:
        """Index in ``pending`` (``(lastUpdateId, snapshot)`` pairs) of the one nearest ``u``."""
        return min(range(len(pending)), key=lambda i: abs(pending[i][0] - u))


# ------------------------------------------------------------------- writing


class RecordingWriter:
    """Write the timestamped-lines format: ``<receive-time-ns> <raw JSON>\\n`` per message.

    gzip-compressed when the file name ends in ``.gz``. What this writes,
    ``read_records`` reads back byte for byte, so anything tickbook records it
    can replay. REST snapshots are written the same way, inline at the moment
    they were received (``write_snapshot``), as the replay expects.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        clock: Callable[[], int] = time.time_ns,
        compresslevel: int = 6,
        append: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self.count = 0  # messages written
        self._file: io.BufferedIOBase
        if self.path.endswith(".gz"):
            # Level 6 keeps up with a busy feed on one core; 9 gains little on JSON.
            self._file = gzip.GzipFile(self.path, "ab" if append else "wb", compresslevel=compresslevel)
        elif append:
            self._file = open(self.path, "ab")  # noqa: SIM115 (closed in close())
        else:
            self._file = open(self.path, "wb")  # noqa: SIM115 (closed in close())

    def write(self, data: bytes | bytearray | memoryview | str, time_ns: int | None = None) -> None:
        """Append one raw message received at ``time_ns`` (now, from the clock, if None).

        JSON never needs a raw line break (inside strings they must be
        escaped), so any in the input is JSON whitespace and becomes a space:
        one message stays one line.
        """
        body = data.encode() if isinstance(data, str) else bytes(data)
        if b"\n" in body or b"\r" in body:
            body = body.replace(b"\r", b" ").replace(b"\n", b" ")
        stamp = self._clock() if time_ns is None else time_ns
        self._file.write(b"%d %s\n" % (stamp, body))
        self.count += 1

    def write_snapshot(self, body: bytes | bytearray | memoryview | str, time_ns: int | None = None) -> None:
        """Append a REST depth snapshot body inline (same line format as a message)."""
        self.write(body, time_ns)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
