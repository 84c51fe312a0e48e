import math

import pytest
import torch

from core.spec.job import OptimizerSpec, SchedulerSpec
from workers.training.optim import LrSchedule, build_optimizer
from workers.training.regularizers.l2 import L2


def one_weight(value: float = 1.0) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor([value]))


@pytest.mark.parametrize(
    ("fields", "kind", "expected"),
    [
        ({"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}, torch.optim.SGD,
         {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        ({"name": "adam", "lr": 0.002, "weight_decay": 0.01}, torch.optim.AdamW,
         {"lr": 0.002, "weight_decay": 0.01}),
        ({"name": "adamw", "weight_decay": 0.05}, torch.optim.AdamW, {"weight_decay": 0.05}),
        ({"name": "rmsprop", "lr": 0.01, "momentum": 0.5}, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.5}),
    ],
)  # fmt: skip
def test_each_optimizer_builds_with_its_settings(fields, kind, expected):
    optimizer = build_optimizer(OptimizerSpec(**fields), [one_weight()])
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert {key: group[key] for key in expected} == expected


def first_adam_step(weight_decay: float, l2: float) -> float:
    """One Adam step (lr 0.1) on a weight of 1 whose data loss has no gradient."""
    weight = one_weight(1.0)
    optimizer = build_optimizer(OptimizerSpec(name="adam", lr=0.1, weight_decay=weight_decay), [weight])
    (0.0 * weight.sum() + L2(l2).penalty([weight])).backward()
    optimizer.step()
    return weight.item()


def test_adam_weight_decay_is_decoupled_and_not_the_l2_penalty():
    # l2 = 0.1 gives the gradient 2·0.1·1 = 0.2, which Adam's first step normalizes to a full lr step:
    # 1 - 0.1. Decoupled decay 0.1 shrinks the weight by lr·decay instead: 1·(1 - 0.1·0.1).
    assert first_adam_step(weight_decay=0.0, l2=0.1) == pytest.approx(0.9, abs=1e-6)
    assert first_adam_step(weight_decay=0.1, l2=0.0) == pytest.approx(0.99, abs=1e-6)


def lrs(base: float, epochs: int, **fields) -> list[float]:
    spec = SchedulerSpec(**fields) if fields else None
    schedule = LrSchedule(base, spec, epochs)
    return [schedule.lr(epoch) for epoch in range(1, epochs + 1)]


def test_without_a_scheduler_the_rate_stays_put():
    assert lrs(0.1, 3) == [0.1, 0.1, 0.1]


def test_step_schedule_after_a_linear_warm_up():
    assert lrs(0.1, 7, name="step", step_size=2, gamma=0.5, warmup_epochs=2) == pytest.approx(
        [0.05, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025]
    )


def test_exponential_schedule():
    assert lrs(0.1, 3, name="exponential", gamma=0.5) == pytest.approx([0.1, 0.05, 0.025])


def test_cosine_schedule_reaches_eta_min_after_t_max_and_stays():
    half = (1 + math.cos(math.pi / 4)) / 2  # 0.853553
    assert lrs(1.0, 7, name="cosine", t_max=4, eta_min=0.0, warmup_epochs=1) == pytest.approx(
        [1.0, 1.0, half, 0.5, 1 - half, 0.0, 0.0]
    )


def test_cosine_period_defaults_to_the_epochs_after_warm_up():
    assert lrs(2.0, 5, name="cosine", eta_min=1.0, warmup_epochs=1) == pytest.approx(
        [2.0, 2.0, 1.0 + (1 + math.cos(math.pi / 4)) / 2, 1.5, 1.0 + (1 - math.cos(math.pi / 4)) / 2]
    )


def test_reduce_on_plateau_cuts_the_rate_after_patience_epochs_without_improvement():
    schedule = LrSchedule(0.1, SchedulerSpec(name="reduce_on_plateau", patience=1, factor=0.5), 10)
    seen = []
    for epoch, val_loss in enumerate([1.0, 0.9, 0.95, 0.95, 0.8, math.nan, 0.85], start=1):
        seen.append(schedule.lr(epoch))
        schedule.observe(epoch, {"val_loss": val_loss})
    # Epochs 3 and 4 fail to beat 0.9: the second miss exceeds patience 1. NaN never improves.
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05])
    assert schedule.lr(8) == pytest.approx(0.025)


def test_reduce_on_plateau_state_round_trips():
    spec = SchedulerSpec(name="reduce_on_plateau", patience=0, factor=0.1)
    schedule = LrSchedule(1.0, spec, 10)
    for epoch, value in enumerate([3.0, 4.0], start=1):
        schedule.observe(epoch, {"val_loss": value})
    restored = LrSchedule(1.0, spec, 10)
    restored.load_state_dict(schedule.state_dict())
    assert restored.state_dict() == schedule.state_dict() == {"scale": 0.1, "best": 3.0, "wait": 0}
    assert restored.lr(3) == pytest.approx(0.1)
