"""The File menu: open (file, folder, architecture, demo, recent), save, export, compare.

Every read and write of a document file runs in a background Task (progress and
Cancel in the status bar); the window stays responsive. Opening asks first what
a file needs: trust for a file that would run code (the dialog lists what it
imports), and which state dict to use when a checkpoint nests several.

Every document is opened through an *open request* (see `engine.opening`), which
the crash journal records so that unsaved edits can be replayed after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from engine.collection import collection_paused
from engine.errors import EditError, WeightsmithError
from engine.io.atomic import atomic_write_bytes
from engine.journal import JournalEntry, describe_request, restore

from .deploy_export import DeployExport
from .dialogs import base

if TYPE_CHECKING:
    from engine.tree import TreeIndex

    from .main_window import MainWindow

CHECKPOINT_FILTERS = ("Checkpoints (*.safetensors *.pt *.pth *.bin *.ckpt *.json);;"
                      "All files (*)")


def open_and_index(request: dict[str, Any], progress: Any = None) -> tuple[Any, TreeIndex]:
    """Open a document and build its tree's top level, both in the worker thread.

    The first open of a run also imports torch and the engine here, off the GUI thread,
    while the window is already on screen.
    """
    from engine.opening import open_request
    from engine.tree import TreeIndex

    # A full collection triggered by the worker's allocations would scan every object of
    # the process holding the GIL (half a second with 100,000 tensors) and freeze the GUI
    # thread; the main window freezes big documents out of later collections.
    with collection_paused():
        session = open_request(request, progress)
        return session, TreeIndex(session).warm()


def probe_file(path: str, trust: bool = False, progress: Any = None) -> dict[str, Any]:
    """What opening `path` needs: trust (and the globals it would import), and the nested
    state dicts to choose from. Runs in a worker thread; reads, never unpickles unsafely."""
    from engine.io.opening import inspect_candidates, needs_trust

    result: dict[str, Any] = {"needs_trust": False, "globals": [], "undetermined": None,
                              "candidates": [""]}
    if not trust and needs_trust(path):
        from engine.io.formats import detect
        from engine.io.trust import code_listing

        listing = code_listing(detect(path).path)
        result["needs_trust"] = True
        result["globals"] = listing.unsafe
        # A list that cannot be completed is never offered for trust (the dialog says so).
        result["undetermined"] = listing.undetermined
        return result
    result["candidates"] = inspect_candidates(path, trust=trust)
    return result


class FileActions(QObject):
    """The File menu's actions for one main window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        style = window.style()
        self.open_action = self._action(
            "Open…", self.choose_and_open, QKeySequence.StandardKey.Open,
            style.standardIcon(style.StandardPixmap.SP_DialogOpenButton), "Open a checkpoint file")
        self.open_folder_action = self._action("Open Folder…", self.choose_and_open_folder,
                                               tip="Open a folder (Hugging Face layout or shards)")
        self.open_arch_action = self._action("Open Architecture…", self.choose_architecture,
                                             tip="Build a torchvision model, with optional weights")
        self.open_arch_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_demo_action = self._action("Open Demo", self.open_demo,
                                             tip="The built-in digits CNN")
        self.recent_menu = QMenu("Open Recent", window)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.save_action = self._action(
            "Save", self.save, QKeySequence.StandardKey.Save,
            style.standardIcon(style.StandardPixmap.SP_DialogSaveButton), "Save the document")
        self.save_as_action = self._action("Save As…", self.save_as,
                                           QKeySequence.StandardKey.SaveAs,
                                           tip="Save in another place, format or sharding")
        self.export_recipe_action = self._action("Export Recipe…", self.export_recipe,
                                                 tip="The applied edits as a JSON recipe")
        self.export_script_action = self._action("Export Python Script…", self.export_script,
                                                 tip="A plain PyTorch script that makes the "
                                                     "same edits")
        self.deploy_export = DeployExport(window)
        self.export_deploy_action = self.deploy_export.action
        self.compare_action = self._action("Compare With File…", self.compare_with_file,
                                           tip="Differences between the document and a file")
        self.quit_action = self._action("Quit", window.close, QKeySequence.StandardKey.Quit)

    def _action(self, text: str, slot: Callable[[], Any],
                shortcut: QKeySequence.StandardKey | None = None, action_icon: Any = None,
                tip: str = "") -> QAction:
        action = QAction(text, self.window)
        action.triggered.connect(lambda checked=False: slot())
        if shortcut is not None:
            action.setShortcut(shortcut)
        if action_icon is not None:
            action.setIcon(action_icon)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        return action

    def fill_menu(self, menu: QMenu) -> None:
        for action in (self.open_action, self.open_folder_action, self.open_arch_action,
                       self.open_demo_action):
            menu.addAction(action)
        menu.addMenu(self.recent_menu)
        menu.addSeparator()
        menu.addAction(self.save_action)
        menu.addAction(self.save_as_action)
        menu.addSeparator()
        menu.addAction(self.export_recipe_action)
        menu.addAction(self.export_script_action)
        menu.addAction(self.export_deploy_action)
        menu.addAction(self.compare_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)

    def fill_toolbar(self, toolbar: QToolBar) -> None:
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.save_action)

    def update_enabled(self) -> None:
        """Enable what makes sense for the current document."""
        session = self.window.session
        has = session is not None
        for action in (self.save_action, self.save_as_action, self.export_recipe_action,
                       self.compare_action):
            action.setEnabled(has)
        self.export_script_action.setEnabled(has and session.document.has_modules)
        self.deploy_export.update_enabled()

    # ------------------------------------------------------------------ opening
    def _busy(self) -> bool:
        if self.window.tasks.busy:
            self.window.show_error(f"Please wait: {self.window.tasks.task.name} is still "
                                   "running (or cancel it).")
            return True
        return False

    def choose_and_open(self) -> None:
        """Ask for a checkpoint file and open it."""
        path = base.choose_open_path(self.window, "Open Checkpoint",
                                     self.window.settings.last_folder("open"), CHECKPOINT_FILTERS)
        if path:
            self.open_path(path)

    def choose_and_open_folder(self) -> None:
        """Ask for a folder (Hugging Face layout, shards) and open it."""
        path = base.choose_open_path(self.window, "Open Folder",
                                     self.window.settings.last_folder("open"), "", directory=True)
        if path:
            self.open_path(path)

    def choose_architecture(self) -> None:
        """Ask for an architecture (and weights) and open it."""
        from .dialogs.open_arch_dialog import OpenArchDialog

        dialog = OpenArchDialog(self.window, self.window.settings)
        if not base.run_dialog(dialog):
            return
        choice = dialog.choice()
        if choice.get("pretrained"):
            self._open_pretrained(choice)
        elif choice.get("weights"):
            self.open_path(choice["weights"], arch=choice["arch"],
                           arch_args=choice.get("arch_args"))
        else:
            self.open_request({"kind": "arch", "arch": choice["arch"],
                               "arch_args": choice.get("arch_args"), "weights": None})

    def _open_pretrained(self, choice: dict[str, Any]) -> None:
        from .pretrained import fetch_weights

        if not self.confirm_discard(lambda: self._open_pretrained(choice)) or self._busy():
            return
        name = choice["arch"].partition(":")[2]

        def fetched(path: Any) -> None:
            self.open_path(str(path), arch=choice["arch"], arch_args=choice.get("arch_args"),
                           confirmed=True)

        self.window.tasks.run(fetch_weights, name, choice["pretrained"], name="download",
                              text=f"Getting {choice['pretrained']} weights…",
                              on_success=fetched, on_failure=self.window.show_error)

    def open_demo(self) -> None:
        """Open the built-in demo model."""
        self.open_request({"kind": "demo"})

    def open_path(self, path: str, arch: str | None = None,
                  arch_args: dict[str, Any] | None = None, confirmed: bool = False) -> None:
        """Open a file or folder: ask for trust and a nested state dict when needed.

        A Hugging Face model folder (or its weights file) is offered in model mode at
        once, with the architecture its config.json names.
        """
        if not confirmed and not self.confirm_discard(
                lambda: self.open_path(path, arch, arch_args, True)):
            return
        if self._busy():
            return
        path = str(Path(path).expanduser())
        options: dict[str, Any] = {}
        if arch is None:
            path, arch, options = self._offer_hf_model(path)
        # An architecture that runs code (a folder's own Python files, a .py model) is
        # built only after the trust dialog listed exactly those files.
        code_trusted = False
        if arch is not None:
            from engine.code_needs import arch_code

            folder = Path(path) if Path(path).is_dir() else Path(path).parent
            code = arch_code(arch, arch_args, folder=folder)
            if code:
                from .dialogs.trust_dialog import TrustDialog

                if not base.run_dialog(TrustDialog(path, code, self.window,
                                                   subject=f"Opening {Path(path).name}")):
                    self.window.statusBar().showMessage("Not opened: not trusted", 5000)
                    return
                code_trusted = True

        def probed(result: dict[str, Any], trust: bool = False) -> None:
            if result["needs_trust"]:
                from .dialogs.trust_dialog import TrustDialog

                if not base.run_dialog(TrustDialog(path, result["globals"], self.window,
                                                   undetermined=result["undetermined"])):
                    self.window.statusBar().showMessage("Not opened: not trusted", 5000)
                    return
                self.window.tasks.run(probe_file, path, True, name="inspect",
                                      text=f"Reading {Path(path).name}…",
                                      on_success=lambda again: probed(again, True),
                                      on_failure=self.window.show_error)
                return
            choice = None
            candidates = result["candidates"]
            if len(candidates) > 1:
                from .dialogs.nested_picker import NestedPicker

                picker = NestedPicker(path, candidates, self.window)
                if not base.run_dialog(picker):
                    return
                choice = picker.choice()
            request_options = dict(options)
            if choice is not None:
                request_options["choice"] = choice
            request = {"kind": "file", "path": path, "arch": arch, "arch_args": arch_args,
                       "trust": trust or code_trusted, "options": request_options}
            self.open_request(request, confirmed=True)

        self.window.tasks.run(probe_file, path, name="inspect",
                              text=f"Reading {Path(path).name}…", on_success=probed,
                              on_failure=self.window.show_error)

    def _offer_hf_model(self, path: str) -> tuple[str, str | None, dict[str, Any]]:
        """Ask whether a Hugging Face model folder opens as its model (one step).

        Returns the path to open, the architecture (`hf` or None) and open options.
        The model is opened with strict off: what transformers' `from_pretrained` ignores
        is ignored, and anything else that does not fit is shown after opening.
        """
        from engine.io.hf_folder import HF_SPEC, model_folder

        found = model_folder(path)
        if found is None or not found["transformers"]:
            return path, None, {}
        what = found["architecture"] or f"{found['model_type']} model (AutoModel)"
        name = Path(found["folder"]).name
        if not base.ask(self.window, "Open Hugging Face Model",
                        f"{name} is a Hugging Face model: its config.json describes a {what}. "
                        f"Open it as that model (model mode: modules, module edits, test "
                        f"training), or its tensors only (checkpoint mode)?",
                        f"Open as {found['architecture'] or 'Model'}", "Tensors Only"):
            return path, None, {}
        return found["folder"], HF_SPEC, {"strict": False}

    def _report_load(self, session: Any) -> None:
        """After opening with an architecture: say what was ignored, and show what did not
        fit (strict was off) so that nothing is left out silently."""
        from engine.io.fill import report_notes, report_problems

        load_report = session.source.get("load_report")
        if not load_report:
            return
        problems = report_problems(load_report)
        notes = report_notes(load_report)
        if problems:
            base.show_info(self.window, "Opened with differences",
                           "Opened in model mode; some tensors did not fit the architecture "
                           "(missing ones keep their initial values):\n"
                           + "\n".join(f"• {problem}" for problem in problems),
                           "\n".join(notes))
        elif notes:
            self.window.statusBar().showMessage("; ".join(notes), 10000)

    def open_request(self, request: dict[str, Any], confirmed: bool = False) -> None:
        """Open the document `request` describes, in the background."""
        if not confirmed and not self.confirm_discard(
                lambda: self.open_request(request, True)):
            return
        if self._busy():
            return

        def opened(result: tuple[Any, TreeIndex]) -> None:
            session, tree = result
            path = request.get("path") if request.get("kind") == "file" else None
            self.window.set_session(session, request, path, tree)
            if path:
                self.window.settings.add_recent_file(path)
                self.window.settings.set_last_folder("open", path)
            self.window.statusBar().showMessage(f"Opened {describe_request(request)}", 5000)
            self._report_load(session)

        self.window.tasks.run(open_and_index, request, name="open",
                              text=f"Opening {describe_request(request)}…", on_success=opened,
                              on_failure=self.window.show_error,
                              on_cancel=lambda: self.window.statusBar().showMessage(
                                  "Opening cancelled", 5000))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.window.settings.recent_files()
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, path=path: self._open_recent(path))
        if not files:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear Recent Files")
        clear.triggered.connect(self.window.settings.clear_recent_files)
        clear.setEnabled(bool(files))

    def _open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.window.settings.remove_recent_file(path)
            self.window.show_error(f"{path}: no longer exists (removed from the recent files)")
            return
        self.open_path(path)

    # ------------------------------------------------------------------ crash journal
    def restore_journal(self, entry: JournalEntry) -> None:
        """Rebuild the unsaved edits of a crashed session and show what was restored."""
        from engine.journal import journal_code

        allow_trust = False
        code = journal_code(entry)
        if code:
            from .dialogs.trust_dialog import TrustDialog

            allow_trust = base.run_dialog(TrustDialog(
                "", code, self.window, subject=f"Restoring the unsaved edits to {entry.title}",
                action="Trust and Restore"))

        def restored(result: tuple[Any, dict[str, Any], list[str]]) -> None:
            session, request, labels = result
            path = request.get("path") if request.get("kind") == "file" else None
            self.window.set_session(session, request, path)
            entry.discard()
            listed = "\n".join(f"• {label}" for label in labels)
            base.show_info(self.window, "Unsaved edits restored",
                           f"Restored {len(labels)} unsaved edit(s) to "
                           f"{describe_request(request)}:\n{listed}")

        def failed(message: str) -> None:
            self.window.show_error(message)

        def job(progress: Any = None) -> Any:
            with collection_paused():
                return restore(entry, progress, allow_trust=allow_trust)

        self.window.tasks.run(job,
                              name="restore", text="Restoring unsaved edits…",
                              on_success=restored, on_failure=failed)

    # ------------------------------------------------------------------ saving
    def confirm_discard(self, continuation: Callable[[], Any]) -> bool:
        """Whether the current document may be closed now.

        With unsaved changes, asks: Save (then `continuation` runs after the save
        succeeds, and False is returned now), Discard (True), or Cancel (False).
        """
        session = self.window.session
        if session is None or not session.is_modified:
            return True
        answer = base.ask_save_changes(self.window, self.window.document_name())
        if answer == "discard":
            session.mark_saved()  # the user chose to lose them: no prompt, no journal
            return True
        if answer == "save":
            self.save(then=continuation)
        return False

    def save(self, then: Callable[[], Any] | None = None) -> None:
        """Save to the document's file, or ask where when it has none."""
        if self.window.session is None:
            return
        path = self.window.document_path
        if path is None or self._saved_format_lost(path):
            self.save_as(then=then)
            return
        self.save_to(path, {}, then=then)

    def _saved_format_lost(self, path: str) -> bool:
        source = self.window.session.source if self.window.session is not None else {}
        return bool(source.get("whole_model")) and not path.endswith((".pt", ".pth"))

    def save_as(self, then: Callable[[], Any] | None = None) -> None:
        """Ask for a place, format and sharding, then save there."""
        from .dialogs.save_dialog import SaveDialog

        session = self.window.session
        if session is None:
            return
        dialog = SaveDialog(session, self.window.settings.last_folder("save"),
                            self.window.document_path, self.window)
        if not base.run_dialog(dialog):
            return
        self.save_to(dialog.path(), dialog.options(), then=then)

    def save_to(self, path: str, options: dict[str, Any],
                then: Callable[[], Any] | None = None) -> None:
        """Write the document to `path` in the background; edits wait until it is done."""
        session = self.window.session
        if session is None or self._busy():
            return
        if not self._confirm_large_output(session, path, options):
            return

        def job(progress: Any = None) -> Any:
            with session.busy("saving"):
                # mark_saved=False: marking emits events, which must run in the GUI thread.
                return session.save(path, progress=progress, mark_saved=False, **options)

        def saved(result: dict[str, Any]) -> None:
            if self.window.session is not session:
                return
            session.source["saved_path"] = str(path)
            session.mark_saved()
            self.window.document_path = str(result.get("path", path))
            self.window.journal.saved(self._request_for(str(path)), session)
            self.window.settings.add_recent_file(str(path))
            self.window.settings.set_last_folder("save", str(path))
            self.window._update_title()
            notes = result.get("notes") or []
            message = f"Saved {Path(path).name}"
            if result.get("ties"):
                from engine.io.file_ties import describe_ties  # torch: not at window build

                message += f" (ties: {describe_ties(result['ties'])})"
            self.window.statusBar().showMessage(message + ("; " + "; ".join(notes)
                                                           if notes else ""), 10000)
            if notes:
                base.show_info(self.window, "Saved", message, "\n".join(notes))
            if then is not None:
                then()

        self.window.tasks.run(job, name="save", text=f"Saving {Path(path).name}…",
                              on_success=saved, on_failure=self.window.show_error,
                              on_cancel=lambda: self.window.statusBar().showMessage(
                                  "Save cancelled; the old file is unchanged", 5000))

    def _confirm_large_output(self, session: Any, path: str, options: dict[str, Any]) -> bool:
        """Ask before writing a file far bigger than what the document stores (a broadcast
        view written dense); say yes by adding `allow_large_output` to `options`."""
        from engine.io.saving import large_output

        try:
            growth = large_output(session.document, path, **options)
        except WeightsmithError:
            return True  # the save itself reports the problem in one line
        if growth is None:
            return True
        if not base.ask(self.window, "Save", f"Saving {Path(path).name} {growth.message()}. "
                        "Write it anyway?", "Write", "Cancel"):
            self.window.statusBar().showMessage("Not saved", 5000)
            return False
        options["allow_large_output"] = True
        return True

    def _request_for(self, path: str) -> dict[str, Any]:
        session = self.window.session
        assert session is not None
        # Only a model's source names an architecture (a checkpoint's never does).
        return {"kind": "file", "path": path, "arch": session.source.get("arch"),
                "arch_args": session.source.get("arch_args"), "trust": False, "options": {}}

    # ------------------------------------------------------------------ exports
    def export_recipe(self) -> None:
        """Write the applied edits as a recipe file."""
        from engine.recipe import write_recipe

        session = self.window.session
        if session is None:
            return
        path = base.choose_save_path(self.window, "Export Recipe",
                                     self.window.settings.last_folder("recipe"),
                                     "Recipes (*.json);;All files (*)")
        if not path:
            return
        try:
            write_recipe(path, session.recipe(), source=session.source or None)
        except WeightsmithError as error:
            self.window.show_error(str(error))
            return
        self.window.settings.set_last_folder("recipe", path)
        self.window.statusBar().showMessage(f"Wrote {len(session.recipe())} edit(s) to "
                                            f"{Path(path).name}", 5000)

    def export_script(self) -> None:
        """Write a plain PyTorch script that makes the same edits."""
        from engine.script_export import export_script

        session = self.window.session
        if session is None:
            return
        try:
            text = export_script(session, training=self._training_settings())
        except EditError as error:
            self.window.show_error(str(error))
            return
        path = base.choose_save_path(self.window, "Export Python Script",
                                     self.window.settings.last_folder("recipe"),
                                     "Python (*.py);;All files (*)")
        if not path:
            return
        try:
            atomic_write_bytes(path, text.encode("utf-8"))
        except (OSError, WeightsmithError) as error:
            self.window.show_error(f"{path}: could not be written ({error})")
            return
        self.window.statusBar().showMessage(f"Wrote {Path(path).name}", 5000)

    def _training_settings(self) -> dict[str, Any] | None:
        """The training panel's settings (its optimizer and per-group learning rates go
        into the script's make_optimizer), or None when the panel cannot say them."""
        panel = getattr(self.window, "training", None)
        if panel is None:
            return None
        try:
            return panel.config()
        except WeightsmithError:
            return None

    def compare_with_file(self) -> None:
        """Compare the document with a checkpoint file and show the differences."""
        session = self.window.session
        if session is None or self._busy():
            return
        try:
            from engine import diff as diff_module
        except ImportError:
            self.window.show_error("Compare is not available in this build (engine.diff "
                                   "is missing).")
            return
        path = base.choose_open_path(self.window, "Compare With File",
                                     self.window.settings.last_folder("open"),
                                     CHECKPOINT_FILTERS)
        if not path:
            return
        from .dialogs.diff_dialog import DiffDialog, compare_job

        def compared(result: Any) -> None:
            base.run_dialog(DiffDialog(result, path, self.window))

        self.window.tasks.run(compare_job, diff_module, session, path, name="compare",
                              text=f"Comparing with {Path(path).name}…",
                              on_success=compared, on_failure=self.window.show_error)
