"""The chat side panel: system message, sampling, how the model loads, threads, and the exact prompt sent."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.protocol import SamplingSettings
from app.engine.thread_setting import load_thread_setting, save_thread_setting
from app.errors import HearthError
from app.paths import app_dirs
from app.ui.chat.load_settings import LoadSettingsSection
from app.ui.chat.markdown import code_font
from app.ui.theme import SPACE_L, SPACE_M, SPACE_S

# (field, label, minimum, maximum, step, decimals) — decimals 0 means a whole number.
SAMPLING_FIELDS: tuple[tuple[str, str, float, float, float, int], ...] = (
    ("temperature", "Temperature", 0.0, 2.0, 0.05, 2),
    ("top_p", "Top P", 0.0, 1.0, 0.05, 2),
    ("top_k", "Top K", 0, 200, 1, 0),
    ("min_p", "Min P", 0.0, 1.0, 0.01, 2),
    ("repeat_penalty", "Repeat penalty", 1.0, 2.0, 0.05, 2),
    ("max_tokens", "Max reply tokens", 16, 8192, 16, 0),
)


class ChatSettingsPanel(QFrame):
    """Edits one chat's system message and sampling; shows the prompt last sent.

    Signals:
        system_message_changed(object): the new system message, or None for the model's default.
        sampling_changed(object): a SamplingSettings with the user's values.
        closed(): the close button was clicked.
        threads_changed(object): the CPU thread setting was saved: "auto" or a count (next load).
    """

    system_message_changed = Signal(object)
    sampling_changed = Signal(object)
    closed = Signal()
    threads_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatSettings")
        self.setFixedWidth(320)
        self._loading = False
        self._default_system: str | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        body.setObjectName("ChatSettingsBody")
        layout = QVBoxLayout(body)
        layout.setContentsMargins(SPACE_L, SPACE_L, SPACE_L, SPACE_L)
        layout.setSpacing(SPACE_M)
        title = QLabel("Chat settings")
        title.setObjectName("PanelTitle")
        close = QPushButton("Close")
        close.setObjectName("Quiet")
        close.clicked.connect(self.closed)
        header = QWidget()
        header_row = QFormLayout(header)
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addRow(title, close)
        layout.addWidget(header)

        layout.addWidget(self._section("System message"))
        self.system_edit = QPlainTextEdit()
        self.system_edit.setObjectName("SystemEdit")
        self.system_edit.setFixedHeight(110)
        self.system_edit.textChanged.connect(self._system_edited)
        layout.addWidget(self.system_edit)
        self.reset_system = QPushButton("Use the model's default")
        self.reset_system.setObjectName("Quiet")
        self.reset_system.clicked.connect(self._reset_system)
        layout.addWidget(self.reset_system, 0, Qt.AlignmentFlag.AlignLeft)

        layout.addWidget(self._section("Sampling"))
        form = QFormLayout()
        form.setSpacing(SPACE_S)
        self.spins: dict[str, QDoubleSpinBox | QSpinBox] = {}
        for name, label, low, high, step, decimals in SAMPLING_FIELDS:
            spin: QDoubleSpinBox | QSpinBox
            if decimals:
                spin = QDoubleSpinBox()
                spin.setDecimals(decimals)
                spin.setSingleStep(step)
                spin.setRange(low, high)
                spin.valueChanged.connect(self._sampling_edited)
            else:
                spin = QSpinBox()
                spin.setSingleStep(int(step))
                spin.setRange(int(low), int(high))
                spin.valueChanged.connect(self._sampling_edited)
            spin.setObjectName(f"sampling_{name}")
            self.spins[name] = spin
            form.addRow(label, spin)
        layout.addLayout(form)

        layout.addWidget(self._section("Loading this model"))
        self.load_section = LoadSettingsSection()
        layout.addWidget(self.load_section)

        layout.addWidget(self._section("Performance"))
        threads_form = QFormLayout()
        threads_form.setSpacing(SPACE_S)
        self.threads_box = QComboBox()
        self.threads_box.setObjectName("ThreadsSetting")
        self.threads_box.addItem("Auto", "auto")
        for count in range(1, max(1, os.cpu_count() or 1) + 1):
            self.threads_box.addItem(str(count), count)
        self.threads_box.setToolTip("Auto starts from the cores other programs leave free and adapts "
                                    "while replying; a number fixes it.")
        saved = load_thread_setting(app_dirs().settings_file)
        index = self.threads_box.findData(saved)
        self.threads_box.setCurrentIndex(index if index >= 0 else 0)
        self.threads_box.currentIndexChanged.connect(self._threads_chosen)
        threads_form.addRow("CPU threads", self.threads_box)
        layout.addLayout(threads_form)
        self.threads_note = QLabel("Used the next time a model loads.")
        self.threads_note.setObjectName("Muted")
        self.threads_note.setWordWrap(True)
        layout.addWidget(self.threads_note)

        layout.addWidget(self._section("Prompt sent to the model"))
        self.prompt_label = QLabel("The exact text the model saw last, built by its chat template.")
        self.prompt_label.setObjectName("Muted")
        self.prompt_label.setWordWrap(True)
        layout.addWidget(self.prompt_label)
        self.prompt_view = QPlainTextEdit()
        self.prompt_view.setObjectName("PromptView")
        self.prompt_view.setReadOnly(True)
        self.prompt_view.setFont(code_font())
        self.prompt_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.prompt_view.setMinimumHeight(220)
        layout.addWidget(self.prompt_view, 1)
        scroll.setWidget(body)
        outer.addWidget(scroll)
        self._system_timer = QTimer(self, singleShot=True, interval=400)
        self._system_timer.timeout.connect(self._emit_system)

    @staticmethod
    def _section(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("SectionLabel")
        return label

    def show_chat(self, system_message: str | None, default_system: str | None,
                  sampling: SamplingSettings) -> None:
        """Fill the fields for a chat without emitting changes."""
        self._loading = True
        self._default_system = default_system
        self.system_edit.setPlaceholderText(
            default_system or "No system message"
        )
        self.system_edit.setPlainText(system_message if system_message is not None
                                      else (default_system or ""))
        self.reset_system.setEnabled(system_message is not None)
        for name, spin in self.spins.items():
            value = getattr(sampling, name)
            if isinstance(spin, QSpinBox):
                spin.setValue(int(value))
            else:
                spin.setValue(float(value))
        self._loading = False

    def show_prompt(self, prompt: str) -> None:
        self.prompt_view.setPlainText(prompt)

    def sampling(self) -> SamplingSettings:
        values: dict[str, Any] = {name: spin.value() for name, spin in self.spins.items()}
        return SamplingSettings(**values)

    def _system_edited(self) -> None:
        if not self._loading:
            self._system_timer.start()

    def _emit_system(self) -> None:
        text = self.system_edit.toPlainText()
        value = None if text == (self._default_system or "") else text
        self.reset_system.setEnabled(value is not None)
        self.system_message_changed.emit(value)

    def _reset_system(self) -> None:
        self._loading = True
        self.system_edit.setPlainText(self._default_system or "")
        self._loading = False
        self.reset_system.setEnabled(False)
        self.system_message_changed.emit(None)

    def _threads_chosen(self, _index: int) -> None:
        value = self.threads_box.currentData()
        try:
            save_thread_setting(app_dirs().settings_file, value)
        except (HearthError, OSError) as exc:
            self.threads_note.setText(f"Not saved: {exc}")
            return
        self.threads_note.setText("Saved: used the next time a model loads.")
        self.threads_changed.emit(value)

    def _sampling_edited(self) -> None:
        if not self._loading:
            self.sampling_changed.emit(self.sampling())
