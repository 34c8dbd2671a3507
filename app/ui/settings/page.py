"""The Settings page: sections stacked in a scroll area (Remote machines for now)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from app.ui.context import AppContext
from app.ui.settings.api_server import ApiServerSection
from app.ui.settings.endpoints import EndpointsSection
from app.ui.settings.remote_machines import RemoteMachinesSection
from app.ui.theme import SPACE_L, SPACE_M, SPACE_XL, named


class SettingsPage(QWidget):
    """Settings kept in the user's settings.json, one section each."""

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.remote_machines = RemoteMachinesSection(context.dirs.settings_file)
        body = QWidget()
        sections = QVBoxLayout(body)
        sections.setContentsMargins(0, 0, 0, 0)
        sections.setSpacing(SPACE_M)
        sections.addWidget(self.remote_machines)
        self.api_server = ApiServerSection()
        self.endpoints = EndpointsSection()
        self.endpoints.changed.connect(context.events.installed_changed)
        sections.addWidget(self.api_server)
        sections.addWidget(self.endpoints)
        sections.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(SPACE_XL, SPACE_L, SPACE_XL, SPACE_L)
        layout.setSpacing(SPACE_M)
        layout.addWidget(named(QLabel("Settings"), "PageTitle"))
        layout.addWidget(scroll, 1)

    def shutdown(self) -> None:
        self.api_server.shutdown()
