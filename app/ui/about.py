"""The About box: version, the llama.cpp backend this build runs on, and where data lives."""

from __future__ import annotations

import platform
from html import escape

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from app import __version__
from app.paths import AppDirs
from app.ui.workers import Lane, create_worker


def about_html(dirs: AppDirs, backend: str) -> str:
    rows = [
        ("Version", __version__),
        ("llama.cpp backend", backend),
        ("Qt", f"{qVersion()} (PySide6 {pyside_version})"),
        ("Python", f"{platform.python_version()} on {platform.system()} {platform.machine()}"),
        ("Models", str(dirs.models)),
        ("Chats", str(dirs.chats_db)),
        ("Settings", str(dirs.config)),
    ]
    table = "".join(
        f"<tr><td style='padding-right:12px'><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in rows
    )
    return (
        "<h3>Hearth</h3><p>Chat with large language models on your own machine, offline.</p>"
        f"<table>{table}</table>"
    )


def show_about(parent: QWidget, dirs: AppDirs) -> QMessageBox:
    """Open the box at once; the backend (which looks at llama.cpp's libraries and asks about GPUs) is
    filled in when a worker has found it."""
    from app.engine.backend import backend_name

    box = QMessageBox(parent)
    box.setWindowTitle("About Hearth")
    box.setText(about_html(dirs, "checking…"))
    box.setIconPixmap(parent.windowIcon().pixmap(64, 64))
    box.open()
    create_worker(backend_name, lambda name: box.setText(about_html(dirs, name)), parent=box, lane=Lane.WAITS)
    return box
