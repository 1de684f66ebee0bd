"""The engine never imports Qt, pyqtgraph or the GUI: proven in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import engine
from tests.conftest import ROOT


def test_engine_imports_no_qt_or_gui():
    modules = sorted(
        info.name for info in pkgutil.walk_packages(engine.__path__, prefix="engine.")
    )
    assert "engine.session" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'gui', 'shiboken6'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"engine imported: {result.stdout.strip()}"
