"""An adapter folder's files are read only from inside it (issue 8's follow-up, class 4):
`adapter_model.safetensors` or `adapter_config.json` linked to a file elsewhere was
followed and read before; now it is refused in one line, as a sharded set's or a Hugging
Face folder's weights are."""

from __future__ import annotations

import pytest
import torch

from engine import EditError, Session
from tests.engine.test_lora import Tiny, make_adapter


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "adapter_config.json"])
def test_a_link_out_of_the_adapter_folder_is_refused(tmp_path, name):
    torch.manual_seed(0)
    model = Tiny()
    folder = tmp_path / "adapter"
    make_adapter(model, folder, r=2, lora_alpha=2, target_modules=["fc1"])
    outside = tmp_path / f"outside-{name}"
    (folder / name).rename(outside)
    (folder / name).symlink_to(outside)
    session = Session(model)
    with pytest.raises(EditError) as refused:
        session.apply({"op": "merge_lora", "adapter": str(folder)})
    message = str(refused.value)
    assert "\n" not in message
    assert f"{folder / name}: is a link to {outside}, outside {folder}; refused" in message
    assert session.history.position == 0


def test_a_link_inside_the_folder_is_read(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    folder = tmp_path / "adapter"
    make_adapter(model, folder, r=2, lora_alpha=2, target_modules=["fc1"])
    (folder / "adapter_model.safetensors").rename(folder / "real.safetensors")
    (folder / "adapter_model.safetensors").symlink_to("real.safetensors")
    session = Session(model)
    session.apply({"op": "merge_lora", "adapter": str(folder)})
    assert session.history.position == 1
