"""The diagnosis of a job from its per-epoch metrics: is it fitting well, overfitting, underfitting or unstable,
from which epoch, on what evidence, and which spec changes to try. Torch-free: the API computes it on every
read, live while the job trains.

Losses: `train` is the training data loss (`data_loss`: the penalty left out, as in `val_loss`); `smoothed`
is the mean of each epoch's value and its neighbours' (a centred window of `WINDOW` epochs, cut short at both
ends, so the minimum does not lag); the gap is val_loss - data_loss. The rules, in order:

1. Unstable, at any epoch: a non-finite training or validation loss; a spike, a training loss above `SPIKE`
   times the lowest before it and above it by half the first epoch's (a loss near 0 that moves within its
   noise is not one); or a gradient blow-up, a grad_norm above `BLOW_UP` times the median of those
   before it (from the fourth epoch on). The onset is the first such epoch.
2. Nothing more is said before `MIN_EPOCHS` epochs: the verdict is `good_fit`, with `enough_epochs: false`.
3. Overfitting: the smoothed validation loss has its minimum at epoch m, and each of the last `PATIENCE`
   validation losses (as measured, and smoothed) is above that minimum by more than the noise, the larger of
   `RISE` of it and twice the validation loss's standard error at m, while the smoothed training loss ends
   lower than it was at m (it still falls). The onset is m + 1, the first epoch of the rise. Noise that lifts
   one or two epochs, or a rise within the validation loss's own standard error, does not count.
4. Underfitting: the smoothed training loss ends at `HIGH` or more of the constant predictor's validation loss
   (`baseline_val_loss`) and has improved by less than `FLAT` (relative) over the last third of the epochs.
5. Otherwise `good_fit`.

Suggestions are spec changes (dotted paths, as sweeps take them), 1 to 3, the likeliest first. Dead ReLU
units (over `DEAD` of them) add a suggestion to switch to leaky ReLU when there is room.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.numbers import finite_or_none

Verdict = Literal["good_fit", "overfitting", "underfitting", "unstable"]

WINDOW = 3
MIN_EPOCHS = 5
PATIENCE = 3
RISE = 0.02
SPIKE = 3.0
BLOW_UP = 10.0
HIGH = 0.5
FLAT = 0.05
DEAD = 0.5
MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Suggestion:
    changes: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class Diagnosis:
    verdict: Verdict
    onset_epoch: int | None
    gaps: list[float | None]  # val_loss - data_loss, per epoch (epoch 1 first)
    evidence: dict[str, Any] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)


def diagnose(epochs: Sequence[Mapping[str, Any]], spec: Mapping[str, Any]) -> Diagnosis:
    """The diagnosis of a job with these epochs (oldest first, as stored) and this normalized spec."""
    train = [finite_or_none(epoch.get("data_loss", epoch.get("train_loss"))) for epoch in epochs]
    val = [finite_or_none(epoch.get("val_loss")) for epoch in epochs]
    gaps = [None if t is None or v is None else v - t for t, v in zip(train, val, strict=True)]
    last = epochs[-1] if epochs else {}
    evidence: dict[str, Any] = {
        "epochs": len(epochs),
        "enough_epochs": len(epochs) >= MIN_EPOCHS,
        "final_gap": gaps[-1] if gaps else None,
        "baseline_val_loss": finite_or_none(last.get("baseline_val_loss")),
        "dead_units": finite_or_none(last.get("dead_units")),
        "saturated_units": finite_or_none(last.get("saturated_units")),
    }
    unstable = _instability(epochs, train, val)  # 1.
    if unstable is not None:
        onset, why = unstable
        evidence.update(why)
        return Diagnosis("unstable", onset, gaps, evidence, _limit(_calmer(spec), spec, evidence))
    if len(epochs) < MIN_EPOCHS:  # 2.
        return Diagnosis("good_fit", None, gaps, evidence, [])
    smoothed_val, smoothed_train = _smoothed(val), _smoothed(train)
    overfit = _overfitting(epochs, val, smoothed_val, smoothed_train)  # 3.
    if overfit is not None:
        onset, why = overfit
        evidence.update(why)
        return Diagnosis("overfitting", onset, gaps, evidence, _limit(_regularized(spec), spec, evidence))
    under = _underfitting(smoothed_train, evidence["baseline_val_loss"])  # 4.
    if under is not None:
        evidence.update(under)
        return Diagnosis("underfitting", None, gaps, evidence, _limit(_freer(spec), spec, evidence))
    return Diagnosis("good_fit", None, gaps, evidence, _limit([], spec, evidence))  # 5.


def _instability(
    epochs: Sequence[Mapping[str, Any]], train: list[float | None], val: list[float | None]
) -> tuple[int, dict[str, Any]] | None:
    grad_norms: list[float] = []
    first = train[0] if train else None
    for i, epoch in enumerate(epochs):
        number = epoch.get("epoch", i + 1)
        loss = train[i]
        if loss is None or val[i] is None:
            return number, {"non_finite_epoch": number}
        lowest = min((t for t in train[:i] if t is not None), default=None)
        material = first is not None and loss - (lowest or 0.0) > 0.5 * first
        if lowest is not None and lowest > 0 and loss > SPIKE * lowest and material:
            return number, {"spike_epoch": number, "spike_ratio": loss / lowest}
        grad = finite_or_none(epoch.get("grad_norm"))
        if grad is not None and len(grad_norms) >= 3 and grad > BLOW_UP * statistics.median(grad_norms) > 0:
            return number, {"blow_up_epoch": number, "grad_norm_ratio": grad / statistics.median(grad_norms)}
        if grad is not None:
            grad_norms.append(grad)
    return None


def _overfitting(
    epochs: Sequence[Mapping[str, Any]],
    val: list[float | None],
    smoothed_val: list[float],
    smoothed_train: list[float],
) -> tuple[int, dict[str, Any]] | None:
    m = min(range(len(smoothed_val)), key=lambda i: smoothed_val[i])
    se = finite_or_none(epochs[m].get("val_loss_se")) or 0.0
    noise = max(RISE * abs(smoothed_val[m]), 2 * se)
    recent = [*smoothed_val[-PATIENCE:], *val[-PATIENCE:]]  # no None here: rule 1 has ruled non-finite out
    rising = len(val) - m > PATIENCE and all(v is not None and v > smoothed_val[m] + noise for v in recent)
    still_learning = smoothed_train[-1] < smoothed_train[m]
    if not (rising and still_learning):
        return None
    return epochs[m].get("epoch", m + 1) + 1, {
        "best_smoothed_val_loss": smoothed_val[m],
        "best_epoch": epochs[m].get("epoch", m + 1),
        "final_smoothed_val_loss": smoothed_val[-1],
        "noise": noise,
        "rise": smoothed_val[-1] - smoothed_val[m],
    }


def _underfitting(smoothed_train: list[float], baseline: float | None) -> dict[str, Any] | None:
    if baseline is None or baseline <= 0:
        return None
    ratio = smoothed_train[-1] / baseline
    third = smoothed_train[-max(2, len(smoothed_train) // 3)]
    improvement = (third - smoothed_train[-1]) / third if third > 0 else 0.0
    if ratio >= HIGH and improvement < FLAT:
        return {"train_to_baseline": ratio, "recent_improvement": improvement}
    return None


def _regularized(spec: Mapping[str, Any]) -> list[Suggestion]:
    """Overfitting: more dropout and L2 together first, then early stopping, then a narrower network."""
    dropout = max(_dropout_rates(spec), default=0.0)
    l2 = spec.get("regularization", {}).get("l2", 0.0)
    more = {"model.dropout": round(min(max(dropout + 0.2, 0.3), 0.5), 2), "regularization.l2": max(l2 * 10, 1e-3)}
    suggestions = [Suggestion(more, "validation loss rises while training loss falls: regularize harder")]
    if not spec.get("early_stopping"):
        suggestions.append(
            Suggestion(
                {"early_stopping.patience": 5, "early_stopping.restore_best_weights": True},
                "stop at the minimum of the validation loss and keep those weights",
            )
        )
    hidden = spec.get("model", {}).get("hidden_layers", [])
    if any(units > 8 for units in hidden):
        narrower = [max(units // 2, 1) for units in hidden]
        suggestions.append(Suggestion({"model.hidden_layers": narrower}, "fewer parameters to memorize with"))
    return suggestions


def _freer(spec: Mapping[str, Any]) -> list[Suggestion]:
    """Underfitting: less regularization first, then a wider network, then a higher learning rate."""
    suggestions = []
    regularization = spec.get("regularization", {})
    looser: dict[str, Any] = {}
    if max(_dropout_rates(spec), default=0.0) > 0:
        looser["model.dropout"] = 0.0
    for name in ("l1", "l2"):
        if regularization.get(name, 0.0) > 0:
            looser[f"regularization.{name}"] = regularization[name] / 10
    if looser:
        suggestions.append(Suggestion(looser, "training loss stays near a constant prediction's: regularize less"))
    hidden = spec.get("model", {}).get("hidden_layers", [])
    wider = [units * 2 for units in hidden] or [64]
    suggestions.append(Suggestion({"model.hidden_layers": wider}, "more capacity to fit the training data"))
    lr = spec.get("optimizer", {}).get("lr", 0.001)
    suggestions.append(Suggestion({"optimizer.lr": min(lr * 3, 1.0)}, "training loss is flat: take larger steps"))
    return suggestions


def _calmer(spec: Mapping[str, Any]) -> list[Suggestion]:
    """Unstable: a lower learning rate, then gradient clipping."""
    lr = spec.get("optimizer", {}).get("lr", 0.001)
    suggestions = [Suggestion({"optimizer.lr": lr / 3}, "the loss jumps: take smaller steps")]
    if not spec.get("regularization", {}).get("gradient_clip_norm"):
        suggestions.append(
            Suggestion({"regularization.gradient_clip_norm": 1.0}, "clip the gradient's norm before each step")
        )
    return suggestions


def _limit(suggestions: list[Suggestion], spec: Mapping[str, Any], evidence: Mapping[str, Any]) -> list[Suggestion]:
    dead = evidence.get("dead_units")
    if dead is not None and dead > DEAD and spec.get("model", {}).get("activation", "relu") == "relu":
        reason = f"{dead:.0%} of the ReLU units never fire on the validation data"
        suggestions = [*suggestions, Suggestion({"model.activation": "leaky_relu"}, reason)]
    return suggestions[:MAX_SUGGESTIONS]


def _dropout_rates(spec: Mapping[str, Any]) -> list[float]:
    dropout = spec.get("model", {}).get("dropout", 0.0)
    return list(dropout) if isinstance(dropout, list) else [dropout]


def _smoothed(values: list[float | None]) -> list[float]:
    finite = [value if value is not None else math.inf for value in values]
    half = WINDOW // 2
    return [statistics.fmean(finite[max(0, i - half) : i + half + 1]) for i in range(len(finite))]
