"""A safetensors header of many tensors costs memory in proportion to its size, not a
parsed copy of it: the header is read entry by entry, `inspect --json` is written in
pieces and the table is printed row by row (docs/benchmarks/limits.md has the figures
of a million tensors).

Python's allocations are traced (tracemalloc) while 100,000 tensors are read and listed.
Before, reading held the whole parsed header at once (788 bytes per tensor at the peak,
against 375 now) and the listing built a dict per tensor and the whole text (870-918
bytes per tensor, against 210 now).
"""

from __future__ import annotations

import json
import struct
import tracemalloc

import pytest
import torch

from cli.commands.inspect import format_listing
from cli.main import main
from engine import Session
from engine.errors import FileError
from engine.io.json_files import JSONProblem, iter_members, parse_json
from engine.io.safetensors_header import read_header
from engine.io.sources import StoredFile
from engine.listing import listing, listing_json
from tests.models import SmallCNN, TiedLM, seeded

COUNT = 100_000


def header_file(path, count: int, *, reverse: bool = False) -> None:
    names = range(count - 1, -1, -1) if reverse else range(count)
    header = {f"model.layers.{i}.weight": {"dtype": "F32", "shape": [1],
                                             "data_offsets": [4 * i, 4 * i + 4]}
              for i in names}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * (4 * count))


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    path = tmp_path_factory.mktemp("many") / "many.safetensors"
    header_file(path, COUNT)
    return path


def peak_bytes(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_header_holds_no_parsed_copy_of_it(many):
    file = StoredFile(many)
    kept = {}
    peak = peak_bytes(lambda: kept.update(header=read_header(file)))
    assert len(kept["header"].sources) == COUNT
    assert peak / COUNT < 500, f"{peak / COUNT:.0f} bytes per tensor"


def test_the_json_listing_is_made_in_pieces(many):
    session = Session.open(many)
    whole = json.dumps(listing(session))
    pieces: list[int] = []
    peak = peak_bytes(lambda: pieces.extend(len(piece) for piece in listing_json(session)))
    assert sum(pieces) == len(whole)
    assert max(pieces) < len(whole) / 5
    assert peak / COUNT < 350, f"{peak / COUNT:.0f} bytes per tensor"


@pytest.mark.parametrize("make", [
    lambda: Session(seeded(TiedLM)), lambda: Session(seeded(SmallCNN)),
    lambda: Session(checkpoint={"a": torch.zeros(2), "b": torch.ones(3, 2)}),
    lambda: Session(checkpoint={}),
])
@pytest.mark.parametrize("rows", [1, 2, 10_000])
def test_the_pieces_are_the_listing(make, rows, monkeypatch):
    monkeypatch.setattr("engine.listing.PIECE_ROWS", rows)
    session = make()
    assert "".join(listing_json(session)) == json.dumps(listing(session))
    assert format_listing(listing(session, lazy=True)) == format_listing(listing(session))


def test_the_cli_prints_the_same_listing(tmp_path, capsys):
    path = tmp_path / "tied.safetensors"
    Session(seeded(TiedLM)).save(path)
    session = Session.open(path)
    assert main(["inspect", "--json", "--quiet", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(listing(session)))
    assert main(["inspect", "--quiet", str(path)]) == 0
    assert capsys.readouterr().out == format_listing(listing(session)) + "\n"


def test_a_header_out_of_file_order_is_checked_as_before(tmp_path):
    path = tmp_path / "reversed.safetensors"
    header_file(path, 50, reverse=True)
    header = read_header(StoredFile(path))
    assert next(iter(header.sources)) == "model.layers.49.weight"
    raw = path.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    text = raw[8:8 + length].decode().replace('"data_offsets":[0,4]', '"data_offsets":[4,8]')
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + raw[8 + length:])
    with pytest.raises(FileError, match=r"unused bytes before tensor .* \(offset 0 to 4\)"):
        read_header(StoredFile(path))


@pytest.mark.parametrize("text", [
    "{}", ' {"a": 1, "b": {"c": [1, 2]}}  ', '{"a":1,}', '{"a" 1}', "[1]", '{"a":1} x',
    '{"a":' + "[" * 100_000 + "}", '{"a": 1' + "1" * 5000 + "}", '{"a": nan}', "",
    '{"a":1 "b":2}', '{"a":"x', '{"a": 1, "a": 2}', "\n\n{\n\"a\": 1,\n}",
])
def test_members_are_what_the_whole_parse_gives(text):
    try:
        whole = parse_json(text)
    except JSONProblem as error:
        whole = error
    try:
        members = list(iter_members(text))
    except JSONProblem as error:
        members = error
    if not isinstance(whole, dict):  # not JSON, or JSON that is not an object
        assert isinstance(members, JSONProblem)
        if isinstance(whole, JSONProblem):  # the same line of the same text
            assert str(members).split(":")[0] == str(whole).split(":")[0]
    else:
        assert dict(members) == whole
        assert [name for name, _ in members] == (["a", "a"] if text.count('"a"') == 2
                                                 else list(whole))


def test_a_name_given_twice_is_refused(tmp_path):
    text = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' \
           b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    path = tmp_path / "twice.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 8)
    with pytest.raises(FileError, match=r"names 'a' twice"):
        read_header(StoredFile(path))
