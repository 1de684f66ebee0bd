"""Hugging Face model folders: models built from config.json with transformers (optional;
never touches the hub). The files beside the weights: `engine.io.folder_files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ArchError, FileError, WeightsmithError
from .folder_files import read_folder_json, resolve_inside

#: the arch spec that means "build from the opened folder's config.json"
HF_SPEC = "hf"


#: config.json larger than this is not read to offer an architecture (real ones are a few KB)
MAX_CONFIG_BYTES = 4 * 2**20


def read_config(folder: Path, max_bytes: int | None = None) -> dict[str, Any]:
    """The parsed config.json of `folder`, read only from inside the folder (a link that
    leaves it is refused, as for the folder's weights).

    Raises
    ------
    FileError : missing, a link leaving the folder, too large, not JSON, not an object
    """
    config = read_folder_json(folder, "config.json", max_bytes)
    if not isinstance(config, dict):
        raise FileError(folder / "config.json", "is not a JSON object")
    return config


def model_folder(path: str | Path) -> dict[str, Any] | None:
    """What `path` is as a Hugging Face model, to offer opening it in model mode at once.

    `path` is a folder with a config.json, or the weights file such a folder opens
    with. Reads config.json only (never builds anything, never imports transformers).

    Returns
    -------
    `{"folder": str, "architecture": "BertModel" or None, "model_type": "bert" or None,
    "transformers": whether transformers is installed}`, or None when `path` is no
    Hugging Face model (no config.json, or one without `architectures`/`model_type`).
    """
    import importlib.util

    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    config_path = folder / "config.json"
    if not config_path.is_file():
        return None
    if not path.is_dir():
        from . import formats

        try:
            if formats.detect(folder).path.resolve() != path.resolve():
                return None  # another file of the folder: it is not the model's weights
        except WeightsmithError:
            return None
    try:
        config = read_config(folder, MAX_CONFIG_BYTES)
    except FileError:  # opening it with `hf` says what is wrong
        return None
    names = config.get("architectures")
    architecture = names[0] if isinstance(names, list) and names and isinstance(names[0], str) \
        else None
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    if architecture is None and model_type is None:
        return None
    return {"folder": str(folder), "architecture": architecture, "model_type": model_type,
            "transformers": importlib.util.find_spec("transformers") is not None}


def is_hf_spec(spec: str | None) -> bool:
    """`hf` (the opened folder) or `hf:PATH` (a folder with config.json)."""
    return spec is not None and (spec == HF_SPEC or spec.startswith(HF_SPEC + ":"))


def config_folder(spec: str, opened_folder: Path | None) -> Path:
    """The folder whose config.json an `hf` spec means."""
    if spec == HF_SPEC:
        if opened_folder is None:
            raise ArchError("arch: 'hf' builds the model from the opened folder's config.json; "
                            "open a Hugging Face folder or give hf:PATH/TO/FOLDER")
        return opened_folder
    folder = Path(spec[len(HF_SPEC) + 1:]).expanduser()
    if folder.is_file():
        folder = folder.parent
    return folder


def remote_code_files(folder: Path) -> list[str]:
    """The Python files of `folder` that transformers would run for its config.json.

    A config with `auto_map` (`"AutoConfig": "configuration_x.XConfig"`) names classes
    in the folder's own `.py` files ("remote code"); an entry `repo--module.Class` names
    code of another repository. Read from the JSON only: nothing is imported. [] when
    there is no readable config.json or it needs no code.
    """
    try:
        config = read_config(folder)
    except FileError:  # building from it reports the problem (and runs nothing)
        return []
    auto_map = config.get("auto_map")
    if not auto_map:
        return []
    files: list[str] = []
    entries = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    for entry in entries:
        for reference in entry if isinstance(entry, list) else [entry]:
            if not isinstance(reference, str) or not reference:
                continue
            repository, _, reference = reference.rpartition("--")
            module = reference.rpartition(".")[0] or reference
            name = (f"{module.replace('.', '/')}.py" if not repository
                    else f"{module}.py of the repository {repository}")
            if name not in files:
                files.append(name)
    return files or ["code named by auto_map"]


def _python_files_inside(folder: Path) -> None:
    """Refuse a `.py` file of `folder` that is a link leaving it: trusted, transformers
    imports the files `auto_map` names and the files they import from the folder."""
    try:
        entries = [entry for entry in folder.iterdir() if entry.suffix == ".py"]
    except OSError:
        return
    for entry in entries:
        resolve_inside(entry, folder, "code")


def build_hf_model(folder: Path, arch_args: dict[str, Any] | None = None,
                   seed: int = 0, *, trust: bool = False) -> nn.Module:
    """Build the model config.json in `folder` describes, with random weights, offline.

    The class is `config.architectures[0]` when transformers has it (so heads such as
    `lm_head` exist), else `AutoModel`. `arch_args` override config fields.
    transformers is always told `trust_remote_code=trust`, so its own y/N prompt never
    appears; a folder whose config needs its own code is refused without `trust`.

    Raises
    ------
    ArchError : transformers missing, no config.json, code needed without trust, or the
        build failed
    """
    try:
        import transformers
    except ImportError:
        raise ArchError("arch: transformers is not installed (pip install transformers); "
                        "without it the folder opens in checkpoint mode") from None
    import torch

    config_path = folder / "config.json"
    if not config_path.is_file() and not config_path.is_symlink():
        raise ArchError(f"arch: {folder} has no config.json")
    try:
        # Checked before transformers sees the folder: transformers reads config.json
        # (and, trusted, the Python files it names) through any link.
        read_config(folder)
        code = remote_code_files(folder)
        if code:
            _python_files_inside(folder)
    except FileError as error:
        raise ArchError(f"arch: {error}") from None
    arch_args = dict(arch_args or {})
    if not trust and (code or arch_args.get("trust_remote_code")):
        listed = ", ".join(code) if code else "trust_remote_code in arch-args"
        raise ArchError(f"arch: {config_path} needs remote code ({listed}); refused "
                        "without trust (--trust, trust=True) because transformers would "
                        "run it")
    arch_args.pop("trust_remote_code", None)
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True,
                                                         trust_remote_code=trust, **arch_args)
    except Exception as error:
        raise ArchError(f"arch: {config_path}: transformers cannot read it "
                        f"({str(error).splitlines()[0] if str(error) else error})") from None
    names = list(getattr(config, "architectures", None) or [])
    model_class = getattr(transformers, names[0], None) if names and isinstance(
        names[0], str) else None
    if not (isinstance(model_class, type)
            and issubclass(model_class, transformers.PreTrainedModel)):
        model_class = None  # config.json names the class: only a model class is built
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            if model_class is not None:
                model = model_class(config)
            else:
                model = transformers.AutoModel.from_config(config, trust_remote_code=trust)
        except Exception as error:
            raise ArchError(f"arch: building the model of {config_path} failed: "
                            f"{str(error).splitlines()[0] if str(error) else error}") from None
    return model
