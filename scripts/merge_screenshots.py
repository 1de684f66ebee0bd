"""Take the merge and adapter screenshots of docs/screenshots/merge/ in a real window under Xvfb.

    .venv/bin/python scripts/merge_screenshots.py

Starts Xvfb at 1280x800, runs the editor's main window in it (the xcb platform, no
window manager) over a checkpoint of eight layers, and captures the whole screen with
ImageMagick's `import -window root`: the Merge Models dialog filled for a TIES merge of
two fine-tunes, the merge's report (table and per-layer plot) after the real merge, the
Extract LoRA dialog and its report, the Merge LoRA dialog, and the Concatenate form of
Edit ▸ Tensors ▸ Across Tensors. Needs Debian's xvfb and
imagemagick (pngquant, when installed, shrinks the files).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from screenshots import rerun_in_xvfb  # scripts/ is on the path of a script run from it

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots" / "merge"
WIDTH, HEIGHT = 1280, 800
LAYERS = 8


def main() -> int:
    if os.environ.get("WEIGHTSMITH_IN_XVFB") != "1":
        return rerun_in_xvfb(__file__, 92, WIDTH, HEIGHT)
    return take()


def make_models(folder: Path) -> dict[str, str]:
    """A base of eight 64x64 layers, two fine-tunes that moved each layer by a different
    amount, and a fine-tune of the base by an exact rank-4 update (for Extract LoRA)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    base = {}
    for index in range(LAYERS):
        base[f"layers.{index}.weight"] = torch.randn(64, 64, generator=generator) / 8
        base[f"layers.{index}.bias"] = torch.zeros(64)
    paths = {"base": str(folder / "base.safetensors")}
    save_file(base, paths["base"])
    for number, name in enumerate(("math", "code"), start=1):
        tuned = {}
        for key, value in base.items():
            # each layer moved by its own amount, so that the per-layer plot has a shape
            amount = 0.01 + 0.02 * (int(key.split(".")[1]) % 4) * number
            tuned[key] = (value + amount * torch.randn(value.shape, generator=generator)
                          if key.endswith("weight") else value.clone())
        paths[name] = str(folder / f"{name}.safetensors")
        save_file(tuned, paths[name])
    lora = {key: value + (torch.randn(64, 4, generator=generator)
                          @ torch.randn(4, 64, generator=generator)) / 20
            if key.endswith("weight") else value.clone() for key, value in base.items()}
    paths["lora"] = str(folder / "tuned-lora.safetensors")
    save_file(lora, paths["lora"])
    return paths


def take() -> int:
    sys.path.insert(0, str(ROOT))
    from gui import pyside_fix

    pyside_fix.install()
    from engine import Session
    from engine.edits import build_edit
    from engine.journal import Journal
    from engine.lora.extract import extract, write_adapter
    from gui.app import create_application
    from gui.dialogs.lora_dialogs import ExtractLoraDialog, MergeLoraDialog
    from gui.dialogs.merge_dialog import MergeDialog
    from gui.dialogs.report_dialog import extraction_report_dialog, merge_report_dialog
    from gui.main_window import MainWindow
    from gui.settings import Settings

    app = create_application([])
    config = Path(os.environ["WEIGHTSMITH_CONFIG_DIR"])
    folder = Path(tempfile.mkdtemp(prefix="weightsmith-merge-shots-"))
    paths = make_models(folder)
    window = MainWindow(Settings(config / "settings.ini"), Journal(config / "journal"))
    window.setGeometry(0, 0, WIDTH, HEIGHT)
    window.show()
    window.set_session(Session.open(paths["base"]), path=paths["base"])
    OUT.mkdir(parents=True, exist_ok=True)

    def settle(seconds: float = 0.8) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.02)

    def shot(name: str) -> None:
        settle()
        path = OUT / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        if shutil.which("pngquant"):  # a 256-colour palette: a third of the size
            subprocess.run(["pngquant", "--force", "--output", str(path), "256", str(path)],
                           check=True)
        print(f"wrote {path.relative_to(ROOT)}")

    def show(dialog) -> None:
        dialog.show()
        settle(0.3)
        dialog.move((WIDTH - dialog.width()) // 2, max(0, (HEIGHT - dialog.height()) // 2))
        settle(0.3)

    settle(2.0)
    dialog = MergeDialog(str(folder), window)
    dialog.set_field("method", "ties")
    dialog.set_field("base", "self")
    dialog.models_field.table.setRowCount(0)
    dialog.models_field.add_model(paths["math"], "0.6", "0.5")
    dialog.models_field.add_model(paths["code"], "0.4", "0.5")
    dialog.set_field("lambda", "1.0")
    dialog.set_field("exclude", "*.bias")
    show(dialog)
    shot("merge-dialog")
    edit = build_edit(dialog.spec())
    dialog.close()
    edit.prepare(window.session.document)
    report = window.session.apply(edit)
    window.merge_actions.report = report
    shown = merge_report_dialog(report, window)
    show(shown)
    shot("merge-report-table")
    shown.tabs.setCurrentIndex(1)
    shown.figure_box.setCurrentIndex(1)
    shot("merge-report-per-layer")
    shown.close()

    dialog = ExtractLoraDialog(str(folder), paths["lora"], window)
    dialog.set_field("base", paths["base"])
    dialog.set_field("rank", "4")
    dialog.set_field("include", "layers.*.weight")
    dialog.set_field("output", str(folder / "adapter"))
    show(dialog)
    shot("extract-lora-dialog")
    dialog.close()
    extraction = extract(paths["base"], paths["lora"], 4, ["layers.*.weight"])
    write_adapter(folder / "adapter", extraction)
    shown = extraction_report_dialog({"output": str(folder / "adapter"),
                                      **extraction.report()}, str(folder / "adapter"), window)
    show(shown)
    shot("extract-lora-report")
    shown.close()

    dialog = MergeLoraDialog(str(folder), window)
    dialog.set_field("adapter", str(folder / "adapter"))
    show(dialog)
    shot("merge-lora-dialog")
    dialog.close()

    from gui.dialogs.layout_dialog import LayoutDialog

    names = [f"layers.{index}.weight" for index in range(3)]
    dialog = LayoutDialog("concat", names, {name: (64, 64) for name in names}, str(folder),
                          window)
    dialog.set_field("to", "layers.fused.weight")
    show(dialog)
    shot("concat-dialog")
    dialog.close()

    window.session.mark_saved()
    window.close()
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
