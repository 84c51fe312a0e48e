import torch

from tests.training.factories import job_spec
from workers.training.regularizers.gradient_clipping import GradientClipping


def with_grad(*values: float) -> torch.Tensor:
    param = torch.zeros(len(values), requires_grad=True)
    param.grad = torch.tensor(values)
    return param


def test_gradients_above_the_limit_are_scaled_together_to_the_limit():
    a, b = with_grad(3.0), with_grad(0.0, 4.0)  # global norm 5
    GradientClipping(1.0).after_backward([a, b])
    assert a.grad is not None and b.grad is not None
    assert torch.allclose(a.grad, torch.tensor([0.6])) and torch.allclose(b.grad, torch.tensor([0.0, 0.8]))


def test_gradients_within_the_limit_are_left_alone():
    a = with_grad(0.3, 0.4)  # norm 0.5
    GradientClipping(1.0).after_backward([a])
    assert a.grad is not None
    assert torch.allclose(a.grad, torch.tensor([0.3, 0.4]))


def test_the_spec_field_switches_it_on():
    assert GradientClipping.for_spec(job_spec()) is None
    clipping = GradientClipping.for_spec(job_spec(regularization={"gradient_clip_norm": 2.5}))
    assert clipping is not None and clipping.max_norm == 2.5
