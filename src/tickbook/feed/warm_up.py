"""The hot path's warm-up, for a feed that busy-polls (``DepthFeed(busy_poll=True)``).

A busy-polling loop never sleeps, so the CPU never drops into an idle state between two
messages; but while it spins, the code and data of the hot path (msgspec's decoder, the
router, the book's parse and apply, the publish step) can still be pushed out of the caches
and branch predictors, by the loop's own work or by whatever else shares the core. Every
``busy_poll_warm_up`` seconds without a real message, the poller runs the same hot path once
on a made-up frame: decode, validate, apply and publish, the whole ``Router.feed`` call.

It touches nothing of the feed's. The frame is for a made-up symbol (``WARM_UP_SYMBOL``)
and goes to a router, slot and book of the warm-up's own, never added to the feed: no
connection carries them, ``feed.stats()`` never reads them, no subscriber is registered on
the slot (no callback or listener can fire), and the router's hooks do nothing (no feed
counter, state event, log line or snapshot request can come from it). The feed's books are
other objects and the core keeps no state between books.
"""

from __future__ import annotations

from typing import Any, Final

from tickbook._types import Market
from tickbook.feed.endpoints import depth_stream

__all__ = ["WARM_UP_SYMBOL", "HotPathWarmUp"]

WARM_UP_SYMBOL: Final = "TICKBOOKWARMUP"  # no exchange lists it; the warm-up's own book only
_LEVELS: Final = 11  # per side and frame: 22 levels, the median of real spot BTCUSDT messages
_SNAPSHOT_LEVELS: Final = 200  # per side
_BASE: Final = 6_000_000  # best bid, in ticks of 0.01


class _NoHooks:
    """The warm-up router's hooks: every one does nothing."""

    def router_flags(self, slot: Any, flags: int) -> None:
        pass

    def router_state(self, slot: Any) -> None:
        pass

    def router_bad(self, slot: Any, exc: BaseException, payload: bytes) -> None:
        pass

    def router_callback_error(self, slot: Any, callback: object, exc: BaseException) -> None:
        pass

    def router_unrouted(self, router: Any, name: bytes | None, payload: bytes) -> None:
        pass

    def router_handover(self, slot: Any, router: Any) -> None:
        pass


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def _levels(pairs: list[tuple[int, str]]) -> str:
    return "[" + ",".join(f'["{_price(t)}","{q}"]' for t, q in pairs) + "]"


class HotPathWarmUp:
    """``warm_up()`` runs one made-up depth message through a private router (module
    docstring). The frames alternate between two shapes, so the book never grows: one sets 11
    levels a side, some new, some already there; the next changes the best five and deletes
    the other six. Each one moves the best bid's or ask's quantity, so the BBO step runs too.
    Update IDs go up by one a message, valid for spot's rule and for futures' ``pu``."""

    def __init__(self, book_cls: Any, router_mod: Any, market: Market, speed: str | None) -> None:
        self._futures = market.is_futures
        self.book = book_cls(WARM_UP_SYMBOL, market)
        hooks = _NoHooks()
        stream = depth_stream(WARM_UP_SYMBOL, speed)
        self.slot = router_mod.DepthSlot(self.book, stream, hooks)  # no callbacks, no listeners
        self.router = router_mod.Router(hooks, False)
        self.router.add(self.slot)
        self.runs = 0
        self._id = 0
        # bids at odd ticks below the best (new levels), asks at even ticks above it (there)
        bids = [(_BASE - 1 - 2 * i, "") for i in range(_LEVELS)]
        asks = [(_BASE + 2 + 2 * i, "") for i in range(_LEVELS)]
        full = _levels([(t, "1.25000000") for t, _ in bids]), _levels([(t, "1.50000000") for t, _ in asks])
        cut = (
            _levels([(t, "0.75000000" if i < 5 else "0.00000000") for i, (t, _) in enumerate(bids)]),
            _levels([(t, "0.50000000" if i < 5 else "0.00000000") for i, (t, _) in enumerate(asks)]),
        )
        # The update IDs are left as %d, filled in per message (bytes formatting).
        ids = '"U":%d,"u":%d,"pu":%d,' if self._futures else '"U":%d,"u":%d,'
        head = f'{{"stream":"{stream}","data":{{"e":"depthUpdate","E":1,'
        head += f'"T":1,"s":"{WARM_UP_SYMBOL}",' if self._futures else f'"s":"{WARM_UP_SYMBOL}",'
        self._templates = tuple((head + ids + f'"b":{b},"a":{a}}}}}').encode() for b, a in (full, cut))
        self._snapshot = (
            [[_price(_BASE - 2 * i), "2.00000000"] for i in range(_SNAPSHOT_LEVELS)],
            [[_price(_BASE + 2 + 2 * i), "2.00000000"] for i in range(_SNAPSHOT_LEVELS)],
        )
        self._sync()

    def _sync(self) -> None:
        self._id = 1_000
        self.book.apply_snapshot(self._id, *self._snapshot)

    def __call__(self) -> None:
        if self.book.last_update_id != self._id:  # never expected: start again from a snapshot
            self._sync()
        first = self._id
        ids = (first, first + 1, first) if self._futures else (first, first + 1)
        self.router.feed(self._templates[self.runs & 1] % ids, True)
        self._id = first + 1
        self.runs += 1
