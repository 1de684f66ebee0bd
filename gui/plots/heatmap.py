"""A heatmap of a matrix (an N-D tensor reshaped or sliced), with zoom, pan and a colour bar.

A big matrix is shown from a block-mean preview computed once (`engine.stats.
heatmap_preview`), so zooming and panning only rescale that image. When the view
is zoomed in far enough that a finer picture of the visible part would differ, the
view asks (`detail_wanted`) for a preview of just that part and lays it over the
coarse one; zooming out again hides it.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.stats import PREVIEW_SIDE

from . import style

#: milliseconds of quiet after a zoom or pan before a detail preview is asked for
DETAIL_DELAY_MS = 150

MODES = (("reshape", "rows = first dimension"), ("slice", "slice of the last two dimensions"))


def color_levels(image: np.ndarray) -> tuple[tuple[float, float], bool]:
    """Levels for an image: symmetric around zero for signed data, min..max otherwise.

    Returns ((low, high), diverging).
    """
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return (-1.0, 1.0), True
    low, high = float(finite.min()), float(finite.max())
    if low < 0 < high:
        bound = max(-low, high)
        return (-bound, bound), True
    if low == high:
        spread = abs(low) * 0.5 or 0.5
        return (low - spread, high + spread), low == 0
    return (low, high), False


class HeatmapView(QWidget):
    """A zoomable heatmap with a colour bar and, for N-D tensors, a reshape/slice choice.

    Signals
    -------
    matrix_changed() : the user chose another reshape/slice; `matrix_choice()` tells it
    detail_wanted(int, int, int, int) : rows [r0, r1) and columns [c0, c1) of the
        matrix are visible and deserve a finer picture than the preview
    """

    matrix_changed = Signal()
    detail_wanted = Signal(int, int, int, int)

    def __init__(self, parent: QWidget | None = None, *,
                 preview_side: int = PREVIEW_SIDE) -> None:
        super().__init__(parent)
        #: the largest side of a preview; a detail is asked for when it would be finer
        self.preview_side = preview_side
        self._shape: tuple[int, ...] = ()
        self._matrix_shape = (0, 0)
        self._scale = (1, 1)
        self._image: np.ndarray | None = None
        self._detail: tuple[np.ndarray, tuple[int, int], int, int] | None = None
        self._note = ""  # the note of the preview, without what the detail adds
        self._asked: tuple[int, int, int, int] | None = None

        self.mode_box = QComboBox(self)
        for key, text in MODES:
            self.mode_box.addItem(text, key)
        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.index_row = QHBoxLayout()
        self.index_boxes: list[QSpinBox] = []
        self.controls = QWidget(self)
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("view as", self.controls))
        controls.addWidget(self.mode_box)
        controls.addLayout(self.index_row)
        controls.addStretch(1)

        self.note = QLabel(self)
        self.note.setObjectName("heatmapNote")
        self.note.setWordWrap(True)
        self.readout = QLabel(self)
        self.readout.setObjectName("heatmapReadout")

        self.plot = style.ThemedPlotWidget(self)
        plot_item = self.plot.getPlotItem()
        plot_item.invertY(True)  # row 0 at the top, as a matrix is written
        plot_item.setLabel("bottom", "column")
        plot_item.setLabel("left", "row")
        plot_item.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.detail_item = pg.ImageItem(axisOrder="row-major")
        self.detail_item.setZValue(1)
        plot_item.addItem(self.image_item)
        plot_item.addItem(self.detail_item)
        self.color_bar = pg.ColorBarItem(colorMap=style.DIVERGING_MAP, interactive=True,
                                         width=16)
        self.color_bar.setImageItem([self.image_item, self.detail_item], insert_in=plot_item)
        self.plot.add_themed(self.color_bar)

        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._check_detail)
        plot_item.getViewBox().sigRangeChanged.connect(self._on_range_changed)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.controls)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.controls.hide()

    # ------------------------------------------------------------------ matrix choice
    def configure(self, shape: tuple[int, ...]) -> None:
        """Prepare the reshape/slice controls for a tensor of `shape` (shown for N > 2)."""
        if tuple(shape) == self._shape:
            return
        self._shape = tuple(shape)
        for box in self.index_boxes:
            self.index_row.removeWidget(box)
            box.deleteLater()
        self.index_boxes = []
        for dim, size in enumerate(self._shape[:-2]):
            box = QSpinBox(self.controls)
            box.setRange(0, max(size - 1, 0))
            box.setPrefix(f"dim {dim}: ")
            box.setKeyboardTracking(False)  # a new slice on Enter or arrows, not per digit
            box.valueChanged.connect(self._on_index_changed)
            self.index_row.addWidget(box)
            self.index_boxes.append(box)
        self.controls.setVisible(len(self._shape) > 2)
        self._update_index_visibility()

    def matrix_choice(self) -> tuple[str, tuple[int, ...]]:
        """("reshape" | "slice", index along the leading dimensions)."""
        return self.mode_box.currentData(), tuple(box.value() for box in self.index_boxes)

    def set_matrix_choice(self, mode: str, index: tuple[int, ...] = ()) -> None:
        """Choose how an N-D tensor becomes a matrix (emits `matrix_changed` once)."""
        self.mode_box.blockSignals(True)
        self.mode_box.setCurrentIndex(max(self.mode_box.findData(mode), 0))
        self.mode_box.blockSignals(False)
        for box, value in zip(self.index_boxes, index, strict=False):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self._update_index_visibility()
        self.matrix_changed.emit()

    def _on_mode_changed(self) -> None:
        self._update_index_visibility()
        self.matrix_changed.emit()

    def _on_index_changed(self) -> None:
        self.matrix_changed.emit()

    def _update_index_visibility(self) -> None:
        slicing = self.mode_box.currentData() == "slice"
        for box in self.index_boxes:
            box.setVisible(slicing)

    # ------------------------------------------------------------------ images
    def set_image(self, image: np.ndarray, scale: tuple[int, int],
                  matrix_shape: tuple[int, int], note: str, *, keep_view: bool = False) -> None:
        """Show a preview `image` whose pixels each cover `scale` (rows, columns) of a
        matrix of `matrix_shape`, zoomed out to the whole matrix. With `keep_view` (the
        same matrix again, after an edit) and an unchanged shape, the zoom stays and a
        detail of the visible part is asked for again."""
        same_matrix = (keep_view and self._image is not None
                       and matrix_shape == self._matrix_shape)
        self._image = image
        self._scale = scale
        self._matrix_shape = matrix_shape
        self._asked = None
        self.clear_detail()
        self._note = note
        self.note.setText(note)
        rows, cols = matrix_shape
        self.image_item.setImage(image, autoLevels=False)
        self.image_item.setRect(QRectF(0, 0, image.shape[1] * scale[1],
                                       image.shape[0] * scale[0]))
        levels, diverging = color_levels(image)
        self.color_bar.setColorMap(style.DIVERGING_MAP if diverging else style.SEQUENTIAL_MAP)
        # The colour bar rounds what the user drags to; a step of 1 would be useless
        # for weights of size 0.01.
        self.color_bar.rounding = (levels[1] - levels[0]) / 1000
        self.color_bar.setLevels(levels)
        if same_matrix:
            self._on_range_changed()
            return
        self.plot.getPlotItem().getViewBox().setLimits(
            xMin=-0.05 * cols, xMax=1.05 * cols, yMin=-0.05 * rows, yMax=1.05 * rows)
        self.plot.getPlotItem().setRange(xRange=(0, cols), yRange=(0, rows), padding=0.02)

    def set_detail(self, image: np.ndarray, scale: tuple[int, int], top: int,
                   left: int) -> None:
        """Lay a finer preview of the region starting at (`top`, `left`) over the view."""
        self._detail = (image, scale, top, left)
        bottom = min(top + image.shape[0] * scale[0], self._matrix_shape[0])
        right = min(left + image.shape[1] * scale[1], self._matrix_shape[1])
        what = "exact values" if scale == (1, 1) else f"means of {scale[0]}×{scale[1]} blocks"
        self.note.setText(f"{self._note}; in view (rows {top}–{bottom - 1}, columns "
                          f"{left}–{right - 1}): {what}")
        self.detail_item.setImage(image, autoLevels=False, levels=self.color_bar.levels())
        self.detail_item.setRect(QRectF(left, top, image.shape[1] * scale[1],
                                        image.shape[0] * scale[0]))
        self.detail_item.show()

    def clear_detail(self) -> None:
        """Hide the detail preview."""
        if self._detail is not None:
            self.note.setText(self._note)
        self._detail = None
        self.detail_item.clear()
        self.detail_item.hide()

    def clear(self, note: str = "") -> None:
        """Show nothing but `note`."""
        self._image = None
        self._asked = None
        self.clear_detail()
        self.image_item.clear()
        self._note = note
        self.note.setText(note)
        self.readout.clear()

    @property
    def image(self) -> np.ndarray | None:
        """The preview shown, or None."""
        return self._image

    @property
    def detail(self) -> tuple[np.ndarray, tuple[int, int], int, int] | None:
        """(image, scale, top, left) of the detail shown, or None."""
        return self._detail

    # ------------------------------------------------------------------ zoom detail
    def _on_range_changed(self) -> None:
        if self._image is not None and self._scale != (1, 1):
            self._detail_timer.start()

    def visible_region(self) -> tuple[int, int, int, int]:
        """Rows [r0, r1) and columns [c0, c1) of the matrix in view."""
        (x0, x1), (y0, y1) = self.plot.getPlotItem().getViewBox().viewRange()
        rows, cols = self._matrix_shape
        r0, r1 = max(0, math.floor(y0)), min(rows, math.ceil(y1))
        c0, c1 = max(0, math.floor(x0)), min(cols, math.ceil(x1))
        return r0, max(r0, r1), c0, max(c0, c1)

    def _check_detail(self) -> None:
        if self._image is None or self._scale == (1, 1):
            return
        region = self.visible_region()
        r0, r1, c0, c1 = region
        if r1 <= r0 or c1 <= c0:
            return
        side = self.preview_side
        finer = (math.ceil((r1 - r0) / side) < self._scale[0]
                 or math.ceil((c1 - c0) / side) < self._scale[1])
        if not finer:
            self._asked = None
            self.clear_detail()
            return
        if region != self._asked:
            self._asked = region
            self.detail_wanted.emit(r0, r1, c0, c1)

    # ------------------------------------------------------------------ readout
    def _on_mouse_moved(self, position: QPointF) -> None:
        if self._image is None:
            return
        point = self.plot.getPlotItem().getViewBox().mapSceneToView(position)
        row, col = math.floor(point.y()), math.floor(point.x())
        rows, cols = self._matrix_shape
        if not (0 <= row < rows and 0 <= col < cols):
            self.readout.clear()
            return
        value, exact = self._value_at(row, col)
        what = "value" if exact else "block mean"
        self.readout.setText(f"row {row}, column {col}: {what} {value:.6g}")

    def _value_at(self, row: int, col: int) -> tuple[float, bool]:
        if self._detail is not None:
            image, (fy, fx), top, left = self._detail
            i, j = (row - top) // fy, (col - left) // fx
            if 0 <= i < image.shape[0] and 0 <= j < image.shape[1]:
                return float(image[i, j]), (fy, fx) == (1, 1)
        assert self._image is not None
        fy, fx = self._scale
        return float(self._image[row // fy, col // fx]), self._scale == (1, 1)
