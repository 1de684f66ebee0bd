"""Build the graph by running the forward once and watching it: module hooks + torch functions.

Forward pre/post hooks keep the stack of modules that are running; a
`TorchFunctionMode` sees every torch function the forward calls (`F.conv2d`,
`Tensor.__add__`, `torch.cat`, ...), with the tensors it reads and returns. Tensors
are followed by identity, so a residual add reads the two tensors it adds. Calls
inside a torch function are not seen again (the mode is off while one runs), so a
node is what the model's Python code called.

This is the fallback when export and fx fail, and the quick first look of the GUI:
on the meta device it costs one forward pass of Python, about 0.1 ms per op.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from ..model_inputs import ExampleInputs
from ..training.model_io import first_line, kept_modes
from .assemble import GraphAssembler, short_op_name
from .model import Graph, GraphError


def _function_name(func: Any) -> tuple[str, str]:
    """(short name, full name) of a function seen by the mode."""
    name = getattr(func, "__name__", None) or type(func).__name__
    owner = getattr(func, "__self__", None)
    if name in ("__get__", "__set__") and owner is not None:
        name = getattr(owner, "__name__", name)  # a property such as Tensor.T
    qualname = getattr(func, "__qualname__", name)
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch._C"):
        module = "torch"
    full = f"{module}.{qualname}" if module else qualname
    return short_op_name(name.lstrip("_") if name.startswith("_") and
                         not name.startswith("__") else name), full


class _Recorder(TorchFunctionMode):
    """Records one node per torch function call that returns tensors."""

    def __init__(self, assembler: GraphAssembler, stack: list[tuple[str, int]],
                 known: dict[int, str], tensor_names: dict[int, str]) -> None:
        super().__init__()
        self.assembler = assembler
        self.stack = stack
        self.known = known  # id(tensor) -> node id of its latest producer
        self.tensor_names = tensor_names  # id(parameter or buffer) -> its first name
        # Every tensor seen stays alive until the trace ends, so no id is reused.
        self.kept: list[torch.Tensor] = []

    def source(self, tensor: torch.Tensor) -> str | None:
        known = self.known.get(id(tensor))
        if known is not None:
            return known
        name = self.tensor_names.get(id(tensor))
        return self.assembler.tensor(name) if name is not None else None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        outputs = [leaf for leaf in pytree.tree_leaves(result) if isinstance(leaf, torch.Tensor)]
        if not outputs:
            return result
        sources = []
        for leaf in pytree.tree_leaves((args, kwargs)):
            if isinstance(leaf, torch.Tensor):
                source = self.source(leaf)
                if source is not None:
                    sources.append(source)
        short, full = _function_name(func)
        value = result if isinstance(result, torch.Tensor) else tuple(outputs)
        node_id = self.assembler.add_op(self.stack, short, full, sources, value)
        for leaf in outputs:
            self.known[id(leaf)] = node_id
            self.kept.append(leaf)
        return result


@contextlib.contextmanager
def _module_stack(model: nn.Module, stack: list[tuple[str, int]]) -> Iterator[None]:
    """Keep `stack` as the (path, call index) of the modules running, innermost last."""
    handles = []
    paths = {id(module): path for path, module in model.named_modules()}
    calls: dict[int, int] = {}

    def enter(module: nn.Module, args: Any) -> None:
        call = calls.get(id(module), 0)
        calls[id(module)] = call + 1
        stack.append((paths.get(id(module), stack[-1][0]), call))

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        if len(stack) > 1:
            stack.pop()

    try:
        for module in model.modules():
            if module is model:
                continue
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave, always_call=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _tracing(model: nn.Module) -> Iterator[None]:
    """On meta tensors, say that a graph is being traced (`torch.compiler.is_compiling()`),
    as export does: model code then skips the data-dependent checks that a meta tensor
    cannot answer (Hugging Face's mask preprocessing calls `.all()` on one otherwise)."""
    session = getattr(torch.compiler, "_compile_session_context", None)
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    if session is None or tensor is None or tensor.device.type != "meta":
        yield
        return
    with session():
        yield


def _input_names(model: nn.Module, inputs: ExampleInputs) -> list[tuple[str, Any]]:
    try:
        bound = inspect.signature(model.forward).bind_partial(*inputs.args, **inputs.kwargs)
        items = list(bound.arguments.items())
    except (TypeError, ValueError):
        items = [(f"arg{i}", value) for i, value in enumerate(inputs.args)]
        items += list(inputs.kwargs.items())
    named = []
    for name, value in items:
        leaves = [leaf for leaf in pytree.tree_leaves(value) if isinstance(leaf, torch.Tensor)]
        for index, leaf in enumerate(leaves):
            named.append((name if len(leaves) == 1 else f"{name}_{index}", leaf))
    return named


def trace_hooks(model: nn.Module, inputs: ExampleInputs) -> Graph:
    """The graph of `model` from one watched forward pass (eval mode, no gradients).

    Raises
    ------
    GraphError : the forward pass failed with the example inputs
    """
    assembler = GraphAssembler(model, "hooks")
    known: dict[int, str] = {}
    for name, tensor in _input_names(model, inputs):
        known[id(tensor)] = assembler.add_input(name, tensor)
    tensor_names: dict[int, str] = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False),
                         *model.named_buffers(remove_duplicate=False)]:
        tensor_names.setdefault(id(tensor), name)
    stack: list[tuple[str, int]] = [("", 0)]
    recorder = _Recorder(assembler, stack, known, tensor_names)
    with kept_modes(model), torch.no_grad(), _module_stack(model, stack), _tracing(model):
        model.eval()
        try:
            with recorder:
                output = model(*inputs.args, **inputs.kwargs)
        except Exception as error:
            raise GraphError(f"hooks: the forward pass failed: {first_line(error)}") from None
    outputs = [recorder.known[id(leaf)] for leaf in pytree.tree_leaves(output)
               if isinstance(leaf, torch.Tensor) and id(leaf) in recorder.known]
    return assembler.finish(outputs, inputs.text)
