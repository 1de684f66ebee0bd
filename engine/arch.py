"""Architecture specs: build a model from `torchvision:NAME`, `file.py:Class` or `timm:NAME`.

Models are built under a fixed seed (0 unless given) so that the same spec gives the
same starting weights every time, which is what makes a recipe replay exact when no
weights file is given. `meta=True` builds on the meta device: shapes without memory,
for a fast listing of a big model.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ArchError

DEFAULT_SEED = 0


def parse_arch_args(text: str) -> dict[str, Any]:
    """Keyword arguments of a model from JSON text, e.g. '{"num_classes": 10}'.

    Raises
    ------
    ValueError : not JSON, or not an object (each caller names its own field)
    """
    from .io.json_files import JSONProblem, parse_json

    try:
        value = parse_json(text)
    except JSONProblem as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError('expected a JSON object such as {"num_classes": 10}')
    return value


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec into (source, name): ('torchvision', 'resnet18'), ('file', 'a.py:Net')."""
    if not isinstance(spec, str) or not spec.strip():
        raise ArchError("arch: expected a spec such as torchvision:resnet18 or model.py:Net")
    spec = spec.strip()
    for source in ("torchvision", "timm"):
        if spec.startswith(source + ":"):
            name = spec[len(source) + 1:]
            if not name:
                raise ArchError(f"arch: '{spec}' names no model")
            return source, name
    if ".py:" in spec:
        return "file", spec
    raise ArchError(f"arch: '{spec}' is not a spec (use torchvision:NAME, timm:NAME or "
                    "path/to/file.py:ClassName)")


def build_model(spec: str, args: dict[str, Any] | None = None, *, seed: int = DEFAULT_SEED,
                meta: bool = False) -> nn.Module:
    """Build the model a spec names, in eval-neutral train mode, on the CPU (or meta).

    With `meta=True` a model whose constructor cannot run on the meta device is built
    on the CPU (same seed, same weights as without `meta`).

    Raises
    ------
    ArchError : unknown model, bad arguments, missing optional package
    """
    args = dict(args or {})
    if not isinstance(args, dict):
        raise ArchError("arch-args: expected a JSON object of keyword arguments")
    source, name = parse_spec(spec)
    factory = _factory(source, name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = None
            if meta:
                try:
                    with torch.device("meta"):
                        model = factory(**args)
                except (ArchError, TypeError):
                    raise
                except Exception:
                    # A constructor that reads values it just made (torchvision's
                    # RegNets) cannot run on meta: build it on the CPU instead.
                    torch.manual_seed(seed)
            if model is None:
                model = factory(**args)
        except ArchError:
            raise
        except TypeError as error:
            raise ArchError(f"arch-args: {spec}: {error}") from None
        except Exception as error:
            raise ArchError(f"arch: building {spec} failed: {error}") from None
    if not isinstance(model, nn.Module):
        raise ArchError(f"arch: {spec} built a {type(model).__name__}, not an nn.Module")
    return model


def torchvision_names() -> list[str]:
    """Every model name torchvision can build."""
    import torchvision

    return sorted(torchvision.models.list_models())


def _factory(source: str, name: str) -> Any:
    if source == "torchvision":
        import torchvision

        if name not in torchvision.models.list_models():
            raise ArchError(f"arch: torchvision has no model '{name}' "
                            "(see torchvision.models.list_models())")

        def build(**kwargs: Any) -> nn.Module:
            if "weights" in kwargs and kwargs["weights"] is not None:
                raise ArchError("arch-args.weights: pretrained weights are not downloaded here; "
                                "pass a weights file instead")
            return torchvision.models.get_model(name, **kwargs)

        return build
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise ArchError("arch: timm is not installed (pip install timm)") from None
        if name not in timm.list_models():
            raise ArchError(f"arch: timm has no model '{name}'")
        return lambda **kwargs: timm.create_model(name, pretrained=False, **kwargs)
    return _class_from_file(name)


def _class_from_file(spec: str) -> Any:
    file_text, _, class_name = spec.rpartition(":")
    path = Path(file_text).expanduser()
    if not path.is_file():
        raise ArchError(f"arch: {path}: no such file")
    module_name = f"weightsmith_arch_{abs(hash(str(path.resolve())))}"
    module = sys.modules.get(module_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ArchError(f"arch: {path}: cannot be imported")
        module = importlib.util.module_from_spec(loader_spec)
        # Registered before running, so classes defined there pickle and dataclasses work.
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise ArchError(f"arch: {path}: importing it failed: "
                            f"{type(error).__name__}: {error}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ArchError(f"arch: {path} defines no '{class_name}'")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)) and not callable(cls):
        raise ArchError(f"arch: {path}:{class_name} is not an nn.Module class")
    return cls
