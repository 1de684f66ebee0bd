"""`init`: apply a `torch.nn.init` initializer, or a module's own `reset_parameters`.

With a seed, a random initializer gives exactly what
`torch.nn.init.<method>_(t, **args, generator=torch.Generator().manual_seed(seed))`
gives on each selected tensor in `named_parameters()` order, one generator for the
whole edit. Without one, a seed is drawn and recorded, so replaying the recipe
reproduces the same bits.

The `rules` form (several per-type rules, one generator, `model.apply` order) does what
`torch.manual_seed(seed); model.apply(weight_init)` does; see `engine.edits.init_rules`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..document.rows import dtype_name
from ..errors import EditError
from ..schema import Field as F
from . import init_rules
from .base import Edit, names_text, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document

#: method -> (random?, minimum dims, maximum dims)
INITIALIZERS: dict[str, tuple[bool, int, int | None]] = {
    "uniform": (True, 0, None),
    "normal": (True, 0, None),
    "trunc_normal": (True, 0, None),
    "constant": (False, 0, None),
    "ones": (False, 0, None),
    "zeros": (False, 0, None),
    "eye": (False, 2, 2),
    "dirac": (False, 3, 5),
    "xavier_uniform": (True, 2, None),
    "xavier_normal": (True, 2, None),
    "kaiming_uniform": (True, 2, None),
    "kaiming_normal": (True, 2, None),
    "orthogonal": (True, 2, None),
    "sparse": (True, 2, 2),
}
METHODS = (*INITIALIZERS, "reset")


def initializer(method: str) -> Any:
    """The `torch.nn.init` function for `method` (e.g. `kaiming_normal_`)."""
    return getattr(nn.init, f"{method}_")


def initializer_parameters(method: str) -> dict[str, inspect.Parameter]:
    """Keyword arguments an initializer takes (no tensor, no generator), by name."""
    if method == "reset":
        return {}
    signature = inspect.signature(initializer(method))
    return {name: parameter for name, parameter in list(signature.parameters.items())[1:]
            if name != "generator"}


def is_random(method: str) -> bool:
    return method == "reset" or INITIALIZERS[method][0]


@register
class Init(Edit):
    """Re-initialize tensors selected by name, glob or module type."""

    op = "init"
    fields = (
        F("targets", "names", "tensors, modules or globs to fill (or give types)"),
        F("types", "names", "module class names whose parameters are filled (or give targets)"),
        F("param", "names", "keep only tensors whose last name part is one of these (weight, bias)",
          label="Only tensors named"),
        F("method", "text", "a torch.nn.init initializer (kaiming_normal, zeros, ...) or reset"),
        F("args", "object", "keyword arguments of the initializer", label="Arguments"),
        F("seed", "seed", "seeds the random numbers; drawn and recorded when absent"),
        F("rules", "list",
          "per-type rules {types, param, method, args}, as model.apply(weight_init)"),
        F("target", "text", "with rules: the module whose apply() runs them (default the model)"),
    )

    def parse(self) -> None:
        self.rules: list[init_rules.Rule] | None = None
        if "rules" in self.spec:
            others = [key for key in ("targets", "types", "param", "method", "args")
                      if key in self.spec]
            if others:
                raise EditError(f"init.{others[0]}: with 'rules', each rule has its own "
                                "types, param, method and args")
            self.rules = init_rules.parse_rules(self.spec["rules"], check_method)
            return
        if "target" in self.spec:
            raise EditError("init.target: only with 'rules' (a module whose apply() runs "
                            "them); select tensors with 'targets'")
        if "method" not in self.spec:
            raise EditError("init.method: required field is missing")
        method = self.get_str("method")
        if ("targets" in self.spec) == ("types" in self.spec):
            raise EditError("init: give exactly one of 'targets' or 'types' (or 'rules')")
        check_method(method, self.spec.get("args", {}), "init")

    def describe(self) -> str:
        if self.rules is not None:
            types = [name for rule in self.rules for name in rule.types]
            return f"Init by type ({names_text(list(dict.fromkeys(types)))})"
        where = names_text(self.spec.get("targets") or self.spec.get("types"))
        return f"Init {where} ({self.spec['method']})"

    # -------------------------------------------------------------- selection
    def _select(self, doc: Document) -> list[str]:
        params = self.get_names("param")
        if "targets" in self.spec:
            names = doc.select_tensors(self.get_names("targets") or [], "init.targets",
                                       bulk_floating_only=True)
        else:
            names = doc.tensors_of_types(self.get_names("types") or [], "init.types")
        if params is not None:
            names = [name for name in names if name.rpartition(".")[2] in params]
            if not names:
                raise EditError(f"init.param: no selected tensor is named {names_text(params)}")
        return names

    # -------------------------------------------------------------- run
    def perform(self, doc: Document, tx: Transaction) -> Any:
        if self.rules is not None:
            return self._run_rules(doc, tx)
        method = self.spec["method"]
        if method == "reset":
            return self._reset(doc, tx)
        names = self._select(doc)
        for name in names:
            shape, dtype = doc.tensor_meta(name)
            check_tensor(method, name, shape, dtype, "init")
        seed = self.seed() if is_random(method) else None
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        function = initializer(method)
        args = dict(self.spec.get("args", {}))
        tensors = [doc.tensor(name) for name in names]

        def mutate() -> None:
            # sparse_ draws its zero positions from the global generator (torch.randperm
            # without a generator), so the global generator is seeded too, inside fork_rng.
            with torch.random.fork_rng(devices=[]):
                if method == "sparse":
                    torch.manual_seed(seed)
                _fill(tensors, function, args, generator)

        doc.change_in_place(tx, names, mutate)
        self.resolved["names"] = names
        return names

    def _run_rules(self, doc: Document, tx: Transaction) -> list[str]:
        doc.check_model("init.rules")
        assert self.rules is not None
        _, root = doc.module(self.spec.get("target") or "", "init.target")
        seed = self.seed()
        rules = self.rules

        def check(name: str, tensor: torch.Tensor, index: int) -> None:
            check_tensor(rules[index].method, name, tuple(tensor.shape), tensor.dtype,
                         f"init.rules[{index}]")

        names, skipped = init_rules.run(doc, tx, rules, seed, root, check, initializer)
        self.resolved["names"] = names
        self.resolved["skipped_none"] = skipped
        self.resolved["target"] = doc.module(self.spec.get("target") or "")[0]
        return names

    def _reset(self, doc: Document, tx: Transaction) -> Any:
        modules = _reset_modules(doc, self)
        seed = self.seed()
        # Record everything below the modules first: a reset_parameters may also
        # reset its children, and undo must restore what it touched.
        recorded: dict[int, str] = {}
        devices: set[int] = set()
        for path, module in modules:
            for leaf, tensor in [*module.named_parameters(), *module.named_buffers()]:
                if id(tensor) not in recorded:
                    recorded[id(tensor)] = f"{path}.{leaf}" if path else leaf
                    if tensor.device.type == "cuda":
                        devices.add(tensor.device.index or 0)

        def mutate() -> None:
            # One seed for the whole edit, like one generator for the initializers:
            # two equal layers get different values, and a script reproduces them.
            with torch.random.fork_rng(devices=sorted(devices)):
                torch.manual_seed(seed)
                for path, module in modules:
                    init_rules.reset_in_place(module, path, "init.method")

        doc.change_in_place(tx, list(recorded.values()), mutate)
        self.resolved["modules"] = [path for path, _ in modules]
        return self.resolved["modules"]


def check_method(method: Any, args: Any, where: str) -> None:
    """Check an initializer's name and keyword arguments; `where` prefixes the field."""
    if method not in METHODS:
        raise EditError(f"{where}.method: unknown initializer '{method}' "
                        f"(known: {', '.join(METHODS)})")
    if not isinstance(args, dict):
        raise EditError(f"{where}.args: expected an object of keyword arguments")
    if method == "reset" and args:
        raise EditError(f"{where}.args: 'reset' takes no arguments")
    accepted = initializer_parameters(method)
    for key, value in args.items():
        if key not in accepted:
            raise EditError(f"{where}.args.{key}: '{method}' takes "
                            f"{', '.join(accepted) or 'no arguments'}")
        if not isinstance(value, int | float | str | bool):
            raise EditError(f"{where}.args.{key}: expected a number or text")
    for key, parameter in accepted.items():
        if parameter.default is inspect.Parameter.empty and key not in args:
            raise EditError(f"{where}.args.{key}: required by '{method}'")


def check_tensor(method: str, name: str, shape: tuple[int, ...], dtype: torch.dtype,
                 where: str) -> None:
    """Refuse a tensor the initializer cannot fill (dims, dtype), naming it."""
    _, low, high = INITIALIZERS[method]
    if len(shape) < low or (high is not None and len(shape) > high):
        dims = f"{low}" if high == low else f"{low} to {high}" if high else f"{low} or more"
        hint = " (select weights with param: weight)" if len(shape) < low else ""
        raise EditError(f"{where}.method: '{method}' needs a tensor with {dims} dims; "
                        f"'{name}' has {len(shape)}{hint}")
    if not dtype.is_floating_point:
        field = "targets" if where == "init" else "param"
        raise EditError(f"{where}.{field}: '{name}' is {dtype_name(dtype)}; "
                        "initializers need floating-point tensors")


def _fill(tensors: list[torch.Tensor], function: Any, args: dict[str, Any],
          generator: torch.Generator | None) -> None:
    """Run an initializer on each tensor in order, drawing from one generator."""
    for tensor in tensors:
        if generator is None:
            function(tensor, **args)
        elif tensor.device.type == "cpu":
            function(tensor, **args, generator=generator)
        else:
            # One CPU generator for every device: the same bits on a GPU as on the CPU.
            staged = torch.empty(tensor.shape, dtype=tensor.dtype)
            function(staged, **args, generator=generator)
            tensor.copy_(staged)


def _reset_modules(doc: Document, edit: Init) -> list[tuple[str, nn.Module]]:
    """Modules to reset: those selected (or owning selected tensors) and their
    descendants that define `reset_parameters`, each once, in model order."""
    doc.check_model("init.method")
    model = doc.model
    if "types" in edit.spec:
        roots = {path for path, module in model.named_modules()
                 if type(module).__name__ in (edit.get_names("types") or [])}
        if not roots:
            raise EditError(f"init.types: the model has no module of type "
                            f"'{(edit.get_names('types') or [''])[0]}'")
    else:
        roots = set()
        for pattern in edit.get_names("targets") or []:
            try:
                roots.add(doc.module(pattern, "init.targets")[0])
            except EditError:
                names = doc.select_tensors([pattern], "init.targets")
                roots.update(name.rpartition(".")[0] for name in names)
    result = []
    for path, module in model.named_modules():
        inside = any(path == root or root == "" or path.startswith(root + ".") for root in roots)
        if inside and callable(getattr(module, "reset_parameters", None)):
            result.append((path, module))
    if not result:
        raise EditError("init.targets: no selected module has reset_parameters()")
    return result
