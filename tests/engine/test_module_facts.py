"""engine.module_facts: a module's hyperparameters by name, and its place in the model."""

from __future__ import annotations

import pytest
from torch import nn

from engine.module_facts import hyperparameters, placement, split_top_level


def test_split_top_level_keeps_brackets_and_quotes_whole():
    assert split_top_level("1, 16, kernel_size=(3, 3), mode='a, b'") == [
        "1", "16", "kernel_size=(3, 3)", "mode='a, b'"]
    assert split_top_level("") == []


def test_positional_items_get_the_constructor_names():
    assert hyperparameters(nn.Conv2d(1, 16, 3, stride=2)) == [
        ("in_channels", "1"), ("out_channels", "16"), ("kernel_size", "(3, 3)"),
        ("stride", "(2, 2)")]
    assert hyperparameters(nn.Linear(64, 10, bias=False)) == [
        ("in_features", "64"), ("out_features", "10"), ("bias", "False")]
    assert dict(hyperparameters(nn.BatchNorm2d(8, momentum=0.3)))["momentum"] == "0.3"
    assert hyperparameters(nn.ReLU()) == []
    assert hyperparameters(nn.Sequential(nn.ReLU())) == []


def test_odd_extra_reprs_never_break():
    class Odd(nn.Module):
        def extra_repr(self) -> str:
            return "first line\nsecond line"

    class Broken(nn.Module):
        def extra_repr(self) -> str:
            raise RuntimeError("no")

    class Loose(nn.Module):
        def __init__(self, *args: object) -> None:
            super().__init__()

        def extra_repr(self) -> str:
            return "3, scale=0.5"

    assert hyperparameters(Odd()) == [("settings", "first line second line")]
    assert hyperparameters(Broken()) == []
    assert hyperparameters(Loose()) == [("argument 1", "3"), ("scale", "0.5")]


def test_placement_names_the_parent_children_and_repeated_siblings():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3),
                          nn.Sequential(nn.Linear(2, 2)))
    place = placement(model, "2")
    assert place.parent == ""
    assert place.parent_type == "Sequential"
    assert place.children == 0
    assert place.same_type == ("0", "2")
    assert place.siblings_text() == "2 in the model: 0, 2"
    assert placement(model, "1").siblings_text() == ""  # the only ReLU
    root = placement(model, "")
    assert root.parent is None
    assert root.children == 4
    assert placement(model, "3.0").parent == "3"
    with pytest.raises(AttributeError):
        placement(model, "9")
