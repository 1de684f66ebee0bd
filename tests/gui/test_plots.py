"""PlotPanel: histogram (sampled label, before/after), heatmap, filter grid, overview, lifetimes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPalette

from engine import stats
from engine.progress import Progress
from engine.session import Session
from gui.plots import PlotPanel
from gui.plots.jobs import Jobs
from tests.models import MLP, SmallCNN, seeded

WAIT_MS = 10_000


@pytest.fixture
def make_panel(qtbot):
    """Build a PlotPanel (options as keywords) that is closed after the test."""
    panels: list[PlotPanel] = []

    def make(**options) -> PlotPanel:
        panel = PlotPanel(**options)
        panel.resize(640, 480)
        qtbot.addWidget(panel)
        panel.show()
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.close()


def shown_histogram(panel: PlotPanel) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of the "after" curve."""
    edges, counts = panel.histogram_view.after_item.getData()
    assert edges is not None
    return edges, counts


def shown_before(panel: PlotPanel) -> tuple[np.ndarray, np.ndarray] | None:
    edges, counts = panel.histogram_view.before_item.getData()
    return None if edges is None or len(edges) == 0 else (edges, counts)


def legend_labels(panel: PlotPanel) -> list[str]:
    return [label.text for _, label in panel.histogram_view.legend.items]


def values_of(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().reshape(-1).numpy()


def auto_bins(values: np.ndarray, span: tuple[float, float] | None = None) -> int:
    """numpy's own 'auto' bin count (capped at 100): the oracle of the bin choice."""
    if span is None:
        return min(100, len(np.histogram_bin_edges(values, "auto")) - 1)
    return min(100, len(np.histogram_bin_edges(values, "auto", range=span)) - 1)


def assert_counts(counts: np.ndarray, values: np.ndarray, edges: np.ndarray) -> None:
    np.testing.assert_array_equal(counts, np.histogram(values, edges)[0])


# ---------------------------------------------------------------------- histogram
def test_showing_a_tensor_draws_its_histogram(make_panel):
    session = Session(seeded(MLP))
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("fc1.weight")
    edges, counts = shown_histogram(panel)
    values = values_of(session.document.tensor("fc1.weight"))
    assert len(counts) == auto_bins(values) < 20  # 48 elements get few bins, not 100
    assert edges[0] == values.min()
    assert edges[-1] == values.max()
    assert_counts(counts, values, edges)
    assert counts.sum() == 48
    assert panel.histogram_view.note.text().startswith("All 48 elements")
    assert f"; {len(counts)} bins" in panel.histogram_view.note.text()
    assert panel.histogram_view.changes.text() == ""
    assert "fc1.weight" in panel.title.text()
    assert "(8, 6)" in panel.title.text()
    assert shown_before(panel) is None
    assert legend_labels(panel) == []
    assert not panel.histogram_view.legend.isVisible()


def test_a_tensor_beyond_the_sample_limit_is_labelled_sampled(make_panel):
    session = Session(checkpoint={"big": torch.randn(300), "small": torch.randn(30)})
    panel = make_panel(sample_limit=100)
    panel.set_session(session)
    panel.show_tensor("big")
    assert shown_histogram(panel)[1].sum() == 100
    assert "Sampled" in panel.histogram_view.note.text()
    assert "100 of 300" in panel.histogram_view.note.text()
    panel.show_tensor("small")
    assert "Sampled" not in panel.histogram_view.note.text()


def test_an_edit_overlays_the_previous_histogram_and_undo_swaps_them(make_panel, qtbot):
    session = Session(seeded(MLP))
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("fc1.weight")
    original = values_of(session.document.tensor("fc1.weight"))

    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 3.0})
    assert panel.histogram_view.has_overlay
    edited = values_of(session.document.tensor("fc1.weight"))
    before = shown_before(panel)
    assert before is not None
    edges, counts = shown_histogram(panel)
    # One set of bins over both ranges, each histogram counted on it.
    np.testing.assert_array_equal(before[0], edges)
    assert edges[0] == min(original.min(), edited.min())
    assert edges[-1] == max(original.max(), edited.max())
    assert len(counts) == auto_bins(edited, (edges[0], edges[-1]))
    assert_counts(before[1], original, edges)
    assert_counts(counts, edited, edges)
    largest = np.abs(edited - original).max()
    assert panel.histogram_view.changes.text() == \
        f"Changed: 48 of 48 elements · largest change {largest:.6g}"
    assert legend_labels(panel) == ["before", "after"]
    assert panel.histogram_view.legend.isVisible()
    assert "before the last change" in panel.histogram_view.note.text()

    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        session.undo()
    edges, counts = shown_histogram(panel)
    assert_counts(counts, original, edges)
    assert_counts(shown_before(panel)[1], edited, edges)

    panel.show_tensor("fc2.weight")  # another tensor: no "before" of its own yet
    assert not panel.histogram_view.has_overlay
    assert legend_labels(panel) == []


def test_an_edit_of_another_tensor_leaves_the_plot_alone(make_panel, qtbot):
    session = Session(seeded(MLP))
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("fc1.weight")
    with qtbot.assertNotEmitted(panel.plotted, wait=100):
        session.apply({"op": "set", "target": "fc2.weight", "value": 0.0})
    assert not panel.histogram_view.has_overlay


def test_a_grouped_edit_redraws_once(make_panel, qtbot):
    session = Session(seeded(MLP))
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("fc1.weight")
    original = values_of(session.document.tensor("fc1.weight"))
    drawn: list[str] = []
    panel.plotted.connect(drawn.append)
    with session.group("two edits"):
        session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})
        session.apply({"op": "add", "targets": ["fc1.weight"], "value": 1.0})
    qtbot.waitUntil(lambda: drawn == ["histogram"], timeout=WAIT_MS)
    qtbot.wait(50)
    assert drawn == ["histogram"]
    assert_counts(shown_before(panel)[1], original, shown_histogram(panel)[0])


def test_a_replaced_module_is_redrawn_with_its_old_histogram_as_before(make_panel, qtbot):
    session = Session(seeded(MLP))
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("fc2.weight")
    original = values_of(session.document.tensor("fc2.weight"))
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        session.apply({"op": "replace", "target": "fc2",
                       "module": {"type": "Linear", "out_features": 7}, "seed": 1})
    assert "(7, 8)" in panel.title.text()
    assert shown_histogram(panel)[1].sum() == 56
    assert_counts(shown_before(panel)[1], original, shown_histogram(panel)[0])
    assert panel.histogram_view.changes.text() == "Shape changed: no element to compare"


def test_a_tensor_that_does_not_exist_gets_a_message(make_panel):
    panel = make_panel()
    panel.set_session(Session(seeded(MLP)))
    panel.show_tensor("fc9.weight")
    assert "Cannot plot 'fc9.weight'" in panel.histogram_view.note.text()
    edges, _ = panel.histogram_view.after_item.getData()
    assert edges is None or len(edges) == 0


# ---------------------------------------------------------------------- background work
def test_big_tensors_are_computed_in_the_background(make_panel, qtbot):
    session = Session(checkpoint={"a": torch.randn(5_000), "b": torch.randn(3_000) + 10})
    panel = make_panel(background_limit=100)
    panel.set_session(session)
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS) as blocker:
        panel.show_tensor("a")
        assert panel.busy  # not drawn yet: the work runs in a worker
    assert blocker.args == ["histogram"]
    assert shown_histogram(panel)[1].sum() == 5_000
    assert not panel.progress_bar.isVisible()


def test_a_big_tensor_gets_a_quick_look_then_the_full_sample(make_panel, qtbot):
    from gui.plots.panel import QUICK_SAMPLE

    session = Session(checkpoint={"big": torch.randn(100_000)})
    panel = make_panel(background_limit=100, sample_limit=2 * QUICK_SAMPLE)
    panel.set_session(session)
    drawn: list[str] = []
    quick_notes: list[str] = []
    panel.plotted.connect(drawn.append)
    panel.plotted.connect(lambda kind: quick_notes.append(panel.histogram_view.note.text())
                          if kind == "histogram-quick" else None)
    panel.show_tensor("big")
    qtbot.waitUntil(lambda: "histogram" in drawn, timeout=WAIT_MS)
    assert drawn == ["histogram-quick", "histogram"]
    assert quick_notes[0].startswith(f"Quick look: {QUICK_SAMPLE:,} of 100,000 elements")
    assert shown_histogram(panel)[1].sum() == 2 * QUICK_SAMPLE
    assert panel.histogram_view.note.text().startswith("Sampled")

    drawn.clear()
    session.apply({"op": "scale", "targets": ["big"], "value": 2.0})
    qtbot.waitUntil(lambda: "histogram" in drawn, timeout=WAIT_MS)
    assert shown_before(panel)[1].sum() == 2 * QUICK_SAMPLE  # the full one, not quick
    # 100,000 elements are copied whole: the change count is exact, not sampled.
    assert panel.histogram_view.changes.text().startswith("Changed: 100,000 of 100,000")


def test_a_newer_request_supersedes_an_older_one(make_panel, qtbot):
    session = Session(checkpoint={"a": torch.randn(5_000), "b": torch.randn(3_000) + 10})
    panel = make_panel(background_limit=100)
    panel.set_session(session)
    drawn: list[str] = []
    panel.plotted.connect(drawn.append)
    panel.show_tensor("a")
    panel.show_tensor("b")
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    qtbot.wait(50)
    assert drawn == ["histogram"]  # only b's: a's result was dropped
    edges, counts = shown_histogram(panel)
    assert counts.sum() == 3_000
    assert edges[0] > 5  # b's values are around 10


def test_a_superseded_job_never_delivers_even_when_it_ends_last(qtbot):
    jobs = Jobs()
    release = threading.Event()
    delivered: list[str] = []
    seen: list[Progress] = []

    def slow(progress) -> str:
        seen.append(progress)
        release.wait(WAIT_MS / 1000)  # ignores cancel: it ends whenever it ends
        return "old"

    jobs.run("histogram", slow, delivered.append, delivered.append, background=True)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)  # it runs
    with qtbot.waitSignal(jobs.busy_changed, timeout=WAIT_MS,
                          check_params_cb=lambda busy: not busy):
        jobs.run("histogram", lambda progress: "new", delivered.append, delivered.append,
                 background=True)
        assert seen[0].cancelled  # the old one was asked to stop
        release.set()
    qtbot.waitUntil(jobs.worker_idle, timeout=WAIT_MS)
    qtbot.wait(20)
    assert delivered == ["new"]
    jobs.shutdown()


def test_a_job_superseded_before_it_starts_never_runs(qtbot):
    jobs = Jobs()
    release = threading.Event()
    calls: list[str] = []
    delivered: list[str] = []

    def job(name: str):
        def run(progress) -> str:
            calls.append(name)
            if name == "blocker":
                release.wait(WAIT_MS / 1000)
            return name
        return run

    jobs.run("overview", job("blocker"), delivered.append, delivered.append, background=True)
    jobs.run("heatmap", job("first"), delivered.append, delivered.append, background=True)
    jobs.run("heatmap", job("second"), delivered.append, delivered.append, background=True)
    release.set()
    qtbot.waitUntil(lambda: not jobs.busy, timeout=WAIT_MS)
    assert calls == ["blocker", "second"]
    assert delivered == ["blocker", "second"]
    jobs.shutdown()


def test_a_failed_job_reports_one_line(qtbot):
    jobs = Jobs()
    failures: list[str] = []

    def broken(progress=None):
        raise ValueError("heatmap: index 9 out of range for dimension 0 of size 3\nmore")

    jobs.run("heatmap", broken, failures.append, failures.append, background=False)
    jobs.run("heatmap", broken, failures.append, failures.append, background=True)
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=WAIT_MS)
    assert failures == ["heatmap: index 9 out of range for dimension 0 of size 3"] * 2
    jobs.shutdown()


# ---------------------------------------------------------------------- heatmap
def test_a_matrix_heatmap_shows_its_preview(make_panel, qtbot):
    matrix = torch.randn(40, 90)
    panel = make_panel(preview_side=16)
    panel.set_session(Session(checkpoint={"m": matrix}))
    panel.show_tensor("m")
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.heatmap_view)
    expected, scale = stats.heatmap_preview(matrix, 16)
    image = panel.heatmap_view.image
    assert image.shape == tuple(expected.shape)
    np.testing.assert_array_equal(image, expected.numpy())
    item = panel.heatmap_view.image_item
    assert item.image.shape == image.shape
    rect = item.mapRectToParent(item.boundingRect())
    assert (rect.width(), rect.height()) == (image.shape[1] * scale[1], image.shape[0] * scale[0])
    assert "preview" in panel.heatmap_view.note.text()
    low, high = panel.heatmap_view.color_bar.levels()
    assert low == -high  # signed data: a colour scale centred on zero


def test_zooming_in_on_a_big_matrix_adds_a_finer_detail(make_panel, qtbot):
    matrix = torch.randn(64, 64)
    panel = make_panel(preview_side=8)
    panel.set_session(Session(checkpoint={"m": matrix}))
    panel.show_tensor("m")
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.heatmap_view)
    assert panel.heatmap_view.detail is None
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS, check_params_cb=lambda k: k == "detail"):
        panel.heatmap_view.plot.getPlotItem().setRange(xRange=(16, 24), yRange=(8, 16),
                                                        padding=0)
    image, scale, top, left = panel.heatmap_view.detail
    assert scale == (1, 1)  # the visible 8x8 region, one pixel per element
    r0, r1, c0, c1 = panel.heatmap_view.visible_region()
    assert (top, left) == (r0, c0)
    np.testing.assert_array_equal(image, matrix[r0:r1, c0:c1].numpy())
    assert "in view" in panel.heatmap_view.note.text()
    assert "exact values" in panel.heatmap_view.note.text()
    panel.heatmap_view.plot.getPlotItem().setRange(xRange=(0, 64), yRange=(0, 64), padding=0)
    qtbot.waitUntil(lambda: panel.heatmap_view.detail is None, timeout=WAIT_MS)
    assert "in view" not in panel.heatmap_view.note.text()


def test_an_edit_keeps_the_zoom_and_refreshes_the_detail(make_panel, qtbot):
    session = Session(checkpoint={"m": torch.randn(64, 64)})
    panel = make_panel(preview_side=8)
    panel.set_session(session)
    panel.show_tensor("m")
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.heatmap_view)
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS, check_params_cb=lambda k: k == "detail"):
        panel.heatmap_view.plot.getPlotItem().setRange(xRange=(16, 24), yRange=(8, 16),
                                                        padding=0)
    region = panel.heatmap_view.visible_region()
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS, check_params_cb=lambda k: k == "detail"):
        session.apply({"op": "scale", "targets": ["m"], "value": -1.0})
    assert panel.heatmap_view.visible_region() == region
    r0, r1, c0, c1 = region
    np.testing.assert_array_equal(panel.heatmap_view.detail[0],
                                  session.document.tensor("m")[r0:r1, c0:c1].numpy())

    panel.show_tensor("m")  # chosen anew (small: drawn at once), it is shown whole
    assert panel.heatmap_view.visible_region() == (0, 64, 0, 64)


def test_an_nd_tensor_can_be_reshaped_or_sliced(make_panel, qtbot):
    tensor = torch.randn(3, 4, 5)
    panel = make_panel()
    panel.set_session(Session(checkpoint={"t": tensor}))
    panel.show_tensor("t")
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.heatmap_view)
    np.testing.assert_array_equal(panel.heatmap_view.image, tensor.reshape(3, 20).numpy())
    assert panel.heatmap_view.controls.isVisibleTo(panel)
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.heatmap_view.set_matrix_choice("slice", (2,))
    np.testing.assert_array_equal(panel.heatmap_view.image, tensor[2].numpy())
    assert "slice [2, :, :]" in panel.heatmap_view.note.text()


def test_tabs_follow_the_rank(make_panel):
    panel = make_panel()
    panel.set_session(Session(seeded(SmallCNN)))
    visible = lambda view: panel.tabs.isTabVisible(panel.tabs.indexOf(view))  # noqa: E731
    panel.show_tensor("features.0.bias")
    assert not visible(panel.heatmap_view)
    assert not visible(panel.filter_view)
    panel.show_tensor("classifier.2.weight")
    assert visible(panel.heatmap_view)
    assert not visible(panel.filter_view)
    panel.show_tensor("features.3.weight")
    assert visible(panel.heatmap_view)
    assert visible(panel.filter_view)
    assert visible(panel.overview_view)


# ---------------------------------------------------------------------- filters
def test_a_conv_weight_shows_its_filter_grid(make_panel, qtbot):
    session = Session(seeded(SmallCNN))
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("features.3.weight")
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.filter_view)
    expected = stats.filter_grid(session.document.tensor("features.3.weight"))
    np.testing.assert_array_equal(panel.filter_view.image, expected.numpy())
    assert "6 filters of 4 channels" in panel.filter_view.note.text()
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        session.apply({"op": "set", "target": "features.3.weight", "value": 0.5})
    qtbot.waitUntil(lambda: np.nanmax(panel.filter_view.image) == 0.5, timeout=WAIT_MS)


def test_the_filter_grid_pages_through_filters_and_channels(make_panel, qtbot):
    weight = torch.randn(200, 40, 3, 3)
    session = Session(checkpoint={"conv.weight": weight})
    panel = make_panel()
    panel.set_session(session)
    panel.show_tensor("conv.weight")
    view = panel.filter_view
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(view)
    np.testing.assert_array_equal(view.image, stats.filter_grid(weight[:64, :16]).numpy())
    assert "showing filters 0–63 and channels 0–15" in view.note.text()
    assert view.filter_range.text() == "to 63 of 200"
    assert view.filter_start.isEnabled()
    assert view.filter_start.singleStep() == 64
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        view.set_page(192, 32)  # the last, partial page of each
    np.testing.assert_array_equal(view.image,
                                  stats.filter_grid(weight[192:200, 32:40]).numpy())
    assert "showing filters 192–199 and channels 32–39" in view.note.text()
    assert view.channel_range.text() == "to 39 of 40"
    # The readout names the weight's own filter and channel, not the page's.
    assert view.kernel_at(0, 0) == (192, 32, 0, 0)
    assert view.kernel_at(0, 4) == (192, 33, 0, 0)
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):  # arrows turn a page
        view.filter_start.stepDown()
    assert view.filter_start.value() == 128
    np.testing.assert_array_equal(view.image,
                                  stats.filter_grid(weight[128:192, 32:40]).numpy())


def test_a_small_conv_weight_needs_no_paging(make_panel, qtbot):
    panel = make_panel()
    panel.set_session(Session(seeded(SmallCNN)))
    panel.show_tensor("features.3.weight")
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.tabs.setCurrentWidget(panel.filter_view)
    assert not panel.filter_view.filter_start.isEnabled()
    assert not panel.filter_view.channel_start.isEnabled()
    assert "showing" not in panel.filter_view.note.text()


# ---------------------------------------------------------------------- overview
def test_the_overview_has_one_bar_per_layer_and_follows_edits(make_panel, qtbot):
    session = Session(seeded(SmallCNN))
    panel = make_panel()
    panel.set_session(session)
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.show_overview()
    expected = stats.layer_overview(session, "norm")
    view = panel.overview_view
    assert view.names == [name for name, _ in expected]
    np.testing.assert_allclose(view.values, [value for _, value in expected])
    assert len(view.bars.opts["width"]) == len(expected)

    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        view.set_options("std")
    np.testing.assert_allclose(view.values,
                               [value for _, value in stats.layer_overview(session, "std")])

    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        session.apply({"op": "set", "target": "features.0.weight", "value": 0.0})
    assert view.values[0] == 0.0
    assert "features.0.weight" in view.note.text()  # called out as zero
    marked_x, marked_y = view.marks.getData()
    zero_rows = [row for row, value in enumerate(view.values) if value == 0]
    assert 0 in zero_rows  # (BatchNorm weights, all ones, have std 0 too)
    assert list(marked_y) == zero_rows
    assert set(marked_x) == {0.0}
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        session.undo()
    assert view.values[0] > 0.0


def test_layer_names_are_thinned_out_rather_than_overlapped():
    from gui.plots.overview import NameAxis

    axis = NameAxis()
    axis.names = [f"layer.{i}" for i in range(80)]
    [(step, values)] = axis.tickValues(81.0, -2.0, 200.0)  # inverted, 2.4 px per bar
    assert step > 1
    assert values == list(range(0, 80, step))
    assert axis.tickStrings(values[:2], 1.0, step) == ["layer.0", f"layer.{step}"]
    [(step, values)] = axis.tickValues(-0.5, 9.5, 400.0)  # zoomed in: 40 px per bar
    assert (step, values) == (1, list(range(10)))


def test_a_deep_model_shows_as_many_bars_as_have_readable_names(make_panel, qtbot):
    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(60)])
    panel = make_panel()
    panel.set_session(Session(model))
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.show_overview()
    view = panel.overview_view
    assert len(view.names) == 60
    (_, _), (low, high) = view.plot.getPlotItem().getViewBox().viewRange()
    shown = round(high - low)
    assert 8 <= shown < 60
    assert shown <= view.rows_that_fit() + 1
    axis_height = view.name_axis.height()
    [(step, values)] = view.name_axis.tickValues(low, high, axis_height)
    assert step == 1  # every bar in view has its name
    assert len(values) >= shown - 1
    assert f"the first {view.rows_that_fit()} in view" in view.note.text()


def test_clicking_a_bar_asks_for_that_tensor(make_panel, qtbot):
    session = Session(seeded(SmallCNN))
    panel = make_panel()
    panel.set_session(session)
    with qtbot.waitSignal(panel.plotted, timeout=WAIT_MS):
        panel.show_overview()
    view = panel.overview_view
    view_box = view.plot.getPlotItem().getViewBox()
    scene_point = view_box.mapViewToScene(QPointF(float(view.values[2]) / 2, 2.0))
    widget_point = view.plot.mapFromScene(scene_point)
    with qtbot.waitSignal(panel.tensor_requested, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_point)
    assert blocker.args == [view.names[2]]


# ---------------------------------------------------------------------- lifetime
def test_switching_sessions_disconnects_from_the_old_one(make_panel, qtbot):
    first, second = Session(seeded(MLP)), Session(seeded(MLP, seed=1))
    listeners = len(first.events.tensors_changed)
    panel = make_panel()
    panel.set_session(first)
    assert len(first.events.tensors_changed) == listeners + 1
    panel.set_session(second)
    assert len(first.events.tensors_changed) == listeners
    assert panel.tensor_name is None
    panel.show_tensor("fc1.weight")
    with qtbot.assertNotEmitted(panel.plotted, wait=100):
        first.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})
    panel.close()
    assert len(second.events.tensors_changed) == listeners
    assert len(second.events.structure_changed) == 0


def test_closing_while_a_background_job_runs_stops_it(make_panel, qtbot):
    panel = make_panel(background_limit=10, preview_side=4)
    panel.set_session(Session(checkpoint={"m": torch.randn(600, 600)}))
    panel.show_tensor("m")
    panel.tabs.setCurrentWidget(panel.heatmap_view)
    assert panel.busy
    panel.close()
    assert not panel.busy
    assert panel.jobs.worker_idle()


def test_a_closed_panel_is_freed_with_its_last_reference(qtbot, capfd):
    """Delivered jobs let go of the panel, so a dropped panel is freed at once, not later
    by the cyclic garbage collector: a widget that collector frees is torn down
    half-cleared, and PySide printed "Slot 'PlotPanel::' not found." for each page its
    dying tab widget removed (four times in bench_plots.py)."""
    import gc
    import weakref

    panel = PlotPanel(background_limit=100, preview_side=16)
    panel.resize(640, 480)
    panel.show()
    panel.set_session(Session(checkpoint={"m": torch.randn(300, 300)}))
    drawn: list[str] = []
    panel.plotted.connect(drawn.append)
    panel.show_tensor("m")  # the histogram and the heatmap computed in the worker
    qtbot.waitUntil(lambda: "histogram" in drawn, timeout=WAIT_MS)
    panel.tabs.setCurrentWidget(panel.heatmap_view)
    qtbot.waitUntil(lambda: "heatmap" in drawn, timeout=WAIT_MS)
    panel.close()
    alive = weakref.ref(panel)
    gc.disable()
    try:
        del panel
        assert alive() is None, "something still holds the closed panel"
    finally:
        gc.enable()
    gc.collect()
    assert "not found" not in capfd.readouterr().err


def test_plots_follow_the_palette(make_panel):
    panel = make_panel()
    panel.set_session(Session(seeded(MLP)))
    panel.show_tensor("fc1.weight")
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(20, 20, 20))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(230, 230, 230))
    panel.setPalette(dark)
    plot = panel.histogram_view.plot
    assert plot.backgroundBrush().color() == QColor(20, 20, 20)
    axis = plot.getPlotItem().getAxis("bottom")
    assert axis.textPen().color() == QColor(230, 230, 230)


def test_a_panel_deleted_with_its_parent_stops_listening(qtbot):
    from PySide6.QtWidgets import QWidget
    from shiboken6 import delete

    session = Session(seeded(MLP))
    listeners = len(session.events.tensors_changed)
    parent = QWidget()
    panel = PlotPanel(parent)
    panel.set_session(session)
    panel.show_tensor("fc1.weight")
    delete(parent)  # a docked panel is deleted with its window, without a close
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})  # no error
    assert len(session.events.tensors_changed) == listeners


def test_a_meta_tensor_gets_a_message(make_panel):
    with torch.device("meta"):
        model = MLP()
    panel = make_panel()
    panel.set_session(Session(model))
    panel.show_tensor("fc1.weight")
    assert "meta device" in panel.histogram_view.note.text()
