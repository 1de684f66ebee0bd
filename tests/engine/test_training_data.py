"""Test training data: synthetic shapes from the model, tensor files, image folders, bad data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from engine import EditError, Session
from engine.demo import demo_model
from engine.errors import FileError
from engine.training import TrainConfig, Trainer
from engine.training.data import open_data
from engine.training.model_io import propose_input
from tests.models import MLP, SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, snapshot


@pytest.mark.parametrize(("factory", "shape", "tokens"), [
    (MLP, (6,), None),
    (SmallCNN, (3, 64, 64), None),  # adaptive pooling: the small default side
    (demo_model, (1, 8, 8), None),  # a flatten into a fixed Linear: only 8x8 fits
    (TiedLM, (16,), 11),
    (lambda: torchvision.models.resnet18(num_classes=3), (3, 64, 64), None),
])
def test_input_shape_is_proposed_from_the_model(factory, shape, tokens):
    guess = propose_input(seeded(factory), torch.float32)
    assert guess.shape == shape
    assert guess.tokens == tokens


def test_a_model_with_no_known_first_layer_needs_an_input_shape():
    with pytest.raises(EditError, match=r"train.input_shape: cannot be proposed"):
        propose_input(nn.Sequential(nn.ReLU()), torch.float32)


def test_synthetic_targets_follow_the_model_output():
    config = TrainConfig(samples=20)
    data = open_data(config, seeded(MLP), seed=0)
    assert data.inputs.shape == (20, 6)
    assert data.targets.dtype == torch.int64
    assert int(data.targets.max()) < 4
    assert data.resolved == {"input_shape": [6], "num_classes": 4}
    regression = open_data(TrainConfig(samples=20, task="regression"), seeded(MLP), seed=0)
    assert regression.targets.shape == (20, 4)
    assert regression.targets.is_floating_point()
    fewer = open_data(TrainConfig(samples=50, num_classes=2), seeded(MLP), seed=0)
    assert set(fewer.targets.tolist()) == {0, 1}
    with pytest.raises(EditError, match=r"train.num_classes: 9 is more than the model's 4"):
        open_data(TrainConfig(num_classes=9), seeded(MLP), seed=0)


def test_synthetic_data_is_the_same_for_the_same_seed():
    first = open_data(TrainConfig(samples=8), seeded(SmallCNN), seed=3)
    second = open_data(TrainConfig(samples=8), seeded(SmallCNN), seed=3)
    assert torch.equal(first.inputs, second.inputs)
    assert torch.equal(first.targets, second.targets)


def test_a_given_input_shape_that_does_not_fit_names_the_field():
    session = Session(seeded(MLP))
    with pytest.raises(EditError, match=r"train.input_shape: input shape \[7\] does not fit"):
        Trainer(session, {"input_shape": [7]}).run()
    assert session.busy_reason is None


def write_tensor_file(path: Path, inputs: torch.Tensor, targets: torch.Tensor,
                      keys: tuple[str, str] = ("inputs", "targets")) -> Path:
    if path.suffix == ".npz":
        np.savez(path, **{keys[0]: inputs.numpy(), keys[1]: targets.numpy()})
    elif path.suffix == ".safetensors":
        save_file({keys[0]: inputs.contiguous(), keys[1]: targets.contiguous()}, str(path))
    else:
        torch.save({keys[0]: inputs, keys[1]: targets}, path)
    return path


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".pt"])
@pytest.mark.parametrize("keys", [("inputs", "targets"), ("x", "y")])
def test_tensor_files_train_a_classifier(tmp_path, suffix, keys):
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 4, (64,), generator=generator)
    inputs = torch.randn(64, 6, generator=generator) + torch.eye(6)[targets] * 3
    path = write_tensor_file(tmp_path / f"data{suffix}", inputs.double(), targets, keys)
    session = Session(seeded(MLP))
    result = Trainer(session, {"data": str(path), "steps": 40, "lr": 0.01, "seed": 0}).run()
    assert result.report.task == "classification"
    assert result.report.data == f"tensor file data{suffix} (64 samples)"
    assert result.report.loss_end < result.report.loss_start
    result.discard()


def test_a_tensor_file_with_float_targets_trains_a_regression(tmp_path):
    inputs = torch.randn(32, 6)
    targets = inputs[:, :4] * 2
    path = write_tensor_file(tmp_path / "reg.pt", inputs, targets)
    session = Session(seeded(MLP))
    result = Trainer(session, {"data": str(path), "steps": 30, "lr": 0.01, "seed": 0}).run()
    assert result.report.task == "regression"
    assert result.report.accuracy_end is None
    assert result.report.loss_end < result.report.loss_start
    result.discard()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: np.savez(p / "d.npz", images=np.zeros((3, 6))),
     r"d.npz: needs 'inputs' and 'targets' \(or 'x' and 'y'\); found images"),
    (lambda p: torch.save({"inputs": torch.zeros(3, 6), "targets": torch.zeros(2)}, p / "d.pt"),
     r"d.pt: 'inputs' has 3 samples but 'targets' has 2"),
    (lambda p: torch.save({"inputs": torch.zeros(0, 6), "targets": torch.zeros(0)}, p / "d.pt"),
     r"d.pt: 'inputs' holds no samples"),
    (lambda p: (p / "d.pt").write_bytes(pickle.dumps(object())),
     r"d.pt: refused: loading it would import and run code .*builtins\.object"),
    (lambda p: (p / "d.npz").write_bytes(b"not a zip"), r"d.npz: not a readable .npz file"),
    (lambda p: (p / "d.csv").write_text("1,2\n"), r"d.csv: unknown data file type"),
])
def test_bad_tensor_files_give_one_clear_line_before_training(tmp_path, make, message):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    with pytest.raises(FileError, match=message) as caught:
        Trainer(session, {"data": str(path)}).run()
    assert "\n" not in str(caught.value)
    assert "weights_only=False" not in str(caught.value)
    assert_same(before, snapshot(session.model))
    assert session.busy_reason is None


def test_samples_of_the_wrong_shape_are_refused_naming_the_source(tmp_path):
    path = write_tensor_file(tmp_path / "wrong.npz", torch.zeros(8, 5), torch.zeros(8).long())
    with pytest.raises(EditError, match=r"data: tensor file wrong.npz \(8 samples\): samples "
                                        r"of shape \[5\] do not fit the model"):
        Trainer(Session(seeded(MLP)), {"data": str(path)}).run()


def test_labels_out_of_range_and_task_mismatches_are_refused(tmp_path):
    labels = write_tensor_file(tmp_path / "labels.pt", torch.zeros(8, 6),
                               torch.arange(8))
    with pytest.raises(EditError, match=r"labels must be in \[0, 4\).*found 0..7"):
        Trainer(Session(seeded(MLP)), {"data": str(labels)}).run()
    floats = write_tensor_file(tmp_path / "floats.pt", torch.zeros(8, 6), torch.zeros(8, 4))
    with pytest.raises(EditError, match="classification needs integer class labels"):
        Trainer(Session(seeded(MLP)), {"data": str(floats), "task": "classification"}).run()
    with pytest.raises(EditError, match="regression needs floating-point targets"):
        Trainer(Session(seeded(MLP)), {"data": "demo", "task": "regression"}).run()


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(FileError, match=r"nothing-here: no such file or folder"):
        Trainer(Session(seeded(MLP)), {"data": str(tmp_path / "nothing-here")}).run()


def make_image_folder(root: Path, classes: int = 2, per_class: int = 4, size: int = 12) -> Path:
    from PIL import Image

    generator = np.random.default_rng(0)
    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = generator.integers(0, 255, (size, size, 3), dtype=np.uint8)
            pixels[..., label % 3] = 255  # a class colour, so the classes can be learnt
            Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def test_an_image_folder_trains_resized(tmp_path):
    root = make_image_folder(tmp_path / "images")
    session = Session(seeded(SmallCNN))
    result = Trainer(session, {"data": str(root), "image_size": 16, "steps": 6,
                               "batch_size": 4, "seed": 0}).run()
    report = result.report
    assert report.data == (f"image folder {root} (8 images, 2 classes, resized to 16x16)")
    assert report.steps == 6
    assert report.task == "classification"
    result.keep()
    assert session.recipe()[-1]["image_size"] == 16


def test_an_image_folder_is_resized_to_a_proposed_side_and_grey_for_one_channel(tmp_path):
    root = make_image_folder(tmp_path / "images", per_class=2)
    data = open_data(TrainConfig(data=str(root)), demo_model(), seed=0)
    images, labels = data.head(3)
    assert images.shape == (3, 1, 8, 8)
    assert labels.tolist() == [0, 0, 1]
    assert data.resolved == {"image_size": 8}


def test_empty_and_unusable_image_folders_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileError, match=r"empty: holds no images in class folders"):
        Trainer(Session(seeded(SmallCNN)), {"data": str(empty)}).run()
    root = make_image_folder(tmp_path / "images", per_class=1)
    with pytest.raises(EditError, match="an image folder needs a model that starts with a 2-D"):
        Trainer(Session(seeded(MLP)), {"data": str(root)}).run()
    (root / "class_0" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(FileError, match=r"broken.png: cannot be read as an image"):
        open_data(TrainConfig(data=str(root), image_size=8), seeded(SmallCNN), 0).head(3)


def test_more_classes_than_outputs_in_an_image_folder(tmp_path):
    root = make_image_folder(tmp_path / "images", classes=3, per_class=1)
    model = seeded(lambda: SmallCNN(num_classes=2))
    with pytest.raises(EditError, match=r"labels must be in \[0, 2\).*found 0..2"):
        Trainer(Session(model), {"data": str(root), "image_size": 8}).run()


class NotATensor:
    pass


def test_a_torch_file_holding_objects_is_refused_without_running_them(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"inputs": NotATensor(), "targets": torch.zeros(2)}, path)
    with pytest.raises(FileError, match=r"objects.pt: refused") as caught:
        Trainer(Session(seeded(MLP)), {"data": str(path)}).run()
    assert "weights_only" not in str(caught.value)
