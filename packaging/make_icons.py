"""Render resources/icons/hearth.svg into the icon files each installer needs (PNG, ICO, ICNS)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "icons" / "hearth.svg"


def render(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(SVG)).render(painter)
    painter.end()
    return image


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for size in (16, 32, 48, 64, 128, 256, 512):
        render(size).save(str(out / f"hearth-{size}.png"))
    render(256).save(str(out / "hearth.png"))
    render(256).save(str(out / "hearth.ico"), "ICO")
    if not render(512).save(str(out / "hearth.icns"), "ICNS"):
        print("note: this Qt cannot write .icns; the macOS build makes it with iconutil", file=sys.stderr)


if __name__ == "__main__":
    app = QGuiApplication(sys.argv[:1])
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "icons")
