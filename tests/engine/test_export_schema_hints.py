"""The type-hint cache around torch.export.load: the same program, the module put back."""

from __future__ import annotations

import threading
import typing

import pytest
import torch
from torch._export.serde import serialize

from engine.export.schema_hints import cached_schema_hints
from tests.models import MLP, seeded


def test_a_load_under_the_cache_gives_the_same_program(tmp_path):
    model = seeded(MLP).eval()
    path = tmp_path / "mlp.pt2"
    example = torch.randn(2, 6)
    torch.export.save(torch.export.export(model, (example,)), path)
    plain = torch.export.load(path)
    with cached_schema_hints():
        cached = torch.export.load(path)
    assert str(cached.graph) == str(plain.graph)
    assert cached.graph_signature == plain.graph_signature
    assert cached.state_dict.keys() == plain.state_dict.keys()
    for name, tensor in plain.state_dict.items():
        assert torch.equal(cached.state_dict[name], tensor)
    inputs = torch.randn(2, 6)
    assert torch.equal(cached.module()(inputs), plain.module()(inputs))


def test_the_cached_hints_are_the_real_ones_and_copies():
    with cached_schema_hints():
        proxy = serialize.typing
        assert proxy is not typing
        hints = proxy.get_type_hints(serialize.schema.Node, globalns=vars(serialize.schema))
        assert hints == typing.get_type_hints(serialize.schema.Node,
                                              globalns=vars(serialize.schema))
        hints.clear()  # what a caller does with its dict does not reach the cache
        again = proxy.get_type_hints(serialize.schema.Node, globalns=vars(serialize.schema))
        assert again
        assert again == typing.get_type_hints(serialize.schema.Node,
                                              globalns=vars(serialize.schema))
        assert proxy.get_origin is typing.get_origin


def test_the_module_gets_its_typing_back_after_nesting_and_errors():
    assert serialize.typing is typing
    with cached_schema_hints():
        with cached_schema_hints():
            patched = serialize.typing
        assert serialize.typing is patched  # the outer block still runs
    assert serialize.typing is typing
    with pytest.raises(RuntimeError, match="boom"), cached_schema_hints():
        raise RuntimeError("boom")
    assert serialize.typing is typing


def test_overlapping_blocks_in_threads_restore_the_module():
    entered = threading.Barrier(2)
    leave_first = threading.Event()

    def first() -> None:
        with cached_schema_hints():
            entered.wait()
            leave_first.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    with cached_schema_hints():
        entered.wait()
        leave_first.set()
        thread.join(10)
        assert serialize.typing is not typing  # this block still holds the patch
    assert serialize.typing is typing
