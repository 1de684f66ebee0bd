"""Write an export atomically: into a private folder beside OUT, then into place.

An exporter writes its artifact under OUT's own name (the name ends up inside .pt2
and TorchScript archives, and ONNX's external weights file is named after it) in a
temporary folder in OUT's folder (same file system, so the final move is a rename).
Only after the caller verified the artifact are its files moved into place through
`engine.io.atomic.StagedFiles` (fsynced, companions before the main file, the final
modes set). Any error, a failed verification or a cancel removes the folder and
leaves OUT as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..io.atomic import TEMP_MARK, StagedFiles


class StagedOutput:
    """Where an exporter writes (`path`), and the final files once moved (`files`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[Path] = []

    def size(self) -> int:
        """Bytes of what was written (the main file and its companions)."""
        return sum(path.stat().st_size for path in self.files or
                   [child for child in self.path.parent.iterdir()])


@contextlib.contextmanager
def staged_output(path: Path) -> Iterator[StagedOutput]:
    """Yield a StagedOutput whose `path` is `<private folder>/<path.name>`; when the
    block ends without error the folder's files replace theirs in `path.parent`."""
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_MARK}", dir=path.parent))
    output = StagedOutput(work / path.name)
    try:
        yield output
        names = sorted(child.name for child in work.iterdir() if child.name != path.name)
        names.append(path.name)  # the main file last: it names its companions
        with StagedFiles(path.parent) as staged:
            for name in names:
                os.replace(work / name, staged.stage(name))
            output.files = staged.commit()
    finally:
        shutil.rmtree(work, ignore_errors=True)
