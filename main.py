"""Weightsmith: `python main.py [PATH]` opens the editor; `python main.py COMMAND` runs headless."""

from __future__ import annotations

import sys


def _is_command(argv: list[str]) -> bool:
    if not argv:
        return False
    from cli.main import command_names

    first = next((arg for arg in argv if arg != "--debug"), "")
    return first in command_names() or first in ("-h", "--help")


def main() -> int:
    argv = sys.argv[1:]
    if _is_command(argv):
        from cli.main import main as cli_main

        return cli_main(argv)
    from gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
