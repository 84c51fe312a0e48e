"""Early stopping: decides after each epoch whether training goes on, from one monitored metric."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.spec.job import MAXIMIZED_METRICS, EarlyStoppingSpec


@dataclass(frozen=True)
class StopDecision:
    reason: Literal["early_stopping", "stopping_threshold", "diverged"]
    message: str


class EarlyStopping:
    """Watches `spec.monitor` epoch by epoch and says when to stop (see docs/early-stopping.md).

    Epochs count from 1. `update(epoch, metrics)` runs once per epoch, in this order:

    1. `metrics[monitor]` missing raises KeyError, on every epoch (a typo surfaces at epoch 1).
    2. A NaN or infinite value stops with `diverged`, on every epoch (such a run never recovers).
    3. Epochs `<= start_from_epoch` (warm-up) end here: not tracked, not counted, nothing else checked.
    4. A value at or beyond `divergence_threshold` (`>=` in min mode, `<=` in max mode) stops with
       `diverged`; that value never becomes the best.
    5. Improvement: the value improves when it beats the reference by MORE than `min_delta`
       (min mode: `value + min_delta < reference`; max mode: `value - min_delta > reference`).
       The reference is the best value so far; before there is one, it is `baseline` if given
       (otherwise the first tracked value always improves). So the best is never set from a value that
       does not beat the baseline. An improving epoch sets `best_value`, `best_epoch`, `improved` and
       `wait = 0`; any other tracked epoch adds 1 to `wait`. (`improved` is False after every epoch
       that did not set a new best, warm-up and stopping epochs included.)
    6. A value at or beyond `stopping_threshold` (`<=` in min mode, `>=` in max mode) stops with
       `stopping_threshold`; step 5 has already run, so a new best on that epoch is recorded.
    7. An epoch that did not improve, with `wait >= patience`, stops with `early_stopping`. So patience
       0 and 1 both stop at the first non-improving epoch, patience 2 at the second in a row, and so on.

    `mode: auto` maximizes the metrics in MAXIMIZED_METRICS and minimizes the rest.
    `restore_best_weights` is only carried: the engine keeps `best_epoch`'s weights.
    """

    def __init__(self, spec: EarlyStoppingSpec) -> None:
        self.spec = spec
        self.monitor = spec.monitor
        if spec.mode == "auto":
            self.mode: Literal["min", "max"] = "max" if spec.monitor in MAXIMIZED_METRICS else "min"
        else:
            self.mode = spec.mode
        self.restore_best_weights = spec.restore_best_weights
        self.reset()

    def reset(self) -> None:
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.improved = False
        self.wait = 0

    def update(self, epoch: int, metrics: Mapping[str, float]) -> StopDecision | None:
        """Record this epoch's metrics; a StopDecision means training should end after this epoch."""
        if self.monitor not in metrics:
            raise KeyError(
                f"early stopping monitors `{self.monitor}`, which is not among this epoch's metrics {sorted(metrics)}"
            )
        value = float(metrics[self.monitor])
        self.improved = False
        if not math.isfinite(value):
            return StopDecision("diverged", f"{self.monitor} = {value} is not finite at epoch {epoch}")
        if epoch <= self.spec.start_from_epoch:
            return None
        divergence = self.spec.divergence_threshold
        if divergence is not None and not self._better(value, divergence):
            return StopDecision(
                "diverged", f"{self.monitor} = {value:g} reached the divergence threshold {divergence:g}"
            )
        self._track(epoch, value)
        target = self.spec.stopping_threshold
        if target is not None and not self._better(target, value):
            return StopDecision(
                "stopping_threshold", f"{self.monitor} = {value:g} reached the stopping threshold {target:g}"
            )
        if not self.improved and self.wait >= self.spec.patience:
            return StopDecision("early_stopping", self._patience_message())
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "improved": self.improved,
            "wait": self.wait,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_epoch = state["best_epoch"]
        self.best_value = state["best_value"]
        self.improved = state["improved"]
        self.wait = state["wait"]

    def _better(self, a: float, b: float) -> bool:
        """Whether `a` is strictly better than `b` in this mode."""
        return a < b if self.mode == "min" else a > b

    def _improves(self, value: float, reference: float) -> bool:
        """Whether `value` beats `reference` by more than min_delta.

        The same expression as Keras and Lightning (`value - min_delta > reference` in max mode), but in
        float64, where they compute in float32 tensors: near min_delta the answers can differ. In max mode
        with min_delta 0.1, 0.4 after 0.3 improves here (0.4 - 0.1 > 0.3 in float64) and not in either of
        them (0.4 - 0.1 rounds to 0.3 in float32). docs/early-stopping.md lists the differences.
        """
        if self.mode == "min":
            return value + self.spec.min_delta < reference
        return value - self.spec.min_delta > reference

    def _track(self, epoch: int, value: float) -> None:
        reference = self.best_value if self.best_value is not None else self.spec.baseline
        if reference is None or self._improves(value, reference):
            self.best_value, self.best_epoch, self.improved, self.wait = value, epoch, True, 0
        else:
            self.wait += 1

    def _patience_message(self) -> str:
        if self.best_value is None:
            return (
                f"{self.monitor} did not beat the baseline {self.spec.baseline:g} "
                f"in {self.wait} epochs (patience {self.spec.patience})"
            )
        return (
            f"{self.monitor} did not improve on its best {self.best_value:g} (epoch {self.best_epoch}) "
            f"by more than {self.spec.min_delta:g} in {self.wait} epochs (patience {self.spec.patience})"
        )
