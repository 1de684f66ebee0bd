"""What a module is set up as, and where it sits: for the inspector of a module.

Qt-free. `hyperparameters` names what `extra_repr()` shows (kernel_size, stride,
in/out features, eps, momentum, ...): positional items get the name of the
constructor argument in that position. `placement` gives the parent, the number of
children, and the siblings of the same type (the 12 layers of an encoder).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn

#: siblings listed by name at most (the rest are counted)
MAX_SIBLING_NAMES = 8


def split_top_level(text: str) -> list[str]:
    """'1, 16, kernel_size=(3, 3)' -> ['1', '16', 'kernel_size=(3, 3)'] (commas inside
    brackets and quotes do not split)."""
    items, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items


def _positional_names(module: nn.Module) -> list[str]:
    try:
        parameters = inspect.signature(type(module).__init__).parameters
    except (TypeError, ValueError):
        return []
    return [name for name, parameter in parameters.items() if name != "self"
            and parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]


def hyperparameters(module: nn.Module) -> list[tuple[str, str]]:
    """(name, value) of what `module.extra_repr()` shows, positional items named.

    A module whose extra_repr is empty (ReLU, a container) has none; one that cannot
    be read as items gives its whole text as one `settings` item.
    """
    try:
        text = module.extra_repr().strip()
    except Exception:  # a third-party extra_repr must never break the inspector
        return []
    if not text:
        return []
    if "\n" in text:
        return [("settings", " ".join(text.split()))]
    names = _positional_names(module)
    result = []
    for position, item in enumerate(split_top_level(text)):
        key, equals, value = item.partition("=")
        if equals and key.strip().isidentifier():
            result.append((key.strip(), value.strip()))
        elif position < len(names) and not equals:
            result.append((names[position], item))
        else:
            result.append((f"argument {position + 1}", item))
    return result


@dataclass(frozen=True)
class Placement:
    """Where a module sits in its model.

    Attributes
    ----------
    parent : the parent's dotted path ('' for the model itself; None for the model)
    parent_type : the parent's class name
    children : direct submodules
    same_type : the siblings of the module's own type, itself included, by name
    """

    parent: str | None
    parent_type: str
    children: int
    same_type: tuple[str, ...]

    def siblings_text(self) -> str:
        """'12 in encoder.layer: 0, 1, 2, ... 11' (empty when the module is alone)."""
        if len(self.same_type) < 2:
            return ""
        shown = list(self.same_type)
        if len(shown) > MAX_SIBLING_NAMES:
            shown = [*shown[:MAX_SIBLING_NAMES - 1], "…", shown[-1]]
        where = self.parent or "the model"
        return f"{len(self.same_type)} in {where}: " + ", ".join(shown)


def placement(model: nn.Module, path: str) -> Placement:
    """The parent, children and same-type siblings of the module at `path` ('' : the model).

    Raises
    ------
    AttributeError : there is no module at `path`
    """
    module = model.get_submodule(path)
    children = sum(1 for _ in module.children())
    if not path:
        return Placement(None, "", children, ())
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path)
    same = tuple(child_name for child_name, child in parent.named_children()
                 if type(child) is type(module))
    return Placement(parent_path, type(parent).__name__, children, same if name in same else ())
