"""The trainer: a short, honest training run over a document's live model, exactly reversible.

Before the first step the values of every tensor the run may change (trainable
parameters and every buffer) are recorded as `ValueChange`s, and a digest of every
frozen parameter is taken (the optimizer never sees them). After the run
a report says what changed and whether the frozen tensors are bit-identical and the
tied ones still one object. The trainer returns the result; the Session that ran it
keeps it as one undoable step (the edit "train", applied like any other) or discards
it (the recorded values written back in place: the same objects, the same bits),
and tells the views either way. The trainer itself emits no event and imports
neither the Session nor the edits.

The loop does nothing per step that a plain hand-written loop would not: losses stay
on the device and are read at a bounded rate (`report_interval`), with the cancel
flag checked between steps (a safe point: after the optimizer step).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from ..changes import Change, ValueChange
from ..errors import EditError, WeightsmithError
from ..modes import BN_EVAL_MARK, set_train_mode
from ..progress import Cancelled, Progress
from ..seeds import draw_seed
from .config import MAX_STEPS, TrainConfig, step_label
from .data import DataSource, open_data
from .model_io import first_line, kept_modes, logits_of, model_placement, probe, resolve_device
from .report import TrainReport, smoothed_curve, window_mean
from .task import batch_correct, check_targets, compute_loss, resolve_task

if TYPE_CHECKING:
    from ..document import ModelDocument

#: accuracy points measured per run at most: beyond, every k-th step is measured, so that
#: the three small operations it costs stay a negligible part of a tiny model's step
ACCURACY_POINTS = 250
#: why the session refuses edits while a run is in progress, and after it until decided
RUNNING = "a test training is running"
UNDECIDED = "a test training finished: keep or discard its weights first"


@dataclass
class Metrics:
    """What a live view plots, sent at a bounded rate from the training thread.

    `losses` and `accuracies` hold only the (step, value) points new since the last
    update; steps count from 1.
    """

    step: int
    total: int
    losses: list[tuple[int, float]]
    accuracies: list[tuple[int, float]]
    seconds: float


MetricsCallback = Callable[[Metrics], None]


class TrainingHost(Protocol):
    """What runs a training for the user (the Session): it holds the document, refuses
    edits while busy, and keeps or discards a result."""

    document: Any

    def busy(self, reason: str) -> contextlib.AbstractContextManager[None]: ...

    def keep_training(self, result: TrainResult) -> Any: ...

    def revert_unrecorded(self, changes: list[Change]) -> None: ...


class Trainer:
    """Train a model for a while and verify what the training did.

    Parameters
    ----------
    target : a Session in model mode (the GUI, the CLI: it refuses edits during the run,
        and the result is kept or discarded through it), or a model document (the
        replay of a recorded run inside the edit "train")
    config : a TrainConfig, or its dict form (validated)

    Raises
    ------
    EditError : a bad setting, or a document without a model
    """

    def __init__(self, target: TrainingHost | ModelDocument,
                 config: TrainConfig | dict[str, Any]) -> None:
        self.host: TrainingHost | None = target if hasattr(target, "document") else None
        self.document: ModelDocument = getattr(target, "document", target)
        self.document.check_model("train")
        if isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        else:
            config = dataclasses.replace(config, lr_multipliers=dict(config.lr_multipliers))
            config.validate()
        self.config = config
        self._reserved: contextlib.ExitStack | None = None

    @property
    def model(self) -> nn.Module:
        return self.document.model

    # ------------------------------------------------------------------ parameters
    def trainable(self) -> list[tuple[str, torch.Tensor]]:
        """Each parameter with requires_grad, once (tied ones under their first name)."""
        seen: set[int] = set()
        found = []
        for entry in self.document.tensor_entries():
            tensor = entry.tensor
            if entry.kind == "parameter" and tensor.requires_grad and id(tensor) not in seen:
                seen.add(id(tensor))
                found.append((entry.name, tensor))
        return found

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups: one per learning-rate multiplier.

        Each group is a dict with `params`, `names`, `lr` (base lr times the multiplier)
        and `lr_multiplier`. Only trainable parameters are included.

        Raises
        ------
        EditError : nothing is trainable, or a multiplier selects nothing trainable
        """
        trainable = self.trainable()
        if not trainable:
            raise EditError("train: the model has no trainable parameters (everything is "
                            "frozen); unfreeze something first")
        factors = {id(tensor): 1.0 for _, tensor in trainable}
        for pattern, factor in self.config.lr_multipliers.items():
            names = self.document.select_tensors([pattern], "train.lr_multipliers",
                                                 parameters_only=True)
            hits = [id(self.document.tensor(name)) for name in names]
            hits = [key for key in hits if key in factors]
            if not hits:
                raise EditError(f"train.lr_multipliers: '{pattern}' selects only frozen "
                                "parameters, so its multiplier would have no effect")
            for key in hits:
                factors[key] = factor
        groups: dict[float, dict[str, Any]] = {}
        for name, tensor in trainable:
            factor = factors[id(tensor)]
            group = groups.setdefault(factor, {"params": [], "names": [],
                                               "lr": self.config.lr * factor,
                                               "lr_multiplier": factor})
            group["params"].append(tensor)
            group["names"].append(name)
        return list(groups.values())

    def build_optimizer(self, groups: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
        """The configured optimizer over `groups` (default: `parameter_groups()`)."""
        groups = self.parameter_groups() if groups is None else groups
        config = self.config
        if config.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return kind(groups, lr=config.lr, weight_decay=config.weight_decay)

    # ------------------------------------------------------------------ the run
    def reserve(self) -> contextlib.ExitStack:
        """Make the session refuse edits from now on, for the coming `run()`.

        `run()` does this itself; the GUI calls it in its own thread before starting
        `run()` in a worker, so that no edit slips in between. `release()` undoes it
        when the run is not started after all.

        Raises
        ------
        EditError : the session is busy already (another run)
        """
        if self._reserved is None:
            busy = contextlib.ExitStack()
            if self.host is not None:
                busy.enter_context(self.host.busy(RUNNING))
            self._reserved = busy
        return self._reserved

    def release(self) -> None:
        """Give up a reservation whose run was never started."""
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def run(self, progress: Progress | None = None, on_metrics: MetricsCallback | None = None,
            *, hold: bool = True, report_interval: float = 0.1) -> TrainResult:
        """Train, verify, and return the result to keep or discard.

        The session refuses edits from the start (see `reserve`). With `hold` (the GUI, the CLI)
        it goes on refusing them until `keep()` or `discard()`; without (a recipe replay)
        it is released when the run ends and the caller records `result.changes`.

        Parameters
        ----------
        progress : reports (fraction, text) at a bounded rate; `cancel()` stops the run
            at the next step boundary, and the stopped run still gives a result
        on_metrics : called with new loss/accuracy points at most every
            `report_interval` seconds, and once at the end, from the training thread

        Raises
        ------
        EditError, FileError : bad settings or data (before anything changed), or a
            failure during the run (the model is then restored exactly)
        Cancelled : cancelled before the first step (nothing changed)
        """
        document, model = self.document, self.model
        started = time.perf_counter()
        busy = self.reserve()
        self._reserved = None  # the run owns the reservation from here on
        try:
            config = dataclasses.replace(self.config,
                                         lr_multipliers=dict(self.config.lr_multipliers))
            config.seed = draw_seed() if config.seed is None else config.seed
            device = resolve_device(config.device)
            _check_precision(config.precision, device)
            _check_materialized(model)
            data = open_data(config, model, config.seed,
                             getattr(self.host, "allocation_limit", None))
            task = resolve_task(config.task, data.integer_targets, data.description)
            groups = self.parameter_groups()
            batch_size = min(config.batch_size, data.size)
            planned = config.steps if config.steps is not None else (
                (config.epochs or 1) * (data.size // batch_size))
            if planned > MAX_STEPS:
                raise EditError(f"train.epochs: {config.epochs:,} epochs of "
                                f"{data.size // batch_size:,} steps make {planned:,} steps; "
                                f"a training takes at most {MAX_STEPS:,}")
            _check_fit(model, data, task)
            if progress is not None:
                progress.check()
            recorded = {**config.to_dict(), **data.resolved, "task": task, "epochs": None}
            snapshot = _Snapshot(document, model)
        except BaseException:
            busy.close()
            raise
        loop = _Loop(self, config, data, task, groups, device, planned, batch_size)
        try:
            loop.run(progress, on_metrics, report_interval)
            report = loop.report(data.description, time.perf_counter() - started)
            snapshot.verify(document, report)
        except BaseException as error:
            snapshot.restore()
            busy.close()
            if isinstance(error, WeightsmithError) or not isinstance(error, Exception):
                raise
            raise EditError(f"train: step {loop.step + 1}: {first_line(error)}") from error
        report.add_checks()
        recorded["steps"] = report.steps
        busy.close()
        held = hold and self.host is not None
        if held:
            busy.enter_context(self.host.busy(UNDECIDED))
        return TrainResult(self.host, report, recorded, snapshot, busy if held else None)


def _check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise EditError(f"train.precision: fp16 needs a CUDA device (this run is on "
                        f"{device.type}); use fp32 or bf16")
    if precision == "bf16":
        if device.type not in ("cuda", "cpu"):
            raise EditError(f"train.precision: bf16 is not supported on {device.type}; use fp32")
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise EditError("train.precision: this GPU does not support bf16; use fp16 or fp32")


def _check_materialized(model: nn.Module) -> None:
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.device.type == "meta":
            raise EditError("train: the model has no data (it was opened for listing only); "
                            "open it with weights")


def _check_fit(model: nn.Module, data: DataSource, task: str) -> None:
    """Probe the model with two samples; raise EditError naming the data when they do not fit."""
    device, dtype = model_placement(model)
    inputs, targets = data.head(2)
    inputs = inputs.to(device=device, dtype=dtype) if inputs.is_floating_point() else (
        inputs.to(device))
    try:
        logits = probe(model, inputs)
    except WeightsmithError:
        raise
    except Exception as error:
        raise EditError(f"data: {data.description}: samples of shape {list(inputs.shape[1:])} "
                        f"do not fit the model: {first_line(error)}") from None
    check_targets(task, logits, targets, data.description, data.label_range())


def _unique_tensors(model: nn.Module) -> list[torch.Tensor]:
    seen: set[int] = set()
    tensors = []
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            tensors.append(tensor)
    return tensors


@contextlib.contextmanager
def _on_device(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Move every tensor's data to `device` and back, keeping each tensor object.

    `Module.to` would replace buffer objects; assigning `.data` keeps parameters and
    buffers the very objects the session, the snapshot and any tie hold.
    """
    moved: list[tuple[torch.Tensor, torch.device]] = []
    try:
        for tensor in _unique_tensors(model):
            if tensor.device != device:
                home = tensor.device
                tensor.data = tensor.data.to(device)
                moved.append((tensor, home))
        yield
    finally:
        for tensor, home in moved:
            tensor.data = tensor.data.to(home)


def digest(tensor: torch.Tensor) -> bytes:
    """A digest of a tensor's bits (dtype and shape included); equal digests: equal bits."""
    data = tensor.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    raw = data.contiguous().reshape(-1).view(torch.uint8).numpy()
    hasher = hashlib.blake2b(digest_size=20)
    hasher.update(f"{data.dtype}{tuple(data.shape)}".encode())
    hasher.update(memoryview(raw))
    return hasher.digest()


class _Recorded(ValueChange):
    """The values of a tensor from before a run: the change the run makes to it.

    Made before the first step as an applied change (what it holds is the state
    before), so `revert` puts the values from before back and `apply` the trained ones.
    """

    def __init__(self, tensor: torch.Tensor, names: tuple[str, ...]) -> None:
        super().__init__(tensor, None, tensor.detach().clone(), names)

    def changed(self) -> bool:
        """True when the live tensor's bits differ from the recorded ones (before any undo)."""
        live, saved = self.tensor.detach(), self._other
        if live.shape != saved.shape or live.dtype != saved.dtype:
            return True
        return not torch.equal(_bits(live), _bits(saved))


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    # Compared as bytes: NaNs equal themselves, and -0.0 differs from 0.0.
    return tensor.contiguous().reshape(-1).view(torch.uint8)


class _Snapshot:
    """The state before a run: saved values of what may change, digests of the frozen rest."""

    def __init__(self, document: ModelDocument, model: nn.Module) -> None:
        eval_batchnorm: dict[str, nn.Module] = {}
        train_batchnorm: dict[str, nn.Module] = {}
        for path, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                kept = getattr(module, BN_EVAL_MARK, False)
                (eval_batchnorm if kept else train_batchnorm)[path] = module
        held_still = {id(tensor) for module in eval_batchnorm.values()
                      for tensor in module.buffers(recurse=False)}
        self.records: dict[str, _Recorded] = {}
        self.names: dict[int, str] = {}
        self.trainable: list[str] = []
        self.frozen: dict[str, bytes] = {}  # frozen parameters: a digest is enough
        self.held_still: set[str] = set()  # statistics of BatchNorm kept in eval mode
        for entry in document.tensor_entries():
            tensor = entry.tensor
            if id(tensor) in self.names:
                continue
            self.names[id(tensor)] = entry.name
            if entry.kind == "parameter" and not tensor.requires_grad:
                self.frozen[entry.name] = digest(tensor)
                continue
            if entry.kind == "parameter":
                self.trainable.append(entry.name)
            elif id(tensor) in held_still:
                self.held_still.add(entry.name)
            # Buffers are recorded whatever they are: BatchNorm statistics move, and a
            # model's forward may update a buffer of its own; Discard restores them all.
            self.records[entry.name] = _Recorded(tensor, tuple(document.aliases(entry.name)))
        self.changes: list[ValueChange] = list(self.records.values())
        self.ties = [(group, document.tensor(group[0])) for group in document.tie_groups()]
        self.eval_batchnorm = eval_batchnorm
        self.train_batchnorm = train_batchnorm
        self.changed: set[str] = set()

    def restore(self) -> None:
        """Write the recorded values back, in place (the run is thrown away)."""
        for change in reversed(self.changes):
            change.revert()

    def verify(self, document: ModelDocument, report: TrainReport) -> None:
        """Compare the tensors with the state before; fill in the report's findings."""
        self.changed = {name for name, record in self.records.items() if record.changed()}
        frozen_changed = {name for name, value in self.frozen.items()
                          if digest(document.entry(name).tensor) != value}
        frozen_changed |= self.changed & self.held_still
        order = list(self.names.values())
        report.changed = [name for name in order if name in self.changed or name in frozen_changed]
        report.trainable_count = len(self.trainable)
        report.trainable_unchanged = [name for name in self.trainable if name not in self.changed]
        report.frozen_count = len(self.frozen) + len(self.held_still)
        report.frozen_changed = [name for name in order if name in frozen_changed]
        report.ties = [list(group) for group, _ in self.ties]
        report.ties_broken = [list(group) for group, tensor in self.ties
                              if any(document.entry(name).tensor is not tensor for name in group)]
        report.batchnorm_changed = [
            path for path, module in self.train_batchnorm.items()
            if any(self.names.get(id(buffer)) in self.changed
                   for buffer in module.buffers(recurse=False))]
        report.batchnorm_kept = list(self.eval_batchnorm)

    def changed_records(self) -> list[ValueChange]:
        """The recorded changes of the tensors that did change (what Keep keeps)."""
        return [change for change in self.changes
                if self.names.get(id(change.tensor)) in self.changed]


class _Loop:
    """One run of the training loop and what it measured."""

    def __init__(self, trainer: Trainer, config: TrainConfig, data: DataSource, task: str,
                 groups: list[dict[str, Any]], device: torch.device, planned: int,
                 batch_size: int) -> None:
        self.trainer = trainer
        self.config = config
        self.data = data
        self.task = task
        self.groups = groups
        self.device = device
        self.planned = planned
        self.batch_size = batch_size
        self.step = 0  # steps done
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.accuracy_steps: list[int] = []
        self.stop_reason = ""
        self.seconds = 0.0

    def run(self, progress: Progress | None, on_metrics: MetricsCallback | None,
            report_interval: float) -> None:
        model = self.trainer.model
        params = [tensor for group in self.groups for tensor in group["params"]]
        grads = [(tensor, tensor.grad) for tensor in params]
        for tensor in params:
            tensor.grad = None  # a stale gradient must not leak into the first step
        fork = [self.device.index or 0] if self.device.type == "cuda" else []
        try:
            with kept_modes(model), _on_device(model, self.device), \
                    torch.random.fork_rng(devices=fork):
                torch.manual_seed(self.config.seed or 0)
                set_train_mode(model, True)
                self._steps(model, progress, on_metrics, report_interval)
        finally:
            for tensor, grad in grads:
                tensor.grad = grad

    def _steps(self, model: nn.Module, progress: Progress | None,
               on_metrics: MetricsCallback | None, report_interval: float) -> None:
        config, task = self.config, self.task
        optimizer = self.trainer.build_optimizer(self.groups)
        _, dtype = model_placement(model)
        batches = self.data.batches(self.batch_size, self.device, dtype, config.seed or 0)
        precision = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        accuracy_stride = -(-self.planned // ACCURACY_POINTS) if task == "classification" else 0
        pending_loss: list[torch.Tensor] = []
        pending_correct: list[torch.Tensor] = []
        pending_correct_steps: list[int] = []
        rows = 0  # targets per batch: the accuracy's denominator
        started = last = time.perf_counter()

        def publish() -> bool:
            """Read the pending values (one sync), send them; False to stop."""
            first = len(self.losses) + 1
            first_accuracy = len(self.accuracies)
            if pending_loss:
                self.losses += torch.stack(pending_loss).float().tolist()
                pending_loss.clear()
            if pending_correct:
                counts = torch.stack(pending_correct).tolist()
                self.accuracies += [count / rows for count in counts]
                self.accuracy_steps += pending_correct_steps
                pending_correct.clear()
                pending_correct_steps.clear()
            for offset, value in enumerate(self.losses[first - 1:]):
                if value != value or value in (float("inf"), float("-inf")):
                    self.stop_reason = f"loss became {value} at step {first + offset}"
                    return False
            if on_metrics is not None:
                on_metrics(Metrics(
                    self.step, self.planned,
                    [(first + i, v) for i, v in enumerate(self.losses[first - 1:])],
                    list(zip(self.accuracy_steps[first_accuracy:],
                             self.accuracies[first_accuracy:], strict=True)),
                    time.perf_counter() - started))
            if progress is not None:
                text = f"step {self.step}/{self.planned}"
                if self.losses:
                    text += f", loss {self.losses[-1]:.4g}"
                try:
                    progress.update(self.step / max(self.planned, 1), text)
                except Cancelled:
                    self.stop_reason = "stopped"
                    return False
            return True

        autocast = (torch.autocast(self.device.type, dtype=precision) if precision is not None
                    else contextlib.nullcontext())
        while self.step < self.planned:
            if progress is not None and progress.cancelled:
                self.stop_reason = "stopped"
                break
            inputs, targets = next(batches)
            with autocast:
                logits = logits_of(model(inputs))
                loss = compute_loss(task, logits, targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            pending_loss.append(loss.detach())
            if accuracy_stride and self.step % accuracy_stride == 0:
                pending_correct.append(batch_correct(logits, targets))
                pending_correct_steps.append(self.step + 1)
                rows = targets.numel()
            self.step += 1
            now = time.perf_counter()
            if now - last >= report_interval:
                last = now
                if not publish():
                    break
        else:
            publish()
        if self.stop_reason and pending_loss:
            publish()  # the steps done since the last update still count
        self.seconds = time.perf_counter() - started
        # Free the gradients here, on the training device, before the data moves back.
        optimizer.zero_grad(set_to_none=True)

    def report(self, data_description: str, total_seconds: float) -> TrainReport:
        """The measured part of the report (the findings are filled in by the snapshot)."""
        steps = len(self.losses)
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        report = TrainReport(
            device=device, precision=self.config.precision, task=self.task,
            data=data_description, optimizer=self.config.optimizer, steps=steps,
            steps_planned=self.planned, batch_size=self.batch_size, seed=self.config.seed or 0,
            stopped=bool(self.stop_reason), stop_reason=self.stop_reason,
            seconds=self.seconds, setup_seconds=max(total_seconds - self.seconds, 0.0),
            seconds_per_step=self.seconds / steps if steps else None,
            param_groups=[{"lr": group["lr"], "lr_multiplier": group["lr_multiplier"],
                           "names": list(group["names"])} for group in self.groups])
        if self.losses:
            report.loss_first, report.loss_last = self.losses[0], self.losses[-1]
            report.loss_start = window_mean(self.losses, first=True)
            report.loss_end = window_mean(self.losses, first=False)
            report.loss_curve = smoothed_curve(self.losses)
        if self.accuracies:
            report.accuracy_start = window_mean(self.accuracies, first=True)
            report.accuracy_end = window_mean(self.accuracies, first=False)
            report.accuracy_every = -(-self.planned // ACCURACY_POINTS)
        return report


class TrainResult:
    """A finished (or stopped) run: its report, and the choice to keep or discard it.

    The trained weights are live until the choice is made. `keep` and `discard` go
    through the Session that ran it (`TrainingHost`), which applies the kept run as
    the edit "train" and tells the views about a discarded one.

    Attributes
    ----------
    report : the TrainReport
    recorded : the settings as run (seed, task and proposed shapes resolved, `steps` the
        steps done), the fields of the "train" edit that replays it
    state : "pending", "kept" or "discarded"
    """

    def __init__(self, host: TrainingHost | None, report: TrainReport,
                 recorded: dict[str, Any], snapshot: _Snapshot,
                 busy: contextlib.ExitStack | None) -> None:
        self.host = host
        self.report = report
        self.recorded = recorded
        self._snapshot = snapshot
        self._busy = busy
        self.state = "pending" if busy is not None else "kept"

    @property
    def changes(self) -> list[ValueChange]:
        """The changes of the tensors that the run changed (what an undo reverts)."""
        return self._snapshot.changed_records()

    @property
    def label(self) -> str:
        """The history label of the kept step, e.g. 'Test training: 200 steps'."""
        return step_label(self.report.steps)

    def take_changes(self) -> list[Change]:
        """The run's changes, reverted, for a transaction to apply again (`tx.add`):
        the weights from before are live until then."""
        changes: list[Change] = list(self.changes)
        for change in reversed(changes):
            change.revert()
        return changes

    def keep(self) -> Any:
        """Record the trained weights as one undoable step; returns the step's result.

        A run stopped before its first step changed nothing: it is simply released.

        Raises
        ------
        EditError : the result was already kept or discarded, or no Session ran it
        """
        self._check_pending("keep")
        if self.report.steps == 0:
            # Stopped before its first step: nothing changed, so there is no step to record.
            self.discard()
            return None
        if self.host is None:
            raise EditError("train: a run on a bare document is kept by the edit that ran it")
        self._release()
        try:
            result = self.host.keep_training(self)
        except BaseException:
            # A failed apply rolled the recorded changes back: the run is thrown away.
            self.state = "discarded"
            raise
        self.state = "kept"
        return result

    def discard(self) -> None:
        """Write back the values from before the run, bit for bit, in the same objects."""
        self._check_pending("discard")
        self.state = "discarded"
        self._release()
        if self.host is None:
            self._snapshot.restore()
        else:
            self.host.revert_unrecorded(list(self.changes))

    def _check_pending(self, action: str) -> None:
        if self.state != "pending":
            raise EditError(f"train: cannot {action}; the result was already {self.state}")

    def _release(self) -> None:
        if self._busy is not None:
            self._busy.close()
            self._busy = None
