"""What code building an architecture would run, asked without building anything.

A module of its own, below both the edits (`attach` asks it) and `engine.code_needs`
(which asks the edits too), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import WeightsmithError

#: timm.create_model arguments that load files or reach the network
TIMM_CODE_ARGS = {
    "checkpoint_path": "loads a pickle with timm's torch.load (can run code)",
    "pretrained_cfg": "names weights to download or load",
    "pretrained_cfg_overlay": "names weights to download or load",
    "pretrained": "downloads weights",
}
#: what asking about an unreadable file or folder may raise: its own open reports it
UNREADABLE = (WeightsmithError, OSError, ValueError)
#: what asking about an unreadable file or folder may raise: its own open reports it
UNREADABLE = (WeightsmithError, OSError, ValueError)


def arch_code(arch: Any, arch_args: Any = None, *, folder: Path | None = None,
              field: str = "arch") -> list[str]:
    """The code building `arch` with `arch_args` would run beyond torchvision/timm/transformers.

    Parameters
    ----------
    folder : the opened folder, for the `hf` spec
    field : the field named in each line ('attach.arch', 'arch')
    """
    from .io import hf_folder

    if not isinstance(arch, str):
        return []
    args = arch_args if isinstance(arch_args, dict) else {}
    spec = arch.strip()
    needs: list[str] = []
    args_field = field.removesuffix("arch") + "arch_args"
    if hf_folder.is_hf_spec(spec):
        if args.get("trust_remote_code"):
            needs.append(f"{args_field}.trust_remote_code: lets transformers run the folder's "
                         "Python files")
        try:
            config_folder = hf_folder.config_folder(spec, folder)
        except UNREADABLE:
            return needs
        files = hf_folder.remote_code_files(config_folder)
        if files:
            needs.append(f"{field}: the Hugging Face config in {config_folder} needs its own "
                         f"code ({', '.join(files)})")
        return needs
    if spec.startswith("timm:"):
        for name, what in TIMM_CODE_ARGS.items():
            if name in args and args[name] not in (None, False):
                needs.append(f"{args_field}.{name}: {what}")
        return needs
    if spec.startswith("torchvision:"):
        return needs
    if ".py:" in spec:
        file_text, _, class_name = spec.rpartition(":")
        path = Path(file_text).expanduser()
        shown = path.resolve() if path.exists() else path
        needs.append(f"{field}: imports and runs {shown} (class {class_name})")
    return needs
