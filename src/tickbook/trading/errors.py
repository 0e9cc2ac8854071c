"""Typed exceptions for the exchange's error answers, and the classifier that builds them.

Every failed REST (or WebSocket API) request ends as one ``BinanceError`` subclass, chosen so
that the caller's next step follows from the class alone:

=========================  ======================================================================
class                      what the caller does next
=========================  ======================================================================
``NetworkError``           nothing reached the exchange: resending is safe
``UnknownOutcome``         the request may have executed: reconcile (query by client id) before
                           anything else, never resend blindly (spec section 10.4)
``ServerBusy``             a definite failure under load: retry with backoff
``RateLimited``            back off until ``retry_after``; ``IpBanned`` until ``until_ms``
``WafBlocked``             stop and inspect the request (HTTP 403, spec section 5.2)
``AuthenticationError``    fix the key or its permissions; ``TimestampError``: resync the clock
``RequestError``           a client bug: never retry unchanged
``OrderRejected``          the engine refused the order; ``NoSuchOrder``, ``DuplicateOrder``,
                           ``FilterFailure`` and ``CancelReplacePartial`` narrow it down
=========================  ======================================================================

The mapping from HTTP status, error code and message is in ``error_from_response``; the
exchange's rules it implements are in the spec's sections 5.2 (429/418/403/409/408), 9
(WebSocket API statuses) and 10 (codes, and the 5xx rules that drive retries).

Exceptions carry no secrets: the endpoint is kept without its query string (which holds the
signature), and nothing from the request's parameters or headers is stored. They pickle and
unpickle to an equal state, so they cross process boundaries (worker pools, journals).
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from tickbook._types import Market

__all__ = [
    "ERROR_NAMES",
    "FUTURES_ERROR_NAMES",
    "FUTURES_FILTER_CODES",
    "AuthenticationError",
    "BinanceError",
    "CancelReplacePartial",
    "DuplicateOrder",
    "FilterFailure",
    "IpBanned",
    "NetworkError",
    "NoSuchOrder",
    "OrderRejected",
    "RateLimited",
    "RequestError",
    "ServerBusy",
    "TimestampError",
    "UnknownOutcome",
    "WafBlocked",
    "error_from_payload",
    "error_from_response",
    "error_name",
]


def _restore(cls: type[BinanceError], state: dict[str, Any]) -> BinanceError:
    """Rebuild a pickled exception without calling its (keyword-only) constructor."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, state.get("msg", ""))
    exc.__dict__.update(state)
    return exc


class BinanceError(Exception):
    """Base of every error this package raises for an exchange request.

    ``code`` is the exchange's error code (``-1013``), ``None`` when the answer had none (an
    HTML page, an empty body) or nothing was answered. ``status`` is the HTTP status, ``None``
    for local refusals and network failures. ``method`` and ``endpoint`` name the request
    (``"POST"``, ``"/api/v3/order"``), ``client_order_id`` the order it concerned, if any.
    ``data`` holds extra structured detail the exchange sent (the WebSocket API's
    ``error.data``), never request parameters.
    """

    code: int | None
    msg: str
    status: int | None
    method: str
    endpoint: str
    client_order_id: str | None
    data: Any

    def __init__(
        self,
        msg: str,
        *,
        code: int | None = None,
        status: int | None = None,
        method: str = "",
        endpoint: str = "",
        client_order_id: str | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code
        self.status = status
        self.method = method.upper()
        # The query string carries the signature and may carry a listenKey: never keep it.
        self.endpoint = endpoint.split("?", 1)[0]
        self.client_order_id = client_order_id
        self.data = data

    @property
    def name(self) -> str | None:
        """The documented name of ``code`` (``"INVALID_MESSAGE"``), when there is one."""
        return None if self.code is None else ERROR_NAMES.get(self.code)

    def __str__(self) -> str:
        if self.code is not None:
            head = f"[{self.code} {self.msg}]"
        elif self.status is not None:
            head = f"[HTTP {self.status} {self.msg}]"
        else:
            head = f"[{self.msg}]"
        parts = [head]
        target = " ".join(p for p in (self.method, self.endpoint) if p)
        if target:
            parts.append(target)
        if self.client_order_id:
            parts.append(f"(clientOrderId={self.client_order_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.msg!r}, code={self.code!r}, status={self.status!r}, "
            f"method={self.method!r}, endpoint={self.endpoint!r}, "
            f"client_order_id={self.client_order_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default pickling calls cls(*args), which cannot pass the keyword-only
        # arguments of the subclasses (FilterFailure's ``filter`` is required).
        return (_restore, (type(self), dict(self.__dict__)))


class NetworkError(BinanceError):
    """The connection failed before the request was sent: nothing reached the exchange."""


class UnknownOutcome(BinanceError):
    """The request may or may not have executed (spec section 10.4).

    Spot 5xx, ``-1000``, ``-1006``, ``-1007``, futures 503 "Unknown error...", HTTP 408, and a
    timeout or lost connection after the bytes were sent. For an order: query it by its client
    id before doing anything else; resend with the same id only once the exchange answers
    ``-2013`` and ``timestamp + recvWindow`` has passed.
    """


class RateLimited(BinanceError):
    """HTTP 429: ``-1003`` (request weight) or ``-1015`` (unfilled orders) (spec section 5.2).

    ``retry_after`` is the wait in seconds from the ``Retry-After`` header (REST) or derived
    from ``error.data.retryAfter`` (WebSocket API), ``None`` when the exchange gave none.
    """

    retry_after: float | None

    def __init__(self, msg: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self.retry_after = retry_after


class IpBanned(RateLimited):
    """HTTP 418: the IP is banned for continuing after 429s; bans escalate to 3 days.

    ``until_ms`` is when the ban ends (epoch ms), from the message's "banned until <ms>", the
    WebSocket API's ``retryAfter`` or the ``Retry-After`` header; ``None`` when unknown.
    """

    until_ms: int | None

    def __init__(
        self, msg: str, *, until_ms: int | None = None, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(msg, retry_after=retry_after, **kwargs)
        self.until_ms = until_ms


class WafBlocked(BinanceError):
    """HTTP 403: the web application firewall refused the request (rate or security rule)."""


class AuthenticationError(BinanceError):
    """The key, its IP whitelist, its permissions or the signature was refused.

    ``-1002``, ``-1022``, ``-2014``, ``-2015`` and HTTP 401 (the WebSocket API's answer when a
    session's key is revoked).
    """


class TimestampError(AuthenticationError):
    """``-1021``: the timestamp is outside ``recvWindow`` or too far ahead of the server."""


class RequestError(BinanceError):
    """The request itself is wrong (``-11xx``, ``-12xx``, futures ``-40xx`` parameter checks).

    Resending it unchanged fails the same way.
    """


class OrderRejected(BinanceError):
    """The exchange refused the order (or its cancel, amend or replace); the message says why."""


class NoSuchOrder(OrderRejected):
    """``-2013``, or "Unknown order sent.": the order does not exist (or is no longer open)."""


class DuplicateOrder(OrderRejected):
    """ "Duplicate order sent." (spot ``-2010``) or futures ``-4116``: the client id is in use.

    The original order with that id is still open.
    """


class FilterFailure(OrderRejected):
    """A symbol filter refused the order (spec section 7).

    ``filter`` is the filter's name (``"PRICE_FILTER"``, ``"LOT_SIZE"``, ...), ``field`` the
    parameter it judged when known (``"price"``, ``"quantity"``), and ``local`` is true when
    this package refused the order before sending it, with the code the exchange would answer.
    """

    filter: str
    field: str | None
    local: bool

    def __init__(
        self,
        msg: str,
        *,
        filter: str,
        field: str | None = None,
        local: bool = False,
        code: int | None = -1013,
        status: int | None = 400,
        method: str = "",
        endpoint: str = "",
        client_order_id: str | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(
            msg,
            code=code,
            status=status,
            method=method,
            endpoint=endpoint,
            client_order_id=client_order_id,
            data=data,
        )
        self.filter = filter
        self.field = field
        self.local = local

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (refused locally)" if self.local else text


class ServerBusy(BinanceError):
    """A definite failure under load: nothing executed, retry with backoff.

    ``-1008`` (throttled), ``-1001`` outside spot 5xx answers, and the futures 503 messages
    "Service Unavailable." and "Internal error; unable to process your request. Please try
    again." (spec section 10.4).
    """


class CancelReplacePartial(OrderRejected):
    """Spot ``cancelReplace`` answered ``-2021``: one half succeeded, the other failed.

    HTTP 409, or 429 when ``orderRateLimitExceededMode=CANCEL_ONLY`` let the cancel through
    but refused the new order (spec section 6.1). ``data`` is the whole ``data`` object;
    ``models.CancelReplaceResponse.from_data(exc.data)`` decodes both halves.

    The four attributes are the body's ``data`` members as raw values: ``cancel_result`` and
    ``new_order_result`` are ``"SUCCESS"``, ``"FAILURE"`` or ``"NOT_ATTEMPTED"``;
    ``cancel_response`` and ``new_order_response`` are the canceled order (or its error
    ``{"code", "msg"}``) and the new order (or its error).
    """

    cancel_result: str | None
    new_order_result: str | None
    cancel_response: Any
    new_order_response: Any

    def __init__(
        self,
        msg: str,
        *,
        cancel_result: str | None = None,
        new_order_result: str | None = None,
        cancel_response: Any = None,
        new_order_response: Any = None,
        code: int | None = -2021,
        status: int | None = 409,
        **kwargs: Any,
    ) -> None:
        super().__init__(msg, code=code, status=status, **kwargs)
        self.cancel_result = cancel_result
        self.new_order_result = new_order_result
        self.cancel_response = cancel_response
        self.new_order_response = new_order_response


# --------------------------------------------------------------------------- code names

# Every code of spec section 10 with its documented name; where spot and futures share a
# number with different meanings, this table holds the spot name and FUTURES_ERROR_NAMES the
# futures one. Codes without a symbolic name in the docs carry a short description.
_SPOT_NAMES: dict[int, str] = {
    -1000: "UNKNOWN",
    -1001: "DISCONNECTED",
    -1002: "UNAUTHORIZED",
    -1003: "TOO_MANY_REQUESTS",
    -1006: "UNEXPECTED_RESP",
    -1007: "TIMEOUT",
    -1008: "SERVER_BUSY",
    -1010: "ERROR_MSG_RECEIVED",
    -1013: "INVALID_MESSAGE",
    -1014: "UNKNOWN_ORDER_COMPOSITION",
    -1015: "TOO_MANY_ORDERS",
    -1016: "SERVICE_SHUTTING_DOWN",
    -1020: "UNSUPPORTED_OPERATION",
    -1021: "INVALID_TIMESTAMP",
    -1022: "INVALID_SIGNATURE",
    -1033: "COMP_ID_IN_USE",
    -1034: "TOO_MANY_CONNECTIONS",
    -1035: "LOGGED_OUT",
    -1100: "ILLEGAL_CHARS",
    -1101: "TOO_MANY_PARAMETERS",
    -1102: "MANDATORY_PARAM_EMPTY_OR_MALFORMED",
    -1103: "UNKNOWN_PARAM",
    -1104: "UNREAD_PARAMETERS",
    -1105: "PARAM_EMPTY",
    -1106: "PARAM_NOT_REQUIRED",
    -1108: "PARAM_OVERFLOW",
    -1111: "BAD_PRECISION",
    -1112: "NO_DEPTH",
    -1114: "TIF_NOT_REQUIRED",
    -1115: "INVALID_TIF",
    -1116: "INVALID_ORDER_TYPE",
    -1117: "INVALID_SIDE",
    -1118: "EMPTY_NEW_CL_ORD_ID",
    -1119: "EMPTY_ORG_CL_ORD_ID",
    -1120: "BAD_INTERVAL",
    -1121: "BAD_SYMBOL",
    -1122: "INVALID_SYMBOLSTATUS",
    -1125: "INVALID_LISTEN_KEY",
    -1127: "MORE_THAN_XX_HOURS",
    -1128: "OPTIONAL_PARAMS_BAD_COMBO",
    -1130: "INVALID_PARAMETER",
    -1134: "BAD_STRATEGY_TYPE",
    -1135: "INVALID_JSON",
    -1139: "INVALID_TICKER_TYPE",
    -1145: "INVALID_CANCEL_RESTRICTIONS",
    -1151: "DUPLICATE_SYMBOLS",
    -1152: "INVALID_SBE_HEADER",
    -1153: "UNSUPPORTED_SCHEMA_ID",
    -1155: "SBE_DISABLED",
    -1158: "OCO_ORDER_TYPE_REJECTED",
    -1160: "OCO_ICEBERGQTY_TIMEINFORCE",
    -1161: "DEPRECATED_SCHEMA",
    -1165: "BUY_OCO_LIMIT_MUST_BE_BELOW",
    -1166: "SELL_OCO_LIMIT_MUST_BE_ABOVE",
    -1168: "BOTH_OCO_ORDERS_CANNOT_BE_LIMIT",
    # -1169 ... -1191: FIX session and tag errors (not sent on REST or the WebSocket API).
    -1169: "INVALID_TAG_NUMBER",
    -1170: "TAG_NOT_DEFINED_IN_MESSAGE",
    -1171: "TAG_APPEARS_MORE_THAN_ONCE",
    -1172: "TAG_OUT_OF_ORDER",
    -1173: "GROUP_FIELDS_OUT_OF_ORDER",
    -1174: "INVALID_COMPONENT",
    -1175: "RESET_SEQ_NUM_SUPPORT",
    -1176: "ALREADY_LOGGED_IN",
    -1177: "GARBLED_MESSAGE",
    -1178: "BAD_SENDER_COMPID",
    -1179: "BAD_SEQ_NUM",
    -1180: "EXPECTED_LOGON",
    -1181: "TOO_MANY_MESSAGES",
    -1182: "PARAMS_BAD_COMBO",
    -1183: "NOT_ALLOWED_IN_DROP_COPY_SESSIONS",
    -1184: "DROP_COPY_SESSION_NOT_ALLOWED",
    -1185: "DROP_COPY_SESSION_REQUIRED",
    -1186: "NOT_ALLOWED_IN_ORDER_ENTRY_SESSIONS",
    -1187: "NOT_ALLOWED_IN_MARKET_DATA_SESSIONS",
    -1188: "INCORRECT_NUM_IN_GROUP_COUNT",
    -1189: "DUPLICATE_ENTRIES_IN_A_GROUP",
    -1190: "INVALID_REQUEST_ID",
    -1191: "TOO_MANY_SUBSCRIPTIONS",
    -1194: "INVALID_TIME_UNIT",
    -1196: "BUY_OCO_STOP_LOSS_MUST_BE_ABOVE",
    -1197: "SELL_OCO_STOP_LOSS_MUST_BE_BELOW",
    -1198: "BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW",
    -1199: "SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE",
    -1210: "INVALID_PEG_PRICE_TYPE",
    -1211: "INVALID_PEG_OFFSET_TYPE",
    -1220: "SYMBOL_DOES_NOT_MATCH_STATUS",
    -1221: "INVALID_SBE_MESSAGE_FIELD",
    -1222: "OPO_WORKING_MUST_BE_BUY",
    -1223: "OPO_PENDING_MUST_BE_SELL",
    -1224: "WORKING_PARAM_REQUIRED",
    -1225: "PENDING_PARAM_NOT_REQUIRED",
    -2010: "NEW_ORDER_REJECTED",
    -2011: "CANCEL_REJECTED",
    -2013: "NO_SUCH_ORDER",
    -2014: "BAD_API_KEY_FMT",
    -2015: "REJECTED_MBX_KEY",
    -2016: "NO_TRADING_WINDOW",
    -2021: "ORDER_CANCEL_REPLACE_PARTIALLY_FAILED",
    -2022: "ORDER_CANCEL_REPLACE_FAILED",
    -2026: "ORDER_ARCHIVED",
    -2035: "SUBSCRIPTION_ACTIVE",
    -2036: "SUBSCRIPTION_INACTIVE",
    -2038: "ORDER_AMEND_REJECTED",
    -2039: "CLIENT_ORDER_ID_INVALID",
    -2042: "MAXIMUM_SUBSCRIPTION_IDS",
    -2043: "NO_REFERENCE_PRICE",
}

# Futures-only codes of spec section 10.3, plus the futures meaning of shared numbers.
_FUTURES_NAMES: dict[int, str] = {
    -1023: "START_TIME_GREATER_THAN_END_TIME",
    -1099: "NOT_FOUND",
    -1108: "BAD_ASSET",
    -1136: "INVALID_NEW_ORDER_RESP_TYPE",
    -2018: "BALANCE_NOT_SUFFICIENT",
    -2019: "MARGIN_NOT_SUFFICIENT",
    -2020: "UNABLE_TO_FILL",
    -2021: "ORDER_WOULD_IMMEDIATELY_TRIGGER",
    -2022: "REDUCE_ONLY_REJECT",
    -2023: "USER_IN_LIQUIDATION",
    -2024: "POSITION_NOT_SUFFICIENT",
    -2025: "MAX_OPEN_ORDER_EXCEEDED",
    -2027: "MAX_LEVERAGE_RATIO",
    -2028: "MIN_LEVERAGE_RATIO",
    -4000: "INVALID_ORDER_STATUS",
    -4001: "PRICE_LESS_THAN_ZERO",
    -4002: "PRICE_GREATER_THAN_MAX_PRICE",
    -4003: "QTY_LESS_THAN_ZERO",
    -4004: "QTY_LESS_THAN_MIN_QTY",
    -4005: "QTY_GREATER_THAN_MAX_QTY",
    -4013: "PRICE_LESS_THAN_MIN_PRICE",
    -4014: "PRICE_NOT_INCREASED_BY_TICK_SIZE",
    -4015: "INVALID_CL_ORD_ID_LEN",
    -4016: "PRICE_HIGHTER_THAN_MULTIPLIER_UP",
    -4021: "INVALID_DEPTH_LIMIT",
    -4023: "QTY_NOT_INCREASED_BY_STEP_SIZE",
    -4024: "PRICE_LOWER_THAN_MULTIPLIER_DOWN",
    -4028: "INVALID_LEVERAGE",
    -4033: "INSURANCE_ACCOUNT_NOT_FOUND",
    -4046: "NO_NEED_TO_CHANGE_MARGIN_TYPE",
    -4047: "THERE_EXISTS_OPEN_ORDERS",
    -4048: "THERE_EXISTS_QUANTITY",
    -4049: "ADD_ISOLATED_MARGIN_REJECT",
    -4050: "CROSS_BALANCE_INSUFFICIENT",
    -4051: "ISOLATED_BALANCE_INSUFFICIENT",
    -4052: "NO_NEED_TO_CHANGE_AUTO_ADD_MARGIN",
    -4053: "AUTO_ADD_CROSSED_MARGIN_REJECT",
    -4054: "ADD_ISOLATED_MARGIN_NO_POSITION_REJECT",
    -4055: "AMOUNT_MUST_BE_POSITIVE",
    -4056: "INVALID_API_KEY_TYPE",
    -4057: "INVALID_RSA_PUBLIC_KEY",
    -4058: "MAX_PRICE_TOO_LARGE",
    -4059: "NO_NEED_TO_CHANGE_POSITION_SIDE",
    -4060: "INVALID_POSITION_SIDE",
    -4061: "POSITION_SIDE_NOT_MATCH",
    -4109: "INACTIVE_ACCOUNT",
    -4116: "DUPLICATED_CLIENT_ORDER_ID",
    -4117: "STOP_ORDER_TRIGGERING",
    -4118: "REDUCE_ONLY_MARGIN_CHECK_FAILED",
    -4120: "STOP_ORDER_SWITCH_ALGO",
    -4131: "MARKET_ORDER_REJECT",
    -4164: "MIN_NOTIONAL",
    -4531: "POSITION_MODE_CHANGE_BLOCKED",  # no symbolic name documented: a description
}

ERROR_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {**{c: n for c, n in _FUTURES_NAMES.items() if c not in _SPOT_NAMES}, **_SPOT_NAMES}
)
"""Code -> documented name: spot names, plus futures-only codes (``error_name`` picks a market)."""

FUTURES_ERROR_NAMES: Final[Mapping[int, str]] = MappingProxyType({**_SPOT_NAMES, **_FUTURES_NAMES})
"""Code -> documented name with the futures meaning of shared numbers (-1108, -2021, -2022)."""

FUTURES_FILTER_CODES: Final[Mapping[int, tuple[str, str | None]]] = MappingProxyType(
    {
        -4001: ("PRICE_FILTER", "price"),  # price < 0
        -4002: ("PRICE_FILTER", "price"),  # price > maxPrice
        -4003: ("LOT_SIZE", "quantity"),  # quantity <= 0
        -4004: ("LOT_SIZE", "quantity"),  # quantity < minQty
        -4005: ("LOT_SIZE", "quantity"),  # quantity > maxQty
        -4006: ("PRICE_FILTER", "triggerPrice"),  # stop (trigger) price <= 0
        -4007: ("PRICE_FILTER", "triggerPrice"),  # stop (trigger) price > maxPrice
        -4013: ("PRICE_FILTER", "price"),  # price < minPrice
        -4014: ("PRICE_FILTER", "price"),  # (price - minPrice) % tickSize != 0
        -4016: ("PERCENT_PRICE", "price"),  # above mark * multiplierUp
        -4023: ("LOT_SIZE", "quantity"),  # (quantity - minQty) % stepSize != 0
        -4024: ("PERCENT_PRICE", "price"),  # below mark * multiplierDown
        -4131: ("PERCENT_PRICE", None),  # MARKET order: best counter price outside the band
        -4164: ("MIN_NOTIONAL", None),  # notional below the minimum and not reduce-only
    }
)
"""Futures filter codes (spec sections 7 and 10.3) -> (filter name, parameter judged).

The quantity codes are named ``LOT_SIZE``: the answer does not say whether MARKET_LOT_SIZE
judged it (``SymbolRules.futures_lot_filter`` tells, from the order's type, and the trading
layer renames its refusals with it). -4013/-4014 also judge a trigger price."""


def error_name(code: int | None, market: Market | str = Market.SPOT) -> str | None:
    """The documented name of ``code`` on ``market``, or ``None`` when it has none."""
    if code is None:
        return None
    table = FUTURES_ERROR_NAMES if Market.parse(market).is_futures else ERROR_NAMES
    return table.get(code)


# --------------------------------------------------------------------------- classifier

_AUTH_CODES: Final = frozenset({-1002, -1022, -2014, -2015})
_UNKNOWN_CODES: Final = frozenset({-1000, -1006, -1007})
# Spot engine refusals under these codes carry the real reason in the message (section 10.3).
_SPOT_REJECT_CODES: Final = frozenset({-1010, -2010, -2011, -2016, -2021, -2022, -2026, -2038, -2039})

_FILTER_RE: Final = re.compile(r"Filter failure:\s*([A-Z_]+)")
_BANNED_UNTIL_RE: Final = re.compile(r"banned until (\d{10,})")
_TAG_RE: Final = re.compile(r"<[^>]*>")
_SPACE_RE: Final = re.compile(r"\s+")
_MAX_TEXT: Final = 200  # characters of a non-JSON body kept in the message

# Futures 503 messages (spec section 10.4), compared without case or trailing punctuation.
_FUTURES_503_DEFINITE: Final = (
    "service unavailable",
    "internal error; unable to process your request",
)
_STATUS_TEXT: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    418: "I'm a teapot (IP banned)",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the only form the exchange sends); junk reads as unknown."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None


def _body_text(body: bytes) -> str:
    """A short, readable line from a body that is not the exchange's JSON (a WAF page, ...)."""
    text = body.decode("utf-8", errors="replace")
    if "<" in text and ">" in text:
        # Keep the page's title when it has one: it says more than the boilerplate after it.
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else _TAG_RE.sub(" ", text)
        text = html.unescape(text)
    text = _SPACE_RE.sub(" ", text).strip()
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 3] + "..."
    return text


def _parse_body(body: bytes | bytearray | memoryview | str | None) -> tuple[Mapping[str, Any] | None, str]:
    """The JSON error object (or ``None``) and a readable text of the body."""
    if body is None:
        return None, ""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if not raw.strip():
        return None, ""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, _body_text(raw)
    if isinstance(value, dict):
        # A WebSocket API answer wraps the error object: {"id", "status", "error": {...}}.
        inner = value.get("error")
        if isinstance(inner, dict) and "code" in inner:
            return inner, ""
        return value, ""
    return None, _body_text(raw)


def _int_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _normalized(msg: str) -> str:
    return msg.strip().rstrip(".!").strip().lower()


def error_from_response(
    status: int,
    body: bytes | bytearray | memoryview | str | None,
    *,
    method: str = "",
    endpoint: str = "",
    client_order_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    market: Market | str = Market.SPOT,
    now_ms: int | None = None,
) -> BinanceError:
    """Classify one failed answer into the exception the caller should see.

    ``status`` is the HTTP status (or the WebSocket API's ``status``), ``body`` the raw answer
    (the exchange's ``{"code", "msg"}`` JSON, a WebSocket API frame with ``error``, an HTML
    page or nothing: all are handled). ``headers`` give ``Retry-After`` for 429/418.
    ``market`` matters for the codes and statuses whose meaning differs between spot and
    futures. ``now_ms`` (epoch ms, default the local clock) turns a relative wait into
    ``IpBanned.until_ms``. Never raises.
    """
    payload, text = _parse_body(body)
    return error_from_payload(
        status,
        payload,
        text=text,
        method=method,
        endpoint=endpoint,
        client_order_id=client_order_id,
        headers=headers,
        market=market,
        now_ms=now_ms,
    )


def error_from_payload(
    status: int | None,
    payload: Mapping[str, Any] | None,
    *,
    text: str = "",
    method: str = "",
    endpoint: str = "",
    client_order_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    market: Market | str = Market.SPOT,
    now_ms: int | None = None,
) -> BinanceError:
    """``error_from_response`` for an already decoded error object.

    The WebSocket API hands errors over as ``{"code", "msg", "data"?}`` inside a frame whose
    ``status`` is HTTP-like (spec section 9); pass that object and status here.
    """
    try:
        mkt = Market.parse(market)
    except ValueError:
        mkt = Market.SPOT  # a bad market name must not hide the exchange's answer
    code = _int_code(payload.get("code")) if payload is not None else None
    raw_msg = payload.get("msg") if payload is not None else None
    msg = str(raw_msg) if raw_msg is not None else ""
    data = payload.get("data") if payload is not None else None
    if not msg:
        msg = text or (_STATUS_TEXT.get(status, "error") if status is not None else "error")
    common: dict[str, Any] = {
        "code": code,
        "status": status,
        "method": method,
        "endpoint": endpoint,
        "client_order_id": client_order_id,
    }
    if data is not None:
        common["data"] = data

    # A cancelReplace whose cancel went through must say so whatever the status: 409, or 429
    # when orderRateLimitExceededMode=CANCEL_ONLY blocked only the new order (spec 6.1).
    if not mkt.is_futures and (
        (status == 409 and code in (-2021, None))
        or (code == -2021 and isinstance(data, Mapping) and "cancelResult" in data)
    ):
        return _cancel_replace(msg, data, common)

    # Rate limits and bans next: their codes and statuses win over everything else.
    if status == 418 or "banned until" in msg:
        return _banned(msg, data, headers, now_ms, common)
    if status == 429 or code in (-1003, -1015, -1034):
        retry_after = _seconds(_header(headers, "Retry-After"))
        if retry_after is None:
            until = _retry_after_ms(data)
            if until is not None:
                retry_after = max(0.0, (until - _now(now_ms)) / 1000)
        return RateLimited(msg, retry_after=retry_after, **common)

    if code in _AUTH_CODES or (code is None and status == 401):
        return AuthenticationError(msg, **common)
    if code == -1021:
        return TimestampError(msg, **common)

    if status == 403:
        # The firewall answers with an HTML page; say so instead of echoing the page.
        if payload is None:
            msg = "request blocked by the web application firewall" + (f": {text}" if text else "")
        return WafBlocked(msg, **common)

    if status == 408:
        return UnknownOutcome(msg, **common)

    if code == -1008:
        return ServerBusy(msg, **common)
    if status is not None and status >= 500:
        return _server_error(msg, code, status, mkt, common)
    if code in _UNKNOWN_CODES:
        return UnknownOutcome(msg, **common)
    if code == -1001:
        return ServerBusy(msg, **common)

    if code is None:
        if status is not None and 400 <= status < 500:
            return RequestError(msg, **common)
        return BinanceError(msg, **common)
    return _by_code(msg, code, mkt, common)


def _now(now_ms: int | None) -> int:
    return now_ms if now_ms is not None else time.time_ns() // 1_000_000


def _retry_after_ms(data: Any) -> int | None:
    """The WebSocket API's ``error.data.retryAfter``: an epoch-ms timestamp (spec section 5.2)."""
    if isinstance(data, Mapping):
        value = _int_code(data.get("retryAfter"))
        if value is not None and value > 0:
            return value
    return None


def _banned(
    msg: str, data: Any, headers: Mapping[str, str] | None, now_ms: int | None, common: dict[str, Any]
) -> IpBanned:
    now = _now(now_ms)
    retry_after = _seconds(_header(headers, "Retry-After"))
    until: int | None = None
    match = _BANNED_UNTIL_RE.search(msg)
    if match:
        # The message names the exact end of the ban; prefer it over a rounded header.
        until = int(match.group(1))
    if until is None:
        until = _retry_after_ms(data)
    if until is None and retry_after is not None:
        until = now + int(retry_after * 1000)
    if retry_after is None and until is not None:
        retry_after = max(0.0, (until - now) / 1000)
    return IpBanned(msg, until_ms=until, retry_after=retry_after, **common)


def _cancel_replace(msg: str, data: Any, common: dict[str, Any]) -> CancelReplacePartial:
    parts = data if isinstance(data, Mapping) else {}
    common = {**common, "code": common["code"] if common["code"] is not None else -2021, "data": data}
    return CancelReplacePartial(
        msg,
        cancel_result=parts.get("cancelResult"),
        new_order_result=parts.get("newOrderResult"),
        cancel_response=parts.get("cancelResponse"),
        new_order_response=parts.get("newOrderResponse"),
        **common,
    )


def _server_error(
    msg: str, code: int | None, status: int, market: Market, common: dict[str, Any]
) -> BinanceError:
    """5xx answers (spec section 10.4).

    Spot: every 5xx leaves the outcome unknown, whatever the code (``-1008`` is handled
    before, being a refusal by throttling). Futures: the two documented 503 messages that say
    "try again" are definite failures, and so is ``-1001`` (the same message under a code);
    everything else ("Unknown error, please check your request or try again later.", other
    statuses) is unknown.
    """
    if market.is_futures:
        text = _normalized(msg)
        if code == -1001 or any(text.startswith(m) for m in _FUTURES_503_DEFINITE):
            return ServerBusy(msg, **common)
    return UnknownOutcome(msg, **common)


def _by_code(msg: str, code: int, market: Market, common: dict[str, Any]) -> BinanceError:
    """Classify an error code that is neither a rate limit, an auth failure nor a 5xx."""
    filter_match = _FILTER_RE.search(msg)
    if market.is_futures:
        if code in FUTURES_FILTER_CODES:
            name, field = FUTURES_FILTER_CODES[code]
            return FilterFailure(msg, filter=name, field=field, **common)
        if code == -4116:
            return DuplicateOrder(msg, **common)
        if code == -2013:
            return NoSuchOrder(msg, **common)
        if code == -1013 and filter_match:
            return FilterFailure(msg, filter=filter_match.group(1), **common)
        if -2099 <= code <= -2010 or -4199 <= code <= -4100:
            return OrderRejected(msg, **common)
        if code == -1013:
            return OrderRejected(msg, **common)
        return RequestError(msg, **common)

    if filter_match and code in (-1013, -2010):
        return FilterFailure(msg, filter=filter_match.group(1), **common)
    if code == -2013 or (code in (-2010, -2011) and _normalized(msg) == "unknown order sent"):
        return NoSuchOrder(msg, **common)
    if code == -2010 and _normalized(msg) == "duplicate order sent":
        return DuplicateOrder(msg, **common)
    if code == -1013 or code in _SPOT_REJECT_CODES:
        return OrderRejected(msg, **common)
    return RequestError(msg, **common)
