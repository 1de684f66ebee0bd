"""Take the screenshots of docs/screenshots/ as a user sees the editor: a real window.

Starts an X server without a screen (Xvfb) at each size, runs `python main.py` in it
on the demo, drives it with the keyboard and the mouse (xdotool), and captures the
whole screen (ImageMagick's `import -window root`), reduced to a 256-colour palette
(pngquant) when that is installed. Needs Debian's xvfb, xdotool and imagemagick:

    apt-get install -y xvfb xdotool imagemagick pngquant libxcb-cursor0 libxcb-icccm4 \\
        libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 \\
        libxcb-xinerama0 libxcb-shape0
    .venv/bin/python scripts/screenshots.py [--sizes 1280x800 1920x1080] [--readme]

Mouse positions are only used where the keyboard cannot reach (toolbar buttons, the
fields of the test-training settings); they are computed from the window's size and
the default layout (no WM: the window fills the screen at 0, 0).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
#: x of the toolbar buttons (the toolbar's items keep their place at every width)
TOOLBAR = {"set": 365, "init": 462, "freeze": 548, "replace": 902, "load": 1030}
TOOLBAR_Y = 36


class Screen:
    """One X display with the editor running in it."""

    def __init__(self, display: str, width: int, height: int, config: Path) -> None:
        self.display, self.width, self.height = display, width, height
        self.env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
                    "WEIGHTSMITH_CONFIG_DIR": str(config)}
        self.env.pop("WAYLAND_DISPLAY", None)

    def xdo(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True, check=False)
        return done.stdout.strip()

    def keys(self, *keys: str, pause: float = 0.15) -> None:
        for key in keys:
            self.xdo("key", "--clearmodifiers", key)
            time.sleep(pause)

    def type(self, text: str) -> None:
        self.xdo("type", "--delay", "40", text)
        time.sleep(0.2)

    def click(self, x: int, y: int, times: int = 1) -> None:
        self.xdo("mousemove", str(x), str(y))
        time.sleep(0.1)
        self.xdo("click", "--repeat", str(times), "1")
        time.sleep(0.3)

    def wait_for_title(self, text: str, timeout: float = 120.0) -> str:
        """Wait for a window whose title contains `text`; return its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.xdo("search", "--name", text).split()
            if found:
                return found[-1]
            time.sleep(0.25)
        raise TimeoutError(f"no window titled '{text}' after {timeout:.0f} s")

    def focus(self, title: str) -> str:
        """Wait for the window titled `title` and give it the keyboard (there is no window
        manager to do it); return its id."""
        window = self.wait_for_title(title)
        time.sleep(0.3)
        self.xdo("windowfocus", window)
        time.sleep(0.3)
        return window

    def focus_main(self) -> None:
        self.focus("— Weightsmith")

    def click_in(self, window: str, x: int, y: int, times: int = 1) -> None:
        self.xdo("mousemove", "--window", window, str(x), str(y))
        time.sleep(0.1)
        self.xdo("click", "--repeat", str(times), "1")
        time.sleep(0.3)

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """The colour of one pixel of the screen now."""
        raw = Path(tempfile.mkstemp(suffix=".png")[1])
        subprocess.run(["import", "-window", "root", "-crop", f"1x1+{x}+{y}", str(raw)],
                       env=self.env, check=True)
        text = subprocess.run(["convert", str(raw), "-format", "%[fx:int(255*r)],"
                               "%[fx:int(255*g)],%[fx:int(255*b)]", "info:"],
                              capture_output=True, text=True, check=True).stdout
        raw.unlink()
        red, green, blue = (int(part) for part in text.strip().split(","))
        return red, green, blue

    def wait_for_colour(self, x: int, y: int, blue_ish: bool, timeout: float = 120.0) -> None:
        """Wait until pixel (x, y) is (or is no longer) the highlight blue of a bar."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            red, _green, blue = self.pixel(x, y)
            if (blue > red + 60) == blue_ish:
                return
            time.sleep(0.5)
        raise TimeoutError(f"pixel ({x}, {y}) did not change in {timeout:.0f} s")

    def shot(self, name: str, settle: float = 0.8) -> Path:
        time.sleep(settle)
        folder = OUT / f"{self.width}x{self.height}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.png"
        raw = Path(tempfile.mkstemp(suffix=".png")[1])
        subprocess.run(["import", "-window", "root", str(raw)], env=self.env, check=True)
        if shutil.which("pngquant"):
            subprocess.run(["pngquant", "--force", "--speed", "1", "--quality", "80-100",
                            "--output", str(target), str(raw)], check=False)
        if not target.exists() or target.stat().st_mtime < raw.stat().st_mtime:
            shutil.copy(raw, target)
        raw.unlink()
        print(f"  {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KiB)", flush=True)
        return target


@contextlib.contextmanager
def x_server(number: int, width: int, height: int) -> Iterator[str]:
    display = f":{number}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{width}x{height}x24",
                               "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        yield display
    finally:
        server.terminate()
        server.wait(10)


def rerun_in_xvfb(script: str, number: int, width: int, height: int) -> int:
    """Run `script` again in a child process drawn on a fresh Xvfb screen of `width` x
    `height` (display `:number`), with its own empty settings folder; its exit status.

    The child sees WEIGHTSMITH_IN_XVFB=1, so a script calls this when that is unset and
    takes its pictures when it is set.
    """
    with x_server(number, width, height) as display:
        config = tempfile.mkdtemp(prefix="weightsmith-shots-")
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "WEIGHTSMITH_IN_XVFB": "1", "WEIGHTSMITH_CONFIG_DIR": config}
        return subprocess.run([sys.executable, script], env=env, cwd=ROOT).returncode


@contextlib.contextmanager
def editor(screen: Screen) -> Iterator[subprocess.Popen]:
    app = subprocess.Popen([sys.executable, "main.py", "--no-restore"], cwd=ROOT,
                           env=screen.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    try:
        yield app
    finally:
        if app.poll() is None:
            app.terminate()
            try:
                app.wait(20)
            except subprocess.TimeoutExpired:
                app.kill()


def tour(screen: Screen) -> None:
    """Every main view, one screenshot each."""
    h = screen.height
    dock_top = h - 22 - h // 2  # the bottom docks' first-run top (status bar: 22 px)
    screen.wait_for_title("the demo model")
    time.sleep(2.0)
    screen.focus_main()
    screen.click(300, 300)  # the tree has the focus
    screen.keys("Home", "Down", "Right", "Down", "Down", "Down", "Down")
    screen.shot("module-inspector")
    screen.keys("Right", "Down")
    screen.shot("tensor-histogram")
    for number, name in ((2, "heatmap"), (3, "filters"), (4, "overview")):
        screen.keys(f"alt+{number}")
        screen.shot(name, settle=1.5)
    screen.keys("alt+1")
    # Set Values with an expression the engine refuses, then one it takes.
    screen.click(TOOLBAR["set"], TOOLBAR_Y)
    dialog = screen.focus("Set Values")
    time.sleep(0.5)
    screen.click_in(dialog, 340, 84)  # the expression field
    screen.type("foo(x)")
    screen.keys("Return")
    screen.shot("dialog-error")
    screen.keys("ctrl+a")
    screen.type("clamp(x, -0.06, 0.06)")
    screen.keys("Return")
    screen.focus_main()
    screen.shot("histogram-overlay", settle=1.5)
    # Test training, before, during and after a run of 3,000 steps.
    screen.keys("alt+5")
    screen.click(190, dock_top + 193)  # the Steps box
    screen.keys("ctrl+a")
    screen.type("3000")
    screen.keys("Tab")
    screen.shot("training-ready")
    screen.keys("alt+s")
    screen.wait_for_colour(40, h - 89, blue_ish=True)  # the progress bar has begun
    screen.shot("training-running", settle=3.0)
    screen.keys("alt+t")
    screen.shot("training-report", settle=8.0)  # the step ends, the checks run
    screen.keys("alt+d")
    screen.keys("alt+1")
    # Dialogs and help.
    screen.click(TOOLBAR["init"], TOOLBAR_Y)
    screen.focus("Initialize")
    screen.shot("dialog-initialize", settle=1.0)
    screen.keys("Escape")
    screen.focus_main()
    screen.keys("ctrl+shift+o")
    screen.focus("Open Architecture")
    time.sleep(4.0)  # the list of torchvision models loads in the background
    screen.type("resnet18")
    screen.shot("dialog-open-architecture", settle=1.0)
    screen.keys("Escape")
    screen.focus_main()
    screen.keys("ctrl+slash")
    screen.focus("Keyboard Shortcuts")
    screen.shot("help-shortcuts", settle=1.0)
    screen.keys("Escape")
    screen.focus_main()
    screen.keys("F1")
    screen.focus("Weightsmith Help")
    screen.shot("help-documentation", settle=2.0)
    screen.keys("Escape")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1280x800", "1920x1080"])
    parser.add_argument("--readme", action="store_true",
                        help="also renew docs/screenshot.png (from the first size)")
    args = parser.parse_args()
    for missing in [tool for tool in ("Xvfb", "xdotool", "import") if not shutil.which(tool)]:
        print(f"error: {missing} is not installed (see the docstring)", file=sys.stderr)
        return 2
    for number, size in enumerate(args.sizes, start=90):
        width, height = (int(part) for part in size.split("x"))
        print(f"{size}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="weightsmith-shots-") as config, \
                x_server(number, width, height) as display:
            screen = Screen(display, width, height, Path(config))
            with editor(screen) as app:
                tour(screen)
                if app.poll() is not None:
                    print(app.stderr.read() if app.stderr else "", file=sys.stderr)
                    return 1
        if args.readme and size == args.sizes[0]:
            shutil.copy(OUT / size / "histogram-overlay.png", ROOT / "docs" / "screenshot.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
