"""tickbook: exact, validated local Binance order books with a native core.

``tickbook.OrderBook`` is the Cython core when the extension is built, and the
pure-Python reference book otherwise (or when ``TICKBOOK_NO_EXTENSIONS=1``).
``tickbook.IMPLEMENTATION`` says which one was chosen.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from tickbook._analytics import Fill
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

# A library logs, the application decides where it goes (no "last resort" stderr output).
logging.getLogger(__name__).addHandler(logging.NullHandler())

NO_EXTENSIONS = bool(os.environ.get("TICKBOOK_NO_EXTENSIONS"))

if TYPE_CHECKING or NO_EXTENSIONS:
    from tickbook._book_py import OrderBook

    IMPLEMENTATION = "py"
else:
    try:
        from tickbook._book import OrderBook

        IMPLEMENTATION = "c"
    except ImportError:  # no compiler where this was installed: same API, pure Python
        from tickbook._book_py import OrderBook

        IMPLEMENTATION = "py"

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "Applied",
    "BookError",
    "DecimalError",
    "Fill",
    "LevelsFormatError",
    "Market",
    "OrderBook",
    "OutOfSyncReason",
    "SnapshotResult",
    "SyncState",
    "__version__",
]
