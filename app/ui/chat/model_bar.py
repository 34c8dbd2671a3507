"""The bar above the conversation: which model, whether it is loaded, its offload plan, settings."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from app.library.installed import InstalledModel, installed_models, remote_models  # noqa: F401 (the bar lists these)
from app.ui.theme import SPACE_M, SPACE_S, SPACE_XS, Theme, icon

NOT_LOADED = "Not loaded (it loads when you send)"


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when narrow; the full text is its tooltip."""

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)


class ModelBar(QFrame):
    """Model picker, load/unload with progress, the load state and plan, and the settings toggle.

    Signals:
        model_chosen(str): path of the model picked in the list.
        load_requested(str): path to load.
        cancel_requested(): stop the load under way.
        unload_requested(): free the loaded model.
        settings_toggled(bool): show or hide the chat settings panel.
    """

    model_chosen = Signal(str)
    load_requested = Signal(str)
    cancel_requested = Signal()
    unload_requested = Signal()
    settings_toggled = Signal(bool)

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelBar")
        self._models: list[InstalledModel] = []
        self._loaded: str | None = None
        self._loading: str | None = None  # the name of the model being loaded
        self._load_started = 0.0
        self._clock = QTimer(self, interval=1000)  # the seconds a load has taken, shown as it goes
        self._clock.timeout.connect(self._show_load_time)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(SPACE_M, SPACE_S, SPACE_M, SPACE_S)
        layout.setSpacing(SPACE_S)
        self.picker = QComboBox()
        self.picker.setObjectName("ModelPicker")
        self.picker.setMinimumWidth(240)
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.picker.currentIndexChanged.connect(self._picked)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self._load_clicked)
        self.progress = QProgressBar()
        self.progress.setObjectName("LoadProgress")
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setFixedSize(QSize(90, 6))
        self.progress.hide()
        self.state = ElidedLabel(NOT_LOADED)
        self.state.setObjectName("ModelState")
        self.state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.settings_button = QToolButton()
        self.settings_button.setObjectName("SettingsToggle")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip("Chat settings: system message, sampling, how the model loads, the prompt sent")
        self.settings_button.setText("Settings")
        self.settings_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.settings_button.toggled.connect(self.settings_toggled)
        layout.addWidget(self.picker)
        layout.addWidget(self.load_button)
        layout.addWidget(self.progress)
        layout.addSpacing(SPACE_XS)
        layout.addWidget(self.state, 1)
        layout.addWidget(self.settings_button)
        self.set_theme(theme)

    def set_theme(self, theme: Theme) -> None:
        self.settings_button.setIcon(icon("settings", theme.text_muted))

    def set_models(self, models: list[InstalledModel], current: str | None = None) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        self._models = list(models)
        for model in models:
            label = f"{model.name}  ·  {model.detail}" if model.detail else model.name
            self.picker.addItem(label, str(model.path))
            self.picker.setItemData(self.picker.count() - 1, str(model.path),
                                    Qt.ItemDataRole.ToolTipRole)
        if not models:
            self.picker.addItem("No models installed", "")
        self.picker.setEnabled(bool(models))
        self.picker.blockSignals(False)
        if current is not None:
            self.select(current)
        self._update_button()

    def show_scanning(self) -> None:
        """Before the first scan of the models folder reports."""
        self.picker.blockSignals(True)
        self.picker.clear()
        self._models = []
        self.picker.addItem("Looking for models…", "")
        self.picker.setEnabled(False)
        self.picker.blockSignals(False)
        self._update_button()

    def models(self) -> list[InstalledModel]:
        return list(self._models)

    def current_path(self) -> str | None:
        value = self.picker.currentData()
        return str(value) if value else None

    def current_name(self) -> str | None:
        path = self.current_path()
        return next((m.name for m in self._models if str(m.path) == path), None)

    def select(self, path: str) -> bool:
        index = self.picker.findData(path)
        if index < 0:
            return False
        self.picker.blockSignals(True)
        self.picker.setCurrentIndex(index)
        self.picker.blockSignals(False)
        self._update_button()
        return True

    @property
    def loading(self) -> bool:
        return self._loading is not None

    def show_loading(self, name: str) -> None:
        """A load is under way: the bar shows its progress and time, and the button cancels it."""
        self._loading = name
        self._load_started = time.monotonic()
        self.progress.show()
        self.state.setText(f"Loading {name}…")
        self._clock.start()
        self._update_button()

    def _show_load_time(self) -> None:
        if self._loading is not None:
            self.state.setText(f"Loading {self._loading}…  {time.monotonic() - self._load_started:.0f} s")

    def _load_ended(self) -> None:
        self._loading = None
        self._clock.stop()
        self.progress.hide()

    def show_loaded(self, path: str, description: str, threads: str = "") -> None:
        """``threads``: what llama.cpp runs with and why (ThreadReport.describe), in the tooltip."""
        self._loaded = path
        self._load_ended()
        self.state.setText(description)
        self.show_threads(threads)
        self._update_button()

    def show_threads(self, threads: str) -> None:
        """Update the tooltip's thread line (auto tuning may change the count while replying)."""
        if self._loaded is not None and threads:
            self.state.setToolTip(f"{self.state.text()}\n{threads}")

    def show_unloaded(self, message: str = "") -> None:
        message = message or NOT_LOADED
        self._loaded = None
        self._load_ended()
        self.state.setText(message)
        self._update_button()

    @property
    def loaded_path(self) -> str | None:
        return self._loaded

    def _update_button(self) -> None:
        if self._loading is not None:
            self.load_button.setText("Cancel")
            self.load_button.setToolTip("Stop loading this model")
            self.load_button.setEnabled(True)
            return
        current = self.current_path()
        loaded_here = current is not None and current == self._loaded
        self.load_button.setText("Unload" if loaded_here else "Load")
        self.load_button.setToolTip("")
        self.load_button.setEnabled(current is not None)

    def _picked(self, _index: int) -> None:
        self._update_button()
        path = self.current_path()
        if path:
            self.model_chosen.emit(path)

    def _load_clicked(self) -> None:
        if self._loading is not None:
            self.cancel_requested.emit()
            return
        path = self.current_path()
        if path is None:
            return
        if path == self._loaded:
            self.unload_requested.emit()
        else:
            self.load_requested.emit(path)
