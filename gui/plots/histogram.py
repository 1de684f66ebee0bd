"""The histogram of one tensor, with the previous histogram overlaid after an edit.

Both are drawn on the same bins (`engine.histograms.overlay`), and a line beside
the plot says how many elements changed and the largest change.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..elided_label import ElidedLabel
from . import style


class HistogramView(QWidget):
    """A step histogram ("after") and, once set, the previous one as an outline ("before").

    The view only draws what it is given; `PlotPanel` computes the counts.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # One line, elided (the whole note is its tooltip): the plot never jumps.
        self.note = ElidedLabel("", self, Qt.AlignmentFlag.AlignLeft)
        self.note.setObjectName("histogramNote")
        self.changes = QLabel(self)
        self.changes.setObjectName("histogramChanges")
        self.changes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.changes.font()
        font.setBold(True)
        self.changes.setFont(font)
        # Its room is kept when hidden: the plot must not jump when an edit is made.
        policy = self.changes.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.changes.setSizePolicy(policy)
        self.changes.hide()
        self.plot = style.ThemedPlotWidget(self)
        plot_item = self.plot.getPlotItem()
        plot_item.setLabel("bottom", "value")
        plot_item.setLabel("left", "count")
        plot_item.showGrid(x=True, y=True, alpha=0.2)
        plot_item.setMenuEnabled(False)
        self.legend = plot_item.addLegend(offset=(-10, 10))
        self.before_item = pg.PlotDataItem(stepMode="center")
        self.after_item = pg.PlotDataItem(stepMode="center", fillLevel=0)
        plot_item.addItem(self.before_item)
        plot_item.addItem(self.after_item)
        self.before_item.setZValue(1)  # the outline stays visible over the filled bars
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(self.note, 1)
        header.addWidget(self.changes)
        layout.addLayout(header)
        layout.addWidget(self.plot, 1)
        self._has_before = False
        self._apply_colors()
        self.plot.apply_palette()

    @property
    def has_overlay(self) -> bool:
        """Whether the previous histogram is shown."""
        return self._has_before

    def set_histogram(self, counts: np.ndarray, edges: np.ndarray, note: str) -> None:
        """Show `counts` over `edges` (one more edge than counts) as the current histogram."""
        self.note.setText(note)
        if len(counts) == 0:
            self.after_item.setData([], [])
        else:
            self.after_item.setData(np.asarray(edges, dtype=np.float64),
                                    np.asarray(counts, dtype=np.float64))
        self.plot.getPlotItem().enableAutoRange()
        self._update_legend()

    def set_before(self, counts: np.ndarray | None, edges: np.ndarray | None) -> None:
        """Overlay a previous histogram as an outline; None removes it."""
        if counts is None or edges is None or len(counts) == 0:
            self.before_item.setData([], [])
            self._has_before = False
        else:
            self.before_item.setData(np.asarray(edges, dtype=np.float64),
                                     np.asarray(counts, dtype=np.float64))
            self._has_before = True
        self._update_legend()

    def set_changes(self, text: str) -> None:
        """Say what the last change did ('' hides the line)."""
        self.changes.setText(text)
        self.changes.setVisible(bool(text))

    def clear(self, note: str = "") -> None:
        """Show nothing but `note`."""
        self.after_item.setData([], [])
        self.set_before(None, None)
        self.set_changes("")
        self.note.setText(note)

    def _update_legend(self) -> None:
        self.legend.clear()
        self.legend.setVisible(self._has_before)  # an empty legend still draws its frame
        if self._has_before:
            self.legend.addItem(self.before_item, "before")
            self.legend.addItem(self.after_item, "after")
        self.plot.apply_palette()

    def _apply_colors(self) -> None:
        palette = self.palette()
        color = style.accent(palette)
        fill = QColor(color)
        fill.setAlpha(110)
        self.after_item.setPen(pg.mkPen(color, width=1.5))
        self.after_item.setBrush(pg.mkBrush(fill))
        self.before_item.setPen(pg.mkPen(style.foreground(palette), width=1.5,
                                         style=Qt.PenStyle.DashLine))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_colors()
