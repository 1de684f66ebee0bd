"""`merge CONFIG.yml --output OUT`: mergekit's YAML read, the output streamed and loadable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cli.main import main
from engine.merge.yaml_config import MAX_CONFIG_BYTES, ConfigError, read_config


def variants(folder: Path, count: int = 3) -> list[str]:
    generator = torch.Generator().manual_seed(0)
    base = {"a.weight": torch.randn(6, 5, generator=generator),
            "a.bias": torch.randn(6, generator=generator),
            "b.weight": torch.randn(4, 6, generator=generator),
            "steps": torch.tensor(7)}
    paths = []
    for index in range(count):
        state = {name: tensor + 0.1 * index * torch.randn(tensor.shape, generator=generator)
                 if tensor.is_floating_point() else tensor for name, tensor in base.items()}
        path = folder / f"m{index}.safetensors"
        save_file(state, str(path))
        paths.append(str(path))
    return paths


def write_config(folder: Path, text: str) -> str:
    path = folder / "merge.yml"
    path.write_text(text)
    return str(path)


def test_ties_config_writes_the_merge_and_copies_integer_tensors(tmp_path, capsys):
    base, one, two = variants(tmp_path)
    config = write_config(tmp_path, f"""
merge_method: ties
base_model: {base}
models:
  - model: {base}
  - model: {one}
    parameters: {{weight: 0.6, density: 0.5}}
  - model: {two}
    parameters:
      weight: 0.4
      density: 0.7
parameters:
  normalize: true
  int8_mask: true
dtype: float32
""")
    output = tmp_path / "out.safetensors"
    assert main(["merge", config, "--output", str(output), "--quiet",
                 "--report", str(tmp_path / "report.json")]) == 0
    printed = capsys.readouterr().out
    assert "merged 3 tensors with ties" in printed
    assert "copied 1" in printed
    merged = load_file(str(output))
    assert set(merged) == {"a.weight", "a.bias", "b.weight", "steps"}
    assert torch.equal(merged["steps"], torch.tensor(7))
    from engine import Session

    session = Session.open(base)
    session.apply({"op": "merge", "method": "ties", "base": "self", "models": [
        {"path": one, "weight": 0.6, "density": 0.5}, {"path": two, "weight": 0.4, "density": 0.7}],
        "dtype": "float32"})
    for name, tensor in session.state_dict().items():
        assert torch.equal(tensor, merged[name])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["merged"] == 3
    assert len(report["tensors"]) == 3
    assert set(report["tensors"][0]["relative_change"]) == {base, one, two}


def test_dare_prints_its_seed_and_replays_with_it(tmp_path, capsys):
    base, one, two = variants(tmp_path)
    config = write_config(tmp_path, f"""
merge_method: dare_linear
base_model: {base}
models:
  - model: {one}
    parameters: {{weight: 0.5, density: 0.5}}
  - model: {two}
    parameters: {{weight: 0.5, density: 0.5}}
""")
    assert main(["merge", config, "-o", str(tmp_path / "a.safetensors"), "--quiet"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("seed "))
    seed = line.split()[1]
    assert main(["merge", config, "-o", str(tmp_path / "b.safetensors"), "--quiet",
                 "--random-seed", seed]) == 0
    first = load_file(str(tmp_path / "a.safetensors"))
    again = load_file(str(tmp_path / "b.safetensors"))
    assert all(torch.equal(first[name], again[name]) for name in first)


def test_sharded_output_and_folder_output_keep_the_base_files(tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    folders = []
    for index in range(2):
        torch.manual_seed(index)
        model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32,
                                           n_positions=16))
        folder = tmp_path / f"gpt{index}"
        model.save_pretrained(folder)
        (folder / "tokenizer_config.json").write_text("{}")
        folders.append(folder)
    config = write_config(tmp_path, f"""
merge_method: slerp
base_model: {folders[0]}
models:
  - model: {folders[0]}
  - model: {folders[1]}
parameters:
  t: 0.5
""")
    out = tmp_path / "merged"
    assert main(["merge", config, "--output", str(out), "--quiet"]) == 0
    assert (out / "config.json").exists()
    assert (out / "tokenizer_config.json").exists()
    merged = GPT2LMHeadModel.from_pretrained(out)
    first = GPT2LMHeadModel.from_pretrained(folders[0])
    assert merged.lm_head.weight is merged.transformer.wte.weight
    assert not torch.equal(merged.transformer.h[0].attn.c_attn.weight,
                           first.transformer.h[0].attn.c_attn.weight)
    sharded = tmp_path / "sharded.safetensors.index.json"
    assert main(["merge", config, "--output", str(sharded), "--max-shard-size", "2KB",
                 "--quiet"]) == 0
    index = json.loads(sharded.read_text())
    assert len(set(index["weight_map"].values())) > 1


def test_unsupported_keys_are_one_line_each(tmp_path, capsys):
    base, one, _ = variants(tmp_path)
    config = write_config(tmp_path, f"""
merge_method: ties
base_model: {base}
slices:
  - sources: []
tokenizer_source: union
models:
  - model: {one}
    parameters:
      weight: [0.1, 0.9]
      gamma: 0.01
""")
    assert main(["merge", config, "--output", str(tmp_path / "o.safetensors")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith(f"error: {config}: ") for line in lines)
    assert len(lines) == 4
    assert any("slices: layer slices are not supported" in line for line in lines)
    assert any("tokenizer_source:" in line for line in lines)
    assert any("models[0].parameters.weight: gradients" in line for line in lines)
    assert any("models[0].parameters.gamma: not supported" in line for line in lines)
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("merge_method: linear\nmodels:\n  - model: nowhere/model\n",
     "models[0].model: 'nowhere/model' is not a local file or folder"),
    ("merge_method: frankenmerge\nmodels:\n  - model: {one}\n",
     "merge_method: 'frankenmerge' is not supported"),
    ("merge_method: linear\nmodels:\n  - model: {one}\n    parameters: {{weight: heavy}}\n",
     "models[0].parameters.weight: expected a number, got text"),
    ("merge_method: ties\nmodels:\n  - model: {one}\n", "base_model: ties needs a base model"),
    ("merge_method: linear\nmodels:\n  - model: {one}\nout_dtype: int8\n",
     "out_dtype: expected a floating-point dtype"),
    ("merge_method: linear\nmodels: [\n", "not valid YAML at line"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping with merge_method and models"),
])
def test_bad_configs_name_the_key(tmp_path, text, message):
    _, one, _ = variants(tmp_path)
    path = write_config(tmp_path, text.format(one=one))
    with pytest.raises(ConfigError) as error:
        read_config(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_huge_config_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.yml"
    path.write_text("#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="a merge configuration is at most"):
        read_config(path)


def test_ignored_parameters_are_notes(tmp_path, capsys):
    _, one, two = variants(tmp_path)
    config = write_config(tmp_path, f"""
merge_method: linear
models:
  - model: {one}
    parameters: {{weight: 1, density: 0.5}}
  - model: {two}
    parameters: {{weight: 1}}
""")
    assert main(["merge", config, "-o", str(tmp_path / "o.safetensors"), "--quiet"]) == 0
    assert "note: models[0].parameters.density: ignored (linear takes no density" in \
        capsys.readouterr().err


def test_mismatch_is_one_line_or_skipped(tmp_path, capsys):
    _, one, two = variants(tmp_path)
    odd = load_file(two)
    odd["b.weight"] = torch.zeros(2, 2)
    save_file(odd, str(tmp_path / "odd.safetensors"))
    config = write_config(tmp_path, f"""
merge_method: linear
models:
  - model: {one}
  - model: {tmp_path / 'odd.safetensors'}
""")
    assert main(["merge", config, "-o", str(tmp_path / "o.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'b.weight' is 4x6 in" in err
    assert "2x2 in" in err
    assert main(["merge", config, "-o", str(tmp_path / "o.safetensors"), "--skip-mismatched",
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "skipped 1" in captured.out
    assert "note: skipped b.weight" in captured.err
    assert "b.weight" not in load_file(str(tmp_path / "o.safetensors"))


def test_extract_lora_prints_the_errors_and_writes_a_peft_folder(tmp_path, capsys):
    pytest.importorskip("peft")
    generator = torch.Generator().manual_seed(0)
    base = {"fc.weight": torch.randn(10, 8, generator=generator), "fc.bias": torch.zeros(10)}
    tuned = dict(base)
    tuned["fc.weight"] = base["fc.weight"] + torch.randn(10, 2, generator=generator) @ \
        torch.randn(2, 8, generator=generator)
    save_file(base, str(tmp_path / "base.safetensors"))
    save_file(tuned, str(tmp_path / "tuned.safetensors"))
    out = tmp_path / "adapter"
    assert main(["extract-lora", str(tmp_path / "base.safetensors"),
                 str(tmp_path / "tuned.safetensors"), "--rank", "2", "--output", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "fc.weight" in printed
    assert f"wrote {out} (rank 2, 1 weights)" in printed
    error = float(next(line for line in printed.splitlines()
                       if line.startswith("fc.weight")).split()[-1])
    assert error < 1e-5
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 2
    assert config["target_modules"] == ["fc"]
    assert main(["extract-lora", str(tmp_path / "base.safetensors"),
                 str(tmp_path / "tuned.safetensors"), "--rank", "0", "--output",
                 str(tmp_path / "other")]) == 2
    assert "--rank: must be at least 1" in capsys.readouterr().err
