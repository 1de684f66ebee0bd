"""Declared fields: one declaration checks edits and training settings and writes the docs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.edits import EDIT_TYPES
from engine.edits.reference import fields_reference, with_reference
from engine.errors import EditError
from engine.schema import Field, check_fields
from engine.training.config import TRAIN_FIELDS, TrainConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def test_the_recipe_docs_hold_the_declared_fields():
    text = DOC.read_text(encoding="utf-8")
    assert with_reference(text) == text, "run python scripts/make_recipe_docs.py"
    for op, edit_type in EDIT_TYPES.items():
        assert f"#### `{op}`" in fields_reference()
        for field in edit_type.fields:
            assert f"| `{field.name}` |" in text
            assert field.doc, f"{op}.{field.name} has no documentation"


def test_the_train_edit_and_the_config_share_one_declaration():
    assert EDIT_TYPES["train"].fields is TRAIN_FIELDS
    assert [field.name for field in dataclasses.fields(TrainConfig)] == \
        [field.name for field in TRAIN_FIELDS]
    defaults = TrainConfig()
    for field in TRAIN_FIELDS:
        expected = field.default if field.default is not None else None
        assert getattr(defaults, field.name) == expected, field.name


@pytest.mark.parametrize(("spec", "message"), [
    ({"op": "scale", "targets": ["a"]}, r"^scale\.value: required field is missing$"),
    ({"op": "scale", "targets": ["a"], "value": 1, "bogus": 1}, r"^scale\.bogus: unknown field"),
    ({"op": "scale", "targets": 3, "value": 1}, r"^scale\.targets: expected a name or a list"),
    ({"op": "scale", "targets": "a", "value": "x"}, r"^scale\.value: expected a number, got text"),
    ({"op": "init", "targets": "a", "method": "zeros", "seed": -1}, r"^init\.seed: must be in"),
    ({"op": "freeze", "targets": "a", "bn_eval": 1}, r"^freeze\.bn_eval: expected true or false"),
    ({"op": "replace_head", "num_classes": 0}, r"^replace_head\.num_classes: must be >= 1"),
])
def test_declared_fields_refuse_bad_values_naming_the_field(spec, message):
    with pytest.raises(EditError, match=message):
        EDIT_TYPES[spec["op"]](spec)


def test_null_means_not_given_for_an_optional_field_without_default():
    edit = EDIT_TYPES["replace_head"]({"op": "replace_head", "num_classes": 3, "seed": None,
                                       "target": None})
    assert edit.value("seed") is None
    with pytest.raises(EditError, match=r"load\.strict: expected true or false, got null"):
        EDIT_TYPES["load"]({"op": "load", "path": "x.pt", "strict": None})


def test_training_settings_are_checked_by_the_declaration():
    with pytest.raises(EditError, match=r"^train\.optimizer: expected one of sgd, adam, adamw$"):
        TrainConfig.from_dict({"optimizer": "lion"})
    with pytest.raises(EditError, match=r"^train\.lr: must be > 0, got 0$"):
        TrainConfig.from_dict({"lr": 0})
    assert TrainConfig.from_dict({"input_shape": (3, 8, 8)}).input_shape == [3, 8, 8]


def test_check_fields_returns_canonical_values():
    fields = (Field("names", "names", "some names"), Field("n", "int", "a count", minimum=2))
    assert check_fields(fields, {"names": "a", "n": 3}, "x") == {"names": ["a"], "n": 3}
    with pytest.raises(EditError, match=r"^x\.n: must be >= 2, got 1$"):
        check_fields(fields, {"n": 1}, "x")
    with pytest.raises(ValueError, match="unknown kind"):
        Field("bad", "colour", "no such kind")
