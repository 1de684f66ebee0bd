"""Hugging Face folders open in model mode (`arch="hf"`) as `from_pretrained` loads them.

Every folder here is written the way a real tool writes it (see hf_folders.py); the
oracle is transformers itself: `from_pretrained(..., output_loading_info=True)` gives the
missing and unexpected names it reports, the tensors it loaded and the ties it kept.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from engine import Session
from engine.errors import FileError
from engine.io.fill import report_notes, report_problems

from . import hf_folders
from .hf_folders import WRITERS, from_pretrained


def _ties(model: torch.nn.Module) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), set()).add(name)
    return {frozenset(names) for names in groups.values() if len(names) > 1}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_hf_folder_loads_as_from_pretrained_does(tmp_path, kind):
    folder = WRITERS[kind](tmp_path / kind)
    reference, info = from_pretrained(folder)
    session = Session.open(folder, arch="hf", strict=False)
    report = session.source["load_report"]
    assert sorted(report["missing"]) == sorted(info["missing_keys"])
    assert sorted(report["unexpected"]) == sorted(info["unexpected_keys"])
    assert report["mismatched"] == []
    assert not info["mismatched_keys"]
    model = session.model
    assert type(model) is type(reference)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    for name, tensor in theirs.items():
        if name not in report["missing"]:
            assert tensor.dtype == ours[name].dtype, name
            assert torch.equal(tensor, ours[name]), name
    assert _ties(model) == _ties(reference)
    # Every name that left the missing/unexpected lists is said, with a reason.
    for item in report["ignored"]:
        assert item["kind"] in ("missing", "unexpected")
        assert item["reason"]


@pytest.mark.parametrize(("kind", "ignored"), [
    ("sentence_transformers_bert", ["embeddings.position_ids"]),
    ("old_llama", ["model.layers.0.self_attn.rotary_emb.inv_freq",
                   "model.layers.1.self_attn.rotary_emb.inv_freq"]),
    ("bart_without_final_logits_bias", ["final_logits_bias"]),
])
def test_real_checkpoints_open_strictly_and_say_what_was_ignored(tmp_path, kind, ignored):
    folder = WRITERS[kind](tmp_path / kind)
    session = Session.open(folder, arch="hf")  # strict: nothing left unexplained
    report = session.source["load_report"]
    assert [item["name"] for item in report["ignored"]] == ignored
    notes = report_notes(report)
    assert len(notes) == 1
    assert all(name in notes[0] for name in ignored[:3])
    assert session.mode == "model"


def test_sentence_transformers_bert_reason_and_saved_output(tmp_path):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    session = Session.open(folder, arch="hf")
    (item,) = session.source["load_report"]["ignored"]
    assert item["kind"] == "unexpected"
    assert "non-persistent" in item["reason"]
    session.save(tmp_path / "out")
    # The saved folder holds exactly the model's persistent tensors, which transformers
    # loads with nothing missing or unexpected.
    written = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert "embeddings.position_ids" not in written
    loaded, info = from_pretrained(tmp_path / "out")
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    for name, tensor in session.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_base_model_prefix_is_stripped_or_added_per_name(tmp_path):
    prefixed = Session.open(hf_folders.bert_with_prefix(tmp_path / "prefixed"), arch="hf")
    report = prefixed.source["load_report"]
    assert ["bert.pooler.dense.weight", "pooler.dense.weight"] in report["renamed"]
    assert report_problems(report) == []
    assert "pooler.dense.weight" in prefixed.document.tensor_names()
    folder = hf_folders.head_model_from_base(tmp_path / "head")
    with pytest.raises(FileError, match=r"does not fit hf: 2 tensor\(s\) of the model missing "
                                        r"from the file \(e\.g\. 'classifier\.weight'\).*"
                                        r"--no-strict"):
        Session.open(folder, arch="hf")
    head = Session.open(folder, arch="hf", strict=False)
    assert type(head.model).__name__ == "BertForSequenceClassification"
    assert ["pooler.dense.bias", "bert.pooler.dense.bias"] in \
        head.source["load_report"]["renamed"]


def test_legacy_names_are_renamed(tmp_path):
    folder = hf_folders.legacy_bert(tmp_path / "legacy")
    session = Session.open(folder, arch="hf")
    renamed = dict(map(tuple, session.source["load_report"]["renamed"]))
    assert renamed["embeddings.LayerNorm.gamma"] == "embeddings.LayerNorm.weight"
    stored = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert torch.equal(session.document.tensor("embeddings.LayerNorm.weight"),
                       stored["embeddings.LayerNorm.gamma"])


def test_tied_names_stay_tied_or_are_untied_as_transformers_does(tmp_path):
    equal = Session.open(hf_folders.gpt2_both_tied_names(tmp_path / "eq", equal=True),
                         arch="hf")
    assert equal.model.lm_head.weight is equal.model.transformer.wte.weight
    folder = hf_folders.gpt2_both_tied_names(tmp_path / "diff", equal=False)
    different = Session.open(folder, arch="hf")
    model = different.model
    assert model.lm_head.weight is not model.transformer.wte.weight
    stored = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert torch.equal(model.lm_head.weight, stored["lm_head.weight"])
    assert torch.equal(model.transformer.wte.weight, stored["transformer.wte.weight"])
    assert different.source["load_report"]["untied"] == ["lm_head.weight"]
    assert "lm_head.weight" not in model.all_tied_weights_keys


def test_old_gpt2_strict_names_what_transformers_also_reports(tmp_path):
    folder = hf_folders.old_gpt2(tmp_path / "gpt2")
    with pytest.raises(FileError, match=r"2 unexpected in the file \(e\.g\. 'h\.0\.attn\."
                                        r"masked_bias'\)"):
        Session.open(folder, arch="hf")
    session = Session.open(folder, arch="hf", strict=False)
    report = session.source["load_report"]
    assert {item["name"] for item in report["ignored"]} == {"h.0.attn.bias", "h.1.attn.bias"}
    assert session.model.lm_head.weight is session.model.transformer.wte.weight


def test_attach_hf_follows_the_same_rules(tmp_path):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    session = Session.open(folder)
    assert session.mode == "checkpoint"
    report = session.apply({"op": "attach", "arch": "hf", "strict": True})
    assert session.mode == "model"
    assert [item["name"] for item in report["ignored"]] == ["embeddings.position_ids"]
    session.undo()
    assert session.mode == "checkpoint"
    assert "embeddings.position_ids" in session.document.tensor_names()


def test_generic_architecture_reports_tie_conflicts(tmp_path):
    from tests.models import TiedLM, seeded

    state = seeded(TiedLM).state_dict()
    state["lm_head.weight"] = state["embed.weight"] + 1
    path = tmp_path / "lm.pt"
    torch.save(state, path)
    with pytest.raises(FileError, match=r"1 tied in the model but different in the file "
                                        r"\(e\.g\. 'lm_head\.weight'; kept 'embed\.weight'\)"):
        Session.open(path, arch="tests/models.py:TiedLM")

