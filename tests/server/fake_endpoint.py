"""A loopback HTTP endpoint that misbehaves: lists one model, then drops every reply mid-stream or never answers."""

from __future__ import annotations

import socket
import threading
import time

MODELS = b'{"object": "list", "data": [{"id": "flaky", "object": "model"}]}'


class Misbehaving:
    """``mode`` "drop": one stream chunk ("Paris is"), then the connection closes; "silent": no answer."""

    def __init__(self, mode: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.mode = mode
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            request = conn.recv(65536)
            if request.startswith(b"GET /v1/models"):
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(MODELS)).encode() + b"\r\nconnection: close\r\n\r\n" + MODELS)
                return
            if self.mode == "silent":
                time.sleep(5)
                return
            chunk = b'data: {"choices":[{"index":0,"delta":{"content":"Paris is"}}]}\n\n'
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            time.sleep(0.2)

    def close(self) -> None:
        self.sock.close()
