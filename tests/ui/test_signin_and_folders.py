"""Signing in to Hugging Face from the app, and models used where other apps keep them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants, get_token
from huggingface_hub.utils import build_hf_headers
from pytestqt.qtbot import QtBot

from app import model_folders
from app.hub import account
from app.hub.account import InvalidToken
from app.ui.chat.model_bar import installed_models
from app.ui.context import AppContext
from app.ui.downloads.page import DownloadsPage
from app.ui.signin import SignInDialog
from tests.hub.conftest import gguf_payload, running_hub, use_quick_transfers
from tests.hub.hub_server import HubServer

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
GOOD = "hf_aliceTokenForTests"
GATED = "meta-llama/Tiny-Gated-GGUF"


@pytest.fixture(autouse=True)
def isolated_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """huggingface_hub's token files in a temporary HF_HOME, never the user's."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "hf-home"
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    yield from use_quick_transfers(monkeypatch)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    for server in running_hub(monkeypatch):
        server.users[GOOD] = "alice"
        server.add_repo(GATED, {"main": {"tiny.Q4_0.gguf": gguf_payload(60_000, 40)}}, gated=True, tokens={GOOD})
        yield server


@pytest.fixture
def page(qtbot: QtBot, context: AppContext) -> Iterator[DownloadsPage]:
    widget = DownloadsPage(context)
    qtbot.addWidget(widget)
    widget.resize(1100, 760)
    widget.show()
    yield widget
    widget.shutdown()


# -- the account core ---------------------------------------------------------------------------
def test_sign_in_checks_with_whoami_and_stores_where_hf_does(hub: HubServer) -> None:
    signed = account.sign_in(f"  {GOOD}\n")
    assert signed.name == "alice" and signed.token_name == "alice-laptop"
    assert Path(constants.HF_TOKEN_PATH).read_text().strip() == GOOD
    assert "alice-laptop" in Path(constants.HF_STORED_TOKENS_PATH).read_text()
    assert get_token() == GOOD  # what huggingface_hub (and so every download) now sends
    assert build_hf_headers()["authorization"] == f"Bearer {GOOD}"
    assert account.signed_in() == signed
    assert [r for r in hub.requests if r[1] == "/api/whoami-v2"]
    account.sign_out()
    assert get_token() is None


def test_a_refused_token_is_not_stored(hub: HubServer) -> None:
    with pytest.raises(InvalidToken, match=r"did not accept this token.*settings/tokens"):
        account.sign_in("hf_mistyped")
    assert not Path(constants.HF_TOKEN_PATH).exists()
    with pytest.raises(InvalidToken, match="paste an access token"):
        account.sign_in("   ")


def test_environment_token_wins_and_says_so(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", GOOD)
    signed = account.signed_in()
    assert signed is not None and signed.from_environment and "HF_TOKEN" in signed.label


# -- the dialog and the Downloads page ----------------------------------------------------------
def test_gated_repo_offers_sign_in_and_the_page_shows_who(qtbot: QtBot, page: DownloadsPage,
                                                          hub: HubServer) -> None:
    qtbot.waitUntil(lambda: "Not signed in" in page.account_label.text(), timeout=5_000)
    page.browser.input.setText(GATED)
    with qtbot.waitSignal(page.browser.lookup.failed, timeout=10_000):
        page.browser.look_up()
    assert page.sign_in_hint.isVisible()
    assert "gated" in page.sign_in_hint_label.text()

    dialog = page.show_sign_in(page.sign_in_hint_label.text())
    assert isinstance(dialog, SignInDialog) and dialog.isVisible()
    assert not dialog.sign_in_button.isEnabled()
    dialog.token.setText("hf_wrong")
    with qtbot.waitSignal(page.accounts.sign_in_failed, timeout=10_000):
        dialog.sign_in_button.click()
    assert dialog.isVisible() and "did not accept" in dialog.status.text()
    assert dialog.token.isEnabled()
    dialog.token.setText(GOOD)
    with qtbot.waitSignal(page.accounts.signed_in, timeout=10_000):
        dialog.sign_in_button.click()
    assert not dialog.isVisible()
    assert page.account_label.text() == "Signed in to Hugging Face as alice (Alice)"
    assert page.account_button.text() == "Sign out"
    assert not page.sign_in_hint.isVisible()

    with qtbot.waitSignal(page.browser.lookup.listed, timeout=10_000):  # the gated repo opens now
        page.browser.look_up()
    assert page.browser.files.listing is not None and page.browser.files.listing.repo == GATED

    page.account_button.click()  # sign out
    qtbot.waitUntil(lambda: "Not signed in" in page.account_label.text(), timeout=5_000)
    assert get_token() is None


def test_a_gated_download_that_fails_offers_sign_in(qtbot: QtBot, page: DownloadsPage, hub: HubServer) -> None:
    from app.hub.plan import DownloadRequest
    from app.hub.queue import JobState

    job = page.enqueue(DownloadRequest(GATED, files=("tiny.Q4_0.gguf",)))
    qtbot.waitUntil(lambda: job.state is JobState.FAILED, timeout=10_000)
    qtbot.waitUntil(page.sign_in_hint.isVisible, timeout=5_000)
    assert "gated" in page.sign_in_hint_label.text() and "Sign in" in page.sign_in_hint_label.text()


def test_page_shows_an_account_signed_in_earlier(qtbot: QtBot, context: AppContext, hub: HubServer) -> None:
    account.sign_in(GOOD)  # e.g. with `hf auth login`
    page = DownloadsPage(context)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "alice" in page.account_label.text(), timeout=5_000)
    page.shutdown()


# -- other apps' folders and use in place -------------------------------------------------------
def _lm_studio(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / ".lmstudio" / "models"
    made = []
    for rel, seed in (("lmstudio-community/Qwen-GGUF/qwen.Q4_K_M.gguf", 50),
                      ("TheBloke/Phi-GGUF/phi.Q8_0.gguf", 51)):
        path = folder / rel
        path.parent.mkdir(parents=True)
        path.write_bytes(gguf_payload(20_000, seed))
        made.append(path)
    (folder / "broken.gguf").write_bytes(b"not a model")
    (folder / "notes.txt").write_text("hello")
    return folder, made


def test_add_a_models_folder_registers_ggufs_in_place(qtbot: QtBot, page: DownloadsPage, context: AppContext,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, made = _lm_studio(tmp_path)
    assert model_folders.suggested_folders(tmp_path) == [folder]
    searched_on: list[int] = []
    real = model_folders.ggufs_in
    monkeypatch.setattr(model_folders, "ggufs_in",
                        lambda where: searched_on.append(threading.get_ident()) or real(where))
    # The folder is searched off the GUI thread: what it holds arrives with folder_added.
    with qtbot.waitSignal(context.events.installed_changed, timeout=5_000), \
            qtbot.waitSignal(page.folder_added, timeout=5_000) as added:
        page.add_models_folder(folder)
    found = added.args[1]
    assert added.args[0] == folder and found == sorted(made)
    assert searched_on and threading.get_ident() not in searched_on  # the folder was searched off the GUI thread
    assert "also using 1 other folder" in page.subtitle.text()
    models = installed_models(context.catalog, context.dirs.models)
    assert {m.path for m in models} >= set(made)
    assert all(m.detail.startswith("in place") for m in models if m.path in made)
    assert not context.dirs.models.exists() or not list(context.dirs.models.rglob("*.gguf"))  # nothing copied
    later = folder / "new" / "later.Q2_K.gguf"  # a model added to the folder later shows up too
    later.parent.mkdir()
    later.write_bytes(gguf_payload(10_000, 52))
    assert later in {m.path for m in installed_models(context.catalog, context.dirs.models)}
    assert model_folders.suggested_folders(tmp_path) == []  # registered: no longer suggested


def test_import_in_place_uses_the_file_where_it_is(qtbot: QtBot, page: DownloadsPage, context: AppContext,
                                                   tmp_path: Path) -> None:
    source = tmp_path / "Downloads" / "mine.Q4_0.gguf"
    source.parent.mkdir()
    source.write_bytes(gguf_payload(30_000, 60))
    with qtbot.waitSignal(page.files_added, timeout=5_000) as added:  # each file is checked off the GUI thread
        assert page.import_files([source], in_place=True) == []  # no queue job: nothing to copy
    assert added.args == [[source]]
    assert page.model.rowCount() == 0
    assert model_folders.registered_models() == [source]
    models = installed_models(context.catalog, context.dirs.models)
    assert [m for m in models if m.path == source]
    wrong = tmp_path / "Downloads" / "fake.gguf"
    wrong.write_bytes(b"nope")
    with qtbot.waitSignal(context.events.status_message, timeout=5_000) as said, \
            qtbot.waitSignal(page.files_added, timeout=5_000) as refused:
        page.use_in_place([wrong])
    assert refused.args == [[]] and "is not a GGUF model file" in said.args[0]
    assert model_folders.registered_models() == [source]
    source.unlink()  # a vanished file simply drops out of the list
    assert not [m for m in installed_models(context.catalog, context.dirs.models) if m.path == source]


def test_model_folder_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(model_folders.ModelFolderError, match="is not a folder"):
        model_folders.add_folder(tmp_path / "missing")
    (tmp_path / "hearth-home" / "config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "hearth-home" / "config" / model_folders.FILE_NAME).write_text("{garbled")
    assert model_folders.load().folders == []


def test_cli_login_reads_the_token_from_stdin(hub: HubServer, hearth_home: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), HF_HOME=str(tmp_path / "cli-hf-home"))
    env.pop("HF_TOKEN", None)

    def hearth(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app", "login", *args], input=stdin, env=env, cwd=root,
                              capture_output=True, text=True, timeout=60)

    refused = hearth(stdin="hf_nope\n")
    assert refused.returncode == 1 and refused.stderr.startswith("hearth: error: the Hub did not accept")
    assert "Traceback" not in refused.stderr
    signed = hearth(stdin=GOOD + "\n")
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.strip() == "Signed in to Hugging Face as alice (Alice)"
    assert (tmp_path / "cli-hf-home" / "token").read_text().strip() == GOOD
    assert "alice" in hearth("--status").stdout
    assert hearth("--sign-out").returncode == 0
    assert "Not signed in" in hearth("--status").stdout


def test_the_folders_used_in_place_are_counted_from_a_read_off_the_gui_thread(
        qtbot: QtBot, context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _made = _lm_studio(tmp_path)
    model_folders.add_folder(folder)  # registered in an earlier session
    read_on: list[int] = []
    real = model_folders.load
    monkeypatch.setattr(model_folders, "load", lambda *args: read_on.append(threading.get_ident()) or real(*args))
    page = DownloadsPage(context)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "also using 1 other folder" in page.subtitle.text(), timeout=5_000)
    assert read_on and threading.get_ident() not in read_on, "the registry was read off the GUI thread"
    page.shutdown()
