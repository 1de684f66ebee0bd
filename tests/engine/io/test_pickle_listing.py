"""The trust dialog's list is exactly what the unpickler would import (issue 8 §1).

The list comes from a stack machine over the pickle's opcodes (`engine.io.pickle_machine`),
never from string scanning. Hand-made pickles push decoy module/name strings before the
real STACK_GLOBAL, fetch names back from the memo, duplicate and pop them; the listing
is compared with the `(module, name)` pairs that pickle's own unpicklers (the C one and
the pure-Python one) ask `find_class` for, with a `find_class` that imports nothing.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import zipfile

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from engine.io import opening
from engine.io.pickle_machine import Undetermined, run_pickle
from engine.io.trust import code_listing, refusal_message
from engine.session import Session
from tests.engine.io.files import mlp_state

MODULES = ["posix", "os", "torch.nn.modules.linear", "collections", "subprocess", "builtins",
           "torch._utils"]
NAMES = ["system", "Linear", "OrderedDict", "getattr", "Popen", "eval", "_rebuild_tensor_v2"]


def text(value: str, style: int = 0) -> bytes:
    """Opcodes that push the str `value` (several encodings of the same thing)."""
    raw = value.encode("utf-8")
    if style == 0:
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE
    if style == 1:
        return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE
    if style == 2:
        return b"V" + value.encode("raw-unicode-escape") + b"\n"  # UNICODE
    return b"U" + bytes([len(raw)]) + raw  # SHORT_BINSTRING (decoded as UTF-8 by torch)


def asked_by(unpickler_class: type, data: bytes) -> list[str]:
    """What `find_class` is asked for when `unpickler_class` loads `data` (nothing imported)."""
    asked: list[str] = []

    class Stub:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __setstate__(self, state) -> None:
            pass

    class Recorder(unpickler_class):
        def find_class(self, module, name):
            dotted = f"{module}.{name}"
            if dotted not in asked:
                asked.append(dotted)
            return type("Stub", (Stub,), {})

        def persistent_load(self, pid):
            return Stub()

    with contextlib.suppress(Exception):
        Recorder(io.BytesIO(data), encoding="utf-8").load()
    return asked


def loads_fully(data: bytes) -> bool:
    class Quiet(pickle.Unpickler):
        def find_class(self, module, name):
            return type("Stub", (), {"__init__": lambda self, *a, **k: None,
                                     "__setstate__": lambda self, s: None})

    try:
        Quiet(io.BytesIO(data), encoding="utf-8").load()
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------- examples
def test_decoy_strings_before_stack_global_do_not_spoof_the_list(tmp_path):
    data = (b"\x80\x04" + text("torch.nn.modules.linear") + text("Linear") + text("posix")
            + text("system") + b"\x93" + text("true") + b"\x85R.")
    path = tmp_path / "decoy.pth"
    path.write_bytes(data)
    listing = code_listing(path)
    assert listing.imports == ["posix.system"] == asked_by(pickle.Unpickler, data)
    assert listing.unsafe == ["posix.system"]
    assert "posix.system" in refusal_message(path)
    assert "Linear" not in refusal_message(path)


def test_decoys_pushed_and_popped_again_do_not_spoof_the_list(tmp_path):
    data = (b"\x80\x04" + text("posix") + text("system") + text("torch.nn.modules.linear")
            + text("Linear") + b"00" + b"\x93" + text("true") + b"\x85R.")
    path = tmp_path / "popped.pth"
    path.write_bytes(data)
    assert asked_by(pickle.Unpickler, data) == ["posix.system"]
    assert code_listing(path).unsafe == ["posix.system"]
    assert "Linear" not in refusal_message(path)


def test_names_fetched_back_from_the_memo_are_followed(tmp_path):
    # posix memoized as 0, torch memoized as 1 and popped; GET 0 brings posix back.
    data = (b"\x80\x04" + text("posix") + b"\x94" + text("torch") + b"\x94" + b"0" + b"h\x00"
            + text("system") + b"\x93" + text("true") + b"\x85R.")
    assert run_pickle(data).imports == ["posix.system"] == asked_by(pickle.Unpickler, data)


def test_a_torch_save_file_in_a_zip_is_listed_from_the_pickle_torch_reads(tmp_path):
    source = tmp_path / "plain.pt"
    torch.save(mlp_state(), source)
    evil = (b"\x80\x04" + text("torch.nn.modules.linear") + text("Linear") + text("posix")
            + text("system") + b"\x93" + text("true") + b"\x85R.")
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    pickle_name = next(name for name in members if name.endswith("/data.pkl"))
    members[pickle_name] = evil
    # A decoy pickle elsewhere in the archive is not what torch reads.
    members["plain/decoy/xdata.pkl"] = pickle.dumps(torch.nn.Linear(1, 1))
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    assert code_listing(path).unsafe == ["posix.system"]
    assert opening.needs_trust(path)
    with pytest.raises(Exception, match=r"posix\.system"):
        Session.open(path)


def test_names_computed_while_loading_are_undetermined_and_refused(tmp_path):
    # STACK_GLOBAL over a name built by a call (getattr(...)): cannot be known statically.
    data = (b"\x80\x04" + text("builtins") + text("getattr") + b"\x93" + text("os")
            + text("sep") + b"\x86R" + text("system") + b"\x93" + text("true") + b"\x85R.")
    path = tmp_path / "computed.pth"
    path.write_bytes(data)
    with pytest.raises(Undetermined, match="computed while loading"):
        run_pickle(data)
    listing = code_listing(path)
    assert listing.undetermined
    assert not listing.can_be_trusted
    assert listing.unsafe == ["builtins.getattr"]
    assert "cannot be determined" in refusal_message(path)


def test_old_protocols_list_names_as_pickle_maps_them():
    data = b"c__builtin__\neval\n(S'1'\ntR."
    assert run_pickle(data).imports == ["builtins.eval"]


def test_a_legacy_file_lists_every_pickle_torch_would_read(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(torch.nn.Linear(2, 2), path, _use_new_zipfile_serialization=False)
    assert "torch.nn.modules.linear.Linear" in code_listing(path).unsafe
    plain = tmp_path / "plain.pt"
    torch.save(mlp_state(), plain, _use_new_zipfile_serialization=False)
    assert code_listing(plain).unsafe == []
    assert not opening.needs_trust(plain)


# ---------------------------------------------------------------------- fuzz
@st.composite
def crafted_pickles(draw) -> bytes:
    """Protocol-4 programs of pushes, memo tricks, stack shuffles and imports, mostly valid."""
    out = [b"\x80\x04"]
    stack: list[str] = []  # kinds: 'str', 'obj', 'tuple', 'mark'
    memo: dict[int, str] = {}
    for _ in range(draw(st.integers(1, 30))):
        action = draw(st.sampled_from(["str", "str", "str", "int", "memoize", "put", "get",
                                       "dup", "pop", "mark", "tuple", "pop_mark",
                                       "stack_global", "global", "reduce", "tuple2"]))
        if action == "str":
            out.append(text(draw(st.sampled_from(MODULES + NAMES)), draw(st.integers(0, 3))))
            stack.append("str")
        elif action == "int":
            out.append(b"K" + bytes([draw(st.integers(0, 255))]))
            stack.append("obj")
        elif action == "memoize" and stack and stack[-1] != "mark":
            out.append(b"\x94")
            memo[len(memo)] = stack[-1]
        elif action == "put" and stack and stack[-1] != "mark":
            index = draw(st.integers(0, 5))
            out.append(b"q" + bytes([index]))
            memo[index] = stack[-1]
        elif action == "get" and memo:
            index = draw(st.sampled_from(sorted(memo)))
            out.append(b"h" + bytes([index]))
            stack.append(memo[index])
        elif action == "dup" and stack and stack[-1] != "mark":
            out.append(b"2")
            stack.append(stack[-1])
        elif action == "pop" and stack:
            out.append(b"0")
            if stack[-1] == "mark":
                stack.pop()
            else:
                stack.pop()
        elif action == "mark":
            out.append(b"(")
            stack.append("mark")
        elif action in ("tuple", "pop_mark") and "mark" in stack:
            out.append(b"t" if action == "tuple" else b"1")
            while stack.pop() != "mark":
                pass
            if action == "tuple":
                stack.append("tuple")
        elif action == "tuple2" and len(stack) >= 2 and "mark" not in stack[-2:]:
            out.append(b"\x86")
            del stack[-2:]
            stack.append("tuple")
        elif action == "stack_global" and stack[-2:] == ["str", "str"]:
            out.append(b"\x93")
            del stack[-2:]
            stack.append("obj")
        elif action == "global":
            module = draw(st.sampled_from(MODULES))
            name = draw(st.sampled_from(NAMES))
            out.append(f"c{module}\n{name}\n".encode())
            stack.append("obj")
        elif action == "reduce" and len(stack) >= 2 and stack[-1] == "tuple" \
                and stack[-2] == "obj":
            out.append(b"R")
            del stack[-2:]
            stack.append("obj")
    if not stack or stack[-1] == "mark" or "mark" in stack:
        out.append(b"N")
    out.append(b".")
    return b"".join(out)


@given(crafted_pickles())
def test_the_listing_is_what_find_class_is_asked(data):
    asked_c = asked_by(pickle.Unpickler, data)
    asked_py = asked_by(pickle._Unpickler, data)
    try:
        listed = run_pickle(data).imports
    except Undetermined:
        # Refused, never guessed: the machine only gives up where a name is not text it
        # can see, or where the real unpickler fails too.
        assert not loads_fully(data) or asked_c != []
        return
    # A load that fails part-way asks for a prefix of the list; a full load, all of it.
    assert listed[:len(asked_c)] == asked_c
    assert listed[:len(asked_py)] == asked_py
    if loads_fully(data):
        assert listed == asked_c


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_listing(data):
    try:
        run = run_pickle(b"\x80\x04" + data)
    except Undetermined:
        return
    assert run.imports[:len(asked_by(pickle.Unpickler, b"\x80\x04" + data))] == asked_by(
        pickle.Unpickler, b"\x80\x04" + data)
