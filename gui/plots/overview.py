"""One bar per layer (its weight's norm or std), to spot a badly initialized layer at a glance."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.stats import MEASURES

from . import style

WHICH = (("weights", "layer weights"), ("all", "all parameters"))


class NameAxis(pg.AxisItem):
    """A left axis that labels bar i with the i-th name, leaving out as many labels as
    needed for the rest not to overlap (zoom in to see them all)."""

    def __init__(self) -> None:
        super().__init__("left")
        self.names: list[str] = []

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        if not self.names or size <= 0:
            return []
        low, high = sorted((minVal, maxVal))  # an inverted axis passes them swapped
        first = max(0, math.ceil(low))
        last = min(len(self.names) - 1, math.floor(high))
        if last < first:
            return []
        pixels_per_bar = size / max(high - low, 1e-9)
        line = QFontMetrics(self.font()).height() * 1.1
        step = max(1, math.ceil(line / pixels_per_bar))
        start = first + (-first) % step
        return [(step, list(range(start, last + 1, step)))]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [self.names[int(value)] if 0 <= int(value) < len(self.names) else ""
                for value in values]


class OverviewView(QWidget):
    """Horizontal bars, first layer at the top, names on the left axis.

    Bars of zero or NaN are marked with a cross in a warning colour. Names that would
    overlap are thinned out until the user zooms in. Clicking a bar asks for that
    tensor (`tensor_clicked`).

    Signals
    -------
    options_changed() : the measure or the choice of tensors changed; see `options()`
    tensor_clicked(str) : the bar of this tensor was clicked
    """

    options_changed = Signal()
    tensor_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.measure_box = QComboBox(self)
        for measure in MEASURES:
            self.measure_box.addItem(measure, measure)
        self.which_box = QComboBox(self)
        for key, text in WHICH:
            self.which_box.addItem(text, key)
        self.measure_box.currentIndexChanged.connect(self.options_changed)
        self.which_box.currentIndexChanged.connect(self.options_changed)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("measure", self))
        controls.addWidget(self.measure_box)
        controls.addWidget(QLabel("of", self))
        controls.addWidget(self.which_box)
        controls.addStretch(1)
        self.note = QLabel(self)
        self.note.setObjectName("overviewNote")
        self.note.setWordWrap(True)
        self.readout = QLabel(self)
        self.readout.setObjectName("overviewReadout")

        self.name_axis = NameAxis()
        self.plot = style.ThemedPlotWidget(self, axisItems={"left": self.name_axis})
        plot_item = self.plot.getPlotItem()
        plot_item.invertY(True)
        plot_item.setMenuEnabled(False)
        plot_item.showGrid(x=True, alpha=0.2)
        plot_item.getViewBox().setMouseEnabled(x=False, y=True)  # scroll along the layers
        # No outline: a thin bar of a deep model stays one clean stroke.
        self.bars = pg.BarGraphItem(x0=[], y=[], height=[], width=[], pen=None)
        plot_item.addItem(self.bars)
        # A zero or NaN bar has no length to colour: a cross at zero marks it instead.
        self.marks = pg.ScatterPlotItem(symbol="x", size=10, pen=pg.mkPen(style.WARNING_COLOR),
                                        brush=pg.mkBrush(style.WARNING_COLOR))
        plot_item.addItem(self.marks)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._names: list[str] = []
        self._values = np.zeros(0)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)

    def options(self) -> tuple[str, str]:
        """(measure, which) as chosen."""
        return self.measure_box.currentData(), self.which_box.currentData()

    def set_options(self, measure: str, which: str = "weights") -> None:
        """Choose the measure and tensors (emits `options_changed` when they change)."""
        self.measure_box.setCurrentIndex(max(self.measure_box.findData(measure), 0))
        self.which_box.setCurrentIndex(max(self.which_box.findData(which), 0))

    @property
    def names(self) -> list[str]:
        """The tensor of each bar, top to bottom."""
        return list(self._names)

    @property
    def values(self) -> np.ndarray:
        """The figure of each bar (NaN where there is none)."""
        return self._values.copy()

    def set_values(self, values: list[tuple[str, float]], measure: str) -> None:
        """Draw one bar per (name, value)."""
        self._names = [name for name, _ in values]
        self._values = np.array([value for _, value in values], dtype=np.float64)
        count = len(self._names)
        finite = np.where(np.isfinite(self._values), self._values, 0.0)
        self.bars.setOpts(x0=np.zeros(count), y=np.arange(count, dtype=np.float64),
                          height=np.full(count, 0.8), width=finite,
                          brushes=self._brushes())
        odd_rows = [row for row, value in enumerate(self._values)
                    if not math.isfinite(value) or value == 0]
        self.marks.setData(x=np.zeros(len(odd_rows)), y=np.array(odd_rows, dtype=np.float64))
        plot_item = self.plot.getPlotItem()
        self.name_axis.names = list(self._names)
        self.name_axis.picture = None  # drop the cached drawing: the names changed
        self.name_axis.update()
        plot_item.setLabel("bottom", measure)
        # As many bars as get a readable label each; the rest a drag or a zoom away.
        shown = min(count, self.rows_that_fit()) or 1
        plot_item.setRange(xRange=(0, float(finite.max()) if count else 1.0),
                           yRange=(-0.5, shown - 0.5), padding=0.02)
        self.plot.apply_palette()
        odd = [name for name, value in values if not math.isfinite(value) or value == 0]
        text = f"{count} tensors"
        if shown < count:
            text += f" (the first {shown} in view: drag, or zoom out with the wheel, for the rest)"
        if odd:
            text += f"; {len(odd)} with {measure} zero or undefined (×): " + ", ".join(odd[:5])
            text += " ..." if len(odd) > 5 else ""
        self.note.setText(text)

    def rows_that_fit(self) -> int:
        """How many bars the plot's height holds with a label of its own each."""
        line = QFontMetrics(self.name_axis.font()).height() * 1.15
        height = self.plot.height() if self.plot.isVisible() else 240
        return max(int((height - 45) / line), 8)

    def clear(self, note: str = "") -> None:
        """Show nothing but `note`."""
        self._names = []
        self._values = np.zeros(0)
        self.bars.setOpts(x0=[], y=[], height=[], width=[], brushes=None)
        self.marks.setData(x=[], y=[])
        self.name_axis.names = []
        self.name_axis.picture = None
        self.name_axis.update()
        self.note.setText(note)
        self.readout.clear()

    def _brushes(self) -> list[object]:
        normal = pg.mkBrush(style.accent(self.palette()))
        warning = pg.mkBrush(style.WARNING_COLOR)
        return [warning if not math.isfinite(value) or value == 0 else normal
                for value in self._values]

    def _bar_at(self, position: QPointF) -> int | None:
        if not self._names or not self.plot.getPlotItem().sceneBoundingRect().contains(position):
            return None
        point = self.plot.getPlotItem().getViewBox().mapSceneToView(position)
        index = round(point.y())
        if 0 <= index < len(self._names) and abs(point.y() - index) <= 0.4:
            return index
        return None

    def _on_mouse_moved(self, position: QPointF) -> None:
        index = self._bar_at(position)
        if index is None:
            self.readout.clear()
            return
        self.readout.setText(f"{self._names[index]}: {self._values[index]:.6g}")

    def _on_mouse_clicked(self, event: object) -> None:
        if getattr(event, "button", lambda: None)() != Qt.MouseButton.LeftButton:
            return
        index = self._bar_at(event.scenePos())  # type: ignore[attr-defined]
        if index is not None:
            self.tensor_clicked.emit(self._names[index])

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and len(self._values):
            self.bars.setOpts(brushes=self._brushes())
