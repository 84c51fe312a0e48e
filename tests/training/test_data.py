import numpy as np
import pytest

from core.spec.job import DatasetSpec
from workers.training.data import PreparedData, load_dataset, prepare_arrays


def class_counts(data: PreparedData) -> list[list[int]]:
    return [np.bincount(y, minlength=data.n_classes).tolist() for y in (data.y_train, data.y_val, data.y_test)]


def raw_rows(data: PreparedData) -> np.ndarray:
    """Every row of the three splits in original units, sorted by the first feature."""
    x = np.concatenate([data.x_train, data.x_val, data.x_test]) * data.feature_std + data.feature_mean
    return x[np.argsort(x[:, 0])]


@pytest.mark.parametrize(
    ("name", "task", "n_classes", "n_features"),
    [
        ("digits", "classification", 10, 64),
        ("iris", "classification", 3, 4),
        ("wine", "classification", 3, 13),
        ("breast_cancer", "classification", 2, 30),
        ("diabetes", "regression", 0, 10),
        ("classification", "classification", 2, 20),
        ("regression", "regression", 0, 20),
        ("moons", "classification", 2, 2),
        ("circles", "classification", 2, 2),
    ],
)
def test_every_data_set_loads_with_its_task_and_shapes(name, task, n_classes, n_features):
    data = load_dataset(DatasetSpec(name=name), seed=0)
    assert (data.task, data.n_classes, len(data.class_names)) == (task, n_classes, n_classes)
    assert len(data.feature_names) == data.x_train.shape[1] == data.x_test.shape[1] == n_features
    assert data.x_train.dtype == np.float32
    assert data.y_train.dtype == (np.int64 if task == "classification" else np.float32)
    assert data.y_train.shape == (len(data.x_train),)
    if task == "classification":
        assert set(np.unique(data.y_train)) == set(range(n_classes))


def test_digits_is_image_shaped_and_others_flat():
    assert load_dataset(DatasetSpec(name="digits"), seed=0).input_shape == (1, 8, 8)
    assert load_dataset(DatasetSpec(name="wine"), seed=0).input_shape == (13,)


def test_iris_splits_by_fraction_and_stratifies():
    # 150 rows, 50 per class: 0.2 → 30 test, 30 validation, 90 train, each split a third per class.
    data = load_dataset(DatasetSpec(name="iris"), seed=0)
    assert class_counts(data) == [[30, 30, 30], [10, 10, 10], [10, 10, 10]]
    # validation 0.1 → 15 rows (5 per class), test 0.3 → 45 rows (15 per class), 90 left to train.
    data = load_dataset(DatasetSpec(name="iris", validation_split=0.1, test_split=0.3), seed=0)
    assert class_counts(data) == [[30, 30, 30], [5, 5, 5], [15, 15, 15]]


def test_holdout_sizes_round_to_the_nearest_row():
    # 1797 digits * 0.2 = 359.4 → 359 validation and 359 test rows, 1079 train.
    data = load_dataset(DatasetSpec(name="digits"), seed=0)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (1079, 359, 359)


def test_synthetic_generators_follow_the_spec_fields():
    spec = DatasetSpec(name="classification", n_samples=100, n_features=5, n_classes=4, noise=0.0, seed=3)
    data = load_dataset(spec, seed=0)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (60, 20, 20)
    assert data.input_shape == (5,)
    assert data.class_names == ["0", "1", "2", "3"]
    # The data set's own seed fixes the generated rows; the training seed only moves the split.
    reseeded = load_dataset(spec, seed=1)
    np.testing.assert_allclose(raw_rows(reseeded), raw_rows(data), rtol=1e-5, atol=1e-5)
    assert not np.allclose(reseeded.feature_mean, data.feature_mean)


def test_same_seed_same_arrays_other_seed_other_split():
    first = load_dataset(DatasetSpec(name="moons", n_samples=200), seed=7)
    again = load_dataset(DatasetSpec(name="moons", n_samples=200), seed=7)
    other = load_dataset(DatasetSpec(name="moons", n_samples=200), seed=8)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "feature_mean", "feature_std"):
        assert np.array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.x_train, other.x_train)


def test_standardization_uses_training_rows_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2)) * [1.0, 10.0] + [5.0, -3.0]
    x = np.column_stack([x, np.full(50, 4.0)])  # a constant feature: std 0 becomes 1
    row_ids = np.arange(50, dtype=np.float64)  # a regression target that names each row
    spec = DatasetSpec(name="regression")
    data = prepare_arrays(x, row_ids, "regression", spec, 0, ["a", "b", "c"], [])
    train_rows = x[data.y_train.astype(int)]
    np.testing.assert_allclose(data.feature_mean, train_rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(data.feature_std, [*train_rows[:, :2].std(axis=0), 1.0], rtol=1e-6)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(data.x_train.std(axis=0), [1.0, 1.0, 0.0], atol=1e-6)
    # Validation rows are scaled by the training statistics, so their mean is not exactly 0.
    expected_val = (x[data.y_val.astype(int)] - data.feature_mean) / data.feature_std
    np.testing.assert_allclose(data.x_val, expected_val, rtol=1e-5, atol=1e-6)
    assert np.abs(data.x_val[:, :2].mean(axis=0)).min() > 1e-3


def test_a_class_too_small_to_stratify_still_splits():
    # Class 2 has one row: scikit-learn cannot stratify, so the split is plain random.
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.array([0] * 10 + [1] * 9 + [2])
    data = prepare_arrays(x, y, "classification", DatasetSpec(name="iris"), 0, ["a", "b"], ["p", "q", "r"])
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (12, 4, 4)
    np.testing.assert_allclose(raw_rows(data), x, atol=1e-4)


@pytest.mark.parametrize(
    ("x", "y", "task", "class_names", "message"),
    [
        (np.zeros((2, 1)), np.array([0.0, 1.0]), "regression", [], "cannot fill a training split"),
        (np.zeros((5, 1)), np.array([0, 1, 2, 0, 1]), "classification", ["a", "b"], "class indices 0..1"),
        (np.full((5, 1), np.nan), np.zeros(5), "regression", [], "NaN"),
        (np.zeros((5, 1)), np.zeros(4), "regression", [], r"\(rows,\)"),
    ],
)
def test_impossible_arrays_are_refused(x, y, task, class_names, message):
    with pytest.raises(ValueError, match=message):
        prepare_arrays(x, y, task, DatasetSpec(name="iris"), 0, ["f"], class_names)


def test_impossible_synthetic_requests_are_refused():
    with pytest.raises(ValueError, match="at least 3 features"):
        load_dataset(DatasetSpec(name="classification", n_features=2, n_classes=5), seed=0)
    with pytest.raises(ValueError, match="label-flip fraction"):
        load_dataset(DatasetSpec(name="classification", noise=2.0), seed=0)
    with pytest.raises(ValueError, match="prepare_arrays"):
        load_dataset(DatasetSpec(id="ds_1"), seed=0)
