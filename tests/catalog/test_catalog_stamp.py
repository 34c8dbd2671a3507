"""The curated catalogue is validated at build/test time; at start-up only new content pays for jsonschema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from app.catalog import load_catalog, validated
from app.catalog.loader import load_schema
from app.catalog.user_catalog import user_catalog_path
from app.paths import app_dirs, install_root

ROOT = Path(__file__).resolve().parents[2]

# Loads the catalogue in a fresh interpreter and says whether jsonschema had to be imported.
PROBE = (
    "import sys\n"
    "from app.catalog import load_catalog\n"
    "c = load_catalog()\n"
    "print(len(c.models), 'jsonschema' in sys.modules, *c.problems, sep='|')\n"
)


def _start(env_home: Path, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "HEARTH_HOME": str(env_home), "PYTHONPATH": str(ROOT), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split("|")


def test_the_curated_catalogue_is_valid_against_its_schema() -> None:
    """The check the app no longer runs on every start: jsonschema itself, then the loader's own rules."""
    document = json.loads((install_root() / "models_catalog.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(load_schema())
    assert [e.message for e in validator.iter_errors(document)] == []
    from app.catalog.loader import document_problems

    assert document_problems(document) == []


def test_packaging_step_stamps_a_good_catalogue_and_refuses_a_bad_one(tmp_path: Path) -> None:
    out = tmp_path / "models_catalog.validated"
    ok = subprocess.run([sys.executable, "-m", "app.catalog.validated", str(out)], capture_output=True,
                        text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert ok.returncode == 0, ok.stderr
    document = json.loads((ROOT / "models_catalog.json").read_text(encoding="utf-8"))
    assert out.read_text().strip() == validated.digest(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, "models": [{**document["models"][0], "license": 7}]}))
    refused = subprocess.run([sys.executable, "-m", "app.catalog.validated", str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "HEARTH_CATALOG": str(bad)})
    assert refused.returncode == 1 and not (tmp_path / "x").exists()
    assert "field 'license'" in refused.stderr and "Traceback" not in refused.stderr


def test_a_start_with_known_content_skips_jsonschema(tmp_path: Path) -> None:
    home = tmp_path / "home"
    models, imported, *_ = _start(home)
    assert int(models) > 0 and imported == "True"  # first sight of this content: checked in full
    assert (home / "cache" / validated.CACHE_STAMP).is_file()
    models_again, imported_again, *_ = _start(home)
    assert models_again == models and imported_again == "False"


def test_the_bundle_stamp_is_honoured(tmp_path: Path) -> None:
    """A bundle ships the packaging step's stamp next to models_catalog.json: no check even on a first start."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "models_catalog.json").write_bytes((ROOT / "models_catalog.json").read_bytes())
    (bundle / "resources").symlink_to(ROOT / "resources")
    frozen = f"import sys; sys._MEIPASS = {str(bundle)!r}\n"  # what PyInstaller sets: app.paths.install_root

    def start(home: Path) -> list[str]:
        env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-c", frozen + PROBE], capture_output=True, text=True,
                                timeout=60, cwd=ROOT, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split("|")

    assert start(tmp_path / "home1")[1] == "True"  # no stamp shipped: checked
    subprocess.run([sys.executable, "-m", "app.catalog.validated", str(bundle / validated.BUNDLE_STAMP)],
                   check=True, capture_output=True, timeout=60, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert start(tmp_path / "home2")[1] == "False"  # a first start, but the bundle's stamp vouches


def test_an_edited_catalogue_is_checked_again(tmp_path: Path) -> None:
    """A stamp names content, not a file: change one field and the full check (and its message) is back."""
    home = tmp_path / "home"
    custom = tmp_path / "custom.json"
    document = json.loads((ROOT / "models_catalog.json").read_text(encoding="utf-8"))
    custom.write_text(json.dumps(document), encoding="utf-8")
    assert _start(home, HEARTH_CATALOG=str(custom))[1] == "True"
    assert _start(home, HEARTH_CATALOG=str(custom))[1] == "False"
    document["models"][0]["context_length"] = "long"
    custom.write_text(json.dumps(document), encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**os.environ, "HEARTH_HOME": str(home), "PYTHONPATH": str(ROOT),
                                 "HEARTH_CATALOG": str(custom)})
    assert result.returncode != 0 and "field 'context_length'" in result.stderr


def test_user_catalogue_is_checked_when_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    curated = load_catalog(include_user=False)
    template = curated.models[0]
    document = json.loads((ROOT / "models_catalog.json").read_text(encoding="utf-8"))
    mine = {**document["models"][0], "id": "my-own-model"}
    user = {"schema_version": 1, "templates": {}, "models": [mine]}
    user["templates"] = {mine["template"]: document["templates"][mine["template"]]}
    path = user_catalog_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(user), encoding="utf-8")
    calls: list[int] = []
    from app.catalog import loader

    real = loader.document_problems
    monkeypatch.setattr(loader, "document_problems", lambda d: calls.append(1) or real(d))
    assert load_catalog().model("my-own-model").name == template.name
    checked_first = len(calls)
    assert checked_first >= 1
    load_catalog()
    assert len(calls) == checked_first  # unchanged content: no second check
    mine["context_length"] = -5
    path.write_text(json.dumps(user), encoding="utf-8")
    catalog = load_catalog()
    assert len(calls) > checked_first
    assert "my-own-model" not in {m.id for m in catalog.models}
    assert any("was not loaded" in p and "context_length" in p for p in catalog.problems)


def test_an_unwritable_cache_only_costs_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("HEARTH_HOME", str(blocker))  # every folder under it would be inside a file
    assert app_dirs().cache.parent == blocker
    validated.remember("abc")  # no exception
    assert not validated.is_validated("abc")
    assert len(load_catalog(include_user=False).models) > 0


def test_a_new_rules_revision_checks_again(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {"schema_version": 1, "templates": {}, "models": []}
    before = validated.digest(document)
    monkeypatch.setattr(validated, "RULES_REVISION", validated.RULES_REVISION + 1)
    assert validated.digest(document) != before
