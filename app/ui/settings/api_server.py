"""The "API server" settings section: serve Hearth's models to other programs, the address, the request log."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.errors import HearthError
from app.server.api import RequestRecord
from app.server.runner import exposure_warning
from app.server.service import ApiService, ApiSettings, load_api_settings, save_api_settings
from app.ui.settings.section import section_layout
from app.ui.theme import named
from app.ui.workers import Lane, create_worker

INTRO = ("Let other programs (editors, Open WebUI, scripts) use your installed models through an "
         "OpenAI-compatible API. Requests take turns; a model loads when a request names it.")


class ApiServerSection(QFrame):
    """A switch, host/port/key, the address to copy, and a log of requests.

    Signals:
        state_changed(bool): serving or not.
    """

    state_changed = Signal(bool)
    _logged = Signal(object)  # a request served, from the server's thread

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.service = ApiService(on_record=self._logged.emit)
        self.switch = QCheckBox("Serve the API")
        self.host = QLineEdit("127.0.0.1")
        self.host.setToolTip("127.0.0.1: this computer only. 0.0.0.0: every network it is on.")
        self.port = QSpinBox()
        self.port.setRange(0, 65535)  # 0: any free port
        self.port.setValue(8080)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("API key (optional; needed beyond this computer)")
        self.address = named(QLabel("Not serving"), "Muted")
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QPushButton("Copy address")
        self.copy_button.setEnabled(False)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setPlaceholderText("Requests appear here.")
        self.log.setMaximumHeight(160)
        self.confirm: QMessageBox | None = None
        saved = load_api_settings()
        self.host.setText(saved.host)
        self.port.setValue(saved.port)
        self.api_key.setText(saved.api_key)

        layout = section_layout(self, "API server", INTRO)
        row = QHBoxLayout()
        row.addWidget(self.switch)
        row.addWidget(QLabel("Address"))
        row.addWidget(self.host, 1)
        row.addWidget(QLabel("Port"))
        row.addWidget(self.port)
        layout.addLayout(row)
        layout.addWidget(self.api_key)
        where = QHBoxLayout()
        where.addWidget(self.address, 1)
        where.addWidget(self.copy_button)
        layout.addLayout(where)
        layout.addWidget(self.log)

        self.switch.toggled.connect(self._switched)
        self.copy_button.clicked.connect(self.copy_address)
        self._logged.connect(self._on_record)

    # ---- switching ----------------------------------------------------------------------

    def _switched(self, on: bool) -> None:
        if not on:
            self._stop()
            return
        warning = exposure_warning(self.host.text().strip(), self.api_key.text().strip() or None)
        if warning is None:
            self._start()
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Serve without an API key?",
                          warning[0].upper() + warning[1:].replace("Add --api-key KEY", "Set an API key"),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.button(QMessageBox.StandardButton.Yes).setText("Serve anyway")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.finished.connect(self._confirmed)
        self.confirm = box
        box.open()

    def _confirmed(self, result: int) -> None:
        self.confirm = None
        if result == QMessageBox.StandardButton.Yes:
            self._start()
        else:
            self._set_switch(False)

    def _set_switch(self, on: bool) -> None:
        self.switch.blockSignals(True)
        self.switch.setChecked(on)
        self.switch.blockSignals(False)

    def _start(self) -> None:
        host, port, key = self.host.text().strip() or "127.0.0.1", self.port.value(), self.api_key.text().strip()
        save_api_settings(ApiSettings(host, port, key))
        self.switch.setEnabled(False)
        for field in (self.host, self.port, self.api_key):
            field.setEnabled(False)
        self.address.setText("Starting...")
        create_worker(lambda: self.service.start(host, port, key or None), self._on_started, self._start_error,
                      parent=self, lane=Lane.WAITS)

    def _on_started(self, url: str) -> None:
        self.switch.setEnabled(True)
        self.address.setText(url)
        self.copy_button.setEnabled(True)
        self.state_changed.emit(True)

    def _start_error(self, exc: Exception) -> None:
        # A surprise must not take the window down: it is said in the address line like any failure.
        self._on_failed(str(exc) if isinstance(exc, HearthError) else f"the API server did not start: {exc}")

    def _on_failed(self, message: str) -> None:
        self.switch.setEnabled(True)
        self._set_switch(False)
        self._unlock_fields()
        self.address.setText(message)

    def _stop(self) -> None:
        self.switch.setEnabled(False)
        self.address.setText("Stopping...")
        create_worker(self.service.stop, lambda _none: self._on_failed("Not serving"),
                      lambda exc: self._on_failed(f"the API server did not stop cleanly: {exc}"),
                      parent=self, lane=Lane.WAITS)
        self.copy_button.setEnabled(False)
        self.state_changed.emit(False)

    def _unlock_fields(self) -> None:
        for field in (self.host, self.port, self.api_key):
            field.setEnabled(True)

    # ---- address and log ----------------------------------------------------------------

    def copy_address(self) -> None:
        if self.service.url:
            QGuiApplication.clipboard().setText(self.service.url)

    def _on_record(self, record: RequestRecord) -> None:
        self.log.appendPlainText(record.line())

    def shutdown(self) -> None:
        self.service.stop()
