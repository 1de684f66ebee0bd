"""Plot widgets that take their colours from the Qt palette, so light and dark themes both read.

pyqtgraph draws white on black by default whatever the application's palette is; these
helpers paint the background, axes, legends and colour bars with the palette's own
colours and repaint them when the palette changes.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

#: colour map of signed data (weights): blue below zero, white at zero, red above
DIVERGING_MAP = "CET-D1"
#: colour map of data of one sign (variances, counts)
SEQUENTIAL_MAP = "viridis"
#: colour of bars that need a look (zero, NaN)
WARNING_COLOR = QColor(220, 60, 40)

AXES = ("left", "bottom", "right", "top")


def foreground(palette: QPalette) -> QColor:
    """The colour of text and axes."""
    return palette.color(QPalette.ColorRole.WindowText)


def background(palette: QPalette) -> QColor:
    """The colour behind a plot."""
    return palette.color(QPalette.ColorRole.Base)


def accent(palette: QPalette) -> QColor:
    """The colour of the data being shown."""
    return palette.color(QPalette.ColorRole.Highlight)


def muted(palette: QPalette) -> QColor:
    """A grey between text and background, for data shown for comparison."""
    text, base = foreground(palette), background(palette)
    return QColor((text.red() + base.red()) // 2, (text.green() + base.green()) // 2,
                  (text.blue() + base.blue()) // 2)


def is_dark(palette: QPalette) -> bool:
    return background(palette).lightness() < 128


def style_axis(axis: pg.AxisItem, palette: QPalette) -> None:
    """Draw an axis (lines, ticks and text) in the palette's text colour."""
    axis.setPen(pg.mkPen(foreground(palette)))
    axis.setTextPen(pg.mkPen(foreground(palette)))
    # An axis label keeps the colour it was set with; set it again.
    if axis.labelText:
        axis.setLabel(axis.labelText, units=axis.labelUnits, color=foreground(palette).name())


def style_plot_item(plot_item: pg.PlotItem, palette: QPalette) -> None:
    """Colour a PlotItem's axes, title and legend from `palette`."""
    for name in AXES:
        style_axis(plot_item.getAxis(name), palette)
    if plot_item.titleLabel is not None:
        plot_item.titleLabel.setAttr("color", foreground(palette).name())
    legend = plot_item.legend
    if legend is not None:
        legend.setLabelTextColor(foreground(palette))
        fill = QColor(background(palette))
        fill.setAlpha(200)
        legend.setBrush(pg.mkBrush(fill))
        legend.setPen(pg.mkPen(muted(palette)))


class ThemedPlotWidget(pg.PlotWidget):
    """A PlotWidget drawn in the application's palette, restyled when the palette changes.

    Extra items with axes of their own (a colour bar) are added with `add_themed`.
    """

    def __init__(self, parent: QWidget | None = None, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._themed: list[Any] = []
        self.apply_palette()

    def add_themed(self, item: Any) -> None:
        """Restyle `item` (something with an `axis`, like a ColorBarItem) with the plot."""
        self._themed.append(item)
        self.apply_palette()

    def apply_palette(self) -> None:
        """Colour the plot from the widget's current palette."""
        palette = self.palette()
        self.setBackground(background(palette))
        style_plot_item(self.getPlotItem(), palette)
        for item in self._themed:
            style_axis(item.axis, palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        # pyqtgraph's constructor changes the palette before the plot item exists.
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_themed"):
            self.apply_palette()
