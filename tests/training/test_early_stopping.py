import json
import math
from typing import Any

import pytest

from core.spec.job import EarlyStoppingSpec
from workers.training.early_stopping import EarlyStopping, StopDecision


def run(
    values: list[float], monitor: str = "val_loss", **spec: Any
) -> tuple[int | None, StopDecision | None, EarlyStopping]:
    """Feed `values` as epochs 1, 2, ...; return the stopping epoch and decision (None if none)."""
    stopper = EarlyStopping(EarlyStoppingSpec(monitor=monitor, **spec))
    for epoch, value in enumerate(values, start=1):
        decision = stopper.update(epoch, {monitor: value, "other": 0.0})
        if decision is not None:
            return epoch, decision, stopper
    return None, None, stopper


def test_patience_counts_epochs_since_the_last_improvement():
    # e1 1.0 best; e2 0.5 best; e3 0.6 wait 1; e4 0.5 (not below 0.5) wait 2; e5 0.7 wait 3 >= 3: stop.
    epoch, decision, stopper = run([1.0, 0.5, 0.6, 0.5, 0.7, 0.1], patience=3)
    assert epoch == 5
    assert decision is not None and decision.reason == "early_stopping"
    assert (stopper.best_epoch, stopper.best_value, stopper.wait, stopper.improved) == (2, 0.5, 3, False)


def test_an_improvement_resets_the_wait():
    # e1 best; e2 wait 1; e3 0.9 best, wait 0; e4 wait 1; e5 wait 2 >= 2: stop at 5, not at 3.
    epoch, _, stopper = run([1.0, 1.1, 0.9, 1.0, 1.0], patience=2)
    assert (epoch, stopper.best_epoch) == (5, 3)


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_zero_and_one_stop_at_the_first_epoch_without_improvement(patience):
    # e1 best, e2 best, e3 equal to the best: not an improvement, wait 1 >= patience.
    epoch, _, _ = run([1.0, 0.9, 0.9, 0.1], patience=patience)
    assert epoch == 3


def test_improved_is_true_only_after_a_new_best():
    stopper = EarlyStopping(EarlyStoppingSpec(patience=5))
    flags = []
    for epoch, value in enumerate([3.0, 2.0, 2.0, 1.0], start=1):
        stopper.update(epoch, {"val_loss": value})
        flags.append(stopper.improved)
    assert flags == [True, True, False, True]


def test_a_gain_of_exactly_min_delta_is_not_an_improvement():
    # min_delta 0.25, binary-exact values: e2 gains exactly 0.25, no improvement, wait 1 >= 1: stop.
    epoch, _, stopper = run([1.0, 0.75], min_delta=0.25, patience=1)
    assert (epoch, stopper.best_epoch) == (2, 1)
    # e2 gains 0.3 > 0.25: a new best; e3 gains 0.25 exactly: stop.
    epoch, _, stopper = run([1.0, 0.7, 0.45], min_delta=0.25, patience=1)
    assert (epoch, stopper.best_epoch) == (3, 2)
    # Max mode: 0.5 -> 0.75 is exactly min_delta, no improvement.
    epoch, _, _ = run([0.5, 0.75], monitor="val_accuracy", min_delta=0.25, patience=1)
    assert epoch == 2


def test_min_delta_rounds_like_keras_and_lightning():
    # Both test value + min_delta < best: 0.3 + 0.1 == 0.4 in floats, so no improvement (a subtraction,
    # 0.4 - 0.3 > 0.1, would call it one). No improvement, wait 1 >= 1: stop at e2.
    epoch, _, _ = run([0.4, 0.3], min_delta=0.1, patience=1)
    assert epoch == 2


def test_mode_max_tracks_the_largest_value():
    # e1 0.5 best; e2 0.6 best; e3 0.55 wait 1; e4 0.6 (not above 0.6) wait 2 >= 2: stop; best e2.
    epoch, _, stopper = run([0.5, 0.6, 0.55, 0.6, 0.9], monitor="val_accuracy", mode="max", patience=2)
    assert (epoch, stopper.best_epoch, stopper.best_value) == (4, 2, 0.6)


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val_accuracy", "max"), ("val_f1", "max"), ("val_r2", "max"), ("val_loss", "min"), ("val_mae", "min")],
)
def test_mode_auto_follows_the_metric(monitor, mode):
    assert EarlyStopping(EarlyStoppingSpec(monitor=monitor)).mode == mode


def test_mode_auto_on_accuracy_stops_when_it_stops_rising():
    # Same sequence as the max-mode test: a min-mode stopper would instead stop at e2 (0.6 > 0.5).
    epoch, _, stopper = run([0.5, 0.6, 0.55, 0.6, 0.9], monitor="val_accuracy", patience=2)
    assert (epoch, stopper.best_epoch) == (4, 2)


def test_baseline_must_be_beaten_before_anything_counts_as_improving():
    # Baseline 0.5: e1 0.9, e2 0.7, e3 0.6 never beat it: wait 1, 2, 3 >= 3: stop at 3 with no best.
    epoch, decision, stopper = run([0.9, 0.7, 0.6, 0.4], baseline=0.5, patience=3)
    assert epoch == 3
    assert decision is not None and decision.reason == "early_stopping"
    assert (stopper.best_epoch, stopper.best_value) == (None, None)
    # Patience 4: e4 0.4 beats the baseline and becomes the best; e5 wait 1; e6 0.3 new best.
    epoch, _, stopper = run([0.9, 0.7, 0.6, 0.4, 0.45, 0.3], baseline=0.5, patience=4)
    assert (epoch, stopper.best_epoch, stopper.wait) == (None, 6, 0)


def test_baseline_must_be_beaten_by_more_than_min_delta():
    # 0.5 - 0.25 is exactly min_delta: not beaten, wait 1 >= 1; 0.2 would have been.
    epoch, _, stopper = run([0.25], baseline=0.5, min_delta=0.25, patience=1)
    assert (epoch, stopper.best_epoch) == (1, None)
    epoch, _, stopper = run([0.2], baseline=0.5, min_delta=0.25, patience=1)
    assert (epoch, stopper.best_epoch) == (None, 1)


def test_warm_up_epochs_are_neither_tracked_nor_counted():
    # start_from_epoch 2: e1, e2 ignored (0.05 would be the best); e3 1.0 first best; e4 0.9 best;
    # e5 wait 1 >= 1: stop. Without the warm-up, e3 would stop (wait 1 after the best at e2).
    epoch, _, stopper = run([0.1, 0.05, 1.0, 0.9, 0.95], start_from_epoch=2, patience=1)
    assert (epoch, stopper.best_epoch, stopper.best_value) == (5, 4, 0.9)
    epoch, _, _ = run([0.1, 0.05, 1.0, 0.9, 0.95], patience=1)
    assert epoch == 3


def test_stopping_threshold_stops_once_reached_and_keeps_that_best():
    # Min mode, threshold 0.5: e2 0.6 is above it; e3 0.5 reaches it (inclusive) and is the new best.
    epoch, decision, stopper = run([1.0, 0.6, 0.5, 0.4], stopping_threshold=0.5)
    assert epoch == 3
    assert decision is not None and decision.reason == "stopping_threshold"
    assert stopper.best_epoch == 3
    # Max mode, threshold 0.9: e2 0.95 >= 0.9.
    epoch, _, _ = run([0.8, 0.95], monitor="val_accuracy", stopping_threshold=0.9)
    assert epoch == 2
    # Warm-up epochs are not judged: e1 0.4 is ignored, e2 0.45 reaches 0.5.
    epoch, _, _ = run([0.4, 0.45], stopping_threshold=0.5, start_from_epoch=1)
    assert epoch == 2


def test_divergence_threshold_stops_as_diverged_and_never_becomes_best():
    # Min mode, threshold 2.0: e3 equals it (inclusive); the best stays e1.
    epoch, decision, stopper = run([1.0, 1.5, 2.0], divergence_threshold=2.0)
    assert epoch == 3
    assert decision is not None and decision.reason == "diverged"
    assert (stopper.best_epoch, stopper.best_value) == (1, 1.0)
    # Max mode, threshold 0.2: e2 0.2 is that bad.
    epoch, _, _ = run([0.5, 0.2], monitor="val_accuracy", divergence_threshold=0.2)
    assert epoch == 2
    # Warm-up epochs are not judged: e1 5.0 is ignored.
    epoch, _, _ = run([5.0, 1.0], divergence_threshold=2.0, start_from_epoch=1)
    assert epoch is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_diverges_even_in_warm_up(bad):
    epoch, decision, stopper = run([1.0, bad], patience=10)
    assert epoch == 2
    assert decision is not None and decision.reason == "diverged"
    assert (stopper.best_epoch, stopper.best_value) == (1, 1.0)
    epoch, _, _ = run([bad], start_from_epoch=3)
    assert epoch == 1


def test_a_missing_monitor_raises_key_error_naming_it():
    stopper = EarlyStopping(EarlyStoppingSpec(monitor="val_accuracy"))
    with pytest.raises(KeyError, match="val_accuracy"):
        stopper.update(1, {"val_loss": 1.0})


def test_state_dict_round_trip_continues_identically():
    spec = EarlyStoppingSpec(patience=3, min_delta=0.25, baseline=2.0, stopping_threshold=0.1)
    values = [3.0, 1.5, 1.4, 1.0, 1.2, 1.1, 0.9, 0.8, 0.7, 0.6]
    original = EarlyStopping(spec)
    for epoch, value in enumerate(values[:5], start=1):
        original.update(epoch, {"val_loss": value})
    resumed = EarlyStopping(spec)
    resumed.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert resumed.state_dict() == original.state_dict()
    # e1 3.0 misses the baseline 2.0 (wait 1); e2 1.5 best; e3 1.4 gains only 0.1 (wait 1); e4 1.0 best;
    # e5 wait 1. After the round trip: e6 1.1 wait 2; e7 0.9 gains 0.1, wait 3 >= 3: both stop at e7.
    for epoch, value in enumerate(values[5:], start=6):
        decision = original.update(epoch, {"val_loss": value})
        assert resumed.update(epoch, {"val_loss": value}) == decision
        assert resumed.state_dict() == original.state_dict()
        if decision is not None:
            break
    assert (epoch, original.best_epoch) == (7, 4)


def test_reset_forgets_the_previous_run():
    _, _, stopper = run([1.0, 0.5, 0.9], patience=1)
    stopper.reset()
    assert stopper.state_dict() == {"best_epoch": None, "best_value": None, "improved": False, "wait": 0}
