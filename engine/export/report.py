"""What an export did and how well the written artifact matches the live model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .verify import Difference


@dataclass(frozen=True)
class TieCheck:
    """One group of tied names and how many copies of its tensor the artifact stores."""

    names: list[str]
    copies: int

    def describe(self) -> str:
        names = " = ".join(self.names)
        if self.copies == 1:
            return f"{names}: stored once"
        if self.copies == 0:
            return f"{names}: folded into the graph by the exporter (not stored as a weight)"
        return f"{names}: stored {self.copies} times (the exporter duplicated it)"


@dataclass
class ExportReport:
    """The result of `export_model`: the file, how it was made, how it was verified."""

    format: str
    label: str
    path: str
    files: list[str]
    size_bytes: int
    method: str
    runtime: str
    input: str
    dynamic_batch: bool
    differences: list[Difference]
    tolerance: float
    #: modules that were in train mode before the export (put back afterwards)
    modules_in_train_mode: int
    modules: int
    device: str
    tied: list[TieCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: seconds per stage: probe, export, save, load, verify, ties, commit
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def max_abs(self) -> float:
        return max((difference.max_abs for difference in self.differences), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((difference.max_rel for difference in self.differences), default=0.0)

    @property
    def mode_text(self) -> str:
        """What was done about train/eval modes, in one sentence."""
        if self.modules_in_train_mode == 0:
            return "exported in eval mode (the model was in eval mode)"
        return (f"exported in eval mode ({self.modules_in_train_mode} of {self.modules} "
                "module(s) were in train mode; their modes were put back afterwards)")

    def format_text(self) -> str:
        """The report as lines for a terminal or a dialog."""
        size = self.size_bytes / 1e6
        lines = [f"wrote {self.path} ({self.label}, {size:.1f} MB) with {self.method} on "
                 f"{self.device} in {sum(self.seconds.values()):.1f} s",
                 self.mode_text,
                 f"input: {self.input}" + (" (batch dynamic)" if self.dynamic_batch else "")]
        for difference in self.differences:
            lines.append(f"verified with {self.runtime} at batch {difference.batch}: max abs "
                         f"diff {difference.max_abs:.3g}, max rel diff "
                         f"{difference.max_rel:.3g} ({difference.outputs} output(s))")
        lines.append(f"tolerance: {self.tolerance:.3g} relative (max |export - model| / "
                     "max |model|, per output)")
        lines.extend(f"tied: {tie.describe()}" for tie in self.tied)
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "format": self.format, "path": self.path, "files": self.files,
            "size_bytes": self.size_bytes, "method": self.method, "runtime": self.runtime,
            "input": self.input, "dynamic_batch": self.dynamic_batch, "device": self.device,
            "mode": "eval", "modules_in_train_mode": self.modules_in_train_mode,
            "verification": [difference.to_dict() for difference in self.differences],
            "max_abs": self.max_abs, "max_rel": self.max_rel, "tolerance": self.tolerance,
            "tied": [{"names": tie.names, "copies": tie.copies} for tie in self.tied],
            "notes": self.notes, "seconds": self.seconds,
        }
