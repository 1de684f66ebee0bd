"""Build the graph with `torch.export`: ATen ops, each with the module stack it ran in.

Export runs non-strict (Python-level tracing on fake tensors), in eval mode, with the
example inputs; parameters and buffers are lifted to graph inputs whose targets name
them, so a tied weight is one tensor node however many ops read it.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import nn

from ..model_inputs import ExampleInputs
from ..training.model_io import first_line, kept_modes
from .assemble import GraphAssembler, meta_stack, short_op_name
from .model import Graph, GraphError

#: ops that only check shapes or set modes: they carry no data
_SKIPPED_PREFIXES = ("_assert", "sym_", "_set_grad_enabled", "_enter_autocast",
                     "_exit_autocast")


def export_program(model: nn.Module, inputs: ExampleInputs) -> torch.export.ExportedProgram:
    """`torch.export.export` of `model` in eval mode (modes are put back).

    Raises
    ------
    GraphError : export failed (the message is its first line)
    """
    with kept_modes(model):
        model.eval()
        try:
            return torch.export.export(model, inputs.args, inputs.kwargs, strict=False)
        except Exception as error:
            raise GraphError(f"export: {first_line(error)}") from None


def op_name(target: Any) -> tuple[str, str]:
    """(short name, full name) of a call_function target."""
    if target is operator.getitem:
        return "getitem", "operator.getitem"
    schema = getattr(target, "_schema", None)
    if schema is not None:
        name = schema.name.split("::")[-1]
        return short_op_name(name), str(target)
    name = getattr(target, "__name__", None) or str(target)
    module = getattr(target, "__module__", "") or ""
    return short_op_name(name), f"{module}.{name}" if module else name


def graph_from_program(model: nn.Module, program: torch.export.ExportedProgram,
                       example: str = "") -> Graph:
    """Turn an exported program of `model` into a Graph."""
    assembler = GraphAssembler(model, "export")
    signature = program.graph_signature
    specs = {}
    for spec in signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if name is not None:
            specs[name] = spec
    ids: dict[str, str] = {}
    for node in program.graph.nodes:
        value = node.meta.get("val")
        if node.op == "placeholder":
            spec = specs.get(node.name)
            kind = spec.kind.name if spec is not None else "USER_INPUT"
            if kind in ("PARAMETER", "BUFFER") and spec.target:
                node_id = assembler.tensor(spec.target)
                if node_id is not None:
                    ids[node.name] = node_id
            elif kind == "CONSTANT_TENSOR":
                ids[node.name] = assembler.constant(spec.target or node.name, value)
            elif kind == "USER_INPUT" and isinstance(value, torch.Tensor):
                ids[node.name] = assembler.add_input(node.name, value)
            continue
        if node.op != "call_function":
            continue
        short, full = op_name(node.target)
        if short.startswith(_SKIPPED_PREFIXES) or not _carries_tensors(value):
            continue
        sources = [ids[arg.name] for arg in node.all_input_nodes if arg.name in ids]
        ids[node.name] = assembler.add_op(meta_stack(node.meta), short, full, sources, value)
    outputs = []
    for spec in signature.output_specs:
        if spec.kind.name == "USER_OUTPUT":
            name = getattr(spec.arg, "name", None)
            if name in ids:
                outputs.append(ids[name])
    return assembler.finish(outputs, example)


def _carries_tensors(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, list | tuple):
        return any(isinstance(item, torch.Tensor) for item in value)
    return False


def trace_export(model: nn.Module, inputs: ExampleInputs) -> Graph:
    """The graph of `model` by torch.export; GraphError names why when export fails."""
    return graph_from_program(model, export_program(model, inputs), inputs.text)
