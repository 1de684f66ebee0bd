"""A small .pt file cannot cost unbounded memory through what weights_only allows (issue 8 §3).

Every call the weights_only unpickler allows that can allocate from a number is tried:
bytearray(n), nested _codecs.encode, legacy tensor and storage constructors with sizes,
collections over a long input, and a legacy file whose storages claim more than the
file holds. Each is refused in one line naming the file, before it is loaded; the same
checkpoints without the bomb open as before.
"""

from __future__ import annotations

import _codecs
import collections
import pickle
import struct

import pytest
import torch

from engine import EditError, Session
from engine.errors import FileError
from engine.io.pickle_limits import ALLOCATION_BUDGET


class Call:
    """Pickles as `function(*args)`: what a crafted file can make the unpickler do."""

    def __init__(self, function, *args) -> None:
        self.function = function
        self.args = args

    def __reduce__(self):
        return (self.function, self.args)


def encode_chain(levels: int) -> Call:
    value = Call(_codecs.encode, "a" * 64, "latin1")
    for _ in range(levels):
        value = Call(_codecs.encode, value, "hex_codec")
    return value


BOMBS = {
    "bytearray": lambda: Call(bytearray, 10**9),
    "four bytearrays": lambda: [Call(bytearray, 10**8) for _ in range(4)],
    "huge integer": lambda: Call(bytearray, 10**5000),
    "encode chain": lambda: encode_chain(24),
    "legacy tensor constructor": lambda: Call(torch.FloatTensor, 100_000, 100_000),
    "storage constructor": lambda: Call(torch.UntypedStorage, 10**12),
    "counter of a long text": lambda: Call(collections.Counter, "x" * (3 * 2**20)),
}


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("bomb", list(BOMBS))
def test_calls_that_allocate_from_a_number_are_refused_before_loading(tmp_path, bomb,
                                                                      zip_format):
    path = tmp_path / "bomb.pt"
    torch.save({"w": torch.ones(3), "junk": BOMBS[bomb]()}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(FileError) as refused:
        Session.open(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: refused: its pickle asks for ")
    assert "outside tensor storage" in message
    assert "\n" not in message
    with pytest.raises(EditError, match="outside tensor storage"):
        Session(checkpoint={"w": torch.zeros(3)}).apply({"op": "load", "path": str(path)})


def test_what_a_checkpoint_spells_out_is_not_limited(tmp_path):
    path = tmp_path / "big_extras.pt"
    text = "x" * (ALLOCATION_BUDGET // 64)
    torch.save({"state_dict": {"w": torch.ones(3)}, "notes": [text] * 64,
                "blob": bytes(2**20), "hparams": {"lr": 0.1, "layers": list(range(1000))}},
               path)
    session = Session.open(path)
    assert session.document.tensor_names() == ["w"]


def test_a_legacy_file_whose_storages_claim_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "claims.pt"
    torch.save({"w": torch.zeros(12345)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    # The storage's element count is pickled as BININT2 12345; claim 2**31 - 1 instead.
    at = data.index(b"M" + struct.pack("<H", 12345))
    path.write_bytes(data[:at] + b"J" + struct.pack("<i", 2**31 - 1) + data[at + 3:])
    with pytest.raises(FileError, match=r"declares 8\.0 GiB of tensor storage but the file "
                                        r"holds"):
        Session.open(path)


def test_a_trusted_file_is_not_limited_by_the_scan(tmp_path):
    path = tmp_path / "trusted.pt"
    torch.save({"w": torch.ones(3), "junk": Call(bytearray, 300 * 2**20)}, path)
    with pytest.raises(FileError, match="outside tensor storage"):
        Session.open(path)
    # With trust the user accepted that code runs; a 300 MiB bytearray then is theirs.
    session = Session.open(path, trust=True)
    assert session.document.tensor_names() == ["w"]
    assert pickle.dumps(1)  # the pickle module is untouched
