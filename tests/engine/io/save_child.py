"""Run one save scenario's save in this process: `python -m tests.engine.io.save_child NAME
FOLDER` (test_save_kill.py runs it under strace, which kills it at a chosen syscall)."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.session import Session
from tests.engine.io.save_scenarios import SCENARIOS


def main() -> None:
    name, folder = sys.argv[1], Path(sys.argv[2])
    scenario = next(s for s in SCENARIOS if s.name == name)
    session = Session.open(folder / scenario.open_path)
    session.apply(dict(scenario.edit))
    session.save(folder / scenario.target, **scenario.options)
    sys.stdout.write("saved\n")


if __name__ == "__main__":
    main()
