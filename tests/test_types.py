"""Shared enums and errors, the C ABI constants, and the implementation chooser."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tickbook
from tickbook._types import (
    Applied,
    BookError,
    DecimalError,
    LevelsFormatError,
    Market,
    OutOfSyncReason,
    SnapshotResult,
    SyncState,
)

SRC = str(Path(tickbook.__file__).resolve().parent.parent)

# Each enum and the prefix its members carry as module-level ints in ``tickbook._book``.
C_PREFIXES: list[tuple[type[enum.Enum], str]] = [
    (SyncState, "STATE_"),
    (OutOfSyncReason, "REASON_"),
    (Applied, ""),
    (SnapshotResult, "SNAPSHOT_"),
]


def test_c_constants_match() -> None:
    from tickbook import _book  # no guard: without the extension this test must error

    checked = 0
    for cls, prefix in C_PREFIXES:
        # Applied is plain int bits (BITS, NONE excluded); the others are IntEnums
        members = Applied.BITS if cls is Applied else {n: m.value for n, m in cls.__members__.items()}
        for member_name, expected in members.items():
            name = prefix + member_name
            assert hasattr(_book, name), f"tickbook._book has no constant {name}"
            value = getattr(_book, name)
            assert type(value) is int, (name, value)
            assert value == int(expected), (name, value, expected)
            checked += 1
    assert checked == 4 + 6 + 6 + 4


def test_enum_values_are_the_documented_abi() -> None:
    assert {n: int(m) for n, m in SyncState.__members__.items()} == {
        "WAITING_FOR_SNAPSHOT": 0,
        "BRIDGING": 1,
        "SYNCED": 2,
        "OUT_OF_SYNC": 3,
    }
    assert {n: int(m) for n, m in OutOfSyncReason.__members__.items()} == {
        "NONE": 0,
        "NOT_STARTED": 1,
        "GAP": 2,
        "NO_BRIDGE": 3,
        "CROSSED": 4,
        "INVALIDATED": 5,
    }
    assert {"NONE": Applied.NONE, **Applied.BITS} == {
        "NONE": 0,
        "APPLIED": 1,
        "BBO_CHANGED": 2,
        "BUFFERED": 4,
        "STALE": 8,
        "GAP": 16,
        "CROSSED": 32,
    }
    assert {n: int(m) for n, m in SnapshotResult.__members__.items()} == {
        "STALE": 0,
        "BRIDGING": 1,
        "SYNCED": 2,
        "OUT_OF_SYNC": 3,
    }


def test_snapshot_result_mirrors_sync_state() -> None:
    # apply_snapshot returns "the state after the replay": the shared names have the same value.
    for name in ("BRIDGING", "SYNCED", "OUT_OF_SYNC"):
        assert int(SnapshotResult[name]) == int(SyncState[name])


def test_applied_is_a_bit_set() -> None:
    flags = Applied.APPLIED | Applied.BBO_CHANGED
    assert flags & Applied.APPLIED
    assert flags & Applied.BBO_CHANGED
    assert not flags & Applied.STALE
    assert Applied.names(flags) == ["APPLIED", "BBO_CHANGED"]
    assert Applied.names(Applied.NONE) == []
    assert all(type(bit) is int and bit & (bit - 1) == 0 for bit in Applied.BITS.values())


def test_market() -> None:
    assert Market.parse("spot") is Market.SPOT
    assert Market.parse("USDM") is Market.USDM
    assert Market.parse(Market.COINM) is Market.COINM
    assert not Market.SPOT.is_futures
    assert Market.USDM.is_futures
    assert Market.COINM.is_futures
    with pytest.raises(ValueError, match="'margin'"):
        Market.parse("margin")


def test_error_hierarchy() -> None:
    assert issubclass(BookError, ValueError)
    assert issubclass(DecimalError, BookError)
    assert issubclass(LevelsFormatError, BookError)
    assert not issubclass(DecimalError, LevelsFormatError)
    assert not issubclass(LevelsFormatError, DecimalError)


def test_public_names() -> None:
    for name in tickbook.__all__:
        assert hasattr(tickbook, name), name
    assert tickbook.Applied is Applied
    assert tickbook.BookError is BookError


def _which(no_extensions: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TICKBOOK_NO_EXTENSIONS"}
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if no_extensions:
        env["TICKBOOK_NO_EXTENSIONS"] = "1"
    code = (
        "import tickbook, tickbook._book_py as p\n"
        "kind = 'py' if tickbook.OrderBook is p.OrderBook else None\n"
        "if kind is None:\n"
        "    import tickbook._book as c\n"
        "    kind = 'c' if tickbook.OrderBook is c.OrderBook else '?'\n"
        "print(kind, tickbook.IMPLEMENTATION)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_default_implementation_is_the_c_core() -> None:
    assert _which(no_extensions=False) == "c c"


def test_no_extensions_selects_the_python_reference() -> None:
    assert _which(no_extensions=True) == "py py"
