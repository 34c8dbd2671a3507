"""One Hearth window per user and data folder: a second launch hands its file to the running one.

The first instance listens on a local socket (a named pipe on Windows) named after the user and the
data folder; ``hearth some.gguf`` run again connects, sends ``{"open": "/abs/path.gguf"}`` (or
``{"open": null}`` for a plain second launch), waits for ``ok`` and exits, and the running window
comes to the front with that model.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket as pysocket
import sys
import tempfile
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.paths import app_dirs

ACK = b"ok\n"
CONNECT_MS = 300
REPLY_MS = 2000
MAX_MESSAGE = 64 * 1024


def server_name() -> str:
    """Per user and per data folder, so a portable HEARTH_HOME (or a test) runs its own instance."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a minimal container
        user = "user"
    folder = hashlib.sha256(str(app_dirs().data.resolve()).encode()).hexdigest()[:12]
    name = f"hearth-{hashlib.sha256(user.encode()).hexdigest()[:8]}-{folder}"
    if sys.platform == "win32":
        return name  # a named pipe
    # A socket file in the user's runtime folder (short enough for the 104-byte limit on socket paths).
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(runtime if len(runtime) < 60 else tempfile.gettempdir(), name + ".sock")


def hand_over(path: str | None, name: str | None = None) -> bool:
    """Send ``path`` (or nothing, just "come to the front") to a running instance; False when none answers.

    On Unix this is a plain socket, so a first start does not pay for importing QtNetwork before its
    window is on screen.
    """
    name = name or server_name()
    message = json.dumps({"open": path}).encode() + b"\n"
    if sys.platform != "win32":
        return _hand_over_unix(name, message)
    return _hand_over_qt(name, message)


def _hand_over_unix(name: str, message: bytes) -> bool:
    if not os.path.exists(name):
        return False
    try:
        with pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_MS / 1000)
            sock.connect(name)
            sock.settimeout(REPLY_MS / 1000)
            sock.sendall(message)
            reply = b""
            while len(reply) < len(ACK):
                chunk = sock.recv(16)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(ACK)
    except OSError:  # nobody listening (a socket file left by a crash), or no answer in time
        return False


def _hand_over_qt(name: str, message: bytes) -> bool:
    from PySide6.QtNetwork import QLocalSocket

    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_MS):
        return False
    socket.write(message)
    socket.flush()
    socket.waitForBytesWritten(REPLY_MS)  # False when flush() already wrote it all
    while socket.bytesAvailable() < len(ACK) and socket.waitForReadyRead(REPLY_MS):
        pass
    answered = bytes(socket.readAll().data()).startswith(ACK)
    socket.abort()
    return answered


class InstanceServer(QObject):
    """Listens for later launches.

    Signals:
        open_requested(object): a later launch asked to show the window and open this path (str), or
            only to show the window (None).
    """

    open_requested = Signal(object)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        from PySide6.QtNetwork import QLocalServer

        super().__init__(parent)
        self.name = name or server_name()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        self._buffers: dict[Any, bytes] = {}

    def listen(self) -> bool:
        """Start listening; a socket file left by a crashed instance (nobody answers on it) is replaced."""
        from PySide6.QtNetwork import QLocalServer

        if self.server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)  # callers found nobody answering on it
        return self.server.listen(self.name)

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while (socket := self.server.nextPendingConnection()) is not None:
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))
            if socket.bytesAvailable():
                self._read(socket)

    def _forget(self, socket: Any) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()

    def _read(self, socket: Any) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if b"\n" not in data:
            if len(data) > MAX_MESSAGE:
                socket.abort()
            else:
                self._buffers[socket] = data
            return
        line = data.split(b"\n", 1)[0]
        self._buffers[socket] = b""
        path: object = None
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            message = json.loads(line.decode("utf-8"))
            path = message.get("open") if isinstance(message, dict) else None
        socket.write(ACK)
        socket.flush()
        socket.disconnectFromServer()
        self.open_requested.emit(path if isinstance(path, str) and path else None)
