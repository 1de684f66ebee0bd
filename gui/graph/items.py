"""The graphics items of the graph: boxes, frames and edges, drawn from the engine's Scene.

Items only paint what the engine laid out; they keep no state of their own beyond
their id, an overlay colour and whether they are highlighted. For frame rates on a
2,000-box graph, nothing repaints through Python while panning and zooming: a box is
cached as a pixmap, frames and edges are Qt's own path and text items (all edges in a
few paths), and edge labels show only when zoomed in.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from engine.graph.layout import Box, Route

#: below this scale no text is drawn; below LABEL_DETAIL no edge label; below
#: CACHE_DETAIL boxes are drawn from a cached pixmap
TEXT_DETAIL = 0.3
LABEL_DETAIL = 0.9
CACHE_DETAIL = 0.75
#: fill colours per box kind, light theme (dark themes darken them)
FILLS = {"op": "#e8f0fe", "input": "#e6f4ea", "parameter": "#fef7e0", "buffer": "#fce8e6",
         "constant": "#f1f3f4", "group": "#e8eaed"}


def theme_color(name: str, dark: bool) -> QColor:
    """A fill colour of FILLS, darkened for a dark palette."""
    color = QColor(FILLS.get(name, "#ffffff"))
    return color.darker(330) if dark else color


def is_dark(palette: QPalette) -> bool:
    """Whether the palette's window colour is dark."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


class BoxItem(QGraphicsItem):
    """A node or a closed group.

    Parameters
    ----------
    box : the engine's placed box
    title : the first line (op, name)
    subtitle : a second line (a group's type), or ""
    tooltip : the text shown on hover
    """

    def __init__(self, box: Box, title: str, subtitle: str, tooltip: str) -> None:
        super().__init__()
        self.item_id = box.id
        self.kind = box.kind
        self.title = title
        self.subtitle = subtitle
        self.overlay: QColor | None = None
        self.highlighted = False
        self.matched = False
        self._rect = QRectF(0, 0, box.width, box.height)
        self.setPos(box.x, box.y)
        self.setZValue(10 + box.depth)
        self.setToolTip(tooltip)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.cached = False

    def set_cached(self, cached: bool) -> None:
        """Paint once into a pixmap of the box's size and then only scale it (zoomed
        out: panning and zooming over 2,000 boxes makes no Python call per box), or
        paint every time (zoomed in: sharp text, and few boxes are in view)."""
        self.cached = cached
        self.refresh_cache()

    def refresh_cache(self) -> None:
        """Apply the cache mode again (after a resize, or after an export without it)."""
        self.setCacheMode(QGraphicsItem.CacheMode.ItemCoordinateCache if self.cached
                          else QGraphicsItem.CacheMode.NoCache)

    def place(self, box: Box) -> None:
        """Move and resize to `box` (after a relayout)."""
        if self._rect.size() != QRectF(0, 0, box.width, box.height).size():
            self.prepareGeometryChange()
            self._rect = QRectF(0, 0, box.width, box.height)
            self.refresh_cache()
        self.setPos(box.x, box.y)

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-3, -3, 3, 3)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        palette = widget.palette() if widget is not None else QPalette()
        dark = is_dark(palette)
        fill = self.overlay or theme_color(self.kind, dark)
        selected = self.isSelected()
        pen = QPen(palette.color(QPalette.ColorRole.Highlight) if selected or self.highlighted
                   else palette.color(QPalette.ColorRole.Mid), 2.5 if selected else
                   2.0 if self.highlighted else 1.0)
        if self.matched and not selected:
            pen = QPen(QColor("#f29900"), 2.0)
        painter.setPen(pen)
        painter.setBrush(QBrush(fill))
        radius = 9.0 if self.kind in ("parameter", "buffer", "constant") else 4.0
        painter.drawRoundedRect(self._rect, radius, radius)
        detail = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        if detail < TEXT_DETAIL:
            return
        text = _text_color(fill, palette)
        painter.setPen(text)
        font = painter.font()
        if self.subtitle:
            bold = QFont(font)
            bold.setBold(True)
            painter.setFont(bold)
            top = QRectF(self._rect.x() + 4, self._rect.y() + 3, self._rect.width() - 8,
                         self._rect.height() / 2 - 2)
            painter.drawText(top, Qt.AlignmentFlag.AlignCenter, _elided(painter, self.title,
                                                                        top.width()))
            painter.setFont(font)
            bottom = QRectF(top.x(), self._rect.height() / 2, top.width(),
                            self._rect.height() / 2 - 3)
            painter.drawText(bottom, Qt.AlignmentFlag.AlignCenter,
                             _elided(painter, self.subtitle, bottom.width()))
        else:
            painter.drawText(self._rect.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignCenter,
                             _elided(painter, self.title, self._rect.width() - 8))


class FrameItem(QGraphicsPathItem):
    """An open group: a dashed frame with its title, behind the boxes inside it.

    Drawn by Qt itself (a path and a text item), so a view of hundreds of frames makes
    no Python call when it repaints; only the title strip picks the mouse.
    """

    HEADER = 22.0

    def __init__(self, box: Box, title: str, tooltip: str, palette: QPalette) -> None:
        super().__init__()
        self.item_id = box.id
        self.kind = "frame"
        self.title = title
        self.highlighted = False
        self.overlay: QColor | None = None
        self.styled_selected = False
        self._palette = palette
        self._text = QGraphicsSimpleTextItem("▾ " + title, self)
        self._text.setBrush(palette.color(QPalette.ColorRole.Text))
        self._text.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(box.depth)
        self.setToolTip(tooltip)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.place(box)
        self.restyle()

    def place(self, box: Box) -> None:
        """Move and resize to `box` (after a relayout)."""
        self._rect = QRectF(0, 0, box.width, box.height)
        path = QPainterPath()
        path.addRoundedRect(self._rect, 6, 6)
        self.setPath(path)
        self.setPos(box.x, box.y)
        metrics = QFontMetricsF(self._text.font())
        self._text.setText(metrics.elidedText("▾ " + self.title, Qt.TextElideMode.ElideRight,
                                              box.width - 16))
        self._text.setPos(8, (self.HEADER - metrics.height()) / 2)

    def restyle(self) -> None:
        """Apply selection, highlight and overlay to the pen and fill."""
        palette = self._palette
        self.styled_selected = self.isSelected()
        selected = self.styled_selected or self.highlighted
        pen = QPen(palette.color(QPalette.ColorRole.Highlight) if selected
                   else palette.color(QPalette.ColorRole.Mid), 2.0 if selected else 1.0,
                   Qt.PenStyle.SolidLine if selected else Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        fill = QColor(self.overlay) if self.overlay is not None else \
            QColor(palette.color(QPalette.ColorRole.Base))
        fill.setAlpha(70 if self.overlay is not None else 150)
        self.setBrush(fill)

    def header_rect(self) -> QRectF:
        """The title strip: clicking it selects the group, double-clicking closes it."""
        return QRectF(0, 0, self._rect.width(), self.HEADER)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.header_rect())
        return path


class Edge:
    """One drawn edge: its boxes, the shape it carries, and its polyline."""

    __slots__ = ("head", "highlighted", "label", "points", "source", "target")

    def __init__(self, route: Route, label: str) -> None:
        self.source = route.source
        self.target = route.target
        self.label = label
        self.highlighted = False
        self.points = [QPointF(x, y) for x, y in route.points]
        self.head = _arrow_head(self.points[-2], self.points[-1])


class EdgeLayer:
    """Every edge of the graph as a few items drawn by Qt: one path for the lines, one
    for the arrow heads, the same two for highlighted edges, and the shape labels,
    which show only from LABEL_DETAIL zoom on (made when first needed)."""

    def __init__(self, scene: QGraphicsScene, palette: QPalette) -> None:
        self.scene = scene
        self.palette = palette
        self.edges: list[Edge] = []
        self._lines = self._path_item(QPalette.ColorRole.Dark, 1.0, 5)
        self._heads = self._path_item(QPalette.ColorRole.Dark, 1.0, 5, filled=True)
        self._hot_lines = self._path_item(QPalette.ColorRole.Highlight, 2.0, 6)
        self._hot_heads = self._path_item(QPalette.ColorRole.Highlight, 1.0, 6, filled=True)
        self._labels: list[QGraphicsSimpleTextItem] | None = None

    def _path_item(self, role: QPalette.ColorRole, width: float, z: float,
                   filled: bool = False) -> QGraphicsPathItem:
        item = QGraphicsPathItem()
        color = self.palette.color(role)
        pen = QPen(color, width)
        pen.setCosmetic(True)  # stays visible when zoomed out
        item.setPen(pen)
        if filled:
            item.setBrush(color)
        item.setZValue(z)
        item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.scene.addItem(item)
        return item

    def set_edges(self, edges: list[Edge]) -> None:
        """Draw these edges (replacing the previous ones)."""
        self.edges = edges
        if self._labels is not None:
            for text in self._labels:
                self.scene.removeItem(text)
            self._labels = None
        self._draw(False, self._lines, self._heads)
        self._draw(True, self._hot_lines, self._hot_heads)

    def items(self) -> list[QGraphicsItem]:
        """The items that draw the edges (for hiding them all)."""
        items: list[QGraphicsItem] = [self._lines, self._heads, self._hot_lines,
                                      self._hot_heads]
        return [*items, *(self._labels or [])]

    def refresh_highlight(self) -> None:
        """Redraw after `highlighted` flags changed."""
        self._draw(True, self._hot_lines, self._hot_heads)

    def _draw(self, hot: bool, lines: QGraphicsPathItem, heads: QGraphicsPathItem) -> None:
        line_path = QPainterPath()
        head_path = QPainterPath()
        for edge in self.edges:
            if edge.highlighted != hot:
                continue
            line_path.moveTo(edge.points[0])
            for point in edge.points[1:]:
                line_path.lineTo(point)
            head_path.addPolygon(edge.head)
            head_path.closeSubpath()
        lines.setPath(line_path)
        heads.setPath(head_path)

    def show_labels(self, shown: bool) -> None:
        """Show the shape labels (zoomed in) or hide them; made when first shown."""
        if shown and self._labels is None and self.edges:
            small = QFont()
            small.setPointSizeF(max(small.pointSizeF() * 0.8, 6.0))
            color = self.palette.color(QPalette.ColorRole.PlaceholderText)
            labels = []
            for edge in self.edges:
                if not edge.label:
                    continue
                text = QGraphicsSimpleTextItem(edge.label)
                text.setFont(small)
                text.setBrush(color)
                text.setZValue(7)
                text.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
                middle = QPainterPath(edge.points[0])
                for point in edge.points[1:]:
                    middle.lineTo(point)
                text.setPos(middle.pointAtPercent(0.5) + QPointF(4, -2))
                self.scene.addItem(text)  # top-level: Qt sorts a parent's children per paint
                labels.append(text)
            self._labels = labels
        if self._labels is not None:
            for text in self._labels:
                text.setVisible(shown)


def _arrow_head(before: QPointF, tip: QPointF) -> QPolygonF:
    dx, dy = tip.x() - before.x(), tip.y() - before.y()
    length = max((dx * dx + dy * dy) ** 0.5, 1e-6)
    ux, uy = dx / length, dy / length
    size = 6.0
    left = QPointF(tip.x() - ux * size - uy * size * 0.5, tip.y() - uy * size + ux * size * 0.5)
    right = QPointF(tip.x() - ux * size + uy * size * 0.5, tip.y() - uy * size - ux * size * 0.5)
    return QPolygonF([tip, left, right])


def _text_color(fill: QColor, palette: QPalette) -> QColor:
    if fill.alpha() < 128:
        return palette.color(QPalette.ColorRole.Text)
    return QColor("#202124") if fill.lightness() > 140 else QColor("#f1f3f4")


def _elided(painter: QPainter, text: str, width: float) -> str:
    return painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(width))
