"""The error classifier: every exchange answer lands in the class its next step needs."""

from __future__ import annotations

import json
import pickle
import random
from typing import Any

import pytest

from tickbook._types import Market
from tickbook.trading.errors import (
    ERROR_NAMES,
    FUTURES_ERROR_NAMES,
    AuthenticationError,
    BinanceError,
    CancelReplacePartial,
    DuplicateOrder,
    FilterFailure,
    IpBanned,
    NetworkError,
    NoSuchOrder,
    OrderRejected,
    RateLimited,
    RequestError,
    ServerBusy,
    TimestampError,
    UnknownOutcome,
    WafBlocked,
    error_from_payload,
    error_from_response,
    error_name,
)

NOW_MS = 1_750_000_000_000
BANNED_MSG = "Way too much request weight used; IP banned until 1750000120000. Please use WebSocket Streams."
THROTTLED_MSG = "Request throttled by system-level protection. Reduce-only/close-position orders are exempt."
INTERNAL_MSG = "Internal error; unable to process your request. Please try again."
UNKNOWN_MSG = "Unknown error, please check your request or try again later."
PARTIAL_DATA = {
    "cancelResult": "SUCCESS",
    "newOrderResult": "FAILURE",
    "cancelResponse": {"symbol": "BTCUSDT", "orderId": 3, "clientOrderId": "x"},
    "newOrderResponse": {"code": -2010, "msg": "Order would immediately match and take."},
}


def body(code: int, msg: str, **extra: Any) -> bytes:
    return json.dumps({"code": code, "msg": msg, **extra}).encode()


def classify(
    status: int,
    raw: bytes | str | None,
    market: Market | str = Market.SPOT,
    headers: dict[str, str] | None = None,
) -> BinanceError:
    return error_from_response(
        status,
        raw,
        method="POST",
        endpoint="/api/v3/order",
        client_order_id="abc",
        headers=headers,
        market=market,
        now_ms=NOW_MS,
    )


# (status, body, market, expected exact class). One row per rule of spec sections 5.2, 9, 10.
CASES: list[tuple[str, int, bytes | str | None, Market, type[BinanceError]]] = [
    # 10.3 engine refusals, spot
    ("spot filter", 400, body(-1013, "Filter failure: PRICE_FILTER"), Market.SPOT, FilterFailure),
    ("spot filter under -2010", 400, body(-2010, "Filter failure: NOTIONAL"), Market.SPOT, FilterFailure),
    ("duplicate id", 400, body(-2010, "Duplicate order sent."), Market.SPOT, DuplicateOrder),
    ("no such order", 400, body(-2013, "Order does not exist."), Market.SPOT, NoSuchOrder),
    ("cancel of a gone order", 400, body(-2011, "Unknown order sent."), Market.SPOT, NoSuchOrder),
    (
        "insufficient balance",
        400,
        body(-2010, "Account has insufficient balance for requested action."),
        Market.SPOT,
        OrderRejected,
    ),
    (
        "maker would take",
        400,
        body(-2010, "Order would immediately match and take."),
        Market.SPOT,
        OrderRejected,
    ),
    (
        "cancel restrictions",
        400,
        body(-2011, "Order was not canceled due to cancel restrictions."),
        Market.SPOT,
        OrderRejected,
    ),
    ("amend rejected", 400, body(-2038, "Order amend rejected."), Market.SPOT, OrderRejected),
    (
        "cancelReplace both failed",
        400,
        body(-2022, "Order cancel-replace failed."),
        Market.SPOT,
        OrderRejected,
    ),
    (
        "-1013 without a filter",
        400,
        body(-1013, "Stop price would trigger immediately."),
        Market.SPOT,
        OrderRejected,
    ),
    (
        "archived",
        400,
        body(-2026, "Order was canceled or expired over 90 days ago."),
        Market.SPOT,
        OrderRejected,
    ),
    # futures 10.3
    ("futures duplicate id", 400, body(-4116, "ClientOrderId is duplicated."), Market.USDM, DuplicateOrder),
    ("futures no such order", 400, body(-2013, "Order does not exist."), Market.USDM, NoSuchOrder),
    ("futures margin", 400, body(-2019, "Margin is insufficient."), Market.USDM, OrderRejected),
    (
        "futures would trigger",
        400,
        body(-2021, "Order would immediately trigger."),
        Market.USDM,
        OrderRejected,
    ),
    ("futures reduce only", 400, body(-2022, "ReduceOnly Order is rejected."), Market.USDM, OrderRejected),
    (
        "futures algo switch",
        400,
        body(-4120, "Order type not supported for this endpoint."),
        Market.USDM,
        OrderRejected,
    ),
    ("futures tick", 400, body(-4014, "Price not increased by tick size."), Market.USDM, FilterFailure),
    (
        "futures client id length",
        400,
        body(-4015, "Client order id is not valid."),
        Market.USDM,
        RequestError,
    ),
    ("futures leverage", 400, body(-4028, "Leverage 200 is not valid"), Market.USDM, RequestError),
    ("futures margin type", 400, body(-4046, "No need to change margin type."), Market.USDM, RequestError),
    # 10.2 client bugs
    (
        "illegal chars",
        400,
        body(-1100, "Illegal characters found in parameter 'newClientOrderId'."),
        Market.SPOT,
        RequestError,
    ),
    (
        "mandatory param",
        400,
        body(-1102, "Mandatory parameter 'quantity' was not sent."),
        Market.SPOT,
        RequestError,
    ),
    ("precision", 400, body(-1111, "Parameter 'price' has too much precision."), Market.SPOT, RequestError),
    ("bad symbol", 400, body(-1121, "Invalid symbol."), Market.SPOT, RequestError),
    ("listen key", 400, body(-1125, "This listenKey does not exist."), Market.USDM, RequestError),
    ("not found, no code", 404, b"<html><body>Not Found</body></html>", Market.SPOT, RequestError),
    # auth
    (
        "signature",
        400,
        body(-1022, "Signature for this request is not valid."),
        Market.SPOT,
        AuthenticationError,
    ),
    (
        "key rejected",
        401,
        body(-2015, "Invalid API-key, IP, or permissions for action."),
        Market.SPOT,
        AuthenticationError,
    ),
    ("key format", 400, body(-2014, "API-key format invalid."), Market.SPOT, AuthenticationError),
    (
        "unauthorized",
        400,
        body(-1002, "You are not authorized to execute this request."),
        Market.SPOT,
        AuthenticationError,
    ),
    ("401 without body", 401, b"", Market.SPOT, AuthenticationError),
    (
        "timestamp",
        400,
        body(-1021, "Timestamp for this request is outside of the recvWindow."),
        Market.SPOT,
        TimestampError,
    ),
    # 5.2 rate limits, firewall
    (
        "weight",
        429,
        body(-1003, "Too much request weight used; current limit is 6000 per 1 MINUTE."),
        Market.SPOT,
        RateLimited,
    ),
    (
        "orders",
        429,
        body(-1015, "Too many new orders; current limit is 50 orders per 10 SECOND."),
        Market.SPOT,
        RateLimited,
    ),
    (
        "ban",
        418,
        body(-1003, "Way too much request weight used; IP banned until 1750000120000."),
        Market.SPOT,
        IpBanned,
    ),
    (
        "waf html",
        403,
        b"<html><head><title>403 Forbidden</title></head><body>blocked</body></html>",
        Market.SPOT,
        WafBlocked,
    ),
    ("waf empty", 403, b"", Market.USDM, WafBlocked),
    # 10.4 unknown outcomes and definite failures
    ("spot 500 empty", 500, b"", Market.SPOT, UnknownOutcome),
    ("spot 502 html", 502, b"<html><title>502 Bad Gateway</title></html>", Market.SPOT, UnknownOutcome),
    ("spot 503 service unavailable", 503, b"Service Unavailable.", Market.SPOT, UnknownOutcome),
    ("spot 503 -1001 is still unknown", 503, body(-1001, INTERNAL_MSG), Market.SPOT, UnknownOutcome),
    (
        "spot -1006",
        400,
        body(-1006, "Unexpected response from the message bus. Execution status unknown."),
        Market.SPOT,
        UnknownOutcome,
    ),
    (
        "spot -1007",
        400,
        body(-1007, "Timeout waiting for response from backend server."),
        Market.SPOT,
        UnknownOutcome,
    ),
    (
        "spot -1000",
        400,
        body(-1000, "An unknown error occurred while processing the request."),
        Market.SPOT,
        UnknownOutcome,
    ),
    ("futures 408", 408, b"", Market.USDM, UnknownOutcome),
    ("futures 503 unknown error", 503, body(-1000, UNKNOWN_MSG), Market.USDM, UnknownOutcome),
    ("futures 503 unknown error, text", 503, UNKNOWN_MSG.encode(), Market.USDM, UnknownOutcome),
    ("futures 500", 500, b"", Market.USDM, UnknownOutcome),
    ("futures 503 service unavailable", 503, b"Service Unavailable.", Market.USDM, ServerBusy),
    ("futures 503 internal error", 503, body(-1001, INTERNAL_MSG), Market.USDM, ServerBusy),
    ("futures 503 internal error, text", 503, INTERNAL_MSG.encode(), Market.USDM, ServerBusy),
    ("futures throttled", 503, body(-1008, THROTTLED_MSG), Market.USDM, ServerBusy),
    (
        "spot busy",
        503,
        body(-1008, "Server is currently overloaded with other requests."),
        Market.SPOT,
        ServerBusy,
    ),
    ("disconnected outside 5xx", 400, body(-1001, INTERNAL_MSG), Market.SPOT, ServerBusy),
    # 409 partial success
    (
        "cancelReplace partial",
        409,
        body(-2021, "Order cancel-replace partially failed.", data=PARTIAL_DATA),
        Market.SPOT,
        CancelReplacePartial,
    ),
]


@pytest.mark.parametrize(
    ("status", "raw", "market", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_classification_table(
    status: int, raw: bytes | str | None, market: Market, expected: type[BinanceError]
) -> None:
    exc = classify(status, raw, market)
    assert type(exc) is expected
    assert exc.status == status
    assert exc.method == "POST"
    assert exc.endpoint == "/api/v3/order"
    assert exc.client_order_id == "abc"
    assert exc.msg  # always something readable, even for an empty body


def test_every_class_is_reachable() -> None:
    reached = {expected for *_, expected in CASES}
    classes = {
        AuthenticationError,
        CancelReplacePartial,
        DuplicateOrder,
        FilterFailure,
        IpBanned,
        NoSuchOrder,
        OrderRejected,
        RateLimited,
        RequestError,
        ServerBusy,
        TimestampError,
        UnknownOutcome,
        WafBlocked,
    }
    assert classes <= reached
    # NetworkError is raised by the transport before anything is sent, never classified.
    exc = NetworkError("connection refused", method="GET", endpoint="/api/v3/time")
    assert str(exc) == "[connection refused] GET /api/v3/time"


def test_hierarchy() -> None:
    assert issubclass(IpBanned, RateLimited)
    assert issubclass(TimestampError, AuthenticationError)
    for narrow in (NoSuchOrder, DuplicateOrder, FilterFailure, CancelReplacePartial):
        assert issubclass(narrow, OrderRejected)
    for cls in (
        NetworkError,
        UnknownOutcome,
        RateLimited,
        WafBlocked,
        RequestError,
        OrderRejected,
        ServerBusy,
    ):
        assert issubclass(cls, BinanceError)


@pytest.mark.parametrize(
    ("code", "msg", "name", "field"),
    [
        (-4003, "Quantity less than or equal to zero.", "LOT_SIZE", "quantity"),
        (-4004, "Quantity less than min quantity.", "LOT_SIZE", "quantity"),
        (-4005, "Quantity greater than max quantity.", "LOT_SIZE", "quantity"),
        (-4013, "Price less than min price.", "PRICE_FILTER", "price"),
        (-4014, "Price not increased by tick size.", "PRICE_FILTER", "price"),
        (-4016, "Price is higher than mark price multiplier cap.", "PERCENT_PRICE", "price"),
        (-4023, "Quantity not increased by step size.", "LOT_SIZE", "quantity"),
        (-4024, "Price is lower than mark price multiplier floor.", "PERCENT_PRICE", "price"),
        (
            -4131,
            "The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
            "PERCENT_PRICE",
            None,
        ),
        (
            -4164,
            "Order's notional must be no smaller than 5 (unless you choose reduce only).",
            "MIN_NOTIONAL",
            None,
        ),
    ],
)
def test_futures_filter_codes(code: int, msg: str, name: str, field: str | None) -> None:
    exc = classify(400, body(code, msg), Market.USDM)
    assert isinstance(exc, FilterFailure)
    assert (exc.filter, exc.field, exc.local, exc.code) == (name, field, False, code)


@pytest.mark.parametrize(
    "name",
    [
        "PRICE_FILTER",
        "PERCENT_PRICE_BY_SIDE",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "NOTIONAL",
        "ICEBERG_PARTS",
        "MAX_NUM_ORDERS",
    ],
)
def test_spot_filter_name_is_read_from_the_message(name: str) -> None:
    exc = classify(400, body(-1013, f"Filter failure: {name}"))
    assert isinstance(exc, FilterFailure)
    assert exc.filter == name
    assert exc.code == -1013


def test_str_reads_well() -> None:
    exc = classify(400, body(-1013, "Filter failure: PRICE_FILTER"))
    assert str(exc) == "[-1013 Filter failure: PRICE_FILTER] POST /api/v3/order (clientOrderId=abc)"
    no_code = classify(502, b"")
    assert str(no_code) == "[HTTP 502 Bad Gateway] POST /api/v3/order (clientOrderId=abc)"
    local = FilterFailure("Filter failure: LOT_SIZE", filter="LOT_SIZE", field="quantity", local=True)
    assert str(local) == "[-1013 Filter failure: LOT_SIZE] (refused locally)"
    assert "FilterFailure(" in repr(exc)


def test_endpoint_never_keeps_the_query_string() -> None:
    exc = error_from_response(
        400,
        body(-1022, "Signature for this request is not valid."),
        method="post",
        endpoint="/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=deadbeef",
        client_order_id=None,
    )
    assert exc.endpoint == "/api/v3/order"
    assert exc.method == "POST"
    assert "deadbeef" not in str(exc)
    assert "deadbeef" not in repr(exc)
    assert "deadbeef" not in repr(exc.__dict__)


def test_retry_after_header() -> None:
    exc = classify(429, body(-1003, "Too much request weight used."), headers={"Retry-After": "7"})
    assert isinstance(exc, RateLimited)
    assert not isinstance(exc, IpBanned)
    assert exc.retry_after == 7.0
    lower = classify(429, body(-1003, "Too much request weight used."), headers={"retry-after": "12"})
    assert isinstance(lower, RateLimited)
    assert lower.retry_after == 12.0
    # -1015 answers come without the header (spec: "without the Retry-After header").
    orders = classify(429, body(-1015, "Too many new orders."))
    assert isinstance(orders, RateLimited)
    assert orders.retry_after is None
    junk = classify(429, b"", headers={"Retry-After": "soon"})
    assert isinstance(junk, RateLimited)
    assert junk.retry_after is None


def test_ban_until_from_message() -> None:
    exc = classify(418, body(-1003, BANNED_MSG))
    assert isinstance(exc, IpBanned)
    assert exc.until_ms == 1_750_000_120_000
    assert exc.retry_after == 120.0


def test_ban_until_from_header() -> None:
    exc = classify(418, b"", headers={"Retry-After": "300"})
    assert isinstance(exc, IpBanned)
    assert exc.until_ms == NOW_MS + 300_000
    assert exc.retry_after == 300.0


def test_ws_api_retry_after_is_an_epoch_timestamp() -> None:
    frame = {
        "id": "x",
        "status": 429,
        "error": {
            "code": -1003,
            "msg": "Too much request weight used.",
            "data": {"retryAfter": NOW_MS + 1500},
        },
    }
    exc = error_from_response(429, json.dumps(frame).encode(), now_ms=NOW_MS)
    assert isinstance(exc, RateLimited)
    assert exc.retry_after == 1.5
    banned = error_from_payload(
        418, {"code": -1003, "msg": "IP banned.", "data": {"retryAfter": NOW_MS + 60_000}}, now_ms=NOW_MS
    )
    assert isinstance(banned, IpBanned)
    assert banned.until_ms == NOW_MS + 60_000


def test_ws_api_error_frame_is_unwrapped() -> None:
    frame = {"id": 1, "status": 400, "error": {"code": -1013, "msg": "Filter failure: LOT_SIZE"}}
    exc = error_from_response(400, json.dumps(frame))
    assert isinstance(exc, FilterFailure)
    assert exc.filter == "LOT_SIZE"


def test_waf_page_becomes_a_clear_message() -> None:
    page = (
        b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
        + b"x" * 5000
        + b"</body></html>"
    )
    exc = classify(403, page)
    assert isinstance(exc, WafBlocked)
    assert exc.msg == "request blocked by the web application firewall: 403 Forbidden"
    assert exc.code is None
    empty = classify(403, None)
    assert empty.msg == "request blocked by the web application firewall"


def test_long_text_bodies_are_truncated() -> None:
    exc = classify(502, b"upstream " * 200)
    assert len(exc.msg) <= 200
    assert exc.msg.endswith("...")


def test_cancel_replace_partial_keeps_both_halves() -> None:
    data = {
        "cancelResult": "SUCCESS",
        "newOrderResult": "FAILURE",
        "cancelResponse": {"symbol": "BTCUSDT", "origClientOrderId": "86M8erehfExV8z2RC8Zo8k", "orderId": 3},
        "newOrderResponse": {"code": -2010, "msg": "Order would immediately match and take."},
    }
    exc = classify(409, body(-2021, "Order cancel-replace partially failed.", data=data))
    assert isinstance(exc, CancelReplacePartial)
    assert exc.code == -2021
    assert exc.cancel_result == "SUCCESS"
    assert exc.new_order_result == "FAILURE"
    assert exc.cancel_response == data["cancelResponse"]
    assert exc.new_order_response == data["newOrderResponse"]
    assert exc.data == data


def test_cancel_replace_with_cancel_only_over_the_order_limit() -> None:
    # orderRateLimitExceededMode=CANCEL_ONLY: 429 although the cancel went through.
    data = {
        "cancelResult": "SUCCESS",
        "newOrderResult": "FAILURE",
        "cancelResponse": {"symbol": "LTCBNB", "orderId": 64},
        "newOrderResponse": {
            "code": -1015,
            "msg": "Too many new orders; current limit is 1 orders per 10 SECOND.",
        },
    }
    exc = classify(429, body(-2021, "Order cancel-replace partially failed.", data=data))
    assert isinstance(exc, CancelReplacePartial)
    assert exc.status == 429
    assert exc.new_order_response["code"] == -1015


def test_futures_409_is_not_a_cancel_replace() -> None:
    exc = classify(409, body(-2021, "Order would immediately trigger."), Market.USDM)
    assert type(exc) is OrderRejected


@pytest.mark.parametrize(
    "exc",
    [
        BinanceError("x", code=-1, status=400, method="GET", endpoint="/a", client_order_id="c"),
        NetworkError("refused"),
        UnknownOutcome("timeout", method="POST", endpoint="/api/v3/order", client_order_id="c"),
        RateLimited("slow down", code=-1003, status=429, retry_after=3.5),
        IpBanned("banned", code=-1003, status=418, until_ms=5, retry_after=1.0),
        WafBlocked("waf", status=403),
        AuthenticationError("key", code=-2015, status=401),
        TimestampError("late", code=-1021, status=400),
        RequestError("bad", code=-1102, status=400),
        OrderRejected("no", code=-2010, status=400),
        NoSuchOrder("gone", code=-2013, status=400),
        DuplicateOrder("dup", code=-2010, status=400),
        FilterFailure("Filter failure: LOT_SIZE", filter="LOT_SIZE", field="quantity", local=True),
        ServerBusy("busy", code=-1008, status=503),
        CancelReplacePartial(
            "partial", cancel_result="SUCCESS", new_order_result="FAILURE", cancel_response={"orderId": 1}
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_pickle_round_trip(exc: BinanceError) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert copy.__dict__ == exc.__dict__
    assert str(copy) == str(exc)
    assert copy.args == exc.args


def test_error_names_cover_spec_section_10() -> None:
    # Every code named in spec section 10 (10.1, 10.2, 10.3 and the futures list).
    documented = [
        -1000, -1001, -1002, -1003, -1006, -1007, -1008, -1010, -1013, -1014, -1015, -1016, -1020,
        -1021, -1022, -1023, -1033, -1034, -1035, -1099, -1100, -1101, -1102, -1103, -1104, -1105,
        -1106, -1108, -1111, -1112, -1114, -1115, -1116, -1117, -1118, -1119, -1120, -1121, -1122,
        -1125, -1127, -1128, -1130, -1134, -1135, -1136, -1139, -1145, -1151, -1152, -1153, -1155,
        -1158, -1160, -1161, -1165, -1166, -1168, -1169, -1191, -1194, -1196, -1197, -1198, -1199,
        -1210, -1211, -1220, -1221, -1222, -1223, -1224, -1225, -2010, -2011, -2013, -2014, -2015,
        -2016, -2018, -2019, -2020, -2021, -2022, -2023, -2024, -2025, -2026, -2027, -2028, -2035,
        -2036, -2038, -2039, -2042, -2043, -4000, -4003, -4004, -4005, -4013, -4014, -4015, -4016,
        -4021, -4023, -4024, -4028, -4033, -4046, -4061, -4109, -4116, -4117, -4118, -4120, -4131,
        -4164, -4531,
    ]  # fmt: skip
    missing = [code for code in documented if code not in ERROR_NAMES]
    assert missing == []
    assert ERROR_NAMES[-1013] == "INVALID_MESSAGE"
    assert ERROR_NAMES[-2013] == "NO_SUCH_ORDER"
    assert ERROR_NAMES[-4116] == "DUPLICATED_CLIENT_ORDER_ID"


def test_shared_numbers_differ_by_market() -> None:
    assert error_name(-2021, Market.USDM) == "ORDER_WOULD_IMMEDIATELY_TRIGGER"
    assert error_name(-2021, "spot") == ERROR_NAMES[-2021] != FUTURES_ERROR_NAMES[-2021]
    assert error_name(-1108, "usdm") == "BAD_ASSET"
    assert error_name(-1108) == "PARAM_OVERFLOW"
    assert error_name(None) is None
    assert error_name(-999999) is None
    exc = classify(400, body(-1121, "Invalid symbol."))
    assert exc.name == "BAD_SYMBOL"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"null",
        b"[1, 2, 3]",
        b'"just a string"',
        b"{not json",
        b'{"code": "abc", "msg": 5}',
        b'{"code": true}',
        b'{"msg": "no code here"}',
        b"\xff\xfe\x00garbage",
        "text body",
    ],
)
def test_odd_bodies_never_crash(raw: bytes | str) -> None:
    for status in (400, 401, 403, 404, 408, 409, 418, 429, 500, 503):
        for market in Market:
            exc = classify(status, raw, market)
            assert isinstance(exc, BinanceError)
            assert str(exc)


def test_random_bodies_never_crash() -> None:
    seed = 20250101
    rng = random.Random(seed)
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        status = rng.choice([400, 401, 403, 404, 408, 409, 418, 429, 500, 502, 503, 504])
        exc = classify(status, raw, rng.choice(list(Market)), headers={"Retry-After": raw.decode("latin-1")})
        assert isinstance(exc, BinanceError), seed


def test_bad_market_name_does_not_hide_the_answer() -> None:
    exc = classify(400, body(-2013, "Order does not exist."), market="options")
    assert isinstance(exc, NoSuchOrder)
