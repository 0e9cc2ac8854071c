"""Fixtures shared by the book tests, and the hypothesis profiles.

Every book test takes ``book_cls`` (or ``make_book``) and so runs twice: on the Cython core
(id ``c``) and on the pure-Python reference (id ``py``). Select one with ``-k c`` / ``-k py``.
The ``c`` variant imports ``tickbook._book``; when the extension is not built that import
fails and the ``c`` tests ERROR. They are never skipped: CI always builds the extension.

Hypothesis profiles (select with ``--hypothesis-profile=NAME`` when running ``pytest tests``,
or with the environment variable ``TICKBOOK_HYPOTHESIS_PROFILE=NAME``):

* ``ci`` (the default): derandomized, so every run tries the same examples; bounded;
* ``dev``: random examples (a failure prints its ``@reproduce_failure`` blob and is kept in
  the local example database), a few more of them;
* ``soak``: many examples, for a long local run before a release.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# The helpers module sits next to this file; make it importable whatever the import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=80, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=150, **_COMMON)
settings.register_profile("soak", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("TICKBOOK_HYPOTHESIS_PROFILE", "ci"))


def _load(impl: str) -> type:
    if impl == "c":
        # No try/except: a missing extension must ERROR the c tests, not skip them.
        from tickbook._book import OrderBook as COrderBook

        return COrderBook
    from tickbook._book_py import OrderBook as PyOrderBook

    return PyOrderBook


from _helpers import IMPLEMENTATIONS  # noqa: E402  (after the sys.path line above)


@pytest.fixture(scope="session", params=IMPLEMENTATIONS)
def book_cls(request: pytest.FixtureRequest) -> type:
    """The OrderBook class of one implementation."""
    return _load(request.param)


@pytest.fixture(scope="session")
def both_book_classes() -> tuple[type, type]:
    """(C core, Python reference): for tests that run the two side by side."""
    return _load("c"), _load("py")


@pytest.fixture(scope="session")
def make_book(book_cls: type) -> Callable[..., Any]:
    """``make_book(symbol="BTCUSDT", market="spot", **kw)``: a new book of ``book_cls``."""

    def make(symbol: str = "BTCUSDT", market: str = "spot", **kw: Any) -> Any:
        return book_cls(symbol, market, **kw)

    return make
