"""``hearth chat`` and a template that refuses the conversation: asked on a terminal, an error elsewhere.

A real tiny GGUF with Gemma's template (it refuses a system role), a real ``python -m app chat``
subprocess, on a pseudo-terminal for the interactive case.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.chats.store import ChatStore
from app.conversation.settings import ChatSettings
from tests.engine.tiny_gguf import write_tiny_gguf

# Gemma's chat template (google/gemma-2-2b-it), as its tokenizer_config.json has it.
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
QUESTION = "This model's template does not accept a system message. Fold it into your first message and go on? [Y/n]"
ARGS = ("--system", "Be brief.", "--max-tokens", "4", "--seed", "1", "--ctx", "256", "--temp", "0")


@pytest.fixture
def gemma_like(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "gemma-like.gguf", chat_template=GEMMA)


class Terminal:
    """``python -m app ARGS`` with its stdin, stdout and stderr on a pseudo-terminal."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "app", *args], stdin=slave, stdout=slave,
                                        stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.seen = ""
        self.read_to = 0  # what expect() has consumed

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:  # the child closed the terminal
            return False
        self.seen += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def expect(self, text: str, timeout: float = 90.0) -> str:
        """Wait for ``text`` after what was expected before; return the output up to and including it."""
        deadline = time.monotonic() + timeout
        while (found := self.seen.find(text, self.read_to)) < 0:
            if time.monotonic() > deadline or (not self._read(0.5) and self.process.poll() is not None):
                raise AssertionError(f"{text!r} never came; the terminal showed:\n{self.seen}")
        chunk = self.seen[self.read_to:found + len(text)]
        self.read_to = found + len(text)
        return chunk

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> int:
        try:
            code = self.process.wait(60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            while self._read(0.1):
                pass
            os.close(self.master)
        return code


@pytest.mark.slow
def test_on_a_terminal_the_refusal_is_a_question(gemma_like: Path) -> None:
    term = Terminal("chat", str(gemma_like), *ARGS)
    try:
        term.expect("> ")
        term.send("hello")
        term.expect("(System role not supported)")
        term.expect(QUESTION)
        term.send("n")
        declined = term.expect("> ")  # the session goes on
        assert "Not sent." in declined and "--system ''" in declined
        assert "hearth: error" not in term.seen
        term.send("hello")
        term.expect(QUESTION)
        term.send("")  # the default: yes
        answered = term.expect("> ")
        assert answered.strip("\n >")  # a reply streamed (random weights: any text)
        term.send("again")
        second = term.expect("> ")
        assert "[Y/n]" not in second  # the chat keeps the remedy: no second question
        term.send("")
        assert term.close() == 0
    finally:
        if term.process.poll() is None:
            term.process.kill()
    assert "Traceback" not in term.seen
    with ChatStore.open_default() as store:
        [chat] = store.list_chats()
        assert ChatSettings.from_stored(chat.settings).template_remedy == "fold_system"
        messages = store.messages(chat.id)
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"), ("assistant", "complete"), ("user", "complete"), ("assistant", "complete")]
    assert [m.content for m in messages if m.role == "user"] == ["hello", "again"]  # the declined one not kept


@pytest.mark.slow
def test_the_stored_remedy_holds_when_the_chat_is_continued(gemma_like: Path) -> None:
    term = Terminal("chat", str(gemma_like), *ARGS)
    try:
        term.expect("> ")
        term.send("hello")
        term.expect(QUESTION)
        term.send("y")
        term.expect("> ")
        term.send("")
        assert term.close() == 0
    finally:
        if term.process.poll() is None:
            term.process.kill()
    with ChatStore.open_default() as store:
        [chat] = store.list_chats()
    piped = subprocess.run([sys.executable, "-m", "app", "chat", str(gemma_like), "--chat", str(chat.id), *ARGS],
                           input="more\n", capture_output=True, text=True, timeout=120, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "[Y/n]" not in piped.stdout + piped.stderr


@pytest.mark.parametrize("how", ["piped", "-p"])
@pytest.mark.slow
def test_without_a_terminal_the_refusal_names_the_flag(gemma_like: Path, how: str) -> None:
    command = [sys.executable, "-m", "app", "chat", str(gemma_like), *ARGS]
    if how == "-p":
        command += ["-p", "hello"]
    result = subprocess.run(command, input="hello\n", capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("hearth: error: ") and "System role not supported" in error
    assert "--fold-system" in error
    assert "[Y/n]" not in result.stdout + result.stderr
    with ChatStore.open_default() as store:  # nothing half-sent is left in the history
        assert all(not store.messages(c.id) for c in store.list_chats())
