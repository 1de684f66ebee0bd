"""Turn what a tracer saw into a Graph: one assembler shared by export, fx and hooks.

A tracer reports inputs, tensor reads and ops in execution order; the assembler gives
each its stable id (module path + position among that module's own ops; a tensor's
canonical name), normalizes module paths to real dotted names of the model, and
records the module types of every group that appears.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..listing import dtype_name
from .model import Graph, Node, group_key, module_of_key, op_id
from .twin import alias_names, module_types, tensor_kinds

_INDEX = re.compile(r"\[['\"]?([^\]'\"]+)['\"]?\]")
_DUNDER = re.compile(r"^__(i?)(r?)([a-z_]+?)__$")


#: Python's operator functions (fx records `out += x` as operator.iadd)
_OPERATORS = {"iadd": "add_", "isub": "sub_", "imul": "mul_", "itruediv": "div_",
              "truediv": "div", "floordiv": "floor_divide", "matmul": "matmul"}


def short_op_name(name: str) -> str:
    """`__iadd__` and `iadd` -> `add_`, `__radd__` -> `add`, `__getitem__` -> `getitem`."""
    if name in _OPERATORS:
        return _OPERATORS[name]
    match = _DUNDER.match(name)
    if not match:
        return name
    inplace, _, base = match.groups()
    return base + ("_" if inplace else "")


def meta_stack(meta: dict[str, Any]) -> list[tuple[str, int]]:
    """The (module path, call index) stack of an fx/export node's `nn_module_stack`.

    Its keys end in `@N` for the N-th call of a module that ran before.
    """
    stack = []
    for key, value in (meta.get("nn_module_stack") or {}).items():
        path = value[0] if isinstance(value, tuple) else str(value)
        _, at, call = str(key).rpartition("@")
        stack.append((path, int(call) if at and call.isdigit() else 0))
    return stack


def value_meta(value: Any) -> tuple[tuple[int, ...] | None, str | None]:
    """Shape and dtype name of a tensor value; (None, None) for anything else."""
    if isinstance(value, torch.Tensor):
        try:
            shape = tuple(int(size) for size in value.shape)
        except (TypeError, ValueError, RuntimeError):  # symbolic sizes
            shape = None
        return shape, dtype_name(value.dtype)
    return None, None


class GraphAssembler:
    """Collects nodes for one Graph of `model`.

    Parameters
    ----------
    model : the traced model (the live one or its meta twin: the names are the same)
    method : the tracer's name, recorded in the Graph
    """

    def __init__(self, model: nn.Module, method: str) -> None:
        self.method = method
        self.aliases = alias_names(model)
        self.kinds = tensor_kinds(model)
        self.types = module_types(model)
        self.nodes: dict[str, Node] = {}
        self.inputs: list[str] = []
        self._positions: dict[str, int] = {}
        self._tensor_meta: dict[str, tuple[tuple[int, ...], str]] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            for registry in (module._parameters, module._buffers):
                for leaf, tensor in registry.items():
                    if tensor is not None:
                        name = f"{path}.{leaf}" if path else leaf
                        self._tensor_meta[name] = (tuple(tensor.shape), dtype_name(tensor.dtype))
        self._homeless: set[str] = set()  # constants whose first reader is still unknown

    # ------------------------------------------------------------------ paths
    def module_path(self, raw: str) -> str:
        """A recorded module path as the model's dotted name (`L['self'].layer1[0]` ->
        `layer1.0`); the longest prefix that names a module when the rest does not."""
        text = raw.strip()
        for prefix in ("L['self'].", "L[\"self\"].", "L['self']", "self.", "L__self___"):
            if text.startswith(prefix):
                text = text[len(prefix):]
        text = text.replace("._modules", "")
        text = _INDEX.sub(lambda match: "." + match.group(1), text).strip(".")
        if text in self.types:
            return text
        parts = text.split(".")
        while parts and ".".join(parts) not in self.types:
            parts.pop()
        return ".".join(parts)

    # ------------------------------------------------------------------ nodes
    def scope(self, stack: list[tuple[str, int]]) -> tuple[str, ...]:
        """Group keys for a stack of (recorded module path, call index), outermost first.

        Paths are normalized; containers that never run (a ModuleList between a model
        and its blocks) are put back in, so the groups follow the module tree.
        """
        keys: list[str] = []
        parent = ""
        for raw, call in stack:
            path = self.module_path(raw)
            if not path or (keys and path == parent):
                continue
            if parent == "" or path.startswith(parent + "."):
                # Containers between the parent and this module, e.g. `model.layers`.
                parts = path.split(".")
                start = len(parent.split(".")) if parent else 0
                for end in range(start + 1, len(parts)):
                    middle = ".".join(parts[:end])
                    if middle in self.types and middle not in keys:
                        keys.append(middle)
            keys.append(group_key(path, call))
            parent = path
        return tuple(keys)

    def owner_scope(self, module: str) -> tuple[str, ...]:
        """The plain group keys of a module path and its ancestors (a tensor's owner)."""
        if not module:
            return ()
        parts = module.split(".")
        return tuple(".".join(parts[:end]) for end in range(1, len(parts) + 1)
                     if ".".join(parts[:end]) in self.types)

    def add_input(self, name: str, value: Any) -> str:
        """Record a model input; return its id."""
        node_id = f"input:{name}"
        shape, dtype = value_meta(value)
        self.nodes[node_id] = Node(node_id, "input", "", shape, dtype, kind="input",
                                   target=name)
        self.inputs.append(node_id)
        return node_id

    def tensor(self, name: str) -> str | None:
        """The id of the node for the model tensor `name` (created on first read); None
        when `name` is no parameter or buffer of the model."""
        names = self.aliases.get(name)
        if names is None:
            return None
        canonical = names[0]
        if canonical not in self.nodes:
            shape, dtype = self._tensor_meta[canonical]
            owner = canonical.rpartition(".")[0]
            kind = self.kinds[canonical]
            self.nodes[canonical] = Node(canonical, kind, owner, shape, dtype, kind=kind,
                                         target=canonical, names=names,
                                         scope=self.owner_scope(owner))
        return canonical

    def constant(self, name: str, value: Any) -> str:
        """The id of a constant tensor the trace lifted (`constant:NAME`); it belongs to
        the group of its first reader."""
        node_id = f"constant:{name}"
        if node_id not in self.nodes:
            shape, dtype = value_meta(value)
            self.nodes[node_id] = Node(node_id, "constant", "", shape, dtype,
                                       kind="constant", target=name)
            self._homeless.add(node_id)
        return node_id

    def add_op(self, stack: list[tuple[str, int]], op: str, target: str, inputs: list[str],
               value: Any) -> str:
        """Record an op that ran inside the modules of `stack` (recorded paths with
        their call index, outermost first); return its id."""
        scope = self.scope(stack)
        module = module_of_key(scope[-1]) if scope else ""
        position = self._positions.get(module, 0)
        self._positions[module] = position + 1
        node_id = op_id(module, position)
        shape, dtype = value_meta(value)
        unique = list(dict.fromkeys(source for source in inputs if source in self.nodes))
        for source in unique:
            if source in self._homeless:
                self._homeless.discard(source)
                self.nodes[source].module = module
                self.nodes[source].scope = scope
        self.nodes[node_id] = Node(node_id, op, module, shape, dtype, inputs=unique,
                                   target=target, scope=scope)
        return node_id

    def finish(self, outputs: list[str], example: str = "",
               notes: list[str] | None = None) -> Graph:
        """The Graph, with the types of every module path that holds a node.

        Whatever the tracer's order, inputs come first and each tensor just before its
        first reader; a tensor nothing reads (an unused buffer) is left out.
        """
        ordered: dict[str, Node] = {node_id: self.nodes[node_id] for node_id in self.inputs}
        for node in self.nodes.values():
            if node.kind != "op":
                continue
            for source in node.inputs:
                if source not in ordered:
                    ordered[source] = self.nodes[source]
            ordered[node.id] = node
        for node_id in outputs:
            ordered.setdefault(node_id, self.nodes[node_id])
        self.nodes = ordered
        keys = {""}
        for node in self.nodes.values():
            keys.update(node.scope)
        types = {key: self.types.get(module_of_key(key), "") for key in sorted(keys)}
        return Graph(self.nodes, self.inputs, list(dict.fromkeys(outputs)), self.method,
                     list(notes or []), example, types)
