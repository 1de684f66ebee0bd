"""The main view of the screenshots in docs/: the demo, a tensor selected, its histogram shown.

The test renders it offscreen and checks what it shows. The committed pictures come
from a real window: `scripts/screenshots.py --readme` (see docs/gui.md). An offscreen
rendering can still be written to docs/screenshot.png with

    WEIGHTSMITH_RENEW_SCREENSHOT=1 .venv/bin/python -m pytest tests/gui/test_screenshot.py
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tests.conftest import ROOT

SCREENSHOT = ROOT / "docs" / "screenshot.png"
SIZE = (1400, 860)
TENSOR = "classifier.1.weight"


def render_demo_window(make_window, qtbot, path: Path) -> object:
    """Open the demo as a user would, select a tensor, wait for its histogram, grab."""
    window = make_window()
    window.resize(*SIZE)
    window.file_actions.open_demo()
    qtbot.waitUntil(lambda: window.session is not None and not window.tasks.busy,
                    timeout=30000)
    window.resizeDocks([window.inspector_dock], [460], Qt.Orientation.Horizontal)
    window.resizeDocks([window.plots_dock], [330], Qt.Orientation.Vertical)
    window.tree.expand_path("features")
    window.tree.expand_path("classifier.1")
    window.select_paths([TENSOR])
    plots = window.plots
    assert plots is not None
    qtbot.waitUntil(lambda: plots.tensor_name == TENSOR and not plots.busy, timeout=30000)
    qtbot.wait(200)  # let the plot and the inspector paint
    window.grab().save(str(path))
    return window


def test_screenshot_of_the_demo(make_window, qtbot, tmp_path):
    target = SCREENSHOT if os.environ.get("WEIGHTSMITH_RENEW_SCREENSHOT") else \
        tmp_path / "screenshot.png"
    window = render_demo_window(make_window, qtbot, target)
    image = QImage(str(target))
    assert (image.width(), image.height()) == (window.width(), window.height())
    assert window.inspector.title.text() == TENSOR
    assert window.plots.tabs.tabText(window.plots.tabs.currentIndex()) == "Histogram"
    assert window.windowTitle() == "the demo model[*] — Weightsmith"
    assert SCREENSHOT.exists(), "docs/screenshot.png is missing: renew it (see above)"
