"""Build a model's graph: torch.export first, then torch.fx, then a watched forward pass.

Every method runs on a meta-device twin of the model when one can be made (no weight
read, nothing computed, the live model untouched); the watched forward pass is tried
on the live model last, for models whose code needs real values. The first method
that succeeds gives the graph; the others' failures are kept as notes, and when all
fail one GraphError names each reason in one line.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from ..errors import EditError
from ..model_inputs import ExampleInputs, example_inputs
from ..progress import Progress, report
from ..tracing import one_trace_at_a_time
from .model import Graph, GraphError
from .trace_export import trace_export
from .trace_fx import trace_fx
from .trace_hooks import trace_hooks
from .twin import meta_twin

if TYPE_CHECKING:
    from collections.abc import Callable

#: the methods in the order they are tried
METHODS = ("export", "fx", "hooks")
#: the most elements a given example input may hold (1 GiB of float32, as for export):
#: the watched pass may run the live model on it, and a typo in a shape must not
#: allocate without bound
MAX_INPUT_ELEMENTS = 2**28
_TRACERS: dict[str, Callable[[nn.Module, ExampleInputs], Graph]] = {
    "export": trace_export, "fx": trace_fx, "hooks": trace_hooks}


def build_graph(model: nn.Module, *, method: str = "auto",
                input_shape: tuple[int, ...] | list[int] | None = None,
                twin: nn.Module | None = None, progress: Progress | None = None) -> Graph:
    """The dataflow graph of `model`.

    Parameters
    ----------
    model : the live model; it is neither run nor changed when a meta twin can be made
    method : "auto" (export, then fx, then hooks), or one of METHODS only
    input_shape : one sample's shape instead of the probed one
    twin : a meta twin made beforehand (`meta_twin(model)`), e.g. in the GUI thread
    progress : reports the step; raises Cancelled between steps

    Raises
    ------
    GraphError : no method could trace the model (each reason in the one line), or
        `input_shape` is not a shape of at most MAX_INPUT_ELEMENTS
    """
    if method != "auto" and method not in METHODS:
        raise GraphError(f"method: expected auto or one of {', '.join(METHODS)}, got '{method}'")
    if input_shape is not None:
        input_shape = check_input_shape(input_shape)
    methods = METHODS if method == "auto" else (method,)
    report(progress, 0.02, "copying the model to the meta device")
    subject = twin if twin is not None else meta_twin(model)
    notes: list[str] = []
    subjects = [subject] if subject is not None else []
    if not _on_meta(model) or subject is None:
        subjects.append(model)
    for target in subjects:
        where = " (live model)" if target is model and subject is not None else ""
        try:
            # The trace is a forward pass: a first layer with one possible shape
            # needs no probe run before it.
            inputs = example_inputs(target, input_shape=input_shape, probe=False)
        except EditError as error:
            notes.append(f"no example inputs{where}: {error}")
            continue
        names = methods
        if target is model and subject is not None and len(notes) > 0 and \
                not notes[-1].startswith("no example inputs"):
            # The twin was traced and failed: only a real forward pass can do better
            # (code that needs real values, e.g. data-dependent branches).
            names = tuple(name for name in methods if name == "hooks")
        for name in names:
            report(progress, 0.1 + 0.8 * len(notes) / (2 * len(METHODS)), f"tracing with {name}")
            try:
                with one_trace_at_a_time(progress):
                    graph = _TRACERS[name](target, inputs)
            except GraphError as error:
                notes.append(f"{error}{where}")
                continue
            graph.notes = notes
            report(progress, 1.0, "graph built")
            return graph
    raise GraphError(f"graph: {type(model).__name__} cannot be traced: " + "; ".join(notes))


def check_input_shape(shape: tuple[int, ...] | list[int],
                      field: str = "input_shape") -> tuple[int, ...]:
    """`shape` as a tuple, once it is a sample's shape of at most MAX_INPUT_ELEMENTS.

    Raises
    ------
    GraphError : not positive integers, or too many elements (naming `field`)
    """
    if not shape or not all(isinstance(size, int) and not isinstance(size, bool)
                            and size > 0 for size in shape):
        raise GraphError(f"{field}: expected positive sizes such as 3,224,224")
    elements = math.prod(shape)
    if elements > MAX_INPUT_ELEMENTS:
        raise GraphError(f"{field}: a sample of {elements:,} elements is too large "
                         f"(at most {MAX_INPUT_ELEMENTS:,})")
    return tuple(shape)


def _on_meta(model: nn.Module) -> bool:
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    return tensor is not None and tensor.device.type == "meta"
