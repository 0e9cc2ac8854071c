"""``python -m tickbook ...``: the same command line as the ``tickbook`` script."""

from __future__ import annotations

import sys

from tickbook.cli import main

if __name__ == "__main__":
    sys.exit(main())
