"""Read a mergekit YAML merge configuration (`mergekit-yaml` / `mergekit-pytorch`).

The subset read: `merge_method`, `base_model`, `models[].model`,
`models[].parameters.{weight, density}`, `parameters.{normalize, t, lambda, int8_mask,
rescale, weight, density}`, `dtype` and `out_dtype`, with local paths (a .safetensors
file, a sharded set's index or folder, a .pt file, a Hugging Face folder). Everything
else (slices, gradients and filters, LoRA references, tokenizer settings, hub names) is
refused with one line per key, so a config is never half understood. A parameter the
method does not take is ignored with a note, as mergekit ignores it.

The file is untrusted input: it is read with `yaml.safe_load` (no Python objects), and
its size is bounded before it is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EditError, WeightsmithError
from .methods import METHODS
from .spec import MergeSpec, parse_spec

#: the largest configuration read (a real one is a few hundred bytes)
MAX_CONFIG_BYTES = 1 * 2**20

SUPPORTED_KEYS = ("merge_method", "base_model", "models", "parameters", "dtype", "out_dtype")
GLOBAL_PARAMETERS = ("normalize", "t", "lambda", "int8_mask", "rescale", "weight", "density")
MODEL_PARAMETERS = ("weight", "density")


class ConfigError(WeightsmithError):
    """A merge configuration that cannot be used: one line per problem.

    Attributes
    ----------
    path : the configuration file
    problems : one line each, naming the key
    """

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{self.path}: {problems[0]}{more}")

    def lines(self) -> list[str]:
        """Every problem as its own line, each naming the file."""
        return [f"{self.path}: {problem}" for problem in self.problems]


@dataclass
class MergeConfig:
    """A configuration read: the merge, and what was ignored on the way."""

    spec: MergeSpec
    notes: list[str] = field(default_factory=list)


def read_config(path: str | Path) -> MergeConfig:
    """Read and check a mergekit YAML configuration.

    Raises
    ------
    ConfigError : unreadable, too big, not YAML, unsupported keys or bad values (every
        problem found, one line each)
    """
    import yaml

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(path, [f"is {size:,} bytes; a merge configuration is at most "
                                     f"{MAX_CONFIG_BYTES:,}"])
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(path, [f"cannot be read ({error.strerror or error})"]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, ["is not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(path, [f"not valid YAML{where} ({problem})"]) from None
    except RecursionError:
        raise ConfigError(path, ["nested too deeply"]) from None
    except (ValueError, OverflowError) as error:
        # yaml converts as it constructs: a 5000-digit number passes Python's limit on
        # int conversion, a timestamp such as 2001-13-45 is no date.
        problem = ("a number with more digits than Python converts (4300)"
                   if "digits" in str(error) else
                   str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise ConfigError(path, [f"not valid YAML ({problem})"]) from None
    return config_from_data(data, path)


def config_from_data(data: Any, path: str | Path = "<config>") -> MergeConfig:
    """Check a parsed configuration (see `read_config`)."""
    if not isinstance(data, dict):
        raise ConfigError(path, ["expected a mapping with merge_method and models"])
    problems: list[str] = []
    notes: list[str] = []
    for key in data:
        if key not in SUPPORTED_KEYS:
            problems.append(_unsupported_key(str(key)))
    method = data.get("merge_method")
    if not isinstance(method, str):
        problems.append("merge_method: required (linear, task_arithmetic, ties, dare_linear, "
                        "dare_ties, slerp, passthrough)")
    elif method not in METHODS:
        problems.append(f"merge_method: '{method}' is not supported (supported: "
                        f"{', '.join(METHODS)})")
    takes = _takes(method) if isinstance(method, str) and method in METHODS else None
    values: dict[str, Any] = {"method": method}
    base = data.get("base_model")
    if base is not None:
        values["base"] = _model_path(base, "base_model", problems)
    values["models"] = _models(data.get("models"), takes, method, problems, notes)
    parameters = data.get("parameters")
    if parameters is not None:
        values["parameters"] = _parameters(parameters, takes, method, problems, notes)
    for key in ("dtype", "out_dtype"):
        if data.get(key) is not None and not isinstance(data[key], str):
            problems.append(f"{key}: expected a dtype name such as float32 or bfloat16")
    if data.get("dtype") is not None:
        values["dtype"] = data["dtype"]
    if problems:
        raise ConfigError(path, problems)
    try:
        spec = parse_spec(values)
        if data.get("out_dtype") is not None:
            spec.out_dtype = parse_spec({**values, "dtype": data["out_dtype"]}).dtype
    except EditError as error:
        raise ConfigError(path, [_yaml_names(str(error), data.get("out_dtype"))]) from None
    return MergeConfig(spec, notes)


def _unsupported_key(key: str) -> str:
    reasons = {
        "slices": "layer slices are not supported (merge whole models, and pick tensors with "
                  "the merge edit's include/exclude globs)",
        "modules": "per-module definitions are not supported",
        "tokenizer_source": "tokenizer merging is not supported (a folder output keeps the "
                            "base's tokenizer files)",
        "tokenizer": "tokenizer merging is not supported (a folder output keeps the base's "
                     "tokenizer files)",
        "chat_template": "chat templates are not supported (a folder output keeps the base's "
                         "tokenizer files)",
    }
    return f"{key}: {reasons.get(key, 'not a supported key')} (supported: " \
           f"{', '.join(SUPPORTED_KEYS)})"


def _takes(method: str) -> set[str]:
    info = METHODS[method]
    return {*info.parameters, *(key for key in info.per_model if key != "scale")}


def _model_path(value: Any, where: str, problems: list[str]) -> str | None:
    if isinstance(value, dict):
        # mergekit's long form: {model: {path: ...}} or {model: ..., lora: ...}
        if set(value) - {"model", "path"}:
            extra = ", ".join(sorted(str(key) for key in set(value) - {"model", "path"}))
            problems.append(f"{where}: {extra} not supported (LoRA references and overrides: "
                            "merge the adapter first with merge_lora)")
            return None
        value = value.get("path", value.get("model"))
        if isinstance(value, dict):
            return _model_path(value, where, problems)
    if not isinstance(value, str) or not value:
        problems.append(f"{where}: expected a local path")
        return None
    if "+" in value and not Path(value).exists():
        problems.append(f"{where}: '{value}': model+lora references are not supported (merge "
                        "the adapter first: the merge_lora edit)")
        return None
    if not Path(value).expanduser().exists():
        problems.append(f"{where}: '{value}' is not a local file or folder (Weightsmith reads "
                        "local safetensors files, sharded sets, .pt files and Hugging Face "
                        "folders; nothing is downloaded)")
        return None
    return value


def _scalar(value: Any, where: str, problems: list[str]) -> Any:
    if isinstance(value, list | dict):
        problems.append(f"{where}: gradients and filtered values are not supported (give one "
                        "number for every tensor)")
        return None
    return value


def _models(value: Any, takes: set[str] | None, method: Any, problems: list[str],
            notes: list[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        problems.append("models: expected a list of {model: PATH, parameters: {...}}")
        return []
    models = []
    for index, item in enumerate(value):
        where = f"models[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping with model and parameters")
            continue
        for key in item:
            if key not in ("model", "parameters"):
                problems.append(f"{where}.{key}: not a supported key (supported: model, "
                                "parameters)")
        path = _model_path(item.get("model"), f"{where}.model", problems)
        entry: dict[str, Any] = {"path": path}
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, dict):
            problems.append(f"{where}.parameters: expected a mapping")
            parameters = {}
        for key, setting in parameters.items():
            at = f"{where}.parameters.{key}"
            if key not in MODEL_PARAMETERS:
                problems.append(f"{at}: not supported (supported per model: "
                                f"{', '.join(MODEL_PARAMETERS)})")
                continue
            setting = _scalar(setting, at, problems)
            if takes is not None and key not in takes:
                notes.append(f"{at}: ignored ({method} takes no {key}; mergekit ignores it too)")
                continue
            entry[key] = setting
        models.append(entry)
    return models


def _parameters(value: Any, takes: set[str] | None, method: Any, problems: list[str],
                notes: list[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append("parameters: expected a mapping")
        return {}
    result = {}
    for key, setting in value.items():
        at = f"parameters.{key}"
        if key not in GLOBAL_PARAMETERS:
            problems.append(f"{at}: not supported (supported: {', '.join(GLOBAL_PARAMETERS)})")
            continue
        setting = _scalar(setting, at, problems)
        if takes is not None and key not in takes:
            notes.append(f"{at}: ignored ({method} takes no {key}; mergekit ignores it too)")
            continue
        result[key] = setting
    return result


_RENAMES = [
    (re.compile(r"^merge\.models\[(\d+)\]\.path"), r"models[\1].model"),
    (re.compile(r"^merge\.models\[(\d+)\]\.(weight|density)"), r"models[\1].parameters.\2"),
    (re.compile(r"^merge\.base"), "base_model"),
    (re.compile(r"^merge\.method"), "merge_method"),
    (re.compile(r"^merge\.parameters"), "parameters"),
    (re.compile(r"^merge\.models"), "models"),
    (re.compile(r"^merge\.dtype"), "dtype"),
    (re.compile(r"^merge\b"), "merge"),
]


def _yaml_names(message: str, out_dtype: Any) -> str:
    """An edit's message with the YAML's key names (`models[1].parameters.weight`)."""
    for pattern, replacement in _RENAMES:
        if pattern.search(message):
            message = pattern.sub(replacement, message, count=1)
            break
    if out_dtype is not None and message.startswith("dtype:") and str(out_dtype) in message:
        message = "out_" + message
    return message
