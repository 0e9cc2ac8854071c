"""Fault injection for the local exchange: the ``--faults`` spec, scenario files and the fault log.

A client is only as good as its handling of a feed that breaks, so the
exchange breaks on demand, at an exact message, and records every fault it
injected: a test can then assert that the client noticed each one.

Spec (``--faults``), comma-separated tokens, each optionally scoped to one
symbol as ``SYMBOL:token`` (``BTCUSDT:drop@500``):

============================  ======================================================================
``drop@N``                    do not send the N-th depth event (a gap)
``dup@N``                     send it twice
``reorder@N``                 hold it and send it right after the next depth event of the symbol
``delay@N:SECONDS``           send it SECONDS late; the events after it go on time (it arrives late)
``stall@N:SECONDS``           before it, send nothing at all on the connection for SECONDS (open, silent)
``close@N``                   send it, then close the connection cleanly (close frame)
``disconnect@N``              reset the connection abruptly instead of sending it
``malformed@N``               send malformed bytes (half of it, cut) right before it (the event still follows)
``unknown@N``                 send an event of an unknown type right before it
``stale-snapshot[@N]``        answer the N-th depth snapshot request (default the first) with a snapshot
                              older than the stream
``slow-snapshot[@N]:SEC``     answer the N-th snapshot request (default the first) SEC seconds late
``http@N:STATUS``             answer the N-th REST request with STATUS and the exchange's error body
``skew:MILLISECONDS``         the exchange clock (``time``, ``serverTime``) is off by this much (+/-)
``lost-response@N[:MODE]``    the N-th order placement is executed, but its answer is lost; MODE is
                              ``timeout=S`` (the answer is held S seconds), ``reset`` (the connection
                              is reset and nothing is answered; the default) or ``503`` (HTTP 503 with
                              "Unknown error, please check your request or try again later.")
============================  ======================================================================

``N`` counts from 1: the N-th depth event *of each symbol* (or of the scoped
symbol only), the N-th snapshot request of each symbol, the N-th REST request
of the server, the N-th order placement the server executed (REST or
WebSocket API). Options may follow as ``:every=K`` (fire again every K
messages after N) and ``:count=C`` (fire on C consecutive messages: N, N+1,
..., N+C-1; ``drop@500:count=10`` is a gap of ten events,
``http@1:503:count=3`` fails the first three requests). Depth faults also take
``:conn=K``: apply only on the K-th WebSocket connection the market's server
accepted (1-based, in acceptance order; ``drop@500:conn=2``,
``BTCUSDT:stall@100:3:conn=1``); without it a depth fault applies to every
connection carrying the stream. REST-side faults reject ``conn``. An injected 429 or 418
takes ``:retry=S``, the ``Retry-After`` seconds to send (``http@2:418:retry=1``; default
the exchange's: the minute's end for 429, 120 s for 418), so a test need not wait minutes.

``lost-response`` is the fault a trading client must survive without ever placing an order
twice (binance-spec §10.4: a 5xx or a timeout after the request was sent leaves the outcome
unknown). Order placements are ``POST /api/v3/order``, ``POST /api/v3/sor/order``, the spot
order lists (``POST /api/v3/orderList/*``), USD-M and COIN-M ``POST /order``, ``POST
/batchOrders`` and ``POST /fapi/v1/algoOrder``, and their WebSocket API methods; only those
that authenticated count (a refused signature executes nothing). The engine executes the
order whatever the mode, so a query afterwards finds it: ``timeout=S`` answers it S seconds
late (the client has given up by then), ``reset`` aborts the TCP connection (on the
WebSocket API: the whole session), ``503`` answers the body of an unknown outcome (status
503, -1000) instead of the order. ``lost-response@2:timeout=3``, ``lost-response@1:503:count=2``.

A scenario file holds the same faults, longer sequences being easier to
write there: JSON (``{"faults": [...]}`` or a bare list) or TOML
(``faults = [...]`` and/or ``[[fault]]`` tables); each item is a spec token
string or a table ``{kind, at, symbol, seconds, status, ms, every, count, conn, retry, mode}``
(``{kind = "lost-response", at = 2, mode = "timeout", seconds = 3}``).

The servers consult a ``FaultPlan``: ``on_depth_event`` once per depth event
of a symbol (its actions apply to every connection that carries the
symbol's depth stream, or only to ``Action.connection`` when set), ``on_snapshot`` per depth snapshot request,
``on_rest_request`` per REST request, ``on_order_placement`` per order placement
that reached the engine, ``clock_skew_ms`` when they read the clock. Every fault that fires
is appended to ``FaultPlan.log``.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEPTH_KINDS",
    "KINDS",
    "LOST_MODES",
    "LOST_RESPONSE_MSG",
    "ORDER_KINDS",
    "ORDER_PLACEMENTS",
    "Action",
    "Fault",
    "FaultPlan",
    "SnapshotAction",
    "http_error_body",
    "is_order_placement",
    "load_scenario",
    "lost_response_body",
    "malformed_payload",
    "parse_faults",
    "unknown_event",
]

# Faults on the N-th depth event of a symbol, in the order their actions are listed.
DEPTH_KINDS: Final = (
    "drop",
    "dup",
    "reorder",
    "delay",
    "stall",
    "close",
    "disconnect",
    "malformed",
    "unknown",
)
SNAPSHOT_KINDS: Final = ("stale-snapshot", "slow-snapshot")
ORDER_KINDS: Final = ("lost-response",)
KINDS: Final = (*DEPTH_KINDS, *SNAPSHOT_KINDS, "http", "skew", *ORDER_KINDS)
# How a lost response is lost: held S seconds, connection reset, or a 503 "unknown" answer.
LOST_MODES: Final = ("timeout", "reset", "503")

_SECONDS_KINDS: Final = ("delay", "stall", "slow-snapshot")  # take a duration in seconds
_SYMBOL: Final = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_HEAD: Final = re.compile(r"^([a-z-]+)(?:@(.*))?$")
_OPTIONS: Final = ("every", "count", "conn", "retry")


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault (a parsed spec token or scenario item)."""

    kind: str  # one of KINDS
    at: int | None = None  # message number N (1-based); None for skew
    symbol: str | None = None  # scope: only this symbol (upper case); None: every symbol
    seconds: float | None = None  # delay, stall, slow-snapshot
    status: int | None = None  # http
    ms: int | None = None  # skew
    every: int | None = None  # fire again every K messages after ``at``
    count: int = 1  # fire on this many consecutive messages
    conn: int | None = None  # depth faults: only on the K-th accepted connection (1-based); None: all
    retry: int | None = None  # http 429/418: the Retry-After seconds to send (default: the exchange's)
    mode: str | None = None  # lost-response: one of LOST_MODES (``seconds`` is the timeout's)

    def fires_at(self, n: int) -> bool:
        """Whether this fault fires on message number ``n``."""
        at = self.at
        if at is None or n < at:
            return False
        offset = n - at
        if self.every is not None:
            offset %= self.every
        return offset < self.count

    def token(self) -> str:
        """The spec token for this fault (``parse_faults(f.token()) == [f]``)."""
        text = self.kind
        if self.at is not None:
            text += f"@{self.at}"
        if self.mode == "timeout":
            text += f":timeout={self.seconds or 0:g}"
        elif self.mode is not None:
            text += f":{self.mode}"
        elif self.seconds is not None:
            text += f":{self.seconds:g}"
        if self.status is not None:
            text += f":{self.status}"
        if self.ms is not None:
            text += f":{self.ms}"
        if self.every is not None:
            text += f":every={self.every}"
        if self.count != 1:
            text += f":count={self.count}"
        if self.conn is not None:
            text += f":conn={self.conn}"
        if self.retry is not None:
            text += f":retry={self.retry}"
        return f"{self.symbol}:{text}" if self.symbol else text


@dataclass(frozen=True, slots=True)
class Action:
    """What a server must do with one depth event (``FaultPlan.on_depth_event``).

    ``kind`` is a fault kind of ``DEPTH_KINDS``; ``seconds`` the delay or stall
    length; ``data`` the bytes to send instead of the event (``malformed``) or
    before it (``unknown``). ``connection`` the number of the one connection it
    applies to (the K-th the server accepted, 1-based), None for every
    connection. ``fault`` is the scheduled fault that fired.
    """

    kind: str
    seconds: float = 0.0
    data: bytes = b""
    connection: int | None = None
    fault: Fault | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SnapshotAction:
    """How to answer one depth snapshot request: ``stale`` body, answered ``delay`` seconds late."""

    stale: bool = False
    delay: float = 0.0

    def __bool__(self) -> bool:
        return self.stale or self.delay > 0


_NO_SNAPSHOT_FAULT: Final = SnapshotAction()


def malformed_payload(payload: bytes) -> bytes:
    """``payload`` cut in the middle: JSON that no parser accepts, the way a torn frame looks."""
    return payload[: max(1, len(payload) // 2)]


def unknown_event(symbol: str, time_ms: int) -> bytes:
    """An event of a type no client knows, on the symbol's stream: a client must skip it."""
    return f'{{"e":"simUnknownEvent","E":{time_ms},"s":"{symbol}"}}'.encode()


# Error bodies the exchange sends with these statuses (binance-spec §5.2, §10; 5xx: the body of an
# internal error, the status is what the client must react to).
_TIMEOUT: Final = (
    "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
)
_ERROR_BODIES: Final = {
    400: (-1100, "Illegal characters found in a parameter."),
    403: (-1002, "You are not authorized to execute this request."),
    408: (-1007, _TIMEOUT),
    418: (
        -1003,
        "Way too much request weight used; IP banned until {until}. "
        "Please use the websocket for live updates to avoid bans.",
    ),
    429: (
        -1003,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use the websocket for live updates to avoid polling the API.",
    ),
    500: (-1000, "An unknown error occurred while processing the request."),
    502: (-1001, "Internal error; unable to process your request. Please try again."),
    503: (-1008, "Service Unavailable."),
    504: (-1007, _TIMEOUT),
}


def http_error_body(status: int, *, now_ms: int | None = None) -> bytes:
    """The JSON error body the exchange sends with ``status`` (``{"code":...,"msg":...}``)."""
    code, msg = _ERROR_BODIES.get(status, (-1000, "An unknown error occurred while processing the request."))
    if "{until}" in msg:
        msg = msg.format(until=(now_ms if now_ms is not None else time.time_ns() // 1_000_000) + 120_000)
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()


# The answer of an order placement whose outcome the exchange does not know (binance-spec §10.4:
# futures document this 503 text as "may have executed"; -1000 is UNKNOWN, §10.1).
LOST_RESPONSE_MSG: Final = "Unknown error, please check your request or try again later."


# The requests ``lost-response`` counts: every request that places orders (binance-spec §6), on
# every market; a WebSocket API method counts when its REST twin does.
ORDER_PLACEMENTS: Final = frozenset(
    {
        ("POST", "/api/v3/order"),
        ("POST", "/api/v3/sor/order"),
        ("POST", "/api/v3/order/oco"),  # the deprecated OCO endpoint, still an order list
        *(("POST", f"/api/v3/orderList/{kind}") for kind in ("oco", "oto", "otoco", "opo", "opoco")),
        ("POST", "/fapi/v1/order"),
        ("POST", "/fapi/v1/batchOrders"),
        ("POST", "/fapi/v1/algoOrder"),
        ("POST", "/dapi/v1/order"),
        ("POST", "/dapi/v1/batchOrders"),
    }
)


def is_order_placement(method: str, path: str) -> bool:
    """Whether ``method path`` places orders (what ``lost-response`` counts)."""
    return (method.upper(), path.rstrip("/")) in ORDER_PLACEMENTS


def lost_response_body() -> bytes:
    """The JSON body of ``lost-response``'s ``503`` mode."""
    return json.dumps({"code": -1000, "msg": LOST_RESPONSE_MSG}, separators=(",", ":")).encode()


# ------------------------------------------------------------------ parsing


def _bad(token: str, why: str) -> ValueError:
    return ValueError(f"bad fault {token!r}: {why}")


def _int(token: str, text: str, what: str, *, minimum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(token, f"{what} must be an integer, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise _bad(token, f"{what} must be at least {minimum}, got {value}")
    return value


def _seconds(token: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(token, f"SECONDS must be a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # also rejects NaN
        raise _bad(token, f"SECONDS must be a finite number >= 0, got {text!r}")
    return value


def _parse_token(token: str) -> Fault:
    parts = token.split(":")
    symbol = None
    head = parts[0]
    match = _HEAD.match(head)
    if match is None or match.group(1) not in KINDS:
        if len(parts) > 1:  # SYMBOL:token
            if not _SYMBOL.match(head):
                raise _bad(token, f"{head!r} is neither a fault kind nor a symbol")
            symbol = head.upper()
            parts = parts[1:]
            match = _HEAD.match(parts[0])
        if match is None or match.group(1) not in KINDS:
            raise _bad(token, f"unknown fault kind; expected one of {', '.join(KINDS)}")
    kind, at_text = match.group(1), match.group(2)
    options: dict[str, int] = {}
    args: list[str] = []
    for part in parts[1:]:
        name, eq, value = part.partition("=")
        if kind in ORDER_KINDS and name == "timeout" and eq:  # a mode (an argument), not an option
            if options:
                raise _bad(token, "options (every=, count=) must come last")
            args.append(part)
            continue
        if eq:
            if name not in _OPTIONS:
                raise _bad(token, f"unknown option {name!r} (options: every=K, count=C, conn=K, retry=S)")
            if name in options:
                raise _bad(token, f"option {name!r} given twice")
            options[name] = _int(token, value, name, minimum=1)
        else:
            if options:
                raise _bad(token, "options (every=, count=, conn=) must come last")
            args.append(part)
    at = _int(token, at_text, "N", minimum=1) if at_text is not None else None
    if kind in ORDER_KINDS:
        return _lost_response(token, symbol, at, args, options)
    seconds = status = ms = None
    if kind in DEPTH_KINDS or kind == "http":
        if at is None:
            raise _bad(token, f"{kind} needs @N (the message number it applies to)")
    elif at is None and kind in SNAPSHOT_KINDS:
        at = 1  # the next snapshot answered
    elif kind == "skew" and at is not None:
        raise _bad(token, "skew takes no @N (it applies to the clock, not to a message)")
    expected = 1 if kind in (*_SECONDS_KINDS, "http", "skew") else 0
    if len(args) != expected:
        what = {"http": "STATUS", "skew": "MILLISECONDS"}.get(kind, "SECONDS")
        if expected:
            raise _bad(token, f"{kind} needs exactly one :{what}")
        raise _bad(token, f"{kind} takes no argument, got {':'.join(args)!r}")
    if kind in _SECONDS_KINDS:
        seconds = _seconds(token, args[0])
    elif kind == "http":
        status = _int(token, args[0], "STATUS")
        if not 100 <= status <= 599:
            raise _bad(token, f"STATUS must be an HTTP status (100-599), got {status}")
    elif kind == "skew":
        ms = _int(token, args[0], "MILLISECONDS")
    if symbol is not None and kind in ("http", "skew"):
        raise _bad(token, f"{kind} applies to the whole server and cannot be scoped to a symbol")
    if kind == "skew" and options.keys() - {"conn"}:
        raise _bad(token, "skew takes no every=/count= options")
    if "conn" in options and kind not in DEPTH_KINDS:
        raise _bad(token, f"{kind} is a REST-side fault and takes no conn= (only depth faults do)")
    if "retry" in options and kind != "http":
        raise _bad(token, "retry= (the Retry-After of an injected 429/418) applies to http faults only")
    every, count, conn = options.get("every"), options.get("count", 1), options.get("conn")
    return Fault(kind, at, symbol, seconds, status, ms, every, count, conn, options.get("retry"))


def _lost_response(
    token: str, symbol: str | None, at: int | None, args: list[str], options: Mapping[str, int]
) -> Fault:
    """``lost-response@N[:timeout=S|:reset|:503]`` and its options (``every=``, ``count=``)."""
    if at is None:
        raise _bad(token, "lost-response needs @N (the order placement it applies to)")
    if symbol is not None:
        raise _bad(token, "lost-response applies to the server's order placements and cannot be scoped")
    if len(args) > 1:
        raise _bad(token, "lost-response takes one mode: timeout=S, reset or 503")
    mode, seconds = "reset", None
    if args:
        text = args[0]
        if text.startswith("timeout="):
            mode, seconds = "timeout", _seconds(token, text.partition("=")[2])
        elif text in ("reset", "503"):
            mode = text
        else:
            raise _bad(token, f"unknown lost-response mode {text!r} (timeout=S, reset or 503)")
    for name in ("conn", "retry"):
        if name in options:
            raise _bad(token, f"lost-response takes no {name}= (only every= and count=)")
    return Fault(
        "lost-response",
        at,
        seconds=seconds,
        every=options.get("every"),
        count=options.get("count", 1),
        mode=mode,
    )


def parse_faults(spec: str) -> list[Fault]:
    """Parse a ``--faults`` spec; raises ``ValueError`` naming the offending token."""
    faults = []
    for raw in spec.split(","):
        token = raw.strip()
        if token:
            faults.append(_parse_token(token))
    return faults


_ITEM_KEYS: Final = {
    "kind",
    "at",
    "symbol",
    "seconds",
    "status",
    "ms",
    "every",
    "count",
    "conn",
    "retry",
    "mode",
}


def _from_item(item: Any, where: str) -> Fault:
    """One scenario item: a spec token string or a table; validated like a token."""
    if isinstance(item, str):
        return _parse_token(item.strip())
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: a fault must be a spec string or a table, got {item!r}")
    unknown = set(item) - _ITEM_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} in {dict(item)!r}")
    kind = item.get("kind")
    if not isinstance(kind, str):
        raise ValueError(f"{where}: a fault table needs a string 'kind', got {dict(item)!r}")
    token = kind
    if item.get("at") is not None:
        token += f"@{item['at']}"
    if kind in ORDER_KINDS:
        token += _lost_mode_text(item)
    else:
        for key in ("seconds", "status", "ms"):
            if item.get(key) is not None:
                token += f":{item[key]}"
        if item.get("mode") is not None:
            raise ValueError(f"{where}: 'mode' applies to lost-response only, got {dict(item)!r}")
    for key in _OPTIONS:
        if item.get(key) is not None:
            token += f":{key}={item[key]}"
    if item.get("symbol") is not None:
        token = f"{item['symbol']}:{token}"
    try:
        return _parse_token(token)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _lost_mode_text(item: Mapping[str, Any]) -> str:
    """A lost-response table's mode as token text: ``mode`` (``seconds`` with ``timeout``;
    ``seconds`` alone means ``timeout``, ``status = 503`` means ``503``)."""
    mode = item.get("mode")
    seconds = item.get("seconds")
    if mode is None and seconds is not None:
        mode = "timeout"
    elif mode is None and item.get("status") is not None:
        mode = str(item["status"])
    if mode is None:
        return ""
    if mode == "timeout":
        return f":timeout={seconds if seconds is not None else ''}"
    return f":{mode}"


def load_scenario(path: str | os.PathLike[str]) -> list[Fault]:
    """Faults of a scenario file: ``.toml`` as TOML, anything else as JSON (then TOML if that fails)."""
    p = Path(path)
    text = p.read_bytes()
    data: Any
    if p.suffix.lower() == ".toml":
        data = tomllib.loads(text.decode())
    else:
        try:
            data = json.loads(text)
        except ValueError as json_error:
            try:
                data = tomllib.loads(text.decode())
            except (ValueError, UnicodeDecodeError):
                raise ValueError(f"{p}: neither JSON nor TOML ({json_error})") from None
    items: list[Any]
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        unknown = set(data) - {"faults", "fault"}
        if unknown:
            raise ValueError(
                f"{p}: unknown top-level key(s) {', '.join(sorted(unknown))} (use faults / fault)"
            )
        items = []
        for key in ("faults", "fault"):
            value = data.get(key, [])
            if isinstance(value, str):
                items.extend(value.split(","))
            elif isinstance(value, list):
                items.extend(value)
            else:
                raise ValueError(f"{p}: {key!r} must be a list, got {value!r}")
    else:
        raise ValueError(f"{p}: a scenario is a list of faults or a table with 'faults'")
    return [_from_item(item, f"{p} fault {i}") for i, item in enumerate(items, 1) if item != ""]


# ------------------------------------------------------------------ the plan


class FaultPlan:
    """The faults to inject and the log of those injected.

    Decisions are pure functions of the message numbers the servers pass in
    (plus, for snapshots, a per-symbol request counter kept here), so a run
    with the same traffic injects the same faults at the same messages.
    ``clock`` (wall time, seconds) only stamps the log.
    """

    def __init__(self, faults: Iterable[Fault] = (), *, clock: Callable[[], float] = time.time) -> None:
        self.faults: list[Fault] = []
        self.log: list[dict[str, Any]] = []
        self._clock = clock
        self._depth: list[Fault] = []
        self._snapshot: list[Fault] = []
        self._http: list[Fault] = []
        self._orders: list[Fault] = []
        self._placements = 0  # order placements that reached the engine: the N of lost-response
        self.retry_after: int | None = None  # Retry-After of the http fault that fired last
        self._skew = 0
        self._skew_logged = False
        self._snapshot_n: dict[str, int] = {}
        self._depth_from = 0  # no depth fault fires below this message number
        for fault in faults:
            self.add(fault)

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> FaultPlan:
        """A plan from a ``--faults`` spec string."""
        return cls(parse_faults(spec), **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> FaultPlan:
        """A plan from a scenario file (JSON or TOML)."""
        return cls(load_scenario(path), **options)

    def add(self, fault: Fault) -> None:
        """Schedule one more fault (also while running: the next decisions see it)."""
        self.faults.append(fault)
        if fault.kind in DEPTH_KINDS:
            self._depth.append(fault)
            self._depth_from = min(f.at or 1 for f in self._depth)
        elif fault.kind in SNAPSHOT_KINDS:
            self._snapshot.append(fault)
        elif fault.kind == "http":
            self._http.append(fault)
        elif fault.kind in ORDER_KINDS:
            self._orders.append(fault)
        elif fault.kind == "skew":
            self._skew += fault.ms or 0
            self._skew_logged = False

    def __bool__(self) -> bool:
        return bool(self.faults)

    def _record(self, kind: str, symbol: str | None, at: int | None, **details: Any) -> None:
        entry: dict[str, Any] = {"kind": kind, "symbol": symbol, "at": at, "time": self._clock()}
        entry.update(details)
        self.log.append(entry)

    def on_depth_event(self, symbol: str, n: int) -> list[Action]:
        """What to do with the ``n``-th depth event (1-based) of ``symbol``: [] means send it as is.

        Call once per depth event of the symbol, before sending it; the actions
        (in spec order) apply to every connection carrying its depth stream, or
        only to the ``connection``-th accepted one when an action names it.
        """
        if n < self._depth_from:
            return []
        actions: list[Action] = []
        for fault in self._depth:
            if (fault.symbol is None or fault.symbol == symbol) and fault.fires_at(n):
                kind = fault.kind
                data = b""
                if kind == "malformed":
                    data = b'{"e":"depthUpdate","E":'  # a torn frame (or malformed_payload(payload))
                elif kind == "unknown":
                    data = unknown_event(symbol, 0)
                seconds = fault.seconds or 0.0
                actions.append(Action(kind, seconds, data, fault.conn, fault))
                details: dict[str, Any] = {"seconds": seconds} if kind in _SECONDS_KINDS else {}
                if fault.conn is not None:
                    details["conn"] = fault.conn
                self._record(kind, symbol, n, **details)
        return actions

    def on_snapshot(self, symbol: str) -> SnapshotAction:
        """How to answer this depth snapshot request of ``symbol`` (counted here, 1-based per symbol)."""
        n = self._snapshot_n.get(symbol, 0) + 1
        self._snapshot_n[symbol] = n
        stale = False
        delay = 0.0
        for fault in self._snapshot:
            if (fault.symbol is None or fault.symbol == symbol) and fault.fires_at(n):
                if fault.kind == "stale-snapshot":
                    stale = True
                    self._record("stale-snapshot", symbol, n)
                else:
                    delay += fault.seconds or 0.0
                    self._record("slow-snapshot", symbol, n, seconds=fault.seconds or 0.0)
        if not stale and delay == 0.0:
            return _NO_SNAPSHOT_FAULT
        return SnapshotAction(stale, delay)

    def on_rest_request(self, n: int) -> int | None:
        """The HTTP status to answer the ``n``-th REST request (1-based) with, or None to serve it.

        Several faults on one request: the first in the spec wins.
        """
        self.retry_after = None
        for fault in self._http:
            if fault.fires_at(n):
                self._record("http", None, n, status=fault.status)
                self.retry_after = fault.retry
                return fault.status
        return None

    def on_order_placement(self, endpoint: str) -> Fault | None:
        """Count one order placement the engine is about to execute (``endpoint`` names it,
        ``POST /api/v3/order`` or ``order.place``) and return the ``lost-response`` fault that
        loses its answer, or None to answer it. Logged with the mode and the endpoint."""
        self._placements += 1
        n = self._placements
        for fault in self._orders:
            if fault.fires_at(n):
                details: dict[str, Any] = {"mode": fault.mode, "endpoint": endpoint}
                if fault.mode == "timeout":
                    details["seconds"] = fault.seconds or 0.0
                self._record(fault.kind, None, n, **details)
                return fault
        return None

    def clock_skew_ms(self) -> int:
        """Milliseconds to add to the exchange clock (``time``, ``serverTime``); logged once."""
        if self._skew and not self._skew_logged:
            self._skew_logged = True
            self._record("skew", None, None, ms=self._skew)
        return self._skew
