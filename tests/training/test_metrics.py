import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, r2_score, recall_score

from tests.training.factories import tiny_network
from workers.training.metrics import classification_scores, regression_scores, weight_stats
from workers.training.model import layer_weights


def test_classification_scores_by_hand():
    # Class 0: 2 of its 3 rows found, no false alarm; class 1: its row found, plus one false alarm;
    # class 2: neither in the targets nor in the predictions, so it is left out of the macro average.
    target = torch.tensor([0, 0, 0, 1])
    predicted = torch.tensor([0, 0, 1, 1])
    accuracy, precision, recall, f1 = classification_scores(predicted, target, n_classes=3).tolist()
    assert accuracy == pytest.approx(3 / 4)
    assert precision == pytest.approx((1 + 1 / 2) / 2)  # macro over the two classes that occur
    assert recall == pytest.approx((2 / 3 + 1) / 2)
    assert f1 == pytest.approx((0.8 + 2 / 3) / 2)


def test_classification_scores_match_scikit_learn_with_missing_and_never_predicted_classes():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, size=300)  # class 4 of 5 never occurs
    predicted = np.where(rng.random(300) < 0.6, target, rng.integers(0, 3, size=300))  # class 3 never predicted
    ours = classification_scores(torch.tensor(predicted), torch.tensor(target), n_classes=5).tolist()
    options = {"average": "macro", "zero_division": 0}
    expected = [
        accuracy_score(target, predicted),
        precision_score(target, predicted, **options),
        recall_score(target, predicted, **options),
        f1_score(target, predicted, **options),
    ]
    assert ours == pytest.approx(expected, rel=1e-5)


def test_regression_scores_by_hand():
    # Errors 0, 2, -3 around targets with mean 1 (spread Σ(y-ȳ)² = 0 + 1 + 1 = 2).
    mae, rmse, r2 = regression_scores(torch.tensor([1.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 2.0])).tolist()
    assert mae == pytest.approx(5 / 3)
    assert rmse == pytest.approx((13 / 3) ** 0.5)
    assert r2 == pytest.approx(1 - 13 / 2)
    assert r2 == pytest.approx(r2_score([1.0, 0.0, 2.0], [1.0, 2.0, -1.0]))


def test_the_penalized_weights_are_those_of_linear_layers_only():
    model = tiny_network()
    assert [w.shape for w in layer_weights(model)] == [(2, 3), (2, 2)]


def test_weight_stats_are_l1_l2_norms_and_near_zero_fraction_of_weights_only():
    model = tiny_network()
    with torch.no_grad():
        model.output.weight[1, 0] = 5e-4  # below the 1e-3 threshold; the bias of 0 below is not counted
        model.output.bias.zero_()
    l1, l2, sparsity, above = weight_stats(layer_weights(model)).tolist()
    assert l1 == pytest.approx(10.5 + 5e-4)
    assert l2 == pytest.approx(math.sqrt(20.25 + 2.5e-7))
    assert sparsity == pytest.approx(3 / 10)
    assert above == 7  # of the 10 weights, the 3 below the threshold are not counted
