"""Take the graph screenshots of docs/screenshots/graph/ in a real window under Xvfb.

    .venv/bin/python scripts/graph_screenshots.py

Starts Xvfb, runs the editor's main window in it (the xcb platform, no window
manager), opens resnet18 and a tiny GPT-2, shows the Graph dock, and captures the
whole screen with ImageMagick's `import -window root` at each step: collapsed and
expanded, each with an overlay. Needs Debian's xvfb and imagemagick (pngquant, when
installed, shrinks the files; see scripts/screenshots.py for the packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from screenshots import rerun_in_xvfb  # scripts/ is on the path of a script run from it

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots" / "graph"
WIDTH, HEIGHT = 1600, 1000


def main() -> int:
    if os.environ.get("WEIGHTSMITH_IN_XVFB") != "1":
        return rerun_in_xvfb(__file__, 91, WIDTH, HEIGHT)
    return take()


def take() -> int:
    sys.path.insert(0, str(ROOT))
    from gui import pyside_fix

    pyside_fix.install()
    import torch
    import torchvision
    import transformers
    from PySide6.QtCore import Qt

    from engine import Session
    from engine.journal import Journal
    from gui.app import create_application
    from gui.main_window import MainWindow
    from gui.settings import Settings

    transformers.logging.set_verbosity_error()
    app = create_application([])
    config = Path(os.environ["WEIGHTSMITH_CONFIG_DIR"])
    window = MainWindow(Settings(config / "settings.ini"), Journal(config / "journal"))
    window.setGeometry(0, 0, WIDTH, HEIGHT)
    window.show()
    window.graph_dock.show()
    window.graph_dock.raise_()
    window.resizeDocks([window.graph_dock], [HEIGHT - 330], Qt.Orientation.Vertical)
    panel = window.graph_host.ensure()
    OUT.mkdir(parents=True, exist_ok=True)

    def settle(seconds: float = 0.6) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.02)

    def open_model(model: torch.nn.Module) -> None:
        window.set_session(Session(model))
        while panel.graph is None or panel.graph.method != "export" or panel._task is not None:
            settle(0.1)
        settle()
        # The graph gets most of the height (the window sets its dock sizes once shown).
        window.resizeDocks([window.graph_dock], [HEIGHT - 300], Qt.Orientation.Vertical)
        settle()

    def shot(name: str) -> None:
        settle()
        path = OUT / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        if shutil.which("pngquant"):  # a 256-colour palette: a third of the size
            subprocess.run(["pngquant", "--force", "--output", str(path), "256", str(path)],
                           check=True)
        print(f"wrote {path.relative_to(ROOT)}")

    def focus(zoom: float, key: str) -> None:
        panel.view.resetTransform()
        panel.view.scale(zoom, zoom)
        panel.view.zoomed.emit(zoom)
        panel.view.centerOn(panel.item_of(key).sceneBoundingRect().center())

    def overlay(name: str) -> None:
        panel.overlay.setCurrentIndex(panel.overlay.findData(name))
        settle(1.0)

    torch.manual_seed(0)
    open_model(torchvision.models.resnet18())
    overlay("parameters")
    window.select_paths(["layer3"], "layer3")
    panel.view.fit()
    shot("resnet18-collapsed-parameters")
    window.session.apply({"op": "freeze", "targets": ["conv1", "bn1", "layer1", "layer2"]})
    panel.set_expanded({"", "layer1", "layer1.0", "layer2", "layer2.0", "layer2.0.downsample"})
    overlay("trainable")
    window.select_paths(["layer2.0.conv1.weight"], "layer2.0.conv1.weight")
    focus(1.0, "layer2.0")
    shot("resnet18-expanded-trainable")

    config = transformers.GPT2Config(n_layer=4, n_embd=64, n_head=4, vocab_size=500,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.h[2].mlp.c_fc.weight.mul_(25.0)  # a badly initialized layer
    open_model(model)
    overlay("tied")
    window.select_paths(["lm_head"], "lm_head")
    focus(0.9, "lm_head")
    shot("gpt2-collapsed-tied")
    panel.set_expanded(panel.expanded | {"transformer.h.2", "transformer.h.2.mlp"})
    overlay("std")
    window.select_paths(["transformer.h.2.mlp.c_fc"], "transformer.h.2.mlp.c_fc")
    focus(0.9, "transformer.h.2.mlp.c_fc")
    shot("gpt2-expanded-weight-std")
    window.session.mark_saved()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
