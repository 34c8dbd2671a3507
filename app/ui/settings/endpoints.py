"""The "Remote endpoints" settings section: OpenAI-compatible servers whose models appear in the chat's picker."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from app.errors import HearthError
from app.remote.endpoints import Endpoint, EndpointStore, checked_url
from app.remote.engine import RemoteEngine
from app.ui.settings.section import empty_state, list_rows, section_layout, status_label
from app.ui.workers import Lane, create_worker

EMPTY_TEXT = ("No remote endpoints yet. To chat with a server's models here, give it a name and its "
              "address above (its OpenAI-compatible URL, e.g. http://studio.local:8080/v1) and press Add.")
INTRO = ("Chat with models on another machine: any server that speaks OpenAI's API (vLLM, TGI, "
         "llama-server, Ollama, LM Studio, another Hearth). Its models appear in the chat's model "
         "picker as \"remote: NAME\". The key is kept in your settings and never shown.")


class EndpointsSection(QFrame):
    """Add (its models are listed at once), refresh and remove endpoints.

    Signals:
        changed(): the endpoints or their model lists changed (the chat page lists them again).
    """

    changed = Signal()

    def __init__(self, store: EndpointStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.store = store or EndpointStore()
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name, e.g. studio")
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://studio.local:8080/v1")
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("API key (optional)")
        self.add_button = QPushButton("Add")
        self.refresh_button = QPushButton("Refresh models")
        self.remove_button = QPushButton("Remove")
        self.list = QListWidget()
        self.list.setMaximumHeight(160)
        self.empty_label = empty_state(EMPTY_TEXT)
        self.status = status_label()

        layout = section_layout(self, "Remote endpoints", INTRO)
        row = QHBoxLayout()
        row.addWidget(self.name)
        row.addWidget(self.url, 2)
        row.addWidget(self.api_key)
        row.addWidget(self.add_button)
        layout.addLayout(row)
        list_rows(layout, self.list, self.empty_label, (self.refresh_button, self.remove_button), self.status)

        self.add_button.clicked.connect(self.add)
        self.refresh_button.clicked.connect(self.refresh_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.show_endpoints()

    def show_endpoints(self) -> None:
        self.list.clear()
        for endpoint in self.store.load():
            count = len(endpoint.models)
            text = f"{endpoint.name}  ·  {endpoint.base_url}  ·  {count} model{'s' if count != 1 else ''}"
            if endpoint.api_key:
                text += "  ·  key set"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, endpoint.name)
            self.list.addItem(item)
        empty = self.list.count() == 0
        self.list.setVisible(not empty)
        self.empty_label.setVisible(empty)

    def add(self) -> None:
        name, url = self.name.text().strip(), self.url.text().strip()
        try:
            if not name or "/" in name:
                raise HearthError("give the endpoint a name without \"/\"")
            checked_url(url)
        except HearthError as exc:
            self.status.setText(str(exc))
            return
        self._list_models(Endpoint(name, url, self.api_key.text().strip() or None))

    def refresh_selected(self) -> None:
        item = self.list.currentItem()
        endpoint = self.store.find(item.data(Qt.ItemDataRole.UserRole)) if item else None
        if endpoint is not None:
            self._list_models(endpoint)

    def remove_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.store.remove(item.data(Qt.ItemDataRole.UserRole))
            self.show_endpoints()
            self.changed.emit()

    def _list_models(self, endpoint: Endpoint) -> None:
        self.add_button.setEnabled(False)
        self.status.setText(f"Asking {endpoint.base_url} for its models...")

        def ask() -> Endpoint:
            engine = RemoteEngine(endpoint, connect_timeout=5, read_timeout=15)
            try:
                return replace(endpoint, models=tuple(engine.list_models()))
            finally:
                engine.close()

        # One request each (an add and a refresh both count): nothing supersedes it.
        create_worker(ask, self._on_listed, self._on_error, parent=self, lane=Lane.WAITS)

    def _on_listed(self, endpoint: Endpoint) -> None:
        self.add_button.setEnabled(True)
        self.store.add(endpoint)
        self.name.clear()
        self.url.clear()
        self.api_key.clear()
        self.status.setText(f"{endpoint.name}: {len(endpoint.models)} models.")
        self.show_endpoints()
        self.changed.emit()

    def _on_error(self, exc: Exception) -> None:
        self._on_failed(str(exc) if isinstance(exc, HearthError) else f"{type(exc).__name__}: {exc}")

    def _on_failed(self, message: str) -> None:
        self.add_button.setEnabled(True)
        self.status.setText(message)
