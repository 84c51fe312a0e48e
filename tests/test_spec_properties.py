"""Properties of the job spec's validation, over generated specs (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from core.errors import field_path
from core.spec.catalog import names
from core.spec.job import (
    CLASSIFICATION_LOSSES,
    REGRESSION_LOSSES,
    DatasetSpec,
    EarlyStoppingSpec,
    JobSpec,
    ModelSpec,
    OptimizerSpec,
    RegularizationSpec,
    SchedulerSpec,
    SpecTaskError,
    TrainingSpec,
)

probability = st.floats(min_value=0.0, max_value=0.99)
positive = st.floats(min_value=1e-6, max_value=1.0)
hidden = st.lists(st.integers(1, 256), min_size=0, max_size=4)


@st.composite
def models(draw: st.DrawFn) -> dict[str, Any]:
    layers = draw(hidden)
    dropout = draw(st.one_of(probability, st.lists(probability, min_size=len(layers), max_size=len(layers))))
    return {
        "hidden_layers": layers,
        "dropout": dropout,
        "input_dropout": draw(probability),
        "activation": draw(st.sampled_from(["relu", "tanh", "gelu", "sigmoid"])),
        "batch_norm": draw(st.sampled_from([True, False, "before_activation", "after_activation"])),
        "init": draw(st.sampled_from(["he_normal", "xavier_uniform", "orthogonal", "default"])),
    }


datasets = st.one_of(
    st.builds(
        lambda name, v, t: {"name": name, "validation_split": v, "test_split": t},
        st.sampled_from(sorted(names(lambda entry: not entry.synthetic))),
        st.floats(0.05, 0.4),
        st.floats(0.05, 0.4),
    ),
    st.builds(
        lambda n, f, c, seed: {"name": "classification", "n_samples": n, "n_features": f, "n_classes": c, "seed": seed},
        st.integers(20, 5000),
        st.integers(2, 50),
        st.integers(2, 10),
        st.integers(0, 2**32 - 1),
    ),
    st.builds(lambda dataset_id: {"id": dataset_id}, st.text("abcdef0123456789-", min_size=1, max_size=36)),
)

specs = st.fixed_dictionaries(
    {"dataset": datasets},
    optional={
        "name": st.text(min_size=1, max_size=50),
        "model": models(),
        "regularization": st.fixed_dictionaries(
            {},
            optional={
                "l1": st.floats(0, 1),
                "l2": st.floats(0, 1),
                "max_norm": positive,
                "input_noise": st.floats(0, 2),
            },
        ),
        "optimizer": st.fixed_dictionaries(
            {"name": st.sampled_from(["sgd", "adam", "adamw", "rmsprop"])},
            optional={"lr": positive, "weight_decay": st.floats(0, 1), "momentum": probability},
        ),
        "scheduler": st.builds(
            lambda name, gamma: {"name": name, "gamma": gamma},
            st.sampled_from(["step", "exponential", "cosine", "reduce_on_plateau"]),
            positive,
        ),
        "training": st.fixed_dictionaries(
            {},
            optional={
                "epochs": st.integers(1, 100_000),
                "batch_size": st.integers(1, 65_536),
                "seed": st.integers(0, 2**32 - 1),
            },
        ),
        "early_stopping": st.fixed_dictionaries(
            {},
            optional={
                "patience": st.integers(0, 1000),
                "min_delta": st.floats(0, 1),
                "mode": st.sampled_from(["min", "max", "auto"]),
                "restore_best_weights": st.booleans(),
            },
        ),
    },
)


def fields(error: ValidationError) -> list[str]:
    return [field_path(e["loc"]) for e in error.errors()]


@settings(max_examples=200)
@given(specs)
def test_a_valid_spec_round_trips_through_json_unchanged(raw: dict[str, Any]) -> None:
    spec = JobSpec.model_validate(raw)
    dumped = spec.model_dump(mode="json")
    again = JobSpec.model_validate(dumped)
    assert again == spec
    assert again.model_dump(mode="json") == dumped


@given(specs, st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), st.just(float("nan"))))
def test_a_dropout_outside_zero_to_one_is_rejected_naming_model_dropout(raw: dict[str, Any], dropout: float) -> None:
    raw = {**raw, "model": {**raw.get("model", {}), "dropout": dropout}}
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(raw)
    assert "model.dropout" in fields(caught.value)


PARTS: dict[str, type[BaseModel]] = {
    "": JobSpec,
    "dataset": DatasetSpec,
    "model": ModelSpec,
    "regularization": RegularizationSpec,
    "optimizer": OptimizerSpec,
    "scheduler": SchedulerSpec,
    "training": TrainingSpec,
    "early_stopping": EarlyStoppingSpec,
}


@given(specs, st.sampled_from(sorted(PARTS)), st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20))
def test_an_unknown_key_anywhere_is_rejected_naming_it(raw: dict[str, Any], part: str, key: str) -> None:
    if key in PARTS[part].model_fields:
        key = f"{key}_unknown"
    if part == "":
        raw = {**raw, key: 1}
    else:
        base = raw.get(part) or ({"name": "step"} if part == "scheduler" else {})
        raw = {**raw, part: {**base, key: 1}}
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(raw)
    path = f"{part}.{key}" if part else key
    assert path in fields(caught.value)
    assert any(e["type"] == "extra_forbidden" for e in caught.value.errors())


@given(specs, st.sampled_from(["classification", "regression"]), st.data())
def test_with_task_never_accepts_a_loss_of_the_other_task(raw: dict[str, Any], task: str, data: st.DataObject) -> None:
    other = REGRESSION_LOSSES if task == "classification" else CLASSIFICATION_LOSSES
    raw = {**raw, "dataset": {"id": "uploaded"}, "loss": data.draw(st.sampled_from(other))}
    raw.pop("early_stopping", None)
    raw.pop("scheduler", None)
    spec = JobSpec.model_validate(raw)
    with pytest.raises(SpecTaskError) as caught:
        spec.with_task(task)  # type: ignore[arg-type]
    assert caught.value.field == "loss"
