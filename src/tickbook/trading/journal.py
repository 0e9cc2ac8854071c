"""An audit journal of REST requests in SQLite, with secrets redacted.

Every request the client sends and what came back (status, weight used, latency, error code
and message, client order ID, the first part of the response) is one row of a SQLite file
(the standard library's ``sqlite3``, no server). The journal answers the questions an audit
asks later: "what did we send for order X?", "which endpoints fail and with which codes?",
"how slow was the exchange?" (:meth:`Journal.entries`, :meth:`Journal.error_counts`,
:meth:`Journal.stats`, and ``tickbook journal PATH ...`` on the command line).

Durability. The file is in WAL mode and every :meth:`Journal.record` is its own transaction,
committed before the call returns. A process that dies right after ``record`` returns (a
crash, ``os._exit``, SIGKILL) loses nothing: the commit was written to the WAL file with
``write()`` before the call returned, so it is in the operating system's hands, and the next
reader sees it. A process that dies *during* ``record`` leaves at most one transaction without
its commit frame, which SQLite ignores on the next open: the file is never corrupt. With
``synchronous="FULL"`` (the default) SQLite also fsyncs the WAL at every commit, so a
committed record survives a power cut or an operating-system crash too; ``"NORMAL"`` skips
that fsync (a power cut may then lose the last records, never corrupt the file) and makes
``record`` several times faster on a real disk.

Threads and asyncio. One :class:`Journal` keeps one connection, guarded by a lock: ``record``
and the queries may be called from any thread (calls on one journal take turns); a second
process may read the file while this one writes (WAL readers never block the writer).
``record`` is synchronous and short: one INSERT and a commit, measured at about 60 µs with
``"NORMAL"`` and 200-400 µs with ``"FULL"`` on an ext4 virtual disk (``tests/test_journal.py``
prints its median); the fsync of ``"FULL"`` can take milliseconds on a slow disk, so
:meth:`Journal.record_async` runs ``record`` in a worker thread for event loops that must never
wait on the disk.

Redaction. Signatures, API keys, secrets, listen keys and private keys never reach the file:
:func:`redact_params` masks them in query strings, form bodies, JSON texts and mappings, and
:meth:`Journal.record` applies it again to whatever it is given (redacting twice changes
nothing), so a caller that forgets cannot leak. The exchange's rules on where the signature
and the key travel (spec sections 4, 8 and 9) are why the list of names is short: ``signature`` in the
query or body, ``X-MBX-APIKEY`` as a header, ``apiKey`` and ``signature`` in WebSocket API
params, the listen key in user-data paths and answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from typing import Any, Final, Literal
from urllib.parse import quote, unquote_plus

from tickbook.signing import encode_value

__all__ = [
    "REDACTED",
    "RESPONSE_LIMIT",
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "JournalError",
    "is_error",
    "is_sensitive_name",
    "redact_params",
    "redact_response",
]

log = logging.getLogger(__name__)

REDACTED: Final = "REDACTED"
"""What a secret value is replaced with (plain ASCII, so it needs no percent-encoding)."""

RESPONSE_LIMIT: Final = 4096
"""Characters of a response kept by default: enough for an order, an error or a balance, not
for a whole exchangeInfo (megabytes) in every row."""

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the file layout this module writes."""

# ``PRAGMA application_id``: tells a journal from any other SQLite file ("TBJL").
_APPLICATION_ID: Final = 0x54424A4C

# Parameter, header and JSON key names whose values are secrets, compared without case, "-"
# or "_" (``X-MBX-APIKEY``, ``apiKey``, ``api_key`` are one name).
_SENSITIVE: Final = frozenset(
    {
        "signature",
        "apikey",
        "xmbxapikey",
        "secret",
        "secretkey",
        "apisecret",
        "listenkey",
        "privatekey",
        "privatekeypem",
        "password",
        "passphrase",
    }
)
# Any name containing one of these is a secret as well (``hmacSecret``, ``ed25519PrivateKey``).
_SENSITIVE_PARTS: Final = ("secret", "privatekey", "password", "passphrase", "signature")

# A JSON member whose key is sensitive: the key, the colon, then a string value (possibly cut
# short by truncation: closing quote optional) or a bare scalar. Keys are matched with case
# and "-"/"_" variations via is_sensitive_name, so the pattern takes any key and the
# replacement function decides.
_JSON_MEMBER: Final = re.compile(
    r'"(?P<key>[A-Za-z0-9_\-]{1,64})"(?P<colon>\s*:\s*)(?P<value>"(?:[^"\\]|\\.)*"?|[^\s,}\]"]+)'
)
# A listen key inside a user-data stream path: ``/ws/<key>``, ``/private/ws/<key>``; listen
# keys are long (60+ characters) opaque tokens, stream names are short and lowercase with "@".
_LISTEN_KEY_PATH: Final = re.compile(r"(/ws/)([A-Za-z0-9]{20,})")
# A PEM block pasted anywhere (a key file's content in a message or a parameter).
_PEM_BLOCK: Final = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL
)


def _normalise(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def is_sensitive_name(name: str) -> bool:
    """Whether a parameter, header or JSON key carries a secret (``signature``, ``apiKey``,
    ``X-MBX-APIKEY``, ``secret``, ``listenKey``, private keys, passwords)."""
    norm = _normalise(name)
    return norm in _SENSITIVE or any(part in norm for part in _SENSITIVE_PARTS)


def _redact_json_text(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if not is_sensitive_name(match["key"]):
            return match[0]
        return f'"{match["key"]}"{match["colon"]}"{REDACTED}"'

    return _JSON_MEMBER.sub(replace, text)


def _redact_query(text: str) -> str:
    """A percent-encoded ``k=v&k=v`` text (query string or form body) with secret values
    masked; everything else is kept byte for byte, so the text still reads as it was sent."""
    pieces = text.split("&")
    for i, piece in enumerate(pieces):
        name, sep, _value = piece.partition("=")
        if sep and is_sensitive_name(unquote_plus(name)):
            pieces[i] = f"{name}={REDACTED}"
    return "&".join(pieces)


def _redact_text(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        # A JSON text (WebSocket API params, a batchOrders list, a response body).
        redacted = _redact_json_text(text)
    else:
        # A query string, form body or URL: the part after "?" is the query; a path before it
        # may hold a listen key.
        path, sep, query = text.rpartition("?")
        redacted = path + sep + _redact_query(query)
        redacted = _redact_json_text(redacted)  # JSON values inside parameters (batchOrders)
    redacted = _LISTEN_KEY_PATH.sub(rf"\1{REDACTED}", redacted)
    return _PEM_BLOCK.sub(REDACTED, redacted)


def redact_params(text_or_mapping: str | bytes | Mapping[str, object] | None) -> str:
    """Parameters as text with every secret masked as ``REDACTED``.

    Accepts what a request is made of: a percent-encoded query string or form body (``a=1&
    signature=...``; a URL with ``?`` too), a JSON text (WebSocket API params), bytes of
    either, or a mapping of parameters or headers (encoded as the exchange expects them,
    percent-encoded, in order, ``None`` left out). Names are compared without case or
    ``-``/``_``, also percent-encoded ones; values of ``signature``, ``apiKey``,
    ``X-MBX-APIKEY``, ``secret``, ``listenKey``, private keys and passwords are masked, as are
    listen keys in stream paths and PEM private-key blocks anywhere. Idempotent.
    """
    if text_or_mapping is None:
        return ""
    if isinstance(text_or_mapping, bytes | bytearray | memoryview):
        return _redact_text(bytes(text_or_mapping).decode("utf-8", "replace"))
    if isinstance(text_or_mapping, str):
        return _redact_text(text_or_mapping)
    pairs = []
    for name, value in text_or_mapping.items():
        if value is None:
            continue
        if is_sensitive_name(str(name)):
            shown = REDACTED
        else:
            # Lists and dicts are encoded as JSON text, which _redact_text masks inside.
            shown = quote(_redact_text(encode_value(value)), safe="")
        pairs.append(f"{quote(str(name), safe='')}={shown}")
    return "&".join(pairs)


def redact_response(body: str | bytes | None, limit: int | None = RESPONSE_LIMIT) -> str | None:
    """A response body as text, cut to ``limit`` characters (``None``: no limit) and with
    secrets masked (a listen key answered by ``POST /fapi/v1/listenKey``, an ``apiKey`` echoed
    by the WebSocket API's ``session.logon``). Cutting comes first so that redaction never scans
    megabytes; a secret cut in half is still masked. A cut text ends with ``…[+N chars]``."""
    if body is None:
        return None
    text = bytes(body).decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
    cut = ""
    if limit is not None and len(text) > limit:
        cut = f"…[+{len(text) - limit} chars]"
        text = text[:limit]
    return _redact_text(text) + cut


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request and its outcome.

    ``params`` is the percent-encoded text that was sent (query then body), redacted;
    ``status`` the HTTP status (``None``: no answer, e.g. a connection failure or a timeout);
    ``weight_used`` the ``X-MBX-USED-WEIGHT-1M`` header after the request; ``latency_ms`` from
    sending to the end of the answer; ``error_code``/``error_msg`` the exchange's ``code`` and
    ``msg`` (or the local failure's message, with no code); ``response`` the answer's body,
    redacted and truncated.
    """

    ts_ms: int
    market: str
    method: str
    endpoint: str
    params: str
    status: int | None
    weight_used: int | None
    latency_ms: float
    error_code: int | None
    error_msg: str | None
    client_order_id: str | None
    response: str | None


_COLUMNS: Final = tuple(f.name for f in fields(JournalEntry))


def is_error(entry: JournalEntry) -> bool:
    """Whether an entry records a failure: an exchange error code, a local error message (a
    connection failure), or an HTTP status of 400 or more."""
    return (
        entry.error_code is not None
        or entry.error_msg is not None
        or (entry.status is not None and entry.status >= 400)
    )


class JournalError(Exception):
    """A journal file that cannot be opened: missing, not SQLite, not a journal, or newer."""


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    market TEXT NOT NULL,
    method TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    params TEXT NOT NULL,
    status INTEGER,
    weight_used INTEGER,
    latency_ms REAL NOT NULL,
    error_code INTEGER,
    error_msg TEXT,
    client_order_id TEXT,
    response TEXT
);
CREATE INDEX IF NOT EXISTS entries_endpoint ON entries (endpoint);
CREATE INDEX IF NOT EXISTS entries_client_order_id ON entries (client_order_id);
CREATE INDEX IF NOT EXISTS entries_error_code ON entries (error_code);
CREATE INDEX IF NOT EXISTS entries_ts ON entries (ts_ms);
"""

_INSERT: Final = f"INSERT INTO entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _latency_summary(values: list[float]) -> dict[str, float | int]:
    values.sort()
    return {
        "count": len(values),
        "p50": _percentile(values, 50),
        "p90": _percentile(values, 90),
        "p99": _percentile(values, 99),
        "max": values[-1],
    }


def _time_range(where: list[str], args: list[object], since_ms: int | None, until_ms: int | None) -> None:
    """Add the conditions ``since_ms <= ts_ms < until_ms`` (either bound may be None) to a query."""
    if since_ms is not None:
        where.append("ts_ms >= ?")
        args.append(int(since_ms))
    if until_ms is not None:
        where.append("ts_ms < ?")
        args.append(int(until_ms))


class Journal:
    """An append-only SQLite journal of requests (see the module docstring for durability,
    threads and redaction).

    ``Journal(path)`` opens the file, creating it when missing; ``readonly=True`` opens an
    existing journal for queries only (what ``tickbook journal`` does) and never creates one.

    Consecutive errors: ``on_consecutive_errors(count, entry)`` is called when the same
    endpoint (``consecutive_scope="endpoint"``, the default) or any endpoints
    (``"global"``) have recorded ``consecutive_errors`` errors in a row, and again at every
    further multiple of it while the streak lasts; a success resets the streak. Per endpoint by
    default because a client mixes public and signed calls: with a clock off or a key revoked,
    every signed request fails while the market-data polls keep succeeding, and a global streak
    would be reset by each of them. The callback runs after the record is committed, in the
    calling thread, outside the journal's lock (it may query the journal); an exception from it
    is logged, never raised into the request that was being recorded.

    ``secrets``: extra strings (an API key, a secret) that must never be written, replaced
    wherever they occur in any text column; strings shorter than 8 characters are refused, as
    masking them would garble ordinary text.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        consecutive_errors: int = 5,
        on_consecutive_errors: Callable[[int, JournalEntry], None] | None = None,
        consecutive_scope: Literal["endpoint", "global"] = "endpoint",
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        response_limit: int | None = RESPONSE_LIMIT,
        secrets: Iterable[str] = (),
        readonly: bool = False,
    ) -> None:
        if consecutive_errors < 1:
            raise ValueError(f"consecutive_errors must be at least 1, got {consecutive_errors}")
        if consecutive_scope not in ("endpoint", "global"):
            raise ValueError(f"consecutive_scope must be 'endpoint' or 'global', got {consecutive_scope!r}")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.fspath(path)
        self.readonly = readonly
        self.consecutive_errors = consecutive_errors
        self.on_consecutive_errors = on_consecutive_errors
        self.consecutive_scope = consecutive_scope
        self.response_limit = response_limit
        self._secrets: list[str] = []
        for secret in secrets:
            self.add_secret(secret)
        self._streaks: dict[str, int] = {}
        self._lock = threading.RLock()
        self._conn = self._open(synchronous)

    # ------------------------------------------------------------------ opening

    def _open(self, synchronous: str) -> sqlite3.Connection:
        if os.path.isdir(self.path):
            raise JournalError(f"is a directory, not a journal: {self.path}")
        if self.readonly and not os.path.exists(self.path):
            raise JournalError(f"no such journal: {self.path}")
        try:
            if self.readonly:
                uri = "file:" + quote(os.path.abspath(self.path)) + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            else:
                # isolation_level=None: no implicit transactions; record() opens and commits
                # its own, so nothing is ever left pending between calls.
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open {self.path}: {exc}") from None
        try:
            self._prepare(conn, synchronous)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"not a journal (not an SQLite database?): {self.path}: {exc}") from None
        except JournalError:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection, synchronous: str) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        fresh = app_id == 0 and version == 0 and tables == 0
        if not fresh and app_id != _APPLICATION_ID:
            raise JournalError(f"not a journal (an SQLite database of something else): {self.path}")
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema version {version}; this tickbook reads up to "
                f"{SCHEMA_VERSION}: upgrade tickbook"
            )
        if self.readonly:
            if fresh:
                raise JournalError(f"not a journal (an empty SQLite database): {self.path}")
            return
        # WAL: a reader never blocks the writer, and a commit is one append to the WAL file
        # (durable against the process dying once write() returned; fsynced with FULL).
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"cannot put {self.path} in WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Statement by statement: executescript() would commit on its own first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ writing

    def add_secret(self, secret: str) -> None:
        """Never write ``secret`` (an API key, say): it is replaced wherever it occurs."""
        if len(secret) < 8:
            raise ValueError("a secret to scrub must be at least 8 characters long")
        if secret not in self._secrets:
            self._secrets.append(secret)

    def _scrub(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _clean(self, entry: JournalEntry) -> JournalEntry:
        """The entry as it will be stored: every text redacted (again) and the response cut."""
        return JournalEntry(
            ts_ms=int(entry.ts_ms),
            market=str(entry.market),
            method=str(entry.method).upper(),
            endpoint=self._scrub(_redact_text(entry.endpoint)) or "",
            params=self._scrub(redact_params(entry.params)) or "",
            status=entry.status,
            weight_used=entry.weight_used,
            latency_ms=float(entry.latency_ms),
            error_code=entry.error_code,
            error_msg=self._scrub(None if entry.error_msg is None else _redact_text(entry.error_msg)),
            client_order_id=entry.client_order_id,
            response=self._scrub(redact_response(entry.response, self.response_limit)),
        )

    def record(self, entry: JournalEntry) -> None:
        """Append one entry, committed before this returns (its own transaction).

        Texts are redacted again and the response cut to ``response_limit``; then, if the
        entry continues a streak of errors, ``on_consecutive_errors`` may be called.
        """
        if self.readonly:
            raise JournalError(f"journal {self.path} is open read-only")
        clean = self._clean(entry)
        with self._lock:
            # "BEGIN IMMEDIATE ... COMMIT": the row is in the WAL, with its commit frame, when
            # execute("COMMIT") returns; a crash before that leaves no trace of it.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(_INSERT, astuple(clean))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            fire = self._count_streak(clean)
        if fire and self.on_consecutive_errors is not None:
            try:
                self.on_consecutive_errors(fire, clean)
            except Exception:
                log.exception("on_consecutive_errors callback failed")

    def _count_streak(self, entry: JournalEntry) -> int:
        """Update the streak of the entry's scope; the streak length when the hook is due."""
        scope = entry.endpoint if self.consecutive_scope == "endpoint" else ""
        if not is_error(entry):
            self._streaks.pop(scope, None)
            return 0
        streak = self._streaks.get(scope, 0) + 1
        self._streaks[scope] = streak
        return streak if streak % self.consecutive_errors == 0 else 0

    async def record_async(self, entry: JournalEntry) -> None:
        """:meth:`record` in a worker thread, so the event loop never waits on the disk."""
        await asyncio.to_thread(self.record, entry)

    def consecutive_error_streak(self, endpoint: str | None = None) -> int:
        """The current run of errors in a row: of ``endpoint`` (scope "endpoint") or of all
        requests (scope "global"; ``endpoint`` ignored)."""
        with self._lock:
            scope = (endpoint or "") if self.consecutive_scope == "endpoint" else ""
            return self._streaks.get(scope, 0)

    # ------------------------------------------------------------------ reading

    def entries(
        self,
        *,
        endpoint: str | None = None,
        client_order_id: str | None = None,
        errors_only: bool = False,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Recorded entries in the order they were recorded, filtered: by exact ``endpoint``,
        ``client_order_id``, only errors (as :func:`is_error`), ``ts_ms >= since_ms``,
        ``ts_ms < until_ms``; ``limit`` keeps the most recent N of those."""
        where: list[str] = []
        args: list[object] = []
        if endpoint is not None:
            where.append("endpoint = ?")
            args.append(endpoint)
        if client_order_id is not None:
            where.append("client_order_id = ?")
            args.append(client_order_id)
        if errors_only:
            where.append("(error_code IS NOT NULL OR error_msg IS NOT NULL OR status >= 400)")
        _time_range(where, args, since_ms, until_ms)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must not be negative, got {limit}")
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        rows.reverse()
        return [JournalEntry(*row) for row in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    def error_counts(self) -> dict[tuple[int, str], int]:
        """How many times each exchange error code was answered, per endpoint:
        ``{(code, endpoint): count}`` (failures without a code, such as a connection lost,
        are in :meth:`stats` as errors of their endpoint)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT error_code, endpoint, count(*) FROM entries WHERE error_code IS NOT NULL "
                "GROUP BY error_code, endpoint ORDER BY count(*) DESC, error_code, endpoint"
            ).fetchall()
        return {(int(code), str(endpoint)): int(n) for code, endpoint, n in rows}

    def stats(self, *, since_ms: int | None = None, until_ms: int | None = None) -> dict[str, Any]:
        """A summary for dashboards and ``tickbook journal --stats`` of the entries with
        ``since_ms <= ts_ms < until_ms``: entry count, first and last ``ts_ms``, per endpoint
        (``"METHOD /path"``) the request count, error count (as :func:`is_error`) and latency
        percentiles (nearest rank, ms), error counts by code and endpoint, and latency
        percentiles over everything (``None`` when empty)."""
        where: list[str] = []
        args: list[object] = []
        _time_range(where, args, since_ms, until_ms)
        cond = ("WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            rows = self._conn.execute(
                "SELECT method, endpoint, latency_ms, status, error_code, error_msg, ts_ms "
                f"FROM entries {cond} ORDER BY id",
                args,
            ).fetchall()
        per: dict[str, dict[str, Any]] = {}
        latencies: dict[str, list[float]] = {}
        codes: dict[tuple[int, str], int] = {}
        everything: list[float] = []
        for method, endpoint, latency, status, code, msg, _ts in rows:
            key = f"{method} {endpoint}"
            stat = per.setdefault(key, {"requests": 0, "errors": 0})
            stat["requests"] += 1
            if code is not None or msg is not None or (status is not None and status >= 400):
                stat["errors"] += 1
            if code is not None:
                codes[(code, endpoint)] = codes.get((code, endpoint), 0) + 1
            latencies.setdefault(key, []).append(latency)
            everything.append(latency)
        for key, stat in per.items():
            stat["latency_ms"] = _latency_summary(latencies[key])
        return {
            "entries": len(rows),
            "first_ts_ms": rows[0][6] if rows else None,
            "last_ts_ms": rows[-1][6] if rows else None,
            "endpoints": dict(sorted(per.items(), key=lambda kv: (-kv[1]["requests"], kv[0]))),
            "errors": [
                {"code": code, "endpoint": endpoint, "count": n}
                for (code, endpoint), n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "latency_ms": _latency_summary(everything) if everything else None,
        }

    # ------------------------------------------------------------------ life

    def close(self) -> None:
        """Close the connection (idempotent). Records are already committed: nothing to flush."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "read-write"
        return f"Journal({self.path!r}, {mode})"
