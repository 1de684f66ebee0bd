"""Build the graph with `torch.fx` symbolic tracing, shapes filled in by one propagation.

fx keeps torch.nn's own layers as leaves (one `call_module` node for a Conv2d); such
a node reads the layer's parameters and buffers, so they link to it as export's do.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.utils import _pytree as pytree

from ..model_inputs import ExampleInputs
from ..training.model_io import first_line, kept_modes
from .assemble import GraphAssembler, meta_stack, short_op_name
from .model import Graph, GraphError


def _value(node: fx.Node) -> Any:
    meta = node.meta.get("tensor_meta")
    if meta is None:
        return None
    if hasattr(meta, "shape"):  # one TensorMetadata (itself a named tuple)
        return torch.empty(meta.shape, dtype=meta.dtype, device="meta")
    if isinstance(meta, list | tuple):
        return tuple(torch.empty(item.shape, dtype=item.dtype, device="meta")
                     for item in meta if hasattr(item, "shape"))
    return None


def _traced(model: nn.Module, inputs: ExampleInputs) -> fx.GraphModule:
    # Keyword inputs that are not tensors (`use_cache=False`) are bound as constants.
    concrete = {name: value for name, value in inputs.kwargs.items()
                if not isinstance(value, torch.Tensor)}
    with kept_modes(model):
        model.eval()
        try:
            traced = fx.symbolic_trace(model, concrete_args=concrete or None)
            tensors = [*inputs.args, *(value for value in inputs.kwargs.values()
                                       if isinstance(value, torch.Tensor))]
            # ShapeProp prints a traceback of its own before it re-raises.
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                ShapeProp(traced).propagate(*tensors)
        except Exception as error:
            raise GraphError(f"fx: {first_line(error)}") from None
    return traced


def trace_fx(model: nn.Module, inputs: ExampleInputs) -> Graph:
    """The graph of `model` by fx; GraphError names why when tracing fails."""
    traced = _traced(model, inputs)
    assembler = GraphAssembler(model, "fx")
    ids: dict[str, str] = {}
    calls: dict[str, int] = {}
    outputs: list[str] = []
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            value = _value(node)
            if isinstance(value, torch.Tensor):
                ids[node.name] = assembler.add_input(str(node.target).lstrip("*"), value)
            continue
        if node.op == "output":
            for leaf in pytree.tree_leaves(node.args[0]):
                if isinstance(leaf, fx.Node) and leaf.name in ids:
                    outputs.append(ids[leaf.name])
            continue
        if node.op == "get_attr":
            tensor_id = assembler.tensor(str(node.target))
            if tensor_id is not None:
                ids[node.name] = tensor_id
            continue
        value = _value(node)
        if value is None or (isinstance(value, tuple) and not value):
            continue  # sizes and other plain values carry no tensor
        stack = meta_stack(node.meta)
        sources = [ids[arg.name] for arg in node.all_input_nodes if arg.name in ids]
        if node.op == "call_module":
            module = assembler.module_path(str(node.target))
            # Each call_module node is one call: a layer called twice is two groups.
            call = calls.get(module, 0)
            calls[module] = call + 1
            stack = [item for item in stack if assembler.module_path(item[0]) != module]
            stack.append((module, call))
            layer = model.get_submodule(module) if module else model
            op = type(layer).__name__
            for leaf, _ in [*layer.named_parameters(), *layer.named_buffers()]:
                tensor_id = assembler.tensor(f"{module}.{leaf}" if module else leaf)
                if tensor_id is not None:
                    sources.append(tensor_id)
            full = f"{type(layer).__module__}.{op}"
        else:
            name = getattr(node.target, "__name__", None) or str(node.target)
            op = short_op_name(name)
            full = name if node.op == "call_method" else \
                f"{getattr(node.target, '__module__', '') or ''}.{name}".lstrip(".")
        ids[node.name] = assembler.add_op(stack, op, full, sources, value)
    return assembler.finish(outputs, inputs.text)
