import json
import math

import pytest
import safetensors.torch
import torch

from workers.training.checkpoint import (
    Checkpoint,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    load_optimizer_state,
    optimizer_state,
    weights_from_bytes,
    weights_to_bytes,
)
from workers.training.engine import EpochEnd


def test_a_checkpoint_round_trips_through_one_safetensors_file():
    tensors = {
        "model.w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "model.n": torch.tensor(7),
        "rng.torch": torch.tensor([1, 2, 255], dtype=torch.uint8),
    }
    meta = {"epoch": 3, "best_metrics": {"val_loss": math.nan, "val_r2": -math.inf}, "early_stopping": None}
    data = checkpoint_to_bytes(Checkpoint(tensors=tensors, meta=meta))
    back = checkpoint_from_bytes(data)
    assert back.tensors.keys() == tensors.keys()
    assert all(torch.equal(back.tensors[k], v) and back.tensors[k].dtype == v.dtype for k, v in tensors.items())
    assert back.meta["epoch"] == 3 and back.meta["early_stopping"] is None
    assert math.isnan(back.meta["best_metrics"]["val_loss"]) and back.meta["best_metrics"]["val_r2"] == -math.inf
    # Plain safetensors: any reader loads the tensors, and the JSON sits in the header's metadata.
    assert safetensors.torch.load(data).keys() == tensors.keys()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert json.loads(header["__metadata__"]["steadyfit"])["epoch"] == 3


def test_weights_round_trip_with_their_metadata():
    weights = {"output.weight": torch.ones(2, 2), "output.bias": torch.zeros(2)}
    back, meta = weights_from_bytes(weights_to_bytes(weights, {"input_shape": [1, 8, 8]}))
    assert all(torch.equal(back[k], v) for k, v in weights.items())
    assert meta == {"input_shape": [1, 8, 8]}


def test_optimizer_state_round_trips_into_a_fresh_optimizer():
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    weight.sum().backward()
    optimizer.step()
    tensors, values = optimizer_state(optimizer)
    assert set(tensors) == {"0.momentum_buffer"}
    fresh = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    load_optimizer_state(fresh, tensors, json.loads(json.dumps(values)))
    assert torch.equal(fresh.state[weight]["momentum_buffer"], torch.ones(2))


def test_an_epoch_end_without_training_state_says_so():
    with pytest.raises(RuntimeError, match="no training state"):
        EpochEnd(epoch=1, metrics={}, is_best=False).checkpoint()
