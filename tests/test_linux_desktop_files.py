"""The Linux desktop files agree: the AppStream metainfo names the desktop entry, binary and MIME type."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "packaging" / "linux"


def test_metainfo_matches_the_desktop_entry() -> None:
    component = ET.parse(LINUX / "io.github.hearth.Hearth.metainfo.xml").getroot()
    assert component.tag == "component" and component.get("type") == "desktop-application"
    assert component.findtext("id") == "io.github.hearth.Hearth"
    assert component.findtext("metadata_license") and component.findtext("project_license") == "Apache-2.0"
    assert component.findtext("summary") and component.find("description/p") is not None
    launchable = component.find("launchable")
    assert launchable is not None and (LINUX / (launchable.text or "")).is_file()
    desktop = configparser.ConfigParser(interpolation=None)
    desktop.read(LINUX / (launchable.text or ""), encoding="utf-8")
    entry = desktop["Desktop Entry"]
    assert component.findtext("provides/binary") == entry["Exec"].split()[0]
    assert component.findtext("provides/mediatype") + ";" == entry["MimeType"]
    assert "%f" in entry["Exec"]  # a double-clicked .gguf is passed on (to the running window if any)
    mime = ET.parse(LINUX / "hearth-gguf.xml").getroot()
    assert any(t.get("type") == entry["MimeType"].rstrip(";") for t in mime)


def test_installers_ship_the_metainfo() -> None:
    assert "METAINFO" in (ROOT / "packaging" / "make_installer.py").read_text(encoding="utf-8")
    manifest = (LINUX / "io.github.hearth.Hearth.yml").read_text(encoding="utf-8")
    assert "app-id: io.github.hearth.Hearth" in manifest and "metainfo" in manifest
    assert "Flatpak" in (ROOT / "packaging" / "README.md").read_text(encoding="utf-8")


def test_appstream_validates_when_the_tool_is_there() -> None:
    import shutil
    import subprocess

    import pytest

    tool = shutil.which("appstreamcli")
    if tool is None:
        pytest.skip("appstreamcli is not installed")
    result = subprocess.run([tool, "validate", "--no-net", str(LINUX / "io.github.hearth.Hearth.metainfo.xml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bundle_keeps_every_qt_module_the_app_imports() -> None:
    """An excluded Qt module the code imports would crash the bundle (QtNetwork: the single instance)."""
    import re

    spec = (ROOT / "packaging" / "hearth.spec").read_text(encoding="utf-8")
    excluded = set(re.findall(r'"(PySide6\.Qt\w+)"', spec.split("excludes = [", 1)[1].split("]", 1)[0]))
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app").rglob("*.py"))
    used = set(re.findall(r"(?:from|import) (PySide6\.Qt\w+)", source))
    assert "PySide6.QtNetwork" in used
    assert not used & excluded, sorted(used & excluded)
