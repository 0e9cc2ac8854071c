"""Benchmarks: decode only, apply only, end to end, and the parse-only floors, per dataset.

One round is one full pass over a dataset's messages from a fresh book (built from the
snapshot in an untimed setup). An untimed warmup (``_warmup``) measures the length of a pass,
which sets the number of timed rounds (``--bench-budget``). Before and after the timed
rounds, outside the timed region, each pipeline's final best bid and ask must equal the
independent ``Decimal`` replay (``_pipelines.expected_bbo``).

Run: ``make bench``, or ``pytest benches --benchmark-only --benchmark-disable-gc``;
``python benches/report.py`` runs this and writes the markdown tables (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import _pipelines as pl

END_TO_END = [p.key for p in pl.PIPELINES if p.end_to_end_ok]
APPLY_ONLY = [p.key for p in pl.PIPELINES if p.apply_only_ok]


def _bench(
    benchmark: Any,
    rounds: int,
    ds: pl.Dataset,
    kind: str,
    key: str,
    label: str,
    fn: Callable[[], None],
    setup: Callable[[], None] | None = None,
) -> None:
    benchmark.group = f"{ds.prefix_of or ds.key}: {kind}"
    benchmark.extra_info.update(ds.info())
    benchmark.extra_info.update(kind=kind, pipeline=key, label=label)
    benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)


def _pipeline(dataset: pl.Dataset, key: str) -> pl.Pipeline:
    cls = pl.BY_KEY[key]
    if not cls.available():
        pytest.skip(f"{key}: {cls.needs or 'the built core'} is not available")
    return cls(pl.for_pipeline(dataset, key))


def _pass(p: pl.Pipeline, kind: str) -> Callable[[], None]:
    if kind == "end to end":
        return p.end_to_end
    events = p.predecode()
    return lambda: p.apply_only(events)


def _warmup(dataset: pl.Dataset, key: str, kind: str) -> float:
    """Warm up and return the seconds of one full pass.

    A tenth of the messages (at least 200) is timed first; a pipeline whose full pass would
    take under a second then also runs one full pass (warmup and the exact length), and the
    final best bid/ask is checked before any timing. A slow one (up to several seconds a pass)
    is warm after the prefix, and its full pass is estimated from it: that saves a full pass.
    """
    ds = pl.for_pipeline(dataset, key)
    part = ds.prefix(max(200, len(ds.messages) // 10))
    p = pl.BY_KEY[key](part)
    run = _pass(p, kind)
    p.setup()
    seconds = pl.time_pass(run) * len(ds.messages) / len(part.messages)
    if seconds < 1.0:
        p = pl.BY_KEY[key](ds)
        run = _pass(p, kind)
        p.setup()
        seconds = pl.time_pass(run)
        assert p.bbo() == pl.expected_bbo(ds)
    return seconds


@pytest.mark.parametrize("key", END_TO_END)
def test_end_to_end(benchmark: Any, dataset: pl.Dataset, key: str, rounds_for: Any) -> None:
    """Raw bytes -> decode -> validate -> apply -> best bid and ask, every message."""
    p = _pipeline(dataset, key)
    rounds = rounds_for(_warmup(dataset, key, "end to end"))
    _bench(benchmark, rounds, p.ds, "end to end", key, p.label, p.end_to_end, p.setup)
    assert p.bbo() == pl.expected_bbo(p.ds)  # the last timed round's book, checked untimed


@pytest.mark.parametrize("key", APPLY_ONLY)
def test_apply_only(benchmark: Any, dataset: pl.Dataset, key: str, rounds_for: Any) -> None:
    """Pre-decoded events -> validate -> apply -> best bid and ask, every message."""
    p = _pipeline(dataset, key)
    rounds = rounds_for(_warmup(dataset, key, "apply only"))
    label = p.apply_only_label()
    _bench(benchmark, rounds, p.ds, "apply only", key, label, _pass(p, "apply only"), p.setup)
    assert p.bbo() == pl.expected_bbo(p.ds)


@pytest.mark.parametrize("key", list(pl.DECODERS))
def test_decode_only(benchmark: Any, dataset: pl.Dataset, key: str, rounds_for: Any) -> None:
    """Raw bytes -> the decoded event, every message."""
    if not pl.decoder_available(key):
        pytest.skip(f"{key} is not installed")
    label, factory = pl.DECODERS[key]
    run = factory(dataset)
    seconds = pl.time_pass(run)
    _bench(benchmark, rounds_for(seconds), dataset, "decode only", key, label, run)


@pytest.mark.parametrize("key", list(pl.FLOORS))
def test_floor_end_to_end(benchmark: Any, dataset: pl.Dataset, key: str, rounds_for: Any) -> None:
    """The parse-only floors, no book: ``floor`` is the core's C frame scan alone
    (``_scan_only``, every message checked to take the C path before timing);
    ``floor-msgspec`` is msgspec Raw decode + ``_parse_only`` of both sides."""
    if not pl.TickbookCore.available():
        pytest.skip("the core is not built")
    floor = pl.FLOORS[key](dataset)
    seconds = pl.time_pass(floor.end_to_end)
    _bench(benchmark, rounds_for(seconds), dataset, "end to end", key, floor.label, floor.end_to_end)


def test_floor_apply_only(benchmark: Any, dataset: pl.Dataset, rounds_for: Any) -> None:
    """The floor of apply only: ``_parse_only`` of the pre-decoded raw spans, no book (the
    parsing inside the core's apply-only pass, ``apply_event`` on the same events)."""
    if not pl.TickbookCore.available():
        pytest.skip("the core is not built")
    floor = pl.Floor(dataset)
    events = pl.TickbookCore(dataset).predecode()

    def run() -> None:
        floor.apply_only(events)

    seconds = pl.time_pass(run)
    label = "floor: _parse_only of the Raw spans"
    _bench(benchmark, rounds_for(seconds), dataset, "apply only", "floor", label, run)
