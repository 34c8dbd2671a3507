"""User folders: platformdirs by default, one HEARTH_HOME for tests and portable installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.paths import app_dirs, safe_component, variant_dir


def test_hearth_home_holds_everything(hearth_home: Path) -> None:
    dirs = app_dirs()
    for folder in (dirs.config, dirs.data, dirs.cache, dirs.models, dirs.chats_db):
        assert hearth_home in folder.parents


def test_platformdirs_without_hearth_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEARTH_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    dirs = app_dirs()
    assert dirs.data == tmp_path / "data" / "Hearth"
    assert dirs.config == tmp_path / "config" / "Hearth"
    assert dirs.models == tmp_path / "data" / "Hearth" / "models"


def test_models_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEARTH_MODELS_DIR", str(tmp_path / "big-disk"))
    assert app_dirs().models == tmp_path / "big-disk"


def test_two_branches_never_share_a_folder(tmp_path: Path) -> None:
    a = variant_dir(tmp_path, "TheBloke/Llama-2-13B-chat-GPTQ", "main")
    b = variant_dir(tmp_path, "TheBloke/Llama-2-13B-chat-GPTQ", "gptq-4bit-32g-actorder_True")
    assert a != b and a.parent == b.parent == tmp_path / "TheBloke" / "Llama-2-13B-chat-GPTQ"


@pytest.mark.parametrize("hostile", ["..", "../../etc", "refs/pr/1", "a b", ""])
def test_hostile_names_stay_inside_the_models_folder(tmp_path: Path, hostile: str) -> None:
    folder = variant_dir(tmp_path, f"owner/{hostile}", hostile).resolve()
    assert tmp_path.resolve() in folder.parents
    assert "/" not in safe_component(hostile)
