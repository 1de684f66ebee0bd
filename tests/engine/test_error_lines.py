"""Every error is one clear line of ours, naming the file or field (issue 8 §4).

The reported cases first (each failed with another exception type, an empty message or
an internal one before), then fuzzing: recipe JSON of every shape against `Session.apply`
and `replay`, and `.pt` pickles (the pickle inside a valid archive mutated, and pickles
generated opcode by opcode over torch's rebuild functions) against `Session.open`. Nothing
but EditError / FileError may escape, and the message is one line.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import zipfile

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import EditError, Session
from engine.edits.base import EDIT_TYPES
from engine.errors import FileError, WeightsmithError
from engine.recipe import parse_recipe, read_recipe, replay
from tests.conftest import ROOT
from tests.models import MLP, seeded


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    assert not message.endswith(": ")
    return message


def write_header(path, text: str, data: bytes = b"") -> None:
    raw = text.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


# ---------------------------------------------------------------------- the reported cases
def test_a_5000_digit_header_number_names_the_file(tmp_path):
    path = tmp_path / "digits.safetensors"
    write_header(path, '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,' + "9" * 5000
                 + "]}}", b"\0" * 4)
    with pytest.raises(FileError) as refused:
        Session.open(path)
    assert one_line(refused.value).startswith(f"{path}: safetensors header is not valid JSON")
    assert "4300" in str(refused.value)


def test_a_recipe_file_with_a_5000_digit_number_names_the_file(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text('{"weightsmith_recipe": 1, "edits": [{"op": "scale", "value": '
                    + "1" * 5000 + "}]}")
    with pytest.raises(FileError, match=r"recipe\.json: not valid JSON \(a number with"):
        read_recipe(path)


@pytest.mark.parametrize("shape", [[0, 10**30], [0, 2**63], [2**32, 2**32, 0]])
def test_zero_element_shapes_that_overflow_are_refused(tmp_path, shape):
    path = tmp_path / "zero.safetensors"
    write_header(path, json.dumps({"a": {"dtype": "F32", "shape": shape,
                                         "data_offsets": [0, 0]}}))
    with pytest.raises(FileError, match=r"tensor 'a' has a shape .* multiply past 2\*\*63"):
        Session.open(path)


@pytest.mark.parametrize(("tensor", "problem"), [
    (lambda: torch.empty(3, device="meta"), "is on the meta device"),
    (lambda: torch.eye(3).to_sparse(), "is sparse_coo (not dense)"),
])
def test_meta_and_sparse_tensors_in_a_pt_name_the_tensor(tmp_path, tensor, problem):
    path = tmp_path / "odd.pt"
    torch.save({"w": tensor(), "b": torch.ones(2)}, path)
    with pytest.raises(FileError) as refused:
        Session.open(path)
    assert one_line(refused.value) == f"{path}: tensor 'w' {problem}" + (
        "; only dense tensors can be edited (save it with .to_dense())"
        if "sparse" in problem else ": the file holds its shape but no values")
    with pytest.raises(EditError, match=r"^load\.path: .*tensor 'w'"):
        Session(checkpoint={"w": torch.zeros(3)}).apply({"op": "load", "path": str(path)})


def test_deeply_nested_groups_and_values_are_refused_in_one_line():
    session = Session(checkpoint={"w": torch.zeros(2)})
    edit: dict = {"op": "scale", "targets": ["w"], "value": 2.0}
    for _ in range(5000):
        edit = {"op": "group", "edits": [edit]}
    with pytest.raises(EditError) as refused:
        session.apply(edit)
    assert one_line(refused.value) == "group: nested more than 64 levels deep"
    with pytest.raises(EditError, match="nested more than 64 levels deep"):
        replay(session, [edit])
    value: list = [1.0]
    for _ in range(5000):
        value = [value]
    with pytest.raises(EditError, match=r"^set: nested more than 64 levels deep"):
        session.apply({"op": "set", "target": "w", "value": value})
    assert torch.equal(session.document.tensor("w"), torch.zeros(2))


def test_a_deeply_nested_recipe_file_names_the_file(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"weightsmith_recipe": 1, "edits": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(FileError, match=r"deep\.json: not valid JSON \(nested too deeply\)"):
        read_recipe(path)


@pytest.mark.parametrize("index", ["0] + _[1", "0][0", "0]; _[1", "a", "0:1:0", "__import__"])
def test_index_texts_that_are_not_an_index_name_the_field(index):
    session = Session(checkpoint={"w": torch.zeros(2, 2)})
    with pytest.raises(EditError) as refused:
        session.apply({"op": "set", "target": "w", "index": index, "value": 1.0})
    assert one_line(refused.value).startswith("set.index: ")


def test_a_text_file_named_pth_says_what_it_is(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello world, not a checkpoint\n")
    with pytest.raises(FileError) as refused:
        Session.open(path)
    message = one_line(refused.value)
    assert "neither a zip archive nor a pickle" in message
    assert "text file" in message
    assert "pop from empty list" not in message


def test_the_cli_prints_our_line_never_an_unexpected_one(tmp_path):
    path = tmp_path / "digits.safetensors"
    write_header(path, '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,' + "9" * 5000
                 + "]}}", b"\0" * 4)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: safetensors header is not valid JSON")
    assert "unexpected" not in result.stderr
    assert result.stderr.count("\n") == 1


# ---------------------------------------------------------------------- fuzz: recipe JSON
FIELD_NAMES = sorted({field.name for cls in EDIT_TYPES.values() for field in cls.fields}
                     | {"op", "label", "bogus"})
TEXTS = st.sampled_from(["fc1.weight", "fc1.bias", "fc2", "*", "fc1.*", "", "0, :3", "0] + _[1",
                         "x * 2", "__import__('os')", "zeros", "normal", "float16", "^(a|aa)+$",
                         "torchvision:nope", "tests/models.py:MLP", "hf", "[1,2]", "…"])
NUMBERS = st.one_of(st.integers(-64, 64), st.sampled_from([10**30, 2**63, -2**63, 10**400]),
                    st.floats(allow_nan=True, allow_infinity=True))
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(FIELD_NAMES), children,
                                               max_size=3)),
    max_leaves=8)
#: edits the fuzz leaves out: a test training would run for minutes
SLOW_OPS = {"train"}


#: edits that apply to the MLP (most in both modes), for mutation into near misses
TEMPLATES = [
    {"op": "scale", "targets": ["fc1.weight"], "value": 2.0},
    {"op": "add", "targets": ["fc*"], "value": -1},
    {"op": "set", "target": "fc1.bias", "index": "0:2", "value": 1.5},
    {"op": "set", "target": "fc1.weight", "expr": "where(x > 0, x, 0) * 2"},
    {"op": "set", "target": "fc2.bias", "from": "fc2.bias"},
    {"op": "init", "targets": ["fc1.weight"], "method": "normal", "args": {"std": 0.1},
     "seed": 1},
    {"op": "freeze", "targets": ["fc1.weight"]},
    {"op": "unfreeze", "targets": ["*"]},
    {"op": "tie", "target": "fc2.bias", "source": "fc1.bias"},
    {"op": "untie", "target": "fc2.bias"},
    {"op": "replace", "target": "fc2", "module": {"type": "Linear", "out_features": 3}},
    {"op": "replace_head", "num_classes": 3, "seed": 2},
    {"op": "delete", "targets": ["fc1.bias"]},
    {"op": "rename", "pattern": "^fc(\\d)", "replacement": "layer\\1"},
    {"op": "rename", "target": "fc1.bias", "to": "x.bias"},
    {"op": "copy", "source": "fc1.bias", "to": "copy.bias"},
    {"op": "cast", "targets": ["fc1.weight"], "dtype": "float16"},
    {"op": "resize", "target": "fc1.bias", "shape": [4], "method": "zeros"},
    {"op": "group", "edits": [{"op": "scale", "targets": ["fc1.bias"], "value": 3.0},
                              {"op": "freeze", "targets": ["fc2.weight"]}]},
]


@st.composite
def near_misses(draw) -> dict:
    """A valid edit with one to three fields changed, dropped or added."""
    spec = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        action = draw(st.sampled_from(["change", "change", "drop", "add"]))
        keys = [key for key in spec if key != "op"]
        if action == "change" and keys:
            spec[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        elif action == "drop" and keys:
            del spec[draw(st.sampled_from(keys))]
        else:
            own = [*sorted(field.name for field in EDIT_TYPES[spec["op"]].fields), "label", "bogus"]
            spec[draw(st.sampled_from(own))] = draw(JSON_VALUES)
    return spec


@st.composite
def edit_specs(draw) -> dict:
    if not draw(st.booleans()):  # the simpler choice (hypothesis starts there): near misses
        return draw(near_misses())
    op = draw(st.sampled_from([*sorted(set(EDIT_TYPES) - SLOW_OPS), "nope"]))
    fields = sorted(field.name for field in EDIT_TYPES[op].fields) if op in EDIT_TYPES else []
    spec = {"op": op} if draw(st.integers(0, 9)) else {}
    for name in draw(st.lists(st.sampled_from([*fields, "label", "bogus"] if fields else
                                              ["bogus"]), max_size=5, unique=True)):
        spec[name] = draw(JSON_VALUES)
    if op == "group" and draw(st.booleans()):
        spec["edits"] = draw(st.lists(edit_specs(), min_size=1, max_size=2))
    return spec


def _apply_or_edit_error(session: Session, spec: object) -> None:
    try:
        session.apply(spec)
    except EditError as error:
        one_line(error)


@settings(max_examples=300)
@given(st.lists(edit_specs(), min_size=1, max_size=4), st.booleans())
def test_fuzzed_edits_fail_only_with_one_edit_error_line(specs, model_mode):
    session = (Session(seeded(MLP)) if model_mode
               else Session(checkpoint={k: v.clone() for k, v in seeded(MLP).state_dict().items()}))
    for spec in specs:
        _apply_or_edit_error(session, spec)
    while session.can_undo:
        session.undo()


@settings(max_examples=100)
@given(JSON_VALUES)
def test_fuzzed_recipe_documents_fail_only_with_one_edit_error_line(document):
    session = Session(checkpoint={"fc1.weight": torch.zeros(2, 2)})
    try:
        edits = parse_recipe(document)
        replay(session, edits)
    except EditError as error:
        one_line(error)


# ---------------------------------------------------------------------- fuzz: .pt pickles
def _open_or_file_error(path) -> None:
    failure: FileError | None = None
    try:
        session = Session.open(path)
    except FileError as error:
        failure = error
    except WeightsmithError as error:  # pragma: no cover - would be a wrong layer
        raise AssertionError(f"{type(error).__name__} from opening a file: {error}") from None
    if failure is not None:
        message = one_line(failure)
        assert message.startswith(str(path))
        assert "weights_only=False" not in message
        return
    for name in session.document.tensor_names():
        session.document.tensor(name)


def _zip_with_pickle(tmp_path, pickle_bytes: bytes):
    source = tmp_path / "valid.pt"
    torch.save({"state_dict": {"w": torch.ones(2, 3), "b": torch.zeros(2)}, "epoch": 3}, source)
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = next(member for member in members if member.endswith("/data.pkl"))
    original = members[name]
    members[name] = pickle_bytes if pickle_bytes else original
    target = tmp_path / "fuzzed.pt"
    with zipfile.ZipFile(target, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return target, original


@settings(max_examples=150)
@given(st.data())
def test_fuzzed_pickles_inside_a_valid_archive(tmp_path, data):
    _, original = _zip_with_pickle(tmp_path, b"")
    buffer = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(buffer) - 1))
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "number"]))
        if kind == "flip":
            buffer[position] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            buffer[position] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del buffer[position:]
            if not buffer:
                buffer = bytearray(b".")
        elif kind == "insert":
            buffer[position:position] = data.draw(st.binary(min_size=1, max_size=6))
        else:  # a number the unpickler will use as a size, offset or count
            buffer[position:position] = b"J" + struct.pack("<i", data.draw(
                st.sampled_from([-1, 0, 2**31 - 1, 12345, 3])))
    target, _ = _zip_with_pickle(tmp_path, bytes(buffer))
    _open_or_file_error(target)


GLOBALS = ["torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
           "collections OrderedDict", "torch FloatStorage", "torch Size", "builtins bytearray",
           "torch._utils _rebuild_meta_tensor_no_storage", "torch._utils _rebuild_sparse_tensor",
           "torch float32", "torch device", "_codecs encode", "builtins set",
           "torch.serialization _get_layout", "torch._utils _rebuild_qtensor"]


@st.composite
def torchish_pickles(draw) -> bytes:
    """Protocol-2 pickles over what weights_only allows: rebuild calls with odd arguments."""
    out = [b"\x80\x02", b"}"]  # a dict holding what follows
    for _ in range(draw(st.integers(1, 3))):
        out.append(b"X" + struct.pack("<I", 1) + draw(st.sampled_from([b"w", b"b", b"c"])))
        out.append(b"c" + draw(st.sampled_from(GLOBALS)).replace(" ", "\n").encode() + b"\n")
        out.append(b"(")
        for _ in range(draw(st.integers(0, 5))):
            choice = draw(st.integers(0, 5))
            if choice == 0:
                out.append(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000"
                           b"X\x03\x00\x00\x00cpuJ" + struct.pack("<i", draw(
                               st.integers(-2, 12))) + b"tQ")
            elif choice == 1:
                out.append(b"J" + struct.pack("<i", draw(st.integers(-2**31, 2**31 - 1))))
            elif choice == 2:
                out.append(b"(" + b"".join(b"J" + struct.pack("<i", draw(st.integers(-3, 10**6)))
                                           for _ in range(draw(st.integers(0, 3)))) + b"t")
            elif choice == 3:
                out.append(b"\x89")
            elif choice == 4:
                out.append(b"X\x04\x00\x00\x00abcd")
            else:
                out.append(b"ccollections\nOrderedDict\n)R")
        out.append(b"tR")
        out.append(b"s")
    out.append(b".")
    return b"".join(out)


@settings(max_examples=150)
@given(torchish_pickles())
def test_generated_pickles_over_torch_rebuild_functions(tmp_path, data):
    target, _ = _zip_with_pickle(tmp_path, data)
    _open_or_file_error(target)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
                       + pickle.dumps(1001, protocol=2)
                       + pickle.dumps({"protocol_version": 1001, "little_endian": True,
                                       "type_sizes": {"short": 2, "int": 4, "long": 4}},
                                      protocol=2)
                       + data + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 12)
                       + b"\0" * 48)
    _open_or_file_error(legacy)
