"""Start the GUI once and print wall and CPU milliseconds from process start to the first painted window.

Like ``HEARTH_STARTUP_PROBE=1 hearth``, plus the process's CPU time (steadier than wall time on a busy
machine). Run with ``HEARTH_STARTUP_PROBE=1 QT_QPA_PLATFORM=offscreen``; ``PROBE_PROFILE=FILE`` also writes
a cProfile of the start.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time

import psutil

import app.ui.application as application

_profile = cProfile.Profile() if os.environ.get("PROBE_PROFILE") else None


def _report(app: object) -> None:
    process = psutil.Process()
    cpu = process.cpu_times()
    wall = (time.time() - process.create_time()) * 1000
    print(f"wall {wall:.0f} cpu {(cpu.user + cpu.system) * 1000:.0f}", flush=True)
    if _profile is not None:
        _profile.disable()
        _profile.dump_stats(os.environ["PROBE_PROFILE"])
    app.quit()  # type: ignore[attr-defined]


if __name__ == "__main__":
    application._report_startup = _report  # type: ignore[assignment]
    if _profile is not None:
        _profile.enable()
    from app.__main__ import main

    sys.argv = ["hearth"]
    sys.exit(main())
