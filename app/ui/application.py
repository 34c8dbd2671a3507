"""Start the GUI: QApplication, theme, catalogue, main window."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__
from app.catalog import CatalogError, load_catalog
from app.paths import app_dirs
from app.ui.context import AppContext, AppEvents
from app.ui.main_window import MainWindow
from app.ui.theme import ThemeManager, icon


def create_context(app: QApplication) -> AppContext:
    """Build the shared objects; raises CatalogError when the catalogue is unusable."""
    return AppContext(catalog=load_catalog(), dirs=app_dirs(), theme=ThemeManager(app), events=AppEvents())


def open_window_offscreen() -> list[str]:
    """Build the whole main window once (for ``--self-test``) and return its page keys."""
    app = QApplication.instance() or QApplication(["hearth", "--self-test"])
    assert isinstance(app, QApplication)
    window = MainWindow(create_context(app))
    window.show()
    app.processEvents()
    window.build_all_pages()
    pages = list(window.pages)
    window.close()
    return pages


def _report_startup(app: QApplication) -> None:
    started = psutil.Process().create_time()
    print(f"first window after {(time.time() - started) * 1000:.0f} ms", flush=True)
    app.quit()


def run_gui(argv: list[str], open_model: str | None = None) -> int:
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    assert isinstance(app, QApplication)
    app.setApplicationName("Hearth")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("Hearth")
    app.setDesktopFileName("hearth")
    app.setWindowIcon(icon("hearth", "#888888"))
    try:
        context = create_context(app)
    except CatalogError as exc:
        QMessageBox.critical(None, "Hearth cannot start", str(exc))
        return 1
    window = MainWindow(context)
    window.show()
    if os.environ.get("HEARTH_STARTUP_PROBE"):
        # Cold-start measurement: the time from process start to the first painted window.
        window.first_painted.connect(lambda: QTimer.singleShot(0, lambda: _report_startup(app)))
    if open_model:
        path = Path(open_model).expanduser().resolve()
        if path.is_file():
            context.events.navigate.emit("chat")
            context.events.chat_requested.emit(str(path))
        else:
            QMessageBox.warning(window, "Hearth", f"{path} does not exist, so Hearth cannot open it.")
    return app.exec()
