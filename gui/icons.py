"""Icons drawn for Weightsmith (resources/icons/*.svg), with frozen and tied badges.

Icons are rendered from SVG at each size a view asks for, so they stay sharp on
high-DPI screens; composed icons (a parameter with a frozen badge) are cached.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap

ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
_SIZES = (16, 20, 24, 32, 48, 64)


@cache
def icon(name: str) -> QIcon:
    """The icon `resources/icons/<name>.svg` (an empty icon if the file is missing)."""
    path = ICON_DIR / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


@cache
def node_icon(kind: str, frozen: bool = False, tied: bool = False) -> QIcon:
    """The tree icon of a node kind, with a frozen badge (bottom right) and a tied badge
    (top right) when they apply."""
    base = icon(kind if kind in ("module", "parameter", "buffer", "group", "tensor")
                else "tensor")
    if not frozen and not tied:
        return base
    result = QIcon()
    for size in _SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base.paint(painter, QRect(0, 0, size, size))
        badge = max(size * 9 // 16, 8)
        if frozen:
            icon("frozen").paint(painter, QRect(QPoint(size - badge, size - badge),
                                                QSize(badge, badge)))
        if tied:
            icon("tied").paint(painter, QRect(QPoint(size - badge, 0), QSize(badge, badge)))
        painter.end()
        result.addPixmap(pixmap)
    return result
