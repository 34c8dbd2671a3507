"""PyInstaller entry point: the bundled ``hearth`` executable (GUI, CLI, and the engine worker)."""

from __future__ import annotations

import multiprocessing
import sys

from app.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
