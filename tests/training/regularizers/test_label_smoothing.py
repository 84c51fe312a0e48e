import math

import pytest
import torch

from tests.training.factories import job_spec
from workers.training.losses import build_loss
from workers.training.regularizers.label_smoothing import LabelSmoothing


def test_the_smoothed_cross_entropy_trains_toward_the_softened_target():
    # Two classes, s = 0.2: the target (1, 0) becomes (0.9, 0.1); logits (2, 0) give p0 = e²/(e²+1).
    spec = job_spec(regularization={"label_smoothing": 0.2})
    smoothing = LabelSmoothing.for_spec(spec)
    assert smoothing is not None
    loss_fn = smoothing.modify_loss(build_loss(spec.loss_spec, 2), n_classes=2)
    log_p0 = 2 - math.log(math.exp(2) + 1)
    log_p1 = -math.log(math.exp(2) + 1)
    expected = -(0.9 * log_p0 + 0.1 * log_p1)
    assert loss_fn(torch.tensor([[2.0, 0.0]]), torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)


def test_no_smoothing_leaves_the_loss_alone():
    assert LabelSmoothing.for_spec(job_spec()) is None
