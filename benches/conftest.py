"""pytest configuration of the benchmarks (``pytest benches``, or ``make bench``).

Collection: the benchmark files are ``bench_*.py``. pytest's default ``python_files`` never
matches them, and the project's ``testpaths`` is ``tests``, so a plain ``pytest`` or
``pytest tests`` never runs them. This conftest, loaded only when ``benches`` is collected,
collects ``bench_*.py`` itself (unless ``-o python_files=bench_*.py`` already does).

Options (all optional):

* ``--bench-budget=SECONDS``: wall time aimed at per benchmark (default 1.5). A first pass
  (the warmup) times the pipeline; the number of timed rounds is this budget over that pass,
  kept within ``--bench-min-rounds`` (default 3) and ``--bench-max-rounds`` (default 15);
* ``--gen-seed``, ``--gen-messages``, ``--gen-levels``: the generated stream
  (``benches/generate.py``; defaults there);
* ``--bench-datasets=spot,usdm,generated``: the datasets to run;
* ``--bench-pipelines=KEY,...``: only these pipelines/decoders (``report.py --isolate`` runs
  each in its own process this way).
"""

from __future__ import annotations

import fnmatch
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# _pipelines and generate sit next to this file; make them importable whatever the import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _pipelines as pl

DATASETS = ("spot", "usdm", "generated")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tickbook benches")
    group.addoption("--bench-budget", type=float, default=1.5, help="seconds aimed at per benchmark")
    group.addoption("--bench-min-rounds", type=int, default=3, help="fewest timed passes per benchmark")
    group.addoption("--bench-max-rounds", type=int, default=15, help="most timed passes per benchmark")
    group.addoption("--gen-seed", type=int, default=None, help="seed of the generated stream")
    group.addoption("--gen-messages", type=int, default=None, help="messages in the generated stream")
    group.addoption("--gen-levels", type=int, default=None, help="snapshot levels per side, generated stream")
    group.addoption("--bench-datasets", default=",".join(DATASETS), help="comma-separated datasets to run")
    group.addoption(
        "--bench-pipelines",
        default="",
        help="comma-separated pipeline/decoder keys to run (floor, floor-msgspec: the parse-only "
        "floors); default all",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if any(fnmatch.fnmatch(file_path.name, pat) for pat in parent.config.getini("python_files")):
        return None  # python_files already matches it: pytest collects it on its own
    module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
    return module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = {k.strip() for k in config.getoption("--bench-pipelines").split(",") if k.strip()}
    if not wanted:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        key = callspec.params.get("key", "floor") if callspec is not None else "floor"
        (keep if key in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dataset_key" in metafunc.fixturenames:
        wanted = [k.strip() for k in metafunc.config.getoption("--bench-datasets").split(",") if k.strip()]
        unknown = set(wanted) - set(DATASETS)
        if unknown:
            raise pytest.UsageError(f"--bench-datasets: unknown {sorted(unknown)}; choose from {DATASETS}")
        metafunc.parametrize("dataset_key", wanted, scope="session")


@pytest.fixture(scope="session")
def dataset(dataset_key: str, pytestconfig: pytest.Config) -> pl.Dataset:
    """The dataset of this parameter, loaded once per session."""
    if dataset_key == "generated":
        return pl.load(
            "generated",
            pytestconfig.getoption("--gen-seed"),
            pytestconfig.getoption("--gen-messages"),
            pytestconfig.getoption("--gen-levels"),
        )
    return pl.load(dataset_key)


@pytest.fixture
def rounds_for(pytestconfig: pytest.Config) -> Any:
    """Rounds for a pass that took ``seconds``: the budget over it, within the min/max."""
    budget = pytestconfig.getoption("--bench-budget")
    lo = pytestconfig.getoption("--bench-min-rounds")
    hi = pytestconfig.getoption("--bench-max-rounds")

    def rounds(seconds: float) -> int:
        return max(lo, min(hi, int(budget / max(seconds, 1e-9))))

    return rounds


@pytest.fixture(autouse=True)
def _gc_off() -> Iterator[None]:
    """The GC is off for the whole benchmark (collected before it); each pass also runs with
    it off under ``--benchmark-disable-gc``. Nothing the passes build forms cycles."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Record what report.py needs besides the timings: versions, the core's build, the load."""
    output_json["tickbook"] = {
        "versions": pl.versions(),
        "core": pl.core_build(),
        "loadavg_end": list(os.getloadavg()),
        "options": {
            name: config.getoption(name)
            for name in ("--bench-budget", "--bench-min-rounds", "--bench-max-rounds", "--bench-datasets")
        }
        | {name: config.getoption(name) for name in ("--gen-seed", "--gen-messages", "--gen-levels")},
    }
