"""The kernels of a 4-D conv weight as a grid of small images, on one shared colour scale.

A grid shows at most `PAGE_FILTERS` filters of `PAGE_CHANNELS` channels; two spin
boxes choose the first filter and the first channel shown (their arrows turn a
page), so every kernel of a big layer can be looked at.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.stats import GridLayout, filter_grid_position

from . import style
from .heatmap import color_levels

#: filters and input channels shown at once (the rest are a page away)
PAGE_FILTERS = 64
PAGE_CHANNELS = 16


class FilterGridView(QWidget):
    """Each output filter is a cell holding its input channels left to right.

    All kernels share one colour scale, so a dead or exploded filter stands out; the
    readout under the grid names the filter, channel and position under the mouse.

    Signals
    -------
    page_changed() : the user chose other filters or channels; see `page()`
    """

    page_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter_start = self._start_box("first filter shown", PAGE_FILTERS)
        self.filter_range = QLabel(self)
        self.channel_start = self._start_box("first input channel shown", PAGE_CHANNELS)
        self.channel_range = QLabel(self)
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("filters from", self))
        controls.addWidget(self.filter_start)
        controls.addWidget(self.filter_range)
        controls.addSpacing(12)
        controls.addWidget(QLabel("channels from", self))
        controls.addWidget(self.channel_start)
        controls.addWidget(self.channel_range)
        controls.addStretch(1)
        self._offset = (0, 0)
        self._counts = (0, 0)
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
        layout.addLayout(controls)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.configure((0, 0, 0, 0))

    def _start_box(self, tip: str, page: int) -> QSpinBox:
        box = QSpinBox(self)
        box.setToolTip(f"The {tip}; the arrows turn a page of {page}")
        box.setSingleStep(page)
        box.setKeyboardTracking(False)  # a new page on Enter or the arrows, not per digit
        box.valueChanged.connect(self._on_start_changed)
        return box

    # ------------------------------------------------------------------ paging
    def configure(self, shape: tuple[int, ...]) -> None:
        """Prepare the page controls for a weight of `shape` (out, in, h, w); back to the
        first page when the counts change."""
        filters, channels = (shape[0], shape[1]) if len(shape) == 4 else (0, 0)
        if (filters, channels) == self._counts:
            return
        self._counts = (filters, channels)
        for box, count in ((self.filter_start, filters), (self.channel_start, channels)):
            box.blockSignals(True)
            box.setRange(0, max(count - 1, 0))
            box.setValue(0)
            box.setEnabled(count > (PAGE_FILTERS if box is self.filter_start
                                    else PAGE_CHANNELS))
            box.blockSignals(False)
        self._update_ranges()

    def page(self) -> tuple[slice, slice]:
        """The filters and channels to show: slices of the first two dimensions."""
        first_filter, first_channel = self.filter_start.value(), self.channel_start.value()
        return (slice(first_filter, first_filter + PAGE_FILTERS),
                slice(first_channel, first_channel + PAGE_CHANNELS))

    def set_page(self, first_filter: int, first_channel: int = 0) -> None:
        """Show the page starting at this filter and channel (emits `page_changed` once)."""
        for box, value in ((self.filter_start, first_filter),
                           (self.channel_start, first_channel)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self._on_start_changed()

    def _on_start_changed(self, *_args: object) -> None:
        self._update_ranges()
        self.page_changed.emit()

    def _update_ranges(self) -> None:
        filters, channels = self._counts
        rows, columns = self.page()
        self.filter_range.setText(f"to {min(rows.stop, filters) - 1} of {filters}")
        self.channel_range.setText(f"to {min(columns.stop, channels) - 1} of {channels}")

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
        rows, columns = self.page()
        self._offset = (rows.start, columns.start)
        parts = [f"{out_channels} filters of {in_channels} channels, "
                 f"{shape[2]}×{shape[3]} each; one cell per filter, channels left to right"]
        if grid.filters < out_channels or grid.channels < in_channels:
            parts.append(f"showing filters {rows.start}–{rows.start + grid.filters - 1} "
                         f"and channels {columns.start}–{columns.start + grid.channels - 1}")
        self.note.setText("; ".join(parts))

    def clear(self, note: str = "") -> None:
        """Show nothing but `note`."""
        self._image = None
        self._layout = None
        self.image_item.clear()
        self.note.setText(note)
        self.readout.clear()

    def kernel_at(self, row: int, column: int) -> tuple[int, int, int, int] | None:
        """(filter, channel, y, x) of the weight under pixel (row, column) of the grid, or
        None for a gap or outside."""
        if self._layout is None:
            return None
        where = filter_grid_position(self._layout, row, column)
        if where is None:
            return None
        number, channel, y, x = where
        return number + self._offset[0], channel + self._offset[1], y, x

    def _on_mouse_moved(self, position: QPointF) -> None:
        if self._image is None or self._layout is None:
            return
        point = self.plot.getPlotItem().getViewBox().mapSceneToView(position)
        row, column = math.floor(point.y()), math.floor(point.x())
        where = self.kernel_at(row, column)
        if where is None:
            self.readout.clear()
            return
        number, channel, y, x = where
        value = self._image[row, column]
        self.readout.setText(f"filter {number}, channel {channel}, ({y}, {x}): {value:.6g}")
