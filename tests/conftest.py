"""Test configuration: offscreen Qt, isolated settings, strict warnings, hypothesis profiles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Set before anything imports Qt: tests never need a display.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# The suite that CI runs explores the same examples every time (derandomize), so a landing
# never depends on luck; "thorough" explores fresh random examples, many more of them.
settings.register_profile(
    "default", deadline=None, max_examples=40, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=300,
                          derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep every test away from the user's real settings, journal and recent files."""
    home = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("WEIGHTSMITH_CONFIG_DIR", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return
