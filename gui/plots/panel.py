"""PlotPanel: the plots of the selected tensor (histogram, heatmap, filters) and a layer overview.

The panel listens to the Session: when the shown tensor changes (an edit, an undo, a
structure change), it redraws, keeping the previous histogram as a "before" outline
under the new one. Work on big tensors runs in the background (`Jobs`), and a newer
request supersedes an older one. The panel only reads the document; it never edits.
"""

from __future__ import annotations

from typing import Any

import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import histograms, stats
from engine.document import dtype_name, numel, shape_text
from engine.errors import WeightsmithError
from engine.paths import under
from engine.session import Session

from ..elided_label import ElidedLabel
from ..listening import SessionListener
from .filters import FilterGridView
from .heatmap import HeatmapView
from .histogram import HistogramView
from .jobs import Jobs
from .overview import OverviewView

#: tensors with more elements than this are plotted off the GUI thread
BACKGROUND_LIMIT = 2**20
#: the largest kernel side the filter grid shows (bigger 4-D tensors are not conv kernels)
FILTER_MAX_KERNEL = 32
#: elements of the quick first histogram of a big tensor, before the full sample
QUICK_SAMPLE = 2**14
#: milliseconds an overview waits after a change before it recomputes (edits come in bursts)
OVERVIEW_DELAY_MS = 300

TENSOR_ERRORS = (WeightsmithError, ValueError, OSError, RuntimeError)


class PlotPanel(QWidget):
    """Tabs of plots for one tensor of a Session, and an overview of all its layers.

    Parameters
    ----------
    sample_limit : tensors with more elements are histogrammed from a uniform random
        sample of this many elements (the plot says so)
    background_limit : computations over more elements than this run off the GUI thread
    preview_side : the largest side of a heatmap preview
    max_bins : the most bins of a histogram (the count comes from the data)

    Signals
    -------
    plotted(str) : a view was drawn: "histogram-quick" (a first look at a big tensor
        from a small sample), "histogram", "heatmap", "detail", "filters", "overview"
    tensor_requested(str) : the user clicked a layer of the overview
    """

    plotted = Signal(str)
    tensor_requested = Signal(str)
    # Session events may come from any thread; these carry them to the GUI thread.
    _tensors_changed = Signal(list)
    _structure_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, *,
                 sample_limit: int = stats.HISTOGRAM_SAMPLE,
                 background_limit: int = BACKGROUND_LIMIT,
                 preview_side: int = stats.PREVIEW_SIDE,
                 max_bins: int = histograms.MAX_BINS) -> None:
        super().__init__(parent)
        self.sample_limit = sample_limit
        self.background_limit = background_limit
        self.preview_side = preview_side
        self.max_bins = max_bins
        self._session: Session | None = None
        self._listener = SessionListener(self, tensors_changed=self._forward_tensors_changed,
                                         structure_changed=self._forward_structure_changed)
        self._name: str | None = None
        self._tensor: torch.Tensor | None = None
        #: what the histogram on screen counted, and the state before the last change
        self._snapshot: histograms.Snapshot | None = None
        self._before: histograms.Snapshot | None = None
        self._stale: set[str] = set()
        self._refresh_pending = False
        self._overview_drawn = False
        #: what the heatmap and the filter grid last drew, to keep their zoom on a redraw
        self._drawn: dict[str, Any] = {}

        self.title = ElidedLabel("No tensor selected", self)
        self.title.setObjectName("plotTitle")
        self.status = QLabel(self)
        self.status.setObjectName("plotStatus")
        self.status.setWordWrap(True)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumSize(120, 8)
        # Keep its room when hidden: a layout change would resize and re-render every plot.
        policy = self.progress_bar.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress_bar.setSizePolicy(policy)
        self.progress_bar.hide()

        self.histogram_view = HistogramView(self)
        self.heatmap_view = HeatmapView(self, preview_side=preview_side)
        self.filter_view = FilterGridView(self)
        self.overview_view = OverviewView(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.histogram_view, "Histogram")
        self.tabs.addTab(self.heatmap_view, "Heatmap")
        self.tabs.addTab(self.filter_view, "Filters")
        self.tabs.addTab(self.overview_view, "Overview")

        # The tensor's name and the busy bar sit beside the tabs: no row of their own,
        # so the plots keep the height.
        corner = QWidget(self)
        corner_layout = QHBoxLayout(corner)
        corner_layout.setContentsMargins(12, 0, 4, 0)
        corner_layout.addWidget(self.progress_bar)
        corner_layout.addWidget(self.title, 1)
        self.tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

        self.jobs = Jobs(self)
        self.jobs.busy_changed.connect(self._on_busy_changed)
        self.jobs.progressed.connect(self._on_progressed)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)  # coalesce the events of one edit or group
        self._refresh_timer.timeout.connect(self._refresh)
        self._overview_timer = QTimer(self)
        self._overview_timer.setSingleShot(True)
        self._overview_timer.setInterval(OVERVIEW_DELAY_MS)
        self._overview_timer.timeout.connect(self._refresh_overview)

        self._tensors_changed.connect(self._on_tensors_changed)
        self._structure_changed.connect(self._on_structure_changed)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.heatmap_view.matrix_changed.connect(self._on_matrix_changed)
        self.heatmap_view.detail_wanted.connect(self._request_detail)
        self.filter_view.page_changed.connect(self._on_filter_page_changed)
        self.overview_view.options_changed.connect(self._request_overview)
        self.overview_view.tensor_clicked.connect(self.tensor_requested)
        self._show_tabs_for(None)

    # ------------------------------------------------------------------ public API
    @property
    def session(self) -> Session | None:
        return self._session

    @property
    def tensor_name(self) -> str | None:
        """The name of the tensor shown, or None."""
        return self._name

    @property
    def busy(self) -> bool:
        """Whether a background computation is still to deliver."""
        return self.jobs.busy

    def set_session(self, session: Session | None) -> None:
        """Show plots of `session` (None: nothing); stop listening to the previous one."""
        if session is self._session:
            return
        self.jobs.cancel_all()
        self._session = session
        self._overview_drawn = False
        self.overview_view.clear("")
        self._listener.follow(session)
        self.show_tensor(None)
        if self.tabs.currentWidget() is self.overview_view:
            self._request_overview()

    def show_tensor(self, name: str | None) -> None:
        """Plot the tensor called `name` (None: nothing). Forgets any "before" histogram."""
        self._name = name
        self._before = None
        self._snapshot = None
        self._drawn.clear()
        self._refresh_pending = False
        for kind in ("histogram-quick", "histogram", "heatmap", "detail", "filters"):
            self.jobs.cancel(kind)
        self.status.clear()
        if name is None or self._session is None:
            self._tensor = None
            self.title.setText("No tensor selected")
            self._clear_tensor_views("Select a tensor to plot it.")
            self._show_tabs_for(None)
            return
        self._load_and_plot()

    def show_overview(self) -> None:
        """Switch to the overview and compute it if it is not up to date."""
        self.tabs.setCurrentWidget(self.overview_view)
        if not self._overview_drawn or "overview" in self._stale:
            self._request_overview()

    # ------------------------------------------------------------------ lifetime
    def closeEvent(self, event: QCloseEvent) -> None:
        self.set_session(None)
        self.jobs.shutdown()
        super().closeEvent(event)

    def _forward_tensors_changed(self, names: list[str]) -> None:
        self._tensors_changed.emit(list(names))

    def _forward_structure_changed(self, path: str) -> None:
        self._structure_changed.emit(path)

    # ------------------------------------------------------------------ session events
    def _on_tensors_changed(self, names: list[str]) -> None:
        if self._name is not None and self._name in names:
            self._schedule_refresh()
        self._overview_outdated()

    def _on_structure_changed(self, path: str) -> None:
        if self._name is not None and under(self._name, path):
            self._schedule_refresh()
        self._overview_outdated()

    def _schedule_refresh(self) -> None:
        if not self._refresh_pending:
            # What is on screen now is the tensor's previous state.
            self._before = self._snapshot
            self._refresh_pending = True
        self._refresh_timer.start()

    def _refresh(self) -> None:
        self._refresh_pending = False
        if self._name is not None and self._session is not None:
            self._load_and_plot(keep_before=True)

    def _overview_outdated(self) -> None:
        if not self._overview_drawn:
            return
        self._stale.add("overview")
        if self.tabs.currentWidget() is self.overview_view:
            self._overview_timer.start()

    # ------------------------------------------------------------------ tensor views
    def _load_and_plot(self, keep_before: bool = False) -> None:
        assert self._session is not None
        assert self._name is not None
        name = self._name
        try:
            # In the GUI thread: a checkpoint tensor is read (big ones memory-mapped)
            # here, never in a worker, so no worker races an edit over loading it.
            tensor = self._session.document.tensor(name)
        except TENSOR_ERRORS as error:
            self._tensor = None
            self.title.setText(name)
            self._clear_tensor_views(f"Cannot plot '{name}': {_first_line(error)}")
            self._show_tabs_for(None)
            return
        shape = tuple(tensor.shape)
        self.title.setText(f"{name}  {shape_text(shape)}  {dtype_name(tensor.dtype)}")
        if tensor.device.type == "meta":
            self._tensor = None
            self._clear_tensor_views("No data to plot: the tensor is on the meta device.")
            self._show_tabs_for(None)
            return
        self._tensor = tensor
        if not keep_before:
            self._before = None
        self._show_tabs_for(shape)
        self.heatmap_view.configure(shape)
        self.filter_view.configure(shape)
        self._stale.update({"heatmap", "filters"})
        self._request_histogram()
        self._request_current()

    def _show_tabs_for(self, shape: tuple[int, ...] | None) -> None:
        rank = -1 if shape is None else len(shape)
        self.tabs.setTabVisible(self.tabs.indexOf(self.heatmap_view), rank >= 2)
        filters = (rank == 4 and shape is not None
                   and max(shape[2], shape[3]) <= FILTER_MAX_KERNEL)
        self.tabs.setTabVisible(self.tabs.indexOf(self.filter_view), filters)

    def _clear_tensor_views(self, note: str) -> None:
        self.histogram_view.clear(note)
        self.heatmap_view.clear(note)
        self.filter_view.clear(note)

    def _on_tab_changed(self) -> None:
        current = self.tabs.currentWidget()
        if current is self.overview_view:
            if not self._overview_drawn or "overview" in self._stale:
                self._request_overview()
        else:
            self._request_current()

    def _request_current(self) -> None:
        if self._tensor is None:
            return
        current = self.tabs.currentWidget()
        if current is self.heatmap_view and "heatmap" in self._stale:
            self._request_heatmap()
        elif current is self.filter_view and "filters" in self._stale:
            self._request_filters()

    def _background(self, numel: int) -> bool:
        return numel > self.background_limit

    def _failed(self, kind: str, view: Any) -> Any:
        def failed(message: str) -> None:
            view.clear(f"Cannot compute the {kind}: {message}")
            self.status.setText(f"{kind}: {message}")
        return failed

    # histogram
    def _request_histogram(self) -> None:
        tensor = self._tensor
        assert tensor is not None
        cap, limit, before = self.max_bins, self.sample_limit, self._before
        # By the tensor's size, not the sample's: drawing a sample reads scattered
        # memory, and pages of a memory-mapped file.
        background = self._background(tensor.numel())
        self.jobs.cancel("histogram-quick")
        integral = not tensor.dtype.is_floating_point and not tensor.is_complex()
        if background and min(tensor.numel(), limit) > QUICK_SAMPLE:
            # A first look from a small sample in runs of neighbours: on a file that
            # is not in memory yet, each element of a uniform sample may cost a disk
            # read, each run only one.
            def quick(progress: Any = None) -> histograms.Histogram:
                values = histograms.plot_values(stats.sample_runs(tensor.detach(), QUICK_SAMPLE))
                samples = [values] if before is None else [before.sample, values]
                edges = histograms.bin_edges(samples, integral, cap)
                return histograms.Histogram(histograms.count_on(values, edges), edges, True)

            self.jobs.run("histogram-quick", quick, self._on_quick_histogram,
                          self._ignore_failure, background=True)

        def compute(progress: Any = None) -> tuple[histograms.Snapshot, histograms.Histogram,
                                                   histograms.Overlay | None]:
            snapshot = histograms.take_snapshot(tensor, limit, like=before, progress=progress)
            if before is None:
                return snapshot, histograms.histogram(snapshot, cap), None
            compared = histograms.overlay(before, snapshot, cap)
            shown = histograms.Histogram(compared.after, compared.edges, snapshot.sampled)
            return snapshot, shown, compared

        self.jobs.run("histogram", compute, self._on_histogram,
                      self._failed("histogram", self.histogram_view), background=background)

    def _ignore_failure(self, _message: str) -> None:
        """The quick look failed: the full histogram, still to come, reports the error."""

    def _on_quick_histogram(self, result: histograms.Histogram) -> None:
        if self.jobs.running("histogram"):  # the full histogram has not arrived yet
            before = None
            if self._before is not None:
                before = histograms.count_on(self._before.sample, result.edges)
            self._draw_histogram(result, before, None, QUICK_SAMPLE, quick=True)
            self.plotted.emit("histogram-quick")

    def _on_histogram(self, result: tuple[histograms.Snapshot, histograms.Histogram,
                                          histograms.Overlay | None]) -> None:
        snapshot, shown, compared = result
        self._snapshot = snapshot
        self._draw_histogram(shown, None if compared is None else compared.before, compared,
                             self.sample_limit)
        self.plotted.emit("histogram")

    def _draw_histogram(self, result: histograms.Histogram, before: torch.Tensor | None,
                        compared: histograms.Overlay | None, limit: int,
                        quick: bool = False) -> None:
        self.histogram_view.set_histogram(result.counts.numpy(), result.edges.numpy(),
                                          self._histogram_note(result, limit, quick))
        if before is None:
            self.histogram_view.set_before(None, None)
        else:
            self.histogram_view.set_before(before.numpy(), result.edges.numpy())
        assert self._tensor is not None
        self.histogram_view.set_changes(
            compared.summary(self._tensor.numel()) if compared is not None else
            "Comparing with before the last change…" if before is not None else "")

    def _histogram_note(self, result: histograms.Histogram, limit: int, quick: bool) -> str:
        assert self._tensor is not None
        numel = self._tensor.numel()
        counted = min(numel, limit)
        if quick:
            text = (f"Quick look: {counted:,} of {numel:,} elements, in runs of "
                    f"{stats.RUN_LENGTH} neighbours; a uniform sample follows")
        elif result.sampled:
            text = (f"Sampled: a uniform random sample of {counted:,} of {numel:,} "
                    "elements")
        else:
            text = f"All {numel:,} elements"
        left_out = counted - int(result.counts.sum())
        if left_out:
            text += f"; {left_out:,} NaN or infinite left out"
        text += f"; {len(result.counts)} bins"
        if self._before is not None:
            text += "; dashed: before the last change (same bins)"
        return text

    # heatmap
    def _on_matrix_changed(self) -> None:
        self._stale.add("heatmap")
        self._request_current()

    def _request_heatmap(self) -> None:
        tensor = self._tensor
        assert tensor is not None
        self._stale.discard("heatmap")
        mode, index = self.heatmap_view.matrix_choice()
        side = self.preview_side

        def compute(progress: Any = None) -> tuple[torch.Tensor, tuple[int, int],
                                                   tuple[int, int]]:
            # matrix_view may copy (reshaping a non-contiguous tensor): keep it here.
            matrix = stats.matrix_view(tensor, mode, index)
            image, scale = stats.heatmap_preview(matrix, side, progress=progress)
            return image, scale, tuple(matrix.shape)

        self.jobs.cancel("detail")
        self.jobs.run("heatmap", compute, self._on_heatmap,
                      self._failed("heatmap", self.heatmap_view),
                      background=self._background(tensor.numel()))

    def _on_heatmap(self, result: tuple[torch.Tensor, tuple[int, int], tuple[int, int]]) -> None:
        image, scale, matrix_shape = result
        assert self._tensor is not None
        shape = tuple(self._tensor.shape)
        mode, index = self.heatmap_view.matrix_choice()
        parts = [f"{matrix_shape[0]:,} × {matrix_shape[1]:,}"]
        if len(shape) > 2:
            if mode == "slice":
                where = ", ".join(str(i) for i in index) + ", :, :"
                parts.append(f"slice [{where}] of {shape_text(shape)}")
            else:
                parts.append(f"reshaped from {shape_text(shape)}")
        if scale != (1, 1):
            parts.append(f"preview: each pixel is the mean of a {scale[0]}×{scale[1]} block; "
                         "zoom in for detail")
        what = (self._name, mode, index)
        self.heatmap_view.set_image(image.numpy(), scale, matrix_shape, "; ".join(parts),
                                    keep_view=self._drawn.get("heatmap") == what)
        self._drawn["heatmap"] = what
        self.plotted.emit("heatmap")

    def _request_detail(self, top: int, bottom: int, left: int, right: int) -> None:
        tensor = self._tensor
        if tensor is None:
            return
        mode, index = self.heatmap_view.matrix_choice()
        side = self.preview_side

        def compute(progress: Any = None) -> tuple[torch.Tensor, tuple[int, int]]:
            region = stats.matrix_view(tensor, mode, index)[top:bottom, left:right]
            return stats.heatmap_preview(region, side, progress=progress)

        def done(result: tuple[torch.Tensor, tuple[int, int]]) -> None:
            image, scale = result
            self.heatmap_view.set_detail(image.numpy(), scale, top, left)
            self.plotted.emit("detail")

        self.jobs.run("detail", compute, done, self.status.setText,
                      background=self._background((bottom - top) * (right - left)))

    # filters
    def _on_filter_page_changed(self) -> None:
        self._stale.add("filters")
        self._request_current()

    def _request_filters(self) -> None:
        tensor = self._tensor
        assert tensor is not None
        self._stale.discard("filters")
        shape = tuple(tensor.shape)
        rows, columns = self.filter_view.page()
        page = tensor[rows, columns]  # a view: the grid reads only the kernels shown
        page_shape = tuple(page.shape)

        def compute(progress: Any = None) -> tuple[torch.Tensor, stats.GridLayout]:
            return stats.filter_grid(page), stats.filter_grid_layout(page_shape)

        what = (self._name, rows.start, columns.start)

        def done(result: tuple[torch.Tensor, stats.GridLayout]) -> None:
            image, grid = result
            self.filter_view.set_grid(image.numpy(), grid, shape,
                                      keep_view=self._drawn.get("filters") == what)
            self._drawn["filters"] = what
            self.plotted.emit("filters")

        grid = stats.filter_grid_layout(page_shape)
        shown = grid.filters * grid.channels * grid.kernel_height * grid.kernel_width
        self.jobs.run("filters", compute, done, self._failed("filter grid", self.filter_view),
                      background=self._background(shown))

    # overview
    def _refresh_overview(self) -> None:
        if self.tabs.currentWidget() is self.overview_view:
            self._request_overview()

    def _request_overview(self) -> None:
        session = self._session
        self._stale.discard("overview")
        if session is None:
            self.overview_view.clear("No document.")
            return
        measure, which = self.overview_view.options()
        try:
            # Resolved here, in the GUI thread; the worker only reads tensors.
            sources = stats.overview_sources(session, which)
            total = sum(numel(session.document.tensor_meta(name)[0]) for name, _ in sources)
        except TENSOR_ERRORS as error:
            self.overview_view.clear(f"Cannot compute the overview: {_first_line(error)}")
            return

        def compute(progress: Any = None) -> list[tuple[str, float]]:
            return stats.measure_tensors(sources, measure, progress=progress)

        def done(values: list[tuple[str, float]]) -> None:
            self._overview_drawn = True
            self.overview_view.set_values(values, measure)
            self.plotted.emit("overview")

        self.jobs.run("overview", compute, done, self._failed("overview", self.overview_view),
                      background=self._background(total))

    # ------------------------------------------------------------------ busy indicator
    def _on_busy_changed(self, busy: bool) -> None:
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(busy)

    def _on_progressed(self, fraction: float, _text: str) -> None:
        self.progress_bar.setValue(round(fraction * 1000))



def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
