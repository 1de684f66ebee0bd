"""Names of tensor dtypes in safetensors headers, and their torch dtypes."""

from __future__ import annotations

import torch

from ..document.rows import dtype_name

#: safetensors dtype name -> torch dtype (only the ones this torch build knows)
SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, attr)
    for name, attr in (
        ("BOOL", "bool"), ("U8", "uint8"), ("I8", "int8"), ("I16", "int16"),
        ("U16", "uint16"), ("I32", "int32"), ("U32", "uint32"), ("I64", "int64"),
        ("U64", "uint64"), ("F16", "float16"), ("BF16", "bfloat16"), ("F32", "float32"),
        ("F64", "float64"), ("C64", "complex64"), ("C128", "complex128"),
        ("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"),
        ("F8_E8M0", "float8_e8m0fnu"),
    )
    if hasattr(torch, attr)
}

TORCH_TO_SAFETENSORS: dict[torch.dtype, str] = {dtype: name for name, dtype in
                                                SAFETENSORS_DTYPES.items()}

#: user-facing dtype names accepted by `cast` and friends -> torch dtype
__all__ = ["DTYPE_NAMES", "dtype_name", "parse_dtype"]

DTYPE_NAMES: dict[str, torch.dtype] = {
    dtype_name(dtype): dtype for dtype in SAFETENSORS_DTYPES.values()
}
DTYPE_NAMES.update({"half": torch.float16, "float": torch.float32, "double": torch.float64,
                    "long": torch.int64, "int": torch.int32, "short": torch.int16})


def parse_dtype(text: str) -> torch.dtype | None:
    """The torch dtype named `text` ('float16', 'bf16', 'torch.float32'), or None."""
    key = text.strip().lower().removeprefix("torch.")
    aliases = {"fp16": "float16", "f16": "float16", "bf16": "bfloat16", "fp32": "float32",
               "f32": "float32", "fp64": "float64", "f64": "float64"}
    key = aliases.get(key, key)
    return DTYPE_NAMES.get(key)
