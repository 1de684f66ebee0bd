"""Habits users bring: redo keys, fixed toolbar buttons, Ctrl+C (tree and terminal), expand
and collapse all, columns that fit, ranked architecture search, the Help menu."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from torch import nn

from engine import Session
from gui.dialogs.open_arch_dialog import ranked_matches
from gui.tree_view import fit_widths
from tests.conftest import ROOT
from tests.models import SmallCNN, seeded


@pytest.fixture
def cnn_window(make_window, qtbot):
    window = make_window(Session(seeded(SmallCNN)))
    window.activateWindow()
    qtbot.waitActive(window)
    return window


# ---------------------------------------------------------------------- undo and redo keys
def test_redo_answers_ctrl_shift_z_and_ctrl_y(cnn_window, qtbot):
    window = cnn_window
    session = window.session
    keys = [key.toString() for key in window.redo_action.shortcuts()]
    assert "Ctrl+Shift+Z" in keys
    assert "Ctrl+Y" in keys
    session.apply({"op": "freeze", "targets": ["features"]})
    window.tree.setFocus()
    for redo_key in ("Ctrl+Y", "Ctrl+Shift+Z"):
        qtbot.keyClick(window.tree, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert session.history.position == 0
        assert session.document.tensor("features.0.weight").requires_grad
        key = QKeySequence(redo_key)[0]
        qtbot.keyClick(window.tree, key.key(), key.keyboardModifiers())
        assert session.history.position == 1, redo_key
        assert not session.document.tensor("features.0.weight").requires_grad


def test_toolbar_undo_keeps_its_width_and_names_the_step_elsewhere(cnn_window):
    window = cnn_window
    button = window.toolbar.widgetForAction(window.undo_action)
    width = button.sizeHint().width()
    window.session.apply({"op": "freeze", "targets": ["features.0", "features.1",
                                                      "features.3", "features.4"]})
    label = window.session.history.undo_label
    assert len(label) > 20
    assert button.text() == "Undo"
    assert button.sizeHint().width() == width
    assert window.undo_action.text() == f"Undo {label}"  # the Edit menu names the step
    assert label in window.undo_action.toolTip()
    assert "Ctrl+Z" in window.undo_action.toolTip()
    window.undo_action.trigger()
    assert window.redo_action.text() == f"Redo {label}"
    assert window.toolbar.widgetForAction(window.redo_action).text() == "Redo"


# ---------------------------------------------------------------------- Ctrl+C in the terminal
def test_sigint_closes_the_window_asking_about_unsaved_changes(cnn_window, dialogs, qtbot):
    from gui.interrupt import InterruptHandler

    window = cnn_window
    window.session.apply({"op": "freeze", "targets": ["features"]})
    handler = InterruptHandler(window)
    try:
        dialogs.questions.append("cancel")  # the first time the user keeps working
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not dialogs.questions, timeout=5000)
        qtbot.wait(50)
        assert window.isVisible()
        assert window.session.is_modified
        dialogs.questions.append("discard")
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
        assert not dialogs.questions
    finally:
        handler.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


#: runs the editor as `python main.py` does and says when its window has painted
_PAINTED = """
import sys
sys.path.insert(0, {root!r})
from PySide6.QtCore import QEvent, QObject
import gui.app as app_module

class First(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and obj.isWidgetType() \\
                and type(obj.window()).__name__ == "MainWindow":
            print("painted", flush=True)
            from PySide6.QtWidgets import QApplication
            QApplication.instance().removeEventFilter(self)
        return False

original = app_module.create_application
def create(argv=None):
    app = original(argv)
    app._first = First()
    app.installEventFilter(app._first)
    return app
app_module.create_application = create
raise SystemExit(app_module.main(["--no-restore"]))
"""


def test_ctrl_c_in_the_terminal_quits_the_editor(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "WEIGHTSMITH_CONFIG_DIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-c", _PAINTED.format(root=str(ROOT))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               cwd=ROOT, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "painted"
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert "KeyboardInterrupt" not in errors


# ---------------------------------------------------------------------- the tree
def test_ctrl_c_copies_the_dotted_path_and_the_menu_copies_shapes(cnn_window, qtbot):
    window = cnn_window
    window.select_paths(["classifier.2"])
    window.tree.setFocus()
    qtbot.keyClick(window.tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "classifier.2"
    window.select_paths(["features.0.weight", "classifier.2.bias"])
    qtbot.keyClick(window.tree, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "features.0.weight\nclassifier.2.bias"
    from PySide6.QtWidgets import QMenu

    menu = QMenu()
    window.fill_tree_menu(menu)
    actions = {action.text(): action for action in menu.actions() if action.text()}
    assert {"Copy Path", "Copy Shape", "Expand All", "Collapse All"} <= set(actions)
    assert not actions["Expand All"].isEnabled()  # tensors have nothing below them
    actions["Copy Shape"].trigger()
    assert QGuiApplication.clipboard().text() == "(4, 3, 3, 3)\n(5)"
    window.select_paths(["features"])
    menu = QMenu()
    window.fill_tree_menu(menu)
    actions = {action.text(): action for action in menu.actions() if action.text()}
    assert not actions["Copy Shape"].isEnabled()
    assert actions["Expand All"].isEnabled()


def test_expand_all_and_collapse_all(cnn_window, qtbot):
    window = cnn_window
    tree, model = window.tree, window.tree_model
    window.expand_all_action.trigger()
    modules = [path for path, _ in window.session.model.named_modules()]
    for path in modules:
        index = model.index_for_path(path)
        assert not model.hasChildren(index) or tree.isExpanded(index), path
    tree.collapse_all()
    assert tree.isExpanded(model.index_for_path(""))  # the top level stays in view
    assert not tree.isExpanded(model.index_for_path("features"))
    assert tree.expanded_paths() == {""}
    # "*" on a row expands everything below it, fetching the lazy levels.
    window.select_paths(["features"])
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Asterisk)
    assert tree.isExpanded(model.index_for_path("features.0"))
    assert not tree.isExpanded(model.index_for_path("classifier"))
    tree.collapse_below("features")
    assert not tree.isExpanded(model.index_for_path("features"))
    assert "features.0" not in tree.expanded_paths()


def test_expand_all_stops_at_its_limit(make_window):
    model = nn.Sequential(*[nn.Sequential(*[nn.Linear(1, 1) for _ in range(50)])
                            for _ in range(50)])
    window = make_window(Session(model))
    assert not window.tree.expand_below("", limit=300)
    assert window.tree_model.materialized_count() < 300 + 100


def test_fit_widths_gives_content_room_and_shrinks_the_widest_first():
    assert fit_widths([100, 50, 40], [40, 30, 30], 300) == [210, 50, 40]
    squeezed = fit_widths([300, 50, 200], [60, 40, 50], 400)
    assert sum(squeezed) <= 400
    assert squeezed[1] > 40
    assert squeezed[0] < 300
    assert squeezed[2] < 200
    assert all(w >= f for w, f in zip(squeezed, [60, 40, 50], strict=True))
    assert fit_widths([300, 50, 200], [60, 40, 50], 100) == [60, 40, 50]  # scrolls


def test_columns_fit_their_content(make_window, qtbot):
    model = nn.Sequential(nn.Conv2d(512, 512, 3), nn.AdaptiveAvgPool2d(1),
                          nn.Linear(512, 10))
    window = make_window(Session(model))
    window.resize(1280, 800)
    window.tree.expand_path("0")
    qtbot.wait(20)
    window.tree.fit_columns()
    header = window.tree.header()
    from gui.tree_model import COLUMNS

    for column, title in enumerate(COLUMNS):
        assert window.tree.sizeHintForColumn(column) <= header.sectionSize(column), title
    assert sum(header.sectionSize(c) for c in range(len(COLUMNS))) <= \
        window.tree.viewport().width()
    # A narrow window: columns shrink (elided) rather than pushing the view sideways.
    window.resizeDocks([window.inspector_dock], [700], Qt.Orientation.Horizontal)
    qtbot.wait(20)
    window.tree.fit_columns()
    assert any(window.tree.sizeHintForColumn(column) > header.sectionSize(column)
               for column in range(len(COLUMNS)))  # something had to be elided
    assert sum(header.sectionSize(c) for c in range(len(COLUMNS))) <= \
        window.tree.viewport().width()
    # A column the user resized keeps the user's width.
    header.resizeSection(1, 222)
    window.tree.fit_columns()
    assert header.sectionSize(1) == 222


# ---------------------------------------------------------------------- Open Architecture
def test_ranked_matches_put_exact_and_prefix_matches_first():
    names = ["quantized_resnet18", "resnet101", "resnet18", "wide_resnet50_2", "vgg11"]
    assert ranked_matches(names, "resnet18") == ["resnet18", "quantized_resnet18"]
    assert ranked_matches(names, "ResNet") == ["resnet101", "resnet18", "quantized_resnet18",
                                               "wide_resnet50_2"]
    assert ranked_matches(names, "  ") == names
    assert ranked_matches(names, "nothing") == []


def test_open_architecture_preselects_the_exact_name_and_counts_the_filter(make_window, qtbot):
    from gui.dialogs.open_arch_dialog import OpenArchDialog

    window = make_window()
    dialog = OpenArchDialog(window, window.settings)
    dialog.wait_for_names()
    qtbot.waitUntil(lambda: dialog.list.count() > 0, timeout=20000)
    total = dialog.list.count()
    assert dialog.status.text() == f"{total} models"
    dialog.search.setText("resnet18")
    assert dialog.model_name() == "resnet18"
    assert dialog.shown_names()[0] == "resnet18"
    shown = len(dialog.shown_names())
    assert 1 < shown < total
    assert dialog.status.text() == f"{shown} of {total} models"
    dialog.search.setText("no such model")
    assert dialog.status.text() == f"0 of {total} models"
    assert dialog.model_name() == ""
    dialog.reject()
    dialog.deleteLater()


# ---------------------------------------------------------------------- Help
def test_help_menu_shows_the_docs_offline_and_every_shortcut(cnn_window, dialogs, qtbot):
    window = cnn_window
    help_menu = next(action.menu() for action in window.menuBar().actions()
                     if action.text() == "&Help")
    entries = {action.text(): action for action in help_menu.actions()}
    entries["Documentation"].trigger()
    help_window = window._help_window
    assert help_window.isVisible()
    assert help_window.current_document() == "gui.md"
    assert "The desktop editor" in help_window.browser.toPlainText()
    assert "# The desktop editor" not in help_window.browser.toPlainText()  # rendered
    # A link between documents is followed inside the window.
    help_window.browser.setSource(help_window.browser.source().resolved("recipes.md"))
    assert help_window.current_document() == "recipes.md"
    assert help_window.names[help_window.contents.currentRow()] == "recipes.md"
    entries["Recipe Format"].trigger()
    assert '"weightsmith_recipe"' in help_window.browser.toPlainText()

    seen = []

    def read(dialog):
        seen.extend(dialog.rows)

    dialogs.answer(read)
    entries["Keyboard Shortcuts"].trigger()
    rows = dict(seen)
    assert "Ctrl+Y" in rows["Edit ▸ Redo"]
    assert "Ctrl+Shift+Z" in rows["Edit ▸ Redo"]
    assert rows["Edit ▸ Undo"].startswith("Ctrl+Z")
    assert rows["File ▸ Open…"] == "Ctrl+O"
    assert rows["Module tree ▸ Copy Path"] == "Ctrl+C"
    help_window.close()
