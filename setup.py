"""Build the Cython extension modules of tickbook.

Everything else about the package (metadata, dependencies, package data) is in
``pyproject.toml``; this file only describes the compiled modules.

Environment variables:

``TICKBOOK_BUILD=release`` (default)
    ``-O3``, bounds/wraparound/initialized/none checks off, ``cdivision``,
    C macro ``TICKBOOK_DEBUG=0``.
``TICKBOOK_BUILD=debug``
    ``-O0 -g``, bounds/wraparound/initialized/none checks on, ``linetrace`` with
    ``CYTHON_TRACE=1``/``CYTHON_TRACE_NOGIL=1``, C macro ``TICKBOOK_DEBUG=1``.
``TICKBOOK_ANNOTATE=1``
    also write Cython's annotated HTML next to each ``.pyx``.
``TICKBOOK_NO_EXTENSIONS=1``
    build nothing (pure-Python install; the reference book is used at run time). As in
    ``tickbook/__init__.py``, any non-empty value counts.

Switching profile regenerates the C code: the last profile is remembered in
``build/tickbook-profile``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
SRC = Path("src") / "tickbook"

# Keep in step with [build-system] requires in pyproject.toml.
CYTHON_MIN = (3, 1)
CYTHON_BELOW = (4, 0)
CYTHON_REQUIREMENT = "Cython>=3.1,<4"

# One entry per compiled module: (module name, sources relative to the repository root).
# To add a module, add a line here; cimported .pxd files are tracked by Cython itself.
MODULES: list[tuple[str, list[str]]] = [
    ("tickbook._book", [str(SRC / "_book.pyx")]),
    # A Cython consumer of _book.pxd (apply_diff_raw, best_*_c): the C interface, tested.
    ("tickbook._raw_feed", [str(SRC / "_raw_feed.pyx")]),
    # The feed's hot path: frame -> decode -> apply -> publish, and Cython listeners.
    ("tickbook._router", [str(SRC / "_router.pyx")]),
    # The example Cython listener (examples/cython_listener), built so the tests can run it.
    ("tickbook._example_listener", ["examples/cython_listener/spread_watch.pyx"]),
]

PROFILES = ("release", "debug")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _fail(message: str) -> None:
    sys.stderr.write(f"\nsetup.py: error: {message}\n\n")
    raise SystemExit(1)


def _check_cython() -> None:
    try:
        import Cython
    except ImportError:
        _fail(
            f"Cython is not installed; tickbook needs {CYTHON_REQUIREMENT} to build its extensions.\n"
            f"  pip install '{CYTHON_REQUIREMENT}'   (or set TICKBOOK_NO_EXTENSIONS=1 for a pure-Python "
            "install)"
        )
    version = Cython.__version__
    parts: list[int] = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
        parts.append(int(digits))
    found = tuple(parts)
    if not (CYTHON_MIN <= found < CYTHON_BELOW):
        _fail(
            f"found Cython {version} at {Cython.__file__}, but tickbook needs {CYTHON_REQUIREMENT}.\n"
            f"  pip install '{CYTHON_REQUIREMENT}'"
        )


def _extensions() -> list[Extension]:
    profile = os.environ.get("TICKBOOK_BUILD", "release").strip().lower() or "release"
    if profile not in PROFILES:
        _fail(f"TICKBOOK_BUILD={profile!r}: expected one of {', '.join(PROFILES)}")
    annotate = _truthy("TICKBOOK_ANNOTATE")
    _check_cython()
    from Cython.Build import cythonize

    directives: dict[str, object] = {
        "language_level": 3,
        "embedsignature": True,
        "cdivision": True,  # same integer semantics in both profiles
    }
    macros: list[tuple[str, str | None]] = []
    if profile == "release":
        directives.update(boundscheck=False, wraparound=False, initializedcheck=False, nonecheck=False)
        macros.append(("TICKBOOK_DEBUG", "0"))
        cflags = ["-O3"]
    else:
        directives.update(
            boundscheck=True, wraparound=True, initializedcheck=True, nonecheck=True, linetrace=True
        )
        macros += [("TICKBOOK_DEBUG", "1"), ("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
        cflags = ["-O0", "-g", "-UNDEBUG"]
    if os.name == "nt":  # MSVC spells its flags differently; keep its defaults
        cflags = []

    missing = [src for _, sources in MODULES for src in sources if not (HERE / src).is_file()]
    if missing:
        _fail(
            "missing extension sources: "
            + ", ".join(missing)
            + "\n  (set TICKBOOK_NO_EXTENSIONS=1 to install without the compiled core)"
        )

    headers = sorted(str(p.relative_to(HERE)) for p in (HERE / SRC).glob("*.h"))
    extensions = [
        Extension(
            name,
            sources,
            include_dirs=[str(SRC)],
            define_macros=macros,
            extra_compile_args=cflags,
            depends=headers,
        )
        for name, sources in MODULES
    ]

    # Directives and macros are not part of Cython's change detection: regenerate the C code
    # whenever the profile differs from the one the existing C files were made with.
    marker = HERE / "build" / "tickbook-profile"
    previous = marker.read_text().strip() if marker.is_file() else None
    force = annotate or previous != profile
    print(
        f"tickbook: build profile {profile!r} (TICKBOOK_BUILD), annotate={'on' if annotate else 'off'}, "
        f"{'regenerating' if force else 'reusing up-to-date'} C sources",
        flush=True,
    )
    modules = cythonize(
        extensions,
        compiler_directives=directives,
        annotate=annotate,
        force=force,
        quiet=True,
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(profile + "\n")
    return modules


if os.environ.get("TICKBOOK_NO_EXTENSIONS"):  # same test as tickbook/__init__.py
    print("tickbook: TICKBOOK_NO_EXTENSIONS is set, building no extension modules", flush=True)
    ext_modules: list[Extension] = []
else:
    ext_modules = _extensions()

setup(ext_modules=ext_modules)
