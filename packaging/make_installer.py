"""Build the installer for this OS from the PyInstaller bundle in dist/hearth (``make package``).

Linux: a portable .tar.gz and a .deb (desktop entry, icon, .gguf association, Qt's xcb needs).
Windows: an Inno Setup installer (ISCC must be on PATH). macOS: a .dmg of dist/Hearth.app.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
ICONS = ROOT / "build" / "icons"
sys.path.insert(0, str(ROOT))
from app import __version__ as VERSION  # noqa: E402

# Qt's xcb platform plugin does not start without these (plus the usual X and GL libraries).
DEB_DEPENDS = [
    "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0", "libxcb-shape0",
    "libxcb-randr0", "libxcb-render-util0", "libxcb-image0", "libegl1", "libgl1", "libfontconfig1",
    "libdbus-1-3", "libgomp1",
]


def run(*cmd: str, **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def icons() -> None:
    run(sys.executable, str(ROOT / "packaging" / "make_icons.py"), str(ICONS))


METAINFO = "io.github.hearth.Hearth.metainfo.xml"  # AppStream: what software centres show


def linux() -> list[Path]:
    bundle = DIST / "hearth"
    arch = os.uname().machine
    tarball = DIST / f"hearth-{VERSION}-linux-{arch}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(bundle, arcname=f"hearth-{VERSION}")
        tar.add(ROOT / "packaging" / "linux" / "hearth.desktop", arcname=f"hearth-{VERSION}/hearth.desktop")
        tar.add(ICONS / "hearth.png", arcname=f"hearth-{VERSION}/hearth.png")

    root = ROOT / "build" / "deb"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / "opt" / "hearth", symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "hearth").symlink_to("/opt/hearth/hearth")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "linux" / "hearth.desktop", apps / "hearth.desktop")
    metainfo = root / "usr" / "share" / "metainfo"
    metainfo.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "linux" / METAINFO, metainfo / METAINFO)
    mime = root / "usr" / "share" / "mime" / "packages"
    mime.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "linux" / "hearth-gguf.xml", mime / "hearth-gguf.xml")
    for size in (48, 128, 256, 512):
        target = root / "usr" / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copy(ICONS / f"hearth-{size}.png", target / "hearth.png")
    size_kb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()) // 1024
    debian = root / "DEBIAN"
    debian.mkdir()
    deb_arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    (debian / "control").write_text(
        f"Package: hearth\nVersion: {VERSION}\nArchitecture: {deb_arch}\nMaintainer: Hearth <hearth@localhost>\n"
        f"Installed-Size: {size_kb}\nDepends: {', '.join(DEB_DEPENDS)}\nSection: utils\nPriority: optional\n"
        "Description: Chat with large language models on your own machine, offline\n"
        " Hearth finds the right quantised model for your hardware, downloads it\n"
        " reliably and runs it with llama.cpp.\n",
        encoding="utf-8",
    )
    (debian / "postinst").write_text(
        "#!/bin/sh\nset -e\ncommand -v update-mime-database >/dev/null && update-mime-database /usr/share/mime || true\n"
        "command -v update-desktop-database >/dev/null && update-desktop-database -q || true\n",
        encoding="utf-8",
    )
    (debian / "postinst").chmod(0o755)
    deb = DIST / f"hearth_{VERSION}_{deb_arch}.deb"
    run("fakeroot", "dpkg-deb", "--build", "-Zxz", str(root), str(deb))
    return [tarball, deb]


def windows() -> list[Path]:
    vcomp = Path(os.environ.get("VCToolsRedistDir", "")) / "x64" / "Microsoft.VC143.OPENMP" / "vcomp140.dll"
    if vcomp.is_file():
        shutil.copy(vcomp, DIST / "vcomp140.dll")
    env = {**os.environ, "HEARTH_VERSION": VERSION, "HEARTH_DIST": str(DIST)}
    run("ISCC", str(ROOT / "packaging" / "windows" / "hearth.iss"), env=env)
    return list((ROOT / "packaging" / "windows" / "Output").glob("*.exe"))


def macos() -> list[Path]:
    dmg = DIST / f"Hearth-{VERSION}-macos-{os.uname().machine}.dmg"
    dmg.unlink(missing_ok=True)
    run("hdiutil", "create", "-volname", "Hearth", "-srcfolder", str(DIST / "Hearth.app"), "-ov",
        "-format", "UDZO", str(dmg))
    return [dmg]


def main() -> int:
    if not (DIST / "hearth").is_dir():
        print("dist/hearth is missing: run PyInstaller first (make package)", file=sys.stderr)
        return 1
    icons()
    builders = {"linux": linux, "win32": windows, "darwin": macos}
    builder = builders.get(sys.platform)
    if builder is None:
        print(f"no installer recipe for {sys.platform}", file=sys.stderr)
        return 1
    for path in builder():
        print(f"built {path} ({path.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
