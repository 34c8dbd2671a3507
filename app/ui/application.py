"""Start the GUI: QApplication, theme, catalogue, main window."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__
from app.catalog import CatalogError, load_catalog
from app.catalog.devices import isolate_queries
from app.paths import app_dirs
from app.ui.context import AppContext, AppEvents
from app.ui.main_window import MainWindow
from app.ui.single_instance import InstanceServer, hand_over
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


def _open_model(window: MainWindow, context: AppContext, open_model: str) -> None:
    """Show a model file in the chat page (the file association, or a later launch's hand-over)."""
    path = Path(open_model).expanduser()
    if path.is_file():
        context.events.navigate.emit("chat")
        context.events.chat_requested.emit(str(path.resolve()))
    else:
        context.events.status_message.emit(f"{path} does not exist, so Hearth cannot open it.")


def _bring_to_front(window: MainWindow) -> None:
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()


def run_gui(argv: list[str], open_model: str | None = None) -> int:
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    assert isinstance(app, QApplication)
    isolate_queries()  # GPUs are asked about in a child: this process never loads llama.cpp or CUDA
    app.setApplicationName("Hearth")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("Hearth")
    app.setDesktopFileName("hearth")
    if open_model and not Path(open_model).expanduser().is_file():
        print(f"hearth: error: {open_model} does not exist, so Hearth cannot open it", file=sys.stderr)
        return 1
    target = str(Path(open_model).expanduser().resolve()) if open_model else None
    single = not os.environ.get("HEARTH_STARTUP_PROBE")  # start-up measurements always start afresh
    if single and hand_over(target):
        print("hearth: Hearth is already running; " +
              (f"opened {target} there" if target else "brought its window to the front"), file=sys.stderr)
        return 0
    app.setWindowIcon(icon("hearth", "#888888"))
    try:
        context = create_context(app)
    except CatalogError as exc:
        QMessageBox.critical(None, "Hearth cannot start", str(exc))
        return 1
    window = MainWindow(context)
    window.show()
    if single:
        # Listening starts once the window is painted (QtNetwork is not imported before that).
        window.first_painted.connect(lambda: _listen_for_later_launches(window, context))
    if os.environ.get("HEARTH_STARTUP_PROBE"):
        # Cold-start measurement: the time from process start to the first painted window.
        window.first_painted.connect(lambda: QTimer.singleShot(0, lambda: _report_startup(app)))
    if target:
        _open_model(window, context, target)
    return app.exec()


def _listen_for_later_launches(window: MainWindow, context: AppContext) -> None:
    server = InstanceServer(parent=window)
    if server.listen():
        server.open_requested.connect(lambda path: _handed_over(window, context, path))


def _handed_over(window: MainWindow, context: AppContext, path: str | None) -> None:
    """A later launch (``hearth some.gguf``, a double-click) handed this over instead of starting."""
    _bring_to_front(window)
    if path:
        print(f"hearth: opening {path} (handed over by another launch)", file=sys.stderr, flush=True)
        _open_model(window, context, path)
