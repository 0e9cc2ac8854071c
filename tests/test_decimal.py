"""Exact decimal text <-> int64 ticks: ``tickbook._decimal`` and the book's own conversions.

The book's ``parse_price``/``parse_qty``/``price_str``/``qty_str`` are run on both
implementations (``book_cls``) with the same inputs as the module functions.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from _helpers import fmt
from tickbook._decimal import (
    INT64_MAX,
    MAX_SCALE,
    decimals_of,
    format_decimal,
    parse_decimal,
    scale_of_step,
)
from tickbook._types import BookError, DecimalError

MALFORMED: list[Any] = [
    "",
    ".5",
    "5.",
    "-1",
    "+1",
    "1e5",
    "1E5",
    " 1",
    "1 ",
    "1,0",
    "1.2.3",
    "0x10",
    "nan",
    "inf",
    "1_000",
    "١٢",  # Arabic-Indic digits: str.isdigit() is True for them, the grammar is ASCII only
    "１２",  # fullwidth digits
    "1.５",
    "²",
]
WRONG_TYPES: list[Any] = [None, 1, 1.5, Decimal("1"), ["1"], object()]

# --------------------------------------------------------------------------- parse_decimal


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("0", 0, 0),
        ("0", 8, 0),
        ("7", 0, 7),
        ("61737.63", 2, 6173763),
        ("61737.63000000", 2, 6173763),  # trailing zeros beyond the scale are fine
        ("61737.6", 2, 6173760),
        ("5.00000000", 8, 500000000),
        ("0.00000001", 8, 1),
        ("000123.4500", 2, 12345),  # leading zeros are plain digits
        ("1.000000000000000000", 18, 10**18),
    ],
)
def test_parse_decimal(text: str, scale: int, expected: int) -> None:
    assert parse_decimal(text, scale) == expected
    assert parse_decimal(text.encode(), scale) == expected
    assert parse_decimal(bytearray(text.encode()), scale) == expected
    assert parse_decimal(memoryview(text.encode()), scale) == expected


@pytest.mark.parametrize(("text", "scale"), [("61737.631", 2), ("0.000000001", 8), ("1.5", 0), ("1.0001", 3)])
def test_parse_decimal_rejects_a_nonzero_digit_beyond_the_scale(text: str, scale: int) -> None:
    with pytest.raises(DecimalError, match=re.escape(repr(text))):
        parse_decimal(text, scale)


@pytest.mark.parametrize("scale", [0, 2, 8, 18])
def test_parse_decimal_int64_boundary(scale: int) -> None:
    # INT64_MAX ticks written at this scale is accepted; one tick more is not.
    assert INT64_MAX == 9223372036854775807
    text_max = fmt(INT64_MAX, scale)
    text_over = fmt(INT64_MAX + 1, scale)
    assert parse_decimal(text_max, scale) == INT64_MAX
    with pytest.raises(DecimalError):
        parse_decimal(text_over, scale)
    with pytest.raises(DecimalError):
        parse_decimal("1" + "0" * 30, scale)


def test_parse_decimal_int64_boundary_written_out() -> None:
    assert parse_decimal("92233720368547758.07", 2) == INT64_MAX
    assert parse_decimal("92233720368547758.0700", 2) == INT64_MAX
    with pytest.raises(DecimalError):
        parse_decimal("92233720368547758.08", 2)
    assert parse_decimal("9223372036854775807", 0) == INT64_MAX
    with pytest.raises(DecimalError):
        parse_decimal("9223372036854775808", 0)


@pytest.mark.parametrize("text", MALFORMED)
def test_parse_decimal_rejects_malformed_text(text: str) -> None:
    with pytest.raises(DecimalError):
        parse_decimal(text, 8)


@pytest.mark.parametrize("value", WRONG_TYPES)
def test_parse_decimal_rejects_wrong_types(value: Any) -> None:
    with pytest.raises(DecimalError):
        parse_decimal(value, 8)


def test_parse_decimal_rejects_non_ascii_bytes() -> None:
    with pytest.raises(DecimalError):
        parse_decimal("١٢".encode(), 2)
    with pytest.raises(DecimalError):
        parse_decimal(b"\xff1", 2)


def test_decimal_error_is_a_book_error_and_a_value_error() -> None:
    with pytest.raises(BookError):
        parse_decimal("x", 2)
    with pytest.raises(ValueError, match="'x'"):
        parse_decimal("x", 2)


# --------------------------------------------------------------------------- format_decimal


@pytest.mark.parametrize(
    ("ticks", "scale", "expected"),
    [
        (6173763, 2, "61737.63"),
        (6173763000000, 8, "61737.63"),  # the docs' "61737.63000000" at scale 8
        (500000000, 8, "5"),  # "5.00000000"
        (0, 8, "0"),
        (0, 0, "0"),
        (1, 8, "0.00000001"),
        (10, 1, "1"),
        (1000, 0, "1000"),  # zeros before the point stay
        (12345, 2, "123.45"),
        (12340, 2, "123.4"),
        (INT64_MAX, 18, "9.223372036854775807"),
        (INT64_MAX, 0, "9223372036854775807"),
    ],
)
def test_format_decimal(ticks: int, scale: int, expected: str) -> None:
    assert format_decimal(ticks, scale) == expected


def test_format_decimal_of_parse_gives_canonical_text() -> None:
    assert format_decimal(parse_decimal("61737.63000000", 2), 2) == "61737.63"
    assert format_decimal(parse_decimal("5.00000000", 8), 8) == "5"
    assert format_decimal(parse_decimal("0.10000000", 8), 8) == "0.1"


# --------------------------------------------------------------------------- decimals_of, scale_of_step


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 0), ("1.0", 1), ("61737.63000000", 8), ("0.00100000", 8), ("0.5", 1), (b"1.25", 2)],
)
def test_decimals_of_counts_written_digits(text: str | bytes, expected: int) -> None:
    assert decimals_of(text) == expected


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("0.01000000", 2),
        ("0.00100000", 3),
        ("0.00000001", 8),
        ("1.00000000", 0),
        ("10.00000000", 0),
        ("0.1", 1),
        ("0.5", 1),  # a step of 5 units of 0.1 still needs one decimal
        ("0.00025", 5),
        ("0.000000000000000001", 18),
    ],
)
def test_scale_of_step(step: str, expected: int) -> None:
    assert scale_of_step(step) == expected


@pytest.mark.parametrize("step", ["0", "0.00000000", "-0.01", "abc", "", "0.0000000000000000001"])
def test_scale_of_step_rejects(step: str) -> None:
    with pytest.raises(DecimalError):
        scale_of_step(step)


def test_max_scale() -> None:
    assert MAX_SCALE == 18


# --------------------------------------------------------------------------- hypothesis round trips

digits = st.text(alphabet="0123456789", min_size=1, max_size=9)


@given(whole=digits, frac=st.text(alphabet="0123456789", max_size=9), extra_zeros=st.integers(0, 6))
@example(whole="61737", frac="63", extra_zeros=6)
@example(whole="5", frac="", extra_zeros=8)
@example(whole="000", frac="000", extra_zeros=0)
def test_round_trip_is_canonical(whole: str, frac: str, extra_zeros: int) -> None:
    scale = len(frac)
    text = whole + ("." + frac + "0" * extra_zeros if frac or extra_zeros else "")
    ticks = parse_decimal(text, scale)
    assert ticks == int(whole + frac)
    canonical = format(Decimal(text).normalize(), "f")  # independent canonical form
    assert format_decimal(ticks, scale) == canonical
    assert parse_decimal(format_decimal(ticks, scale), scale) == ticks


@given(ticks=st.integers(0, INT64_MAX), scale=st.integers(0, MAX_SCALE))
@example(ticks=INT64_MAX, scale=0)
@example(ticks=INT64_MAX, scale=18)
@example(ticks=0, scale=18)
def test_parse_of_format_is_identity(ticks: int, scale: int) -> None:
    text = format_decimal(ticks, scale)
    assert text == fmt(ticks, scale)
    assert parse_decimal(text, scale) == ticks


@given(text=st.text(max_size=8))
def test_parse_accepts_exactly_the_grammar(text: str) -> None:
    ok = re.fullmatch(r"[0-9]+(\.[0-9]+)?", text, re.ASCII) is not None
    if ok:
        assert parse_decimal(text, 8) == int(Decimal(text) * 10**8)
    else:
        with pytest.raises(DecimalError):
            parse_decimal(text, 8)


# --------------------------------------------------------------------------- the book's conversions


@pytest.fixture
def book(book_cls: type) -> Any:
    return book_cls("BTCUSDT", "spot", tick_size="0.01000000", step_size="0.00001000")


def test_book_scales_from_tick_and_step(book: Any) -> None:
    assert book.price_scale == 2
    assert book.qty_scale == 5
    book._check()


@pytest.mark.parametrize(
    ("text", "price", "qty"),
    [
        ("61737.63000000", 6173763, 6173763000),  # zeros past either scale are fine
        ("5.00000000", 500, 500000),
        ("0.01", 1, 1000),
        ("0", 0, 0),
        ("1.00001", None, 100001),
    ],
)
def test_book_parse(book: Any, text: str, price: int | None, qty: int) -> None:
    for value in (text, text.encode()):
        if price is None:
            with pytest.raises(DecimalError):
                book.parse_price(value)
        else:
            assert book.parse_price(value) == price
        assert book.parse_qty(value) == qty


def test_book_parse_rejects_digit_beyond_scale(book: Any) -> None:
    with pytest.raises(DecimalError):
        book.parse_price("61737.631")
    with pytest.raises(DecimalError):
        book.parse_qty("1.000001")
    assert book.parse_qty("1.000000") == 100000


def test_book_parse_int64_boundary(book: Any) -> None:
    assert book.parse_price("92233720368547758.07") == INT64_MAX
    assert book.parse_price(b"92233720368547758.07") == INT64_MAX
    with pytest.raises(DecimalError):
        book.parse_price("92233720368547758.08")
    assert book.parse_qty("92233720368547.75807") == INT64_MAX
    with pytest.raises(DecimalError):
        book.parse_qty("92233720368547.75808")
    with pytest.raises(DecimalError):
        book.parse_price("1" + "0" * 30)


@pytest.mark.parametrize("text", MALFORMED)
def test_book_parse_rejects_malformed(book: Any, text: str) -> None:
    with pytest.raises(DecimalError):
        book.parse_price(text)
    with pytest.raises(DecimalError):
        book.parse_qty(text)
    encoded = text.encode()
    with pytest.raises(DecimalError):
        book.parse_price(encoded)
    with pytest.raises(DecimalError):
        book.parse_qty(encoded)


@pytest.mark.parametrize("value", WRONG_TYPES)
def test_book_parse_rejects_wrong_types(book: Any, value: Any) -> None:
    with pytest.raises(DecimalError):
        book.parse_price(value)
    with pytest.raises(DecimalError):
        book.parse_qty(value)


@pytest.mark.parametrize(
    ("ticks", "price_text", "qty_text"),
    [
        (6173763, "61737.63", "61.73763"),
        (500, "5", "0.005"),
        (500000, "5000", "5"),
        (0, "0", "0"),
        (1, "0.01", "0.00001"),
        (INT64_MAX, "92233720368547758.07", "92233720368547.75807"),
    ],
)
def test_book_format(book: Any, ticks: int, price_text: str, qty_text: str) -> None:
    assert book.price_str(ticks) == price_text
    assert book.qty_str(ticks) == qty_text


def test_book_conversions_need_the_scales(book_cls: type) -> None:
    book = book_cls("BTCUSDT", "spot")
    assert book.price_scale is None
    assert book.qty_scale is None
    with pytest.raises(BookError):
        book.parse_price("1.5")
    with pytest.raises(BookError):
        book.parse_qty("1.5")
    book._check()


@given(whole=digits, frac=st.text(alphabet="0123456789", max_size=2), zeros=st.integers(0, 6))
def test_book_round_trip(book_cls: type, whole: str, frac: str, zeros: int) -> None:
    book = book_cls("BTCUSDT", "spot", tick_size="0.01", step_size="0.00001")
    text = whole + ("." + frac + "0" * zeros if frac else "")
    price = book.parse_price(text)
    assert price == int(whole + frac.ljust(2, "0"))
    assert book.price_str(price) == format(Decimal(text).normalize(), "f")
    assert book.parse_price(book.price_str(price)) == price
    qty = book.parse_qty(text.encode())
    assert qty == int(whole + frac.ljust(5, "0"))
    assert book.qty_str(qty) == book.price_str(price)
