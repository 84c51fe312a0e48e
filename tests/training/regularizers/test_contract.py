"""Every regularizer keeps to the interface: it overrides only known hooks, a spec can switch it on, and the
engine calls its hooks in the documented order (regularizers/base.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch import nn

from core.spec.job import JobSpec
from tests.training.factories import hand_made, hand_made_images, job_spec
from workers.training import engine
from workers.training.losses import LossFn
from workers.training.model import layer_weights
from workers.training.optim import build_optimizer
from workers.training.regularizers.base import HOOKS, Regularizer, discovered, from_spec

# One spec that switches each regularizer on; a new regularizer needs its entry here.
CNN = {"type": "cnn", "conv_layers": [{"filters": 2, "kernel_size": 3}]}
DIGITS = {"name": "digits"}  # an image set: the model sees 1 x 8 x 8 images (hand_made_images)
SPECS: dict[str, dict[str, dict[str, Any]]] = {
    "Cutout": {"augmentation": {"cutout": 3}, "dataset": DIGITS},
    "HorizontalFlip": {"augmentation": {"flip": True}, "dataset": DIGITS},
    "Mixup": {"augmentation": {"mixup": 0.4}},
    "RandomCrop": {"augmentation": {"crop_padding": 2}, "dataset": DIGITS},
    "AlphaDropout": {"model": {"dropout": 0.1, "dropout_type": "alpha", "activation": "selu"}},
    "DropConnect": {"model": {"dropout": 0.2, "dropout_type": "dropconnect"}},
    "DropoutPlacement": {"model": {"dropout": 0.5}},
    "GaussianDropout": {"model": {"dropout": 0.2, "dropout_type": "gaussian"}},
    "SpatialDropout": {"model": {**CNN, "dropout": 0.2, "dropout_type": "spatial"}, "dataset": DIGITS},
    "GradientClipping": {"regularization": {"gradient_clip_norm": 1.0}},
    "InputNoise": {"regularization": {"input_noise": 0.1}},
    "L1": {"regularization": {"l1": 1e-3}},
    "L2": {"regularization": {"l2": 1e-3}},
    "LabelSmoothing": {"regularization": {"label_smoothing": 0.1}},
    "MaxNorm": {"regularization": {"max_norm": 1.0}},
}
BATCHES = 2  # 24 training rows in batches of 12
PER_BATCH = ("transform_batch", "forward", "penalty", "backward", "after_backward", "step", "after_step")


class Recorder(Regularizer):
    """Wraps a real regularizer, noting each hook the engine calls, and the forward and backward passes of
    the model it returns, before passing the call on."""

    def __init__(self, inner: Regularizer, calls: list[str]) -> None:
        self.inner, self.calls = inner, calls

    @classmethod
    def for_spec(cls, spec: JobSpec) -> None:
        return None  # a recorder wraps the regularizers from_spec made; no spec switches one on

    def bind(self, input_shape: tuple[int, ...]) -> None:
        self.calls.append("bind")
        self.inner.bind(input_shape)

    def modify_model(self, model: nn.Sequential) -> nn.Sequential:
        self.calls.append("modify_model")
        model = self.inner.modify_model(model)
        model.register_forward_pre_hook(lambda *_: self.calls.append("forward"))
        layer_weights(model)[-1].register_hook(lambda _: self.calls.append("backward"))
        return model

    def modify_loss(self, loss_fn: LossFn, n_classes: int) -> LossFn:
        self.calls.append("modify_loss")
        return self.inner.modify_loss(loss_fn, n_classes)

    def transform_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append("transform_batch")
        return self.inner.transform_batch(inputs, targets)

    def penalty(self, weights: Sequence[torch.Tensor]) -> torch.Tensor | None:
        self.calls.append("penalty")
        return self.inner.penalty(weights)

    def after_backward(self, params: Sequence[torch.Tensor]) -> None:
        self.calls.append("after_backward")
        self.inner.after_backward(params)

    def after_step(self, weights: Sequence[torch.Tensor]) -> None:
        self.calls.append("after_step")
        self.inner.after_step(weights)

    def epoch_metrics(self) -> dict[str, float]:
        self.calls.append("epoch_metrics")
        return self.inner.epoch_metrics()


def test_the_recorder_passes_on_every_hook():
    assert {name for name in vars(Recorder) if not name.startswith("_")} == {"for_spec", *HOOKS}


def test_every_regularizer_has_a_spec_here():
    assert sorted(cls.__name__ for cls in discovered()) == sorted(SPECS)


@pytest.mark.parametrize("cls", discovered(), ids=lambda cls: cls.__name__)
def test_a_regularizer_overrides_only_known_hooks(cls: type[Regularizer]):
    own = {name for name in vars(cls) if not name.startswith("_")}
    assert own - {"for_spec"} <= set(HOOKS)
    assert own & set(HOOKS), "a regularizer that overrides no hook does nothing"
    assert "for_spec" in own


@pytest.mark.parametrize("cls", discovered(), ids=lambda cls: cls.__name__)
def test_its_spec_switches_it_on_and_the_default_spec_does_not(cls: type[Regularizer]):
    assert isinstance(cls.for_spec(job_spec("classification", **SPECS[cls.__name__])), cls)
    assert cls.for_spec(job_spec()) is None


@pytest.mark.parametrize("cls", discovered(), ids=lambda cls: cls.__name__)
def test_the_engine_calls_its_hooks_in_the_documented_order(cls: type[Regularizer], monkeypatch):
    calls: list[str] = []

    def recorded(spec: JobSpec) -> list[Regularizer]:
        return [Recorder(regularizer, calls) for regularizer in from_spec(spec)]

    def optimizer(*args: Any) -> torch.optim.Optimizer:
        built = build_optimizer(*args)
        built.register_step_post_hook(lambda *_: calls.append("step"))
        return built

    monkeypatch.setattr(engine, "from_spec", recorded)
    monkeypatch.setattr(engine, "build_optimizer", optimizer)
    spec = job_spec("classification", **SPECS[cls.__name__], training={"epochs": 1, "batch_size": 12})
    data = hand_made_images() if spec.dataset.name == "digits" else hand_made()
    engine.train(spec, data, device=torch.device("cpu"))
    # Then validation (a forward pass), the epoch's end, and the test split's forward pass.
    assert calls == ["bind", "modify_model", "modify_loss", *PER_BATCH * BATCHES, "forward", "epoch_metrics", "forward"]


def test_regularizers_run_in_module_name_order():
    spec = job_spec(regularization={"l1": 1e-3, "l2": 1e-3, "max_norm": 1.0}, model={"dropout": 0.1})
    assert [type(r).__name__ for r in from_spec(spec)] == ["DropoutPlacement", "L1", "L2", "MaxNorm"]
