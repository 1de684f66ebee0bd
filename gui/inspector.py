"""The inspector: facts and statistics of the selected module or tensor, and its values.

A module shows its parameter counts (all, trainable, frozen), buffers, and elements
and bytes by dtype. A tensor shows shape, dtype, device, trainability, ties and the
statistics of `engine.stats.tensor_stats` (min, max, mean, std, norm, share of
zeros, NaN and inf counts). Small tensors that are already in memory are summarised
at once; large ones, or ones still on disk, in a background Task with progress,
cancelled when the selection moves on. Below: the values table (gui.values_table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.document import Summary, dtype_name, shape_text
from engine.errors import EditError
from engine.tree import ancestors

from .formatting import format_bytes, format_count, format_number
from .listening import SessionListener
from .values_table import ValuesTable
from .workers import Task

if TYPE_CHECKING:
    from engine.session import Session

#: tensors up to this many elements, already in memory, are summarised on the GUI thread
SYNC_STATS_LIMIT = 1 << 18
#: documents with more tensors than this have their module counts made in the background
SYNC_SUMMARY_LIMIT = 20_000

_TENSOR_FACTS = ("Shape", "Dtype", "Device", "Kind", "Trainable", "Tied with")
_STATS = ("Min", "Max", "Mean", "Std", "Norm", "Zeros", "NaN / inf")
_MODULE_FACTS = ("Type", "Parameters", "Trainable", "Frozen", "Buffers", "Mode", "Tied with")


def module_summary(session: Session, path: str, progress: Any = None) -> Summary:
    """The document's summary of a module or group of names (reads no tensor data; safe
    to run in a worker thread, it only reads the document)."""
    return session.document.summary(path)


def _stats_job(session: Session, name: str, progress: Any = None) -> dict[str, Any]:
    from engine.stats import tensor_stats

    return tensor_stats(session.document.tensor(name), progress=progress)


class Inspector(QWidget):
    """Shows the selected item of a session.

    Signals
    -------
    error(str) : an edit from the values table was refused
    """

    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Session | None = None
        self._listener = SessionListener(self, tensors_changed=self._on_tensors_changed,
                                         flags_changed=self._on_tensors_changed,
                                         structure_changed=self._on_structure_changed)
        self.path: str | None = None
        self._task: Task | None = None
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(30)
        self._refresh_timer.timeout.connect(self.refresh)
        self._values_stale = False

        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = QLabel(self)
        self.subtitle.setWordWrap(True)

        self.facts_box = QGroupBox("Facts", self)
        self.facts_form = QFormLayout(self.facts_box)
        self.facts: dict[str, QLabel] = {}
        self.stats_box = QGroupBox("Statistics", self)
        stats_layout = QVBoxLayout(self.stats_box)
        self.stats_form = QFormLayout()
        stats_layout.addLayout(self.stats_form)
        self.stats: dict[str, QLabel] = {}
        for key in _STATS:
            self.stats[key] = self._value_label()
            self.stats_form.addRow(f"{key}:", self.stats[key])
        self.stats_note = QLabel(self)
        self.stats_note.setWordWrap(True)
        self.stats_progress = QProgressBar(self)
        self.stats_progress.setRange(0, 100)
        self.stats_progress.setTextVisible(False)
        self.stats_progress.setMaximumHeight(8)
        self.stats_progress.hide()
        stats_layout.addWidget(self.stats_note)
        stats_layout.addWidget(self.stats_progress)

        self.dtype_box = QGroupBox("By dtype", self)
        self.dtype_form = QFormLayout(self.dtype_box)
        self.settings_box = QGroupBox("Hyperparameters", self)
        self.settings_box.setToolTip("What the module was built with (its extra_repr)")
        self.settings_form = QFormLayout(self.settings_box)
        self.settings: dict[str, QLabel] = {}

        self.values_box = QGroupBox("Values", self)
        values_layout = QVBoxLayout(self.values_box)
        self.values = ValuesTable(self.values_box)
        self.values.error.connect(self.error)
        values_layout.addWidget(self.values)

        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.title)
        top_layout.addWidget(self.subtitle)
        # Facts and statistics side by side: the values table below keeps the height.
        boxes = QHBoxLayout()
        boxes.addWidget(self.facts_box, 1)
        boxes.addWidget(self.stats_box, 1)
        top_layout.addLayout(boxes)
        top_layout.addWidget(self.settings_box)
        top_layout.addWidget(self.dtype_box)
        top_layout.addStretch(1)  # a module's facts stay together at the top
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(top)
        splitter.addWidget(self.values_box)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self.values.table.setMinimumHeight(90)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self.show_path(None)

    def _value_label(self) -> QLabel:
        label = QLabel(self)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    # ------------------------------------------------------------------ session
    def set_session(self, session: Session | None) -> None:
        """Inspect `session`; disconnects from the previous one."""
        self.session = session
        self._listener.follow(session)
        self.show_path(None)

    def close_session(self) -> None:
        """Stop listening and stop any background work (the window is closing)."""
        task = self._task
        self._cancel_task()
        if task is not None:
            task.wait(5.0)
        self.set_session(None)

    # ------------------------------------------------------------------ showing
    def show_path(self, path: str | None) -> None:
        """Show the module or tensor at `path` (None: the whole document, or nothing)."""
        self.path = path
        self.refresh()

    def refresh(self) -> None:
        """Show the current path again with fresh facts and statistics."""
        self._cancel_task()
        session = self.session
        if session is None:
            self._show_nothing("No document")
            return
        path = self.path
        if path is None:
            path = ""
        try:
            is_tensor = self._is_tensor(session, path)
        except (EditError, KeyError):
            self._show_nothing("Nothing selected")
            return
        if is_tensor:
            self._show_tensor(session, path)
        else:
            self._show_module(session, path)

    @staticmethod
    def _is_tensor(session: Session, path: str) -> bool:
        """Whether `path` is a tensor; raises EditError when it is neither a tensor nor a
        module (a name that vanished)."""
        if session.document.is_tensor(path):
            return True
        if not session.document.has_node(path):
            raise EditError(f"'{path}' is no longer in the document")
        return False

    def _show_nothing(self, text: str) -> None:
        self.title.setText(text)
        self.subtitle.setText("")
        for box in (self.facts_box, self.stats_box, self.dtype_box, self.values_box,
                    self.settings_box):
            box.hide()
        self.values.show_tensor(None, None)

    def _set_facts(self, rows: list[tuple[str, str]]) -> None:
        self._fill_form(self.facts_form, self.facts, rows)
        self.facts_box.show()

    def _fill_form(self, form: QFormLayout, labels: dict[str, QLabel],
                   rows: list[tuple[str, str]]) -> None:
        """Replace the rows of `form` by `rows` (key, text); `labels` maps key to label."""
        while form.rowCount():
            form.removeRow(0)
        labels.clear()
        for key, text in rows:
            label = self._value_label()
            label.setText(text)
            label.setWordWrap(True)
            labels[key] = label
            form.addRow(f"{key}:", label)

    def _show_module(self, session: Session, path: str) -> None:
        self.title.setText(path or session.document.whole_title)
        self.stats_box.hide()
        self.settings_box.hide()
        self.values_box.hide()
        self.values.show_tensor(None, None)
        if len(session.document.tensor_names()) <= SYNC_SUMMARY_LIMIT:
            self._fill_module(session, path, module_summary(session, path))
            return
        # A big document: count in the background, so the window never waits for it.
        self.subtitle.setText("Counting…")
        self._set_facts([])
        self.dtype_box.hide()
        task = Task(module_summary, session, path, name="counts")
        task.succeeded.connect(lambda summary, task=task: self._on_summary(task, summary))
        task.failed.connect(lambda message, task=task: self._on_task_failed(task, message))
        self._task = task
        task.start()

    def _on_summary(self, task: Task, summary: Summary) -> None:
        if task is not self._task or self.session is None:
            return
        self._task = None
        self._fill_module(self.session, self.path or "", summary)

    def _fill_module(self, session: Session, path: str, summary: Summary) -> None:
        totals = summary.totals
        self.subtitle.setText(summary.type_name)
        total = totals.parameters
        rows = [("Parameters", format_count(total))]
        if summary.mode is not None:  # a module: its trainability, buffers and mode
            share = f" ({100 * totals.trainable / total:.1f} %)" if total else ""
            rows += [("Trainable", format_count(totals.trainable) + share),
                     ("Frozen", format_count(totals.frozen)),
                     ("Buffers", format_count(totals.buffers)),
                     ("Mode", summary.mode)]
            rows += self._place_rows(session, path)
        if summary.tied_with:
            rows.append(("Tied with", ", ".join(summary.tied_with)))
        self._set_facts(rows)
        self._set_settings(session, path)
        while self.dtype_form.rowCount():
            self.dtype_form.removeRow(0)
        for dtype, (elements, nbytes) in sorted(totals.by_dtype.items()):
            label = self._value_label()
            label.setText(f"{format_count(elements)} elements · {format_bytes(nbytes)}")
            self.dtype_form.addRow(f"{dtype}:", label)
        self.dtype_box.setVisible(bool(totals.by_dtype))

    @staticmethod
    def _place_rows(session: Session, path: str) -> list[tuple[str, str]]:
        """Where the module sits: its parent, its children, its siblings of its type."""
        from engine.module_facts import placement

        model = session.document.module_or_none("")
        if model is None:
            return []  # a checkpoint has no modules
        try:
            place = placement(model, path)
        except AttributeError:  # no module at `path`
            return []
        rows = []
        if place.parent is not None:
            rows.append(("Parent", f"{place.parent or 'the model'} ({place.parent_type})"))
        rows.append(("Children", format_count(place.children)))
        siblings = place.siblings_text()
        if siblings:
            rows.append(("Same type", siblings))
        return rows

    def _set_settings(self, session: Session, path: str) -> None:
        from engine.module_facts import hyperparameters

        try:
            module = session.document.module_or_none(path)
        except EditError:  # no module at `path`
            module = None
        items = [] if module is None else hyperparameters(module)  # None: a checkpoint
        self._fill_form(self.settings_form, self.settings, items)
        self.settings_box.setVisible(bool(items))

    def _show_tensor(self, session: Session, name: str) -> None:
        row = session.document.row(name)
        self.title.setText(name)
        loaded = row.device is not None
        kind = row.kind
        trainable = {True: "yes", False: "no (frozen)", None: "–"}[row.requires_grad]
        device = row.device or "on disk (read on first use)"
        aliases = [other for other in session.document.aliases(name) if other != name]
        numel = row.numel
        self.subtitle.setText(f"{kind} · {format_count(numel)} elements")
        rows = [("Shape", shape_text(row.shape)), ("Dtype", dtype_name(row.dtype)),
                ("Device", device), ("Kind", kind), ("Trainable", trainable)]
        if aliases:
            rows.append(("Tied with", ", ".join(aliases)))
        self._set_facts(rows)
        self.dtype_box.hide()
        self.stats_box.show()
        self.settings_box.hide()
        self.values_box.show()
        if loaded and numel <= SYNC_STATS_LIMIT:
            try:
                self._show_stats(_stats_job(session, name))
            except Exception as error:  # a summary must never take the window down
                self._show_stats_error(str(error).splitlines()[0] if str(error) else
                                       type(error).__name__)
            self.values.show_tensor(session, name)
            return
        for label in self.stats.values():
            label.setText("…")
        self.stats_note.setText("Computing statistics…")
        self.values.show_tensor(None, None)
        self.values.caption.setText("Values appear when the statistics are done.")
        self._start_task(session, name)

    def _start_task(self, session: Session, name: str) -> None:
        # No Qt parent: the worker thread may outlive this widget and must find its Task.
        task = Task(_stats_job, session, name, name="statistics")
        task.progressed.connect(self._on_task_progress)
        task.succeeded.connect(lambda result, task=task: self._on_task_done(task, result))
        task.failed.connect(lambda message, task=task: self._on_task_failed(task, message))
        self._task = task
        self.stats_progress.setValue(0)
        self.stats_progress.show()
        task.start()

    def _cancel_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.stats_progress.hide()

    def _on_task_progress(self, fraction: float, text: str) -> None:
        self.stats_progress.setValue(int(fraction * 100))

    def _on_task_done(self, task: Task, result: dict[str, Any]) -> None:
        if task is not self._task:
            return  # an answer for an item no longer shown
        self._task = None
        self.stats_progress.hide()
        self._show_stats(result)
        if self.session is not None and self.path is not None:
            self.values.show_tensor(self.session, self.path)

    def _on_task_failed(self, task: Task, message: str) -> None:
        if task is not self._task:
            return
        self._task = None
        self.stats_progress.hide()
        self._show_stats_error(message)

    def _show_stats_error(self, message: str) -> None:
        for label in self.stats.values():
            label.setText("–")
        self.stats_note.setText(f"Statistics failed: {message}")

    def _show_stats(self, stats: dict[str, Any]) -> None:
        estimated = set(stats.get("estimated") or [])

        def text(key: str, value: Any) -> str:
            return format_number(value) + (" (est.)" if key in estimated else "")

        self.stats["Min"].setText(text("min", stats.get("min")))
        self.stats["Max"].setText(text("max", stats.get("max")))
        self.stats["Mean"].setText(text("mean", stats.get("mean")))
        self.stats["Std"].setText(text("std", stats.get("std")))
        self.stats["Norm"].setText(text("norm", stats.get("norm")))
        zeros = stats.get("zero_fraction")
        self.stats["Zeros"].setText("–" if zeros is None else
                                    f"{100 * zeros:.2f} %" + (" (est.)" if "zero_fraction"
                                                              in estimated else ""))
        self.stats["NaN / inf"].setText(f"{stats.get('nan_count', 0):,} / "
                                        f"{stats.get('inf_count', 0):,}")
        notes = []
        if stats.get("sampled"):
            notes.append(f"Estimated from a uniform sample of {stats['sample_size']:,} "
                         "elements; min, max, NaN and inf are exact.")
        if stats.get("of") == "abs":
            notes.append("Complex tensor: figures are of the magnitudes.")
        if stats.get("note"):
            notes.append(str(stats["note"]))
        self.stats_note.setText(" ".join(notes))
        self.stats_note.setVisible(bool(notes))

    # ------------------------------------------------------------------ engine events
    def _concerns(self, names: list[str]) -> bool:
        if self.path is None or self.path == "":
            return True
        if self.path in names:
            return True
        return any(self.path in ancestors(name) for name in names)

    def _on_tensors_changed(self, names: list[str]) -> None:
        if self._concerns(names):
            self._refresh_timer.start()

    def _on_structure_changed(self, path: str) -> None:
        self._refresh_timer.start()
