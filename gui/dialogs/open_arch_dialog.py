"""Open Architecture: a searchable list of torchvision models, with optional weights.

Weights can be none (the architecture's seeded initial weights), a file, or the
model's published pretrained weights, taken from the torch hub cache when there
and downloaded (with progress and Cancel) otherwise. torchvision is imported in
the background, so the dialog opens at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QWidget,
)

from engine.arch import parse_arch_args

from ..workers import Task
from . import base
from .fields import FormDialog

if TYPE_CHECKING:
    from ..settings import Settings


def _load_names(progress: Any = None) -> list[str]:
    from engine.arch import torchvision_names

    return torchvision_names()


def ranked_matches(names: list[str], text: str) -> list[str]:
    """The names containing `text` (any case): the exact name first, then the names that
    start with it, then the others, each group in its original order."""
    wanted = text.lower().strip()
    if not wanted:
        return list(names)
    ranked = []
    for position, name in enumerate(names):
        lowered = name.lower()
        if wanted in lowered:
            rank = 0 if lowered == wanted else 1 if lowered.startswith(wanted) else 2
            ranked.append((rank, position, name))
    return [name for _, _, name in sorted(ranked)]


class OpenArchDialog(FormDialog):
    """Choose `torchvision:NAME`, keyword arguments and weights."""

    def __init__(self, parent: QWidget | None = None, settings: Settings | None = None) -> None:
        super().__init__("Open Architecture", parent)
        self.settings = settings
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search torchvision models")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.list = QListWidget(self)
        self.list.currentTextChanged.connect(self._on_model_changed)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        self.status = QLabel("Loading the list of models…", self)
        # The search first (it has the focus), then the list, then the arguments form.
        at = self.layout_.indexOf(self.form)
        self.layout_.insertWidget(at, self.search)
        self.layout_.insertWidget(at + 1, self.list, 1)
        self.layout_.insertWidget(at + 2, self.status)
        self.search.setFocus()
        self.args_edit = QLineEdit(self)
        self.args_edit.setPlaceholderText('keyword arguments as JSON, e.g. {"num_classes": 10}')
        self.form.addRow("Arguments:", self.args_edit)
        weights = QGroupBox("Weights", self)
        weights_form = QFormLayout(weights)
        self.no_weights = QRadioButton("None (seeded initial weights)", weights)
        self.file_weights = QRadioButton("From a file:", weights)
        self.pretrained_weights = QRadioButton("Published pretrained weights:", weights)
        group = QButtonGroup(self)
        for radio in (self.no_weights, self.file_weights, self.pretrained_weights):
            group.addButton(radio)
        self.no_weights.setChecked(True)
        self.file_edit = QLineEdit(self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(browse)
        self.pretrained_combo = QComboBox(self)
        self.pretrained_combo.currentTextChanged.connect(self._on_pretrained_changed)
        self.cache_label = QLabel(self)
        self.cache_label.setWordWrap(True)
        weights_form.addRow(self.no_weights)
        weights_form.addRow(self.file_weights, file_row)
        weights_form.addRow(self.pretrained_weights, self.pretrained_combo)
        weights_form.addRow(self.cache_label)
        self.layout_.addWidget(weights)
        self.finish_layout()
        self.resize(520, 620)
        self._names: list[str] = []
        # No Qt parent: the thread may outlive the dialog, and must find its Task alive.
        self._task = Task(_load_names, name="models")
        self._task.succeeded.connect(self._on_names)
        self._task.failed.connect(lambda message: self.status.setText(message))
        self._task.start()

    def wait_for_names(self, timeout: float = 60.0) -> None:
        """Block until the list is loaded (for tests; the GUI never needs this)."""
        self._task.wait(timeout)

    def _on_names(self, names: list[str]) -> None:
        self._names = list(names)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        """Show the names matching `text`, best first, and choose the best one."""
        if not self._names:
            return  # still loading: the status says so
        shown = ranked_matches(self._names, text)
        current = self.model_name()
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems(shown)
        self.list.blockSignals(False)
        if text.strip() or current not in shown:
            current = shown[0] if shown else ""
        if current:
            self.list.setCurrentRow(shown.index(current))
        else:
            self._on_model_changed("")
        total = len(self._names)
        self.status.setText(f"{total} models" if len(shown) == total
                            else f"{len(shown)} of {total} models")

    def _on_model_changed(self, name: str) -> None:
        from ..pretrained import weight_choices

        self.pretrained_combo.clear()
        choices = weight_choices(name) if name else []
        self.pretrained_combo.addItems(choices)
        self.pretrained_weights.setEnabled(bool(choices))
        if not choices and self.pretrained_weights.isChecked():
            self.no_weights.setChecked(True)
        self._on_pretrained_changed(self.pretrained_combo.currentText())

    def _on_pretrained_changed(self, weights_name: str) -> None:
        from engine.errors import FileError

        from ..pretrained import describe

        name = self.model_name()
        if not name or not weights_name:
            self.cache_label.setText("")
            return
        try:
            where = describe(name, weights_name)
        except FileError as error:
            self.cache_label.setText(str(error))
            return
        self.cache_label.setText(("In the local cache: " if where["cached"] else
                                  "Not cached: will be downloaded to ") + where["path"])

    def _browse(self) -> None:
        folder = self.settings.last_folder("open") if self.settings is not None else ""
        path = base.choose_open_path(self, "Weights File", folder,
                                     "Weights (*.safetensors *.pt *.pth *.bin *.ckpt);;"
                                     "All files (*)")
        if path:
            self.file_edit.setText(path)
            self.file_weights.setChecked(True)

    def model_name(self) -> str:
        item = self.list.currentItem()
        return item.text() if item is not None else ""

    def shown_names(self) -> list[str]:
        """The names listed now, in their order."""
        return [self.list.item(row).text() for row in range(self.list.count())]

    def choose(self, name: str, weights: str | None = None, pretrained: str | None = None,
               arch_args: str = "") -> None:
        """Pick a model, and weights from a file or published ones (for tests)."""
        self.search.setText(name)
        shown = self.shown_names()
        if name in shown:
            self.list.setCurrentRow(shown.index(name))
        self.args_edit.setText(arch_args)
        if weights:
            self.file_edit.setText(weights)
            self.file_weights.setChecked(True)
        elif pretrained:
            self.pretrained_combo.setCurrentText(pretrained)
            self.pretrained_weights.setChecked(True)

    def check(self) -> None:
        self.choice()

    def choice(self) -> dict[str, Any]:
        """{"arch", "arch_args", and "weights" (a file) or "pretrained" (a weights name)}."""
        name = self.model_name()
        if not name:
            raise ValueError("Choose a model from the list" if self._names else
                             "The list of models is still loading")
        result: dict[str, Any] = {"arch": f"torchvision:{name}", "arch_args": None}
        text = self.args_edit.text().strip()
        if text:
            try:
                result["arch_args"] = parse_arch_args(text)
            except ValueError as error:
                raise ValueError(f"Arguments: {error}") from None
        if self.file_weights.isChecked():
            path = self.file_edit.text().strip()
            if not path:
                raise ValueError("Weights: choose a file, or choose no weights")
            result["weights"] = path
        elif self.pretrained_weights.isChecked():
            if not self.pretrained_combo.currentText():
                raise ValueError(f"Weights: torchvision publishes none for {name}")
            result["pretrained"] = self.pretrained_combo.currentText()
        return result

    def done(self, result: int) -> None:
        self._task.cancel()
        super().done(result)
