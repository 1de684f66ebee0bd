"""`attach`: give a checkpoint its architecture; the session switches to model mode.

The model is built under a seed (0 unless given, recorded), the checkpoint's tensors
are put into it (assigned, not copied; ties of the model kept) and the report says
what was loaded, missing, unexpected or of another shape. With `arch: "hf"` the
checkpoint is matched as transformers' `from_pretrained` matches it, and the report
lists what was ignored and why (`engine.io.hf_loading`). Undo puts the very same
checkpoint back; redo the very same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..allocation import check_allocation, module_nbytes
from ..arch import DEFAULT_SEED, build_model
from ..arch_code import arch_code
from ..document import ModelDocument
from ..errors import ArchError, EditError
from ..io import hf_folder
from ..io.file_ties import retie_model
from ..io.fill import load_checkpoint, report_problems
from ..schema import Field as F
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import CheckpointDocument


@register
class Attach(Edit):
    """Build `arch` and load the checkpoint's tensors into it."""

    op = "attach"
    fields = (
        F("arch", "text", "the architecture: torchvision:NAME, file.py:Class, timm:NAME or hf",
          required=True, label="Architecture"),
        F("arch_args", "object", "keyword arguments of the architecture", label="Arguments"),
        F("seed", "seed", "seeds the initial weights of tensors the checkpoint lacks (default 0)"),
        F("strict", "bool", "refuse when a tensor is missing, unexpected or of another shape",
          default=False),
        F("strip_prefix", "text", "removed from the start of every checkpoint name first"),
    )
    modes = frozenset({"checkpoint"})

    def parse(self) -> None:
        if not isinstance(self.spec.get("arch_args", {}), dict):
            raise EditError("attach.arch_args: expected an object of keyword arguments")

    def describe(self) -> str:
        return f"Attach {self.spec['arch']}"

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        self.record(seed=self.value("seed", DEFAULT_SEED))
        try:
            self._check_size(doc, tx)
            model = self._build(doc)
        except ArchError as error:
            raise EditError(f"attach.arch: {str(error).removeprefix('arch: ')}") from None
        prefix = self.spec.get("strip_prefix") or ""
        stored = {name.removeprefix(prefix): slot for name, slot in doc.entries.items()}
        frozen = set(doc.frozen_names())
        report = load_checkpoint(model, stored, frozen,
                                 hf=hf_folder.is_hf_spec(self.spec["arch"]))
        # The checkpoint's ties (shown in its tie groups) stay ties in the model.
        retie_model(model, [[name.removeprefix(prefix) for name in group]
                            for group in doc.tie_groups()])
        problems = report_problems(report)
        if not report["loaded"]:
            example = next(iter(stored), "?")
            raise EditError(f"attach.arch: no tensor of the checkpoint fits {self.spec['arch']} "
                            f"(e.g. '{example}'); strip a prefix with strip_prefix?")
        if problems and self.get_bool("strict"):
            raise EditError(f"attach.arch: {'; '.join(problems)} (strict)")
        # The model document keeps where the tensors came from: a save copies them alike.
        tx.replace_document(ModelDocument(model, doc.source, doc.origin))
        return report

    def code_to_run(self, doc: Any = None) -> list[str]:
        folder = doc.source.get("folder") if doc is not None else None
        return arch_code(self.spec["arch"], self.spec.get("arch_args"),
                         folder=Path(folder) if folder else None, field="attach.arch")

    def _check_size(self, doc: CheckpointDocument, tx: Transaction) -> None:
        """Refuse arguments that make a model larger than an edit may allocate.

        The model is built on the meta device first, which allocates nothing. Code the
        user trusted is not run twice for this (its size is the user's to judge), and an
        architecture whose constructor cannot run on meta is built as it is.
        """
        hf = hf_folder.is_hf_spec(self.spec["arch"])
        if not (self.spec.get("arch_args") or hf) or self.code_to_run(doc):
            # The architecture's own defaults: the size it was made for. A folder's
            # config.json is input like the checkpoint, so it is sized too.
            return
        import torch

        try:
            with torch.device("meta"):
                sized = self._build(doc)
        except (ArchError, EditError):
            return
        check_allocation(doc, tx, module_nbytes(sized), "attach.arch_args",
                         f"{self.spec['arch']} built with these arguments")

    def _build(self, doc: CheckpointDocument) -> Any:
        arch = self.spec["arch"]
        args = self.spec.get("arch_args") or None
        seed = self.value("seed")
        if self.code_to_run(doc) and not self.trusted:
            # Session.apply checks first; this guards a caller that performs directly.
            raise EditError(f"attach.arch: {arch} runs code; refused without trust")
        if hf_folder.is_hf_spec(arch):
            folder = doc.source.get("folder")
            return hf_folder.build_hf_model(
                hf_folder.config_folder(arch, Path(folder) if folder else None), args, seed,
                trust=self.trusted)
        return build_model(arch, args, seed=seed)
