"""Every whitelisted expression function replays the same in a fresh process (issue 8 §6).

Torch imports some modules lazily the first time a function runs; an expression that
works only after something else warmed torch up would make a recipe's replay depend on
what ran before. Each case runs `apply` from the CLI in its own process: one interpreter
imports the CLI (as `python main.py` does) and forks a child per case before any
expression ran, so every child starts as cold as a new command; a slow variant starts a
real new interpreter per case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from engine.expr import ATTRIBUTES, FUNCTIONS, METHODS, RANDOM_FUNCTIONS
from tests.conftest import ROOT

#: one expression per whitelisted name, over a 4x4 float tensor `x`
FUNCTION_CASES = {
    "abs": "abs(x)", "sign": "sign(x)", "sqrt": "sqrt(abs(x))", "rsqrt": "rsqrt(abs(x) + 1)",
    "exp": "exp(x)", "expm1": "expm1(x)", "log": "log(abs(x) + 1)", "log1p": "log1p(abs(x))",
    "log2": "log2(abs(x) + 1)", "log10": "log10(abs(x) + 1)", "sin": "sin(x)", "cos": "cos(x)",
    "tan": "tan(x)", "tanh": "tanh(x)", "sigmoid": "sigmoid(x)", "relu": "relu(x)",
    "clamp": "clamp(x, -1, 1)", "clip": "clip(x, -1, 1)", "where": "where(x > 0, x, 0)",
    "minimum": "minimum(x, x * 2)", "maximum": "maximum(x, x * 2)", "mean": "mean(x)",
    "std": "std(x)", "var": "var(x)", "sum": "sum(x)", "amax": "amax(x)", "amin": "amin(x)",
    "round": "round(x, decimals=1)", "floor": "floor(x)", "ceil": "ceil(x)",
    "trunc": "trunc(x)", "square": "square(x)", "pow": "pow(x, 2)", "erf": "erf(x)",
    "zeros_like": "zeros_like(x)", "ones_like": "ones_like(x)",
    "full_like": "full_like(x, 2)", "sgn": "sgn(x)", "isfinite": "isfinite(x)",
    "isnan": "isnan(x)", "nan_to_num": "nan_to_num(x, nan=0.0)",
    "logical_and": "logical_and(x > 0, x < 1)", "logical_or": "logical_or(x > 0, x < -1)",
    "logical_not": "logical_not(x > 0)", "fmod": "fmod(x, 2)",
    "remainder": "remainder(x, 2)", "lerp": "lerp(x, x * 2, 0.5)",
    "quantile": "quantile(x, 0.5)", "median": "median(x)", "norm": "norm(x)",
    "max": "max(x)", "min": "min(x)", "randn_like": "randn_like(x)",
    "rand_like": "rand_like(x)",
}
METHOD_CASES = {
    "abs": "x.abs()", "sign": "x.sign()", "sqrt": "x.abs().sqrt()", "exp": "x.exp()",
    "log": "(x.abs() + 1).log()", "clamp": "x.clamp(-1, 1)", "clip": "x.clip(-1, 1)",
    "mean": "x.mean()", "std": "x.std()", "var": "x.var()", "sum": "x.sum()",
    "amax": "x.amax()", "amin": "x.amin()", "max": "x.max()", "min": "x.min()",
    "round": "x.round()", "floor": "x.floor()", "ceil": "x.ceil()", "norm": "x.norm()",
    "sigmoid": "x.sigmoid()", "tanh": "x.tanh()", "relu": "x.relu()",
    "square": "x.square()", "float": "x.float()", "double": "x.double()",
    "half": "x.half()", "bfloat16": "x.bfloat16()", "t": "x.t()", "flip": "x.flip(0)",
    "roll": "x.roll(1, 0)", "cumsum": "x.cumsum(0)", "softmax": "x.softmax(0)",
    "transpose": "x.transpose(0, 1)", "reshape": "x.reshape(4, 4)", "view": "x.view(4, 4)",
    "argsort": "x.argsort()", "median": "x.median()", "quantile": "x.quantile(0.5)",
    "nan_to_num": "x.nan_to_num()", "logical_not": "x.logical_not()",
    "fmod": "x.fmod(2)", "remainder": "x.remainder(2)", "pow": "x.pow(2)",
    # sort gives values and indices: refused in one line, the same in every process
    "sort": "x.sort()",
}
ATTRIBUTE_CASES = {"T": "x.T", "mT": "x.mT"}
REFUSED = {"method sort": "gives several tensors"}

CASES = ({f"function {name}": text for name, text in FUNCTION_CASES.items()}
         | {f"method {name}": text for name, text in METHOD_CASES.items()}
         | {f"attribute {name}": text for name, text in ATTRIBUTE_CASES.items()})

FORKING_RUNNER = textwrap.dedent('''
    import json, os, sys
    from cli.main import main

    cases, checkpoint, folder = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    running, statuses = {}, {}

    def reap():
        pid, status = os.wait()
        statuses[running.pop(pid)] = os.waitstatus_to_exitcode(status)

    for number, label in enumerate(cases):
        if len(running) >= 2:  # two cold children at a time: one per core
            reap()
        pid = os.fork()
        if pid == 0:
            handle = os.open(os.path.join(folder, f"{number}.log"),
                             os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(handle, 1)
            os.dup2(handle, 2)
            # Each child saves into a folder of its own: saves into one folder take turns.
            status = main(["apply", os.path.join(folder, f"{number}.json"), "--input",
                           checkpoint, "--quiet", "--output",
                           os.path.join(folder, f"out{number}", "x.safetensors")])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        running[pid] = number
    while running:
        reap()
    results = {}
    for number, label in enumerate(cases):
        with open(os.path.join(folder, f"{number}.log")) as handle:
            results[label] = [statuses[number], handle.read()]
    print(json.dumps(results))
''')


def test_the_cases_cover_every_whitelisted_name():
    assert set(FUNCTION_CASES) == set(FUNCTIONS) | set(RANDOM_FUNCTIONS)
    assert set(METHOD_CASES) == set(METHODS)
    assert set(ATTRIBUTE_CASES) == set(ATTRIBUTES)


def _prepare(folder) -> tuple[str, list[str]]:
    checkpoint = folder / "x.safetensors"
    save_file({"x": torch.linspace(-2, 2, 16).reshape(4, 4)}, str(checkpoint))
    labels = list(CASES)
    for number, label in enumerate(labels):
        recipe = {"weightsmith_recipe": 1,
                  "edits": [{"op": "set", "target": "x", "expr": CASES[label], "seed": 3}]}
        (folder / f"{number}.json").write_text(json.dumps(recipe))
        (folder / f"out{number}").mkdir()
    return str(checkpoint), labels


def _check(label: str, status: int, output: str) -> None:
    if label in REFUSED:
        assert status == 2, output
        assert REFUSED[label] in output, output
        assert output.count("\n") == 1, output
        assert "__import__" not in output
        return
    assert status == 0, f"{label}: {output}"


@pytest.mark.skipif(sys.platform == "win32", reason="needs os.fork")
@pytest.mark.timeout(900)  # about 100 cold commands: 45 s alone, far more on a busy machine
def test_every_whitelisted_name_replays_in_a_cold_process(tmp_path):
    checkpoint, labels = _prepare(tmp_path)
    result = subprocess.run([sys.executable, "-c", FORKING_RUNNER, json.dumps(labels),
                             checkpoint, str(tmp_path)], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(results) == set(labels)
    for label, (status, output) in results.items():
        _check(label, status, output)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("WEIGHTSMITH_SLOW"),
                    reason="about 5 minutes; set WEIGHTSMITH_SLOW=1 to run")
def test_every_whitelisted_name_replays_in_a_new_interpreter(tmp_path):
    checkpoint, labels = _prepare(tmp_path)
    for number, label in enumerate(labels):
        result = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "apply", str(tmp_path / f"{number}.json"),
             "--input", checkpoint, "--quiet", "--output", str(tmp_path / f"{number}.safetensors")],
            capture_output=True, text=True, timeout=300, cwd=ROOT)
        _check(label, result.returncode, result.stdout + result.stderr)


def test_expressions_work_after_pyside_installs_its_import_hook():
    # The GUI imports PySide6 after the engine: shiboken then replaces __import__ with a
    # hook that looks its original up in the calling frame's builtins (an abort if absent).
    code = ("import torch, engine.expr as e, PySide6.QtWidgets\n"
            "print(float(e.compile_expr('quantile(x, 0.5) + where(x > 0, x, 0).sum()')"
            ".evaluate(torch.arange(5.0))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "12.0"
