"""Which of torch's file formats a path holds, read from its first bytes and zip listing.

A module of its own so that the pickle reader (`torch_files`) and the trust check
(`trust`) can both ask without importing one another.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

#: torch.save's zip archives start like every zip file
ZIP_MAGIC = b"PK\x03\x04"


def is_zip_checkpoint(path: Path) -> bool:
    """Tell whether `path` is in torch.save's zip format (as opposed to the legacy one)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ZIP_MAGIC
    except OSError:
        return False


def is_torchscript(path: Path) -> bool:
    """Tell whether `path` is a TorchScript archive (`torch.jit.save`), which holds code."""
    if not is_zip_checkpoint(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return any(name.endswith("/constants.pkl") or "/code/" in name for name in names)
