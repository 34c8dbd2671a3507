"""The "Remote machines" settings section: the host:port list, a switch, and a connection test."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from app.engine.rpc import (
    RemoteMachine,
    RemoteSettings,
    RpcError,
    load_remote_settings,
    parse_endpoint,
    save_remote_settings,
)
from app.errors import HearthError
from app.ui.settings.remote_tester import RemoteTester
from app.ui.settings.section import empty_state, list_rows, section_layout, status_label
from app.ui.theme import SPACE_XS, named

EMPTY_TEXT = ("No remote machines yet. To load models too big for this computer, run "
              "<code>hearth rpc-server</code> on one with memory to spare, then type its host:port above "
              "and press Add.")
INTRO = ("Spread a model that is too big for this computer over other machines running "
         "<code>hearth rpc-server</code>. Their memory counts when a model is loaded; the layers "
         "go to each in proportion to its free memory. The connection is not encrypted or "
         "authenticated: use it on a network you trust, or through an SSH tunnel.")


class RemoteMachinesSection(QFrame):
    """Edits the list kept in the user's settings.json; "Test connection" shows devices and free memory."""

    def __init__(self, settings_file: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.settings_file = settings_file
        self.tester = RemoteTester(self)
        self.tester.tested.connect(self._tested)
        self.tester.failed.connect(self._failed)
        self.tester.finished.connect(self._finished)

        self.enabled = QCheckBox("Use these machines when loading a model")
        self.address = QLineEdit()
        self.address.setPlaceholderText("host:port, e.g. studio.local:50052")
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.test_button = QPushButton("Test connection")
        self.list = named(QListWidget(), "RemoteMachineList")
        self.list.setMinimumHeight(72)
        self.list.setMaximumHeight(180)
        self.list.setSpacing(SPACE_XS)
        self.empty_label = empty_state(EMPTY_TEXT)
        self.status = status_label()

        layout = section_layout(self, "Remote machines", INTRO)
        layout.addWidget(self.enabled)
        row = QHBoxLayout()
        row.addWidget(self.address, 1)
        row.addWidget(self.add_button)
        layout.addLayout(row)
        list_rows(layout, self.list, self.empty_label, (self.test_button, self.remove_button), self.status)

        self.add_button.clicked.connect(self.add_from_field)
        self.address.returnPressed.connect(self.add_from_field)
        self.remove_button.clicked.connect(self.remove_selected)
        self.test_button.clicked.connect(self.test_connection)
        self.enabled.toggled.connect(lambda _on: self._save())
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self._load()

    # ---- the list -------------------------------------------------------------------------

    def _load(self) -> None:
        settings = load_remote_settings(self.settings_file)
        self.enabled.blockSignals(True)
        self.enabled.setChecked(settings.enabled)
        self.enabled.blockSignals(False)
        self.list.clear()
        for endpoint in settings.endpoints:
            self._add_item(str(endpoint))
        self._update_buttons()

    def endpoints(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _add_item(self, endpoint: str) -> QListWidgetItem:
        item = QListWidgetItem(f"{endpoint}  ·  not tested")
        item.setData(Qt.ItemDataRole.UserRole, endpoint)
        self.list.addItem(item)
        return item

    def _item(self, endpoint: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == endpoint:
                return self.list.item(i)
        return None

    def add_from_field(self) -> None:
        text = self.address.text()
        try:
            endpoint = str(parse_endpoint(text))
        except RpcError as exc:
            self._say(str(exc), error=True)
            return
        if self._item(endpoint) is None:
            self._add_item(endpoint)
            self._save()
        self.address.clear()
        self._say(f"Added {endpoint}. Test the connection to see its devices.")
        self._update_buttons()

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self._save()
        self._update_buttons()

    def _save(self) -> None:
        endpoints = tuple(parse_endpoint(e) for e in self.endpoints())
        try:
            save_remote_settings(self.settings_file, RemoteSettings(endpoints, self.enabled.isChecked()))
        except HearthError as exc:  # a damaged settings file: said, and left as it is
            self._say(f"not saved: {exc}", error=True)
        except OSError as exc:
            self._say(f"could not save the settings to {self.settings_file}: {exc}", error=True)

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))
        self.test_button.setEnabled(self.list.count() > 0)
        empty = self.list.count() == 0
        self.list.setVisible(not empty)
        self.empty_label.setVisible(empty)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setProperty("error", error)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    # ---- testing --------------------------------------------------------------------------

    def test_connection(self) -> None:
        endpoints = [parse_endpoint(e) for e in self.endpoints()]
        if not endpoints:
            return
        for e in endpoints:
            item = self._item(str(e))
            if item is not None:
                item.setText(f"{e}  ·  testing…")
        self.test_button.setEnabled(False)
        self._say(f"Testing {len(endpoints)} machine(s)…")
        self.tester.test(endpoints)

    def _tested(self, endpoint: str, machine: RemoteMachine) -> None:
        item = self._item(endpoint)
        if item is None:
            return
        devices = "; ".join(f"device {d.index}: {d.free_bytes / 1e9:.1f} GB free of "
                            f"{d.total_bytes / 1e9:.1f} GB" for d in machine.devices)
        item.setText(f"{endpoint}  ·  ✓ {devices}  ·  {machine.round_trip_s * 1000:.0f} ms")
        item.setToolTip(machine.summary())

    def _failed(self, endpoint: str, message: str) -> None:
        item = self._item(endpoint)
        if item is not None:
            reason = message.removeprefix(f"{endpoint}: ").removeprefix(f"{endpoint} ")
            item.setText(f"{endpoint}  ·  ✗ {reason}")
            item.setToolTip(message)

    def _finished(self) -> None:
        self.test_button.setEnabled(self.list.count() > 0)
        failed = [self.endpoints()[i] for i in range(self.list.count()) if "✗" in self.list.item(i).text()]
        if failed:
            self._say(f"Could not use {', '.join(failed)}: see the list above.", error=True)
        else:
            self._say("Every machine answered. Load a model in Chat: the model bar shows how its layers "
                      "are split.")
