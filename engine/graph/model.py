"""The dataflow graph of a model: nodes, their inputs, and what the graph was built by.

A node is an op that ran (its innermost module, its op name, its output's shape and
dtype), a model input, or a parameter, buffer or constant that ops read. Identity is
the dotted module path plus the op's position among the ops that ran directly in that
module (`layer1.0#2`: the third op of `layer1.0`'s own forward), so an edit elsewhere
in the model leaves a node's id alone and a selection survives a rebuild. Inputs are
`input:NAME`, tensors their canonical dotted name (`fc.weight`), constants
`constant:NAME`: neither ":" nor "#" ever occurs in a module path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import WeightsmithError

#: node kinds; "op" for everything that ran
KINDS = ("op", "input", "parameter", "buffer", "constant")


class GraphError(WeightsmithError):
    """The graph of a model could not be built; the message says why in one line."""


@dataclass
class Node:
    """One node of the dataflow graph.

    Attributes
    ----------
    id : stable identity (see the module docstring)
    op : short op name (`conv2d`, `add_`, `getitem`); for tensors their kind
    module : dotted path of the innermost module it ran in ("" at top level); for a
        tensor, the module that owns it
    shape : the output's shape, or None when the output is not one tensor
    dtype : the output's dtype name (`float32`), or None
    kind : one of KINDS
    inputs : ids of the nodes whose values it reads, in argument order, each once
    target : the full op (`aten.conv2d.default`, `torch.nn.functional.linear`), for tooltips
    names : for a tensor, every name bound to it (tied names included), canonical first
    scope : the groups it belongs to, outermost first (the root left out): module paths,
        with `@N` for the N-th call of a module that ran more than once
        (`layer1.0.relu@1`), so each call of a shared module is a group of its own
    """

    id: str
    op: str
    module: str
    shape: tuple[int, ...] | None
    dtype: str | None
    kind: str = "op"
    inputs: list[str] = field(default_factory=list)
    target: str = ""
    names: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()

    @property
    def is_tensor(self) -> bool:
        """Whether the node is a parameter, buffer or constant rather than an op or input."""
        return self.kind in ("parameter", "buffer", "constant")


@dataclass
class Graph:
    """A model's dataflow graph, in execution order.

    Attributes
    ----------
    nodes : by id, in the order they were first seen (a tensor just before its first reader)
    inputs : ids of the model's inputs
    outputs : ids of the nodes whose values the model returns
    method : what built it: "export", "fx" or "hooks"
    notes : why an earlier method was not used, one line each
    example : the example inputs it was traced with, in words (`input_ids [1, 16]`)
    module_types : class name of every group that appears, by group key (a module
        path, `@N` for a later call)
    """

    nodes: dict[str, Node]
    inputs: list[str]
    outputs: list[str]
    method: str
    notes: list[str] = field(default_factory=list)
    example: str = ""
    module_types: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def edges(self) -> list[tuple[str, str]]:
        """Every (from, to) pair, in the order of the readers."""
        return [(source, node.id) for node in self.nodes.values() for source in node.inputs]

    def users(self) -> dict[str, list[str]]:
        """For each node id, the ids of the nodes that read it, in order."""
        result: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for node in self.nodes.values():
            for source in node.inputs:
                result[source].append(node.id)
        return result

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form: nodes, edges, inputs, outputs (docs/graph.md)."""
        return {
            "nodes": [{"id": node.id, "op": node.op, "module": node.module,
                       "shape": None if node.shape is None else list(node.shape),
                       "dtype": node.dtype} for node in self.nodes.values()],
            "edges": [{"from": source, "to": target} for source, target in self.edges()],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
        }


def group_key(module: str, call: int) -> str:
    """The key of the `call`-th call of the module at `module` (the first is the path)."""
    return f"{module}@{call}" if call else module


def module_of_key(key: str) -> str:
    """The module path of a group key (`layer1.0.relu@1` -> `layer1.0.relu`)."""
    path, at, call = key.rpartition("@")
    return path if at and call.isdigit() else key


def op_id(module: str, position: int) -> str:
    """The id of the `position`-th op that ran directly in `module`."""
    return f"{module}#{position}"


def module_of_id(node_id: str) -> str | None:
    """The module path in an op id (`layer1.0#2` -> `layer1.0`), None for other ids."""
    module, hash_mark, position = node_id.rpartition("#")
    return module if hash_mark and position.isdigit() else None
