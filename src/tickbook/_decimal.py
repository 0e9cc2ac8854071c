"""Exact decimal text <-> int64 ticks, in pure Python.

This is the specification the Cython parser (``_book.pyx``, ``_parse_decimal``)
follows byte for byte; the reference book uses it directly and the tests run
both on the same inputs.

Grammar accepted: ``[0-9]+(\\.[0-9]+)?``. No sign, no exponent, no spaces.
A value is accepted at a scale when every decimal past the scale is ``0``
(``"61737.63000000"`` is fine at scale 2) and the scaled value fits in int64.
"""

from __future__ import annotations

from tickbook._types import DecimalError

INT64_MAX = (1 << 63) - 1
MAX_SCALE = 18


def _text(value: str | bytes | bytearray | memoryview) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise DecimalError(f"malformed decimal {bytes(value)!r}: not ASCII") from None
    raise DecimalError(f"malformed decimal {value!r}: expected str or bytes, got {type(value).__name__}")


def parse_decimal(value: str | bytes | bytearray | memoryview, scale: int) -> int:
    """Return ``value * 10**scale`` as an int, exactly, or raise ``DecimalError``."""
    text = _text(value)
    whole, dot, frac = text.partition(".")
    if not whole or not whole.isdigit() or not whole.isascii():
        raise DecimalError(f"malformed decimal {text!r}")
    if dot and (not frac or not frac.isdigit() or not frac.isascii()):
        raise DecimalError(f"malformed decimal {text!r}")
    if len(frac) > scale:
        extra = frac[scale:]
        if extra.strip("0"):
            raise DecimalError(f"{text!r} has more than {scale} decimals")
        frac = frac[:scale]
    ticks = int(whole + frac.ljust(scale, "0"))
    if ticks > INT64_MAX:
        raise DecimalError(f"{text!r} overflows int64 at scale {scale}")
    return ticks


def format_decimal(ticks: int, scale: int) -> str:
    """Canonical text of ``ticks / 10**scale``: plain digits, no trailing zeros or point."""
    if ticks < 0:
        return "-" + format_decimal(-ticks, scale)
    if scale == 0:
        return str(ticks)
    whole, frac = divmod(ticks, 10**scale)
    frac_text = str(frac).rjust(scale, "0").rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def decimals_of(value: str | bytes | bytearray | memoryview) -> int:
    """Number of digits written after the point (trailing zeros count: they state the precision)."""
    text = _text(value)
    _, dot, frac = text.partition(".")
    return len(frac) if dot else 0


def scale_of_step(step: str) -> int:
    """Scale implied by an exchangeInfo ``tickSize``/``stepSize`` such as ``"0.01000000"``."""
    text = _text(step)
    decimals = decimals_of(text)
    if decimals > MAX_SCALE:
        raise DecimalError(f"step {text!r} has more than {MAX_SCALE} decimals")
    ticks = parse_decimal(text, decimals)
    if ticks == 0:
        raise DecimalError(f"step {text!r} must be positive")
    scale = decimals
    while scale > 0 and ticks % 10 == 0:
        ticks //= 10
        scale -= 1
    return scale


def check_scale(scale: int) -> int:
    if not 0 <= scale <= MAX_SCALE:
        raise DecimalError(f"scale {scale} outside 0..{MAX_SCALE}")
    return scale
