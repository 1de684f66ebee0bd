"""The verification report of a test training, as data, JSON and text.

The checks are what a user wants proved before exporting an edited model: the loss
went down, frozen tensors are bit-identical to before, tied tensors are still one
object, the trainable tensors moved. A failed check is reported as "fail" and makes
`passed` False; nothing is hidden or softened.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

#: points kept in the smoothed loss curve of a report
CURVE_POINTS = 200


@dataclass
class Check:
    """One verdict: status is "pass", "fail", "warn" or "skip"."""

    name: str
    status: str
    detail: str = ""


@dataclass
class TrainReport:
    """What a test training did and what it proved.

    `steps` counts the optimizer steps done (fewer than `steps_planned` when the run was
    stopped); the loss and accuracy windows are the means over the first and last tenth
    of the steps (at least one step each). Accuracy is measured on every step of runs
    up to 250 steps, and on 250 evenly spaced steps of longer ones (`accuracy_every`).
    """

    device: str
    precision: str
    task: str
    data: str
    optimizer: str
    steps: int
    steps_planned: int
    batch_size: int
    seed: int
    stopped: bool = False
    stop_reason: str = ""
    seconds: float = 0.0
    setup_seconds: float = 0.0
    seconds_per_step: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    loss_start: float | None = None
    loss_end: float | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    accuracy_start: float | None = None
    accuracy_end: float | None = None
    #: accuracy is measured on every this-many-th step (1: every step; long runs sample)
    accuracy_every: int = 1
    param_groups: list[dict[str, Any]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    trainable_count: int = 0
    trainable_unchanged: list[str] = field(default_factory=list)
    frozen_count: int = 0
    frozen_changed: list[str] = field(default_factory=list)
    ties: list[list[str]] = field(default_factory=list)
    ties_broken: list[list[str]] = field(default_factory=list)
    batchnorm_changed: list[str] = field(default_factory=list)
    batchnorm_kept: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return all(check.status != "fail" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (`passed` included)."""
        values = asdict(self)
        values["loss_curve"] = [list(point) for point in self.loss_curve]
        values["passed"] = self.passed
        return _finite(values)

    def add_checks(self) -> None:
        """Work out the verdicts from the measured fields (replaces any earlier ones)."""
        checks = []
        if self.steps == 0:
            checks.append(Check("loss decreased", "skip", "no step was done"))
        elif self.stop_reason.startswith("loss became"):
            checks.append(Check("loss finite", "fail", self.stop_reason))
        elif self.steps < 2 or self.loss_start is None or self.loss_end is None:
            checks.append(Check("loss decreased", "skip", "needs at least 2 steps"))
        else:
            went_down = self.loss_end < self.loss_start
            checks.append(Check("loss decreased", "pass" if went_down else "fail",
                                f"{self.loss_start:.4g} -> {self.loss_end:.4g} "
                                "(mean of the first and last tenth of the steps)"))
        if self.frozen_changed:
            checks.append(Check("frozen tensors bit-identical", "fail",
                                f"{len(self.frozen_changed)} of {self.frozen_count} changed: "
                                f"{_names(self.frozen_changed)}"))
        else:
            checks.append(Check("frozen tensors bit-identical", "pass",
                                f"{self.frozen_count} tensor(s) checked"))
        if self.ties_broken:
            checks.append(Check("tied tensors still tied", "fail",
                                "; ".join(" = ".join(group) for group in self.ties_broken)))
        elif self.ties:
            checks.append(Check("tied tensors still tied", "pass",
                                f"{len(self.ties)} tie group(s), each still one object"))
        else:
            checks.append(Check("tied tensors still tied", "skip", "the model has no ties"))
        if self.steps == 0:
            checks.append(Check("trainable tensors changed", "skip", "no step was done"))
        elif self.trainable_unchanged:
            checks.append(Check("trainable tensors changed", "warn",
                                f"{len(self.trainable_unchanged)} did not change: "
                                f"{_names(self.trainable_unchanged)}"))
        else:
            checks.append(Check("trainable tensors changed", "pass",
                                f"all {self.trainable_count} changed"))
        self.checks = checks

    def format_text(self) -> str:
        """A plain-text report for the CLI and the panel."""
        planned = "" if self.steps == self.steps_planned else f" of {self.steps_planned}"
        stopped = f" ({self.stop_reason})" if self.stop_reason else ""
        lines = [f"Test training: {self.steps}{planned} steps on {self.device} "
                 f"({self.precision}){stopped}",
                 f"data: {self.data}; task: {self.task}; optimizer: {self.optimizer}; "
                 f"batch size {self.batch_size}; seed {self.seed}"]
        if self.seconds_per_step is not None:
            lines.append(f"time: {self.seconds:.2f} s ({self.seconds_per_step * 1000:.2f} ms "
                         f"per step; setup {self.setup_seconds:.2f} s)")
        if self.loss_first is not None:
            lines.append(f"loss: first {self.loss_first:.4g}, last {self.loss_last:.4g}; "
                         f"mean {self.loss_start:.4g} -> {self.loss_end:.4g}")
        if self.accuracy_start is not None:
            sampled = (f", measured on 1 batch in {self.accuracy_every}"
                       if self.accuracy_every > 1 else "")
            lines.append(f"accuracy (training batches{sampled}): {self.accuracy_start:.1%} -> "
                         f"{self.accuracy_end:.1%}")
        for group in self.param_groups:
            lines.append(f"lr {group['lr']:.3g} (x{group['lr_multiplier']:g}) for "
                         f"{len(group['names'])} tensor(s): {_names(group['names'])}")
        lines.append(f"changed: {len(self.changed)} tensor(s)"
                     + (f": {_names(self.changed, 6)}" if self.changed else ""))
        if self.batchnorm_changed:
            lines.append(f"BatchNorm running statistics changed: {_names(self.batchnorm_changed)}")
        if self.batchnorm_kept:
            lines.append(f"BatchNorm kept in eval mode (statistics unchanged): "
                         f"{_names(self.batchnorm_kept)}")
        lines.append("checks:")
        for check in self.checks:
            mark = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}[check.status]
            lines.append(f"  {mark}  {check.name}" + (f": {check.detail}" if check.detail else ""))
        return "\n".join(lines)


def _finite(value: Any) -> Any:
    """`value` with NaN and infinite floats as None, so that it is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _names(names: list[str], limit: int = 4) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def smoothed_curve(losses: list[float], points: int = CURVE_POINTS) -> list[tuple[int, float]]:
    """A trailing moving average of the losses (window: a twentieth of the run), thinned.

    Returns (step, value) pairs with 1-based steps, at most `points` of them, the last
    step always included.
    """
    count = len(losses)
    if count == 0:
        return []
    window = max(1, count // 20)
    sums = [0.0]
    for value in losses:
        sums.append(sums[-1] + value)
    stride = max(1, -(-count // points))
    indices = list(range(stride - 1, count, stride))
    if indices[-1] != count - 1:
        indices.append(count - 1)
    indices = indices[-points:]
    curve = []
    for index in indices:
        start = max(0, index + 1 - window)
        curve.append((index + 1, (sums[index + 1] - sums[start]) / (index + 1 - start)))
    return curve


def window_mean(values: list[float], first: bool) -> float | None:
    """Mean of the first (or last) tenth of `values`, at least one value; None if empty."""
    if not values:
        return None
    size = max(1, len(values) // 10)
    part = values[:size] if first else values[-size:]
    return sum(part) / len(part)
