"""A few bytes of recipe never cost unbounded memory: every edit that allocates from a
shape or a count it is given is sized first and refused in one line (engine.allocation).

Each case asks for terabytes; before the limits, each one allocated (or tried to, and
died with MemoryError, RuntimeError or the OOM killer). The fuzz test draws the numbers
of every such field and checks that what is refused is exactly what passes the limit.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from cli.main import main
from engine import EditError, Session
from engine.allocation import FLOOR_BYTES, AllocationRefused, allocation_allowed
from engine.document import CheckpointDocument
from engine.errors import WeightsmithError
from engine.training import Trainer
from tests.models import MLP, seeded

TIB = 2**40


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    return message


def untouched(session: Session):
    return {name: tensor.clone() for name, tensor in session.document.state_dict().items()}


def assert_refused(session: Session, spec: dict, field: str) -> AllocationRefused:
    before = untouched(session)
    steps = list(session.history.labels)
    with pytest.raises(AllocationRefused) as refused:
        session.apply(spec)
    message = one_line(refused.value)
    assert message.startswith(f"{field}: ")
    assert "would allocate" in message
    assert "at most" in message
    assert refused.value.needed > refused.value.limit
    after = session.document.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert list(session.history.labels) == steps
    return refused.value


# ------------------------------------------------------------------------ each field
def test_resize_to_a_terabyte_is_refused_before_allocating():
    session = Session(seeded(MLP))
    error = assert_refused(session, {"op": "resize", "target": "fc1.weight",
                                     "shape": [1_000_000, 1_000_000]}, "resize.shape")
    assert error.needed == 4 * 10**12
    assert "3.6 TiB" in str(error)
    assert "[1000000, 1000000]" in str(error)


def test_resize_with_sizes_past_what_torch_can_count_names_the_field():
    with pytest.raises(EditError, match=r"^resize\.shape: .*2\*\*63"):
        Session(seeded(MLP)).apply({"op": "resize", "target": "fc1.weight",
                                    "shape": [0, 2**62 * 3]})


def test_replace_with_a_billion_features_is_refused():
    session = Session(seeded(MLP))
    error = assert_refused(session, {"op": "replace", "target": "fc2",
                                     "module": {"type": "Linear", "out_features": 10**9}},
                           "replace.module")
    assert error.needed == 4 * (8 * 10**9 + 10**9)
    assert "Linear" in str(error)


@pytest.mark.parametrize(("spec", "field"), [
    ({"num_classes": 10**10}, "replace_head.num_classes"),
    ({"num_classes": 3, "hidden": [10**9, 10**9]}, "replace_head.hidden"),
])
def test_replace_head_sizes_are_refused(spec, field):
    assert_refused(Session(seeded(MLP)), {"op": "replace_head", "target": "fc2", **spec}, field)


def test_attach_arguments_that_make_a_huge_model_are_refused():
    pytest.importorskip("torchvision")
    session = Session(checkpoint={"fc.weight": torch.zeros(2, 512)})
    error = assert_refused(session, {"op": "attach", "arch": "torchvision:resnet18",
                                     "arch_args": {"num_classes": 10**9}}, "attach.arch_args")
    assert "torchvision:resnet18" in str(error)
    assert isinstance(session.document, CheckpointDocument)


@pytest.mark.parametrize("expr", [
    "x.reshape(-1, 1) * x.reshape(1, -1)",
    "(x.reshape(-1, 1) @ x.reshape(1, -1)).sum()",  # the result is small, not the inside
    "lerp(x.reshape(-1, 1), x.reshape(1, -1), 0.5).amax()",
])
def test_an_expression_that_builds_a_huge_tensor_is_refused(expr):
    session = Session(nn.Linear(1000, 100))
    error = assert_refused(session, {"op": "set", "target": "weight", "expr": expr},
                           "set.expr")
    assert error.needed >= 4 * 10**10


def test_an_expression_over_another_tensor_is_sized_with_it():
    session = Session(nn.Sequential(nn.Linear(1000, 100), nn.Linear(2, 1)))
    # x (the small layer's 2 weights) alone cannot build much; t() of the big one can
    error = assert_refused(session, {"op": "set", "target": "1.weight",
                                     "expr": "(t('0.weight').reshape(-1, 1) "
                                             "* t('0.weight').reshape(1, -1)).sum() + x"},
                           "set.expr")
    assert error.needed == 4 * 10**10


def test_expressions_of_ordinary_size_still_run():
    session = Session(nn.Linear(1000, 100))
    session.allocation_limit = 10**6  # the weight is 400 kB: x * x fits, x squared does not
    session.apply({"op": "set", "target": "weight", "expr": "x * (x.abs() >= 0.05)"})
    session.apply({"op": "set", "target": "weight", "expr": "clamp(x, -1, 1) * 0.5"})
    with pytest.raises(AllocationRefused):
        session.apply({"op": "set", "target": "weight",
                       "expr": "(x.reshape(-1, 1) * x.reshape(1, -1)).sum()"})


def test_the_caller_sets_the_limit_and_can_raise_it():
    session = Session(seeded(MLP))
    session.allocation_limit = 2**20
    spec = {"op": "resize", "target": "fc1.weight", "shape": [1024, 512]}  # 2 MiB
    with pytest.raises(AllocationRefused, match=r"at most 1\.0 MiB \(the limit set"):
        session.apply(spec)
    with allocation_allowed(session, 4 * 2**20):
        session.apply(spec)
    assert session.document.tensor("fc1.weight").shape == (1024, 512)
    assert session.allocation_limit == 2**20


def test_the_default_limit_is_the_floor_for_a_small_model():
    session = Session(seeded(MLP))
    with pytest.raises(AllocationRefused) as refused:
        session.apply({"op": "resize", "target": "fc1.weight", "shape": [2**16, 2**13]})
    assert refused.value.limit <= FLOOR_BYTES
    session.apply({"op": "resize", "target": "fc1.weight", "shape": [2**10, 2**10]})


# ------------------------------------------------------------------------ training
@pytest.mark.parametrize(("settings_", "field"), [
    ({"steps": 10**9}, "train.steps"),
    ({"steps": None, "epochs": 10**9}, "train.epochs"),
])
def test_training_counts_are_bounded(settings_, field):
    with pytest.raises(EditError, match=rf"^{field}: must be <= 1,000,000, got 1,000,000,000$"):
        Trainer(Session(seeded(MLP)), {"seed": 0, **settings_}).run()


def test_epochs_that_make_too_many_steps_are_refused():
    session = Session(seeded(MLP))
    with pytest.raises(EditError, match=r"^train\.epochs: 1,000,000 epochs of 64 steps make "
                                        r"64,000,000 steps; a training takes at most"):
        Trainer(session, {"seed": 0, "steps": None, "epochs": 10**6, "batch_size": 4,
                          "samples": 256}).run()


@pytest.mark.parametrize(("settings_", "field"), [
    ({"input_shape": [100_000, 100_000]}, "train.input_shape"),
    ({"samples": 10**12}, "train.samples"),
])
def test_synthetic_data_is_sized_before_it_is_made(settings_, field):
    session = Session(seeded(MLP))
    with pytest.raises(AllocationRefused) as refused:
        Trainer(session, {"seed": 0, "steps": 1, **settings_}).run()
    assert one_line(refused.value).startswith(f"{field}: ")
    assert session.busy_reason is None


def test_image_folder_batches_are_sized_before_images_are_read(tmp_path):
    from PIL import Image

    from tests.models import SmallCNN

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / label / "0.png")
    with pytest.raises(AllocationRefused, match=r"^train\.image_size: batches of 2 images of "
                                                r"3x100000x100000"):
        Trainer(Session(seeded(SmallCNN)), {"seed": 0, "steps": 1, "data": str(tmp_path),
                                            "image_size": 100_000, "batch_size": 2}).run()


# ------------------------------------------------------------------------ CLI
def test_the_cli_refuses_in_one_line_and_takes_a_limit(tmp_path, capsys):
    torch.save(seeded(MLP).state_dict(), tmp_path / "in.pt")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "resize", "target": "fc1.weight", "shape": [1024, 1024]}]}))
    out = tmp_path / "out.safetensors"
    code = main(["apply", str(recipe), "--input", str(tmp_path / "in.pt"), "--output", str(out),
                 "--max-edit-memory", "1M"])
    err = capsys.readouterr().err
    assert code != 0
    assert not out.exists()
    assert err.count("\n") == 1
    assert "resize.shape: a float32 tensor of [1024, 1024] would allocate 4.0 MiB" in err
    assert main(["apply", str(recipe), "--input", str(tmp_path / "in.pt"), "--output",
                 str(out), "--max-edit-memory", "8M"]) == 0
    with pytest.raises(SystemExit):
        main(["apply", str(recipe), "--input", str(tmp_path / "in.pt"), "--output", str(out),
              "--max-edit-memory", "lots"])
    assert "expected a size such as 8G" in capsys.readouterr().err


# ------------------------------------------------------------------------ fuzz
LIMIT = 2**16  # bytes: what is accepted below is tiny, what is refused is never allocated
sizes = st.one_of(st.integers(0, 64), st.integers(0, 10**13))


def resize_case(draw):
    shape = [draw(sizes), draw(sizes)]
    return ({"op": "resize", "target": "fc1.weight", "shape": shape},
            4 * shape[0] * shape[1], "resize.shape")


def replace_case(draw):
    features = draw(sizes.filter(lambda n: n > 0))
    return ({"op": "replace", "target": "fc2", "module": {"type": "Linear",
                                                           "out_features": features}},
            4 * (8 * features + features), "replace.module")


def head_case(draw):
    classes = draw(sizes.filter(lambda n: n > 0))
    hidden = draw(st.lists(sizes.filter(lambda n: n > 0), max_size=2))
    sizes_in = [8, *hidden]
    sizes_out = [*hidden, classes]
    params = sum(4 * (a * b + b) for a, b in zip(sizes_in, sizes_out, strict=True))
    field = "replace_head.hidden" if hidden else "replace_head.num_classes"
    return ({"op": "replace_head", "target": "fc2", "num_classes": classes,
             "hidden": hidden}, params, field)


def expr_case(draw):
    power = draw(st.integers(1, 4))
    # x (fc1.weight, 48 elements) named `power` times, each a new axis of a broadcast
    factors = [f"x.reshape({', '.join('-1' if i == j else '1' for j in range(power))})"
               for i in range(power)]
    return ({"op": "set", "target": "fc1.weight",
             "expr": f"({' * '.join(factors)}).mean()"}, 4 * 48**power, "set.expr")


@st.composite
def cases(draw):
    maker = draw(st.sampled_from([resize_case, replace_case, head_case, expr_case]))
    return maker(draw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fuzz_what_is_refused_is_exactly_what_passes_the_limit(case):
    spec, needed, field = case
    session = Session(seeded(MLP))
    session.allocation_limit = LIMIT
    outcome: BaseException | None = None
    try:
        session.apply(spec)
    except WeightsmithError as error:
        outcome = error
    if isinstance(outcome, AllocationRefused):
        assert needed > LIMIT, spec
        assert one_line(outcome).startswith(f"{field}: ")
        assert outcome.needed == needed or field == "set.expr"
    elif outcome is not None:  # e.g. a shape torch cannot count: one line of ours
        one_line(outcome)
        assert needed > LIMIT, spec
    else:
        assert needed <= LIMIT, spec
