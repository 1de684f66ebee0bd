"""NumPy-style index text (`"0, :3"`, `"..., -1"`, `"::2, [0, 2]"`) parsed without eval."""

from __future__ import annotations

import ast
from typing import Any

from .errors import EditError

Index = tuple[Any, ...]


def parse_index(text: str, shape: tuple[int, ...], field: str = "index") -> Index:
    """Parse index text and check it against `shape`.

    Supports integers (negative ones count from the end), slices with optional
    start/stop/step, `...`, and lists of integers (at most one list).

    Returns
    -------
    A tuple usable as `tensor[index]`.

    Raises
    ------
    EditError : the text is not an index, or it does not fit `shape`
    """
    if not isinstance(text, str):
        raise EditError(f"{field}: expected index text such as '0, :3'")
    if len(text) > 1000:
        raise EditError(f"{field}: index text is too long")
    try:
        node = ast.parse(f"_[{text}]", mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise EditError(f"{field}: '{text}' is not an index (expected e.g. '0, :3')") from None
    # Text such as "0] + _[1" parses as an expression around the subscript: only a single
    # subscript of the placeholder itself is an index.
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and node.value.id == "_"):
        raise EditError(f"{field}: '{text}' is not an index (expected e.g. '0, :3')")
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    index = tuple(_item(item, text, field) for item in items)
    _check(index, shape, text, field)
    return index


def _int(node: ast.expr, text: str, field: str) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_int(node.operand, text, field)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    raise EditError(f"{field}: '{text}': only integers, slices, '...' and lists of integers")


def _item(node: ast.expr, text: str, field: str) -> Any:
    if isinstance(node, ast.Slice):
        parts = [None if part is None else _int(part, text, field)
                 for part in (node.lower, node.upper, node.step)]
        if parts[2] is not None and parts[2] <= 0:
            raise EditError(f"{field}: '{text}': slice steps must be positive")
        return slice(*parts)
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return Ellipsis
    if isinstance(node, ast.List):
        values = [_int(element, text, field) for element in node.elts]
        if not values:
            raise EditError(f"{field}: '{text}': an index list must not be empty")
        return values
    return _int(node, text, field)


def _check(index: Index, shape: tuple[int, ...], text: str, field: str) -> None:
    if sum(1 for item in index if item is Ellipsis) > 1:
        raise EditError(f"{field}: '{text}': at most one '...'")
    if sum(1 for item in index if isinstance(item, list)) > 1:
        raise EditError(f"{field}: '{text}': at most one list of integers")
    explicit = [item for item in index if item is not Ellipsis]
    if len(explicit) > len(shape):
        raise EditError(
            f"{field}: '{text}' has {len(explicit)} indices but the tensor has {len(shape)} dims"
        )
    # Line each explicit item up with its dimension ('...' absorbs the rest).
    if Ellipsis in index:
        cut = index.index(Ellipsis)
        dims = list(range(cut)) + list(range(len(shape) - (len(index) - cut - 1), len(shape)))
    else:
        dims = list(range(len(explicit)))
    for dim, item in zip(dims, explicit, strict=True):
        size = shape[dim]
        for position in item if isinstance(item, list) else [item]:
            if isinstance(position, int) and not -size <= position < size:
                raise EditError(
                    f"{field}: '{text}': index {position} is out of range for dim {dim} "
                    f"of size {size}"
                )


def region_shape(shape: tuple[int, ...], index: Index | None) -> tuple[int, ...]:
    """The shape of `tensor[index]` for a tensor of `shape`, computed without data."""
    import torch

    if index is None:
        return shape
    return tuple(torch.empty(shape, device="meta")[index].shape)
