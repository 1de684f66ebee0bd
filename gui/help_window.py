"""The Help menu's windows: the documentation (docs/ rendered offline) and the shortcuts.

`HelpWindow` shows the Markdown files of docs/ (and the README) in a QTextBrowser,
which renders Markdown itself: links between the documents are followed inside the
window, pictures are scaled to its width, and nothing is fetched from the network.
`ShortcutsDialog` lists every shortcut of the window's menus, read from the actions
themselves, so the list is always the one in force.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QImage, QKeySequence, QShortcut, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QListWidget,
    QMenu,
    QMenuBar,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: the documents of the help window, in the order listed (file names under docs/)
DOCUMENTS = (("The editor", "gui.md"), ("Edits and recipes", "recipes.md"),
             ("Files", "files.md"), ("Test training", "training.md"),
             ("inspect --json", "inspect.md"), ("Benchmarks", "benchmarks.md"))
#: keys that work without a menu entry (the tree's own, and the terminal's)
EXTRA_SHORTCUTS = (
    ("Module tree ▸ Copy Path", QKeySequence(QKeySequence.StandardKey.Copy).toString(
        QKeySequence.SequenceFormat.NativeText)),
    ("Module tree ▸ Expand All below the current row", "*"),
    ("Module tree ▸ Expand / collapse one row", "Right / Left"),
    ("Terminal that started the editor ▸ Quit (asks about unsaved changes)", "Ctrl+C"),
)


def document_path(name: str) -> Path:
    """The file of a document of the help window (README.md is at the top level)."""
    return ROOT / name if name == "README.md" else DOCS / name


class _Browser(QTextBrowser):
    """A QTextBrowser that scales pictures down to the width of the page."""

    def loadResource(self, kind: int, url: QUrl) -> object:
        if kind == QTextDocument.ResourceType.ImageResource.value:
            resolved = self.source().resolved(url) if url.isRelative() else url
            image = QImage(resolved.toLocalFile())
            if not image.isNull():
                width = max(self.viewport().width() - 40, 200)
                return image.scaledToWidth(width) if image.width() > width else image
        return super().loadResource(kind, url)


class HelpWindow(QWidget):
    """The documentation, offline: a list of documents and the chosen one rendered."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Weightsmith Help")
        self.setWindowFlag(Qt.WindowType.Window)
        self.contents = QListWidget(self)
        self.names: list[str] = []
        for title, name in (*DOCUMENTS, ("README", "README.md")):
            if document_path(name).is_file():
                self.contents.addItem(title)
                self.names.append(name)
        self.browser = _Browser(self)
        self.browser.setOpenLinks(True)
        self.browser.setOpenExternalLinks(True)  # web links go to the system's browser
        self.browser.setSearchPaths([str(DOCS), str(ROOT)])
        self.contents.currentRowChanged.connect(self._on_row)
        self.browser.sourceChanged.connect(self._on_source_changed)
        splitter = QSplitter(self)
        splitter.addWidget(self.contents)
        splitter.addWidget(self.browser)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([170, 730])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.resize(1000, 720)
        for keys in (QKeySequence(QKeySequence.StandardKey.Close), QKeySequence("Escape")):
            QShortcut(keys, self, self.close)
        if not self.names:
            self.browser.setMarkdown(f"The documentation was not found in `{DOCS}`. It is "
                                     "the docs/ folder of the Weightsmith repository.")

    def show_document(self, name: str, anchor: str = "") -> None:
        """Show docs/`name` (or README.md), scrolled to `anchor` when given."""
        path = document_path(name)
        if not path.is_file():
            self.browser.setMarkdown(f"`{path}` was not found.")
            return
        url = QUrl.fromLocalFile(str(path))
        if anchor:
            url.setFragment(anchor)
        self.browser.setSource(url, QTextDocument.ResourceType.MarkdownResource)

    def current_document(self) -> str:
        """The file name of the document shown ('' when none)."""
        source = self.browser.source()
        return Path(source.toLocalFile()).name if source.isLocalFile() else ""

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self.names) and self.current_document() != self.names[row]:
            self.show_document(self.names[row])

    def _on_source_changed(self, url: QUrl) -> None:
        name = Path(url.toLocalFile()).name if url.isLocalFile() else ""
        if name in self.names:
            self.contents.blockSignals(True)
            self.contents.setCurrentRow(self.names.index(name))
            self.contents.blockSignals(False)


def menu_shortcuts(menu_bar: QMenuBar) -> list[tuple[str, str]]:
    """("File ▸ Open…", "Ctrl+O") for every action of the menus that has a shortcut."""
    rows: list[tuple[str, str]] = []

    def walk(menu: QMenu, trail: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{trail} ▸ {_plain(action.text())}")
            elif action.shortcuts() and not action.isSeparator():
                keys = ", ".join(key.toString(QKeySequence.SequenceFormat.NativeText)
                                 for key in action.shortcuts())
                rows.append((f"{trail} ▸ {_menu_text(action)}", keys))

    for action in menu_bar.actions():
        if action.menu() is not None:
            walk(action.menu(), _plain(action.text()))
    return rows


def _plain(text: str) -> str:
    return text.replace("&", "")


#: the property of an action whose text changes (Undo Freeze features): the name to list
NAME_PROPERTY = "shortcut_name"


def _menu_text(action: QAction) -> str:
    name = action.property(NAME_PROPERTY)
    return _plain(str(name) if name else action.text())


class ShortcutsDialog(QDialog):
    """Every keyboard shortcut of the window: what it does and its keys."""

    def __init__(self, menu_bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.rows = [*menu_shortcuts(menu_bar), *EXTRA_SHORTCUTS]
        self.table = QTableWidget(len(self.rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (what, keys) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(what))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(620, 520)
