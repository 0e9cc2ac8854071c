"""Client order IDs: generate unique ones, and refuse illegal ones before they are sent.

Sending our own ``newClientOrderId`` on every order is what makes an unknown outcome
recoverable: the order can be queried by that id (binance-spec §10.4). The exchange's legal
set differs by market (§6.1): the FIX docs give spot ``^[a-zA-Z0-9-_]{1,36}$`` (REST rejects
other characters with ``-1100``), USD-M allows ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``. This module
uses the common subset ``[A-Za-z0-9_-]{1,36}`` for both, so one id is legal everywhere.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from typing import Final

from tickbook._types import Market
from tickbook.trading.errors import RequestError

__all__ = [
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "MAX_PREFIX_LENGTH",
    "check_client_order_id",
    "new_client_order_id",
]

MAX_CLIENT_ORDER_ID_LENGTH: Final = 36
_LEGAL: Final = re.compile(r"[A-Za-z0-9_-]{1,36}")
_LEGAL_CHARS: Final = re.compile(r"[A-Za-z0-9_-]*")

# Lower-case base 36, fixed width: ids from one process sort in creation order, and no id
# depends on case, so a system that folds case cannot merge two of them.
_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_TIME_WIDTH: Final = 9  # milliseconds since 1970: 36**9 ms last until about the year 5188
_COUNTER_WIDTH: Final = 3  # 46,656 ids per millisecond per process; more borrow the next ms
_RANDOM_WIDTH: Final = 8  # 36**8 ≈ 2.8e12: what keeps processes (and forks) apart
_BODY: Final = _TIME_WIDTH + _COUNTER_WIDTH + _RANDOM_WIDTH
MAX_PREFIX_LENGTH: Final = MAX_CLIENT_ORDER_ID_LENGTH - _BODY

# (millisecond, counter) of the last id: each new id takes a strictly greater pair, so ids
# from one process never repeat and sort in creation order, even when the wall clock steps
# back (the counter then keeps going on the last millisecond) or a millisecond overflows.
_last_ms = 0
_last_count = 0
_lock = threading.Lock()
_clock_ns = time.time_ns  # the wall clock; a module attribute so tests can move it


def _reset_lock_in_child() -> None:
    # A fork taken while another thread held the lock would leave the child's copy locked.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def _stamp() -> tuple[int, int]:
    global _last_ms, _last_count
    now_ms = _clock_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            _last_ms, _last_count = now_ms, 0
        elif _last_count + 1 < 36**_COUNTER_WIDTH:
            _last_count += 1
        else:
            _last_ms, _last_count = _last_ms + 1, 0
        return _last_ms, _last_count


def _base36(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        chars.append(_DIGITS[digit])
    return "".join(reversed(chars))


def new_client_order_id(prefix: str = "tb") -> str:
    """A fresh client order ID: ``prefix`` + time (ms) + a per-process counter + randomness.

    The result matches ``[A-Za-z0-9_-]{1,36}`` on both markets. Within a process the time and
    counter make every id different and ids sort in creation order; across processes (or
    after a fork, which copies the counter) the 8 random base-36 characters from ``secrets``
    keep them apart. ``prefix`` may use the same
    characters and at most ``MAX_PREFIX_LENGTH`` (16) of them, so the id stays within 36;
    anything else raises ``ValueError`` rather than producing an id the exchange refuses.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if not _LEGAL_CHARS.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} may only use A-Z, a-z, 0-9, '_' and '-'")
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"prefix {prefix!r} is {len(prefix)} characters; at most {MAX_PREFIX_LENGTH} fit in a "
            f"{MAX_CLIENT_ORDER_ID_LENGTH}-character client order ID"
        )
    now_ms, count = _stamp()
    noise = secrets.randbelow(36**_RANDOM_WIDTH)
    return (
        prefix + _base36(now_ms, _TIME_WIDTH) + _base36(count, _COUNTER_WIDTH) + _base36(noise, _RANDOM_WIDTH)
    )


def check_client_order_id(text: str, market: Market | str, *, param: str = "newClientOrderId") -> str:
    """Return ``text`` when it is a legal client order ID, else raise ``RequestError``.

    The error carries the code the exchange answers (§6.1, §10): spot ``-1100``
    ILLEGAL_CHARS for anything outside ``^[a-zA-Z0-9-_]{1,36}$`` (length included);
    futures ``-4015`` INVALID_CL_ORD_ID_LEN for more than 36 characters and ``-1100`` for an
    illegal character or an empty id. ``param`` names the parameter in the message
    (``origClientOrderId``, ``listClientOrderId``, ``clientAlgoId``...).
    """
    if not isinstance(text, str):
        raise TypeError(f"{param} must be a str, not {type(text).__name__}")
    if _LEGAL.fullmatch(text):
        return text
    illegal = f"Illegal characters found in parameter '{param}'; legal range is '^[a-zA-Z0-9-_]{{1,36}}$'."
    # Refused before sending: no HTTP status (status None), the exchange's code and message.
    if Market.parse(market).is_futures and len(text) > MAX_CLIENT_ORDER_ID_LENGTH:
        raise RequestError("Client order id length should not be more than 36 chars", code=-4015)
    raise RequestError(illegal, code=-1100)
