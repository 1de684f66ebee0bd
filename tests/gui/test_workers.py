"""Background work: the worker thread never emits Qt signals; outcomes arrive in the GUI
thread, in order, after every progress report."""

from __future__ import annotations

import threading

import pytest

from engine.errors import EditError
from gui.gui_thread import gui_thread_queue
from gui.workers import Task


def test_task_signals_are_emitted_in_the_gui_thread(qtbot):
    seen = []

    def work(total, progress):
        for step in range(total):
            progress.update(step / total, f"step {step}")
        return threading.current_thread().name

    task = Task(work, 5, name="probe")
    task.progressed.connect(lambda f, t: seen.append(("progress", threading.current_thread())))
    task.succeeded.connect(lambda r: seen.append(("succeeded", threading.current_thread())))
    with qtbot.waitSignal(task.done, timeout=10_000):
        task.start()
    assert [kind for kind, _ in seen] == ["progress"] * 5 + ["succeeded"]
    assert all(thread is threading.main_thread() for _, thread in seen)
    assert task.result == "weightsmith-probe"


@pytest.mark.parametrize(("error", "message"), [
    (EditError("set.value: bad"), "set.value: bad"),
    (ZeroDivisionError("division by zero"), "probe: unexpected ZeroDivisionError"),
])
def test_failures_are_one_line(qtbot, error, message, capsys):
    def work(progress):
        raise error

    task = Task(work, name="probe")
    with qtbot.waitSignal(task.failed, timeout=10_000) as blocker:
        task.start()
    assert blocker.args[0].startswith(message)
    assert "\n" not in blocker.args[0]


def test_cancel_stops_at_a_safe_point(qtbot):
    started = threading.Event()

    def work(progress):
        started.set()
        while True:
            progress.update(0.5, "waiting")

    task = Task(work, name="probe")
    with qtbot.waitSignal(task.cancelled, timeout=10_000):
        task.start()
        started.wait(5)
        task.cancel()
    assert task.wait(5)


def test_the_queue_timer_runs_only_while_deliveries_are_expected(qtbot):
    queue = gui_thread_queue()
    task = Task(lambda progress: 1, name="probe")
    with qtbot.waitSignal(task.done, timeout=10_000):
        task.start()
    assert not queue._timer.isActive()
