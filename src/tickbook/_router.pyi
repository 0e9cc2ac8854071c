"""Typing stub of the Cython router (``_router.pyx``); semantics in ``_router_py``."""

import builtins
from collections.abc import Callable, Sequence
from typing import Any, Final

from tickbook._book import OrderBook

KIND_DEPTH: Final[int]
KIND_STREAM: Final[int]
SUB_BITS: Final[int]
MAX_EXP: Final[int]
NBUCKETS: Final[int]
MAX_HELD: Final[int]

def bucket_of(ns: int) -> int: ...
def bucket_high(index: int) -> int: ...
def stream_name(payload: bytes | bytearray | memoryview) -> bytes | None: ...

class LatencyHistogram:
    """Latencies in ns: count, max and percentiles within 6.25%."""

    @property
    def count(self) -> int: ...
    @property
    def max(self) -> int: ...
    @property
    def total(self) -> int: ...
    def record(self, ns: int) -> None: ...
    def percentile(self, q: float) -> int: ...
    def summary(self) -> dict[str, int]: ...
    def reset(self) -> None: ...

class BookListener:
    """Base of Cython listeners: subclass in Cython and override ``on_bbo_c``/``on_update_c``."""

class DepthSlot:
    kind: int
    book: OrderBook
    symbol: str
    stream: str
    futures: bool
    decoder: Any
    hooks: Any
    owner: Router | None
    held: list[tuple[Router, builtins.bytes]]
    snapshot_pending: bool
    dirty: bool
    last_state: int
    bbo_callbacks: tuple[Callable[[Any], object], ...]
    update_callbacks: tuple[Callable[[Any], object], ...]
    listeners: tuple[BookListener, ...]
    messages: int
    bytes: int
    bad_messages: int
    callback_errors: int
    duplicates: int
    handovers: int
    event_latency: LatencyHistogram
    callback_latency: LatencyHistogram
    def __init__(self, book: OrderBook, stream: str, hooks: Any) -> None: ...
    def set_callbacks(
        self,
        bbo: Sequence[Callable[[Any], object]],
        update: Sequence[Callable[[Any], object]],
        listeners: Sequence[BookListener] = ...,
    ) -> None: ...

class StreamSlot:
    kind: int
    stream: str
    decoder: Any
    hooks: Any
    callbacks: tuple[Callable[[Any], object], ...]
    messages: int
    bytes: int
    bad_messages: int
    callback_errors: int
    callback_latency: LatencyHistogram
    def __init__(self, stream: str, decoder: Any, hooks: Any) -> None: ...
    def set_callbacks(self, callbacks: Sequence[Callable[[Any], object]]) -> None: ...

def publish(slot: DepthSlot, flags: int) -> None: ...

class Router:
    hooks: Any
    coalesce: bool
    retiring: bool
    routes: dict[builtins.bytes, DepthSlot | StreamSlot]
    messages: int
    bytes: int
    unrouted: int
    def __init__(self, hooks: Any, coalesce: bool = ...) -> None: ...
    def add(self, slot: DepthSlot | StreamSlot) -> None: ...
    def remove(self, stream: str) -> DepthSlot | StreamSlot | None: ...
    def release(self, slot: DepthSlot) -> None: ...
    def feed(self, payload: builtins.bytes | bytearray | memoryview, last_in_buffer: bool = ...) -> None: ...
    def flush(self) -> None: ...
