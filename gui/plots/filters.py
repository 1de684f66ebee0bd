"""The kernels of a 4-D conv weight as a grid of small images, on one shared colour scale."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.stats import GridLayout, filter_grid_position

from . import style
from .heatmap import color_levels


class FilterGridView(QWidget):
    """Each output filter is a cell holding its input channels left to right.

    All kernels share one colour scale, so a dead or exploded filter stands out; the
    readout under the grid names the filter, channel and position under the mouse.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel(self)
        self.note.setObjectName("filtersNote")
        self.note.setWordWrap(True)
        self.readout = QLabel(self)
        self.readout.setObjectName("filtersReadout")
        self.plot = style.ThemedPlotWidget(self)
        plot_item = self.plot.getPlotItem()
        plot_item.invertY(True)
        plot_item.setAspectLocked(True)  # kernels keep square pixels
        plot_item.hideAxis("left")
        plot_item.hideAxis("bottom")
        plot_item.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        plot_item.addItem(self.image_item)
        self.color_bar = pg.ColorBarItem(colorMap=style.DIVERGING_MAP, interactive=True,
                                         width=16)
        self.color_bar.setImageItem(self.image_item, insert_in=plot_item)
        self.plot.add_themed(self.color_bar)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._image: np.ndarray | None = None
        self._layout: GridLayout | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)

    @property
    def image(self) -> np.ndarray | None:
        """The grid image shown, or None."""
        return self._image

    def set_grid(self, image: np.ndarray, grid: GridLayout, shape: tuple[int, ...], *,
                 keep_view: bool = False) -> None:
        """Show a filter grid `image` laid out as `grid`, of a weight of `shape`, zoomed
        out; with `keep_view` (the same weight after an edit) the zoom stays."""
        same_shape = (keep_view and self._image is not None
                      and self._image.shape == image.shape)
        self._image = image
        self._layout = grid
        self.image_item.setImage(image, autoLevels=False)
        self.image_item.setRect(QRectF(0, 0, image.shape[1], image.shape[0]))
        levels, diverging = color_levels(image)
        self.color_bar.setColorMap(style.DIVERGING_MAP if diverging else style.SEQUENTIAL_MAP)
        self.color_bar.rounding = (levels[1] - levels[0]) / 1000
        self.color_bar.setLevels(levels)
        if not same_shape:
            self.plot.getPlotItem().setRange(xRange=(0, image.shape[1]),
                                             yRange=(0, image.shape[0]), padding=0.02)
        out_channels, in_channels = shape[0], shape[1]
        parts = [f"{out_channels} filters of {in_channels} channels, "
                 f"{shape[2]}×{shape[3]} each; one cell per filter, channels left to right"]
        if grid.filters < out_channels or grid.channels < in_channels:
            parts.append(f"showing the first {grid.filters} filters and "
                         f"{grid.channels} channels")
        self.note.setText("; ".join(parts))

    def clear(self, note: str = "") -> None:
        """Show nothing but `note`."""
        self._image = None
        self._layout = None
        self.image_item.clear()
        self.note.setText(note)
        self.readout.clear()

    def _on_mouse_moved(self, position: QPointF) -> None:
        if self._image is None or self._layout is None:
            return
        point = self.plot.getPlotItem().getViewBox().mapSceneToView(position)
        where = filter_grid_position(self._layout, math.floor(point.y()), math.floor(point.x()))
        if where is None:
            self.readout.clear()
            return
        number, channel, y, x = where
        value = self._image[math.floor(point.y()), math.floor(point.x())]
        self.readout.setText(f"filter {number}, channel {channel}, ({y}, {x}): {value:.6g}")
