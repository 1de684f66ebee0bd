"""Fuzzing: damaged safetensors and torch files either open cleanly or fail with one FileError.

Any other exception, a crash or a hang is a bug. Every example that opens is read
completely (every tensor) and saved again, so damage that slips through the checks
would surface as another exception type here.
"""

from __future__ import annotations

import struct

import torch
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import FileError
from engine.listing import listing
from engine.session import Session

from .files import mixed_tensors, write_safetensors


def _mutate(data: bytes, draw, header_end: int) -> bytes:
    """Flip, overwrite, cut or insert bytes; most edits land in the header."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "length"]))
        limit = header_end if draw(st.booleans()) or not buffer else len(buffer)
        limit = max(1, min(limit, len(buffer)))
        position = draw(st.integers(0, max(limit - 1, 0)))
        if kind == "flip" and buffer:
            buffer[position % len(buffer)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and buffer:
            buffer[position % len(buffer)] = draw(st.sampled_from(
                [0, 0x22, 0x2C, 0x30, 0x39, 0x5B, 0x5D, 0x7B, 0x7D, 0xFF]))
        elif kind == "cut":
            del buffer[position:]
        elif kind == "insert":
            buffer[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "length" and len(buffer) >= 8:
            buffer[:8] = struct.pack("<Q", draw(st.integers(0, 2**64 - 1)))
    return bytes(buffer)


def _open_fully_or_file_error(path, tmp_path) -> None:
    try:
        session = Session.open(path)
    except FileError as error:
        message = str(error)
        assert message.startswith(str(path))
        assert "\n" not in message
        assert "weights_only=False" not in message
        return
    listing(session)
    for name in session.document.tensor_names():
        tensor = session.document.tensor(name)
        assert tuple(tensor.shape) == session.document.tensor_meta(name)[0]
    session.save(tmp_path / "resaved.safetensors")


@given(data=st.data())
def test_fuzzed_safetensors(tmp_path, data):
    source = write_safetensors(tmp_path / "valid.safetensors", mixed_tensors())
    raw = source.read_bytes()
    header_end = 8 + struct.unpack("<Q", raw[:8])[0]
    target = tmp_path / "fuzzed.safetensors"
    target.write_bytes(_mutate(raw, data.draw, header_end))
    _open_fully_or_file_error(target, tmp_path)


@given(data=st.data())
def test_fuzzed_torch_files(tmp_path, data):
    source = tmp_path / "valid.pt"
    legacy = data.draw(st.booleans())
    torch.save({"state_dict": mixed_tensors(), "epoch": 3}, source,
               _use_new_zipfile_serialization=not legacy)
    raw = source.read_bytes()
    target = tmp_path / "fuzzed.pt"
    target.write_bytes(_mutate(raw, data.draw, len(raw)))
    _open_fully_or_file_error(target, tmp_path)
