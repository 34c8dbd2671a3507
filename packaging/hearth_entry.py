"""PyInstaller entry point: the bundled ``hearth`` executable (GUI, CLI, and the engine worker)."""

from __future__ import annotations

import locale
import multiprocessing
import os
import sys

from app.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    # Started with an empty environment (a launcher, `env -i`): give Qt the UTF-8 locale it wants.
    if "UTF-8" not in (locale.setlocale(locale.LC_CTYPE, "") or "").upper().replace("UTF8", "UTF-8"):
        os.environ.setdefault("LC_ALL", "C.UTF-8")
    sys.exit(main())
