"""Reading and writing checkpoint files: formats, safety checks, atomic writes."""

from __future__ import annotations

from .state_files import read_state_dict

__all__ = ["read_state_dict"]
