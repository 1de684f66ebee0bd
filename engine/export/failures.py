"""Turn an exporter's failure into one line naming the module (or op) and the reason.

The exporters raise long, multi-part messages (graph dumps, links, hints). What a
user needs is where and why: the innermost frame of the model's own code that was
running (a submodule's `forward`, found by walking the traceback for a `self` that is
one of the model's modules), or the fx node being translated (its module stack),
and the kind of problem: a branch on a tensor's value, an op with no translation,
a fixed batch size.
"""

from __future__ import annotations

import linecache
import os
import re
from pathlib import Path
from types import TracebackType

import torch
from torch import nn

from ..training.model_io import first_line

TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
#: how long the quoted part of an exporter's message may be
MESSAGE_LIMIT = 160

_OP = re.compile(r"op='([\w.]+)', overload='(\w+)'|torch\.ops\.([\w.]+)|aten::(\w+)")


def explain(error: BaseException, model: nn.Module, fmt: str, tool: str,
            root: nn.Module | None = None) -> str:
    """One line: `{fmt}: cannot export <where>: <why>`.

    `model` is the module whose submodules are named; `root`, the module handed to the
    exporter when it is a view of `model` (named as the model); `tool` names what
    captures the graph (e.g. torch.export) in the reason.
    """
    chain = _chain(error)
    where = _model_frame(chain, model, root) or _fx_node_module(chain)
    why = _reason(chain, tool)
    return f"{fmt}: cannot export {where or 'the model'}: {why}"


def _chain(error: BaseException) -> list[BaseException]:
    """The error and its causes / contexts, outermost first, each once."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _frames(traceback: TracebackType | None) -> list[TracebackType]:
    frames = []
    while traceback is not None:
        frames.append(traceback)
        traceback = traceback.tb_next
    return frames


def _model_frame(chain: list[BaseException], model: nn.Module,
                 root: nn.Module | None) -> str | None:
    """The innermost frame running a method of one of the model's modules, described."""
    names = {id(module): name for name, module in model.named_modules(remove_duplicate=False)}
    if root is not None:
        names.setdefault(id(root), "")
    best = None
    for error in chain:
        for frame in _frames(error.__traceback__):
            owner = frame.tb_frame.f_locals.get("self")
            if isinstance(owner, nn.Module) and id(owner) in names \
                    and not _is_torch_file(frame.tb_frame.f_code.co_filename):
                best = (names[id(owner)], owner, frame)
        if best is not None:
            break
    if best is None:
        return None
    name, owner, frame = best
    code = frame.tb_frame.f_code
    line = linecache.getline(code.co_filename, frame.tb_lineno).strip()
    place = f"{type(owner).__name__}.{code.co_name} at {Path(code.co_filename).name}:" \
            f"{frame.tb_lineno}"
    if line:
        place += f" `{line[:80]}`"
    subject = f"module '{name}'" if name else "the model"
    return f"{subject} ({place})"


def _is_torch_file(filename: str) -> bool:
    """Whether a frame runs torch's own code (nn.Module's call machinery, the tracers)."""
    return filename.startswith(TORCH_DIR)


def _fx_node_module(chain: list[BaseException]) -> str | None:
    """The module of the fx node an exporter was translating, from its module stack."""
    for error in chain:
        for frame in reversed(_frames(error.__traceback__)):
            node = frame.tb_frame.f_locals.get("node")
            meta = getattr(node, "meta", None)
            if not isinstance(meta, dict):
                continue
            stack = meta.get("nn_module_stack")
            if stack:
                path, kind = list(stack.values())[-1]
                kind_name = getattr(kind, "__name__", str(kind)).rpartition(".")[2]
                path = re.sub(r"^L\['self'\]\.?", "", str(path))
                return f"module '{path}' ({kind_name})" if path else f"the model ({kind_name})"
    return None


def _reason(chain: list[BaseException], tool: str) -> str:
    """Why the export failed, in words a user can act on."""
    names = [type(error).__name__ for error in chain]
    texts = [str(error) for error in chain]
    joined = "\n".join(texts)
    if "GuardOnDataDependentSymNode" in names or "data-dependent" in joined:
        return ("it branches on a tensor's value (data-dependent control flow), which "
                f"{tool} cannot capture; rewrite the branch with torch.cond or torch.where, "
                "or export TorchScript (script keeps Python control flow)")
    if "DispatchError" in names or "No ONNX function found" in joined:
        op = _op_name(joined)
        return (f"{op or 'an op'} has no ONNX translation in this exporter "
                "(torch.onnx.export(dynamo=True)); export pt2 or TorchScript instead")
    if "specialized" in joined and ("batch" in joined or "dim" in joined.lower()):
        return ("the model fixes the batch size (dimension 0 was specialized to a "
                "constant); export without --dynamic-batch, or make the code size-agnostic")
    innermost = chain[-1]
    return _short(f"{type(innermost).__name__}: {first_line(innermost)}")


def _op_name(text: str) -> str | None:
    for match in _OP.finditer(text):
        if match.group(1):
            return f"{match.group(1)}.{match.group(2)}"
        name = match.group(3) or (f"aten.{match.group(4)}" if match.group(4) else None)
        if name:
            return name
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
