"""Per-type initialization rules: the `init` form `{"op": "init", "seed": S, "rules": [...]}`.

It does exactly what the tutorials' pattern does::

    def weight_init(m):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.zeros_(m.bias)

    torch.manual_seed(S)
    model.apply(weight_init)

Modules are visited by `model.apply` itself (post-order: children before their parent);
for each module, every rule whose `types` it is an instance of runs, in the order of the
rules, on each of its `param` tensors (a parameter that is None, such as the bias of
`Linear(bias=False)`, is skipped). Every random initializer draws from torch's global
CPU generator seeded with S, inside `fork_rng` so the caller's generator is untouched,
so the values are bit-identical to that code run on the CPU. Tensors on another device
are filled on the CPU and copied, so the values do not depend on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import EditError

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document

RULE_FIELDS = ("types", "param", "method", "args")


@dataclass(frozen=True)
class Rule:
    """One rule: modules that are instances of `types` get `method` on each `params`."""

    types: tuple[str, ...]
    params: tuple[str, ...]
    method: str
    args: dict[str, Any]

    def matches(self, module: nn.Module) -> bool:
        """isinstance(module, any of the types), with types named as classes."""
        return any(is_instance(module, name) for name in self.types)


def is_instance(module: nn.Module, type_name: str) -> bool:
    """`isinstance(module, nn.<type_name>)` for a torch.nn class, else whether a class of
    that name is among the module's bases (models' own classes: `BertLayer`)."""
    cls = getattr(nn, type_name, None)
    if isinstance(cls, type) and issubclass(cls, nn.Module):
        return isinstance(module, cls)
    return any(base.__name__ == type_name for base in type(module).__mro__)


def parse_rules(value: Any, check_method: Any) -> list[Rule]:
    """Check the `rules` field; `check_method(method, args, field)` checks one initializer.

    Raises
    ------
    EditError : naming the rule and field, e.g. `init.rules[2].types: ...`
    """
    if not isinstance(value, list) or not value:
        raise EditError("init.rules: expected a list of rules such as "
                        '{"types": ["Linear"], "param": "weight", "method": "normal"}')
    rules = []
    for index, item in enumerate(value):
        where = f"init.rules[{index}]"
        if not isinstance(item, dict):
            raise EditError(f"{where}: expected an object with types, param, method")
        unknown = sorted(set(item) - set(RULE_FIELDS))
        if unknown:
            raise EditError(f"{where}.{unknown[0]}: unknown field (allowed: "
                            f"{', '.join(RULE_FIELDS)})")
        types = _names(item.get("types"), f"{where}.types", "module class names such as "
                       "Conv2d")
        method = item.get("method")
        if not isinstance(method, str):
            raise EditError(f"{where}.method: required (e.g. kaiming_normal, zeros, reset)")
        args = item.get("args", {})
        check_method(method, args, where)
        if method == "reset":
            if "param" in item:
                raise EditError(f"{where}.param: 'reset' calls the module's "
                                "reset_parameters(); it takes no param")
            params: tuple[str, ...] = ()
        else:
            params = _names(item.get("param"), f"{where}.param", "a parameter name such as "
                            "weight")
        rules.append(Rule(types, params, method, dict(args)))
    return rules


def _names(value: Any, field: str, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(
            isinstance(item, str) and item for item in value):
        raise EditError(f"{field}: expected {example}, or a list of them")
    return tuple(value)


@dataclass
class Step:
    """One initializer call of the plan: rule `rule` on `module.<param>` (None: reset)."""

    path: str
    module: nn.Module
    rule: int
    param: str | None


def plan(model: nn.Module, rules: list[Rule]) -> tuple[list[Step], set[tuple[int, str]]]:
    """Every initializer call the rules make, in the order `model.apply` makes them, and
    the (rule, param) pairs skipped somewhere because the parameter is None.

    Raises
    ------
    EditError : no module matches a rule, or a module lacks a rule's parameter
    """
    paths: dict[int, str] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), path)
    steps: list[Step] = []
    skipped: set[tuple[int, str]] = set()
    used = [False] * len(rules)

    def visit(module: nn.Module) -> None:
        for index, rule in enumerate(rules):
            if not rule.matches(module):
                continue
            used[index] = True
            path = paths.get(id(module), "")
            if rule.method == "reset":
                if not callable(getattr(module, "reset_parameters", None)):
                    raise EditError(f"init.rules[{index}].method: {type(module).__name__} at "
                                    f"'{path or '(root)'}' has no reset_parameters()")
                steps.append(Step(path, module, index, None))
                continue
            for param in rule.params:
                if param not in module._parameters and param not in module._buffers:
                    raise EditError(f"init.rules[{index}].param: {type(module).__name__} at "
                                    f"'{path or '(root)'}' has no tensor '{param}'")
                if getattr(module, param) is not None:
                    steps.append(Step(path, module, index, param))
                else:
                    skipped.add((index, param))

    model.apply(visit)
    # A rule for a type the model lacks is fine (a generic weight_init has branches that
    # never run); a type that names no class at all is a typo, and is refused.
    known = {base.__name__ for module in model.modules() for base in type(module).__mro__}
    for index, rule in enumerate(rules):
        for name in rule.types:
            cls = getattr(nn, name, None)
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)) and name not in known:
                raise EditError(f"init.rules[{index}].types: '{name}' is no torch.nn module "
                                "class and no class of the model's modules")
    if not any(used):
        raise EditError("init.rules: no module of the model is of a type the rules name")
    return steps, skipped


def run(doc: Document, tx: Transaction, rules: list[Rule], seed: int,
        root: nn.Module, check_tensor: Any, initializer: Any) -> tuple[list[str], list[list]]:
    """Record, then initialize everything the rules select.

    `check_tensor(name, tensor, rule_index)` validates one tensor (dims, dtype) before
    anything changes; `initializer(method)` is the `torch.nn.init` function.

    Returns
    -------
    The tensor names changed, and the [rule, param] pairs skipped where the parameter
    is None (the exported script guards those with `if m.<param> is not None`).
    """
    steps, skipped = plan(root, rules)
    prefix = _root_path(doc, root)
    recorded: dict[int, str] = {}
    devices: set[int] = set()
    for step in steps:
        tensors = _step_tensors(step)
        for leaf, tensor in tensors:
            name = ".".join(part for part in (prefix, step.path, leaf) if part)
            if step.param is not None:
                check_tensor(name, tensor, step.rule)
            if id(tensor) not in recorded:
                recorded[id(tensor)] = doc.canonical_name(name, "init.rules")
            if tensor.device.type == "cuda":
                devices.add(tensor.device.index or 0)

    def mutate() -> None:
        # The rules draw from the global generator, seeded as `torch.manual_seed(seed)`
        # seeds it, inside fork_rng: the caller's generators are as they were afterwards.
        with torch.random.fork_rng(devices=sorted(devices)):
            torch.manual_seed(seed)
            for step in steps:
                rule = rules[step.rule]
                if step.param is None:
                    reset_in_place(step.module, step.path, f"init.rules[{step.rule}].method")
                    continue
                tensor = getattr(step.module, step.param)
                function = initializer(rule.method)
                if tensor.device.type == "cpu":
                    function(tensor, **rule.args)
                else:
                    staged = torch.empty(tensor.shape, dtype=tensor.dtype)
                    function(staged, **rule.args)
                    tensor.copy_(staged)

    names = list(dict.fromkeys(recorded.values()))
    doc.change_in_place(tx, names, mutate)
    return names, sorted([list(pair) for pair in skipped])


def reset_in_place(module: nn.Module, path: str, field: str) -> None:
    """`module.reset_parameters()`, refused when it replaced tensors instead of filling them."""
    before = _own_tensors(module)
    module.reset_parameters()
    after = _own_tensors(module)
    if any(after.get(leaf) is not tensor for leaf, tensor in before.items()):
        raise EditError(f"{field}: {type(module).__name__}.reset_parameters at "
                        f"'{path}' replaced its tensors instead of filling them")


def _own_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors = {leaf: t for leaf, t in module._parameters.items() if t is not None}
    tensors.update({leaf: t for leaf, t in module._buffers.items() if t is not None})
    return tensors


def _step_tensors(step: Step) -> list[tuple[str, torch.Tensor]]:
    if step.param is not None:
        return [(step.param, getattr(step.module, step.param))]
    # reset_parameters may reset anything below the module: record all of it.
    return [*step.module.named_parameters(), *step.module.named_buffers()]


def _root_path(doc: Document, root: nn.Module) -> str:
    for path, module in doc.model.named_modules(remove_duplicate=False):
        if module is root:
            return path
    return ""
