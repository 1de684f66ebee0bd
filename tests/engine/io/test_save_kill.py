"""Real kills: a save runs in a child process under strace, which delivers SIGKILL at one of
its renames, links or removals (`strace -f -e inject=SYSCALL:signal=KILL:when=N`); every
such syscall of the save is tried in turn. Afterwards the folder reads as the old set or
the new one, and the next save cleans up. The whole sweep is slow; the default suite
kills one scenario at the steps around its commit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.session import Session
from tests.conftest import ROOT

from .save_scenarios import SCENARIOS
from .test_save_atomic import Case, leftovers, read_state

SYSCALLS = "rename,renameat,renameat2,link,linkat,unlink,unlinkat,rmdir"
#: one syscall in strace's log; a call the kill interrupted ends in "<unfinished ...>"
_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<call>\w+)\((?P<args>.*?)"
                   r"(?:\)\s+=.*| <unfinished \.\.\.>)$")


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    try:  # containers may forbid ptrace
        return subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "true"],
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _strace_works(), reason="needs a working strace")


def run_child(case: Case, folder: Path, log: Path,
              inject: str | None = None) -> subprocess.CompletedProcess:
    command = ["strace", "-f", "-qq", "-o", str(log), "-e", f"trace={SYSCALLS}"]
    if inject is not None:
        command += ["-e", inject]
    command += [sys.executable, "-m", "tests.engine.io.save_child", case.scenario.name,
                str(folder)]
    # No .pyc writes: they would add renames, and change the counts between runs.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)


def folder_calls(log: Path, folder: Path) -> list[tuple[str, int, str]]:
    """The save's syscalls on `folder`: (syscall, its number among that process's calls of
    that syscall, the path), as strace's `when=` counts them (per syscall, per process)."""
    counts: dict[tuple[str, str], int] = {}
    calls = []
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        key = (match.group("pid"), match.group("call"))
        counts[key] = counts.get(key, 0) + 1
        if str(folder) in match.group("args"):
            calls.append((match.group("call"), counts[key], match.group("args")))
    return calls


def kill_at_every_call(tmp_path: Path, name: str, only: list[int] | None = None) -> int:
    case = Case(tmp_path, next(s for s in SCENARIOS if s.name == name))
    counting = case.copy()
    result = run_child(case, counting, tmp_path / "count.log")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert read_state(counting / case.scenario.target) == case.new
    calls = folder_calls(tmp_path / "count.log", counting)
    assert calls, "the save made no rename or removal"
    for position in only if only is not None else range(len(calls)):
        call, number, _ = calls[position]
        folder = case.copy()
        log = tmp_path / f"kill{position}.log"
        result = run_child(case, folder, log, f"inject={call}:signal=KILL:when={number}")
        what = f"SIGKILL at {call} #{number} (call {position + 1} of {len(calls)})"
        assert result.returncode != 0, f"{what}: the save was not killed"
        killed = folder_calls(log, folder)
        assert len(killed) == position + 1, f"{what}: killed at another call ({killed[-1:]})"
        assert killed[-1][0] == call, what
        case.check(folder, [case.old, case.new], what)
        session = Session.open(folder / case.scenario.open_path)
        if read_state(folder / case.scenario.target) != case.new:
            session.apply(dict(case.scenario.edit))
        session.save(folder / case.scenario.target, **case.scenario.options)
        case.check(folder, [case.new], f"{what}, then saved again")
        assert leftovers(case.target_folder(folder)) == [], what
        assert leftovers(folder) == [], what
    return len(calls)


def test_sigkill_around_the_commit_of_a_sharded_save(tmp_path):
    # Calls 3 and 4 of an in-place save of two edited shards: the index rename (the
    # commit) and the first hard link to a final name.
    kill_at_every_call(tmp_path, "sharded-in-place", only=[2, 3])


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_sigkill_at_every_rename_and_removal(tmp_path, name):
    if next(s for s in SCENARIOS if s.name == name).hf:
        pytest.importorskip("transformers")
    kill_at_every_call(tmp_path, name)
