"""The graph's QGraphicsView: wheel zoom under the cursor, drag to pan, fit, a minimap.

Keyboard: arrows move the selection along the graph (Down: a reader of the selected
node, Up: what it reads, Left/Right: the neighbour on the same row), Enter or Space
opens or closes a group, + and - zoom, F (or 0) fits the graph to the view.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QWidget

#: zoom limits (scale of the view)
MIN_ZOOM = 0.05
MAX_ZOOM = 4.0
#: the minimap shows when the scene is larger than the view by this factor
MINIMAP_FROM = 1.5


class GraphView(QGraphicsView):
    """Pan, zoom and fit over a GraphScene; keys are passed to the panel.

    Signals
    -------
    key_navigation(str) : "up", "down", "left", "right", "toggle"
    zoomed(float) : the scale changed to this
    """

    key_navigation = Signal(str)
    zoomed = Signal(float)

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing |
                            QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        # Items are cheap to repaint, a full-scene index is not: update what changed.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.minimap = Minimap(self)
        self.horizontalScrollBar().valueChanged.connect(self.minimap.update)
        self.verticalScrollBar().valueChanged.connect(self.minimap.update)

    # ------------------------------------------------------------------ zoom
    def zoom(self) -> float:
        """The current scale (1.0: a layout unit is a pixel)."""
        return self.transform().m11()

    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        """Scale by `factor`, within MIN_ZOOM..MAX_ZOOM, keeping `anchor` in place."""
        target = min(max(self.zoom() * factor, MIN_ZOOM), MAX_ZOOM)
        factor = target / self.zoom()
        if anchor is not None:
            before = self.mapToScene(anchor)
            self.scale(factor, factor)
            after = self.mapToScene(anchor)
            delta = after - before
            self.translate(delta.x(), delta.y())
        else:
            self.scale(factor, factor)
        self.minimap.refresh()
        self.zoomed.emit(self.zoom())

    def fit(self) -> None:
        """Show the whole graph (not larger than 100%)."""
        rect = self.sceneRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > 1.0:
            self.resetTransform()
            self.centerOn(rect.center())
        self.minimap.refresh()
        self.zoomed.emit(self.zoom())

    def center_on_rect(self, rect: QRectF) -> None:
        """Scroll so that `rect` is in view, zooming in to make it readable if needed."""
        if self.zoom() < 0.6:
            self.zoom_by(0.8 / self.zoom())
        self.ensureVisible(rect, 60, 60)
        if not self.viewport().rect().contains(self.mapFromScene(rect.center())):
            self.centerOn(rect.center())
        self.minimap.refresh()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15 ** steps, event.position().toPoint())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        moves = {Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down", Qt.Key.Key_Left: "left",
                 Qt.Key.Key_Right: "right", Qt.Key.Key_Return: "toggle",
                 Qt.Key.Key_Enter: "toggle", Qt.Key.Key_Space: "toggle"}
        if key in moves:
            self.key_navigation.emit(moves[key])
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        elif key in (Qt.Key.Key_F, Qt.Key.Key_0):
            self.fit()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.minimap.refresh()


class Minimap(QWidget):
    """The whole scene, small, in the view's corner, with the visible part outlined.

    It paints an image of the scene made once per change of the drawing
    (`invalidate`), so panning and zooming cost one scaled image. Click or drag in it
    to move the main view there. It shows only when the scene is much larger than the
    view.
    """

    SIZE = 180

    def __init__(self, view: GraphView) -> None:
        super().__init__(view)
        self.main = view
        self.setFixedSize(self.SIZE, self.SIZE)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._image: QImage | None = None
        self._source = QRectF()
        self.hide()

    def invalidate(self) -> None:
        """The drawing changed: make the image again when next shown."""
        self._image = None
        self.refresh()

    def refresh(self) -> None:
        """Place the map in the corner and show it when the scene does not fit the view."""
        rect = self.main.sceneRect()
        visible = self.main.mapToScene(self.main.viewport().rect()).boundingRect()
        large = rect.width() > visible.width() * MINIMAP_FROM or \
            rect.height() > visible.height() * MINIMAP_FROM
        self.setVisible(bool(large) and not rect.isEmpty())
        if not self.isVisible():
            return
        corner = self.main.viewport().rect()
        self.move(corner.width() - self.SIZE - 8, corner.height() - self.SIZE - 8)
        self.update()

    def _target(self) -> QRectF:
        """Where the scene is drawn in the widget (aspect kept, centred)."""
        rect = self.main.sceneRect()
        scale = min((self.SIZE - 4) / max(rect.width(), 1), (self.SIZE - 4) / max(rect.height(), 1))
        width, height = rect.width() * scale, rect.height() * scale
        return QRectF((self.SIZE - width) / 2, (self.SIZE - height) / 2, width, height)

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(self.backgroundRole()))
        target = self._target()
        source = self.main.sceneRect()
        if self._image is None or self._source != source:
            image = QImage(max(int(target.width()), 1), max(int(target.height()), 1),
                           QImage.Format.Format_ARGB32_Premultiplied)
            image.fill(self.palette().color(self.backgroundRole()))
            image_painter = QPainter(image)
            image_painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self.main.scene().render(image_painter, QRectF(image.rect()), source)
            image_painter.end()
            self._image, self._source = image, source
        painter.drawImage(target, self._image)
        visible = self.main.mapToScene(self.main.viewport().rect()).boundingRect()
        scale = target.width() / max(source.width(), 1)
        outline = QRectF(target.x() + (visible.x() - source.x()) * scale,
                         target.y() + (visible.y() - source.y()) * scale,
                         visible.width() * scale, visible.height() * scale)
        painter.setPen(QPen(QColor("#1a73e8"), 1))
        painter.setBrush(QColor(26, 115, 232, 40))
        painter.drawRect(outline.intersected(target))
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._move_main(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._move_main(event.position())

    def _move_main(self, position: QPointF) -> None:
        target = self._target()
        source = self.main.sceneRect()
        scale = source.width() / max(target.width(), 1)
        self.main.centerOn(QPointF(source.x() + (position.x() - target.x()) * scale,
                                   source.y() + (position.y() - target.y()) * scale))
        self.update()
