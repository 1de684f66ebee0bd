"""The window appears at once: painted before torch is imported, the demo opened in the
background with a busy bar, the plots and the training panel built on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

from PySide6.QtCore import QEvent, QObject

from engine import Session
from gui.gui_thread import gui_thread_queue
from tests.conftest import ROOT
from tests.models import SmallCNN, seeded

HEAVY = ("torch", "pyqtgraph", "torchvision", "transformers", "timm")

#: `python main.py` on the demo, reporting the heavy modules loaded at its first paint
#: and once the demo's tree has painted
_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
import gui.app as app_module

HEAVY = {heavy!r}

class Probe(QObject):
    painted = busy = False
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and obj.isWidgetType():
            window = obj.window()
            if type(window).__name__ == "MainWindow":
                loaded = [name for name in HEAVY if name in sys.modules]
                if not self.painted:
                    self.painted = True
                    print(json.dumps({{"painted": loaded}}), flush=True)
                if not self.busy and obj is window.tasks.bar and window.session is None:
                    self.busy = window.tasks.bar.maximum() == 0
                    print(json.dumps({{"busy": self.busy, "text": window.tasks.label.text()}}),
                          flush=True)
                if window.session is not None and obj is window.tree.viewport():
                    print(json.dumps({{"ready": loaded, "title": window.windowTitle()}}),
                          flush=True)
                    QApplication.instance().removeEventFilter(self)
                    QTimer.singleShot(0, QApplication.instance().quit)
        return False

original = app_module.create_application
def create(argv=None):
    app = original(argv)
    app._probe = Probe()
    app.installEventFilter(app._probe)
    return app
app_module.create_application = create
raise SystemExit(app_module.main(["--no-restore"]))
"""


def test_the_window_paints_before_torch_and_the_demo_follows(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WEIGHTSMITH_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _PROBE.format(root=str(ROOT), heavy=HEAVY)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = [next(iter(report)) for report in reports]
    assert kinds == ["painted", "busy", "ready"], kinds
    first, busy, ready = reports
    assert first["painted"] == [], (
        "a module imported to build the window pulls these in; import them where needed")
    assert busy["busy"]  # a moving bar in the status bar while the demo opens
    assert busy["text"] == "Opening the demo model…"
    assert "torch" in ready["ready"]
    for deferred in ("torchvision", "transformers", "timm"):
        assert deferred not in ready["ready"]
    assert ready["title"].startswith("the demo model")


def test_the_open_shows_a_busy_bar_until_it_reports_progress(make_window, qtbot):
    window = make_window()
    window.file_actions.open_demo()
    tasks = window.tasks
    assert tasks.isVisible()
    assert tasks.bar.maximum() == 0  # a moving bar: nothing reported yet
    qtbot.waitUntil(lambda: window.session is not None and not tasks.busy, timeout=60000)
    assert not tasks.isVisible()


class _PaintWatch(QObject):
    """Records the bar's range maximum at each of its paints (0: the busy bar)."""

    def __init__(self, bar: QObject) -> None:
        super().__init__()
        self.bar = bar
        self.maxima: list[int] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.bar and event.type() == QEvent.Type.Paint:
            self.maxima.append(self.bar.maximum())
        return False


def test_a_report_before_the_first_paint_still_shows_the_busy_bar_first(make_window, qtbot):
    # The order a loaded machine can produce: the task reports, and its report is
    # delivered, before the event loop has painted the newly shown busy bar.
    window = make_window()
    tasks = window.tasks
    watch = _PaintWatch(tasks.bar)
    tasks.bar.installEventFilter(watch)
    reported, release = threading.Event(), threading.Event()
    outcome = []

    def job(progress=None):
        progress.update(0.5, "half way")
        reported.set()
        release.wait(30)
        return "done"

    tasks.run(job, name="job", text="Working…", on_success=outcome.append)
    assert reported.wait(30)  # the GUI thread has not returned to the event loop
    gui_thread_queue().drain()  # the report is delivered before any paint
    qtbot.waitUntil(lambda: bool(watch.maxima), timeout=5000)
    assert watch.maxima[0] == 0  # the first paint shows the busy bar
    qtbot.waitUntil(lambda: tasks.bar.maximum() == 1000 and tasks.bar.value() == 500,
                    timeout=5000)  # and the report right after it
    assert tasks.bar.toolTip() == "half way"
    release.set()
    qtbot.waitUntil(lambda: outcome == ["done"] and not tasks.busy, timeout=10000)
    assert not tasks.isVisible()
    tasks.bar.removeEventFilter(watch)


def test_plots_and_training_are_built_when_first_needed(make_window, qtbot):
    window = make_window(Session(seeded(SmallCNN)))
    assert not window.plots_host.built
    assert not window.training_host.built
    window.select_paths(["features"])  # a module: nothing to plot
    assert not window.plots_host.built
    window.select_paths(["features.0.weight"])
    assert window.plots_host.built
    assert window.plots.session is window.session
    assert window.plots.tensor_name == "features.0.weight"
    window.show_training()
    qtbot.waitUntil(lambda: window.training_host.built, timeout=5000)
    assert window.training.session is window.session
    # Wired as the eager panels were: a run greys the edit actions out, and back.
    assert window.edit_actions.set_action.isEnabled()
    with window.session.busy("test training"):
        window.training.busy_changed.emit(True)
        assert not window.edit_actions.set_action.isEnabled()
    window.training.busy_changed.emit(False)
    assert window.edit_actions.set_action.isEnabled()
