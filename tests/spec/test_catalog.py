"""The data-set catalog: each entry's loader returns what the entry declares, and the API names the catalog."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.spec.catalog import CATALOG, Entry
from core.spec.job import DatasetSpec
from tests.fixtures import tiny_spec
from workers.training.data import load_dataset


def small(name: str, entry: Entry, n_features: int | None = None, n_classes: int | None = None) -> DatasetSpec:
    """The entry's spec, with few rows when it is generated."""
    if not entry.synthetic:
        return DatasetSpec(name=name)
    return DatasetSpec(name=name, n_samples=60, n_features=n_features, n_classes=n_classes)


@pytest.mark.parametrize("name", list(CATALOG))
def test_each_loader_returns_the_declared_shape_classes_and_rows(name: str) -> None:
    entry = CATALOG[name]
    spec = small(name, entry)
    x, y, feature_names, class_names = entry.load(spec, seed=0)

    assert entry.synthetic or entry.rows_for(spec) == entry.rows
    assert x.shape == (entry.rows_for(spec), math.prod(entry.input_shape_for(spec))) == (len(y), len(feature_names))
    assert len(class_names) == entry.classes_for(spec)
    if entry.task == "classification":
        assert entry.synthetic or entry.n_classes == len(class_names)
        assert set(np.unique(y).tolist()) == set(range(len(class_names)))
    else:
        assert entry.n_classes is None and not class_names


@pytest.mark.parametrize("name", [name for name, entry in CATALOG.items() if entry.takes_features])
def test_a_generator_takes_its_feature_and_class_counts_from_the_spec(name: str) -> None:
    entry = CATALOG[name]
    spec = small(name, entry, n_features=6, n_classes=4 if entry.takes_classes else None)
    loaded = entry.load(spec, seed=0)

    assert entry.input_shape_for(spec) == (6,) and loaded.x.shape == (60, 6)
    assert len(loaded.class_names) == entry.classes_for(spec) == (4 if entry.takes_classes else 0)


@pytest.mark.parametrize("name", list(CATALOG))
def test_the_worker_prepares_each_set_with_the_declared_input_shape(name: str) -> None:
    entry = CATALOG[name]
    spec = small(name, entry)
    data = load_dataset(spec, seed=0)

    assert (data.task, data.input_shape, data.n_classes) == (
        entry.task,
        entry.input_shape_for(spec),
        entry.classes_for(spec),
    )


def test_reading_the_catalog_does_not_import_scikit_learn() -> None:
    probe = "import sys, core.spec.job, core.jobs.quotas; print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_an_unknown_data_set_is_a_422_listing_the_catalog(client: TestClient) -> None:
    response = client.post("/v1/jobs", json=tiny_spec(dataset={"name": "mnist"}))

    listed = (
        "Input should be 'digits', 'iris', 'wine', 'breast_cancer', 'diabetes', 'classification', 'regression', "
        "'moons', 'circles' or 'shapes'"
    )
    assert response.status_code == 422
    assert {k: v for k, v in response.json().items() if k != "request_id"} == {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": f"dataset.name: {listed}",
        "errors": [{"field": "dataset.name", "message": listed, "type": "literal_error"}],
    }


def test_shapes_draws_balanced_classes_the_same_for_a_seed_and_another_for_another() -> None:
    from core.spec.catalog import CATALOG, Draw

    first, again, other = (CATALOG["shapes"].loader(Draw(300, 3072, 3, 0.1, seed)) for seed in (4, 4, 5))
    assert first.x.shape == (300, 3 * 32 * 32) and first.x.min() >= 0 and first.x.max() <= 1
    assert sorted(np.bincount(first.y).tolist()) == [100, 100, 100]
    assert np.array_equal(first.x, again.x) and not np.array_equal(first.x, other.x)
    assert first.class_names == ["circle", "square", "triangle"]


def test_the_shapes_example_is_a_cnn_on_3000_shapes() -> None:
    from core.spec.job import JobSpec
    from tests.fixtures import ROOT

    spec = JobSpec.model_validate_json((ROOT / "examples" / "shapes_cnn.json").read_text()).with_task("classification")
    assert (spec.dataset.name, spec.dataset.n_samples, spec.model.type) == ("shapes", 3000, "cnn")
