"""Enums and errors shared by the Cython core and the pure-Python reference book.

The numeric values are part of the C ABI: ``_book.pxd`` declares the same
numbers as C enums, and ``tests/test_types.py`` checks that they agree.
"""

from __future__ import annotations

import enum
import os
from typing import Final


class Market(enum.StrEnum):
    """Which Binance market a book follows. The update-ID rules differ."""

    SPOT = "spot"  # U/u, continuity U == prev u + 1
    USDM = "usdm"  # U/u/pu, continuity pu == prev u
    COINM = "coinm"  # same rules as USD-M

    @property
    def is_futures(self) -> bool:
        return self is not Market.SPOT

    @classmethod
    def parse(cls, value: str | Market) -> Market:
        """Accept a ``Market`` or its name (``"spot"``, ``"usdm"``, ``"coinm"``)."""
        if isinstance(value, Market):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown market {value!r}; expected one of: {names}") from None


#: Storage layouts a book may ask for (``OrderBook(layout=...)``). The C core stores each
#: side as sorted blocks of levels, as pages indexed by price, or as tiers (pages for the
#: levels near the touch, blocks beyond); "auto" takes pages for a side whose snapshot
#: they fit in the memory aim, and tiers otherwise or once pages outgrow it. The
#: reference book has one layout and only checks the name.
LAYOUTS: Final = ("auto", "blocks", "pages", "tiers")
#: Environment variable giving the layout of books created without ``layout=``.
LAYOUT_ENV: Final = "TICKBOOK_LAYOUT"


def layout_policy(layout: str | None) -> str:
    """The layout a new book asks for: ``layout``, else ``$TICKBOOK_LAYOUT``, else "auto"."""
    source = "layout"
    if layout is None:
        layout = os.environ.get(LAYOUT_ENV) or "auto"
        source = f"${LAYOUT_ENV}"
    if layout not in LAYOUTS:
        raise ValueError(f"{source} must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout


class SyncState(enum.IntEnum):
    """Where a book is in the exchange's documented sync procedure."""

    WAITING_FOR_SNAPSHOT = 0  # buffering diffs, no book yet
    BRIDGING = 1  # snapshot loaded, waiting for the event that straddles it
    SYNCED = 2  # every applied event passed the continuity check
    OUT_OF_SYNC = 3  # validation failed; last good book kept, flagged; buffering for a resync


class OutOfSyncReason(enum.IntEnum):
    """Why a book is not in sync (``NONE`` while synced)."""

    NONE = 0
    NOT_STARTED = 1  # no snapshot applied yet
    GAP = 2  # spot: U > book id + 1; futures: pu != previous u
    NO_BRIDGE = 3  # the first event after the snapshot does not straddle it
    CROSSED = 4  # an update would have left best bid >= best ask
    INVALIDATED = 5  # the owner called invalidate() (reconnect, shutdown, ...)


class Applied:
    """Bits of the ``int`` that ``OrderBook.apply_diff`` returns: test them with ``&``.

    Plain ints on purpose. On an ``enum.IntFlag``, ``flags & Applied.BBO_CHANGED`` builds
    an enum object, which costs about a microsecond: more than applying a typical event.
    On ints it is one machine operation. ``Applied.names(flags)`` spells a value out.
    """

    NONE: Final = 0
    APPLIED: Final = 1  # the event changed the book (or re-applied identical values)
    BBO_CHANGED: Final = 2  # best bid or ask price or quantity changed (implies APPLIED)
    BUFFERED: Final = 4  # kept for replay once a snapshot arrives
    STALE: Final = 8  # already covered by the book: ignored, book unchanged
    GAP: Final = 16  # continuity broken: book now OUT_OF_SYNC, event buffered for the resync
    CROSSED: Final = 32  # the update would cross the book: rolled back, book now OUT_OF_SYNC

    BITS: Final = {
        "APPLIED": APPLIED,
        "BBO_CHANGED": BBO_CHANGED,
        "BUFFERED": BUFFERED,
        "STALE": STALE,
        "GAP": GAP,
        "CROSSED": CROSSED,
    }

    @classmethod
    def names(cls, flags: int) -> list[str]:
        """The names of the bits set in ``flags``, lowest bit first (``[]`` for NONE)."""
        return [name for name, bit in cls.BITS.items() if flags & bit]


class SnapshotResult(enum.IntEnum):
    """Outcome of ``OrderBook.apply_snapshot``."""

    STALE = 0  # older than the first buffered event: book unchanged, fetch again
    BRIDGING = 1  # loaded; no buffered event bridges it yet
    SYNCED = 2  # loaded and bridged by a buffered event
    OUT_OF_SYNC = 3  # loaded, but the buffered events after it do not continue it


class BookError(ValueError):
    """Base class of the errors the book raises for bad input."""


class DecimalError(BookError):
    """A price or quantity that cannot be represented exactly at the book's scale.

    Raised for malformed text, more decimals than the scale, negative values
    and values beyond int64. The book is unchanged when this is raised.
    """


class LevelsFormatError(BookError):
    """A level array that is not ``[[price, qty], ...]``. The book is unchanged."""
