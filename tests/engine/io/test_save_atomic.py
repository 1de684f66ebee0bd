"""A save is atomic as a set: every rename, link and removal of a save is failed, and
"killed" at, in turn; afterwards the folder reads as exactly the old set or exactly the new
one (with Weightsmith, and with transformers for a Hugging Face folder), and the next save
cleans up what the killed one left. Real SIGKILLs at each syscall: test_save_kill.py."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from engine.errors import FileError
from engine.session import Session

from .faults import Faults, SimulatedKill
from .files import as_bytes, session_tensors
from .save_scenarios import SCENARIOS, Scenario

State = dict[str, bytes]


def read_state(path: Path) -> State | None:
    """What opening `path` gives, as bytes per name; None when there is nothing there."""
    if not path.exists():
        return None
    session = Session.open(path)
    return {name: bytes(as_bytes(tensor).numpy()) for name, tensor in
            session_tensors(session).items()}


def transformers_state(folder: Path) -> State | None:
    if not folder.exists():
        return None
    import transformers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.GPT2LMHeadModel.from_pretrained(folder)
    return {name: bytes(as_bytes(tensor).numpy()) for name, tensor in model.state_dict().items()}


def leftovers(folder: Path) -> list[str]:
    """Names a save must not leave: temporaries and save-unique shard names."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if ".weightsmith-" in p.name)


class Case:
    """One scenario: its old files, the old and the new set, and runs with faults."""

    def __init__(self, root: Path, scenario: Scenario) -> None:
        self.root = root
        self.scenario = scenario
        self.base = root / "base"
        self.base.mkdir()
        scenario.build(self.base)
        self.old = read_state(self.base / scenario.target)
        session = Session.open(self.base / scenario.open_path)
        session.apply(dict(scenario.edit))
        self.new = {name: bytes(as_bytes(tensor).numpy()) for name, tensor in
                    session_tensors(session).items()}
        self.runs = 0
        if scenario.hf:
            self.hf_old = transformers_state(self.base / scenario.target)
            clean = self.copy()
            self.save(clean)
            self.hf_new = transformers_state(clean / scenario.target)
            assert self.hf_new != self.hf_old

    def copy(self) -> Path:
        self.runs += 1
        folder = self.root / f"run{self.runs}"
        shutil.copytree(self.base, folder, symlinks=True)
        return folder

    def save(self, folder: Path, faults: Faults | None = None) -> dict:
        session = Session.open(folder / self.scenario.open_path)
        session.apply(dict(self.scenario.edit))
        if faults is None:
            return session.save(folder / self.scenario.target, **self.scenario.options)
        with faults:
            return session.save(folder / self.scenario.target, **self.scenario.options)

    def target_folder(self, folder: Path) -> Path:
        target = folder / self.scenario.target
        return target if not target.suffix else target.parent

    def check(self, folder: Path, allowed: list[State | None], what: str) -> None:
        state = read_state(folder / self.scenario.target)
        assert state in allowed, f"{what}: the folder reads as neither set"
        if self.scenario.hf:
            hf = transformers_state(folder / self.scenario.target)
            expected = [self.hf_old if s == self.old else self.hf_new for s in allowed]
            assert hf in expected, f"{what}: transformers reads neither set"


def calls_of_a_save(case: Case) -> list[tuple[str, str]]:
    folder = case.copy()
    counting = Faults()
    case.save(folder, counting)
    assert read_state(folder / case.scenario.target) == case.new
    return counting.calls


def run_every_fault(case: Case, kill: bool) -> int:
    calls = calls_of_a_save(case)
    assert calls, "the save renamed nothing"
    for number in range(1, len(calls) + 1):
        folder = case.copy()
        what = f"{'kill' if kill else 'failure'} at call {number} {calls[number - 1]}"
        raised: BaseException | None = None
        try:
            case.save(folder, Faults(number, kill=kill))
        except (SimulatedKill, FileError) as error:
            raised = error
        if raised is not None and not kill:
            assert isinstance(raised, FileError), what
            assert "Input/output error (injected)" in str(raised), what
        if kill:
            case.check(folder, [case.old, case.new], what)
        elif raised:
            case.check(folder, [case.old], what)  # a reported failure changed nothing
            assert leftovers(case.target_folder(folder)) == [], what
        else:
            case.check(folder, [case.new], what)  # after the commit: reported as a note
        # The next save into the folder succeeds and leaves nothing behind.
        session = Session.open(folder / case.scenario.open_path)
        if read_state(folder / case.scenario.target) != case.new:
            session.apply(dict(case.scenario.edit))
        session.save(folder / case.scenario.target, **case.scenario.options)
        case.check(folder, [case.new], f"{what}, then saved again")
        assert leftovers(case.target_folder(folder)) == [], what
        assert leftovers(folder) == [], what
    return len(calls)


@pytest.mark.parametrize("kill", [False, True], ids=["fail", "kill"])
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.hf], ids=lambda s: s.name)
def test_every_rename_and_removal_of_a_save_can_fail(tmp_path, scenario, kill):
    run_every_fault(Case(tmp_path, scenario), kill)


@pytest.mark.parametrize("kill", [False, True], ids=["fail", "kill"])
def test_a_hugging_face_folder_reads_old_or_new_in_transformers(tmp_path, kill):
    pytest.importorskip("transformers")
    scenario = next(s for s in SCENARIOS if s.hf)
    assert run_every_fault(Case(tmp_path, scenario), kill) >= 4


def test_a_mixed_set_is_refused(tmp_path):
    folder = tmp_path / "model"
    tensors = {f"t{i}": torch.full((8,), float(i)) for i in range(4)}
    Session(checkpoint=tensors).save(folder, max_shard_size=64)
    old = {p.name: p.read_bytes() for p in folder.iterdir()}
    session = Session.open(folder)
    session.apply({"op": "scale", "targets": ["t0"], "value": 2.0})
    session.save(folder)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    edited = index["weight_map"]["t0"]
    (folder / edited).write_bytes(old[edited])  # the old shard back beside the new index
    with pytest.raises(FileError, match=f"mixed set: shard '{edited}' was written by another "
                       "save"):
        Session.open(folder)


def test_a_single_file_beside_an_old_index_reads_as_transformers_reads_it(tmp_path):
    folder = tmp_path / "model"
    Session(checkpoint={"w": torch.zeros(4), "v": torch.zeros(4)}).save(folder, max_shard_size=16)
    assert (folder / "model.safetensors.index.json").is_file()
    Session(checkpoint={"w": torch.ones(4)}).save(tmp_path / "single.safetensors")
    shutil.copy(tmp_path / "single.safetensors", folder / "model.safetensors")
    assert torch.equal(Session.open(folder).document.tensor("w"), torch.ones(4))
    Session.open(folder).save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]


def test_leftovers_of_a_killed_save_are_removed_by_the_next(tmp_path):
    folder = tmp_path / "model"
    Session(checkpoint={"w": torch.zeros(4), "v": torch.zeros(4)}).save(folder, max_shard_size=16)
    (folder / ".model.safetensors.index.json.weightsmith-tmp-abc").write_bytes(b"x" * 100)
    (folder / "model-00001-of-00002.weightsmith-0123abcd.safetensors").write_bytes(b"x")
    (folder / "notes.txt").write_text("mine")
    Session(checkpoint={"w": torch.ones(4)}).save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "notes.txt"]


def test_a_second_save_into_a_locked_folder_is_refused(tmp_path):
    from engine.io.set_commit import folder_lock

    folder = tmp_path / "model"
    Session(checkpoint={"w": torch.zeros(4)}).save(folder)
    with folder_lock(folder), pytest.raises(FileError, match="another Weightsmith save"):
        Session(checkpoint={"w": torch.ones(4)}).save(folder)
    assert torch.equal(Session.open(folder).document.tensor("w"), torch.zeros(4))
