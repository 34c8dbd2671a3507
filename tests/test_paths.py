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


def test_damaged_lists_are_set_aside_not_overwritten(hearth_home: Path, tmp_path: Path) -> None:
    """A damaged endpoints or model-folders file reads as empty (the app runs on), and is moved aside whole,
    so adding an endpoint or a folder afterwards does not destroy what the user had there."""
    from app import model_folders
    from app.remote.endpoints import Endpoint, EndpointStore

    store = EndpointStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text('[{"name": "studio", "url": "http://studio:8080/v1", "api_key": "sk-')
    assert store.load() == []
    store.add(Endpoint("box", "http://box:8080/v1"))
    assert [e.name for e in store.load()] == ["box"]
    [kept] = list(store.path.parent.glob("endpoints.json.damaged-*"))
    assert kept.read_text().startswith('[{"name": "studio"')

    registry = model_folders._store(None)
    registry.write_text("{not json")
    assert model_folders.load() == model_folders.ModelFolders()
    folder = tmp_path / "gguf-folder"
    folder.mkdir()
    model_folders.add_folder(folder)
    assert model_folders.load().folders == [folder.resolve()]
    [aside] = list(registry.parent.glob(f"{registry.name}.damaged-*"))
    assert aside.read_text() == "{not json"
