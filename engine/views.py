"""Tensors whose logical size is far beyond their storage: broadcast and overlapping views.

A `.pt` file stores a tensor as its storage plus a view (shape, strides, offset), so
`torch.zeros(1).expand(10**6, 10**6)` is a 1.6 KB file whose tensor has 10**12 elements.
Anything that walks every element of such a tensor (a diff, statistics) would run for
hours. Along a dimension of stride 0 every element is the same: `broadcast_base` drops
those dimensions to size 1 and says how many times each remaining element repeats, so
work is proportional to the storage, not to the logical size.
"""

from __future__ import annotations

import math

import torch


def storage_elements(tensor: torch.Tensor) -> int:
    """Elements of the tensor's dtype its storage holds (0 without data, e.g. on meta)."""
    if tensor.device.type == "meta" or tensor.layout != torch.strided:
        return 0
    return tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)


def is_expanded(tensor: torch.Tensor) -> bool:
    """Whether the tensor has more elements than its storage holds (a broadcast or
    overlapping view)."""
    return tensor.layout == torch.strided and tensor.device.type != "meta" and \
        tensor.numel() > storage_elements(tensor)


def broadcast_base(tensor: torch.Tensor, keep: tuple[int, ...] = ()) -> tuple[torch.Tensor, int]:
    """The tensor with its stride-0 dimensions narrowed to size 1, and the repeat count.

    Every element of `tensor` equals the element of the result at the same index with 0
    along the narrowed dimensions; each element of the result stands for `repeat`
    elements of `tensor`.

    Parameters
    ----------
    keep : dimensions not to narrow even if their stride is 0
    """
    base = tensor
    repeat = 1
    for dim in range(tensor.dim()):
        if tensor.stride(dim) == 0 and tensor.shape[dim] > 1 and dim not in keep:
            base = base.narrow(dim, 0, 1)
            repeat *= tensor.shape[dim]
    return base, repeat


def shared_broadcast(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two tensors of one shape narrowed along the dimensions both broadcast, and the
    repeat count: comparing the results element by element compares `a` and `b`."""
    keep = tuple(dim for dim in range(a.dim())
                 if not (a.stride(dim) == 0 and b.stride(dim) == 0))
    base_a, repeat = broadcast_base(a, keep)
    base_b, _ = broadcast_base(b, keep)
    return base_a, base_b, repeat


def same_view_and_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors have one dtype, one view (shape, strides, offset) and equal bytes
    in the storage range the view covers: then they are equal, whatever their size."""
    if (a.dtype != b.dtype or a.shape != b.shape or a.stride() != b.stride()
            or a.storage_offset() != b.storage_offset()):
        return False
    if a.numel() == 0:
        return True
    span = 1 + sum((size - 1) * stride for size, stride in zip(a.shape, a.stride(),
                                                                strict=True))
    start = a.storage_offset()
    flat_a = a.as_strided((span,), (1,), start)
    flat_b = b.as_strided((span,), (1,), start)
    return bool(torch.equal(_bits(flat_a), _bits(flat_b)))


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    integer = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}.get(
        tensor.element_size())
    return tensor.view(integer) if integer is not None else tensor


def logical_bytes(tensor: torch.Tensor) -> int:
    """Bytes the tensor would take written out densely."""
    return math.prod(tensor.shape) * tensor.element_size()
