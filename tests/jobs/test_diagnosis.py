"""The diagnosis rules on constructed histories, one per verdict, and the ones that must not fool it."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.jobs.diagnosis import diagnose
from tests.fixtures import ROOT, Process, bearer, create_key, tiny_spec, wait_for_job

SPEC: dict[str, Any] = {
    "model": {"hidden_layers": [256, 256], "dropout": 0.0, "activation": "relu"},
    "regularization": {"l1": 0.0, "l2": 0.0},
    "optimizer": {"lr": 0.01},
    "early_stopping": None,
}
TRAIN = [1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.08, 0.06]
OVERFIT_VAL = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6, 0.65]


def history(train: Sequence[float | None], val: Sequence[float | None], **extra: Any) -> list[dict[str, Any]]:
    base = {"val_loss_se": 0.01, "baseline_val_loss": 0.69, "grad_norm": 1.0, "dead_units": 0.1}
    pairs = enumerate(zip(train, val, strict=True), start=1)
    return [{**base, "epoch": i, "data_loss": t, "val_loss": v, **extra} for i, (t, v) in pairs]


def test_validation_loss_rising_beyond_its_noise_while_training_loss_falls_is_overfitting() -> None:
    # Centred means of three: the minimum is epoch 6 (0.45); the last three (0.55, 0.60, 0.625), and the losses
    # as measured (0.55, 0.60, 0.65), are all above 0.45 + max(2 % of it, 2 x SE 0.01) = 0.47, and the training
    # loss still falls.
    diagnosis = diagnose(history(TRAIN, OVERFIT_VAL), SPEC)
    assert (diagnosis.verdict, diagnosis.onset_epoch) == ("overfitting", 7)
    assert diagnosis.evidence["best_epoch"] == 6
    assert diagnosis.evidence["best_smoothed_val_loss"] == pytest.approx(0.45)
    assert diagnosis.evidence["noise"] == pytest.approx(0.02)
    assert diagnosis.gaps[-1] == pytest.approx(0.65 - 0.06)
    first, second, third = diagnosis.suggestions
    assert first.changes == {"model.dropout": 0.3, "regularization.l2": 0.001}
    assert second.changes == {"early_stopping.patience": 5, "early_stopping.restore_best_weights": True}
    assert third.changes == {"model.hidden_layers": [128, 128]}


def test_a_rise_within_the_validation_losss_standard_error_is_not_overfitting() -> None:
    diagnosis = diagnose(history(TRAIN, OVERFIT_VAL, val_loss_se=0.1), SPEC)  # noise: 2 x 0.1 = 0.2
    assert diagnosis.verdict == "good_fit" and diagnosis.onset_epoch is None


def test_noisy_but_flat_validation_loss_is_a_good_fit() -> None:
    val = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.47, 0.44, 0.43, 0.45, 0.43]
    diagnosis = diagnose(history(TRAIN, val), SPEC)
    assert diagnosis.verdict == "good_fit" and diagnosis.suggestions == []


def test_a_two_epoch_bump_at_the_end_is_not_a_sustained_rise() -> None:
    val = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.43, 0.42, 0.41, 0.5, 0.52]
    assert diagnose(history(TRAIN, val), SPEC).verdict == "good_fit"


def test_training_loss_flat_near_the_constant_predictors_is_underfitting() -> None:
    train = [0.70, 0.69, 0.69, 0.688, 0.687, 0.687]
    spec = {**SPEC, "model": {**SPEC["model"], "dropout": 0.5}, "regularization": {"l1": 0.0, "l2": 0.01}}
    diagnosis = diagnose(history(train, [0.70] * 6), spec)
    assert diagnosis.verdict == "underfitting"
    assert diagnosis.evidence["train_to_baseline"] == pytest.approx(0.687 / 0.69, rel=1e-3)
    assert diagnosis.suggestions[0].changes == {"model.dropout": 0.0, "regularization.l2": 0.001}
    assert diagnosis.suggestions[1].changes == {"model.hidden_layers": [512, 512]}


@pytest.mark.parametrize(
    ("train", "val", "grads", "onset", "key"),
    [
        ([1.0, 0.5, 0.4, 0.3, 0.2], [1.0, 0.6, None, 0.4, 0.3], [1.0] * 5, 3, "non_finite_epoch"),
        ([1.0, 0.5, 0.4, 1.5, 0.3], [1.0, 0.6, 0.5, 1.4, 0.3], [1.0] * 5, 4, "spike_epoch"),
        ([1.0, 0.5, 0.4, 0.3, 0.2], [1.0, 0.6, 0.5, 0.4, 0.3], [1.0, 1.2, 0.9, 1.0, 20.0], 5, "blow_up_epoch"),
    ],
)
def test_a_non_finite_loss_a_spike_or_a_gradient_blow_up_is_unstable(
    train: list[float], val: list[float | None], grads: list[float], onset: int, key: str
) -> None:
    epochs = history(train, val)
    for epoch, grad in zip(epochs, grads, strict=True):
        epoch["grad_norm"] = grad
    diagnosis = diagnose(epochs, SPEC)
    assert (diagnosis.verdict, diagnosis.onset_epoch, diagnosis.evidence[key]) == ("unstable", onset, onset)
    assert [s.changes for s in diagnosis.suggestions] == [
        {"optimizer.lr": pytest.approx(0.01 / 3)},
        {"regularization.gradient_clip_norm": 1.0},
    ]


def test_before_five_epochs_only_instability_is_judged() -> None:
    diagnosis = diagnose(history(TRAIN[:4], OVERFIT_VAL[:4]), SPEC)
    assert diagnosis.verdict == "good_fit" and diagnosis.evidence["enough_epochs"] is False
    assert diagnose([], SPEC).verdict == "good_fit"


def test_mostly_dead_relu_units_add_a_leaky_relu_suggestion() -> None:
    diagnosis = diagnose(history(TRAIN, OVERFIT_VAL, dead_units=0.8), {**SPEC, "early_stopping": {"patience": 3}})
    assert [s.changes for s in diagnosis.suggestions][-1] == {"model.activation": "leaky_relu"}
    assert len(diagnosis.suggestions) == 3


def with_changes(spec: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The spec with each dotted path of `changes` set, as the dashboard's "try it" does."""
    changed = copy.deepcopy(spec)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = changed
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return changed


def test_a_wide_network_on_300_rows_overfits_and_its_first_suggestion_narrows_the_gap(
    api_server: httpx.Client, worker: Process
) -> None:
    overfitting = json.loads((ROOT / "examples" / "overfitting.json").read_text())
    regularized = with_changes(overfitting, {"model.dropout": 0.5, "regularization.l2": 0.01})

    first = wait_for_job(api_server, api_server.post("/v1/jobs", json=overfitting).json()["id"])
    diagnosis = api_server.get(f"/v1/jobs/{first['id']}/diagnosis").json()
    assert (diagnosis["verdict"], diagnosis["final"]) == ("overfitting", True), diagnosis
    assert diagnosis["onset_epoch"] is not None and diagnosis["suggestions"]
    suggestion = diagnosis["suggestions"][0]["changes"]
    assert suggestion == {"model.dropout": 0.3, "regularization.l2": 0.001}

    tried = api_server.post("/v1/jobs", json=with_changes(overfitting, suggestion)).json()
    calm = api_server.post("/v1/jobs", json=regularized).json()
    tried_diagnosis = api_server.get(f"/v1/jobs/{wait_for_job(api_server, tried['id'])['id']}/diagnosis").json()
    assert tried_diagnosis["evidence"]["final_gap"] < diagnosis["evidence"]["final_gap"]
    calm_diagnosis = api_server.get(f"/v1/jobs/{wait_for_job(api_server, calm['id'])['id']}/diagnosis").json()
    assert calm_diagnosis["verdict"] != "overfitting", calm_diagnosis


def test_another_owners_diagnosis_is_a_404(client: TestClient, database_url: str) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    live = client.get(f"/v1/jobs/{job_id}/diagnosis").json()
    assert (live["verdict"], live["final"], live["gaps"]) == ("good_fit", False, [])
    bob = bearer(create_key(database_url, "bob"))
    assert client.get(f"/v1/jobs/{job_id}/diagnosis", headers=bob).status_code == 404
