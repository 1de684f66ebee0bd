"""Tiny Hugging Face folders as real tools write them, built in the tests (no downloads).

`save_pretrained` of transformers 5 writes what the model's `state_dict()` holds; the
other writers below reproduce what older transformers versions and sentence-transformers
left in real checkpoints: persistent `position_ids` and `attn.bias` buffers, per-layer
`rotary_emb.inv_freq`, the base model's prefix present or absent, both names of tied
embeddings, legacy `LayerNorm.gamma` names, a head model without a buffer it ignores.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """transformers logs and warns about what it ignores; the tests check it themselves."""
    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def bert_config(**overrides: Any) -> Any:
    values = {"vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 12}
    return transformers.BertConfig(**{**values, **overrides})


def gpt2_config(**overrides: Any) -> Any:
    values = {"n_layer": 2, "n_embd": 8, "n_head": 2, "vocab_size": 30, "n_positions": 12,
              "bos_token_id": 0, "eos_token_id": 0}
    return transformers.GPT2Config(**{**values, **overrides})


def llama_config(**overrides: Any) -> Any:
    values = {"vocab_size": 32, "hidden_size": 8, "intermediate_size": 16,
              "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
              "max_position_embeddings": 16}
    return transformers.LlamaConfig(**{**values, **overrides})


def saved(folder: Path, model: Any) -> Path:
    """`model.save_pretrained(folder)` (safetensors), quietly."""
    with quiet():
        model.save_pretrained(folder)
    return folder


def rewrite(folder: Path, change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
            *, bin_file: bool = False, architectures: list[str] | None = None) -> Path:
    """Rewrite the folder's weights through `change` (and its config's architectures)."""
    weights = folder / "model.safetensors"
    tensors = change(dict(load_file(str(weights))))
    if bin_file:
        weights.unlink()
        torch.save(tensors, folder / "pytorch_model.bin")
    else:
        save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(weights),
                  metadata={"format": "pt"})
    if architectures is not None:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text())
        config["architectures"] = architectures
        config_path.write_text(json.dumps(config))
    return folder


def sentence_transformers_bert(folder: Path) -> Path:
    """A BertModel as sentence-transformers (and transformers 4) saved it: with the
    `embeddings.position_ids` buffer, plus the sentence-transformers files."""
    torch.manual_seed(1)
    config = bert_config()
    saved(folder, transformers.BertModel(config))
    positions = torch.arange(config.max_position_embeddings).expand((1, -1))
    rewrite(folder, lambda t: {**t, "embeddings.position_ids": positions})
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": config.hidden_size, "pooling_mode_mean_tokens": True}))
    return folder


def bert_with_prefix(folder: Path) -> Path:
    """A BertModel folder whose file names carry the `bert.` prefix (taken out of a head
    model's checkpoint)."""
    torch.manual_seed(2)
    saved(folder, transformers.BertModel(bert_config()))
    return rewrite(folder, lambda t: {f"bert.{name}": tensor for name, tensor in t.items()})


def head_model_from_base(folder: Path) -> Path:
    """A BertModel checkpoint (no prefix) whose config asks for BertForSequenceClassification:
    the prefix is added, the classifier is missing (a new head)."""
    torch.manual_seed(3)
    saved(folder, transformers.BertModel(bert_config()))
    return rewrite(folder, lambda t: t, architectures=["BertForSequenceClassification"])


def legacy_bert(folder: Path) -> Path:
    """A BertModel checkpoint with the legacy `LayerNorm.gamma`/`beta` names, as .bin."""
    torch.manual_seed(4)
    saved(folder, transformers.BertModel(bert_config()))

    def legacy(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name.replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta"): tensor
                for name, tensor in tensors.items()}

    return rewrite(folder, legacy, bin_file=True)


def old_gpt2(folder: Path) -> Path:
    """GPT-2 as the original checkpoint stored it: GPT2Model names without `transformer.`,
    the `attn.bias`/`attn.masked_bias` buffers, no lm_head (tied), config GPT2LMHeadModel."""
    torch.manual_seed(5)
    config = gpt2_config()
    saved(folder, transformers.GPT2LMHeadModel(config))
    size = config.n_positions

    def old(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        result = {name.removeprefix("transformer."): tensor for name, tensor in tensors.items()
                  if name != "lm_head.weight"}
        for layer in range(config.n_layer):
            result[f"h.{layer}.attn.bias"] = torch.tril(torch.ones(size, size)).view(
                1, 1, size, size)
            result[f"h.{layer}.attn.masked_bias"] = torch.tensor(-1e4)
        return result

    return rewrite(folder, old, bin_file=True)


def gpt2_both_tied_names(folder: Path, *, equal: bool) -> Path:
    """GPT2LMHeadModel as a .bin holding lm_head.weight and transformer.wte.weight: the
    same tensor (`equal`), or two different ones (the config ties them anyway)."""
    torch.manual_seed(6)
    saved(folder, transformers.GPT2LMHeadModel(gpt2_config()))

    def both(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        embedding = tensors["transformer.wte.weight"]
        head = embedding if equal else embedding + 1
        return {**tensors, "lm_head.weight": head}

    return rewrite(folder, both, bin_file=True)


def old_llama(folder: Path) -> Path:
    """LlamaForCausalLM with the per-layer `rotary_emb.inv_freq` buffers old versions saved."""
    torch.manual_seed(7)
    config = llama_config()
    saved(folder, transformers.LlamaForCausalLM(config))
    dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))

    def old(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        layers = range(config.num_hidden_layers)
        return {**tensors, **{f"model.layers.{layer}.self_attn.rotary_emb.inv_freq":
                              inv_freq.clone() for layer in layers}}

    return rewrite(folder, old)


def bart_without_final_logits_bias(folder: Path) -> Path:
    """BartForConditionalGeneration without its `final_logits_bias` buffer, which the class
    lists in `_keys_to_ignore_on_load_missing` (checkpoints of other tools lack it)."""
    torch.manual_seed(8)
    config = transformers.BartConfig(vocab_size=30, d_model=8, encoder_layers=1,
                                     decoder_layers=1, encoder_attention_heads=2,
                                     decoder_attention_heads=2, encoder_ffn_dim=16,
                                     decoder_ffn_dim=16, max_position_embeddings=16)
    saved(folder, transformers.BartForConditionalGeneration(config))
    return rewrite(folder, lambda t: {name: tensor for name, tensor in t.items()
                                      if name != "final_logits_bias"})


WRITERS: dict[str, Callable[[Path], Path]] = {
    "sentence_transformers_bert": sentence_transformers_bert,
    "bert_with_prefix": bert_with_prefix,
    "head_model_from_base": head_model_from_base,
    "legacy_bert": legacy_bert,
    "old_gpt2": old_gpt2,
    "gpt2_tied_equal": lambda folder: gpt2_both_tied_names(folder, equal=True),
    "gpt2_tied_different": lambda folder: gpt2_both_tied_names(folder, equal=False),
    "old_llama": old_llama,
    "bart_without_final_logits_bias": bart_without_final_logits_bias,
}


def from_pretrained(folder: Path) -> tuple[Any, dict[str, Any]]:
    """The folder loaded by transformers itself, with its loading info."""
    config = json.loads((folder / "config.json").read_text())
    model_class = getattr(transformers, config["architectures"][0])
    with quiet():
        return model_class.from_pretrained(folder, output_loading_info=True)
