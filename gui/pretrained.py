"""torchvision's published pretrained weights: from the local torch hub cache, or downloaded.

`weight_choices("resnet18")` lists the weights torchvision publishes for a model
(`IMAGENET1K_V1`, ...). `fetch_weights` returns the file in the torch hub cache
(`$TORCH_HOME/hub/checkpoints`, where torchvision itself keeps them) when it is
there; otherwise it downloads it with progress and Cancel, checks the hash prefix
in the file name, and moves it into the cache atomically. Without a connection
it fails within seconds with a message that says where to put the file.

Qt-free; the GUI runs `fetch_weights` in a background Task.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from engine.errors import FileError
from engine.progress import Progress, report

#: seconds to wait for a server before calling it offline
TIMEOUT = 10.0
_HASH = re.compile(r"-([a-f0-9]*)\.")
_CHUNK = 1 << 20


def weight_choices(model_name: str) -> list[str]:
    """Names of the pretrained weights torchvision publishes for a model ([] for none)."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(model_name)
    except (ValueError, KeyError):
        return []
    return [member.name for member in enum]


def weights_url(model_name: str, weights_name: str) -> str:
    """The download address of a model's published weights."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(model_name)
        return enum[weights_name].url
    except (ValueError, KeyError):
        raise FileError(f"{model_name} {weights_name}",
                        "torchvision publishes no such weights") from None


def cache_folder() -> Path:
    """Where torch hub keeps downloaded checkpoints."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(model_name: str, weights_name: str) -> Path:
    """Where the weights file is (or would be) in the torch hub cache."""
    url = weights_url(model_name, weights_name)
    return cache_folder() / os.path.basename(urllib.request.urlparse(url).path)


def fetch_weights(model_name: str, weights_name: str, progress: Progress | None = None) -> Path:
    """The local file of a model's published weights, downloading it when needed.

    Raises
    ------
    FileError : offline, the server refused, or the download does not match its hash
    Cancelled : `progress.cancel()` was called (nothing is left in the cache)
    """
    target = cached_path(model_name, weights_name)
    if target.is_file():
        report(progress, 1.0, f"{target.name} is in the torch hub cache")
        return target
    url = weights_url(model_name, weights_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    report(progress, 0.0, f"Downloading {target.name}")
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise FileError(target.name, f"cannot be downloaded ({reason}); this computer seems "
                        f"to be offline. Copy the file to {target} and try again") from None
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    temp = Path(temp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out, response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                report(progress, done / total if total else 0.5,
                       f"Downloading {target.name}: {done / 2**20:.0f} MiB")
        expected = _HASH.search(target.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise FileError(target.name, "the download is damaged (its hash does not match); "
                            "try again")
        os.replace(temp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(error, (urllib.error.URLError, OSError, TimeoutError)) and \
                not isinstance(error, FileError):
            raise FileError(target.name, f"the download failed ({error})") from None
        raise
    return target


def describe(model_name: str, weights_name: str) -> dict[str, Any]:
    """Where the weights are and whether they are cached, for the dialog."""
    path = cached_path(model_name, weights_name)
    return {"path": str(path), "cached": path.is_file()}
