# tickbook: every target sets up what it needs (virtualenv, dependencies, compiled core).
# `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PYTEST_ARGS ?=
FEED_ARGS ?=
BENCH_ARGS ?= --benchmark-only --benchmark-disable-gc --benchmark-warmup=on \
	--benchmark-sort=name --benchmark-columns=min,median,mean,iqr,ops,rounds
# `tickbook demo`: the local exchange replays a real 91 s recording (3 spot symbols) at 15x while
# `tickbook watch` follows it for 8 s; then every book is checked against the exchange's.
DEMO_ARGS ?= --duration 8 --replay-speed 15
# NO_TESTS_OK=1: pytest's "no tests collected" (exit 5) is not an error (used by .ci/run).
NO_TESTS_OK ?=

EXT_SOURCES := $(wildcard src/tickbook/*.pyx src/tickbook/*.pxd src/tickbook/*.h)
CYTHON_FILES := $(filter %.pyx %.pxd,$(EXT_SOURCES))
STAMP_VENV := $(VENV)/.installed
STAMP_BENCH := $(VENV)/.installed-bench
STAMP_RELEASE := build/.ext-release
STAMP_DEBUG := build/.ext-debug
LINT_PATHS := $(wildcard src tests benches examples)

.DEFAULT_GOAL := help
.PHONY: help venv build debug annotate test test-py test-debug demo bench bench-report bench-feed storage-lab lint typecheck clean distclean

help: ## show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

# The project is installed editable with TICKBOOK_NO_EXTENSIONS=1: pip only installs the
# dependencies and points the venv at src/. The extension is then built in place into
# src/tickbook/ by `build` (or `debug`), so it is rebuilt whenever its sources change.
$(STAMP_VENV): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet "setuptools>=77" "Cython>=3.1,<4" wheel
	TICKBOOK_NO_EXTENSIONS=1 $(VPY) -m pip install --quiet --no-build-isolation -e '.[test,dev]'
	@rm -f $(STAMP_BENCH)
	@touch $@

$(STAMP_BENCH): $(STAMP_VENV)
	TICKBOOK_NO_EXTENSIONS=1 $(VPY) -m pip install --quiet --no-build-isolation -e '.[test,dev,bench]'
	@touch $@

venv: $(STAMP_VENV) ## create the virtualenv and install the project with its test and dev extras

$(STAMP_RELEASE): $(STAMP_VENV) setup.py $(EXT_SOURCES)
	@mkdir -p build && rm -f $(STAMP_DEBUG)
	TICKBOOK_BUILD=release $(VPY) setup.py --quiet build_ext --inplace
	@touch $@

build: $(STAMP_RELEASE) ## build the Cython core in place, release profile

debug: $(STAMP_VENV) ## build the Cython core in place, debug profile (checks, linetrace, -O0 -g)
	@mkdir -p build && rm -f $(STAMP_RELEASE)
	TICKBOOK_BUILD=debug $(VPY) setup.py --quiet build_ext --inplace
	@touch $(STAMP_DEBUG)

annotate: $(STAMP_VENV) ## write Cython's annotated HTML (src/tickbook/*.html), release profile
	@mkdir -p build && rm -f $(STAMP_DEBUG)
	TICKBOOK_BUILD=release TICKBOOK_ANNOTATE=1 $(VPY) setup.py --quiet build_ext --inplace
	@touch $(STAMP_RELEASE)
	@ls src/tickbook/*.html

# Runs pytest; exit 5 (no tests collected) passes only with NO_TESTS_OK=1.
define run_pytest
	@echo "$(VPY) -m pytest $(1)"; \
	$(2) $(VPY) -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then \
		echo "pytest: no tests were collected (exit 5)"; \
		if [ -n "$(NO_TESTS_OK)" ]; then rc=0; fi; \
	fi; \
	exit $$rc
endef

# The book tests again with every side of the core stored as pages (the default, "auto",
# gives the small books of most tests tiers): both layouts pass every book test. The debug
# profile skips this second pass: tests/test_layouts.py, in its first pass, already runs
# every layout against the reference on generated streams, under its bounds checks.
BOOK_TESTS = tests/test_book.py tests/test_book_properties.py tests/test_bad_input.py \
	tests/test_frame.py tests/test_replay.py tests/test_layouts.py

test: build ## run the test suite (every book test runs on the Cython core and the Python twin)
	$(call run_pytest,$(PYTEST_ARGS) tests,)
	$(call run_pytest,$(PYTEST_ARGS) $(BOOK_TESTS),TICKBOOK_LAYOUT=pages)

test-py: $(STAMP_VENV) ## run the test suite with TICKBOOK_NO_EXTENSIONS=1 (pure Python only)
	$(call run_pytest,$(PYTEST_ARGS) tests,TICKBOOK_NO_EXTENSIONS=1)

test-debug: debug ## build the debug profile, then run the test suite on it (core variants)
	$(call run_pytest,$(PYTEST_ARGS) tests,TICKBOOK_TEST_CORE_ONLY=1)

demo: build ## watch a real recorded market served by the local exchange, check the books (DEMO_ARGS=...)
	$(VPY) -m tickbook demo $(DEMO_ARGS)

bench: build $(STAMP_BENCH) ## run benches/ with pytest-benchmark (BENCH_ARGS=...)
	$(VPY) -m pytest benches $(BENCH_ARGS)

bench-report: build $(STAMP_BENCH) ## run benches/ and rewrite BENCHMARKS.md (tables, targets, memory)
	$(VPY) benches/report.py --out BENCHMARKS.md --save-json .benchmarks/last.json

bench-feed: build $(STAMP_BENCH) ## live feed vs websockets/aiohttp readers on loopback; rewrites its BENCHMARKS.md block (FEED_ARGS=--quick)
	$(VPY) benches/feed_bench.py $(FEED_ARGS) --out BENCHMARKS.md

storage-lab: build ## the storage layouts in C on the recordings' level streams (blocks, pages, two tiers, an order-free bound)
	benches/storage_lab/run.sh $(LAB_ROUNDS)

lint: $(STAMP_VENV) ## ruff check + ruff format --check; cython-lint on the .pyx/.pxd files
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(if $(CYTHON_FILES),PATH="$(abspath $(VENV))/bin:$$PATH" cython-lint $(CYTHON_FILES))

typecheck: $(STAMP_VENV) ## mypy --strict on src/tickbook
	$(VENV)/bin/mypy

clean: ## remove build products and caches (keeps the virtualenv and .hypothesis/)
	rm -rf build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .benchmarks
	rm -f src/tickbook/*.so src/tickbook/*.html
	rm -f $(patsubst %.pyx,%.c,$(wildcard src/tickbook/*.pyx))
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean ## clean, and remove the virtualenv too
	rm -rf $(VENV)
