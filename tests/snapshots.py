"""Exact snapshots of a model: bits, objects, flags and modes, for undo/redo tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The raw bytes of a tensor (NaNs compare equal bit for bit)."""
    flat = tensor.detach().contiguous().reshape(-1)
    return flat.view(torch.uint8).clone() if flat.numel() else torch.empty(0, dtype=torch.uint8)


@dataclass
class ModelSnapshot:
    tensors: dict[str, tuple[torch.Tensor, int, torch.dtype, torch.device, tuple, bool]]
    modules: dict[str, tuple[int, bool]]
    extra: dict[str, Any]


def snapshot(model: nn.Module) -> ModelSnapshot:
    """Everything undo must restore: bytes, dtype, device, shape, requires_grad and the
    identity of every tensor and module, and every module's train/eval mode."""
    tensors = {}
    modules = {}
    for path, module in model.named_modules(remove_duplicate=False):
        modules[path] = (id(module), module.training)
        for registry in (module._parameters, module._buffers):
            for leaf, tensor in registry.items():
                if tensor is None:
                    continue
                name = f"{path}.{leaf}" if path else leaf
                tensors[name] = (bits(tensor), id(tensor), tensor.dtype, tensor.device,
                                 tuple(tensor.shape), tensor.requires_grad)
    extra = {path: bool(getattr(module, "_weightsmith_bn_eval", False))
             for path, module in model.named_modules(remove_duplicate=False)}
    return ModelSnapshot(tensors, modules, extra)


def assert_same(a: ModelSnapshot, b: ModelSnapshot, *, identity: bool = True) -> None:
    """Fail with the first difference between two snapshots."""
    assert list(a.modules) == list(b.modules), "module paths differ"
    assert list(a.tensors) == list(b.tensors), "tensor names or order differ"
    for name, (data_a, id_a, dtype_a, dev_a, shape_a, grad_a) in a.tensors.items():
        data_b, id_b, dtype_b, dev_b, shape_b, grad_b = b.tensors[name]
        assert (dtype_a, dev_a, shape_a) == (dtype_b, dev_b, shape_b), f"{name}: dtype/device/shape"
        assert torch.equal(data_a, data_b), f"{name}: values differ"
        assert grad_a == grad_b, f"{name}: requires_grad differs"
        if identity:
            assert id_a == id_b, f"{name}: a different tensor object"
    for path, (id_a, training_a) in a.modules.items():
        id_b, training_b = b.modules[path]
        assert training_a == training_b, f"{path or 'root'}: train/eval mode differs"
        if identity:
            assert id_a == id_b, f"{path or 'root'}: a different module object"
    assert a.extra == b.extra, "BatchNorm eval marks differ"


def state_bits(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: bits(tensor) for name, tensor in state.items()}


def assert_same_state_dict(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b), "state dict keys differ"
    for name in a:
        assert a[name].dtype == b[name].dtype, f"{name}: dtype"
        assert a[name].shape == b[name].shape, f"{name}: shape"
        assert torch.equal(bits(a[name]), bits(b[name])), f"{name}: values differ"
