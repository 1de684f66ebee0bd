"""GUI test settings: any Qt warning fails the test, except the offscreen platform's own.

pytest-qt captures Qt's messages for every test; marking each GUI test with
`qt_log_level_fail("WARNING")` turns a warning (including every complaint of
Qt's QAbstractItemModelTester behind `qtmodeltester`) into a failure. The ignore
list holds only messages the offscreen platform prints for things it cannot do;
each entry says why it is harmless.
"""

from __future__ import annotations

import pytest

#: regular expressions of harmless messages of the offscreen platform plugin
HARMLESS_QT_MESSAGES = (
    # The offscreen plugin has no window manager to pass size hints or raise windows to.
    r"This plugin does not support propagateSizeHints\(\)",
    r"This plugin does not support raise\(\)",
    r"This plugin does not support grabbing the keyboard",
    # No real screen: Qt cannot query the platform's dark-mode or font settings.
    r"QFont::setPointSizeF: Point size <= 0",
    r"Could not find a platform theme",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail every GUI test on Qt warnings, apart from the harmless offscreen ones."""
    for item in items:
        if "tests/gui/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*HARMLESS_QT_MESSAGES))
