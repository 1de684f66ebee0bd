"""Property: whatever is frozen and however it is trained, Discard (or Keep then undo)
gives back the model exactly, frozen tensors never move, and redo gives the trained bits."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Session
from engine.training import Trainer
from tests.models import MLP, SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, snapshot

MODELS = {
    "mlp": (MLP, ["fc1", "fc2.bias", "fc1.weight"], {}),
    "cnn_bn": (SmallCNN, ["features", "features.0", "classifier.2"], {"input_shape": [3, 6, 6]}),
    "tied_lm": (TiedLM, ["block", "embed", "block.0"], {}),
}


@settings(max_examples=25)
@given(
    name=st.sampled_from(sorted(MODELS)),
    frozen=st.integers(0, 2),
    bn_eval=st.booleans(),
    optimizer=st.sampled_from(["sgd", "adam", "adamw"]),
    steps=st.integers(1, 4),
    batch_size=st.integers(1, 9),
    multiplier=st.sampled_from([None, 0.0, 10.0]),
    keep=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_discard_or_undo_restores_exactly(name, frozen, bn_eval, optimizer, steps, batch_size,
                                          multiplier, keep, seed):
    factory, freezable, extra = MODELS[name]
    session = Session(seeded(factory))
    session.apply({"op": "freeze", "targets": [freezable[frozen]], "bn_eval": bn_eval})
    frozen_before = {n: t.detach().clone() for n, t in session.model.named_parameters()
                     if not t.requires_grad}
    config = {"optimizer": optimizer, "steps": steps, "batch_size": batch_size, "seed": seed,
              "samples": 12, "weight_decay": 0.01, **extra}
    trainable = [n for n, t in session.model.named_parameters() if t.requires_grad]
    if multiplier is not None:
        config["lr_multipliers"] = {trainable[-1]: multiplier}
    before = snapshot(session.model)
    result = Trainer(session, config).run()
    assert result.report.steps == steps
    assert result.report.frozen_changed == []
    for parameter_name, value in frozen_before.items():
        assert torch.equal(session.model.get_parameter(parameter_name), value)
    if keep:
        trained = snapshot(session.model)
        result.keep()
        session.undo()
        assert_same(before, snapshot(session.model))
        session.redo()
        assert_same(trained, snapshot(session.model))
    else:
        result.discard()
        assert_same(before, snapshot(session.model))
    assert session.busy_reason is None
