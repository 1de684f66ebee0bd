"""The test-training panel: settings, Start/Stop, live curves, and the report with Keep/Discard.

The run happens in a worker thread (`gui.workers.Task`); the engine's trainer sends
its metrics at a bounded rate into a locked buffer that a 10 Hz timer in the GUI
thread drains into the curves, so a fast run never floods the event loop. From Start
until Keep or Discard the session refuses edits (`Session.busy`); the panel says so
with `busy_changed` for the window to grey out its edit actions.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.errors import WeightsmithError
from engine.session import Session
from engine.training import Metrics, TrainConfig, Trainer, TrainResult
from engine.training.config import MAX_STEPS, multipliers_from_text
from engine.training.model_io import available_devices

from .dialogs import base
from .number_boxes import LogSpinBox
from .workers import Task

#: how often the curves are redrawn while a run is going (milliseconds)
REFRESH_MS = 100
#: points kept per live curve; beyond this, neighbouring points are averaged in pairs
MAX_POINTS = 10_000
#: weight of a new loss in the smoothed curve (an exponential moving average)
SMOOTHING = 0.05

DATA_SOURCES = (("Synthetic", "synthetic"), ("Demo digits", "demo"),
                ("Image folder…", "folder"), ("Tensor file…", "file"))
TASK_CHOICES = (("Automatic", None), ("Classification", "classification"),
                ("Regression", "regression"))
OPTIMIZER_CHOICES = (("Adam", "adam"), ("AdamW", "adamw"), ("SGD (momentum)", "sgd"))
PRECISION_CHOICES = (("fp32", "fp32"), ("bf16 (mixed)", "bf16"), ("fp16 (mixed, CUDA)", "fp16"))
TENSOR_FILE_FILTER = "Tensor files (*.pt *.pth *.safetensors *.npz);;All files (*)"


class MetricsBuffer:
    """Points sent by the training thread, taken by the GUI thread; safe between them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._losses: list[tuple[int, float]] = []
        self._accuracies: list[tuple[int, float]] = []

    def push(self, metrics: Metrics) -> None:
        """Add new points (called from the training thread)."""
        with self._lock:
            self._losses.extend(metrics.losses)
            self._accuracies.extend(metrics.accuracies)

    def take(self) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Every point pushed since the last take."""
        with self._lock:
            losses, self._losses = self._losses, []
            accuracies, self._accuracies = self._accuracies, []
        return losses, accuracies


class Curve:
    """A growing (step, value) series kept to at most MAX_POINTS points."""

    def __init__(self) -> None:
        self.steps = np.empty(1024)
        self.values = np.empty(1024)
        self.count = 0

    def clear(self) -> None:
        self.count = 0

    def extend(self, points: list[tuple[int, float]]) -> None:
        if not points:
            return
        new = np.asarray(points, dtype=float)
        needed = self.count + len(new)
        if needed > len(self.steps):
            size = max(needed, 2 * len(self.steps))
            self.steps = np.resize(self.steps, size)
            self.values = np.resize(self.values, size)
        self.steps[self.count:needed] = new[:, 0]
        self.values[self.count:needed] = new[:, 1]
        self.count = needed
        while self.count > MAX_POINTS:
            half = self.count // 2
            for array in (self.steps, self.values):
                array[:half] = array[:2 * half].reshape(half, 2).mean(axis=1)
                if self.count % 2:
                    array[half] = array[self.count - 1]
            self.count = half + self.count % 2

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.steps[:self.count], self.values[:self.count]


class TrainingPanel(QWidget):
    """Test-train the session's model: settings, Start/Stop, live curves, Keep/Discard.

    Parameters
    ----------
    session : the document to train (None: nothing open)

    Signals
    -------
    busy_changed(bool) : the session started (True) or stopped (False) refusing edits
        for a test training; the window greys out its edit actions and Undo/Redo
    run_finished(object) : a run ended (or was stopped) with this TrainReport; it waits
        for Keep or Discard
    run_failed(str) : a run could not start or failed (the model is as before)
    decided(str) : "kept" or "discarded"
    """

    busy_changed = Signal(bool)
    run_finished = Signal(object)
    run_failed = Signal(str)
    decided = Signal(str)

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Session | None = None
        self.task: Task | None = None
        self._abandoned: list[Task] = []
        self.result: TrainResult | None = None
        self._trainer: Trainer | None = None
        self._buffer = MetricsBuffer()
        self._loss = Curve()
        self._smoothed = Curve()
        self._accuracy = Curve()
        self._ema: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh_curves)
        self._build()
        self.set_session(session)
        self._update_state()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.data_combo = _combo(self, DATA_SOURCES)
        self.data_combo.setCurrentIndex(1)
        self.data_combo.currentIndexChanged.connect(self._on_data_kind_changed)
        self.path_edit = QLineEdit(self)
        self.path_edit.setPlaceholderText("folder (root/CLASS/IMAGE) or .pt/.safetensors/.npz")
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self.browse)
        self.task_combo = _combo(self, TASK_CHOICES)
        self.optimizer_combo = _combo(self, OPTIMIZER_CHOICES)
        self.lr_box = LogSpinBox(1e-3, 1e-8, 10.0, self)
        self.lr_box.setToolTip("Base learning rate: type any value (3e-4); the arrows and the "
                               "wheel step through 1, 2, 5 per decade")
        self.multipliers_edit = QLineEdit(self)
        self.multipliers_edit.setPlaceholderText("e.g. fc=10, layer4=2")
        self.multipliers_edit.setToolTip("Learning-rate multipliers per module or tensor "
                                         "(globs allowed); later entries win")
        self.steps_box = _spin(self, 1, MAX_STEPS, 100)
        self.batch_box = _spin(self, 1, 1_000_000, 32)
        self.seed_box = _spin(self, -1, 2**31 - 1, -1)
        self.seed_box.setSpecialValueText("random")
        self.device_combo = QComboBox(self)
        self.device_combo.addItems(available_devices())
        self.device_combo.setToolTip("auto: CUDA, then MPS, then the CPU")
        self.precision_combo = _combo(self, PRECISION_CHOICES)
        self.precision_combo.setToolTip("Mixed precision: bf16 on CUDA or the CPU, fp16 on CUDA")

        path_row = QHBoxLayout()
        path_row.setContentsMargins(0, 0, 0, 0)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Data", self.data_combo)
        form.addRow("", path_row)
        form.addRow("Task", self.task_combo)
        form.addRow("Optimizer", self.optimizer_combo)
        form.addRow("Learning rate", self.lr_box)
        form.addRow("Multipliers", self.multipliers_edit)
        form.addRow("Steps", self.steps_box)
        form.addRow("Batch size", self.batch_box)
        form.addRow("Seed", self.seed_box)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)

        # Mnemonics: Alt+S, Alt+T, Alt+K and Alt+D work wherever the panel is shown.
        self.start_button = QPushButton("&Start", self)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("S&top", self)
        self.stop_button.setToolTip("Stop after the current step; the result can still be "
                                    "kept or discarded")
        self.stop_button.clicked.connect(self.stop)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self._hint = True  # the status shows a hint about the state, not a run's message
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        # Only the settings scroll; Start, Stop, the progress and the status stay in view
        # whatever the dock's height, and nothing scrolls while a run goes.
        form_widget = QWidget(self)
        form_layout = QVBoxLayout(form_widget)
        form_layout.setContentsMargins(0, 0, 4, 0)
        form_layout.addLayout(form)
        form_layout.addStretch(1)
        self.settings_scroller = QScrollArea(self)
        self.settings_scroller.setWidgetResizable(True)
        self.settings_scroller.setFrameShape(QScrollArea.Shape.NoFrame)
        self.settings_scroller.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_scroller.setWidget(form_widget)
        self.settings_scroller.setMinimumWidth(form_widget.sizeHint().width() + 16)
        settings = QWidget(self)
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(self.settings_scroller, 1)
        self.run_controls = QWidget(settings)
        controls_layout = QVBoxLayout(self.run_controls)
        controls_layout.setContentsMargins(0, 0, 0, 0)
        controls_layout.addLayout(buttons)
        controls_layout.addWidget(self.progress_bar)
        controls_layout.addWidget(self.status_label)
        settings_layout.addWidget(self.run_controls)

        self.loss_plot = pg.PlotWidget(self)
        self.loss_plot.setLabel("left", "loss")
        self.accuracy_plot = pg.PlotWidget(self)
        self.accuracy_plot.setLabel("left", "accuracy")
        self.accuracy_plot.setLabel("bottom", "step")
        self.accuracy_plot.setXLink(self.loss_plot)
        self.accuracy_plot.setYRange(0.0, 1.0)
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="mean")
            plot.setMenuEnabled(False)
        self.loss_item = self.loss_plot.plot([], [])
        self.smoothed_item = self.loss_plot.plot([], [])
        self.accuracy_item = self.accuracy_plot.plot([], [])
        plots = QWidget(self)
        plots_layout = QVBoxLayout(plots)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        plots_layout.addWidget(self.loss_plot, 3)
        plots_layout.addWidget(self.accuracy_plot, 2)

        self.verdict_label = QLabel(self)
        self.verdict_label.setWordWrap(True)
        self.report_view = QPlainTextEdit(self)
        self.report_view.setReadOnly(True)
        self.report_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.report_view.setPlaceholderText("The report appears here when a run ends.")
        self.keep_button = QPushButton("&Keep", self)
        self.keep_button.setToolTip("Keep the trained weights as one undoable step")
        self.keep_button.clicked.connect(self.keep)
        self.discard_button = QPushButton("&Discard", self)
        self.discard_button.setToolTip("Restore the weights from before the run, bit for bit")
        self.discard_button.clicked.connect(self.discard)
        decision = QHBoxLayout()
        decision.addStretch(1)
        decision.addWidget(self.keep_button)
        decision.addWidget(self.discard_button)
        report = QWidget(self)
        report_layout = QVBoxLayout(report)
        report_layout.setContentsMargins(0, 0, 0, 0)
        report_layout.addWidget(self.verdict_label)
        report_layout.addWidget(self.report_view, 1)
        report_layout.addLayout(decision)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(settings)
        splitter.addWidget(plots)
        splitter.addWidget(report)
        splitter.setStretchFactor(1, 2)
        splitter.setStretchFactor(2, 1)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self._sized = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._apply_palette()
        self._on_data_kind_changed()

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        accent = palette.color(QPalette.ColorRole.Highlight)
        faint = QColor(accent)
        faint.setAlpha(90)
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setBackground(palette.color(QPalette.ColorRole.Base))
            for name in ("left", "bottom"):
                plot.getAxis(name).setPen(pg.mkPen(text))
                plot.getAxis(name).setTextPen(pg.mkPen(text))
        self.loss_item.setPen(pg.mkPen(faint, width=1))
        self.smoothed_item.setPen(pg.mkPen(accent, width=2))
        self.accuracy_item.setPen(pg.mkPen(accent, width=2))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._sized and self.width() > 0:
            # The settings as wide as they need; the curves and the report share the rest.
            self._sized = True
            settings = self.splitter.widget(0).sizeHint().width()
            rest = max(self.splitter.width() - settings, 300)
            self.splitter.setSizes([settings, rest // 2, rest - rest // 2])

    # ------------------------------------------------------------------ session
    def set_session(self, session: Session | None) -> None:
        """Train `session` from now on; a run or an undecided result of the old one is
        stopped and discarded (its model goes back exactly as it was)."""
        if session is self.session:
            return
        self.shutdown()
        self.session = session
        self._clear_run()
        self._hint = True  # the last document's messages no longer apply
        self._update_state()

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self.task is not None

    @property
    def undecided(self) -> bool:
        """True when a finished run waits for Keep or Discard."""
        return self.result is not None and self.result.state == "pending"

    # ------------------------------------------------------------------ settings
    def config(self) -> dict[str, Any]:
        """The run's settings from the widgets, as the engine's dict.

        Raises
        ------
        WeightsmithError : a setting cannot be read (bad multipliers, no path)
        """
        kind = self.data_combo.currentData()
        data = kind
        if kind in ("folder", "file"):
            data = self.path_edit.text().strip()
            if not data:
                what = "an image folder" if kind == "folder" else "a tensor file"
                raise WeightsmithError(f"data: choose {what} (Browse…)")
        seed = self.seed_box.value()
        values = {
            "data": data,
            "task": self.task_combo.currentData(),
            "optimizer": self.optimizer_combo.currentData(),
            "lr": float(self.lr_box.value()),
            "lr_multipliers": multipliers_from_text(self.multipliers_edit.text()),
            "steps": self.steps_box.value(),
            "batch_size": self.batch_box.value(),
            "seed": None if seed < 0 else seed,
            "device": self.device_combo.currentText(),
            "precision": self.precision_combo.currentData(),
        }
        return TrainConfig.from_dict(values).to_dict()

    def browse(self) -> None:
        """Ask for the image folder or tensor file to train on."""
        kind = self.data_combo.currentData()
        folder = self.path_edit.text().strip()
        if kind == "folder":
            path = base.choose_open_path(self, "Image folder to train on", folder, "",
                                         directory=True)
        else:
            path = base.choose_open_path(self, "Tensor file to train on", folder,
                                         TENSOR_FILE_FILTER)
        if path:
            self.path_edit.setText(path)

    def _on_data_kind_changed(self, *_args: object) -> None:
        needs_path = self.data_combo.currentData() in ("folder", "file")
        self.path_edit.setEnabled(needs_path and not self.running)
        self.browse_button.setEnabled(needs_path and not self.running)

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Start a run with the current settings (errors are shown as one line)."""
        session = self.session
        if session is None or not session.can_apply("train") or self.running or self.undecided:
            return
        try:
            trainer = Trainer(session, self.config())
            trainer.reserve()
        except WeightsmithError as error:
            self._fail(str(error))
            return
        self._trainer = trainer
        self._clear_run()
        task = self.task = Task(trainer.run, name="test training", parent=self,
                                on_metrics=self._buffer.push)
        # Bound methods, not closures over `task`: a closure kept by the task's own
        # connection would be freed while the task is being deleted. Each handler asks
        # `sender()` which task spoke, since a task abandoned by set_session or close
        # may deliver its last signal after a new one started.
        task.progressed.connect(self._on_progress)
        task.succeeded.connect(self._on_succeeded)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        self._say("Preparing the data…")
        self.busy_changed.emit(True)
        # Focus leaves the settings before they are greyed out: Qt would move it to the
        # next setting, and the scroll area would scroll there.
        self.stop_button.setEnabled(True)
        self.stop_button.setFocus()
        self._update_state()
        self._timer.start()
        self.task.start()

    def stop(self) -> None:
        """Ask the run to stop after its current step; the result still comes."""
        if self.task is not None:
            self.task.cancel()
            self.stop_button.setEnabled(False)
            self._say("Stopping after this step…")

    def _current_sender(self) -> Task | None:
        """The Task that sent the signal being handled, if it is the current run's."""
        task = self.sender()
        return task if task is not None and task is self.task else None

    def _on_progress(self, fraction: float, text: str) -> None:
        if self._current_sender() is None:
            return
        self.progress_bar.setValue(int(fraction * 1000))
        self._say(text)

    def _on_succeeded(self, result: TrainResult) -> None:
        task = self.sender()
        if task is None or task is not self.task:
            # Abandoned (set_session, close) before it ended: nobody will decide on it.
            if result.state == "pending":
                result.discard()
                self.busy_changed.emit(False)
            self._forget(task)
            return
        self._end_task()
        self.result = result
        self.refresh_curves()
        report = result.report
        self.report_view.setPlainText(report.format_text())
        failed = [check.name for check in report.checks if check.status == "fail"]
        if failed:
            self.verdict_label.setText(f"FAILED: {', '.join(failed)}")
            self.verdict_label.setStyleSheet("color: rgb(200, 40, 30); font-weight: bold")
        else:
            self.verdict_label.setText("All checks passed" + (" (stopped early)"
                                                              if report.stopped else ""))
            self.verdict_label.setStyleSheet("color: rgb(30, 140, 60); font-weight: bold")
        self.progress_bar.setValue(int(1000 * report.steps / max(report.steps_planned, 1)))
        self._say(f"{report.steps} step(s) done: keep or discard the weights")
        self._update_state()
        self.run_finished.emit(report)

    def _on_failed(self, message: str) -> None:
        if self._current_sender() is None:
            self._forget(self.sender())
            return
        self._end_task()
        self.busy_changed.emit(False)
        self._fail(message)

    def _on_cancelled(self) -> None:
        if self._current_sender() is None:
            self._forget(self.sender())
            return
        self._end_task()
        self.busy_changed.emit(False)
        self._say("Stopped before the first step; nothing changed")
        self._update_state()

    def _end_task(self, delete: bool = True) -> None:
        self._timer.stop()
        task, self.task = self.task, None
        self._trainer = None
        if task is not None and delete:
            _delete_when_done(task)

    def _forget(self, task: Any) -> None:
        if task is not None and task in self._abandoned:
            self._abandoned.remove(task)
            _delete_when_done(task)

    def _fail(self, message: str) -> None:
        self._say(message)
        self._update_state()
        self.run_failed.emit(message)
        base.show_error(self, message)

    # ------------------------------------------------------------------ decision
    def keep(self) -> None:
        """Keep the trained weights as one undoable step ("Test training: N steps")."""
        result = self.result
        if result is None or result.state != "pending":
            return
        try:
            result.keep()
        except WeightsmithError as error:
            self._decided("discarded", f"Could not keep the weights: {error}")
            base.show_error(self, str(error))
            return
        self._decided("kept", f"Kept as the step '{result.label}' (undo restores the "
                      "weights from before)")

    def discard(self) -> None:
        """Throw the run away: the weights from before, bit for bit."""
        result = self.result
        if result is None or result.state != "pending":
            return
        result.discard()
        self._decided("discarded", "Discarded: the weights are as they were before the run")

    def _decided(self, outcome: str, text: str) -> None:
        self._say(text)
        self._update_state()
        self.busy_changed.emit(False)
        self.decided.emit(outcome)

    # ------------------------------------------------------------------ curves
    def refresh_curves(self) -> None:
        """Move the points that arrived since the last refresh onto the curves."""
        losses, accuracies = self._buffer.take()
        if losses:
            self._loss.extend(losses)
            smoothed = []
            for step, value in losses:
                if math.isfinite(value):
                    self._ema = value if self._ema is None else (
                        (1 - SMOOTHING) * self._ema + SMOOTHING * value)
                if self._ema is not None:
                    smoothed.append((step, self._ema))
            self._smoothed.extend(smoothed)
            self.loss_item.setData(*self._loss.data())
            self.smoothed_item.setData(*self._smoothed.data())
        if accuracies:
            self._accuracy.extend(accuracies)
            self.accuracy_item.setData(*self._accuracy.data())

    def curve_points(self) -> dict[str, int]:
        """How many points each curve holds (for tests and the status)."""
        return {"loss": self._loss.count, "smoothed": self._smoothed.count,
                "accuracy": self._accuracy.count}

    def _clear_run(self) -> None:
        self._buffer.take()
        for curve in (self._loss, self._smoothed, self._accuracy):
            curve.clear()
        self._ema = None
        for item in (self.loss_item, self.smoothed_item, self.accuracy_item):
            item.setData([], [])
        self.report_view.clear()
        self.verdict_label.clear()
        self.verdict_label.setStyleSheet("")
        self.progress_bar.setValue(0)
        self.result = None

    # ------------------------------------------------------------------ state
    def _update_state(self) -> None:
        has_model = self.session is not None and self.session.offers("train")
        running, undecided = self.running, self.undecided
        idle = not running and not undecided
        self.start_button.setEnabled(has_model and idle)
        self.stop_button.setEnabled(running)
        self.keep_button.setEnabled(undecided)
        self.discard_button.setEnabled(undecided)
        for widget in (self.data_combo, self.task_combo, self.optimizer_combo, self.lr_box,
                       self.multipliers_edit, self.steps_box, self.batch_box, self.seed_box,
                       self.device_combo, self.precision_combo):
            widget.setEnabled(idle)
        self._on_data_kind_changed()
        if self._hint or not self.status_label.text():
            # A hint follows the state; a run's own message stays until the next change.
            self._hint = True
            self.status_label.setText(
                "Open a model to test-train it." if self.session is None else
                "Checkpoint mode: attach an architecture to train." if not has_model else
                "Ready: choose the settings and press Start." if idle else "")

    def _say(self, text: str) -> None:
        """Show a message of the run (it stays until the document or the state changes)."""
        self._hint = False
        self.status_label.setText(text)

    # ------------------------------------------------------------------ lifetime
    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop a run and wait for its thread; discard a result nobody decided on."""
        task = self.task
        if task is not None:
            task.cancel()
            finished = task.wait(timeout)
            self._end_task(delete=finished)
            result = task.result
            if isinstance(result, TrainResult) and result.state == "pending":
                self.result = result  # discarded just below
            elif finished:
                self.busy_changed.emit(False)
            else:
                # Still inside a long step: its result is discarded when it arrives
                # (see _on_succeeded); the task object must live until then.
                self._abandoned.append(task)
        if self.undecided:
            self.discard()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


def _delete_when_done(task: Task) -> None:
    # The worker still emits `done` after the signal being handled; deleting the Task
    # before its thread has returned would let it emit on a deleted object.
    task.wait(5.0)
    task.deleteLater()


def _combo(parent: QWidget, choices: tuple[tuple[str, Any], ...]) -> QComboBox:
    combo = QComboBox(parent)
    for text, value in choices:
        combo.addItem(text, value)
    return combo


def _spin(parent: QWidget, low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox(parent)
    box.setRange(low, high)
    box.setValue(value)
    box.setGroupSeparatorShown(True)
    return box
