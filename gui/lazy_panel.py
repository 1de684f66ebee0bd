"""A dock's content built on first use, so the window appears before pyqtgraph and torch load.

The plots and the training panel need pyqtgraph (about a second to import) and the
engine's training code; the window does not wait for them. Until something needs
the real panel, `LazyPanel` shows a line of text in its place; `ensure()` builds it
(once) and puts it there.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class LazyPanel(QWidget):
    """Holds the widget `factory()` makes, made the first time `ensure()` is called.

    Parameters
    ----------
    factory : builds the real widget (its parent is set when it is put in place)
    text : what is shown until then
    """

    def __init__(self, factory: Callable[[], QWidget], text: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self.widget: QWidget | None = None
        self._placeholder = QLabel(text, self)
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._placeholder)

    @property
    def built(self) -> bool:
        return self.widget is not None

    def ensure(self) -> QWidget:
        """The real widget, built now if it was not yet."""
        if self.widget is None:
            widget = self._factory()
            layout = self.layout()
            layout.removeWidget(self._placeholder)
            self._placeholder.deleteLater()
            widget.setParent(self)
            layout.addWidget(widget)
            self.widget = widget
        return self.widget
