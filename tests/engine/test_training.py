"""Test training: fine-tuning the demo, the verification report, Keep/Discard, Stop, lr groups."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from engine import EditError, Session
from engine.opening import open_demo
from engine.progress import Progress
from engine.recipe import replay
from engine.session import Session as SessionType
from engine.training import TrainConfig, Trainer
from tests.models import MLP, SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, bits, snapshot

FAST = {"data": "demo", "steps": 30, "batch_size": 32, "lr": 0.01, "seed": 0}


def finetune_session() -> SessionType:
    """The demo model with its backbone frozen (BatchNorm in eval mode) and a new head."""
    session = open_demo()
    session.apply({"op": "freeze", "targets": ["features"], "bn_eval": True})
    session.apply({"op": "replace_head", "num_classes": 10, "seed": 1})
    return session


def test_demo_finetune_with_frozen_backbone_and_new_head():
    session = finetune_session()
    model = session.model
    before = snapshot(model)
    head_before = model.classifier[4].weight.detach().clone()
    result = Trainer(session, FAST).run()
    report = result.report

    assert report.steps == 30
    assert not report.stopped
    assert report.loss_end < report.loss_start, "the loss goes down"
    assert report.accuracy_end is not None
    assert report.accuracy_end > report.accuracy_start
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["loss decreased"] == "pass"
    assert statuses["frozen tensors bit-identical"] == "pass"
    assert statuses["trainable tensors changed"] == "pass"
    assert report.passed
    # Frozen tensors bit for bit, checked here independently of the report.
    after = snapshot(model)
    for name, (data, *_rest) in before.tensors.items():
        if name.startswith("features."):
            assert torch.equal(data, after.tensors[name][0]), f"{name} changed"
    assert not torch.equal(model.classifier[4].weight.detach(), head_before), "the head learnt"
    assert set(report.changed) == {"classifier.1.weight", "classifier.1.bias",
                                   "classifier.4.weight", "classifier.4.bias"}
    assert report.frozen_changed == []
    assert report.batchnorm_kept == ["features.1", "features.4"]
    assert report.batchnorm_changed == []
    # Modes are as they were before the run (set_train_mode was only for the run).
    assert [m.training for m in model.modules()] == [t for _, t in before.modules.values()]
    result.discard()


def test_keep_is_one_undoable_step_restoring_bits_and_objects():
    session = finetune_session()
    before = snapshot(session.model)
    steps_before = len(session.history.steps)
    result = Trainer(session, FAST).run()
    trained = snapshot(session.model)
    result.keep()
    assert len(session.history.steps) == steps_before + 1
    assert session.history.undo_label == "Test training: 30 steps"
    assert result.state == "kept"
    assert session.busy_reason is None
    session.undo()
    assert_same(before, snapshot(session.model))
    session.redo()
    assert_same(trained, snapshot(session.model))
    recorded = session.recipe()[-1]
    assert recorded["op"] == "train"
    assert recorded["steps"] == 30
    assert recorded["seed"] == 0


def test_discard_restores_every_bit_including_batchnorm_statistics():
    session = open_demo()  # nothing frozen: BatchNorm statistics move too
    before = snapshot(session.model)
    result = Trainer(session, {**FAST, "steps": 5}).run()
    assert result.report.batchnorm_changed == ["features.1", "features.4"]
    assert "features.1.num_batches_tracked" in result.report.changed
    result.discard()
    assert_same(before, snapshot(session.model))
    assert result.state == "discarded"
    assert session.busy_reason is None
    assert not session.history.steps
    with pytest.raises(EditError, match="already discarded"):
        result.keep()


def test_discard_tells_views_which_tensors_went_back():
    session = Session(seeded(MLP))
    seen: list[list[str]] = []
    session.events.tensors_changed.connect(seen.append)
    Trainer(session, {"steps": 3, "seed": 0}).run().discard()
    assert seen
    assert "fc1.weight" in seen[0]


def test_session_refuses_edits_during_the_run_and_until_decided():
    session = Session(seeded(MLP))
    refused = []

    def during(_metrics) -> None:
        with pytest.raises(EditError, match="busy"):
            session.apply({"op": "freeze", "targets": ["fc1"]})
        refused.append(True)

    result = Trainer(session, {"steps": 5, "seed": 0}).run(on_metrics=during,
                                                             report_interval=0.0)
    assert refused
    with pytest.raises(EditError, match="keep or discard"):
        session.apply({"op": "freeze", "targets": ["fc1"]})
    with pytest.raises(EditError, match="busy"):
        session.undo()
    result.keep()
    session.apply({"op": "freeze", "targets": ["fc1"]})
    assert session.history.labels[-2:] == ["Test training: 5 steps", "Freeze fc1"]


def test_stop_ends_the_run_cleanly_at_a_step_boundary():
    session = finetune_session()
    before = snapshot(session.model)
    progress = Progress()
    updates = []

    def stop_after_first_update(metrics) -> None:
        updates.append(metrics)
        if metrics.step >= 3:
            progress.cancel()

    result = Trainer(session, {**FAST, "steps": 10_000}).run(
        progress=progress, on_metrics=stop_after_first_update, report_interval=0.0)
    report = result.report
    assert report.stopped
    assert report.stop_reason == "stopped"
    assert 3 <= report.steps < 10_000
    assert len(report.loss_curve) > 0
    assert report.loss_curve[-1][0] == report.steps
    assert updates[-1].step == report.steps
    assert session.busy_reason is not None, "a stopped run still waits for Keep or Discard"
    result.keep()
    assert session.recipe()[-1]["steps"] == report.steps
    assert session.history.undo_label == f"Test training: {report.steps} steps"
    session.undo()
    assert_same(before, snapshot(session.model))


def test_stop_from_another_thread():
    session = Session(seeded(SmallCNN))
    before = snapshot(session.model)
    progress = Progress()
    started = threading.Event()
    outcome = {}

    def work() -> None:
        outcome["result"] = Trainer(session, {"steps": 100_000, "input_shape": [3, 8, 8],
                                              "seed": 0}).run(
            progress=progress, on_metrics=lambda _m: started.set(), report_interval=0.0)

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(60)
    progress.cancel()
    thread.join(60)
    assert not thread.is_alive()
    result = outcome["result"]
    assert result.report.stopped
    assert result.report.steps < 100_000
    result.discard()
    assert_same(before, snapshot(session.model))


def test_cancel_before_the_first_step_changes_nothing():
    session = Session(seeded(MLP))
    progress = Progress()
    progress.cancel()
    from engine.progress import Cancelled

    with pytest.raises(Cancelled):
        Trainer(session, {"steps": 5}).run(progress=progress)
    assert session.busy_reason is None


def test_per_module_learning_rates_reach_the_optimizer():
    session = finetune_session()
    config = {**FAST, "steps": 2, "optimizer": "sgd", "momentum": 0.5,
              "lr_multipliers": {"classifier.4": 10.0}}
    trainer = Trainer(session, config)
    optimizer = trainer.build_optimizer()
    groups = {group["lr_multiplier"]: group for group in optimizer.param_groups}
    assert groups[10.0]["lr"] == pytest.approx(0.1)
    assert groups[1.0]["lr"] == pytest.approx(0.01)
    assert groups[10.0]["momentum"] == 0.5
    head = session.model.classifier[4]
    assert {id(p) for p in groups[10.0]["params"]} == {id(head.weight), id(head.bias)}
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert all(id(p) not in optimized for p in session.model.features.parameters()), \
        "only trainable parameters go to the optimizer"

    used = []

    class Recording(Trainer):
        def build_optimizer(self, groups=None):
            optimizer = super().build_optimizer(groups)
            used.append([(g["lr"], list(g["names"])) for g in optimizer.param_groups])
            return optimizer

    result = Recording(session, config).run()
    assert used == [[(0.01, ["classifier.1.weight", "classifier.1.bias"]),
                     (pytest.approx(0.1), ["classifier.4.weight", "classifier.4.bias"])]]
    assert [g["lr_multiplier"] for g in result.report.param_groups] == [1.0, 10.0]
    result.discard()


def test_later_multiplier_wins_and_globs_work():
    session = Session(seeded(MLP))
    groups = Trainer(session, {"lr": 1.0, "lr_multipliers": {"*": 0.5, "fc2": 3.0}}) \
        .parameter_groups()
    assert {tuple(g["names"]): g["lr"] for g in groups} == {
        ("fc1.weight", "fc1.bias"): 0.5, ("fc2.weight", "fc2.bias"): 3.0}


def test_multiplier_errors_name_the_field():
    session = finetune_session()
    with pytest.raises(EditError, match=r"train.lr_multipliers: 'features' selects only frozen"):
        Trainer(session, {"lr_multipliers": {"features": 2.0}}).parameter_groups()
    with pytest.raises(EditError, match=r"train.lr_multipliers: 'nope' not found"):
        Trainer(session, {"lr_multipliers": {"nope": 2.0}}).parameter_groups()
    with pytest.raises(EditError, match=r"train.lr_multipliers.fc: must be >= 0"):
        Trainer(session, {"lr_multipliers": {"fc": -1}})


def test_everything_frozen_is_refused_before_anything_changes():
    session = Session(seeded(MLP))
    session.apply({"op": "freeze", "targets": ["*"]})
    with pytest.raises(EditError, match="no trainable parameters"):
        Trainer(session, {"steps": 2}).run()
    assert session.busy_reason is None


def test_ties_are_checked_and_stay_one_object():
    session = Session(seeded(TiedLM))
    model = session.model
    result = Trainer(session, {"steps": 20, "seed": 0, "lr": 0.01}).run()
    report = result.report
    assert report.ties == [["embed.weight", "lm_head.weight"]]
    assert report.ties_broken == []
    assert {c.name: c.status for c in report.checks}["tied tensors still tied"] == "pass"
    assert model.lm_head.weight is model.embed.weight
    assert report.loss_end < report.loss_start
    result.discard()


class SneakyModel(nn.Module):
    """Changes a frozen weight inside forward: the report must say so, not hide it."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.frozen.weight.mul_(1.001)
        return self.head(self.frozen(x))


def test_a_changed_frozen_tensor_is_reported_as_a_failure():
    session = Session(seeded(SneakyModel))
    session.apply({"op": "freeze", "targets": ["frozen"]})
    result = Trainer(session, {"steps": 3, "seed": 0}).run()
    report = result.report
    assert report.frozen_changed == ["frozen.weight"]
    check = next(c for c in report.checks if c.name == "frozen tensors bit-identical")
    assert check.status == "fail"
    assert "frozen.weight" in check.detail
    assert not report.passed
    assert "FAIL  frozen tensors bit-identical" in report.format_text()
    result.discard()


def test_a_failure_mid_run_restores_the_model_and_releases_the_session():
    session = Session(seeded(MLP))
    before = snapshot(session.model)

    def explode(metrics) -> None:
        if metrics.step >= 2:
            raise RuntimeError("view broke")

    with pytest.raises(EditError, match=r"train: step \d+: view broke"):
        Trainer(session, {"steps": 50, "seed": 0}).run(on_metrics=explode, report_interval=0.0)
    assert_same(before, snapshot(session.model))
    assert session.busy_reason is None
    for parameter in session.model.parameters():
        assert parameter.grad is None


def test_nan_loss_stops_the_run_and_fails_the_check():
    session = Session(seeded(MLP))
    result = Trainer(session, {"steps": 200, "seed": 0, "lr": 1e30, "optimizer": "sgd"}).run(
        report_interval=0.0)
    report = result.report
    assert report.stopped
    assert report.stop_reason.startswith("loss became")
    assert not report.passed
    result.discard()


def test_same_seed_gives_the_same_bits_and_a_recipe_replays_a_kept_run():
    first = finetune_session()
    Trainer(first, FAST).run().keep()
    second = finetune_session()
    Trainer(second, FAST).run().keep()
    third = open_demo()
    replay(third, first.recipe())
    trained = {name: bits(t) for name, t in first.state_dict().items()}
    for other in (second, third):
        for name, tensor in other.state_dict().items():
            assert torch.equal(trained[name], bits(tensor)), f"{name} differs"
    assert third.history.labels[-1] == "Test training: 30 steps"
    third.undo()
    assert not torch.equal(bits(third.model.classifier[4].weight), trained["classifier.4.weight"])


def test_a_train_edit_without_a_seed_records_the_one_it_drew():
    session = Session(seeded(MLP))
    report = session.apply({"op": "train", "steps": 3})
    recorded = session.recipe()[-1]
    assert isinstance(recorded["seed"], int)
    assert recorded["input_shape"] == [6]
    assert recorded["num_classes"] == 4
    assert recorded["task"] == "classification"
    assert report["steps"] == 3
    replayed = Session(seeded(MLP))
    replay(replayed, session.recipe())
    for name, tensor in session.state_dict().items():
        assert torch.equal(bits(tensor), bits(replayed.state_dict()[name]))


def test_train_edit_fields_are_validated():
    session = Session(seeded(MLP))
    with pytest.raises(EditError, match=r"train.steps: must be >= 1"):
        session.apply({"op": "train", "steps": 0})
    with pytest.raises(EditError, match=r"train.bogus: unknown field"):
        session.apply({"op": "train", "bogus": 1})


@pytest.mark.parametrize(("settings", "message"), [
    ({"lr": -1}, r"train.lr: must be > 0"),
    ({"lr": float("nan")}, r"train.lr: must be finite"),
    ({"steps": 5, "epochs": 2}, r"train.epochs: give steps or epochs, not both"),
    ({"optimizer": "lbfgs"}, r"train.optimizer: expected one of sgd, adam, adamw"),
    ({"device": "tpu"}, r"train.device: expected auto, cpu, cuda"),
    ({"precision": "fp8"}, r"train.precision"),
    ({"input_shape": [3, 0]}, r"train.input_shape: expected a list of positive sizes"),
    ({"batch_size": True}, r"train.batch_size: expected an integer"),
    ({"wat": 1}, r"train.wat: unknown setting"),
])
def test_config_errors_name_the_field(settings, message):
    with pytest.raises(EditError, match=message):
        TrainConfig.from_dict(settings)


def test_epochs_become_steps():
    session = Session(seeded(MLP))
    result = Trainer(session, {"epochs": 2, "samples": 40, "batch_size": 16, "seed": 0}).run()
    assert result.report.steps == 2 * (40 // 16)
    result.keep()
    assert session.recipe()[-1]["steps"] == 4
    assert session.recipe()[-1]["epochs"] is None


def test_bf16_autocast_on_the_cpu_and_unavailable_devices():
    session = Session(seeded(SmallCNN))
    result = Trainer(session, {"steps": 3, "precision": "bf16", "input_shape": [3, 8, 8],
                               "seed": 0}).run()
    assert result.report.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in session.model.parameters())
    result.discard()
    with pytest.raises(EditError, match="fp16 needs a CUDA device"):
        Trainer(session, {"steps": 3, "precision": "fp16", "device": "cpu"}).run()
    if not torch.cuda.is_available():
        with pytest.raises(EditError, match="CUDA is not available"):
            Trainer(session, {"steps": 3, "device": "cuda"}).run()
    assert session.busy_reason is None


def test_checkpoint_mode_is_refused():
    session = Session(checkpoint={"w": torch.zeros(3)})
    with pytest.raises(EditError, match="train: needs a model"):
        Trainer(session, {})


def test_stale_gradients_are_put_back_untouched():
    session = Session(seeded(MLP))
    marker = torch.full_like(session.model.fc1.weight, 7.0)
    session.model.fc1.weight.grad = marker
    Trainer(session, {"steps": 2, "seed": 0}).run().discard()
    assert session.model.fc1.weight.grad is marker
    assert session.model.fc2.weight.grad is None


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_run_keeps_objects_on_their_device_and_discard_restores(precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    session = finetune_session()
    before = snapshot(session.model)
    result = Trainer(session, {**FAST, "device": "cuda", "precision": precision}).run()
    report = result.report
    assert report.device.startswith("cuda")
    assert report.loss_end < report.loss_start
    assert report.passed
    assert all(p.device.type == "cpu" for p in session.model.parameters())
    result.discard()
    assert_same(before, snapshot(session.model))


@cuda
def test_cuda_kept_run_undoes_exactly():
    session = finetune_session()
    before = snapshot(session.model)
    Trainer(session, {**FAST, "device": "cuda", "precision": "bf16"}).run().keep()
    session.undo()
    assert_same(before, snapshot(session.model))


def test_a_reservation_refuses_edits_until_the_run_or_a_release():
    session = Session(seeded(MLP))
    trainer = Trainer(session, {"steps": 2, "seed": 0})
    trainer.reserve()
    with pytest.raises(EditError, match="a test training is running"):
        session.apply({"op": "freeze", "targets": ["fc1"]})
    trainer.release()
    session.apply({"op": "freeze", "targets": ["fc1"]})
    trainer.reserve()
    result = trainer.run()
    assert session.busy_reason is not None
    result.discard()
    assert session.busy_reason is None


def test_multiplier_text():
    from engine.training.config import multipliers_from_text

    assert multipliers_from_text(" fc=10, layer4.*=0.5; x = 2 ") == {
        "fc": 10.0, "layer4.*": 0.5, "x": 2.0}
    assert multipliers_from_text("") == {}
    with pytest.raises(EditError, match="expected NAME=NUMBER such as fc=10; got 'fc'"):
        multipliers_from_text("fc")
    with pytest.raises(EditError, match="got 'fc=ten'"):
        multipliers_from_text("fc=ten")


def test_long_runs_measure_accuracy_on_evenly_spaced_steps(monkeypatch):
    import engine.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "ACCURACY_POINTS", 4)
    session = Session(seeded(MLP))
    points = []
    result = Trainer(session, {"steps": 10, "seed": 0}).run(
        on_metrics=lambda m: points.extend(m.accuracies), report_interval=0.0)
    assert [step for step, _ in points] == [1, 4, 7, 10]
    assert all(value in (i / 32 for i in range(33)) for _, value in points)
    assert result.report.accuracy_every == 3
    assert "measured on 1 batch in 3" in result.report.format_text()
    result.discard()


def test_a_run_stopped_before_its_first_step_keeps_nothing():
    session = Session(seeded(MLP))
    progress = Progress()
    original_check = progress.check

    def cancel_after_setup() -> None:
        original_check()
        progress.cancel()  # the run's last check before the loop passes, then Stop

    progress.check = cancel_after_setup
    result = Trainer(session, {"steps": 5, "seed": 0}).run(progress=progress)
    assert result.report.steps == 0
    assert result.report.stopped
    assert {c.status for c in result.report.checks} <= {"pass", "skip"}
    result.keep()
    assert result.state == "discarded"
    assert not session.history.steps
    assert session.busy_reason is None
