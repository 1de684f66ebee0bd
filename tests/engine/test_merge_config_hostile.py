"""A hostile mergekit YAML configuration is one line of ours (issue 8's follow-up, class 4).

Tried: Python tags, alias chains (a billion laughs) under every supported key, deep
nesting, huge numbers and dates that are no dates. Before, a 5000-digit number or a
timestamp such as 2001-13-45 escaped as a raw ValueError ("Exceeds the limit (4300
digits)", "month must be in 1..12"), which the CLI reports as an unexpected error.
"""

from __future__ import annotations

import re
import time

import pytest

from engine.merge.yaml_config import ConfigError, read_config

CHAIN = ("[&a [x, x, x, x, x, x, x, x, x]"
         + "".join(f", &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8))
         + "]")
MODELS = "  - model: a.safetensors\n  - model: b.safetensors\n"

CASES = {
    "a 5000-digit weight": ("merge_method: linear\nmodels:\n  - model: a.safetensors\n"
                            "    parameters: {weight: " + "9" * 5000 + "}\n"
                            "  - model: b.safetensors\n",
                            r"not valid YAML \(a number with more digits than Python converts"),
    "a date that is no date": ("merge_method: linear\ndtype: 2001-13-45\nmodels:\n" + MODELS,
                               r"not valid YAML \(month must be in 1\.\.12\)"),
    "a python tag": ("merge_method: !!python/object/apply:os.system ['true']\nmodels:\n"
                     + MODELS, r"not valid YAML at line 1 \(could not determine a constructor"),
    "deep nesting": ("merge_method: linear\nmodels: " + "[" * 20000 + "]" * 20000 + "\n",
                     r"nested too deeply"),
    "a billion laughs as the models": (f"dtype: {CHAIN}\nmerge_method: linear\nmodels: *i\n",
                                       r"models\[0\]: expected a mapping"),
    "a billion laughs as a weight": (f"dtype: {CHAIN}\nmerge_method: linear\nmodels:\n"
                                     "  - model: a.safetensors\n    parameters: {weight: *i}\n"
                                     "  - model: b.safetensors\n",
                                     r"models\[0\]\.parameters\.weight: "),
    "a billion laughs as a path": (f"dtype: {CHAIN}\nmerge_method: linear\nmodels:\n"
                                   "  - model: *i\n  - model: b.safetensors\n",
                                   r"models\[0\]\.model: expected a local path"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_config_is_one_line_naming_the_file(tmp_path, case):
    text, expected = CASES[case]
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        read_config(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert len(message) < 400
    assert time.monotonic() - started < 30
    lines = refused.value.lines()
    assert len(lines) < 20  # one per problem, not one per element of an alias chain
    assert any(re.search(expected, line) for line in lines), lines
