"""Signing in to Hugging Face from the app: the dialog, and the account check that runs off the GUI thread."""

from __future__ import annotations

import contextlib
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
from app.ui.workers import Lane, LatestWorker


class AccountService(QObject):
    """Checks and changes the Hugging Face account off the GUI thread; answers arrive as signals.

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
        # One worker for all three: a newer check, sign-in or sign-out supersedes an older one's answer.
        self._worker: LatestWorker[tuple[Any, object]] = LatestWorker(self._answer, parent=self, lane=Lane.WAITS)
        self.checked.connect(self._remember)  # first, so later slots see the new account
        self.signed_in.connect(self._remember)

    def check(self) -> None:
        """Find out who is signed in (no network call when there is no token at all)."""
        self._run(account.signed_in, self.checked, self.check_failed)

    def sign_in(self, token: str) -> None:
        self._run(lambda: account.sign_in(token), self.signed_in, self.sign_in_failed)

    def sign_out(self) -> None:
        account.sign_out()  # at once: the token is gone when the page says "Signed out"
        self.check()  # HF_TOKEN may still be set

    def _run(self, work: Callable[[], Account | None], done: Any, failed: Any) -> None:
        def run() -> tuple[Any, object]:
            try:
                return done, work()
            except HearthError as exc:
                return failed, str(exc)
            except Exception as exc:  # never a traceback in the GUI
                return failed, f"{type(exc).__name__}: {exc}"

        self._worker.submit(run)

    def _remember(self, value: object) -> None:
        self.account = value if isinstance(value, Account) else None

    @staticmethod
    def _answer(outcome: tuple[Any, object]) -> None:  # the GUI thread, the newest request only
        signal, value = outcome
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
