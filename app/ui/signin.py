"""Signing in to Hugging Face from the app: the dialog, and the account check that runs off the GUI thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import HearthError
from app.hub import account
from app.hub.account import Account
from app.ui.theme import SPACE_M, named


class AccountService(QObject):
    """Checks and changes the Hugging Face account on worker threads; answers arrive as signals.

    Signals:
        checked(object): the Account the token in use belongs to, or None when there is no token.
        check_failed(str): the token could not be checked (offline, Hub error), in words for the user.
        signed_in(object): a new token was accepted and stored; the Account it belongs to.
        sign_in_failed(str): the token was refused or could not be stored.
    """

    checked = Signal(object)
    check_failed = Signal(str)
    signed_in = Signal(object)
    sign_in_failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.account: Account | None = None
        self._generation = 0
        self.checked.connect(self._remember)  # first, so later slots see the new account
        self.signed_in.connect(self._remember)

    def check(self) -> None:
        """Find out who is signed in (no network call when there is no token at all)."""
        self._generation += 1
        if not account.current_token():
            self.checked.emit(None)
            return
        self._run(self._generation, account.signed_in, self.checked, self.check_failed)

    def sign_in(self, token: str) -> None:
        self._generation += 1
        self._run(self._generation, lambda: account.sign_in(token), self.signed_in, self.sign_in_failed)

    def sign_out(self) -> None:
        self._generation += 1
        account.sign_out()
        self.check()

    def _run(self, generation: int, work: Callable[[], Account | None], done: Any, failed: Any) -> None:
        def run() -> None:
            try:
                result = work()
            except HearthError as exc:
                self._emit(generation, failed, str(exc))
                return
            except Exception as exc:  # never a traceback in the GUI
                self._emit(generation, failed, f"{type(exc).__name__}: {exc}")
                return
            self._emit(generation, done, result)

        threading.Thread(target=run, name="hf-account", daemon=True).start()

    def _remember(self, value: object) -> None:
        self.account = value if isinstance(value, Account) else None

    def _emit(self, generation: int, signal: Any, value: object) -> None:
        if generation != self._generation:
            return  # a newer request superseded this one
        with contextlib.suppress(RuntimeError):  # the page was closed meanwhile
            signal.emit(value)


class SignInDialog(QDialog):
    """Paste an access token; it is checked with ``whoami`` and stored where ``hf auth login`` stores it.

    The dialog stays open, with the reason, when the Hub refuses the token.
    """

    def __init__(self, service: AccountService, parent: QWidget | None = None, reason: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in to Hugging Face")
        self.setMinimumWidth(460)
        self.service = service
        self.account: Account | None = None
        intro = QLabel(
            (f"{reason}\n\n" if reason else "")
            + "Gated and private models need a Hugging Face access token. A read token is enough."
        )
        intro.setWordWrap(True)
        link = QLabel(f'<a href="{account.tokens_page()}">Create a token on huggingface.co</a> '
                      "(Settings → Access Tokens), then paste it here.")
        link.setOpenExternalLinks(True)
        link.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.token = QLineEdit()
        self.token.setPlaceholderText("hf_…")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setClearButtonEnabled(True)
        self.status = named(QLabel("It is saved where the `hf` command keeps it, so other tools use it too."),
                            "Muted")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sign_in_button: QPushButton = self.buttons.addButton("Sign in", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_in_button.setObjectName("Primary")
        self.sign_in_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACE_M)
        for widget in (intro, link, self.token, self.status, self.buttons):
            layout.addWidget(widget)
        self.token.textChanged.connect(lambda text: self.sign_in_button.setEnabled(bool(text.strip())))
        self.token.returnPressed.connect(self.submit)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        service.signed_in.connect(self._accepted)
        service.sign_in_failed.connect(self._refused)

    def submit(self) -> None:
        token = self.token.text().strip()
        if not token:
            return
        self.sign_in_button.setEnabled(False)
        self.token.setEnabled(False)
        self._show("Checking the token with Hugging Face…", error=False)
        self.service.sign_in(token)

    def _accepted(self, signed: Account) -> None:
        self.account = signed
        self.accept()

    def _refused(self, message: str) -> None:
        self.token.setEnabled(True)
        self.sign_in_button.setEnabled(bool(self.token.text().strip()))
        self._show(message[:1].upper() + message[1:], error=True)
        self.token.setFocus()
        self.token.selectAll()

    def _show(self, text: str, error: bool) -> None:
        self.status.setText(text)
        self.status.setProperty("error", error)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def done(self, result: int) -> None:
        with contextlib.suppress(RuntimeError, TypeError):
            self.service.signed_in.disconnect(self._accepted)
            self.service.sign_in_failed.disconnect(self._refused)
        super().done(result)
