"""The settings panel's "Loading this model" section: context length, GPU layers, KV cache and flash attention
saved per model file (app.engine.load_preferences), with the model's limits read off the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from app.engine.load_preferences import MAX_CONTEXT, MIN_CONTEXT, LoadPreferences, load_preferences, save_preferences
from app.engine.offload import detect_gpu
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata
from app.paths import app_dirs
from app.remote.messages import parse_remote_path
from app.ui.theme import SPACE_S
from app.ui.workers import Lane, LatestWorker

KV_CHOICES = (("f16", "f16"), ("q8_0", "q8_0 (½ memory)"), ("q4_0", "q4_0 (¼ memory)"))
FLASH_CHOICES = (("auto", "Auto"), ("on", "On"), ("off", "Off"))


@dataclass(frozen=True)
class ModelLimits:
    """What the file's header says: the trained context and the layers llama.cpp can offload."""

    path: str
    trained_context: int | None
    layers: int | None


def read_limits(path: str) -> ModelLimits | str:
    """The model's limits, or why its header cannot be read (off the GUI thread)."""
    try:
        meta = read_gguf_metadata(path)
    except HearthError as exc:
        return str(exc)
    except Exception as exc:  # a damaged file must not kill the panel
        return f"cannot read {Path(path).name}: {exc}"
    return ModelLimits(path, meta.context_length, meta.block_count + 1 if meta.block_count else None)


def gpu_unavailable() -> str:
    """Why no layers can go to a GPU here ("" when they can), asked once (off the GUI thread)."""
    support = detect_gpu()
    return "" if support.devices else support.why_cpu_only


class LoadSettingsSection(QWidget):
    """Edits how the model picked in the bar loads; each change is saved for that file at once.

    Signals:
        reload_requested(str): reload this model file now, to apply what was saved (it is the loaded one).
    """

    reload_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._path: str | None = None
        self._loaded: tuple[str, LoadPreferences] | None = None  # the file loaded, and what it loaded with
        self._filling = False
        self._limits: dict[str, ModelLimits] = {}
        self._gpu_reason: str | None = None  # None: not asked yet
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACE_S)
        self.model_label = QLabel()
        self.model_label.setObjectName("Muted")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        form = QFormLayout()
        form.setSpacing(SPACE_S)
        self.context_spin = QSpinBox()
        self.context_spin.setObjectName("ContextLength")
        self.context_spin.setRange(0, MAX_CONTEXT)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setSpecialValueText("Auto")
        self.context_spin.setKeyboardTracking(False)  # saved when typing ends, not at each digit
        self.context_spin.setToolTip("Auto: the model's own, up to 8,192 tokens, as memory allows. A longer "
                                     "context remembers more of the chat and needs more memory.")
        form.addRow("Context length", self.context_spin)
        self.trained_label = QLabel()
        self.trained_label.setObjectName("Muted")
        form.addRow("", self.trained_label)
        self.gpu_spin = QSpinBox()
        self.gpu_spin.setObjectName("GpuLayers")
        self.gpu_spin.setRange(-1, 4096)
        self.gpu_spin.setSpecialValueText("Auto")
        self.gpu_spin.setKeyboardTracking(False)
        self.gpu_spin.setToolTip("Auto: as many layers as fit in the GPU's free memory. 0 keeps the model "
                                 "on the CPU.")
        form.addRow("GPU layers", self.gpu_spin)
        self.gpu_label = QLabel()
        self.gpu_label.setObjectName("Muted")
        self.gpu_label.setWordWrap(True)
        self.gpu_label.hide()
        form.addRow("", self.gpu_label)
        self.kv_box = QComboBox()
        self.kv_box.setObjectName("KvCache")
        for value, label in KV_CHOICES:
            self.kv_box.addItem(label, value)
        self.kv_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.kv_box.setMinimumContentsLength(6)
        self.kv_box.setToolTip("The K/V cache holds the chat so far: f16 keeps it at full size; q8_0 halves its "
                               "memory with little loss, q4_0 quarters it with more.")
        form.addRow("K/V cache", self.kv_box)
        self.flash_box = QComboBox()
        self.flash_box.setObjectName("FlashAttention")
        for value, label in FLASH_CHOICES:
            self.flash_box.addItem(label, value)
        self.flash_box.setToolTip("Flash attention: faster and smaller on most GPUs; Auto lets llama.cpp decide.")
        form.addRow("Flash attention", self.flash_box)
        layout.addLayout(form)
        self.note = QLabel()
        self.note.setObjectName("Muted")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.reload_button = QPushButton("Reload to apply")
        self.reload_button.setObjectName("ReloadModel")
        self.reload_button.hide()
        self.reload_button.clicked.connect(self._reload)
        layout.addWidget(self.reload_button)
        self._reader: LatestWorker[ModelLimits | str] = LatestWorker(self._limits_read, parent=self)
        self._gpu_probe: LatestWorker[str] = LatestWorker(self._gpu_known, parent=self, lane=Lane.WAITS)
        self.context_spin.valueChanged.connect(self._edited)
        self.gpu_spin.valueChanged.connect(self._edited)
        self.kv_box.currentIndexChanged.connect(self._edited)
        self.flash_box.currentIndexChanged.connect(self._edited)
        self.show_model(None)

    # -- what is shown ----------------------------------------------------------------------

    @property
    def path(self) -> str | None:
        return self._path

    def show_model(self, path: str | None) -> None:
        """Show the preferences saved for ``path`` (the model picked in the bar); its limits are read off the
        GUI thread, and whether this build can offload is asked once."""
        self._path = path
        remote = parse_remote_path(path) if path else None
        local = path is not None and remote is None
        for widget in (self.context_spin, self.gpu_spin, self.kv_box, self.flash_box):
            widget.setEnabled(local)
        if not local:
            self.model_label.setText("Pick a model to choose how it loads." if path is None
                                     else "A remote model: its server decides how it loads.")
            self._fill(LoadPreferences())
            self.trained_label.setText("")
            self.note.setText("")
            self.reload_button.hide()
            return
        assert path is not None
        self.model_label.setText(f"For {Path(path).name}, whenever it loads (here and in hearth chat).")
        preferences, problems = load_preferences(app_dirs().settings_file, path)
        self._fill(preferences)
        self._say(" ".join(problems), error=bool(problems))
        self._show_limits()
        if path not in self._limits:
            self._reader.submit(lambda: read_limits(path))
        if self._gpu_reason is None and not self._gpu_probe.busy:
            self._gpu_probe.submit(gpu_unavailable)
        self._show_gpu()
        self._update_reload()

    def set_loaded(self, path: str | None) -> None:
        """The engine loaded ``path`` (None: nothing is loaded) with what is saved for it now."""
        if path is None or parse_remote_path(path) is not None:
            self._loaded = None
        else:
            self._loaded = (path, load_preferences(app_dirs().settings_file, path)[0])
        self._update_reload()

    def preferences(self) -> LoadPreferences:
        """The values on screen (a context shorter than the shortest allowed is raised to it)."""
        context = self.context_spin.value()
        layers = self.gpu_spin.value()
        return LoadPreferences(
            context_length=max(MIN_CONTEXT, context) if context else None,
            gpu_layers=layers if layers >= 0 else None,
            kv_cache_type=self.kv_box.currentData(),
            flash_attention=self.flash_box.currentData(),
        )

    def _fill(self, preferences: LoadPreferences) -> None:
        self._filling = True
        self.context_spin.setMaximum(max(self._trained() or MAX_CONTEXT, preferences.context_length or 0))
        self.context_spin.setValue(preferences.context_length or 0)
        self.gpu_spin.setValue(-1 if preferences.gpu_layers is None else preferences.gpu_layers)
        self.kv_box.setCurrentIndex(max(0, self.kv_box.findData(preferences.kv_cache_type)))
        self.flash_box.setCurrentIndex(max(0, self.flash_box.findData(preferences.flash_attention)))
        self._filling = False

    def _trained(self) -> int | None:
        limits = self._limits.get(self._path or "")
        return limits.trained_context if limits is not None else None

    def _show_limits(self) -> None:
        limits = self._limits.get(self._path or "")
        trained = limits.trained_context if limits else None
        self.trained_label.setText(f"Model's maximum: {trained:,}" if trained else
                                   ("Reading its header…" if limits is None else ""))
        self._filling = True
        self.context_spin.setMaximum(max(trained or MAX_CONTEXT, self.context_spin.value()))
        if limits is not None and limits.layers:
            self.gpu_spin.setMaximum(max(limits.layers, self.gpu_spin.value()))
        self._filling = False

    def _limits_read(self, outcome: ModelLimits | str) -> None:
        if isinstance(outcome, str):
            self.trained_label.setText("")
            self._say(outcome, error=True)
            return
        self._limits[outcome.path] = outcome
        if outcome.path == self._path:
            self._show_limits()

    def _gpu_known(self, reason: str) -> None:
        self._gpu_reason = reason
        self._show_gpu()

    def _show_gpu(self) -> None:
        """A build or machine without a usable GPU: the layers box is off, with the reason."""
        local = self._path is not None and parse_remote_path(self._path) is None
        reason = self._gpu_reason or ""
        self.gpu_spin.setEnabled(local and not reason)
        self.gpu_label.setText(f"CPU only: {reason}." if reason else "")
        self.gpu_label.setVisible(bool(reason))

    # -- saving -----------------------------------------------------------------------------

    def _edited(self, *_args: object) -> None:
        if self._filling or self._path is None:
            return
        preferences = self.preferences()
        if preferences.context_length is not None and preferences.context_length != self.context_spin.value():
            self._fill(preferences)  # 1..255 typed: shown as the shortest allowed
        try:
            save_preferences(app_dirs().settings_file, self._path, preferences)
        except (HearthError, OSError) as exc:
            self._say(f"Not saved: {exc}", error=True)
            return
        self._update_reload()
        self._say("Saved. This model is loaded: reload it to apply." if self.reload_button.isVisibleTo(self)
                  else "Saved for this model: used the next time it loads.")

    def _say(self, text: str, *, error: bool = False) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))
        self.note.setProperty("error", error)
        self.note.style().unpolish(self.note)
        self.note.style().polish(self.note)

    def _update_reload(self) -> None:
        loaded = self._loaded
        self.reload_button.setVisible(loaded is not None and loaded[0] == self._path
                                      and loaded[1] != self.preferences())

    def _reload(self) -> None:
        if self._path is not None:
            self.reload_button.hide()
            self.reload_requested.emit(self._path)
