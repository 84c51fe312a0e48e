import math
from typing import Any

import pytest
import torch

from core.spec.job import ConvLayerSpec, InitFromSpec, JobSpec, ModelSpec, metrics_for
from tests.training.factories import (
    digits,
    hand_made,
    job_spec,
    synthetic,
    train_recording,
    without_timing,
)
from workers.training.checkpoint import Checkpoint, checkpoint_from_bytes, checkpoint_to_bytes
from workers.training.data import load_dataset
from workers.training.engine import EVAL_BATCH_SIZE, StopTraining, eval_rows, train
from workers.training.model import build_model, trainable_layers

CPU = torch.device("cpu")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_epoch_reports_exactly_the_tasks_metrics_as_floats(task):
    spec = job_spec(task, regularization={"l1": 1e-3, "l2": 1e-3})
    result, epochs = train_recording(spec, hand_made(task), device=CPU)
    assert [end.epoch for end in epochs] == [1, 2, 3, 4]
    for end in epochs:
        assert tuple(end.metrics) == metrics_for(task)
        assert all(isinstance(v, float) and math.isfinite(v) for v in end.metrics.values())
    first = epochs[0].metrics
    assert first["train_loss"] == pytest.approx(first["data_loss"] + first["penalty"])
    assert first["penalty"] > 0 and first["lr"] == 0.01
    assert result.stop_reason == "max_epochs" and result.epochs_completed == 4
    assert set(result.test_metrics) == (
        {"loss", "loss_se", "accuracy", "precision", "recall", "f1"}
        if task == "classification"
        else {"loss", "loss_se", "mae", "rmse", "r2"}
    )
    assert all(w.device.type == "cpu" for w in result.weights.values())


def test_grad_norm_is_the_global_gradient_norm_of_the_last_step_before_clipping():
    # One batch holds all 24 training rows, so the first step's gradient is that of the whole split.
    spec = job_spec(training={"epochs": 1, "batch_size": 24}, regularization={"gradient_clip_norm": 1e-3})
    data = hand_made()
    _, epochs = train_recording(spec, data)
    torch.manual_seed(spec.training.seed)
    model = build_model(spec.model, data.input_shape, 2)
    loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(data.x_train)), torch.as_tensor(data.y_train))
    loss.backward()
    expected = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert epochs[0].metrics["grad_norm"] == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() > 1e-2  # far above the clipping limit: the metric is taken before clipping


def test_without_early_stopping_the_best_epoch_has_the_lowest_val_loss_and_final_weights_are_kept():
    result, epochs = train_recording(job_spec(), hand_made(), device=CPU)
    losses = [end.metrics["val_loss"] for end in epochs]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.best_metrics == epochs[result.best_epoch - 1].metrics
    assert [end.is_best for end in epochs] == [
        loss < min(losses[:i], default=math.inf) for i, loss in enumerate(losses)
    ]


def model_weights(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return {k[len("model.") :]: v for k, v in checkpoint.tensors.items() if k.startswith("model.")}


def test_restore_best_weights_keeps_the_best_epochs_weights_and_tests_them():
    data = synthetic()
    # A min_delta no change can beat: epoch 1 is the best, and patience 2 stops at epoch 3.
    stopping = {"monitor": "val_loss", "min_delta": 100.0, "patience": 2}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    spec = job_spec(early_stopping=stopping)
    result = train(spec, data, on_epoch_end=lambda end: snapshots.update({end.epoch: model_weights(end.checkpoint())}))
    assert (result.stop_reason, result.best_epoch, result.epochs_completed) == ("early_stopping", 1, 3)
    assert all(torch.equal(result.weights[k], snapshots[1][k]) for k in result.weights)
    assert result.test_metrics["accuracy"] == pytest.approx(accuracy_of(snapshots[1], spec, data))
    assert result.test_metrics["accuracy"] != pytest.approx(accuracy_of(snapshots[3], spec, data))

    kept_last = train(job_spec(early_stopping={**stopping, "restore_best_weights": False}), data)
    assert all(torch.equal(kept_last.weights[k], snapshots[3][k]) for k in kept_last.weights)


def accuracy_of(weights, spec, data) -> float:
    model = build_model(spec.model, data.input_shape, data.n_classes)
    model.load_state_dict(weights)
    model.eval()
    with torch.no_grad():
        predicted = model(torch.as_tensor(data.x_test)).argmax(dim=1)
    return (predicted == torch.as_tensor(data.y_test)).float().mean().item()


RANDOM_EVERYWHERE: dict[str, Any] = {  # dropout, input noise, batch norm and shuffling all draw random numbers
    "model": {"hidden_layers": [16, 8], "dropout": 0.3, "input_dropout": 0.1, "batch_norm": True},
    "regularization": {"input_noise": 0.1, "l2": 1e-3, "max_norm": 2.0, "gradient_clip_norm": 1.0},
    "scheduler": {"name": "reduce_on_plateau", "patience": 0, "factor": 0.5, "warmup_epochs": 1},
    "early_stopping": {"monitor": "val_accuracy", "patience": 50},
    "training": {"epochs": 6, "batch_size": 16, "seed": 5},
}


def test_the_same_spec_and_seed_give_identical_metrics_bit_for_bit():
    spec = job_spec(**RANDOM_EVERYWHERE)
    data = synthetic()
    first, first_epochs = train_recording(spec, data)
    second, second_epochs = train_recording(spec, data)
    assert [without_timing(e.metrics) for e in first_epochs] == [without_timing(e.metrics) for e in second_epochs]
    assert first.test_metrics == second.test_metrics
    other_seed = job_spec(**{**RANDOM_EVERYWHERE, "training": {**RANDOM_EVERYWHERE["training"], "seed": 6}})
    _, other_epochs = train_recording(other_seed, data)
    assert without_timing(other_epochs[0].metrics) != without_timing(first_epochs[0].metrics)


def test_bf16_precision_applies_on_a_gpu_only_so_on_the_cpu_it_trains_bit_for_bit_as_fp32():
    assert job_spec().training.precision == "fp32"
    data = synthetic()
    fp32, fp32_epochs = train_recording(job_spec(**RANDOM_EVERYWHERE), data, device=CPU)
    training = {**RANDOM_EVERYWHERE["training"], "precision": "bf16"}
    bf16, bf16_epochs = train_recording(job_spec(**{**RANDOM_EVERYWHERE, "training": training}), data, device=CPU)
    assert [without_timing(e.metrics) for e in bf16_epochs] == [without_timing(e.metrics) for e in fp32_epochs]
    assert bf16.test_metrics == fp32.test_metrics


def test_resuming_from_a_checkpoint_continues_exactly_like_an_uninterrupted_run():
    spec = job_spec(**RANDOM_EVERYWHERE)
    data = synthetic()
    straight, straight_epochs = train_recording(spec, data)

    saved: list[bytes] = []

    def stop_after_three(end):
        if end.epoch == 3:
            saved.append(checkpoint_to_bytes(end.checkpoint()))  # through the bytes the worker stores
            raise StopTraining("interrupted")

    first_half = train(spec, data, on_epoch_end=stop_after_three)
    assert (first_half.stop_reason, first_half.epochs_completed) == ("interrupted", 3)
    resumed, resumed_epochs = train_recording(spec, data, resume=checkpoint_from_bytes(saved[0]))

    assert [e.epoch for e in resumed_epochs] == [4, 5, 6]
    assert [without_timing(e.metrics) for e in resumed_epochs] == [
        without_timing(e.metrics) for e in straight_epochs[3:]
    ]
    assert [e.is_best for e in resumed_epochs] == [e.is_best for e in straight_epochs[3:]]
    assert resumed.best_epoch == straight.best_epoch
    assert resumed.best_metrics is not None and straight.best_metrics is not None
    assert without_timing(resumed.best_metrics) == without_timing(straight.best_metrics)
    assert resumed.test_metrics == straight.test_metrics
    assert all(torch.equal(resumed.weights[k], straight.weights[k]) for k in straight.weights)


def test_a_callback_ends_training_cleanly_with_its_reason():
    def prune_at_two(end):
        if end.epoch == 2:
            raise StopTraining("pruned")

    result = train(job_spec(), hand_made(), on_epoch_end=prune_at_two)
    assert (result.stop_reason, result.epochs_completed) == ("pruned", 2)
    assert set(result.test_metrics) == {"loss", "loss_se", "accuracy", "precision", "recall", "f1"}


def test_should_stop_is_polled_after_every_batch_and_ends_training_mid_epoch():
    polls: list[int] = []

    def cancel_on_the_tenth_batch():
        polls.append(1)
        return "cancelled" if len(polls) == 10 else None

    # 24 training rows in batches of 8: three batches an epoch, so batch 10 is the first of epoch 4.
    result, epochs = train_recording(
        job_spec(training={"batch_size": 8, "epochs": 6}), hand_made(), should_stop=cancel_on_the_tenth_batch
    )
    assert (result.stop_reason, result.epochs_completed, len(epochs), len(polls)) == ("cancelled", 3, 3, 10)


def test_the_wall_clock_limit_stops_with_timeout():
    result = train(job_spec(training={"max_wall_seconds": 1e-9}), hand_made())
    assert (result.stop_reason, result.epochs_completed) == ("timeout", 0)


def test_a_huge_learning_rate_diverges():
    spec = job_spec("regression", optimizer={"name": "sgd", "lr": 10.0}, training={"epochs": 30})
    result, epochs = train_recording(spec, synthetic("regression"))
    assert result.stop_reason == "diverged"
    assert result.epochs_completed == len(epochs) < 30
    last = epochs[-1].metrics
    assert not (math.isfinite(last["train_loss"]) and math.isfinite(last["val_loss"]))


def warm_start_spec(freeze: list[int]) -> JobSpec:
    return job_spec().model_copy(update={"init_from": InitFromSpec(job_id="source", freeze=freeze)})


def test_warm_start_loads_the_source_weights_and_frozen_layers_do_not_move():
    data = hand_made()
    source = train(job_spec(), data)
    result = train(warm_start_spec(freeze=[0]), data, init_weights=source.weights)
    assert torch.equal(result.weights["hidden0.linear.weight"], source.weights["hidden0.linear.weight"])
    assert torch.equal(result.weights["hidden0.linear.bias"], source.weights["hidden0.linear.bias"])
    assert not torch.equal(result.weights["output.weight"], source.weights["output.weight"])


def test_warm_start_needs_the_source_weights_and_something_left_to_train():
    data = hand_made()
    with pytest.raises(ValueError, match="init_weights"):
        train(warm_start_spec(freeze=[]), data)
    with pytest.raises(ValueError, match="freezes every layer"):
        train(warm_start_spec(freeze=[0, 1]), data, init_weights=train(job_spec(), data).weights)


def test_the_digits_cnn_trains():
    spec = job_spec(
        dataset={"name": "digits"},
        model={"type": "cnn", "conv_layers": [{"filters": 4, "pool": 2}], "hidden_layers": [16]},
        training={"epochs": 2},
    )
    result = train(spec, digits())
    assert result.test_metrics["accuracy"] > 0.5
    assert len(trainable_layers(build_model(spec.model, (1, 8, 8), 10))) == 3


def last_metrics(dataset: dict | None = None, **sections) -> dict[str, float]:
    spec = job_spec(dataset=dataset or {"name": "digits"}, **sections)
    _, epochs = train_recording(spec, load_dataset(spec.dataset, seed=0))
    return epochs[-1].metrics


def test_on_digits_l1_makes_weights_much_sparser_than_l2_of_the_same_strength():
    common: dict[str, Any] = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "model": {"hidden_layers": [32]},
        "training": {"epochs": 10},
    }
    l1 = last_metrics(regularization={"l1": 3e-3}, **common)["sparsity"]
    l2 = last_metrics(regularization={"l2": 3e-3}, **common)["sparsity"]
    assert l1 > 0.1 and l1 > 5 * l2


def test_on_digits_dropout_narrows_the_gap_between_train_and_validation_accuracy():
    def gap(rate: float) -> float:
        metrics = last_metrics(
            dataset={"name": "digits", "validation_split": 0.5, "test_split": 0.3},
            model={"hidden_layers": [64, 64], "dropout": rate},
            optimizer={"lr": 0.003},
            training={"epochs": 20, "batch_size": 64},
        )
        return metrics["train_accuracy"] - metrics["val_accuracy"]

    assert gap(0.0) > 0.04 and gap(0.5) < gap(0.0) - 0.04


def test_val_loss_se_is_the_standard_error_of_the_per_example_validation_losses():
    # No early stopping: the weights returned are those of the last epoch, whose metrics are checked.
    spec = job_spec(training={"epochs": 2})
    data = hand_made()
    result, epochs = train_recording(spec, data, device=CPU)
    model = build_model(spec.model, data.input_shape, data.n_classes)
    model.load_state_dict(result.weights)
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(data.x_val))
    per_example = torch.nn.functional.cross_entropy(logits, torch.as_tensor(data.y_val), reduction="none")
    n = len(per_example)
    mean = per_example.mean().item()
    by_hand = math.sqrt(sum((v - mean) ** 2 for v in per_example.tolist()) / (n - 1)) / math.sqrt(n)
    assert epochs[-1].metrics["val_loss"] == pytest.approx(mean, rel=1e-5)
    assert epochs[-1].metrics["val_loss_se"] == pytest.approx(by_hand, rel=1e-5)


def test_evaluation_chunks_hold_at_most_eval_elements_numbers_at_the_widest_layer() -> None:
    # 16 filters of 3x3 with same padding on 3x32x32 images: 16 * 32 * 32 = 16,384 numbers an image, 2^21 / 2^14.
    conv = ConvLayerSpec(filters=16, kernel_size=3, pool=2)
    cnn = ModelSpec(type="cnn", conv_layers=[conv], hidden_layers=[64])
    # An MLP's widest layer is its 3,072-wide input here: 2^21 // 3,072 = 682 rows.
    wide_input = ModelSpec(hidden_layers=[256])
    # 64 inputs, 256 units: 8,192 rows hold 2^21 numbers, exactly the cap.
    narrow = ModelSpec(hidden_layers=[256, 256])
    models = [build_model(cnn, (3, 32, 32), 3), build_model(wide_input, (3072,), 3), build_model(narrow, (64,), 10)]
    noisy = torch.nn.Sequential(Noisy(), torch.nn.Linear(4, 2))  # a layer that draws even in evaluation mode
    before = torch.get_rng_state()
    assert eval_rows(models[0], (3, 32, 32)) == 128
    assert eval_rows(models[1], (3072,)) == 682
    assert eval_rows(models[2], (64,)) == EVAL_BATCH_SIZE == 8192
    assert eval_rows(noisy, (4,)) == EVAL_BATCH_SIZE
    assert torch.equal(torch.get_rng_state(), before), "training must draw what it would have drawn"


class Noisy(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0 * torch.rand_like(x)
