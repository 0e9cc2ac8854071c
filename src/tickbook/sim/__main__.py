"""``python -m tickbook.sim ...``: the same as ``tickbook sim ...`` (see ``tickbook.cli``)."""

from __future__ import annotations

import sys

from tickbook.cli import main

if __name__ == "__main__":
    sys.exit(main(["sim", *sys.argv[1:]]))
